/**
 * Idempotency keys: the first result of a write sent with an
 * `Idempotency-Key`, recorded by the state machine as it applies the command
 * (a single node as it commits the group), so a retry (after a timeout, a
 * failover, through another node, or a runtime's automatic re-send of a
 * PUT) gets that result back instead of appending twice.
 *
 * Records live in the storage port under `raft/"idem"/{key}` ->
 * CBOR [raftIndex, position, timestampMs, reply], written in the same batch as
 * the ledger writes of their entry. Every replica applies the same entries in
 * the same order, so every replica holds the same records and prunes them the
 * same way: oldest first (by apply order), while more than
 * IDEMPOTENCY_KEYS_MAX are kept or the oldest is older than
 * IDEMPOTENCY_RETENTION_MS before the applying entry's leader timestamp.
 * It never decides by the local clock.
 *
 * A Raft snapshot carries the whole table as of its index, rows verbatim and
 * in apply order (`exportRows`), and a replica installing it replaces its own
 * table with exactly that (`replaceOps`): any difference (a missing or extra
 * key, another order) would make it decide later retries, and prune,
 * differently from the others, and their ledgers would diverge.
 */
import { cbor, cborUint } from "../ledger/entry.ts";
import { KeyBuilder, Tag } from "../storage/keys.ts";
import { SCAN_LIMIT_MAX, StorageCorruptionError, type BatchOp, type Storage } from "../storage/index.ts";
import { decodeWire, forwardReplyFromWire, forwardReplyToWire, type ForwardReply } from "../transport/codec.ts";

/** Most idempotency keys remembered; the oldest is forgotten first. */
export const IDEMPOTENCY_KEYS_MAX = 100_000;
/** How long (by leader timestamps) an idempotency key is remembered. */
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Longest idempotency key, in characters (printable ASCII only). */
export const IDEMPOTENCY_KEY_CHARS_MAX = 128;

const recordPrefix = (): KeyBuilder => new KeyBuilder(Tag.raft).string("idem");
const recordKey = (key: string): Uint8Array => recordPrefix().string(key).build();

/** Whether `key` is a valid idempotency key: 1..128 printable ASCII characters. */
export function isIdempotencyKey(key: string): boolean {
  return key.length >= 1 && key.length <= IDEMPOTENCY_KEY_CHARS_MAX && /^[\x20-\x7e]+$/.test(key);
}

/** Retention of idempotency records; every replica must use the same values (they decide what a retry gets). */
export interface IdempotencyLimits {
  keysMax: number;
  retentionMs: number;
}

const DEFAULT_LIMITS: IdempotencyLimits = { keysMax: IDEMPOTENCY_KEYS_MAX, retentionMs: IDEMPOTENCY_RETENTION_MS };

interface Remembered {
  timestampMs: number;
}

/** One stored record as a snapshot carries it: the key and the exact stored value bytes. */
export interface IdempotencyRow {
  key: string;
  record: Uint8Array;
}

/** Where a record sits in apply order, or undefined when `row` is not a well-formed record. */
export function idempotencyRowHead(row: IdempotencyRow): { index: number; position: number; timestampMs: number } | undefined {
  if (!isIdempotencyKey(row.key)) return undefined;
  try {
    const head = decodeHead(row.record);
    // The reply must decode too: a later retry with this key is answered from it.
    forwardReplyFromWire((decodeWire(row.record) as unknown[])[3]);
    return head;
  } catch {
    return undefined;
  }
}

/** The recorded idempotency keys, in apply order, mirrored in memory (timestamps only; replies stay in storage). */
export class IdempotencyRecords {
  readonly #storage: Storage;
  readonly #limits: IdempotencyLimits;
  /** key -> when it was recorded; Map order is apply order, oldest first. */
  readonly #order: Map<string, Remembered>;
  /**
   * Records written into batches that are not durable yet, so lookups before the commit still see them; each
   * tagged with its sequence number, in recording order, so one batch can be marked durable before the next.
   */
  readonly #unflushed = new Map<string, { reply: ForwardReply; mark: number }>();
  #recorded = 0;

  /** The highest index (Raft index, or a single node's group number) of the records found at open; 0 if none. */
  readonly indexAtOpen: number;

  private constructor(storage: Storage, limits: IdempotencyLimits, order: Map<string, Remembered>, indexAtOpen: number) {
    this.#storage = storage;
    this.#limits = limits;
    this.#order = order;
    this.indexAtOpen = indexAtOpen;
  }

  static async open(storage: Storage, limits: IdempotencyLimits = DEFAULT_LIMITS): Promise<IdempotencyRecords> {
    const rows = await readRows(storage);
    const indexAtOpen = rows.length === 0 ? 0 : rows[rows.length - 1]!.index;
    return new IdempotencyRecords(storage, limits, new Map(rows.map((row) => [row.key, { timestampMs: row.timestampMs }])), indexAtOpen);
  }

