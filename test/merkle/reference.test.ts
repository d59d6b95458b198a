/**
 * Property tests against a literal recursive reference implementation of
 * RFC 9162 MTH, PATH and PROOF/SUBPROOF (used only here). The tree under test
 * is built by MerkleFrontier.append into an in-memory node store; proofs are
 * generated through the NodeReader port and must equal the reference, verify,
 * and fail verification when tampered with.
 */
import { describe, expect, test } from "bun:test";
import { seededRandom as prng } from "../../src/raft/index.ts";
import {
  consistencyProof,
  consistencyProofNodes,
  defaultHasher,
  EMPTY_ROOT,
  type Hasher,
  inclusionProof,
  inclusionProofNodes,
  leafHash,
  MerkleFrontier,
  nobleHasher,
  type NodeId,
  nodeHash,
  nodeKey,
  type NodeReader,
  ProofError,
  rootAt,
  rootFromInclusionProof,
  RootMismatchError,
  verifyConsistency,
  verifyInclusion,
} from "../../src/merkle/index.ts";

const hasher: Hasher = defaultHasher;
const SIZE_MAX = 300;
const ALL_PAIRS_SIZE_MAX = 64;
const SAMPLES_PER_SIZE = 12;
const SEED = 0x5eed_1ed9;

// ---------------------------------------------------------------- reference

/** RFC 9162 2.1.1: MTH over raw entries. */
function refMth(entries: Uint8Array[]): Uint8Array {
  const n = entries.length;
  if (n === 0) return hasher.sha256(new Uint8Array(0));
  if (n === 1) return hasher.sha256(concat([Uint8Array.of(0x00), entries[0]!]));
  const k = refSplit(n);
  return hasher.sha256(concat([Uint8Array.of(0x01), refMth(entries.slice(0, k)), refMth(entries.slice(k))]));
}

/** Largest power of two smaller than n (n > 1). */
function refSplit(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** RFC 9162 2.1.3.1: PATH(m, D[n]). */
function refPath(m: number, entries: Uint8Array[]): Uint8Array[] {
  const n = entries.length;
  if (n === 1) return [];
  const k = refSplit(n);
  if (m < k) return [...refPath(m, entries.slice(0, k)), refMth(entries.slice(k))];
  return [...refPath(m - k, entries.slice(k)), refMth(entries.slice(0, k))];
}

/** RFC 9162 2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true). */
function refProof(m: number, entries: Uint8Array[]): Uint8Array[] {
  return refSubproof(m, entries, true);
}

function refSubproof(m: number, entries: Uint8Array[], b: boolean): Uint8Array[] {
  const n = entries.length;
  if (m === n) return b ? [] : [refMth(entries)];
  const k = refSplit(n);
  if (m <= k) return [...refSubproof(m, entries.slice(0, k), b), refMth(entries.slice(k))];
  return [...refSubproof(m - k, entries.slice(k), false), refMth(entries.slice(0, k))];
}

// ---------------------------------------------------------------- helpers

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function fromHex(text: string): Uint8Array {
  return Uint8Array.from(text.match(/../g) ?? [], (pair) => Number.parseInt(pair, 16));
}

/** Deterministic entries: entry i is 1..8 bytes derived from i. */
function makeEntries(count: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) =>
    Uint8Array.from({ length: 1 + (i % 8) }, (_, j) => (i * 31 + j * 7) & 0xff),
  );
}


/** In-memory node store filled from append outputs; counts reads. */
class MemoryNodes implements NodeReader {
  readonly nodes = new Map<string, Uint8Array>();
  calls = 0;
  idsRead = 0;

  async getNodes(ids: NodeId[]): Promise<Uint8Array[]> {
    this.calls += 1;
    this.idsRead += ids.length;
    return ids.map((id) => {
      const hash = this.nodes.get(nodeKey(id));
      if (hash === undefined) throw new Error(`missing node ${nodeKey(id)}`);
      return hash;
    });
  }

  resetCounters(): void {
    this.calls = 0;
    this.idsRead = 0;
  }
}

