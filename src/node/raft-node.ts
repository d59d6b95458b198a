/**
 * A Raft-replicated ledger node: drives the pure Raft core (`RawNode`) at the
 * edge with a tick timer, the peer transport and the storage port, and applies
 * committed entries to the ledger state machine.
 *
 * Per Ready (one outstanding at a time, as the core requires): a leader whose
 * term and vote are unchanged sends its appends first (thesis 10.2.1), and
 * while that Ready is persisted, the appends and heartbeats that new proposals
 * and acks produce go out at once (`#kick`), not after it;
 * committed entries already durable here are prepared and published; ONE
 * durable storage commit then holds the new log entries, the hard state, those
 * entries' ledger writes and the applied index; then the other messages are
 * sent (persist before send), waiting clients answered, read states served,
 * and the core advanced (applying committed entries is applier.ts). A failed
 * storage commit fail-stops the node, as in LocalNode.
 *
 * Writes: the leader groups the commands that arrive in one event-loop turn
 * into one entry stamped with its clock (proposals.ts, which also holds the
 * writes waiting here to be applied); a follower forwards its commands to
 * the leader (write-forwarder.ts), which acks them once proposed and puts the
 * follower's request ids in the entry, so the follower answers each client
 * when it applies that entry itself, with the result it computed. Reads:
 * ReadIndex, asked of the leader when this node is a follower (read-index.ts).
 *
 * Membership: conf changes carry the added member's addresses; applying one
 * updates the replicated member book (stored with the applied index) and the
 * transport's peer set. The leader promotes a learner to voter once it has
 * caught up (membership-changes.ts, which also proposes and forwards changes).
 * A node that learns it was removed stops campaigning and says so. Peer
 * addresses are the member book's plus routes learned from senders it does
 * not name yet (peer-routes.ts).
 * Snapshots and compaction are in raft-snapshots.ts; a snapshot from the
 * leader is installed inside its Ready, before that Ready's messages are
 * sent, so the leader sees the node's progress only once it can apply.
 */
import { type BatchOp, type Storage } from "../storage/index.ts";
import { type LedgerLimits, type WriteCommand } from "../ledger/commands.ts";
import { type Ledger } from "../ledger/ledger.ts";
import { type Entry as LedgerEntry } from "../ledger/entry.ts";
import { NONE, RawNode, seededRandom, type Message, type NodeId, type Ready } from "../raft/index.ts";
import {
  PeerRequestError, REPLY_SLOTS_MAX, REPLY_WAIT_MS, WireFormatError, type EntriesRequest, type ForwardAck, type ForwardedWrite, type HttpTransport,
  type MembershipReply, type MembershipRequest, type PeerHandler, type ReadIndexReply,
} from "../transport/index.ts";
import { DEFAULT_WRITE_QUEUE_LIMITS, type WriteQueueLimits } from "./local-node.ts";
import { type RaftLogStorage } from "./raft-log-storage.ts";
import {
  NodeUnavailableError, type Consistency, type LedgerNode, type MemberStatus, type MembershipAdmin, type NewMember, type NodeStatus, type WriteOptions,
  type WriteOutcome,
} from "./index.ts";
import { isMemberAddress, isMemberId, type Membership } from "./members.ts";
import { RaftSnapshots } from "./raft-snapshots.ts";
import { decodeSnapshotState } from "./snapshot-state.ts";
import { type EntriesStreamLimits } from "./entries-stream.ts";
import { type IdempotencyRecords } from "./raft-idempotency.ts";
import { ReadyLoop } from "./ready-loop.ts";
import { Applier } from "./applier.ts";
import { PeerRoutes } from "./peer-routes.ts";
import { ANSWERED_TYPES, ReplySlots } from "./reply-slots.ts";
import { WriteForwarder } from "./write-forwarder.ts";
import { Proposals } from "./proposals.ts";
import { ReadIndex } from "./read-index.ts";
import { MembershipChanges } from "./membership-changes.ts";

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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Poll interval while waiting for a leader to be known. */
const LEADER_POLL_MS = 25;

