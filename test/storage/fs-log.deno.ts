/**
 * The storage conformance suite for the fs-log adapter, run under Deno (the
 * adapter only uses node:fs, so the same code must work there):
 *
 *   node_modules/.bin/deno test -A --config test/storage/deno-kv/deno.json test/storage/fs-log.deno.ts
 *
 * test/storage/fs-log.test.ts runs this command from `bun test`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFsLogStorage } from "../../adapters/fs-log/index.ts";
import { describeStorageConformance } from "./conformance.ts";

describeStorageConformance({
  name: "fs-log on deno",
  durable: true,
  open: (location) => createFsLogStorage({ dir: location, segmentBytes: 64 * 1024, checkpointBytes: 16 * 1024 }),
  makeLocation: () => mkdtemp(join(tmpdir(), "fs-log-deno-")),
  cleanup: (location) => rm(location, { recursive: true, force: true }),
});
