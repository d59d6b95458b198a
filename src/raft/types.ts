/**
 * Plain data shapes of the Raft core. Everything here is a plain object of
 * numbers, strings, booleans and Uint8Arrays so a transport can CBOR-encode it
 * and a storage adapter can persist it without knowing any class.
 *
 * Node ids are positive integers; `NONE` (0) means "no node" (no vote, no leader).
 */

/** A node's id: a positive safe integer. */
export type NodeId = number;

/** The absent node id: no vote cast, no leader known. */
export const NONE: NodeId = 0;

/** `normal` carries application bytes (empty = leader no-op); `confChange` carries an encoded {@link ConfChange}. */
export type EntryType = 'normal' | 'confChange';

/** One log entry. `index` and `term` are >= 1 for real entries. */
export interface Entry {
  index: number;
  term: number;
  type: EntryType;
  data: Uint8Array;
}

/** State that must be durable before any message of the same Ready is sent. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** Membership: voters count in quorums, learners only receive the log. Disjoint sets. */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/**
 * A single-node membership change; one may be pending (proposed, unapplied) at a time.
 * `context` is opaque to the core and replicated with the change (at most 4096 bytes).
 */
export interface ConfChange {
  type: 'addLearner' | 'addVoter' | 'removeNode';
  nodeId: NodeId;
  context?: Uint8Array;
}

/** Describes the log prefix a snapshot replaces. */
export interface SnapshotMetadata {
  index: number;
  term: number;
  confState: ConfState;
}

/** Application state up to `metadata.index`; `data` is opaque to the core. */
export interface Snapshot {
  metadata: SnapshotMetadata;
  data: Uint8Array;
}

/** Role of a node. */
export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state, reported in a Ready only when it changes. */
export interface SoftState {
  lead: NodeId;
  role: Role;
}

/** A linearizable read may be served once the applied index reaches `index`. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/**
 * Wire message types.
 * - `app`/`appResp`: log replication (`index`/`logTerm` = entry preceding `entries`).
 *   A rejecting `appResp` carries `rejectHint` (follower's hint index) and `logTerm`
 *   (the follower's term at that index) for fast backtracking.
 * - `vote`/`preVote` carry the candidate's last `index`/`logTerm`; a `context`
 *   equal to {@link CAMPAIGN_TRANSFER} marks a leader-transfer election.
 * - `heartbeat`/`heartbeatResp` carry `commit` and an optional ReadIndex `context`.
 * - `snap` carries `snapshot`. `timeoutNow` asks the target to campaign now.
 */
export type MessageType =
  | 'app'
  | 'appResp'
  | 'vote'
  | 'voteResp'
  | 'preVote'
  | 'preVoteResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snap'
  | 'timeoutNow';

/** A message between nodes. Unused fields are 0 / empty. */
export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot?: Snapshot;
  context?: Uint8Array;
}

/** Context bytes of a vote request that follows a leader transfer ("force": ignore leases). */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode('CampaignTransfer');

/**
 * Output of the core, handed to the application by `RawNode.ready()`.
 * Contract, in order: persist `snapshot`, `entries` and `hardState`; then send
 * `messages`; then apply `committedEntries`; then call `advance(ready)`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
}

/** Progress replication state of a follower as seen by the leader. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';
