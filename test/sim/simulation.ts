/**
 * Deterministic cluster simulation. One seed fixes everything: cluster size,
 * fault rates, Raft limits, and every event of the run (clock ticks, message
 * delays/drops/duplicates/reordering, partitions, crashes with lost or torn
 * writes, restarts, membership changes, compaction, leader transfers and the
 * client workload). Safety invariants are checked as each event happens; at
 * the end everything heals and the cluster must converge within a bounded
 * number of ticks, and the client history must be linearizable.
 */
import { decodeConfChange, MemoryRaftStorage, seededRandom, type Message, type NodeId, type RawNodeConfig, type Ready, type TestingKnobs } from '../../src/raft/index.ts';
import { SafetyChecker, SafetyViolation } from './invariants.ts';
import { checkLinearizable } from './linearizability.ts';
import { SimNetwork, type InFlight } from './network.ts';
import { chaosStep, type NemesisRates } from './nemesis.ts';
import { Random } from './random.ts';
import { SimNode } from './sim-node.ts';
import { decodeWrite, Workload, type LeaderHandle, type WorkloadHost } from './workload.ts';

/** Options of one run. */
export interface SimOptions {
  /** Called with each trace line (events, role changes, faults); off when undefined. */
  trace?: (line: string) => void;
  /** Deliberate bugs injected into every node (to prove the simulation catches them). */
  testingKnobs?: TestingKnobs;
  /** Also trace every delivered message (verbose). */
  traceMessages?: boolean;
  /** Ticks of chaos before healing. */
  chaosTicks?: number;
  /** Force lease-based reads on or off; by default about half the seeds with check-quorum use them. */
  leaseReads?: boolean;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  error?: string;
  ticks: number;
  stats: Record<string, number>;
}

/** Bounds of the run (tiger style: everything has a limit). */
const CHAOS_TICKS_DEFAULT = 600;
/** Liveness bound after healing: this many election timeouts (elections plus catching up every member)... */
const CONVERGENCE_ELECTION_TIMEOUTS = 30;
/** ...but never fewer ticks than this, for clusters with very short timeouts. */
const CONVERGENCE_TICKS_MIN = 400;
const ROUNDS_PER_TICK_MAX = 64;

export class Simulation implements WorkloadHost {
  readonly random: Random;
  readonly network: SimNetwork;
  readonly checker = new SafetyChecker();
  readonly workload: Workload;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly rates: NemesisRates;
  readonly stats: Record<string, number> = { elections: 0, crashes: 0, tornWrites: 0, snapshotsSent: 0, confChanges: 0, compactions: 0 };
  now = 0;
  nextNodeId: number;
  #clock = 0;
  readonly #raftConfig: Omit<RawNodeConfig, 'id' | 'random'>;
  readonly #diskDelayTicksMax: number;
  /** Lease reads' own random stream (whether a seed uses them, and which believed leader a read goes to). */
  readonly #readerRandom: Random;

