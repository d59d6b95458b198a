/**
 * Deno KV adapter tests, run under Deno (bun:test is mapped to a small shim):
 *
 *   node_modules/.bin/deno test -A --unstable-kv --config test/storage/deno-kv/deno.json test/storage/deno-kv.deno.ts
 *
 * test/storage/deno-kv.test.ts runs this command from `bun test`. Besides the
 * conformance suite these check the log layout: records larger than one
 * atomic operation, crashes at each commit point (simulated with the
 * adapter's crashPoint option, then a reopen), compaction, corruption and
 * data of the earlier layout. Raw Deno KV rows are inspected and edited with
 * the store closed.
 */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createDenoKvStorage,
  DenoKvFailStopError,
  DenoKvLayoutError,
  DenoKvQueueFullError,
  type DenoKvStorage,
  GROUP_COMMITS_MAX,
  QUEUED_COMMITS_MAX,
  type DenoKvStorageOptions,
} from "../../adapters/deno-kv/index.ts";
import { KEY_BYTES_MAX } from "../../adapters/deno-kv/codec.ts";
import { StorageCorruptionError } from "../../src/storage/index.ts";
import { until } from "../helpers/poll.ts";
import { describeStorageConformance } from "./conformance.ts";
import { commitKeys, denoKvKillValue } from "./deno-kv-kill-values.ts";

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array | undefined): string | undefined => (data === undefined ? undefined : new TextDecoder().decode(data));
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

/** 1500 puts of 700-byte values plus a 300 KiB value: over 1000 ops and 800 KiB, so more than one atomic operation. */
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

type RawKey = Array<string | number | Uint8Array>;
interface RawKv {
  list(selector: { prefix: RawKey }): AsyncIterable<{ key: RawKey; value: unknown }>;
  get(key: RawKey): Promise<{ value: unknown; versionstamp: string | null }>;
  set(key: RawKey, value: unknown): Promise<unknown>;
  delete(key: RawKey): Promise<void>;
  close(): void;
}

/** Open the database directly, bypassing the adapter (which must be closed). */
async function withRaw<T>(path: string, run: (kv: RawKv) => Promise<T>): Promise<T> {
  const kv = await (globalThis as unknown as { Deno: { openKv(path: string): Promise<RawKv> } }).Deno.openKv(path);
  try {
    return await run(kv);
  } finally {
    kv.close();
  }
}

/** Raw keys under `prefix`, in order. */
function rawKeys(path: string, prefix: RawKey): Promise<RawKey[]> {
  return withRaw(path, async (kv) => {
    const keys: RawKey[] = [];
    for await (const entry of kv.list({ prefix })) keys.push(entry.key);
    return keys;
  });
}

/** Record numbers that have a header row (one per group commit). */
async function recordHeaders(path: string): Promise<number[]> {
  return (await rawKeys(path, ["log"])).filter((key) => key[2] === 0).map((key) => key[1] as number);
}

