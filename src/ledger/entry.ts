/**
 * The ledger entry: the exact bytes that are hashed into the Merkle tree.
 * Its encoding is fixed once released, so any client can rebuild it byte for
 * byte from what the API returns and check the leaf hash itself:
 *
 *   CBOR array(7) [seq, op, key, valueHash, sizeBytes, contentType, timestampMs]
 *
 * - seq: unsigned integer, dense from 0
 * - op: 1 = put, 2 = delete (tombstone)
 * - key: text string (UTF-8)
 * - valueHash: byte string of 32 bytes (SHA-256 of the value), null for delete
 * - sizeBytes: unsigned integer, value length (0 for delete)
 * - contentType: text string, null for delete
 * - timestampMs: unsigned integer, milliseconds since the Unix epoch
 *
 * Integers use the shortest CBOR head (RFC 8949 preferred serialization);
 * nothing else (no tags, no floats, no maps) appears.
 */
// The subpath entries are cbor-x without its native string extractor
// (cbor-extract), which mis-decodes UTF-8 text on Bun 1.4 and can crash the
// process. Nothing in the project may import the "cbor-x" root: it would
// switch the shared decoder to the native path (test/unit/entry.test.ts).
import { Decoder } from "cbor-x/decode";
import { Encoder } from "cbor-x/encode";

/** Operation codes inside an entry. Fixed once released. */
export const EntryOp = { put: 1, delete: 2 } as const;
export type EntryOpName = keyof typeof EntryOp;

/** A decoded ledger entry. */
export interface Entry {
  seq: number;
  op: EntryOpName;
  key: string;
  /** SHA-256 of the value; null for a delete. */
  valueHash: Uint8Array | null;
  sizeBytes: number;
  /** Content type of the value; null for a delete. */
  contentType: string | null;
  timestampMs: number;
}

/** Thrown when bytes do not decode to a well-formed entry. */
export class EntryDecodeError extends Error {
  constructor(message: string) {
    super(`malformed ledger entry: ${message}`);
    this.name = "EntryDecodeError";
  }
}

const cborOptions = { useRecords: false, tagUint8Array: false, variableMapSize: true, mapsAsObjects: false } as const;
/** Shared deterministic CBOR codec for everything the ledger stores. */
export const cbor = new Encoder(cborOptions as ConstructorParameters<typeof Encoder>[0]);

const decoder = new Decoder(cborOptions as ConstructorParameters<typeof Decoder>[0]);

const UINT32_LIMIT = 0x1_0000_0000;

/** cbor-x writes numbers >= 2^32 as floats; a BigInt gets the uint64 head instead. */
export function cborUint(value: number): number | bigint {
  return value < UINT32_LIMIT ? value : BigInt(value);
}

function asSafeUint(value: unknown, field: string): number {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new EntryDecodeError(`${field} is not an unsigned integer`);
  return n;
}

/** The entry as the CBOR array its encoding is made of, integers >= 2^32 as BigInt so they get an integer head. */
export function entryFields(entry: Entry): unknown[] {
  return [cborUint(entry.seq), EntryOp[entry.op], entry.key, entry.valueHash, cborUint(entry.sizeBytes), entry.contentType, cborUint(entry.timestampMs)];
}

/** Encode an entry deterministically. */
export function encodeEntry(entry: Entry): Uint8Array {
  return cbor.encode(entryFields(entry));
}

/**
 * Validate a decoded entry array (from {@link decodeEntry} or an entry
 * embedded in a storage record) and turn it into an Entry. Does not check
 * that the bytes it came from were canonical.
 */
export function entryFromFields(raw: unknown): Entry {
  if (!Array.isArray(raw) || raw.length !== 7) throw new EntryDecodeError("not an array of 7 fields");
  const [seq, op, key, valueHash, sizeBytes, contentType, timestampMs] = raw;
  const opName = op === EntryOp.put ? "put" : op === EntryOp.delete ? "delete" : undefined;
  if (opName === undefined) throw new EntryDecodeError(`unknown op ${String(op)}`);
  if (typeof key !== "string") throw new EntryDecodeError("key is not a string");
  const isPut = opName === "put";
  if (isPut ? !(valueHash instanceof Uint8Array && valueHash.length === 32) : valueHash !== null) {
    throw new EntryDecodeError("bad valueHash");
  }
  if (isPut ? typeof contentType !== "string" : contentType !== null) throw new EntryDecodeError("bad contentType");
  return {
    seq: asSafeUint(seq, "seq"),
    op: opName,
    key,
    valueHash: isPut ? (valueHash as Uint8Array) : null,
    sizeBytes: asSafeUint(sizeBytes, "sizeBytes"),
    contentType: contentType as string | null,
    timestampMs: asSafeUint(timestampMs, "timestampMs"),
  };
}

/** Decode and validate entry bytes; rejects anything `encodeEntry` would not produce. */
export function decodeEntry(bytes: Uint8Array): Entry {
  let raw: unknown;
  try {
    raw = decoder.decode(bytes);
  } catch (error) {
    throw new EntryDecodeError(String(error));
  }
  const entry = entryFromFields(raw);
  // Only the canonical encoding is an entry: a second encoding of the same
  // fields would hash to a different leaf.
  const canonical = encodeEntry(entry);
  if (canonical.length !== bytes.length) throw new EntryDecodeError("not in canonical encoding");
  for (let i = 0; i < bytes.length; i++) {
    if (canonical[i] !== bytes[i]) throw new EntryDecodeError("not in canonical encoding");
  }
  return entry;
}

/** Decode any CBOR value written with {@link cbor}. */
export function decodeCbor(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}