  constructor(readonly seed: number, readonly options: SimOptions = {}) {
    const random = (this.random = new Random(seed));
    const size = random.int(3, 7);
    this.network = new SimNetwork(random, {
      dropProbability: random.pick([0, 0.01, 0.05, 0.1]),
      duplicateProbability: random.pick([0, 0.02, 0.05]),
      delayTicksMax: random.int(0, 4),
    });
    this.#diskDelayTicksMax = random.pick([0, 1, 2, 5]);
    const roundTripTicksMax = 2 * (this.#diskDelayTicksMax + this.network.faults.delayTicksMax) + 1;
    this.#raftConfig = {
      // Raft's timing requirement: a round trip (disk + network, both ways) well inside the election timeout.
      electionTicks: Math.max(random.pick([5, 10, 20]), 2 * roundTripTicksMax),
      heartbeatTicks: random.pick([1, 2, 3]),
      maxInflightMessages: random.pick([1, 2, 8, 64]),
      maxEntriesPerMessage: random.pick([1, 3, 64]),
      maxBytesPerMessage: random.pick([16, 1024 * 1024]),
      preVote: random.chance(0.8),
      checkQuorum: random.chance(0.8),
      testingKnobs: options.testingKnobs,
    };
    // Drawn from a stream of its own, so adding lease reads left every other choice of a seed as it was.
    this.#readerRandom = new Random(seed ^ 0x1ea5e);
    this.#raftConfig.leaseReads = options.leaseReads ?? (this.#raftConfig.checkQuorum! && this.#readerRandom.chance(0.5));
    if (this.#raftConfig.leaseReads) this.#raftConfig.checkQuorum = true;
    this.rates = {
      partition: random.pick([0, 0.005, 0.02, 0.05]),
      crash: random.pick([0, 0.003, 0.01, 0.03]),
      tornWrite: random.pick([0, 0.5]),
      confChange: random.pick([0, 0.005, 0.02]),
      compaction: random.pick([0.005, 0.03]),
      transfer: random.pick([0, 0.005]),
    };
    this.workload = new Workload(random, random.int(1, 5), ['a', 'b', 'c'].slice(0, random.int(1, 3)), random.pick([0.1, 0.3]));
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    this.nextNodeId = size + 1;
    for (const id of ids) this.addNode(id, MemoryRaftStorage.bootstrap(ids));
    this.trace(`seed ${seed}: ${size} nodes, net ${JSON.stringify(this.network.faults)}, disk<=${this.#diskDelayTicksMax}, ` +
      `raft ${JSON.stringify({ ...this.#raftConfig, testingKnobs: undefined })}, rates ${JSON.stringify(this.rates)}`);
  }

  clock(): number {
    return ++this.#clock;
  }

  trace(line: string): void {
    this.options.trace?.(`[t=${this.now}] ${line}`);
  }

  addNode(id: NodeId, storage: MemoryRaftStorage): SimNode {
    const node = new SimNode(id, storage);
    this.nodes.set(id, node);
    this.startNode(node);
    return node;
  }

  startNode(node: SimNode): void {
    node.start({ ...this.#raftConfig, id: node.id, random: seededRandom(this.random.seed()) });
  }

  liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.alive);
  }

  /** The live node that believes it is leader with the highest term. */
  leaderNode(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const node of this.liveNodes()) {
      const status = node.node().status();
      if (status.role === 'leader' && status.term > bestTerm) {
        best = node;
        bestTerm = status.term;
      }
    }
    return best;
  }

  leader(): ReturnType<WorkloadHost['leader']> {
    const node = this.leaderNode();
    return node === undefined ? undefined : handle(node);
  }

  /** With lease reads, reads go to any live node that believes it leads (picked from a random stream of their own). */
  reader(): ReturnType<WorkloadHost['leader']> {
    if (!this.#raftConfig.leaseReads) return this.leader();
    const leaders = this.liveNodes().filter((node) => node.node().status().role === 'leader');
    return leaders.length === 0 ? undefined : handle(this.#readerRandom.pick(leaders));
  }

  crash(node: SimNode, torn: boolean): void {
    if (node.pending && torn) this.#tornWrite(node);
    this.workload.onCrash(node.id, node.incarnation);
    node.stop();
    this.stats.crashes!++;
  }

  /** The interrupted write kept only partly: hard state first, then a prefix of the entries. */
  #tornWrite(node: SimNode): void {
    const ready = node.pending!.ready;
    if (ready.snapshot && this.random.chance(0.5)) return;
    if (ready.snapshot) node.installSnapshot(ready.snapshot);
    const keep = this.random.int(0, ready.entries.length);
    const kept = ready.entries.slice(0, keep);
    node.storage.append(kept);
    this.checker.onEntriesPersisted(node.id, node.storage, kept);
    if (ready.hardState) {
      const commitMax = ready.entries.length > 0 ? ready.entries[0]!.index - 1 + keep : ready.hardState.commit;
      this.#persistHardState(node, { ...ready.hardState, commit: Math.min(ready.hardState.commit, commitMax) });
    }
    this.stats.tornWrites!++;
    this.trace(`node ${node.id} torn write: kept ${keep}/${ready.entries.length} entries`);
  }

  #persistHardState(node: SimNode, hardState: { term: number; vote: number; commit: number }): void {
    const before = node.durableHardState;
    this.checker.onHardState(node.id, before, hardState);
    node.storage.setHardState(hardState);
    node.durableHardState = { ...hardState };
    this.checker.onCommit(node.id, node.storage, before.commit, hardState.commit, hardState.term);
  }

