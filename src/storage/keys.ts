/**
 * Tuple encoding of storage keys: every durable range (log entries, key
 * versions with their values, large values, Merkle nodes, metadata) is a
 * one-byte tag followed by order-preserving components, so a range scan over
 * a prefix walks exactly one logical table in its natural order.
 *
 * - integers: 8 bytes big-endian (unsigned, < 2^53), so byte order = numeric order;
 * - strings: UTF-8 with 0x00 escaped as 0x00 0xFF and a 0x00 0x00 terminator,
 *   so "a" < "a\0" < "ab" and no string is a prefix-collision of another.
 */

import { ByteArena } from "./byte-arena.ts";

const encoder = new TextEncoder();

/**
 * Where the hot-path key builders take their arrays. Keys are one lifetime
 * class: lookups drop them at once, and every adapter turns a committed key
 * into its own form (a latin1 string, a SQLite blob), so none keeps the array.
 */
const keyArena = new ByteArena();

/** Range tags. Values are fixed once data is written with them; a retired tag is never reused. */
export const Tag = {
  /** chunk/{firstSeq} -> the entries of consecutive seqs (layouts: src/ledger/records.ts) */
  chunk: 0x10,
  /** version/{key}/{version} -> [entry, value | null | false] */
  version: 0x11,
  // 0x12 was latest/{key} (format 1): retired.
  /** merkle/{level}/{index} -> 32-byte hash of a complete subtree (low levels are recomputed) */
  merkle: 0x13,
  // 0x14 was checkpoint/{treeSize} (never written): retired.
  /** meta/{name} -> CBOR value */
  meta: 0x15,
  /** value/{seq} -> raw bytes of a value too large to keep inline */
  value: 0x16,
  /** raft/... reserved for the replicated log */
  raft: 0x20,
} as const;

/** Largest integer a key component can hold (JS safe integer). */
export const KEY_INTEGER_MAX = Number.MAX_SAFE_INTEGER;

/** True when every code unit of `value` is ASCII, so its UTF-8 form is one byte per unit. */
function isAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Builds tuple keys in one growing buffer (hot path: several keys per write). */
export class KeyBuilder {
  #buffer = new Uint8Array(64);
  #length = 1;

  constructor(tag: number) {
    this.#buffer[0] = tag;
  }

  #reserve(extraBytes: number): void {
    if (this.#length + extraBytes <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#length + extraBytes));
    grown.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = grown;
  }

  /** Append an unsigned integer as 8 bytes big-endian. */
  integer(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`key integer out of range: ${value}`);
    this.#reserve(8);
    const high = Math.floor(value / 0x1_0000_0000);
    const low = value >>> 0;
    const buffer = this.#buffer;
    const at = this.#length;
    buffer[at] = high >>> 24;
    buffer[at + 1] = (high >>> 16) & 0xff;
    buffer[at + 2] = (high >>> 8) & 0xff;
    buffer[at + 3] = high & 0xff;
    buffer[at + 4] = low >>> 24;
    buffer[at + 5] = (low >>> 16) & 0xff;
    buffer[at + 6] = (low >>> 8) & 0xff;
    buffer[at + 7] = low & 0xff;
    this.#length += 8;
    return this;
  }

  /** Append a string, escaped and terminated. */
  string(value: string): this {
    this.stringPrefix(value);
    return this.raw(0x00, 0x00);
  }

  /** Append a string escaped but not terminated: the start of a prefix range. */
  stringPrefix(value: string): this {
    const ascii = isAscii(value);
    // UTF-8 needs at most 3 bytes per UTF-16 code unit; a NUL escape needs one more byte.
    this.#reserve(ascii ? value.length : value.length * 3);
    let buffer = this.#buffer;
    const start = this.#length;
    let written = value.length;
    if (ascii) for (let i = 0; i < value.length; i++) buffer[start + i] = value.charCodeAt(i);
    else written = encoder.encodeInto(value, buffer.subarray(start)).written;
    let zeros = 0;
    for (let i = start; i < start + written; i++) if (buffer[i] === 0x00) zeros++;
    if (zeros > 0) {
      this.#length = start + written;
      this.#reserve(zeros);
      buffer = this.#buffer;
      // Rare: spread the bytes out from the end so each NUL becomes 0x00 0xFF.
      let read = start + written - 1;
      let write = read + zeros;
      while (read >= start) {
        const byte = buffer[read--]!;
        if (byte === 0x00) buffer[write--] = 0xff;
        buffer[write--] = byte;
      }
    }
    this.#length = start + written + zeros;
    return this;
  }

  /** Append raw bytes (terminators, range ends such as 0xff). */
  raw(...bytes: number[]): this {
    this.#reserve(bytes.length);
    const buffer = this.#buffer;
    for (let i = 0; i < bytes.length; i++) buffer[this.#length + i] = bytes[i]!;
    this.#length += bytes.length;
    return this;
  }

  build(): Uint8Array {
    return this.#buffer.slice(0, this.#length);
  }
}

