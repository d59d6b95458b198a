/**
 * Deno KV storage adapter (`Deno.openKv(path)`). It maps our byte keys to
 * Deno KV keys [prefix, Uint8Array] (Deno KV orders Uint8Array parts bytewise,
 * so scans come back in our memcmp order) and stays inside Deno KV's limits
 * without giving up atomicity:
 *
 * - Values over VALUE_CHUNK_BYTES are split into chunks under a fresh version
 *   id; the key's header names the version, so a new value's chunks are
 *   invisible until its header flips, and old chunks are deleted afterwards.
 * - Concurrent commits are merged into one Deno KV atomic operation when they
 *   fit (group commit). A batch too large for one atomic operation is parked
 *   under the pending prefix, then made visible by one atomic write of the
 *   commit record, then applied in as many atomic operations as it needs; a
 *   commit record found on open is re-applied (idempotently), and pending
 *   parts without one are deleted. So after a crash a batch is all or nothing.
 *
 * Layout: ["d", key] -> value bytes | {v, n, len} chunked header;
 * ["c", key, v, i] -> chunk i; ["x", key] -> header (the set of chunked keys,
 * loaded on open so writes never read before writing); ["p", id, i] -> part i
 * of a parked batch; ["m", "commit"] -> {id, parts, bytes} commit record.
 *
 * It must never be opened by two processes at once (single writer), and
 * commits exclude reads while they run, so scans and chunked reads see whole
 * commits only.
 */
import {
  assertScanOptions,
  type KeyRange,
  lastInRangesByScan,
  type BatchOp,
  compareBytes,
  type KvPair,
  type ScanOptions,
  type Storage,
  StorageClosedError,
  StorageCorruptionError,
} from "../../src/storage/index.ts";
import {
  ATOMIC_BYTES_MAX,
  ATOMIC_MUTATIONS_MAX,
  chunkCount,
  decodeOps,
  encodeOps,
  type FinalOp,
  joinChunks,
  KEY_ENCODED_BYTES_MAX,
  keyPartEncodedBytes,
  MUTATION_OVERHEAD_BYTES,
  splitChunks,
  VALUE_BYTES_MAX,
  VALUE_CHUNK_BYTES,
} from "./codec.ts";
import { ReadWriteGate } from "./read-write-gate.ts";

/** Options for {@link createDenoKvStorage}. */
export interface DenoKvStorageOptions {
  /** Path of the Deno KV database file (passed to `Deno.openKv`). One process at a time. */
  path: string;
  /** Name reported in logs and metrics; default "deno-kv". */
  name?: string;
  /**
   * Test-only fault injection for batches too large for one atomic operation:
   * stop (as if the process died) before the commit record is written, right
   * after it, or after the first atomic operation of the apply phase. The
   * commit rejects and the store refuses further writes; reopen to recover.
   */
  crashPoint?: "before-flip" | "after-flip" | "mid-apply";
}

/** What open found: a committed-but-unapplied large batch, abandoned parts. */
export interface DenoKvRecoveryReport {
  reappliedCommit: boolean;
  abandonedParts: number;
}

/** The store `createDenoKvStorage` returns. */
export interface DenoKvStorage extends Storage {
  readonly recovery: DenoKvRecoveryReport;
}

/** Every write after a failed Deno KV write rejects with this; reopen to recover. */
export class DenoKvFailStopError extends Error {
  constructor(adapter: string, cause: unknown) {
    super(`storage adapter "${adapter}" stopped after a failed write; reopen to recover: ${String((cause as Error)?.message ?? cause)}`, { cause });
    this.name = "DenoKvFailStopError";
  }
}