describe("deno-kv log layout", () => {
  test("values over 64 KiB round-trip, are overwritten and deleted, and survive reopen", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      expect(store.recovery.created).toBe(true);
      const big = patterned(200 * 1024 + 17, 1);
      await store.commit([{ type: "put", key: bytes("big"), value: big }]);
      expect(await store.get(bytes("big"))).toEqual(big);
      const bigger = patterned(1024 * 1024, 2);
      await store.commit([{ type: "put", key: bytes("big"), value: bigger }, { type: "put", key: bytes("small"), value: bytes("s") }]);
      await store.close();
      store = await createDenoKvStorage({ path });
      expect(store.recovery).toEqual({ created: false, snapshotPieces: 0, replayedRecords: 2, discardedBlocks: 0, leftoverBlocks: 0 });
      expect(await store.get(bytes("big"))).toEqual(bigger);
      expect((await store.scan({ limit: 10 })).map((pair) => pair.value.length)).toEqual([bigger.length, 1]);
      await store.commit([{ type: "put", key: bytes("big"), value: bytes("now small") }, { type: "delete", key: bytes("small") }]);
      await store.close();
      store = await createDenoKvStorage({ path });
      expect(text(await store.get(bytes("big")))).toBe("now small");
      expect(await store.get(bytes("small"))).toBeUndefined();
      await store.close();
    }));

  test("a commit of more than 1000 ops and 800 KiB is one record, applied whole, alongside a concurrent commit", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      const concurrent = store.commit([{ type: "put", key: bytes("other"), value: bytes("o") }]);
      await store.commit(largeBatch("L"));
      await concurrent;
      await store.close();
      const blocks = await rawKeys(path, ["log"]);
      expect(blocks.length).toBeGreaterThan(13);
      store = await createDenoKvStorage({ path });
      expect(store.recovery.discardedBlocks).toBe(0);
      expect((await store.scan({ limit: 5000 })).length).toBe(1502);
      expect(await store.get(bytes("L/01499"))).toEqual(patterned(700, 1499));
      expect(await store.get(bytes("L/huge"))).toEqual(patterned(300 * 1024, 9));
      await store.close();
    }));

  test("concurrent commits share log records (group commit) and all land", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      await Promise.all(Array.from({ length: 200 }, (_, n) => store.commit([{ type: "put", key: bytes(`g${String(n).padStart(3, "0")}`), value: bytes(`${n}`) }])));
      await store.close();
      const headers = await recordHeaders(path);
      expect(headers.length).toBeLessThan(200);
      expect(headers).toEqual(headers.map((_, i) => i + 1));
      store = await createDenoKvStorage({ path });
      expect((await store.scan({ limit: 1000 })).length).toBe(200);
      await store.close();
    }));

  test("a full queue refuses the commit over QUEUED_COMMITS_MAX; a group holds at most GROUP_COMMITS_MAX commits", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      const put = (n: number) => store.commit([{ type: "put", key: bytes(`q${String(n).padStart(5, "0")}`), value: bytes("v") }]);
      const accepted = Array.from({ length: QUEUED_COMMITS_MAX }, (_, n) => put(n));
      await expect(put(QUEUED_COMMITS_MAX)).rejects.toBeInstanceOf(DenoKvQueueFullError);
      await Promise.all(accepted);
      await put(QUEUED_COMMITS_MAX);
      await store.close();
      expect((await recordHeaders(path)).length).toBe(QUEUED_COMMITS_MAX / GROUP_COMMITS_MAX + 1);
      store = await createDenoKvStorage({ path });
      expect((await store.scan({ limit: 10_000 })).length).toBe(QUEUED_COMMITS_MAX + 1);
      await store.close();
    }));

  test("a caller changing its batch array after commit does not change what is written", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      const batch = [{ type: "put" as const, key: bytes("a"), value: bytes("1") }];
      const committed = store.commit(batch);
      batch.push({ type: "put", key: bytes("b"), value: "not bytes" as unknown as Uint8Array });
      await committed;
      await store.close();
      store = await createDenoKvStorage({ path });
      expect((await store.scan({ limit: 10 })).map((pair) => text(pair.key))).toEqual(["a"]);
      await store.close();
    }));

  test("keys up to KEY_BYTES_MAX are accepted; bad ops are refused before anything is written", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      await store.commit([{ type: "put", key: new Uint8Array(KEY_BYTES_MAX).fill(1), value: bytes("x") }]);
      await expect(store.commit([{ type: "put", key: bytes("a"), value: bytes("1") }, { type: "put", key: new Uint8Array(KEY_BYTES_MAX + 1), value: bytes("x") }])).rejects.toThrow(RangeError);
      await expect(store.commit([{ type: "put", key: bytes("b"), value: "text" as unknown as Uint8Array }])).rejects.toThrow(TypeError);
      await expect(store.commit([{ type: "merge", key: bytes("c") } as never])).rejects.toThrow(TypeError);
      await store.commit([{ type: "put", key: bytes("after"), value: bytes("ok") }]);
      await store.close();
      store = await createDenoKvStorage({ path });
      expect((await store.scan({ limit: 10 })).map((pair) => pair.key.length)).toEqual([KEY_BYTES_MAX, 5]);
      expect(await store.get(bytes("a"))).toBeUndefined();
      await store.close();
    }));

  test("an empty batch commits, and scan with start >= end is empty", () =>
    withLocation(async (path) => {
      const store = await createDenoKvStorage({ path });
      await store.commit([]);
      await store.commit([{ type: "put", key: bytes("a"), value: bytes("1") }]);
      expect((await store.scan({ start: bytes("b"), end: bytes("a"), limit: 10 })).length).toBe(0);
      expect((await store.scan({ start: bytes("a"), end: bytes("a"), limit: 10 })).length).toBe(0);
      await store.close();
      expect(await recordHeaders(path)).toEqual([1]);
    }));
});

