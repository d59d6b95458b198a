/**
 * The ledger state machine: turns write commands into entries with dense
 * seqs, keeps the key index and version history, and appends every entry to
 * the RFC 9162 Merkle tree. It does no I/O of its own beyond the storage port
 * it is given, and reads no clock: the caller passes each batch's timestamp.
 *
 * Writing is two-phase so nothing is visible before it is durable:
 * `prepare` computes the storage batch and results; the caller commits the
 * batch durably; `publish` then makes it visible to readers. Prepares must be
 * serialized (one at a time) by the caller, but the next group may be
 * prepared while earlier ones are still being committed (it sees their
 * writes); groups are committed and published in the order they were prepared. If a commit fails, the
 * in-memory Merkle frontier is ahead of storage: the ledger must be thrown
 * away and reopened from storage (the node fail-stops).
 *
 * `prepareDecided` is the same two-phase append for entries another replica
 * already decided (a snapshot install): it re-derives every row from the
 * entry bytes and values exactly as `prepare` writes them, so both paths give
 * byte-identical storage.
 */
import { type BatchOp, type Storage } from "../storage/index.ts";
import { Tag } from "../storage/keys.ts";
import { bytesEqual, MerkleFrontier, type Hasher, type StoredNode } from "../merkle/index.ts";
import { type WriteCommand, type WriteOperation } from "./commands.ts";
import { decodeEntry, EntryDecodeError, type Entry } from "./entry.ts";
import { EntryWriter } from "./row-writer.ts";
import {
  DecidedEntryError, DeleteNotAllowedError, ImmutableKeyError, KeyNotFoundError, LedgerError, LedgerFormatError, PreconditionFailedError,
} from "./errors.ts";
import {
  ChunkWriter, decodeFormat, encodeFormat, FORMAT_KEY, LEDGER_FORMAT, MERKLE_STORED_LEVEL_MIN, merkleKey, valueKey,
  VALUE_INLINE_BYTES_MAX, versionKey, type ChunkItem, type LatestRecord,
} from "./records.ts";
import { HOT_CACHE_BYTES_DEFAULT, LedgerReader, type DecidedEntry, type HotRecord } from "./reader.ts";
import { type CheckpointIssuer } from "./checkpoints.ts";

/** What one applied operation produced. */
export interface AppliedOperation {
  op: "put" | "delete";
  key: string;
  seq: number;
  version: number;
  leafHash: Uint8Array;
  /** True when this put made the key exist again (first version, or after a delete). */
  created: boolean;
}

/** Outcome of one command: its operations, or the error that refused all of them. */
export type CommandResult = { ok: true; applied: AppliedOperation[]; treeSize: number } | { ok: false; error: LedgerError };

/** A prepared group of commands: the storage batch to commit, then publish. */
export interface Prepared {
  readonly ops: BatchOp[];
  readonly results: CommandResult[];
  readonly entries: Entry[];
  readonly treeSize: number;
  readonly rootHash: Uint8Array;
  /** The new hot-cache record of each entry's key, index for index with `entries`. */
  readonly hot: HotRecord[];
  /** The newest record of every key the group touched (null: never existed), as of the group's end. */
  readonly overlay: ReadonlyMap<string, LatestRecord | null>;
}

/** Options for {@link Ledger.open}. */
export interface LedgerOptions {
  storage: Storage;
  hasher: Hasher;
  checkpoints: CheckpointIssuer;
  /** Refuse a second version of any key, and every delete. */
  immutable: boolean;
  /** Largest value kept in the in-memory hot cache. */
  hotValueBytesMax?: number;
  /** Total budget of the hot cache in bytes (entries counted with HOT_ENTRY_OVERHEAD_BYTES each); default HOT_CACHE_BYTES_DEFAULT. */
  hotCacheBytesMax?: number;
}

/** Listener called after each publish with the newly visible entries. */
export type PublishListener = (entries: readonly Entry[], treeSize: number) => void;

