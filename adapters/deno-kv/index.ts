/**
 * Deno KV storage adapter (`Deno.openKv(path)`), log-structured: the whole
 * ordered key space lives in an in-memory index that serves every read, and
 * Deno KV holds an append-only log of group commits plus a periodic snapshot,
 * so a group costs a few large Deno KV values instead of one mutation per row.
 * It must never acknowledge a commit before the Deno KV atomic operation that
 * makes it durable has resolved, and never let a reader see a commit before
 * that (the index publishes a group only once it is durable; layered-index.ts).
 *
 * Layout (Deno KV keys; blob format in codec.ts):
 *   ["meta", "format"]      -> {layout: "scribe-log", version: 1}; a database without it is refused
 *   ["meta", "base"]        -> {snapshot, pieces, firstRecord}: the state is that snapshot plus
 *                              log records firstRecord, firstRecord + 1, ... applied in order
 *   ["log", record, block]  -> one group commit: block 0 a header (op count, sizes, CRC-32 per
 *                              block), blocks 1..n the ops (up to 63 KiB each)
 *   ["snap", snapshot, piece, block] -> a snapshot piece (about SNAPSHOT_PIECE_BYTES of sorted puts)
 *
 * Crash protocol. A record that fits one atomic operation (12 blocks, about
 * 756 KiB of ops) is written by one. A bigger one writes its first blocks,
 * then its header together with the last blocks that fit beside it: the
 * header is the commit point, so after a crash a record is whole or
 * headerless, and open deletes a headerless last record. Records are written
 * one at a time in order, so the log has no holes. A compaction writes a new
 * snapshot's pieces, flips the base pointer in one atomic operation (the
 * commit point), then deletes the old snapshot and the records it covers;
 * open deletes whatever of that a crash left. After a failed Deno KV write
 * the store refuses writes (fail-stop; reopen to recover); reads go on
 * serving the durable state.
 *
 * Group commit: commits queued while a record is being written share the
 * next record (up to GROUP_COMMITS_MAX commits, GROUP_BYTES_MAX bytes); at
 * most QUEUED_COMMITS_MAX commits wait.
 *
 * Memory: every live key and value is held in memory (like fs-log's index,
 * but values too): about the live data size plus per-key overhead, and while
 * a compaction runs, also the values it captured that were overwritten since.
 *
 * Open cost: read, check and decode the base snapshot (about the live data
 * size) and every log record after it. A compaction starts once that log
 * reaches max(compactLogBytes, live bytes), so a replay reads at most about
 * twice the live data plus compactLogBytes (64 MiB by default) plus one
 * group. Snapshot pieces are encoded and written between commits; capturing
 * the sorted key list is one synchronous O(live keys) step.
 *
 * It must never be opened by two processes at once (single writer); a second
 * writer is detected by a failed atomic check at the latest.
 */
import {
  assertRanges,
  assertScanOptions,
  type BatchOp,
  type KeyRange,
  type KvPair,
  type ScanOptions,
  type Storage,
  StorageClosedError,
} from "../../src/storage/index.ts";
import { fromKeyString, toKeyString } from "../../src/storage/sorted-map.ts";
import {
  ATOMIC_BYTES_MAX,
  ATOMIC_MUTATIONS_MAX,
  BATCH_BYTES_MAX,
  BLOB_LOG_RECORD,
  BLOB_SNAPSHOT_PIECE,
  encodeBlob,
  KEY_BYTES_MAX,
  opBytes,
  PayloadWriter,
  VALUE_BYTES_MAX,
} from "./codec.ts";
import { commitAtomic, deleteOf, denoGlobal, type DenoGlobal, type Kv, type Mutation, setBytes, setObject, writeUnordered } from "./kv.ts";
import { buildLayer, type Layer, LayeredIndex } from "./layered-index.ts";
import { type Base, BASE_KEY, type DenoKvRecoveryReport, LOG, openLog, SNAPSHOT } from "./replay.ts";