/** Builds a tree of SIZE_MAX leaves, recording the root after every append. */
function buildTree(entries: Uint8Array[]): { store: MemoryNodes; roots: Uint8Array[]; frontier: MerkleFrontier } {
  const store = new MemoryNodes();
  const frontier = MerkleFrontier.empty(hasher);
  const roots = [frontier.root()];
  for (const entry of entries) {
    for (const node of frontier.append(leafHash(hasher, entry))) {
      const key = nodeKey(node);
      expect(store.nodes.has(key)).toBe(false); // each node is produced exactly once
      store.nodes.set(key, node.hash);
    }
    roots.push(frontier.root());
  }
  return { store, roots, frontier };
}

function log2Ceil(n: number): number {
  let bits = 0;
  while (2 ** bits < n) bits++;
  return bits;
}

/** Pairs (a, b) to test for tree size `size`: all when small, a seeded sample above. */
function samplePairs(size: number, lowMin: number, random: () => number, lowMaxInclusive: boolean): number[] {
  const high = lowMaxInclusive ? size : size - 1;
  const count = high - lowMin + 1;
  if (size <= ALL_PAIRS_SIZE_MAX) return Array.from({ length: count }, (_, i) => lowMin + i);
  const picks = new Set<number>([lowMin, high]);
  while (picks.size < Math.min(SAMPLES_PER_SIZE, count)) picks.add(lowMin + Math.floor(random() * count));
  return [...picks];
}