  /** Every stored record in apply order. Call only when nothing is unflushed (at the end of a Ready). */
  async exportRows(): Promise<IdempotencyRow[]> {
    if (this.#unflushed.size > 0) throw new Error("assertion: idempotency rows exported with unflushed records");
    const rows = await readRows(this.#storage);
    if (rows.length !== this.#order.size) throw new Error("assertion: stored idempotency records differ from the remembered ones");
    return rows.map(({ key, record }) => ({ key, record }));
  }

  /**
   * Replace the whole table with `rows` (a snapshot's, in apply order, each
   * checked with idempotencyRowHead): deletes and puts go to `ops`, and the
   * remembered order is replaced now (the caller commits `ops` or fail-stops).
   */
  replaceOps(rows: readonly IdempotencyRow[], ops: BatchOp[]): void {
    for (const key of this.#order.keys()) ops.push({ type: "delete", key: recordKey(key) });
    this.#order.clear();
    this.#unflushed.clear();
    for (const row of rows) {
      const head = idempotencyRowHead(row);
      if (head === undefined || this.#order.has(row.key)) throw new Error("assertion: a snapshot's idempotency rows were not checked");
      ops.push({ type: "put", key: recordKey(row.key), value: row.record });
      this.#order.set(row.key, { timestampMs: head.timestampMs });
    }
  }

  /** The recorded reply for `key`, if it is remembered. */
  async lookup(key: string): Promise<ForwardReply | undefined> {
    if (!this.#order.has(key)) return undefined;
    const unflushed = this.#unflushed.get(key);
    if (unflushed !== undefined) return unflushed.reply;
    const bytes = await this.#storage.get(recordKey(key));
    if (bytes === undefined) throw new StorageCorruptionError(`idempotency record ${JSON.stringify(key)} is missing`);
    const raw = decodeWire(bytes) as unknown[];
    return forwardReplyFromWire(raw[3]);
  }

  /** Record `key`'s first reply (applied at `raftIndex`, `position` within it), then prune; ops go to `ops`. */
  record(key: string, at: { raftIndex: number; position: number; timestampMs: number }, reply: ForwardReply, ops: BatchOp[]): void {
    if (this.#order.has(key)) throw new Error(`assertion: idempotency key ${JSON.stringify(key)} recorded twice`);
    const value = cbor.encode([cborUint(at.raftIndex), cborUint(at.position), cborUint(at.timestampMs), forwardReplyToWire(reply)]);
    ops.push({ type: "put", key: recordKey(key), value });
    this.#order.set(key, { timestampMs: at.timestampMs });
    this.#unflushed.set(key, { reply, mark: ++this.#recorded });
  }

  /** Forget the oldest records beyond the count limit or older than the retention before `timestampMs`. */
  prune(timestampMs: number, ops: BatchOp[]): void {
    for (const [key, { timestampMs: recordedMs }] of this.#order) {
      if (this.#order.size <= this.#limits.keysMax && recordedMs >= timestampMs - this.#limits.retentionMs) break;
      ops.push({ type: "delete", key: recordKey(key) });
      this.#order.delete(key);
      this.#unflushed.delete(key);
    }
  }

  /** The position of the newest record so far: `flushed(mark)` once the batch holding it is durable. */
  mark(): number {
    return this.#recorded;
  }

  /** The batches holding every record up to `upTo` (default: all of them) are durable. */
  flushed(upTo = Infinity): void {
    for (const [key, { mark }] of this.#unflushed) {
      if (mark > upTo) break;
      this.#unflushed.delete(key);
    }
  }

  get size(): number {
    return this.#order.size;
  }
}

/** Every stored record, sorted into apply order by (raftIndex, position). */
async function readRows(storage: Storage): Promise<Array<{ key: string; record: Uint8Array; index: number; position: number; timestampMs: number }>> {
  const rows: Array<{ key: string; record: Uint8Array; index: number; position: number; timestampMs: number }> = [];
  const end = recordPrefix().raw(0xff).build();
  let start = recordPrefix().build();
  for (;;) {
    const page = await storage.scan({ start, end, limit: SCAN_LIMIT_MAX });
    for (const { key, value } of page) rows.push({ key: keyFromRecordKey(key), record: value, ...decodeHead(value) });
    if (page.length < SCAN_LIMIT_MAX) break;
    start = new Uint8Array([...page[page.length - 1]!.key, 0]);
  }
  rows.sort((a, b) => a.index - b.index || a.position - b.position);
  return rows;
}

function keyFromRecordKey(bytes: Uint8Array): string {
  const prefixBytes = recordPrefix().build().length;
  // KeyBuilder.string writes the bytes then a 0x00 0x00 terminator; keys are printable ASCII, so nothing is escaped.
  const key = new TextDecoder().decode(bytes.subarray(prefixBytes, bytes.length - 2));
  if (!isIdempotencyKey(key) || bytes[bytes.length - 1] !== 0 || bytes[bytes.length - 2] !== 0) throw new StorageCorruptionError("idempotency record key is malformed");
  return key;
}

function decodeHead(bytes: Uint8Array): { index: number; position: number; timestampMs: number } {
  const raw = decodeWire(bytes);
  if (!Array.isArray(raw) || raw.length !== 4 || !raw.slice(0, 3).every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new StorageCorruptionError("idempotency record is malformed");
  }
  return { index: raw[0], position: raw[1], timestampMs: raw[2] };
}
