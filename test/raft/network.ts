/**
 * In-test cluster harness (after etcd's `network`): nodes with memory storage
 * and a list-of-applied-data state machine, delivering messages synchronously
 * with cut / isolate / drop / recover / mutate filters. Everything is
 * deterministic: no timers, no randomness except a seeded PRNG.
 */
import {
  MemoryRaftStorage, RawNode, seededRandom, type Entry, type Message, type NodeId, type RaftConfig, type ReadState,
  type RawNodeConfig,
} from '../../src/raft/index.ts';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Options shared by every node of a test network. */
export type NetworkOptions = Partial<Omit<RaftConfig, 'id' | 'random'>> & { seed?: number };

/** One node: its durable storage, its RawNode and what it has applied. */
export interface TestNode {
  id: NodeId;
  storage: MemoryRaftStorage;
  node: RawNode;
  /** Application data of applied normal entries, in order (the state machine). */
  applied: string[];
  readStates: ReadState[];
}

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  readonly #options: NetworkOptions;
  readonly #random: () => number;
  #cut = new Set<string>();
  #dropTypes = new Set<Message['type']>();
  /** Optional rewrite of each message in flight; return undefined to drop it. */
  mutate: ((message: Message) => Message | undefined) | undefined;
  /** Every message delivered, for assertions about traffic. */
  delivered: Message[] = [];
  #queue: Message[] = [];

  constructor(ids: NodeId[], options: NetworkOptions = {}) {
    this.#options = options;
    this.#random = seededRandom(options.seed ?? 1);
    for (const id of ids) this.add(id, MemoryRaftStorage.bootstrap(ids));
  }

  /** Adds a node over existing storage (a restart or a new joiner with empty storage). */
  add(id: NodeId, storage: MemoryRaftStorage): TestNode {
    const config: RawNodeConfig = { electionTicks: 10, heartbeatTicks: 1, ...this.#options, id, random: this.#random };
    const snapshot = storage.snapshot();
    const applied = snapshot.data.byteLength > 0 ? (JSON.parse(decoder.decode(snapshot.data)) as string[]) : [];
    const testNode: TestNode = { id, storage, node: new RawNode(config, storage), applied, readStates: [] };
    this.nodes.set(id, testNode);
    return testNode;
  }

  get(id: NodeId): TestNode {
    const testNode = this.nodes.get(id);
    if (!testNode) throw new Error(`no node ${id}`);
    return testNode;
  }

  /** Crash and restart from durable storage: volatile state is lost. */
  restart(id: NodeId): TestNode {
    return this.add(id, this.get(id).storage);
  }

  cut(a: NodeId, b: NodeId): void {
    this.#cut.add(`${a}-${b}`);
    this.#cut.add(`${b}-${a}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  drop(type: Message['type']): void {
    this.#dropTypes.add(type);
  }

  recover(): void {
    this.#cut.clear();
    this.#dropTypes.clear();
    this.mutate = undefined;
  }

  /** Persist, send, apply, advance: the Ready contract, in order. */
  #handleReady(testNode: TestNode): boolean {
    if (!testNode.node.hasReady()) return false;
    const ready = testNode.node.ready();
    if (ready.snapshot) {
      testNode.storage.applySnapshot(ready.snapshot);
      const data = ready.snapshot.data;
      testNode.applied = data.byteLength > 0 ? (JSON.parse(decoder.decode(data)) as string[]) : [];
    }
    testNode.storage.append(ready.entries);
    if (ready.hardState) testNode.storage.setHardState(ready.hardState);
    this.#queue.push(...ready.messages);
    for (const entry of ready.committedEntries) {
      if (entry.type === 'normal' && entry.data.byteLength > 0) testNode.applied.push(decoder.decode(entry.data));
    }
    testNode.readStates.push(...ready.readStates);
    testNode.node.advance(ready);
    return true;
  }

  #deliverable(message: Message): Message | undefined {
    if (!this.nodes.has(message.to)) return undefined;
    if (this.#cut.has(`${message.from}-${message.to}`) || this.#dropTypes.has(message.type)) return undefined;
    return this.mutate ? this.mutate(message) : message;
  }

  /** Runs readies and deliveries until nothing moves (bounded). */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const testNode of this.nodes.values()) moved = this.#handleReady(testNode) || moved;
      const queue = this.#queue;
      this.#queue = [];
      for (const message of queue) {
        const delivered = this.#deliverable(message);
        if (!delivered) continue;
        this.delivered.push(delivered);
        this.get(delivered.to).node.step(delivered);
        moved = true;
      }
      if (!moved) return;
    }
    throw new Error('network did not stabilize');
  }

  /** Ticks the given nodes (all by default) `count` times, stabilizing after each tick. */
  tick(count: number, ids: NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < count; i++) {
      for (const id of ids) this.get(id).node.tick();
      this.stabilize();
    }
  }

  campaign(id: NodeId): void {
    this.get(id).node.campaign();
    this.stabilize();
  }

  propose(id: NodeId, data: string): void {
    this.get(id).node.propose(encoder.encode(data));
    this.stabilize();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.node.status().role === 'leader').map((n) => n.id);
  }

  /** Snapshot of the application state at the applied index, then compaction up to it. */
  compact(id: NodeId): void {
    const testNode = this.get(id);
    const { applied } = testNode.node.status();
    const data = encoder.encode(JSON.stringify(testNode.applied));
    testNode.storage.createSnapshot(applied, testNode.node.confState(), data);
    testNode.storage.compact(applied);
  }

  /** The durable log of a node as [index, term] pairs after its snapshot. */
  logOf(id: NodeId): Array<[number, number]> {
    const storage = this.get(id).storage;
    const entries: Entry[] = storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
    return entries.map((e) => [e.index, e.term]);
  }
}

export const bytes = (text: string): Uint8Array => encoder.encode(text);
