/**
 * The storage conformance suite: every adapter's test file calls
 * `describeStorageConformance` with a factory. Durable adapters pass
 * `durable: true` and get the reopen tests too.
 */
import { describe, expect, test, afterEach } from "bun:test";
import { type BatchOp, type Storage, StorageClosedError, compareBytes, RANGES_PER_CALL_MAX } from "../../src/storage/index.ts";
import { seededRandom as prng } from "../../src/raft/index.ts";

/** How the suite obtains stores. `open(dir)` must reopen the same data for the same `dir`. */
export interface ConformanceTarget {
  name: string;
  /** Open (or reopen) a store. `location` is a fresh temp dir per test, reused for reopen. */
  open(location: string): Promise<Storage>;
  /** True when data survives close + open on the same location. */
  durable: boolean;
  /** Make a fresh location (temp dir); removed by `cleanup`. */
  makeLocation(): Promise<string>;
  cleanup(location: string): Promise<void>;
}

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);


export function describeStorageConformance(target: ConformanceTarget): void {
  describe(`storage conformance: ${target.name}`, () => {
    const opened: Array<{ store: Storage; location: string }> = [];

    async function fresh(): Promise<{ store: Storage; location: string }> {
      const location = await target.makeLocation();
      const store = await target.open(location);
      opened.push({ store, location });
      return { store, location };
    }

    afterEach(async () => {
      for (const { store, location } of opened.splice(0)) {
        await store.close();
        await target.cleanup(location);
      }
    });

    test("get of a missing key is undefined", async () => {
      const { store } = await fresh();
      expect(await store.get(bytes("nope"))).toBeUndefined();
    });

    test("put then get returns the exact bytes; later op in a batch wins", async () => {
      const { store } = await fresh();
      const value = new Uint8Array([0, 1, 2, 255, 0]);
      await store.commit([
        { type: "put", key: bytes("a"), value: bytes("first") },
        { type: "put", key: bytes("a"), value },
        { type: "put", key: bytes("b"), value: bytes("b") },
        { type: "delete", key: bytes("b") },
      ]);
      expect(await store.get(bytes("a"))).toEqual(value);
      expect(await store.get(bytes("b"))).toBeUndefined();
    });

    test("a committed value is readable byte for byte after the caller drops its batch", async () => {
      const { store } = await fresh();
      let batch: BatchOp[] | undefined = [{ type: "put", key: bytes("k"), value: bytes("abc") }];
      await store.commit(batch);
      batch = undefined;
      expect(text((await store.get(bytes("k")))!)).toBe("abc");
    });

    test("empty values and binary keys with zero and 0xff bytes round-trip", async () => {
      const { store } = await fresh();
      const keys = [new Uint8Array([0]), new Uint8Array([0, 0]), new Uint8Array([255]), new Uint8Array([255, 0, 255])];
      await store.commit(keys.map((key) => ({ type: "put" as const, key, value: new Uint8Array(0) })));
      for (const key of keys) expect(await store.get(key)).toEqual(new Uint8Array(0));
      const all = await store.scan({ limit: 10 });
      expect(all.map((pair) => Array.from(pair.key))).toEqual([[0], [0, 0], [255], [255, 0, 255]]);
    });

    test("scan is in unsigned byte order, honours [start, end), limit and reverse", async () => {
      const { store } = await fresh();
      const names = ["b", "a", "c", "ab", "b\u00ff", "ba", "d"];
      await store.commit(names.map((name) => ({ type: "put" as const, key: bytes(name), value: bytes(name.toUpperCase()) })));
      const keysOf = (pairs: Array<{ key: Uint8Array }>) => pairs.map((pair) => text(pair.key));
      expect(keysOf(await store.scan({ limit: 100 }))).toEqual(["a", "ab", "b", "ba", "b\u00ff", "c", "d"]);
      expect(keysOf(await store.scan({ start: bytes("ab"), end: bytes("c"), limit: 100 }))).toEqual(["ab", "b", "ba", "b\u00ff"]);
      expect(keysOf(await store.scan({ start: bytes("ab"), end: bytes("c"), limit: 2 }))).toEqual(["ab", "b"]);
      expect(keysOf(await store.scan({ start: bytes("ab"), end: bytes("c"), limit: 2, reverse: true }))).toEqual(["b\u00ff", "ba"]);
      expect(keysOf(await store.scan({ end: bytes("b"), limit: 100, reverse: true }))).toEqual(["ab", "a"]);
      // Small reverse limits over a range with keys below it (an adapter may read past the range, never return it).
      expect(keysOf(await store.scan({ start: bytes("b"), end: bytes("c"), limit: 8, reverse: true }))).toEqual(["b\u00ff", "ba", "b"]);
      expect(keysOf(await store.scan({ start: bytes("bb"), end: bytes("b\u00ff"), limit: 1, reverse: true }))).toEqual([]);
      expect(keysOf(await store.scan({ start: bytes("ba"), end: bytes("bb"), limit: 1, reverse: true }))).toEqual(["ba"]);
      expect(keysOf(await store.scan({ start: bytes("zz"), limit: 100 }))).toEqual([]);
      const values = (await store.scan({ start: bytes("d"), limit: 1 })).map((pair) => text(pair.value));
      expect(values).toEqual(["D"]);
    });

    test("lastInRanges answers each range with its greatest key (as a reverse scan would), in order", async () => {
      const { store } = await fresh();
      await store.commit(["a", "ab", "b", "ba", "b\u00ff", "c", "d", "d\u0000"].map((key) => ({ type: "put" as const, key: bytes(key), value: bytes(`v:${key}`) })));
      const ranges = [["a", "b"], ["b", "c"], ["ba", "ba"], ["c", "a"], ["x", "z"], ["d", "e"], ["", "a"], ["a", "ab"], ["b\u00ff", "c"]];
      const answers = await store.lastInRanges(ranges.map(([start, end]) => ({ start: bytes(start!), end: bytes(end!) })));
      expect(answers.map((pair) => (pair === undefined ? null : [text(pair.key), text(pair.value)]))).toEqual([
        ["ab", "v:ab"], ["b\u00ff", "v:b\u00ff"], null, null, null, ["d\u0000", "v:d\u0000"], null, ["a", "v:a"], ["b\u00ff", "v:b\u00ff"],
      ]);
      for (const [i, [start, end]] of ranges.entries()) {
        const scanned = await store.scan({ start: bytes(start!), end: bytes(end!), limit: 1, reverse: true });
        expect(answers[i] === undefined ? [] : [text(answers[i]!.key)]).toEqual(scanned.map((pair) => text(pair.key)));
      }
      expect(await store.lastInRanges([])).toEqual([]);
    });

    test("lastInRanges answers many ranges at once and refuses more than its limit", async () => {
      const { store } = await fresh();
      const keys = Array.from({ length: 300 }, (_, i) => `k${String(i).padStart(4, "0")}`);
      await store.commit(keys.filter((_, i) => i % 3 !== 0).map((key) => ({ type: "put" as const, key: bytes(`${key}/1`), value: bytes(key) })));
      const answers = await store.lastInRanges(keys.map((key) => ({ start: bytes(`${key}/`), end: bytes(`${key}0`) })));
      expect(answers.map((pair) => pair && text(pair.value))).toEqual(keys.map((key, i) => (i % 3 === 0 ? undefined : key)));
      const tooMany = Array.from({ length: RANGES_PER_CALL_MAX + 1 }, () => ({ start: bytes("a"), end: bytes("b") }));
      await expect(store.lastInRanges(tooMany)).rejects.toThrow(RangeError);
    });

    test("scan rejects a limit outside its bounds", async () => {
      const { store } = await fresh();
      await expect(store.scan({ limit: 0 })).rejects.toThrow(RangeError);
      await expect(store.scan({ limit: 1.5 })).rejects.toThrow(RangeError);
    });

    test("an empty commit succeeds and changes nothing; an empty or inverted range scans nothing", async () => {
      const { store } = await fresh();
      await store.commit([{ type: "put", key: bytes("m"), value: bytes("1") }]);
      await store.commit([]);
      expect((await store.scan({ limit: 10 })).length).toBe(1);
      expect(await store.scan({ start: bytes("m"), end: bytes("m"), limit: 10 })).toEqual([]);
      expect(await store.scan({ start: bytes("z"), end: bytes("a"), limit: 10 })).toEqual([]);
      expect(await store.scan({ start: bytes("z"), end: bytes("a"), limit: 10, reverse: true })).toEqual([]);
    });

    test("deletes disappear from get and scan, and re-put brings a key back", async () => {
      const { store } = await fresh();
      await store.commit([1, 2, 3, 4].map((n) => ({ type: "put" as const, key: bytes(`k${n}`), value: bytes(`${n}`) })));
      await store.commit([{ type: "delete", key: bytes("k2") }, { type: "delete", key: bytes("missing") }]);
      expect((await store.scan({ limit: 10 })).map((pair) => text(pair.key))).toEqual(["k1", "k3", "k4"]);
      await store.commit([{ type: "put", key: bytes("k2"), value: bytes("again") }]);
      expect(text((await store.get(bytes("k2")))!)).toBe("again");
      expect((await store.scan({ limit: 10 })).map((pair) => text(pair.key))).toEqual(["k1", "k2", "k3", "k4"]);
    });

    test("concurrent commits all land", async () => {
      const { store } = await fresh();
      await Promise.all(
        Array.from({ length: 50 }, (_, n) =>
          store.commit([{ type: "put", key: bytes(`c${String(n).padStart(3, "0")}`), value: bytes(`${n}`) }]),
        ),
      );
      const all = await store.scan({ limit: 100 });
      expect(all.length).toBe(50);
      expect(text(all[49]!.value)).toBe("49");
    });

    test("commits marked not durable are atomic, visible once resolved, and ordered with durable ones", async () => {
      const { store } = await fresh();
      const writes: Array<Promise<void>> = [];
      for (let n = 0; n < 40; n++) {
        const ops = [{ type: "put" as const, key: bytes(`n${String(n).padStart(3, "0")}`), value: bytes(`${n}`) }, { type: "put" as const, key: bytes("last"), value: bytes(`${n}`) }];
        writes.push(store.commit(ops, { durable: n % 3 === 0 }));
      }
      await Promise.all(writes);
      expect((await store.scan({ start: bytes("n"), end: bytes("o"), limit: 100 })).length).toBe(40);
      expect(text((await store.get(bytes("last")))!)).toBe("39");
      await store.commit([{ type: "delete", key: bytes("n000") }], { durable: false });
      expect(await store.get(bytes("n000"))).toBeUndefined();
    });

    test("large value (1 MiB) round-trips", async () => {
      const { store } = await fresh();
      const value = new Uint8Array(1 << 20);
      for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
      await store.commit([{ type: "put", key: bytes("big"), value }]);
      expect(await store.get(bytes("big"))).toEqual(value);
    });

    test("property: random ops match a sorted-map model (seeded)", async () => {
      const { store } = await fresh();
      const model = new Map<string, Uint8Array>();
      const random = prng(1234);
      const hex = (key: Uint8Array) => Array.from(key, (b) => b.toString(16).padStart(2, "0")).join("");
      for (let round = 0; round < 40; round++) {
        const batch = [];
        for (let i = 0; i < 10; i++) {
          const key = new Uint8Array(1 + Math.floor(random() * 3));
          for (let j = 0; j < key.length; j++) key[j] = [0, 1, 127, 128, 255][Math.floor(random() * 5)]!;
          if (random() < 0.25) {
            batch.push({ type: "delete" as const, key });
            model.delete(hex(key));
          } else {
            const value = new Uint8Array([round, i]);
            batch.push({ type: "put" as const, key, value });
            model.set(hex(key), value);
          }
        }
        await store.commit(batch);
      }
      const expected = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const actual = await store.scan({ limit: 1000 });
      expect(actual.map((pair) => hex(pair.key))).toEqual(expected.map(([key]) => key));
      expect(actual.map((pair) => Array.from(pair.value))).toEqual(expected.map(([, value]) => Array.from(value)));
      for (let i = 1; i < actual.length; i++) expect(compareBytes(actual[i - 1]!.key, actual[i]!.key)).toBeLessThan(0);
    });

    test("operations after close reject with StorageClosedError", async () => {
      const location = await target.makeLocation();
      const store = await target.open(location);
      await store.close();
      await store.close();
      await expect(store.get(bytes("a"))).rejects.toBeInstanceOf(StorageClosedError);
      await expect(store.commit([{ type: "put", key: bytes("a"), value: bytes("b") }])).rejects.toBeInstanceOf(StorageClosedError);
      await target.cleanup(location);
    });

    if (target.durable) {
      test("reopen after close keeps every committed write, in order", async () => {
        const location = await target.makeLocation();
        let store = await target.open(location);
        for (let n = 0; n < 200; n += 10) {
          await store.commit(
            Array.from({ length: 10 }, (_, i) => ({
              type: "put" as const,
              key: bytes(`r${String(n + i).padStart(4, "0")}`),
              value: bytes(`value-${n + i}`),
            })),
          );
        }
        await store.commit([{ type: "delete", key: bytes("r0005") }]);
        // Not durable at once, but a clean close keeps it.
        await store.commit([{ type: "put", key: bytes("r0199"), value: bytes("value-199-again") }], { durable: false });
        await store.close();
        store = await target.open(location);
        const all = await store.scan({ limit: 1000 });
        expect(all.length).toBe(199);
        expect(text(all[0]!.key)).toBe("r0000");
        expect(await store.get(bytes("r0005"))).toBeUndefined();
        expect(text((await store.get(bytes("r0199")))!)).toBe("value-199-again");
        expect(await store.sizeBytes()).toBeGreaterThan(0);
        await store.close();
        await target.cleanup(location);
      });
    }
  });
}
