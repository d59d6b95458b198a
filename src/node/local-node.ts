/**
 * A single-node ledger: writes are queued, grouped, prepared by the ledger
 * state machine, committed to storage in one durable batch per group (group
 * commit), then published and acknowledged. A write sent with an idempotency
 * key that was already applied is answered with its first result instead. Nothing is acknowledged before
 * its storage commit resolved. A failed commit fail-stops the node: the
 * in-memory state may be ahead of disk, so it refuses all further work and
 * must be restarted (which reopens from what is durable).
 */
import { type BatchOp, type Storage } from "../storage/index.ts";
import { commandSizeBytes, type WriteCommand } from "../ledger/commands.ts";
import { type Ledger } from "../ledger/ledger.ts";
import { type Entry } from "../ledger/entry.ts";
import { InvalidRequestError } from "../ledger/errors.ts";
import { prepareIdempotent, type KeyedCommand } from "./idempotent-apply.ts";
import { isIdempotencyKey, type IdempotencyRecords } from "./raft-idempotency.ts";
import { thisTurnDone } from "./next-turn.ts";
import { NodeUnavailableError, type Consistency, type LedgerNode, type NodeStatus, type WriteOptions, type WriteOutcome } from "./index.ts";

/** Limits of the write pipeline. Each is a config key (see README). */
export interface WriteQueueLimits {
  /** Most commands waiting to be committed; beyond it writes get 503. */
  queueCommandsMax: number;
  /** Most value bytes waiting to be committed. */
  queueBytesMax: number;
  /** Most commands in one storage commit. */
  groupCommandsMax: number;
  /** Most bytes in one storage commit. */
  groupBytesMax: number;
}

export const DEFAULT_WRITE_QUEUE_LIMITS: WriteQueueLimits = {
  queueCommandsMax: 100_000,
  queueBytesMax: 512 * 1024 * 1024,
  groupCommandsMax: 4096,
  groupBytesMax: 64 * 1024 * 1024,
};

/** Groups prepared and handed to storage before the oldest of them is published. */
export const GROUPS_IN_FLIGHT_MAX = 2;

export interface LocalNodeOptions {
  nodeId: string;
  address: string;
  ledger: Ledger;
  storage: Storage;
  /** Recorded first results of writes sent with an idempotency key. */
  idempotency: IdempotencyRecords;
  /** Wall clock in ms; injected so tests control time. */
  now: () => number;
  limits?: WriteQueueLimits;
  /** Called once if a storage commit fails; the process should exit. */
  onFatal?: (error: unknown) => void;
}

interface Queued extends KeyedCommand {
  sizeBytes: number;
  resolve: (outcome: WriteOutcome) => void;
  reject: (error: unknown) => void;
}

export class LocalNode implements LedgerNode {
  readonly #options: LocalNodeOptions;
  readonly #limits: WriteQueueLimits;
  #queue: Queued[] = [];
  #queuedBytes = 0;
  #draining: Promise<void> | undefined;
  #closed = false;
  #failure: unknown;
  /** Set while the drain waits for a commit: a new write wakes it to start the next group. */
  #wake: (() => void) | undefined;
  /** Orders each group's idempotency records after every earlier group's, across restarts. */
  #groupNumber: number;

  constructor(options: LocalNodeOptions) {
    this.#options = options;
    this.#limits = options.limits ?? DEFAULT_WRITE_QUEUE_LIMITS;
    this.#groupNumber = options.idempotency.indexAtOpen;
  }

  get ledger(): Ledger {
    return this.#options.ledger;
  }

  write(command: WriteCommand, options: WriteOptions = {}): Promise<WriteOutcome> {
    // Settle any group the storage already made durable, so its clients are answered in this turn.
    this.#options.storage.pollCommits?.();
    const refusal = this.#refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const { idempotencyKey } = options;
    if (idempotencyKey !== undefined && !isIdempotencyKey(idempotencyKey)) {
      return Promise.reject(new InvalidRequestError("Idempotency-Key must be 1..128 printable ASCII characters"));
    }
    const sizeBytes = commandSizeBytes(command) + (idempotencyKey?.length ?? 0);
    if (this.#queue.length >= this.#limits.queueCommandsMax || this.#queuedBytes + sizeBytes > this.#limits.queueBytesMax) {
      return Promise.reject(new NodeUnavailableError("write queue is full; retry later", 1));
    }
    return new Promise<WriteOutcome>((resolve, reject) => {
      this.#queue.push(idempotencyKey === undefined ? { command, sizeBytes, resolve, reject } : { command, idempotencyKey, sizeBytes, resolve, reject });
      this.#queuedBytes += sizeBytes;
      this.#draining ??= this.#drainSoon();
      this.#wake?.();
    });
  }

