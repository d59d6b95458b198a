/**
 * A Raft-replicated ledger node: drives the pure Raft core (`RawNode`) at the
 * edge with a tick timer, the peer transport and the storage port, and applies
 * committed entries to the ledger state machine.
 *
 * Per Ready (one outstanding at a time, as the core requires): a leader whose
 * term and vote are unchanged sends its appends first (thesis 10.2.1);
 * committed entries already durable here are prepared and published; ONE
 * durable storage commit then holds the new log entries, the hard state, those
 * entries' ledger writes and the applied index; then the other messages are
 * sent (persist before send), waiting clients answered, read states served,
 * and the core advanced. A failed storage commit fail-stops the node, as in
 * LocalNode.
 *
 * Writes: the leader groups the commands that arrive in one event-loop turn
 * into one entry stamped with its clock; a follower forwards its commands to
 * the leader (write-forwarder.ts), which acks them once proposed and puts the
 * follower's request ids in the entry, so the follower answers each client
 * when it applies that entry itself, with the result it computed. Reads:
 * ReadIndex, asked of the leader when this node is a follower.
 *
 * Membership: conf changes carry the added member's addresses; applying one
 * updates the replicated member book (stored with the applied index) and the
 * transport's peer set. The leader promotes a learner to voter once it has
 * caught up. A node that learns it was removed stops campaigning and says so.
 * Snapshots and compaction are in raft-snapshots.ts; a snapshot from the
 * leader is installed inside its Ready, before that Ready's messages are
 * sent, so the leader sees the node's progress only once it can apply.
 */
import { type BatchOp, type Storage } from "../storage/index.ts";
import { commandSizeBytes, validateCommand, type LedgerLimits, type WriteCommand } from "../ledger/commands.ts";
import { type CommandResult, type Ledger } from "../ledger/ledger.ts";
import { type Entry as LedgerEntry } from "../ledger/entry.ts";
import { InvalidRequestError, LedgerError } from "../ledger/errors.ts";
import {
  decodeConfChange, NONE, ProposalDroppedError, RawNode, seededRandom, type ConfChange, type Entry, type Message, type NodeId, type Ready,
} from "../raft/index.ts";
import {
  isConnectionRefused, PeerRequestError, REPLY_SLOTS_MAX, REPLY_WAIT_MS, REQUEST_ID_CHARS_MAX, WireFormatError, type EntriesRequest, type ForwardAck, type ForwardedWrite, type HttpTransport,
  type MemberInfo, type MembershipReply, type MembershipRequest, type PeerHandler, type ReadIndexReply,
} from "../transport/index.ts";
import { DEFAULT_WRITE_QUEUE_LIMITS, type WriteQueueLimits } from "./local-node.ts";
import { appliedIndexOp, membershipOp, type RaftLogStorage } from "./raft-log-storage.ts";
import { decodeProposal, encodeProposal, type Proposal, type ProposedCommand } from "./proposal.ts";
import {
  MemberNotFoundError, MembershipChangePendingError, MembershipConflictError, NodeUnavailableError, type Consistency, type LedgerNode, type MemberStatus, type MembershipAdmin,
  type MembershipOutcome, type NewMember, type NodeStatus, type WriteOptions, type WriteOutcome,
} from "./index.ts";
import { encodeAddressContext, isMemberAddress, isMemberId, membershipAfter, type Membership } from "./members.ts";
import { RaftSnapshots } from "./raft-snapshots.ts";
import { decodeSnapshotState } from "./snapshot-state.ts";
import { type EntriesStreamLimits } from "./entries-stream.ts";
import { isIdempotencyKey, type IdempotencyRecords } from "./raft-idempotency.ts";
import { ReadyLoop } from "./ready-loop.ts";
import { prepareIdempotent, remoteError } from "./idempotent-apply.ts";
import { afterThisTurn, cancelTurn, thisTurnDone, type TurnHandle } from "./next-turn.ts";
import { ANSWERED_TYPES, ReplySlots } from "./reply-slots.ts";
import { WriteForwarder } from "./write-forwarder.ts";

/** Options of {@link RaftNode}. */
export interface RaftNodeOptions {
  nodeId: NodeId;
  ledger: Ledger;
  storage: Storage;
  log: RaftLogStorage;
  /** Recorded first results of writes sent with an idempotency key. */
  idempotency: IdempotencyRecords;
  transport: HttpTransport;
  now: () => number;
  tickMs: number;
  electionTicks: number;
  heartbeatTicks: number;
  /** Answer linearizable reads from the leader lease (the core's leaseReads) instead of a heartbeat round each. */
  leaseReads?: boolean;
  /** How long a write or linearizable read waits for a leader (or a read index) before 503. */
  leaderWaitMs: number;
  /** How long a proposed write may take to apply before 503. */
  requestTimeoutMs: number;
  commandLimits: LedgerLimits;
  limits?: WriteQueueLimits;
  /** Applied entries between two snapshots, each followed by a log compaction. */
  snapshotEntries: number;
  /** Entries kept in the log behind a snapshot for followers slightly behind. */
  compactionMarginEntries: number;
  /** Limits of entries streams (snapshot installs), both directions. */
  streamLimits?: EntriesStreamLimits;
  onFatal?: (error: unknown) => void;
}

