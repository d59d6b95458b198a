/**
 * Hand-written CBOR encoders for the write path's fixed record shapes: the
 * entry, the version row that embeds it and the chunk row. They produce
 * exactly the bytes cbor-x produces for the same fields (RFC 8949 shortest
 * heads; test/unit/row-writer.test.ts compares them on random inputs) at a
 * fraction of its cost, because the shapes are known. Anything outside the
 * shapes they know (text that is not pure ASCII, chunk numbers of 2^32 or
 * more) is encoded by cbor-x itself, so those rules stay cbor-x's own. They
 * must never produce bytes cbor-x would not: the entry bytes are hashed into
 * the Merkle tree.
 */
import { ByteArena } from "../storage/byte-arena.ts";
import { cbor, entryFields, EntryOp, type Entry } from "./entry.ts";

const UINT32_LIMIT = 0x1_0000_0000;
/** Entry lengths up to this get a cached view of the scratch buffer (no subarray per put). */
const VIEW_CACHE_BYTES_MAX = 4096;

/** CBOR major types, shifted into the head byte. */
const MAJOR_UINT = 0x00;
const MAJOR_BYTES = 0x40;
const MAJOR_TEXT = 0x60;
const MAJOR_ARRAY = 0x80;
const CBOR_FALSE = 0xf4;
const CBOR_NULL = 0xf6;

/** Bytes of a CBOR head carrying `n` (a non-negative safe integer). */
export function headBytes(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x1_0000 ? 3 : n < UINT32_LIMIT ? 5 : 9;
}

/** Write the shortest head of major type `major` carrying `n` at `at`; returns the offset after it. */
export function writeHead(out: Uint8Array, at: number, major: number, n: number): number {
  if (n < 24) {
    out[at] = major | n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = major | 24;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x1_0000) {
    out[at] = major | 25;
    out[at + 1] = n >>> 8;
    out[at + 2] = n & 0xff;
    return at + 3;
  }
  if (n < UINT32_LIMIT) {
    out[at] = major | 26;
    writeUint32(out, at + 1, n);
    return at + 5;
  }
  out[at] = major | 27;
  writeUint32(out, at + 1, Math.floor(n / UINT32_LIMIT));
  writeUint32(out, at + 5, n >>> 0);
  return at + 9;
}

function writeUint32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}

/** True when every code unit of `text` is ASCII: its UTF-8 is then one byte per unit. */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function writeAscii(out: Uint8Array, at: number, text: string): number {
  at = writeHead(out, at, MAJOR_TEXT, text.length);
  for (let i = 0; i < text.length; i++) out[at + i] = text.charCodeAt(i);
  return at + text.length;
}

/** Encoded size of the value item of a version row: the byte string, or one byte for null / false. */
export function valueItemBytes(value: Uint8Array | null | false): number {
  return value === null || value === false ? 1 : headBytes(value.length) + value.length;
}

/**
 * Encodes entries into one reused scratch buffer laid out as 0x00 ‖ entry,
 * so the leaf hash input (RFC 9162: SHA-256(0x00 ‖ entry)) is a view of it
 * with no copy. Views are cached per length: creating a typed-array view
 * costs more than hashing a short entry. Everything it hands out is valid
 * until the next `write`; callers copy what they keep. Version rows are new
 * arrays, small ones views of shared arena chunks.
 */
export class EntryWriter {
  #scratch = new Uint8Array(1024);
  /**
   * Version rows are one lifetime class: version rows are never overwritten,
   * and a store keeps every row it is given (memory, deno-kv) or none (fs-log
   * and SQLite copy what they keep), so a chunk never stays pinned by a few.
   */
  readonly #rows = new ByteArena();
  #leafViews: Array<Uint8Array | undefined> = [];
  #entryViews: Array<Uint8Array | undefined> = [];

