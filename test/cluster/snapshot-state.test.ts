/**
 * Snapshot data: the idempotency table exported in apply order and put back
 * verbatim, and the checks on data that comes from a peer.
 */
import { describe, expect, test } from "bun:test";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { IdempotencyRecords } from "../../src/node/raft-idempotency.ts";
import { decodeSnapshotState, encodeSnapshotState, type SnapshotState } from "../../src/node/snapshot-state.ts";
import { foundingMembership } from "../../src/node/members.ts";
import { type BatchOp } from "../../src/storage/index.ts";
import { WireFormatError } from "../../src/transport/codec.ts";
import { cbor } from "../../src/ledger/entry.ts";

const reply = (treeSize: number) => ({ kind: "applied" as const, applied: [], treeSize, raftIndex: treeSize });
const membership = foundingMembership(new Map([[1, { clientAddress: "127.0.0.1:1", raftAddress: "127.0.0.1:2" }]]));

async function recordsWith(keys: string[]): Promise<IdempotencyRecords> {
  const storage = createMemoryStorage();
  const records = await IdempotencyRecords.open(storage);
  const ops: BatchOp[] = [];
  keys.forEach((key, i) => records.record(key, { raftIndex: 10 + i, position: 0, timestampMs: 1000 + i }, reply(i), ops));
  await storage.commit(ops);
  records.flushed();
  return records;
}

describe("snapshot state", () => {
  test("the idempotency table round-trips in apply order and replaces another table exactly", async () => {
    const source = await recordsWith(["zeta", "alpha", "mid"]);
    const rows = await source.exportRows();
    expect(rows.map((row) => row.key)).toEqual(["zeta", "alpha", "mid"]);
    const state: SnapshotState = { treeSize: 7, rootHash: new Uint8Array(32).fill(3), membership, idempotency: rows };
    const decoded = decodeSnapshotState(encodeSnapshotState(state), membership.confState);
    expect(decoded).toEqual(state);
    const targetStorage = createMemoryStorage();
    const target = await IdempotencyRecords.open(targetStorage);
    const ops: BatchOp[] = [];
    target.record("old", { raftIndex: 1, position: 0, timestampMs: 1 }, reply(0), ops);
    await targetStorage.commit(ops);
    target.flushed();
    const replace: BatchOp[] = [];
    target.replaceOps(decoded.idempotency, replace);
    await targetStorage.commit(replace);
    target.flushed();
    expect(await target.lookup("old")).toBeUndefined();
    expect(await target.lookup("alpha")).toEqual(reply(1));
    expect(await target.exportRows()).toEqual(rows);
    expect((await IdempotencyRecords.open(targetStorage)).size).toBe(3);
  });

  test("data from a peer is checked field by field", async () => {
    const rows = await (await recordsWith(["a", "b"])).exportRows();
    const good = { treeSize: 1, rootHash: new Uint8Array(32), membership, idempotency: rows };
    const encoded = (state: unknown[]) => cbor.encode(state);
    const wire = cbor.decode(encodeSnapshotState(good)) as unknown[];
    const cases: Array<[string, Uint8Array]> = [
      ["garbage", new Uint8Array([0xff, 0x00])],
      ["format", encoded([2, ...wire.slice(1)])],
      ["tree size", encoded([1, -1, ...wire.slice(2)])],
      ["root", encoded([1, 1, new Uint8Array(31), ...wire.slice(3)])],
      ["reordered table", encoded([...wire.slice(0, 4), [...(wire[4] as unknown[])].reverse()])],
      ["duplicate key", encoded([...wire.slice(0, 4), [(wire[4] as unknown[])[0], (wire[4] as unknown[])[0]]])],
      ["bad record", encoded([...wire.slice(0, 4), [["k", new Uint8Array([1, 2])]]])],
      ["bad key", encoded([...wire.slice(0, 4), [["caf\u00e9", (rows[0]!.record)]]])],
    ];
    for (const [what, bytes] of cases) expect(() => decodeSnapshotState(bytes, membership.confState), what).toThrow(WireFormatError);
    // The membership inside must agree with the Raft metadata's.
    expect(() => decodeSnapshotState(encodeSnapshotState(good), { voters: [1, 2], learners: [] })).toThrow(WireFormatError);
  });
});
