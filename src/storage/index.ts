/**
 * The storage port: the one interface every durable thing in Scribe Ledger
 * goes through. It is an ordered key-value store over raw bytes with point
 * reads, range scans and atomic, durable batch commits. The Raft log, the key
 * index, values, Merkle nodes and metadata are all key ranges in it (see
 * `keys.ts` for the tuple encoding that keeps them apart and ordered).
 *
 * Contract every adapter must honour (checked by test/storage/conformance.ts):
 * - Keys compare as unsigned bytes, lexicographically (memcmp order).
 * - `commit` is atomic (after a crash either every op of the batch is visible
 *   or none is) and durable (its promise resolves only after the data would
 *   survive a power cut: fsync or the adapter's equivalent). A commit marked
 *   `{ durable: false }` may resolve before that, and a crash may then lose
 *   it, but only with every commit after it: it is durable once any later
 *   durable commit has resolved (commits are durable in order). An adapter
 *   may treat every commit as durable.
 * - Ownership, chosen so the hot path copies nothing: arrays passed to
 *   `commit` become the store's (the caller must not mutate them afterwards);
 *   arrays returned by `get`/`scan` are read-only for the caller (an adapter
 *   may hand out the bytes it holds). An adapter may copy; none must.
 * - Operations after `close()` reject with `StorageClosedError`.
 */

/** One stored pair as returned by `scan`. */
export interface KvPair {
  key: Uint8Array;
  value: Uint8Array;
}

/** A range scan: keys in [start, end), at most `limit` of them. */
export interface ScanOptions {
  /** Inclusive lower bound; omitted = from the first key. */
  start?: Uint8Array;
  /** Exclusive upper bound; omitted = to the last key. */
  end?: Uint8Array;
  /** Maximum number of pairs to return; must be a positive integer. */
  limit: number;
  /** Walk from `end` down to `start` instead. */
  reverse?: boolean;
}

/** A key range [start, end). */
export interface KeyRange {
  start: Uint8Array;
  end: Uint8Array;
}

/** One write inside an atomic batch. Later ops win over earlier ones on the same key. */
export type BatchOp =
  | { type: "put"; key: Uint8Array; value: Uint8Array }
  | { type: "delete"; key: Uint8Array };

/** Options of one `commit`. */
export interface CommitOptions {
  /**
   * Default true. False: the caller can rebuild this batch after a crash (the
   * Raft loop re-applies committed entries from its durable log), so the
   * adapter may skip the fsync; the next durable commit makes it durable.
   */
  durable?: boolean;
}

/** The storage port. See the module comment for the contract. */
export interface Storage {
  /** Adapter name for logs and metrics, e.g. "memory", "sqlite". */
  readonly name: string;
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  scan(options: ScanOptions): Promise<KvPair[]>;
  /**
   * For each range, its last pair (the greatest key in [start, end)), or
   * undefined when the range is empty: the result of a reverse scan with
   * limit 1 per range, in one call, so an adapter can answer many at once
   * (the ledger looks up the newest version of every key a write group
   * touches). At most RANGES_PER_CALL_MAX ranges.
   */
  lastInRanges(ranges: readonly KeyRange[]): Promise<Array<KvPair | undefined>>;
  /** Atomically and durably apply `batch`. Resolves once durable (or, with `durable: false`, once applied; see the module comment). */
  commit(batch: BatchOp[], options?: CommitOptions): Promise<void>;
  /**
   * Optional. Settle, on the calling thread and at once, commits the adapter
   * has already made durable but not yet reported (an adapter whose commits
   * finish on another thread reports them by message, which waits until the
   * event loop gets to it). Returns how many commits it settled. Must be
   * cheap (an atomic load when there is nothing to do): nodes call it on
   * their hot paths, once per incoming request.
   */
  pollCommits?(): number;
  /** Approximate bytes used on disk (or in memory), for metrics. */
  sizeBytes(): Promise<number>;
  /** Flush and release resources. Idempotent. */
  close(): Promise<void>;
}

/** Upper bound on `ScanOptions.limit`, so no caller can ask for the whole store at once. */
export const SCAN_LIMIT_MAX = 100_000;

/** Most ranges one `lastInRanges` call may ask about. */
export const RANGES_PER_CALL_MAX = 4096;

/** Checks a `lastInRanges` call's size; a call over the limit is a programmer error. */
export function assertRanges(ranges: readonly KeyRange[]): void {
  if (ranges.length > RANGES_PER_CALL_MAX) throw new RangeError(`lastInRanges takes at most ${RANGES_PER_CALL_MAX} ranges, got ${ranges.length}`);
}

/** `lastInRanges` answered with one reverse scan per range, in parallel: for adapters with nothing better. */
export async function lastInRangesByScan(storage: Pick<Storage, "scan">, ranges: readonly KeyRange[]): Promise<Array<KvPair | undefined>> {
  assertRanges(ranges);
  const found = await Promise.all(ranges.map((range) => storage.scan({ start: range.start, end: range.end, limit: 1, reverse: true })));
  return found.map((rows) => rows[0]);
}

/** Raised by any operation on a closed store. */
export class StorageClosedError extends Error {
  constructor(adapter: string) {
    super(`storage adapter "${adapter}" is closed`);
    this.name = "StorageClosedError";
  }
}

/** Raised when bytes read back from durable storage fail a checksum or shape check. */
export class StorageCorruptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StorageCorruptionError";
  }
}

/** Unsigned lexicographic comparison of two byte strings (memcmp order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const diff = a[i]! - b[i]!;
    if (diff !== 0) return diff;
  }
  return a.length - b.length;
}

/** Checks the scan options every adapter receives; a bad limit is a programmer error. */
export function assertScanOptions(options: ScanOptions): void {
  if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > SCAN_LIMIT_MAX) {
    throw new RangeError(`scan limit must be an integer in [1, ${SCAN_LIMIT_MAX}], got ${options.limit}`);
  }
}
