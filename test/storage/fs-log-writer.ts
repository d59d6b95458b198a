/**
 * Child process for the fs-log kill -9 test: the loop of kill-writer.ts over
 * small segments and checkpoints, 1 to 20 puts per commit.
 *
 * Usage: <runtime> fs-log-writer.ts <dir> <key prefix> <seed>
 */
import { createFsLogStorage } from "../../adapters/fs-log/index.ts";
import { killTestValue } from "./fs-log-kill-values.ts";
import { runKillWriter } from "./kill-writer.ts";

const [dir, prefix, seedText] = process.argv.slice(2);
if (!dir || !prefix || !seedText) throw new Error("usage: fs-log-writer.ts <dir> <prefix> <seed>");

await runKillWriter({
  store: await createFsLogStorage({ dir, segmentBytes: 64 * 1024, checkpointBytes: 256 * 1024 }),
  seed: Number(seedText),
  nextCommit: (id, n, random) => ({ keys: Array.from({ length: 1 + Math.floor(random() * 20) }, (_, i) => `${prefix}-${id}-${n}-${i}`) }),
  value: killTestValue,
});
