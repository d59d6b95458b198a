/**
 * A Raft cluster of real node processes for end-to-end tests and benchmarks:
 * N members started with `bun run src/main.ts --config FILE` on loopback
 * (sqlite storage by default, a temp directory for configs and data, one
 * shared checkpoint signing key and cluster secret), optionally with a
 * FaultProxy between every pair of peers (clients always talk to nodes
 * directly). Members can be killed with SIGKILL, paused with SIGSTOP,
 * resumed and restarted on the same data directory and client port; the
 * leader is found by polling with a deadline. Every exit is recorded, so a
 * test can tell the kills it asked for from crashes, and every incarnation's
 * output is kept.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSignerKey, generateSigner } from "../../src/checkpoint/index.ts";
import { FaultProxy } from "./fault-proxy.ts";
import { until } from "./poll.ts";
import { freePort, startNode, type NodeProcess } from "./process.ts";

const SECRET = "test-cluster-secret-0123456789";
/** How long one status probe of a node may take. */
const STATUS_TIMEOUT_MS = 1_000;

/** Options of {@link TestCluster.start}. */
export interface TestClusterOptions {
  /** Number of members, ids 1..size (default 3). */
  size?: number;
  /** Put a FaultProxy between every pair of peers (default false: peers connect directly). */
  proxy?: boolean;
  /** `[consensus]` keys (tick_ms, election_timeout, heartbeat_timeout); omitted keys keep the node defaults. */
  consensus?: Record<string, number>;
  /** Extra `[cluster]` keys (leader_wait_ms, request_timeout_ms). */
  cluster?: Record<string, number>;
  /** Storage adapter (default sqlite). */
  storage?: string;
  /** Runtime flags put before `run` in every member's command line (e.g. `--cpu-prof-md`). */
  runtimeArgs?: string[];
  /** The whole command that runs a member, instead of `bun [runtimeArgs] run src/main.ts` (e.g. `node dist/node/main.js`). */
  command?: string[];
}

/** What `/cluster/status` reports (the fields tests use). */
export interface ClusterStatus {
  nodeId: string;
  role: string;
  term: number;
  /** Null while no leader is known. */
  leaderId: string | null;
  commitIndex: number;
  appliedIndex: number;
  treeSize: number;
}

/** An exit of a member process the test did not ask for. */
export interface UnexpectedExit {
  id: number;
  code: number | string;
}

interface Member {
  id: number;
  clientPort: number;
  /** 0 behind the proxy: the node binds an ephemeral Raft port and the proxy learns it. */
  raftPort: number;
  configPath: string;
  process: NodeProcess | undefined;
  paused: boolean;
  /** Set while the test kills the member on purpose. */
  killing: boolean;
  outputs: Array<() => string>;
}

export class TestCluster {
  readonly dir: string;
  readonly proxy: FaultProxy | undefined;
  readonly #members = new Map<number, Member>();
  readonly #unexpectedExits: UnexpectedExit[] = [];
  readonly #command: string[];

  private constructor(dir: string, proxy: FaultProxy | undefined, command: string[]) {
    this.dir = dir;
    this.proxy = proxy;
    this.#command = command;
  }

  /** Write the configs and start every member (in parallel); does not wait for a leader. */
  static async start(options: TestClusterOptions = {}): Promise<TestCluster> {
    const ids = Array.from({ length: options.size ?? 3 }, (_, i) => i + 1);
    const dir = await mkdtemp(join(tmpdir(), "scribe-cluster-"));
    const proxy = options.proxy === true ? await FaultProxy.open({ nodeIds: ids }) : undefined;
    const cluster = new TestCluster(dir, proxy, options.command ?? [process.execPath, ...options.runtimeArgs ?? [], "run", "src/main.ts"]);
    try {
      await cluster.#writeConfigs(ids, options);
      await Promise.all(ids.map((id) => cluster.#launch(cluster.#member(id))));
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  async #writeConfigs(ids: number[], options: TestClusterOptions): Promise<void> {
    const keyFile = join(this.dir, "cluster.key");
    await writeFile(keyFile, `${formatSignerKey(generateSigner("test-cluster"))}\n`, { mode: 0o600 });
    for (const id of ids) {
      this.#members.set(id, {
        id, clientPort: await freePort(), raftPort: await freePort(),
        configPath: join(this.dir, `node${id}.toml`), process: undefined, paused: false, killing: false, outputs: [],
      });
    }
    for (const member of this.#members.values()) {
      const peerLines = [...this.#members.values()].map((peer) => {
        // Behind the proxy, a member reaches each peer through the proxy's listener for that directed link.
        const raft = peer === member ? member.raftPort : this.proxy?.port(member.id, peer.id) ?? peer.raftPort;
        return `  { id = ${peer.id}, client_address = "127.0.0.1:${peer.clientPort}", raft_address = "127.0.0.1:${raft}" },`;
      });
      const table = (name: string, values: Record<string, number> | undefined) =>
        Object.entries(values ?? {}).reduce((text, [key, value]) => `${text}\n${key} = ${value}`, `[${name}]`);
      await writeFile(member.configPath, [
        `[node]\nid = "${member.id}"\ndata_dir = "${join(this.dir, `node${member.id}`)}"`,
        `[network]\nlisten_addr = "127.0.0.1"\nclient_port = ${member.clientPort}\nraft_port = ${member.raftPort}`,
        `[storage]\nadapter = "${options.storage ?? "sqlite"}"`,
        table("consensus", options.consensus),
        `[ledger]\nsigning_key_file = "${keyFile}"`,
        `${table("cluster", options.cluster)}\nsecret = "${SECRET}"\npeers = [\n${peerLines.join("\n")}\n]`,
      ].join("\n\n") + "\n");
    }
  }

