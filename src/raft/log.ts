/**
 * The Raft log as the core sees it: a stable prefix in RaftStorage followed by
 * unstable entries (and maybe an unstable snapshot) not yet persisted by the
 * application. Tracks `committed` and `applied`. Never performs I/O itself.
 */
import { assert, CompactedError } from './errors.ts';
import { limitSize, type RaftStorage } from './storage.ts';
import type { Entry, Snapshot } from './types.ts';

/** Entries and snapshot the application has not yet persisted. */
class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];
  /** Index of entries[0]; everything below it is in storage (or the snapshot). */
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  lastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot?.metadata.index;
  }

  term(index: number): number | undefined {
    if (index < this.offset) {
      return this.snapshot?.metadata.index === index ? this.snapshot.metadata.term : undefined;
    }
    const last = this.lastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** Persisted through (index, term): drop those entries unless they were replaced meanwhile. */
  stableTo(index: number, term: number): void {
    if (this.term(index) !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot?.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: Entry[]): void {
    const after = entries[0]!.index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(entries);
    } else if (after <= this.offset) {
      // Replaces the whole unstable tail and any stable entries from `after` on.
      this.offset = after;
      this.entries = entries.slice();
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(entries);
    }
  }
}

/** Raft log = storage (stable) + unstable. */
export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: Unstable;
  committed: number;
  applied: number;

  /**
   * A restarted node restores the application from storage's snapshot, so
   * applied starts at the snapshot index (which may lie above the compacted
   * prefix when entries were kept behind the snapshot).
   */
  constructor(storage: RaftStorage) {
    this.storage = storage;
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.applied = Math.max(storage.firstIndex() - 1, storage.snapshot().metadata.index);
    this.committed = this.applied;
  }

  firstIndex(): number {
    const snap = this.unstable.snapshot;
    return snap ? snap.metadata.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  /**
   * The last index this node holds durably: in storage and not replaced by
   * an unstable entry. 0 while a snapshot waits to be persisted (nothing is
   * counted until it is).
   */
  durableLastIndex(): number {
    if (this.unstable.snapshot !== undefined) return 0;
    return Math.min(this.storage.lastIndex(), this.unstable.offset - 1);
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of `index`; 0 beyond the last index; throws CompactedError below the first index - 1. */
  term(index: number): number {
    const dummy = this.firstIndex() - 1;
    if (index < dummy) throw new CompactedError(index, dummy + 1);
    if (index > this.lastIndex()) return 0;
    return this.unstable.term(index) ?? this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    try {
      return this.term(index) === term;
    } catch (error) {
      if (error instanceof CompactedError) return false;
      throw error;
    }
  }

  /** Term, treating a compacted index as 0 (where "unknown" is safe: it never matches a real term). */
  termOrZero(index: number): number {
    try {
      return this.term(index);
    } catch (error) {
      if (error instanceof CompactedError) return 0;
      throw error;
    }
  }

  /** Voting rule of §5.4.1: is (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends at the end (leader). Returns the new last index. */
  append(entries: Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, `append after ${after} would overwrite committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /**
   * Follower append (§5.3): if our entry at prevIndex has prevTerm, drop
   * conflicting entries and append the new ones. Returns the last index known
   * to match the leader, or undefined on a mismatch.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, entries: Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.#findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `conflict at ${conflict} with committed ${this.committed}`);
      this.append(entries.slice(conflict - entries[0]!.index));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** First index whose term differs from ours (or that we lack); 0 if all match. */
  #findConflict(entries: Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`,
   * with that term. Everything above it cannot match a log whose entry at
   * `index` has `term`.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i >= 0; i--) {
      let ourTerm: number;
      try {
        ourTerm = this.term(i);
      } catch (error) {
        if (error instanceof CompactedError) return { index: i, term: 0 };
        throw error;
      }
      if (ourTerm <= term) return { index: i, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  commitTo(commit: number): void {
    if (commit <= this.committed) return;
    assert(commit <= this.lastIndex(), `commit ${commit} beyond last index ${this.lastIndex()}`);
    this.committed = commit;
  }

  /** Leader commit (§5.4.2): only an entry of the current term commits by counting replicas. */
  maybeCommit(index: number, term: number, skipTermCheck: boolean): boolean {
    if (index <= this.committed) return false;
    if (!skipTermCheck && this.termOrZero(index) !== term) return false;
    this.commitTo(index);
    return true;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(index <= this.committed, `applied ${index} beyond committed ${this.committed}`);
    assert(index >= this.applied, `applied ${index} goes back from ${this.applied}`);
    this.applied = index;
  }

  /** Entries in [lo, hi) limited by bytes and count; throws CompactedError. */
  slice(lo: number, hi: number, maxBytes: number, maxCount: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    assert(hi <= this.lastIndex() + 1, `slice hi ${hi} beyond last ${this.lastIndex()}`);
    const end = Math.min(hi, lo + maxCount);
    const offset = this.unstable.offset;
    let result: Entry[] = [];
    if (lo < offset) result = this.storage.entries(lo, Math.min(end, offset), maxBytes);
    if (end > offset && (result.length === 0 || result[result.length - 1]!.index === offset - 1)) {
      const from = Math.max(lo, offset) - offset;
      result = result.concat(this.unstable.entries.slice(from, end - offset));
    }
    return limitSize(result, maxBytes);
  }

  /** Committed entries not yet handed out for applying; none while a snapshot is pending. */
  nextCommittedEntries(maxBytes: number, maxCount: number): Entry[] {
    if (this.unstable.snapshot) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, maxBytes, maxCount);
  }

  hasNextCommittedEntries(): boolean {
    return !this.unstable.snapshot && this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  /** Latest snapshot: the unstable one if any, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Adopts a leader's snapshot as the whole log. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }
}
