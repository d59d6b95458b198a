/**
 * `--join` with real processes (sqlite storage, one shared signing key): a
 * 3-node cluster compacts its log; a fourth and a fifth node started at once
 * with empty data dirs and `--join` through a follower's URL are both added,
 * install a snapshot, are promoted and serve the same reads and checkpoints
 * (src/node/join.ts's retries are tested in join-client.test.ts); killed with -9 and
 * restarted without `--join`, it comes back from its own storage and keeps
 * up. A node with an empty data dir and neither peers nor --join refuses to
 * start.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSignerKey, generateSigner } from "../../src/checkpoint/index.ts";
import { freePort, startNode, type NodeProcess } from "../helpers/process.ts";
import { until as pollUntil } from "../helpers/poll.ts";

const SECRET = "join-test-cluster-secret";
const DEADLINE_MS = 20_000;
const WRITES = 60;

/** Poll until `probe` answers, or fail after DEADLINE_MS. */
const until = <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => pollUntil(what, probe, DEADLINE_MS, 50);

interface Member {
  id: number;
  configPath: string;
  client: number;
  process: NodeProcess | undefined;
}

const members: Member[] = [];
let dir = "";

afterAll(async () => {
  for (const member of members) {
    if (member.process === undefined) continue;
    member.process.child.kill("SIGKILL");
    await member.process.exited;
  }
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

const url = (member: Member, path: string) => `http://127.0.0.1:${member.client}${path}`;
const status = async (member: Member) => (await fetch(url(member, "/cluster/status"))).json();

describe("--join with real processes", () => {
  test("a new node joins through a follower, catches up by snapshot, and restarts from its own storage", async () => {
    dir = await mkdtemp(join(tmpdir(), "scribe-join-"));
    const keyFile = join(dir, "cluster.key");
    await writeFile(keyFile, `${formatSignerKey(generateSigner("cluster-test"))}\n`, { mode: 0o600 });
    const ports = await Promise.all(Array.from({ length: 10 }, freePort));
    const nodes = [1, 2, 3, 4, 5].map((id) => ({ id, client: ports[id - 1]!, raft: ports[id + 4]! }));
    const peerLines = nodes.slice(0, 3).map((p) => `  { id = ${p.id}, client_address = "127.0.0.1:${p.client}", raft_address = "127.0.0.1:${p.raft}" },`);
    for (const node of nodes) {
      const configPath = join(dir, `node${node.id}.toml`);
      const founding = node.id <= 3;
      await writeFile(configPath, [
        `[node]\nid = "${node.id}"\ndata_dir = "${join(dir, `node${node.id}`)}"`,
        `[network]\nlisten_addr = "127.0.0.1"\nclient_port = ${node.client}\nraft_port = ${node.raft}`,
        `[storage]\nadapter = "sqlite"`,
        `[consensus]\ntick_ms = 50\nelection_timeout = 10\nheartbeat_timeout = 2\nsnapshot_entries = 20\ncompaction_margin_entries = 5`,
        `[ledger]\nsigning_key_file = "${keyFile}"`,
        founding ? `[cluster]\nsecret = "${SECRET}"\npeers = [\n${peerLines.join("\n")}\n]` : `[cluster]\nsecret = "${SECRET}"`,
      ].join("\n\n"));
      members.push({ id: node.id, configPath, client: node.client, process: undefined });
    }
    const [one, two, three, four, five] = members as [Member, Member, Member, Member, Member];
    // Without peers or --join a node has nothing to found or join: it refuses to start.
    await expect(startNode(["--config", four.configPath])).rejects.toThrow(/no cluster state/);

    await Promise.all([one, two, three].map(async (m) => (m.process = await startNode(["--config", m.configPath]))));
    await until("a leader", async () => {
      const ids = await Promise.all([one, two, three].map(async (m) => (await status(m)).leaderId));
      return ids.every((id) => id !== null && id === ids[0]) ? true : undefined;
    });
    for (let i = 0; i < WRITES; i++) {
      const response = await fetch(url(members[i % 3]!, `/v1/kv/k${i % 10}`), { method: "PUT", body: `v${i}` });
      expect(response.status).toBeLessThan(300);
    }
    // Every PUT appended one entry. Leadership may have moved during the writes (a loaded machine), so ask
    // whichever node leads now, once it has applied them all.
    const size = WRITES;
    const compacted = await until("a leader that applied every write", async () => {
      for (const m of [one, two, three]) {
        const s = await status(m);
        if (s.role === "leader" && s.treeSize === size) return s;
      }
      return undefined;
    });
    expect(compacted.snapshot.logFirstIndex).toBeGreaterThan(20);

    const follower = [one, two, three].find((m) => String(m.id) !== compacted.nodeId)!;
    const joinVia = ["--join", `http://127.0.0.1:${follower.client}`];
    [four.process, five.process] = await Promise.all([startNode(["--config", four.configPath, ...joinVia]), startNode(["--config", five.configPath, ...joinVia])]);
    for (const joiner of [four, five]) {
      await until(`node ${joiner.id} to be a caught-up voter`, async () => {
        const s = await status(joiner);
        const self = s.members.find((m: { id: string }) => m.id === String(joiner.id));
        return s.treeSize === size && self?.role === "voter" && s.snapshot.installed === 1 ? true : undefined;
      });
      expect(joiner.process!.output()).toContain("joined the cluster via");
    }
    const voters = await until("every node to list five voters", async () => {
      const lists = await Promise.all(members.map(async (m) => (await status(m)).members.filter((x: { role: string }) => x.role === "voter").map((x: { id: string }) => x.id)));
      return lists.every((list) => list.join() === "1,2,3,4,5") ? lists : undefined;
    });
    expect(voters[0]).toEqual(["1", "2", "3", "4", "5"]);
    for (const treeSize of [1, size]) {
      const notes = await Promise.all([one, four].map(async (m) => (await fetch(url(m, `/v1/checkpoint?treeSize=${treeSize}`))).text()));
      expect(notes[1]).toBe(notes[0]!);
    }
    expect(await (await fetch(url(four, "/v1/kv/k3"))).text()).toBe(`v${WRITES - 7}`);

    // kill -9, then restart without --join: it comes back from its own storage and keeps up.
    four.process.child.kill("SIGKILL");
    await four.process.exited;
    four.process = await startNode(["--config", four.configPath]);
    expect((await fetch(url(one, "/v1/kv/after-restart"), { method: "PUT", body: "x" })).status).toBe(201);
    await until("node 4 to apply the new write", async () => ((await status(four)).treeSize === size + 1 ? true : undefined));
    expect(await (await fetch(url(four, "/v1/kv/after-restart"))).text()).toBe("x");
    expect((await status(four)).snapshot.installed).toBe(0);
  }, 60_000);
});
