/**
 * Leader behaviour: replication with probe/replicate/snapshot progress and a
 * bounded in-flight window, the current-term commit rule, heartbeats,
 * check-quorum, ReadIndex and leader transfer. Functions over a Raft so the
 * role's step/tick can be swapped in as plain functions.
 */
import { encodeConfChange } from './conf-change.ts';
import { assert, CompactedError, ProposalDroppedError } from './errors.ts';
import type { Raft } from './raft.ts';
import { NONE, type ConfChange, type Entry, type Message, type NodeId } from './types.ts';

/** Appends entries at the leader's log end, stamping index and term. */
export function appendEntries(r: Raft, entries: Entry[]): void {
  let index = r.log.lastIndex();
  const stamped = entries.map((entry) => ({ ...entry, index: ++index, term: r.term }));
  r.log.append(stamped);
  // The leader's own copy counts toward a quorum only once it is durable (selfPersisted, called at advance).
}

/**
 * The node persisted its log through `r.log.durableLastIndex()`: a leader's
 * own match moves there, which may commit (a single voter commits this way);
 * a new commit index goes to the followers at once.
 */
export function selfPersisted(r: Raft): void {
  if (r.role !== 'leader') return;
  const self = r.tracker.progress.get(r.id);
  if (self === undefined || !self.maybeUpdate(r.log.durableLastIndex())) return;
  if (leaderMaybeCommit(r)) bcastAppend(r);
}

/** Commits what a quorum has; on this term's first commit, serves reads held back until now. */
export function leaderMaybeCommit(r: Raft): boolean {
  const skipTermCheck = r.config.testingKnobs?.commitPreviousTermEntries === true;
  if (!r.log.maybeCommit(r.tracker.committed(), r.term, skipTermCheck)) return false;
  if (r.pendingReads.length > 0 && r.log.termOrZero(r.log.committed) === r.term) {
    const reads = r.pendingReads;
    r.pendingReads = [];
    for (const context of reads) serveRead(r, context);
  }
  return true;
}

/** Proposes application entries (a batch becomes one append). */
export function propose(r: Raft, datas: Uint8Array[]): void {
  r.requireLeader();
  if (r.leadTransferee !== NONE) throw new ProposalDroppedError('transferring', r.lead);
  let bytes = 0;
  for (const data of datas) bytes += data.byteLength;
  if (r.uncommittedBytes > 0 && r.uncommittedBytes + bytes > r.config.maxUncommittedBytes) {
    throw new ProposalDroppedError('tooManyUncommitted', r.lead);
  }
  r.uncommittedBytes += bytes;
  appendEntries(r, datas.map((data) => ({ index: 0, term: 0, type: 'normal', data })));
  bcastAppend(r);
}

/** Proposes a membership change; only one may be pending (proposed but not applied). */
export function proposeConfChange(r: Raft, change: ConfChange): void {
  r.requireLeader();
  if (r.leadTransferee !== NONE) throw new ProposalDroppedError('transferring', r.lead);
  if (r.pendingConfIndex > r.log.applied) throw new ProposalDroppedError('confChangePending', r.lead);
  const voters = r.tracker.voters;
  const removesLastVoter = change.type === 'removeNode' && voters.size === 1 && voters.has(change.nodeId);
  if (removesLastVoter) throw new ProposalDroppedError('invalidConfChange', r.lead);
  appendEntries(r, [{ index: 0, term: 0, type: 'confChange', data: encodeConfChange(change) }]);
  r.pendingConfIndex = r.log.lastIndex();
  bcastAppend(r);
}

/** ReadIndex (§6.4): held until this term has a commit, then confirmed by a heartbeat quorum. */
export function readIndex(r: Raft, context: Uint8Array): void {
  r.requireLeader();
  if (r.pendingReads.length + r.readOnly.size() >= r.config.maxPendingReads) {
    throw new ProposalDroppedError('tooManyReads', r.lead);
  }
  if (r.log.termOrZero(r.log.committed) !== r.term) r.pendingReads.push(context);
  else serveRead(r, context);
}