export class Ledger extends LedgerReader {
  #frontier: MerkleFrontier;
  readonly #immutable: boolean;
  readonly #listeners = new Set<PublishListener>();
  #nextSeq: number;
  #lastTimestampMs = 0;
  #preparing = false;
  /**
   * The overlays of prepared groups not published yet, oldest first: the next group may be prepared while
   * earlier ones are still being committed, and must see their writes. Kept per group (not merged per key) so
   * publishing a group drops its overlay in one step.
   */
  readonly #unpublished: Array<ReadonlyMap<string, LatestRecord | null>> = [];
  /** Encodes each entry once; its scratch holds 0x00 ‖ entry, so the leaf hash needs no copy. */
  readonly #entryWriter = new EntryWriter();
  /**
   * Reused per prepare (each ends with a flush): a fresh writer per group allocated a 4 KiB buffer each time,
   * about 1% of a durable HTTP PUT's main-thread time.
   */
  readonly #chunkWriter = new ChunkWriter();
  /** Reused per append: the Merkle nodes of stored levels it completed. */
  readonly #storedNodes: StoredNode[] = [];

  private constructor(options: LedgerOptions, frontier: MerkleFrontier) {
    super({
      storage: options.storage,
      hasher: options.hasher,
      checkpoints: options.checkpoints,
      treeSize: frontier.size,
      rootHash: frontier.root(),
      hotValueBytesMax: options.hotValueBytesMax ?? 4096,
      hotCacheBytesMax: options.hotCacheBytesMax ?? HOT_CACHE_BYTES_DEFAULT,
    });
    this.#frontier = frontier;
    this.#immutable = options.immutable;
    this.#nextSeq = frontier.size;
  }

  /** Open the ledger held in `options.storage`, rebuilding the Merkle frontier with O(log n) reads. */
  static async open(options: LedgerOptions): Promise<Ledger> {
    await Ledger.#checkFormat(options.storage);
    const treeSize = await LedgerReader.storedTreeSize(options.storage);
    const frontier = await MerkleFrontier.load(treeSize, LedgerReader.nodeReader(options.storage, options.hasher), options.hasher);
    const ledger = new Ledger(options, frontier);
    if (treeSize > 0) {
      const last = await ledger.entryAt(treeSize - 1);
      ledger.#lastTimestampMs = last.entry.timestampMs;
    }
    await ledger.checkpoints.issue(treeSize, frontier.root());
    return ledger;
  }

