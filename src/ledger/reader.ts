/**
 * Read side of the ledger: values, versions, history, key listing, the raw
 * log, proofs and checkpoints, all over published (durable) state only.
 * A bounded hot cache (hot-cache.ts) keeps the newest record (and small
 * values) of recently written or read keys so a GET of a hot key costs no
 * storage read.
 */
import { compareBytes, type KvPair, RANGES_PER_CALL_MAX, type Storage, StorageCorruptionError } from "../storage/index.ts";
import { readKeyInteger, readKeyString, Tag } from "../storage/keys.ts";
import {
  bytesEqual, consistencyProof, inclusionProof, leafHash, nodeBegin, nodeEnd, nodeHash, rootAt, type Hasher, type NodeId, type NodeReader,
} from "../merkle/index.ts";
import { decodeEntry, EntryDecodeError, type Entry } from "./entry.ts";
import { KeyNotFoundError, SeqNotFoundError, TreeSizeError, VersionNotFoundError } from "./errors.ts";
import {
  CHUNK_RANGE, chunkKey, decodeChunk, decodeVersionRow, MERKLE_STORED_LEVEL_MIN, merkleKey, valueKey, versionKey,
  versionPrefixRange, versionRange, type ChunkItem, type LatestRecord, type VersionRow,
} from "./records.ts";
import { type CheckpointIssuer, type SignedCheckpoint } from "./checkpoints.ts";
import { KeyFilter } from "./key-filter.ts";
import { HotCache, type HotRecord } from "./hot-cache.ts";