  #takeReady(node: SimNode): boolean {
    if (node.pending) {
      if (node.pending.doneAt > this.now) return false;
      this.#completeReady(node);
      return true;
    }
    const raw = node.node();
    if (!raw.hasReady()) return false;
    const ready = raw.ready();
    if (ready.softState) {
      const term = raw.status().term;
      this.trace(`node ${node.id} ${ready.softState.role} term ${term} lead ${ready.softState.lead}`);
      if (ready.softState.role === 'leader') {
        this.checker.onLeader(node.id, term);
        this.#checkLeaderLog(node, ready, term);
        this.stats.elections!++;
      }
    }
    node.pending = { ready, doneAt: this.now + this.random.int(0, this.#diskDelayTicksMax) };
    if (node.pending.doneAt <= this.now) this.#completeReady(node);
    return true;
  }

  /** The leader's log is its storage plus this Ready's entries (earlier Readies are all persisted). */
  #checkLeaderLog(node: SimNode, ready: Ready, term: number): void {
    const first = ready.entries[0]?.index ?? Infinity;
    const storage = node.storage;
    const termAt = (index: number): number => {
      if (index >= first) return ready.entries[index - first]?.term ?? 0;
      return index <= storage.lastIndex() ? storage.term(index) : 0;
    };
    this.checker.onLeaderLog(node.id, term, storage.firstIndex(), termAt);
  }

