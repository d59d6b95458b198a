/**
 * Deno KV adapter tests, run under Deno (bun:test is mapped to a small shim):
 *
 *   node_modules/.bin/deno test -A --unstable-kv --config test/storage/deno-kv/deno.json test/storage/deno-kv.deno.ts
 *
 * test/storage/deno-kv.test.ts runs this command from `bun test`.
 */
import { describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDenoKvStorage, type DenoKvStorageOptions, DenoKvFailStopError } from "../../adapters/deno-kv/index.ts";
import { describeStorageConformance } from "./conformance.ts";

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const dbPath = (location: string) => join(location, "store.kv");

describeStorageConformance({
  name: "deno-kv",
  durable: true,
  open: (location) => createDenoKvStorage({ path: dbPath(location) }),
  makeLocation: () => mkdtemp(join(tmpdir(), "deno-kv-conformance-")),
  cleanup: (location) => rm(location, { recursive: true, force: true }),
});

function patterned(length: number, seed: number): Uint8Array {
  const value = new Uint8Array(length);
  for (let i = 0; i < length; i++) value[i] = (i * 131 + seed * 7 + (i >>> 9)) & 0xff;
  return value;
}

/** 1500 puts of 700-byte values plus a 300 KiB value: over 1000 mutations and over 800 KiB. */
function largeBatch(tag: string) {
  const ops = Array.from({ length: 1500 }, (_, i) => ({
    type: "put" as const,
    key: bytes(`${tag}/${String(i).padStart(5, "0")}`),
    value: patterned(700, i),
  }));
  return [...ops, { type: "put" as const, key: bytes(`${tag}/huge`), value: patterned(300 * 1024, 9) }];
}

async function withLocation(run: (path: string) => Promise<void>): Promise<void> {
  const location = await mkdtemp(join(tmpdir(), "deno-kv-test-"));
  try {
    await run(dbPath(location));
  } finally {
    await rm(location, { recursive: true, force: true });
  }
}

describe("deno-kv limits", () => {
  test("a value over 64 KiB is chunked, read back whole, overwritten and deleted without leftovers", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      const big = patterned(200 * 1024 + 17, 1);
      await store.commit([{ type: "put", key: bytes("big"), value: big }]);
      expect(await store.get(bytes("big"))).toEqual(big);
      const bigger = patterned(1024 * 1024, 2);
      await store.commit([{ type: "put", key: bytes("big"), value: bigger }, { type: "put", key: bytes("small"), value: bytes("s") }]);
      await store.close();
      store = await createDenoKvStorage({ path });
      expect(await store.get(bytes("big"))).toEqual(bigger);
      expect((await store.scan({ limit: 10 })).map((pair) => pair.value.length)).toEqual([bigger.length, 1]);
      await store.commit([{ type: "put", key: bytes("big"), value: bytes("now small") }]);
      expect(new TextDecoder().decode(await store.get(bytes("big")))).toBe("now small");
      await store.close();
      expect(await countRaw(path, "c")).toBe(0);
    }));

  test("a commit of more than 1000 ops and 800 KiB is applied whole", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      const concurrent = store.commit([{ type: "put", key: bytes("other"), value: bytes("o") }]);
      await store.commit(largeBatch("L"));
      await concurrent;
      await store.close();
      store = await createDenoKvStorage({ path });
      expect(store.recovery.reappliedCommit).toBe(false);
      const all = await store.scan({ limit: 5000 });
      expect(all.length).toBe(1502);
      expect(await store.get(bytes("L/01499"))).toEqual(patterned(700, 1499));
      expect(await store.get(bytes("L/huge"))).toEqual(patterned(300 * 1024, 9));
      await store.close();
      expect(await countRaw(path, "p")).toBe(0);
    }));

  test("keys too long for Deno KV are refused before anything is written", () =>
    withLocation(async (path) => {
      const store = await createDenoKvStorage({ path });
      await expect(store.commit([{ type: "put", key: new Uint8Array(1500), value: bytes("x") }])).rejects.toThrow(RangeError);
      await store.commit([{ type: "put", key: new Uint8Array(1800).fill(1), value: bytes("x") }]);
      expect((await store.scan({ limit: 10 })).length).toBe(1);
      await store.close();
    }));
});