interface PendingWrite {
  resolve: (outcome: WriteOutcome) => void;
  reject: (error: unknown) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** A committed entry whose ledger writes were prepared and published, waiting for them to be durable. */
interface AppliedEntry {
  index: number;
  /** Undefined for the final marker that only advances the applied index. */
  proposal: Proposal | undefined;
  results: CommandResult[];
  /** Positions answered with the recorded result of an earlier write with the same idempotency key. */
  replayed: Set<number>;
}

/** What one `#prepareApply` produced, to be finished once its ops are durable. */
interface AppliedBatch {
  entries: AppliedEntry[];
  /** The membership after the batch's conf changes; undefined when it had none. */
  membership: Membership | undefined;
  /** For each awaited membership change index: whether the entry applied there is that change. */
  confOutcomes: Map<number, boolean>;
}

interface QueuedProposal extends ProposedCommand {
  sizeBytes: number;
  /** For a write a follower forwarded (no pending write here): told whether it was proposed. */
  onProposed?: (error: NodeUnavailableError | undefined) => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Poll interval while waiting for a leader to be known. */
const LEADER_POLL_MS = 25;
/** A learner is promoted to voter once its log is within this many entries of the leader's (checked on ticks). */
export const LEARNER_PROMOTION_LAG_ENTRIES_MAX = 64;
/** Most Raft addresses remembered for senders the member book does not name (yet); the oldest is forgotten first. */
const LEARNED_ROUTES_MAX = 64;
/** Most membership changes waiting to be applied on this leader (the core allows one pending; the rest wait briefly). */
const CONF_WAITERS_MAX = 64;

/** A membership change proposed here, waiting for its entry to be applied. */
interface ConfWaiter {
  term: number;
  resolve: (outcome: "applied" | "lost" | "timeout") => void;
}

export class RaftNode implements LedgerNode, PeerHandler {
  readonly #options: RaftNodeOptions;
  readonly #limits: WriteQueueLimits;
  readonly #raw: RawNode;
  /** The membership as of the applied index. */
  #membership: Membership;
  /** Raft addresses learned from peers' requests while this node belongs to no membership yet (joining). */
  readonly #learnedRoutes = new Map<NodeId, string>();
  #removed = false;
  readonly #snapshots: RaftSnapshots;
  readonly #installAbort = new AbortController();
  readonly #confWaiters = new Map<number, ConfWaiter>();
  readonly #bootId = crypto.getRandomValues(new Uint32Array(2)).join("-");
  #requestCounter = 0;
  /** Last Raft index whose ledger writes are durable here (snapshots, compaction and status go by it). */
  #appliedIndex: number;
  /**
   * Last Raft index whose ledger writes are published (readable) here; its clients are answered. Ahead of
   * `#appliedIndex` while the storage commit holding those writes is in flight: the entries are committed
   * (durable in the Raft log on a quorum, this node included), so a crash replays them from the log.
   */
  #publishedIndex: number;
  readonly #pending = new Map<string, PendingWrite>();
  #proposalQueue: QueuedProposal[] = [];
  #proposalFlush: TurnHandle | undefined;
  /** This node's writes on their way to the leader while it follows (see write-forwarder.ts). */
  readonly #forwarder: WriteForwarder;
  readonly #readWaiters = new Map<string, Array<(index: number | undefined) => void>>();
  #readBatch: Array<(index: number | undefined) => void> | undefined;
  /** Per leader, the read-index request that reads arriving in this event-loop turn will share. */
  readonly #remoteReads = new Map<NodeId, Promise<ReadIndexReply | undefined>>();
  #appliedWaiters: Array<{ index: number; resolve: () => void }> = [];
  #ticker: ReturnType<typeof setInterval> | undefined;
  readonly #loop = new ReadyLoop({
    hasWork: () => this.#options.log.installing !== undefined || this.#raw.hasReady(),
    step: () => this.#step(),
    stopped: () => this.#stopped(),
    onError: (error) => this.#fail(error),
    // No Ready is coming: POSTs waiting for answers get none (later answers go by POST).
    onIdle: () => this.#replySlots.closeAll(),
  });
  /** Peer POSTs waiting for this node's answers (see reply-slots.ts). */
  readonly #replySlots = new ReplySlots(REPLY_WAIT_MS, REPLY_SLOTS_MAX);
  #closed = false;
  #failure: unknown;
  /** Ready loop work, for {@link ReplicationCounters}. */
  readonly #work = { readies: 0, storageCommits: 0, storageSyncs: 0, entriesAppended: 0 };

