/**
 * Read side of the ledger: values, versions, history, key listing, the raw
 * log, proofs and checkpoints, all over published (durable) state only.
 * A bounded hot cache keeps the newest record (and small values) of recently
 * written or read keys so a GET of a hot key costs no storage read.
 */
import { compareBytes, type Storage, StorageCorruptionError } from "../storage/index.ts";
import { KeyBuilder, Tag, readKeyInteger, readKeyString } from "../storage/keys.ts";
import { bytesEqual, consistencyProof, inclusionProof, nodeHash, rootAt, type Hasher, type NodeReader } from "../merkle/index.ts";
import { decodeEntry, type Entry } from "./entry.ts";
import { KeyNotFoundError, SeqNotFoundError, TreeSizeError, VersionNotFoundError } from "./errors.ts";
import {
  decodeEntryRecord, decodeLatest, decodeVersion, entryKey, latestKey, latestPrefixRange, MERKLE_STORED_LEVEL_MIN, merkleKey, versionKey,
  versionRange, type LatestRecord,
} from "./records.ts";
import { type CheckpointIssuer, type SignedCheckpoint } from "./checkpoints.ts";

/** Newest state of a key kept in memory. `value` is null for tombstones and for values too big to cache. */
export interface HotRecord {
  latest: LatestRecord;
  timestampMs: number;
  contentType: string | null;
  value: Uint8Array | null;
}

/** One version of a key as readers see it. */
export interface ValueView {
  key: string;
  version: number;
  seq: number;
  timestampMs: number;
  contentType: string;
  value: Uint8Array;
}

/** One row of a key's history. */
export interface HistoryItem {
  version: number;
  seq: number;
  timestampMs: number;
  deleted: boolean;
  sizeBytes: number;
}

/** One log position with its exact entry bytes. */
export interface LogItem {
  entry: Entry;
  entryBytes: Uint8Array;
  version: number;
  leafHash: Uint8Array;
}

/** An entry as another replica needs it to append it verbatim: its exact bytes, the key version it wrote, its value. */
export interface DecidedEntry {
  entryBytes: Uint8Array;
  version: number;
  /** The value of a put; null for a delete. */
  value: Uint8Array | null;
}

/** A page of results and the cursor of the next page (undefined when done). */
export interface Page<T, C> {
  items: T[];
  next: C | undefined;
}

/** Everything a key proof carries (see API.md, `GET /v1/proof/key/{key}`). */
export interface KeyProof {
  key: string;
  version: number;
  item: LogItem;
  treeSize: number;
  rootHash: Uint8Array;
  proof: Uint8Array[];
  checkpoint: SignedCheckpoint;
}

/** Rows a single list call may scan past (deleted keys) before it returns a short page. */
export const LIST_SCAN_ROWS_MAX = 10_000;
/** Most keys the hot cache holds, whatever their size. */
export const HOT_ENTRIES_MAX = 200_000;

interface ReaderOptions {
  storage: Storage;
  hasher: Hasher;
  checkpoints: CheckpointIssuer;
  treeSize: number;
  rootHash: Uint8Array;
  hotValueBytesMax: number;
  hotCacheBytesMax: number;
}

export class LedgerReader {
  protected readonly storage: Storage;
  readonly hasher: Hasher;
  readonly checkpoints: CheckpointIssuer;
  #treeSize: number;
  #rootHash: Uint8Array;
  readonly #hot = new Map<string, HotRecord>();
  #hotBytes = 0;
  readonly #hotValueBytesMax: number;
  readonly #hotCacheBytesMax: number;
  // Bumped on every publish: a storage read that started before a publish
  // must not put its (possibly older) result into the hot cache.
  #generation = 0;

  protected constructor(options: ReaderOptions) {
    this.storage = options.storage;
    this.hasher = options.hasher;
    this.checkpoints = options.checkpoints;
    this.#treeSize = options.treeSize;
    this.#rootHash = options.rootHash;
    this.#hotValueBytesMax = options.hotValueBytesMax;
    this.#hotCacheBytesMax = options.hotCacheBytesMax;
  }