describe("deno-kv crash in the middle of a large commit", () => {
  const cases: Array<[NonNullable<DenoKvStorageOptions["crashPoint"]>, boolean]> = [
    ["before-flip", false],
    ["after-flip", true],
    ["mid-apply", true],
  ];
  for (const [crashPoint, visible] of cases) {
    test(`crash ${crashPoint}: after reopen the batch is ${visible ? "all" : "none"} of it`, () =>
      withLocation(async (path) => {
        let store = await createDenoKvStorage({ path });
        await store.commit([{ type: "put", key: bytes("L/huge"), value: patterned(100 * 1024, 1) }, { type: "put", key: bytes("keep"), value: bytes("k") }]);
        await store.close();
        store = await createDenoKvStorage({ path, crashPoint });
        await expect(store.commit(largeBatch("L"))).rejects.toBeInstanceOf(DenoKvFailStopError);
        await expect(store.commit([{ type: "put", key: bytes("after"), value: bytes("a") }])).rejects.toBeInstanceOf(DenoKvFailStopError);
        await store.close();
        expect(await countRaw(path, "p")).toBeGreaterThan(0);
        store = await createDenoKvStorage({ path });
        expect(store.recovery.reappliedCommit).toBe(visible);
        const all = await store.scan({ limit: 5000 });
        expect(all.length).toBe(visible ? 1502 : 2);
        expect(await store.get(bytes("L/00000"))).toEqual(visible ? patterned(700, 0) : undefined);
        expect(await store.get(bytes("L/huge"))).toEqual(visible ? patterned(300 * 1024, 9) : patterned(100 * 1024, 1));
        expect(new TextDecoder().decode(await store.get(bytes("keep")))).toBe("k");
        await store.close();
        expect(await countRaw(path, "p")).toBe(0);
        expect(await countRaw(path, "c")).toBe(visible ? 5 : 2);
      }));
  }
});

describe("deno-kv crash after a header flip but before the old chunks are gone", () => {
  test("reopen finishes the commit and deletes the superseded chunks", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      // ~1060 chunks: deleting them cannot share the atomic operation that flips the header.
      await store.commit([{ type: "put", key: bytes("huge"), value: patterned(62 * 1024 * 1024, 3) }]);
      await store.close();
      expect(await countRaw(path, "c")).toBe(1059);
      store = await createDenoKvStorage({ path, crashPoint: "mid-apply" });
      await expect(store.commit([{ type: "put", key: bytes("huge"), value: patterned(100 * 1024, 4) }])).rejects.toBeInstanceOf(DenoKvFailStopError);
      await store.close();
      expect(await countRaw(path, "c")).toBeGreaterThan(2);
      store = await createDenoKvStorage({ path });
      expect(store.recovery.reappliedCommit).toBe(true);
      expect(await store.get(bytes("huge"))).toEqual(patterned(100 * 1024, 4));
      await store.close();
      expect(await countRaw(path, "c")).toBe(2);
    }));
});

/** Count raw Deno KV entries under a top-level prefix, bypassing the adapter. */
async function countRaw(path: string, prefix: string): Promise<number> {
  const kv = await (globalThis as unknown as { Deno: { openKv(path: string): Promise<{ list(s: object): AsyncIterable<unknown>; close(): void }> } }).Deno.openKv(path);
  let count = 0;
  for await (const _ of kv.list({ prefix: [prefix] })) count++;
  kv.close();
  return count;
}

describe("deno-kv small cases", () => {
  test("an empty batch commits, and scan with start >= end is empty", () =>
    withLocation(async (path) => {
      const store = await createDenoKvStorage({ path });
      await store.commit([]);
      await store.commit([{ type: "put", key: bytes("a"), value: bytes("1") }]);
      expect((await store.scan({ start: bytes("b"), end: bytes("a"), limit: 10 })).length).toBe(0);
      expect((await store.scan({ start: bytes("a"), end: bytes("a"), limit: 10 })).length).toBe(0);
      await store.close();
    }));
});
