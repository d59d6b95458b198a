/**
 * What the real-process fault test checks once the cluster has healed and
 * converged, each check adding human-readable violations instead of failing
 * on the first: the nodes' logs are identical; every acknowledged write is in
 * the log at the seq it was acknowledged with, and readable there on every
 * node; nothing was applied twice or out of real-time order, nothing a client
 * was told failed was applied, nothing appears that no client wrote; reads
 * saw committed entries only; checkpoints are byte-identical and their roots
 * are the Merkle roots of the agreed log; the history is linearizable.
 */
import { createHash } from "node:crypto";
import { type TestCluster } from "../helpers/process-cluster.ts";
import { fromBase64, toBase64 } from "../../src/encoding.ts";
import { defaultHasher, leafHash, MerkleFrontier } from "../../src/merkle/index.ts";
import { checkLinearizable, checkRegister, type RegisterOperation } from "../sim/linearizability.ts";
import { type OperationRecord } from "./fault-workload.ts";

/** Examples kept per check; the count of the rest is reported. */
const EXAMPLES_MAX = 10;
/** Largest page `/v1/log` serves with the default config. */
const LOG_PAGE_MAX = 1000;
/** Requests in flight at once while reading every acknowledged write back from every node. */
const READBACK_CONCURRENCY = 16;
/** How long one read-back request may take. */
const READBACK_TIMEOUT_MS = 5_000;

/** One entry as `GET /v1/log` shows it. */
export interface LogEntryJson {
  seq: number;
  op: number;
  key: string;
  version: number;
  valueHash: string | null;
  entry: string;
  leafHash: string;
}

/** Problems found, grouped by check. */
export class Violations {
  readonly #byCheck = new Map<string, { examples: string[]; count: number }>();

  add(check: string, message: string): void {
    const group = this.#byCheck.get(check) ?? { examples: [], count: 0 };
    group.count++;
    if (group.examples.length < EXAMPLES_MAX) group.examples.push(message);
    this.#byCheck.set(check, group);
  }

  /** One line per example, plus how many more each check found. */
  lines(): string[] {
    return [...this.#byCheck].flatMap(([check, { examples, count }]) => [
      ...examples.map((example) => `${check}: ${example}`),
      ...(count > examples.length ? [`${check}: ... and ${count - examples.length} more`] : []),
    ]);
  }
}

/** The log's `valueHash` of a UTF-8 value: base64 of its SHA-256. */
export function valueHash(value: string): string {
  return createHash("sha256").update(value).digest("base64");
}

/** Entries [0, treeSize) of node `id`'s log, read locally. */
export async function readLog(cluster: TestCluster, id: number, treeSize: number): Promise<LogEntryJson[]> {
  const entries: LogEntryJson[] = [];
  while (entries.length < treeSize) {
    const limit = Math.min(LOG_PAGE_MAX, treeSize - entries.length);
    const response = await fetch(cluster.url(id, `/v1/log?from=${entries.length}&limit=${limit}&consistency=stale`));
    if (!response.ok) throw new Error(`node ${id}: /v1/log answered ${response.status}`);
    const page = (await response.json()) as { entries: LogEntryJson[] };
    if (page.entries.length === 0) throw new Error(`node ${id}: log ends at ${entries.length}, below ${treeSize}`);
    entries.push(...page.entries);
  }
  return entries.slice(0, treeSize);
}

/** Every node's log is entry-for-entry identical to the first node's. */
export function checkLogsIdentical(logs: Map<number, LogEntryJson[]>, violations: Violations): void {
  const [[firstId, first]] = [...logs];
  for (const [id, log] of logs) {
    const seq = first!.findIndex((entry, i) => JSON.stringify(entry) !== JSON.stringify(log[i]));
    if (seq !== -1) violations.add("divergence", `node ${id} differs from node ${firstId} at seq ${seq}: ${JSON.stringify(log[seq])} vs ${JSON.stringify(first![seq])}`);
  }
}

/** Where each written value landed in the agreed log (values are unique per write). */
function positions(log: readonly LogEntryJson[]): Map<string, number[]> {
  const byHash = new Map<string, number[]>();
  for (const entry of log) {
    if (entry.valueHash === null) continue;
    const seqs = byHash.get(entry.valueHash) ?? [];
    seqs.push(entry.seq);
    byHash.set(entry.valueHash, seqs);
  }
  return byHash;
}