  /** Number of entries in the stored log (= last seq + 1). */
  static async storedTreeSize(storage: Storage): Promise<number> {
    const last = await storage.scan({ start: new KeyBuilder(Tag.entry).build(), end: new KeyBuilder(Tag.entry + 1).build(), limit: 1, reverse: true });
    return last.length === 0 ? 0 : readKeyInteger(last[0]!.key, 1) + 1;
  }

  /**
   * Merkle node reads over the storage port. Nodes from level
   * MERKLE_STORED_LEVEL_MIN up are stored; lower ones (leaves included) are
   * recomputed from the stored entries they cover, which saves most node
   * writes. A missing node or entry is corruption.
   */
  static nodeReader(storage: Storage, hasher: Hasher): NodeReader {
    return {
      async getNodes(ids) {
        return Promise.all(
          ids.map(async ({ level, index }) => {
            if (level < MERKLE_STORED_LEVEL_MIN) return subtreeFromEntries(storage, hasher, level, index);
            const hash = await storage.get(merkleKey(level, index));
            if (hash === undefined || hash.length !== 32) {
              throw new StorageCorruptionError(`Merkle node (level ${level}, index ${index}) missing or malformed`);
            }
            return hash;
          }),
        );
      },
    };
  }

  /** Published tree size: every entry below it is durable and readable. */
  get treeSize(): number {
    return this.#treeSize;
  }

  /** Root hash at the published tree size. */
  get rootHash(): Uint8Array {
    return this.#rootHash;
  }

  /** Publish a durable group: `hot[i]` is the new record of `entries[i].key` (later entries win). */
  protected publishState(treeSize: number, rootHash: Uint8Array, entries: readonly Entry[], hot: readonly HotRecord[]): void {
    this.#generation++;
    this.#treeSize = treeSize;
    this.#rootHash = rootHash;
    for (let i = 0; i < entries.length; i++) this.#remember(entries[i]!.key, hot[i]!);
  }