  async #launch(member: Member): Promise<void> {
    const node = await startNode(["--config", member.configPath], { command: this.#command });
    member.process = node;
    member.paused = false;
    member.outputs.push(node.output);
    void node.exited.then((code) => {
      if (member.process === node) member.process = undefined;
      if (!member.killing) this.#unexpectedExits.push({ id: member.id, code });
    });
    const raftPort = Number(/raft peers on [^\s]+:(\d+)/.exec(node.output())?.[1]);
    if (!Number.isInteger(raftPort) || raftPort <= 0) throw new Error(`node ${member.id} did not report its Raft port:\n${node.output()}`);
    this.proxy?.setTarget(member.id, raftPort);
  }

  #member(id: number): Member {
    const member = this.#members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  /** Every member id. */
  get ids(): number[] {
    return [...this.#members.keys()];
  }

  /** Members whose process is alive (paused ones included). */
  running(): number[] {
    return this.ids.filter((id) => this.#member(id).process !== undefined);
  }

  /** Members alive and not paused: the ones that answer. */
  responsive(): number[] {
    return this.running().filter((id) => !this.#member(id).paused);
  }

  isPaused(id: number): boolean {
    return this.#member(id).paused;
  }

  /** URL of `path` on member `id`'s client port. */
  url(id: number, path: string): string {
    return `http://127.0.0.1:${this.#member(id).clientPort}${path}`;
  }

  /** SIGKILL member `id` and wait for it to be gone. */
  kill9(id: number): Promise<void> {
    return this.#stop(id, "SIGKILL");
  }

  /** SIGTERM member `id` (a graceful shutdown) and wait for it to be gone. */
  terminate(id: number): Promise<void> {
    return this.#stop(id, "SIGTERM");
  }

  async #stop(id: number, signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    const member = this.#member(id);
    const node = member.process;
    if (node === undefined) throw new Error(`member ${id} is not running`);
    member.killing = true;
    node.child.kill(signal);
    await node.exited;
    member.killing = false;
    // SIGKILL also ends a SIGSTOPped process (a paused one ignores SIGTERM until continued).
    if (signal === "SIGKILL") member.paused = false;
    member.process = undefined;
    this.proxy?.setTarget(id, undefined);
  }

  /** Process id of member `id`, undefined while it is not running. */
  pid(id: number): number | undefined {
    return this.#member(id).process?.child.pid;
  }

  /** SIGSTOP member `id`: it stays connected but answers nothing. */
  sigstop(id: number): void {
    const member = this.#member(id);
    if (member.process === undefined) throw new Error(`member ${id} is not running`);
    member.process.child.kill("SIGSTOP");
    member.paused = true;
  }

  /** SIGCONT member `id`. */
  sigcont(id: number): void {
    const member = this.#member(id);
    if (member.process === undefined) throw new Error(`member ${id} is not running`);
    member.process.child.kill("SIGCONT");
    member.paused = false;
  }

  /** Start a killed member again on its data directory and client port. */
  async restart(id: number): Promise<void> {
    const member = this.#member(id);
    if (member.process !== undefined) throw new Error(`member ${id} is still running`);
    await this.#launch(member);
  }

  /** `/cluster/status` of member `id`. */
  async status(id: number): Promise<ClusterStatus> {
    const response = await fetch(this.url(id, "/cluster/status"), { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`member ${id}: /cluster/status answered ${response.status}`);
    return (await response.json()) as ClusterStatus;
  }

  /**
   * One probe: the leader every member of `among` (default: the responsive ones) reports, if they agree
   * and, when it is one of them, it reports itself leader; undefined otherwise.
   */
  async leader(among = this.responsive()): Promise<number | undefined> {
    if (among.length === 0) return undefined;
    const statuses = await Promise.all(among.map((id) => this.status(id).catch(() => undefined)));
    const leaderId = statuses[0]?.leaderId;
    if (leaderId === undefined || leaderId === null || statuses.some((status) => status?.leaderId !== leaderId)) return undefined;
    const self = statuses[among.indexOf(Number(leaderId))];
    return self === undefined || self.role === "leader" ? Number(leaderId) : undefined;
  }

  /** Poll until the members of `among` agree on a leader not in `exclude`; throws after `deadlineMs`. */
  waitForLeader(options: { deadlineMs: number; among?: number[]; exclude?: number[] }): Promise<number> {
    return until("an agreed leader", async () => {
      const leader = await this.leader(options.among ?? this.responsive());
      return leader !== undefined && !(options.exclude ?? []).includes(leader) ? leader : undefined;
    }, options.deadlineMs);
  }

  /** Exits the test did not cause (a crash, an assertion, a fail-stop). */
  unexpectedExits(): readonly UnexpectedExit[] {
    return this.#unexpectedExits;
  }

  /** Everything member `id` printed, incarnation by incarnation. */
  output(id: number): string {
    return this.#member(id).outputs.map((output, i) => `--- node ${id}, incarnation ${i + 1} ---\n${output()}`).join("\n");
  }

  /** Kill every member, close the proxy and (unless `keepDir`) remove the directory. */
  async close(options: { keepDir?: boolean } = {}): Promise<void> {
    await Promise.all(this.running().map((id) => this.kill9(id)));
    await this.proxy?.close();
    if (options.keepDir !== true) await rm(this.dir, { recursive: true, force: true });
  }
}
