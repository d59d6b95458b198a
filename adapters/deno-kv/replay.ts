/**
 * Open-time work of the Deno KV log adapter: check the layout marker, load the
 * base snapshot, replay the log records after it into the in-memory index,
 * and delete what a crash left behind (blocks of a record whose header never
 * landed, a snapshot that never became the base, records and snapshots a
 * finished compaction had not yet deleted). It must never apply a record it
 * has not fully checked: any defect stops the open with a
 * StorageCorruptionError naming the Deno KV key.
 */
import { StorageCorruptionError } from "../../src/storage/index.ts";
import { SortedKeyMap, toKeyString } from "../../src/storage/sorted-map.ts";
import {
  acceptBlock,
  BLOB_LOG_RECORD,
  BLOB_SNAPSHOT_PIECE,
  type BlobHeader,
  BLOCKS_PER_BLOB_MAX,
  BATCH_BYTES_MAX,
  decodeBlobHeader,
  decodePayload,
} from "./codec.ts";
import { commitAtomic, deleteOf, type Kv, type KvEntryMaybe, type KvKey, type Mutation, setObject, writeUnordered } from "./kv.ts";

/** Deno KV key prefixes and meta keys of the log layout. */
export const LOG = "log";
export const SNAPSHOT = "snap";
export const FORMAT_KEY: KvKey = ["meta", "format"];
export const BASE_KEY: KvKey = ["meta", "base"];
/** The layout marker; a database without it (or with another) is refused. */
export const FORMAT = { layout: "scribe-log", version: 1 } as const;
/** Rows per Deno KV list page while replaying: at most 16 MiB of 63 KiB blocks, and few pages when records are tiny. */
const LIST_BATCH_BLOCKS = 256;

/** The durable state is snapshot `snapshot` (0 = empty; `pieces` pieces) plus log records `firstRecord`, `firstRecord + 1`, ... */
export interface Base {
  snapshot: number;
  pieces: number;
  firstRecord: number;
}

/** What open found and did. */
export interface DenoKvRecoveryReport {
  /** True when open wrote the layout marker into an empty database. */
  created: boolean;
  snapshotPieces: number;
  replayedRecords: number;
  /** Payload blocks of a record whose header was never written (a crash before the commit point); deleted. */
  discardedBlocks: number;
  /** Rows of superseded snapshots and log records a compaction had not deleted yet; deleted. */
  leftoverBlocks: number;
}

/** Everything the store needs after open. */
export interface OpenedLog {
  values: SortedKeyMap<Uint8Array>;
  liveBytes: number;
  base: Base;
  baseVersionstamp: string;
  /** Block counts of the base snapshot's pieces, for deleting it later. */
  pieceBlocks: number[];
  /** Rows (header + payload blocks) and payload bytes of records base.firstRecord + i, for the write path's bookkeeping. */
  recordBlocks: number[];
  recordBytes: number[];
  report: DenoKvRecoveryReport;
}

/** Raised when a Deno KV database is not in this adapter's layout. */
export class DenoKvLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DenoKvLayoutError";
  }
}

function isBase(value: unknown): value is Base {
  const base = value as Base;
  const count = (n: unknown, min: number) => Number.isSafeInteger(n) && (n as number) >= min;
  return typeof base === "object" && base !== null && count(base.snapshot, 0) && count(base.pieces, 0) && count(base.firstRecord, 1) && (base.snapshot > 0 || base.pieces === 0);
}

/** Check the layout marker (writing it into an empty database) and read the base pointer. */
async function openLayout(kv: Kv, path: string): Promise<{ base: Base; versionstamp: string; created: boolean }> {
  const format = await kv.get(FORMAT_KEY);
  if (format.versionstamp === null) {
    for await (const _ of kv.list({ prefix: [] }, { limit: 1 })) {
      throw new DenoKvLayoutError(
        `${path}: this Deno KV database has no Scribe log-layout marker ${JSON.stringify(FORMAT_KEY)}; it was written by the ` +
          "earlier per-key layout of the deno-kv adapter (or by another program), which this version cannot read. " +
          "Move the file away and start with an empty data directory (or export the data with the earlier version first).",
      );
    }
    const base: Base = { snapshot: 0, pieces: 0, firstRecord: 1 };
    const versionstamp = await commitAtomic(kv, [setObject(FORMAT_KEY, FORMAT), setObject(BASE_KEY, base)], [{ key: FORMAT_KEY, versionstamp: null }], path);
    return { base, versionstamp, created: true };
  }
  const marker = format.value as { layout?: unknown; version?: unknown } | null;
  if (marker?.layout !== FORMAT.layout || marker?.version !== FORMAT.version) {
    throw new DenoKvLayoutError(`${path}: layout marker is ${JSON.stringify(marker)}; this version reads only ${JSON.stringify(FORMAT)}`);
  }
  const base = await kv.get(BASE_KEY);
  if (base.versionstamp === null || !isBase(base.value)) throw new StorageCorruptionError(`${path}: base pointer ${JSON.stringify(BASE_KEY)} is missing or malformed`);
  return { base: base.value, versionstamp: base.versionstamp, created: false };
}

