/**
 * The leader's write proposals and every node's pending writes: a write
 * proposed here waits under its request id until the entry carrying it is
 * applied here (or its timeout); the commands proposed in one event-loop turn,
 * this node's own and those followers forwarded, are grouped into entries
 * stamped with one clock reading and handed to the core in one batch. This is
 * also the leader's half of write forwarding (write-forwarder.ts): a forwarded
 * write is acked once proposed, its outcome travels in the log. Kept apart
 * from RaftNode, which owns the Ready loop: the node settles pending writes
 * from each applied batch ({@link Proposals.settle}).
 *
 * It must never answer a write before the entry carrying it is applied here,
 * and never call a write not proposed unless the core dropped it: a write that
 * times out is rejected with its outcome unknown.
 */
import { commandSizeBytes, validateCommand, type LedgerLimits } from "../ledger/commands.ts";
import { type CommandResult } from "../ledger/ledger.ts";
import { InvalidRequestError, LedgerError } from "../ledger/errors.ts";
import { ProposalDroppedError, type NodeId, type RawNode } from "../raft/index.ts";
import { REQUEST_ID_CHARS_MAX, type ForwardAck, type ForwardedWrite } from "../transport/index.ts";
import { NodeUnavailableError, type WriteOutcome } from "./index.ts";
import { type WriteQueueLimits } from "./local-node.ts";
import { encodeProposal, type Proposal, type ProposedCommand } from "./proposal.ts";
import { isIdempotencyKey } from "./raft-idempotency.ts";
import { afterThisTurn, cancelTurn, type TurnHandle } from "./next-turn.ts";

/** Options of {@link Proposals}. */
export interface ProposalsOptions {
  /** This node's id. */
  nodeId: NodeId;
  /** The Raft core: the leader it knows of, and batches of proposals. */
  raw: Pick<RawNode, "lead" | "proposeBatch">;
  /** The clock, in ms: the timestamp of each proposed entry. */
  now: () => number;
  /** How long a proposed write may take to apply before 503. */
  requestTimeoutMs: number;
  /** Checked on writes a follower forwarded (the follower's HTTP validation is not trusted). */
  commandLimits: LedgerLimits;
  /** Most pending writes (queueCommandsMax) and the size of one entry's group (groupCommandsMax, groupBytesMax). */
  limits: WriteQueueLimits;
  /** Run the Ready loop: proposals were handed to the core. */
  kick: () => void;
}

interface PendingWrite {
  resolve: (outcome: WriteOutcome) => void;
  reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface QueuedProposal extends ProposedCommand {
  sizeBytes: number;
  /** For a write a follower forwarded (no pending write here): told whether it was proposed. */
  onProposed?: (error: NodeUnavailableError | undefined) => void;
}

export class Proposals {
  readonly #options: ProposalsOptions;
  readonly #pending = new Map<string, PendingWrite>();
  #proposalQueue: QueuedProposal[] = [];
  #proposalFlush: TurnHandle | undefined;

  constructor(options: ProposalsOptions) {
    this.#options = options;
  }

