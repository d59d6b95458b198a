/**
 * fs-log: the portable durable storage adapter, built only on `node:fs` so the
 * same code runs on Bun, Deno and Node. Commits are appended as CRC32C-framed
 * records to segment files; an in-memory index maps each live key to its value
 * (inline when small) or to the value's place in a segment. It must never
 * acknowledge a commit before its bytes are fdatasync'ed, and never retry a
 * failed fsync into success: after any write or sync error it stops accepting
 * writes (fail-stop) and a reopen decides what is on disk.
 *
 * On disk, in `dir`: `0000000001.seg`, `0000000002.seg`, ... (see record.ts
 * for the frame format) and `index.ckpt` (see checkpoint.ts).
 *
 * Restart cost: read and parse `index.ckpt` (O(live keys + inline value
 * bytes)), stat the older segments, then read the segments from the one the
 * checkpoint points into (that one whole, ≤ `segmentBytes`) and replay only the
 * frames after the checkpoint position: none after a clean close (close writes
 * a checkpoint); after a crash at most about `checkpointBytes` plus one group,
 * since a checkpoint starts whenever that much log has accumulated. Without a
 * checkpoint open replays every segment. Memory: one index entry per live key
 * plus every inline value.
 *
 * Not done: compaction (dead records stay in old segments forever, so disk use
 * grows with total bytes written; segments are never deleted), and locking
 * (two processes opening the same `dir` corrupt it — callers must ensure one).
 */
import { join } from "node:path";
import {
  assertRanges,
  assertScanOptions,
  type KeyRange,
  type BatchOp,
  type KvPair,
  type ScanOptions,
  type Storage,
  StorageClosedError,
  StorageCorruptionError,
} from "../../src/storage/index.ts";
import { encodeCheckpoint } from "./checkpoint.ts";
import { crc32c } from "./crc32c.ts";
import { closeFile, exists, fdatasync, fsyncDir, makeDir, openFile, renameFile, writeAll, writeAllBlocking } from "./fs-io.ts";
import { fromKeyString, type IndexEntry, type KeyIndex, keyAtLeast, toKeyString } from "./key-index.ts";
import { batchEncodedBytes, type CheckedBatch, encodeFrame } from "./record.ts";
import {
  applyUpdates,
  CHECKPOINT_FILE,
  CHECKPOINT_TEMP_FILE,
  listSegments,
  encodedFrameUpdates,
  type RecoveredLog,
  type RecoveryReport,
  recoverLog,
  SEGMENT_NUMBER_MAX,
  segmentPath,
} from "./recover.ts";
import { SegmentReaders } from "./segment-readers.ts";

export type { RecoveryReport } from "./recover.ts";

/** What is about to be fsync'ed; passed to `fsyncHook`. */
export interface FsyncTarget {
  kind: "segment" | "directory" | "checkpoint";
  path: string;
}

/** Options for {@link createFsLogStorage}. */
export interface FsLogStorageOptions {
  /** Directory holding the segments and checkpoint; created if missing. One process at a time. */
  dir: string;
  /** Roll to a new segment before a write would take the current one past this; default 64 MiB, range [4 KiB, 1 GiB]. */
  segmentBytes?: number;
  /** Write an index checkpoint after this many log bytes since the last one (and on close); default 64 MiB. */
  checkpointBytes?: number;
  /** Values up to this size are kept in memory; larger ones are read from the segment; default 256, max 64 KiB. */
  inlineValueBytesMax?: number;
  /** Upper bound on the bytes of batches gathered into one group commit; default 8 MiB. */
  groupBytesMax?: number;
  /** Read fds kept open for value reads (least recently used closed first); default 64. */
  readFdsMax?: number;
  /**
   * Fault injection: awaited just before every fsync/fdatasync the adapter
   * issues. If it throws or rejects, that is handled exactly like the fsync
   * failing (the group's commits reject, the store stops accepting writes).
   */
  fsyncHook?: (target: FsyncTarget) => void | Promise<void>;
  /** Name reported in logs and metrics; default "fs-log". */
  name?: string;
}

/** The store `createFsLogStorage` returns: the storage port plus what open found. */
export interface FsLogStorage extends Storage {
  readonly recovery: RecoveryReport;
}