/** Open with a crash point, run `crash` (which must end in a fail-stop), close. */
async function crashWith(path: string, options: Partial<DenoKvStorageOptions>, crash: (store: DenoKvStorage) => Promise<void>): Promise<void> {
  const store = await createDenoKvStorage({ path, ...options });
  await crash(store);
  await expect(store.commit([{ type: "put", key: bytes("after"), value: bytes("a") }])).rejects.toBeInstanceOf(DenoKvFailStopError);
  await store.close();
}

describe("deno-kv crash between a large record's parts and its header", () => {
  test("after reopen the record is none of it, its parts are deleted, and the record number is reused", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path });
      await store.commit([{ type: "put", key: bytes("L/huge"), value: patterned(100 * 1024, 1) }, { type: "put", key: bytes("keep"), value: bytes("k") }]);
      await store.close();
      await crashWith(path, { crashPoint: "before-header" }, async (crashed) => {
        await expect(crashed.commit(largeBatch("L"))).rejects.toBeInstanceOf(DenoKvFailStopError);
      });
      const parts = await rawKeys(path, ["log", 2]);
      expect(parts.length).toBeGreaterThan(0);
      expect(parts.some((key) => key[2] === 0)).toBe(false);
      store = await createDenoKvStorage({ path });
      expect(store.recovery.discardedBlocks).toBe(parts.length);
      expect((await store.scan({ limit: 5000 })).length).toBe(2);
      expect(await store.get(bytes("L/00000"))).toBeUndefined();
      expect(await store.get(bytes("L/huge"))).toEqual(patterned(100 * 1024, 1));
      await store.commit([{ type: "put", key: bytes("next"), value: bytes("n") }]);
      await store.close();
      expect(await recordHeaders(path)).toEqual([1, 2]);
      store = await createDenoKvStorage({ path });
      expect(store.recovery.discardedBlocks).toBe(0);
      expect(text(await store.get(bytes("next")))).toBe("n");
      expect(text(await store.get(bytes("keep")))).toBe("k");
      await store.close();
    }));
});

/** 24 values of 300 KiB (about 7 MiB: two snapshot pieces), written in 8 commits, then 3 of them deleted. */
async function fillForCompaction(store: DenoKvStorage): Promise<void> {
  for (let commit = 0; commit < 8; commit++) {
    await store.commit(Array.from({ length: 3 }, (_, i) => ({ type: "put" as const, key: bytes(`v/${commit * 3 + i}`), value: patterned(300 * 1024, commit * 3 + i) })));
  }
  await store.commit([0, 1, 2].map((n) => ({ type: "delete" as const, key: bytes(`v/${n}`) })));
}

async function expectCompactionData(store: DenoKvStorage): Promise<void> {
  const all = await store.scan({ start: bytes("v/"), end: bytes("v0"), limit: 100 });
  expect(all.length).toBe(21);
  for (let n = 3; n < 24; n++) expect(await store.get(bytes(`v/${n}`))).toEqual(patterned(300 * 1024, n));
}

