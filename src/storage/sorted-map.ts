/**
 * An ordered map over byte-string keys, shared by the memory and fs-log
 * adapters. Keys are held as latin1 strings (one char per byte), so JS
 * string order (UTF-16 code units, all below 256 here) is unsigned byte
 * order, and a Map gives O(1) point reads.
 */

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;

/**
 * Buffer's native latin1 decoder (Bun, Node; Deno where its Buffer has it),
 * about 4x faster than String.fromCharCode.apply on short keys. Used only
 * after it proves it maps every byte b to U+00b on a plain Uint8Array; the
 * WHATWG "latin1" TextDecoder is windows-1252 and would not.
 */
const nativeLatin1Slice: Latin1Slice | undefined = (() => {
  const slice = (globalThis as { Buffer?: { prototype?: { latin1Slice?: unknown } } }).Buffer?.prototype?.latin1Slice;
  if (typeof slice !== "function") return undefined;
  try {
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const text = (slice as Latin1Slice).call(bytes, 0, 256);
    if (typeof text !== "string" || text.length !== 256) return undefined;
    for (let i = 0; i < 256; i++) if (text.charCodeAt(i) !== i) return undefined;
    return slice as Latin1Slice;
  } catch {
    return undefined;
  }
})();

/** The latin1 string of `key`. */
export function toKeyString(key: Uint8Array): string {
  if (nativeLatin1Slice !== undefined) return nativeLatin1Slice.call(key, 0, key.length);
  if (key.length <= 4096) return String.fromCharCode.apply(null, key as unknown as number[]);
  let out = "";
  for (let i = 0; i < key.length; i += 4096) {
    out += String.fromCharCode.apply(null, key.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

/** Whether latin1 key string `key` is >= the key `bound` in byte order, without converting `bound` to a string. */
export function keyAtLeast(key: string, bound: Uint8Array): boolean {
  const length = Math.min(key.length, bound.length);
  for (let i = 0; i < length; i++) {
    const difference = key.charCodeAt(i) - bound[i]!;
    if (difference !== 0) return difference > 0;
  }
  return key.length >= bound.length;
}

/** The bytes of a latin1 key string. */
export function fromKeyString(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  return out;
}

/** First index in sorted `keys` whose key is >= `target` (`keys.length` if none). */
export function lowerBound(keys: readonly string[], target: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (keys[mid]! < target) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Most keys in one chunk; a full chunk splits in two. */
export const CHUNK_KEYS_MAX = 512;

/**
 * Sorted map from key string to value: a Map for point reads plus the keys
 * in order as a list of sorted chunks (at most CHUNK_KEYS_MAX keys each), so
 * an insert or delete costs O(log n + CHUNK_KEYS_MAX) and a range read
 * O(log n + k) whatever the mix of writes and scans. Appending increasing
 * keys (log positions) only ever touches the last chunk.
 */
export class SortedKeyMap<V> {
  #entries = new Map<string, V>();
  /** Non-empty sorted chunks; every key of chunk i is below every key of chunk i + 1. */
  #chunks: string[][] = [];
  /** The chunk of the last insert or lookup: the next key of an increasing run belongs to it (see #chunkNear). */
  #finger = 0;

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    return this.#entries.get(key);
  }

  /** Store `value` under `key`; returns the value it replaced, if any. */
  set(key: string, value: V): V | undefined {
    const previous = this.#entries.get(key);
    // Values are never undefined here (V is a stored record), so undefined means a new key.
    if (previous === undefined) this.#insertKey(key);
    this.#entries.set(key, value);
    return previous;
  }

  delete(key: string): void {
    if (!this.#entries.delete(key)) return;
    const chunkIndex = this.#chunkFor(key);
    const chunk = this.#chunks[chunkIndex]!;
    chunk.splice(lowerBound(chunk, key), 1);
    if (chunk.length === 0) this.#chunks.splice(chunkIndex, 1);
  }

  /** Load keys already in strictly ascending order into an empty map (from a checkpoint). */
  loadSorted(keys: string[], values: V[]): void {
    if (this.#entries.size !== 0) throw new Error("loadSorted needs an empty map");
    for (let i = 0; i < keys.length; i++) this.#entries.set(keys[i]!, values[i]!);
    for (let i = 0; i < keys.length; i += CHUNK_KEYS_MAX / 2) this.#chunks.push(keys.slice(i, i + CHUNK_KEYS_MAX / 2));
  }

  /** Keys in [start, end) in order (or reverse), at most `limit`. */
  range(start: string | undefined, end: string | undefined, limit: number, reverse: boolean): string[] {
    const out: string[] = [];
    const chunks = this.#chunks;
    if (chunks.length === 0 || limit <= 0) return out;
    const inRange = (key: string) => (start === undefined || key >= start) && (end === undefined || key < end);
    if (!reverse) {
      let c = start === undefined ? 0 : this.#chunkFor(start);
      let i = start === undefined ? 0 : lowerBound(chunks[c]!, start);
      for (; c < chunks.length && out.length < limit; c++, i = 0) {
        const chunk = chunks[c]!;
        for (; i < chunk.length && out.length < limit; i++) {
          if (!inRange(chunk[i]!)) return out;
          out.push(chunk[i]!);
        }
      }
      return out;
    }
    let c = end === undefined ? chunks.length - 1 : this.#chunkFor(end);
    let i = end === undefined ? chunks[c]!.length - 1 : lowerBound(chunks[c]!, end) - 1;
    for (; c >= 0 && out.length < limit; c--, i = c >= 0 ? chunks[c]!.length - 1 : 0) {
      const chunk = chunks[c]!;
      for (; i >= 0 && out.length < limit; i--) {
        if (!inRange(chunk[i]!)) return out;
        out.push(chunk[i]!);
      }
    }
    return out;
  }

  /** The greatest key below `end`, if any: with {@link keyAtLeast}, a range's last key without range()'s array and closure. */
  lastBelow(end: string): string | undefined {
    const chunks = this.#chunks;
    if (chunks.length === 0) return undefined;
    let c = this.#chunkNear(end);
    this.#finger = c;
    const near = chunks[c]!;
    let i = near[near.length - 1]! < end ? near.length - 1 : lowerBound(near, end) - 1;
    if (i < 0) {
      // Every key of chunk c is >= end; the chunk before it ends below end (#chunkFor picked the first that does not).
      if (c === 0) return undefined;
      c--;
      i = chunks[c]!.length - 1;
    }
    return chunks[c]![i]!;
  }

  /** Every key in ascending order with its value, for a checkpoint. */
  sortedEntries(): { keys: string[]; entries: V[] } {
    const keys = this.#chunks.flat();
    return { keys, entries: keys.map((key) => this.#entries.get(key)!) };
  }

  /** The chunk that holds `key` or would: the first whose last key is >= key, else the last chunk. */
  #chunkFor(key: string): number {
    const chunks = this.#chunks;
    let low = 0;
    let high = chunks.length - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const chunk = chunks[mid]!;
      if (chunk[chunk.length - 1]! < key) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /**
   * A chunk `key` may go in (or be looked up below): the finger's chunk when
   * the key lies between its first key and the next chunk's first key, so an
   * increasing run of keys (log positions, time-ordered or sequential keys,
   * the version rows of a write group) costs two comparisons instead of two
   * binary searches; otherwise #chunkFor's. Either keeps the chunk invariant.
   */
  #chunkNear(key: string): number {
    const chunks = this.#chunks;
    const finger = this.#finger;
    if (finger < chunks.length && chunks[finger]![0]! <= key && (finger + 1 === chunks.length || key < chunks[finger + 1]![0]!)) return finger;
    return this.#chunkFor(key);
  }

  #insertKey(key: string): void {
    if (this.#chunks.length === 0) {
      this.#chunks.push([key]);
      this.#finger = 0;
      return;
    }
    const chunkIndex = this.#chunkNear(key);
    const chunk = this.#chunks[chunkIndex]!;
    if (chunk[chunk.length - 1]! < key) chunk.push(key);
    else chunk.splice(lowerBound(chunk, key), 0, key);
    this.#finger = chunkIndex;
    if (chunk.length > CHUNK_KEYS_MAX) {
      const upper = chunk.splice(CHUNK_KEYS_MAX / 2);
      this.#chunks.splice(chunkIndex + 1, 0, upper);
      if (key >= upper[0]!) this.#finger = chunkIndex + 1;
    }
  }
}
