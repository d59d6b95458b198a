/**
 * In-process benchmark of the ledger through the node's write pipeline
 * (group commit, durable storage commit, Merkle append, checkpoint signing),
 * for each storage adapter this runtime supports. Prints ops/s; never fails
 * on speed.
 *
 * - PUT (batched): batch commands of `--batch` puts (default 1000, 100-byte
 *   values, unique keys), at most `--pipeline` batches in flight (default 4),
 *   so several durable group commits happen per run.
 * - GET hot: reads of the keys just written (the hot cache answers), cycling
 *   through them for at least GET_READS_MIN reads so the figure is steady state.
 * - GET cold: one read of each key after reopening the store (every read goes to storage).
 * - MIXED: 50% GET, 50% single-put commands, all in flight at once (group commit).
 *
 * Each cell is the median of `--repeat` runs (default 3), each on a fresh store.
 *
 * Flags: USAGE below (`--help` prints it).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveConfig } from "../src/config/index.ts";
import { openLedgerServer, type LedgerServer } from "../src/server.ts";
import { generateSigner } from "../src/checkpoint/index.ts";
import { runtimeHasher } from "../adapters/runtime/hasher.ts";
import { openStorage, runtimeName, type StorageChoice } from "../adapters/runtime/storage.ts";
import { benchFlags, median, wholeNumberFlag } from "./stats.ts";

const USAGE = "bun run bench/embedded.ts [--adapters memory,sqlite,fs] [--sizes 100,1000,5000,10000] [--batch 1000] [--pipeline 4] [--repeat 3] | deno run -A bench/embedded.ts --adapters denokv,fs";
const values = benchFlags(USAGE, {
  adapters: { type: "string" }, sizes: { type: "string" }, batch: { type: "string" }, pipeline: { type: "string" }, repeat: { type: "string" },
});
const runtime = runtimeName();
const supported: StorageChoice[] = runtime === "bun" ? ["memory", "sqlite", "fs"] : runtime === "deno" ? ["memory", "fs", "denokv"] : ["memory", "fs"];
const adapters = (values.adapters?.split(",") as StorageChoice[] | undefined) ?? supported;
const sizes = (values.sizes ?? "100,1000,5000,10000").split(",").map((size) => wholeNumberFlag("sizes", size, 0));
const BATCH_OPS = wholeNumberFlag("batch", values.batch, 1000);
const PIPELINE = wholeNumberFlag("pipeline", values.pipeline, 4);
const REPEAT = wholeNumberFlag("repeat", values.repeat, 3);
const VALUE = new Uint8Array(100).fill(120);
/** Least number of hot reads timed per cell. */
const GET_READS_MIN = 100_000;
const signer = generateSigner("bench");
const hasher = await runtimeHasher();

function opsPerSecond(count: number, startedMs: number): number {
  return Math.round(count / ((performance.now() - startedMs) / 1000));
}

async function open(adapter: StorageChoice, dir: string): Promise<LedgerServer> {
  const storage = await openStorage(adapter, dir);
  return openLedgerServer({ config: resolveConfig({ node: { data_dir: dir } }), storage, signer, hasher });
}

/** Puts of keys [0, size) in batch commands, at most PIPELINE in flight. */
async function putBatched(server: LedgerServer, key: (i: number) => string, size: number): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < size) {
      const first = next;
      next = Math.min(size, next + BATCH_OPS);
      const operations = [];
      for (let j = first; j < next; j++) operations.push({ op: "put" as const, key: key(j), value: VALUE, contentType: "application/octet-stream" });
      await server.node.write({ operations });
    }
  };
  await Promise.all(Array.from({ length: PIPELINE }, lane));
}

interface Figures { put: number; getHot: number; getCold: number; mixed: number }

async function runOne(adapter: StorageChoice, size: number): Promise<Figures> {
  const dir = await mkdtemp(join(tmpdir(), `scribe-bench-${adapter}-`));
  const keys = Array.from({ length: 2 * size }, (_, i) => `bench/key/${String(i).padStart(8, "0")}`);
  const key = (i: number) => keys[i]!;
  let server = await open(adapter, dir);

  let started = performance.now();
  await putBatched(server, key, size);
  const put = opsPerSecond(size, started);

  const hotReads = Math.max(size, GET_READS_MIN);
  started = performance.now();
  for (let i = 0; i < hotReads; i++) await server.node.ledger.get(key((i * 7919) % size));
  const getHot = opsPerSecond(hotReads, started);

  let getCold = 0;
  if (adapter !== "memory") {
    await server.close();
    server = await open(adapter, dir);
    started = performance.now();
    for (let i = 0; i < size; i++) await server.node.ledger.get(key((i * 7919) % size));
    getCold = opsPerSecond(size, started);
  }

  started = performance.now();
  const mixed: Promise<unknown>[] = [];
  for (let i = 0; i < size; i++) {
    if (i % 2 === 0) mixed.push(server.node.ledger.get(key((i * 7919) % size)));
    else mixed.push(server.node.write({ operations: [{ op: "put", key: key(size + i), value: VALUE, contentType: "application/octet-stream" }] }));
  }
  await Promise.all(mixed);
  const mixedOps = opsPerSecond(size, started);

  await server.close();
  await rm(dir, { recursive: true, force: true });
  return { put, getHot, getCold, mixed: mixedOps };
}

const format = (n: number) => (n === 0 ? "-" : n.toLocaleString("en-US"));

console.log(`runtime: ${runtime}; 100-byte values, unique keys; PUT in batch commands of ${BATCH_OPS}, ${PIPELINE} in flight; MIXED = 50% GET, 50% single-put commands; median of ${REPEAT}`);
console.log("| adapter | ops | PUT (batched) ops/s | GET hot ops/s | GET cold ops/s | MIXED ops/s |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const adapter of adapters) {
  await runOne(adapter, 20_000); // warm-up: let the JIT compile the write path before measuring
  for (const size of sizes) {
    const runs: Figures[] = [];
    for (let r = 0; r < REPEAT; r++) runs.push(await runOne(adapter, size));
    const pick = (field: keyof Figures) => format(median(runs.map((run) => run[field])));
    console.log(`| ${adapter} | ${size.toLocaleString("en-US")} | ${pick("put")} | ${pick("getHot")} | ${pick("getCold")} | ${pick("mixed")} |`);
  }
}
