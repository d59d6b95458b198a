/**
 * kill -9 under write load: every write the server acknowledged must be
 * served, with its exact value, after a restart on the same data directory.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNode, type NodeProcess } from "../helpers/process.ts";

const ROUNDS = 3;
const WRITERS = 16;

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/**
 * Write unique keys from `WRITERS` concurrent loops until the process dies
 * (`killAfterMs` after the first acknowledgement, so a slow start on a loaded
 * machine still leaves writes to check); return what was acknowledged.
 */
async function writeUntilKilled(node: NodeProcess, round: number, killAfterMs: number): Promise<Map<string, string>> {
  const acknowledged = new Map<string, string>();
  let dead = false;
  let killer: ReturnType<typeof setTimeout> | undefined;
  const armKiller = () => {
    killer ??= setTimeout(() => {
      dead = true;
      node.child.kill("SIGKILL");
    }, killAfterMs);
  };
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, writer) => {
      for (let i = 0; !dead && i < 100_000; i++) {
        const key = `r${round}/w${writer}/${i}`;
        const value = `value of ${key} ${"x".repeat(i % 50)}`;
        try {
          const response = await fetch(`${node.baseUrl}/v1/kv/${key}`, { method: "PUT", body: value });
          if (response.status === 201) {
            acknowledged.set(key, value);
            armKiller();
          } else await response.arrayBuffer();
        } catch {
          return; // connection refused or reset: the process is gone
        }
      }
    }),
  );
  clearTimeout(killer);
  if (!dead) node.child.kill("SIGKILL"); // it never acknowledged, or the writers ran out of keys first
  await node.exited;
  return acknowledged;
}

for (const storage of ["sqlite", "fs"]) {
  describe(`kill -9 under write load (${storage})`, () => {
    test(`every acknowledged write survives ${ROUNDS} crashes`, async () => {
      const dataDir = await mkdtemp(join(tmpdir(), `scribe-crash-${storage}-`));
      dirs.push(dataDir);
      const args = ["--port", "0", "--data-dir", dataDir, "--storage", storage];
      const all = new Map<string, string>();
      for (let round = 0; round < ROUNDS; round++) {
        const node = await startNode(args);
        const killAfterMs = 300 + Math.floor(Math.random() * 700);
        const acknowledged = await writeUntilKilled(node, round, killAfterMs);
        expect(acknowledged.size).toBeGreaterThan(0);
        console.log(`${storage} round ${round}: killed ${killAfterMs} ms after the first acknowledgement, with ${acknowledged.size} acknowledged writes`);
        for (const [key, value] of acknowledged) all.set(key, value);
      }
      const node = await startNode(args);
      try {
        const missing: string[] = [];
        for (const [key, value] of all) {
          const response = await fetch(`${node.baseUrl}/v1/kv/${key}`);
          const text = await response.text();
          if (response.status !== 200 || text !== value) missing.push(`${key}: ${response.status} ${text.slice(0, 40)}`);
        }
        expect(missing).toEqual([]);
        const log = await (await fetch(`${node.baseUrl}/v1/log?limit=1`)).json();
        expect(log.treeSize).toBeGreaterThanOrEqual(all.size);
      } finally {
        node.child.kill("SIGKILL");
        await node.exited;
      }
    }, 120_000);
  });
}
