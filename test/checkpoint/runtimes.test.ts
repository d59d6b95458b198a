/**
 * Runs vectors-runtime.ts (the C2SP signed-note vectors plus a signing round
 * trip) under Deno and under Node, so no runtime's crypto is trusted alone.
 * Skipped visibly, by name, when ../shared/testdata is absent.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const VECTORS_FILE = join(ROOT, "../shared/testdata/signed-note/vectors.json");
const DENO = join(ROOT, "node_modules/.bin/deno");
const SCRIPT = join(import.meta.dir, "vectors-runtime.ts");

if (!existsSync(VECTORS_FILE)) {
  test.skip("signed-note vectors on Deno and Node: ../shared/testdata absent", () => {});
} else {
  describe("signed-note vectors on every runtime", () => {
    test("Deno", () => {
      const result = spawnSync(DENO, ["run", "-A", SCRIPT, VECTORS_FILE], { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 60_000 });
      expect(result.stderr).not.toContain("failed");
      expect(result.stdout).toMatch(/signed-note vectors ok: \d+ on deno/);
      expect(result.status).toBe(0);
    }, 90_000);

    test("Node", async () => {
      const outdir = await mkdtemp(join(tmpdir(), "vectors-node-"));
      try {
        const build = await Bun.build({ entrypoints: [SCRIPT], target: "node", outdir });
        expect(build.success).toBe(true);
        const result = spawnSync("node", [build.outputs[0]!.path, VECTORS_FILE], { encoding: "utf8", timeout: 60_000 });
        expect(result.stderr).not.toContain("failed");
        expect(result.stdout).toMatch(/signed-note vectors ok: \d+ on node/);
        expect(result.status).toBe(0);
      } finally {
        await rm(outdir, { recursive: true, force: true });
      }
    }, 90_000);
  });
}
