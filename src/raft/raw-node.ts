/**
 * RawNode: the application's handle on the Raft core. Inputs: tick(), step(),
 * propose(), proposeConfChange(), readIndex(), transferLeader(). Output: a
 * Ready, which the application must handle in this order:
 *   1. persist `snapshot`, `entries`, `hardState` (durably);
 *   2. send `messages` (they may depend on step 1: persist before send);
 *   3. apply `committedEntries` and serve `readStates` once applied >= index;
 *   4. call advance(ready).
 * Only one Ready is outstanding at a time (a leader may take its new messages
 * early meanwhile: takeLeaderMessages). A leader's own log counts toward a
 * commit only from advance() on, once it is durable. Membership changes take
 * effect at advance(), when their committed entry has been applied.
 */
import { resolveRaftConfig, type RaftConfig } from './config.ts';
import { assert } from './errors.ts';
import * as leader from './leader.ts';
import { Raft } from './raft.ts';
import type { RaftStorage } from './storage.ts';
import type { ConfChange, ConfState, HardState, Message, NodeId, ProgressState, Ready, Role, SoftState } from './types.ts';

/** What a node reports about itself (for tests, metrics and routing). */
export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  commit: number;
  applied: number;
  lastIndex: number;
  lead: NodeId;
  role: Role;
  leadTransferee: NodeId;
  confState: ConfState;
  /** Leader only: replication progress per peer. */
  progress: Map<NodeId, { match: number; next: number; state: ProgressState }>;
}

/** Configuration accepted by RawNode: `id` and `random` required, every limit defaulted. */
export type RawNodeConfig = Partial<RaftConfig> & Pick<RaftConfig, 'id' | 'random'>;

const COMMITTED_ENTRIES_PER_READY_MAX = 4096;

/** Thread-free, I/O-free Raft node driven by the application. */
export class RawNode {
  readonly #raft: Raft;
  #prevSoftState: SoftState;
  #prevHardState: HardState;
  #outstanding: Ready | undefined;

  /**
   * Starts (or restarts) a node from `storage`. A restarted node re-applies
   * committed entries after the storage's snapshot, so the application restores
   * its state from that snapshot. Throws on an invalid config.
   */
  constructor(config: RawNodeConfig, storage: RaftStorage) {
    this.#raft = new Raft(resolveRaftConfig(config), storage);
    this.#prevSoftState = this.#softState();
    this.#prevHardState = storage.initialState().hardState;
  }

  /** Advances logical time by one tick (elections, heartbeats, check-quorum). */
  tick(): void {
    this.#raft.tick();
  }

  /** Starts an election now (a pre-election when pre-vote is on); ignored by leaders and learners. */
  campaign(): void {
    this.#raft.hup(false);
  }

