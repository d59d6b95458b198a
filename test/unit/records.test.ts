import { describe, expect, test } from "bun:test";
import {
  decodeEntryRecord, decodeLatest, decodeVersion, encodeEntryRecord, encodeLatest, encodeVersion,
} from "../../src/ledger/records.ts";
import { cbor, encodeEntry, type Entry } from "../../src/ledger/entry.ts";
import { StorageCorruptionError } from "../../src/storage/index.ts";

const entry: Entry = {
  seq: 2 ** 40, op: "put", key: "k", valueHash: new Uint8Array(32).fill(7), sizeBytes: 3, contentType: "text/plain", timestampMs: 1763790000000,
};

describe("internal storage records", () => {
  test("latest records round-trip", () => {
    for (const record of [{ version: 1, seq: 0, deleted: false }, { version: Number.MAX_SAFE_INTEGER, seq: 2 ** 33, deleted: true }]) {
      expect(decodeLatest(encodeLatest(record))).toEqual(record);
    }
  });

  test("version records round-trip, tombstones and any content type included", () => {
    const records = [
      { seq: 5, timestampMs: 1763790000000, contentType: "text/plain", value: Uint8Array.from([1, 2, 3]) },
      { seq: 6, timestampMs: 0, contentType: "", value: new Uint8Array(0) },
      { seq: 7, timestampMs: 9, contentType: "text/plain; name=日本 é", value: new Uint8Array(5000).fill(9) },
      { seq: 8, timestampMs: 10, contentType: null, value: null },
    ];
    for (const record of records) expect(decodeVersion(encodeVersion(record))).toEqual(record);
  });

  test("entry records hold the exact entry bytes, and their leaf input is 0x00 || entry", () => {
    const { record, leafInput } = encodeEntryRecord(entry, 12);
    const decoded = decodeEntryRecord(record);
    expect(Buffer.from(decoded.entryBytes).equals(Buffer.from(encodeEntry(entry)))).toBe(true);
    expect(decoded.version).toBe(12);
    expect(Buffer.from(leafInput).equals(Buffer.from([0, ...encodeEntry(entry)]))).toBe(true);
    expect(Buffer.from(decoded.leafInput).equals(Buffer.from(leafInput))).toBe(true);
  });

  test("malformed records read back from storage are corruption", () => {
    const latest = encodeLatest({ version: 1, seq: 0, deleted: false });
    const version = encodeVersion({ seq: 5, timestampMs: 1, contentType: "text/plain", value: Uint8Array.from([1]) });
    const { record } = encodeEntryRecord(entry, 1);
    const bad: Array<() => unknown> = [
      () => decodeLatest(latest.subarray(0, latest.length - 1)),
      () => decodeLatest(cbor.encode([1, 0, "yes"])),
      () => decodeLatest(cbor.encode([0, 0, false])), // version 0
      () => decodeLatest(cbor.encode([2n ** 60n, 0, false])), // not a safe integer
      () => decodeLatest(cbor.encode({ version: 1 })),
      () => decodeVersion(version.subarray(0, version.length - 1)),
      () => decodeVersion(cbor.encode([5, 1, "text/plain", null])), // content type without a value
      () => decodeVersion(cbor.encode([5, 1, null, Uint8Array.from([1])])),
      () => decodeVersion(cbor.encode([5, -1, null, null])),
      () => decodeEntryRecord(record.subarray(1)),
      () => decodeEntryRecord(cbor.encode([new Uint8Array(0), 1])),
      () => decodeEntryRecord(cbor.encode([Uint8Array.from([1]), 0])),
      () => decodeEntryRecord(Uint8Array.from([0xff])),
    ];
    for (const decode of bad) expect(decode).toThrow(StorageCorruptionError);
  });
});