/**
 * Writes against the log: an acknowledged write is at its seq, once; a write reported failed is absent; no
 * value was applied twice (retries carried one Idempotency-Key); every entry of a workload key was written
 * by some client; acknowledged writes are in the log in real-time order. Reads that returned a value saw
 * the entry at the seq they report, i.e. a committed one (stale reads included).
 */
export function checkHistoryAgainstLog(history: readonly OperationRecord[], log: readonly LogEntryJson[], keys: readonly string[], violations: Violations): void {
  const seqsOf = positions(log);
  const written = new Map(history.filter((op) => op.kind === "write").map((op) => [valueHash(op.value!), op.value!]));
  for (const [hash, seqs] of seqsOf) if (seqs.length > 1) violations.add("duplicate", `${written.get(hash) ?? hash} applied at seqs ${seqs.join(", ")}`);
  for (const entry of log) {
    if (keys.includes(entry.key) && (entry.valueHash === null || !written.has(entry.valueHash))) {
      violations.add("phantom", `seq ${entry.seq} (key ${entry.key}) holds a value no client wrote`);
    }
  }
  for (const op of history) {
    if (op.value === null || op.outcome === "unknown") continue;
    const seqs = seqsOf.get(valueHash(op.value)) ?? [];
    const what = `${op.kind} of ${op.key}=${op.value} by client ${op.client} [${op.attempts.join(", ")}]`;
    if (op.kind === "write" && op.outcome === "failed") {
      if (seqs.length > 0) violations.add("failed write applied", `${what} is at seq ${seqs.join(", ")}`);
      continue;
    }
    const entry = log[op.seq!];
    if (entry === undefined || entry.key !== op.key || entry.valueHash !== valueHash(op.value) || entry.version !== op.version) {
      const check = op.kind === "write" ? "lost write" : "read of uncommitted data";
      violations.add(check, `${what} reported seq ${op.seq}, where the log holds ${JSON.stringify(entry ?? null)}`);
    }
  }
  checkRealTimeOrder(history.filter((op) => op.kind === "write" && op.outcome === "ok"), violations);
}

/** An acknowledged write that ended before another began has the smaller seq. */
function checkRealTimeOrder(acknowledged: readonly OperationRecord[], violations: Violations): void {
  const byEnd = [...acknowledged].sort((a, b) => a.endMs - b.endMs);
  const byStart = [...acknowledged].sort((a, b) => a.startMs - b.startMs);
  let ended = 0;
  let latest: OperationRecord | undefined;
  for (const op of byStart) {
    while (ended < byEnd.length && byEnd[ended]!.endMs < op.startMs) {
      const done = byEnd[ended++]!;
      if (latest === undefined || done.seq! > latest.seq!) latest = done;
    }
    if (latest !== undefined && latest.seq! >= op.seq!) {
      violations.add("real-time order", `${latest.value} (seq ${latest.seq}) was acknowledged before ${op.value} (seq ${op.seq}) was sent`);
    }
  }
}

/**
 * The register history for the linearizability checker: acknowledged writes and linearizable reads with
 * their times; an unknown write that reached the log may take effect any time after its start; one that
 * never reached the log is left out (taking effect after everything else is the same as never). Stale
 * reads and reads without an answer constrain nothing.
 */
export function registerHistory(history: readonly OperationRecord[], log: readonly LogEntryJson[]): RegisterOperation[] {
  const inLog = new Set(positions(log).keys());
  const operations: RegisterOperation[] = [];
  for (const op of history) {
    const label = `client ${op.client} ${op.kind} [${op.attempts.join(", ")}]`;
    if (op.kind === "write") {
      if (op.outcome === "ok") operations.push({ key: op.key, kind: "write", value: op.value, callTime: op.startMs, returnTime: op.endMs, label });
      else if (op.outcome === "unknown" && inLog.has(valueHash(op.value!))) {
        operations.push({ key: op.key, kind: "write", value: op.value, callTime: op.startMs, returnTime: Infinity, label });
      }
    } else if (op.kind === "read" && op.outcome === "ok") {
      operations.push({ key: op.key, kind: "read", value: op.value, callTime: op.startMs, returnTime: op.endMs, label });
    }
  }
  return operations;
}

/** Operations shown before the one that makes a history non-linearizable. */
const CONTEXT_OPERATIONS = 8;

/**
 * The shortest prefix (by call time) of a non-linearizable register history that is still not
 * linearizable, found by bisection: its last operation is the first one no linearization can take.
 */
