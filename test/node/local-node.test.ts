/**
 * LocalNode's write pipeline: group commit (one storage commit for every
 * write of one event-loop turn), no lost wake-ups between groups, fail-stop
 * on a failed commit, the queue limit, a clean close, and idempotency keys
 * (a retried write is answered with its first result, also after a restart).
 */
import { describe, expect, test } from "bun:test";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { type BatchOp, type Storage } from "../../src/storage/index.ts";
import { NodeUnavailableError } from "../../src/node/index.ts";
import { InvalidRequestError, PreconditionFailedError } from "../../src/ledger/errors.ts";
import { commandSizeBytes } from "../../src/ledger/commands.ts";
import { openTestServer } from "../helpers/server.ts";

const VALUE = new TextEncoder().encode("value");
const put = (key: string) => ({ operations: [{ op: "put" as const, key, value: VALUE, contentType: "text/plain" }] });

/** A memory store that counts commits and can be told to fail the next one. */
function countingStorage(): Storage & { commits: number; polls: number; failNext: boolean } {
  const inner = createMemoryStorage();
  const counted = {
    name: inner.name,
    commits: 0,
    polls: 0,
    failNext: false,
    pollCommits: () => {
      counted.polls++;
      return 0;
    },
    get: (key: Uint8Array) => inner.get(key),
    scan: (options: Parameters<Storage["scan"]>[0]) => inner.scan(options),
    lastInRanges: (ranges: Parameters<Storage["lastInRanges"]>[0]) => inner.lastInRanges(ranges),
    sizeBytes: () => inner.sizeBytes(),
    close: () => inner.close(),
    async commit(batch: BatchOp[]): Promise<void> {
      counted.commits++;
      if (counted.failNext) throw new Error("injected commit failure");
      await inner.commit(batch);
    },
  };
  return counted;
}

