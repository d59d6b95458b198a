/**
 * A real 3-process cluster on loopback ports (sqlite storage, one shared
 * signing key): writes through every node, identical reads and checkpoints
 * on every node, kill -9 of the leader, writes through the survivors under a
 * new leader, restart and catch-up. Every acknowledged write must then be
 * readable, with the same seq, from every node.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { TestCluster } from "../helpers/process-cluster.ts";
import { until } from "../helpers/poll.ts";
import { expectConverged, putAcknowledged } from "../helpers/cluster-checks.ts";

const DEADLINE_MS = 15_000;
const WRITERS_PER_NODE = 4;

let cluster: TestCluster | undefined;

afterAll(async () => {
  await cluster?.close();
});

describe("3-process Raft cluster", () => {
  test("replicates, survives kill -9 of the leader, and the restarted node catches up", async () => {
    const c = (cluster = await TestCluster.start({ consensus: { tick_ms: 50, election_timeout: 10, heartbeat_timeout: 2 } }));
    const firstLeader = await c.waitForLeader({ deadlineMs: DEADLINE_MS });

    const acknowledged = new Map<string, string>();
    for (const id of c.ids) {
      for (let i = 0; i < 5; i++) {
        const key = `first/${id}/${i}`;
        await putAcknowledged(c, id, key, `value ${key}`);
        acknowledged.set(key, `value ${key}`);
      }
    }
    await expectConverged(c, acknowledged);

    // Concurrent writers on every node while the leader is killed: whatever was acknowledged must survive.
    const victim = firstLeader;
    const survivors = c.ids.filter((id) => id !== victim);
    let writing = true;
    let killedAt = Infinity;
    let firstAckAfterKill = Infinity;
    // Every write is retried (same Idempotency-Key) until acknowledged, through a survivor once its node is gone.
    let retries = 0;
    const writers = c.ids.flatMap((id) => Array.from({ length: WRITERS_PER_NODE }, async (_, writer) => {
      for (let i = 0; writing && i < 10_000; i++) {
        const key = `load/${id}/${writer}/${i}`;
        await putAcknowledged(c, id, key, `value ${key}`, () => survivors[retries++ % survivors.length]!);
        acknowledged.set(key, `value ${key}`);
        if (Date.now() > killedAt) firstAckAfterKill = Math.min(firstAckAfterKill, Date.now());
      }
    }));
    // Load phases of fixed length: the writers run while we wait.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await c.kill9(victim);
    killedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    writing = false;
    await Promise.all(writers);
    await Promise.all(survivors.map(async (id) => {
      for (let i = 0; i < 10; i++) {
        const key = `after/${id}/${i}`;
        await putAcknowledged(c, id, key, `value ${key}`);
        acknowledged.set(key, `value ${key}`);
      }
    }));
    const newLeader = await c.waitForLeader({ among: survivors, deadlineMs: DEADLINE_MS });
    expect(newLeader).not.toBe(firstLeader);
    const failoverMs = firstAckAfterKill - killedAt;
    console.log(`writes acknowledged: ${acknowledged.size}; first write acknowledged ${failoverMs} ms after the kill`);
    expect(failoverMs).toBeLessThan(DEADLINE_MS);

    await c.restart(victim);
    const size = (await c.status(survivors[0]!)).treeSize;
    await until("the restarted node to catch up", async () => ((await c.status(victim)).treeSize === size ? true : undefined), DEADLINE_MS);
    await expectConverged(c, acknowledged);
    // Retries carried the first attempt's Idempotency-Key: every write appended exactly once.
    expect(size).toBe(acknowledged.size);
    expect(c.unexpectedExits()).toEqual([]);
  }, 60_000);
});