/** Where a block sits: which blob (record or piece number) and which block of it. */
interface BlockPlace {
  blob: number;
  block: number;
}

const isIndex = (part: unknown, min: number): part is number => typeof part === "number" && Number.isSafeInteger(part) && part >= min;

/** A blob being assembled from its blocks as the listing delivers them in key order. */
interface OpenBlob {
  blob: number;
  header: BlobHeader;
  payload: Uint8Array;
  filled: number;
  nextBlock: number;
}

interface WalkOptions {
  kind: number;
  where: (blob: number) => string;
  place: (key: KvKey) => BlockPlace;
  onBlob: (blob: number, header: BlobHeader, payload: Uint8Array, blocks: number) => void;
}

/**
 * Walk a listing of blob blocks, handing each complete, checked blob to
 * `onBlob`. Returns the keys of a trailing blob whose header is missing
 * (written only up to its parts); such a blob anywhere but last is corruption.
 */
async function walkBlobs(listing: AsyncIterable<KvEntryMaybe>, options: WalkOptions): Promise<KvKey[]> {
  let open: OpenBlob | undefined;
  let headerless: { blob: number; keys: KvKey[] } | undefined;
  const finish = () => {
    if (open === undefined) return;
    const blocks = open.header.blockCrcs.length;
    if (open.nextBlock !== blocks + 1) throw new StorageCorruptionError(`${options.where(open.blob)}: block ${open.nextBlock} of ${blocks} is missing`);
    options.onBlob(open.blob, open.header, open.payload, blocks + 1);
    open = undefined;
  };
  for await (const entry of listing) {
    const { blob, block } = options.place(entry.key);
    if (headerless !== undefined) {
      if (blob !== headerless.blob) throw new StorageCorruptionError(`${options.where(headerless.blob)}: has blocks but no header, yet ${options.where(blob)} follows it`);
      headerless.keys.push(entry.key);
      continue;
    }
    if (open !== undefined && blob === open.blob) {
      if (block !== open.nextBlock || block > open.header.blockCrcs.length) throw new StorageCorruptionError(`${options.where(blob)}: unexpected block ${block}`);
      open.filled = acceptBlock(open.header, block, entry.value, open.payload, open.filled, options.where(blob));
      open.nextBlock++;
      continue;
    }
    finish();
    if (block !== 0) {
      headerless = { blob, keys: [entry.key] };
      continue;
    }
    const header = decodeBlobHeader(entry.value, options.kind, blob, options.where(blob));
    if (header.blockCrcs.length > BLOCKS_PER_BLOB_MAX || header.payloadBytes > BATCH_BYTES_MAX) {
      throw new StorageCorruptionError(`${options.where(blob)}: header claims ${header.payloadBytes} bytes, over the ${BATCH_BYTES_MAX}-byte limit`);
    }
    open = { blob, header, payload: new Uint8Array(header.payloadBytes), filled: 0, nextBlock: 1 };
  }
  finish();
  return headerless?.keys ?? [];
}

function logPlace(path: string): (key: KvKey) => BlockPlace {
  return (key) => {
    if (key.length !== 3 || !isIndex(key[1], 1) || !isIndex(key[2], 0)) throw new StorageCorruptionError(`${path}: malformed log key ${String(key)}`);
    return { blob: key[1], block: key[2] };
  };
}

function snapshotPlace(path: string, snapshot: number): (key: KvKey) => BlockPlace {
  return (key) => {
    if (key.length !== 4 || key[1] !== snapshot || !isIndex(key[2], 0) || !isIndex(key[3], 0)) throw new StorageCorruptionError(`${path}: malformed snapshot key ${String(key)}`);
    return { blob: key[2], block: key[3] };
  };
}

