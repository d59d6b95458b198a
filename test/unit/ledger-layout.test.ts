/**
 * The ledger over its storage layout (format 2): groups that span several
 * chunk rows keep proofs and the log right, the newest version of a key is
 * found by a reverse scan (also when its history outgrows a listing page),
 * large values live in their own rows, and a store of another format is
 * refused at open.
 */
import { describe, expect, test } from "bun:test";
import { Ledger } from "../../src/ledger/ledger.ts";
import { CheckpointIssuer } from "../../src/ledger/checkpoints.ts";
import { CHUNK_ENTRIES_MAX, FORMAT_KEY, VALUE_INLINE_BYTES_MAX } from "../../src/ledger/records.ts";
import { LedgerFormatError } from "../../src/ledger/errors.ts";
import { cbor, type Entry } from "../../src/ledger/entry.ts";
import { generateSigner } from "../../src/checkpoint/index.ts";
import { defaultHasher, verifyInclusion } from "../../src/merkle/index.ts";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { Tag } from "../../src/storage/keys.ts";
import { type Storage } from "../../src/storage/index.ts";
import { type WriteCommand } from "../../src/ledger/commands.ts";

const signer = generateSigner("layout");
const open = (storage: Storage) =>
  Ledger.open({ storage, hasher: defaultHasher, checkpoints: new CheckpointIssuer({ signer, origin: "layout" }), immutable: false });
const text = (value: string) => new TextEncoder().encode(value);
const put = (key: string, value: Uint8Array): WriteCommand => ({ operations: [{ op: "put", key, value, contentType: "application/octet-stream" }] });

async function apply(ledger: Ledger, storage: Storage, commands: WriteCommand[], timestampMs: number) {
  const prepared = await ledger.prepare(commands, timestampMs);
  await storage.commit(prepared.ops);
  ledger.publish(prepared);
  return prepared;
}

describe("ledger storage layout", () => {
  test("groups spanning several chunks: every entry, log page and inclusion proof is right, also after reopening", async () => {
    const storage = createMemoryStorage();
    const ledger = await open(storage);
    const entries: Entry[] = [];
    const leaves: Uint8Array[] = [];
    let n = 0;
    for (const size of [1, CHUNK_ENTRIES_MAX - 1, 2, CHUNK_ENTRIES_MAX + 3, 37, 2 * CHUNK_ENTRIES_MAX]) {
      const commands = Array.from({ length: size }, () => put(`key/${n % 97}`, text(`value ${n++}`)));
      const prepared = await apply(ledger, storage, commands, 1_000 + n);
      entries.push(...prepared.entries);
      for (const result of prepared.results) if (result.ok) leaves.push(result.applied[0]!.leafHash);
    }
    expect(ledger.treeSize).toBe(n);
    for (const reader of [ledger, await open(storage)]) {
      expect(Buffer.from(reader.rootHash).equals(Buffer.from(ledger.rootHash))).toBe(true);
      for (const seq of [0, 1, CHUNK_ENTRIES_MAX - 1, CHUNK_ENTRIES_MAX, CHUNK_ENTRIES_MAX + 1, 600, n - 1]) {
        const { item, proof } = await reader.inclusionProof(seq, n);
        expect(item.entry).toEqual(entries[seq]!);
        expect(Buffer.from(item.leafHash).equals(Buffer.from(leaves[seq]!))).toBe(true);
        verifyInclusion(defaultHasher, seq, n, leaves[seq]!, proof, ledger.rootHash);
      }
      let from: number | undefined = 0;
      const seen: number[] = [];
      while (from !== undefined) {
        const page = await reader.log({ from, limit: 100 });
        seen.push(...page.items.map((item) => item.entry.seq));
        from = page.next;
      }
      expect(seen).toEqual(entries.map((entry) => entry.seq));
    }
  });

  test("the newest version wins even when a key's history is longer than a listing page", async () => {
    const storage = createMemoryStorage();
    const ledger = await open(storage);
    await apply(ledger, storage, [put("a", text("a1")), put("c", text("c1"))], 1);
    await apply(ledger, storage, Array.from({ length: 1500 }, (_, i) => put("b", text(`b${i + 1}`))), 2);
    await apply(ledger, storage, [{ operations: [{ op: "delete", key: "c" }] }], 3);
    for (const reader of [ledger, await open(storage)]) {
      const listed = await reader.list({ prefix: "", limit: 10 });
      expect(listed.items.map(({ key, latest }) => [key, latest.version])).toEqual([["a", 1], ["b", 1500]]);
      expect(listed.next).toBeUndefined();
      const paged = await reader.list({ prefix: "", limit: 1 });
      expect(paged.items.map(({ key }) => key)).toEqual(["a"]);
      expect(paged.next).toBe("b");
      expect((await reader.get("b")).value).toEqual(text("b1500"));
      expect((await reader.get("b", 7)).value).toEqual(text("b7"));
      await expect(reader.get("c")).rejects.toThrow("deleted");
      expect((await reader.history("c", { limit: 5 })).items.map((item) => item.deleted)).toEqual([true, false]);
    }
  });

  test("values above the inline limit live in their own row and read back whole", async () => {
    const storage = createMemoryStorage();
    const ledger = await open(storage);
    const big = new Uint8Array(VALUE_INLINE_BYTES_MAX + 1).map((_, i) => i & 0xff);
    const small = new Uint8Array(VALUE_INLINE_BYTES_MAX).fill(1);
    await apply(ledger, storage, [put("big", big), put("small", small), put("big", small)], 1);
    const valueRows = await storage.scan({ start: Uint8Array.of(Tag.value), end: Uint8Array.of(Tag.value + 1), limit: 10 });
    expect(valueRows.length).toBe(1);
    const reopened = await open(storage);
    expect((await reopened.get("big", 1)).value).toEqual(big);
    expect((await reopened.get("big")).value).toEqual(small);
    expect((await reopened.history("big", { limit: 5 })).items.map((item) => item.sizeBytes)).toEqual([small.length, big.length]);
  });

  test("a store of another format, or older data without a format record, is refused", async () => {
    const other = createMemoryStorage();
    await other.commit([{ type: "put", key: FORMAT_KEY, value: cbor.encode(1) }]);
    await expect(open(other)).rejects.toBeInstanceOf(LedgerFormatError);
    const legacy = createMemoryStorage();
    await legacy.commit([{ type: "put", key: Uint8Array.of(0x12, 0x61, 0, 0), value: Uint8Array.of(1) }]);
    await expect(open(legacy)).rejects.toThrow("older, unsupported format");
    const fresh = createMemoryStorage();
    await open(fresh);
    expect(await fresh.get(FORMAT_KEY)).toBeDefined();
  });
});
