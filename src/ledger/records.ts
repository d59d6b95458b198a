/**
 * Storage records of the ledger state machine: how each key range of the
 * storage port is laid out and decoded. Every record read back from storage
 * is shape-checked here before use; a bad record is corruption, not a 4xx.
 */
import { StorageCorruptionError } from "../storage/index.ts";
import { integerKey, KeyBuilder, stringKey, Tag } from "../storage/keys.ts";
import { cbor, decodeCbor, encodeEntryFramed, type Entry } from "./entry.ts";

/** The newest version of a key, as kept in the latest/{key} range. */
export interface LatestRecord {
  version: number;
  seq: number;
  deleted: boolean;
}

/** One version of a key, as kept in the version/{key}/{version} range. */
export interface VersionRecord {
  seq: number;
  timestampMs: number;
  /** null for a tombstone */
  contentType: string | null;
  /** null for a tombstone */
  value: Uint8Array | null;
}

/** One log position, as kept in the entry/{seq} range. */
export interface EntryRecord {
  entryBytes: Uint8Array;
  version: number;
}

/**
 * Merkle nodes below this level are not stored: a node of level L < 3 is
 * recomputed from its 2^L (at most 4) entries, read with one scan. This saves
 * 3 of every 4 node writes (levels 1 and 2 hold n/2 + n/4 of the n - 1
 * interior nodes) for a few extra entry reads per proof.
 */
export const MERKLE_STORED_LEVEL_MIN = 3;

export const entryKey = (seq: number): Uint8Array => integerKey(Tag.entry, seq);
export const latestKey = (key: string): Uint8Array => stringKey(Tag.latest, key);
export const versionKey = (key: string, version: number): Uint8Array => stringKey(Tag.version, key, version);
export const merkleKey = (level: number, index: number): Uint8Array => integerKey(Tag.merkle, level, index);

/** [start, end) of every version of `key`. */
export function versionRange(key: string): { start: Uint8Array; end: Uint8Array } {
  return {
    start: new KeyBuilder(Tag.version).string(key).build(),
    end: new KeyBuilder(Tag.version).stringPrefix(key).raw(0x00, 0x01).build(),
  };
}

/** [start, end) of the latest/{key} rows whose key starts with `prefix`. */
export function latestPrefixRange(prefix: string): { start: Uint8Array; end: Uint8Array } {
  return {
    start: new KeyBuilder(Tag.latest).stringPrefix(prefix).build(),
    end: new KeyBuilder(Tag.latest).stringPrefix(prefix).raw(0xff).build(),
  };
}

function corrupt(what: string): never {
  throw new StorageCorruptionError(`malformed ${what} record read back from storage`);
}

// Internal records are CBOR arrays through the shared cbor-x codec (the
// project's storage encoding). They are not hashed, so integers may come
// back as CBOR floats (cbor-x writes numbers >= 2^32 that way; exact below
// 2^53); every record is shape-checked on read.
//
//   latest  = [version, seq, deleted]
//   version = [seq, timestampMs, contentType | null, value | null]
//   entry   = [entry bytes, version]
const isUint = (value: unknown): value is number | bigint =>
  (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) ||
  (typeof value === "bigint" && value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER));

export function encodeLatest(record: LatestRecord): Uint8Array {
  return cbor.encode([record.version, record.seq, record.deleted]);
}

export function decodeLatest(bytes: Uint8Array): LatestRecord {
  const raw = decodeRecord(bytes, "latest");
  if (raw.length !== 3 || !isUint(raw[0]) || !isUint(raw[1]) || typeof raw[2] !== "boolean" || Number(raw[0]) < 1) corrupt("latest");
  return { version: Number(raw[0]), seq: Number(raw[1]), deleted: raw[2] };
}

export function encodeVersion(record: VersionRecord): Uint8Array {
  if ((record.contentType === null) !== (record.value === null)) {
    throw new Error("assertion: a version has both content type and value, or neither");
  }
  return cbor.encode([record.seq, record.timestampMs, record.contentType, record.value]);
}

/** Decode a version record; `value` is a copy, so readers may hand it on (HTTP bodies) without pinning storage's bytes. */
export function decodeVersion(bytes: Uint8Array): VersionRecord {
  const raw = decodeRecord(bytes, "version");
  if (raw.length !== 4 || !isUint(raw[0]) || !isUint(raw[1])) corrupt("version");
  const [, , contentType, value] = raw;
  const tombstone = contentType === null && value === null;
  if (!tombstone && (typeof contentType !== "string" || !(value instanceof Uint8Array))) corrupt("version");
  return {
    seq: Number(raw[0]),
    timestampMs: Number(raw[1]),
    contentType: contentType as string | null,
    value: value === null ? null : new Uint8Array(value as Uint8Array),
  };
}

/**
 * The entry record of `entry` (written at `version` of its key), and the
 * leaf hash input 0x00 ‖ entry bytes as an array of its own.
 */
export function encodeEntryRecord(entry: Entry, version: number): { record: Uint8Array; leafInput: Uint8Array } {
  const leafInput = encodeEntryFramed(entry, 1, 0);
  // leafInput[0] is already 0x00, the leaf prefix.
  return { record: cbor.encode([leafInput.subarray(1), version]), leafInput };
}

/** Decode an entry record. The entry itself is checked by decodeEntry. */
export function decodeEntryRecord(bytes: Uint8Array): EntryRecord & { leafInput: Uint8Array } {
  const raw = decodeRecord(bytes, "entry");
  if (raw.length !== 2 || !(raw[0] instanceof Uint8Array) || raw[0].length === 0 || !isUint(raw[1]) || Number(raw[1]) < 1) corrupt("entry");
  const leafInput = new Uint8Array(1 + raw[0].length);
  leafInput.set(raw[0], 1);
  return { entryBytes: leafInput.subarray(1), version: Number(raw[1]), leafInput };
}

function decodeRecord(bytes: Uint8Array, what: string): unknown[] {
  let raw: unknown;
  try {
    raw = decodeCbor(bytes);
  } catch {
    corrupt(what);
  }
  if (!Array.isArray(raw)) corrupt(what);
  return raw;
}