/** Load the base snapshot's pieces (keys strictly ascending across all of them) into `values`. */
async function loadSnapshot(kv: Kv, path: string, base: Base, values: SortedKeyMap<Uint8Array>): Promise<{ liveBytes: number; pieceBlocks: number[] }> {
  const keys: string[] = [];
  const entries: Uint8Array[] = [];
  const pieceBlocks: number[] = [];
  let liveBytes = 0;
  if (base.snapshot === 0) return { liveBytes, pieceBlocks };
  const where = (piece: number) => `${path}: snapshot ${base.snapshot} piece ${piece}`;
  const trailing = await walkBlobs(kv.list({ prefix: [SNAPSHOT, base.snapshot] }, { batchSize: LIST_BATCH_BLOCKS }), {
    kind: BLOB_SNAPSHOT_PIECE,
    where,
    place: snapshotPlace(path, base.snapshot),
    onBlob: (piece, header, payload, blocks) => {
      if (piece !== pieceBlocks.length) throw new StorageCorruptionError(`${where(piece)}: expected piece ${pieceBlocks.length}`);
      pieceBlocks.push(blocks);
      decodePayload(payload, header.opCount, where(piece), (key, value) => {
        const name = toKeyString(key);
        if (value === undefined) throw new StorageCorruptionError(`${where(piece)}: holds a delete`);
        if (keys.length > 0 && !(keys[keys.length - 1]! < name)) throw new StorageCorruptionError(`${where(piece)}: keys are not strictly ascending`);
        keys.push(name);
        entries.push(value);
        liveBytes += key.length + value.length;
      });
    },
  });
  if (trailing.length > 0 || pieceBlocks.length !== base.pieces) {
    throw new StorageCorruptionError(`${path}: snapshot ${base.snapshot} has ${pieceBlocks.length} whole pieces, the base pointer says ${base.pieces}`);
  }
  values.loadSorted(keys, entries);
  return { liveBytes, pieceBlocks };
}

/** Keys listed by `selector`s, for deleting what a crash left behind. */
async function listKeys(kv: Kv, selectors: Parameters<Kv["list"]>[0][]): Promise<KvKey[]> {
  const keys: KvKey[] = [];
  for (const selector of selectors) for await (const entry of kv.list(selector, { batchSize: LIST_BATCH_BLOCKS })) keys.push(entry.key);
  return keys;
}

/**
 * Open the log in `kv`: see the module comment. Cost: one read of the base
 * snapshot (its payload, about the live data size) and of every log record
 * after it (bounded by the compaction trigger), decoded into memory.
 */
export async function openLog(kv: Kv, path: string): Promise<OpenedLog> {
  const { base, versionstamp, created } = await openLayout(kv, path);
  const values = new SortedKeyMap<Uint8Array>();
  let { liveBytes, pieceBlocks } = await loadSnapshot(kv, path, base, values);
  const recordBlocks: number[] = [];
  const recordBytes: number[] = [];
  const where = (record: number) => `${path}: log record ${record}`;
  const discarded = await walkBlobs(kv.list({ prefix: [LOG], start: [LOG, base.firstRecord] }, { batchSize: LIST_BATCH_BLOCKS }), {
    kind: BLOB_LOG_RECORD,
    where,
    place: logPlace(path),
    onBlob: (record, header, payload, blocks) => {
      const expected = base.firstRecord + recordBlocks.length;
      if (record !== expected) throw new StorageCorruptionError(`${where(record)}: expected record ${expected} next (a record is missing)`);
      recordBlocks.push(blocks);
      recordBytes.push(header.payloadBytes);
      decodePayload(payload, header.opCount, where(record), (key, value) => {
        const name = toKeyString(key);
        const previous = values.get(name);
        if (previous !== undefined) liveBytes -= key.length + previous.length;
        if (value === undefined) values.delete(name);
        else {
          values.set(name, value);
          liveBytes += key.length + value.length;
        }
      });
    },
  });
  const nextRecord = base.firstRecord + recordBlocks.length;
  if (discarded.length > 0 && discarded[0]![1] !== nextRecord) throw new StorageCorruptionError(`${where(discarded[0]![1] as number)}: has blocks but no header and is not the next record`);
  const leftovers = await listKeys(kv, [
    { prefix: [LOG], end: [LOG, base.firstRecord] },
    { prefix: [SNAPSHOT], end: [SNAPSHOT, base.snapshot] },
    { prefix: [SNAPSHOT], start: [SNAPSHOT, base.snapshot + 1] },
  ]);
  const deletes: Mutation[] = [...discarded, ...leftovers].map(deleteOf);
  await writeUnordered(kv, deletes, path);
  return {
    values,
    liveBytes,
    base,
    baseVersionstamp: versionstamp,
    pieceBlocks,
    recordBlocks,
    recordBytes,
    report: { created, snapshotPieces: pieceBlocks.length, replayedRecords: recordBlocks.length, discardedBlocks: discarded.length, leftoverBlocks: leftovers.length },
  };
}
