/**
 * The leader's view of each follower (etcd's tracker): how far its log matches,
 * what to send next, and whether appends are paused. Also the membership and
 * the quorum arithmetic (commit index, vote tally, check-quorum activity).
 */
import { assert } from './errors.ts';
import type { ConfState, NodeId, ProgressState } from './types.ts';

/** Bounded window of in-flight append messages, identified by their last index. */
export class Inflights {
  #lastIndexes: number[] = [];
  constructor(readonly capacity: number) {
    assert(capacity >= 1, 'inflight capacity must be >= 1');
  }

  full(): boolean {
    return this.#lastIndexes.length >= this.capacity;
  }

  count(): number {
    return this.#lastIndexes.length;
  }

  add(lastIndex: number): void {
    assert(!this.full(), 'inflights overflow');
    this.#lastIndexes.push(lastIndex);
  }

  /** Acknowledged through `index`: frees every message ending at or below it. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.#lastIndexes.length && this.#lastIndexes[n]! <= index) n++;
    this.#lastIndexes.splice(0, n);
  }

  freeFirstOne(): void {
    this.#lastIndexes.shift();
  }

  reset(): void {
    this.#lastIndexes = [];
  }
}

/** Replication progress of one peer. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: one append is outstanding, wait for its answer (or a heartbeat response). */
  probeSent = false;
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
    this.isLearner = isLearner;
  }

  #resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.#resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.#resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An ack through `index`; returns whether match advanced. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** Pipelining: assume the append of entries through `lastIndex` will succeed. */
  optimisticUpdate(lastIndex: number): void {
    this.next = lastIndex + 1;
  }

  /**
   * A rejection of the append whose previous index was `rejected`; `matchHint`
   * is the follower's conflict hint. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    if (this.state === 'probe') return this.probeSent;
    if (this.state === 'replicate') return this.inflights.full();
    return true;
  }
}

/** Outcome of an election tally. */
export type VoteResult = 'pending' | 'won' | 'lost';

/** Membership plus per-peer progress. Voters and learners are disjoint. */
export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    const sorted = (set: Set<NodeId>) => [...set].sort((a, b) => a - b);
    return { voters: sorted(this.voters), learners: sorted(this.learners) };
  }

  /** Replaces membership; progress of members is (re)created from `next`. */
  reset(confState: ConfState, next: number): void {
    this.voters = new Set(confState.voters);
    this.learners = new Set(confState.learners);
    for (const id of this.learners) assert(!this.voters.has(id), `node ${id} both voter and learner`);
    this.progress = new Map();
    for (const id of [...this.voters, ...this.learners]) this.addProgress(id, next);
  }

  addProgress(id: NodeId, next: number): void {
    const progress = new Progress(next, this.maxInflight, this.learners.has(id));
    progress.recentActive = true;
    this.progress.set(id, progress);
  }

  isVoter(id: NodeId): boolean {
    return this.voters.has(id);
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  /** Largest index replicated on a quorum of voters. */
  committed(): number {
    if (this.voters.size === 0) return 0;
    const matches = [...this.voters].map((id) => this.progress.get(id)!.match).sort((a, b) => b - a);
    return matches[this.quorum() - 1]!;
  }

  hasQuorum(ids: Set<NodeId>): boolean {
    let count = 0;
    for (const id of this.voters) if (ids.has(id)) count++;
    return count >= this.quorum();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tally(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const vote = this.votes.get(id);
      if (vote === true) granted++;
      if (vote === false) rejected++;
    }
    const quorum = this.quorum();
    const result = granted >= quorum ? 'won' : this.voters.size - rejected < quorum ? 'lost' : 'pending';
    return { granted, rejected, result };
  }

  /** Check-quorum: has a quorum of voters (counting `self`) been heard from recently? */
  quorumActive(self: NodeId): boolean {
    const active = new Set<NodeId>();
    for (const [id, progress] of this.progress) {
      if (id === self || progress.recentActive) active.add(id);
    }
    return this.hasQuorum(active);
  }
}
