/**
 * Benchmark of a 3-node Scribe cluster (three real processes on loopback,
 * temp data dirs, one signing key and cluster secret): durable PUTs of unique
 * keys with 100-byte values, sent round-robin to every node and then to the
 * leader only, and linearizable GETs. With `--with-etcd` (installs the Debian
 * `etcd-server` package if `etcd` is missing) a 3-node etcd cluster is driven
 * the same way through its JSON gateway and the ratio is printed. Prints a
 * table; never fails on speed. An installed etcd is compared unless `--without-etcd`.
 * On Linux it also prints the CPU time the three server processes spent per
 * request (user + system, from /proc; the load generator excluded), which is
 * less sensitive than req/s to other work on the machine. `--profile DIR`
 * runs the Scribe nodes under `bun --cpu-prof-md` and writes one Markdown CPU
 * profile per node into DIR (the nodes are stopped with SIGTERM so they write it).
 *
 * Each load runs `--warmup` seconds (default 5, not counted) before it is measured.
 * `--rounds N` repeats the whole comparison N times and prints medians.
 *
 * `--runtime deno|node` runs the Scribe nodes on Deno (Deno KV) or Node (fs log, built first) instead of Bun (SQLite).
 *
 * Flags: USAGE below (`--help` prints it).
 */
import autocannon from "autocannon";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { TestCluster } from "../test/helpers/process-cluster.ts";
import { until } from "../test/helpers/poll.ts";
import { DENO_SERVE_COMMAND, freePort } from "../test/helpers/process.ts";
import { benchFlags, median, wholeNumberFlag } from "./stats.ts";

const USAGE = "bun run bench/cluster.ts [--runtime bun|deno|node] [--rounds 1] [--seconds 10] [--warmup 5] [--connections 64] [--storage sqlite] [--with-etcd | --without-etcd] [--profile DIR]";
const values = benchFlags(USAGE, {
  seconds: { type: "string" }, warmup: { type: "string" }, connections: { type: "string" }, storage: { type: "string" }, runtime: { type: "string" }, rounds: { type: "string" },
  "with-etcd": { type: "boolean" }, "without-etcd": { type: "boolean" }, profile: { type: "string" },
});
const SECONDS = wholeNumberFlag("seconds", values.seconds, 10);
/**
 * Seconds of the same load run before each measured write load and not
 * counted: Bun's JIT compiles the hot paths during the first seconds (its
 * compiler threads took about a third of a cold node's CPU), and etcd gets
 * the same warm-up.
 */
const WARMUP_SECONDS = wholeNumberFlag("warmup", values.warmup, 5, 0);
const WARMUP_NUMBERS_FROM = 1_000_000_000;
/**
 * Rounds of (Scribe, then etcd), each with fresh clusters; with more than
 * one, a summary of medians closes the output. The machine's speed drifts
 * by tens of percent over minutes, so ratios taken within a round and then
 * their median say more than one pair of runs.
 */
const ROUNDS = wholeNumberFlag("rounds", values.rounds, 1);
const CONNECTIONS = wholeNumberFlag("connections", values.connections, 64);
/** The runtime the Scribe nodes run on, each with its default storage (load generator and etcd are unchanged). */
const RUNTIMES = {
  bun: { storage: "sqlite", command: undefined },
  deno: { storage: "denokv", command: DENO_SERVE_COMMAND },
  node: { storage: "fs", command: ["node", "dist/node/main.js"] },
} as const;
const RUNTIME = (values.runtime ?? "bun") as keyof typeof RUNTIMES;
if (!(RUNTIME in RUNTIMES)) throw new Error(`--runtime must be one of ${Object.keys(RUNTIMES).join(", ")}`);
const STORAGE = values.storage ?? RUNTIMES[RUNTIME].storage;
const VALUE = "v".repeat(100);
/** How long the cluster (or etcd) may take to elect a leader. */
const LEADER_WAIT_MS = 20_000;

interface Figures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  /** CPU time of the server processes per request, undefined where /proc is missing. */
  cpuUsPerRequest: number | undefined;
  /** Scribe only: replication counters (/metrics raft section) summed over the nodes, per request. */
  workPerRequest?: Record<string, number>;
}

/** The /metrics replication counters compared per request (see ReplicationCounters in src/node). */
const WORK_COUNTERS = ["readies", "storage_commits", "storage_syncs", "peer_requests", "peer_messages", "entries_appended"] as const;

