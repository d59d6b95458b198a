/**
 * Appending entries decided elsewhere (what a snapshot install does) gives
 * byte-identical storage to applying the commands (version rows, chunk rows,
 * Merkle nodes), and any refused group changes nothing.
 */
import { describe, expect, test } from "bun:test";
import { Ledger } from "../../src/ledger/ledger.ts";
import { CheckpointIssuer } from "../../src/ledger/checkpoints.ts";
import { DecidedEntryError } from "../../src/ledger/errors.ts";
import { generateSigner } from "../../src/checkpoint/index.ts";
import { bytesEqual, defaultHasher, RootMismatchError } from "../../src/merkle/index.ts";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { type Storage } from "../../src/storage/index.ts";
import { type WriteCommand } from "../../src/ledger/commands.ts";

const signer = generateSigner("t");
const open = (storage: Storage) =>
  Ledger.open({ storage, hasher: defaultHasher, checkpoints: new CheckpointIssuer({ signer, origin: "t" }), immutable: false });

async function dump(storage: Storage): Promise<string[]> {
  const rows = await storage.scan({ limit: 100_000 });
  return rows.map(({ key, value }) => `${Buffer.from(key).toString("hex")}=${Buffer.from(value).toString("hex")}`);
}

const put = (key: string, value: string): WriteCommand => ({ operations: [{ op: "put", key, value: new TextEncoder().encode(value), contentType: "text/plain" }] });
const del = (key: string): WriteCommand => ({ operations: [{ op: "delete", key }] });

async function source(): Promise<{ storage: Storage; ledger: Ledger }> {
  const storage = createMemoryStorage();
  const ledger = await open(storage);
  const groups: WriteCommand[][] = [];
  for (let i = 0; i < 40; i++) groups.push([put(`k${i % 7}`, `v${i}`), i % 5 === 4 ? del(`k${(i + 1) % 7}`) : put(`x${i}`, "x")]);
  for (const [i, commands] of groups.entries()) {
    const prepared = await ledger.prepare(commands, 1_000 + i);
    await storage.commit(prepared.ops);
    ledger.publish(prepared);
  }
  return { storage, ledger };
}

describe("Ledger.prepareDecided", () => {
  test("replaying another ledger's entries in bounded groups yields identical storage and root", async () => {
    const { storage, ledger } = await source();
    const target = createMemoryStorage();
    const replica = await open(target);
    for (let from = 0; from < ledger.treeSize;) {
      const items = await ledger.decidedEntries(from, { limit: 7, bytesMax: 1 << 20 });
      const prepared = await replica.prepareDecided(items, () => {});
      await target.commit(prepared.ops);
      replica.publish(prepared);
      from += items.length;
    }
    expect(replica.treeSize).toBe(ledger.treeSize);
    expect(bytesEqual(replica.rootHash, ledger.rootHash)).toBe(true);
    expect(await dump(target)).toEqual(await dump(storage));
    expect(await replica.get("k3")).toEqual(await ledger.get("k3"));
    const reopened = await open(target);
    expect(bytesEqual(reopened.rootHash, ledger.rootHash)).toBe(true);
  });

  test("a refused group (root check, bad value, wrong seq, wrong version) changes nothing", async () => {
    const { ledger } = await source();
    const target = createMemoryStorage();
    const replica = await open(target);
    const opened = await dump(target);
    const items = await ledger.decidedEntries(0, { limit: 10, bytesMax: 1 << 20 });
    const wrongRoot = new Uint8Array(32);
    const refuse = (_size: number, root: Uint8Array) => {
      throw new RootMismatchError(wrongRoot, root);
    };
    await expect(replica.prepareDecided(items, refuse)).rejects.toThrow(RootMismatchError);
    const badValue = items.map((item, i) => (i === 3 ? { ...item, value: new TextEncoder().encode("tampered") } : item));
    await expect(replica.prepareDecided(badValue, () => {})).rejects.toThrow(DecidedEntryError);
    await expect(replica.prepareDecided(items.slice(1), () => {})).rejects.toThrow(DecidedEntryError);
    const badVersion = items.map((item, i) => (i === 0 ? { ...item, version: 2 } : item));
    await expect(replica.prepareDecided(badVersion, () => {})).rejects.toThrow(DecidedEntryError);
    const garbage = [{ entryBytes: new Uint8Array([0x01]), version: 1, value: null, chunkStart: true, chunkEnd: true }];
    await expect(replica.prepareDecided(garbage, () => {})).rejects.toThrow(DecidedEntryError);
    expect(replica.treeSize).toBe(0);
    expect(await dump(target)).toEqual(opened);
    // Still able to take the right group afterwards.
    const prepared = await replica.prepareDecided(items, () => {});
    expect(prepared.treeSize).toBe(10);
    expect(bytesEqual(prepared.rootHash, await ledger.rootAt(10))).toBe(true);
  });
});
