/**
 * Storage records of the ledger state machine: how each key range of the
 * storage port is laid out and decoded. Every record read back from storage
 * is shape-checked here before use; a bad record is corruption, not a 4xx.
 *
 * Layout (format 2), chosen so a put costs about one storage row:
 *
 *   version/{key}/{version} -> CBOR [entry, value]
 *       `entry` is the 7-field entry array itself, embedded, so the row holds
 *       the exact bytes hashed into the Merkle tree (bytes 1.. of the row up
 *       to the value item); `value` is the value (at most
 *       VALUE_INLINE_BYTES_MAX bytes), null for a tombstone, or false when the
 *       value is in value/{seq}. The newest version of a key is the last row
 *       of its range (one reverse scan), so there is no separate latest index.
 *   value/{seq}            -> the raw value bytes of a larger value
 *   chunk/{firstSeq}       -> CBOR [versions, entry lengths, entry bytes concatenated]
 *       the entries of consecutive seqs from firstSeq (at most
 *       CHUNK_ENTRIES_MAX / CHUNK_BYTES_MAX), for reading the log by seq.
 *   merkle/{level}/{index} -> 32-byte hash of a complete subtree, levels >= MERKLE_STORED_LEVEL_MIN
 *   meta/"format"          -> CBOR uint, LEDGER_FORMAT
 */
import { StorageCorruptionError } from "../storage/index.ts";
import { integerKey, KeyBuilder, keyBytes, stringKey, Tag } from "../storage/keys.ts";
import { cbor, decodeCbor, EntryDecodeError, entryFromFields, type Entry } from "./entry.ts";
import { encodeChunkRow, EntryWriter, valueItemBytes } from "./row-writer.ts";

/** Storage layout version written at first open; a data directory of another format is refused. */
export const LEDGER_FORMAT = 2;
/** Values up to this size live in their version row; larger ones in a value row of their own. */
export const VALUE_INLINE_BYTES_MAX = 1024;
/** Most entries in one chunk row. */
export const CHUNK_ENTRIES_MAX = 256;
/** Most entry bytes in one chunk row (a chunk closes once it reaches this). */
export const CHUNK_BYTES_MAX = 64 * 1024;
/**
 * Merkle nodes below this level are not stored: a node of level L < 5 is
 * recomputed from its 2^L (at most 16) entries, which sit in one or two chunk
 * rows. This stores 1 node per 16 entries instead of 1 per entry.
 */
export const MERKLE_STORED_LEVEL_MIN = 5;

/** The newest version of a key. */
export interface LatestRecord {
  version: number;
  seq: number;
  deleted: boolean;
}

/** One decoded version row. */
export interface VersionRow {
  entry: Entry;
  /** The exact entry bytes (a view into the row). */
  entryBytes: Uint8Array;
  /** The inline value; null for a tombstone or when `separate`. */
  value: Uint8Array | null;
  /** True when the value is in its own value/{seq} row. */
  separate: boolean;
}

/** One entry of a chunk row. */
export interface ChunkItem {
  version: number;
  entryBytes: Uint8Array;
}

export const versionKey = (key: string, version: number): Uint8Array => stringKey(Tag.version, key, version);
export const valueKey = (seq: number): Uint8Array => integerKey(Tag.value, seq);
export const chunkKey = (firstSeq: number): Uint8Array => integerKey(Tag.chunk, firstSeq);
export const merkleKey = (level: number, index: number): Uint8Array => integerKey(Tag.merkle, level, index);
export const FORMAT_KEY: Uint8Array = new KeyBuilder(Tag.meta).string("format").build();

/** [start, end) of every version of `key`: tag ‖ key ‖ 0x00 0x00 up to tag ‖ key ‖ 0x00 0x01. */
export function versionRange(key: string): { start: Uint8Array; end: Uint8Array } {
  const start = stringKey(Tag.version, key);
  // Copied by a loop: a native slice() call costs more than copying a short key.
  const end = keyBytes(start.length);
  for (let i = 0; i < start.length - 1; i++) end[i] = start[i]!;
  end[end.length - 1] = 0x01;
  return { start, end };
}

/** [start, end) of the version rows of every key starting with `prefix`. */
export function versionPrefixRange(prefix: string): { start: Uint8Array; end: Uint8Array } {
  return {
    start: new KeyBuilder(Tag.version).stringPrefix(prefix).build(),
    end: new KeyBuilder(Tag.version).stringPrefix(prefix).raw(0xff).build(),
  };
}

/** [start, end) of every chunk row. */
export const CHUNK_RANGE = { start: Uint8Array.of(Tag.chunk), end: Uint8Array.of(Tag.chunk + 1) } as const;

function corrupt(what: string): never {
  throw new StorageCorruptionError(`malformed ${what} record read back from storage`);
}

const rowWriter = new EntryWriter();

/**
 * The version row of `entry` with `value` (inline bytes, null for a
 * tombstone, false when stored separately), and the entry bytes as a view
 * into it: the row is array(2) = 0x82, then the entry array, then the value.
 */
export function encodeVersionRow(entry: Entry, value: Uint8Array | null | false): { row: Uint8Array; entryBytes: Uint8Array } {
  const length = rowWriter.write(entry);
  const row = rowWriter.versionRow(length, value);
  return { row, entryBytes: row.subarray(1, 1 + length) };
}

