/**
 * Three Raft nodes in one process: real peer transport (HTTP on ephemeral
 * ports, CBOR, cluster secret), memory storage, client requests through each
 * node's hono app. Covers replication, forwarding, linearizable reads on
 * followers, Idempotency-Key replay (via any node), leader failover, restart
 * and catch-up, and the peer port's refusals of unauthenticated or malformed
 * requests.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { serve, type RunningServer } from "../../adapters/runtime/serve.ts";
import { resolveConfig } from "../../src/config/index.ts";
import { openClusterServer, type ClusterServer } from "../../src/server.ts";
import { type Storage } from "../../src/storage/index.ts";
import { testSigner } from "../helpers/server.ts";

const SECRET = "in-process-test-cluster-secret";
const IDS = [1, 2, 3];
const DEADLINE_MS = 10_000;

interface Member {
  id: number;
  storage: Storage;
  peerServer: RunningServer;
  handler: ((request: Request) => Promise<Response>) | undefined;
  server: ClusterServer | undefined;
}

const members: Member[] = [];
let peers: Array<{ id: number; client_address: string; raft_address: string }> = [];

/** Storage that outlives a node's close(), like files on disk across a restart. */
function durable(storage: Storage): Storage {
  return { ...storage, close: async () => {} };
}

async function startMember(member: Member): Promise<void> {
  const config = resolveConfig({
    node: { id: String(member.id) },
    network: { raft_port: member.peerServer.port, client_port: 0 },
    consensus: { tick_ms: 20, election_timeout: 10, heartbeat_timeout: 2 },
    cluster: { secret: SECRET, peers },
  });
  member.server = await openClusterServer({ config, storage: durable(member.storage), signer: testSigner });
  member.handler = member.server.peerFetch;
  member.server.node.start();
}

async function stopMember(member: Member): Promise<void> {
  member.handler = undefined;
  await member.server!.close();
  member.server = undefined;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const running = () => members.filter((member) => member.server !== undefined);
const leader = () => until("a leader", () => running().find((member) => member.server!.node.status().role === "leader"));

async function put(member: Member, key: string, value: string): Promise<Response> {
  return member.server!.app.request(`/v1/kv/${key}`, { method: "PUT", body: value });
}

beforeAll(async () => {
  for (const id of IDS) {
    const member: Member = { id, storage: createMemoryStorage(), handler: undefined, server: undefined } as unknown as Member;
    member.peerServer = await serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => member.handler?.(request) ?? new Response("down", { status: 503 }),
    });
    members.push(member);
  }
  peers = members.map((m) => ({ id: m.id, client_address: `127.0.0.1:${10_000 + m.id}`, raft_address: `127.0.0.1:${m.peerServer.port}` }));
  for (const member of members) await startMember(member);
});

afterAll(async () => {
  for (const member of running()) await stopMember(member);
  for (const member of members) await member.peerServer.stop();
});

