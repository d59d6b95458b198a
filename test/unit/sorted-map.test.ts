import { describe, expect, test } from "bun:test";
import { CHUNK_KEYS_MAX, fromKeyString, keyAtLeast, SortedKeyMap, toKeyString } from "../../src/storage/sorted-map.ts";
import { seededRandom } from "../../src/raft/index.ts";

describe("SortedKeyMap", () => {
  test("key strings are latin1: one char per byte, every byte value, any length, round-trip", () => {
    for (const length of [0, 1, 256, 5000]) {
      const bytes = Uint8Array.from({ length }, (_, i) => (i * 7 + 255) % 256);
      const text = toKeyString(bytes);
      expect(text.length).toBe(length);
      for (let i = 0; i < length; i++) expect(text.charCodeAt(i)).toBe(bytes[i]!);
      expect(fromKeyString(text)).toEqual(bytes);
      expect(toKeyString(bytes.subarray(1, 3))).toBe(text.slice(1, 3));
    }
  });

  test("keyAtLeast compares a key string with key bytes in byte order, prefixes included", () => {
    const cases: Array<[number[], number[]]> = [[[], []], [[1], []], [[], [1]], [[1, 2], [1, 2, 0]], [[0xff], [0x7f, 0xff]], [[0x10, 0x80], [0x10, 0x7f]], [[5, 0], [5]]];
    for (const [a, b] of cases) {
      const key = toKeyString(Uint8Array.from(a));
      expect(keyAtLeast(key, Uint8Array.from(b))).toBe(key >= toKeyString(Uint8Array.from(b)));
    }
  });

  test("set returns the value it replaced", () => {
    const map = new SortedKeyMap<number>();
    expect(map.set("a", 1)).toBeUndefined();
    expect(map.set("a", 2)).toBe(1);
    expect(map.size).toBe(1);
  });

  test("property: random inserts, deletes and ranges match a sorted array model across many chunks (seeded)", () => {
    for (const seed of [1, 2, 3]) {
      const random = seededRandom(seed);
      const map = new SortedKeyMap<number>();
      const model = new Map<string, number>();
      const key = () => String.fromCharCode(97 + Math.floor(random() * 4)) + Math.floor(random() * 5000).toString(36);
      for (let step = 0; step < 20_000; step++) {
        const k = key();
        if (random() < 0.3) {
          map.delete(k);
          model.delete(k);
        } else {
          map.set(k, step);
          model.set(k, step);
        }
        if (step % 997 === 0) {
          const sorted = [...model.keys()].sort();
          const [a, b] = [key(), key()].sort();
          const limit = 1 + Math.floor(random() * 2000);
          const forward = sorted.filter((x) => x >= a! && x < b!);
          expect(map.range(a, b, limit, false)).toEqual(forward.slice(0, limit));
          expect(map.range(a, b, limit, true)).toEqual(forward.reverse().slice(0, limit));
          expect(map.range(undefined, undefined, 1_000_000, false)).toEqual(sorted);
          expect(map.range(undefined, a, 3, true)).toEqual(sorted.filter((x) => x < a!).reverse().slice(0, 3));
          for (let probe = 0; probe < 20; probe++) {
            const [low, high] = [key(), key()].sort();
            expect(map.lastBelow(high!)).toBe(sorted.filter((x) => x < high!).pop());
            const last = map.lastBelow(high!);
            expect(last !== undefined && keyAtLeast(last, fromKeyString(low!))).toBe(sorted.some((x) => x >= low! && x < high!));
          }
        }
      }
      expect(map.size).toBe(model.size);
      expect(map.sortedEntries().keys).toEqual([...model.keys()].sort());
      expect(map.size).toBeGreaterThan(CHUNK_KEYS_MAX * 4);
    }
  });

  test("property: increasing runs in several places (the finger's case) mixed with random keys and deletes match a model (seeded)", () => {
    const random = seededRandom(9);
    const map = new SortedKeyMap<number>();
    const model = new Set<string>();
    const counters = [0, 0, 0, 0];
    for (let step = 0; step < 30_000; step++) {
      const run = Math.floor(random() * 4);
      const k = random() < 0.8 ? `r${run}/${String(counters[run]!++).padStart(6, "0")}` : `r${Math.floor(random() * 5)}/${Math.floor(random() * 99999)}`;
      if (random() < 0.1) {
        map.delete(k);
        model.delete(k);
      } else {
        map.set(k, step);
        model.add(k);
      }
      if (step % 1499 === 0) {
        const sorted = [...model].sort();
        expect(map.range(undefined, undefined, 100_000, false)).toEqual(sorted);
        for (const end of [`r${run}/${String(counters[run]!).padStart(6, "0")}`, k, `r${run}/`, "s"]) {
          expect(map.lastBelow(end)).toBe(sorted.filter((x) => x < end).pop());
        }
      }
    }
    expect(map.sortedEntries().keys).toEqual([...model].sort());
  });

  test("loadSorted then inserts keep order; increasing appends stay ordered", () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `k${String(i * 2).padStart(6, "0")}`);
    const map = new SortedKeyMap<number>();
    map.loadSorted(keys, keys.map((_, i) => i));
    map.set("k000001", -1);
    map.set("z", -2);
    const all = map.range(undefined, undefined, 10_000, false);
    expect(all.length).toBe(3002);
    expect(all).toEqual([...all].sort());
    expect(map.range("k000001", "k000003", 10, false)).toEqual(["k000001", "k000002"]);
    expect(() => map.loadSorted(["a"], [1])).toThrow();
  });
});
