/**
 * The nemesis of the real-process fault test: a schedule of faults derived
 * from a seed alone, and the code that inflicts one step on a TestCluster and
 * undoes it. Each step starts from a whole, healed cluster with an agreed
 * leader (waiting for one is also a liveness check), inflicts one fault —
 * kill -9 of the leader, of a follower or of every node at once, SIGSTOP of
 * the leader for longer than an election timeout or of a follower, isolating
 * the leader, cutting both links between two
 * nodes, cutting one link one way, delaying links, or isolating a follower
 * until it lags and killing the leader the moment it is back (so the laggard
 * may stand for election) — holds it, undoes it (restart, SIGCONT, heal) and
 * lets the cluster run quietly for a while.
 *
 * Targets are roles ("the leader", "the second follower"), resolved when the
 * step runs: the seed fixes the schedule, not which process is leader then.
 */
import { type CutMode } from "../helpers/fault-proxy.ts";
import { type TestCluster } from "../helpers/process-cluster.ts";
import { Random } from "../sim/random.ts";

/** One fault; `pick` chooses among the candidates of its kind (modulo their number) when the step runs. */
export type Fault =
  | { kind: "kill-leader"; downMs: number }
  | { kind: "kill-follower"; downMs: number; pick: number }
  | { kind: "kill-all"; downMs: number }
  | { kind: "pause-leader"; pausedMs: number }
  | { kind: "pause-follower"; pausedMs: number; pick: number }
  | { kind: "isolate-leader"; mode: CutMode; heldMs: number }
  | { kind: "partition-pair"; mode: CutMode; heldMs: number; withLeader: boolean; pick: number }
  | { kind: "one-way-cut"; mode: CutMode; heldMs: number; fromLeader: boolean; pick: number }
  | { kind: "delay-links"; links: number; delayMs: number; heldMs: number; pick: number }
  | { kind: "kill-leader-after-lag"; mode: CutMode; heldMs: number; downMs: number; pick: number };

/** A fault, then `quietMs` without one. */
export interface Step {
  fault: Fault;
  quietMs: number;
}

/** Timing the schedule adapts to. */
export interface ScheduleTiming {
  /** Longest randomized election timeout of the nodes (2 x election_timeout x tick_ms). */
  electionTimeoutMaxMs: number;
  /** Nominal length of the schedule: steps are added until their fault and quiet times sum to this. */
  runMs: number;
}

const DOWN_MS = [300, 2_500] as const;
const HELD_MS = [500, 2_500] as const;
const QUIET_MS = [200, 1_200] as const;
const LINK_DELAY_MS = [20, 250] as const;
/** A pause lasts this many longest election timeouts (so the others elect a new leader meanwhile). */
const PAUSE_ELECTION_TIMEOUTS = [1.5, 3] as const;

const between = (random: Random, [min, max]: readonly [number, number]) => Math.round(min + random.float() * (max - min));

function nextFault(random: Random, timing: ScheduleTiming): Fault {
  const mode = (): CutMode => (random.chance(0.5) ? "refuse" : "blackhole");
  const [pausesMin, pausesMax] = PAUSE_ELECTION_TIMEOUTS;
  const pauseMs = () => Math.round(timing.electionTimeoutMaxMs * (pausesMin + random.float() * (pausesMax - pausesMin)));
  const kind = random.pick([
    "kill-leader", "kill-follower", "kill-all", "pause-leader", "pause-follower",
    "isolate-leader", "partition-pair", "one-way-cut", "delay-links", "kill-leader-after-lag",
  ] as const);
  switch (kind) {
    case "kill-leader":
      return { kind, downMs: between(random, DOWN_MS) };
    case "kill-follower":
      return { kind, downMs: between(random, DOWN_MS), pick: random.int(0, 99) };
    case "kill-all":
      return { kind, downMs: between(random, DOWN_MS) };
    case "pause-leader":
      return { kind, pausedMs: pauseMs() };
    case "pause-follower":
      return { kind, pausedMs: pauseMs(), pick: random.int(0, 99) };
    case "isolate-leader":
      return { kind, mode: mode(), heldMs: between(random, HELD_MS) };
    case "partition-pair":
      return { kind, mode: mode(), heldMs: between(random, HELD_MS), withLeader: random.chance(0.7), pick: random.int(0, 99) };
    case "one-way-cut":
      return { kind, mode: mode(), heldMs: between(random, HELD_MS), fromLeader: random.chance(0.5), pick: random.int(0, 99) };
    case "delay-links":
      return { kind, links: random.int(1, 4), delayMs: between(random, LINK_DELAY_MS), heldMs: between(random, HELD_MS), pick: random.int(0, 99) };
    case "kill-leader-after-lag":
      return { kind, mode: mode(), heldMs: between(random, HELD_MS), downMs: between(random, DOWN_MS), pick: random.int(0, 99) };
  }
}

