/**
 * The Raft log and hard state kept in the storage port, under the reserved
 * `Tag.raft` range: `raft/"log"/{index}` -> CBOR [term, type, data],
 * `raft/"hardstate"` -> CBOR [term, vote, commit], and `raft/"applied"` ->
 * the Raft index of the last entry whose ledger writes are durable (written
 * in the same batch as those writes, so a restart resumes exactly after it).
 *
 * The core reads its log synchronously, so the whole log is mirrored in a
 * `MemoryRaftStorage` loaded at open. This MVP has no snapshots or log
 * compaction: the log (and its mirror) grows with every write. It never
 * writes anything by itself: `persistOps` builds the batch, the node commits
 * it, then `markPersisted` updates the mirror.
 */
import { MemoryRaftStorage, type ConfState, type Entry, type HardState, type RaftStorage, type Snapshot } from "../raft/index.ts";
import { KeyBuilder, Tag, readKeyInteger } from "../storage/keys.ts";
import { SCAN_LIMIT_MAX, StorageCorruptionError, type BatchOp, type Storage } from "../storage/index.ts";
import { cbor, cborUint } from "../ledger/entry.ts";
import { decodeWire } from "../transport/codec.ts";

const logPrefix = (): KeyBuilder => new KeyBuilder(Tag.raft).string("log");
const logKey = (index: number): Uint8Array => logPrefix().integer(index).build();
const HARD_STATE_KEY = new KeyBuilder(Tag.raft).string("hardstate").build();
const APPLIED_KEY = new KeyBuilder(Tag.raft).string("applied").build();
const TYPE_CODES = { normal: 0, confChange: 1 } as const;

/** Batch op recording that the ledger has applied every entry up to `index`. */
export function appliedIndexOp(index: number): BatchOp {
  return { type: "put", key: APPLIED_KEY, value: cbor.encode(cborUint(index)) };
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

function decodeHardState(bytes: Uint8Array): HardState {
  const raw = decodeWire(bytes);
  if (!Array.isArray(raw) || raw.length !== 3 || !raw.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new StorageCorruptionError("raft hard state is malformed");
  }
  return { term: raw[0], vote: raw[1], commit: raw[2] };
}

/** Raft storage over the storage port, with the log mirrored in memory. */
export class RaftLogStorage implements RaftStorage {
  readonly #memory: MemoryRaftStorage;
  /** Last Raft index whose ledger writes are durable. */
  readonly appliedIndex: number;

  private constructor(memory: MemoryRaftStorage, appliedIndex: number) {
    this.#memory = memory;
    this.appliedIndex = appliedIndex;
  }

  /**
   * Load the log from `storage`. Every founding member starts from the same
   * bootstrap snapshot (index 1, term 1, `voters`), so it is rebuilt from
   * config rather than stored.
   */
  static async open(storage: Storage, voters: number[]): Promise<RaftLogStorage> {
    const memory = MemoryRaftStorage.bootstrap(voters);
    const hardStateBytes = await storage.get(HARD_STATE_KEY);
    if (hardStateBytes !== undefined) memory.setHardState(decodeHardState(hardStateBytes));
    const end = new KeyBuilder(Tag.raft).string("log").raw(0xff).build();
    let start = logKey(0);
    for (;;) {
      const page = await storage.scan({ start, end, limit: SCAN_LIMIT_MAX });
      const prefixBytes = start.length - 8;
      const entries = page.map(({ key, value }) => {
        const index = readKeyInteger(key, prefixBytes);
        return decodeLogValue(index, value);
      });
      memory.append(entries);
      if (page.length < SCAN_LIMIT_MAX) break;
      start = logKey(entries[entries.length - 1]!.index + 1);
    }
    const appliedBytes = await storage.get(APPLIED_KEY);
    const applied = appliedBytes === undefined ? 0 : decodeWire(appliedBytes);
    if (!Number.isSafeInteger(applied)) throw new StorageCorruptionError("raft applied index is malformed");
    return new RaftLogStorage(memory, applied as number);
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

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.#memory.initialState();
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
    return this.#memory.snapshot();
  }
}
