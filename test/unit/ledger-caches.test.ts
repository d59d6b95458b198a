/**
 * The ledger's two in-memory helpers. The key filter never calls a key it
 * was given absent (across its layers), answers "may be present" for
 * everything until complete, and rules out most keys it was not given;
 * through the ledger, once loaded from a reopened store it still knows every
 * stored key (a PUT of one gets the next version, a GET finds it), and
 * absent keys cost no storage read. The hot cache keeps keys up to its byte
 * budget and evicts the oldest beyond it.
 */
import { describe, expect, test } from "bun:test";
import { KEY_FILTER_FIRST_LAYER_KEYS, KeyFilter } from "../../src/ledger/key-filter.ts";
import { Ledger } from "../../src/ledger/ledger.ts";
import { HOT_ENTRY_OVERHEAD_BYTES, KEY_FILTER_LOAD_PAGE_ROWS } from "../../src/ledger/reader.ts";
import { CheckpointIssuer } from "../../src/ledger/checkpoints.ts";
import { KeyNotFoundError } from "../../src/ledger/errors.ts";
import { generateSigner } from "../../src/checkpoint/index.ts";
import { defaultHasher } from "../../src/merkle/index.ts";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { type Storage } from "../../src/storage/index.ts";
import { type WriteCommand } from "../../src/ledger/commands.ts";

const signer = generateSigner("filter");
const open = (storage: Storage) =>
  Ledger.open({ storage, hasher: defaultHasher, checkpoints: new CheckpointIssuer({ signer, origin: "filter" }), immutable: false });
const put = (key: string): WriteCommand => ({ operations: [{ op: "put", key, value: new TextEncoder().encode(key), contentType: "text/plain" }] });

async function apply(ledger: Ledger, storage: Storage, commands: WriteCommand[]) {
  const prepared = await ledger.prepare(commands, 1_000);
  await storage.commit(prepared.ops);
  ledger.publish(prepared);
  return prepared;
}

/** `storage` with a count of the latest-version lookups that reach it. */
function countingLookups(storage: Storage): { storage: Storage; lookups: () => number } {
  let lookups = 0;
  return {
    storage: { ...storage, lastInRanges: (ranges) => ((lookups += ranges.length), storage.lastInRanges(ranges)) },
    lookups: () => lookups,
  };
}

describe("KeyFilter", () => {
  test("never calls an added key absent, over several layers", () => {
    const filter = new KeyFilter();
    filter.complete();
    const count = KEY_FILTER_FIRST_LAYER_KEYS * 5;
    const firstBytes = filter.bytes;
    for (let i = 0; i < count; i++) filter.add(`user/${i}/profile`);
    expect(filter.bytes).toBeGreaterThan(firstBytes * 4);
    for (let i = 0; i < count; i++) if (!filter.mayContain(`user/${i}/profile`)) throw new Error(`added key user/${i}/profile called absent`);
    // Keys never added: most are ruled out (each full layer lets about 1% through).
    let passed = 0;
    const probes = 20_000;
    for (let i = 0; i < probes; i++) if (filter.mayContain(`user/${i}/other`)) passed++;
    expect(passed / probes).toBeLessThan(0.05);
  });

  test("until complete every key may be present; one-character keys and non-ASCII keys are told apart", () => {
    const filter = new KeyFilter();
    expect(filter.mayContain("never")).toBe(true);
    filter.add("a");
    filter.add("ключ");
    filter.complete();
    expect(filter.mayContain("a")).toBe(true);
    expect(filter.mayContain("ключ")).toBe(true);
    expect(filter.mayContain("b")).toBe(false);
    expect(filter.mayContain("")).toBe(false);
  });
});

