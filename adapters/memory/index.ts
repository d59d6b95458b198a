/**
 * In-memory storage adapter: the reference implementation of the storage
 * port, used by tests, simulations and in-process benchmarks. Nothing here is
 * durable across a process exit; `commit` is atomic because it runs to
 * completion without yielding.
 */
import {
  assertRanges,
  assertScanOptions,
  type KeyRange,
  type BatchOp,
  type KvPair,
  type ScanOptions,
  type Storage,
  StorageClosedError,
} from "../../src/storage/index.ts";
import { fromKeyString, keyAtLeast, SortedKeyMap, toKeyString } from "../../src/storage/sorted-map.ts";

/** Options for {@link createMemoryStorage}. */
export interface MemoryStorageOptions {
  /** Name reported in logs and metrics; default "memory". */
  name?: string;
}

/** Create an empty in-memory store. */
export function createMemoryStorage(options: MemoryStorageOptions = {}): Storage {
  const name = options.name ?? "memory";
  const values = new SortedKeyMap<Uint8Array>();
  let totalBytes = 0;
  let closed = false;

  function ensureOpen(): void {
    if (closed) throw new StorageClosedError(name);
  }

  return {
    name,
    async get(key) {
      ensureOpen();
      return values.get(toKeyString(key));
    },
    async scan(scanOptions: ScanOptions) {
      ensureOpen();
      assertScanOptions(scanOptions);
      const start = scanOptions.start === undefined ? undefined : toKeyString(scanOptions.start);
      const end = scanOptions.end === undefined ? undefined : toKeyString(scanOptions.end);
      return values
        .range(start, end, scanOptions.limit, scanOptions.reverse === true)
        .map((key): KvPair => ({ key: fromKeyString(key), value: values.get(key)! }));
    },
    async lastInRanges(ranges: readonly KeyRange[]) {
      ensureOpen();
      assertRanges(ranges);
      return ranges.map((range): KvPair | undefined => {
        const below = values.lastBelow(toKeyString(range.end));
        const key = below !== undefined && keyAtLeast(below, range.start) ? below : undefined;
        return key === undefined ? undefined : { key: fromKeyString(key), value: values.get(key)! };
      });
    },
    async commit(batch: BatchOp[]) {
      ensureOpen();
      for (const op of batch) {
        const key = toKeyString(op.key);
        if (op.type === "put") {
          const previous = values.set(key, op.value);
          totalBytes += key.length + op.value.length - (previous === undefined ? 0 : key.length + previous.length);
        } else {
          const previous = values.get(key);
          if (previous !== undefined) totalBytes -= key.length + previous.length;
          values.delete(key);
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
