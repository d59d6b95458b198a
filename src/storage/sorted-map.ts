/**
 * An ordered map over byte-string keys, shared by the memory and fs-log
 * adapters. Keys are held as latin1 strings (one char per byte), so JS
 * string order (UTF-16 code units, all below 256 here) is unsigned byte
 * order, and a Map gives O(1) point reads.
 */

/** The latin1 string of `key`. */
export function toKeyString(key: Uint8Array): string {
  if (key.length <= 4096) return String.fromCharCode.apply(null, key as unknown as number[]);
  let out = "";
  for (let i = 0; i < key.length; i += 4096) {
    out += String.fromCharCode.apply(null, key.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

/** The bytes of a latin1 key string. */
export function fromKeyString(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  return out;
}

/** First index in sorted `keys` whose key is >= `target`. */
function lowerBound(keys: string[], target: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (keys[mid]! < target) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Sorted map from key string to entry. New keys are appended to `#pending`
 * and merged on the next ordered read, so a run of inserts costs O(1) each and
 * an ordered read pays one sort of only the new keys plus one linear merge.
 */
export class SortedKeyMap<V> {
  #entries = new Map<string, V>();
  #sorted: string[] = [];
  #pending: string[] = [];
  #deletedSinceMerge = false;

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    return this.#entries.get(key);
  }

  set(key: string, entry: V): void {
    if (!this.#entries.has(key)) this.#pending.push(key);
    this.#entries.set(key, entry);
  }

  delete(key: string): void {
    if (this.#entries.delete(key)) this.#deletedSinceMerge = true;
  }

  /** Load entries already in strictly ascending key order (from a checkpoint). */
  loadSorted(keys: string[], entries: V[]): void {
    if (this.#entries.size !== 0) throw new Error("loadSorted needs an empty index");
    for (let i = 0; i < keys.length; i++) this.#entries.set(keys[i]!, entries[i]!);
    this.#sorted = keys;
  }

  /** Keys in [start, end) in order (or reverse), at most `limit`. */
  range(start: string | undefined, end: string | undefined, limit: number, reverse: boolean): string[] {
    this.#merge();
    const sorted = this.#sorted;
    const from = start === undefined ? 0 : lowerBound(sorted, start);
    const to = end === undefined ? sorted.length : lowerBound(sorted, end);
    const out: string[] = [];
    if (reverse) for (let i = to - 1; i >= from && out.length < limit; i--) out.push(sorted[i]!);
    else for (let i = from; i < to && out.length < limit; i++) out.push(sorted[i]!);
    return out;
  }

  /** Every key in ascending order with its entry, for a checkpoint. */
  sortedEntries(): { keys: string[]; entries: V[] } {
    this.#merge();
    return { keys: this.#sorted.slice(), entries: this.#sorted.map((key) => this.#entries.get(key)!) };
  }

  #merge(): void {
    if (this.#pending.length === 0 && !this.#deletedSinceMerge) return;
    const pending = this.#pending.sort();
    const merged: string[] = [];
    let i = 0;
    let j = 0;
    while (i < this.#sorted.length || j < pending.length) {
      const takeSorted = j >= pending.length || (i < this.#sorted.length && this.#sorted[i]! <= pending[j]!);
      const next = takeSorted ? this.#sorted[i++]! : pending[j++]!;
      if (!this.#entries.has(next)) continue;
      if (merged.length > 0 && merged[merged.length - 1] === next) continue;
      merged.push(next);
    }
    this.#sorted = merged;
    this.#pending = [];
    this.#deletedSinceMerge = false;
  }
}
