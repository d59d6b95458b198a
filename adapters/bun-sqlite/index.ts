/**
 * Bun SQLite storage adapter: one SQLite file in WAL mode; `commit` resolves
 * only once its transaction is on disk (the WAL fsynced). The default on
 * Bun.
 *
 * Two write paths, chosen at open (`writer`):
 * - "worker" (worker-writer.ts): a dedicated connection in a Worker commits
 *   groups with synchronous=FULL, so the fsync never blocks the event loop.
 * - "inline" (inline-writer.ts): transactions run on this thread's
 *   connection without an fsync, and an fdatasync of the WAL on the I/O
 *   thread pool acknowledges them; no thread hand-off per group.
 * Reads always use the connection on the calling thread (WAL lets readers
 * run beside the writer and see every committed transaction; with "inline"
 * they may see a transaction before its sync, which the ledger's readers
 * never serve before it is published).
 */
import { type BatchOp, type CommitOptions, type KeyRange, type ScanOptions, type Storage, StorageClosedError } from "../../src/storage/index.ts";
import { createInlineWriter, type SqliteWriter } from "./inline-writer.ts";
import { SqliteReader, type SqliteDatabase } from "./reader.ts";
import { createWorkerWriter } from "./worker-writer.ts";

export { GROUPS_IN_FLIGHT_MAX } from "./worker-writer.ts";

/** How commits reach the disk; see the module comment. */
export type SqliteWriterKind = "inline" | "worker";

/** Options for {@link createBunSqliteStorage}. */
export interface BunSqliteStorageOptions {
  /** Path of the database file; created if missing. Its directory must exist. */
  path: string;
  /** Most batches merged into one transaction ("worker" writer). Default 1024. */
  groupBatchesMax?: number;
  /** The write path. Default "worker". */
  writer?: SqliteWriterKind;
}

const GROUP_BATCHES_MAX_DEFAULT = 1024;

/** Open (or create) the SQLite store at `options.path`. Needs Bun. */
export async function createBunSqliteStorage(options: BunSqliteStorageOptions): Promise<Storage> {
  const db = await openDatabase(options.path);
  const reader = new SqliteReader(db);
  let writer: SqliteWriter;
  let poll: (() => number) | undefined;
  if (options.writer === "inline") {
    writer = createInlineWriter(db, options.path);
  } else {
    const polled = await createWorkerWriter(options.path, options.groupBatchesMax ?? GROUP_BATCHES_MAX_DEFAULT);
    writer = polled;
    poll = () => polled.poll();
  }
  let closed = false;
  function ensureOpen(): void {
    if (closed) throw new StorageClosedError("sqlite");
  }

  return {
    name: "sqlite",
    async get(key: Uint8Array) {
      ensureOpen();
      return reader.get(key);
    },
    async scan(scanOptions: ScanOptions) {
      ensureOpen();
      return reader.scan(scanOptions);
    },
    async lastInRanges(ranges: readonly KeyRange[]) {
      ensureOpen();
      return reader.lastInRanges(ranges);
    },
    pollCommits: poll,
    commit(batch: BatchOp[], commitOptions?: CommitOptions) {
      if (closed) return Promise.reject(new StorageClosedError("sqlite"));
      return writer.commit(batch, commitOptions?.durable !== false);
    },
    async sizeBytes() {
      ensureOpen();
      return reader.sizeBytes();
    },
    async close() {
      if (closed) return;
      closed = true;
      // The writer finishes every commit it accepted before it stops.
      await writer.close();
      db.close();
    },
  };
}

/** This thread's connection to the file at `path`, in WAL mode with the kv table made. */
async function openDatabase(path: string): Promise<SqliteDatabase> {
  if (typeof (globalThis as { Bun?: unknown }).Bun === "undefined") {
    throw new Error("the sqlite adapter needs Bun (bun:sqlite); run with bun, or choose --storage fs");
  }
  const { Database } = (await import("bun:sqlite")) as unknown as {
    Database: new (path: string, options?: { create?: boolean; strict?: boolean }) => SqliteDatabase;
  };
  const db = new Database(path, { create: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = FULL");
  db.exec("PRAGMA busy_timeout = 5000");
  db.exec("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY NOT NULL, v BLOB NOT NULL) WITHOUT ROWID");
  return db;
}