/** Every write after an I/O error rejects with this; reopen the store to recover. */
export class StorageFailStopError extends Error {
  constructor(adapter: string, cause: unknown) {
    super(`storage adapter "${adapter}" stopped after an I/O error; on-disk state is unknown until reopen: ${String((cause as Error)?.message ?? cause)}`, { cause });
    this.name = "StorageFailStopError";
  }
}

const MIB = 1024 * 1024;
const SEGMENT_BYTES_MIN = 4096;
const SEGMENT_BYTES_MAX = 1024 * MIB;
const INLINE_VALUE_BYTES_LIMIT = 64 * 1024;
/** Frames up to this size are written with a blocking write (page cache only, microseconds). */
const BLOCKING_WRITE_BYTES_MAX = 256 * 1024;

interface ResolvedOptions {
  dir: string;
  name: string;
  segmentBytes: number;
  checkpointBytes: number;
  inlineValueBytesMax: number;
  groupBytesMax: number;
  readFdsMax: number;
  fsyncHook?: (target: FsyncTarget) => void | Promise<void>;
}

function resolveOptions(options: FsLogStorageOptions): ResolvedOptions {
  if (typeof options?.dir !== "string" || options.dir === "") throw new TypeError("fs-log needs options.dir");
  const pick = (value: number | undefined, fallback: number, min: number, max: number, what: string): number => {
    const chosen = value ?? fallback;
    if (!Number.isInteger(chosen) || chosen < min || chosen > max) throw new RangeError(`fs-log ${what} must be an integer in [${min}, ${max}]`);
    return chosen;
  };
  return {
    dir: options.dir,
    name: options.name ?? "fs-log",
    segmentBytes: pick(options.segmentBytes, 64 * MIB, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX, "segmentBytes"),
    checkpointBytes: pick(options.checkpointBytes, 64 * MIB, 1, Number.MAX_SAFE_INTEGER, "checkpointBytes"),
    inlineValueBytesMax: pick(options.inlineValueBytesMax, 256, 0, INLINE_VALUE_BYTES_LIMIT, "inlineValueBytesMax"),
    groupBytesMax: pick(options.groupBytesMax, 8 * MIB, 1, 128 * MIB, "groupBytesMax"),
    readFdsMax: pick(options.readFdsMax, 64, 1, 4096, "readFdsMax"),
    fsyncHook: options.fsyncHook,
  };
}

/**
 * Open (creating if needed) a durable store in `options.dir`, recovering from
 * any crash first. Rejects with `StorageCorruptionError` (naming file and
 * offset) if acknowledged data is damaged.
 */
export async function createFsLogStorage(options: FsLogStorageOptions): Promise<FsLogStorage> {
  const resolved = resolveOptions(options);
  // No await before fdatasync when the hook is synchronous (or absent), so the
  // sync is already in flight when this returns and the caller can overlap work.
  const syncFile = (fd: number, path: string): Promise<void> => {
    const hooked = resolved.fsyncHook?.({ kind: "segment", path });
    return hooked instanceof Promise ? hooked.then(() => fdatasync(fd)) : fdatasync(fd);
  };
  const syncDir = async (path: string) => {
    await resolved.fsyncHook?.({ kind: "directory", path });
    await fsyncDir(path);
  };
  if (!(await exists(resolved.dir))) {
    await makeDir(resolved.dir);
    await syncDir(join(resolved.dir, ".."));
  }
  let segments = await listSegments(resolved.dir);
  if (segments.length === 0) {
    await closeFile(await openFile(segmentPath(resolved.dir, 1), "wx"));
    await syncDir(resolved.dir);
    segments = [1];
  }
  const log = await recoverLog({ dir: resolved.dir, inlineValueBytesMax: resolved.inlineValueBytesMax, syncFile }, segments);
  return new FsLogStore(resolved, log, { syncFile, syncDir });
}

