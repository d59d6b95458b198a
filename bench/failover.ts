/**
 * Leader failover of a 3-node cluster of real processes with the default
 * Raft timeouts (tick 100 ms, election timeout 10 ticks randomized to
 * [1 s, 2 s), heartbeat 3 ticks), peers connected directly. Writers keep
 * PUTting to the live nodes; each round kill -9s the leader at a random
 * moment and measures, from the kill, the time until a surviving node
 * reports a new leader and until the first write SENT after the kill is
 * acknowledged by a surviving node; then the old leader is restarted and
 * allowed to catch up. Prints every round and min/median/max; never fails on
 * speed.
 *
 * Flags: USAGE below (`--help` prints it).
 */
import { TestCluster } from "../test/helpers/process-cluster.ts";
import { until } from "../test/helpers/poll.ts";
import { benchFlags, wholeNumberFlag } from "./stats.ts";

const USAGE = "bun run bench/failover.ts [--rounds 5] [--writers 4] [--storage sqlite]";
const values = benchFlags(USAGE, { rounds: { type: "string" }, writers: { type: "string" }, storage: { type: "string" } });
const ROUNDS = wholeNumberFlag("rounds", values.rounds, 5);
const WRITERS = wholeNumberFlag("writers", values.writers, 4);
const STORAGE = values.storage ?? "sqlite";
/** How long a round may take to elect, and the restarted node to catch up, before the bench gives up. */
const ROUND_DEADLINE_MS = 30_000;
/** One client request's timeout; a timed-out write is retried elsewhere like any failed one. */
const REQUEST_TIMEOUT_MS = 5_000;
/** Pause between a writer's failed attempt and its next one. */
const RETRY_PAUSE_MS = 10;
/** The kill comes this long (uniformly at random) after the cluster is steady, so it hits any heartbeat phase. */
const KILL_JITTER_MS = 1_000;
const LEADER_POLL_MS = 10;

interface Round {
  victim: number;
  newLeader: number;
  leaderMs: number;
  writeMs: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Writers PUTting unique keys to random live nodes; remembers when each acknowledged write was sent. */
class Writers {
  /** [sentMs, acknowledgedMs] of every acknowledged write, on performance.now(). */
  readonly acknowledged: Array<[number, number]> = [];
  #running = true;
  readonly #loops: Array<Promise<void>>;

  constructor(cluster: TestCluster) {
    let counter = 0;
    this.#loops = Array.from({ length: WRITERS }, async () => {
      while (this.#running) {
        const live = cluster.running();
        const id = live[Math.floor(Math.random() * live.length)]!;
        const sentMs = performance.now();
        const ok = await fetch(cluster.url(id, `/v1/kv/failover-${counter++}`), { method: "PUT", body: "v", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
          .then(async (response) => (await response.arrayBuffer(), response.ok), () => false);
        if (ok) this.acknowledged.push([sentMs, performance.now()]);
        else await sleep(RETRY_PAUSE_MS);
      }
    });
  }

  /** Resolves with the acknowledgement time of the first write sent at or after `sinceMs`. */
  firstSentAfter(sinceMs: number): Promise<number> {
    return until("a write sent after the kill to be acknowledged", () => {
      const first = this.acknowledged.filter(([sent]) => sent >= sinceMs).map(([, acked]) => acked);
      return first.length > 0 ? Math.min(...first) : undefined;
    }, ROUND_DEADLINE_MS, LEADER_POLL_MS);
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

async function round(cluster: TestCluster, writers: Writers): Promise<Round> {
  const victim = await cluster.waitForLeader({ deadlineMs: ROUND_DEADLINE_MS });
  await sleep(Math.random() * KILL_JITTER_MS);
  const killedMs = performance.now();
  await cluster.kill9(victim);
  const survivors = cluster.ids.filter((id) => id !== victim);
  const [newLeader, leaderMs] = await until("a survivor to report a new leader", async () => {
    for (const id of survivors) {
      const leader = (await cluster.status(id).catch(() => undefined))?.leaderId;
      if (leader !== undefined && leader !== null && Number(leader) !== victim) return [Number(leader), performance.now() - killedMs] as const;
    }
    return undefined;
  }, ROUND_DEADLINE_MS, LEADER_POLL_MS);
  const writeMs = (await writers.firstSentAfter(killedMs)) - killedMs;
  await cluster.restart(victim);
  const target = (await cluster.status(newLeader)).treeSize;
  await until("the restarted node to catch up", async () => ((await cluster.status(victim)).treeSize >= target ? true : undefined), ROUND_DEADLINE_MS);
  return { victim, newLeader, leaderMs, writeMs };
}

function stats(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted.length % 2 === 1 ? sorted[sorted.length >> 1]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return `${sorted[0]!.toFixed(0)} / ${median.toFixed(0)} / ${sorted.at(-1)!.toFixed(0)}`;
}

const cluster = await TestCluster.start({ storage: STORAGE });
try {
  await cluster.waitForLeader({ deadlineMs: ROUND_DEADLINE_MS });
  const writers = new Writers(cluster);
  const rounds: Round[] = [];
  const runtime = process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}`;
  console.log(`runtime: ${runtime}; 3 nodes, storage ${STORAGE}, default timeouts (tick 100 ms, election 10 ticks, heartbeat 3); ${WRITERS} writers; ${ROUNDS} kill -9s of the leader`);
  console.log("| round | killed leader | new leader | new leader reported (ms) | first write sent after the kill acknowledged (ms) |");
  console.log("|---:|---:|---:|---:|---:|");
  for (let i = 1; i <= ROUNDS; i++) {
    const result = await round(cluster, writers);
    rounds.push(result);
    console.log(`| ${i} | ${result.victim} | ${result.newLeader} | ${result.leaderMs.toFixed(0)} | ${result.writeMs.toFixed(0)} |`);
  }
  await writers.stop();
  console.log(`new leader reported, min / median / max: ${stats(rounds.map((r) => r.leaderMs))} ms`);
  console.log(`first write acknowledged, min / median / max: ${stats(rounds.map((r) => r.writeMs))} ms`);
} finally {
  await cluster.close();
}
