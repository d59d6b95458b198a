import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBunSqliteStorage } from "../../adapters/bun-sqlite/index.ts";
import { describeStorageConformance } from "./conformance.ts";

describeStorageConformance({
  name: "bun-sqlite",
  durable: true,
  open: (dir) => createBunSqliteStorage({ path: join(dir, "ledger.sqlite") }),
  makeLocation: () => mkdtemp(join(tmpdir(), "scribe-sqlite-")),
  cleanup: (dir) => rm(dir, { recursive: true, force: true }),
});