/** Replication counters summed over the nodes at `urls`. */
async function workTotals(urls: readonly string[]): Promise<Record<string, number>> {
  const totals: Record<string, number> = Object.fromEntries(WORK_COUNTERS.map((name) => [name, 0]));
  for (const url of urls) {
    const raft = ((await (await fetch(`${url}/metrics`)).json()) as { raft: Record<string, number> }).raft;
    for (const name of WORK_COUNTERS) totals[name]! += raft[name] ?? 0;
  }
  return totals;
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on every Linux build that matters). */
const USER_HZ = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** User + system CPU time of `pids` (all their threads) in microseconds; undefined without /proc. */
async function cpuUs(pids: readonly number[]): Promise<number | undefined> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
    if (stat === undefined) return undefined;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1_000_000) / USER_HZ;
}

interface LoadRequest {
  method: "GET" | "PUT" | "POST";
  path: (n: number) => string;
  body?: (n: number) => string;
  headers?: Record<string, string>;
}

async function load(urls: string[], request: LoadRequest, pids: readonly number[], workUrls?: readonly string[]): Promise<Figures> {
  let counter = 0;
  if (WARMUP_SECONDS > 0) {
    await autocannon({
      url: urls as unknown as string, connections: CONNECTIONS, duration: WARMUP_SECONDS,
      requests: [{ method: request.method, headers: request.headers, setupRequest: (req) => {
        // Numbers far above any measured one: warm-up writes never touch a key the measured load writes.
        const n = WARMUP_NUMBERS_FROM + counter++;
        return { ...req, path: request.path(n), body: request.body?.(n) };
      } }],
    });
    counter = 0;
  }
  const workBefore = workUrls === undefined ? undefined : await workTotals(workUrls);
  const cpuBefore = await cpuUs(pids);
  const result = await autocannon({
    // autocannon spreads connections over several URLs round-robin; its types only declare one.
    url: urls as unknown as string,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [{
      method: request.method,
      headers: request.headers,
      setupRequest: (req) => {
        const n = counter++;
        return { ...req, path: request.path(n), body: request.body?.(n) };
      },
    }],
  });
  const cpuAfter = await cpuUs(pids);
  const workAfter = workUrls === undefined ? undefined : await workTotals(workUrls);
  const requests = Math.max(1, result.requests.total);
  const workPerRequest = workBefore === undefined || workAfter === undefined ? undefined
    : Object.fromEntries(WORK_COUNTERS.map((name) => [name, (workAfter[name]! - workBefore[name]!) / requests]));
  return {
    workPerRequest,
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors,
    cpuUsPerRequest: cpuBefore === undefined || cpuAfter === undefined ? undefined : Math.round((cpuAfter - cpuBefore) / Math.max(1, result.requests.total)),
  };
}

const row = (name: string, figures: Figures, versus?: Figures) =>
  `| ${name} | ${figures.requestsPerSecond.toLocaleString("en-US")} | ${figures.p50Ms} | ${figures.p99Ms} | ${versus ? `${(figures.requestsPerSecond / Math.max(1, versus.requestsPerSecond)).toFixed(2)}x` : ""} | ${figures.cpuUsPerRequest ?? ""} | ${figures.non2xx} |`;

// ---- Scribe ----

async function benchScribe(): Promise<Record<string, Figures>> {
  const profileDir = values.profile === undefined ? undefined : resolve(values.profile);
  const runtimeArgs = profileDir === undefined ? [] : ["--cpu-prof-md", `--cpu-prof-dir=${profileDir}`];
  if (profileDir !== undefined && RUNTIME !== "bun") throw new Error("--profile needs --runtime bun");
  if (RUNTIME === "node") spawnSync("npm", ["run", "-s", "build:node"], { stdio: "inherit" });
  const command = RUNTIMES[RUNTIME].command;
  const cluster = await TestCluster.start({ storage: STORAGE, runtimeArgs, command: command === undefined ? undefined : [...command] });
  try {
    const leaderId = await cluster.waitForLeader({ deadlineMs: LEADER_WAIT_MS });
    const urls = cluster.ids.map((id) => cluster.url(id, ""));
    const pids = cluster.ids.map((id) => cluster.pid(id)!);
    const put = (prefix: string): LoadRequest => ({ method: "PUT", path: (n) => `/v1/kv/${prefix}-${n}`, body: () => VALUE });
    const writesAll = await load(urls, put("all"), pids, urls);
    const writesLeader = await load([cluster.url(leaderId, "")], put("lead"), pids, urls);
    const written = Math.max(1, writesLeader.requestsPerSecond * SECONDS);
    const readsAll = await load(urls, { method: "GET", path: (n) => `/v1/kv/lead-${(n * 7919) % written}` }, pids);
    return { writesAll, writesLeader, readsAll };
  } finally {
    if (profileDir !== undefined) await Promise.all(cluster.running().map((id) => cluster.terminate(id)));
    await cluster.close();
  }
}