export { DenoKvLayoutError, type DenoKvRecoveryReport } from "./replay.ts";

/** Most commits merged into one log record. */
export const GROUP_COMMITS_MAX = 1024;
/** Most payload bytes merged into one log record (a single bigger commit still gets a record of its own). */
export const GROUP_BYTES_MAX = 8 * 1024 * 1024;
/** Most commits waiting for the writer; more are refused with DenoKvQueueFullError. */
export const QUEUED_COMMITS_MAX = 4096;
/** Target payload bytes of one snapshot piece (a piece holds at least one entry, so one large value can exceed it). */
export const SNAPSHOT_PIECE_BYTES = 4 * 1024 * 1024;
const COMPACT_LOG_BYTES_DEFAULT = 64 * 1024 * 1024;

/** Options for {@link createDenoKvStorage}. */
export interface DenoKvStorageOptions {
  /** Path of the Deno KV database file (passed to `Deno.openKv`). One process at a time. */
  path: string;
  /** Name reported in logs and metrics; default "deno-kv". */
  name?: string;
  /** Start a compaction once the log since the base snapshot holds max(this, live bytes); default 64 MiB, at least 1. */
  compactLogBytes?: number;
  /**
   * Test-only fault injection: stop (as if the process died) after a
   * multi-atomic record's payload blocks but before its header, or after a
   * snapshot's pieces but before the base flip, or after the flip but before
   * the old rows are deleted. The store refuses further writes; reopen to recover.
   */
  crashPoint?: "before-header" | "before-base-flip" | "after-base-flip";
}

/** The store `createDenoKvStorage` returns. */
export interface DenoKvStorage extends Storage {
  /** What open found and cleaned up. */
  readonly recovery: DenoKvRecoveryReport;
  /** Settles when no compaction is running (for tests and shutdown). */
  compacted(): Promise<void>;
}

/** Every write after a failed Deno KV write rejects with this; reopen to recover. */
export class DenoKvFailStopError extends Error {
  constructor(adapter: string, cause: unknown) {
    super(`storage adapter "${adapter}" stopped after a failed write; reopen to recover: ${String((cause as Error)?.message ?? cause)}`, { cause });
    this.name = "DenoKvFailStopError";
  }
}

/** A commit refused because QUEUED_COMMITS_MAX commits are already waiting. */
export class DenoKvQueueFullError extends Error {
  constructor(adapter: string) {
    super(`storage adapter "${adapter}" has ${QUEUED_COMMITS_MAX} commits queued; retry after some complete`);
    this.name = "DenoKvQueueFullError";
  }
}

/**
 * Open (creating if needed) a Deno KV store at `options.path`, replaying its
 * log and deleting what a crash left behind. Needs Deno with --unstable-kv.
 */
export async function createDenoKvStorage(options: DenoKvStorageOptions): Promise<DenoKvStorage> {
  const deno = denoGlobal();
  if (typeof options?.path !== "string" || options.path === "") throw new TypeError("deno-kv needs options.path");
  const compactLogBytes = options.compactLogBytes ?? COMPACT_LOG_BYTES_DEFAULT;
  if (!Number.isSafeInteger(compactLogBytes) || compactLogBytes < 1) throw new RangeError("deno-kv compactLogBytes must be a positive integer");
  const kv = await deno.openKv!(options.path);
  try {
    return new DenoKvStore(kv, deno, options, compactLogBytes, await openLog(kv, options.path));
  } catch (error) {
    kv.close();
    throw error;
  }
}

