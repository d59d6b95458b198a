/**
 * Benchmark of a 3-node Scribe cluster (three real processes on loopback,
 * temp data dirs, one signing key and cluster secret): durable PUTs of unique
 * keys with 100-byte values, sent round-robin to every node and then to the
 * leader only, and linearizable GETs. With `--with-etcd` (installs the Debian
 * `etcd-server` package if `etcd` is missing) a 3-node etcd cluster is driven
 * the same way through its JSON gateway and the ratio is printed. Prints a
 * table; never fails on speed. An installed etcd is compared unless `--without-etcd`.
 *
 *   bun run bench/cluster.ts [--seconds 10] [--connections 64] [--storage sqlite] [--with-etcd | --without-etcd]
 */
import autocannon from "autocannon";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { TestCluster } from "../test/helpers/process-cluster.ts";
import { until } from "../test/helpers/poll.ts";
import { freePort } from "../test/helpers/process.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    seconds: { type: "string" }, connections: { type: "string" }, storage: { type: "string" },
    "with-etcd": { type: "boolean" }, "without-etcd": { type: "boolean" },
  },
});
const SECONDS = Number(values.seconds ?? 10);
const CONNECTIONS = Number(values.connections ?? 64);
const STORAGE = values.storage ?? "sqlite";
const VALUE = "v".repeat(100);
/** How long the cluster (or etcd) may take to elect a leader. */
const LEADER_WAIT_MS = 20_000;

interface Figures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

interface LoadRequest {
  method: "GET" | "PUT" | "POST";
  path: (n: number) => string;
  body?: (n: number) => string;
  headers?: Record<string, string>;
}

async function load(urls: string[], request: LoadRequest): Promise<Figures> {
  let counter = 0;
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
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors,
  };
}

const row = (name: string, figures: Figures, versus?: Figures) =>
  `| ${name} | ${figures.requestsPerSecond.toLocaleString("en-US")} | ${figures.p50Ms} | ${figures.p99Ms} | ${versus ? `${(figures.requestsPerSecond / Math.max(1, versus.requestsPerSecond)).toFixed(2)}x` : ""} | ${figures.non2xx} |`;

// ---- Scribe ----

async function benchScribe(): Promise<Record<string, Figures>> {
  const cluster = await TestCluster.start({ storage: STORAGE });
  try {
    const leaderId = await cluster.waitForLeader({ deadlineMs: LEADER_WAIT_MS });
    const urls = cluster.ids.map((id) => cluster.url(id, ""));
    const put = (prefix: string): LoadRequest => ({ method: "PUT", path: (n) => `/v1/kv/${prefix}-${n}`, body: () => VALUE });
    const writesAll = await load(urls, put("all"));
    const writesLeader = await load([cluster.url(leaderId, "")], put("lead"));
    const written = Math.max(1, writesLeader.requestsPerSecond * SECONDS);
    const readsAll = await load(urls, { method: "GET", path: (n) => `/v1/kv/lead-${(n * 7919) % written}` });
    return { writesAll, writesLeader, readsAll };
  } finally {
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
    const writesAll = await load(urls, put("all"));
    const writesLeader = writesAll; // etcd followers forward over gRPC; the round-robin figure is the one compared
    const written = Math.max(1, writesAll.requestsPerSecond * SECONDS);
    const readsAll = await load(urls, {
      method: "POST", path: () => "/v3/kv/range", headers: json,
      body: (n) => JSON.stringify({ key: base64(`all-${(n * 7919) % written}`) }),
    });
    return { writesAll, writesLeader, readsAll };
  } finally {
    for (const child of children) child.kill("SIGTERM");
  }
}

const dir = await mkdtemp(join(tmpdir(), "scribe-bench-etcd-"));
try {
  const scribe = await benchScribe();
  const binary = etcdBinary();
  const etcd = binary === undefined ? undefined : await benchEtcd(binary, dir);
  const runtime = process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}`;
  console.log(`runtime: ${runtime}; 3 nodes; ${CONNECTIONS} connections; ${SECONDS} s each; 100-byte values; storage ${STORAGE}${etcd ? "" : "; etcd: not run (install it with --with-etcd)"}`);
  console.log("| target | req/s | p50 ms | p99 ms | vs etcd | errors/non-2xx |");
  console.log("|---|---:|---:|---:|---:|---:|");
  console.log(row("scribe PUT, round-robin to all nodes", scribe.writesAll!, etcd?.writesAll));
  console.log(row("scribe PUT, leader only", scribe.writesLeader!, etcd?.writesAll));
  console.log(row("scribe linearizable GET, all nodes", scribe.readsAll!, etcd?.readsAll));
  if (etcd !== undefined) {
    console.log(row("etcd put (JSON gateway), all nodes", etcd.writesAll!));
    console.log(row("etcd linearizable range, all nodes", etcd.readsAll!));
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
