/**
 * Idempotency records of a cluster node: first results kept in apply order,
 * visible before their batch is durable, reloaded in the same order, and
 * pruned oldest first by count and by leader-timestamp age.
 */
import { describe, expect, test } from "bun:test";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { IdempotencyRecords, isIdempotencyKey } from "../../src/node/raft-idempotency.ts";
import { type BatchOp } from "../../src/storage/index.ts";
import { type ForwardReply } from "../../src/transport/index.ts";

const reply = (treeSize: number): ForwardReply => ({ kind: "applied", applied: [], treeSize, raftIndex: treeSize });
const HOUR_MS = 3_600_000;

describe("idempotency records", () => {
  test("a record is found before and after its batch is durable, and after reopening", async () => {
    const storage = createMemoryStorage();
    const records = await IdempotencyRecords.open(storage);
    const ops: BatchOp[] = [];
    records.record("k1", { raftIndex: 5, position: 0, timestampMs: 1_000 }, reply(1), ops);
    records.record("k2", { raftIndex: 5, position: 1, timestampMs: 1_000 }, { kind: "refused", code: "immutable", message: "no" }, ops);
    expect(await records.lookup("k1")).toEqual(reply(1));
    await storage.commit(ops);
    records.flushed();
    expect(await records.lookup("k2")).toEqual({ kind: "refused", code: "immutable", message: "no" });
    expect(await records.lookup("k3")).toBeUndefined();
    const reopened = await IdempotencyRecords.open(storage);
    expect(reopened.size).toBe(2);
    expect(await reopened.lookup("k1")).toEqual(reply(1));
  });

  test("prunes the oldest (by apply order) beyond the count limit and beyond the age limit, identically after reopening", async () => {
    const storage = createMemoryStorage();
    const limits = { keysMax: 3, retentionMs: HOUR_MS };
    const records = await IdempotencyRecords.open(storage, limits);
    const ops: BatchOp[] = [];
    // Keys sort differently from their apply order, so a reload must order by (raftIndex, position).
    for (const [i, key] of ["d", "c", "b", "a"].entries()) records.record(key, { raftIndex: 10 + i, position: 0, timestampMs: i * 1000 }, reply(i), ops);
    records.prune(3000, ops);
    expect(await records.lookup("d")).toBeUndefined();
    expect(records.size).toBe(3);
    await storage.commit(ops);
    records.flushed();
    const reopened = await IdempotencyRecords.open(storage, limits);
    const pruneOps: BatchOp[] = [];
    reopened.prune(1000 + HOUR_MS + 1, pruneOps); // "c" (t=1000) is now older than an hour; "b" (t=2000) is not
    expect(pruneOps.length).toBe(1);
    expect(await reopened.lookup("c")).toBeUndefined();
    expect(await reopened.lookup("b")).toEqual(reply(2));
  });

  test("keys are 1..128 printable ASCII characters", () => {
    expect(isIdempotencyKey("a")).toBe(true);
    expect(isIdempotencyKey("x".repeat(128))).toBe(true);
    expect(isIdempotencyKey("")).toBe(false);
    expect(isIdempotencyKey("x".repeat(129))).toBe(false);
    expect(isIdempotencyKey("tab\there")).toBe(false);
    expect(isIdempotencyKey("caf\u00e9")).toBe(false);
  });
});
