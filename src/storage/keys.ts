/**
 * Tuple encoding of storage keys: every durable range (log entries, key
 * versions, latest-version index, Merkle nodes, checkpoints, metadata) is a
 * one-byte tag followed by order-preserving components, so a range scan over
 * a prefix walks exactly one logical table in its natural order.
 *
 * - integers: 8 bytes big-endian (unsigned, < 2^53), so byte order = numeric order;
 * - strings: UTF-8 with 0x00 escaped as 0x00 0xFF and a 0x00 0x00 terminator,
 *   so "a" < "a\0" < "ab" and no string is a prefix-collision of another.
 */

const encoder = new TextEncoder();

/** Range tags. Values are fixed once data is written with them. */
export const Tag = {
  /** entry/{seq} -> CBOR [entryBytes, version] */
  entry: 0x10,
  /** version/{key}/{version} -> CBOR [seq, contentType | null, value | null] */
  version: 0x11,
  /** latest/{key} -> CBOR [version, seq, deleted] */
  latest: 0x12,
  /** merkle/{level}/{index} -> 32-byte hash of a complete subtree */
  merkle: 0x13,
  /** checkpoint/{treeSize} -> signed note text */
  checkpoint: 0x14,
  /** meta/{name} -> CBOR value */
  meta: 0x15,
  /** raft/... reserved for the replicated log */
  raft: 0x20,
} as const;

/** Largest integer a key component can hold (JS safe integer). */
export const KEY_INTEGER_MAX = Number.MAX_SAFE_INTEGER;

/** Builds tuple keys without intermediate arrays where it can. */
export class KeyBuilder {
  #bytes: number[] = [];

  constructor(tag: number) {
    this.#bytes.push(tag);
  }

  /** Append an unsigned integer as 8 bytes big-endian. */
  integer(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`key integer out of range: ${value}`);
    const high = Math.floor(value / 0x1_0000_0000);
    const low = value >>> 0;
    this.#bytes.push(
      (high >>> 24) & 0xff, (high >>> 16) & 0xff, (high >>> 8) & 0xff, high & 0xff,
      (low >>> 24) & 0xff, (low >>> 16) & 0xff, (low >>> 8) & 0xff, low & 0xff,
    );
    return this;
  }

  /** Append a string, escaped and terminated. */
  string(value: string): this {
    this.stringPrefix(value);
    this.#bytes.push(0x00, 0x00);
    return this;
  }

  /** Append a string escaped but not terminated: the start of a prefix range. */
  stringPrefix(value: string): this {
    for (const byte of encoder.encode(value)) {
      if (byte === 0x00) this.#bytes.push(0x00, 0xff);
      else this.#bytes.push(byte);
    }
    return this;
  }

  /** Append raw bytes (for range ends such as 0xff). */
  raw(...bytes: number[]): this {
    this.#bytes.push(...bytes);
    return this;
  }

  build(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
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
