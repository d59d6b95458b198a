/**
 * How long a new node takes to install a snapshot: three real node processes
 * (sqlite) take ENTRIES writes of VALUE_BYTES each (1000 per batch) and
 * compact their logs; a fourth joins with --join and the time from its
 * listening line until it has installed the snapshot (every entry pulled,
 * verified and stored) is printed. Prints numbers, passes or fails nothing.
 * (It would live in bench/, which another change owns at the moment.)
 *
 *   bun run scripts/measure-snapshot-install.ts [ENTRIES=100000] [VALUE_BYTES=100]
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSignerKey, generateSigner } from "../src/checkpoint/index.ts";
import { freePort, startNode, type NodeProcess } from "../test/helpers/process.ts";
import { until as pollUntil } from "../test/helpers/poll.ts";

const ENTRIES = Number(process.argv[2] ?? 100_000);
const VALUE_BYTES = Number(process.argv[3] ?? 100);
const BATCH_OPERATIONS = 1000;
const SECRET = "measure-snapshot-install-secret";
const WAIT_MS_MAX = 600_000;

const until = <T>(probe: () => Promise<T | undefined>): Promise<T> => pollUntil("the cluster", probe, WAIT_MS_MAX, 20);

const dir = await mkdtemp(join(tmpdir(), "scribe-measure-"));
const processes: NodeProcess[] = [];
try {
  const keyFile = join(dir, "cluster.key");
  await writeFile(keyFile, `${formatSignerKey(generateSigner("measure"))}\n`, { mode: 0o600 });
  const ports = await Promise.all(Array.from({ length: 8 }, freePort));
  const nodes = [1, 2, 3, 4].map((id) => ({ id, client: ports[id - 1]!, raft: ports[id + 3]! }));
  const peers = nodes.slice(0, 3).map((p) => `  { id = ${p.id}, client_address = "127.0.0.1:${p.client}", raft_address = "127.0.0.1:${p.raft}" },`);
  const configs = await Promise.all(nodes.map(async (node) => {
    const path = join(dir, `node${node.id}.toml`);
    await writeFile(path, [
      `[node]\nid = "${node.id}"\ndata_dir = "${join(dir, `node${node.id}`)}"`,
      `[network]\nlisten_addr = "127.0.0.1"\nclient_port = ${node.client}\nraft_port = ${node.raft}`,
      `[storage]\nadapter = "sqlite"`,
      `[consensus]\ntick_ms = 50\nelection_timeout = 10\nheartbeat_timeout = 2\nsnapshot_entries = 20\ncompaction_margin_entries = 5`,
      `[ledger]\nsigning_key_file = "${keyFile}"`,
      node.id <= 3 ? `[cluster]\nsecret = "${SECRET}"\npeers = [\n${peers.join("\n")}\n]` : `[cluster]\nsecret = "${SECRET}"`,
    ].join("\n\n"));
    return path;
  }));
  processes.push(...await Promise.all(configs.slice(0, 3).map((path) => startNode(["--config", path]))));
  const leader = await until(async () => {
    const status = await (await fetch(`http://127.0.0.1:${nodes[0]!.client}/cluster/leader`)).json();
    return status.leaderId === undefined ? undefined : nodes[Number(status.leaderId) - 1]!;
  });
  const value = "v".repeat(VALUE_BYTES);
  const writeStart = performance.now();
  for (let seq = 0; seq < ENTRIES; seq += BATCH_OPERATIONS) {
    const operations = Array.from({ length: Math.min(BATCH_OPERATIONS, ENTRIES - seq) }, (_, i) => ({ type: "put", key: `k/${seq + i}`, value }));
    const response = await fetch(`http://127.0.0.1:${leader.client}/v1/batch`, { method: "POST", body: JSON.stringify({ operations }), headers: { "Content-Type": "application/json" } });
    if (!response.ok) throw new Error(`batch: ${response.status} ${await response.text()}`);
  }
  console.log(`wrote ${ENTRIES} entries of ${VALUE_BYTES} bytes in ${((performance.now() - writeStart) / 1000).toFixed(1)} s`);
  const joiner = nodes[3]!;
  const joinStart = performance.now();
  processes.push(await startNode(["--config", configs[3]!, "--join", `http://127.0.0.1:${nodes[1]!.client}`]));
  const listening = performance.now();
  const status = await until(async () => {
    const s = await (await fetch(`http://127.0.0.1:${joiner.client}/cluster/status`)).json();
    return s.snapshot.installed === 1 && s.treeSize >= ENTRIES ? s : undefined;
  });
  const seconds = (performance.now() - listening) / 1000;
  const megabytes = (ENTRIES * (VALUE_BYTES + 60)) / 1e6;
  console.log(`node 4: process start to listening ${((listening - joinStart) / 1000).toFixed(2)} s; listening to snapshot installed ${seconds.toFixed(2)} s`);
  console.log(`install: ${ENTRIES} entries, ~${megabytes.toFixed(1)} MB of entries and values, ${(ENTRIES / seconds).toFixed(0)} entries/s; snapshot index ${status.snapshot.index}, tree size ${status.treeSize}`);
} finally {
  for (const child of processes) {
    child.child.kill("SIGKILL");
    await child.exited;
  }
  await rm(dir, { recursive: true, force: true });
}
