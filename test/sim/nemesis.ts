/**
 * The fault injector: per tick, with per-seed rates, it partitions the
 * network (symmetric split, asymmetric one-way cuts, isolating the leader),
 * heals it, crashes nodes (sometimes tearing their last write), restarts
 * them later, changes membership, compacts logs and transfers leadership.
 */
import { ProposalDroppedError, MemoryRaftStorage } from '../../src/raft/index.ts';
import type { Simulation } from './simulation.ts';

/** Per-tick probabilities of each fault; chosen per seed. */
export interface NemesisRates {
  partition: number;
  crash: number;
  tornWrite: number;
  confChange: number;
  compaction: number;
  transfer: number;
}

/** Most nodes ever created in one run (founders plus joiners). */
const NODES_MAX = 10;
const VOTERS_MIN = 3;
const DOWNTIME_TICKS_MAX = 80;

export function chaosStep(sim: Simulation): void {
  const { random, rates } = sim;
  if (random.chance(rates.partition)) partition(sim);
  if (random.chance(rates.crash)) crashOne(sim);
  if (random.chance(rates.confChange)) changeMembership(sim);
  if (random.chance(rates.compaction)) compactOne(sim);
  if (random.chance(rates.transfer)) transfer(sim);
}

function partition(sim: Simulation): void {
  const { random, network } = sim;
  const ids = [...sim.nodes.keys()];
  const kind = random.pick(['heal', 'heal', 'symmetric', 'asymmetric', 'isolateLeader'] as const);
  network.heal();
  if (kind === 'symmetric') {
    const side = new Set(random.shuffle([...ids]).slice(0, random.int(1, Math.floor(ids.length / 2))));
    for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) network.cutLink(a, b);
  } else if (kind === 'asymmetric') {
    for (let i = random.int(1, ids.length); i > 0; i--) network.cutLink(random.pick(ids), random.pick(ids));
  } else if (kind === 'isolateLeader') {
    const leader = sim.leaderNode();
    if (leader) for (const b of ids) if (b !== leader.id) {
      network.cutLink(leader.id, b);
      network.cutLink(b, leader.id);
    }
  }
  sim.trace(`partition ${kind}: cut ${network.cutDescription() || 'none'}`);
}

function crashOne(sim: Simulation): void {
  const live = sim.liveNodes();
  if (live.length <= 1) return;
  const node = sim.random.pick(live);
  const torn = sim.random.chance(sim.rates.tornWrite);
  sim.trace(`node ${node.id} crashes${torn && node.pending ? ' mid-write' : ''}`);
  sim.crash(node, torn);
  node.restartAt = sim.now + sim.random.int(1, DOWNTIME_TICKS_MAX);
}

function changeMembership(sim: Simulation): void {
  const leaderNode = sim.leaderNode();
  if (!leaderNode) return;
  const raw = leaderNode.node();
  const { voters, learners } = raw.confState();
  const choice = sim.random.pick(['add', 'promote', 'remove'] as const);
  const progress = raw.status().progress;
  const caughtUp = learners.filter((id) => (progress.get(id)?.match ?? 0) + 5 >= raw.status().commit);
  let change: { type: 'addLearner' | 'addVoter' | 'removeNode'; nodeId: number } | undefined;
  if (choice === 'add' && sim.nodes.size < NODES_MAX) change = { type: 'addLearner', nodeId: sim.nextNodeId };
  else if (choice === 'promote' && caughtUp.length > 0) change = { type: 'addVoter', nodeId: sim.random.pick(caughtUp) };
  else if (choice === 'remove') {
    const removable = [...learners, ...(voters.length > VOTERS_MIN ? voters : [])];
    if (removable.length > 0) change = { type: 'removeNode', nodeId: sim.random.pick(removable) };
  }
  if (!change) return;
  try {
    raw.proposeConfChange(change);
  } catch (error) {
    if (error instanceof ProposalDroppedError) return;
    throw error;
  }
  sim.stats.confChanges!++;
  sim.trace(`leader ${leaderNode.id} proposes ${change.type} ${change.nodeId}`);
  if (change.type === 'addLearner') {
    // A joiner starts empty; the leader's snapshot gives it the founding membership.
    sim.addNode(sim.nextNodeId++, new MemoryRaftStorage());
  }
}

function compactOne(sim: Simulation): void {
  const live = sim.liveNodes();
  if (live.length === 0) return;
  const node = sim.random.pick(live);
  const keep = sim.random.int(0, 5);
  if (node.compact(keep)) {
    sim.stats.compactions!++;
    sim.trace(`node ${node.id} snapshots at ${node.applied}, keeps ${keep} entries`);
  }
}

function transfer(sim: Simulation): void {
  const leaderNode = sim.leaderNode();
  if (!leaderNode) return;
  const raw = leaderNode.node();
  const targets = raw.confState().voters.filter((id) => id !== leaderNode.id);
  if (targets.length === 0) return;
  const target = sim.random.pick(targets);
  raw.transferLeader(target);
  sim.trace(`leader ${leaderNode.id} transfers to ${target}`);
}