// ---- etcd ----

function etcdBinary(): string | undefined {
  if (values["without-etcd"]) return undefined;
  const found = spawnSync("sh", ["-c", "command -v etcd"], { encoding: "utf8" }).stdout.trim();
  if (found !== "" || !values["with-etcd"]) return found === "" ? undefined : found;
  console.error("etcd not found; installing the Debian package etcd-server");
  spawnSync("apt-get", ["install", "-y", "etcd-server"], { stdio: "inherit" });
  const installed = spawnSync("sh", ["-c", "command -v etcd"], { encoding: "utf8" }).stdout.trim();
  return installed === "" ? undefined : installed;
}

const base64 = (text: string) => Buffer.from(text).toString("base64");

/** The client URL of the etcd member that leads (each member's status names the leader's member id). */
async function etcdLeaderUrl(urls: readonly string[]): Promise<string> {
  for (const url of urls) {
    const status = (await (await fetch(`${url}/v3/maintenance/status`, { method: "POST", body: "{}" })).json()) as { header: { member_id: string }; leader: string };
    if (status.header.member_id === status.leader) return url;
  }
  throw new Error("no etcd member reports itself as the leader");
}

async function benchEtcd(binary: string, dir: string): Promise<Record<string, Figures>> {
  const ports = await Promise.all(Array.from({ length: 6 }, freePort));
  const members = [1, 2, 3].map((id) => ({ name: `e${id}`, client: ports[id - 1]!, peer: ports[id + 2]! }));
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(",");
  const children: ChildProcess[] = members.map((m) => spawn(binary, [
    "--name", m.name, "--data-dir", join(dir, m.name),
    "--listen-client-urls", `http://127.0.0.1:${m.client}`, "--advertise-client-urls", `http://127.0.0.1:${m.client}`,
    "--listen-peer-urls", `http://127.0.0.1:${m.peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peer}`,
    "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--log-level", "error",
  ], { stdio: "ignore" }));
  try {
    const urls = members.map((m) => `http://127.0.0.1:${m.client}`);
    await until("an etcd leader", async () => {
      const response = await fetch(`${urls[0]}/v3/kv/put`, { method: "POST", body: JSON.stringify({ key: base64("ping"), value: base64("x") }) });
      return response.ok ? true : undefined;
    }, LEADER_WAIT_MS, 100);
    const json = { "Content-Type": "application/json" };
    const put = (prefix: string): LoadRequest => ({
      method: "POST", path: () => "/v3/kv/put", headers: json,
      body: (n) => JSON.stringify({ key: base64(`${prefix}-${n}`), value: base64(VALUE) }),
    });
    const pids = children.map((child) => child.pid!);
    const writesAll = await load(urls, put("all"), pids);
    const writesLeader = await load([await etcdLeaderUrl(urls)], put("lead"), pids);
    const written = Math.max(1, writesAll.requestsPerSecond * SECONDS);
    const readsAll = await load(urls, {
      method: "POST", path: () => "/v3/kv/range", headers: json,
      body: (n) => JSON.stringify({ key: base64(`all-${(n * 7919) % written}`) }),
    }, pids);
    return { writesAll, writesLeader, readsAll };
  } finally {
    for (const child of children) child.kill("SIGTERM");
  }
}

