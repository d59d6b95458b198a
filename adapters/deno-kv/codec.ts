/**
 * Byte-level helpers for the Deno KV log adapter: its limits, the encoding of
 * a run of ops (a log record's or a snapshot piece's payload), and the blob
 * format that splits a payload into Deno KV values. No Deno API is used here,
 * and nothing here may accept bytes it cannot fully check: every shape defect
 * is a StorageCorruptionError naming where it was found.
 *
 *   payload = op*                                   (integers little-endian)
 *   op      = 1 u8 | keyBytes u32 | key | valueBytes u32 | value   (put)
 *           | 2 u8 | keyBytes u32 | key                            (delete)
 *
 *   blob    = header block (block 0) + payload blocks 1..n, each one Deno KV value
 *   header  = magic u32 | kind u32 | id f64 | opCount u32 | blockCount u32
 *             | payloadBytes f64 | blockCrc u32 * blockCount | headerCrc u32
 *
 * blockCrc is the CRC-32 (IEEE, node:zlib's native one: this adapter runs on
 * Deno only, and a JS CRC costs ~10x more on the commit path) of payload block
 * i + 1; headerCrc covers every byte of the header before it. They detect bit
 * rot and torn rows, not tampering (the Merkle layer does that).
 */
import { crc32 } from "node:zlib";
import { StorageCorruptionError } from "../../src/storage/index.ts";

/** Deno KV: most mutations in one atomic commit. */
export const ATOMIC_MUTATIONS_MAX = 1000;
/** Deno KV allows 819200 bytes of keys + values per atomic commit; keep a margin for key encoding. */
export const ATOMIC_BYTES_MAX = 780 * 1024;
/** Bytes per payload block: Deno KV allows 65536 bytes per value; 12 blocks and a header fit one atomic commit. */
export const BLOCK_BYTES = 63 * 1024;
/** Allowance per mutation for its Deno KV key (a few short string and number parts). */
export const MUTATION_KEY_BYTES = 64;
/** Longest key accepted (our keys are payload bytes, not Deno KV keys, so Deno KV's 2 KiB key limit does not apply). */
export const KEY_BYTES_MAX = 64 * 1024;
/** Largest value accepted. */
export const VALUE_BYTES_MAX = 64 * 1024 * 1024;
/** Largest encoded payload of one commit; a bigger batch is refused before anything is written. */
export const BATCH_BYTES_MAX = 128 * 1024 * 1024;
/** Most payload blocks in one blob (a header lists a CRC per block and must itself fit one value). */
export const BLOCKS_PER_BLOB_MAX = Math.ceil(BATCH_BYTES_MAX / BLOCK_BYTES);

const MAGIC = 0x5344_4b4c; // "SDKL"
const HEADER_FIXED_BYTES = 32;
const OP_PUT = 1;
const OP_DELETE = 2;

/** What a blob holds. */
export const BLOB_LOG_RECORD = 1;
export const BLOB_SNAPSHOT_PIECE = 2;

/** One op; `value` undefined means delete. */
export interface Op {
  key: Uint8Array;
  value: Uint8Array | undefined;
}

/** Encoded size of one op in a payload. */
export function opBytes(key: Uint8Array, value: Uint8Array | undefined): number {
  return 5 + key.length + (value === undefined ? 0 : 4 + value.length);
}

/** Appends ops to one preallocated payload buffer. */
export class PayloadWriter {
  readonly bytes: Uint8Array;
  #view: DataView;
  #at = 0;

  constructor(sizeBytes: number) {
    this.bytes = new Uint8Array(sizeBytes);
    this.#view = new DataView(this.bytes.buffer);
  }