describe("deno-kv compaction", () => {
  test("a snapshot replaces the log it covers, so reopen replays only what came after it", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path, compactLogBytes: 5 * 1024 * 1024 });
      await fillForCompaction(store);
      await store.compacted();
      await store.commit([{ type: "put", key: bytes("tail"), value: bytes("t") }]);
      await store.close();
      expect(new Set((await rawKeys(path, ["snap"])).map((key) => `${key[1]}/${key[2]}`)).size).toBe(2);
      store = await createDenoKvStorage({ path });
      expect(store.recovery.snapshotPieces).toBe(2);
      expect(store.recovery.replayedRecords).toBeLessThan(9);
      expect(store.recovery.leftoverBlocks).toBe(0);
      await expectCompactionData(store);
      expect(text(await store.get(bytes("tail")))).toBe("t");
      await store.close();
      const headers = await recordHeaders(path);
      expect(headers.length).toBe(store.recovery.replayedRecords);
      expect(headers[headers.length - 1]).toBe(10);
    }));

  test("repeated compactions keep one snapshot and reopen keeps everything", () =>
    withLocation(async (path) => {
      let store = await createDenoKvStorage({ path, compactLogBytes: 1 });
      for (let n = 0; n < 30; n++) {
        await store.commit([{ type: "put", key: bytes(`k/${n % 7}`), value: bytes(`${n}`) }, { type: "put", key: bytes(`once/${n}`), value: bytes("o") }]);
        await store.compacted();
      }
      await store.close();
      const snapshots = new Set((await rawKeys(path, ["snap"])).map((key) => key[1]));
      expect(snapshots.size).toBe(1);
      store = await createDenoKvStorage({ path });
      expect(store.recovery.replayedRecords).toBeLessThan(30);
      expect((await store.scan({ limit: 100 })).length).toBe(37);
      expect(text(await store.get(bytes("k/1")))).toBe("29");
      await store.close();
      expect((await recordHeaders(path)).length).toBe(store.recovery.replayedRecords);
    }));

  for (const crashPoint of ["before-base-flip", "after-base-flip"] as const) {
    test(`crash ${crashPoint}: reopen keeps every commit and deletes the leftovers`, () =>
      withLocation(async (path) => {
        let store = await createDenoKvStorage({ path });
        await fillForCompaction(store);
        await store.close();
        // The reopened store holds over 5 MiB of log, so its next commit starts a compaction.
        await crashWith(path, { compactLogBytes: 5 * 1024 * 1024, crashPoint }, async (crashed) => {
          await crashed.commit([{ type: "put", key: bytes("trigger"), value: bytes("t") }]);
          await crashed.compacted();
        });
        store = await createDenoKvStorage({ path });
        expect(store.recovery.snapshotPieces).toBe(crashPoint === "before-base-flip" ? 0 : 2);
        expect(store.recovery.leftoverBlocks).toBeGreaterThan(0);
        await expectCompactionData(store);
        await store.close();
        store = await createDenoKvStorage({ path });
        expect(store.recovery.leftoverBlocks).toBe(0);
        await expectCompactionData(store);
        await store.close();
      }));
  }
});

describe("deno-kv corruption and foreign data are named, never loaded", () => {
  async function written(path: string): Promise<void> {
    const store = await createDenoKvStorage({ path });
    await store.commit(largeBatch("C"));
    await store.commit([{ type: "put", key: bytes("last"), value: bytes("l") }]);
    await store.close();
  }

  const cases: Array<[string, (kv: RawKv) => Promise<void>, RegExp]> = [
    ["a flipped byte in a payload block", async (kv) => {
      const block = (await kv.get(["log", 1, 3])).value as Uint8Array;
      block[100] = block[100]! ^ 0x40;
      await kv.set(["log", 1, 3], block);
    }, /log record 1: block 3 checksum mismatch/],
    ["a missing payload block", (kv) => kv.delete(["log", 1, 5]), /log record 1: block 5 of \d+ is missing|log record 1: unexpected block 6/],
    ["a damaged header", async (kv) => {
      const header = (await kv.get(["log", 2, 0])).value as Uint8Array;
      await kv.set(["log", 2, 0], header.subarray(0, header.length - 1));
    }, /log record 2: header/],
    ["a missing record between two others", (kv) => kv.delete(["log", 1, 0]), /log record 1: has blocks but no header, yet .*log record 2 follows it/],
    ["a malformed base pointer", async (kv) => void (await kv.set(["meta", "base"], { snapshot: -1 })), /base pointer/],
  ];
  for (const [what, damage, message] of cases) {
    test(`${what} stops the open with a StorageCorruptionError naming the row`, () =>
      withLocation(async (path) => {
        await written(path);
        await withRaw(path, damage);
        await expect(createDenoKvStorage({ path })).rejects.toBeInstanceOf(StorageCorruptionError);
        await expect(createDenoKvStorage({ path })).rejects.toThrow(message);
      }));
  }

  test("a database of the earlier per-key layout is refused with a DenoKvLayoutError saying so", () =>
    withLocation(async (path) => {
      await withRaw(path, async (kv) => void (await kv.set(["d", bytes("meta/format")], bytes("2"))));
      await expect(createDenoKvStorage({ path })).rejects.toBeInstanceOf(DenoKvLayoutError);
      await expect(createDenoKvStorage({ path })).rejects.toThrow("earlier per-key layout");
      expect((await rawKeys(path, [])).length).toBe(1);
    }));

  test("a layout marker of another version is refused", () =>
    withLocation(async (path) => {
      await written(path);
      await withRaw(path, (kv) => kv.set(["meta", "format"], { layout: "scribe-log", version: 99 }));
      await expect(createDenoKvStorage({ path })).rejects.toThrow(/layout marker is .*99/);
    }));
});

