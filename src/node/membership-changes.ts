/**
 * Membership changes of a Raft node: a change asked of any node goes to the
 * leader, which checks it against the applied membership, proposes it (the
 * core allows one pending change) and answers once it is applied there; on
 * ticks the leader also promotes a learner that has caught up. Kept apart
 * from RaftNode, which owns the Ready loop: applying a change (the member
 * book, the transport's peers) stays there, and the node tells this module
 * which awaited changes its applied entries settled
 * ({@link MembershipChanges.awaitedOutcome}, {@link MembershipChanges.settle}).
 *
 * It must never report a change as applied unless the entry applied at its
 * index is the change proposed here in that term; anything else is "lost" or
 * unknown, never "done".
 */
import { InvalidRequestError, type LedgerError } from "../ledger/errors.ts";
import { NONE, ProposalDroppedError, type ConfChange, type Entry, type NodeId, type RawNode } from "../raft/index.ts";
import { isConnectionRefused, type HttpTransport, type MemberInfo, type MembershipReply, type MembershipRequest } from "../transport/index.ts";
import {
  MemberNotFoundError, MembershipChangePendingError, MembershipConflictError, NodeUnavailableError, type MembershipOutcome, type MemberStatus,
} from "./index.ts";
import { remoteError } from "./idempotent-apply.ts";
import { encodeAddressContext, isMemberAddress, isMemberId, type Membership } from "./members.ts";

/** A learner is promoted to voter once its log is within this many entries of the leader's (checked on ticks). */
export const LEARNER_PROMOTION_LAG_ENTRIES_MAX = 64;
/** Most membership changes waiting to be applied on this leader (the core allows one pending; the rest wait briefly). */
const CONF_WAITERS_MAX = 64;

/** A membership change proposed here, waiting for its entry to be applied. */
interface ConfWaiter {
  term: number;
  resolve: (outcome: "applied" | "lost" | "timeout") => void;
}

/** Options of {@link MembershipChanges}. */
export interface MembershipChangesOptions {
  /** This node's id. */
  nodeId: NodeId;
  /** The Raft core: the leader it knows of, its status (progress, last index, term) and conf change proposals. */
  raw: Pick<RawNode, "lead" | "status" | "proposeConfChange">;
  /** Carries a change to the leader when this node is not it. */
  transport: Pick<HttpTransport, "forwardMembership">;
  /** The membership as of the applied index. */
  membership: () => Membership;
  /** The clock, in ms. */
  now: () => number;
  /** How long a change waits for a leader before 503. */
  leaderWaitMs: number;
  /** How long a proposed change may take to apply (and a forwarded one to be answered) before its outcome is unknown. */
  requestTimeoutMs: number;
  /** Why this node takes no change now (closed, failed, removed); undefined when it does. */
  serviceRefusal: () => NodeUnavailableError | undefined;
  /** Whether this node heard from `id` recently, for the members listed in an answer. */
  reachable: (id: NodeId) => boolean;
  /** Resolves after the interval between two looks for a leader. */
  leaderPoll: () => Promise<void>;
  /** Run the Ready loop: a change was proposed. */
  kick: () => void;
}

export class MembershipChanges {
  readonly #options: MembershipChangesOptions;
  readonly #confWaiters = new Map<number, ConfWaiter>();

  constructor(options: MembershipChangesOptions) {
    this.#options = options;
  }

