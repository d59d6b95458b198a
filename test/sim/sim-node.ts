/**
 * One simulated process: durable storage that survives crashes, and the
 * volatile part (RawNode, the key-value state machine, the Ready being
 * persisted) that a crash loses. A torn crash keeps part of the last write.
 */
import {
  MemoryRaftStorage, RawNode, type HardState, type NodeId, type RawNodeConfig, type Ready, type Snapshot,
} from '../../src/raft/index.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Snapshot data: the register map as JSON pairs (empty bytes = empty map). */
export function encodeState(kv: Map<string, string>): Uint8Array {
  return encoder.encode(JSON.stringify([...kv].sort(([a], [b]) => a.localeCompare(b))));
}

export function decodeState(data: Uint8Array): Map<string, string> {
  if (data.byteLength === 0) return new Map();
  return new Map(JSON.parse(decoder.decode(data)) as Array<[string, string]>);
}

export class SimNode {
  readonly id: NodeId;
  readonly storage: MemoryRaftStorage;
  incarnation = 0;
  alive = false;
  /** Permanently stopped after its removal committed. */
  removed = false;
  raw: RawNode | undefined;
  kv = new Map<string, string>();
  applied = 0;
  durableHardState: HardState;
  /** The Ready being written to disk and when the write completes. */
  pending: { ready: Ready; doneAt: number } | undefined;
  restartAt = Infinity;

  constructor(id: NodeId, storage: MemoryRaftStorage) {
    this.id = id;
    this.storage = storage;
    this.durableHardState = storage.hardState();
  }

  /** Boots from durable state only. */
  start(config: RawNodeConfig): void {
    this.raw = new RawNode(config, this.storage);
    this.kv = decodeState(this.storage.snapshot().data);
    this.applied = this.raw.status().applied;
    this.durableHardState = this.storage.hardState();
    this.alive = true;
    this.pending = undefined;
    this.restartAt = Infinity;
  }

  /** Loses everything volatile. */
  stop(): void {
    this.alive = false;
    this.raw = undefined;
    this.pending = undefined;
    this.incarnation++;
  }

  node(): RawNode {
    if (!this.raw) throw new Error(`node ${this.id} is not running`);
    return this.raw;
  }

  installSnapshot(snapshot: Snapshot): void {
    this.storage.applySnapshot(snapshot);
    this.kv = decodeState(snapshot.data);
  }

  /** Snapshot of the state machine at the applied index, then compaction leaving `keep` entries behind it. */
  compact(keep: number): boolean {
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (!this.raw || this.applied <= snapshotIndex + keep) return false;
    this.storage.createSnapshot(this.applied, this.raw.confState(), encodeState(this.kv));
    const compactIndex = this.applied - keep;
    if (compactIndex >= this.storage.firstIndex()) this.storage.compact(compactIndex);
    return true;
  }
}
