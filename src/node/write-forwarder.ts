/**
 * A follower's half of write forwarding: writes this node cannot propose go
 * to the leader, which puts this node's request ids in the entry it proposes,
 * so each client is answered when this node applies that entry itself
 * (read-your-writes here), with the result it computes. Every write forwarded
 * in one event-loop turn travels in one request per leader, at most
 * FORWARDED_COMMANDS_MAX writes each. The leader's half is in proposals.ts,
 * behind RaftNode's `forwardWrites`.
 *
 * It must never call a write safe to retry when it may have reached the
 * leader: only a "not leader" ack or a refused connection say nothing was
 * proposed; any other failure leaves the outcome unknown.
 */
import { type NodeId } from "../raft/index.ts";
import { FORWARDED_COMMANDS_MAX, isConnectionRefused, type ForwardAck, type ForwardedWrite, type HttpTransport } from "../transport/index.ts";
import { NodeUnavailableError, type WriteOutcome } from "./index.ts";
import { remoteError } from "./idempotent-apply.ts";
import { afterThisTurn, cancelTurn, type TurnHandle } from "./next-turn.ts";

/** Options of {@link WriteForwarder}. */
export interface WriteForwarderOptions {
  /** Carries the forwarded writes to the leader. */
  transport: Pick<HttpTransport, "forward">;
  /** Register a write pending until the entry carrying `requestId` is applied here; undefined when too many are pending. */
  awaitApplied: (requestId: string) => Promise<WriteOutcome> | undefined;
  /** Settle the pending write `requestId` (if still pending) with `error`. */
  rejectPending: (requestId: string, error: unknown) => void;
}

interface QueuedForward extends ForwardedWrite {
  /** Undefined: nothing reached the leader, so a retry is safe. */
  resolve: (ack: ForwardAck | undefined) => void;
  reject: (error: unknown) => void;
}

export class WriteForwarder {
  readonly #options: WriteForwarderOptions;
  /** Per leader, the writes forwarded in this event-loop turn. */
  #queue = new Map<NodeId, QueuedForward[]>();
  #flush: TurnHandle | undefined;

  constructor(options: WriteForwarderOptions) {
    this.#options = options;
  }

  /**
   * Forward `write` to leader `lead` and resolve with its outcome once the entry carrying it is applied here.
   * Undefined when the leader says it no longer leads or the connection was refused (nothing was proposed, so a
   * retry is safe). Rejects with NodeUnavailableError when the pending queue is full or the outcome is unknown,
   * and with the leader's refusal as a ledger error.
   */
  async forward(lead: NodeId, write: ForwardedWrite): Promise<WriteOutcome | undefined> {
    const applied = this.#options.awaitApplied(write.requestId);
    if (applied === undefined) throw new NodeUnavailableError("write queue is full; retry later", 1);
    // Awaited only once the leader acked; a rejection before that (dropped below, or a timeout) must not go unhandled.
    applied.catch(() => undefined);
    let ack: ForwardAck | undefined;
    try {
      ack = await this.#batched(lead, write);
    } catch (error) {
      this.#options.rejectPending(write.requestId, error);
      throw error;
    }
    if (ack?.kind === "proposed") return await applied;
    this.#options.rejectPending(write.requestId, new NodeUnavailableError("the leader did not propose the write", 1));
    if (ack?.kind === "refused") throw remoteError(ack.code, ack.message);
    return undefined;
  }

  /** The node is closing: every queued write is rejected with `refusal` and none is sent. */
  close(refusal: NodeUnavailableError): void {
    cancelTurn(this.#flush);
    for (const queue of this.#queue.values()) for (const item of queue) item.reject(refusal);
    this.#queue.clear();
  }

  /** Queue `write` for the leader: every command forwarded in one event-loop turn travels in one request. */
  #batched(lead: NodeId, write: ForwardedWrite): Promise<ForwardAck | undefined> {
    return new Promise<ForwardAck | undefined>((resolve, reject) => {
      let queue = this.#queue.get(lead);
      if (queue === undefined) this.#queue.set(lead, (queue = []));
      queue.push({ ...write, resolve, reject });
      this.#flush ??= afterThisTurn(() => this.#flushQueues());
    });
  }

  #flushQueues(): void {
    this.#flush = undefined;
    const queues = this.#queue;
    this.#queue = new Map();
    for (const [lead, queue] of queues) {
      for (let start = 0; start < queue.length; start += FORWARDED_COMMANDS_MAX) void this.#send(lead, queue.slice(start, start + FORWARDED_COMMANDS_MAX));
    }
  }

  async #send(lead: NodeId, batch: readonly QueuedForward[]): Promise<void> {
    let acks: ForwardAck[];
    const writes = batch.map(({ requestId, command, idempotencyKey }): ForwardedWrite => (idempotencyKey === undefined ? { requestId, command } : { requestId, command, idempotencyKey }));
    try {
      acks = await this.#options.transport.forward(lead, writes);
    } catch (error) {
      // A refused connection sent nothing, so looking for the (new) leader again is safe; anything later is ambiguous.
      if (isConnectionRefused(error)) {
        for (const item of batch) item.resolve(undefined);
        return;
      }
      const failure = new NodeUnavailableError(`forwarding the write to leader ${lead} failed (its outcome is unknown): ${(error as Error).message}`, 1);
      for (const item of batch) item.reject(failure);
      return;
    }
    batch.forEach((item, i) => item.resolve(acks[i]));
  }
}
