/**
 * The SQLite write path without a worker: each commit's transaction runs on
 * the calling thread's connection with synchronous=NORMAL (SQLite writes the
 * WAL frames but does not fsync them), and the commit resolves only after an
 * fdatasync of the WAL file that started after its COMMIT returned. The
 * fdatasync runs on the runtime's I/O thread pool, so the event loop keeps
 * serving while the disk syncs. Up to SYNCS_IN_FLIGHT_MAX syncs run at once;
 * transactions committed while that many run share the next one. Two at once
 * rather than one: a commit that lands just after a sync started no longer
 * waits for that sync to end before its own can begin (bench: about 3% more
 * durable PUTs/s, README "SQLite writer").
 *
 * Why: on a 2-core machine shared with clients, handing every group to a
 * worker and back cost about 0.36 ms of thread wake-ups per group (measured:
 * a group spent 0.82 ms in storage, of which the worker's transaction and
 * COMMIT took 0.47). A single node gains about 10% throughput here. A Raft
 * node keeps the worker: there the main thread is the bottleneck, and the
 * inline transactions cost it 6% (README, "SQLite writer").
 *
 * Durability is that of synchronous=FULL: an acknowledged commit's frames
 * are on disk. The WAL file's directory entry is synced once, after the first
 * sync of each WAL file this connection opens (SQLite syncs it itself only
 * on its own first WAL sync, which NORMAL mode defers to the first
 * checkpoint). Checkpoints stay SQLite's: in NORMAL mode it syncs the WAL
 * before and the database file after each one. A failed transaction or
 * sync fail-stops the writer (after a failed fsync the kernel may have
 * dropped the dirty pages, so nothing after it can be trusted durable).
 */
import { closeSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { type BatchOp } from "../../src/storage/index.ts";
import { fdatasync, fsyncDir } from "../fs-log/fs-io.ts";

/** The part of a bun:sqlite Database the writer uses. */
export interface InlineDatabase {
  exec(sql: string): void;
  prepare(sql: string): RunStatement;
}
interface RunStatement {
  run(...params: unknown[]): unknown;
}

/** A write path of the adapter: commits batches, in call order. */
export interface SqliteWriter {
  /** Commit `batch` atomically; resolves once durable (or, with `durable` false, once committed). */
  commit(batch: readonly BatchOp[], durable: boolean): Promise<void>;
  /** Finish every sync still owed, then stop (does not close the database). */
  close(): Promise<void>;
}

interface SyncWaiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Most WAL syncs running at once. */
export const SYNCS_IN_FLIGHT_MAX = 2;

/** Most commits waiting for one sync; beyond it `commit` refuses (the writer is then far behind the disk). */
export const INLINE_SYNC_WAITERS_MAX = 1_000_000;

/** The file syncs the writer calls; tests pass their own to control when and how each ends. */
export interface SyncCalls {
  fdatasync(fd: number): Promise<void>;
  fsyncDir(path: string): Promise<void>;
}

/** The inline writer on `db` (the database file at `path`); switches the connection to synchronous=NORMAL. */
export function createInlineWriter(db: InlineDatabase, path: string, io: SyncCalls = { fdatasync, fsyncDir }): SqliteWriter {
  return new InlineWriter(db, path, io);
}

class InlineWriter implements SqliteWriter {
  readonly #db: InlineDatabase;
  readonly #io: SyncCalls;
  readonly #put: RunStatement;
  readonly #remove: RunStatement;
  readonly #walPath: string;
  /** Open on the WAL file once a transaction created it; undefined before. */
  #walFd: number | undefined;
  #directorySynced = false;
  /** Commits whose transaction is done and that wait for a sync to start. */
  #owed: SyncWaiter[] = [];
  /** The syncs running now (at most SYNCS_IN_FLIGHT_MAX). */
  readonly #syncing = new Set<Promise<void>>();
  #failure: Error | undefined;

  constructor(db: InlineDatabase, path: string, io: SyncCalls) {
    db.exec("PRAGMA synchronous = NORMAL");
    this.#db = db;
    this.#io = io;
    this.#put = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
    this.#remove = db.prepare("DELETE FROM kv WHERE k = ?");
    this.#walPath = `${path}-wal`;
  }

  commit(batch: readonly BatchOp[], durable: boolean): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (durable && this.#owed.length >= INLINE_SYNC_WAITERS_MAX) {
      return Promise.reject(new Error(`sqlite: more than ${INLINE_SYNC_WAITERS_MAX} commits wait for one WAL sync`));
    }
    try {
      this.#transaction(batch);
      this.#walFd ??= openSync(this.#walPath, "r");
    } catch (error) {
      this.#fail(new Error(`sqlite commit failed: ${String(error)}`), []);
      return Promise.reject(this.#failure);
    }
    if (!durable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#owed.push({ resolve, reject });
      this.#startSync();
    });
  }

  async close(): Promise<void> {
    // The adapter refuses commits once closing, so nothing new is owed while this waits.
    while (this.#syncing.size > 0) await Promise.all(this.#syncing);
    if (this.#walFd !== undefined) closeSync(this.#walFd);
    this.#walFd = undefined;
  }

  /** Run `batch` as one transaction (frames written, not synced); rolled back if any statement fails. */
  #transaction(batch: readonly BatchOp[]): void {
    this.#db.exec("BEGIN");
    try {
      for (const op of batch) {
        if (op.type === "put") this.#put.run(op.key, op.value);
        else this.#remove.run(op.key);
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      try {
        this.#db.exec("ROLLBACK");
      } catch {
        // COMMIT may have ended the transaction already; the original error is what counts.
      }
      throw error;
    }
  }

  #fail(error: Error, waiters: readonly SyncWaiter[]): void {
    this.#failure ??= error;
    for (const waiter of waiters) waiter.reject(this.#failure);
    for (const waiter of this.#owed.splice(0)) waiter.reject(this.#failure);
  }

  async #syncOnce(fd: number, waiters: SyncWaiter[]): Promise<void> {
    try {
      await this.#io.fdatasync(fd);
      if (!this.#directorySynced) {
        await this.#io.fsyncDir(dirname(this.#walPath));
        this.#directorySynced = true;
      }
    } catch (error) {
      this.#fail(new Error(`sqlite WAL sync failed: ${String(error)}`), waiters);
      return;
    }
    // An earlier sync that failed may have lost pages this one did not see as dirty any more: nothing after it is acknowledged.
    if (this.#failure !== undefined) for (const waiter of waiters) waiter.reject(this.#failure);
    else for (const waiter of waiters) waiter.resolve();
  }

  /** Start a sync for everything owed, unless the most run already (each one's end starts the next). */
  #startSync(): void {
    if (this.#syncing.size >= SYNCS_IN_FLIGHT_MAX || this.#owed.length === 0 || this.#failure !== undefined) return;
    const waiters = this.#owed;
    this.#owed = [];
    const sync: Promise<void> = this.#syncOnce(this.#walFd!, waiters).finally(() => {
      this.#syncing.delete(sync);
      this.#startSync();
    });
    this.#syncing.add(sync);
  }
}