describe("in-process 3-node cluster", () => {
  test("elects one leader that every node reports", async () => {
    const elected = await leader();
    await until("followers to learn the leader", () =>
      running().every((m) => m.server!.node.status().leaderId === String(elected.id)) ? true : undefined,
    );
    const status = await (await members[0]!.server!.app.request("/cluster/status")).json();
    expect(status.members.map((m: { id: string }) => m.id)).toEqual(["1", "2", "3"]);
    const leaderInfo = await (await members[1]!.server!.app.request("/cluster/leader")).json();
    expect(leaderInfo.leaderId).toBe(String(elected.id));
    expect(leaderInfo.leaderAddress).toBe(`127.0.0.1:${10_000 + elected.id}`);
  });

  test("writes through every node; every node reads them back with the same seq and checkpoint", async () => {
    for (const member of members) {
      const response = await put(member, `via-${member.id}`, `value ${member.id}`);
      expect(response.status).toBe(201);
    }
    const sizes = new Set<number>();
    for (const reader of members) {
      for (const writer of members) {
        const response = await reader.server!.app.request(`/v1/kv/via-${writer.id}`, { headers: { Accept: "application/json" } });
        expect(response.status).toBe(200);
        const body = await response.json();
        expect(body.value).toBe(`value ${writer.id}`);
        expect(body.seq).toBe(writer.id - 1);
      }
      sizes.add(reader.server!.node.ledger.treeSize);
    }
    expect([...sizes]).toEqual([3]);
    const notes = await Promise.all(members.map(async (m) => (await m.server!.app.request("/v1/checkpoint")).text()));
    expect(new Set(notes).size).toBe(1);
  });


  test("replication counters count the rounds, commits and peer requests writes took", async () => {
    const before = await Promise.all(members.map(async (m) => (await (await m.server!.app.request("/cluster/status")).json()).replication));
    const elected = await leader();
    const follower = members.find((m) => m.id !== elected.id)!;
    for (let i = 0; i < 5; i++) expect((await put(follower, `counted-${i}`, "x")).status).toBe(201);
    const after = await Promise.all(members.map(async (m) => (await (await m.server!.app.request("/cluster/status")).json()).replication));
    const grew = (name: string, i: number) => after[i][name] - before[i][name];
    for (let i = 0; i < members.length; i++) {
      expect(grew("readies", i)).toBeGreaterThan(0);
      expect(grew("storageCommits", i)).toBeGreaterThan(0);
      // Every node appended entries, which must be fsynced; commits that only applied entries need not be.
      expect(grew("storageSyncs", i)).toBeGreaterThan(0);
      expect(grew("storageSyncs", i)).toBeLessThanOrEqual(grew("storageCommits", i));
      expect(grew("entriesAppended", i)).toBeGreaterThan(0);
    }
    // The leader's Ready that only applies a write it learnt was committed needs no fsync.
    expect(grew("storageSyncs", members.indexOf(elected))).toBeLessThan(grew("storageCommits", members.indexOf(elected)));
    const followerAt = members.indexOf(follower);
    expect(grew("forwardedWrites", followerAt)).toBe(5);
    expect(grew("peerRequests", followerAt)).toBeGreaterThan(0);
    expect(grew("peerMessages", members.indexOf(elected))).toBeGreaterThan(0);
    const text = await (await follower.server!.app.request("/metrics/prometheus")).text();
    const forwarded = Number(/^scribe_raft_forwarded_writes_total (\d+)$/m.exec(text)?.[1]);
    expect(forwarded).toBeGreaterThanOrEqual(after[followerAt].forwardedWrites);
    expect(text).toMatch(/^scribe_raft_readies_total \d+$/m);
  });
  test("a follower answers a forwarded precondition failure with the leader's status", async () => {
    const elected = await leader();
    const follower = members.find((m) => m.id !== elected.id)!;
    const response = await follower.server!.app.request("/v1/kv/via-1", { method: "PUT", body: "again", headers: { "If-None-Match": "*" } });
    expect(response.status).toBe(412);
    expect((await response.json()).error.code).toBe("precondition_failed");
  });

  test("a follower answers a forwarded write once it applied it: a stale read there sees it at once", async () => {
    const elected = await leader();
    const follower = members.find((m) => m.id !== elected.id)!;
    const written = await put(follower, "forwarded-own", "mine");
    expect(written.status).toBe(201);
    const { seq } = await written.json();
    const read = await follower.server!.app.request("/v1/kv/forwarded-own?consistency=stale", { headers: { Accept: "application/json" } });
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ value: "mine", seq });
  });

  test("the same Idempotency-Key sent twice (via the leader and a follower, also concurrently) appends one entry", async () => {
    const elected = await leader();
    const follower = members.find((m) => m.id !== elected.id)!;
    const before = elected.server!.node.ledger.treeSize;
    const send = (member: Member, key: string, value: string) =>
      member.server!.app.request(`/v1/kv/idem-target`, { method: "PUT", body: value, headers: { "Idempotency-Key": key } });
    const first = await send(elected, "retry-1", "one");
    expect(first.status).toBe(201);
    const firstBody = await first.json();
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    // A retry through another node, even with a different body, gets the first result and appends nothing.
    const retry = await send(follower, "retry-1", "two");
    expect(retry.status).toBe(201);
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await retry.json()).toEqual(firstBody);
    // Concurrent duplicates (one proposal or several) also yield one entry.
    const racing = await Promise.all([send(elected, "race-1", "x"), send(follower, "race-1", "x"), send(elected, "race-1", "x")]);
    const seqs = await Promise.all(racing.map(async (response) => (await response.json()).seq));
    expect(new Set(seqs).size).toBe(1);
    await until("every node to apply", () =>
      running().every((m) => m.server!.node.ledger.treeSize === before + 2) ? true : undefined,
    );
    const history = await (await follower.server!.app.request("/v1/kv/idem-target?version=2", { headers: { Accept: "application/json" } })).json();
    expect(history.value).toBe("x");
    expect(history.seq).toBe(seqs[0]);
    // A refused first attempt is replayed as the same refusal.
    const refused = await elected.server!.app.request("/v1/kv/idem-target", { method: "PUT", body: "y", headers: { "Idempotency-Key": "refused-1", "If-None-Match": "*" } });
    expect(refused.status).toBe(412);
    const refusedAgain = await follower.server!.app.request("/v1/kv/idem-target-new", { method: "PUT", body: "y", headers: { "Idempotency-Key": "refused-1" } });
    expect(refusedAgain.status).toBe(412);
    for (const bad of ["", "x".repeat(129), "caf\u00e9"]) {
      expect((await elected.server!.app.request("/v1/kv/bad-idem", { method: "PUT", body: "z", headers: { "Idempotency-Key": bad } })).status).toBe(400);
    }
  });

  test("the peer port refuses a missing secret (401) and malformed bodies (400)", async () => {
    const url = `http://127.0.0.1:${members[0]!.peerServer.port}/raft/v1/messages`;
    expect((await fetch(url, { method: "POST", body: new Uint8Array([0x80]) })).status).toBe(401);
    const auth = { Authorization: "Bearer wrong-secret-wrong-secret" };
    expect((await fetch(url, { method: "POST", body: new Uint8Array([0x80]), headers: auth })).status).toBe(401);
    const good = { Authorization: `Bearer ${SECRET}` };
    // Not CBOR; [1]; a map; a batch whose one forwarded write is an empty array.
    for (const body of [new Uint8Array([0xff, 0x00]), new Uint8Array([0x81, 0x01]), new Uint8Array([0xa1, 0x01, 0x02]), new Uint8Array([0x82, 0x80, 0x81, 0x80])]) {
      expect((await fetch(url, { method: "POST", body, headers: good })).status).toBe(400);
    }
    expect(running().length).toBe(3);
  });

  test("after the leader stops, the others elect a new one and keep writing; the old leader catches up on restart", async () => {
    const old = await leader();
    await stopMember(old);
    const survivors = running();
    const fresh = await leader();
    expect(fresh.id).not.toBe(old.id);
    for (const member of survivors) {
      expect((await put(member, `after-${member.id}`, `later ${member.id}`)).status).toBe(201);
    }
    await startMember(old);
    const size = fresh.server!.node.ledger.treeSize;
    await until("the restarted node to catch up", () => (old.server!.node.ledger.treeSize === size ? true : undefined));
    for (const member of survivors) {
      const response = await old.server!.app.request(`/v1/kv/after-${member.id}`);
      expect(await response.text()).toBe(`later ${member.id}`);
    }
    const notes = await Promise.all(members.map(async (m) => (await m.server!.app.request("/v1/checkpoint")).text()));
    expect(new Set(notes).size).toBe(1);
    // Idempotency records are replicated: a leader elected after the first write replays its result.
    const retry = await old.server!.app.request("/v1/kv/idem-target", { method: "PUT", body: "three", headers: { "Idempotency-Key": "retry-1" } });
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect(old.server!.node.ledger.treeSize).toBe(size);
  });
});
