/**
 * Child process for the fs-log kill -9 test: commits under load forever and
 * prints one line per acknowledged op ("P <key>" for a put, "D <key>" for a
 * delete) only after its commit resolved, and "d <key>" before committing a
 * delete (that key may then be present or absent after a crash). The parent kills it with SIGKILL at
 * a random moment and checks every printed op against the reopened store.
 *
 * Usage: <runtime> fs-log-writer.ts <dir> <key prefix> <seed>
 */
import { createFsLogStorage } from "../../adapters/fs-log/index.ts";
import { killTestValue } from "./fs-log-kill-values.ts";

const [dir, prefix, seedText] = process.argv.slice(2);
if (!dir || !prefix || !seedText) throw new Error("usage: fs-log-writer.ts <dir> <prefix> <seed>");

const WORKERS = 4;
const encoder = new TextEncoder();
const store = await createFsLogStorage({ dir, segmentBytes: 64 * 1024, checkpointBytes: 256 * 1024 });

let state = Number(seedText) >>> 0;
function random(): number {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 4294967296;
}

async function worker(id: number): Promise<void> {
  const acked: string[] = [];
  for (let n = 0; ; n++) {
    const keys = Array.from({ length: 1 + Math.floor(random() * 20) }, (_, i) => `${prefix}-${id}-${n}-${i}`);
    const deleted = acked.length > 0 && random() < 0.3 ? acked.splice(Math.floor(random() * acked.length), 1) : [];
    // An unacknowledged commit may still turn out durable, so announce deletes before committing.
    if (deleted.length > 0) process.stdout.write(deleted.map((key) => `d ${key}\n`).join(""));
    await store.commit([
      ...keys.map((key) => ({ type: "put" as const, key: encoder.encode(key), value: killTestValue(key) })),
      ...deleted.map((key) => ({ type: "delete" as const, key: encoder.encode(key) })),
    ]);
    acked.push(...keys);
    process.stdout.write(keys.map((key) => `P ${key}\n`).join("") + deleted.map((key) => `D ${key}\n`).join(""));
  }
}

await Promise.all(Array.from({ length: WORKERS }, (_, id) => worker(id)));
