/**
 * A real 3-process cluster on loopback ports (sqlite storage, one shared
 * signing key): writes through every node, identical reads and checkpoints
 * on every node, kill -9 of the leader, writes through the survivors under a
 * new leader, restart and catch-up. Every acknowledged write must then be
 * readable, with the same seq, from every node.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSignerKey, generateSigner } from "../../src/checkpoint/index.ts";
import { startNode, type NodeProcess } from "../helpers/process.ts";

const SECRET = "process-test-cluster-secret";
const DEADLINE_MS = 15_000;
const WRITERS_PER_NODE = 4;

/** A port the OS just handed out (bound, then released). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, deadlineMs = DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Member {
  id: number;
  configPath: string;
  clientPort: number;
  process: NodeProcess | undefined;
}

const members: Member[] = [];
let dir = "";

const url = (member: Member, path: string) => `http://127.0.0.1:${member.clientPort}${path}`;

async function start(member: Member): Promise<void> {
  member.process = await startNode(["--config", member.configPath]);
}

afterAll(async () => {
  for (const member of members) {
    if (member.process === undefined) continue;
    member.process.child.kill("SIGKILL");
    await member.process.exited;
  }
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

/** The leader id every running node agrees on. */
async function agreedLeader(running: Member[]): Promise<number> {
  return until("an agreed leader", async () => {
    const ids = await Promise.all(running.map(async (m) => {
      const response = await fetch(url(m, "/cluster/leader"));
      return response.ok ? Number((await response.json()).leaderId) : undefined;
    }));
    return ids.every((id) => id !== undefined && id === ids[0]) ? ids[0] : undefined;
  });
}

/**
 * PUT with the key as its Idempotency-Key, retrying 503s and network errors until acknowledged (201, or
 * 201 replayed) or the deadline; a retry goes to `via()`, so a write sent to a killed node is retried elsewhere.
 */
async function putAcknowledged(member: Member, key: string, value: string, via: () => Member = () => member): Promise<void> {
  await until(`PUT ${key} via node ${member.id}`, async () => {
    const target = member.process !== undefined ? member : via();
    const response = await fetch(url(target, `/v1/kv/${encodeURIComponent(key)}`), { method: "PUT", body: value, headers: { "Idempotency-Key": key } });
    await response.arrayBuffer();
    if (response.status === 201) return true;
    if (response.status === 503) return undefined;
    throw new Error(`PUT ${key}: ${response.status}`);
  });
}

/** Every node serves every acknowledged value with the same seq, and the same checkpoint. */
async function expectConverged(acknowledged: Map<string, string>): Promise<void> {
  const seqs = new Map<string, number>();
  for (const member of members) {
    for (const [key, value] of acknowledged) {
      const response = await fetch(url(member, `/v1/kv/${encodeURIComponent(key)}`), { headers: { Accept: "application/json" } });
      expect(response.status).toBe(200);
      const body = await response.json();
      expect(body.value).toBe(value);
      if (!seqs.has(key)) seqs.set(key, body.seq);
      expect(body.seq).toBe(seqs.get(key)!);
    }
  }
  const notes = await Promise.all(members.map(async (m) => (await fetch(url(m, "/v1/checkpoint"))).text()));
  expect(new Set(notes).size).toBe(1);
}

describe("3-process Raft cluster", () => {
  test("replicates, survives kill -9 of the leader, and the restarted node catches up", async () => {
    dir = await mkdtemp(join(tmpdir(), "scribe-cluster-"));
    const keyFile = join(dir, "cluster.key");
    await writeFile(keyFile, `${formatSignerKey(generateSigner("cluster-test"))}\n`, { mode: 0o600 });
    const ports = await Promise.all(Array.from({ length: 6 }, freePort));
    const peers = [1, 2, 3].map((id) => ({ id, client: ports[id - 1]!, raft: ports[id + 2]! }));
    const peerLines = peers.map((p) => `  { id = ${p.id}, client_address = "127.0.0.1:${p.client}", raft_address = "127.0.0.1:${p.raft}" },`);
    for (const peer of peers) {
      const configPath = join(dir, `node${peer.id}.toml`);
      await writeFile(configPath, [
        `[node]\nid = "${peer.id}"\ndata_dir = "${join(dir, `node${peer.id}`)}"`,
        `[network]\nlisten_addr = "127.0.0.1"\nclient_port = ${peer.client}\nraft_port = ${peer.raft}`,
        `[storage]\nadapter = "sqlite"`,
        `[consensus]\ntick_ms = 50\nelection_timeout = 10\nheartbeat_timeout = 2`,
        `[ledger]\nsigning_key_file = "${keyFile}"`,
        `[cluster]\nsecret = "${SECRET}"\npeers = [\n${peerLines.join("\n")}\n]`,
      ].join("\n\n"));
      members.push({ id: peer.id, configPath, clientPort: peer.client, process: undefined });
    }
    await Promise.all(members.map(start));
    const firstLeader = await agreedLeader(members);

    const acknowledged = new Map<string, string>();
    for (const member of members) {
      for (let i = 0; i < 5; i++) {
        const key = `first/${member.id}/${i}`;
        await putAcknowledged(member, key, `value ${key}`);
        acknowledged.set(key, `value ${key}`);
      }
    }
    await expectConverged(acknowledged);

    // Concurrent writers on every node while the leader is killed: whatever was acknowledged must survive.
    const victim = members.find((m) => m.id === firstLeader)!;
    const survivors = members.filter((m) => m !== victim);
    let writing = true;
    let killedAt = Infinity;
    let firstAckAfterKill = Infinity;
    // Every write is retried (same Idempotency-Key) until acknowledged, through a survivor once its node is gone.
    let retries = 0;
    const writers = members.flatMap((member) => Array.from({ length: WRITERS_PER_NODE }, async (_, writer) => {
      for (let i = 0; writing && i < 10_000; i++) {
        const key = `load/${member.id}/${writer}/${i}`;
        await putAcknowledged(member, key, `value ${key}`, () => survivors[retries++ % survivors.length]!);
        acknowledged.set(key, `value ${key}`);
        if (Date.now() > killedAt) firstAckAfterKill = Math.min(firstAckAfterKill, Date.now());
      }
    }));
    await new Promise((resolve) => setTimeout(resolve, 500));
    victim.process!.child.kill("SIGKILL");
    await victim.process!.exited;
    victim.process = undefined;
    killedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    writing = false;
    await Promise.all(writers);
    await Promise.all(survivors.map(async (member) => {
      for (let i = 0; i < 10; i++) {
        const key = `after/${member.id}/${i}`;
        await putAcknowledged(member, key, `value ${key}`);
        acknowledged.set(key, `value ${key}`);
      }
    }));
    const newLeader = await agreedLeader(survivors);
    expect(newLeader).not.toBe(firstLeader);
    const failoverMs = firstAckAfterKill - killedAt;
    console.log(`writes acknowledged: ${acknowledged.size}; first write acknowledged ${failoverMs} ms after the kill`);
    expect(failoverMs).toBeLessThan(DEADLINE_MS);

    await start(victim);
    const size = Number((await (await fetch(url(survivors[0]!, "/cluster/status"))).json()).treeSize);
    await until("the restarted node to catch up", async () => {
      const status = await (await fetch(url(victim, "/cluster/status"))).json();
      return status.treeSize === size ? true : undefined;
    });
    await expectConverged(acknowledged);
    // Retries carried the first attempt's Idempotency-Key: every write appended exactly once.
    expect(size).toBe(acknowledged.size);
  }, 60_000);
});