  #remember(key: string, record: HotRecord): void {
    const cached = record.value !== null && record.value.length <= this.#hotValueBytesMax ? record : { ...record, value: null };
    const previous = this.#hot.get(key);
    if (previous !== undefined) {
      this.#hotBytes -= key.length + (previous.value?.length ?? 0) + 64;
      this.#hot.delete(key);
    }
    this.#hot.set(key, cached);
    this.#hotBytes += key.length + (cached.value?.length ?? 0) + 64;
    if (this.#hotBytes <= this.#hotCacheBytesMax && this.#hot.size <= HOT_ENTRIES_MAX) return;
    // Map iteration is insertion order, so the first keys are the least recently written.
    for (const [oldKey, old] of this.#hot) {
      if (this.#hotBytes <= this.#hotCacheBytesMax && this.#hot.size <= HOT_ENTRIES_MAX) break;
      this.#hot.delete(oldKey);
      this.#hotBytes -= oldKey.length + (old.value?.length ?? 0) + 64;
    }
  }

  /** The newest record of `key` if the hot cache has it; undefined when it must be read. */
  protected cachedLatest(key: string): LatestRecord | undefined {
    return this.#hot.get(key)?.latest;
  }

  /** The newest record of `key` in published state, or null if it never existed. */
  protected async latest(key: string): Promise<LatestRecord | null> {
    const hot = this.#hot.get(key);
    if (hot !== undefined) return hot.latest;
    const generation = this.#generation;
    const bytes = await this.storage.get(latestKey(key));
    if (bytes === undefined) return null;
    const latest = decodeLatest(bytes);
    if (generation === this.#generation && !this.#hot.has(key)) {
      this.#remember(key, { latest, timestampMs: 0, contentType: null, value: null });
    }
    return latest;
  }

  /**
   * The newest records of `keys` in published state (null: never existed),
   * read in parallel; records read are remembered in the hot cache unless a
   * publish happened meanwhile.
   */
  protected async loadLatest(keys: readonly string[]): Promise<Array<LatestRecord | null>> {
    const generation = this.#generation;
    const rows = await Promise.all(keys.map((key) => this.storage.get(latestKey(key))));
    const current = generation === this.#generation;
    return rows.map((bytes, i) => {
      if (bytes === undefined) return null;
      const latest = decodeLatest(bytes);
      const key = keys[i]!;
      if (current && !this.#hot.has(key)) this.#remember(key, { latest, timestampMs: 0, contentType: null, value: null });
      return latest;
    });
  }

  /** A key's value: the newest version, or `version` when given. Rejects when absent or deleted. */
  get(key: string, version?: number): Promise<ValueView> {
    if (version === undefined) {
      // Hot path without an async function's frame: a cached value answers at once.
      const hot = this.#hot.get(key);
      if (hot !== undefined && hot.value !== null) {
        const { latest } = hot;
        return Promise.resolve({ key, version: latest.version, seq: latest.seq, timestampMs: hot.timestampMs, contentType: hot.contentType!, value: hot.value });
      }
    }
    return this.#getStored(key, version);
  }

  async #getStored(key: string, version: number | undefined): Promise<ValueView> {
    if (version === undefined) {
      const latest = await this.latest(key);
      if (latest === null) throw new KeyNotFoundError(key);
      if (latest.deleted) throw new KeyNotFoundError(key, " (deleted)");
      version = latest.version;
    }
    const bytes = await this.storage.get(versionKey(key, version));
    if (bytes === undefined) throw new VersionNotFoundError(key, version);
    const record = decodeVersion(bytes);
    if (record.value === null) throw new KeyNotFoundError(key, ` (version ${version} is a delete)`);
    return { key, version, seq: record.seq, timestampMs: record.timestampMs, contentType: record.contentType!, value: record.value };
  }

  /** Versions of `key`, newest first, starting below `beforeVersion` (exclusive) when given. */
  async history(key: string, options: { beforeVersion?: number; limit: number }): Promise<Page<HistoryItem, number>> {
    const range = versionRange(key);
    const end = options.beforeVersion === undefined ? range.end : versionKey(key, options.beforeVersion);
    const rows = await this.storage.scan({ start: range.start, end, limit: options.limit + 1, reverse: true });
    if (rows.length === 0 && (await this.latest(key)) === null) throw new KeyNotFoundError(key);
    const items = rows.slice(0, options.limit).map((row): HistoryItem => {
      const record = decodeVersion(row.value);
      const version = readKeyInteger(row.key, row.key.length - 8);
      return { version, seq: record.seq, timestampMs: record.timestampMs, deleted: record.value === null, sizeBytes: record.value?.length ?? 0 };
    });
    const next = rows.length > options.limit ? items[items.length - 1]!.version : undefined;
    return { items, next };
  }

  /** Live keys (not deleted) starting with `prefix`, from `start` (inclusive), in key byte order. */
  async list(options: { prefix: string; start?: string; limit: number }): Promise<Page<{ key: string; latest: LatestRecord }, string>> {
    const range = latestPrefixRange(options.prefix);
    // Compare as bytes, not JS strings: UTF-16 order differs from UTF-8 order above U+FFFF.
    const startKey = options.start === undefined ? undefined : latestKey(options.start);
    let cursor = startKey !== undefined && compareBytes(startKey, range.start) > 0 ? startKey : range.start;
    const items: Array<{ key: string; latest: LatestRecord }> = [];
    let scanned = 0;
    while (items.length <= options.limit && scanned < LIST_SCAN_ROWS_MAX) {
      const rows = await this.storage.scan({ start: cursor, end: range.end, limit: Math.min(options.limit + 1, 1000) });
      for (const row of rows) {
        scanned++;
        const latest = decodeLatest(row.value);
        if (!latest.deleted) items.push({ key: readKeyString(row.key, 1).value, latest });
        if (items.length > options.limit) break;
      }
      if (rows.length === 0 || items.length > options.limit) break;
      cursor = Uint8Array.from([...rows[rows.length - 1]!.key, 0x00]);
      if (rows.length < Math.min(options.limit + 1, 1000)) break;
    }
    const next = items.length > options.limit ? items.pop()!.key : undefined;
    return { items, next };
  }

  /** The entry at `seq`, its exact bytes, leaf hash and the key version it wrote. */
  async entryAt(seq: number): Promise<LogItem> {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= this.#treeSize) throw new SeqNotFoundError(seq, this.#treeSize);
    const bytes = await this.storage.get(entryKey(seq));
    if (bytes === undefined) throw new StorageCorruptionError(`entry ${seq} missing below tree size ${this.#treeSize}`);
    return this.#logItem(seq, bytes);
  }

  #logItem(seq: number, bytes: Uint8Array): LogItem {
    const record = decodeEntryRecord(bytes);
    const entry = decodeEntry(record.entryBytes);
    if (entry.seq !== seq) throw new StorageCorruptionError(`entry stored at seq ${seq} says seq ${entry.seq}`);
    return { entry, entryBytes: record.entryBytes, version: record.version, leafHash: this.hasher.sha256(record.leafInput) };
  }

