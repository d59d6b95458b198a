/**
 * The Raft log, hard state and membership kept in the storage port under the
 * reserved `Tag.raft` range, with the log mirrored in memory because the core
 * reads it synchronously:
 *
 *   raft/"log"/{index}  -> CBOR [term, type, data]
 *   raft/"hardstate"    -> CBOR [term, vote, commit]
 *   raft/"applied"      -> Raft index of the last entry whose ledger writes are durable
 *                          (written in the same batch as those writes)
 *   raft/"membership"   -> the membership (members.ts) as of the applied index
 *   raft/"compacted"    -> CBOR [index, term]: no entry at or below index is kept
 *   raft/"install"      -> a snapshot received from the leader whose ledger
 *                          catch-up has not finished (see below)
 *
 * Snapshots are not stored: the node creates one from live state at its
 * applied index (at open, and every `snapshot_entries` applied entries, when
 * published state equals durable state) and keeps it in memory, since the
 * ledger below it never changes. A snapshot received from the leader is
 * stored as the install record in the same batch that resets the log to it;
 * while it exists the ledger may be ahead of the applied index (entries are
 * being pulled), so the node applies no Raft entry until the install is
 * finished, and a restart finishes it before anything else.
 *
 * It writes nothing by itself except the founding membership on a node's
 * very first open: `*Ops` methods build batches, the node commits them, then
 * the matching `mark*` method updates the mirror.
 */
import { MemoryRaftStorage, type ConfState, type Entry, type HardState, type NodeId, type RaftStorage, type Snapshot } from "../raft/index.ts";
import { KeyBuilder, Tag, readKeyInteger } from "../storage/keys.ts";
import { SCAN_LIMIT_MAX, StorageCorruptionError, type BatchOp, type Storage } from "../storage/index.ts";
import { cbor, cborUint } from "../ledger/entry.ts";
import { decodeWire, WireFormatError } from "../transport/codec.ts";
import { emptyMembership, foundingMembership, membershipFromWire, membershipToWire, type MemberAddresses, type Membership } from "./members.ts";

const logPrefix = (): KeyBuilder => new KeyBuilder(Tag.raft).string("log");
const logKey = (index: number): Uint8Array => logPrefix().integer(index).build();
const HARD_STATE_KEY = new KeyBuilder(Tag.raft).string("hardstate").build();
const APPLIED_KEY = new KeyBuilder(Tag.raft).string("applied").build();
const MEMBERSHIP_KEY = new KeyBuilder(Tag.raft).string("membership").build();
const COMPACTED_KEY = new KeyBuilder(Tag.raft).string("compacted").build();
const INSTALL_KEY = new KeyBuilder(Tag.raft).string("install").build();
const TYPE_CODES = { normal: 0, confChange: 1 } as const;
const EMPTY = new Uint8Array(0);
/** The founding log: a bootstrap snapshot at index 1, term 1 (etcd's convention), entries from 2. */
const BOOTSTRAP = { index: 1, term: 1 } as const;

/** Batch op recording that the ledger has applied every entry up to `index`. */
export function appliedIndexOp(index: number): BatchOp {
  return { type: "put", key: APPLIED_KEY, value: cbor.encode(cborUint(index)) };
}

/** Batch op recording the membership as of the applied index written in the same batch. */
export function membershipOp(membership: Membership): BatchOp {
  return { type: "put", key: MEMBERSHIP_KEY, value: cbor.encode(membershipToWire(membership)) };
}

function decodeLogValue(index: number, bytes: Uint8Array): Entry {
  const raw = decodeWire(bytes);
  if (!Array.isArray(raw) || raw.length !== 3 || !Number.isSafeInteger(raw[0]) || !(raw[2] instanceof Uint8Array)) {
    throw new StorageCorruptionError(`raft log entry ${index} is malformed`);
  }
  const type = raw[1] === TYPE_CODES.normal ? "normal" : raw[1] === TYPE_CODES.confChange ? "confChange" : undefined;
  if (type === undefined) throw new StorageCorruptionError(`raft log entry ${index} has an unknown type`);
  return { index, term: raw[0] as number, type, data: raw[2] };
}

