/**
 * Reads answer from published state only: rows a group has already
 * committed to storage but not yet published (its clients are not answered
 * yet, and on a store that shows rows before they are synced they could
 * still vanish) must not be served, whether the read goes through the hot
 * cache or straight to storage.
 */
import { describe, expect, test } from "bun:test";
import { Ledger } from "../../src/ledger/ledger.ts";
import { CheckpointIssuer } from "../../src/ledger/checkpoints.ts";
import { KeyNotFoundError, VersionNotFoundError } from "../../src/ledger/errors.ts";
import { generateSigner } from "../../src/checkpoint/index.ts";
import { defaultHasher } from "../../src/merkle/index.ts";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { type WriteCommand } from "../../src/ledger/commands.ts";

const signer = generateSigner("unpublished");
const text = (value: string) => new TextEncoder().encode(value);
const put = (key: string, value: string): WriteCommand => ({ operations: [{ op: "put", key, value: text(value), contentType: "text/plain" }] });

describe.each([["without a hot cache", 0], ["with a hot cache", undefined]] as const)("reads skip committed but unpublished rows (%s)", (_name, hotCacheBytesMax) => {
  test("get, get by version, history and list see only the published versions", async () => {
    const storage = createMemoryStorage();
    const ledger = await Ledger.open({ storage, hasher: defaultHasher, checkpoints: new CheckpointIssuer({ signer, origin: "unpublished" }), immutable: false, hotCacheBytesMax });
    const first = await ledger.prepare([put("k", "one")], 1_000);
    await storage.commit(first.ops);
    ledger.publish(first);
    // A second group reaches storage; its publish has not happened yet.
    const second = await ledger.prepare([put("k", "two"), put("k", "three"), put("fresh", "new")], 2_000);
    await storage.commit(second.ops);
    expect(ledger.treeSize).toBe(1);

    const latest = await ledger.get("k");
    expect(new TextDecoder().decode(latest.value)).toBe("one");
    expect(latest.version).toBe(1);
    await expect(ledger.get("fresh")).rejects.toBeInstanceOf(KeyNotFoundError);
    await expect(ledger.get("k", 2)).rejects.toBeInstanceOf(VersionNotFoundError);
    expect((await ledger.history("k", { limit: 10 })).items.map((item) => item.version)).toEqual([1]);
    await expect(ledger.history("fresh", { limit: 10 })).rejects.toBeInstanceOf(KeyNotFoundError);
    expect((await ledger.list({ prefix: "", limit: 10 })).items.map(({ key, latest: { version } }) => [key, version])).toEqual([["k", 1]]);

    ledger.publish(second);
    expect(new TextDecoder().decode((await ledger.get("k")).value)).toBe("three");
    expect((await ledger.get("k", 2)).version).toBe(2);
    expect((await ledger.history("k", { limit: 10 })).items.map((item) => item.version)).toEqual([3, 2, 1]);
    expect((await ledger.list({ prefix: "", limit: 10 })).items.map(({ key, latest: { version } }) => [key, version])).toEqual([["fresh", 1], ["k", 3]]);
  });
});