describe("deno-kv kill -9", () => {
  const ROUNDS = 4;
  const seed = Number(process.env.DENO_KV_KILL_SEED ?? Date.now() % 1_000_000);
  const writer = join(import.meta.dirname!, "deno-kv-writer.ts");

  test(`acknowledged commits survive SIGKILL at a random moment, unacknowledged ones are all or nothing (${ROUNDS} rounds, seed ${seed})`, () =>
    withLocation(async (path) => {
      let state = seed;
      const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296);
      const present = new Set<string>();
      const deleting = new Set<string>();
      const deleted = new Set<string>();
      const begun = new Map<string, string[]>();
      for (let round = 0; round < ROUNDS; round++) {
        const target = 100 + Math.floor(random() * 2000);
        const lines = await runWriterUntilKilled([process.execPath, "run", "-A", "--unstable-kv", writer, path, `r${round}`, String(Math.floor(random() * 1e9))], target);
        for (const line of lines) {
          const [kind, name, count, big] = line.split(" ");
          if (kind === "B") begun.set(name!, commitKeys(name!, Number(count), big === "1"));
          else if (kind === "P") {
            present.add(name!);
            begun.delete(name!.slice(0, name!.lastIndexOf("-")));
          } else if (kind === "d") deleting.add(name!);
          else if (kind === "D") {
            present.delete(name!);
            deleting.delete(name!);
            deleted.add(name!);
          } else throw new Error(`unexpected writer line ${line}`);
        }
        const store = await createDenoKvStorage({ path });
        const where = `seed ${seed} round ${round}`;
        for (const key of present) {
          const value = await store.get(bytes(key));
          if (value === undefined && deleting.has(key)) continue;
          if (value === undefined) throw new Error(`${where}: acknowledged key ${key} is missing`);
          expect(value).toEqual(denoKvKillValue(key));
        }
        for (const key of deleted) expect(await store.get(bytes(key))).toBeUndefined();
        for (const [commit, keys] of begun) {
          const found = (await Promise.all(keys.map((key) => store.get(bytes(key))))).filter((value) => value !== undefined).length;
          if (found !== 0 && found !== keys.length) throw new Error(`${where}: unacknowledged commit ${commit} is partly there (${found} of ${keys.length} keys)`);
        }
        begun.clear();
        await store.close();
      }
      expect(present.size).toBeGreaterThan(ROUNDS * 100 * 0.5);
    }), 120_000);

  async function runWriterUntilKilled(command: string[], ackLinesTarget: number): Promise<string[]> {
    const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let errors = "";
    let exited = false;
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (errors += chunk));
    const exit = new Promise<void>((resolve) => child.on("exit", () => ((exited = true), resolve())));
    try {
      const outcome = await until("the writer to acknowledge enough ops", () => (exited ? "exited" : output.split("\n").length > ackLinesTarget ? "ok" : undefined), 60_000);
      if (outcome === "exited") throw new Error(`writer exited early: ${errors}`);
    } finally {
      child.kill("SIGKILL");
      await exit;
    }
    return output.slice(0, output.lastIndexOf("\n") + 1).split("\n").filter((line) => line !== "");
  }
});