  /** Writes proposed here (or forwarded from here) and not yet applied. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * A pending write answered (by {@link settle}) when the entry carrying `requestId` is applied here, or rejected
   * after requestTimeoutMs (its outcome unknown). Undefined when too many writes are pending.
   */
  awaitApplied(requestId: string): Promise<WriteOutcome> | undefined {
    if (this.#pending.size >= this.#options.limits.queueCommandsMax) return undefined;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new NodeUnavailableError(`write not applied within ${this.#options.requestTimeoutMs} ms; its outcome is unknown`, 1));
      }, this.#options.requestTimeoutMs);
      this.#pending.set(requestId, { resolve, reject, timer });
    });
  }

  /** On the leader: propose `write` and resolve with its outcome once it is applied here. */
  proposeLocal(write: ForwardedWrite): Promise<WriteOutcome> {
    const applied = this.awaitApplied(write.requestId);
    if (applied === undefined) return Promise.reject(new NodeUnavailableError("write queue is full; retry later", 1));
    this.#queueProposal(write, undefined);
    return applied;
  }

  /** On the leader: propose the writes a follower forwarded; one ack each, in order. */
  proposeForwarded(writes: ForwardedWrite[]): Promise<ForwardAck[]> {
    return Promise.all(writes.map((write) => this.#proposeForwarded(write)));
  }

  /** Settle the pending write `requestId` (if still pending) with `error`. */
  rejectPending(requestId: string, error: unknown): void {
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    this.#pending.delete(requestId);
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  /**
   * The entry carrying `proposal` was applied here with `results` (`replayed`: positions answered with the
   * recorded result of an earlier write with the same idempotency key): answer the writes pending here.
   * `proposal` is undefined only with no results (the marker that only advances the applied index).
   */
  settle(proposal: Proposal | undefined, results: readonly CommandResult[], replayed: ReadonlySet<number>): void {
    results.forEach((result, i) => {
      const pending = this.#pending.get(proposal!.commands[i]!.requestId);
      if (pending === undefined) return;
      this.#pending.delete(proposal!.commands[i]!.requestId);
      clearTimeout(pending.timer);
      if (!result.ok) pending.reject(result.error);
      else if (replayed.has(i)) pending.resolve({ applied: result.applied, treeSize: result.treeSize, replayed: true });
      else pending.resolve({ applied: result.applied, treeSize: result.treeSize });
    });
  }

  /** The node is closing: nothing queued is proposed; each queued write is settled with `refusal`. */
  close(refusal: NodeUnavailableError): void {
    cancelTurn(this.#proposalFlush);
    for (const { requestId, onProposed } of this.#proposalQueue) {
      if (onProposed !== undefined) onProposed(refusal);
      else this.rejectPending(requestId, refusal);
    }
    this.#proposalQueue = [];
  }

  /** The node stopped (closed, or failed): every pending write is rejected with `refusal`. */
  rejectAll(refusal: NodeUnavailableError): void {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(refusal);
    }
    this.#pending.clear();
  }

  /** Propose a forwarded write under the follower's request id; ack once it is proposed (the outcome travels in the log). */
  #proposeForwarded(write: ForwardedWrite): Promise<ForwardAck> | ForwardAck {
    const lead = this.#options.raw.lead;
    if (lead !== this.#options.nodeId) return { kind: "notLeader", leaderId: lead };
    try {
      validateCommand(write.command, this.#options.commandLimits);
      if (write.idempotencyKey !== undefined && !isIdempotencyKey(write.idempotencyKey)) {
        throw new InvalidRequestError("Idempotency-Key must be 1..128 printable ASCII characters");
      }
      if (write.requestId.length > REQUEST_ID_CHARS_MAX) throw new InvalidRequestError(`a request id has at most ${REQUEST_ID_CHARS_MAX} characters`);
    } catch (error) {
      if (error instanceof LedgerError) return { kind: "refused", code: error.code, message: error.message };
      throw error;
    }
    return new Promise((resolve) => {
      this.#queueProposal(write, (error) => resolve(error === undefined ? { kind: "proposed" } : { kind: "refused", code: error.code, message: error.message }));
    });
  }

  /** Queue a proposal; every command arriving in this event-loop turn joins one entry (one timestamp, one apply commit). */
  #queueProposal({ requestId, command, idempotencyKey }: ForwardedWrite, onProposed: QueuedProposal["onProposed"]): void {
    const queued: QueuedProposal = { requestId, command, sizeBytes: commandSizeBytes(command) + (idempotencyKey?.length ?? 0) };
    if (idempotencyKey !== undefined) queued.idempotencyKey = idempotencyKey;
    if (onProposed !== undefined) queued.onProposed = onProposed;
    this.#proposalQueue.push(queued);
    this.#proposalFlush ??= afterThisTurn(() => this.#flushProposals());
  }

  #flushProposals(): void {
    this.#proposalFlush = undefined;
    const queue = this.#proposalQueue;
    this.#proposalQueue = [];
    const datas: Uint8Array[] = [];
    const timestampMs = this.#options.now();
    for (let start = 0; start < queue.length;) {
      let end = start;
      let bytes = 0;
      while (end < queue.length && end - start < this.#options.limits.groupCommandsMax && (end === start || bytes + queue[end]!.sizeBytes <= this.#options.limits.groupBytesMax)) {
        bytes += queue[end++]!.sizeBytes;
      }
      const commands = queue.slice(start, end).map(({ sizeBytes: _, onProposed: __, ...proposed }): ProposedCommand => proposed);
      datas.push(encodeProposal({ timestampMs, commands }));
      start = end;
    }
    try {
      this.#options.raw.proposeBatch(datas);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      const dropped = new NodeUnavailableError("leadership changed before the write was proposed; retry", 1);
      for (const { requestId, onProposed } of queue) {
        if (onProposed !== undefined) onProposed(dropped);
        else this.rejectPending(requestId, dropped);
      }
      return;
    }
    for (const { onProposed } of queue) onProposed?.(undefined);
    this.#options.kick();
  }
}
