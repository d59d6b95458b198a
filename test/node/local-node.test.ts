/**
 * LocalNode's write pipeline: group commit (one storage commit for every
 * write of one event-loop turn), no lost wake-ups between groups, fail-stop
 * on a failed commit, the queue limit, and a clean close.
 */
import { describe, expect, test } from "bun:test";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { type BatchOp, type Storage } from "../../src/storage/index.ts";
import { NodeUnavailableError } from "../../src/node/index.ts";
import { openTestServer } from "../helpers/server.ts";

const VALUE = new TextEncoder().encode("value");
const put = (key: string) => ({ operations: [{ op: "put" as const, key, value: VALUE, contentType: "text/plain" }] });

/** A memory store that counts commits and can be told to fail the next one. */
function countingStorage(): Storage & { commits: number; failNext: boolean } {
  const inner = createMemoryStorage();
  const counted = {
    name: inner.name,
    commits: 0,
    failNext: false,
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

  test("the write queue refuses beyond its command limit with 503-class errors", async () => {
    const server = await openTestServer({ config: { limits: { write_queue_commands_max: 3 } } });
    const writes = Array.from({ length: 5 }, (_, i) => server.node.write(put(`q${i}`)).then(() => "ok", (error) => error));
    const settled = await Promise.all(writes);
    expect(settled.filter((result) => result === "ok")).toHaveLength(3);
    for (const refused of settled.slice(3)) expect(refused).toBeInstanceOf(NodeUnavailableError);
    await server.close();
  });

  test("close finishes queued writes, then refuses new ones", async () => {
    const server = await openTestServer();
    const queued = Array.from({ length: 10 }, (_, i) => server.node.write(put(`c${i}`)));
    await server.close();
    expect((await Promise.all(queued)).length).toBe(10);
    await expect(server.node.write(put("late"))).rejects.toBeInstanceOf(NodeUnavailableError);
  });
});
