/**
 * A leader whose storage commit is slow: a write proposed while that commit
 * runs reaches the followers at once (not after the commit), and the two
 * followers, both durable, commit and apply it without the leader's own copy,
 * which counts only once it is on the leader's disk. The leader answers its
 * clients only after its own commit.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Storage } from "../../src/storage/index.ts";
import { InProcessCluster, until } from "../helpers/in-process-cluster.ts";

/** Per member: while `held`, durable commits wait for `release`. */
interface Gate {
  held: boolean;
  waiting: Array<() => void>;
}

const gates = new Map<number, Gate>();

function gated(id: number, storage: Storage): Storage {
  const gate: Gate = { held: false, waiting: [] };
  gates.set(id, gate);
  return {
    ...storage,
    commit: async (batch, options) => {
      if (gate.held && options?.durable !== false) await new Promise<void>((resolve) => gate.waiting.push(resolve));
      return storage.commit(batch, options);
    },
  };
}

function release(gate: Gate): void {
  gate.held = false;
  for (const resume of gate.waiting.splice(0)) resume();
}

let cluster: InProcessCluster;

beforeAll(async () => {
  cluster = await InProcessCluster.found([1, 2, 3], { wrapStorage: gated });
  await cluster.leader();
});

afterAll(async () => {
  for (const gate of gates.values()) release(gate);
  await cluster.close();
});

describe("a leader with a storage commit in flight", () => {
  test("sends a new write to the followers at once; they commit and apply it before the leader's own commit ends", async () => {
    const leader = await cluster.leader();
    const followers = [1, 2, 3].filter((id) => id !== leader.id);
    expect((await cluster.put(leader.id, "early/warm-up", "w")).status).toBe(201);
    const before = await cluster.converged([1, 2, 3]);
    const gate = gates.get(leader.id)!;
    gate.held = true;
    const first = cluster.put(leader.id, "early/a", "a");
    await until("the leader's commit of the first write to be held", () => (gate.waiting.length > 0 ? true : undefined));
    // Proposed while the leader's Ready is being persisted: it must not wait for that to reach the followers.
    const second = cluster.put(leader.id, "early/b", "b");
    await until("both followers to apply both writes", () =>
      followers.every((id) => cluster.server(id).node.ledger.treeSize === before + 2) ? true : undefined,
    );
    // Meanwhile the leader, its commit still held, has applied neither.
    expect(gate.waiting.length).toBeGreaterThan(0);
    expect(cluster.server(leader.id).node.ledger.treeSize).toBe(before);
    release(gate);
    expect((await first).status).toBe(201);
    expect((await second).status).toBe(201);
    expect(await cluster.converged([1, 2, 3])).toBe(before + 2);
    for (const id of [1, 2, 3]) expect(await (await cluster.server(id).app.request("/v1/kv/early/b")).text()).toBe("b");
  });
});
