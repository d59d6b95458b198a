/**
 * Configuration of one Raft node: named limits (units last), validated at
 * construction so a bad value fails loudly before any state exists.
 */
import type { NodeId } from './types.ts';
import { LEASE_ELECTION_TICKS_MIN } from './lease.ts';

/** Options of a Raft node. Every limit has a unit-bearing name and a checked range. */
export interface RaftConfig {
  /** This node's id, a positive safe integer. */
  id: NodeId;
  /** Ticks without a leader before campaigning; the actual timeout is randomized in [electionTicks, 2*electionTicks). */
  electionTicks: number;
  /** Ticks between leader heartbeats; must be < electionTicks. */
  heartbeatTicks: number;
  /** Seeded source of uniform numbers in [0, 1): the only randomness the core uses. */
  random: () => number;
  /** Most entries in one append message (>= 1). */
  maxEntriesPerMessage: number;
  /** Soft limit of entry data bytes in one append message (one entry is always allowed). */
  maxBytesPerMessage: number;
  /** Most append messages in flight per follower in replicate state (>= 1). */
  maxInflightMessages: number;
  /** Most committed-entry bytes in one Ready (one entry is always allowed). */
  maxCommittedBytesPerReady: number;
  /** Most bytes of proposed-but-uncommitted entry data a leader accepts before dropping proposals (one batch is always accepted when none are uncommitted). */
  maxUncommittedBytes: number;
  /** Most ReadIndex requests a leader holds at once; more are dropped (>= 1). */
  maxPendingReads: number;
  /** Pre-vote (§9.6): a candidate first checks it could win before bumping its term. */
  preVote: boolean;
  /** Check-quorum: a leader steps down when it has not heard from a quorum for an election timeout. */
  checkQuorum: boolean;
  /**
   * Lease-based reads (§6.4.1, lease.ts): a leader whose lease holds answers
   * ReadIndex at once, without a heartbeat round. Needs checkQuorum, an
   * election timeout of at least 3 ticks, the same setting on every node, and
   * tick rates that agree within the lease margin.
   */
  leaseReads: boolean;
  /** Deliberate bugs, for tests proving the simulation detects them. Never set in production. */
  testingKnobs?: TestingKnobs;
}

/** Switches that break safety on purpose; only tests may set them. */
export interface TestingKnobs {
  /** Disable the current-term commit rule of the paper's figure 8. */
  commitPreviousTermEntries?: boolean;
  /** Grant votes without the §5.4.1 up-to-date log check. */
  skipUpToDateCheck?: boolean;
  /** Make read leases this many ticks longer than safe. */
  leaseExtraTicks?: number;
  /** With leaseReads, let a freshly started node vote at once (it may have acknowledged a lease it forgot). */
  skipLeaseStartupHold?: boolean;
}

/** Defaults for every limit; `id` and `random` must be supplied. */
export const RAFT_CONFIG_DEFAULTS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxEntriesPerMessage: 64,
  maxBytesPerMessage: 1024 * 1024,
  maxInflightMessages: 256,
  maxCommittedBytesPerReady: 16 * 1024 * 1024,
  maxPendingReads: 4096,
  maxUncommittedBytes: 64 * 1024 * 1024,
  preVote: true,
  checkQuorum: true,
  leaseReads: false,
} as const;

/** Upper bounds that keep a typo (ticks in ms, say) from producing a silent stall. */
const ELECTION_TICKS_MAX = 10_000;
const INFLIGHT_MESSAGES_MAX = 65_536;

function requireInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`raft config: ${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

/** Fills defaults and validates; throws a RangeError/TypeError that names the bad field. */
export function resolveRaftConfig(input: Partial<RaftConfig> & Pick<RaftConfig, 'id' | 'random'>): RaftConfig {
  const config: RaftConfig = { ...RAFT_CONFIG_DEFAULTS, ...input };
  requireInteger('id', config.id, 1);
  requireInteger('electionTicks', config.electionTicks, 2, ELECTION_TICKS_MAX);
  requireInteger('heartbeatTicks', config.heartbeatTicks, 1, config.electionTicks - 1);
  requireInteger('maxEntriesPerMessage', config.maxEntriesPerMessage, 1);
  requireInteger('maxBytesPerMessage', config.maxBytesPerMessage, 1);
  requireInteger('maxInflightMessages', config.maxInflightMessages, 1, INFLIGHT_MESSAGES_MAX);
  requireInteger('maxCommittedBytesPerReady', config.maxCommittedBytesPerReady, 1);
  requireInteger('maxPendingReads', config.maxPendingReads, 1);
  requireInteger('maxUncommittedBytes', config.maxUncommittedBytes, 1);
  if (typeof config.random !== 'function') throw new TypeError('raft config: random must be a function returning [0, 1)');
  if (typeof config.preVote !== 'boolean') throw new TypeError('raft config: preVote must be a boolean');
  if (typeof config.checkQuorum !== 'boolean') throw new TypeError('raft config: checkQuorum must be a boolean');
  if (typeof config.leaseReads !== 'boolean') throw new TypeError('raft config: leaseReads must be a boolean');
  if (config.leaseReads && !config.checkQuorum) throw new RangeError('raft config: leaseReads needs checkQuorum (followers must refuse votes while a leader is live)');
  if (config.leaseReads) requireInteger('electionTicks (with leaseReads)', config.electionTicks, LEASE_ELECTION_TICKS_MIN, ELECTION_TICKS_MAX);
  return config;
}

/**
 * A small seeded PRNG (mulberry32) for `RaftConfig.random` and simulations:
 * the same seed always yields the same sequence.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
