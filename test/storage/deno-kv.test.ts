/**
 * Runs the Deno KV adapter's tests (test/storage/deno-kv.deno.ts, which
 * includes the storage conformance suite) under Deno, so `bun test` covers
 * them. Deno comes from the project's devDependencies.
 */
import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

test("deno-kv adapter tests pass under deno test", () => {
  const deno = join(ROOT, "node_modules", ".bin", "deno");
  const args = ["test", "-A", "--unstable-kv", "--config", "test/storage/deno-kv/deno.json", "test/storage/deno-kv.deno.ts"];
  const result = spawnSync(deno, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 120_000 });
  if (result.status !== 0) console.error(result.stdout, result.stderr, result.error);
  expect(result.status).toBe(0);
  expect(result.stdout).toContain("0 failed");
}, 130_000);