interface PendingCommit {
  batch: BatchOp[];
  payloadBytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Check a batch before it is queued and take a shallow copy of its op list
 * (the key and value arrays become the store's, per the port's contract), so
 * nothing the caller does afterwards can make the write differ from what was
 * checked. Bad input is refused here, before any write.
 */
function validateBatch(batch: BatchOp[]): { ops: BatchOp[]; payloadBytes: number } {
  if (!Array.isArray(batch)) throw new TypeError("commit batch must be an array");
  const ops = batch.slice();
  let bytes = 0;
  for (const op of ops) {
    if (op === null || typeof op !== "object" || !(op.key instanceof Uint8Array)) throw new TypeError("batch op key must be a Uint8Array");
    if (op.key.length > KEY_BYTES_MAX) throw new RangeError(`key of ${op.key.length} bytes exceeds ${KEY_BYTES_MAX}`);
    if (op.type === "put") {
      if (!(op.value instanceof Uint8Array)) throw new TypeError("put value must be a Uint8Array");
      if (op.value.length > VALUE_BYTES_MAX) throw new RangeError(`value of ${op.value.length} bytes exceeds ${VALUE_BYTES_MAX}`);
      bytes += opBytes(op.key, op.value);
    } else if (op.type === "delete") bytes += opBytes(op.key, undefined);
    else throw new TypeError(`unknown batch op type ${String((op as { type: unknown }).type)}`);
  }
  if (bytes > BATCH_BYTES_MAX) throw new RangeError(`batch encodes to ${bytes} bytes; at most ${BATCH_BYTES_MAX} per commit`);
  return { ops, payloadBytes: bytes };
}

const sum = (numbers: readonly number[]): number => numbers.reduce((total, n) => total + n, 0);

/**
 * For a record's mutations (header first, then its blocks): the index of the
 * first block that can share the header's atomic operation, so that blocks
 * [1, index) are written before it; 1 when the whole record fits one operation.
 */
function tailThatFitsWithHeader(mutations: readonly Mutation[]): number {
  let bytes = mutations[0]!.bytes;
  let index = mutations.length;
  while (index > 1 && mutations.length - index + 2 <= ATOMIC_MUTATIONS_MAX && bytes + mutations[index - 1]!.bytes <= ATOMIC_BYTES_MAX) {
    bytes += mutations[index - 1]!.bytes;
    index--;
  }
  return index;
}

class DenoKvStore implements DenoKvStorage {
  readonly name: string;
  readonly recovery: DenoKvRecoveryReport;
  #kv: Kv;
  #deno: DenoGlobal;
  #path: string;
  #crashPoint: DenoKvStorageOptions["crashPoint"];
  #compactLogBytes: number;
  #index: LayeredIndex;
  #base: Base;
  #baseVersionstamp: string;
  #pieceBlocks: number[];
  /** Rows and payload bytes of log record #base.firstRecord + i; the next record is #base.firstRecord + length. */
  #recordBlocks: number[];
  #recordBytes: number[];
  /** Sum of #recordBytes: the log a replay would read after the base snapshot. */
  #logBytes: number;
  #queue: PendingCommit[] = [];
  #flushing: Promise<void> | undefined;
  #compaction: Promise<void> | undefined;
  #failure: DenoKvFailStopError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(kv: Kv, deno: DenoGlobal, options: DenoKvStorageOptions, compactLogBytes: number, log: Awaited<ReturnType<typeof openLog>>) {
    this.name = options.name ?? "deno-kv";
    this.#kv = kv;
    this.#deno = deno;
    this.#path = options.path;
    this.#crashPoint = options.crashPoint;
    this.#compactLogBytes = compactLogBytes;
    this.#index = new LayeredIndex(log.values, log.liveBytes);
    this.#base = log.base;
    this.#baseVersionstamp = log.baseVersionstamp;
    this.#pieceBlocks = log.pieceBlocks;
    this.#recordBlocks = log.recordBlocks;
    this.#recordBytes = log.recordBytes;
    this.#logBytes = sum(log.recordBytes);
    this.recovery = log.report;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#ensureOpen();
    if (!(key instanceof Uint8Array)) throw new TypeError("key must be a Uint8Array");
    return this.#index.get(toKeyString(key));
  }