function faultMs(fault: Fault): number {
  if (fault.kind === "kill-leader" || fault.kind === "kill-follower" || fault.kind === "kill-all") return fault.downMs;
  if (fault.kind === "pause-leader" || fault.kind === "pause-follower") return fault.pausedMs;
  if (fault.kind === "kill-leader-after-lag") return fault.heldMs + fault.downMs;
  return fault.heldMs;
}

/** The schedule of `seed`: the same steps for the same seed and timing. */
export function faultSchedule(seed: number, timing: ScheduleTiming): Step[] {
  const random = new Random(seed);
  const steps: Step[] = [];
  for (let totalMs = 0; totalMs < timing.runMs;) {
    const step = { fault: nextFault(random, timing), quietMs: between(random, QUIET_MS) };
    steps.push(step);
    totalMs += faultMs(step.fault) + step.quietMs;
  }
  return steps;
}

/** One line per step, for the test's output. */
export function describeStep(step: Step): string {
  const { kind, ...parameters } = step.fault;
  return `${kind} ${JSON.stringify(parameters)} quiet ${step.quietMs} ms`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Inflict `step` on `cluster`, hold it, undo it, then stay quiet; `log` records what happened to whom. */
export async function runStep(cluster: TestCluster, step: Step, options: { leaderDeadlineMs: number; log: (line: string) => void }): Promise<void> {
  const proxy = cluster.proxy;
  if (proxy === undefined) throw new Error("the nemesis needs a cluster behind the fault proxy");
  const leader = await cluster.waitForLeader({ deadlineMs: options.leaderDeadlineMs });
  const others = cluster.ids.filter((id) => id !== leader);
  const fault = step.fault;
  const hold = async (what: string, ms: number) => {
    options.log(`${what} (leader was ${leader}) for ${ms} ms`);
    await sleep(ms);
  };
  switch (fault.kind) {
    case "kill-leader":
    case "kill-follower": {
      const victim = fault.kind === "kill-leader" ? leader : others[fault.pick % others.length]!;
      await cluster.kill9(victim);
      await hold(`kill -9 node ${victim}`, fault.downMs);
      await cluster.restart(victim);
      options.log(`restarted node ${victim}`);
      break;
    }
    case "kill-all":
      await Promise.all(cluster.ids.map((id) => cluster.kill9(id)));
      await hold("kill -9 every node", fault.downMs);
      await Promise.all(cluster.ids.map((id) => cluster.restart(id)));
      options.log("restarted every node");
      break;
    case "pause-leader":
    case "pause-follower": {
      const paused = fault.kind === "pause-leader" ? leader : others[fault.pick % others.length]!;
      cluster.sigstop(paused);
      await hold(`SIGSTOP node ${paused}`, fault.pausedMs);
      cluster.sigcont(paused);
      options.log(`SIGCONT node ${paused}`);
      break;
    }
    case "isolate-leader":
      proxy.isolate(leader, fault.mode);
      await hold(`isolate node ${leader} (${fault.mode})`, fault.heldMs);
      break;
    case "partition-pair": {
      const pairs = fault.withLeader ? others.map((id) => [leader, id] as const) : [[others[0]!, others[1]!] as const];
      const [a, b] = pairs[fault.pick % pairs.length]!;
      proxy.partition(a, b, fault.mode);
      await hold(`cut both links between nodes ${a} and ${b} (${fault.mode})`, fault.heldMs);
      break;
    }
    case "one-way-cut": {
      const other = others[fault.pick % others.length]!;
      const [from, to] = fault.fromLeader ? [leader, other] : [other, leader];
      proxy.cut(from, to, fault.mode);
      await hold(`cut link ${from} -> ${to} one way (${fault.mode})`, fault.heldMs);
      break;
    }
    case "delay-links": {
      const links = cluster.ids.flatMap((from) => cluster.ids.filter((to) => to !== from).map((to) => [from, to] as const));
      const chosen = new Random(fault.pick).shuffle(links).slice(0, fault.links);
      for (const [from, to] of chosen) proxy.delay(from, to, fault.delayMs);
      await hold(`delay ${chosen.map(([from, to]) => `${from}->${to}`).join(", ")} by ${fault.delayMs} ms`, fault.heldMs);
      proxy.clearDelays();
      break;
    }
    case "kill-leader-after-lag": {
      const laggard = others[fault.pick % others.length]!;
      proxy.isolate(laggard, fault.mode);
      await hold(`isolate follower ${laggard} (${fault.mode}) so it falls behind`, fault.heldMs);
      proxy.heal();
      await cluster.kill9(leader);
      await hold(`heal node ${laggard} and kill -9 node ${leader}`, fault.downMs);
      await cluster.restart(leader);
      options.log(`restarted node ${leader}`);
      break;
    }
  }
  proxy.heal();
  options.log(`healed; quiet for ${step.quietMs} ms`);
  await sleep(step.quietMs);
}
