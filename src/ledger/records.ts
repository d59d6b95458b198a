/**
 * Storage records of the ledger state machine: how each key range of the
 * storage port is laid out and decoded. Every record read back from storage
 * is shape-checked here before use; a bad record is corruption, not a 4xx.
 */
import { StorageCorruptionError } from "../storage/index.ts";
import { integerKey, KeyBuilder, stringKey, Tag } from "../storage/keys.ts";
import { encodeEntryFramed, type Entry } from "./entry.ts";

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

// Internal records are not hashed, so they use fixed binary layouts instead
// of CBOR (cheaper to write on every put). Integers are 8 bytes big-endian
// and must read back as safe integers; every layout is checked on read.
//
//   latest  = version(8) ‖ seq(8) ‖ deleted(1: 0 or 1)                       17 bytes
//   version = seq(8) ‖ timestampMs(8) ‖ 0x00                                 tombstone, 17 bytes
//           | seq(8) ‖ timestampMs(8) ‖ 0x01 ‖ ctLength(2) ‖ contentType UTF-8 ‖ value
//   entry   = 0x00 ‖ entry bytes ‖ version(8)
// The entry record starts with RFC 9162's leaf prefix 0x00, so its first
// 1 + entry-length bytes are exactly what the leaf hash covers: no copy.
const UINT_BYTES = 8;
const LATEST_BYTES = 17;
const VERSION_HEAD_BYTES = 17;
const CONTENT_TYPE_BYTES_MAX = 0xffff;
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

function writeUint(out: Uint8Array, at: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`record integer out of range: ${value}`);
  const high = Math.floor(value / 0x1_0000_0000);
  const low = value >>> 0;
  out[at] = high >>> 24;
  out[at + 1] = (high >>> 16) & 0xff;
  out[at + 2] = (high >>> 8) & 0xff;
  out[at + 3] = high & 0xff;
  out[at + 4] = low >>> 24;
  out[at + 5] = (low >>> 16) & 0xff;
  out[at + 6] = (low >>> 8) & 0xff;
  out[at + 7] = low & 0xff;
}

/** The 8-byte integer at `at`, or -1 when it is not a safe integer (corruption). */
function readUint(bytes: Uint8Array, at: number): number {
  const high = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
  if (high > 0x1f_ffff) return -1;
  const low = ((bytes[at + 4]! << 24) | (bytes[at + 5]! << 16) | (bytes[at + 6]! << 8) | bytes[at + 7]!) >>> 0;
  return high * 0x1_0000_0000 + low;
}

export function encodeLatest(record: LatestRecord): Uint8Array {
  const out = new Uint8Array(LATEST_BYTES);
  writeUint(out, 0, record.version);
  writeUint(out, 8, record.seq);
  out[16] = record.deleted ? 1 : 0;
  return out;
}

export function decodeLatest(bytes: Uint8Array): LatestRecord {
  if (bytes.length !== LATEST_BYTES || bytes[16]! > 1) corrupt("latest");
  const version = readUint(bytes, 0);
  const seq = readUint(bytes, 8);
  if (version < 1 || seq < 0) corrupt("latest");
  return { version, seq, deleted: bytes[16] === 1 };
}

export function encodeVersion(record: VersionRecord): Uint8Array {
  const { contentType, value } = record;
  if ((contentType === null) !== (value === null)) throw new Error("assertion: a version has both content type and value, or neither");
  if (contentType === null || value === null) {
    const out = new Uint8Array(VERSION_HEAD_BYTES);
    writeUint(out, 0, record.seq);
    writeUint(out, 8, record.timestampMs);
    return out;
  }
  const ascii = isAscii(contentType);
  const typeBytes = ascii ? undefined : encoder.encode(contentType);
  const typeLength = typeBytes === undefined ? contentType.length : typeBytes.length;
  if (typeLength > CONTENT_TYPE_BYTES_MAX) throw new RangeError(`content type of ${typeLength} bytes does not fit a version record`);
  const out = new Uint8Array(VERSION_HEAD_BYTES + 2 + typeLength + value.length);
  writeUint(out, 0, record.seq);
  writeUint(out, 8, record.timestampMs);
  out[16] = 1;
  out[17] = typeLength >>> 8;
  out[18] = typeLength & 0xff;
  if (typeBytes === undefined) for (let i = 0; i < typeLength; i++) out[19 + i] = contentType.charCodeAt(i);
  else out.set(typeBytes, 19);
  out.set(value, 19 + typeLength);
  return out;
}

/** Decode a version record; `value` is a copy, so readers may hand it on (HTTP bodies) without pinning storage's bytes. */
export function decodeVersion(bytes: Uint8Array): VersionRecord {
  if (bytes.length < VERSION_HEAD_BYTES) corrupt("version");
  const seq = readUint(bytes, 0);
  const timestampMs = readUint(bytes, 8);
  if (seq < 0 || timestampMs < 0) corrupt("version");
  const kind = bytes[16];
  if (kind === 0) {
    if (bytes.length !== VERSION_HEAD_BYTES) corrupt("version");
    return { seq, timestampMs, contentType: null, value: null };
  }
  if (kind !== 1 || bytes.length < VERSION_HEAD_BYTES + 2) corrupt("version");
  const typeEnd = VERSION_HEAD_BYTES + 2 + ((bytes[17]! << 8) | bytes[18]!);
  if (typeEnd > bytes.length) corrupt("version");
  return { seq, timestampMs, contentType: decodeContentType(bytes.subarray(19, typeEnd)), value: bytes.slice(typeEnd) };
}

function decodeContentType(bytes: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i]! > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return corrupt("version");
  }
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * The entry record of `entry` (written at `version` of its key), and the
 * leaf hash input 0x00 ‖ entry bytes as an array of its own: a subarray of a
 * fresh typed array costs JSC more than this copy of ~100 bytes.
 */
export function encodeEntryRecord(entry: Entry, version: number): { record: Uint8Array; leafInput: Uint8Array } {
  const leafInput = encodeEntryFramed(entry, 1, 0);
  // leafInput[0] is already 0x00, the leaf prefix.
  const record = new Uint8Array(leafInput.length + UINT_BYTES);
  record.set(leafInput);
  writeUint(record, leafInput.length, version);
  return { record, leafInput };
}

/** Decode an entry record; `entryBytes` and `leafInput` are views into `bytes`. The entry itself is checked by decodeEntry. */
export function decodeEntryRecord(bytes: Uint8Array): EntryRecord & { leafInput: Uint8Array } {
  if (bytes.length < 2 + UINT_BYTES || bytes[0] !== 0x00) corrupt("entry");
  const version = readUint(bytes, bytes.length - UINT_BYTES);
  if (version < 1) corrupt("entry");
  const leafInput = bytes.subarray(0, bytes.length - UINT_BYTES);
  return { entryBytes: leafInput.subarray(1), version, leafInput };
}