  write(key: Uint8Array, value: Uint8Array | undefined): void {
    const at = this.#at;
    this.bytes[at] = value === undefined ? OP_DELETE : OP_PUT;
    this.#view.setUint32(at + 1, key.length, true);
    this.bytes.set(key, at + 5);
    this.#at = at + 5 + key.length;
    if (value === undefined) return;
    this.#view.setUint32(this.#at, value.length, true);
    this.bytes.set(value, this.#at + 4);
    this.#at += 4 + value.length;
  }

  /** The payload; every byte of the buffer must have been written. */
  finish(): Uint8Array {
    if (this.#at !== this.bytes.length) throw new Error(`PayloadWriter: wrote ${this.#at} of ${this.bytes.length} bytes`);
    return this.bytes;
  }
}

/**
 * Parse a payload of exactly `opCount` ops, calling `onOp` for each in order.
 * Keys and values are copied out, so `data` can be dropped afterwards.
 */
export function decodePayload(data: Uint8Array, opCount: number, where: string, onOp: (key: Uint8Array, value: Uint8Array | undefined) => void): void {
  const fail = (offset: number, reason: string): never => {
    throw new StorageCorruptionError(`${where} at payload offset ${offset}: ${reason}`);
  };
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  let at = 0;
  for (let n = 0; n < opCount; n++) {
    if (at + 5 > data.length) fail(at, `op ${n} header runs past the end`);
    const type = data[at];
    const keyBytes = view.getUint32(at + 1, true);
    if (type !== OP_PUT && type !== OP_DELETE) fail(at, `op ${n} has unknown type ${type}`);
    if (keyBytes > KEY_BYTES_MAX || at + 5 + keyBytes > data.length) fail(at, `op ${n} key runs past the end`);
    const key = data.slice(at + 5, at + 5 + keyBytes);
    at += 5 + keyBytes;
    if (type === OP_DELETE) {
      onOp(key, undefined);
      continue;
    }
    if (at + 4 > data.length) fail(at, `op ${n} value length runs past the end`);
    const valueBytes = view.getUint32(at, true);
    if (valueBytes > VALUE_BYTES_MAX || at + 4 + valueBytes > data.length) fail(at, `op ${n} value runs past the end`);
    onOp(key, data.slice(at + 4, at + 4 + valueBytes));
    at += 4 + valueBytes;
  }
  if (at !== data.length) fail(at, `${data.length - at} trailing bytes`);
}

/** A blob's header fields. */
export interface BlobHeader {
  kind: number;
  /** Log record number, or snapshot piece number. */
  id: number;
  opCount: number;
  payloadBytes: number;
  /** CRC32C of each payload block, in order. */
  blockCrcs: number[];
}

/** A payload split into Deno KV values: `blocks[0]` is the header, `blocks[1..]` the payload. */
export function encodeBlob(kind: number, id: number, opCount: number, payload: Uint8Array): Uint8Array[] {
  const blocks: Uint8Array[] = [new Uint8Array(0)];
  for (let at = 0; at < payload.length; at += BLOCK_BYTES) blocks.push(payload.subarray(at, Math.min(payload.length, at + BLOCK_BYTES)));
  if (blocks.length - 1 > BLOCKS_PER_BLOB_MAX) throw new RangeError(`payload of ${payload.length} bytes needs more than ${BLOCKS_PER_BLOB_MAX} blocks`);
  const header = new Uint8Array(HEADER_FIXED_BYTES + 4 * (blocks.length - 1) + 4);
  const view = new DataView(header.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, kind, true);
  view.setFloat64(8, id, true);
  view.setUint32(16, opCount, true);
  view.setUint32(20, blocks.length - 1, true);
  view.setFloat64(24, payload.length, true);
  for (let i = 1; i < blocks.length; i++) view.setUint32(HEADER_FIXED_BYTES + 4 * (i - 1), crc32(blocks[i]!), true);
  view.setUint32(header.length - 4, crc32(header.subarray(0, header.length - 4)), true);
  blocks[0] = header;
  return blocks;
}

/** Parse and check a header block read back; `kind` and `id` must be what its Deno KV key says. */
export function decodeBlobHeader(block: unknown, kind: number, id: number, where: string): BlobHeader {
  if (!(block instanceof Uint8Array)) throw new StorageCorruptionError(`${where}: header is not bytes`);
  if (block.length < HEADER_FIXED_BYTES + 4) throw new StorageCorruptionError(`${where}: header of ${block.length} bytes is too short`);
  const view = new DataView(block.buffer, block.byteOffset, block.length);
  if (view.getUint32(block.length - 4, true) !== crc32(block.subarray(0, block.length - 4))) throw new StorageCorruptionError(`${where}: header checksum mismatch`);
  if (view.getUint32(0, true) !== MAGIC) throw new StorageCorruptionError(`${where}: header has a bad magic number`);
  const header: BlobHeader = {
    kind: view.getUint32(4, true),
    id: view.getFloat64(8, true),
    opCount: view.getUint32(16, true),
    payloadBytes: view.getFloat64(24, true),
    blockCrcs: [],
  };
  const blockCount = view.getUint32(20, true);
  if (header.kind !== kind || header.id !== id) throw new StorageCorruptionError(`${where}: header names kind ${header.kind} id ${header.id}, its key says kind ${kind} id ${id}`);
  if (block.length !== HEADER_FIXED_BYTES + 4 * blockCount + 4) throw new StorageCorruptionError(`${where}: header length does not match its ${blockCount} blocks`);
  if (!Number.isSafeInteger(header.payloadBytes) || header.payloadBytes < 0 || Math.ceil(header.payloadBytes / BLOCK_BYTES) !== blockCount) {
    throw new StorageCorruptionError(`${where}: header says ${header.payloadBytes} payload bytes in ${blockCount} blocks`);
  }
  for (let i = 0; i < blockCount; i++) header.blockCrcs.push(view.getUint32(HEADER_FIXED_BYTES + 4 * i, true));
  return header;
}

/** Check payload block `index` (1-based) against its header, then append it to `out` at `at`; returns the new offset. */
export function acceptBlock(header: BlobHeader, index: number, block: unknown, out: Uint8Array, at: number, where: string): number {
  if (!(block instanceof Uint8Array)) throw new StorageCorruptionError(`${where}: block ${index} is not bytes`);
  const expectedBytes = Math.min(BLOCK_BYTES, header.payloadBytes - (index - 1) * BLOCK_BYTES);
  if (block.length !== expectedBytes) throw new StorageCorruptionError(`${where}: block ${index} holds ${block.length} bytes, expected ${expectedBytes}`);
  if (crc32(block) !== header.blockCrcs[index - 1]) throw new StorageCorruptionError(`${where}: block ${index} checksum mismatch`);
  out.set(block, at);
  return at + block.length;
}
