/**
 * Public API of the Raft consensus core: a pure state machine (no I/O, no
 * clock, no promises; randomness only from an injected seeded PRNG).
 */
export { RawNode, type RaftStatus, type RawNodeConfig } from './raw-node.ts';
export { MemoryRaftStorage, type RaftStorage } from './storage.ts';
export { resolveRaftConfig, seededRandom, RAFT_CONFIG_DEFAULTS, type RaftConfig, type TestingKnobs } from './config.ts';
export { CONF_CHANGE_CONTEXT_BYTES_MAX, confStateAfter, decodeConfChange, encodeConfChange } from './conf-change.ts';
export {
  CompactedError, UnavailableError, ProposalDroppedError, RaftAssertionError, type DropReason,
} from './errors.ts';
export {
  NONE, CAMPAIGN_TRANSFER,
  type NodeId, type Entry, type EntryType, type HardState, type ConfState, type ConfChange, type Snapshot,
  type SnapshotMetadata, type Role, type SoftState, type ReadState, type Message, type MessageType, type Ready,
  type ProgressState,
} from './types.ts';
