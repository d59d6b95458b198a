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

/**
 * Start the worker, open `path` in it, and return the writer once it is ready. Rejects, with the worker
 * stopped, when the worker cannot load or cannot open the file. `workerSpecifier` is for tests.
 */
export async function createWorkerWriter(path: string, groupBatchesMax: number, workerSpecifier = writerWorkerSpecifier()): Promise<PolledSqliteWriter> {
  const writer = new WorkerWriter(groupBatchesMax, workerSpecifier);
  await writer.open(path);
  return writer;
}

class WorkerWriter implements PolledSqliteWriter {
  readonly #worker: Worker;
  readonly #groupBatchesMax: number;
  /** [0]: the id of the newest group the worker committed (ids ascend; -1 before the first). 64-bit: ids never wrap. */
  readonly #committedId = new BigInt64Array(new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT));
  #queue: PendingCommit[] = [];
  #nextGroupId = 0;
  /** Groups sent to the worker and not yet answered, oldest first. */
  readonly #inFlight: Array<{ id: number; group: PendingCommit[] }> = [];
  /** Set once the worker died or a commit failed; every later commit is refused with it. */
  #failure: Error | undefined;
  /** The worker raised an uncaught error: it answers nothing any more. */
  #dead = false;
  /** Settle the pending open; unset once it has. */
  #onOpened: ((failure?: Error) => void) | undefined;
  #onClosed: (() => void) | undefined;
  readonly #idleWaiters: Array<() => void> = [];

  constructor(groupBatchesMax: number, workerSpecifier: string) {
    this.#worker = new Worker(workerSpecifier);
    this.#groupBatchesMax = groupBatchesMax;
    this.#committedId[0] = -1n;
    this.#worker.onmessage = (event: MessageEvent<WriterReply>) => this.#onReply(event.data);
    this.#worker.onerror = (event: ErrorEvent) => this.#onWorkerDied(event.message);
  }

  open(path: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#onOpened = (failure) => {
        this.#onOpened = undefined;
        if (failure === undefined) return resolve();
        this.#worker.terminate();
        reject(new Error(`sqlite writer worker could not open ${path}: ${failure.message}`));
      };
      this.#worker.postMessage({ type: "open", path, committedId: this.#committedId } satisfies WriterRequest);
    });
  }

  commit(batch: readonly BatchOp[], durable: boolean): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ batch, durable, resolve, reject });
      this.#sendNextGroups();
    });
  }

  poll(): number {
    if (this.#inFlight.length === 0) return 0;
    const id = Number(Atomics.load(this.#committedId, 0));
    return id < this.#inFlight[0]!.id ? 0 : this.#settleCommitted(id);
  }

  async close(): Promise<void> {
    // Let queued and in-flight groups finish: close never drops a commit it accepted.
    if ((this.#inFlight.length > 0 || this.#queue.length > 0) && this.#failure === undefined) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    // A dead worker never answers; its connection goes with the thread.
    if (!this.#dead) {
      await new Promise<void>((resolve) => {
        this.#onClosed = resolve;
        this.#worker.postMessage({ type: "close" } satisfies WriterRequest);
      });
    }
    this.#worker.terminate();
  }

  #onReply(reply: WriterReply): void {
    if (reply.type === "opened") return this.#onOpened?.();
    if (reply.type === "openFailed") return this.#onOpened?.(new Error(reply.message));
    if (reply.type === "closed") return this.#onClosed?.();
    if (reply.type === "committed") {
      // Already settled by poll, or settle it (and any before it) now.
      this.#settleCommitted(reply.id);
      return;
    }
    const finished = this.#inFlight.shift()!;
    const error = new Error(`sqlite commit failed: ${reply.message}`);
    for (const pending of finished.group) pending.reject(error);
    if (this.#failure === undefined) {
      this.#failure = error;
      for (const pending of this.#queue.splice(0)) pending.reject(error);
    }
    this.#sendNextGroups();
  }

  #onWorkerDied(message: string): void {
    this.#dead = true;
    this.#failure = new Error(`sqlite writer worker died: ${message}`);
    this.#onOpened?.(this.#failure);
    this.#onClosed?.();
    for (const pending of [...this.#inFlight.flatMap(({ group }) => group), ...this.#queue]) pending.reject(this.#failure);
    this.#inFlight.length = 0;
    this.#queue = [];
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  /** Resolve every in-flight group up to `id` (they commit in order), then hand the worker more. Returns how many. */
  #settleCommitted(id: number): number {
    let settled = 0;
    while (this.#inFlight.length > 0 && this.#inFlight[0]!.id <= id) {
      for (const pending of this.#inFlight.shift()!.group) pending.resolve();
      settled++;
    }
    if (settled > 0) this.#sendNextGroups();
    return settled;
  }

  #sendNextGroups(): void {
    while (this.#inFlight.length < GROUPS_IN_FLIGHT_MAX && this.#queue.length > 0) {
      const group = this.#queue.slice(0, this.#groupBatchesMax);
      this.#queue = this.#queue.slice(group.length);
      const ops = packOps(group.map(({ batch }) => batch));
      const id = this.#nextGroupId++;
      this.#inFlight.push({ id, group });
      const durable = group.some((pending) => pending.durable);
      this.#worker.postMessage({ type: "commit", id, ops, durable } satisfies WriterRequest, [ops]);
    }
    if (this.#inFlight.length === 0 && this.#queue.length === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
  }
}
