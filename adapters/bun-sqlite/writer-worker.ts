/**
 * The SQLite write connection, in a Bun Worker: a durable commit
 * (synchronous=FULL means an fsync of the WAL) blocks only this thread, so
 * the main thread keeps serving requests while it runs. Receives groups of
 * batches, commits each group in one transaction, answers with its id.
 * Never reads; never acknowledges a group before its COMMIT returned. Groups
 * commit in the order they arrive; once one fails, every later group is
 * refused (it may depend on the failed one), so nothing after a gap commits.
 */
import { Database } from "bun:sqlite";
import { forEachPackedOp } from "./wire.ts";

/** `ops` is a group's operations packed by wire.ts, transferred to this worker. */
/** `durable: false` commits with synchronous=NORMAL: no fsync, made durable by the next FULL commit's fsync of the same WAL. */
/** `committedId[0]` is set to each committed group's id before its reply is posted (see index.ts, Completions). */
export type WriterRequest = { type: "open"; path: string; committedId: BigInt64Array } | { type: "commit"; id: number; ops: ArrayBuffer; durable: boolean } | { type: "close" };
export type WriterReply =
  | { type: "opened" }
  | { type: "openFailed"; message: string }
  | { type: "committed"; id: number }
  | { type: "failed"; id: number; message: string }
  | { type: "closed" };

declare const self: { onmessage: (event: MessageEvent<WriterRequest>) => void; postMessage(reply: WriterReply): void };

let db: Database | undefined;
let committedId: BigInt64Array | undefined;
let put: ReturnType<Database["prepare"]> | undefined;
let remove: ReturnType<Database["prepare"]> | undefined;
/** The connection's current synchronous setting: true for FULL, false for NORMAL. */
let synchronousFull = true;
/** The first commit failure; set, it refuses every later group. */
let failure: string | undefined;

self.onmessage = (event) => {
  const request = event.data;
  if (request.type === "open") {
    try {
      db = new Database(request.path);
      committedId = request.committedId;
      db.exec("PRAGMA synchronous = FULL");
      db.exec("PRAGMA busy_timeout = 5000");
      put = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
      remove = db.prepare("DELETE FROM kv WHERE k = ?");
    } catch (error) {
      self.postMessage({ type: "openFailed", message: String(error) });
      return;
    }
    self.postMessage({ type: "opened" });
  } else if (request.type === "commit") {
    if (failure !== undefined) {
      self.postMessage({ type: "failed", id: request.id, message: `refused after an earlier group failed: ${failure}` });
      return;
    }
    try {
      if (request.durable !== synchronousFull) {
        db!.exec(request.durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        synchronousFull = request.durable;
      }
      db!.transaction(() => {
        forEachPackedOp(request.ops, (key, value) => put!.run(key, value), (key) => remove!.run(key));
      })();
      Atomics.store(committedId!, 0, BigInt(request.id));
      self.postMessage({ type: "committed", id: request.id });
    } catch (error) {
      failure = String(error);
      self.postMessage({ type: "failed", id: request.id, message: failure });
    }
  } else {
    db?.close();
    self.postMessage({ type: "closed" });
  }
};
