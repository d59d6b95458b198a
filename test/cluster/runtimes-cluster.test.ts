/**
 * The cluster on the other two runtimes: three Deno processes on Deno KV,
 * and three Node processes (a `bun build --target node` bundle) on the fs
 * log. Peers talk through the socket client on both, with answers in POST
 * responses. Writes through every node (two of three are forwarded) must be
 * readable from every node with the same seq and checkpoint, also after a
 * follower is killed with -9 and restarted.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { TestCluster } from "../helpers/process-cluster.ts";
import { buildNodeBundle, DENO_SERVE_COMMAND, REPO_ROOT } from "../helpers/process.ts";
import { until } from "../helpers/poll.ts";
import { CLUSTER_DEADLINE_MS, expectConverged, putAcknowledged } from "../helpers/cluster-checks.ts";

const CONSENSUS = { tick_ms: 50, election_timeout: 10, heartbeat_timeout: 2 };
const cleanups: Array<() => Promise<void> | void> = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function exercise(c: TestCluster): Promise<void> {
  const leader = await c.waitForLeader({ deadlineMs: CLUSTER_DEADLINE_MS });
  const acknowledged = new Map<string, string>();
  const writeThroughEveryNode = async (round: string, ids: readonly number[]) => {
    await Promise.all(ids.map(async (id) => {
      for (let i = 0; i < 5; i++) {
        const key = `${round}/${id}/${i}`;
        await putAcknowledged(c, id, key, `value ${key}`);
        acknowledged.set(key, `value ${key}`);
      }
    }));
  };
  await writeThroughEveryNode("first", c.ids);
  await expectConverged(c, acknowledged);
  const follower = c.ids.find((id) => id !== leader)!;
  await c.kill9(follower);
  await writeThroughEveryNode("degraded", c.ids.filter((id) => id !== follower));
  await c.restart(follower);
  const size = (await c.status(leader)).treeSize;
  await until("the restarted follower to catch up", async () => ((await c.status(follower)).treeSize === size ? true : undefined), CLUSTER_DEADLINE_MS);
  await expectConverged(c, acknowledged);
  expect(size).toBe(acknowledged.size);
  expect(c.unexpectedExits()).toEqual([]);
}

describe("3-process cluster on other runtimes", () => {
  test("Deno on Deno KV replicates, forwards, and a killed follower catches up", async () => {
    const c = await TestCluster.start({ storage: "denokv", command: DENO_SERVE_COMMAND, consensus: CONSENSUS });
    cleanups.push(() => c.close());
    await exercise(c);
  }, 90_000);

  test("Node on the fs log replicates, forwards, and a killed follower catches up", async () => {
    // --packages external: the bundle imports from node_modules, so it must live inside the repo (dist/ is ignored).
    const outdir = join(REPO_ROOT, "dist", `test-cluster-node-${process.pid}`);
    cleanups.push(() => rmSync(outdir, { recursive: true, force: true }));
    const c = await TestCluster.start({ storage: "fs", command: buildNodeBundle(outdir), consensus: CONSENSUS });
    cleanups.push(() => c.close());
    await exercise(c);
  }, 90_000);
});
