/**
 * The leader lease behind lease-based linearizable reads (thesis §6.4.1):
 * while it holds, the leader answers a read at its commit index without a
 * heartbeat round. It must never outlast the window in which no other node
 * can become leader.
 *
 * Why it holds: with check-quorum, a follower that heard from the leader
 * refuses every (pre-)vote for electionTicks of its own ticks (a restarted
 * node, which may have forgotten that, refuses them for electionTicks after
 * starting; see Raft). So once a quorum acknowledged a heartbeat the leader
 * sent at its tick t, no other leader can be elected before those followers
 * have each ticked electionTicks times after receiving it, which is after t.
 * The lease ends at t + electionTicks - LEASE_MARGIN_TICKS of the leader's
 * ticks. Clock assumption: every node's tick interval is within the margin's
 * worth of the others' (about 20% at the default 10 election ticks); a clock
 * running much slower on the leader than on its followers breaks the lease.
 */
import type { NodeId } from './types.ts';

/** Ticks a lease falls short of the election timeout: one for tick phase between nodes, one for rate drift. */
export const LEASE_MARGIN_TICKS = 2;
/** Election timeout needed for a lease of at least one tick. */
export const LEASE_ELECTION_TICKS_MIN = LEASE_MARGIN_TICKS + 1;

const encoder = new TextEncoder();

interface Probe {
  sentTick: number;
  acks: Set<NodeId>;
}

/** The leader's lease: heartbeat rounds in flight and how long the last confirmed one lasts. */
export class LeaderLease {
  readonly #durationTicks: number;
  /** Ticks since this node became leader. */
  #ticks = 0;
  /** The lease holds while #ticks < #until. */
  #until = 0;
  /** Heartbeat rounds not yet acknowledged by a quorum, by context; bounded by the rounds of one lease. */
  readonly #probes = new Map<string, Probe>();

  constructor(electionTicks: number) {
    this.#durationTicks = electionTicks - LEASE_MARGIN_TICKS;
  }

  /** One leader tick; rounds too old to extend the lease are forgotten. */
  tick(): void {
    this.#ticks++;
    for (const [key, probe] of this.#probes) {
      if (probe.sentTick + this.#durationTicks > this.#ticks) break;
      this.#probes.delete(key);
    }
  }

  /**
   * The context to send on a heartbeat round now: a pending read's (its
   * first send time is kept, so re-sent rounds never date the lease later
   * than they should) or a fresh lease probe.
   */
  heartbeatContext(self: NodeId, term: number, pendingRead: Uint8Array | undefined): Uint8Array {
    const context = pendingRead ?? encoder.encode(`lease/${term}/${this.#ticks}`);
    const key = contextKey(context);
    if (!this.#probes.has(key)) this.#probes.set(key, { sentTick: this.#ticks, acks: new Set([self]) });
    return context;
  }

  /** A heartbeat response echoing `context` from `from`; `hasQuorum` decides whether the acks so far suffice. */
  ack(from: NodeId, context: Uint8Array, hasQuorum: (acks: Set<NodeId>) => boolean): void {
    const key = contextKey(context);
    const probe = this.#probes.get(key);
    if (probe === undefined) return;
    probe.acks.add(from);
    if (!hasQuorum(probe.acks)) return;
    this.#until = Math.max(this.#until, probe.sentTick + this.#durationTicks);
    // Older rounds can only give a shorter lease now.
    for (const [other, earlier] of this.#probes) {
      if (earlier.sentTick > probe.sentTick) break;
      this.#probes.delete(other);
    }
  }

  /** Whether a read may be answered now without a heartbeat round. */
  holds(): boolean {
    return this.#ticks < this.#until;
  }
}

function contextKey(context: Uint8Array): string {
  let key = '';
  for (const byte of context) key += String.fromCharCode(byte);
  return key;
}
