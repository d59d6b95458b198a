/**
 * A follower's half of write forwarding: writes this node cannot propose go
 * to the leader, which puts this node's request ids in the entry it proposes,
 * so each client is answered when this node applies that entry itself
 * (read-your-writes here), with the result it computes. One forward request
 * is in flight per leader at a time (FORWARDS_IN_FLIGHT_MAX): writes that
 * arrive while it is out wait for its ack and then travel together in the
 * next, at most FORWARDED_COMMANDS_MAX writes each. The ack comes as soon as
 * the leader proposed the writes, so the wait is one short round trip, and
 * bigger requests cost both nodes less per write than one per event-loop
 * turn did (README, "Write forwarding"). The leader's half is RaftNode's
 * `forwardWrites`.
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

/** Forward requests out to one leader at once; the writes behind them queue (bounded by the node's pending-write limit). */
export const FORWARDS_IN_FLIGHT_MAX = 1;

export class WriteForwarder {
  readonly #options: WriteForwarderOptions;
  /** Per leader, the writes waiting to be sent. */
  #queue = new Map<NodeId, QueuedForward[]>();
  /** Per leader, forward requests sent and not yet answered. */
  #inFlight = new Map<NodeId, number>();
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

  /** Send what waits, to every leader with fewer than FORWARDS_IN_FLIGHT_MAX requests out; the rest waits for an answer. */
  #flushQueues(): void {
    this.#flush = undefined;
    for (const [lead, queue] of this.#queue) {
      let inFlight = this.#inFlight.get(lead) ?? 0;
      for (; queue.length > 0 && inFlight < FORWARDS_IN_FLIGHT_MAX; inFlight++) {
        void this.#send(lead, queue.splice(0, FORWARDED_COMMANDS_MAX)).finally(() => this.#answered(lead));
      }
      this.#inFlight.set(lead, inFlight);
      if (queue.length === 0) this.#queue.delete(lead);
    }
  }

  /** One request to `lead` is answered: what queued behind it goes after this turn (with whatever joins it). */
  #answered(lead: NodeId): void {
    const inFlight = this.#inFlight.get(lead)! - 1;
    if (inFlight > 0) this.#inFlight.set(lead, inFlight);
    else this.#inFlight.delete(lead);
    if (this.#queue.has(lead)) this.#flush ??= afterThisTurn(() => this.#flushQueues());
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