  /** Encode `entry` (timestamp as given); returns the length of its bytes. */
  write(entry: Entry): number {
    const { seq, key, valueHash, sizeBytes, contentType, timestampMs } = entry;
    if (!isAscii(key) || (contentType !== null && !isAscii(contentType))) return this.#writeByCbor(entry);
    const length = 1 + headBytes(seq) + 1 + headBytes(key.length) + key.length + (valueHash === null ? 1 : headBytes(valueHash.length) + valueHash.length) +
      headBytes(sizeBytes) + (contentType === null ? 1 : headBytes(contentType.length) + contentType.length) + headBytes(timestampMs);
    const out = this.#reserve(length);
    out[1] = MAJOR_ARRAY | 7;
    let at = writeHead(out, 2, MAJOR_UINT, seq);
    out[at++] = EntryOp[entry.op];
    at = writeAscii(out, at, key);
    if (valueHash === null) out[at++] = CBOR_NULL;
    else {
      at = writeHead(out, at, MAJOR_BYTES, valueHash.length);
      out.set(valueHash, at);
      at += valueHash.length;
    }
    at = writeHead(out, at, MAJOR_UINT, sizeBytes);
    if (contentType === null) out[at++] = CBOR_NULL;
    else at = writeAscii(out, at, contentType);
    at = writeHead(out, at, MAJOR_UINT, timestampMs);
    if (at !== 1 + length) throw new Error(`assertion: entry encoded to ${at - 1} bytes, sized ${length}`);
    return length;
  }

  #writeByCbor(entry: Entry): number {
    const bytes = cbor.encode(entryFields(entry)) as Uint8Array;
    this.#reserve(bytes.length).set(bytes, 1);
    return bytes.length;
  }

  /** The scratch buffer with room for 0x00 ‖ `entryBytes` bytes. */
  #reserve(entryBytes: number): Uint8Array {
    if (this.#scratch.length < 1 + entryBytes) {
      this.#scratch = new Uint8Array(Math.max(2 * this.#scratch.length, 1 + entryBytes));
      this.#leafViews = [];
      this.#entryViews = [];
    }
    return this.#scratch;
  }

  /** 0x00 ‖ the entry last written (`length` bytes), the leaf hash input. */
  leafInput(length: number): Uint8Array {
    if (length > VIEW_CACHE_BYTES_MAX) return this.#scratch.subarray(0, 1 + length);
    return (this.#leafViews[length] ??= this.#scratch.subarray(0, 1 + length));
  }

  /** The bytes of the entry last written (`length` bytes). */
  entryBytes(length: number): Uint8Array {
    if (length > VIEW_CACHE_BYTES_MAX) return this.#scratch.subarray(1, 1 + length);
    return (this.#entryViews[length] ??= this.#scratch.subarray(1, 1 + length));
  }

  /**
   * The version row of the entry last written: CBOR array(2) [entry, value]
   * with `value` the inline bytes, null (tombstone) or false (stored apart).
   * An array the caller owns (no other row overlaps it).
   */
  versionRow(length: number, value: Uint8Array | null | false): Uint8Array {
    const row = this.#rows.take(1 + length + valueItemBytes(value));
    row[0] = MAJOR_ARRAY | 2;
    row.set(this.entryBytes(length), 1);
    const at = 1 + length;
    if (value === null) row[at] = CBOR_NULL;
    else if (value === false) row[at] = CBOR_FALSE;
    else row.set(value, writeHead(row, at, MAJOR_BYTES, value.length));
    return row;
  }
}

/**
 * A chunk row: CBOR [versions, entry lengths, entry bytes concatenated], the
 * first `total` bytes of `joined` being the concatenation. A new array.
 */
export function encodeChunkRow(versions: readonly number[], lengths: readonly number[], joined: Uint8Array, total: number): Uint8Array {
  const count = versions.length;
  let size = 1 + 2 * headBytes(count) + headBytes(total) + total;
  for (let i = 0; i < count; i++) {
    const version = versions[i]!;
    const length = lengths[i]!;
    // cbor-x writes numbers of 2^32 and more as floats: leave those to it.
    if (version >= UINT32_LIMIT || length >= UINT32_LIMIT) return cbor.encode([versions, lengths, joined.subarray(0, total)]) as Uint8Array;
    size += headBytes(version) + headBytes(length);
  }
  const row = new Uint8Array(size);
  row[0] = MAJOR_ARRAY | 3;
  let at = writeHead(row, 1, MAJOR_ARRAY, count);
  for (let i = 0; i < count; i++) at = writeHead(row, at, MAJOR_UINT, versions[i]!);
  at = writeHead(row, at, MAJOR_ARRAY, count);
  for (let i = 0; i < count; i++) at = writeHead(row, at, MAJOR_UINT, lengths[i]!);
  at = writeHead(row, at, MAJOR_BYTES, total);
  row.set(total === joined.length ? joined : joined.subarray(0, total), at);
  if (at + total !== size) throw new Error(`assertion: chunk row encoded to ${at + total} bytes, sized ${size}`);
  return row;
}
