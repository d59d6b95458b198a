/**
 * Concurrent clients of the real-process fault test, and the history they
 * record. Each client runs one operation at a time on a small set of keys:
 * writers PUT unique values to the node they believe leads or to a follower
 * (retrying an unacknowledged write elsewhere with the same Idempotency-Key),
 * readers GET linearizably from any node, and stale readers GET with
 * `?consistency=stale`. Every operation is recorded with its start and end
 * (ms on this process's monotonic clock) and its outcome:
 *
 * - `ok`: acknowledged, with the value and the seq the node reported;
 * - `failed`: definitely not applied (a 4xx);
 * - `unknown`: a 5xx, a timeout, any network error — a write may or may not
 *   have taken effect; a read constrains nothing. Even a refused connection:
 *   Bun's fetch re-sends a PUT on a fresh connection when a reused keep-alive
 *   connection closes before the response (a node killed mid-request), so
 *   the refusal may answer a re-send of a request the node already had.
 *
 * Clients know nothing of the faults: a client of a paused node waits for
 * its own timeout, as a real one would.
 */
import { type TestCluster } from "../helpers/process-cluster.ts";
import { Random } from "../sim/random.ts";

/** What a client does. */
export type ClientRole = "write-leader" | "write-follower" | "read" | "stale-read";

/** One recorded operation. */
export interface OperationRecord {
  client: number;
  kind: "write" | "read" | "stale-read";
  key: string;
  /** The value written, or the value read (null: the key was absent). */
  value: string | null;
  startMs: number;
  endMs: number;
  outcome: "ok" | "failed" | "unknown";
  /** Seq of the entry written or read, when `ok` and not absent. */
  seq?: number;
  /** Version written or read, when `ok` and not absent. */
  version?: number;
  /** Per attempt: node and what came back ("n2 201", "n1 503", "n3 TimeoutError"). */
  attempts: string[];
}

/** Options of {@link Workload}. */
export interface WorkloadOptions {
  roles: readonly ClientRole[];
  keys: readonly string[];
  seed: number;
  /** How long a client waits for one request. */
  requestTimeoutMs: number;
  /** Attempts of one write (the first and its retries, all with one Idempotency-Key). */
  writeAttemptsMax: number;
  /** Most think time between two operations of a client. */
  thinkMsMax: number;
}

/** Pause between attempts of one write. */
const RETRY_BACKOFF_MS = 50;
/** How often the clients' shared idea of the leader is refreshed. */
const LEADER_REFRESH_MS = 200;