/** Flips one bit of a copy. */
function flipped(bytes: Uint8Array, bit = 0): Uint8Array {
  const copy = bytes.slice();
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

const entries = makeEntries(SIZE_MAX);
const tree = buildTree(entries);

// ---------------------------------------------------------------- tests

describe("hashers", () => {
  test("defaultHasher and nobleHasher agree; leaf/node prefixes", () => {
    const data = Uint8Array.from({ length: 100 }, (_, i) => i);
    expect(hex(defaultHasher.sha256(data))).toBe(hex(nobleHasher.sha256(data)));
    expect(hex(leafHash(hasher, data))).toBe(hex(nobleHasher.sha256(concat([Uint8Array.of(0), data]))));
    const left = nobleHasher.sha256(Uint8Array.of(1));
    const right = nobleHasher.sha256(Uint8Array.of(2));
    expect(hex(nodeHash(hasher, left, right))).toBe(hex(nobleHasher.sha256(concat([Uint8Array.of(1), left, right]))));
  });
});

describe("reference tree (rfc6962 README)", () => {
  const leaves = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map(
    fromHex,
  );
  test("frontier root of the 8 reference leaves", () => {
    const frontier = MerkleFrontier.empty(hasher);
    for (const leaf of leaves) frontier.append(leafHash(hasher, leaf));
    expect(btoa(String.fromCharCode(...frontier.root()))).toBe("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=");
    expect(hex(refMth(leaves))).toBe(hex(frontier.root()));
  });
  test("empty tree root is SHA-256 of nothing", () => {
    expect(hex(MerkleFrontier.empty(hasher).root())).toBe(
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    expect(hex(EMPTY_ROOT)).toBe(hex(refMth([])));
  });
});

describe("frontier", () => {
  test(`root equals reference MTH for every size 0..${SIZE_MAX}`, () => {
    for (let size = 0; size <= SIZE_MAX; size++) {
      expect({ size, root: hex(tree.roots[size]!) }).toEqual({ size, root: hex(refMth(entries.slice(0, size))) });
    }
  });

  test("append stores every complete node: 2n - popcount(n) nodes", () => {
    let popcount = 0;
    for (let n = SIZE_MAX; n > 0; n = Math.floor(n / 2)) popcount += n % 2;
    expect(tree.store.nodes.size).toBe(2 * SIZE_MAX - popcount);
  });

  test("load(size) reproduces the frontier with one O(log n) read, then appends identically", async () => {
    for (let size = 0; size <= SIZE_MAX; size++) {
      tree.store.resetCounters();
      const loaded = await MerkleFrontier.load(size, tree.store, hasher);
      expect(tree.store.calls).toBeLessThanOrEqual(1);
      expect(tree.store.idsRead).toBeLessThanOrEqual(log2Ceil(size + 1) + 1);
      expect(loaded.size).toBe(size);
      expect(hex(loaded.root())).toBe(hex(tree.roots[size]!));
      if (size < SIZE_MAX) {
        loaded.append(leafHash(hasher, entries[size]!));
        expect(hex(loaded.root())).toBe(hex(tree.roots[size + 1]!));
      }
    }
    const full = await MerkleFrontier.load(SIZE_MAX, tree.store, hasher);
    expect(full.nodes().map((n) => [nodeKey(n), hex(n.hash)])).toEqual(
      tree.frontier.nodes().map((n) => [nodeKey(n), hex(n.hash)]),
    );
  });

  test("load throws when a stored node is missing", async () => {
    await expect(MerkleFrontier.load(SIZE_MAX + 1, tree.store, hasher)).rejects.toThrow("missing node");
  });

  test("append rejects a hash of the wrong length", () => {
    expect(() => MerkleFrontier.empty(hasher).append(new Uint8Array(31))).toThrow();
  });
});

describe("rootAt", () => {
  test(`rootAt(size) equals reference for every size 0..${SIZE_MAX}`, async () => {
    for (let size = 0; size <= SIZE_MAX; size++) {
      tree.store.resetCounters();
      expect(hex(await rootAt(tree.store, hasher, size))).toBe(hex(tree.roots[size]!));
      expect(tree.store.calls).toBeLessThanOrEqual(1);
      expect(tree.store.idsRead).toBeLessThanOrEqual(log2Ceil(size + 1) + 1);
    }
  });
});

describe("inclusion proofs", () => {
  const random = prng(SEED);
  for (let size = 1; size <= SIZE_MAX; size++) {
    // Sampled at registration so the pairs do not depend on which tests run.
    const indices = samplePairs(size, 0, random, false);
    test(`size ${size}: generated == reference, verifies, tampering fails`, async () => {
      const treeEntries = entries.slice(0, size);
      const root = tree.roots[size]!;
      for (const index of indices) {
        const context = { seed: SEED, index, size };
        tree.store.resetCounters();
        const proof = await inclusionProof(tree.store, hasher, index, size);
        expect(tree.store.calls).toBeLessThanOrEqual(1);
        expect(tree.store.idsRead).toBeLessThanOrEqual(2 * log2Ceil(size) + 2);
        expect({ ...context, proof: proof.map(hex) }).toEqual({ ...context, proof: refPath(index, treeEntries).map(hex) });
        expect(inclusionProofNodes(index, size).length).toBe(proof.length);

        const leaf = leafHash(hasher, entries[index]!);
        verifyInclusion(hasher, index, size, leaf, proof, root);
        expect(hex(rootFromInclusionProof(hasher, index, size, leaf, proof))).toBe(hex(root));

        expect(() => verifyInclusion(hasher, index, size, flipped(leaf, 255), proof, root)).toThrow(RootMismatchError);
        for (let i = 0; i < proof.length; i++) {
          const tampered = proof.map((hash, j) => (j === i ? flipped(hash, (i * 13) % 256) : hash));
          expect(() => verifyInclusion(hasher, index, size, leaf, tampered, root)).toThrow(RootMismatchError);
        }
        expect(() => verifyInclusion(hasher, index, size, leaf, proof, flipped(root))).toThrow(RootMismatchError);
        expect(() => verifyInclusion(hasher, index, size, leaf, [...proof, root], root)).toThrow(ProofError);
        if (proof.length > 0) {
          expect(() => verifyInclusion(hasher, index, size, leaf, proof.slice(1), root)).toThrow(ProofError);
        }
      }
    });
  }

  test("malformed inputs are ProofError", () => {
    const leaf = leafHash(hasher, entries[0]!);
    expect(() => verifyInclusion(hasher, 5, 5, leaf, [], tree.roots[5]!)).toThrow(ProofError);
    expect(() => verifyInclusion(hasher, -1, 5, leaf, [], tree.roots[5]!)).toThrow(ProofError);
    expect(() => verifyInclusion(hasher, 0.5, 5, leaf, [], tree.roots[5]!)).toThrow(ProofError);
    expect(() => verifyInclusion(hasher, 0, 1, new Uint8Array(31), [], tree.roots[1]!)).toThrow(ProofError);
    expect(() => verifyInclusion(hasher, 0, 2, leaf, [new Uint8Array(33)], tree.roots[2]!)).toThrow(ProofError);
    expect(() => inclusionProofNodes(3, 3)).toThrow(ProofError);
  });
});

describe("consistency proofs", () => {
  const random = prng(SEED + 1);
  for (let n = 1; n <= SIZE_MAX; n++) {
    const olds = samplePairs(n, 1, random, true);
    test(`size ${n}: generated == reference, verifies, tampering fails`, async () => {
      const treeEntries = entries.slice(0, n);
      for (const m of olds) {
        const context = { seed: SEED + 1, m, n };
        tree.store.resetCounters();
        const proof = await consistencyProof(tree.store, hasher, m, n);
        expect(tree.store.calls).toBeLessThanOrEqual(1);
        expect(tree.store.idsRead).toBeLessThanOrEqual(2 * log2Ceil(n) + 2);
        expect({ ...context, proof: proof.map(hex) }).toEqual({ ...context, proof: refProof(m, treeEntries).map(hex) });
        expect(consistencyProofNodes(m, n).length).toBe(proof.length);

        const root1 = tree.roots[m]!;
        const root2 = tree.roots[n]!;
        verifyConsistency(hasher, m, n, root1, root2, proof);
        expect(() => verifyConsistency(hasher, m, n, flipped(root1), root2, proof)).toThrow(RootMismatchError);
        expect(() => verifyConsistency(hasher, m, n, root1, flipped(root2, 77), proof)).toThrow(RootMismatchError);
        for (let i = 0; i < proof.length; i++) {
          const tampered = proof.map((hash, j) => (j === i ? flipped(hash, (i * 29) % 256) : hash));
          expect(() => verifyConsistency(hasher, m, n, root1, root2, tampered)).toThrow(RootMismatchError);
        }
        expect(() => verifyConsistency(hasher, m, n, root1, root2, [...proof, root1])).toThrow(ProofError);
      }
    });
  }

  test("malformed inputs are ProofError", () => {
    const r = tree.roots;
    expect(() => verifyConsistency(hasher, 5, 4, r[5]!, r[4]!, [])).toThrow(ProofError);
    expect(() => verifyConsistency(hasher, 0, 4, r[0]!, r[4]!, [])).toThrow(ProofError);
    expect(() => verifyConsistency(hasher, 3, 4, r[3]!, r[4]!, [])).toThrow(ProofError);
    expect(() => verifyConsistency(hasher, 4, 4, r[4]!, r[4]!, [r[4]!])).toThrow(ProofError);
    expect(() => verifyConsistency(hasher, 4, 4, r[4]!, r[5]!, [])).toThrow(RootMismatchError);
    expect(() => consistencyProofNodes(0, 4)).toThrow(ProofError);
    expect(() => consistencyProofNodes(5, 4)).toThrow(ProofError);
  });

  test("RootMismatchError carries expected and computed hashes", () => {
    try {
      verifyConsistency(hasher, 4, 4, tree.roots[4]!, tree.roots[5]!, []);
      throw new Error("unreachable");
    } catch (error) {
      expect(error).toBeInstanceOf(RootMismatchError);
      expect(hex((error as RootMismatchError).expected)).toBe(hex(tree.roots[4]!));
      expect(hex((error as RootMismatchError).computed)).toBe(hex(tree.roots[5]!));
    }
  });
});

describe("large sizes", () => {
  test("index arithmetic stays O(log n) beyond 2^32 leaves", () => {
    const size = 2 ** 40 + 12345;
    const nodes = inclusionProofNodes(2 ** 33 + 7, size);
    expect(nodes.length).toBeLessThanOrEqual(41);
    expect(nodes.flat().length).toBeLessThanOrEqual(2 * 41 + 2);
    const consistency = consistencyProofNodes(2 ** 35 + 3, size);
    expect(consistency.flat().length).toBeLessThanOrEqual(2 * 41 + 2);
  });
});
