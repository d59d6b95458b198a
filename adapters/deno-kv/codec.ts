/**
 * Byte-level helpers for the Deno KV adapter: the size arithmetic that keeps
 * every write inside Deno KV's limits, and the binary encoding of a batch
 * that is parked under the pending prefix while a large commit is in flight.
 * No Deno API is used here.
 *
 *   pending batch = opCount u32 | op*          (integers little-endian)
 *   op            = 1 u8 | keyBytes u32 | key | valueBytes u32 | value   (put)
 *                 | 2 u8 | keyBytes u32 | key                            (delete)
 */
import { StorageCorruptionError } from "../../src/storage/index.ts";

/** Deno KV: most mutations in one atomic commit. */
export const ATOMIC_MUTATIONS_MAX = 1000;
/** Deno KV allows 819200 bytes of keys + values per atomic commit; keep a margin for encoding overhead. */
export const ATOMIC_BYTES_MAX = 780 * 1024;
/** Deno KV allows 65536 bytes per value; values (and chunks, and pending parts) stay below this. */
export const VALUE_CHUNK_BYTES = 60 * 1024;
/** Deno KV allows 2048 bytes per key; our byte key is one part of at most this many encoded bytes, leaving room for the other parts. */
export const KEY_ENCODED_BYTES_MAX = 1900;
/** Largest value accepted; it becomes ceil(size / VALUE_CHUNK_BYTES) chunks. */
export const VALUE_BYTES_MAX = 64 * 1024 * 1024;
/** Fixed per-mutation allowance (other key parts, tuple framing, value serialization header). */
export const MUTATION_OVERHEAD_BYTES = 96;

/** Encoded size of a byte key as a Deno KV key part: type tag, bytes with 0x00 escaped as 0x00 0xff, terminator. */
export function keyPartEncodedBytes(key: Uint8Array): number {
  let zeros = 0;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) zeros++;
  return 2 + key.length + zeros;
}

/** Number of chunks a value of `length` bytes is split into (values up to one chunk are stored whole). */
export function chunkCount(length: number): number {
  return Math.max(1, Math.ceil(length / VALUE_CHUNK_BYTES));
}

/** One op with its final value; `value` undefined means delete. */
export interface FinalOp {
  key: Uint8Array;
  value: Uint8Array | undefined;
}

/** Serialize ops for the pending prefix. */
export function encodeOps(ops: FinalOp[]): Uint8Array {
  let size = 4;
  for (const op of ops) size += 5 + op.key.length + (op.value === undefined ? 0 : 4 + op.value.length);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, ops.length, true);
  let at = 4;
  for (const op of ops) {
    out[at] = op.value === undefined ? 2 : 1;
    view.setUint32(at + 1, op.key.length, true);
    out.set(op.key, at + 5);
    at += 5 + op.key.length;
    if (op.value === undefined) continue;
    view.setUint32(at, op.value.length, true);
    out.set(op.value, at + 4);
    at += 4 + op.value.length;
  }
  return out;
}

/** Parse ops parked under the pending prefix; any shape defect is corruption of `where`. */
export function decodeOps(data: Uint8Array, where: string): FinalOp[] {
  const fail = (offset: number, reason: string): never => {
    throw new StorageCorruptionError(`${where} at offset ${offset}: ${reason}`);
  };
  if (data.length < 4) fail(0, "pending batch is too short");
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const count = view.getUint32(0, true);
  const ops: FinalOp[] = [];
  let at = 4;
  for (let n = 0; n < count; n++) {
    if (at + 5 > data.length) fail(at, `op ${n} header runs past the end`);
    const type = data[at];
    const keyBytes = view.getUint32(at + 1, true);
    if (type !== 1 && type !== 2) fail(at, `op ${n} has unknown type ${type}`);
    if (at + 5 + keyBytes > data.length) fail(at, `op ${n} key runs past the end`);
    const key = data.slice(at + 5, at + 5 + keyBytes);
    at += 5 + keyBytes;
    if (type === 2) {
      ops.push({ key, value: undefined });
      continue;
    }
    if (at + 4 > data.length) fail(at, `op ${n} value length runs past the end`);
    const valueBytes = view.getUint32(at, true);
    if (valueBytes > VALUE_BYTES_MAX || at + 4 + valueBytes > data.length) fail(at, `op ${n} value runs past the end`);
    ops.push({ key, value: data.slice(at + 4, at + 4 + valueBytes) });
    at += 4 + valueBytes;
  }
  if (at !== data.length) fail(at, `${data.length - at} trailing bytes`);
  return ops;
}

/** Split `data` into pieces of at most VALUE_CHUNK_BYTES (one empty piece for empty data). */
export function splitChunks(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < data.length || out.length === 0; at += VALUE_CHUNK_BYTES) {
    out.push(data.subarray(at, Math.min(data.length, at + VALUE_CHUNK_BYTES)));
  }
  return out;
}

/** Concatenate chunks read back, checking the count and total length recorded when they were written. */
export function joinChunks(chunks: Uint8Array[], expectedCount: number, expectedBytes: number, where: string): Uint8Array {
  if (chunks.length !== expectedCount) throw new StorageCorruptionError(`${where}: expected ${expectedCount} chunks, found ${chunks.length}`);
  const out = new Uint8Array(expectedBytes);
  let at = 0;
  for (const chunk of chunks) {
    if (at + chunk.length > expectedBytes) throw new StorageCorruptionError(`${where}: chunks exceed the recorded ${expectedBytes} bytes`);
    out.set(chunk, at);
    at += chunk.length;
  }
  if (at !== expectedBytes) throw new StorageCorruptionError(`${where}: chunks hold ${at} bytes, expected ${expectedBytes}`);
  return out;
}
