/**
 * The Deno KV adapter's in-memory index: a base SortedKeyMap plus at most one
 * published layer holding the last durable group's changes. A group's layer
 * is built while its Deno KV write is in flight (invisible to readers), made
 * visible in O(1) once the write is durable, and folded into the base while
 * the next group is being written, so inserting a group's keys never sits
 * between "durable" and "acknowledged". Readers see base + layer, which is
 * always exactly the durable state; every method here runs without yielding,
 * so a reader never sees half a fold.
 */
import { type BatchOp } from "../../src/storage/index.ts";
import { keyAtLeast, lowerBound, type SortedKeyMap, toKeyString } from "../../src/storage/sorted-map.ts";

/** One group's changes: value, or null for a delete; keys sorted for range reads. */
export interface Layer {
  changes: Map<string, Uint8Array | null>;
  keys: string[];
  deletedKeys: string[];
}


/** [from, to) of sorted `keys` inside [start, end). */
function window(keys: readonly string[], start: string | undefined, end: string | undefined): [number, number] {
  return [start === undefined ? 0 : lowerBound(keys, start), end === undefined ? keys.length : lowerBound(keys, end)];
}

/** Build a layer from batches in commit order (later ops on a key win). */
export function buildLayer(batches: readonly BatchOp[][]): Layer {
  const changes = new Map<string, Uint8Array | null>();
  for (const batch of batches) for (const op of batch) changes.set(toKeyString(op.key), op.type === "put" ? op.value : null);
  // Keys are latin1 strings, so the default (UTF-16 code unit) sort is byte order.
  const keys = [...changes.keys()].sort();
  return { changes, keys, deletedKeys: keys.filter((key) => changes.get(key) === null) };
}

/** Base map plus at most one published layer; see the module comment. */
export class LayeredIndex {
  readonly #base: SortedKeyMap<Uint8Array>;
  #top: Layer | undefined;
  /** Key + value bytes of the live pairs in the base (the top layer is counted when folded). */
  liveBytes: number;

  constructor(base: SortedKeyMap<Uint8Array>, liveBytes: number) {
    this.#base = base;
    this.liveBytes = liveBytes;
  }

  get(key: string): Uint8Array | undefined {
    const top = this.#top;
    if (top !== undefined) {
      const change = top.changes.get(key);
      if (change !== undefined) return change ?? undefined;
    }
    return this.#base.get(key);
  }

  /** Up to `limit` live pairs in [start, end), ascending or (reverse) descending. */
  range(start: string | undefined, end: string | undefined, limit: number, reverse: boolean): Array<[string, Uint8Array]> {
    const base = this.#base;
    const top = this.#top;
    const [from, to] = top === undefined ? [0, 0] : window(top.keys, start, end);
    if (from >= to) return base.range(start, end, limit, reverse).map((key) => [key, base.get(key)!]);
    // Deletes in the window can hide at most that many base keys and take that many top slots.
    const [deletedFrom, deletedTo] = window(top!.deletedKeys, start, end);
    const extra = deletedTo - deletedFrom;
    const fromBase = base.range(start, end, limit + extra, reverse);
    const fromTop = reverse ? top!.keys.slice(Math.max(from, to - limit - extra), to).reverse() : top!.keys.slice(from, Math.min(to, from + limit + extra));
    const out: Array<[string, Uint8Array]> = [];
    let b = 0;
    let t = 0;
    const before = (a: string, c: string) => (reverse ? a > c : a < c);
    while (out.length < limit && (b < fromBase.length || t < fromTop.length)) {
      const baseKey = fromBase[b];
      const topKey = fromTop[t];
      if (topKey === undefined || (baseKey !== undefined && before(baseKey, topKey))) {
        out.push([baseKey!, base.get(baseKey!)!]);
        b++;
        continue;
      }
      if (baseKey === topKey) b++;
      t++;
      const change = top!.changes.get(topKey)!;
      if (change !== null) out.push([topKey, change]);
    }
    return out;
  }

  /**
   * The last live pair in [start, end), or undefined: `range(start, end, 1,
   * true)` without its arrays, and with `start` left as bytes, so a
   * `lastInRanges` lookup (one per key a write group touches) converts only
   * `end` to a string. Each loop skips only keys the top layer deletes.
   */
  lastInRange(start: Uint8Array, end: string): [string, Uint8Array] | undefined {
    const base = this.#base;
    const top = this.#top;
    let baseKey = base.lastBelow(end);
    while (baseKey !== undefined && top !== undefined && keyAtLeast(baseKey, start) && top.changes.get(baseKey) === null) baseKey = base.lastBelow(baseKey);
    if (baseKey !== undefined && !keyAtLeast(baseKey, start)) baseKey = undefined;
    let topKey: string | undefined;
    if (top !== undefined) {
      for (let i = lowerBound(top.keys, end) - 1; i >= 0 && keyAtLeast(top.keys[i]!, start); i--) {
        if (top.changes.get(top.keys[i]!) !== null) {
          topKey = top.keys[i]!;
          break;
        }
      }
    }
    // On a tie the top layer holds the newer value.
    if (topKey !== undefined && (baseKey === undefined || topKey >= baseKey)) return [topKey, top!.changes.get(topKey)!];
    return baseKey === undefined ? undefined : [baseKey, base.get(baseKey)!];
  }

  /** Make `layer` (a durable group) visible, folding any previous layer in first. */
  publish(layer: Layer): void {
    this.fold();
    this.#top = layer;
  }

  /** Fold the published layer into the base; what readers see does not change. */
  fold(): void {
    const top = this.#top;
    if (top === undefined) return;
    const base = this.#base;
    let delta = 0;
    for (const [key, value] of top.changes) {
      const previous = base.get(key);
      if (previous !== undefined) delta -= key.length + previous.length;
      if (value === null) base.delete(key);
      else {
        base.set(key, value);
        delta += key.length + value.length;
      }
    }
    this.liveBytes += delta;
    this.#top = undefined;
  }

  /** Every live pair in ascending order (folds first), for a snapshot. */
  sortedEntries(): { keys: string[]; entries: Uint8Array[] } {
    this.fold();
    return this.#base.sortedEntries();
  }
}