  /**
   * Drain once this turn of the event loop has taken in its I/O, so every
   * request that arrives in this turn joins the same group (and its one fsync). `#draining` is
   * cleared in the same synchronous step that sees the queue empty: a write
   * queued after that (even from a continuation of the last acknowledgement)
   * starts a new drain instead of waiting on one that has ended.
   */
  async #drainSoon(): Promise<void> {
    await thisTurnDone();
    // Up to GROUPS_IN_FLIGHT_MAX groups at once: writes that arrive while a group commits form the next group,
    // prepared and handed to storage before that commit returns once there are enough of them (#mayStartGroup),
    // so under bulk load the storage never waits for this thread between two commits.
    const inFlight: Array<{ answered: Promise<void>; settled: boolean; commands: number }> = [];
    let previous: Promise<void> = Promise.resolve();
    for (;;) {
      while (inFlight.length > 0 && inFlight[0]!.settled) inFlight.shift();
      if (this.#failure !== undefined) break;
      if (this.#mayStartGroup(inFlight)) {
        const group = this.#takeGroup();
        previous = (await this.#startGroup(group, previous)).answered;
        const slot = { answered: previous, settled: false, commands: group.length };
        void previous.then(() => (slot.settled = true));
        inFlight.push(slot);
        continue;
      }
      // Nothing to start and nothing in flight: done, in the same step that saw it (no lost wake-up).
      if (inFlight.length === 0) break;
      // Writes are waiting but too few to start a group behind the one committing, or none: wait for the
      // oldest group's answer or for the next write, whichever comes first.
      const arrived = new Promise<void>((resolve) => (this.#wake = resolve));
      await Promise.race([inFlight[0]!.answered, arrived]);
      this.#wake = undefined;
      // Let every write of this turn join the next group.
      if (this.#queue.length > 0) await thisTurnDone();
    }
    // Only after a failure can groups still be in flight here; otherwise no await may come between the
    // check above and clearing #draining.
    if (inFlight.length > 0) await Promise.all(inFlight.map((slot) => slot.answered));
    this.#draining = undefined;
  }

  /**
   * Whether to start a group now. With none in flight, whenever writes wait. Behind a committing group, only
   * once the waiting writes are at least as many as the newest group in flight: a small group started early
   * pays a whole commit (an fsync) for a few writes, and everything behind it waits for that commit too, while
   * the writes that keep arriving during the commit would have made one bigger group. Bulk writers (a full
   * queue) still get the next group prepared and handed to storage at once.
   */
  #mayStartGroup(inFlight: ReadonlyArray<{ commands: number }>): boolean {
    if (this.#queue.length === 0) return false;
    if (inFlight.length === 0) return true;
    return inFlight.length < GROUPS_IN_FLIGHT_MAX && this.#queue.length >= inFlight[inFlight.length - 1]!.commands;
  }

  #refusal(): NodeUnavailableError | undefined {
    if (this.#failure !== undefined) return new NodeUnavailableError(`node stopped after a storage failure: ${String(this.#failure)}`, 5);
    if (this.#closed) return new NodeUnavailableError("node is shutting down", 1);
    return undefined;
  }

  /**
   * Prepare one group and start its durable commit; the returned promise settles once the group is published
   * and answered, which happens after `previous` (the group before it) is. A failure fail-stops the node.
   */
  async #startGroup(group: Queued[], previous: Promise<void>): Promise<{ answered: Promise<void> }> {
    const { idempotency: records, now } = this.#options;
    let commit: Promise<void>;
    let outcome: Awaited<ReturnType<typeof prepareIdempotent>>;
    let mark: number;
    try {
      const ops: BatchOp[] = [];
      outcome = await prepareIdempotent({ ledger: this.ledger, records, commands: group, timestampMs: now(), index: ++this.#groupNumber }, ops);
      mark = records.mark();
      commit = this.#options.storage.commit(ops);
    } catch (error) {
      this.#fail(error, group);
      return { answered: Promise.resolve() };
    }
    const answered = (async () => {
      try {
        await commit;
        await previous;
        if (this.#failure !== undefined) throw this.#failure;
      } catch (error) {
        this.#fail(error, group);
        return;
      }
      records.flushed(mark);
      const { prepared, results, replayed } = outcome;
      if (prepared !== undefined) this.ledger.publish(prepared);
      results.forEach((result, i) => {
        if (!result.ok) group[i]!.reject(result.error);
        else if (replayed.has(i)) group[i]!.resolve({ applied: result.applied, treeSize: result.treeSize, replayed: true });
        else group[i]!.resolve({ applied: result.applied, treeSize: result.treeSize });
      });
    })();
    return { answered };
  }

  #takeGroup(): Queued[] {
    let count = 0;
    let bytes = 0;
    while (count < this.#queue.length && count < this.#limits.groupCommandsMax) {
      const next = this.#queue[count]!.sizeBytes;
      if (count > 0 && bytes + next > this.#limits.groupBytesMax) break;
      bytes += next;
      count++;
    }
    const group = this.#queue.splice(0, count);
    this.#queuedBytes -= bytes;
    return group;
  }

  /** Fail-stop: refuse `group`, everything queued and everything after; tell the process once. */
  #fail(error: unknown, group: Queued[]): void {
    const first = this.#failure === undefined;
    if (first) this.#failure = error;
    const refusal = this.#refusal()!;
    for (const queued of group) queued.reject(refusal);
    for (const queued of this.#queue.splice(0)) queued.reject(refusal);
    this.#queuedBytes = 0;
    if (first) this.#options.onFatal?.(error);
  }

  async readBarrier(_consistency: Consistency): Promise<void> {
    // A single node is its own leader: published state already holds every acknowledged write.
    const refusal = this.#failure === undefined ? undefined : this.#refusal();
    if (refusal !== undefined) throw refusal;
  }

  subscribe(listener: (entries: readonly Entry[], treeSize: number) => void): () => void {
    return this.ledger.onPublish(listener);
  }

  status(): NodeStatus {
    const { nodeId, address } = this.#options;
    const treeSize = this.ledger.treeSize;
    return {
      nodeId,
      role: "leader",
      term: 1,
      leaderId: nodeId,
      leaderAddress: address,
      commitIndex: treeSize,
      appliedIndex: treeSize,
      treeSize,
      members: [{ id: nodeId, address, role: "voter", reachable: true }],
    };
  }

  unhealthyReason(): string | undefined {
    if (this.#failure !== undefined) return `storage failure: ${String(this.#failure)}`;
    if (this.#closed) return "shutting down";
    return undefined;
  }

  /** Write-queue depth, for metrics. */
  get queueDepth(): number {
    return this.#queue.length;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#draining !== undefined) await this.#draining;
    await this.#options.storage.close();
  }
}