  /** Refuse a store written in another layout; mark an empty one with this layout. */
  static async #checkFormat(storage: Storage): Promise<void> {
    const stored = await storage.get(FORMAT_KEY);
    if (stored !== undefined) {
      const format = decodeFormat(stored);
      if (format !== LEDGER_FORMAT) throw new LedgerFormatError(`the data directory holds ledger format ${format}; this build reads format ${LEDGER_FORMAT}`);
      return;
    }
    const any = await storage.scan({ limit: 1 });
    if (any.length > 0 && any[0]!.key[0]! < Tag.raft) {
      throw new LedgerFormatError(`the data directory holds ledger data of an older, unsupported format (no format record); this build reads format ${LEDGER_FORMAT}`);
    }
    await storage.commit([{ type: "put", key: FORMAT_KEY, value: encodeFormat() }]);
  }

  /** Be told of every publish (used by watch streams). Returns an unsubscribe function. */
  onPublish(listener: PublishListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Compute the entries, storage batch and results for `commands`, in order.
   * A command that fails a precondition yields its error and changes nothing.
   * Timestamps never go backwards: each is max(timestampMs, previous).
   */
  async prepare(commands: readonly WriteCommand[], timestampMs: number): Promise<Prepared> {
    if (this.#preparing) throw new Error("assertion: Ledger.prepare calls must be serialized");
    this.#preparing = true;
    try {
      const stamp = Math.max(Math.floor(timestampMs), this.#lastTimestampMs);
      const overlay = await this.#prefetchLatest(commands);
      this.#chunkWriter.clear();
      const out: PreparedParts = { ops: [], entries: [], hot: [], chunks: this.#chunkWriter };
      const results: CommandResult[] = [];
      for (const command of commands) {
        const checked = this.#check(command.operations, overlay);
        if (checked instanceof LedgerError) {
          results.push({ ok: false, error: checked });
          continue;
        }
        const applied: AppliedOperation[] = [];
        for (let i = 0; i < checked.length; i++) applied.push(this.#append(command.operations[i]!, checked[i]!, out, stamp));
        results.push({ ok: true, applied, treeSize: this.#nextSeq });
      }
      const lastChunk = out.chunks.flush();
      if (lastChunk !== undefined) out.ops.push({ type: "put", key: lastChunk.key, value: lastChunk.row });
      this.#lastTimestampMs = stamp;
      this.#unpublished.push(overlay);
      return { ops: out.ops, entries: out.entries, hot: out.hot, results, treeSize: this.#nextSeq, rootHash: this.#frontier.root(), overlay };
    } finally {
      this.#preparing = false;
    }
  }

  /** Make a durably committed `prepared` visible to readers and watchers, and issue its checkpoint. */
  publish(prepared: Prepared): void {
    // Groups are published in the order they were prepared, so this is the oldest overlay; later ones stay.
    const position = this.#unpublished.indexOf(prepared.overlay);
    if (position >= 0) this.#unpublished.splice(position, 1);
    this.publishState(prepared.treeSize, prepared.rootHash, prepared.entries, prepared.hot);
    this.checkpoints.schedule(prepared.treeSize, prepared.rootHash);
    if (prepared.entries.length > 0) {
      for (const listener of this.#listeners) listener(prepared.entries, prepared.treeSize);
    }
  }

  /**
   * Append entries another replica decided, in seq order from the current
   * tree size: each is checked (canonical entry bytes, the next seq, a value
   * matching its hash and size, timestamps not going back, the version that
   * follows the key's history here) and its rows derived exactly as `prepare`
   * derives them. `verify(treeSize, rootHash)` sees the tree after the group
   * and throws to refuse it; a refused group (or one failing a check, with
   * DecidedEntryError) changes nothing. Commit `ops`, then `publish`.
   */
  async prepareDecided(items: readonly DecidedEntry[], verify: (treeSize: number, rootHash: Uint8Array) => void): Promise<Prepared> {
    if (this.#preparing) throw new Error("assertion: Ledger.prepare calls must be serialized");
    this.#preparing = true;
    try {
      const entries = items.map((item, i) => this.#decidedEntry(item, this.#nextSeq + i));
      const known = new Map<string, LatestRecord | null>();
      const misses: string[] = [];
      for (const entry of entries) this.#noteKey(entry.key, known, misses);
      const overlay = await this.#loadMisses(known, misses);
      const frontier = this.#frontier.clone();
      const out: PreparedParts = { ops: [], entries: [], hot: [], chunks: new ChunkWriter(await this.#chunkToResume(items)) };
      let lastTimestampMs = this.#lastTimestampMs;
      for (const [i, entry] of entries.entries()) {
        const item = items[i]!;
        if (entry.timestampMs < lastTimestampMs) throw new DecidedEntryError(`entry ${entry.seq}: timestamp goes back`);
        lastTimestampMs = entry.timestampMs;
        const current = overlay.get(entry.key)!;
        const record: LatestRecord = { version: (current?.version ?? 0) + 1, seq: entry.seq, deleted: entry.op === "delete" };
        if (record.version !== item.version) throw new DecidedEntryError(`entry ${entry.seq}: version ${item.version} does not follow ${current?.version ?? 0}`);
        overlay.set(entry.key, record);
        this.#writeEntry(entry, record, item.value, frontier, out);
        // Close chunks where the source closed them, so the rows come out the same as the source's.
        const closed = item.chunkEnd ? out.chunks.flush() : undefined;
        if (closed !== undefined) out.ops.push({ type: "put", key: closed.key, value: closed.row });
      }
      // A chunk the source closes later is stored as far as it goes; the next group rewrites it whole.
      const open = out.chunks.flush();
      if (open !== undefined) out.ops.push({ type: "put", key: open.key, value: open.row });
      const treeSize = this.#nextSeq + entries.length;
      const rootHash = frontier.root();
      verify(treeSize, rootHash);
      this.#frontier = frontier;
      this.#nextSeq = treeSize;
      this.#lastTimestampMs = lastTimestampMs;
      this.#unpublished.push(overlay);
      return { ops: out.ops, entries: out.entries, hot: out.hot, results: [], treeSize, rootHash, overlay };
    } finally {
      this.#preparing = false;
    }
  }

  /** Decode and check one decided entry against the seq it must have. */
  #decidedEntry(item: DecidedEntry, seq: number): Entry {
    let entry: Entry;
    try {
      entry = decodeEntry(item.entryBytes);
    } catch (error) {
      if (error instanceof EntryDecodeError) throw new DecidedEntryError(`entry at seq ${seq}: ${error.message}`);
      throw error;
    }
    if (entry.seq !== seq) throw new DecidedEntryError(`entry with seq ${entry.seq} where ${seq} is next`);
    if (entry.op === "delete" ? item.value !== null : item.value === null) throw new DecidedEntryError(`entry ${seq}: value present on a delete or missing on a put`);
    if (item.value !== null && (item.value.length !== entry.sizeBytes || !bytesEqual(this.hasher.sha256(item.value), entry.valueHash!))) {
      throw new DecidedEntryError(`entry ${seq}: value does not match its hash or size`);
    }
    return entry;
  }

  /**
   * When decided entries continue a chunk the source had not closed at the
   * previous group's end, that partial chunk as stored here, to be extended
   * and rewritten (so the chunk rows match the source's).
   */
  async #chunkToResume(items: readonly DecidedEntry[]): Promise<{ firstSeq: number; items: ChunkItem[] } | undefined> {
    if (items.length === 0 || items[0]!.chunkStart || this.#nextSeq === 0) return undefined;
    const last = await this.lastChunk();
    if (last === undefined || last.firstSeq + last.items.length !== this.#nextSeq) return undefined;
    return last;
  }

  /**
   * The published latest record of every key the group touches, read in
   * parallel up front (hot keys cost nothing) so the checks below are
   * synchronous. Applied operations then update this map as the group's overlay.
   */
  async #prefetchLatest(commands: readonly WriteCommand[]): Promise<Map<string, LatestRecord | null>> {
    const known = new Map<string, LatestRecord | null>();
    const misses: string[] = [];
    for (const command of commands) {
      for (const { key } of command.operations) this.#noteKey(key, known, misses);
    }
    return this.#loadMisses(known, misses);
  }

  /** Record `key`'s cached latest record in `known`, or add it to `misses` to be read. */
  #noteKey(key: string, known: Map<string, LatestRecord | null>, misses: string[]): void {
    if (known.has(key)) return;
    let cached = this.#unpublishedLatest(key);
    if (cached === undefined) cached = this.cachedLatest(key);
    known.set(key, cached ?? null);
    if (cached === undefined) misses.push(key);
  }

  /** The newest record of `key` in the unpublished groups (null: absent there too), or undefined if none touched it. */
  #unpublishedLatest(key: string): LatestRecord | null | undefined {
    for (let i = this.#unpublished.length - 1; i >= 0; i--) {
      const record = this.#unpublished[i]!.get(key);
      if (record !== undefined) return record;
    }
    return undefined;
  }

  /** Read the `misses` in parallel into `known`. */
  async #loadMisses(known: Map<string, LatestRecord | null>, misses: string[]): Promise<Map<string, LatestRecord | null>> {
    if (misses.length === 0) return known;
    const loaded = await this.loadLatest(misses);
    // A miss is already noted as absent (null); only keys that exist need their record.
    for (let i = 0; i < misses.length; i++) if (loaded[i] !== null) known.set(misses[i]!, loaded[i]!);
    return known;
  }

  /**
   * Check every operation of one command against the group's overlay and
   * write each one's new latest record into it. A failed check undoes the
   * command's earlier writes to the overlay, so a refused command changes
   * nothing.
   */
  #check(operations: readonly WriteOperation[], overlay: Map<string, LatestRecord | null>): Checked[] | LedgerError {
    const next: Checked[] = [];
    for (const operation of operations) {
      const current = overlay.get(operation.key)!;
      const error = this.#precondition(operation, current);
      if (error !== undefined) {
        for (let i = next.length - 1; i >= 0; i--) overlay.set(operations[i]!.key, next[i]!.previous);
        return error;
      }
      const record: LatestRecord = { version: (current?.version ?? 0) + 1, seq: -1, deleted: operation.op === "delete" };
      overlay.set(operation.key, record);
      next.push({ record, previous: current, created: operation.op === "put" && (current === null || current.deleted) });
    }
    return next;
  }

  #precondition(operation: WriteOperation, current: LatestRecord | null): LedgerError | undefined {
    const exists = current !== null && !current.deleted;
    if (operation.op === "delete") {
      if (this.#immutable) return new DeleteNotAllowedError();
      if (!exists) return new KeyNotFoundError(operation.key);
    } else {
      if (this.#immutable && current !== null) return new ImmutableKeyError(operation.key);
      if (operation.ifAbsent && exists) return new PreconditionFailedError(`key ${JSON.stringify(operation.key)} already exists`);
    }
    if (operation.ifVersion !== undefined && (!exists || current!.version !== operation.ifVersion)) {
      const actual = exists ? `latest version is ${current!.version}` : "key does not exist";
      return new PreconditionFailedError(`If-Match version ${operation.ifVersion} failed: ${actual}`);
    }
    return undefined;
  }

  #append(operation: WriteOperation, { record, created }: Checked, out: PreparedParts, timestampMs: number): AppliedOperation {
    const seq = this.#nextSeq++;
    record.seq = seq;
    const isPut = operation.op === "put";
    const value = isPut ? operation.value : null;
    const contentType = isPut ? operation.contentType : null;
    const entry: Entry = {
      seq,
      op: operation.op,
      key: operation.key,
      valueHash: value === null ? null : this.hasher.sha256(value),
      sizeBytes: value === null ? 0 : value.length,
      contentType,
      timestampMs,
    };
    const leaf = this.#writeEntry(entry, record, value, this.#frontier, out);
    return { op: operation.op, key: operation.key, seq, version: record.version, leafHash: leaf, created };
  }

  /**
   * The rows of one entry (its version row, a value row for a large value,
   * its place in a chunk, complete Merkle nodes of stored levels) onto `out`;
   * returns its leaf hash. The entry is encoded once, into the writer's
   * scratch, and hashed and copied from there.
   */
  #writeEntry(entry: Entry, record: LatestRecord, value: Uint8Array | null, frontier: MerkleFrontier, out: PreparedParts): Uint8Array {
    const separate = value !== null && value.length > VALUE_INLINE_BYTES_MAX;
    const writer = this.#entryWriter;
    const length = writer.write(entry);
    const leaf = this.hasher.sha256(writer.leafInput(length));
    this.keyFilter.add(entry.key);
    out.ops.push({ type: "put", key: versionKey(entry.key, record.version), value: writer.versionRow(length, separate ? false : value) });
    if (separate) out.ops.push({ type: "put", key: valueKey(entry.seq), value: value! });
    const chunk = out.chunks.append(entry.seq, record.version, writer.entryBytes(length));
    if (chunk !== undefined) out.ops.push({ type: "put", key: chunk.key, value: chunk.row });
    const stored = this.#storedNodes;
    frontier.appendCollecting(leaf, MERKLE_STORED_LEVEL_MIN, stored);
    for (let i = 0; i < stored.length; i++) {
      // Low nodes are not stored: they are recomputed from the stored entries they cover. A stored hash is
      // copied: a hasher may hand out views of a shared slab, which a stored row must not pin.
      const node = stored[i]!;
      out.ops.push({ type: "put", key: merkleKey(node.level, node.index), value: node.hash.slice() });
    }
    stored.length = 0;
    out.entries.push(entry);
    out.hot.push({ latest: record, timestampMs: entry.timestampMs, contentType: entry.contentType, value });
    return leaf;
  }
}

/** The storage batch, entries and hot records a group accumulates, one entry and hot record per operation. */
interface PreparedParts {
  ops: BatchOp[];
  entries: Entry[];
  hot: HotRecord[];
  chunks: ChunkWriter;
}

/** An operation that passed its preconditions: its new latest record, the one it replaces, and whether a put brings the key into existence. */
interface Checked {
  record: LatestRecord;
  previous: LatestRecord | null;
  created: boolean;
}