  /** Feeds a message received from a peer. */
  step(message: Message): void {
    assert(message.to === this.#raft.id, `message for ${message.to} stepped into ${this.#raft.id}`);
    this.#raft.step(message);
  }

  /** Proposes application data; throws ProposalDroppedError unless leader. */
  propose(data: Uint8Array): void {
    leader.propose(this.#raft, [data]);
  }

  /** Proposes several entries as one batch (one append, one persistence round). */
  proposeBatch(datas: Uint8Array[]): void {
    if (datas.length > 0) leader.propose(this.#raft, datas);
  }

  /** Proposes a membership change; throws ProposalDroppedError when one is pending. */
  proposeConfChange(change: ConfChange): void {
    leader.proposeConfChange(this.#raft, change);
  }

  /**
   * Requests a linearizable read; a ReadState with the same (unique) context
   * appears in a later Ready. Leader only (followers forward at a higher layer).
   */
  readIndex(context: Uint8Array): void {
    leader.readIndex(this.#raft, context);
  }

  /** Asks the leader to hand leadership to `target`; aborted after an election timeout. */
  transferLeader(target: NodeId): void {
    leader.transferLeader(this.#raft, target);
  }

  /** Transport report on a snapshot sent to `to`. */
  reportSnapshot(to: NodeId, outcome: 'finish' | 'failure'): void {
    leader.reportSnapshot(this.#raft, to, outcome);
  }

  #softState(): SoftState {
    return { lead: this.#raft.lead, role: this.#raft.role };
  }

  #hardState(): HardState {
    return { term: this.#raft.term, vote: this.#raft.vote, commit: this.#raft.log.committed };
  }

  /** Whether ready() would return anything (false while a Ready is outstanding). */
  hasReady(): boolean {
    if (this.#outstanding) return false;
    const r = this.#raft;
    const soft = this.#softState();
    const hard = this.#hardState();
    return soft.lead !== this.#prevSoftState.lead || soft.role !== this.#prevSoftState.role
      || !sameHardState(hard, this.#prevHardState)
      || r.log.unstable.snapshot !== undefined || r.log.unstable.entries.length > 0
      || r.msgs.length > 0 || r.readStates.length > 0 || r.log.hasNextCommittedEntries();
  }

  /** Collects pending output. Call advance() with it before the next ready(). */
  ready(): Ready {
    assert(this.#outstanding === undefined, 'ready() called before advance() of the previous Ready');
    const r = this.#raft;
    const ready: Ready = {
      entries: r.log.unstable.entries.slice(),
      snapshot: r.log.unstable.snapshot,
      committedEntries: r.log.nextCommittedEntries(r.config.maxCommittedBytesPerReady, COMMITTED_ENTRIES_PER_READY_MAX),
      messages: r.msgs,
      readStates: r.readStates,
    };
    r.msgs = [];
    r.readStates = [];
    const soft = this.#softState();
    if (soft.lead !== this.#prevSoftState.lead || soft.role !== this.#prevSoftState.role) {
      ready.softState = soft;
      this.#prevSoftState = soft;
    }
    const hard = this.#hardState();
    if (!sameHardState(hard, this.#prevHardState)) {
      ready.hardState = hard;
      this.#prevHardState = hard;
    }
    this.#outstanding = ready;
    return ready;
  }

  /** Acknowledges that `ready` was persisted, sent and applied. */
  advance(ready: Ready): void {
    assert(ready === this.#outstanding, 'advance() with a Ready that is not the outstanding one');
    this.#outstanding = undefined;
    const log = this.#raft.log;
    const last = ready.entries[ready.entries.length - 1];
    if (last) log.unstable.stableTo(last.index, last.term);
    if (ready.snapshot) {
      log.unstable.stableSnapTo(ready.snapshot.metadata.index);
      log.appliedTo(ready.snapshot.metadata.index);
    }
    for (const entry of ready.committedEntries) {
      if (entry.index <= log.applied) continue;
      this.#raft.uncommittedBytes = Math.max(0, this.#raft.uncommittedBytes - entry.data.byteLength);
      if (entry.type === 'confChange') this.#raft.applyConfChange(entry.index, entry.data);
      log.appliedTo(entry.index);
    }
    leader.selfPersisted(this.#raft);
  }

  /**
   * The messages produced since the last Ready, taken out of the next one.
   * Only for a leader whose term and vote are durable, while a Ready is
   * outstanding: its appends and heartbeats need nothing from the Ready being
   * persisted (Raft thesis 10.2.1; its own log counts toward a commit only
   * once durable, so no commit index it announces rests on a write in flight).
   */
  takeLeaderMessages(): Message[] {
    assert(this.#raft.role === 'leader', 'takeLeaderMessages() on a node that does not lead');
    const messages = this.#raft.msgs;
    this.#raft.msgs = [];
    return messages;
  }

  /** The current term, without building a full status. */
  get term(): number {
    return this.#raft.term;
  }

  /** Membership in force (as of the applied index). */
  confState(): ConfState {
    return this.#raft.tracker.confState();
  }

  /** The leader this node knows of (NONE if none), without building a full status. */
  get lead(): NodeId {
    return this.#raft.lead;
  }

  /** This node's role, without building a full status. */
  get role(): Role {
    return this.#raft.role;
  }

  status(): RaftStatus {
    const r = this.#raft;
    const progress = new Map<NodeId, { match: number; next: number; state: ProgressState }>();
    if (r.role === 'leader') {
      for (const [id, p] of r.tracker.progress) progress.set(id, { match: p.match, next: p.next, state: p.state });
    }
    return {
      id: r.id, term: r.term, vote: r.vote, commit: r.log.committed, applied: r.log.applied,
      lastIndex: r.log.lastIndex(), lead: r.lead, role: r.role, leadTransferee: r.leadTransferee,
      confState: r.tracker.confState(), progress,
    };
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
