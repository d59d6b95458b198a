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
  address: string;
  role: "voter" | "learner";
  reachable: boolean;
}

/** What `/cluster/status` reports. */
export interface NodeStatus {
  nodeId: string;
  role: "leader" | "follower" | "candidate" | "learner";
  term: number;
  leaderId: string | undefined;
  leaderAddress: string | undefined;
  commitIndex: number;
  appliedIndex: number;
  treeSize: number;
  members: MemberStatus[];
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