// Structural types for the slice of the Deno KV API used here, so this file
// type-checks without Deno's lib and only touches `Deno` at run time.
type KvKeyPart = Uint8Array | string | number;
type KvKey = readonly KvKeyPart[];
interface KvEntryMaybe {
  key: KvKey;
  value: unknown;
  versionstamp: string | null;
}
interface KvAtomic {
  check(...checks: Array<{ key: KvKey; versionstamp: string | null }>): KvAtomic;
  set(key: KvKey, value: unknown): KvAtomic;
  delete(key: KvKey): KvAtomic;
  commit(): Promise<{ ok: boolean }>;
}
type KvSelector = { prefix: KvKey; start?: KvKey; end?: KvKey } | { start: KvKey; end: KvKey };
interface Kv {
  get(key: KvKey): Promise<KvEntryMaybe>;
  list(selector: KvSelector, options?: { limit?: number; reverse?: boolean; batchSize?: number }): AsyncIterable<KvEntryMaybe>;
  atomic(): KvAtomic;
  close(): void;
}
interface DenoGlobal {
  openKv?: (path?: string) => Promise<Kv>;
  stat(path: string): Promise<{ size: number }>;
}

const DATA = "d";
const CHUNK = "c";
const CHUNKED = "x";
const PENDING = "p";
const COMMIT_RECORD_KEY: KvKey = ["m", "commit"];
/** Allowance for a serialized ChunkedHeader. */
const HEADER_BYTES = 64;
/** Deno KV's largest list page. */
const LIST_BATCH_MAX = 1000;

/** Header stored instead of the value when the value is chunked. */
interface ChunkedHeader {
  v: string;
  n: number;
  len: number;
}

interface Mutation {
  key: KvKey;
  /** undefined = delete */
  value: unknown;
  bytes: number;
}

interface Plan {
  mutations: Mutation[];
  bytes: number;
  /** Chunked-key set changes to apply once the mutations are durable. */
  chunked: Array<[string, ChunkedHeader | undefined]>;
}

function denoGlobal(): DenoGlobal {
  const deno = (globalThis as unknown as { Deno?: DenoGlobal }).Deno;
  if (deno === undefined) throw new Error("the denokv adapter needs Deno; run with deno");
  if (typeof deno.openKv !== "function") throw new Error("the denokv adapter needs Deno KV; run deno with --unstable-kv");
  return deno;
}

/**
 * Open (creating if needed) a Deno KV store at `options.path` and finish or
 * discard any large commit a crash interrupted. Needs Deno with --unstable-kv.
 */
export async function createDenoKvStorage(options: DenoKvStorageOptions): Promise<DenoKvStorage> {
  const deno = denoGlobal();
  if (typeof options?.path !== "string" || options.path === "") throw new TypeError("deno-kv needs options.path");
  const kv = await deno.openKv!(options.path);
  const store = new DenoKvStore(kv, deno, options);
  try {
    await store.recover();
  } catch (error) {
    kv.close();
    throw error;
  }
  return store;
}

/** Latin1 string of a byte key: a Map key for the chunked-key set. */
function keyString(key: Uint8Array): string {
  let out = "";
  for (let i = 0; i < key.length; i += 4096) out += String.fromCharCode.apply(null, key.subarray(i, i + 4096) as unknown as number[]);
  return out;
}

function isChunkedHeader(value: unknown): value is ChunkedHeader {
  const header = value as ChunkedHeader;
  return (
    typeof header === "object" && header !== null && typeof header.v === "string" &&
    Number.isInteger(header.n) && header.n >= 1 && Number.isInteger(header.len) && header.len >= 0 &&
    header.len <= VALUE_BYTES_MAX && header.n === chunkCount(header.len)
  );
}

function newVersion(): string {
  const random = Math.floor(Math.random() * 0x1_0000_0000).toString(36);
  return `${Date.now().toString(36)}.${random}`;
}

const setOf = (key: KvKey, value: Uint8Array | object, valueBytes: number): Mutation => ({ key, value, bytes: valueBytes + MUTATION_OVERHEAD_BYTES });
const deleteOf = (key: KvKey): Mutation => ({ key, value: undefined, bytes: MUTATION_OVERHEAD_BYTES });

/** A final op with what planning needs computed once: its Map key and encoded key size. */
interface StagedOp extends FinalOp {
  name: string;
  keyBytes: number;
}

/** A validated batch, copied into one buffer, one op per key (later ops win), with its base cost. */
interface StagedBatch {
  ops: StagedOp[];
  /** Mutations and bytes before any deletes of old chunks (which depend on the store's state). */
  mutations: number;
  bytes: number;
}