export { HOT_CACHE_BYTES_DEFAULT, HOT_ENTRY_OVERHEAD_BYTES, type HotRecord } from "./hot-cache.ts";

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
  /** Whether the source's chunk rows start a chunk at this entry, and end one after it (so a replica can lay out the same rows). */
  chunkStart: boolean;
  chunkEnd: boolean;
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
/** Version rows one page of the key filter's load reads. */
export const KEY_FILTER_LOAD_PAGE_ROWS = 4096;
/** Rows read per step when skipping a key's versions that are in storage but not yet published. */
const UNPUBLISHED_SKIP_PAGE_ROWS = 16;

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
  readonly #hot: HotCache;
  // Bumped on every publish: a storage read that started before a publish
  // must not put its (possibly older) result into the hot cache.
  #generation = 0;
  /** Every key prepared or stored, once loaded (see `loadKeyFilter`): a key it lacks is read as absent without a storage read. */
  protected readonly keyFilter = new KeyFilter();
  #keyFilterLoading = false;

  protected constructor(options: ReaderOptions) {
    this.storage = options.storage;
    this.hasher = options.hasher;
    this.checkpoints = options.checkpoints;
    this.#treeSize = options.treeSize;
    this.#rootHash = options.rootHash;
    this.#hot = new HotCache({ valueBytesMax: options.hotValueBytesMax, cacheBytesMax: options.hotCacheBytesMax });
  }

  /** Number of entries in the stored log (= last seq + 1). */
  static async storedTreeSize(storage: Storage): Promise<number> {
    const last = await storage.scan({ ...CHUNK_RANGE, limit: 1, reverse: true });
    if (last.length === 0) return 0;
    return readKeyInteger(last[0]!.key, 1) + decodeChunk(last[0]!.value).length;
  }

  /**
   * Merkle node reads over the storage port. Nodes from level
   * MERKLE_STORED_LEVEL_MIN up are stored; lower ones (leaves included) are
   * recomputed from the stored entries they cover, all of one batch from one
   * read of the entries they span, which saves most node writes. A missing
   * node or entry is corruption.
   */
  static nodeReader(storage: Storage, hasher: Hasher): NodeReader {
    return {
      async getNodes(ids) {
        const low = ids.filter((id) => id.level < MERKLE_STORED_LEVEL_MIN);
        const computed = low.length === 0 ? undefined : await subtreesFromEntries(storage, hasher, low);
        return Promise.all(
          ids.map(async (id) => {
            if (id.level < MERKLE_STORED_LEVEL_MIN) return computed!.get(nodeBegin(id) * 64 + id.level)!;
            const hash = await storage.get(merkleKey(id.level, id.index));
            if (hash === undefined || hash.length !== 32) {
              throw new StorageCorruptionError(`Merkle node (level ${id.level}, index ${id.index}) missing or malformed`);
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
    for (let i = 0; i < entries.length; i++) this.#hot.remember(entries[i]!.key, hot[i]!);
  }

  /**
   * Feed the key filter every key in storage, a page of version rows at a
   * time (`pause` is awaited between pages so a large store does not hold
   * the event loop), then let it answer "absent". Keys written meanwhile are
   * added as they are prepared, so none is missed. Until it is done, and for
   * good if a read fails (the store closed, say), every key is looked up in
   * storage as before. Returns whether the filter is complete.
   */
  async loadKeyFilter(pause: () => Promise<void> = async () => {}): Promise<boolean> {
    if (this.keyFilter.isComplete || this.#keyFilterLoading) return this.keyFilter.isComplete;
    this.#keyFilterLoading = true;
    try {
      const end = Uint8Array.of(Tag.version + 1);
      let start: Uint8Array = Uint8Array.of(Tag.version);
      for (;;) {
        const rows = await this.storage.scan({ start, end, limit: KEY_FILTER_LOAD_PAGE_ROWS });
        let last: string | undefined;
        for (const row of rows) {
          const key = readKeyString(row.key, 1).value;
          if (key !== last) this.keyFilter.add(key);
          last = key;
        }
        if (rows.length < KEY_FILTER_LOAD_PAGE_ROWS) break;
        // Past every version of the page's last key.
        start = versionRange(last!).end.slice();
        await pause();
      }
      this.keyFilter.complete();
    } catch {
      // Left incomplete: lookups go to storage, which is only slower.
    } finally {
      this.#keyFilterLoading = false;
    }
    return this.keyFilter.isComplete;
  }

  /** The newest record of `key` if the hot cache has it; undefined when it must be read. */
  protected cachedLatest(key: string): LatestRecord | undefined {
    return this.#hot.get(key)?.latest;
  }

  /**
   * Whether a stored row's entry is published. A group's rows reach storage
   * before it is published (its clients are answered at publish), and a
   * store may show rows before they are synced; reads skip such rows.
   */
  #published(row: VersionRow): boolean {
    return row.entry.seq < this.#treeSize;
  }

  /**
   * The newest published version row of `key` (one reverse scan, more only
   * when the newest rows belong to a group not yet published), or undefined
   * if it has none.
   */
  async #latestRow(key: string): Promise<{ version: number; row: VersionRow } | undefined> {
    const range = versionRange(key);
    let end = range.end;
    for (let limit = 1; ; limit = UNPUBLISHED_SKIP_PAGE_ROWS) {
      const rows = await this.storage.scan({ start: range.start, end, limit, reverse: true });
      for (const pair of rows) {
        const row = decodeVersionRow(pair.value);
        if (this.#published(row)) return { version: versionOfRowKey(pair), row };
      }
      if (rows.length < limit) return undefined;
      end = rows[rows.length - 1]!.key;
    }
  }

  /** Version `version` of `key` if it is stored and published. */
  async #publishedVersionRow(key: string, version: number): Promise<VersionRow | undefined> {
    const bytes = await this.storage.get(versionKey(key, version));
    if (bytes === undefined) return undefined;
    const row = decodeVersionRow(bytes);
    return this.#published(row) ? row : undefined;
  }

  /** The newest record of `key` in published state, or null if it never existed. */
  protected async latest(key: string): Promise<LatestRecord | null> {
    const hot = this.#hot.get(key);
    if (hot !== undefined) return hot.latest;
    return (await this.loadLatest([key]))[0]!;
  }

  /**
   * The newest records of `keys` in published state (null: never existed),
   * read in parallel; records read are remembered in the hot cache (with
   * their value when it is inline and small) unless a publish happened meanwhile.
   */
  protected async loadLatest(keys: readonly string[]): Promise<Array<LatestRecord | null>> {
    const filter = this.keyFilter;
    if (filter.isComplete) {
      const stored = keys.filter((key) => filter.mayContain(key));
      if (stored.length < keys.length) {
        const found = stored.length === 0 ? [] : await this.loadLatest(stored);
        let next = 0;
        return keys.map((key) => (key === stored[next] ? found[next++]! : null));
      }
    }
    const generation = this.#generation;
    const reads: Array<Promise<Array<KvPair | undefined>>> = [];
    for (let first = 0; first < keys.length; first += RANGES_PER_CALL_MAX) {
      reads.push(this.storage.lastInRanges(keys.slice(first, first + RANGES_PER_CALL_MAX).map(versionRange)));
    }
    const rows = (await Promise.all(reads)).flat();
    const found = rows.map((pair) => (pair === undefined ? undefined : { version: versionOfRowKey(pair), row: decodeVersionRow(pair.value) }));
    // A newest row of a group not yet published: look further back for the key's published one.
    const unpublished = found.flatMap((item, i) => (item !== undefined && !this.#published(item.row) ? [i] : []));
    if (unpublished.length > 0) {
      const older = await Promise.all(unpublished.map((i) => this.#latestRow(keys[i]!)));
      unpublished.forEach((i, n) => (found[i] = older[n]));
    }
    const current = generation === this.#generation;
    return found.map((item, i) => {
      if (item === undefined) return null;
      const { entry, value } = item.row;
      const latest: LatestRecord = { version: item.version, seq: entry.seq, deleted: entry.op === "delete" };
      const key = keys[i]!;
      if (current && !this.#hot.has(key)) this.#hot.remember(key, { latest, timestampMs: entry.timestampMs, contentType: entry.contentType, value });
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
    let found: { version: number; row: VersionRow } | undefined;
    if (version === undefined) {
      if (!this.keyFilter.mayContain(key)) throw new KeyNotFoundError(key);
      const generation = this.#generation;
      found = await this.#latestRow(key);
      if (found === undefined) throw new KeyNotFoundError(key);
      const { entry, value } = found.row;
      if (generation === this.#generation && !this.#hot.has(key)) {
        const latest = { version: found.version, seq: entry.seq, deleted: entry.op === "delete" };
        this.#hot.remember(key, { latest, timestampMs: entry.timestampMs, contentType: entry.contentType, value });
      }
      if (entry.op === "delete") throw new KeyNotFoundError(key, " (deleted)");
    } else {
      const row = await this.#publishedVersionRow(key, version);
      if (row === undefined) throw new VersionNotFoundError(key, version);
      found = { version, row };
      if (found.row.entry.op === "delete") throw new KeyNotFoundError(key, ` (version ${version} is a delete)`);
    }
    const { entry } = found.row;
    const value = found.row.separate ? await this.#separateValue(entry) : found.row.value!;
    return { key, version: found.version, seq: entry.seq, timestampMs: entry.timestampMs, contentType: entry.contentType!, value };
  }

  /** A value kept in its own row, checked against the size its entry records. */
  async #separateValue(entry: Entry): Promise<Uint8Array> {
    const value = await this.storage.get(valueKey(entry.seq));
    if (value === undefined || value.length !== entry.sizeBytes) throw new StorageCorruptionError(`value of seq ${entry.seq} missing or of the wrong size`);
    return value;
  }

  /** Versions of `key`, newest first, starting below `beforeVersion` (exclusive) when given. */
  async history(key: string, options: { beforeVersion?: number; limit: number }): Promise<Page<HistoryItem, number>> {
    const range = versionRange(key);
    let end = options.beforeVersion === undefined ? range.end : versionKey(key, options.beforeVersion);
    let rows = await this.storage.scan({ start: range.start, end, limit: options.limit + 1, reverse: true });
    if (rows.length > 0 && !this.#published(decodeVersionRow(rows[0]!.value))) {
      // The newest rows belong to a group not yet published: start below them.
      const newest = await this.#latestRow(key);
      const below = newest === undefined ? undefined : versionKey(key, newest.version + 1);
      if (below !== undefined && compareBytes(below, end) < 0) end = below;
      rows = below === undefined ? [] : await this.storage.scan({ start: range.start, end, limit: options.limit + 1, reverse: true });
    }
    if (rows.length === 0 && (await this.latest(key)) === null) throw new KeyNotFoundError(key);
    const items = rows.slice(0, options.limit).map((row): HistoryItem => {
      const { entry } = decodeVersionRow(row.value);
      return { version: versionOfRowKey(row), seq: entry.seq, timestampMs: entry.timestampMs, deleted: entry.op === "delete", sizeBytes: entry.sizeBytes };
    });
    const next = rows.length > options.limit ? items[items.length - 1]!.version : undefined;
    return { items, next };
  }

  /** Live keys (not deleted) starting with `prefix`, from `start` (inclusive), in key byte order. */
  async list(options: { prefix: string; start?: string; limit: number }): Promise<Page<{ key: string; latest: LatestRecord }, string>> {
    const range = versionPrefixRange(options.prefix);
    // Compare as bytes, not JS strings: UTF-16 order differs from UTF-8 order above U+FFFF.
    const startKey = options.start === undefined ? undefined : versionRange(options.start).start;
    let cursor = startKey !== undefined && compareBytes(startKey, range.start) > 0 ? startKey : range.start;
    const pageRows = Math.min(options.limit + 1, 1000);
    const items: Array<{ key: string; latest: LatestRecord }> = [];
    let scanned = 0;
    while (items.length <= options.limit && scanned < LIST_SCAN_ROWS_MAX) {
      const rows = await this.storage.scan({ start: cursor, end: range.end, limit: pageRows });
      // Rows come grouped by key, oldest version first: a group's last row is the key's newest version,
      // unless the group runs to the end of a full page (then one reverse scan finds it).
      for (let i = 0; i < rows.length && items.length <= options.limit;) {
        const { value: key, next: versionAt } = readKeyString(rows[i]!.key, 1);
        let last = i;
        while (last + 1 < rows.length && sameKeyPart(rows[last + 1]!.key, rows[i]!.key, versionAt)) last++;
        scanned += last - i + 1;
        const complete = last + 1 < rows.length || rows.length < pageRows;
        const lastRow = complete ? decodeVersionRow(rows[last]!.value) : undefined;
        const newest = lastRow !== undefined && this.#published(lastRow) ? { version: versionOfRowKey(rows[last]!), row: lastRow } : await this.#latestRow(key);
        if (newest !== undefined && newest.row.entry.op === "put") {
          items.push({ key, latest: { version: newest.version, seq: newest.row.entry.seq, deleted: false } });
        }
        cursor = versionRange(key).end;
        i = last + 1;
      }
      if (rows.length < pageRows) break;
    }
    const next = items.length > options.limit ? items.pop()!.key : undefined;
    return { items, next };
  }

  /** The entry at `seq`, its exact bytes, leaf hash and the key version it wrote. */
  async entryAt(seq: number): Promise<LogItem> {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= this.#treeSize) throw new SeqNotFoundError(seq, this.#treeSize);
    const [item] = await readEntries(this.storage, seq, seq + 1);
    return this.#logItem(seq, item!);
  }

  #logItem(seq: number, item: ChunkEntry): LogItem {
    let entry: Entry;
    try {
      entry = decodeEntry(item.entryBytes);
    } catch (error) {
      if (error instanceof EntryDecodeError) throw new StorageCorruptionError(`entry ${seq}: ${error.message}`);
      throw error;
    }
    if (entry.seq !== seq) throw new StorageCorruptionError(`entry stored at seq ${seq} says seq ${entry.seq}`);
    return { entry, entryBytes: item.entryBytes, version: item.version, leafHash: leafHash(this.hasher, item.entryBytes) };
  }

  /** Entries from `from` in seq order, at most `limit`. */
  async log(options: { from: number; limit: number }): Promise<Page<LogItem, number>> {
    if (options.from >= this.#treeSize) return { items: [], next: undefined };
    const to = Math.min(this.#treeSize, options.from + options.limit);
    const entries = await readEntries(this.storage, options.from, to);
    const items = entries.map((item, i) => this.#logItem(options.from + i, item));
    return { items, next: to < this.#treeSize ? to : undefined };
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
    // The budget is known from the entries (their sizeBytes) before any value is read; values are read in parallel.
    const chosen: Array<{ item: LogItem; chunkStart: boolean; chunkEnd: boolean }> = [];
    let bytes = 0;
    for (const stored of await readEntries(this.storage, from, end)) {
      const item = this.#logItem(from + chosen.length, stored);
      chosen.push({ item, chunkStart: stored.chunkStart, chunkEnd: stored.chunkEnd });
      bytes += item.entryBytes.length + item.entry.sizeBytes;
      if (bytes >= options.bytesMax) break;
    }
    return Promise.all(chosen.map(async ({ item: { entry, entryBytes, version }, chunkStart, chunkEnd }): Promise<DecidedEntry> => {
      if (entry.op !== "put") return { entryBytes, version, value: null, chunkStart, chunkEnd };
      const stored = await this.storage.get(versionKey(entry.key, version));
      if (stored === undefined) throw new StorageCorruptionError(`version ${version} of the key of entry ${entry.seq} is missing`);
      const row = decodeVersionRow(stored);
      const value = row.separate ? await this.#separateValue(entry) : row.value;
      if (row.entry.seq !== entry.seq || value === null || !bytesEqual(this.hasher.sha256(value), entry.valueHash!)) {
        throw new StorageCorruptionError(`the value of entry ${entry.seq} does not match its hash`);
      }
      return { entryBytes, version, value, chunkStart, chunkEnd };
    }));
  }

  /** The last chunk row (the entries up to the tree size), if any. */
  protected async lastChunk(): Promise<{ firstSeq: number; items: ChunkItem[] } | undefined> {
    const last = await this.storage.scan({ ...CHUNK_RANGE, limit: 1, reverse: true });
    if (last.length === 0) return undefined;
    return { firstSeq: readKeyInteger(last[0]!.key, 1), items: decodeChunk(last[0]!.value) };
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
      const row = await this.#publishedVersionRow(key, version);
      if (row === undefined) throw new VersionNotFoundError(key, version);
      seq = row.entry.seq;
      resolvedVersion = version;
    }
    if (seq >= checkpoint.treeSize) throw new KeyNotFoundError(key, " (not yet in a checkpoint)");
    const { item, proof } = await this.inclusionProof(seq, checkpoint.treeSize);
    return { key, version: resolvedVersion, item, treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, proof, checkpoint };
  }
}

/** The version number at the end of a version row's storage key. */
function versionOfRowKey(row: KvPair): number {
  return readKeyInteger(row.key, row.key.length - 8);
}

/** Whether two version-row keys name the same ledger key: their bytes before the version (at `versionAt`) agree. */
function sameKeyPart(a: Uint8Array, b: Uint8Array, versionAt: number): boolean {
  if (a.length !== b.length || a.length !== versionAt + 8) return false;
  for (let i = versionAt - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

/** One entry as a chunk row holds it, and whether it is the first or last of its row. */
type ChunkEntry = ChunkItem & { chunkStart: boolean; chunkEnd: boolean };

/** Entries [from, to) from the chunk rows that hold them; all must exist (a gap is corruption). */
async function readEntries(storage: Storage, from: number, to: number): Promise<ChunkEntry[]> {
  if (to <= from) return [];
  // The chunk holding `from` starts at or before it: the last chunk key <= chunk/{from}.
  const first = await storage.scan({ start: CHUNK_RANGE.start, end: chunkKey(from + 1), limit: 1, reverse: true });
  const out: ChunkEntry[] = [];
  let next = first.length === 0 ? from : readKeyInteger(first[0]!.key, 1);
  let rows = first;
  while (out.length < to - from) {
    if (rows.length === 0) rows = await storage.scan({ start: chunkKey(next), end: chunkKey(to), limit: 64 });
    if (rows.length === 0) break;
    for (const row of rows) {
      const firstSeq = readKeyInteger(row.key, 1);
      if (firstSeq !== next) throw new StorageCorruptionError(`log chunk at seq ${firstSeq} where seq ${next} was expected`);
      const items = decodeChunk(row.value);
      for (let i = 0; i < items.length; i++, next++) {
        if (next >= from && next < to) out.push({ ...items[i]!, chunkStart: i === 0, chunkEnd: i === items.length - 1 });
      }
    }
    rows = [];
  }
  if (out.length !== to - from) throw new StorageCorruptionError(`entries ${from}..${to - 1} are not all stored`);
  return out;
}

/**
 * Hashes of the complete subtrees `ids` (all below MERKLE_STORED_LEVEL_MIN)
 * rebuilt from the entries they cover, read once for the whole batch. Keyed
 * by begin * 64 + level (levels are < 64).
 */
async function subtreesFromEntries(storage: Storage, hasher: Hasher, ids: readonly NodeId[]): Promise<Map<number, Uint8Array>> {
  const from = Math.min(...ids.map(nodeBegin));
  const to = Math.max(...ids.map(nodeEnd));
  const leaves = (await readEntries(storage, from, to)).map((item) => leafHash(hasher, item.entryBytes));
  const hashes = new Map<number, Uint8Array>();
  for (const id of ids) {
    let level = leaves.slice(nodeBegin(id) - from, nodeEnd(id) - from);
    while (level.length > 1) {
      const parents: Uint8Array[] = [];
      for (let i = 0; i < level.length; i += 2) parents.push(nodeHash(hasher, level[i]!, level[i + 1]!));
      level = parents;
    }
    hashes.set(nodeBegin(id) * 64 + id.level, level[0]!);
  }
  return hashes;
}
