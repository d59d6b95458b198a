/**
 * A seeded nemesis against a real 3-process cluster behind the fault proxy:
 * concurrent clients (writers to the leader and to followers, linearizable
 * and stale readers) run over a few keys while the schedule kills the leader
 * and followers with kill -9 and restarts them, pauses the leader with
 * SIGSTOP for longer than an election timeout, isolates it, partitions pairs
 * of nodes, cuts links one way and delays links. Then everything heals and,
 * once the nodes converge, fault-checks.ts checks that the history is
 * linearizable, every acknowledged write is on every node with its seq and
 * value, logs and checkpoints are identical, and no node crashed or logged an
 * assertion.
 *
 * The seed (FAULTS_SEED, default 1) fixes the schedule of faults, their
 * durations and the clients' choices of keys and nodes. It cannot fix the
 * timing of real processes, so a replay repeats the same faults in the same
 * order but not the same interleaving; a failure may need a few runs to
 * reproduce. On failure the seed and a replay command are printed and the
 * temp directory (configs, data, node logs, history.json) is kept.
 * FAULTS_RUN_MS (default 30000) lengthens the schedule for longer hunts.
 */
import { expect, test } from "bun:test";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TestCluster } from "../helpers/process-cluster.ts";
import { until } from "../helpers/poll.ts";
import { describeStep, faultSchedule, runStep } from "./fault-schedule.ts";
import { Workload, type ClientRole, type OperationRecord } from "./fault-workload.ts";
import {
  checkAcknowledgedReadable, checkCheckpoints, checkHistoryAgainstLog, checkHistoryLinearizable, checkLogsIdentical,
  readLog, registerHistory, suspiciousOutput, Violations, type LogEntryJson,
} from "./fault-checks.ts";

const SEED_DEFAULT = 1;
const RUN_MS_DEFAULT = 30_000;
const SEED = Number(process.env.FAULTS_SEED ?? SEED_DEFAULT);
const RUN_MS = Number(process.env.FAULTS_RUN_MS ?? RUN_MS_DEFAULT);
const CONSENSUS = { tick_ms: 50, election_timeout: 10, heartbeat_timeout: 2 };
/** The core randomizes the election timeout in [n, 2n) ticks. */
const ELECTION_TIMEOUT_MAX_MS = 2 * CONSENSUS.election_timeout * CONSENSUS.tick_ms;
const KEYS = ["k0", "k1", "k2", "k3", "k4"];
const ROLES: readonly ClientRole[] = ["write-leader", "write-leader", "write-follower", "write-follower", "read", "read", "read", "stale-read"];
/** How long a whole, healed cluster may take to agree on a leader (a liveness bound, not a tuning knob). */
const LEADER_DEADLINE_MS = 15_000;
/** How long the healed cluster may take to apply everything on every node. */
const CONVERGENCE_DEADLINE_MS = 20_000;
const CLIENT_REQUEST_TIMEOUT_MS = 3_000;
const TEST_TIMEOUT_MS = RUN_MS + 90_000;
const BARRIER_KEY = "barrier";

const replayCommand = `FAULTS_SEED=${SEED}${RUN_MS === RUN_MS_DEFAULT ? "" : ` FAULTS_RUN_MS=${RUN_MS}`} node_modules/.bin/bun test test/e2e/cluster-faults.test.ts`;

/** A PUT acknowledged through any responsive node (same Idempotency-Key on every retry); its tree size after. */
function barrierWrite(cluster: TestCluster): Promise<number> {
  let attempt = 0;
  return until("the barrier write to be acknowledged", async () => {
    const responsive = cluster.responsive();
    const id = responsive[attempt++ % responsive.length]!;
    const response = await fetch(cluster.url(id, `/v1/kv/${BARRIER_KEY}`), {
      method: "PUT", body: "after the faults", headers: { "Idempotency-Key": BARRIER_KEY }, signal: AbortSignal.timeout(CLIENT_REQUEST_TIMEOUT_MS),
    });
    const body = await response.json();
    return response.ok ? Number(body.treeSize) : undefined;
  }, CONVERGENCE_DEADLINE_MS);
}

const noteSize = (note: string) => Number(note.split("\n")[1]);

/**
 * Poll until every node serves the same latest checkpoint of at least `treeSize` entries. Returns whether
 * they did and the last checkpoints seen, one per node (nodes that never answered are left out).
 */
async function convergence(cluster: TestCluster, treeSize: number): Promise<{ converged: boolean; notes: Map<number, string> }> {
  const notes = new Map<number, string>();
  const converged = await until(`every node to serve one checkpoint of at least ${treeSize} entries`, async () => {
    await Promise.all(cluster.ids.map(async (id) => notes.set(id, await (await fetch(cluster.url(id, "/v1/checkpoint?consistency=stale"))).text())));
    const distinct = new Set(notes.values());
    return notes.size === cluster.ids.length && distinct.size === 1 && noteSize([...distinct][0]!) >= treeSize ? true : undefined;
  }, CONVERGENCE_DEADLINE_MS).catch(() => false);
  return { converged, notes };
}

