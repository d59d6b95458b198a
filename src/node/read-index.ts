/**
 * Linearizable reads of a Raft node (ReadIndex, Raft thesis 6.4): the leader
 * asks its core for a read index, confirmed by a heartbeat round (or the
 * lease) and served in a later Ready's read states; a follower asks the
 * leader for one over the transport. Either way the read waits until that
 * index is published here. Reads arriving in one event-loop turn share one
 * round. Kept apart from RaftNode, which owns the Ready loop: the node only
 * hands each sent Ready to {@link ReadIndex.afterSend}.
 *
 * It must never answer a read with an index a deposed leader did not
 * confirm: a lost leadership settles every pending round with no index.
 */
import { NONE, ProposalDroppedError, type NodeId, type RawNode, type Ready } from "../raft/index.ts";
import { PeerRequestError, type HttpTransport, type ReadIndexReply } from "../transport/index.ts";
import { NodeUnavailableError, type Consistency } from "./index.ts";
import { afterThisTurn, thisTurnDone } from "./next-turn.ts";

/** Options of {@link ReadIndex}. */
export interface ReadIndexOptions {
  /** This node's id. */
  nodeId: NodeId;
  /** The Raft core: the leader it knows of, and ReadIndex requests (confirmed in a later Ready's read states). */
  raw: Pick<RawNode, "lead" | "readIndex">;
  /** Asks the leader for a read index when this node follows. */
  transport: Pick<HttpTransport, "readIndex">;
  /** The clock, in ms. */
  now: () => number;
  /** How long a linearizable read waits for a leader and a read index before 503. */
  leaderWaitMs: number;
  /** Why this node serves nothing now (closed, failed); undefined when it does. */
  refusal: () => NodeUnavailableError | undefined;
  /** Why this node serves no linearizable read now (also: it was removed); undefined when it does. */
  serviceRefusal: () => NodeUnavailableError | undefined;
  /** Resolves true once `index` is published here, false at `deadlineMs` if it is not. */
  waitApplied: (index: number, deadlineMs: number) => Promise<boolean>;
  /** Resolves after the interval between two looks for a leader. */
  leaderPoll: () => Promise<void>;
  /** A context for one ReadIndex round, unique to this node's boot. */
  newContext: () => string;
  /** Run the Ready loop: the core has a read index to confirm. */
  kick: () => void;
}

export class ReadIndex {
  readonly #options: ReadIndexOptions;
  readonly #readWaiters = new Map<string, Array<(index: number | undefined) => void>>();
  #readBatch: Array<(index: number | undefined) => void> | undefined;
  /** Per leader, the read-index request that reads arriving in this event-loop turn will share. */
  readonly #remoteReads = new Map<NodeId, Promise<ReadIndexReply | undefined>>();

  constructor(options: ReadIndexOptions) {
    this.#options = options;
  }

  /** Resolves once a read at `consistency` may read published state here; rejects with NodeUnavailableError when it may not in time. */
  async barrier(consistency: Consistency): Promise<void> {
    const refusal = this.#options.refusal();
    if (refusal !== undefined) throw refusal;
    if (consistency === "stale") return;
    const removed = this.#options.serviceRefusal();
    if (removed !== undefined) throw removed;
    const deadline = this.#options.now() + this.#options.leaderWaitMs;
    const index = await this.#readIndexAnywhere(deadline);
    if (!(await this.#options.waitApplied(index, deadline))) {
      throw new NodeUnavailableError(`this node has not applied up to the read index ${index} in time; retry`, 1);
    }
  }

  /** A peer's read-index request: the confirmed index when this node leads, else who it thinks leads. */
  async serve(): Promise<ReadIndexReply> {
    const lead = this.#options.raw.lead;
    if (lead !== this.#options.nodeId) return { kind: "notLeader", leaderId: lead };
    const index = await this.#localReadIndex(this.#options.leaderWaitMs);
    if (index === undefined) throw new PeerRequestError(503, "leadership not confirmed in time");
    return { kind: "index", index };
  }

  /** Read states and a lost leadership, once a Ready's messages are sent. */
  afterSend(ready: Ready): void {
    if (ready.softState !== undefined && ready.softState.role !== "leader") {
      // A deposed leader's pending reads will never be confirmed; their callers look for the new leader.
      for (const batch of this.#readWaiters.values()) for (const waiter of batch) waiter(undefined);
      this.#readWaiters.clear();
    }
    for (const state of ready.readStates) {
      const key = contextKey(state.context);
      for (const resolve of this.#readWaiters.get(key) ?? []) resolve(state.index);
      this.#readWaiters.delete(key);
    }
  }

  async #readIndexAnywhere(deadline: number): Promise<number> {
    for (;;) {
      const refusal = this.#options.refusal();
      if (refusal !== undefined) throw refusal;
      const lead = this.#options.raw.lead;
      const remainingMs = deadline - this.#options.now();
      if (lead === this.#options.nodeId) {
        const index = await this.#localReadIndex(remainingMs);
        if (index !== undefined) return index;
      } else if (lead !== NONE) {
        const reply = await this.#remoteReadIndex(lead, Math.max(1, remainingMs));
        if (reply?.kind === "index") return reply.index;
      }
      if (this.#options.now() >= deadline) throw new NodeUnavailableError("no Raft leader confirmed a read index in time; retry later", 1);
      await this.#options.leaderPoll();
    }
  }

  /**
   * Ask the leader for a read index; reads arriving in one event-loop turn share one request, sent after they
   * all arrived (so the leader's confirmation follows each of them). Undefined when the request failed.
   */
  #remoteReadIndex(lead: NodeId, timeoutMs: number): Promise<ReadIndexReply | undefined> {
    const queued = this.#remoteReads.get(lead);
    if (queued !== undefined) return queued;
    const request = thisTurnDone().then(() => {
      this.#remoteReads.delete(lead);
      // The leader may have just failed: undefined, and the caller looks again until its deadline.
      return this.#options.transport.readIndex(lead, timeoutMs).catch(() => undefined);
    });
    this.#remoteReads.set(lead, request);
    return request;
  }

  /** The read index from the core, undefined when not leader or not confirmed within `timeoutMs`. */
  #localReadIndex(timeoutMs: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), Math.max(1, timeoutMs));
      const done = (index: number | undefined) => {
        clearTimeout(timer);
        resolve(index);
      };
      if (this.#readBatch !== undefined) {
        this.#readBatch.push(done);
        return;
      }
      // Reads arriving in one event-loop turn share one ReadIndex round (one heartbeat broadcast).
      const batch: Array<(index: number | undefined) => void> = [done];
      this.#readBatch = batch;
      afterThisTurn(() => {
        this.#readBatch = undefined;
        const context = new TextEncoder().encode(this.#options.newContext());
        try {
          this.#options.raw.readIndex(context);
        } catch (error) {
          if (!(error instanceof ProposalDroppedError)) throw error;
          for (const waiter of batch) waiter(undefined);
          return;
        }
        this.#readWaiters.set(contextKey(context), batch);
        this.#options.kick();
      });
    });
  }
}

function contextKey(context: Uint8Array): string {
  return new TextDecoder().decode(context);
}
