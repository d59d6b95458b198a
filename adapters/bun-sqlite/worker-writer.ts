/**
 * The SQLite write path through a dedicated connection in a Worker
 * (writer-worker.ts): a durable commit (synchronous=FULL, an fsync of the
 * WAL) blocks only that thread, so the calling thread keeps serving.
 *
 * Group commit: batches that arrive while earlier groups commit form the
 * next group, one transaction and one fsync. Up to GROUPS_IN_FLIGHT_MAX
 * groups are handed to the worker at once, so it starts the next transaction
 * the moment the previous COMMIT returns instead of waiting for a round trip
 * through this thread; they commit in the order sent. A group of only
 * `durable: false` batches commits with synchronous=NORMAL (no fsync; the
 * WAL is sequential, so the next FULL commit's fsync makes it durable too).
 * Each caller's batch stays atomic because its whole group is one
 * transaction; if it fails, every caller in the group sees the error and none
 * of it is visible. A later group may depend on an earlier one (a ledger's
 * next seqs), so after a failure the worker refuses every group already
 * sent, and this writer refuses all further commits (fail-stop: reopen to go
 * on).
 *
 * Completions: the worker also stores the id of its newest committed group
 * in shared memory before it posts the reply. `poll` reads it and settles
 * those groups at once: on a busy node the reply message waited about 0.2 ms
 * for the event loop (measured), and nodes poll on every request. Only
 * successes are stored there; failures come by message.
 */
import { type BatchOp } from "../../src/storage/index.ts";
import { type SqliteWriter } from "./inline-writer.ts";
import type { WriterReply, WriterRequest } from "./writer-worker.ts";
import { packOps } from "./wire.ts";

/** Groups handed to the writer worker and not yet answered. */
export const GROUPS_IN_FLIGHT_MAX = 2;

interface PendingCommit {
  batch: readonly BatchOp[];
  durable: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A writer whose completions can also be collected by polling. */
export interface PolledSqliteWriter extends SqliteWriter {
  /** Settle every group the worker has committed; returns how many groups that settled. */
  poll(): number;
}

/**
 * Where the writer worker's code is. In a `bun build --compile` binary every
 * module reports the binary as its URL and the worker is an extra entry point
 * addressed from the project root (see package.json build:binary).
 */
function writerWorkerSpecifier(): string {
  if (import.meta.url.includes("/$bunfs/")) return "./adapters/bun-sqlite/writer-worker.ts";
  return new URL("./writer-worker.ts", import.meta.url).href;
}

/** Start the worker, open `path` in it, and return the writer once it is ready. */
export async function createWorkerWriter(path: string, groupBatchesMax: number): Promise<PolledSqliteWriter> {
  const worker = new Worker(writerWorkerSpecifier());
  /** [0]: the id of the newest group the worker committed (ids ascend; -1 before the first). 64-bit: ids never wrap. */
  const committedId = new BigInt64Array(new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT));
  committedId[0] = -1n;

  let queue: PendingCommit[] = [];
  let nextGroupId = 0;
  /** Groups sent to the worker and not yet answered, oldest first. */
  const inFlight: Array<{ id: number; group: PendingCommit[] }> = [];
  /** Set once the worker died or a commit failed; every later commit is refused with it. */
  let workerFailure: Error | undefined;
  let onOpened: (() => void) | undefined;
  let onClosed: (() => void) | undefined;
  const idleWaiters: Array<() => void> = [];

  /** Resolve every in-flight group up to `id` (they commit in order), then hand the worker more. Returns how many. */
  function settleCommitted(id: number): number {
    let settled = 0;
    while (inFlight.length > 0 && inFlight[0]!.id <= id) {
      for (const pending of inFlight.shift()!.group) pending.resolve();
      settled++;
    }
    if (settled > 0) sendNextGroups();
    return settled;
  }

  worker.onmessage = (event: MessageEvent<WriterReply>) => {
    const reply = event.data;
    if (reply.type === "opened") return onOpened?.();
    if (reply.type === "closed") return onClosed?.();
    if (reply.type === "committed") {
      // Already settled by poll, or settle it (and any before it) now.
      settleCommitted(reply.id);
      return;
    }
    const finished = inFlight.shift()!;
    const error = new Error(`sqlite commit failed: ${reply.message}`);
    for (const pending of finished.group) pending.reject(error);
    if (workerFailure === undefined) {
      workerFailure = error;
      for (const pending of queue.splice(0)) pending.reject(error);
    }
    sendNextGroups();
  };
  worker.onerror = (event: ErrorEvent) => {
    workerFailure = new Error(`sqlite writer worker died: ${event.message}`);
    for (const pending of [...inFlight.flatMap(({ group }) => group), ...queue]) pending.reject(workerFailure);
    inFlight.length = 0;
    queue = [];
    for (const wake of idleWaiters.splice(0)) wake();
  };
  await new Promise<void>((resolve) => {
    onOpened = resolve;
    worker.postMessage({ type: "open", path, committedId } satisfies WriterRequest);
  });

  function sendNextGroups(): void {
    while (inFlight.length < GROUPS_IN_FLIGHT_MAX && queue.length > 0) {
      const group = queue.slice(0, groupBatchesMax);
      queue = queue.slice(group.length);
      const ops = packOps(group.map(({ batch }) => batch));
      const id = nextGroupId++;
      inFlight.push({ id, group });
      const durable = group.some((pending) => pending.durable);
      worker.postMessage({ type: "commit", id, ops, durable } satisfies WriterRequest, [ops]);
    }
    if (inFlight.length === 0 && queue.length === 0) for (const wake of idleWaiters.splice(0)) wake();
  }

  return {
    commit(batch, durable) {
      if (workerFailure !== undefined) return Promise.reject(workerFailure);
      return new Promise<void>((resolve, reject) => {
        queue.push({ batch, durable, resolve, reject });
        sendNextGroups();
      });
    },
    poll() {
      if (inFlight.length === 0) return 0;
      const id = Number(Atomics.load(committedId, 0));
      return id < inFlight[0]!.id ? 0 : settleCommitted(id);
    },
    async close() {
      // Let queued and in-flight groups finish: close never drops a commit it accepted.
      if ((inFlight.length > 0 || queue.length > 0) && workerFailure === undefined) {
        await new Promise<void>((resolve) => idleWaiters.push(resolve));
      }
      await new Promise<void>((resolve) => {
        onClosed = resolve;
        worker.postMessage({ type: "close" } satisfies WriterRequest);
      });
      worker.terminate();
    },
  };
}
