/**
 * The ledger reader's hot cache: the newest record (and small values) of
 * recently written or read keys, within a byte budget, so a GET of a hot key
 * costs no storage read. It is separate from the reader because it is only
 * bookkeeping (a Map and its byte count): it never reads storage and never
 * decides whether a record is current enough to keep; the reader does that.
 */
import { type LatestRecord } from "./records.ts";

/** Newest state of a key kept in memory. `value` is null for tombstones and for values too big to cache. */
export interface HotRecord {
  latest: LatestRecord;
  timestampMs: number;
  contentType: string | null;
  value: Uint8Array | null;
}

/**
 * Memory one hot-cache entry takes beyond its key's characters and its
 * value's bytes: the Map entry, the record objects and the value's array
 * object. Measured on Bun 1.4 at about 310 bytes (500,000 entries of 16-byte
 * keys and 100-byte values took 432 bytes each in RSS).
 */
export const HOT_ENTRY_OVERHEAD_BYTES = 320;
/** Default byte budget of the hot cache (config `ledger.hot_cache_bytes`): about 600,000 keys with 100-byte values. */
export const HOT_CACHE_BYTES_DEFAULT = 256 * 1024 * 1024;
/** Eviction brings the hot cache down to this fraction of its limits. */
const HOT_EVICT_TO_FRACTION = 0.9;

/** Keys' newest records, least recently written first, within `cacheBytesMax` (values above `valueBytesMax` are not kept). */
export class HotCache {
  readonly #records = new Map<string, HotRecord>();
  #bytes = 0;
  readonly #valueBytesMax: number;
  readonly #cacheBytesMax: number;

  constructor(options: { valueBytesMax: number; cacheBytesMax: number }) {
    this.#valueBytesMax = options.valueBytesMax;
    this.#cacheBytesMax = options.cacheBytesMax;
  }

  /** The cached record of `key`, if any. */
  get(key: string): HotRecord | undefined {
    return this.#records.get(key);
  }

  /** Whether `key` is cached. */
  has(key: string): boolean {
    return this.#records.has(key);
  }

  /** Cache `record` as the newest of `key` (without its value when the value is too big), evicting if over budget. */
  remember(key: string, record: HotRecord): void {
    const cached = record.value !== null && record.value.length <= this.#valueBytesMax ? record : { ...record, value: null };
    const previous = this.#records.get(key);
    if (previous !== undefined) {
      this.#bytes -= hotEntryBytes(key, previous);
      this.#records.delete(key);
    }
    this.#records.set(key, cached);
    this.#bytes += hotEntryBytes(key, cached);
    if (this.#bytes > this.#cacheBytesMax) this.#evict();
  }

  /**
   * Forget the least recently written keys until the cache is at 90% of its
   * byte budget. Evicting a tenth at once keeps the cost amortized: a walk from the
   * front of a Map passes the holes earlier deletes left, so evicting one key
   * per insert would cost a walk over all of them every time.
   */
  #evict(): void {
    const bytesTarget = this.#cacheBytesMax * HOT_EVICT_TO_FRACTION;
    // Map iteration is insertion order, so the first keys are the least recently written.
    for (const [oldKey, old] of this.#records) {
      if (this.#bytes <= bytesTarget) break;
      this.#records.delete(oldKey);
      this.#bytes -= hotEntryBytes(oldKey, old);
    }
  }
}

/** What one hot-cache entry counts against the cache's byte budget. */
function hotEntryBytes(key: string, record: HotRecord): number {
  return key.length + (record.value?.length ?? 0) + HOT_ENTRY_OVERHEAD_BYTES;
}