  async scan(options: ScanOptions): Promise<KvPair[]> {
    this.#ensureOpen();
    assertScanOptions(options);
    const start = options.start === undefined ? undefined : toKeyString(options.start);
    const end = options.end === undefined ? undefined : toKeyString(options.end);
    return this.#index.range(start, end, options.limit, options.reverse === true).map(([key, value]) => ({ key: fromKeyString(key), value }));
  }

  async lastInRanges(ranges: readonly KeyRange[]): Promise<Array<KvPair | undefined>> {
    this.#ensureOpen();
    assertRanges(ranges);
    return ranges.map((range) => {
      const pair = this.#index.lastInRange(range.start, toKeyString(range.end));
      return pair === undefined ? undefined : { key: fromKeyString(pair[0]), value: pair[1] };
    });
  }

  commit(batch: BatchOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageClosedError(this.name));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#queue.length >= QUEUED_COMMITS_MAX) return Promise.reject(new DenoKvQueueFullError(this.name));
    let checked: ReturnType<typeof validateBatch>;
    try {
      checked = validateBatch(batch);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ batch: checked.ops, payloadBytes: checked.payloadBytes, resolve, reject });
      this.#flushing ??= Promise.resolve().then(() => this.#flushLoop());
    });
  }

  async sizeBytes(): Promise<number> {
    let total = 0;
    for (const suffix of ["", "-wal", "-shm"]) {
      try {
        total += (await this.#deno.stat(this.#path + suffix)).size;
      } catch {
        // The -wal and -shm files come and go with SQLite checkpoints; absent means 0 bytes.
      }
    }
    return total;
  }

  compacted(): Promise<void> {
    return this.#compaction ?? Promise.resolve();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#flushing;
      await this.#compaction;
      this.#kv.close();
    })();
    return this.#closing;
  }

  #ensureOpen(): void {
    if (this.#closed) throw new StorageClosedError(this.name);
  }

  #fail(error: unknown): DenoKvFailStopError {
    this.#failure ??= new DenoKvFailStopError(this.name, error);
    return this.#failure;
  }

  async #flushLoop(): Promise<void> {
    while (this.#queue.length > 0 && this.#failure === undefined) {
      const group = this.#takeGroup();
      let layer: Layer;
      try {
        const writing = this.#writeGroup(group);
        // While Deno KV writes: fold the previous group into the base, build this group's layer (not yet visible).
        this.#index.fold();
        layer = buildLayer(group.map((pending) => pending.batch));
        await writing;
      } catch (error) {
        const failure = this.#fail(error);
        for (const pending of group) pending.reject(failure);
        break;
      }
      // Durable: publish the whole group in one synchronous step, so readers see whole commits only.
      this.#index.publish(layer);
      for (const pending of group) pending.resolve();
      this.#maybeCompact();
    }
    for (const pending of this.#queue.splice(0)) pending.reject(this.#failure);
    this.#flushing = undefined;
  }

  /** Oldest commits that together stay within the group limits (always at least one). */
  #takeGroup(): PendingCommit[] {
    let count = 0;
    let bytes = 0;
    while (count < this.#queue.length && count < GROUP_COMMITS_MAX) {
      const next = this.#queue[count]!.payloadBytes;
      if (count > 0 && bytes + next > GROUP_BYTES_MAX) break;
      bytes += next;
      count++;
    }
    return this.#queue.splice(0, count);
  }

  /** Write the group as the next log record; resolves once it is durable. */
  async #writeGroup(group: PendingCommit[]): Promise<void> {
    let bytes = 0;
    let opCount = 0;
    for (const pending of group) {
      bytes += pending.payloadBytes;
      opCount += pending.batch.length;
    }
    if (opCount === 0) return;
    const writer = new PayloadWriter(bytes);
    for (const pending of group) for (const op of pending.batch) writer.write(op.key, op.type === "put" ? op.value : undefined);
    const id = this.#base.firstRecord + this.#recordBlocks.length;
    const blocks = encodeBlob(BLOB_LOG_RECORD, id, opCount, writer.finish());
    const mutations = blocks.map((block, i) => setBytes([LOG, id, i], block));
    // The header goes last, in the final atomic operation with as many of the last blocks as fit there.
    const tail = tailThatFitsWithHeader(mutations);
    if (tail > 1) {
      await writeUnordered(this.#kv, mutations.slice(1, tail), this.#path);
      if (this.#crashPoint === "before-header") throw new Error("simulated crash before a record's header");
    }
    const final = tail === 1 ? mutations : [mutations[0]!, ...mutations.slice(tail)];
    await commitAtomic(this.#kv, final, [{ key: mutations[0]!.key, versionstamp: null }], this.#path);
    this.#recordBlocks.push(blocks.length);
    this.#recordBytes.push(bytes);
    this.#logBytes += bytes;
  }

  #maybeCompact(): void {
    if (this.#compaction !== undefined || this.#closed || this.#logBytes < Math.max(this.#compactLogBytes, this.#index.liveBytes)) return;
    const { keys, entries } = this.#index.sortedEntries();
    this.#compaction = this.#compact(keys, entries, this.#base.firstRecord + this.#recordBlocks.length)
      .catch((error) => void this.#fail(error))
      .finally(() => (this.#compaction = undefined));
  }

  /** Write a snapshot of `keys`/`values` (the state before record `firstRecord`), make it the base, delete what it covers. */
  async #compact(keys: string[], values: Uint8Array[], firstRecord: number): Promise<void> {
    const snapshot = this.#base.snapshot + 1;
    const pieceBlocks: number[] = [];
    for (let first = 0; first < keys.length; ) {
      // Abandoned on close or failure: open deletes a snapshot that never became the base.
      if (this.#closed || this.#failure !== undefined) return;
      let bytes = 0;
      let end = first;
      for (; end < keys.length; end++) {
        const entryBytes = 9 + keys[end]!.length + values[end]!.length;
        if (end > first && bytes + entryBytes > SNAPSHOT_PIECE_BYTES) break;
        bytes += entryBytes;
      }
      const writer = new PayloadWriter(bytes);
      for (let i = first; i < end; i++) writer.write(fromKeyString(keys[i]!), values[i]!);
      const piece = pieceBlocks.length;
      const blocks = encodeBlob(BLOB_SNAPSHOT_PIECE, piece, end - first, writer.finish());
      await writeUnordered(this.#kv, blocks.map((block, i) => setBytes([SNAPSHOT, snapshot, piece, i], block)), this.#path);
      pieceBlocks.push(blocks.length);
      first = end;
    }
    if (this.#crashPoint === "before-base-flip") throw new Error("simulated crash before the base flip");
    const base: Base = { snapshot, pieces: pieceBlocks.length, firstRecord };
    this.#baseVersionstamp = await commitAtomic(this.#kv, [setObject(BASE_KEY, base)], [{ key: BASE_KEY, versionstamp: this.#baseVersionstamp }], this.#path);
    const old = this.#base;
    const oldPieces = this.#pieceBlocks;
    const coveredBlocks = this.#recordBlocks.splice(0, firstRecord - old.firstRecord);
    this.#logBytes -= sum(this.#recordBytes.splice(0, coveredBlocks.length));
    this.#base = base;
    this.#pieceBlocks = pieceBlocks;
    if (this.#crashPoint === "after-base-flip") throw new Error("simulated crash after the base flip");
    const deletes: Mutation[] = [];
    oldPieces.forEach((blocks, piece) => {
      for (let i = 0; i < blocks; i++) deletes.push(deleteOf([SNAPSHOT, old.snapshot, piece, i]));
    });
    coveredBlocks.forEach((blocks, n) => {
      for (let i = 0; i < blocks; i++) deletes.push(deleteOf([LOG, old.firstRecord + n, i]));
    });
    await writeUnordered(this.#kv, deletes, this.#path);
  }
}
