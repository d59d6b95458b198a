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
  prepare(sql: string): { run(...params: unknown[]): unknown };
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

export function createInlineWriter(db: InlineDatabase, path: string, io: SyncCalls = { fdatasync, fsyncDir }): SqliteWriter {
  db.exec("PRAGMA synchronous = NORMAL");
  const put = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
  const remove = db.prepare("DELETE FROM kv WHERE k = ?");
  const walPath = `${path}-wal`;
  /** Open on the WAL file once a transaction created it; undefined before. */
  let walFd: number | undefined;
  let directorySynced = false;
  /** Commits whose transaction is done and that wait for a sync to start. */
  let owed: SyncWaiter[] = [];
  /** The syncs running now (at most SYNCS_IN_FLIGHT_MAX). */
  const syncing = new Set<Promise<void>>();
  let failure: Error | undefined;

  function fail(error: Error, waiters: readonly SyncWaiter[]): void {
    failure ??= error;
    for (const waiter of waiters) waiter.reject(failure);
    for (const waiter of owed.splice(0)) waiter.reject(failure);
  }

  async function syncOnce(fd: number, waiters: SyncWaiter[]): Promise<void> {
    try {
      await io.fdatasync(fd);
      if (!directorySynced) {
        await io.fsyncDir(dirname(walPath));
        directorySynced = true;
      }
    } catch (error) {
      fail(new Error(`sqlite WAL sync failed: ${String(error)}`), waiters);
      return;
    }
    // An earlier sync that failed may have lost pages this one did not see as dirty any more: nothing after it is acknowledged.
    if (failure !== undefined) for (const waiter of waiters) waiter.reject(failure);
    else for (const waiter of waiters) waiter.resolve();
  }

  /** Start a sync for everything owed, unless the most run already (each one's end starts the next). */
  function startSync(): void {
    if (syncing.size >= SYNCS_IN_FLIGHT_MAX || owed.length === 0 || failure !== undefined) return;
    const waiters = owed;
    owed = [];
    const sync: Promise<void> = syncOnce(walFd!, waiters).finally(() => {
      syncing.delete(sync);
      startSync();
    });
    syncing.add(sync);
  }

  return {
    commit(batch, durable) {
      if (failure !== undefined) return Promise.reject(failure);
      if (durable && owed.length >= INLINE_SYNC_WAITERS_MAX) return Promise.reject(new Error(`sqlite: more than ${INLINE_SYNC_WAITERS_MAX} commits wait for one WAL sync`));
      try {
        db.exec("BEGIN");
        try {
          for (const op of batch) {
            if (op.type === "put") put.run(op.key, op.value);
            else remove.run(op.key);
          }
          db.exec("COMMIT");
        } catch (error) {
          try {
            db.exec("ROLLBACK");
          } catch {
            // COMMIT may have ended the transaction already; the original error is what counts.
          }
          throw error;
        }
        walFd ??= openSync(walPath, "r");
      } catch (error) {
        fail(new Error(`sqlite commit failed: ${String(error)}`), []);
        return Promise.reject(failure);
      }
      if (!durable) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        owed.push({ resolve, reject });
        startSync();
      });
    },
    async close() {
      // The adapter refuses commits once closing, so nothing new is owed while this waits.
      while (syncing.size > 0) await Promise.all(syncing);
      if (walFd !== undefined) closeSync(walFd);
      walFd = undefined;
    },
  };
}
