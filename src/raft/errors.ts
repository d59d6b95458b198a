/**
 * Errors of the Raft core. Operating errors (compaction, dropped proposals)
 * are typed so callers can handle them; broken invariants are assertions that
 * must crash the process, never be caught and ignored.
 */

/** Storage: the requested index is at or below the last snapshot (its entry is gone). */
export class CompactedError extends Error {
  override readonly name = 'CompactedError';
  constructor(readonly index: number, readonly firstIndex: number) {
    super(`raft: index ${index} is compacted (first available index is ${firstIndex})`);
  }
}

/** Storage: the requested index is beyond the last entry. */
export class UnavailableError extends Error {
  override readonly name = 'UnavailableError';
  constructor(readonly index: number, readonly lastIndex: number) {
    super(`raft: index ${index} is unavailable (last index is ${lastIndex})`);
  }
}

/** Why a proposal was not appended. The caller may retry elsewhere or later. */
export type DropReason = 'notLeader' | 'transferring' | 'confChangePending' | 'removed' | 'invalidConfChange' | 'tooManyReads' | 'tooManyUncommitted';

/** A proposal, read or transfer request was refused; `leader` is a hint (0 if unknown). */
export class ProposalDroppedError extends Error {
  override readonly name = 'ProposalDroppedError';
  constructor(readonly reason: DropReason, readonly leader: number) {
    super(`raft: proposal dropped (${reason}, leader hint ${leader})`);
  }
}

/** A broken invariant: a bug in the core or in how the application drives it. */
export class RaftAssertionError extends Error {
  override readonly name = 'RaftAssertionError';
}

/** Throws a {@link RaftAssertionError} when `condition` is false. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftAssertionError(`raft assertion failed: ${message}`);
}