function printRound(scribe: Record<string, Figures>, etcd: Record<string, Figures> | undefined): void {
  console.log("| target | req/s | p50 ms | p99 ms | vs etcd | CPU µs/req | errors/non-2xx |");
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  console.log(row("scribe PUT, round-robin to all nodes", scribe.writesAll!, etcd?.writesAll));
  console.log(row("scribe PUT, leader only", scribe.writesLeader!, etcd?.writesLeader));
  console.log(row("scribe linearizable GET, all nodes", scribe.readsAll!, etcd?.readsAll));
  if (etcd !== undefined) {
    console.log(row("etcd put (JSON gateway), all nodes", etcd.writesAll!));
    console.log(row("etcd put (JSON gateway), leader only", etcd.writesLeader!));
    console.log(row("etcd linearizable range, all nodes", etcd.readsAll!));
  }
  console.log("\nScribe replication work per write, summed over the 3 nodes (from /metrics):");
  console.log(`| load | ${WORK_COUNTERS.join(" | ")} |`);
  console.log(`|---|${WORK_COUNTERS.map(() => "---:").join("|")}|`);
  for (const [name, figures] of [["PUT round-robin", scribe.writesAll!], ["PUT leader only", scribe.writesLeader!]] as const) {
    const work = figures.workPerRequest ?? {};
    console.log(`| ${name} | ${WORK_COUNTERS.map((counter) => (work[counter] ?? 0).toFixed(2)).join(" | ")} |`);
  }
}

/** Medians over the rounds; each ratio is taken within its round first. */
function printSummary(rounds: ReadonlyArray<{ scribe: Record<string, Figures>; etcd: Record<string, Figures> | undefined }>): void {
  const targets: Array<[string, (round: (typeof rounds)[number]) => Figures | undefined, (round: (typeof rounds)[number]) => Figures | undefined]> = [
    ["scribe PUT, round-robin to all nodes", (r) => r.scribe.writesAll, (r) => r.etcd?.writesAll],
    ["scribe PUT, leader only", (r) => r.scribe.writesLeader, (r) => r.etcd?.writesLeader],
    ["scribe linearizable GET, all nodes", (r) => r.scribe.readsAll, (r) => r.etcd?.readsAll],
    ["etcd put (JSON gateway), all nodes", (r) => r.etcd?.writesAll, () => undefined],
    ["etcd put (JSON gateway), leader only", (r) => r.etcd?.writesLeader, () => undefined],
    ["etcd linearizable range, all nodes", (r) => r.etcd?.readsAll, () => undefined],
  ];
  console.log(`\nMedians over ${rounds.length} rounds (ratios taken within each round):`);
  console.log("| target | req/s | p99 ms | vs etcd | CPU µs/req |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [name, figuresOf, versusOf] of targets) {
    const figures = rounds.map(figuresOf).filter((f): f is Figures => f !== undefined);
    if (figures.length === 0) continue;
    const ratios = rounds.flatMap((round) => {
      const [mine, theirs] = [figuresOf(round), versusOf(round)];
      return mine !== undefined && theirs !== undefined ? [mine.requestsPerSecond / Math.max(1, theirs.requestsPerSecond)] : [];
    });
    const cpu = figures.map((f) => f.cpuUsPerRequest).filter((c): c is number => c !== undefined);
    console.log(`| ${name} | ${Math.round(median(figures.map((f) => f.requestsPerSecond))).toLocaleString("en-US")} | ${median(figures.map((f) => f.p99Ms))} | ${ratios.length > 0 ? `${median(ratios).toFixed(2)}x` : ""} | ${cpu.length > 0 ? Math.round(median(cpu)) : ""} |`);
  }
}

const dir = await mkdtemp(join(tmpdir(), "scribe-bench-etcd-"));
try {
  const binary = etcdBinary();
  console.log(`Scribe nodes on ${RUNTIME}; 3 nodes; ${CONNECTIONS} connections; ${SECONDS} s each after ${WARMUP_SECONDS} s warm-up; 100-byte values; storage ${STORAGE}${binary !== undefined ? "" : "; etcd: not run (install it with --with-etcd)"}`);
  const rounds: Array<{ scribe: Record<string, Figures>; etcd: Record<string, Figures> | undefined }> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const scribe = await benchScribe();
    const etcd = binary === undefined ? undefined : await benchEtcd(binary, join(dir, `round-${round}`));
    if (ROUNDS > 1) console.log(`\nRound ${round} of ${ROUNDS} (${new Date().toISOString()}):`);
    printRound(scribe, etcd);
    rounds.push({ scribe, etcd });
  }
  if (ROUNDS > 1) printSummary(rounds);
} finally {
  await rm(dir, { recursive: true, force: true });
}
