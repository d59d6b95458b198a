/**
 * The storage the core reads its stable log from, and the in-memory reference
 * implementation. The core only reads; the application writes what each Ready
 * asks it to persist (entries, hard state, snapshot) before calling advance().
 *
 * Ownership: returned arrays and entries belong to the caller for reading only;
 * neither side mutates an entry after it was handed over.
 */
import { assert, CompactedError, UnavailableError } from './errors.ts';
import type { ConfState, Entry, HardState, Snapshot } from './types.ts';

/** Read side of durable Raft state, as the core needs it. */
export interface RaftStorage {
  /** Durable hard state and the membership of the latest snapshot. */
  initialState(): { hardState: HardState; confState: ConfState };
  /**
   * Entries in [lo, hi), at most `maxBytes` of data (always at least one entry).
   * Throws {@link CompactedError} when lo <= snapshot index; hi must be <= lastIndex()+1.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry `index`; the snapshot index itself is answerable. Throws CompactedError / UnavailableError. */
  term(index: number): number;
  /** Index of the first entry still present (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry (the snapshot index when the log is empty). */
  lastIndex(): number;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

/** Sum of entry data sizes, the unit of `maxBytesPerMessage`. */
export function entriesSizeBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entry.data.byteLength;
  return total;
}

/** Keeps entries from the front while the byte budget allows; always keeps the first. */
export function limitSize(entries: Entry[], maxBytes: number): Entry[] {
  let total = 0;
  for (let i = 0; i < entries.length; i++) {
    total += entries[i]!.data.byteLength;
    if (i > 0 && total > maxBytes) return entries.slice(0, i);
  }
  return entries;
}

const EMPTY = new Uint8Array(0);

function emptySnapshot(): Snapshot {
  return { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: EMPTY };
}

/**
 * Reference in-memory storage. `#entries[0]` is a dummy holding the snapshot's
 * index and term so term(snapshotIndex) answers without special cases.
 */
export class MemoryRaftStorage implements RaftStorage {
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: Snapshot = emptySnapshot();
  #entries: Entry[] = [{ index: 0, term: 0, type: 'normal', data: EMPTY }];

  /**
   * Storage for a founding member of a new cluster: a snapshot at index 1,
   * term 1 holding the initial membership, so that nodes added later always
   * receive that snapshot first and learn the founding configuration.
   */
  static bootstrap(voters: number[]): MemoryRaftStorage {
    assert(voters.length > 0, 'bootstrap needs at least one voter');
    const storage = new MemoryRaftStorage();
    const metadata = { index: 1, term: 1, confState: { voters: [...voters], learners: [] } };
    storage.applySnapshot({ metadata, data: EMPTY });
    storage.setHardState({ term: 1, vote: 0, commit: 1 });
    return storage;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    const { voters, learners } = this.#snapshot.metadata.confState;
    return { hardState: { ...this.#hardState }, confState: { voters: [...voters], learners: [...learners] } };
  }

  /** Persisted hard state (a copy). */
  hardState(): HardState {
    return { ...this.#hardState };
  }

  setHardState(hardState: HardState): void {
    this.#hardState = { ...hardState };
  }

  firstIndex(): number {
    return this.#entries[0]!.index + 1;
  }

  lastIndex(): number {
    return this.#entries[0]!.index + this.#entries.length - 1;
  }

  term(index: number): number {
    const offset = this.#entries[0]!.index;
    if (index < offset) throw new CompactedError(index, this.firstIndex());
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return this.#entries[index - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.#entries[0]!.index;
    if (lo <= offset) throw new CompactedError(lo, this.firstIndex());
    assert(hi <= this.lastIndex() + 1, `entries hi ${hi} beyond last ${this.lastIndex()}`);
    assert(lo <= hi, `entries lo ${lo} > hi ${hi}`);
    return limitSize(this.#entries.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** Replaces all state with `snapshot` (a follower installing the leader's snapshot). */
  applySnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    assert(index >= this.#snapshot.metadata.index, 'snapshot older than the current one');
    this.#snapshot = snapshot;
    this.#entries = [{ index, term, type: 'normal', data: EMPTY }];
  }

  /**
   * Records a snapshot of the application state at `index` (<= applied, which
   * the caller guarantees). Does not discard entries: call compact() for that.
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    assert(index > this.#snapshot.metadata.index, `snapshot index ${index} not newer than ${this.#snapshot.metadata.index}`);
    assert(index <= this.lastIndex(), `snapshot index ${index} beyond last ${this.lastIndex()}`);
    const metadata = { index, term: this.term(index), confState: { voters: [...confState.voters], learners: [...confState.learners] } };
    this.#snapshot = { metadata, data };
    return this.#snapshot;
  }

  /** Discards entries up to and including `compactIndex`, which must be <= lastIndex(). */
  compact(compactIndex: number): void {
    const offset = this.#entries[0]!.index;
    if (compactIndex <= offset) throw new CompactedError(compactIndex, this.firstIndex());
    assert(compactIndex <= this.lastIndex(), `compact ${compactIndex} beyond last ${this.lastIndex()}`);
    const keep = this.#entries.slice(compactIndex - offset);
    const head = keep[0]!;
    this.#entries = [{ index: head.index, term: head.term, type: 'normal', data: EMPTY }, ...keep.slice(1)];
  }

  /**
   * Appends persisted entries, truncating any conflicting suffix first.
   * Entries below the first index (already compacted) are skipped.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[entries.length - 1]!.index;
    if (last < first) return;
    const fresh = entries[0]!.index < first ? entries.slice(first - entries[0]!.index) : entries;
    const start = fresh[0]!.index;
    assert(start <= this.lastIndex() + 1, `append at ${start} leaves a gap after ${this.lastIndex()}`);
    const offset = this.#entries[0]!.index;
    if (start === this.lastIndex() + 1) {
      // The common case, appending after the last entry: no copy of the log.
      for (const entry of fresh) this.#entries.push(entry);
      return;
    }
    this.#entries = this.#entries.slice(0, start - offset).concat(fresh);
  }
}
