/**
 * Child process for the deno-kv kill -9 test (run with deno --unstable-kv):
 * commits under load forever, with a small compaction threshold so snapshots
 * and their cleanup are in flight when it dies, and now and then a value big
 * enough that the group needs more than one Deno KV atomic operation. Before
 * each commit it prints "B <commit> <keyCount> <big 0|1>" and "d <key>" for
 * each key it deletes (such a key may be present or absent after a crash);
 * after the commit resolved, "P <key>" per put and "D <key>" per delete. The
 * parent kills it with SIGKILL at a random moment and checks the printed ops
 * against the reopened store.
 *
 * Usage: deno run -A --unstable-kv deno-kv-writer.ts <path> <key prefix> <seed>
 */
import { createDenoKvStorage } from "../../adapters/deno-kv/index.ts";
import { commitKeys, denoKvKillValue } from "./deno-kv-kill-values.ts";

const [path, prefix, seedText] = process.argv.slice(2);
if (!path || !prefix || !seedText) throw new Error("usage: deno-kv-writer.ts <path> <prefix> <seed>");

const WORKERS = 4;
const encoder = new TextEncoder();
const store = await createDenoKvStorage({ path, compactLogBytes: 512 * 1024 });

let state = Number(seedText) >>> 0;
function random(): number {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 4294967296;
}

async function worker(id: number): Promise<void> {
  const acked: string[] = [];
  for (let n = 0; ; n++) {
    const commit = `${prefix}-${id}-${n}`;
    const count = 1 + Math.floor(random() * 20);
    const big = random() < 0.1;
    const keys = commitKeys(commit, count, big);
    const deleted = acked.length > 0 && random() < 0.3 ? acked.splice(Math.floor(random() * acked.length), 1) : [];
    // An unacknowledged commit may still turn out durable, so announce it and its deletes before committing.
    process.stdout.write(`B ${commit} ${count} ${big ? 1 : 0}\n` + deleted.map((key) => `d ${key}\n`).join(""));
    await store.commit([
      ...keys.map((key) => ({ type: "put" as const, key: encoder.encode(key), value: denoKvKillValue(key) })),
      ...deleted.map((key) => ({ type: "delete" as const, key: encoder.encode(key) })),
    ]);
    acked.push(...keys);
    process.stdout.write(keys.map((key) => `P ${key}\n`).join("") + deleted.map((key) => `D ${key}\n`).join(""));
  }
}

await Promise.all(Array.from({ length: WORKERS }, (_, id) => worker(id)));