interface PendingCommit {
  batch: CheckedBatch;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Syncers {
  syncFile(fd: number, path: string): Promise<void>;
  syncDir(path: string): Promise<void>;
}

class FsLogStore implements FsLogStorage {
  readonly name: string;
  readonly recovery: RecoveryReport;
  #options: ResolvedOptions;
  #sync: Syncers;
  #index: KeyIndex;
  #readers: SegmentReaders;
  #activeSegment: number;
  #writeFd: number;
  #writePosition: number;
  #sealedBytes: number;
  #checkpointFileBytes: number;
  #bytesSinceCheckpoint: number;
  #queue: PendingCommit[] = [];
  #flushing = false;
  #drainWaiters: Array<() => void> = [];
  #checkpointInFlight: Promise<void> | undefined;
  #failure: StorageFailStopError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: ResolvedOptions, log: RecoveredLog, sync: Syncers) {
    this.name = options.name;
    this.recovery = log.report;
    this.#options = options;
    this.#sync = sync;
    this.#index = log.index;
    this.#readers = new SegmentReaders((segment) => segmentPath(options.dir, segment), options.readFdsMax);
    this.#activeSegment = log.activeSegment;
    this.#writeFd = log.writeFd;
    this.#writePosition = log.writePosition;
    this.#sealedBytes = log.sealedBytes;
    this.#checkpointFileBytes = log.checkpointFileBytes;
    this.#bytesSinceCheckpoint = log.report.replayedBytes;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#ensureOpen();
    if (!(key instanceof Uint8Array)) throw new TypeError("key must be a Uint8Array");
    const entry = this.#index.get(toKeyString(key));
    return entry === undefined ? undefined : this.#load(entry);
  }

