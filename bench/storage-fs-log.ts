/**
 * Durable batched PUT throughput of the fs-log adapter. Prints ops/s; never
 * fails on speed. Runs on Bun, Deno (`deno run -A`) and Node (via a bundler).
 *
 *   bun bench/storage-fs-log.ts [commits=1000] [putsPerCommit=100] [concurrency=1,4]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFsLogStorage } from "../adapters/fs-log/index.ts";

const [commitsText = "1000", putsText = "100", concurrencyText = "1,4"] = process.argv.slice(2);
const COMMITS = Number(commitsText);
const PUTS_PER_COMMIT = Number(putsText);
const KEY_BYTES = 30;
const VALUE_BYTES = 100;

function makeBatch(commit: number) {
  return Array.from({ length: PUTS_PER_COMMIT }, (_, i) => {
    const key = new TextEncoder().encode(`bench/${String(commit).padStart(8, "0")}/${String(i).padStart(8, "0")}`.padEnd(KEY_BYTES, "."));
    const value = new Uint8Array(VALUE_BYTES).fill((commit + i) & 0xff);
    return { type: "put" as const, key, value };
  });
}

async function run(concurrency: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "fs-log-bench-"));
  const store = await createFsLogStorage({ dir });
  const batches = Array.from({ length: COMMITS }, (_, n) => makeBatch(n));
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < COMMITS) await store.commit(batches[next++]!);
    }),
  );
  const elapsedMs = performance.now() - started;
  const ops = COMMITS * PUTS_PER_COMMIT;
  const opsPerSecond = Math.round(ops / (elapsedMs / 1000));
  const commitsPerSecond = Math.round(COMMITS / (elapsedMs / 1000));
  console.log(
    `fs-log durable PUT: ${COMMITS} commits x ${PUTS_PER_COMMIT} puts (${KEY_BYTES} B keys, ${VALUE_BYTES} B values), ` +
      `concurrency ${concurrency}: ${opsPerSecond} ops/s (${commitsPerSecond} commits/s, ${elapsedMs.toFixed(0)} ms)`,
  );
  await store.close();
  await rm(dir, { recursive: true, force: true });
}

for (const concurrency of concurrencyText.split(",").map(Number)) await run(concurrency);