/** Undo every fault: heal the network, resume paused nodes, restart killed ones. */
async function healAll(cluster: TestCluster): Promise<void> {
  cluster.proxy!.heal();
  cluster.proxy!.clearDelays();
  for (const id of cluster.ids) {
    if (cluster.isPaused(id)) cluster.sigcont(id);
    if (!cluster.running().includes(id)) await cluster.restart(id);
  }
}

function summary(history: readonly OperationRecord[]): string {
  const counts = new Map<string, number>();
  for (const op of history) counts.set(`${op.kind} ${op.outcome}`, (counts.get(`${op.kind} ${op.outcome}`) ?? 0) + 1);
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([what, n]) => `${what} ${n}`).join(", ");
}

/** After the faults: converge, then run every check. */
async function checkAfterHealing(cluster: TestCluster, history: readonly OperationRecord[]): Promise<Violations> {
  await cluster.waitForLeader({ deadlineMs: LEADER_DEADLINE_MS });
  const barrierSize = await barrierWrite(cluster);
  const violations = new Violations();
  const { converged, notes } = await convergence(cluster, barrierSize);
  if (notes.size < cluster.ids.length) throw new Error(`after healing, only nodes ${[...notes.keys()].join(", ")} serve a checkpoint`);
  if (!converged) {
    const seen = cluster.ids.map((id) => `node ${id}: ${JSON.stringify(notes.get(id)!.split("\n").slice(1, 3))}`);
    violations.add("convergence", `nodes did not serve one checkpoint of at least ${barrierSize} entries within ${CONVERGENCE_DEADLINE_MS} ms; ${seen.join("; ")}`);
  }
  // Without convergence, compare what every node has: the shortest log.
  const treeSize = Math.min(...[...notes.values()].map(noteSize));
  const logs = new Map<number, LogEntryJson[]>();
  for (const id of cluster.ids) logs.set(id, await readLog(cluster, id, treeSize));
  const log = logs.get(cluster.ids[0]!)!;
  checkLogsIdentical(logs, violations);
  checkHistoryAgainstLog(history, log, KEYS, violations);
  const operations = registerHistory(history, log);
  checkHistoryLinearizable(operations, violations);
  const readBack = await checkAcknowledgedReadable(cluster, history, violations);
  await checkCheckpoints(cluster, log, [...new Set([1, Math.ceil(treeSize / 2), treeSize])], violations);
  for (const { id, code } of cluster.unexpectedExits()) violations.add("crash", `node ${id} exited with ${code} without being killed`);
  for (const id of cluster.ids) for (const line of suspiciousOutput(cluster.output(id))) violations.add("node output", `node ${id}: ${line}`);
  console.log(`cluster-faults: log of ${treeSize} entries compared on ${cluster.ids.length} nodes; ${operations.length} operations checked for linearizability; ${readBack} acknowledged writes read back`);
  return violations;
}

test(`seeded nemesis on 3 real processes behind the fault proxy (FAULTS_SEED=${SEED})`, async () => {
  if (!Number.isSafeInteger(SEED) || !Number.isSafeInteger(RUN_MS) || RUN_MS <= 0) throw new Error("FAULTS_SEED and FAULTS_RUN_MS must be integers (FAULTS_RUN_MS > 0)");
  const schedule = faultSchedule(SEED, { electionTimeoutMaxMs: ELECTION_TIMEOUT_MAX_MS, runMs: RUN_MS });
  console.log(`cluster-faults: seed ${SEED}, ${schedule.length} fault steps; replay: ${replayCommand}`);
  const cluster = await TestCluster.start({ proxy: true, consensus: CONSENSUS });
  const workload = new Workload(cluster, {
    roles: ROLES, keys: KEYS, seed: SEED, requestTimeoutMs: CLIENT_REQUEST_TIMEOUT_MS, writeAttemptsMax: 3, thinkMsMax: 20,
  });
  const events: string[] = [];
  const log = (line: string) => events.push(`${workload.now().toFixed(0).padStart(6)} ms  ${line}`);
  let passed = false;
  try {
    await cluster.waitForLeader({ deadlineMs: LEADER_DEADLINE_MS });
    workload.start();
    for (const step of schedule) {
      log(describeStep(step));
      await runStep(cluster, step, { leaderDeadlineMs: LEADER_DEADLINE_MS, log });
    }
    log("schedule done: healing everything");
    await healAll(cluster);
    await workload.stop();
    console.log(`cluster-faults: ${schedule.length} faults in ${(workload.now() / 1000).toFixed(1)} s; ${summary(workload.history)}`);
    const violations = await checkAfterHealing(cluster, workload.history);
    expect(violations.lines()).toEqual([]);
    expect(workload.history.some((op) => op.kind === "write" && op.outcome === "ok")).toBe(true);
    passed = true;
  } finally {
    await workload.stop();
    if (!passed) {
      await writeFile(join(cluster.dir, "history.json"), JSON.stringify(workload.history, null, 1));
      for (const id of cluster.ids) await writeFile(join(cluster.dir, `node${id}.log`), cluster.output(id));
      console.error(`cluster-faults FAILED with seed ${SEED}; replay: ${replayCommand}\nkept ${cluster.dir}\nevents:\n${events.join("\n")}`);
    }
    await cluster.close({ keepDir: !passed });
  }
}, TEST_TIMEOUT_MS);