  async scan(options: ScanOptions): Promise<KvPair[]> {
    this.#ensureOpen();
    assertScanOptions(options);
    const start = options.start === undefined ? undefined : toKeyString(options.start);
    const end = options.end === undefined ? undefined : toKeyString(options.end);
    const keys = this.#index.range(start, end, options.limit, options.reverse === true);
    // Resolve entries before the first await so the pairs are one consistent snapshot.
    const entries = keys.map((key) => this.#index.get(key)!);
    const out: KvPair[] = [];
    for (let i = 0; i < keys.length; i++) out.push({ key: fromKeyString(keys[i]!), value: await this.#load(entries[i]!) });
    return out;
  }

  async lastInRanges(ranges: readonly KeyRange[]): Promise<Array<KvPair | undefined>> {
    this.#ensureOpen();
    assertRanges(ranges);
    // Resolve every entry before the first await so the answers are one consistent snapshot.
    const found = ranges.map((range) => {
      const below = this.#index.lastBelow(toKeyString(range.end));
      const key = below !== undefined && keyAtLeast(below, range.start) ? below : undefined;
      return key === undefined ? undefined : { key, entry: this.#index.get(key)! };
    });
    const out: Array<KvPair | undefined> = [];
    for (const hit of found) out.push(hit === undefined ? undefined : { key: fromKeyString(hit.key), value: await this.#load(hit.entry) });
    return out;
  }

  commit(batch: BatchOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageClosedError(this.name));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    let encoded: CheckedBatch;
    try {
      encoded = { ops: batch, encodedBytes: batchEncodedBytes(batch) };
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ batch: encoded, resolve, reject });
      this.#scheduleFlush();
    });
  }

  async sizeBytes(): Promise<number> {
    return this.#sealedBytes + this.#writePosition + this.#checkpointFileBytes;
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    await this.#drain();
    await this.#checkpointInFlight;
    try {
      if (this.#failure === undefined && this.#bytesSinceCheckpoint > 0) await this.#writeCheckpoint();
    } finally {
      await closeFile(this.#writeFd);
      await this.#readers.closeAll();
    }
  }

  #ensureOpen(): void {
    if (this.#closed) throw new StorageClosedError(this.name);
  }

  async #load(entry: IndexEntry): Promise<Uint8Array> {
    if (entry instanceof Uint8Array) return entry.slice();
    const path = segmentPath(this.#options.dir, entry.segment);
    let value: Uint8Array;
    try {
      value = await this.#readers.read(entry.segment, entry.offset, entry.length);
    } catch (error) {
      if (error instanceof RangeError) throw new StorageCorruptionError(`${path} at offset ${entry.offset}: ${error.message}`);
      throw error;
    }
    if (crc32c(value) !== entry.crc) throw new StorageCorruptionError(`${path} at offset ${entry.offset}: value checksum mismatch`);
    return value;
  }

  /** Start the flush loop on the next microtask, so commits issued in the same tick share a group. */
  #scheduleFlush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    queueMicrotask(() => void this.#flushLoop());
  }

  async #flushLoop(): Promise<void> {
    while (this.#queue.length > 0 && this.#failure === undefined) {
      const group = this.#takeGroup();
      try {
        await this.#writeGroup(group);
      } catch (error) {
        const failure = this.#failStop(error);
        for (const pending of group) pending.reject(failure);
      }
    }
    for (const pending of this.#queue.splice(0)) pending.reject(this.#failure);
    this.#flushing = false;
    for (const wake of this.#drainWaiters.splice(0)) wake();
  }

  /** Take queued commits, oldest first, up to `groupBytesMax` (always at least one). */
  #takeGroup(): PendingCommit[] {
    let bytes = 0;
    let count = 0;
    while (count < this.#queue.length) {
      bytes += this.#queue[count]!.batch.encodedBytes;
      if (count > 0 && bytes > this.#options.groupBytesMax) break;
      count++;
    }
    return this.#queue.splice(0, count);
  }

  /** One write + one fdatasync for the whole group; acknowledge only after both succeed. */
  async #writeGroup(group: PendingCommit[]): Promise<void> {
    if (group.every((pending) => pending.batch.ops.length === 0)) {
      for (const pending of group) pending.resolve();
      return;
    }
    const batches = group.map((pending) => pending.batch);
    const { frame, valueOffsets } = encodeFrame(batches);
    if (this.#writePosition > 0 && this.#writePosition + frame.length > this.#options.segmentBytes) await this.#roll();
    const offset = this.#writePosition;
    const fd = this.#writeFd;
    const path = segmentPath(this.#options.dir, this.#activeSegment);
    let durable: Promise<void>;
    if (frame.length <= BLOCKING_WRITE_BYTES_MAX) {
      writeAllBlocking(fd, frame, offset);
      durable = this.#sync.syncFile(fd, path);
    } else {
      durable = writeAll(fd, frame, offset).then(() => this.#sync.syncFile(fd, path));
    }
    // The index updates are worked out while the write and fdatasync are in flight, applied only once both succeeded.
    const updates = encodedFrameUpdates(batches, valueOffsets, this.#activeSegment, offset, this.#options.inlineValueBytesMax);
    await durable;
    this.#writePosition = offset + frame.length;
    applyUpdates(this.#index, updates);
    this.#bytesSinceCheckpoint += frame.length;
    for (const pending of group) pending.resolve();
    if (this.#bytesSinceCheckpoint >= this.#options.checkpointBytes) this.#startCheckpoint();
  }

  /** Seal the active segment and start the next; the new file's entry is made durable first. */
  async #roll(): Promise<void> {
    const next = this.#activeSegment + 1;
    if (next > SEGMENT_NUMBER_MAX) throw new RangeError("fs-log ran out of segment numbers");
    const fd = await openFile(segmentPath(this.#options.dir, next), "wx");
    const sealedFd = this.#writeFd;
    this.#writeFd = fd;
    this.#sealedBytes += this.#writePosition;
    this.#activeSegment = next;
    this.#writePosition = 0;
    await closeFile(sealedFd);
    await this.#sync.syncDir(this.#options.dir);
  }

  #startCheckpoint(): void {
    if (this.#checkpointInFlight !== undefined) return;
    this.#checkpointInFlight = this.#writeCheckpoint()
      .catch((error) => void this.#failStop(error))
      .finally(() => {
        this.#checkpointInFlight = undefined;
      });
  }

  /** Snapshot the index synchronously (so it matches the log position), then write it atomically. */
  async #writeCheckpoint(): Promise<void> {
    const { keys, entries } = this.#index.sortedEntries();
    const position = { segment: this.#activeSegment, offset: this.#writePosition };
    const bytes = encodeCheckpoint({ position, keys, entries });
    this.#bytesSinceCheckpoint = 0;
    const dir = this.#options.dir;
    const temp = join(dir, CHECKPOINT_TEMP_FILE);
    const fd = await openFile(temp, "w");
    try {
      await writeAll(fd, bytes, 0);
      await this.#options.fsyncHook?.({ kind: "checkpoint", path: temp });
      await fdatasync(fd);
    } finally {
      await closeFile(fd);
    }
    await renameFile(temp, join(dir, CHECKPOINT_FILE));
    await this.#sync.syncDir(dir);
    this.#checkpointFileBytes = bytes.length;
  }

  #failStop(cause: unknown): StorageFailStopError {
    this.#failure ??= new StorageFailStopError(this.name, cause);
    return this.#failure;
  }

  #drain(): Promise<void> {
    if (!this.#flushing) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }
}