  private constructor(options: RaftNodeOptions) {
    this.#options = options;
    this.#limits = options.limits ?? DEFAULT_WRITE_QUEUE_LIMITS;
    const { log } = options;
    this.#membership = log.membership;
    this.#removed = log.membership.removed.has(options.nodeId);
    const seed = (options.now() ^ (options.nodeId * 0x9e3779b1)) >>> 0;
    this.#raw = new RawNode(
      {
        id: options.nodeId, electionTicks: options.electionTicks, heartbeatTicks: options.heartbeatTicks, leaseReads: options.leaseReads === true,
        random: seededRandom(seed),
      },
      log,
    );
    // The node's own snapshot stands at its applied index (the founding one, index 1, holds no ledger state).
    // With an install pending the ledger is still below that snapshot: nothing is applied until it is finished.
    this.#appliedIndex = log.installing !== undefined ? log.appliedIndex : Math.max(log.appliedIndex, log.snapshot().metadata.index);
    this.#publishedIndex = this.#appliedIndex;
    this.#snapshots = new RaftSnapshots({
      nodeId: options.nodeId, ledger: options.ledger, storage: options.storage, log, idempotency: options.idempotency,
      transport: options.transport, snapshotEntries: options.snapshotEntries, compactionMarginEntries: options.compactionMarginEntries,
      streamLimits: options.streamLimits, valueBytesMax: options.commandLimits.valueBytesMax, signal: this.#installAbort.signal,
    });
    this.#forwarder = new WriteForwarder({
      transport: options.transport,
      awaitApplied: (requestId) => this.#awaitApplied(requestId),
      rejectPending: (requestId, error) => this.#rejectPending(requestId, error),
    });
    options.transport.setPeers(this.#peerAddresses());
    options.transport.setEventHandlers({
      onSnapshotSent: (to, delivered) => {
        this.#snapshots.noteSent(delivered);
        this.#raw.reportSnapshot(to, delivered ? "finish" : "failure");
        this.#kick();
      },
      onRemoved: () => this.#markRemoved(),
      onReplies: (from, messages) => this.#stepReplies(from, messages),
    });
  }

  /**
   * Open a node over opened storage: unless an install is pending, the
   * snapshot the core sends is made from live state at the applied index
   * first, so a restarted leader with a compacted log can serve one at once.
   */
  static async open(options: RaftNodeOptions): Promise<RaftNode> {
    const node = new RaftNode(options);
    if (options.log.installing === undefined) await node.#snapshots.create(node.#appliedIndex, node.#membership);
    return node;
  }

  /**
   * Start ticking (and finish a snapshot install a restart interrupted, before any Ready). No ticks while an
   * install is pending: a node that cannot apply must not campaign (as leader it would stall the cluster).
   */
  start(): void {
    this.#ticker = setInterval(() => {
      if (this.#stopped() || this.#removed || this.#options.log.installing !== undefined) return;
      this.#raw.tick();
      this.#maybePromote();
      this.#kick();
    }, this.#options.tickMs);
    this.#kick();
  }

  get ledger(): Ledger {
    return this.#options.ledger;
  }

  #stopped(): boolean {
    return this.#closed || this.#failure !== undefined;
  }

  #refusal(): NodeUnavailableError | undefined {
    if (this.#failure !== undefined) return new NodeUnavailableError(`node stopped after a storage failure: ${String(this.#failure)}`, 5);
    if (this.#closed) return new NodeUnavailableError("node is shutting down", 1);
    return undefined;
  }

  /** Refusal of writes and linearizable reads: also when this node is no longer a member. */
  #serviceRefusal(): NodeUnavailableError | undefined {
    const refusal = this.#refusal();
    if (refusal !== undefined || !this.#removed) return refusal;
    return new NodeUnavailableError("this node was removed from the cluster; send requests to a member", 60);
  }

  #markRemoved(): void {
    if (this.#removed) return;
    this.#removed = true;
    console.warn(`raft: node ${this.#options.nodeId} was removed from the cluster; it stops campaigning`);
  }

  // ---- the Ready loop ----

  #kick(): void {
    this.#loop.kick();
  }

  /** One step of the loop: a pending install first (only after a restart, with no Ready outstanding), else one Ready. */
  async #step(): Promise<void> {
    if (this.#options.log.installing !== undefined) {
      await this.#finishInstall();
      return;
    }
    const ready = this.#raw.ready();
    this.#work.readies++;
    this.#work.entriesAppended += ready.entries.length;
    await this.#handleReady(ready);
    if (!this.#stopped()) await this.#snapshots.maybeCompact(this.#appliedIndex, this.#membership);
  }

  /**
   * A Ready carrying the leader's snapshot (no committed entries, by the core's contract): store it with the
   * log reset to it (the install record) and this Ready's entries and hard state; pull the ledger entries it
   * names and finish the install; only then send the messages (so the leader counts this node's progress once it
   * can apply) and advance. Closing midway leaves the install record, which a restart finishes.
   */
  async #handleSnapshotReady(ready: Ready): Promise<void> {
    const log = this.#options.log;
    const snapshot = ready.snapshot!;
    if (ready.committedEntries.length > 0) throw new Error("assertion: a Ready with a snapshot and committed entries");
    await this.#options.storage.commit([...log.installOps(snapshot), ...log.persistOps(ready.entries, ready.hardState)]);
    log.markInstalling(snapshot);
    log.markPersisted(ready.entries, ready.hardState);
    await this.#finishInstall();
    if (this.#stopped()) return;
    this.#send(ready.messages);
    this.#afterSend(ready);
    this.#raw.advance(ready);
  }

  async #finishInstall(): Promise<void> {
    const installed = await this.#snapshots.finishInstall(() => this.#installSources());
    if (installed === undefined) return;
    this.#appliedIndex = installed.index;
    const batch: AppliedBatch = { entries: [], membership: installed.membership, confOutcomes: new Map() };
    this.#answer(batch);
    this.#finishApply(batch);
  }

  /** Raft addresses to pull a snapshot's entries from: the leader first, then the snapshot's other members. */
  #installSources(): string[] {
    const snapshot = this.#options.log.installing!;
    const { membership } = decodeSnapshotState(snapshot.data, snapshot.metadata.confState);
    const lead = this.#raw.lead;
    const sources = new Set<string>();
    const leadAddress = membership.addresses.get(lead)?.raftAddress ?? this.#peerAddresses().get(lead);
    if (leadAddress !== undefined) sources.add(leadAddress);
    for (const [id, { raftAddress }] of [...membership.addresses].sort(([a], [b]) => a - b)) if (id !== this.#options.nodeId) sources.add(raftAddress);
    return [...sources];
  }

  /** Send the current Ready's messages: answers to a waiting peer POST go in its response, the rest by POST. */
  #send(messages: readonly Message[]): void {
    this.#options.transport.send(this.#replySlots.divert(messages, this.#work.readies));
  }

  /** Read states and a lost leadership, once a Ready's messages are sent. */
  #afterSend(ready: Ready): void {
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

  async #handleReady(ready: Ready): Promise<void> {
    if (ready.snapshot !== undefined) return this.#handleSnapshotReady(ready);
    const log = this.#options.log;
    // A leader may send appends while its own write is in flight (Raft thesis 10.2.1): the core counts the
    // leader's match at append time, but nothing it committed is applied before this Ready is durable, since
    // one Ready is outstanding at a time. Not when the term or vote changed: a vote must be durable first.
    const persisted = log.initialState().hardState;
    const sendEarly = this.#raw.role === "leader"
      && (ready.hardState === undefined || (ready.hardState.term === persisted.term && ready.hardState.vote === persisted.vote));
    if (sendEarly) this.#send(ready.messages);
    // Committed entries already durable here were durable on a quorum: apply them in the same storage commit
    // as this Ready's log writes. Any others (a single voter, or an entry this Ready rewrites) apply after it.
    const firstNew = ready.entries[0]?.index ?? Infinity;
    const durableBelow = Math.min(firstNew, log.lastIndex() + 1);
    const early = ready.committedEntries.filter((entry) => entry.index < durableBelow);
    const late = ready.committedEntries.filter((entry) => entry.index >= durableBelow);
    const ops = log.persistOps(ready.entries, ready.hardState);
    const applied = await this.#prepareApply(early, ops);
    // Early entries are in this node's durable log and committed: answer their clients now, not after the
    // commit of their ledger rows (a restart would replay them from the log).
    this.#answer(applied);
    // Only new log entries and a new term or vote must be on disk before this Ready's messages go out; the
    // commit index and everything applied can be rebuilt from the durable log (etcd's MustSync rule).
    const mustSync = ready.entries.length > 0
      || (ready.hardState !== undefined && (ready.hardState.term !== persisted.term || ready.hardState.vote !== persisted.vote));
    if (ops.length > 0) await this.#commit(ops, mustSync);
    log.markPersisted(ready.entries, ready.hardState);
    if (!sendEarly) this.#send(ready.messages);
    this.#finishApply(applied);
    if (late.length > 0) {
      const lateOps: BatchOp[] = [];
      const lateApplied = await this.#prepareApply(late, lateOps);
      this.#answer(lateApplied);
      if (lateOps.length > 0) await this.#commit(lateOps, false);
      this.#finishApply(lateApplied);
    }
    this.#afterSend(ready);
    this.#raw.advance(ready);
  }

  /**
   * One storage commit of the Ready loop; `durable` false lets the adapter skip its fsync (the next durable
   * commit covers it). Safe for applied state: a crash that loses it leaves the applied index behind too, and
   * the restart re-applies those committed entries from the durable log.
   */
  #commit(ops: BatchOp[], durable: boolean): Promise<void> {
    this.#work.storageCommits++;
    if (durable) this.#work.storageSyncs++;
    return this.#options.storage.commit(ops, { durable });
  }

  /**
   * Prepare and publish each committed entry in order, pushing its ledger writes and the applied index onto
   * `ops`. Publishing before `ops` is durable is safe: the entries are committed, so a restart replays them
   * into the same state; `#answer` answers the clients, `#finishApply` records what became durable.
   */
  async #prepareApply(entries: readonly Entry[], ops: BatchOp[]): Promise<AppliedBatch> {
    const applied: AppliedEntry[] = [];
    const confOutcomes = new Map<number, boolean>();
    let membership: Membership | undefined;
    let last = this.#appliedIndex;
    for (const entry of entries) {
      if (entry.index <= last) continue;
      last = entry.index;
      const waiter = this.#confWaiters.get(entry.index);
      if (waiter !== undefined) confOutcomes.set(entry.index, entry.type === "confChange" && entry.term === waiter.term);
      if (entry.type === "confChange") {
        // The core applies the same change to its tracker at advance(); the addresses ride in its context.
        membership = membershipAfter(membership ?? this.#membership, decodeConfChange(entry.data));
        continue;
      }
      // No-ops change no ledger state.
      if (entry.data.length === 0) continue;
      const proposal = decodeProposal(entry.data);
      applied.push({ index: entry.index, proposal, ...await this.#applyProposal(entry.index, proposal, ops) });
    }
    if (last > this.#appliedIndex) ops.push(appliedIndexOp(last));
    if (membership !== undefined) ops.push(membershipOp(membership));
    applied.push({ index: last, proposal: undefined, results: [], replayed: new Set() });
    return { entries: applied, membership, confOutcomes };
  }

  /** Prepare and publish one proposal (idempotency keys honoured, see idempotent-apply.ts). */
  async #applyProposal(raftIndex: number, proposal: Proposal, ops: BatchOp[]): Promise<{ results: CommandResult[]; replayed: Set<number> }> {
    const group = await prepareIdempotent(
      { ledger: this.ledger, records: this.#options.idempotency, commands: proposal.commands, timestampMs: proposal.timestampMs, index: raftIndex },
      ops,
    );
    if (group.prepared !== undefined) this.ledger.publish(group.prepared);
    return group;
  }

  /**
   * Once `#prepareApply` published a batch of committed entries that are durable in this node's Raft log:
   * answer the clients waiting for them and wake readers waiting for the index (they read published state).
   */
  #answer(batch: AppliedBatch): void {
    for (const { index, proposal, results, replayed } of batch.entries) {
      this.#publishedIndex = Math.max(this.#publishedIndex, index);
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
    this.#publishedIndex = Math.max(this.#publishedIndex, this.#appliedIndex);
    if (this.#appliedWaiters.length > 0) {
      const ready = this.#appliedWaiters.filter((waiter) => waiter.index <= this.#publishedIndex);
      this.#appliedWaiters = this.#appliedWaiters.filter((waiter) => waiter.index > this.#publishedIndex);
      for (const waiter of ready) waiter.resolve();
    }
  }

  /** Once the ops of `#prepareApply` are durable: advance the applied index, adopt membership, settle conf changes. */
  #finishApply(batch: AppliedBatch): void {
    this.#options.idempotency.flushed();
    if (batch.membership !== undefined) this.#adoptMembership(batch.membership);
    for (const [index, applied] of batch.confOutcomes) {
      this.#confWaiters.get(index)?.resolve(applied ? "applied" : "lost");
      this.#confWaiters.delete(index);
    }
    for (const { index } of batch.entries) this.#appliedIndex = Math.max(this.#appliedIndex, index);
    for (const [index, waiter] of this.#confWaiters) {
      if (index > this.#appliedIndex) continue;
      // Passed without being seen (an install jumped over it): it is not known to have been applied.
      waiter.resolve("lost");
      this.#confWaiters.delete(index);
    }
  }

  /** The membership as of the applied index changed: peers follow it; a removal of this node takes effect. */
  #adoptMembership(membership: Membership): void {
    this.#membership = membership;
    // The book is authoritative for the members it names.
    for (const id of [...this.#learnedRoutes.keys()]) if (membership.addresses.has(id) || membership.removed.has(id)) this.#learnedRoutes.delete(id);
    this.#options.transport.setPeers(this.#peerAddresses());
    if (membership.removed.has(this.#options.nodeId)) this.#markRemoved();
  }

  /** Raft addresses of every peer: the member book, plus routes learned from senders it does not name yet. */
  #peerAddresses(): Map<NodeId, string> {
    const peers = new Map<NodeId, string>(this.#learnedRoutes);
    for (const [id, { raftAddress }] of this.#membership.addresses) if (id !== this.#options.nodeId) peers.set(id, raftAddress);
    return peers;
  }

  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    clearInterval(this.#ticker);
    const refusal = this.#refusal()!;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(refusal);
    }
    this.#pending.clear();
    this.#options.onFatal?.(error);
  }

  // ---- writes ----

  async write(command: WriteCommand, options: WriteOptions = {}): Promise<WriteOutcome> {
    // Settle storage commits already durable (see Storage.pollCommits): the Ready loop waits on them.
    this.#options.storage.pollCommits?.();
    const deadline = this.#options.now() + this.#options.leaderWaitMs;
    for (;;) {
      const refusal = this.#serviceRefusal();
      if (refusal !== undefined) throw refusal;
      const lead = this.#raw.lead;
      const write: ForwardedWrite = { requestId: `${this.#bootId}-${this.#requestCounter++}`, command };
      if (options.idempotencyKey !== undefined) write.idempotencyKey = options.idempotencyKey;
      if (lead === this.#options.nodeId) return await this.#proposeLocal(write);
      if (lead !== NONE) {
        const outcome = await this.#forwarder.forward(lead, write);
        if (outcome !== undefined) return outcome;
      }
      if (this.#options.now() >= deadline) throw new NodeUnavailableError("no Raft leader is known; retry later", 1);
      await sleep(LEADER_POLL_MS);
    }
  }

  /**
   * A pending write answered (by `#answer`) when the entry carrying `requestId` is applied here, or rejected after
   * requestTimeoutMs (its outcome unknown). Undefined when too many writes are pending.
   */
  #awaitApplied(requestId: string): Promise<WriteOutcome> | undefined {
    if (this.#pending.size >= this.#limits.queueCommandsMax) return undefined;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new NodeUnavailableError(`write not applied within ${this.#options.requestTimeoutMs} ms; its outcome is unknown`, 1));
      }, this.#options.requestTimeoutMs);
      this.#pending.set(requestId, { resolve, reject, timer });
    });
  }

  #proposeLocal(write: ForwardedWrite): Promise<WriteOutcome> {
    const applied = this.#awaitApplied(write.requestId);
    if (applied === undefined) return Promise.reject(new NodeUnavailableError("write queue is full; retry later", 1));
    this.#queueProposal(write, undefined);
    return applied;
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
      while (end < queue.length && end - start < this.#limits.groupCommandsMax && (end === start || bytes + queue[end]!.sizeBytes <= this.#limits.groupBytesMax)) {
        bytes += queue[end++]!.sizeBytes;
      }
      const commands = queue.slice(start, end).map(({ sizeBytes: _, onProposed: __, ...proposed }): ProposedCommand => proposed);
      datas.push(encodeProposal({ timestampMs, commands }));
      start = end;
    }
    try {
      this.#raw.proposeBatch(datas);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      const dropped = new NodeUnavailableError("leadership changed before the write was proposed; retry", 1);
      for (const { requestId, onProposed } of queue) {
        if (onProposed !== undefined) onProposed(dropped);
        else this.#rejectPending(requestId, dropped);
      }
      return;
    }
    for (const { onProposed } of queue) onProposed?.(undefined);
    this.#kick();
  }

  #rejectPending(requestId: string, error: unknown): void {
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    this.#pending.delete(requestId);
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  /** Resolves once `index` is published (readable) here; resolves anyway at `deadlineMs` (the caller decides what that means). */
  #waitApplied(index: number, deadlineMs: number): Promise<boolean> {
    if (index <= this.#publishedIndex) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { index, resolve: () => { clearTimeout(timer); resolve(true); } };
      const timer = setTimeout(() => {
        this.#appliedWaiters = this.#appliedWaiters.filter((other) => other !== waiter);
        resolve(false);
      }, Math.max(0, deadlineMs - this.#options.now()));
      this.#appliedWaiters.push(waiter);
    });
  }

  // ---- reads ----

  async readBarrier(consistency: Consistency): Promise<void> {
    const refusal = this.#refusal();
    if (refusal !== undefined) throw refusal;
    if (consistency === "stale") return;
    const removed = this.#serviceRefusal();
    if (removed !== undefined) throw removed;
    const deadline = this.#options.now() + this.#options.leaderWaitMs;
    const index = await this.#readIndexAnywhere(deadline);
    if (!(await this.#waitApplied(index, deadline))) {
      throw new NodeUnavailableError(`this node has not applied up to the read index ${index} in time; retry`, 1);
    }
  }

  async #readIndexAnywhere(deadline: number): Promise<number> {
    for (;;) {
      const refusal = this.#refusal();
      if (refusal !== undefined) throw refusal;
      const lead = this.#raw.lead;
      const remainingMs = deadline - this.#options.now();
      if (lead === this.#options.nodeId) {
        const index = await this.#localReadIndex(remainingMs);
        if (index !== undefined) return index;
      } else if (lead !== NONE) {
        const reply = await this.#remoteReadIndex(lead, Math.max(1, remainingMs));
        if (reply?.kind === "index") return reply.index;
      }
      if (this.#options.now() >= deadline) throw new NodeUnavailableError("no Raft leader confirmed a read index in time; retry later", 1);
      await sleep(LEADER_POLL_MS);
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
        const context = new TextEncoder().encode(`${this.#bootId}-r${this.#requestCounter++}`);
        try {
          this.#raw.readIndex(context);
        } catch (error) {
          if (!(error instanceof ProposalDroppedError)) throw error;
          for (const waiter of batch) waiter(undefined);
          return;
        }
        this.#readWaiters.set(contextKey(context), batch);
        this.#kick();
      });
    });
  }

  // ---- membership ----

  /** Membership changes for the HTTP API: forwarded to the leader when this node is not it. */
  readonly membership: MembershipAdmin = {
    addMember: (member: NewMember) => this.#changeAnywhere({ kind: "add", id: member.id, clientAddress: member.clientAddress, raftAddress: member.raftAddress }),
    removeMember: (id: number) => this.#changeAnywhere({ kind: "remove", id }),
  };

  async #changeAnywhere(request: MembershipRequest): Promise<MembershipOutcome> {
    const deadline = this.#options.now() + this.#options.leaderWaitMs;
    for (;;) {
      const refusal = this.#serviceRefusal();
      if (refusal !== undefined) throw refusal;
      const lead = this.#raw.lead;
      let reply: MembershipReply | undefined;
      if (lead === this.#options.nodeId) reply = await this.#changeLocal(request);
      else if (lead !== NONE) reply = await this.#forwardChange(lead, request);
      if (reply?.kind === "refused") throw remoteError(reply.code, reply.message);
      if (reply?.kind === "done") {
        const members = reply.members.map((info): MemberStatus => ({
          id: String(info.id), address: info.clientAddress, raftAddress: info.raftAddress, role: info.role, reachable: this.#reachable(info.id),
        }));
        return { changed: reply.changed, members };
      }
      if (this.#options.now() >= deadline) throw new NodeUnavailableError("no Raft leader is known; retry later", 1);
      await sleep(LEADER_POLL_MS);
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

  /**
   * On the leader: check `request` against the applied membership, propose it (the core allows one pending
   * change) and answer once it is applied here. Adding a member that is already there with the same addresses
   * changes nothing (a retried join succeeds).
   */
  async #changeLocal(request: MembershipRequest): Promise<MembershipReply> {
    const lead = this.#raw.lead;
    if (lead !== this.#options.nodeId) return { kind: "notLeader", leaderId: lead };
    const checked = this.#checkChange(request);
    if (checked.kind !== "propose") return checked.reply;
    if (this.#confWaiters.size >= CONF_WAITERS_MAX) return refused(new NodeUnavailableError("too many membership changes waiting; retry later"));
    try {
      this.#raw.proposeConfChange(checked.change);
    } catch (error) {
      if (!(error instanceof ProposalDroppedError)) throw error;
      return dropReply(error);
    }
    const { lastIndex: index, term } = this.#raw.status();
    this.#kick();
    const outcome = await this.#waitConfApplied(index, term);
    if (outcome === "timeout") return refused(new NodeUnavailableError(`the membership change was not applied within ${this.#options.requestTimeoutMs} ms; its outcome is unknown`));
    if (outcome === "lost") return refused(new NodeUnavailableError("leadership changed before the membership change committed; check /cluster/members and retry"));
    return { kind: "done", changed: true, members: this.#memberInfos() };
  }

  #checkChange(request: MembershipRequest): { kind: "propose"; change: ConfChange } | { kind: "answer"; reply: MembershipReply } {
    const answer = (reply: MembershipReply) => ({ kind: "answer" as const, reply });
    const { id } = request;
    const { confState, addresses, removed } = this.#membership;
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

  /** On ticks, as leader: promote the first learner whose log is within LEARNER_PROMOTION_LAG_ENTRIES_MAX of ours. */
  #maybePromote(): void {
    const status = this.#raw.status();
    if (status.role !== "leader" || status.confState.learners.length === 0) return;
    for (const id of status.confState.learners) {
      const progress = status.progress.get(id);
      if (progress === undefined || progress.state !== "replicate" || progress.match + LEARNER_PROMOTION_LAG_ENTRIES_MAX < status.lastIndex) continue;
      try {
        this.#raw.proposeConfChange({ type: "addVoter", nodeId: id });
      } catch (error) {
        // Another change is pending, or leadership is moving: the next tick tries again.
        if (!(error instanceof ProposalDroppedError)) throw error;
      }
      return;
    }
  }

  #memberInfos(): MemberInfo[] {
    const { confState, addresses } = this.#membership;
    const info = (id: NodeId, role: MemberInfo["role"]): MemberInfo => ({
      id, role, clientAddress: addresses.get(id)?.clientAddress ?? "", raftAddress: addresses.get(id)?.raftAddress ?? "",
    });
    return [...confState.voters.map((id) => info(id, "voter")), ...confState.learners.map((id) => info(id, "learner"))];
  }

  // ---- the peer port ----

  /**
   * Step messages from a peer (it has the cluster secret). A removed sender is told so (410). A sender missing
   * from the member book may be one admitted after this node's applied index (this node is joining, or catching
   * up from a snapshot older than the sender's admission): its address is taken from the request so this node
   * can answer. A snapshot's data is checked here, before the core sees it.
   */
  receive(messages: Message[], senderAddress: string | undefined): Promise<Message[]> | undefined {
    this.#options.storage.pollCommits?.();
    if (this.#stopped()) throw new PeerRequestError(503, "node is stopping");
    for (const message of messages) {
      if (message.to !== this.#options.nodeId) throw new PeerRequestError(400, `message for node ${message.to} sent to node ${this.#options.nodeId}`);
      if (this.#membership.removed.has(message.from)) throw new PeerRequestError(410, `node ${message.from} was removed from the cluster`);
      if (message.snapshot !== undefined) {
        try {
          decodeSnapshotState(message.snapshot.data, message.snapshot.metadata.confState);
        } catch (error) {
          if (error instanceof WireFormatError) throw new PeerRequestError(400, error.message);
          throw error;
        }
      }
    }
    const from = messages[0]?.from;
    if (from !== undefined && !this.#membership.addresses.has(from) && senderAddress !== undefined && isMemberAddress(senderAddress)
      && messages.every((message) => message.from === from) && this.#learnedRoutes.get(from) !== senderAddress) {
      this.#learnedRoutes.delete(from);
      this.#learnedRoutes.set(from, senderAddress);
      for (const id of this.#learnedRoutes.keys()) {
        if (this.#learnedRoutes.size <= LEARNED_ROUTES_MAX) break;
        this.#learnedRoutes.delete(id);
      }
      this.#options.transport.setPeers(this.#peerAddresses());
    }
    const readyBefore = this.#work.readies;
    for (const message of messages) this.#raw.step(message);
    const answers = from !== undefined && messages.some((message) => ANSWERED_TYPES.has(message.type)) ? this.#replySlots.open(from, readyBefore) : undefined;
    this.#kick();
    // No Ready started: these messages called for nothing after all (e.g. from an old term).
    if (answers !== undefined && !this.#loop.running) this.#replySlots.closeAll();
    return answers;
  }

  /** Raft messages a peer sent back in a POST's response: checked like received ones, then stepped. */
  #stepReplies(from: NodeId, messages: Message[]): void {
    if (this.#stopped()) return;
    const self = this.#options.nodeId;
    if (this.#membership.removed.has(from) || messages.some((message) => message.to !== self || message.from !== from || message.snapshot !== undefined)) {
      console.warn(`raft: node ${self} dropped ${messages.length} replies from node ${from}: not all from it, for this node, without snapshots`);
      return;
    }
    for (const message of messages) this.#raw.step(message);
    this.#kick();
  }

  changeMembership(request: MembershipRequest): Promise<MembershipReply> {
    if (this.#stopped()) throw new PeerRequestError(503, "node is stopping");
    // The forwarding node checked these already (HTTP validation); anything else is a malformed request.
    if (!isMemberId(request.id)) throw new PeerRequestError(400, `member id ${request.id} is not in [1, 2^31]`);
    if (request.kind === "add" && (!isMemberAddress(request.clientAddress) || !isMemberAddress(request.raftAddress))) {
      throw new PeerRequestError(400, "member addresses must be host:port or an http(s) URL");
    }
    return this.#changeLocal(request);
  }

  streamEntries(request: EntriesRequest): ReadableStream<Uint8Array> {
    if (this.#stopped()) throw new PeerRequestError(503, "node is stopping");
    return this.#snapshots.serve(request);
  }

  forwardWrites(writes: ForwardedWrite[]): Promise<ForwardAck[]> {
    if (this.#stopped()) throw new PeerRequestError(503, "node is stopping");
    return Promise.all(writes.map((write) => this.#proposeForwarded(write)));
  }

  /** Propose a forwarded write under the follower's request id; ack once it is proposed (the outcome travels in the log). */
  #proposeForwarded(write: ForwardedWrite): Promise<ForwardAck> | ForwardAck {
    const lead = this.#raw.lead;
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

  async readIndex(): Promise<ReadIndexReply> {
    const lead = this.#raw.lead;
    if (lead !== this.#options.nodeId) return { kind: "notLeader", leaderId: lead };
    const index = await this.#localReadIndex(this.#options.leaderWaitMs);
    if (index === undefined) throw new PeerRequestError(503, "leadership not confirmed in time");
    return { kind: "index", index };
  }

  // ---- status and lifecycle ----

  subscribe(listener: (entries: readonly LedgerEntry[], treeSize: number) => void): () => void {
    return this.ledger.onPublish(listener);
  }

  status(): NodeStatus {
    const raft = this.#raw.status();
    const peer = this.#options.transport.counters();
    const self = this.#options.nodeId;
    const learner = this.#membership.confState.learners.includes(self);
    const role = this.#removed ? "removed"
      : raft.role === "leader" ? "leader" : raft.role === "follower" ? (learner ? "learner" : "follower") : "candidate";
    return {
      nodeId: String(self),
      role,
      term: raft.term,
      leaderId: raft.lead === NONE ? undefined : String(raft.lead),
      leaderAddress: raft.lead === NONE ? undefined : this.#membership.addresses.get(raft.lead)?.clientAddress,
      commitIndex: raft.commit,
      appliedIndex: this.#appliedIndex,
      treeSize: this.ledger.treeSize,
      members: this.#memberStatuses(),
      snapshot: this.#snapshots.status(),
      replication: { ...this.#work, peerRequests: peer.requests, peerMessages: peer.messages, forwardedWrites: peer.forwardedWrites },
    };
  }

  /** Whether this node heard from `id` within two election timeouts (itself: always). */
  #reachable(id: NodeId): boolean {
    const reachableMs = 2 * this.#options.electionTicks * this.#options.tickMs;
    return id === this.#options.nodeId || this.#options.now() - this.#options.transport.lastSuccessMs(id) <= reachableMs;
  }

  #memberStatuses(): MemberStatus[] {
    const member = (id: NodeId, role: MemberStatus["role"]): MemberStatus => {
      const addresses = this.#membership.addresses.get(id);
      const status: MemberStatus = { id: String(id), address: addresses?.clientAddress ?? "", role, reachable: this.#reachable(id) };
      if (addresses !== undefined) status.raftAddress = addresses.raftAddress;
      return status;
    };
    const { voters, learners } = this.#membership.confState;
    return [...voters.map((id) => member(id, "voter")), ...learners.map((id) => member(id, "learner"))];
  }

  unhealthyReason(): string | undefined {
    if (this.#failure !== undefined) return `storage failure: ${String(this.#failure)}`;
    if (this.#closed) return "shutting down";
    if (this.#removed) return "removed from the cluster";
    return undefined;
  }

  /** Writes proposed here and not yet applied, for metrics. */
  get queueDepth(): number {
    return this.#pending.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#installAbort.abort();
    clearInterval(this.#ticker);
    cancelTurn(this.#proposalFlush);
    const refusal = this.#refusal()!;
    this.#forwarder.close(refusal);
    for (const { requestId, onProposed } of this.#proposalQueue) {
      if (onProposed !== undefined) onProposed(refusal);
      else this.#rejectPending(requestId, refusal);
    }
    this.#proposalQueue = [];
    await this.#loop.idle();
    this.#replySlots.closeAll();
    for (const requestId of [...this.#pending.keys()]) this.#rejectPending(requestId, refusal);
    this.#options.transport.close();
    await this.#options.storage.close();
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

function contextKey(context: Uint8Array): string {
  return new TextDecoder().decode(context);
}