function serveRead(r: Raft, context: Uint8Array): void {
  if ((r.tracker.voters.size === 1 && r.tracker.isVoter(r.id)) || r.lease?.holds() === true) {
    r.readStates.push({ index: r.log.committed, context });
    return;
  }
  r.readOnly.add(r.log.committed, context, r.id);
  bcastHeartbeat(r, r.lease?.heartbeatContext(r.id, r.term, context) ?? context);
}

/**
 * Sends the next append to `to` unless paused; falls back to a snapshot when
 * the needed entries are compacted. Returns whether a message was sent.
 */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const progress = r.tracker.progress.get(to);
  if (!progress || progress.isPaused()) return false;
  const prevIndex = progress.next - 1;
  let prevTerm: number;
  let entries: Entry[];
  try {
    prevTerm = r.log.term(prevIndex);
    const { maxBytesPerMessage, maxEntriesPerMessage } = r.config;
    entries = r.log.slice(progress.next, r.log.lastIndex() + 1, maxBytesPerMessage, maxEntriesPerMessage);
  } catch (error) {
    if (error instanceof CompactedError) return sendSnapshot(r, to);
    throw error;
  }
  if (entries.length === 0 && !sendIfEmpty) return false;
  r.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries, commit: r.log.committed });
  if (entries.length > 0 && progress.state === 'replicate') {
    const last = entries[entries.length - 1]!.index;
    progress.optimisticUpdate(last);
    progress.inflights.add(last);
  } else if (progress.state === 'probe') {
    progress.probeSent = true;
  }
  return true;
}

function sendSnapshot(r: Raft, to: NodeId): boolean {
  const progress = r.tracker.progress.get(to)!;
  // An inactive peer would only waste a (large) snapshot transfer.
  if (!progress.recentActive) return false;
  const snapshot = r.log.snapshot();
  assert(snapshot.metadata.index > 0, 'need a snapshot but none exists');
  progress.becomeSnapshot(snapshot.metadata.index);
  r.send({ type: 'snap', to, snapshot });
  return true;
}

/** Sends to every peer as much as its in-flight window allows (at least a heartbeat-like empty append). */
export function bcastAppend(r: Raft): void {
  for (const id of sortedPeers(r)) {
    if (maybeSendAppend(r, id, true)) while (maybeSendAppend(r, id, false));
  }
}

export function bcastHeartbeat(r: Raft, context: Uint8Array | undefined): void {
  for (const id of sortedPeers(r)) {
    const progress = r.tracker.progress.get(id)!;
    // Never claim a commit the follower may not have the entries for.
    const commit = Math.min(progress.match, r.log.committed);
    r.send({ type: 'heartbeat', to: id, commit, context });
  }
}

function sortedPeers(r: Raft): NodeId[] {
  return [...r.tracker.progress.keys()].filter((id) => id !== r.id).sort((a, b) => a - b);
}

export function tickLeader(r: Raft): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  r.lease?.tick();
  if (r.electionElapsed >= r.config.electionTicks) {
    r.electionElapsed = 0;
    if (r.config.checkQuorum) {
      if (!r.tracker.quorumActive(r.id)) {
        r.becomeFollower(r.term, NONE);
        return;
      }
      for (const [id, progress] of r.tracker.progress) progress.recentActive = id === r.id;
    }
    // A transfer not done within an election timeout is abandoned (§3.10).
    r.leadTransferee = NONE;
  }
  if (r.heartbeatElapsed >= r.config.heartbeatTicks) {
    r.heartbeatElapsed = 0;
    const pending = r.readOnly.lastPendingContext();
    bcastHeartbeat(r, r.lease?.heartbeatContext(r.id, r.term, pending) ?? pending);
  }
}

