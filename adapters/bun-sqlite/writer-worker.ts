/**
 * The SQLite write connection, in a Bun Worker: a durable commit
 * (synchronous=FULL means an fsync of the WAL) blocks only this thread, so
 * the main thread keeps serving requests while it runs. Receives groups of
 * batches, commits each group in one transaction, answers with its id.
 * Never reads; never acknowledges a group before its COMMIT returned.
 */
import { Database } from "bun:sqlite";
import { forEachPackedOp } from "./wire.ts";

/** `ops` is a group's operations packed by wire.ts, transferred to this worker. */
export type WriterRequest = { type: "open"; path: string } | { type: "commit"; id: number; ops: ArrayBuffer } | { type: "close" };
export type WriterReply =
  | { type: "opened" }
  | { type: "committed"; id: number }
  | { type: "failed"; id: number; message: string }
  | { type: "closed" };

declare const self: { onmessage: (event: MessageEvent<WriterRequest>) => void; postMessage(reply: WriterReply): void };

let db: Database | undefined;
let put: ReturnType<Database["prepare"]> | undefined;
let remove: ReturnType<Database["prepare"]> | undefined;

self.onmessage = (event) => {
  const request = event.data;
  if (request.type === "open") {
    db = new Database(request.path);
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA busy_timeout = 5000");
    put = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
    remove = db.prepare("DELETE FROM kv WHERE k = ?");
    self.postMessage({ type: "opened" });
  } else if (request.type === "commit") {
    try {
      db!.transaction(() => {
        forEachPackedOp(request.ops, (key, value) => put!.run(key, value), (key) => remove!.run(key));
      })();
      self.postMessage({ type: "committed", id: request.id });
    } catch (error) {
      self.postMessage({ type: "failed", id: request.id, message: String(error) });
    }
  } else {
    db?.close();
    self.postMessage({ type: "closed" });
  }
};