describe("LocalNode", () => {
  test("a write issued from the continuation of the previous acknowledgement is committed (no lost wake-up)", async () => {
    const server = await openTestServer();
    // A plain await chain, no extra promise hops: the next write is queued in the very continuation of the ack.
    for (let i = 0; i < 20; i++) expect((await server.node.write(put(`k${i}`))).applied[0]!.seq).toBe(i);
    await server.close();
  }, 5000);

  test("writes of one event-loop turn share one durable commit", async () => {
    const storage = countingStorage();
    const server = await openTestServer({ storage });
    const before = storage.commits;
    const outcomes = await Promise.all(Array.from({ length: 50 }, (_, i) => server.node.write(put(`g${i}`))));
    expect(storage.commits - before).toBe(1);
    expect(outcomes.map((outcome) => outcome.applied[0]!.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await server.close();
  });

  test("every write first asks the storage to settle commits already durable (Storage.pollCommits)", async () => {
    const storage = countingStorage();
    const server = await openTestServer({ storage });
    const before = storage.polls;
    await Promise.all(Array.from({ length: 7 }, (_, i) => server.node.write(put(`p${i}`))));
    expect(storage.polls - before).toBe(7);
    await server.close();
  });

  test("a failed commit rejects its group and every later write, and is never acknowledged", async () => {
    const storage = countingStorage();
    const server = await openTestServer({ storage });
    await server.node.write(put("kept"));
    storage.failNext = true;
    const failed = server.node.write(put("lost"));
    await expect(failed).rejects.toBeInstanceOf(NodeUnavailableError);
    await expect(server.node.write(put("after"))).rejects.toBeInstanceOf(NodeUnavailableError);
    expect(server.node.unhealthyReason()).toContain("injected commit failure");
    expect((await server.node.ledger.get("kept")).seq).toBe(0);
    await expect(server.node.ledger.get("lost")).rejects.toThrow("not found");
  });

  test("the write queue refuses beyond its command limit or its byte limit with 503-class errors", async () => {
    const size = commandSizeBytes(put("q0"));
    for (const limits of [{ write_queue_commands_max: 3 }, { write_queue_bytes_max: 3 * size }]) {
      const server = await openTestServer({ config: { limits } });
      const writes = Array.from({ length: 5 }, (_, i) => server.node.write(put(`q${i}`)).then(() => "ok", (error) => error));
      const settled = await Promise.all(writes);
      expect(settled.filter((result) => result === "ok")).toHaveLength(3);
      for (const refused of settled.slice(3)) expect(refused).toBeInstanceOf(NodeUnavailableError);
      await server.close();
    }
  });

  test("a group holds at most limits.group_commands_max commands and group_bytes_max bytes (one command even if larger)", async () => {
    const size = commandSizeBytes(put("g0"));
    for (const [limits, commitsMin] of [[{ group_commands_max: 2 }, 3], [{ group_bytes_max: 2 * size }, 3], [{ group_bytes_max: 1 }, 5]] as const) {
      const storage = countingStorage();
      const server = await openTestServer({ storage, config: { limits } });
      const before = storage.commits;
      const results = await Promise.all(Array.from({ length: 5 }, (_, i) => server.node.write(put(`g${i}`))));
      expect(results).toHaveLength(5);
      expect(storage.commits - before).toBeGreaterThanOrEqual(commitsMin);
      expect(server.node.ledger.treeSize).toBe(5);
      await server.close();
    }
  });

  test("close finishes queued writes, then refuses new ones", async () => {
    const server = await openTestServer();
    const queued = Array.from({ length: 10 }, (_, i) => server.node.write(put(`c${i}`)));
    await server.close();
    expect((await Promise.all(queued)).length).toBe(10);
    await expect(server.node.write(put("late"))).rejects.toBeInstanceOf(NodeUnavailableError);
  });

  test("a write retried with the same idempotency key appends once and gets its first result, also after a restart", async () => {
    const memory = createMemoryStorage();
    const storage: Storage = { ...memory, close: async () => {} }; // outlives the node, like files on disk
    let server = await openTestServer({ storage });
    const first = await server.node.write(put("once"), { idempotencyKey: "retry-1" });
    expect(first.replayed).toBeUndefined();
    const again = await server.node.write(put("once"), { idempotencyKey: "retry-1" });
    expect(again).toEqual({ ...first, replayed: true });
    // Two sends of one key in the same group: one appends, the other replays it.
    const [a, b] = await Promise.all([server.node.write(put("twice"), { idempotencyKey: "retry-2" }), server.node.write(put("twice"), { idempotencyKey: "retry-2" })]);
    expect(a.applied[0]!.seq).toBe(b.applied[0]!.seq);
    expect([a.replayed, b.replayed]).toEqual([undefined, true]);
    const other = await server.node.write(put("once"), { idempotencyKey: "retry-3" });
    expect(other.applied[0]!.version).toBe(2);
    await server.close();
    server = await openTestServer({ storage });
    expect(await server.node.write(put("once"), { idempotencyKey: "retry-1" })).toEqual({ ...first, replayed: true });
    expect(server.node.ledger.treeSize).toBe(3);
    const later = await server.node.write(put("new"), { idempotencyKey: "retry-4" });
    expect(later.applied[0]!.seq).toBe(3);
    await server.close();
  });

  test("a refused write's refusal is what its retry gets; a malformed key is refused", async () => {
    const server = await openTestServer();
    const ifAbsent = { operations: [{ op: "put" as const, key: "taken", value: VALUE, contentType: "text/plain", ifAbsent: true }] };
    await server.node.write(put("taken"));
    await expect(server.node.write(ifAbsent, { idempotencyKey: "cond" })).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(server.node.write(ifAbsent, { idempotencyKey: "cond" })).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(server.node.write(put("x"), { idempotencyKey: "" })).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(server.node.write(put("x"), { idempotencyKey: "bad\nkey" })).rejects.toBeInstanceOf(InvalidRequestError);
    expect(server.node.ledger.treeSize).toBe(1);
    await server.close();
  });

  test("a group prepared while the previous one commits sees its writes; both commit in order", async () => {
    const inner = createMemoryStorage();
    let inFlight = 0;
    let overlapped = false;
    const order: number[] = [];
    const slow: Storage = {
      ...inner,
      close: async () => {},
      async commit(batch) {
        inFlight++;
        overlapped ||= inFlight > 1;
        const id = order.length;
        order.push(-1);
        await new Promise((resolve) => setTimeout(resolve, 30));
        await inner.commit(batch);
        order[id] = id;
        inFlight--;
      },
    };
    const server = await openTestServer({ storage: slow });
    const first = server.node.write(put("k"));
    await new Promise((resolve) => setTimeout(resolve, 5)); // the first group is committing now
    const ifVersion = { operations: [{ op: "put" as const, key: "k", value: VALUE, contentType: "text/plain", ifVersion: 1 }] };
    const ifAbsent = { operations: [{ op: "put" as const, key: "k", value: VALUE, contentType: "text/plain", ifAbsent: true }] };
    const second = server.node.write(ifVersion);
    const third = server.node.write(ifAbsent);
    expect((await first).applied[0]!.version).toBe(1);
    expect((await second).applied[0]!.version).toBe(2);
    await expect(third).rejects.toBeInstanceOf(PreconditionFailedError);
    expect(overlapped).toBe(true);
    expect(order).toEqual([0, 1, 2].slice(0, order.length));
    expect((await server.node.ledger.get("k")).version).toBe(2);
    await server.close();
  });

  test("behind a committing group, fewer waiting writes than it holds wait for its commit and join one group", async () => {
    const inner = createMemoryStorage();
    const sizes: number[] = [];
    let inFlight = 0;
    let overlapped = false;
    let committing: () => void = () => {};
    const started = new Promise<void>((resolve) => (committing = resolve));
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let gate = false;
    const gated: Storage = {
      ...inner,
      close: async () => {},
      async commit(batch) {
        if (!gate) return inner.commit(batch);
        inFlight++;
        overlapped ||= inFlight > 1;
        sizes.push(batch.length);
        committing();
        await released;
        await inner.commit(batch);
        inFlight--;
      },
    };
    const server = await openTestServer({ storage: gated });
    gate = true;
    const first = Array.from({ length: 8 }, (_, i) => server.node.write(put(`first${i}`)));
    await started;
    // Three turns of writes, each fewer than the eight committing: none starts a group of its own.
    const later: Array<Promise<unknown>> = [];
    for (let turn = 0; turn < 3; turn++) {
      later.push(server.node.write(put(`later${turn}a`)), server.node.write(put(`later${turn}b`)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sizes.length).toBe(1);
    release();
    await Promise.all([...first, ...later]);
    expect(overlapped).toBe(false);
    expect(sizes.length).toBe(2);
    expect((await server.node.ledger.get("later2b")).seq).toBe(13);
    await server.close();
  });

  test("when a commit fails, the group prepared behind it is refused too and nothing of either is published", async () => {
    const inner = createMemoryStorage();
    let commits = 0;
    const failing: Storage = {
      ...inner,
      close: async () => {},
      async commit(batch) {
        const n = ++commits;
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (n === 2) throw new Error("injected failure of the first write group");
        await inner.commit(batch);
      },
    };
    const server = await openTestServer({ storage: failing }); // commit 1: the format record
    const first = server.node.write(put("a"));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = server.node.write(put("b"));
    await expect(first).rejects.toBeInstanceOf(NodeUnavailableError);
    await expect(second).rejects.toBeInstanceOf(NodeUnavailableError);
    expect(server.node.ledger.treeSize).toBe(0);
  });
});