function validateOp(op: BatchOp): number {
  if (op === null || typeof op !== "object" || !(op.key instanceof Uint8Array)) throw new TypeError("batch op key must be a Uint8Array");
  const keyBytes = keyPartEncodedBytes(op.key);
  if (keyBytes > KEY_ENCODED_BYTES_MAX) throw new RangeError(`key encodes to ${keyBytes} bytes; Deno KV allows ${KEY_ENCODED_BYTES_MAX} here`);
  if (op.type === "put") {
    if (!(op.value instanceof Uint8Array)) throw new TypeError("put value must be a Uint8Array");
    if (op.value.length > VALUE_BYTES_MAX) throw new RangeError(`value of ${op.value.length} bytes exceeds ${VALUE_BYTES_MAX}`);
  } else if (op.type !== "delete") throw new TypeError(`unknown batch op type ${String((op as { type: unknown }).type)}`);
  return keyBytes;
}

/**
 * Validate a batch and copy it out of the caller's arrays into one buffer
 * (one allocation per batch; Deno KV stores a Uint8Array view's bytes only).
 */
function stageBatch(batch: BatchOp[]): StagedBatch {
  if (!Array.isArray(batch)) throw new TypeError("commit batch must be an array");
  const last = new Map<string, number>();
  const keyBytes: number[] = [];
  const names: string[] = [];
  let copyBytes = 0;
  batch.forEach((op, i) => {
    keyBytes.push(validateOp(op));
    names.push(keyString(op.key));
    last.set(names[i]!, i);
    copyBytes += op.key.length + (op.type === "put" ? op.value.length : 0);
  });
  const buffer = new Uint8Array(copyBytes);
  const staged: StagedBatch = { ops: [], mutations: 0, bytes: 0 };
  let at = 0;
  const copy = (data: Uint8Array): Uint8Array => {
    buffer.set(data, at);
    at += data.length;
    return buffer.subarray(at - data.length, at);
  };
  batch.forEach((op, i) => {
    if (last.get(names[i]!) !== i) return;
    const key = copy(op.key);
    const value = op.type === "put" ? copy(op.value) : undefined;
    staged.ops.push({ name: names[i]!, key, value, keyBytes: keyBytes[i]! });
    // Mirrors #plan: chunks, header and chunked-set entry for a big value; one mutation otherwise.
    const chunks = value !== undefined && value.length > VALUE_CHUNK_BYTES ? chunkCount(value.length) : 0;
    const mutations = chunks === 0 ? 1 : chunks + 2;
    staged.mutations += mutations;
    staged.bytes += mutations * (MUTATION_OVERHEAD_BYTES + keyBytes[i]!) + (value?.length ?? 0) + (chunks === 0 ? 0 : 2 * HEADER_BYTES);
  });
  return staged;
}

interface PendingCommit {
  batch: StagedBatch;
  resolve: () => void;
  reject: (error: unknown) => void;
}

