/**
 * In-process benchmark of the ledger through the node's write pipeline
 * (group commit, durable storage commit, Merkle append, checkpoint signing),
 * for each storage adapter this runtime supports. Prints ops/s; never fails
 * on speed.
 *
 *   bun run bench/embedded.ts [--adapters memory,sqlite,fs] [--sizes 100,1000,5000,10000]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveConfig } from "../src/config/index.ts";
import { openLedgerServer } from "../src/server.ts";
import { generateSigner } from "../src/checkpoint/index.ts";
import { openStorage, runtimeName, type StorageChoice } from "../adapters/runtime/storage.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { adapters: { type: "string" }, sizes: { type: "string" }, batch: { type: "string" } },
});
const runtime = runtimeName();
const supported: StorageChoice[] = runtime === "bun" ? ["memory", "sqlite", "fs"] : runtime === "deno" ? ["memory", "fs", "denokv"] : ["memory", "fs"];
const adapters = (values.adapters?.split(",") as StorageChoice[] | undefined) ?? supported;
const sizes = (values.sizes ?? "100,1000,5000,10000").split(",").map(Number);
const BATCH_OPS = Number(values.batch ?? 1000);
const VALUE = new Uint8Array(100).fill(120);
const signer = generateSigner("bench");

function opsPerSecond(count: number, startedMs: number): number {
  return Math.round(count / ((performance.now() - startedMs) / 1000));
}

async function runOne(adapter: StorageChoice, size: number): Promise<{ put: number; get: number; mixed: number }> {
  const dir = await mkdtemp(join(tmpdir(), `scribe-bench-${adapter}-`));
  const storage = await openStorage(adapter, dir);
  const server = await openLedgerServer({ config: resolveConfig({ node: { data_dir: dir } }), storage, signer });
  const { node } = server;
  const keys = Array.from({ length: 2 * size }, (_, i) => `bench/key/${String(i).padStart(8, "0")}`);
  const key = (i: number) => keys[i]!;

  let started = performance.now();
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < size; i += BATCH_OPS) {
    const operations = [];
    for (let j = i; j < Math.min(size, i + BATCH_OPS); j++) {
      operations.push({ op: "put" as const, key: key(j), value: VALUE, contentType: "application/octet-stream" });
    }
    writes.push(node.write({ operations }));
  }
  await Promise.all(writes);
  const put = opsPerSecond(size, started);

  started = performance.now();
  for (let i = 0; i < size; i++) await node.ledger.get(key((i * 7919) % size));
  const get = opsPerSecond(size, started);

  started = performance.now();
  const mixed: Promise<unknown>[] = [];
  for (let i = 0; i < size; i++) {
    if (i % 2 === 0) mixed.push(node.ledger.get(key((i * 7919) % size)));
    else mixed.push(node.write({ operations: [{ op: "put", key: key(size + i), value: VALUE, contentType: "application/octet-stream" }] }));
  }
  await Promise.all(mixed);
  const mixedOps = opsPerSecond(size, started);

  await server.close();
  await rm(dir, { recursive: true, force: true });
  return { put, get, mixed: mixedOps };
}

console.log(`runtime: ${runtime}; value 100 bytes; PUT in batch commands of ${BATCH_OPS}; MIXED = 50% GET, 50% single PUTs (group commit)`);
console.log("| adapter | ops | PUT (batched) ops/s | GET ops/s | MIXED ops/s |");
console.log("|---|---:|---:|---:|---:|");
for (const adapter of adapters) {
  await runOne(adapter, 20_000); // warm-up: let the JIT compile the write path before measuring
  for (const size of sizes) {
    const result = await runOne(adapter, size);
    console.log(`| ${adapter} | ${size} | ${result.put.toLocaleString("en-US")} | ${result.get.toLocaleString("en-US")} | ${result.mixed.toLocaleString("en-US")} |`);
  }
}