  /** Entries from `from` in seq order, at most `limit`. */
  async log(options: { from: number; limit: number }): Promise<Page<LogItem, number>> {
    if (options.from >= this.#treeSize) return { items: [], next: undefined };
    const rows = await this.storage.scan({ start: entryKey(options.from), end: entryKey(this.#treeSize), limit: options.limit });
    const items = rows.map((row) => this.#logItem(readKeyInteger(row.key, 1), row.value));
    const last = items.length === 0 ? options.from : items[items.length - 1]!.entry.seq + 1;
    return { items, next: last < this.#treeSize ? last : undefined };
  }

  /**
   * Entries from `from` (below the published tree size) with their values, in
   * seq order: at most `limit` of them and, beyond the first, about
   * `bytesMax` bytes of entries and values. Each value is re-checked against
   * its entry's hash after reading it back.
   */
  async decidedEntries(from: number, options: { limit: number; bytesMax: number }): Promise<DecidedEntry[]> {
    const end = Math.min(this.#treeSize, from + options.limit);
    if (from >= end) return [];
    const rows = await this.storage.scan({ start: entryKey(from), end: entryKey(end), limit: end - from });
    if (rows.length === 0) throw new StorageCorruptionError(`entry ${from} missing below tree size ${this.#treeSize}`);
    // The budget is known from the entries (their sizeBytes) before any value is read; values are read in parallel.
    const chosen: LogItem[] = [];
    let bytes = 0;
    for (const row of rows) {
      // #logItem checks the stored entry's own seq, so a missing row is caught as corruption.
      const item = this.#logItem(from + chosen.length, row.value);
      chosen.push(item);
      bytes += item.entryBytes.length + item.entry.sizeBytes;
      if (bytes >= options.bytesMax) break;
    }
    return Promise.all(chosen.map(async ({ entry, entryBytes, version }): Promise<DecidedEntry> => {
      if (entry.op !== "put") return { entryBytes, version, value: null };
      const stored = await this.storage.get(versionKey(entry.key, version));
      if (stored === undefined) throw new StorageCorruptionError(`version ${version} of the key of entry ${entry.seq} is missing`);
      const value = decodeVersion(stored).value;
      if (value === null || !bytesEqual(this.hasher.sha256(value), entry.valueHash!)) {
        throw new StorageCorruptionError(`the value of entry ${entry.seq} does not match its hash`);
      }
      return { entryBytes, version, value };
    }));
  }

  #checkTreeSize(treeSize: number): void {
    if (!Number.isSafeInteger(treeSize) || treeSize < 0 || treeSize > this.#treeSize) {
      throw new TreeSizeError(`tree size ${treeSize} is not in [0, ${this.#treeSize}]`);
    }
  }

  /** RFC 9162 inclusion proof of `seq` in the tree of `treeSize` leaves. */
  async inclusionProof(seq: number, treeSize: number): Promise<{ item: LogItem; proof: Uint8Array[] }> {
    this.#checkTreeSize(treeSize);
    if (seq >= treeSize) throw new TreeSizeError(`seq ${seq} is not below tree size ${treeSize}`);
    const item = await this.entryAt(seq);
    const proof = await inclusionProof(LedgerReader.nodeReader(this.storage, this.hasher), this.hasher, seq, treeSize);
    return { item, proof };
  }

  /** RFC 9162 consistency proof between tree sizes `from` <= `to`. */
  async consistencyProof(from: number, to: number): Promise<Uint8Array[]> {
    this.#checkTreeSize(to);
    if (!Number.isSafeInteger(from) || from < 0 || from > to) throw new TreeSizeError(`from ${from} must be in [0, ${to}]`);
    return consistencyProof(LedgerReader.nodeReader(this.storage, this.hasher), this.hasher, from, to);
  }

  /** Root hash of the tree of `treeSize` leaves. */
  async rootAt(treeSize: number): Promise<Uint8Array> {
    this.#checkTreeSize(treeSize);
    if (treeSize === this.#treeSize) return this.#rootHash;
    return rootAt(LedgerReader.nodeReader(this.storage, this.hasher), this.hasher, treeSize);
  }

  /** The signed checkpoint for `treeSize` (default: the published size). */
  async checkpoint(treeSize: number = this.#treeSize): Promise<SignedCheckpoint> {
    const latest = this.checkpoints.latest;
    if (latest !== undefined && latest.treeSize === treeSize) return latest;
    return this.checkpoints.sign(treeSize, await this.rootAt(treeSize));
  }

  /** Proof that `key` (newest or `version`) is in the current tree, with the signed checkpoint it verifies against. */
  async keyProof(key: string, version?: number): Promise<KeyProof> {
    const checkpoint = await this.checkpoint();
    let seq: number;
    let resolvedVersion: number;
    if (version === undefined) {
      const latest = await this.latest(key);
      if (latest === null) throw new KeyNotFoundError(key);
      seq = latest.seq;
      resolvedVersion = latest.version;
    } else {
      const bytes = await this.storage.get(versionKey(key, version));
      if (bytes === undefined) throw new VersionNotFoundError(key, version);
      seq = decodeVersion(bytes).seq;
      resolvedVersion = version;
    }
    if (seq >= checkpoint.treeSize) throw new KeyNotFoundError(key, " (not yet in a checkpoint)");
    const { item, proof } = await this.inclusionProof(seq, checkpoint.treeSize);
    return { key, version: resolvedVersion, item, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, proof, checkpoint };
  }
}

/** Hash of the complete subtree (level, index) rebuilt from its 2^level stored entries (one read or one scan). */
async function subtreeFromEntries(storage: Storage, hasher: Hasher, level: number, index: number): Promise<Uint8Array> {
  if (level === 0) {
    const bytes = await storage.get(entryKey(index));
    if (bytes === undefined) throw new StorageCorruptionError(`entry ${index} missing for a Merkle leaf`);
    return hasher.sha256(decodeEntryRecord(bytes).leafInput);
  }
  const count = 2 ** level;
  const first = index * count;
  const rows = await storage.scan({ start: entryKey(first), end: entryKey(first + count), limit: count });
  if (rows.length !== count) throw new StorageCorruptionError(`entries ${first}..${first + count - 1} incomplete for a Merkle node`);
  let hashes = rows.map((row, i) => {
    if (readKeyInteger(row.key, 1) !== first + i) throw new StorageCorruptionError(`entry ${first + i} missing for a Merkle node`);
    return hasher.sha256(decodeEntryRecord(row.value).leafInput);
  });
  while (hashes.length > 1) {
    const parents: Uint8Array[] = [];
    for (let i = 0; i < hashes.length; i += 2) parents.push(nodeHash(hasher, hashes[i]!, hashes[i + 1]!));
    hashes = parents;
  }
  return hashes[0]!;
}