function decodeUints(bytes: Uint8Array, count: number, what: string): number[] {
  const raw = decodeWire(bytes);
  if (!Array.isArray(raw) || raw.length !== count || !raw.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new StorageCorruptionError(`raft ${what} is malformed`);
  }
  return raw;
}

/** Snapshot <-> plain array, for the install record: [index, term, voters, learners, data]. */
function snapshotToWire(snapshot: Snapshot): unknown[] {
  const { index, term, confState } = snapshot.metadata;
  return [cborUint(index), cborUint(term), confState.voters.map(cborUint), confState.learners.map(cborUint), snapshot.data];
}

function snapshotFromWire(raw: unknown): Snapshot {
  const ok = Array.isArray(raw) && raw.length === 5 && Number.isSafeInteger(raw[0]) && Number.isSafeInteger(raw[1])
    && Array.isArray(raw[2]) && raw[2].every(Number.isSafeInteger) && Array.isArray(raw[3]) && raw[3].every(Number.isSafeInteger) && raw[4] instanceof Uint8Array;
  if (!ok) throw new StorageCorruptionError("raft install record is malformed");
  const [index, term, voters, learners, data] = raw as [number, number, number[], number[], Uint8Array];
  return { metadata: { index, term, confState: { voters, learners } }, data };
}

async function readMembership(storage: Storage): Promise<Membership | undefined> {
  const bytes = await storage.get(MEMBERSHIP_KEY);
  if (bytes === undefined) return undefined;
  try {
    return membershipFromWire(decodeWire(bytes));
  } catch (error) {
    if (error instanceof WireFormatError) throw new StorageCorruptionError(`raft membership is malformed: ${error.message}`);
    throw error;
  }
}

/** Options of {@link RaftLogStorage.open}. */
export interface RaftLogOpenOptions {
  /**
   * The founding members (this node included), used only when the storage
   * holds no membership yet: the node then founds the cluster with them.
   * Undefined: a node joining an existing cluster, which waits for the
   * leader's snapshot and never founds one.
   */
  founding?: ReadonlyMap<NodeId, MemberAddresses>;
}

/** Raft storage over the storage port, with the log mirrored in memory. */
export class RaftLogStorage implements RaftStorage {
  readonly #memory: MemoryRaftStorage;
  /** Last Raft index whose ledger writes were durable at open. */
  readonly appliedIndex: number;
  /** The membership as of `appliedIndex` at open. */
  readonly membership: Membership;
  #snapshot: Snapshot;
  #installing: Snapshot | undefined;

  private constructor(memory: MemoryRaftStorage, state: { applied: number; membership: Membership; snapshot: Snapshot; installing: Snapshot | undefined }) {
    this.#memory = memory;
    this.appliedIndex = state.applied;
    this.membership = state.membership;
    this.#snapshot = state.snapshot;
    this.#installing = state.installing;
  }

