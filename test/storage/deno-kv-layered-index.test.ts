/**
 * The Deno KV adapter's layered in-memory index (adapters/deno-kv/layered-index.ts)
 * against a plain model: after every publish and every fold, get and range
 * (limit, reverse, open and closed bounds) and lastInRange answer exactly as a sorted map of
 * the durable state would. Seeded; the seed is in the test name.
 */
import { describe, expect, test } from "bun:test";
import { buildLayer, LayeredIndex } from "../../adapters/deno-kv/layered-index.ts";
import { type BatchOp } from "../../src/storage/index.ts";
import { SortedKeyMap, toKeyString } from "../../src/storage/sorted-map.ts";
import { seededRandom } from "../../src/raft/index.ts";

const ALPHABET = [0, 1, 2, 127, 128, 255];

function randomKey(random: () => number): Uint8Array {
  const key = new Uint8Array(1 + Math.floor(random() * 3));
  for (let i = 0; i < key.length; i++) key[i] = ALPHABET[Math.floor(random() * ALPHABET.length)]!;
  return key;
}

function modelRange(model: Map<string, Uint8Array>, start: string | undefined, end: string | undefined, limit: number, reverse: boolean): Array<[string, Uint8Array]> {
  const keys = [...model.keys()].filter((key) => (start === undefined || key >= start) && (end === undefined || key < end)).sort();
  if (reverse) keys.reverse();
  return keys.slice(0, limit).map((key) => [key, model.get(key)!]);
}

function checkAgainstModel(index: LayeredIndex, model: Map<string, Uint8Array>, random: () => number): void {
  for (let query = 0; query < 20; query++) {
    const start = random() < 0.3 ? undefined : toKeyString(randomKey(random));
    const end = random() < 0.3 ? undefined : toKeyString(randomKey(random));
    const limit = 1 + Math.floor(random() * 6);
    const reverse = random() < 0.5;
    expect(index.range(start, end, limit, reverse)).toEqual(modelRange(model, start, end, limit, reverse));
    const lastStart = randomKey(random);
    const lastEnd = toKeyString(randomKey(random));
    expect(index.lastInRange(lastStart, lastEnd)).toEqual(modelRange(model, toKeyString(lastStart), lastEnd, 1, true)[0]);
    const key = toKeyString(randomKey(random));
    expect(index.get(key)).toEqual(model.get(key));
  }
}

describe("deno-kv layered index", () => {
  for (const seed of [1, 2, 3, 42, 2026]) {
    test(`matches a sorted-map model through publishes and folds (seed ${seed})`, () => {
      const random = seededRandom(seed);
      const index = new LayeredIndex(new SortedKeyMap<Uint8Array>(), 0);
      const model = new Map<string, Uint8Array>();
      let liveBytes = 0;
      for (let group = 0; group < 60; group++) {
        const batches: BatchOp[][] = [];
        for (let commit = 0; commit < 1 + Math.floor(random() * 3); commit++) {
          const batch: BatchOp[] = [];
          for (let i = 0; i < 1 + Math.floor(random() * 8); i++) {
            const key = randomKey(random);
            if (random() < 0.3) batch.push({ type: "delete", key });
            else batch.push({ type: "put", key, value: new Uint8Array([group, commit, i]) });
          }
          batches.push(batch);
        }
        const layer = buildLayer(batches);
        checkAgainstModel(index, model, random); // a built layer is invisible until published
        for (const batch of batches) {
          for (const op of batch) {
            const name = toKeyString(op.key);
            const previous = model.get(name);
            if (previous !== undefined) liveBytes -= name.length + previous.length;
            if (op.type === "put") {
              model.set(name, op.value);
              liveBytes += name.length + op.value.length;
            } else model.delete(name);
          }
        }
        index.publish(layer);
        checkAgainstModel(index, model, random);
        if (random() < 0.5) {
          index.fold();
          expect(index.liveBytes).toBe(liveBytes);
          checkAgainstModel(index, model, random);
        }
      }
      expect(index.sortedEntries().keys).toEqual([...model.keys()].sort());
      expect(index.liveBytes).toBe(liveBytes);
    });
  }
});