/**
 * `tag ‖ string(value)`, then `integer` when given: the same bytes as
 * KeyBuilder, built in one exact-size array when `value` is ASCII without NUL
 * (the hot case: one version key per write). The array is a view of a shared
 * buffer (see `keyArena`).
 */
export function stringKey(tag: number, value: string, integer?: number): Uint8Array {
  const length = value.length;
  for (let i = 0; i < length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0 || code > 0x7f) {
      const builder = new KeyBuilder(tag).string(value);
      return (integer === undefined ? builder : builder.integer(integer)).build();
    }
  }
  const out = keyArena.take(1 + length + 2 + (integer === undefined ? 0 : 8));
  out[0] = tag;
  for (let i = 0; i < length; i++) out[1 + i] = value.charCodeAt(i);
  // out[1 + length] and out[2 + length] stay 0x00 0x00: the string terminator.
  if (integer !== undefined) writeKeyInteger(out, 3 + length, integer);
  return out;
}

/** `tag ‖ integer ‖ ...` in one exact-size array (a view of a shared buffer, like {@link stringKey}'s). */
export function integerKey(tag: number, first: number, second?: number): Uint8Array {
  const out = keyArena.take(second === undefined ? 9 : 17);
  out[0] = tag;
  writeKeyInteger(out, 1, first);
  if (second !== undefined) writeKeyInteger(out, 9, second);
  return out;
}

/** Write `value` as 8 bytes big-endian at `offset` (same checks as KeyBuilder.integer). */
function writeKeyInteger(out: Uint8Array, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`key integer out of range: ${value}`);
  const high = Math.floor(value / 0x1_0000_0000);
  const low = value >>> 0;
  out[offset] = high >>> 24;
  out[offset + 1] = (high >>> 16) & 0xff;
  out[offset + 2] = (high >>> 8) & 0xff;
  out[offset + 3] = high & 0xff;
  out[offset + 4] = low >>> 24;
  out[offset + 5] = (low >>> 16) & 0xff;
  out[offset + 6] = (low >>> 8) & 0xff;
  out[offset + 7] = low & 0xff;
}

/** A zero-filled array for a key of `length` bytes, from the same shared buffers as {@link stringKey}'s. */
export function keyBytes(length: number): Uint8Array {
  return keyArena.take(length);
}

/** Read an 8-byte big-endian integer at `offset`. */
export function readKeyInteger(key: Uint8Array, offset: number): number {
  if (offset + 8 > key.length) throw new RangeError("key too short for an integer component");
  let high = 0;
  let low = 0;
  for (let i = 0; i < 4; i++) high = high * 256 + key[offset + i]!;
  for (let i = 4; i < 8; i++) low = low * 256 + key[offset + i]!;
  return high * 0x1_0000_0000 + low;
}

/** Decode a terminated string component starting at `offset`; returns it and the offset after it. */
export function readKeyString(key: Uint8Array, offset: number): { value: string; next: number } {
  const out: number[] = [];
  let i = offset;
  while (i < key.length) {
    const byte = key[i]!;
    if (byte !== 0x00) {
      out.push(byte);
      i++;
      continue;
    }
    const following = key[i + 1];
    if (following === 0xff) {
      out.push(0x00);
      i += 2;
    } else if (following === 0x00) {
      return { value: new TextDecoder().decode(Uint8Array.from(out)), next: i + 2 };
    } else {
      throw new RangeError(`bad string escape at offset ${i}`);
    }
  }
  throw new RangeError("unterminated string component");
}
