/**
 * HTTP benchmark of a single node: durable PUT (unique keys, 100-byte
 * values) and GET with 64 connections, against a bare Hono hello-world on
 * the same runtime in the same run, so the ratio is the figure that
 * matters. Prints a table; never fails on speed. `--rounds N` repeats the
 * whole run N times (fresh servers and data dir each) and closes with each
 * round's ratios and their median: the VM's speed drifts between runs, so
 * ratios taken within a round and then their median say more than one run.
 *
 * Flags: USAGE below (`--help` prints it).
 */
import autocannon from "autocannon";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNode, type NodeProcess } from "../test/helpers/process.ts";
import { benchFlags, median, wholeNumberFlag } from "./stats.ts";

const USAGE = "bun run bench/http.ts [--seconds 10] [--connections 64] [--storage sqlite] [--rounds 1]";
const values = benchFlags(USAGE, { seconds: { type: "string" }, connections: { type: "string" }, storage: { type: "string" }, rounds: { type: "string" } });
const SECONDS = wholeNumberFlag("seconds", values.seconds, 10);
const CONNECTIONS = wholeNumberFlag("connections", values.connections, 64);
const STORAGE = values.storage ?? "sqlite";
const ROUNDS = wholeNumberFlag("rounds", values.rounds, 1);
const VALUE = "v".repeat(100);

interface Figures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
}

async function load(url: string, method: "GET" | "PUT", path: (n: number) => string): Promise<Figures> {
  let counter = 0;
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [
      {
        method,
        body: method === "PUT" ? VALUE : undefined,
        setupRequest: (request) => ({ ...request, path: path(counter++) }),
      },
    ],
  });
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx + result.errors,
  };
}

async function stop(node: NodeProcess): Promise<void> {
  node.child.kill("SIGTERM");
  await node.exited;
}

const row = (name: string, figures: Figures, baseline?: number) =>
  `| ${name} | ${figures.requestsPerSecond.toLocaleString("en-US")} | ${figures.p50Ms} | ${figures.p99Ms} | ${baseline ? `${Math.round((100 * figures.requestsPerSecond) / baseline)}%` : "100%"} | ${figures.non2xx} |`;

/** One round: the hello-world baselines, then a fresh node; prints its table and returns the two ratios. */
async function round(): Promise<{ put: number; get: number }> {
  const hello = await startNode([], { command: [process.execPath, "run", "bench/hello.ts"] });
  const helloGet = await load(hello.baseUrl, "GET", () => "/");
  const helloPut = await load(hello.baseUrl, "PUT", (n) => `/k${n}`);
  await stop(hello);

  const dataDir = await mkdtemp(join(tmpdir(), "scribe-bench-http-"));
  const node = await startNode(["--port", "0", "--data-dir", dataDir, "--storage", STORAGE]);
  const put = await load(node.baseUrl, "PUT", (n) => `/v1/kv/bench-${n}`);
  const written = Math.max(1, put.requestsPerSecond * SECONDS);
  const get = await load(node.baseUrl, "GET", (n) => `/v1/kv/bench-${(n * 7919) % written}`);
  await stop(node);
  await rm(dataDir, { recursive: true, force: true });

  console.log(`runtime: ${process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}`}; ${CONNECTIONS} connections; ${SECONDS} s each; 100-byte values; storage ${STORAGE}`);
  console.log("| target | req/s | p50 ms | p99 ms | of hello-world | errors/non-2xx |");
  console.log("|---|---:|---:|---:|---:|---:|");
  console.log(row("hello-world GET /", helloGet));
  console.log(row("hello-world PUT (reads body)", helloPut));
  console.log(row("scribe durable PUT /v1/kv/{unique}", put, helloPut.requestsPerSecond));
  console.log(row("scribe GET /v1/kv/{key}", get, helloGet.requestsPerSecond));
  return { put: put.requestsPerSecond / Math.max(1, helloPut.requestsPerSecond), get: get.requestsPerSecond / Math.max(1, helloGet.requestsPerSecond) };
}

const percent = (ratio: number) => `${(100 * ratio).toFixed(1)}%`;

const ratios: Array<{ put: number; get: number }> = [];
for (let i = 0; i < ROUNDS; i++) {
  if (ROUNDS > 1) console.log(`\nround ${i + 1} of ${ROUNDS}`);
  ratios.push(await round());
}
if (ROUNDS > 1) {
  console.log(`\nmedian of ${ROUNDS} rounds, each ratio taken within its round:`);
  console.log(`durable PUT of hello-world PUT: ${percent(median(ratios.map((r) => r.put)))} (rounds: ${ratios.map((r) => percent(r.put)).join(", ")})`);
  console.log(`GET of hello-world GET: ${percent(median(ratios.map((r) => r.get)))} (rounds: ${ratios.map((r) => percent(r.get)).join(", ")})`);
}