export class RaftNode implements LedgerNode, PeerHandler {
  readonly #options: RaftNodeOptions;
  readonly #raw: RawNode;
  /** The membership as of the applied index. */
  #membership: Membership;
  /** Raft addresses of the peers, learned ones included (see peer-routes.ts). */
  readonly #routes: PeerRoutes;
  #removed = false;
  readonly #snapshots: RaftSnapshots;
  readonly #installAbort = new AbortController();
  /** Membership changes asked of this node, and learner promotion (see membership-changes.ts). */
  readonly #changes: MembershipChanges;
  readonly #bootId = crypto.getRandomValues(new Uint32Array(2)).join("-");
  #requestCounter = 0;
  /** Committed entries to ledger state (see applier.ts). */
  readonly #applier: Applier;
  /** Writes pending here, and the leader's proposals (see proposals.ts). */
  readonly #proposals: Proposals;
  /** This node's writes on their way to the leader while it follows (see write-forwarder.ts). */
  readonly #forwarder: WriteForwarder;
  /** Linearizable reads (see read-index.ts). */
  readonly #reads: ReadIndex;
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
    const { log } = options;
    this.#membership = log.membership;
    this.#routes = new PeerRoutes(options.nodeId);
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
    const appliedIndex = log.installing !== undefined ? log.appliedIndex : Math.max(log.appliedIndex, log.snapshot().metadata.index);
    this.#snapshots = new RaftSnapshots({
      nodeId: options.nodeId, ledger: options.ledger, storage: options.storage, log, idempotency: options.idempotency,
      transport: options.transport, snapshotEntries: options.snapshotEntries, compactionMarginEntries: options.compactionMarginEntries,
      streamLimits: options.streamLimits, valueBytesMax: options.commandLimits.valueBytesMax, signal: this.#installAbort.signal,
    });
    this.#proposals = new Proposals({
      nodeId: options.nodeId, raw: this.#raw, now: options.now, requestTimeoutMs: options.requestTimeoutMs,
      commandLimits: options.commandLimits, limits: options.limits ?? DEFAULT_WRITE_QUEUE_LIMITS,
      kick: () => this.#kick(),
    });
    this.#forwarder = new WriteForwarder({
      transport: options.transport,
      awaitApplied: (requestId) => this.#proposals.awaitApplied(requestId),
      rejectPending: (requestId, error) => this.#proposals.rejectPending(requestId, error),
    });
    this.#reads = new ReadIndex({
      nodeId: options.nodeId, raw: this.#raw, transport: options.transport, now: options.now, leaderWaitMs: options.leaderWaitMs,
      refusal: () => this.#refusal(),
      serviceRefusal: () => this.#serviceRefusal(),
      waitApplied: (index, deadlineMs) => this.#applier.waitPublished(index, deadlineMs - options.now()),
      leaderPoll: () => sleep(LEADER_POLL_MS),
      newContext: () => `${this.#bootId}-r${this.#requestCounter++}`,
      kick: () => this.#kick(),
    });
    this.#changes = new MembershipChanges({
      nodeId: options.nodeId, raw: this.#raw, transport: options.transport, membership: () => this.#membership, now: options.now,
      leaderWaitMs: options.leaderWaitMs, requestTimeoutMs: options.requestTimeoutMs,
      serviceRefusal: () => this.#serviceRefusal(),
      reachable: (id) => this.#reachable(id),
      leaderPoll: () => sleep(LEADER_POLL_MS),
      kick: () => this.#kick(),
    });
    this.#applier = new Applier({
      ledger: options.ledger, idempotency: options.idempotency, appliedIndex, membership: () => this.#membership,
      settleProposal: (proposal, results, replayed) => this.#proposals.settle(proposal, results, replayed),
      awaitedOutcome: (entry) => this.#changes.awaitedOutcome(entry),
      settleChanges: (outcomes, index) => this.#changes.settle(outcomes, index),
      adoptMembership: (membership) => this.#adoptMembership(membership),
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
    if (options.log.installing === undefined) await node.#snapshots.create(node.#applier.appliedIndex, node.#membership);
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
      this.#changes.maybePromote();
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
    // A leader's appends and heartbeats go out now rather than after the Ready being persisted: a proposal or
    // an ack that arrives during that fsync no longer waits for it to reach the followers.
    if (this.#loop.running && this.#leadsDurably(this.#raw.term, this.#options.nodeId)) {
      const messages = this.#raw.takeLeaderMessages();
      if (messages.length > 0) this.#options.transport.send(messages);
    }
  }

  /**
   * Whether this node leads with `term` and `vote` already on disk: then its messages need nothing from a
   * Ready in flight (Raft thesis 10.2.1). A changed term or vote must be durable before anything is sent.
   */
  #leadsDurably(term: number, vote: NodeId): boolean {
    if (this.#raw.role !== "leader") return false;
    const persisted = this.#options.log.persistedHardState();
    return term === persisted.term && vote === persisted.vote;
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
    if (!this.#stopped()) await this.#snapshots.maybeCompact(this.#applier.appliedIndex, this.#membership);
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
    this.#reads.afterSend(ready);
    this.#raw.advance(ready);
  }

  async #finishInstall(): Promise<void> {
    const installed = await this.#snapshots.finishInstall(() => this.#installSources());
    if (installed !== undefined) this.#applier.installed(installed.index, installed.membership);
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

  async #handleReady(ready: Ready): Promise<void> {
    if (ready.snapshot !== undefined) return this.#handleSnapshotReady(ready);
    const log = this.#options.log;
    // A leader may send appends while its own write is in flight (Raft thesis 10.2.1): the core counts the
    // leader's own log toward a commit only once advance() says it is durable, so every commit index it
    // announces rests on durable copies. Not when the term or vote changed: a vote must be durable first.
    const persisted = log.persistedHardState();
    const sendEarly = this.#leadsDurably(ready.hardState?.term ?? persisted.term, ready.hardState?.vote ?? persisted.vote);
    if (sendEarly) this.#send(ready.messages);
    // Committed entries already durable here were durable on a quorum: apply them in the same storage commit
    // as this Ready's log writes. Any others (a single voter, or an entry this Ready rewrites) apply after it.
    const firstNew = ready.entries[0]?.index ?? Infinity;
    const durableBelow = Math.min(firstNew, log.lastIndex() + 1);
    const early = ready.committedEntries.filter((entry) => entry.index < durableBelow);
    const late = ready.committedEntries.filter((entry) => entry.index >= durableBelow);
    const ops = log.persistOps(ready.entries, ready.hardState);
    const applied = await this.#applier.prepare(early, ops);
    // Early entries are in this node's durable log and committed: answer their clients now, not after the
    // commit of their ledger rows (a restart would replay them from the log).
    this.#applier.answer(applied);
    // Only new log entries and a new term or vote must be on disk before this Ready's messages go out; the
    // commit index and everything applied can be rebuilt from the durable log (etcd's MustSync rule).
    const mustSync = ready.entries.length > 0
      || (ready.hardState !== undefined && (ready.hardState.term !== persisted.term || ready.hardState.vote !== persisted.vote));
    if (ops.length > 0) await this.#commit(ops, mustSync);
    log.markPersisted(ready.entries, ready.hardState);
    if (!sendEarly) this.#send(ready.messages);
    this.#applier.finish(applied);
    if (late.length > 0) {
      const lateOps: BatchOp[] = [];
      const lateApplied = await this.#applier.prepare(late, lateOps);
      this.#applier.answer(lateApplied);
      if (lateOps.length > 0) await this.#commit(lateOps, false);
      this.#applier.finish(lateApplied);
    }
    this.#reads.afterSend(ready);
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

  /** The membership as of the applied index changed: peers follow it; a removal of this node takes effect. */
  #adoptMembership(membership: Membership): void {
    this.#membership = membership;
    this.#routes.adopt(membership);
    this.#options.transport.setPeers(this.#peerAddresses());
    if (membership.removed.has(this.#options.nodeId)) this.#markRemoved();
  }

  /** Raft addresses of every peer: the member book, plus routes learned from senders it does not name yet. */
  #peerAddresses(): Map<NodeId, string> {
    return this.#routes.addresses(this.#membership);
  }

  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    clearInterval(this.#ticker);
    const refusal = this.#refusal()!;
    this.#proposals.rejectAll(refusal);
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
      if (lead === this.#options.nodeId) return await this.#proposals.proposeLocal(write);
      if (lead !== NONE) {
        const outcome = await this.#forwarder.forward(lead, write);
        if (outcome !== undefined) return outcome;
      }
      if (this.#options.now() >= deadline) throw new NodeUnavailableError("no Raft leader is known; retry later", 1);
      await sleep(LEADER_POLL_MS);
    }
  }

  // ---- reads ----

  readBarrier(consistency: Consistency): Promise<void> {
    return this.#reads.barrier(consistency);
  }

  // ---- membership ----

  /** Membership changes for the HTTP API: forwarded to the leader when this node is not it. */
  readonly membership: MembershipAdmin = {
    addMember: (member: NewMember) => this.#changes.change({ kind: "add", id: member.id, clientAddress: member.clientAddress, raftAddress: member.raftAddress }),
    removeMember: (id: number) => this.#changes.change({ kind: "remove", id }),
  };

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
    if (from !== undefined && senderAddress !== undefined && messages.every((message) => message.from === from)
      && this.#routes.learn(this.#membership, from, senderAddress)) {
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
    return this.#changes.changeLocal(request);
  }

  streamEntries(request: EntriesRequest): ReadableStream<Uint8Array> {
    if (this.#stopped()) throw new PeerRequestError(503, "node is stopping");
    return this.#snapshots.serve(request);
  }

  forwardWrites(writes: ForwardedWrite[]): Promise<ForwardAck[]> {
    if (this.#stopped()) throw new PeerRequestError(503, "node is stopping");
    return this.#proposals.proposeForwarded(writes);
  }

  readIndex(): Promise<ReadIndexReply> {
    return this.#reads.serve();
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
      appliedIndex: this.#applier.appliedIndex,
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
    return this.#proposals.pendingCount;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#installAbort.abort();
    clearInterval(this.#ticker);
    const refusal = this.#refusal()!;
    this.#forwarder.close(refusal);
    this.#proposals.close(refusal);
    await this.#loop.idle();
    this.#replySlots.closeAll();
    this.#proposals.rejectAll(refusal);
    this.#options.transport.close();
    await this.#options.storage.close();
  }
}