  /** Load the log from `storage` (see {@link RaftLogOpenOptions} for how a new node starts). */
  static async open(storage: Storage, options: RaftLogOpenOptions = {}): Promise<RaftLogStorage> {
    const hardStateBytes = await storage.get(HARD_STATE_KEY);
    const appliedBytes = await storage.get(APPLIED_KEY);
    const compactedBytes = await storage.get(COMPACTED_KEY);
    const installBytes = await storage.get(INSTALL_KEY);
    const installing = installBytes === undefined ? undefined : snapshotFromWire(decodeWire(installBytes));
    let membership = await readMembership(storage);
    let compacted = compactedBytes === undefined ? undefined : decodeUints(compactedBytes, 2, "compaction point");
    if (membership === undefined && installing === undefined && options.founding !== undefined) {
      // First open of a founding member (or a data dir from before membership was stored): from now on the
      // membership comes from storage, never again from the config file.
      membership = foundingMembership(options.founding);
      compacted ??= [BOOTSTRAP.index, BOOTSTRAP.term];
      await storage.commit([membershipOp(membership), { type: "put", key: COMPACTED_KEY, value: cbor.encode(compacted.map(cborUint)) }]);
    }
    membership ??= emptyMembership();
    const [compactIndex, compactTerm] = compacted ?? [0, 0];
    const memory = new MemoryRaftStorage();
    memory.applySnapshot({ metadata: { index: compactIndex!, term: compactTerm!, confState: { voters: [], learners: [] } }, data: EMPTY });
    if (hardStateBytes !== undefined) {
      const [term, vote, commit] = decodeUints(hardStateBytes, 3, "hard state");
      memory.setHardState({ term: term!, vote: vote!, commit: commit! });
    } else if (compactIndex! > 0) {
      // The entry at the compaction point is committed (a new founder: the bootstrap entry).
      memory.setHardState({ term: compactTerm!, vote: 0, commit: compactIndex! });
    }
    await loadLog(storage, memory, compactIndex! + 1);
    const applied = appliedBytes === undefined ? 0 : decodeWire(appliedBytes);
    if (!Number.isSafeInteger(applied) || (applied as number) < 0) throw new StorageCorruptionError("raft applied index is malformed");
    let snapshot: Snapshot;
    if (installing !== undefined) {
      if (installing.metadata.index !== compactIndex || (applied as number) >= compactIndex!) throw new StorageCorruptionError("raft install record does not match the log");
      snapshot = installing;
    } else {
      const index = Math.max(applied as number, compactIndex!);
      if (index > memory.lastIndex()) throw new StorageCorruptionError(`raft applied index ${applied} beyond the log's last index ${memory.lastIndex()}`);
      snapshot = { metadata: { index, term: memory.term(index), confState: membership.confState }, data: EMPTY };
    }
    return new RaftLogStorage(memory, { applied: applied as number, membership, snapshot, installing });
  }

