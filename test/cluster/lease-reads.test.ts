/**
 * read_mode = "lease" on an in-process cluster: linearizable reads through
 * every node see every acknowledged write, also across a leader change, and
 * a read arriving at the leader while its lease holds takes no heartbeat
 * round (no peer traffic).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { InProcessCluster, until } from "../helpers/in-process-cluster.ts";

let cluster: InProcessCluster;

beforeAll(async () => {
  cluster = await InProcessCluster.found([1, 2, 3], { consensus: { read_mode: "lease" } });
  await cluster.leader();
});

afterAll(async () => {
  await cluster.close();
});

const read = (id: number, key: string) => cluster.server(id).app.request(`/v1/kv/${key}`);

describe("lease reads in a cluster", () => {
  test("every node reads its own and others' writes linearizably", async () => {
    for (let i = 0; i < 10; i++) {
      const writer = 1 + (i % 3);
      expect((await cluster.put(writer, `lease/${i}`, `v${i}`)).status).toBe(201);
      for (const reader of [1, 2, 3]) expect(await (await read(reader, `lease/${i}`)).text()).toBe(`v${i}`);
    }
  });

  test("while the lease holds, a read at the leader sends nothing to its peers", async () => {
    const leader = await cluster.leader();
    await cluster.put(leader.id, "lease/quiet", "q");
    let peerRequests = 0;
    for (const id of [1, 2, 3]) if (id !== leader.id) cluster.get(id).wrap = (request, handler) => ((peerRequests++), handler(request));
    // The lease comes from heartbeat rounds acknowledged by a quorum: wait until one read needs none.
    await until("a read answered from the lease", async () => {
      const before = peerRequests;
      const response = await read(leader.id, "lease/quiet");
      return (await response.text()) === "q" && peerRequests === before ? true : undefined;
    });
    for (const id of [1, 2, 3]) cluster.get(id).wrap = undefined;
  });

  test("after the leader stops, the new leader's lease reads see every acknowledged write", async () => {
    const old = await cluster.leader();
    await cluster.stop(old.id);
    const survivors = [1, 2, 3].filter((id) => id !== old.id);
    const leader = await cluster.leader(survivors);
    expect((await cluster.put(leader.id, "lease/after", "new")).status).toBe(201);
    for (const id of survivors) expect(await (await read(id, "lease/after")).text()).toBe("new");
    for (const id of survivors) expect(await (await read(id, "lease/9")).text()).toBe("v9");
    await cluster.start(old.id);
  });
});
