/**
 * Storage records of the ledger (format 2): version rows embed the exact
 * entry bytes, chunk rows carry consecutive entries, and anything malformed
 * read back from storage is corruption.
 */
import { describe, expect, test } from "bun:test";
import {
  ChunkWriter, CHUNK_ENTRIES_MAX, decodeChunk, decodeVersionRow, encodeChunk, encodeVersionRow,
} from "../../src/ledger/records.ts";
import { cbor, cborUint, encodeEntry, type Entry } from "../../src/ledger/entry.ts";
import { StorageCorruptionError } from "../../src/storage/index.ts";
import { readKeyInteger } from "../../src/storage/keys.ts";

const put = (overrides: Partial<Entry> = {}): Entry => ({
  seq: 2 ** 40, op: "put", key: "k", valueHash: new Uint8Array(32).fill(7), sizeBytes: 3, contentType: "text/plain", timestampMs: 1763790000000, ...overrides,
});
const tombstone: Entry = { seq: 9, op: "delete", key: "gone", valueHash: null, sizeBytes: 0, contentType: null, timestampMs: 5 };
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("version rows", () => {
  test("hold the exact entry bytes before the value, whatever the value size (every CBOR head length)", () => {
    for (const size of [0, 1, 23, 24, 255, 256, 1024, 65535, 65536]) {
      const value = new Uint8Array(size).fill(3);
      const entry = put({ sizeBytes: size, key: "k".repeat(size % 40) });
      const { row, entryBytes } = encodeVersionRow(entry, value);
      expect(hex(entryBytes)).toBe(hex(encodeEntry(entry)));
      const decoded = decodeVersionRow(row);
      expect(decoded.entry).toEqual(entry);
      expect(hex(decoded.entryBytes)).toBe(hex(encodeEntry(entry)));
      expect(hex(decoded.value!)).toBe(hex(value));
      expect(decoded.separate).toBe(false);
    }
  });

  test("tombstones and separately stored values", () => {
    const gone = decodeVersionRow(encodeVersionRow(tombstone, null).row);
    expect(gone).toMatchObject({ entry: tombstone, value: null, separate: false });
    expect(hex(gone.entryBytes)).toBe(hex(encodeEntry(tombstone)));
    const big = put({ sizeBytes: 5000 });
    const separate = decodeVersionRow(encodeVersionRow(big, false).row);
    expect(separate).toMatchObject({ entry: big, value: null, separate: true });
    expect(hex(separate.entryBytes)).toBe(hex(encodeEntry(big)));
  });

  test("malformed version rows are corruption", () => {
    const { row } = encodeVersionRow(put(), Uint8Array.of(1, 2, 3));
    const fields = (entry: Entry) => [cborUint(entry.seq), entry.op === "put" ? 1 : 2, entry.key, entry.valueHash, entry.sizeBytes, entry.contentType, cborUint(entry.timestampMs)];
    const bad: Uint8Array[] = [
      row.subarray(0, row.length - 1),
      cbor.encode([fields(put()), Uint8Array.of(1, 2)]), // value size disagrees with the entry
      cbor.encode([fields(put()), null]), // a put without a value
      cbor.encode([fields(tombstone), Uint8Array.of(1)]), // a delete with a value
      cbor.encode([fields(put()).slice(0, 6), Uint8Array.of(1, 2, 3)]),
      cbor.encode([fields(put()), Uint8Array.of(1, 2, 3), 1]),
      cbor.encode({ entry: 1 }),
      Uint8Array.of(0xff),
    ];
    for (const bytes of bad) expect(() => decodeVersionRow(bytes)).toThrow(StorageCorruptionError);
  });
});

describe("chunk rows", () => {
  test("round-trip, and the writer closes chunks at the entry limit with consecutive first seqs", () => {
    const items = [{ version: 1, entryBytes: encodeEntry(put({ seq: 0 })) }, { version: 7, entryBytes: encodeEntry(tombstone) }];
    expect(decodeChunk(encodeChunk(items)).map((item) => ({ version: item.version, entry: hex(item.entryBytes) })))
      .toEqual(items.map((item) => ({ version: item.version, entry: hex(item.entryBytes) })));
    const writer = new ChunkWriter();
    const closed: Array<{ first: number; count: number }> = [];
    const total = 2 * CHUNK_ENTRIES_MAX + 5;
    for (let seq = 100; seq < 100 + total; seq++) {
      const done = writer.add(seq, { version: 1, entryBytes: encodeEntry(put({ seq })) });
      if (done) closed.push({ first: readKeyInteger(done.key, 1), count: decodeChunk(done.row).length });
    }
    const last = writer.flush()!;
    closed.push({ first: readKeyInteger(last.key, 1), count: decodeChunk(last.row).length });
    expect(closed).toEqual([{ first: 100, count: CHUNK_ENTRIES_MAX }, { first: 100 + CHUNK_ENTRIES_MAX, count: CHUNK_ENTRIES_MAX }, { first: 100 + 2 * CHUNK_ENTRIES_MAX, count: 5 }]);
    expect(writer.flush()).toBeUndefined();
    expect(() => writer.add(1, { version: 1, entryBytes: Uint8Array.of(1) })).not.toThrow();
    expect(() => writer.add(5, { version: 1, entryBytes: Uint8Array.of(1) })).toThrow("consecutive");
  });

  test("malformed chunk rows are corruption", () => {
    const bad = [
      cbor.encode([]), cbor.encode([[], [], new Uint8Array(0)]), cbor.encode([[1], [1]]), cbor.encode([[0], [1], Uint8Array.of(1)]),
      cbor.encode([[1], [0], new Uint8Array(0)]), cbor.encode([[1], [2], Uint8Array.of(1)]), cbor.encode([[1], [1], Uint8Array.of(1, 2)]),
      cbor.encode([[1, 1], [1], Uint8Array.of(1)]), cbor.encode([[1], [1], "x"]), Uint8Array.of(0x83),
    ];
    for (const bytes of bad) expect(() => decodeChunk(bytes)).toThrow(StorageCorruptionError);
  });
});
