/**
 * Proof generation per RFC 9162 2.1.3.1 (PATH) and 2.1.4.1 (PROOF/SUBPROOF).
 * Two steps kept apart: index arithmetic ("which nodes does the proof need",
 * pure and synchronous) and fetching plus hashing them. A proof element that is
 * not a complete subtree (on the right edge of a non-power-of-two tree) is
 * given as the run of complete subtrees covering it, hashed right to left.
 * Must never read more than O(log n) nodes or call the reader more than once
 * per proof.
 */
import { foldRightToLeft } from "./compact-range.ts";
import { EMPTY_ROOT, HASH_BYTES, type Hasher } from "./hash.ts";
import { assertTreeSize, type NodeId, type NodeReader, rangeNodes, splitPoint } from "./node.ts";
import { ProofError } from "./errors.ts";

/**
 * One proof hash, described as the complete subtrees (left to right, adjacent,
 * strictly decreasing in level) whose RFC 9162 combination it is. Usually one
 * node; several only for the ephemeral node on the right edge.
 */
export type ProofElement = NodeId[];

/**
 * Nodes of the inclusion proof PATH(index, D[0:size]), leaf level first.
 * Preconditions: 0 <= index < size, both safe integers (ProofError otherwise).
 * Walks down from the root: the sibling of the half holding `index` is one
 * element; the loop runs at most ceil(log2 size) times.
 */
export function inclusionProofNodes(index: number, size: number): ProofElement[] {
  assertTreeSize(index, "index");
  assertTreeSize(size, "size");
  if (index >= size) throw new ProofError(`index ${index} is not below tree size ${size}`);
  const elements: ProofElement[] = [];
  let begin = 0;
  let end = size;
  while (end - begin > 1) {
    const middle = begin + splitPoint(end - begin);
    if (index < middle) {
      elements.push(rangeNodes(middle, end));
      end = middle;
    } else {
      elements.push(rangeNodes(begin, middle));
      begin = middle;
    }
  }
  return elements.reverse();
}

/**
 * Nodes of the consistency proof PROOF(m, D[0:n]) (RFC 9162 2.1.4.1).
 * Preconditions: 0 < m <= n, safe integers (ProofError otherwise); m == n
 * yields an empty proof. `complete` is SUBPROOF's flag b: true while the
 * current subtree [begin, end) is a subtree the old tree's root was built from
 * unchanged, so it need not be sent.
 */
export function consistencyProofNodes(m: number, n: number): ProofElement[] {
  assertTreeSize(m, "m");
  assertTreeSize(n, "n");
  if (m === 0) throw new ProofError("consistency from the empty tree is undefined (m = 0)");
  if (m > n) throw new ProofError(`old size ${m} is larger than new size ${n}`);
  const elements: ProofElement[] = [];
  let begin = 0;
  let end = n;
  let complete = true;
  while (m !== end) {
    const middle = begin + splitPoint(end - begin);
    if (m <= middle) {
      elements.push(rangeNodes(middle, end));
      end = middle;
    } else {
      elements.push(rangeNodes(begin, middle));
      begin = middle;
      complete = false;
    }
  }
  if (!complete) elements.push(rangeNodes(begin, end));
  return elements.reverse();
}

/**
 * Fetches every node of `elements` in one batched read and hashes each
 * element's run right to left. Asserts the reader returned one 32-byte hash
 * per id (anything else is storage corruption).
 */
async function resolveElements(
  reader: NodeReader,
  hasher: Hasher,
  elements: ProofElement[],
): Promise<Uint8Array[]> {
  const ids = elements.flat();
  if (ids.length === 0) return [];
  const hashes = await reader.getNodes(ids);
  if (hashes.length !== ids.length) {
    throw new Error(`NodeReader returned ${hashes.length} hashes for ${ids.length} ids`);
  }
  for (const [i, hash] of hashes.entries()) {
    if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) {
      throw new Error(`stored node ${ids[i]!.level}/${ids[i]!.index} is not a ${HASH_BYTES}-byte hash`);
    }
  }
  let cursor = 0;
  return elements.map((element) => {
    const run = hashes.slice(cursor, cursor + element.length);
    cursor += element.length;
    return foldRightToLeft(hasher, run);
  });
}

/** Inclusion proof for leaf `index` in the tree of `size` leaves. Preconditions as inclusionProofNodes. */
export async function inclusionProof(
  reader: NodeReader,
  hasher: Hasher,
  index: number,
  size: number,
): Promise<Uint8Array[]> {
  return resolveElements(reader, hasher, inclusionProofNodes(index, size));
}

/** Consistency proof from the tree of `m` leaves to the tree of `n`. Preconditions as consistencyProofNodes. */
export async function consistencyProof(
  reader: NodeReader,
  hasher: Hasher,
  m: number,
  n: number,
): Promise<Uint8Array[]> {
  return resolveElements(reader, hasher, consistencyProofNodes(m, n));
}

/**
 * Root hash of the tree of the first `size` leaves (any size up to the
 * current one), from at most log2(size) + 1 nodes. EMPTY_ROOT for size 0.
 */
export async function rootAt(reader: NodeReader, hasher: Hasher, size: number): Promise<Uint8Array> {
  assertTreeSize(size, "size");
  if (size === 0) return EMPTY_ROOT.slice();
  const [root] = await resolveElements(reader, hasher, [rangeNodes(0, size)]);
  return root!;
}