/** Decode a version row; checks its shape and that the value agrees with the entry. */
export function decodeVersionRow(bytes: Uint8Array): VersionRow {
  const raw = decodeRecord(bytes, "version");
  if (raw.length !== 2 || bytes[0] !== 0x82) corrupt("version");
  let entry: Entry;
  try {
    entry = entryFromFields(raw[0]);
  } catch (error) {
    if (error instanceof EntryDecodeError) corrupt("version");
    throw error;
  }
  const value = raw[1];
  const isPut = entry.op === "put";
  if (isPut ? !(value === false || (value instanceof Uint8Array && value.length === entry.sizeBytes)) : value !== null) corrupt("version");
  const stored = value as Uint8Array | null | false;
  return {
    entry,
    entryBytes: bytes.subarray(1, bytes.length - valueItemBytes(stored)),
    value: stored === false ? null : stored,
    separate: stored === false,
  };
}

/**
 * A chunk row of consecutive entries: CBOR [versions, entry lengths, entry
 * bytes concatenated] (one byte string for the chunk rather than one per
 * entry: fewer items to encode and decode).
 */
export function encodeChunk(items: readonly ChunkItem[]): Uint8Array {
  const writer = new ChunkWriter();
  items.forEach((item, i) => writer.append(i, item.version, item.entryBytes));
  return writer.flush()?.row ?? encodeChunkRow([], [], new Uint8Array(0), 0);
}

/** Decode a chunk row; every item has a version >= 1 and non-empty entry bytes (views into the row). */
export function decodeChunk(bytes: Uint8Array): ChunkItem[] {
  const raw = decodeRecord(bytes, "chunk");
  const [versions, lengths, joined] = raw;
  if (raw.length !== 3 || !Array.isArray(versions) || !Array.isArray(lengths) || !(joined instanceof Uint8Array)) corrupt("chunk");
  if (versions.length === 0 || versions.length !== lengths.length) corrupt("chunk");
  const items: ChunkItem[] = [];
  let at = 0;
  for (let i = 0; i < versions.length; i++) {
    const version = versions[i];
    const length = lengths[i];
    if (!Number.isSafeInteger(version) || version < 1 || !Number.isSafeInteger(length) || length < 1 || at + length > joined.length) corrupt("chunk");
    items.push({ version, entryBytes: joined.subarray(at, at + length) });
    at += length;
  }
  if (at !== joined.length) corrupt("chunk");
  return items;
}

/**
 * Collects the entries of one write group into chunk rows, closing a chunk
 * at CHUNK_ENTRIES_MAX entries or CHUNK_BYTES_MAX bytes. Entry bytes are
 * copied in as they are added (callers may pass views of a scratch buffer);
 * a flushed writer is empty and may be reused, keeping its buffer.
 */
export class ChunkWriter {
  #firstSeq = -1;
  #versions: number[] = [];
  #lengths: number[] = [];
  #joined = new Uint8Array(4096);
  #bytes = 0;

  /** Start empty, or extending a chunk already stored (which the next row then rewrites whole). */
  constructor(resume?: { firstSeq: number; items: readonly ChunkItem[] }) {
    if (resume === undefined) return;
    resume.items.forEach((item, i) => this.append(resume.firstSeq + i, item.version, item.entryBytes));
  }

  /** Add the entry at `seq`; returns a finished chunk row to store, if one closed. */
  add(seq: number, item: ChunkItem): { key: Uint8Array; row: Uint8Array } | undefined {
    return this.append(seq, item.version, item.entryBytes);
  }

  /** {@link add} without an item object. */
  append(seq: number, version: number, entryBytes: Uint8Array): { key: Uint8Array; row: Uint8Array } | undefined {
    const count = this.#versions.length;
    if (count === 0) this.#firstSeq = seq;
    else if (seq !== this.#firstSeq + count) throw new Error("assertion: chunk entries must have consecutive seqs");
    if (this.#bytes + entryBytes.length > this.#joined.length) {
      const grown = new Uint8Array(Math.max(2 * this.#joined.length, this.#bytes + entryBytes.length));
      grown.set(this.#joined.subarray(0, this.#bytes));
      this.#joined = grown;
    }
    this.#joined.set(entryBytes, this.#bytes);
    this.#bytes += entryBytes.length;
    this.#versions.push(version);
    this.#lengths.push(entryBytes.length);
    return count + 1 >= CHUNK_ENTRIES_MAX || this.#bytes >= CHUNK_BYTES_MAX ? this.flush() : undefined;
  }

  /** Drop the open chunk, if any (what a prepare that threw midway left), keeping the buffer for reuse. */
  clear(): void {
    this.#versions = [];
    this.#lengths = [];
    this.#bytes = 0;
  }

  /** The open chunk as a row, if it holds anything. */
  flush(): { key: Uint8Array; row: Uint8Array } | undefined {
    if (this.#versions.length === 0) return undefined;
    const done = { key: chunkKey(this.#firstSeq), row: encodeChunkRow(this.#versions, this.#lengths, this.#joined, this.#bytes) };
    this.#versions = [];
    this.#lengths = [];
    this.#bytes = 0;
    return done;
  }
}

export function encodeFormat(): Uint8Array {
  return cbor.encode(LEDGER_FORMAT);
}

/** The format number stored in meta/"format". */
export function decodeFormat(bytes: Uint8Array): number {
  let raw: unknown;
  try {
    raw = decodeCbor(bytes);
  } catch {
    corrupt("format");
  }
  if (!Number.isSafeInteger(raw)) corrupt("format");
  return raw as number;
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
