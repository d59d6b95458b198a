/**
 * The node interface the HTTP API talks to. A single-node ledger
 * (`LocalNode`) implements it today; a Raft-replicated node implements the
 * same interface, so the API never knows which one it has.
 */
import { type WriteCommand } from "../ledger/commands.ts";
import { type AppliedOperation } from "../ledger/ledger.ts";
import { type LedgerReader } from "../ledger/reader.ts";
import { type Entry } from "../ledger/entry.ts";
import { LedgerError } from "../ledger/errors.ts";

export { LocalNode, type LocalNodeOptions } from "./local-node.ts";

/** Read consistency: `linearizable` waits until the node has every write acknowledged anywhere; `stale` reads local state. */
export type Consistency = "linearizable" | "stale";

/** Result of an applied write command. */
export interface WriteOutcome {
  applied: AppliedOperation[];
  treeSize: number;
  /** True when this is the recorded first result of an earlier write with the same idempotency key. */
  replayed?: boolean;
}

/** Per-write options of {@link LedgerNode.write}. */
export interface WriteOptions {
  /** 1..128 printable ASCII characters, from the `Idempotency-Key` header. */
  idempotencyKey?: string;
}

/** A member of the cluster as reported by status routes. */
export interface MemberStatus {
  id: string;
  /** host:port of its HTTP API. */
  address: string;
  /** host:port (or URL) of its Raft port (cluster nodes). */
  raftAddress?: string;
  role: "voter" | "learner";
  reachable: boolean;
}

/** Snapshots and log compaction of a cluster node, for status and metrics. */
export interface SnapshotStatus {
  /** Raft index of the snapshot this node would send (created here or installed). */
  index: number;
  /** First Raft index still in the log (everything before it was compacted). */
  logFirstIndex: number;
  /** A snapshot from the leader is being installed (its ledger entries pulled). */
  installing: boolean;
  created: number;
  /** Snapshot messages delivered to followers. */
  sent: number;
  installed: number;
  /** Entries streams this node served to others, to the end. */
  streamsServed: number;
  /** Failed attempts to pull a snapshot's entries (each is retried). */
  installFailures: number;
  lastInstallError?: string;
}

/**
 * Replication work counters of a cluster node, for metrics: how many Raft
 * rounds (Readies), durable storage commits and peer requests the writes
 * took. Divided by the writes served they show how well rounds batch.
 */
export interface ReplicationCounters {
  /** Ready states handled (one Raft round each). */
  readies: number;
  /** Storage commits made by the Ready loop. */
  storageCommits: number;
  /** Those of them that had to be durable (fsync): the ones holding new log entries or a new term or vote. */
  storageSyncs: number;
  /** Raft entries appended to this node's log. */
  entriesAppended: number;
  /** Peer requests (POSTs of messages and forwarded writes) sent. */
  peerRequests: number;
  /** Raft messages sent to peers. */
  peerMessages: number;
  /** Client writes this node forwarded to the leader. */
  forwardedWrites: number;
}

/** What `/cluster/status` reports. */
export interface NodeStatus {
  nodeId: string;
  /** "removed": this node was removed from its cluster and takes no part in it any more. */
  role: "leader" | "follower" | "candidate" | "learner" | "removed";
  term: number;
  leaderId: string | undefined;
  leaderAddress: string | undefined;
  commitIndex: number;
  appliedIndex: number;
  treeSize: number;
  members: MemberStatus[];
  /** Cluster nodes only. */
  snapshot?: SnapshotStatus;
  /** Cluster nodes only. */
  replication?: ReplicationCounters;
}

/** A member to add: its id and where it is reached. */
export interface NewMember {
  id: number;
  clientAddress: string;
  raftAddress: string;
}

/** Outcome of a membership change: whether it changed anything (false: already so), and the members after it. */
export interface MembershipOutcome {
  changed: boolean;
  members: MemberStatus[];
}

/** Membership changes, on nodes that belong to a Raft cluster. */
export interface MembershipAdmin {
  /** Add a learner (promoted to voter by the leader once caught up); resolves once the change is applied on the leader. */
  addMember(member: NewMember): Promise<MembershipOutcome>;
  /** Remove a voter or learner (the leader itself included); resolves once applied on the leader. */
  removeMember(id: number): Promise<MembershipOutcome>;
}

/** The seam between the HTTP API and whatever runs the ledger. */
export interface LedgerNode {
  /** Read access to published ledger state. Call `readBarrier` first for the consistency wanted. */
  readonly ledger: LedgerReader;
  /**
   * Append one command; resolves when it is durable and visible, rejects with a `LedgerError` or `NodeError`.
   * With `idempotencyKey` (cluster nodes), a command whose key was already applied is not applied again:
   * the first result comes back, marked `replayed`.
   */
  write(command: WriteCommand, options?: WriteOptions): Promise<WriteOutcome>;
  /** Resolves when local state is fresh enough for `consistency`. */
  readBarrier(consistency: Consistency): Promise<void>;
  /** Subscribe to newly published entries; returns an unsubscribe function. */
  subscribe(listener: (entries: readonly Entry[], treeSize: number) => void): () => void;
  status(): NodeStatus;
  /** Undefined when healthy; otherwise why the node cannot serve. */
  unhealthyReason(): string | undefined;
  /** Present on nodes that can change cluster membership. */
  readonly membership?: MembershipAdmin;
  /** Stop accepting writes, finish queued ones, close storage. */
  close(): Promise<void>;
}

/** The node cannot take the request now (closed, failed, overloaded, no leader). Maps to 503. */
export class NodeUnavailableError extends LedgerError {
  constructor(
    message: string,
    /** Seconds after which a retry may succeed. */
    readonly retryAfterSeconds = 1,
  ) {
    super("unavailable", message);
  }
}

/** A membership change conflicts with the current membership (another change pending, an id in use or removed, the last voter). Maps to 409. */
export class MembershipConflictError extends LedgerError {
  constructor(message: string) {
    super("membership_conflict", message);
  }
}

/** Another membership change is still pending (the core allows one at a time): retry once it is applied. Maps to 409. */
export class MembershipChangePendingError extends LedgerError {
  constructor() {
    super("change_pending", "another membership change is in progress (one at a time); retry once it is applied");
  }
}

/** The member named by a membership change does not exist. Maps to 404. */
export class MemberNotFoundError extends LedgerError {
  constructor(id: number) {
    super("member_not_found", `node ${id} is not a member of the cluster`);
  }
}
