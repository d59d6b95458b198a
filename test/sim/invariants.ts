/**
 * Safety invariants checked while the simulation runs, incrementally so they
 * can run after every step: election safety (one leader per term), log
 * matching, committed entries never changing, state machine safety (same
 * entries applied in the same order everywhere) and hard state monotonicity.
 */
import { decodeConfChange, type Entry, type HardState, type MemoryRaftStorage, type NodeId } from '../../src/raft/index.ts';

/** A broken safety property. The message says which one and where. */
export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
}

const decoder = new TextDecoder();

/** Content identity of an entry (term, type and data). */
export function fingerprint(entry: Entry): string {
  if (entry.type === 'confChange') {
    const change = decodeConfChange(entry.data);
    return `${entry.term}/${change.type}/${change.nodeId}`;
  }
  return `${entry.term}/${entry.type}/${decoder.decode(entry.data)}`;
}

function fail(message: string): never {
  throw new SafetyViolation(message);
}

export class SafetyChecker {
  readonly #leaderByTerm = new Map<number, NodeId>();
  /** (index, term) -> content and previous entry's term: the induction step of log matching. */
  readonly #entries = new Map<string, { fingerprint: string; prevTerm: number | undefined }>();
  /**
   * index -> every entry known committed (from any node's durable commit or
   * apply), with an upper bound on the term in which it was committed.
   */
  readonly committed = new Map<number, { fingerprint: string; termBound: number }>();
  maxCommittedIndex = 0;

  onLeader(id: NodeId, term: number): void {
    const existing = this.#leaderByTerm.get(term);
    if (existing !== undefined && existing !== id) fail(`election safety: nodes ${existing} and ${id} both leader in term ${term}`);
    this.#leaderByTerm.set(term, id);
  }

  onHardState(id: NodeId, before: HardState, after: HardState): void {
    if (after.term < before.term) fail(`node ${id}: term went back ${before.term} -> ${after.term}`);
    if (after.term === before.term && before.vote !== 0 && after.vote !== before.vote) {
      fail(`node ${id}: vote changed within term ${after.term}: ${before.vote} -> ${after.vote}`);
    }
    if (after.commit < before.commit) fail(`node ${id}: commit went back ${before.commit} -> ${after.commit}`);
  }

  /** Called after `entries` were written to the node's storage. */
  onEntriesPersisted(id: NodeId, storage: MemoryRaftStorage, entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.index < storage.firstIndex()) continue;
      const prevTerm = entry.index - 1 >= storage.firstIndex() - 1 ? storage.term(entry.index - 1) : undefined;
      const key = `${entry.index}:${entry.term}`;
      const seen = this.#entries.get(key);
      const print = fingerprint(entry);
      if (!seen) {
        this.#entries.set(key, { fingerprint: print, prevTerm });
        continue;
      }
      if (seen.fingerprint !== print) fail(`log matching: node ${id} has a different entry at ${key}`);
      if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
        fail(`log matching: node ${id} entry ${key} follows term ${prevTerm}, elsewhere ${seen.prevTerm}`);
      }
    }
  }

  /**
   * A node's durable commit index rose while its term was `observerTerm`: its
   * log up to there is committed (in a term <= observerTerm) and must agree
   * with everyone's.
   */
  onCommit(id: NodeId, storage: MemoryRaftStorage, from: number, to: number, observerTerm: number): void {
    const lo = Math.max(from + 1, storage.firstIndex());
    if (lo > to) return;
    for (const entry of storage.entries(lo, to + 1, Number.MAX_SAFE_INTEGER)) this.#recordCommitted(id, entry, observerTerm);
  }

  #recordCommitted(id: NodeId, entry: Entry, observerTerm: number): void {
    const print = fingerprint(entry);
    const known = this.committed.get(entry.index);
    if (known === undefined) {
      this.committed.set(entry.index, { fingerprint: print, termBound: observerTerm });
      this.maxCommittedIndex = Math.max(this.maxCommittedIndex, entry.index);
    } else if (known.fingerprint !== print) {
      fail(`committed entry changed: node ${id} has ${print} at ${entry.index}, committed was ${known.fingerprint}`);
    } else if (observerTerm < known.termBound) {
      known.termBound = observerTerm;
    }
  }

  /** State machine safety: `entry` applied by `id` (in term `observerTerm`) right after index `appliedBefore`. */
  onApply(id: NodeId, appliedBefore: number, entry: Entry, observerTerm: number): void {
    if (entry.index !== appliedBefore + 1) fail(`node ${id} applied ${entry.index} after ${appliedBefore}`);
    this.#recordCommitted(id, entry, observerTerm);
  }

  /**
   * Leader completeness (§5.4): a leader of `term` holds every entry committed
   * in an earlier term. An entry's recorded term bound is >= the term it was
   * committed in, so checking only entries with bound < term is sound.
   */
  onLeaderLog(id: NodeId, term: number, firstIndex: number, termAt: (index: number) => number): void {
    for (const [index, { fingerprint: print, termBound }] of this.committed) {
      if (termBound >= term || index < firstIndex) continue;
      const expected = Number(print.slice(0, print.indexOf('/')));
      const actual = termAt(index);
      if (actual !== expected) fail(`leader completeness: leader ${id} of term ${term} has term ${actual} at committed index ${index} (term ${expected})`);
    }
  }
}