/** What one request got; `seq` and `version` are absent when a read found no value. */
type Attempt = { outcome: "ok"; seq?: number; version?: number } | { outcome: "failed" | "unknown" };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Workload {
  readonly history: OperationRecord[] = [];
  readonly #cluster: TestCluster;
  readonly #options: WorkloadOptions;
  readonly #epochMs = performance.now();
  #believedLeader: number | undefined;
  #running = false;
  #loops: Array<Promise<void>> = [];

  constructor(cluster: TestCluster, options: WorkloadOptions) {
    this.#cluster = cluster;
    this.#options = options;
  }

  /** Milliseconds since the workload was created, on the monotonic clock every record uses. */
  now(): number {
    return performance.now() - this.#epochMs;
  }

  start(): void {
    this.#running = true;
    this.#loops = [
      this.#watchLeader(new Random(this.#options.seed)),
      ...this.#options.roles.map((role, client) => this.#client(client, role, new Random(this.#options.seed * 1000 + client + 1))),
    ];
  }

  /** Stop issuing operations and wait for the ones in flight (each bounded by its timeout). */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  async #watchLeader(random: Random): Promise<void> {
    while (this.#running) {
      const id = random.pick(this.#cluster.ids);
      try {
        const response = await fetch(this.#cluster.url(id, "/cluster/leader"), { signal: AbortSignal.timeout(LEADER_REFRESH_MS * 2) });
        const body = await response.json();
        if (response.ok) this.#believedLeader = Number(body.leaderId);
      } catch {
        // A dead or paused node: ask another next time.
      }
      await sleep(LEADER_REFRESH_MS);
    }
  }

  async #client(client: number, role: ClientRole, random: Random): Promise<void> {
    for (let n = 0; this.#running; n++) {
      const key = random.pick(this.#options.keys);
      if (role === "write-leader" || role === "write-follower") await this.#write(client, role, key, `c${client}.${n}`, random);
      else await this.#read(client, role, key, random);
      await sleep(random.int(0, this.#options.thinkMsMax));
    }
  }

  /** A node for `role`: the believed leader, any other node, or any node. */
  #target(role: ClientRole, random: Random, avoid?: number): number {
    const ids = this.#cluster.ids.filter((id) => id !== avoid);
    const leader = this.#believedLeader;
    if (role === "write-leader" && leader !== undefined && ids.includes(leader)) return leader;
    const followers = ids.filter((id) => id !== leader);
    return random.pick(role === "write-follower" && followers.length > 0 ? followers : ids);
  }

  async #write(client: number, role: ClientRole, key: string, value: string, random: Random): Promise<void> {
    const record: OperationRecord = { client, kind: "write", key, value, startMs: this.now(), endMs: 0, outcome: "failed", attempts: [] };
    let node = this.#target(role, random);
    for (let attempt = 0; attempt < this.#options.writeAttemptsMax; attempt++) {
      if (attempt > 0) {
        await sleep(RETRY_BACKOFF_MS);
        node = this.#target("write-follower", random, node);
      }
      const result = await this.#request(record, node, `/v1/kv/${encodeURIComponent(key)}`, {
        method: "PUT", body: value, headers: { "Content-Type": "text/plain", "Idempotency-Key": value },
      });
      if (result.outcome === "ok") {
        Object.assign(record, result);
        break;
      }
      // Once an attempt may have been applied, the write's outcome stays unknown unless a retry is acknowledged.
      if (result.outcome === "unknown") record.outcome = "unknown";
    }
    record.endMs = this.now();
    this.history.push(record);
  }

  async #read(client: number, role: ClientRole, key: string, random: Random): Promise<void> {
    const kind = role === "stale-read" ? "stale-read" : "read";
    const record: OperationRecord = { client, kind, key, value: null, startMs: this.now(), endMs: 0, outcome: "unknown", attempts: [] };
    const query = kind === "stale-read" ? "?consistency=stale" : "";
    const result = await this.#request(record, this.#target(role, random), `/v1/kv/${encodeURIComponent(key)}${query}`, { headers: { Accept: "application/json" } });
    record.endMs = this.now();
    Object.assign(record, result);
    this.history.push(record);
  }

  /** One HTTP attempt; on `ok` for a read, sets `record.value` to what was read. */
  async #request(record: OperationRecord, node: number, path: string, init: RequestInit): Promise<Attempt> {
    let response: Response;
    try {
      response = await fetch(this.#cluster.url(node, path), { ...init, signal: AbortSignal.timeout(this.#options.requestTimeoutMs) });
    } catch (error) {
      record.attempts.push(`n${node} ${(error as { code?: string }).code ?? (error as Error).name}`);
      return { outcome: "unknown" };
    }
    record.attempts.push(`n${node} ${response.status}`);
    let body: { seq?: unknown; version?: unknown; value?: unknown; error?: { code?: unknown } };
    try {
      body = await response.json();
    } catch {
      return { outcome: "unknown" };
    }
    if (record.kind !== "write" && response.status === 404 && body.error?.code === "not_found") return { outcome: "ok" };
    if (response.status === 200 || response.status === 201) {
      if (record.kind !== "write") record.value = String(body.value);
      return { outcome: "ok", seq: Number(body.seq), version: Number(body.version) };
    }
    return { outcome: response.status >= 400 && response.status < 500 ? "failed" : "unknown" };
  }
}
