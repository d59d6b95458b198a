/**
 * The SQLite write connection, in a Bun Worker: a durable commit
 * (synchronous=FULL means an fsync of the WAL) blocks only this thread, so
 * the main thread keeps serving requests while it runs. Receives groups of
 * batches, commits each group in one transaction, answers with its id.
 * Never reads; never acknowledges a group before its COMMIT returned.
 */
import { Database } from "bun:sqlite";

/** One operation on the wire: [0, key, value] = put, [1, key] = delete. */
export type WireOp = [0, Uint8Array, Uint8Array] | [1, Uint8Array];
export type WriterRequest = { type: "open"; path: string } | { type: "commit"; id: number; ops: WireOp[] } | { type: "close" };
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
        for (const op of request.ops) {
          if (op[0] === 0) put!.run(op[1], op[2]);
          else remove!.run(op[1]);
        }
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