describe("ledger key filter", () => {
  test("loaded from a reopened store over several pages, it knows every stored key, including ones with many versions", async () => {
    const base = createMemoryStorage();
    const first = await open(base);
    const keys = Array.from({ length: KEY_FILTER_LOAD_PAGE_ROWS + 500 }, (_, i) => `k/${i}`);
    for (let start = 0; start < keys.length; start += 1_000) await apply(first, base, keys.slice(start, start + 1_000).map(put));
    // Five versions each of the keys around the first page's end in storage order (the page ends inside one's versions).
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const many = sorted.slice(KEY_FILTER_LOAD_PAGE_ROWS - 6, KEY_FILTER_LOAD_PAGE_ROWS);
    for (let round = 0; round < 4; round++) await apply(first, base, many.map(put));

    const { storage, lookups } = countingLookups(base);
    const ledger = await open(storage);
    expect(await ledger.loadKeyFilter()).toBe(true);
    const prepared = await ledger.prepare(keys.map(put), 2_000);
    const versions = new Map(prepared.results.map((result) => {
      if (!result.ok) throw result.error;
      return [result.applied[0]!.key, result.applied[0]!.version] as const;
    }));
    for (const key of keys) expect(versions.get(key)).toBe(many.includes(key) ? 6 : 2);
    expect((await ledger.get(keys[keys.length - 1]!)).version).toBe(1);
    expect(lookups()).toBeGreaterThan(0);
  });

  test("once loaded, new keys cost no storage lookup and a GET of an absent key answers without one", async () => {
    const base = createMemoryStorage();
    const seed = await open(base);
    await apply(seed, base, [put("old")]);
    const { storage, lookups } = countingLookups(base);
    // No hot cache, so a key written after the load is found through the filter and storage alone.
    const ledger = await Ledger.open({ storage, hasher: defaultHasher, checkpoints: new CheckpointIssuer({ signer, origin: "filter" }), immutable: false, hotCacheBytesMax: 0 });
    expect(await ledger.loadKeyFilter()).toBe(true);
    const before = lookups();
    const prepared = await apply(ledger, storage, Array.from({ length: 100 }, (_, i) => put(`new/${i}`)));
    expect(prepared.results.every((result) => result.ok && result.applied[0]!.version === 1)).toBe(true);
    await expect(ledger.get("absent")).rejects.toBeInstanceOf(KeyNotFoundError);
    // False positives may cost a lookup or two; without the filter this would be 100.
    expect(lookups() - before).toBeLessThan(5);
    // A key written after the load is found again, and one written before it.
    expect((await apply(ledger, storage, [put("new/7"), put("old")])).results).toMatchObject([{ ok: true, applied: [{ version: 2 }] }, { ok: true, applied: [{ version: 2 }] }]);
  });

  test("a load that fails leaves every key looked up in storage", async () => {
    const base = createMemoryStorage();
    const ledger = await open(base);
    await apply(ledger, base, [put("kept")]);
    // Opening reads through scan too; only the filter's load (its page size) fails.
    const failsLater: Storage = { ...base, scan: (options) => (options.limit === KEY_FILTER_LOAD_PAGE_ROWS ? Promise.reject(new Error("disk gone")) : base.scan(options)) };
    const ledgerAfter = await open(failsLater);
    expect(await ledgerAfter.loadKeyFilter()).toBe(false);
    const prepared = await ledgerAfter.prepare([put("kept")], 2_000);
    expect(prepared.results[0]).toMatchObject({ ok: true, applied: [{ version: 2 }] });
  });
});

describe("hot cache budget", () => {
  test("the cache holds keys up to its byte budget (each counted with its measured overhead) and evicts the oldest beyond it", async () => {
    const base = createMemoryStorage();
    const seed = await open(base);
    const keys = Array.from({ length: 3_000 }, (_, i) => `hot/${String(i).padStart(5, "0")}`);
    for (let start = 0; start < keys.length; start += 1_000) await apply(seed, base, keys.slice(start, start + 1_000).map(put));
    let scans = 0;
    const storage: Storage = { ...base, scan: (options) => (scans++, base.scan(options)) };
    // Room for 2,000 entries (a key, its equal value, the overhead).
    const perEntry = "hot/00000".length * 2 + HOT_ENTRY_OVERHEAD_BYTES;
    const ledger = await Ledger.open({
      storage, hasher: defaultHasher, checkpoints: new CheckpointIssuer({ signer, origin: "filter" }), immutable: false, hotCacheBytesMax: 2_000 * perEntry,
    });
    for (const key of keys) await ledger.get(key);
    const afterFirstPass = scans;
    // The newest 1,500 read are cached; the oldest were evicted and are read from storage again.
    for (const key of keys.slice(-1_500)) expect((await ledger.get(key)).version).toBe(1);
    expect(scans).toBe(afterFirstPass);
    for (const key of keys.slice(0, 100)) expect((await ledger.get(key)).version).toBe(1);
    expect(scans).toBe(afterFirstPass + 100);
  });
});