function shortestFailingPrefix(operations: readonly RegisterOperation[]): RegisterOperation[] {
  const sorted = [...operations].sort((a, b) => a.callTime - b.callTime);
  let low = 1;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (checkRegister(sorted.slice(0, middle))) low = middle + 1;
    else high = middle;
  }
  return sorted.slice(0, high);
}

const describeOperation = (op: RegisterOperation) =>
  `${op.kind} ${op.value} [${op.callTime.toFixed(1)}, ${op.returnTime === Infinity ? "unknown" : op.returnTime.toFixed(1)}] ms ${op.label ?? ""}`;

/** The history is linearizable; on failure, the first operation that cannot be placed and what preceded it. */
export function checkHistoryLinearizable(operations: RegisterOperation[], violations: Violations): void {
  const result = checkLinearizable(operations);
  if (result.ok) return;
  const prefix = shortestFailingPrefix(result.operations);
  const context = prefix.slice(-1 - CONTEXT_OPERATIONS, -1).map((op) => `\n    ${describeOperation(op)}`).join("");
  violations.add("linearizability", `key ${result.key} (${result.operations.length} operations): no linearization once `
    + `${describeOperation(prefix.at(-1)!)} is added; the operations called just before it:${context}`);
}

/** Every acknowledged write reads back, by version and locally, from every node with its value and seq. */
export async function checkAcknowledgedReadable(cluster: TestCluster, history: readonly OperationRecord[], violations: Violations): Promise<number> {
  const reads = history.filter((op) => op.kind === "write" && op.outcome === "ok").flatMap((op) => cluster.ids.map((id) => ({ op, id })));
  let next = 0;
  const worker = async () => {
    while (next < reads.length) {
      const { op, id } = reads[next++]!;
      const path = `/v1/kv/${encodeURIComponent(op.key)}?version=${op.version}&consistency=stale`;
      const response = await fetch(cluster.url(id, path), { headers: { Accept: "application/json" }, signal: AbortSignal.timeout(READBACK_TIMEOUT_MS) });
      const body = await response.json();
      if (response.status !== 200 || body.value !== op.value || body.seq !== op.seq) {
        violations.add("acknowledged write not readable", `node ${id}, ${op.key} version ${op.version}: ${response.status} ${JSON.stringify(body)}, acknowledged ${op.value} at seq ${op.seq}`);
      }
    }
  };
  await Promise.all(Array.from({ length: READBACK_CONCURRENCY }, worker));
  return reads.length;
}

/** Root hash line of a signed note (its third line). */
function noteRoot(note: string): string {
  return note.split("\n")[2] ?? "";
}

/**
 * At each of `sizes`, every node serves the byte-identical checkpoint, and its root is the Merkle root of
 * the agreed log's first `size` entries, whose leaf hashes are recomputed from the entry bytes.
 */
export async function checkCheckpoints(cluster: TestCluster, log: readonly LogEntryJson[], sizes: readonly number[], violations: Violations): Promise<void> {
  const roots = new Map<number, string>();
  const frontier = MerkleFrontier.empty();
  for (const entry of log) {
    const bytes = fromBase64(entry.entry);
    if (bytes === undefined) {
      violations.add("log entry", `seq ${entry.seq}: entry bytes are not base64`);
      return;
    }
    const leaf = leafHash(defaultHasher, bytes);
    if (toBase64(leaf) !== entry.leafHash) violations.add("leaf hash", `seq ${entry.seq}: served leaf hash is not SHA-256(0x00 || entry)`);
    frontier.append(leaf);
    if (sizes.includes(frontier.size)) roots.set(frontier.size, toBase64(frontier.root()));
  }
  for (const size of sizes) {
    const notes = await Promise.all(cluster.ids.map(async (id) => (await fetch(cluster.url(id, `/v1/checkpoint?treeSize=${size}&consistency=stale`))).text()));
    if (new Set(notes).size !== 1) violations.add("checkpoint", `tree size ${size}: nodes serve different checkpoints: ${JSON.stringify(notes)}`);
    if (noteRoot(notes[0]!) !== roots.get(size)) violations.add("checkpoint", `tree size ${size}: root ${noteRoot(notes[0]!)} is not the log's root ${roots.get(size)}`);
  }
}

/** Lines of node output that mean a bug: failed assertions, internal errors, fatal stops. */
export function suspiciousOutput(output: string): string[] {
  return output.split("\n").filter((line) => /assertion|internal error|fatal/i.test(line));
}