class DenoKvStore implements DenoKvStorage {
  readonly name: string;
  recovery: DenoKvRecoveryReport = { reappliedCommit: false, abandonedParts: 0 };
  #kv: Kv;
  #deno: DenoGlobal;
  #path: string;
  #crashPoint: DenoKvStorageOptions["crashPoint"];
  #chunked = new Map<string, ChunkedHeader>();
  #gate = new ReadWriteGate();
  #queue: PendingCommit[] = [];
  #flushing: Promise<void> | undefined;
  #failure: DenoKvFailStopError | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(kv: Kv, deno: DenoGlobal, options: DenoKvStorageOptions) {
    this.name = options.name ?? "deno-kv";
    this.#kv = kv;
    this.#deno = deno;
    this.#path = options.path;
    this.#crashPoint = options.crashPoint;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    this.#ensureOpen();
    if (!(key instanceof Uint8Array)) throw new TypeError("key must be a Uint8Array");
    return this.#gate.read(async () => {
      const entry = await this.#kv.get([DATA, key]);
      return entry.versionstamp === null ? undefined : this.#materialize(key, entry.value);
    });
  }

  async scan(options: ScanOptions): Promise<KvPair[]> {
    this.#ensureOpen();
    assertScanOptions(options);
    const { start, end } = options;
    if (start !== undefined && end !== undefined && compareBytes(start, end) >= 0) return [];
    const selector: KvSelector =
      start !== undefined && end !== undefined ? { start: [DATA, start], end: [DATA, end] }
      : start !== undefined ? { prefix: [DATA], start: [DATA, start] }
      : end !== undefined ? { prefix: [DATA], end: [DATA, end] }
      : { prefix: [DATA] };
    return this.#gate.read(async () => {
      const out: KvPair[] = [];
      const listing = this.#kv.list(selector, { limit: options.limit, reverse: options.reverse === true, batchSize: Math.min(options.limit, LIST_BATCH_MAX) });
      for await (const entry of listing) {
        const key = entry.key[1];
        if (!(key instanceof Uint8Array)) throw new StorageCorruptionError(`${this.#path}: data key part is not bytes`);
        out.push({ key, value: await this.#materialize(key, entry.value) });
      }
      return out;
    });
  }

  lastInRanges(ranges: readonly KeyRange[]): Promise<Array<KvPair | undefined>> {
    return lastInRangesByScan(this, ranges);
  }

  commit(batch: BatchOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StorageClosedError(this.name));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    let staged: StagedBatch;
    try {
      staged = stageBatch(batch);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ batch: staged, resolve, reject });
      this.#flushing ??= Promise.resolve().then(() => this.#flushLoop());
    });
  }

  async sizeBytes(): Promise<number> {
    let total = 0;
    for (const suffix of ["", "-wal", "-shm"]) {
      try {
        total += (await this.#deno.stat(this.#path + suffix)).size;
      } catch {
        // The -wal and -shm files come and go with SQLite checkpoints; absent means 0 bytes.
      }
    }
    return total;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.#flushing;
      await this.#gate.exclusive(async () => this.#kv.close());
    })();
    return this.#closing;
  }

  /** Open-time recovery; runs before the store is handed out. */
  async recover(): Promise<void> {
    for await (const entry of this.#kv.list({ prefix: [CHUNKED] })) {
      const key = entry.key[1];
      if (!(key instanceof Uint8Array) || !isChunkedHeader(entry.value)) throw new StorageCorruptionError(`${this.#path}: malformed chunked-key entry`);
      this.#chunked.set(keyString(key), entry.value);
    }
    const record = await this.#kv.get(COMMIT_RECORD_KEY);
    if (record.versionstamp !== null) {
      const { id, partCount, ops } = await this.#readParkedBatch(record.value);
      await this.#applyParked(id, partCount, ops, true);
      this.recovery.reappliedCommit = true;
    }
    const abandoned: Mutation[] = [];
    for await (const entry of this.#kv.list({ prefix: [PENDING] })) abandoned.push(deleteOf(entry.key));
    await this.#writeInAtomics(abandoned);
    this.recovery.abandonedParts = abandoned.length;
  }

  #ensureOpen(): void {
    if (this.#closed) throw new StorageClosedError(this.name);
  }

  async #materialize(key: Uint8Array, value: unknown): Promise<Uint8Array> {
    if (value instanceof Uint8Array) return value;
    if (!isChunkedHeader(value)) throw new StorageCorruptionError(`${this.#path}: value of a data key is neither bytes nor a chunk header`);
    const chunks: Uint8Array[] = [];
    for await (const entry of this.#kv.list({ prefix: [CHUNK, key, value.v] }, { batchSize: Math.min(value.n, LIST_BATCH_MAX) })) {
      if (!(entry.value instanceof Uint8Array) || entry.key[3] !== chunks.length) throw new StorageCorruptionError(`${this.#path}: chunk ${chunks.length} of version ${value.v} is malformed`);
      chunks.push(entry.value);
    }
    return joinChunks(chunks, value.n, value.len, `${this.#path}: chunks of version ${value.v}`);
  }

  async #flushLoop(): Promise<void> {
    while (this.#queue.length > 0 && this.#failure === undefined) {
      const group = this.#takeGroup();
      try {
        await this.#gate.exclusive(() => this.#writeGroup(group));
        for (const pending of group) pending.resolve();
      } catch (error) {
        this.#failure ??= new DenoKvFailStopError(this.name, error);
        for (const pending of group) pending.reject(this.#failure);
      }
    }
    for (const pending of this.#queue.splice(0)) pending.reject(this.#failure);
    this.#flushing = undefined;
  }

  /** Oldest commits whose costs, summed, fit one atomic operation (always at least one commit). */
  #takeGroup(): PendingCommit[] {
    let mutations = 0;
    let bytes = 0;
    let count = 0;
    for (; count < this.#queue.length; count++) {
      const batch = this.#queue[count]!.batch;
      mutations += batch.mutations;
      bytes += batch.bytes;
      if (this.#chunked.size > 0) {
        for (const op of batch.ops) {
          const old = this.#chunked.get(op.name);
          if (old !== undefined) mutations += old.n + 1;
          if (old !== undefined) bytes += (old.n + 1) * (MUTATION_OVERHEAD_BYTES + op.keyBytes);
        }
      }
      if (count > 0 && !fitsOneAtomic(mutations, bytes)) break;
    }
    return this.#queue.splice(0, Math.max(1, count));
  }

  async #writeGroup(group: PendingCommit[]): Promise<void> {
    const ops = group.length === 1 ? group[0]!.batch.ops : mergeOps(group.map((pending) => pending.batch.ops));
    const version = newVersion();
    const plan = this.#plan(ops, version);
    if (fitsOneAtomic(plan.mutations.length, plan.bytes)) {
      await this.#commitAtomic(plan.mutations);
      this.#applyChunked(plan);
      return;
    }
    await this.#parkAndApply(version, ops);
  }

  /** Large batch: park it, flip the commit record (the commit point), apply, clean up. */
  async #parkAndApply(id: string, ops: StagedOp[]): Promise<void> {
    const encoded = encodeOps(ops);
    const parts = splitChunks(encoded);
    await this.#writeInAtomics(parts.map((part, i) => setOf([PENDING, id, i], part, part.length)));
    if (this.#crashPoint === "before-flip") throw new Error("simulated crash before the commit record");
    const flip = await this.#kv.atomic()
      .check({ key: COMMIT_RECORD_KEY, versionstamp: null })
      .set(COMMIT_RECORD_KEY, { id, parts: parts.length, bytes: encoded.length })
      .commit();
    if (!flip.ok) throw new Error(`${this.#path}: a commit record already exists; is another process writing?`);
    if (this.#crashPoint === "after-flip") throw new Error("simulated crash after the commit record");
    await this.#applyParked(id, parts.length, ops, false);
  }

  /** Apply a committed parked batch; idempotent, so recovery can run it again from the start. */
  async #applyParked(id: string, partCount: number, ops: StagedOp[], recovering: boolean): Promise<void> {
    const plan = this.#plan(ops, id);
    await this.#writeInAtomics(plan.mutations, this.#crashPoint === "mid-apply" && !recovering);
    this.#applyChunked(plan);
    if (recovering) await this.#deleteOrphanChunks(ops);
    const cleanup = [deleteOf(COMMIT_RECORD_KEY)];
    for (let i = 0; i < partCount; i++) cleanup.push(deleteOf([PENDING, id, i]));
    await this.#writeInAtomics(cleanup);
  }

  async #readParkedBatch(record: unknown): Promise<{ id: string; partCount: number; ops: StagedOp[] }> {
    const where = `${this.#path}: commit record`;
    const { id, parts, bytes } = (record ?? {}) as { id: unknown; parts: unknown; bytes: unknown };
    if (typeof id !== "string" || !Number.isInteger(parts) || !Number.isInteger(bytes)) throw new StorageCorruptionError(`${where} is malformed`);
    const chunks: Uint8Array[] = [];
    for await (const entry of this.#kv.list({ prefix: [PENDING, id] })) {
      if (!(entry.value instanceof Uint8Array) || entry.key[2] !== chunks.length) throw new StorageCorruptionError(`${where}: part ${chunks.length} is malformed`);
      chunks.push(entry.value);
    }
    const ops = decodeOps(joinChunks(chunks, parts as number, bytes as number, `${where} ${id}`), `${where} ${id}`);
    const staged = ops.map((op) => ({ ...op, name: keyString(op.key), keyBytes: keyPartEncodedBytes(op.key) }));
    return { id, partCount: parts as number, ops: staged };
  }

  /** After a crash mid-apply, chunks of superseded versions of the touched keys may be left; delete them. */
  async #deleteOrphanChunks(ops: StagedOp[]): Promise<void> {
    const orphans: Mutation[] = [];
    for (const op of ops) {
      const live = this.#chunked.get(op.name)?.v;
      for await (const entry of this.#kv.list({ prefix: [CHUNK, op.key] })) if (entry.key[2] !== live) orphans.push(deleteOf(entry.key));
    }
    await this.#writeInAtomics(orphans);
  }

  /** The Deno KV mutations for `ops`, in a crash-safe order per key: new chunks, then header, then old chunks' deletes. */
  #plan(ops: StagedOp[], version: string): Plan {
    const plan: Plan = { mutations: [], bytes: 0, chunked: [] };
    let keyBytes = 0;
    const add = (mutation: Mutation) => {
      plan.mutations.push(mutation);
      plan.bytes += mutation.bytes + keyBytes;
    };
    for (const op of ops) {
      const name = op.name;
      keyBytes = op.keyBytes;
      const old = this.#chunked.get(name);
      let header: ChunkedHeader | undefined;
      if (op.value === undefined) add(deleteOf([DATA, op.key]));
      else if (op.value.length <= VALUE_CHUNK_BYTES) add(setOf([DATA, op.key], op.value, op.value.length));
      else {
        header = { v: version, n: chunkCount(op.value.length), len: op.value.length };
        splitChunks(op.value).forEach((chunk, i) => add(setOf([CHUNK, op.key, version, i], chunk, chunk.length)));
        add(setOf([DATA, op.key], header, HEADER_BYTES));
        add(setOf([CHUNKED, op.key], header, HEADER_BYTES));
      }
      if (old !== undefined && old.v !== version) {
        if (header === undefined) add(deleteOf([CHUNKED, op.key]));
        for (let i = 0; i < old.n; i++) add(deleteOf([CHUNK, op.key, old.v, i]));
      }
      if (header !== undefined || old !== undefined) plan.chunked.push([name, header]);
    }
    return plan;
  }

  #applyChunked(plan: Plan): void {
    for (const [name, header] of plan.chunked) {
      if (header === undefined) this.#chunked.delete(name);
      else this.#chunked.set(name, header);
    }
  }

  async #commitAtomic(mutations: Mutation[]): Promise<void> {
    if (mutations.length === 0) return;
    const atomic = this.#kv.atomic();
    for (const mutation of mutations) {
      if (mutation.value === undefined) atomic.delete(mutation.key);
      else atomic.set(mutation.key, mutation.value);
    }
    const result = await atomic.commit();
    if (!result.ok) throw new Error(`${this.#path}: atomic commit failed a check`);
  }

  /** Write `mutations` in order, packed into as few atomic operations as the limits allow. */
  async #writeInAtomics(mutations: Mutation[], crashAfterFirst = false): Promise<void> {
    let start = 0;
    while (start < mutations.length) {
      let end = start;
      let bytes = 0;
      while (end < mutations.length) {
        const next = mutations[end]!.bytes + 2 * keyPartEncodedBytesOf(mutations[end]!.key);
        if (end > start && !fitsOneAtomic(end - start + 1, bytes + next)) break;
        bytes += next;
        end++;
      }
      await this.#commitAtomic(mutations.slice(start, end));
      if (crashAfterFirst) throw new Error("simulated crash in the middle of applying a large commit");
      start = end;
    }
  }
}

function fitsOneAtomic(mutations: number, bytes: number): boolean {
  return mutations <= ATOMIC_MUTATIONS_MAX && bytes <= ATOMIC_BYTES_MAX;
}

/** Byte-key parts dominate key size; the other parts are covered by MUTATION_OVERHEAD_BYTES. */
function keyPartEncodedBytesOf(key: KvKey): number {
  return key[1] instanceof Uint8Array ? keyPartEncodedBytes(key[1]) : 0;
}

/** Merge several batches' final ops into one list (later batches win). */
function mergeOps(batches: StagedOp[][]): StagedOp[] {
  const byKey = new Map<string, StagedOp>();
  for (const ops of batches) {
    for (const op of ops) {
      byKey.delete(op.name);
      byKey.set(op.name, op);
    }
  }
  return [...byKey.values()];
}