  /** Ops that make `entries` and `hardState` durable, deleting any conflicting suffix they replace. */
  persistOps(entries: readonly Entry[], hardState: HardState | undefined): BatchOp[] {
    const ops: BatchOp[] = [];
    for (const entry of entries) {
      ops.push({ type: "put", key: logKey(entry.index), value: cbor.encode([cborUint(entry.term), TYPE_CODES[entry.type], entry.data]) });
    }
    const last = entries[entries.length - 1];
    if (last !== undefined) {
      // Entries beyond the new last one belong to a replaced (conflicting) suffix.
      for (let index = last.index + 1; index <= this.#memory.lastIndex(); index++) ops.push({ type: "delete", key: logKey(index) });
    }
    if (hardState !== undefined) {
      ops.push({ type: "put", key: HARD_STATE_KEY, value: cbor.encode([cborUint(hardState.term), cborUint(hardState.vote), cborUint(hardState.commit)]) });
    }
    return ops;
  }

  /** Mirror what `persistOps` wrote, once its commit resolved. */
  markPersisted(entries: readonly Entry[], hardState: HardState | undefined): void {
    this.#memory.append(entries);
    if (hardState !== undefined) this.#memory.setHardState(hardState);
  }

  // ---- snapshots and compaction ----

  /**
   * Adopt `data` (the state at applied index `index`, membership `confState`)
   * as the snapshot the core sends to followers that need compacted entries.
   * `index` must not go back and its entry must still be in the log.
   */
  setLocalSnapshot(index: number, confState: ConfState, data: Uint8Array): void {
    if (this.#installing !== undefined) throw new Error("assertion: a local snapshot while an install is pending");
    if (index < this.#snapshot.metadata.index || index < this.firstIndex() - 1 || index > this.lastIndex()) {
      throw new Error(`assertion: local snapshot at ${index} outside [${Math.max(this.#snapshot.metadata.index, this.firstIndex() - 1)}, ${this.lastIndex()}]`);
    }
    const metadata = { index, term: this.#memory.term(index), confState: { voters: [...confState.voters], learners: [...confState.learners] } };
    this.#snapshot = { metadata, data };
  }

  /**
   * Ops that discard log entries from the first one up to `compactIndex`,
   * at most `deletesMax` of them; the compaction point moves with them in the
   * same batch, so every crash leaves a log without holes. Returns the ops
   * and the index they compact through (call again until it reaches `compactIndex`).
   */
  compactionOps(compactIndex: number, deletesMax: number): { ops: BatchOp[]; through: number } {
    const first = this.firstIndex();
    if (compactIndex > this.#snapshot.metadata.index) throw new Error(`assertion: compaction to ${compactIndex} beyond the snapshot at ${this.#snapshot.metadata.index}`);
    const through = Math.min(compactIndex, first + deletesMax - 1);
    const ops: BatchOp[] = [];
    for (let index = first; index <= through; index++) ops.push({ type: "delete", key: logKey(index) });
    ops.push({ type: "put", key: COMPACTED_KEY, value: cbor.encode([cborUint(through), cborUint(this.#memory.term(through))]) });
    return { ops, through };
  }

  /** Mirror a committed `compactionOps` batch. */
  markCompacted(through: number): void {
    this.#memory.compact(through);
  }

  /**
   * Ops that replace the whole log with `snapshot` (from the leader): delete
   * every entry, move the compaction point to it, and store it as the
   * install record. Commit them together with the Ready's entries and hard state.
   */
  installOps(snapshot: Snapshot): BatchOp[] {
    const { index, term } = snapshot.metadata;
    const ops: BatchOp[] = [];
    for (let i = this.firstIndex(); i <= this.lastIndex(); i++) ops.push({ type: "delete", key: logKey(i) });
    ops.push({ type: "put", key: COMPACTED_KEY, value: cbor.encode([cborUint(index), cborUint(term)]) });
    ops.push({ type: "put", key: INSTALL_KEY, value: cbor.encode(snapshotToWire(snapshot)) });
    return ops;
  }

  /** Mirror a committed `installOps` batch (before `markPersisted` of the same Ready's entries). */
  markInstalling(snapshot: Snapshot): void {
    this.#memory.applySnapshot({ metadata: snapshot.metadata, data: EMPTY });
    this.#snapshot = snapshot;
    this.#installing = snapshot;
  }

  /** The snapshot whose install (ledger catch-up) is pending, if any. */
  get installing(): Snapshot | undefined {
    return this.#installing;
  }

  /** Ops that end the pending install: the applied index reaches it and its membership is stored. */
  finishInstallOps(membership: Membership): BatchOp[] {
    const snapshot = this.#installing;
    if (snapshot === undefined) throw new Error("assertion: no install to finish");
    return [appliedIndexOp(snapshot.metadata.index), membershipOp(membership), { type: "delete", key: INSTALL_KEY }];
  }

  /** Mirror a committed `finishInstallOps` batch; the installed snapshot stays the one sent to others. */
  markInstallFinished(): void {
    this.#installing = undefined;
  }

  // ---- RaftStorage ----

  /** The hard state as last persisted, without the conf state initialState() copies. */
  persistedHardState(): HardState {
    return this.#memory.hardState();
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    const { voters, learners } = this.#snapshot.metadata.confState;
    return { hardState: this.#memory.hardState(), confState: { voters: [...voters], learners: [...learners] } };
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.#memory.entries(lo, hi, maxBytes);
  }
  term(index: number): number {
    return this.#memory.term(index);
  }
  firstIndex(): number {
    return this.#memory.firstIndex();
  }
  lastIndex(): number {
    return this.#memory.lastIndex();
  }
  snapshot(): Snapshot {
    return this.#snapshot;
  }
}

/** Append the stored log from `from` on to `memory`, page by page. */
async function loadLog(storage: Storage, memory: MemoryRaftStorage, from: number): Promise<void> {
  const end = logPrefix().raw(0xff).build();
  let start = logKey(from);
  const prefixBytes = start.length - 8;
  for (;;) {
    const page = await storage.scan({ start, end, limit: SCAN_LIMIT_MAX });
    const entries = page.map(({ key, value }) => decodeLogValue(readKeyInteger(key, prefixBytes), value));
    if (entries.length > 0 && entries[0]!.index !== memory.lastIndex() + 1) {
      throw new StorageCorruptionError(`raft log has a gap before entry ${entries[0]!.index}`);
    }
    memory.append(entries);
    if (page.length < SCAN_LIMIT_MAX) break;
    start = logKey(entries[entries.length - 1]!.index + 1);
  }
}
