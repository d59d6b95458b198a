/** The entry point as a process: --help, bad config, graceful shutdown under load. */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, startNode } from "../helpers/process.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["run", "src/main.ts", ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: "utf8" });
}

describe("src/main.ts", () => {
  test("--help prints every flag and exits 0", () => {
    const result = run(["--help"]);
    expect(result.status).toBe(0);
    for (const flag of ["--config", "--host", "--port", "--data-dir", "--node-id", "--storage", "--help"]) expect(result.stdout).toContain(flag);
    expect(result.stdout).toContain("Exit codes: 0 after a clean shutdown; 2 when start-up is refused");
  });

  test("a bad flag, env value or config file stops start-up with the key named and exit code 2", async () => {
    const badPort = run(["--port", "70000"]);
    expect(badPort.status).toBe(2);
    expect(badPort.stderr).toContain("network.client_port");
    const badEnv = run([], { SCRIBE_LEDGER_IMMUTABLE: "perhaps" });
    expect(badEnv.status).toBe(2);
    expect(badEnv.stderr).toContain("ledger.immutable");
    const unknownFlag = run(["--bogus"]);
    expect(unknownFlag.status).toBe(2);
  });

  test("a second process on the same data directory is refused while the first runs", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "scribe-lock-"));
    dirs.push(dataDir);
    const first = await startNode(["--port", "0", "--data-dir", dataDir]);
    try {
      const second = run(["--port", "0", "--data-dir", dataDir]);
      expect(second.status).toBe(2);
      expect(second.stderr).toContain(`in use by process ${first.child.pid}`);
    } finally {
      first.child.kill("SIGKILL");
      await first.exited;
    }
    const after = await startNode(["--port", "0", "--data-dir", dataDir]);
    after.child.kill("SIGTERM");
    expect(await after.exited).toBe(0);
  }, 30_000);

  test("a client port that is in use stops start-up with the address named and exit code 2, no stack trace", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "scribe-port-"));
    dirs.push(dataDir);
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as AddressInfo).port;
    try {
      const result = run(["--port", String(port), "--data-dir", dataDir]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is in use`);
      expect(result.stderr).not.toContain("    at ");
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
    // Nothing was left locked: the same data directory starts on a free port.
    const after = await startNode(["--port", "0", "--data-dir", dataDir]);
    after.child.kill("SIGTERM");
    expect(await after.exited).toBe(0);
  }, 30_000);

  test("SIGTERM under write load finishes acknowledged writes, exits 0, and a restart serves them", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "scribe-term-"));
    dirs.push(dataDir);
    const args = ["--port", "0", "--data-dir", dataDir];
    const node = await startNode(args);
    const acknowledged = new Map<string, string>();
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, writer) => {
      for (let i = 0; !stop && i < 100_000; i++) {
        const key = `term/${writer}/${i}`;
        try {
          const response = await fetch(`${node.baseUrl}/v1/kv/${key}`, { method: "PUT", body: key });
          if (response.status === 201) acknowledged.set(key, key);
          else await response.arrayBuffer();
        } catch {
          return;
        }
      }
    });
    const deadline = Date.now() + 10_000;
    while (acknowledged.size < 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    node.child.kill("SIGTERM");
    const exitCode = await node.exited;
    stop = true;
    await Promise.all(writers);
    expect(exitCode).toBe(0);
    expect(node.output()).toContain("stopped cleanly");
    expect(((await stat(join(dataDir, "checkpoint.key"))).mode & 0o777).toString(8)).toBe("600");
    const restarted = await startNode(args);
    try {
      for (const [key, value] of acknowledged) {
        const response = await fetch(`${restarted.baseUrl}/v1/kv/${key}`);
        expect(`${key}: ${response.status} ${await response.text()}`).toBe(`${key}: 200 ${value}`);
      }
    } finally {
      restarted.child.kill("SIGKILL");
      await restarted.exited;
    }
  }, 60_000);
});
