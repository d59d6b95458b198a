/**
 * Storage records of the ledger state machine: how each key range of the
 * storage port is laid out and decoded. Every record read back from storage
 * is shape-checked here before use; a bad record is corruption, not a 4xx.
 */
import { StorageCorruptionError } from "../storage/index.ts";
import { KeyBuilder, Tag } from "../storage/keys.ts";
import { cbor, decodeCbor } from "./entry.ts";

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

export const entryKey = (seq: number): Uint8Array => new KeyBuilder(Tag.entry).integer(seq).build();
export const latestKey = (key: string): Uint8Array => new KeyBuilder(Tag.latest).string(key).build();
export const versionKey = (key: string, version: number): Uint8Array =>
  new KeyBuilder(Tag.version).string(key).integer(version).build();
export const merkleKey = (level: number, index: number): Uint8Array =>
  new KeyBuilder(Tag.merkle).integer(level).integer(index).build();

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

// Internal records are not hashed, so integers may come back as CBOR floats
// (cbor-x writes numbers >= 2^32 that way); both are exact below 2^53.
const isUint = (value: unknown): boolean =>
  (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) || typeof value === "bigint";
const toNumber = (value: unknown): number => Number(value);

export function encodeLatest(record: LatestRecord): Uint8Array {
  return cbor.encode([record.version, record.seq, record.deleted]);
}

export function decodeLatest(bytes: Uint8Array): LatestRecord {
  const raw = decodeCbor(bytes);
  if (!Array.isArray(raw) || raw.length !== 3 || !isUint(raw[0]) || !isUint(raw[1]) || typeof raw[2] !== "boolean") {
    corrupt("latest");
  }
  return { version: toNumber(raw[0]), seq: toNumber(raw[1]), deleted: raw[2] };
}

export function encodeVersion(record: VersionRecord): Uint8Array {
  return cbor.encode([record.seq, record.timestampMs, record.contentType, record.value]);
}

export function decodeVersion(bytes: Uint8Array): VersionRecord {
  const raw = decodeCbor(bytes);
  if (!Array.isArray(raw) || raw.length !== 4 || !isUint(raw[0]) || !isUint(raw[1])) corrupt("version");
  const [, , contentType, value] = raw;
  const tombstone = contentType === null && value === null;
  if (!tombstone && (typeof contentType !== "string" || !(value instanceof Uint8Array))) corrupt("version");
  return {
    seq: toNumber(raw[0]),
    timestampMs: toNumber(raw[1]),
    contentType: contentType as string | null,
    value: value === null ? null : new Uint8Array(value as Uint8Array),
  };
}

export function encodeEntryRecord(record: EntryRecord): Uint8Array {
  return cbor.encode([record.entryBytes, record.version]);
}

export function decodeEntryRecord(bytes: Uint8Array): EntryRecord {
  const raw = decodeCbor(bytes);
  if (!Array.isArray(raw) || raw.length !== 2 || !(raw[0] instanceof Uint8Array) || !isUint(raw[1])) corrupt("entry");
  return { entryBytes: new Uint8Array(raw[0] as Uint8Array), version: toNumber(raw[1]) };
}
