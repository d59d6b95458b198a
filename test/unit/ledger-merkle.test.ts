import { describe, expect, test } from "bun:test";
import { Ledger } from "../../src/ledger/ledger.ts";
import { CheckpointIssuer } from "../../src/ledger/checkpoints.ts";
import { MERKLE_STORED_LEVEL_MIN } from "../../src/ledger/records.ts";
import { generateSigner } from "../../src/checkpoint/index.ts";
import { defaultHasher, nodeHash, verifyConsistency, verifyInclusion } from "../../src/merkle/index.ts";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { Tag } from "../../src/storage/keys.ts";

/** RFC 9162 MTH over leaf hashes, written out literally. */
function referenceRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(defaultHasher, referenceRoot(leaves.slice(0, k)), referenceRoot(leaves.slice(k)));
}

describe("ledger Merkle storage: low levels recomputed from entries", () => {
  test("roots, inclusion and consistency proofs hold at every size, and a reopened ledger has the same root", async () => {
    const storage = createMemoryStorage();
    const open = () => Ledger.open({ storage, hasher: defaultHasher, checkpoints: new CheckpointIssuer({ signer: generateSigner("t"), origin: "t" }), immutable: false });
    const ledger = await open();
    const leaves: Uint8Array[] = [];
    const roots: Uint8Array[] = [];
    for (let i = 0; i < 70; i++) {
      const prepared = await ledger.prepare([{ operations: [{ op: "put", key: `k${i % 11}`, value: Uint8Array.of(i), contentType: "x/y" }] }], 1000 + i);
      await storage.commit(prepared.ops);
      ledger.publish(prepared);
      const result = prepared.results[0]!;
      if (!result.ok) throw new Error("put refused");
      leaves.push(result.applied[0]!.leafHash);
      roots.push(ledger.rootHash);
      expect(Buffer.from(ledger.rootHash).equals(Buffer.from(referenceRoot(leaves)))).toBe(true);
    }
    const stored = await storage.scan({ start: Uint8Array.of(Tag.merkle), end: Uint8Array.of(Tag.merkle + 1), limit: 1000 });
    // Only complete nodes of the stored levels: floor(70 / 2^L) of each level L >= MERKLE_STORED_LEVEL_MIN.
    let expected = 0;
    for (let level = MERKLE_STORED_LEVEL_MIN; 2 ** level <= 70; level++) expected += Math.floor(70 / 2 ** level);
    expect(expected).toBeGreaterThan(0);
    expect(stored.length).toBe(expected);
    for (const row of stored) expect(row.key[8]!).toBeGreaterThanOrEqual(MERKLE_STORED_LEVEL_MIN);
    for (let size = 1; size <= 70; size++) {
      expect(Buffer.from(await ledger.rootAt(size)).equals(Buffer.from(roots[size - 1]!))).toBe(true);
      for (const seq of [0, size >> 1, size - 1]) {
        const { proof } = await ledger.inclusionProof(seq, size);
        verifyInclusion(defaultHasher, seq, size, leaves[seq]!, proof, roots[size - 1]!);
      }
      verifyConsistency(defaultHasher, size, 70, roots[size - 1]!, roots[69]!, await ledger.consistencyProof(size, 70));
    }
    const reopened = await open();
    expect(Buffer.from(reopened.rootHash).equals(Buffer.from(roots[69]!))).toBe(true);
  });
});
