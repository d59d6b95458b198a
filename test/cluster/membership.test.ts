/**
 * Membership changes on an in-process cluster (real HTTP peer transport):
 * a node joins through a follower as a learner, catches up and is promoted;
 * writes then commit with four voters; a removed node stops receiving writes
 * and says it was removed; removing the leader itself works; only one change
 * may be pending; hostile request bodies change nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { InProcessCluster, until } from "../helpers/in-process-cluster.ts";
import { MEMBERSHIP_BODY_BYTES_MAX } from "../../src/api/routes-ops.ts";
import { MEMBER_ID_MAX } from "../../src/node/members.ts";

let cluster: InProcessCluster;

beforeAll(async () => {
  cluster = await InProcessCluster.found([1, 2, 3]);
  await cluster.leader();
});

afterAll(async () => {
  await cluster.close();
});

const voters = (id: number) => cluster.server(id).node.status().members.filter((m) => m.role === "voter").map((m) => Number(m.id));
const learners = (id: number) => cluster.server(id).node.status().members.filter((m) => m.role === "learner").map((m) => Number(m.id));

describe("membership", () => {
  test("a node added through a follower joins as a learner, catches up, is promoted, and writes commit with 4 voters", async () => {
    for (let i = 0; i < 20; i++) expect((await cluster.put(1, `before/${i}`, `v${i}`)).status).toBe(201);
    const leader = await cluster.leader();
    const follower = [1, 2, 3].find((id) => id !== leader.id)!;
    await cluster.createJoiner(4);
    expect(cluster.server(4).node.status().members).toEqual([]);
    const response = await cluster.add(follower, 4);
    expect(response.status).toBe(201);
    const body = await response.json();
    expect(body.changed).toBe(true);
    expect(body.members.find((m: { id: string }) => m.id === "4")).toMatchObject({ role: "learner", raftAddress: cluster.raftAddress(4) });
    await until("node 4 to be promoted everywhere", () => ([1, 2, 3, 4].every((id) => voters(id).includes(4)) ? true : undefined));
    expect(voters(leader.id)).toEqual([1, 2, 3, 4]);
    expect(learners(leader.id)).toEqual([]);
    // It caught up (by snapshot: a new node always starts from the leader's snapshot) and reads what was written before.
    const size = await cluster.converged([1, 2, 3, 4]);
    expect(size).toBe(20);
    expect(cluster.server(4).node.status().snapshot!.installed).toBe(1);
    expect(await (await cluster.server(4).app.request("/v1/kv/before/7?consistency=stale")).text()).toBe("v7");
    // With 4 voters a quorum is 3: with one of them stopped, writes still commit.
    await cluster.stop(follower);
    expect((await cluster.put(4, "with-three-of-four", "x")).status).toBe(201);
    await cluster.start(follower);
    await cluster.converged([1, 2, 3, 4]);
    // The same join again (a retry) changes nothing and succeeds.
    const again = await cluster.add(leader.id, 4, "/cluster/add");
    expect(again.status).toBe(200);
    expect((await again.json()).changed).toBe(false);
  });

  test("hostile bodies and ids on the membership routes are 4xx and change nothing", async () => {
    const before = cluster.server(1).node.status();
    const post = (body: string, path = "/cluster/members") =>
      cluster.server(1).app.request(path, { method: "POST", body, headers: { "Content-Type": "application/json" } });
    const bodies = [
      "", "{", "[]", "null", "42", '"x"', "{}",
      JSON.stringify({ id: 0, client_address: "127.0.0.1:1", raft_address: "127.0.0.1:2" }),
      JSON.stringify({ id: -5, client_address: "127.0.0.1:1", raft_address: "127.0.0.1:2" }),
      JSON.stringify({ id: 1.5, client_address: "127.0.0.1:1", raft_address: "127.0.0.1:2" }),
      JSON.stringify({ id: 2 ** 40, client_address: "127.0.0.1:1", raft_address: "127.0.0.1:2" }),
      JSON.stringify({ id: MEMBER_ID_MAX + 1, client_address: "127.0.0.1:1", raft_address: "127.0.0.1:2" }),
      JSON.stringify({ id: "07", client_address: "127.0.0.1:1", raft_address: "127.0.0.1:2" }),
      JSON.stringify({ id: 9, client_address: "no-port", raft_address: "127.0.0.1:2" }),
      JSON.stringify({ id: 9, client_address: "127.0.0.1:1", raft_address: "127.0.0.1:99999" }),
      JSON.stringify({ id: 9, client_address: "127.0.0.1:1", raft_address: "http://h:1/path" }),
      JSON.stringify({ id: 9, client_address: "x".repeat(300) + ":1", raft_address: "127.0.0.1:2" }),
      JSON.stringify({ id: 9, client_address: "127.0.0.1:1" }),
      JSON.stringify({ id: 9, client_address: "127.0.0.1:1", raft_address: "127.0.0.1:2", extra: true }),
      JSON.stringify({ id: 9, client_address: 5, raft_address: "127.0.0.1:2" }),
    ];
    for (const body of bodies) {
      const response = await post(body);
      expect({ body, status: response.status }).toEqual({ body, status: 400 });
      expect((await response.json()).error.code).toBeString();
    }
    expect((await post("x".repeat(10_000))).status).toBe(413);
    // The body limit is MEMBERSHIP_BODY_BYTES_MAX: a body of exactly that size is read (and refused for its id).
    const padded = (bytes: number, id: number) => {
      const json = JSON.stringify({ id, client_address: "127.0.0.1:1", raft_address: "127.0.0.1:2" });
      return json.slice(0, -1) + " ".repeat(bytes - json.length) + "}";
    };
    expect(padded(MEMBERSHIP_BODY_BYTES_MAX, 0)).toHaveLength(MEMBERSHIP_BODY_BYTES_MAX);
    expect((await post(padded(MEMBERSHIP_BODY_BYTES_MAX, 0))).status).toBe(400);
    expect((await post(padded(MEMBERSHIP_BODY_BYTES_MAX + 1, 0))).status).toBe(413);
    // An existing member with other addresses is a conflict, not a change.
    const conflict = await post(JSON.stringify({ id: 2, client_address: "10.0.0.1:1", raft_address: "10.0.0.1:2" }), "/cluster/add");
    expect(conflict.status).toBe(409);
    for (const path of ["/cluster/members/0", "/cluster/members/-1", "/cluster/members/abc", "/cluster/members/1e3", "/cluster/remove/99999999999", "/cluster/members/%00"]) {
      const response = await cluster.server(1).app.request(path, { method: "DELETE" });
      expect({ path, status: response.status }).toEqual({ path, status: 400 });
    }
    const missing = await cluster.remove(1, 77);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe("member_not_found");
    const after = cluster.server(1).node.status();
    expect(after.members.map((m) => [m.id, m.role])).toEqual(before.members.map((m) => [m.id, m.role]));
    expect(after.treeSize).toBe(before.treeSize);
  });

  test("only one membership change may be pending: a second one at once is 409", async () => {
    const leader = await cluster.leader();
    await cluster.createJoiner(5);
    await cluster.createJoiner(6);
    const [first, second] = await Promise.all([cluster.add(leader.id, 5), cluster.add(leader.id, 6)]);
    expect(first.status).toBe(201);
    expect(second.status).toBe(409);
    const refusal = await second.json();
    expect(refusal.error.code).toBe("change_pending");
    expect(refusal.error.message).toContain("one at a time");
    // Undo: 5 leaves again (as a learner or voter, whichever it is by now), 6 was never added.
    await until("removing 5", async () => ((await cluster.remove(leader.id, 5)).status === 200 ? true : undefined));
    expect(learners(leader.id).concat(voters(leader.id))).not.toContain(6);
    await cluster.stop(5);
    await cluster.stop(6);
  });

  test("a removed node stops receiving writes, reports itself removed, and its id is never admitted again", async () => {
    const leader = await cluster.leader();
    const victim = [1, 2, 3, 4].find((id) => id !== leader.id)!;
    const removed = await cluster.remove(leader.id, victim);
    expect(removed.status).toBe(200);
    await until("the removed node to report it", () => (cluster.server(victim).node.status().role === "removed" ? true : undefined));
    const victimSize = cluster.server(victim).node.ledger.treeSize;
    const rest = [1, 2, 3, 4].filter((id) => id !== victim);
    for (let i = 0; i < 5; i++) expect((await cluster.put(rest[i % 3]!, `after-removal/${i}`, "v")).status).toBe(201);
    const size = await cluster.converged(rest);
    expect(size).toBe(victimSize + 5);
    expect(cluster.server(victim).node.ledger.treeSize).toBe(victimSize);
    const health = await cluster.server(victim).app.request("/health");
    expect(health.status).toBe(503);
    expect((await health.json()).reason).toContain("removed");
    expect((await cluster.put(victim, "to-removed", "x")).status).toBe(503);
    expect(voters(leader.id)).not.toContain(victim);
    // A restart keeps knowing it was removed.
    await cluster.stop(victim);
    await cluster.start(victim);
    expect(cluster.server(victim).node.status().role).toBe("removed");
    const readmit = await cluster.add(leader.id, victim);
    expect(readmit.status).toBe(409);
    expect((await readmit.json()).error.message).toContain("never admitted again");
    await cluster.stop(victim);
  });

  test("removing the leader itself: it steps down and the others elect a new leader and keep writing", async () => {
    const old = await cluster.leader();
    const remaining = [...cluster.running()].map((m) => m.id).filter((id) => id !== old.id && cluster.server(id).node.status().role !== "removed");
    expect(remaining.length).toBe(2);
    const response = await cluster.remove(remaining[0]!, old.id);
    expect(response.status).toBe(200);
    await until("the old leader to report it was removed", () => (cluster.server(old.id).node.status().role === "removed" ? true : undefined));
    const fresh = await cluster.leader(remaining);
    expect(fresh.id).not.toBe(old.id);
    expect(voters(fresh.id)).toEqual(remaining.sort((a, b) => a - b));
    for (const id of remaining) expect((await cluster.put(id, `after-leader-removal/${id}`, "v")).status).toBe(201);
    await cluster.converged(remaining);
    // The last two voters: removing one leaves one, the last one cannot be removed.
    expect((await cluster.remove(fresh.id, remaining.find((id) => id !== fresh.id)!)).status).toBe(200);
    const last = await cluster.leader([fresh.id]);
    const lastRemoval = await cluster.remove(last.id, last.id);
    expect(lastRemoval.status).toBe(409);
    expect((await lastRemoval.json()).error.message).toContain("last voter");
  });
});

describe("membership with every founder gone", () => {
  test("a node whose snapshot predates the leader's own admission still follows it", async () => {
    // Node 4 joins from the founders' snapshot (index 1: founders only) and then leads alone once they are
    // removed, before it ever takes a snapshot of its own; node 5 then joins from that same old snapshot,
    // whose member book names only removed nodes and not the leader it must follow.
    const other = await InProcessCluster.found([1, 2, 3]);
    try {
      await other.leader();
      expect((await other.put(1, "x", "1")).status).toBe(201);
      await other.createJoiner(4);
      expect((await other.add(1, 4)).status).toBe(201);
      await until("node 4 to be a voter", () => (other.server(4).node.status().members.some((m) => m.id === "4" && m.role === "voter") ? true : undefined));
      for (let round = 0; round < 3; round++) {
        const leader = await other.leader();
        const victim = leader.id !== 4 ? leader.id : [1, 2, 3].find((id) => other.server(4).node.status().members.some((m) => m.id === String(id)))!;
        await until(`removing ${victim}`, async () => ((await other.remove(4, victim)).status === 200 ? true : undefined));
        await other.stop(victim);
      }
      const sole = await other.leader([4]);
      expect(sole.id).toBe(4);
      expect(other.server(4).node.status().snapshot!.index).toBe(1);
      await other.createJoiner(5);
      expect((await other.add(4, 5)).status).toBe(201);
      await until("node 5 to be a voter that caught up", () => {
        const status = other.server(5).node.status();
        return status.members.some((m) => m.id === "5" && m.role === "voter") && status.treeSize === 1 ? true : undefined;
      });
      expect((await other.put(5, "y", "2")).status).toBe(201);
      expect(await (await other.server(5).app.request("/v1/kv/y")).text()).toBe("2");
    } finally {
      await other.close();
    }
  }, 30_000);
});