export function stepLeader(r: Raft, m: Message): void {
  const progress = r.tracker.progress.get(m.from);
  switch (m.type) {
    case 'appResp':
      if (progress) handleAppendResponse(r, m);
      return;
    case 'heartbeatResp':
      if (progress) handleHeartbeatResponse(r, m);
      return;
    case 'app':
    case 'heartbeat':
    case 'snap':
      assert(false, `two leaders in term ${r.term}: ${r.id} and ${m.from}`);
      return;
    default:
      return;
  }
}

function handleAppendResponse(r: Raft, m: Message): void {
  const progress = r.tracker.progress.get(m.from)!;
  progress.recentActive = true;
  if (m.reject) {
    const hint = m.logTerm > 0 ? r.log.findConflictByTerm(m.rejectHint, m.logTerm).index : m.rejectHint;
    if (progress.maybeDecrTo(m.index, hint)) {
      if (progress.state === 'replicate') progress.becomeProbe();
      maybeSendAppend(r, m.from, true);
    }
    return;
  }
  const wasPaused = progress.isPaused();
  // A probe answered at exactly the known match also proves the follower's log: start replicating.
  const probeConfirmed = progress.state === 'probe' && progress.match === m.index;
  if (!progress.maybeUpdate(m.index) && !probeConfirmed) return;
  if (progress.state === 'probe') progress.becomeReplicate();
  else if (progress.state === 'snapshot' && progress.match + 1 >= r.log.firstIndex()) {
    progress.becomeProbe();
    progress.becomeReplicate();
  } else if (progress.state === 'replicate') progress.inflights.freeLE(m.index);
  if (leaderMaybeCommit(r)) bcastAppend(r);
  else if (wasPaused) maybeSendAppend(r, m.from, true);
  // Pipelining: keep sending while the in-flight window and the log allow (bounded by both).
  while (maybeSendAppend(r, m.from, false));
  if (m.from === r.leadTransferee && progress.match === r.log.lastIndex()) {
    r.send({ type: 'timeoutNow', to: m.from });
  }
}

function handleHeartbeatResponse(r: Raft, m: Message): void {
  const progress = r.tracker.progress.get(m.from)!;
  progress.recentActive = true;
  progress.probeSent = false;
  // A lost append would otherwise keep a full window stuck forever.
  if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirstOne();
  if (progress.match < r.log.lastIndex()) maybeSendAppend(r, m.from, true);
  if (m.context === undefined || m.context.byteLength === 0) return;
  r.lease?.ack(m.from, m.context, (acks) => r.tracker.hasQuorum(acks));
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (acks && r.tracker.hasQuorum(acks)) r.readStates.push(...r.readOnly.advance(m.context));
}

/** Outcome of a snapshot transfer, reported by the application's transport. */
export function reportSnapshot(r: Raft, to: NodeId, outcome: 'finish' | 'failure'): void {
  const progress = r.tracker.progress.get(to);
  if (r.role !== 'leader' || !progress || progress.state !== 'snapshot') return;
  if (outcome === 'failure') progress.pendingSnapshot = 0;
  progress.becomeProbe();
  // Wait for the follower's answer (or a heartbeat response) before probing again.
  progress.probeSent = true;
}

/** Hands leadership to `target` once its log is caught up (TimeoutNow, §3.10). */
export function transferLeader(r: Raft, target: NodeId): void {
  r.requireLeader();
  const progress = r.tracker.progress.get(target);
  if (!progress || progress.isLearner || target === r.id) return;
  if (r.leadTransferee === target) return;
  r.electionElapsed = 0;
  r.leadTransferee = target;
  // The target may win with forced votes, which ignore leases, even after this transfer is abandoned (a late
  // TimeoutNow): no lease reads for the rest of this leadership.
  r.lease = undefined;
  if (progress.match === r.log.lastIndex()) r.send({ type: 'timeoutNow', to: target });
  else maybeSendAppend(r, target, true);
}
