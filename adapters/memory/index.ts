/**
 * In-memory storage adapter: the reference implementation of the storage
 * port, used by tests, simulations and in-process benchmarks. Nothing here is
 * durable across a process exit; `commit` is atomic because it runs to
 * completion without yielding.
 */
import {
  assertScanOptions,
  type BatchOp,
  type KvPair,
  type ScanOptions,
  type Storage,
  StorageClosedError,
} from "../../src/storage/index.ts";

/** Options for {@link createMemoryStorage}. */
export interface MemoryStorageOptions {
  /** Name reported in logs and metrics; default "memory". */
  name?: string;
}

// Keys are held as latin1 strings: one char per byte, so JS string order
// (UTF-16 code units, all < 256 here) equals unsigned byte order.
function toKeyString(key: Uint8Array): string {
  if (key.length <= 4096) return String.fromCharCode.apply(null, key as unknown as number[]);
  let out = "";
  for (let i = 0; i < key.length; i += 4096) {
    out += String.fromCharCode.apply(null, key.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

function fromKeyString(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  return out;
}

/** Lower bound: first index in sorted `keys` whose key is >= `target`. */
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

/** Create an empty in-memory store. */
export function createMemoryStorage(options: MemoryStorageOptions = {}): Storage {
  const name = options.name ?? "memory";
  const values = new Map<string, Uint8Array>();
  // `sorted` holds every live key in order once `pending` is merged in; new
  // keys go to `pending` first so that a run of appends costs O(1) each and a
  // scan pays one sort of only the new keys.
  let sorted: string[] = [];
  let pending: string[] = [];
  let deletedSinceMerge = false;
  let totalBytes = 0;
  let closed = false;

  function ensureOpen(): void {
    if (closed) throw new StorageClosedError(name);
  }

  function mergePending(): void {
    if (pending.length === 0 && !deletedSinceMerge) return;
    pending.sort();
    const merged: string[] = [];
    let i = 0;
    let j = 0;
    while (i < sorted.length || j < pending.length) {
      let next: string;
      if (j >= pending.length || (i < sorted.length && sorted[i]! <= pending[j]!)) next = sorted[i++]!;
      else next = pending[j++]!;
      if (!values.has(next)) continue;
      if (merged.length > 0 && merged[merged.length - 1] === next) continue;
      merged.push(next);
    }
    sorted = merged;
    pending = [];
    deletedSinceMerge = false;
  }

  return {
    name,
    async get(key) {
      ensureOpen();
      const value = values.get(toKeyString(key));
      return value;
    },
    async scan(scanOptions: ScanOptions) {
      ensureOpen();
      assertScanOptions(scanOptions);
      mergePending();
      const start = scanOptions.start === undefined ? 0 : lowerBound(sorted, toKeyString(scanOptions.start));
      const end = scanOptions.end === undefined ? sorted.length : lowerBound(sorted, toKeyString(scanOptions.end));
      const out: KvPair[] = [];
      if (scanOptions.reverse) {
        for (let i = end - 1; i >= start && out.length < scanOptions.limit; i--) {
          out.push({ key: fromKeyString(sorted[i]!), value: values.get(sorted[i]!)! });
        }
      } else {
        for (let i = start; i < end && out.length < scanOptions.limit; i++) {
          out.push({ key: fromKeyString(sorted[i]!), value: values.get(sorted[i]!)! });
        }
      }
      return out;
    },
    async commit(batch: BatchOp[]) {
      ensureOpen();
      for (const op of batch) {
        const key = toKeyString(op.key);
        const previous = values.get(key);
        if (previous !== undefined) totalBytes -= key.length + previous.length;
        if (op.type === "put") {
          values.set(key, op.value);
          totalBytes += key.length + op.value.length;
          if (previous === undefined) pending.push(key);
        } else if (previous !== undefined) {
          values.delete(key);
          deletedSinceMerge = true;
        }
      }
    },
    async sizeBytes() {
      return totalBytes;
    },
    async close() {
      closed = true;
    },
  };
}
