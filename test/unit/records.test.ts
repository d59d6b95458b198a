import { describe, expect, test } from "bun:test";
import {
  decodeEntryRecord, decodeLatest, decodeVersion, encodeEntryRecord, encodeLatest, encodeVersion,
} from "../../src/ledger/records.ts";
import { encodeEntry, type Entry } from "../../src/ledger/entry.ts";
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
      () => decodeLatest(latest.subarray(1)),
      () => decodeLatest(Uint8Array.from([...latest.subarray(0, 16), 2])),
      () => decodeLatest(new Uint8Array(17)), // version 0
      () => decodeLatest(Uint8Array.from([0xff, ...latest.subarray(1)])), // not a safe integer
      () => decodeVersion(version.subarray(0, 16)),
      () => decodeVersion(Uint8Array.from([...version.subarray(0, 16), 2])),
      () => decodeVersion(Uint8Array.from([...version.subarray(0, 17), 0xff, 0xff])), // content type past the end
      () => decodeVersion(Uint8Array.from([...version.subarray(0, 16), 0, 1])), // tombstone with trailing bytes
      () => decodeVersion(Uint8Array.from([...version.subarray(0, 17), 0, 1, 0xff])), // content type not UTF-8
      () => decodeEntryRecord(record.subarray(1)),
      () => decodeEntryRecord(new Uint8Array(9)),
      () => decodeEntryRecord(Uint8Array.from([...record.subarray(0, record.length - 8), 0, 0, 0, 0, 0, 0, 0, 0])),
    ];
    for (const decode of bad) expect(decode).toThrow(StorageCorruptionError);
  });
});
