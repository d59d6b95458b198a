/**
 * The slice of the Deno KV API the adapter uses, as structural types (so the
 * adapter type-checks without Deno's lib and touches `Deno` only at run
 * time), plus packing of mutations into atomic operations within Deno KV's
 * limits. Nothing here knows the adapter's layout.
 */
import { ATOMIC_BYTES_MAX, ATOMIC_MUTATIONS_MAX, MUTATION_KEY_BYTES } from "./codec.ts";

export type KvKeyPart = Uint8Array | string | number;
export type KvKey = readonly KvKeyPart[];
export interface KvEntryMaybe {
  key: KvKey;
  value: unknown;
  versionstamp: string | null;
}
export interface KvCheck {
  key: KvKey;
  versionstamp: string | null;
}
export interface KvAtomic {
  check(...checks: KvCheck[]): KvAtomic;
  set(key: KvKey, value: unknown): KvAtomic;
  delete(key: KvKey): KvAtomic;
  commit(): Promise<{ ok: boolean; versionstamp?: string }>;
}
export type KvSelector = { prefix: KvKey; start?: KvKey; end?: KvKey } | { start: KvKey; end: KvKey };
export interface Kv {
  get(key: KvKey): Promise<KvEntryMaybe>;
  list(selector: KvSelector, options?: { limit?: number; reverse?: boolean; batchSize?: number }): AsyncIterable<KvEntryMaybe>;
  atomic(): KvAtomic;
  close(): void;
}
export interface DenoGlobal {
  openKv?: (path?: string) => Promise<Kv>;
  stat(path: string): Promise<{ size: number }>;
}

/** The Deno global, checked lazily with an error that says how to fix a wrong runtime. */
export function denoGlobal(): DenoGlobal {
  const deno = (globalThis as unknown as { Deno?: DenoGlobal }).Deno;
  if (deno === undefined) throw new Error("the denokv adapter needs Deno; run with deno");
  if (typeof deno.openKv !== "function") throw new Error("the denokv adapter needs Deno KV; run deno with --unstable-kv");
  return deno;
}

/** One set (value defined) or delete (value undefined) with its cost against the atomic byte budget. */
export interface Mutation {
  key: KvKey;
  value: Uint8Array | object | undefined;
  bytes: number;
}

/** Allowance for a small structured value (format marker, base pointer). */
const OBJECT_VALUE_BYTES = 128;

export const setBytes = (key: KvKey, value: Uint8Array): Mutation => ({ key, value, bytes: value.length + MUTATION_KEY_BYTES });
export const setObject = (key: KvKey, value: object): Mutation => ({ key, value, bytes: OBJECT_VALUE_BYTES + MUTATION_KEY_BYTES });
export const deleteOf = (key: KvKey): Mutation => ({ key, value: undefined, bytes: MUTATION_KEY_BYTES });

/** Split `mutations`, in order, into as few atomic operations as the limits allow. */
export function packAtomics(mutations: readonly Mutation[]): Mutation[][] {
  const out: Mutation[][] = [];
  let current: Mutation[] = [];
  let bytes = 0;
  for (const mutation of mutations) {
    if (current.length > 0 && (current.length === ATOMIC_MUTATIONS_MAX || bytes + mutation.bytes > ATOMIC_BYTES_MAX)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(mutation);
    bytes += mutation.bytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Commit `mutations` as one atomic operation guarded by `checks`; resolves with the new versionstamp. */
export async function commitAtomic(kv: Kv, mutations: readonly Mutation[], checks: readonly KvCheck[], where: string): Promise<string> {
  const atomic = kv.atomic();
  if (checks.length > 0) atomic.check(...checks);
  for (const mutation of mutations) {
    if (mutation.value === undefined) atomic.delete(mutation.key);
    else atomic.set(mutation.key, mutation.value);
  }
  const result = await atomic.commit();
  if (!result.ok) throw new Error(`${where}: a Deno KV atomic commit failed its check; is another process writing this database?`);
  return result.versionstamp ?? "";
}

/** Most atomic operations of one write (the parts of a large blob, a cleanup) in flight at once. */
export const ATOMICS_IN_FLIGHT_MAX = 4;

/** Write `mutations` (order between them does not matter) in packed atomic operations, a few at a time. */
export async function writeUnordered(kv: Kv, mutations: readonly Mutation[], where: string): Promise<void> {
  const packs = packAtomics(mutations);
  for (let i = 0; i < packs.length; i += ATOMICS_IN_FLIGHT_MAX) {
    await Promise.all(packs.slice(i, i + ATOMICS_IN_FLIGHT_MAX).map((pack) => commitAtomic(kv, pack, [], where)));
  }
}
