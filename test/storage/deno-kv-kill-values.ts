/** Keys and values shared by the deno-kv kill -9 writer (deno-kv-writer.ts) and its checker. */
import { killTestValue } from "./fs-log-kill-values.ts";

/** Size of the one big value some commits carry: over one Deno KV atomic operation (780 KiB) on its own. */
export const BIG_VALUE_BYTES = 900 * 1024;

/** The keys commit `commit` puts: `count` small ones, plus `<commit>-big` when `big`. */
export function commitKeys(commit: string, count: number, big: boolean): string[] {
  const keys = Array.from({ length: count }, (_, i) => `${commit}-${i}`);
  return big ? [...keys, `${commit}-big`] : keys;
}

/** The deterministic value stored under `key`: ~1 KiB, or BIG_VALUE_BYTES for a `-big` key. */
export function denoKvKillValue(key: string): Uint8Array {
  if (!key.endsWith("-big")) return killTestValue(key);
  const value = new Uint8Array(BIG_VALUE_BYTES);
  const seed = killTestValue(key);
  for (let i = 0; i < value.length; i++) value[i] = seed[i % seed.length]! ^ (i >>> 10);
  return value;
}
