/**
 * The hand-written encoders of the write path give exactly cbor-x's bytes:
 * entries (the hashed bytes), version rows and chunk rows, on random fields
 * and at every edge of a CBOR head (lengths and integers 23/24, 255/256,
 * 65535/65536, 2^32 - 1 / 2^32, large seqs and timestamps), empty and
 * non-ASCII text (which goes through cbor-x itself).
 */
import { describe, expect, test } from "bun:test";
import { cbor, encodeEntry, entryFields, type Entry } from "../../src/ledger/entry.ts";
import { encodeChunkRow, EntryWriter, headBytes, writeHead } from "../../src/ledger/row-writer.ts";
import { encodeVersionRow } from "../../src/ledger/records.ts";
import { sha256 } from "@noble/hashes/sha2.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const EDGES = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
const LENGTH_EDGES = [0, 1, 23, 24, 255, 256, 1000, 65535, 65536];

let seed = 20261202;
const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const ascii = (length: number) => Array.from({ length }, () => String.fromCharCode(32 + Math.floor(random() * 95))).join("");
const text = (length: number) => (random() < 0.15 ? `${ascii(length)}é€😀` : random() < 0.05 ? `a\u0000b${ascii(length)}` : ascii(length));
const uint = () => (random() < 0.5 ? pick(EDGES) : Math.floor(random() * 2 ** (1 + Math.floor(random() * 52))));

function randomEntry(): Entry {
  const put = random() < 0.8;
  return {
    seq: uint(),
    op: put ? "put" : "delete",
    key: text(random() < 0.3 ? pick(LENGTH_EDGES.filter((n) => n < 70000)) : Math.floor(random() * 40)),
    valueHash: put ? Uint8Array.from({ length: 32 }, () => Math.floor(random() * 256)) : null,
    sizeBytes: put ? uint() : 0,
    contentType: put ? text(random() < 0.3 ? pick([0, 23, 24, 255, 256]) : Math.floor(random() * 30)) : null,
    timestampMs: uint(),
  };
}

describe("hand-written CBOR heads", () => {
  test("are cbor-x's shortest integer heads at every edge", () => {
    for (const n of EDGES) {
      const out = new Uint8Array(9);
      const end = writeHead(out, 0, 0x00, n);
      expect(end).toBe(headBytes(n));
      expect(hex(out.subarray(0, end))).toBe(hex(cbor.encode(n >= 2 ** 32 ? BigInt(n) : n)));
    }
  });
});

describe("entry writer", () => {
  test("encodes entries byte for byte as cbor-x does, with the 0x00 leaf prefix before them", () => {
    const writer = new EntryWriter();
    for (let round = 0; round < 3000; round++) {
      const entry = randomEntry();
      const length = writer.write(entry);
      const expected = encodeEntry(entry);
      expect(hex(writer.entryBytes(length))).toBe(hex(expected));
      const leafInput = writer.leafInput(length);
      expect(leafInput[0]).toBe(0);
      expect(hex(leafInput.subarray(1))).toBe(hex(expected));
    }
  });

  test("version rows are cbor-x's [entry, value] for inline values of every head size, tombstones and values stored apart", () => {
    const writer = new EntryWriter();
    for (let round = 0; round < 500; round++) {
      const entry = randomEntry();
      const value = entry.op === "delete" ? null : random() < 0.2 ? false : new Uint8Array(pick(LENGTH_EDGES)).fill(round & 0xff);
      const length = writer.write(entry);
      const row = writer.versionRow(length, value);
      expect(hex(row)).toBe(hex(cbor.encode([entryFields(entry), value])));
      expect(hex(encodeVersionRow(entry, value).row)).toBe(hex(row));
    }
  });

  test("a long entry (beyond the view cache) and a growing scratch keep the bytes right", () => {
    const writer = new EntryWriter();
    for (const keyLength of [10, 5000, 100_000, 20]) {
      const entry: Entry = { seq: 7, op: "put", key: "k".repeat(keyLength), valueHash: sha256(Uint8Array.of(1)), sizeBytes: 1, contentType: "", timestampMs: 1763790000000 };
      const length = writer.write(entry);
      expect(hex(writer.entryBytes(length))).toBe(hex(encodeEntry(entry)));
      expect(hex(writer.leafInput(length).subarray(1))).toBe(hex(encodeEntry(entry)));
    }
  });
});

describe("chunk rows", () => {
  test("are cbor-x's [versions, lengths, joined bytes] for every count and size edge", () => {
    for (let round = 0; round < 300; round++) {
      const count = pick([0, 1, 23, 24, 25, 100, 255, 256]);
      const versions = Array.from({ length: count }, () => (random() < 0.02 ? 2 ** 32 + 5 : pick([1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1])));
      const lengths = Array.from({ length: count }, () => pick([1, 23, 24, 255, 256, 300]));
      const total = lengths.reduce((sum, n) => sum + n, 0);
      const joined = new Uint8Array(total + pick([0, 17])).fill(round & 0xff);
      const expected = cbor.encode([versions, lengths, joined.subarray(0, total)]);
      expect(hex(encodeChunkRow(versions, lengths, joined, total))).toBe(hex(expected));
    }
  });
});
