/**
 * In-process Raft clusters for tests: every member has memory storage that
 * survives its restarts (like files on disk), a real HTTP peer port on an
 * ephemeral loopback port (CBOR, cluster secret) whose handler a test may
 * wrap (to corrupt or cut a stream), and its client API through hono's
 * `app.request`. Waiting is polling with a deadline, never a fixed sleep.
 */
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { serve, type RunningServer } from "../../adapters/runtime/serve.ts";
import { resolveConfig } from "../../src/config/index.ts";
import { openClusterServer, type ClusterServer } from "../../src/server.ts";
import { type Storage } from "../../src/storage/index.ts";
import { type EntriesStreamLimits } from "../../src/node/entries-stream.ts";
import { until as pollUntil } from "./poll.ts";
import { testSigner } from "./server.ts";

export const CLUSTER_SECRET = "in-process-test-cluster-secret";
export const DEADLINE_MS = 10_000;

/** A peer-port handler wrapper: sees every request to the member and decides the response. */
export type PeerWrap = (request: Request, handler: (request: Request) => Promise<Response>) => Promise<Response>;

export interface TestMember {
  id: number;
  storage: Storage;
  peerServer: RunningServer;
  server: ClusterServer | undefined;
  /** Interposed on the member's peer port while set. */
  wrap: PeerWrap | undefined;
  /** Started with --join semantics (never founds a cluster). */
  join: boolean;
}

/** Storage that outlives a node's close(), like files on disk across a restart. */
function durable(storage: Storage): Storage {
  return { ...storage, close: async () => {} };
}

/** Poll `probe` until it returns a value (not undefined), or fail after `deadlineMs` (test/helpers/poll.ts). */
export function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, deadlineMs = DEADLINE_MS): Promise<T> {
  return pollUntil(what, probe, deadlineMs, 10);
}

export const clientAddress = (id: number) => `127.0.0.1:${10_000 + id}`;

export interface InProcessClusterOptions {
  /** [consensus] overrides (snapshot_entries, compaction_margin_entries, ...). */
  consensus?: Record<string, unknown>;
  streamLimits?: EntriesStreamLimits;
  /** Interpose on member `id`'s storage (its state still lives in `member.storage`). */
  wrapStorage?: (id: number, storage: Storage) => Storage;
}

export class InProcessCluster {
  readonly members = new Map<number, TestMember>();
  readonly #options: InProcessClusterOptions;
  #founders: Array<{ id: number; client_address: string; raft_address: string }> = [];

  private constructor(options: InProcessClusterOptions) {
    this.#options = options;
  }

  /** Found a cluster of `ids` and start every member. */
  static async found(ids: number[], options: InProcessClusterOptions = {}): Promise<InProcessCluster> {
    const cluster = new InProcessCluster(options);
    for (const id of ids) await cluster.#createMember(id, false);
    cluster.#founders = ids.map((id) => ({ id, client_address: clientAddress(id), raft_address: cluster.raftAddress(id) }));
    for (const id of ids) await cluster.start(id);
    return cluster;
  }

  async #createMember(id: number, join: boolean): Promise<TestMember> {
    const member: TestMember = { id, storage: createMemoryStorage(), server: undefined, wrap: undefined, join } as unknown as TestMember;
    member.peerServer = await serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: (request) => {
        const server = member.server;
        if (server === undefined) return new Response("down", { status: 503 });
        return member.wrap === undefined ? server.peerFetch(request) : member.wrap(request, server.peerFetch);
      },
    });
    this.members.set(id, member);
    return member;
  }

  raftAddress(id: number): string {
    return `127.0.0.1:${this.get(id).peerServer.port}`;
  }

  get(id: number): TestMember {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`no member ${id}`);
    return member;
  }

  server(id: number): ClusterServer {
    const server = this.get(id).server;
    if (server === undefined) throw new Error(`member ${id} is not running`);
    return server;
  }

  /** (Re)start member `id` on its storage. */
  async start(id: number): Promise<ClusterServer> {
    const member = this.get(id);
    const config = resolveConfig({
      node: { id: String(id), address: clientAddress(id), raft_address: this.raftAddress(id) },
      network: { raft_port: member.peerServer.port, client_port: 0 },
      consensus: { tick_ms: 20, election_timeout: 10, heartbeat_timeout: 2, ...this.#options.consensus },
      cluster: member.join ? { secret: CLUSTER_SECRET } : { secret: CLUSTER_SECRET, peers: this.#founders },
    });
    const server = await openClusterServer({
      config, storage: durable(this.#options.wrapStorage?.(id, member.storage) ?? member.storage), signer: testSigner, join: member.join, streamLimits: this.#options.streamLimits,
      onFatal: (error) => console.error(`member ${id} failed:`, error),
    });
    member.server = server;
    server.node.start();
    return server;
  }

  /** A new, empty member that will join (call `add` on a running member to admit it). */
  async createJoiner(id: number): Promise<TestMember> {
    const member = await this.#createMember(id, true);
    await this.start(id);
    return member;
  }

  async stop(id: number): Promise<void> {
    const member = this.get(id);
    const server = member.server;
    member.server = undefined;
    await server?.close();
  }

  running(): TestMember[] {
    return [...this.members.values()].filter((member) => member.server !== undefined);
  }

  /** The member every running member of `among` (default: all running voters) agrees leads. */
  async leader(among?: number[]): Promise<TestMember> {
    return until("an agreed leader", () => {
      const members = this.running().filter((m) => (among === undefined ? m.server!.node.status().role !== "removed" : among.includes(m.id)));
      const leaders = members.filter((m) => m.server!.node.status().role === "leader");
      if (leaders.length !== 1) return undefined;
      const id = String(leaders[0]!.id);
      return members.every((m) => m.server!.node.status().leaderId === id) ? leaders[0] : undefined;
    });
  }

  /** POST /cluster/members through member `via`. */
  async add(via: number, id: number, path = "/cluster/members"): Promise<Response> {
    const body = JSON.stringify({ id, client_address: clientAddress(id), raft_address: this.raftAddress(id) });
    return this.server(via).app.request(path, { method: "POST", body, headers: { "Content-Type": "application/json" } });
  }

  async remove(via: number, id: number, path = `/cluster/members/${id}`): Promise<Response> {
    return this.server(via).app.request(path, { method: "DELETE" });
  }

  async put(via: number, key: string, value: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.server(via).app.request(`/v1/kv/${key}`, { method: "PUT", body: value, headers });
  }

  /** Wait until every running member in `ids` has applied the leader's tree size. */
  async converged(ids: number[]): Promise<number> {
    return until(`members ${ids} to converge`, () => {
      const sizes = ids.map((id) => this.server(id).node.ledger.treeSize);
      const status = ids.map((id) => this.server(id).node.status());
      const same = sizes.every((size) => size === sizes[0]) && status.every((s) => s.appliedIndex === status[0]!.appliedIndex);
      return same ? sizes[0] : undefined;
    });
  }

  async close(): Promise<void> {
    for (const member of this.running()) await this.stop(member.id);
    for (const member of this.members.values()) await member.peerServer.stop();
  }
}
