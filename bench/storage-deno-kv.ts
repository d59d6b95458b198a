/**
 * Batched PUT throughput of the Deno KV adapter. Prints ops/s; never fails on
 * speed. Run with deno:
 *
 *   node_modules/.bin/deno run -A --unstable-kv bench/storage-deno-kv.ts [commits=1000] [putsPerCommit=100] [concurrency=1,4,16]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDenoKvStorage } from "../adapters/deno-kv/index.ts";

const [commitsText = "1000", putsText = "100", concurrencyText = "1,4,16"] = process.argv.slice(2);
const COMMITS = Number(commitsText);
const PUTS_PER_COMMIT = Number(putsText);
const KEY_BYTES = 30;
const VALUE_BYTES = 100;

function makeBatch(commit: number) {
  return Array.from({ length: PUTS_PER_COMMIT }, (_, i) => {
    const key = new TextEncoder().encode(`bench/${String(commit).padStart(8, "0")}/${String(i).padStart(8, "0")}`.padEnd(KEY_BYTES, "."));
    return { type: "put" as const, key, value: new Uint8Array(VALUE_BYTES).fill((commit + i) & 0xff) };
  });
}

async function run(concurrency: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "deno-kv-bench-"));
  const store = await createDenoKvStorage({ path: join(dir, "bench.kv") });
  const batches = Array.from({ length: COMMITS }, (_, n) => makeBatch(n));
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < COMMITS) await store.commit(batches[next++]!);
    }),
  );
  const elapsedMs = performance.now() - started;
  const opsPerSecond = Math.round((COMMITS * PUTS_PER_COMMIT) / (elapsedMs / 1000));
  console.log(
    `deno-kv PUT: ${COMMITS} commits x ${PUTS_PER_COMMIT} puts (${KEY_BYTES} B keys, ${VALUE_BYTES} B values), ` +
      `concurrency ${concurrency}: ${opsPerSecond} ops/s (${elapsedMs.toFixed(0)} ms)`,
  );
  await store.close();
  await rm(dir, { recursive: true, force: true });
}

for (const concurrency of concurrencyText.split(",").map(Number)) await run(concurrency);
