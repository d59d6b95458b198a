/**
 * The Raft state machine (etcd-io/raft design): time arrives as tick(),
 * input as step(); output accumulates in `msgs` and `readStates` for the
 * RawNode to hand out in a Ready. No I/O, no clock, randomness only from
 * config.random. Role behaviour is swapped via the #tickFn / #stepFn fields.
 * Leader-only behaviour lives in leader.ts.
 */
import type { RaftConfig } from './config.ts';
import { confStateAfter, decodeConfChange } from './conf-change.ts';
import { assert, ProposalDroppedError } from './errors.ts';
import {
  appendEntries, bcastAppend, leaderMaybeCommit, stepLeader, tickLeader,
} from './leader.ts';
import { RaftLog } from './log.ts';
import { ProgressTracker } from './progress.ts';
import { LeaderLease } from './lease.ts';
import { ReadOnly } from './read-only.ts';
import type { RaftStorage } from './storage.ts';
import {
  CAMPAIGN_TRANSFER, NONE, type ConfChange, type Message, type NodeId, type ReadState, type Role, type Snapshot,
} from './types.ts';

/** Fields of a message the sender fills; the rest default to zero values. */
export type OutgoingMessage = Pick<Message, 'type' | 'to'> & Partial<Message>;

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}

/** One Raft peer. Internal: applications drive it through RawNode. */
export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  leadTransferee: NodeId = NONE;
  /** Index of the latest proposed conf change; a new one waits until it is applied. */
  pendingConfIndex = 0;
  /** Index of the entry (or snapshot) that produced the current membership. */
  confIndex = 0;
  readonly readOnly = new ReadOnly();
  /** Leader with leaseReads: its read lease (lease.ts); undefined otherwise, and for the rest of a leadership once a transfer began. */
  lease: LeaderLease | undefined;
  /**
   * With leaseReads, ticks left during which this freshly started node refuses every (pre-)vote: before a
   * crash it may have acknowledged a leader's lease heartbeat, which it no longer remembers.
   */
  #startupHoldTicks: number;
  /** Reads received before this leader committed an entry of its term (§6.4 step 1). */
  pendingReads: Uint8Array[] = [];
  readStates: ReadState[] = [];
  msgs: Message[] = [];
  /** Leader: data bytes proposed in this term and not yet handed out as committed (flow control). */
  uncommittedBytes = 0;
  #tickFn: () => void = () => this.#tickElection();
  #stepFn: (message: Message) => void = (message) => this.#stepFollower(message);

  constructor(config: RaftConfig, storage: RaftStorage) {
    this.id = config.id;
    this.config = config;
    this.#startupHoldTicks = config.leaseReads && config.testingKnobs?.skipLeaseStartupHold !== true ? config.electionTicks : 0;
    this.log = new RaftLog(storage);
    this.tracker = new ProgressTracker(config.maxInflightMessages);
    const { hardState, confState } = storage.initialState();
    this.tracker.reset(confState, this.log.lastIndex() + 1);
    this.confIndex = this.log.applied;
    assert(hardState.commit <= this.log.lastIndex(), `hard state commit ${hardState.commit} beyond last ${this.log.lastIndex()}`);
    this.log.committed = Math.max(this.log.committed, hardState.commit);
    this.becomeFollower(hardState.term, NONE);
    this.vote = hardState.vote;
  }

  /** A voter may campaign; learners and removed nodes never do. */
  promotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  send(message: OutgoingMessage): void {
    assert(message.to !== this.id, `message ${message.type} to self`);
    this.msgs.push({
      from: this.id, term: this.term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0,
      ...message,
    });
  }

  tick(): void {
    if (this.#startupHoldTicks > 0) this.#startupHoldTicks--;
    this.#tickFn();
  }

  #tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  #reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.config.electionTicks + Math.floor(this.config.random() * this.config.electionTicks);
    this.leadTransferee = NONE;
    this.tracker.votes.clear();
    this.tracker.reset(this.tracker.confState(), this.log.lastIndex() + 1);
    for (const [id, progress] of this.tracker.progress) {
      progress.recentActive = id === this.id;
      if (id === this.id) progress.match = this.log.durableLastIndex();
    }
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.readOnly.reset();
    this.pendingReads = [];
    this.lease = undefined;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.#reset(term);
    this.lead = lead;
    this.role = 'follower';
    this.#tickFn = () => this.#tickElection();
    this.#stepFn = (message) => this.#stepFollower(message);
  }

  #becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate directly');
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.#tickFn = () => this.#tickElection();
    this.#stepFn = (message) => this.#stepCandidate(message);
  }

  #becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // Pre-vote changes neither term nor vote: a failed pre-election leaves no trace.
    this.tracker.votes.clear();
    this.lead = NONE;
    this.role = 'preCandidate';
    this.#tickFn = () => this.#tickElection();
    this.#stepFn = (message) => this.#stepCandidate(message);
  }

  becomeLeader(): void {
    assert(this.role === 'candidate', `${this.role} cannot become leader`);
    this.#reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.tracker.progress.get(this.id)!.becomeReplicate();
    if (this.config.leaseReads) this.lease = new LeaderLease(this.config.electionTicks + (this.config.testingKnobs?.leaseExtraTicks ?? 0));
    this.#tickFn = () => tickLeader(this);
    this.#stepFn = (message) => stepLeader(this, message);
    // The no-op entry commits this term's first entry; ReadIndex and conf changes wait for it.
    this.pendingConfIndex = this.log.lastIndex() + 1;
    appendEntries(this, [{ index: 0, term: 0, type: 'normal', data: new Uint8Array(0) }]);
  }

  /** Starts an election (or pre-election) if allowed. `transfer` bypasses pre-vote and leases. */
  hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable() || this.#hasUnappliedConfChange()) return;
    if (this.config.preVote && !transfer) this.#campaign('preVote', false);
    else this.#campaign('vote', transfer);
  }

  #hasUnappliedConfChange(): boolean {
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    const pending = this.log.slice(lo, this.log.committed + 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    return pending.some((entry) => entry.type === 'confChange');
  }

  #campaign(type: 'preVote' | 'vote', transfer: boolean): void {
    let term: number;
    if (type === 'preVote') {
      this.#becomePreCandidate();
      term = this.term + 1;
    } else {
      this.#becomeCandidate();
      term = this.term;
    }
    if (this.#poll(this.id, true) === 'won') return;
    const voters = [...this.tracker.voters].sort((a, b) => a - b);
    for (const to of voters) {
      if (to === this.id) continue;
      const context = transfer ? CAMPAIGN_TRANSFER : undefined;
      this.send({ type, to, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(), context });
    }
  }

  /** Records a vote and acts on a decided election. */
  #poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    this.tracker.recordVote(from, granted);
    const { result } = this.tracker.tally();
    if (result === 'won') {
      if (this.role === 'preCandidate') this.#campaign('vote', false);
      else {
        this.becomeLeader();
        bcastAppend(this);
      }
    } else if (result === 'lost') {
      this.becomeFollower(this.term, NONE);
    }
    return result;
  }

  step(message: Message): void {
    if (!this.#stepTerm(message)) return;
    if (message.type === 'vote' || message.type === 'preVote') this.#handleVoteRequest(message);
    else this.#stepFn(message);
  }

  /** Term bookkeeping common to all roles; returns false when the message is to be dropped. */
  #stepTerm(m: Message): boolean {
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        const force = sameBytes(m.context, CAMPAIGN_TRANSFER);
        const inLease = this.config.checkQuorum && this.lead !== NONE && this.electionElapsed < this.config.electionTicks;
        // A node that heard from a live leader recently ignores disruptive candidates (and with lease reads, so
        // does a node that just started, which may have heard from one before it crashed).
        if (!force && (inLease || this.#startupHoldTicks > 0)) return false;
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResp' && !m.reject)) return true;
      const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
      this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      return true;
    }
    if (m.term < this.term) {
      if ((this.config.checkQuorum || this.config.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // Tells a stale leader (maybe cut off by pre-vote) about the newer term.
        this.send({ type: 'appResp', to: m.from });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', to: m.from, reject: true });
      }
      return false;
    }
    return true;
  }

  #handleVoteRequest(m: Message): void {
    const responseType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE)
      || (m.type === 'preVote' && m.term > this.term);
    const upToDate = this.config.testingKnobs?.skipUpToDateCheck === true || this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      this.send({ type: responseType, to: m.from, term: m.term });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: responseType, to: m.from, reject: true });
    }
  }

  #stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
      case 'heartbeat':
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.#handleFromLeader(m);
        return;
      case 'timeoutNow':
        this.hup(true);
        return;
      default:
        return;
    }
  }

  #stepCandidate(m: Message): void {
    const myResponse = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
      // A leader exists for this term: concede.
      this.becomeFollower(m.term, m.from);
      this.#handleFromLeader(m);
    } else if (m.type === myResponse) {
      this.#poll(m.from, !m.reject);
    }
  }

  #handleFromLeader(m: Message): void {
    if (m.type === 'app') this.#handleAppend(m);
    else if (m.type === 'heartbeat') this.#handleHeartbeat(m);
    else this.#handleSnapshot(m);
  }

  #handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: 'appResp', to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: 'appResp', to: m.from, index: lastNew });
      return;
    }
    // Fast backtracking: hint the largest index whose term could still match the leader's.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: 'appResp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  #handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeatResp', to: m.from, context: m.context });
  }

  #handleSnapshot(m: Message): void {
    assert(m.snapshot !== undefined, 'snap message without snapshot');
    const index = this.#restore(m.snapshot) ? this.log.lastIndex() : this.log.committed;
    this.send({ type: 'appResp', to: m.from, index });
  }

  #restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // Our log already has the snapshot's last entry: just fast-forward the commit.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.tracker.reset(confState, this.log.lastIndex() + 1);
    this.confIndex = index;
    return true;
  }

  /** Applies a committed membership change (called once the application applied its entry). */
  applyConfChange(index: number, data: Uint8Array): void {
    if (index <= this.confIndex) return;
    this.confIndex = index;
    const change = decodeConfChange(data);
    this.#changeMembership(change);
    if (this.role !== 'leader') return;
    if (!this.tracker.isVoter(this.id)) {
      this.becomeFollower(this.term, NONE);
      return;
    }
    // A removal may complete a quorum; an addition needs its first append.
    leaderMaybeCommit(this);
    bcastAppend(this);
  }

  #changeMembership(change: ConfChange): void {
    const tracker = this.tracker;
    const next = confStateAfter(tracker.confState(), change);
    tracker.voters = new Set(next.voters);
    tracker.learners = new Set(next.learners);
    const { nodeId } = change;
    if (!tracker.voters.has(nodeId) && !tracker.learners.has(nodeId)) {
      tracker.progress.delete(nodeId);
      if (this.leadTransferee === nodeId) this.leadTransferee = NONE;
      return;
    }
    const isLearner = tracker.learners.has(nodeId);
    const progress = tracker.progress.get(nodeId);
    if (progress) progress.isLearner = isLearner;
    else tracker.addProgress(nodeId, this.log.lastIndex() + 1);
  }

  /** Throws ProposalDroppedError unless this node is a leader able to accept proposals. */
  requireLeader(): void {
    if (this.role !== 'leader') throw new ProposalDroppedError('notLeader', this.lead);
    if (!this.tracker.progress.has(this.id)) throw new ProposalDroppedError('removed', NONE);
  }
}
