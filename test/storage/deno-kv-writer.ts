/**
 * Child process for the deno-kv kill -9 test (run with deno --unstable-kv):
 * the loop of kill-writer.ts with a small compaction threshold, so snapshots
 * and their cleanup are in flight when it dies, and now and then a value big
 * enough that the group needs more than one Deno KV atomic operation. Each
 * commit is announced as "B <commit> <keyCount> <big 0|1>".
 *
 * Usage: deno run -A --unstable-kv deno-kv-writer.ts <path> <key prefix> <seed>
 */
import { createDenoKvStorage } from "../../adapters/deno-kv/index.ts";
import { commitKeys, denoKvKillValue } from "./deno-kv-kill-values.ts";
import { runKillWriter } from "./kill-writer.ts";

const [path, prefix, seedText] = process.argv.slice(2);
if (!path || !prefix || !seedText) throw new Error("usage: deno-kv-writer.ts <path> <prefix> <seed>");

await runKillWriter({
  store: await createDenoKvStorage({ path, compactLogBytes: 512 * 1024 }),
  seed: Number(seedText),
  nextCommit: (id, n, random) => {
    const commit = `${prefix}-${id}-${n}`;
    const count = 1 + Math.floor(random() * 20);
    const big = random() < 0.1;
    return { keys: commitKeys(commit, count, big), announce: `B ${commit} ${count} ${big ? 1 : 0}\n` };
  },
  value: denoKvKillValue,
});