  /** Apply `request` through the leader, forwarded to it when this node is not it; rejects with a ledger error when refused. */
  async change(request: MembershipRequest): Promise<MembershipOutcome> {
    const deadline = this.#options.now() + this.#options.leaderWaitMs;
    for (;;) {
      const refusal = this.#options.serviceRefusal();
      if (refusal !== undefined) throw refusal;
      const lead = this.#options.raw.lead;
      let reply: MembershipReply | undefined;
      if (lead === this.#options.nodeId) reply = await this.changeLocal(request);
      else if (lead !== NONE) reply = await this.#forwardChange(lead, request);
      if (reply?.kind === "refused") throw remoteError(reply.code, reply.message);
      if (reply?.kind === "done") {
        const members = reply.members.map((info): MemberStatus => ({
          id: String(info.id), address: info.clientAddress, raftAddress: info.raftAddress, role: info.role, reachable: this.#options.reachable(info.id),
        }));
        return { changed: reply.changed, members };
      }
      if (this.#options.now() >= deadline) throw new NodeUnavailableError("no Raft leader is known; retry later", 1);
      await this.#options.leaderPoll();
    }
  }

  /**
   * On the leader: check `request` against the applied membership, propose it (the core allows one pending
   * change) and answer once it is applied here. Adding a member that is already there with the same addresses
   * changes nothing (a retried join succeeds).
   */
  async changeLocal(request: MembershipRequest): Promise<MembershipReply> {
    const lead = this.#options.raw.lead;
    if (lead !== this.#options.nodeId) return { kind: "notLeader", leaderId: lead };
    const checked = this.#checkChange(request);
    if (checked.kind !== "propose") return checked.reply;
    if (this.#confWaiters.size >= CONF_WAITERS_MAX) return refused(new NodeUnavailableError("too many membership changes waiting; retry later"));
    try {
      this.#options.raw.proposeConfChange(checked.change);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      return dropReply(error);
    }
    const { lastIndex: index, term } = this.#options.raw.status();
    this.#options.kick();
    const outcome = await this.#waitConfApplied(index, term);
    if (outcome === "timeout") return refused(new NodeUnavailableError(`the membership change was not applied within ${this.#options.requestTimeoutMs} ms; its outcome is unknown`));
    if (outcome === "lost") return refused(new NodeUnavailableError("leadership changed before the membership change committed; check /cluster/members and retry"));
    return { kind: "done", changed: true, members: this.#memberInfos() };
  }

  /** On ticks, as leader: promote the first learner whose log is within LEARNER_PROMOTION_LAG_ENTRIES_MAX of ours. */
  maybePromote(): void {
    const status = this.#options.raw.status();
    if (status.role !== "leader" || status.confState.learners.length === 0) return;
    for (const id of status.confState.learners) {
      const progress = status.progress.get(id);
      if (progress === undefined || progress.state !== "replicate" || progress.match + LEARNER_PROMOTION_LAG_ENTRIES_MAX < status.lastIndex) continue;
      try {
        this.#options.raw.proposeConfChange({ type: "addVoter", nodeId: id });
      } catch (error) {
        // Another change is pending, or leadership is moving: the next tick tries again.
        if (!(error instanceof ProposalDroppedError)) throw error;
      }
      return;
    }
  }

  /** For a committed entry: whether it is the change proposed here awaited at its index; undefined when none is awaited there. */
  awaitedOutcome(entry: Entry): boolean | undefined {
    const waiter = this.#confWaiters.get(entry.index);
    if (waiter === undefined) return undefined;
    return entry.type === "confChange" && entry.term === waiter.term;
  }

  /**
   * Once applied entries are durable and the applied index advanced to `appliedIndex`: settle the changes
   * awaited at the indexes in `outcomes` (from {@link awaitedOutcome}), then those the applied index passed.
   */
  settle(outcomes: ReadonlyMap<number, boolean>, appliedIndex: number): void {
    for (const [index, applied] of outcomes) {
      this.#confWaiters.get(index)?.resolve(applied ? "applied" : "lost");
      this.#confWaiters.delete(index);
    }
    for (const [index, waiter] of this.#confWaiters) {
      if (index > appliedIndex) continue;
      // Passed without being seen (an install jumped over it): it is not known to have been applied.
      waiter.resolve("lost");
      this.#confWaiters.delete(index);
    }
  }

  /** Forward a change to the leader; undefined when nothing reached it (a retry is safe). */
  async #forwardChange(lead: NodeId, request: MembershipRequest): Promise<MembershipReply | undefined> {
    try {
      return await this.#options.transport.forwardMembership(lead, request, this.#options.requestTimeoutMs);
    } catch (error) {
      if (isConnectionRefused(error)) return undefined;
      throw new NodeUnavailableError(`forwarding the membership change to leader ${lead} failed (its outcome is unknown): ${(error as Error).message}`, 1);
    }
  }

  #checkChange(request: MembershipRequest): { kind: "propose"; change: ConfChange } | { kind: "answer"; reply: MembershipReply } {
    const answer = (reply: MembershipReply) => ({ kind: "answer" as const, reply });
    const { id } = request;
    const { confState, addresses, removed } = this.#options.membership();
    const isMember = confState.voters.includes(id) || confState.learners.includes(id);
    if (!isMemberId(id)) return answer(refused(new InvalidRequestError(`a member id is an integer in [1, 2^31], got ${id}`)));
    if (request.kind === "remove") {
      if (!isMember) return answer(refused(new MemberNotFoundError(id)));
      return { kind: "propose", change: { type: "removeNode", nodeId: id } };
    }
    const member = { clientAddress: request.clientAddress, raftAddress: request.raftAddress };
    if (!isMemberAddress(member.clientAddress) || !isMemberAddress(member.raftAddress)) {
      return answer(refused(new InvalidRequestError("client_address and raft_address must be host:port or an http(s) URL")));
    }
    if (removed.has(id)) return answer(refused(new MembershipConflictError(`node ${id} was removed from the cluster; a removed id is never admitted again (use a new id)`)));
    if (isMember) {
      const known = addresses.get(id);
      if (known?.clientAddress === member.clientAddress && known.raftAddress === member.raftAddress) {
        return answer({ kind: "done", changed: false, members: this.#memberInfos() });
      }
      return answer(refused(new MembershipConflictError(`node ${id} is already a member with other addresses; remove it first`)));
    }
    return { kind: "propose", change: { type: "addLearner", nodeId: id, context: encodeAddressContext(member) } };
  }

  /** Resolves once the entry at `index` is applied: "applied" when it is the change proposed in `term`. */
  #waitConfApplied(index: number, term: number): Promise<"applied" | "lost" | "timeout"> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#confWaiters.delete(index);
        resolve("timeout");
      }, this.#options.requestTimeoutMs);
      this.#confWaiters.set(index, {
        term,
        resolve: (outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        },
      });
    });
  }

  #memberInfos(): MemberInfo[] {
    const { confState, addresses } = this.#options.membership();
    const info = (id: NodeId, role: MemberInfo["role"]): MemberInfo => ({
      id, role, clientAddress: addresses.get(id)?.clientAddress ?? "", raftAddress: addresses.get(id)?.raftAddress ?? "",
    });
    return [...confState.voters.map((id) => info(id, "voter")), ...confState.learners.map((id) => info(id, "learner"))];
  }
}

function refused(error: LedgerError): MembershipReply {
  return { kind: "refused", code: error.code, message: error.message };
}

/** What a client is told when the core drops a membership proposal. */
function dropReply(error: ProposalDroppedError): MembershipReply {
  switch (error.reason) {
    case "confChangePending":
      return refused(new MembershipChangePendingError());
    case "invalidConfChange":
      return refused(new MembershipConflictError("the last voter cannot be removed"));
    case "notLeader":
    case "removed":
      return { kind: "notLeader", leaderId: error.leader };
    default:
      return refused(new NodeUnavailableError(`the leader cannot take a membership change now (${error.reason}); retry`));
  }
}