  /** The Ready contract: persist, then send, then apply, then advance. */
  #completeReady(node: SimNode): void {
    const ready = node.pending!.ready;
    const raw = node.node();
    if (ready.snapshot) node.installSnapshot(ready.snapshot);
    node.storage.append(ready.entries);
    this.checker.onEntriesPersisted(node.id, node.storage, ready.entries);
    if (ready.hardState) this.#persistHardState(node, ready.hardState);
    for (const message of ready.messages) this.#send(node, message);
    if (ready.snapshot) node.applied = ready.snapshot.metadata.index;
    for (const entry of ready.committedEntries) {
      this.checker.onApply(node.id, node.applied, entry, node.durableHardState.term);
      node.applied = entry.index;
      if (entry.type === 'confChange') this.#onConfChangeApplied(node, entry.data);
      else if (entry.data.byteLength > 0) {
        const write = decodeWrite(entry.data);
        node.kv.set(write.key, write.value);
        this.workload.onApplied(node.id, node.incarnation, write.opId, this);
      }
    }
    for (const state of ready.readStates) this.workload.onReadState(node.id, node.incarnation, state);
    this.workload.serveReads(node.id, node.incarnation, node.applied, (key) => node.kv.get(key) ?? null, this);
    node.pending = undefined;
    raw.advance(ready);
  }

  #onConfChangeApplied(node: SimNode, data: Uint8Array): void {
    const change = decodeConfChange(data);
    if (change.type !== 'removeNode') return;
    const target = this.nodes.get(change.nodeId);
    if (!target || target.removed) return;
    // Committed: the removal is final, so the process can be shut down for good.
    target.removed = true;
    if (target.alive && target !== node) this.crash(target, false);
    else if (target === node) target.restartAt = Infinity;
    this.trace(`node ${change.nodeId} removed (applied at ${node.id})`);
  }

  #send(node: SimNode, message: Message): void {
    if (message.type === 'snap') this.stats.snapshotsSent!++;
    const sent = this.network.send(message, this.now, node.incarnation);
    if (!sent && message.type === 'snap') node.node().reportSnapshot(message.to, 'failure');
  }

  #reportSnapshot(item: InFlight, outcome: 'finish' | 'failure'): void {
    if (item.message.type !== 'snap') return;
    const sender = this.nodes.get(item.message.from);
    if (sender?.alive && sender.incarnation === item.senderIncarnation) sender.node().reportSnapshot(item.message.to, outcome);
  }

  #deliver(): boolean {
    const { deliver, lost } = this.network.takeDue(this.now);
    for (const item of lost) this.#reportSnapshot(item, 'failure');
    for (const item of deliver) {
      const target = this.nodes.get(item.message.to);
      if (!target?.alive) {
        this.#reportSnapshot(item, 'failure');
        continue;
      }
      if (this.options.traceMessages) this.trace(`deliver ${describeMessage(item.message)}`);
      target.node().step(item.message);
      this.#reportSnapshot(item, 'finish');
    }
    return deliver.length + lost.length > 0;
  }

  /** One tick: faults, clocks, clients, then message/disk rounds until quiet. */
  step(chaos: boolean): void {
    this.now++;
    if (chaos) chaosStep(this);
    for (const node of this.liveNodes()) {
      if (node.removed && node.alive) this.crash(node, false);
    }
    for (const node of this.nodes.values()) {
      if (!node.alive && !node.removed && node.restartAt <= this.now) {
        this.startNode(node);
        this.trace(`node ${node.id} restarted (incarnation ${node.incarnation})`);
      }
    }
    for (const node of this.liveNodes()) node.node().tick();
    if (chaos) this.workload.issue(this);
    this.workload.expire(this.now);
    for (let round = 0; round < ROUNDS_PER_TICK_MAX; round++) {
      let moved = this.#deliver();
      for (const node of this.liveNodes()) if (node.alive) moved = this.#takeReady(node) || moved;
      if (!moved) break;
    }
  }

  /** Heals everything; returns true once all live members applied everything the leader committed. */
  converged(): boolean {
    const leader = this.leaderNode();
    if (!leader || leader.pending) return false;
    const status = leader.node().status();
    if (status.commit !== status.lastIndex || status.commit < this.checker.maxCommittedIndex) return false;
    const { voters, learners } = status.confState;
    for (const id of [...voters, ...learners]) {
      const node = this.nodes.get(id);
      if (!node?.alive || node.applied !== status.commit) return false;
    }
    return true;
  }

  heal(): void {
    this.network.heal();
    this.network.reliable = true;
    for (const node of this.nodes.values()) {
      if (!node.alive && !node.removed) node.restartAt = this.now + 1;
    }
    this.trace('heal: network repaired, all nodes restarting');
  }

  run(): SimResult {
    const chaosTicks = this.options.chaosTicks ?? CHAOS_TICKS_DEFAULT;
    try {
      while (this.now < chaosTicks) this.step(true);
      this.heal();
      const healedAt = this.now;
      const convergenceTicksMax = Math.max(CONVERGENCE_TICKS_MIN, CONVERGENCE_ELECTION_TIMEOUTS * this.#raftConfig.electionTicks!);
      while (!this.converged()) {
        if (this.now - healedAt > convergenceTicksMax) {
          throw new Error(`liveness: no convergence ${convergenceTicksMax} ticks after healing`);
        }
        this.step(false);
      }
      this.workload.finish();
      const result = checkLinearizable(this.workload.history);
      if (!result.ok) {
        throw new SafetyViolation(`history of key ${result.key} is not linearizable: ${JSON.stringify(result.operations)}`);
      }
      this.stats.operations = this.workload.completed;
      return { seed: this.seed, ok: true, ticks: this.now, stats: this.stats };
    } catch (error) {
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.trace(`FAILED: ${message}`);
      if (error instanceof Error && !(error instanceof SafetyViolation) && error.stack) this.trace(error.stack);
      return { seed: this.seed, ok: false, error: message, ticks: this.now, stats: this.stats };
    }
  }
}

function handle(node: SimNode): LeaderHandle {
  const raw = node.node();
  return { id: node.id, incarnation: node.incarnation, propose: (d) => raw.propose(d), readIndex: (c) => raw.readIndex(c) };
}

function describeMessage(m: Message): string {
  const entries = m.entries.length > 0 ? ` entries ${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}` : '';
  const snapshot = m.snapshot ? ` snapshot@${m.snapshot.metadata.index}` : '';
  return `${m.type} ${m.from}->${m.to} term ${m.term} index ${m.index}/${m.logTerm} commit ${m.commit}` +
    `${m.reject ? ` reject hint ${m.rejectHint}` : ''}${entries}${snapshot}`;
}

/** Runs one seed: the whole run is a function of `seed` (and the options). */
export function runSeed(seed: number, options: SimOptions = {}): SimResult {
  return new Simulation(seed, options).run();
}
