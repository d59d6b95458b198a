/**
 * Record framing for the fs-log adapter. A segment file is a sequence of
 * frames; one frame holds the ops of every batch written by one group commit
 * (one write + one fdatasync), so a frame is the unit of atomicity: after a
 * crash it is either wholly valid or it is the torn tail.
 *
 *   frame   = magic u32 | payloadBytes u32 | crc u32 | payload
 *   crc     = CRC32C(magic | payloadBytes | payload)        (all integers LE)
 *   payload = version u8 | opCount u32 | op*
 *   op      = 1 u8 | keyBytes u32 | key | valueBytes u32 | value     (put)
 *           | 2 u8 | keyBytes u32 | key                              (delete)
 *
 * This module never touches the file system; it only builds and checks bytes.
 */
import type { BatchOp } from "../../src/storage/index.ts";
import { crc32c } from "./crc32c.ts";

/** Marks the start of a frame; lets recovery look past a bad frame for later valid ones. */
export const FRAME_MAGIC = 0x5342_4c47;
export const FRAME_HEADER_BYTES = 12;
export const PAYLOAD_VERSION = 1;
const PAYLOAD_HEADER_BYTES = 5;

export const OP_PUT = 1;
export const OP_DELETE = 2;

/** Longest key accepted; keys are index entries held in memory. */
export const KEY_BYTES_MAX = 64 * 1024;
/** Largest value accepted. */
export const VALUE_BYTES_MAX = 64 * 1024 * 1024;
/** Largest encoded batch; a frame may carry several batches up to FRAME_PAYLOAD_BYTES_MAX. */
export const BATCH_BYTES_MAX = 128 * 1024 * 1024;
/** Largest frame payload; bounds what recovery will ever allocate for one frame. */
export const FRAME_PAYLOAD_BYTES_MAX = 256 * 1024 * 1024;

/**
 * Encoded size (`op*`) of a batch, after checking every op: rejects malformed
 * input with a TypeError/RangeError, so a bad commit fails before it is queued.
 */
export function batchEncodedBytes(batch: BatchOp[]): number {
  if (!Array.isArray(batch)) throw new TypeError("commit batch must be an array");
  let size = 0;
  for (const op of batch) size += opEncodedBytes(op);
  if (size > BATCH_BYTES_MAX) throw new RangeError(`batch of ${size} bytes exceeds ${BATCH_BYTES_MAX}`);
  return size;
}

function opEncodedBytes(op: BatchOp): number {
  if (op === null || typeof op !== "object") throw new TypeError("batch op must be an object");
  if (!(op.key instanceof Uint8Array)) throw new TypeError("batch op key must be a Uint8Array");
  if (op.key.length > KEY_BYTES_MAX) throw new RangeError(`key of ${op.key.length} bytes exceeds ${KEY_BYTES_MAX}`);
  if (op.type === "delete") return 5 + op.key.length;
  if (op.type !== "put") throw new TypeError(`unknown batch op type ${String((op as { type: unknown }).type)}`);
  if (!(op.value instanceof Uint8Array)) throw new TypeError("put value must be a Uint8Array");
  if (op.value.length > VALUE_BYTES_MAX) throw new RangeError(`value of ${op.value.length} bytes exceeds ${VALUE_BYTES_MAX}`);
  return 9 + op.key.length + op.value.length;
}

/** One checked batch: its ops (the store's once committed, see the storage port) and their encoded size. */
export interface CheckedBatch {
  ops: BatchOp[];
  encodedBytes: number;
}

/** A frame and, op by op across its batches, where each put's value starts in it (-1 for a delete). */
export interface EncodedFrame {
  frame: Uint8Array;
  valueOffsets: number[];
}

function writeUint32LE(out: Uint8Array, at: number, n: number): void {
  out[at] = n & 0xff;
  out[at + 1] = (n >>> 8) & 0xff;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = n >>> 24;
}

/**
 * Build one frame carrying the ops of `batches` in order, copying each key
 * and value once, straight from the ops (checked by batchEncodedBytes).
 */
export function encodeFrame(batches: readonly CheckedBatch[]): EncodedFrame {
  let payloadBytes = PAYLOAD_HEADER_BYTES;
  let opCount = 0;
  for (const batch of batches) {
    payloadBytes += batch.encodedBytes;
    opCount += batch.ops.length;
  }
  if (payloadBytes > FRAME_PAYLOAD_BYTES_MAX) throw new RangeError(`frame payload ${payloadBytes} exceeds max`);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payloadBytes);
  const valueOffsets: number[] = [];
  writeUint32LE(frame, 0, FRAME_MAGIC);
  writeUint32LE(frame, 4, payloadBytes);
  frame[FRAME_HEADER_BYTES] = PAYLOAD_VERSION;
  writeUint32LE(frame, FRAME_HEADER_BYTES + 1, opCount);
  let at = FRAME_HEADER_BYTES + PAYLOAD_HEADER_BYTES;
  for (const { ops } of batches) {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const key = op.key;
      frame[at] = op.type === "put" ? OP_PUT : OP_DELETE;
      writeUint32LE(frame, at + 1, key.length);
      frame.set(key, at + 5);
      at += 5 + key.length;
      if (op.type !== "put") {
        valueOffsets.push(-1);
        continue;
      }
      const value = op.value;
      writeUint32LE(frame, at, value.length);
      frame.set(value, at + 4);
      valueOffsets.push(at + 4);
      at += 4 + value.length;
    }
  }
  if (at !== frame.length) throw new Error(`assertion: frame encoded to ${at} bytes, sized ${frame.length}`);
  writeUint32LE(frame, 8, frameChecksum(frame, payloadBytes));
  return { frame, valueOffsets };
}

function frameChecksum(frame: Uint8Array, payloadBytes: number): number {
  const header = crc32c(frame.subarray(0, 8));
  return crc32c(frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + payloadBytes), header);
}

/** Result of looking at the bytes at one offset of a segment. */
export type FrameCheck =
  | { kind: "valid"; frameBytes: number }
  | { kind: "partial" }
  | { kind: "bad"; reason: string };

/** Check whether a complete, checksum-valid frame starts at `offset` of `data`. */
export function checkFrame(data: Uint8Array, offset: number): FrameCheck {
  if (data.length - offset < FRAME_HEADER_BYTES) return { kind: "partial" };
  const view = new DataView(data.buffer, data.byteOffset + offset, FRAME_HEADER_BYTES);
  if (view.getUint32(0, true) !== FRAME_MAGIC) return { kind: "bad", reason: "bad frame magic" };
  const payloadBytes = view.getUint32(4, true);
  if (payloadBytes < PAYLOAD_HEADER_BYTES || payloadBytes > FRAME_PAYLOAD_BYTES_MAX) {
    return { kind: "bad", reason: `implausible payload length ${payloadBytes}` };
  }
  if (data.length - offset - FRAME_HEADER_BYTES < payloadBytes) return { kind: "partial" };
  const frame = data.subarray(offset, offset + FRAME_HEADER_BYTES + payloadBytes);
  if (frameChecksum(frame, payloadBytes) !== view.getUint32(8, true)) return { kind: "bad", reason: "checksum mismatch" };
  return { kind: "valid", frameBytes: FRAME_HEADER_BYTES + payloadBytes };
}

/** One decoded op; `valueOffset` is relative to the start of the frame. */
export interface DecodedOp {
  type: typeof OP_PUT | typeof OP_DELETE;
  key: Uint8Array;
  value: Uint8Array;
  valueOffset: number;
}

/**
 * Walk the ops of a checksum-valid frame. Shape errors throw `Error` with a
 * reason; the caller adds file and offset. `key` and `value` are views into
 * `frame`, valid only during the callback.
 */
export function forEachOp(frame: Uint8Array, visit: (op: DecodedOp) => void): void {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  if (frame[FRAME_HEADER_BYTES] !== PAYLOAD_VERSION) throw new Error(`unknown payload version ${frame[FRAME_HEADER_BYTES]}`);
  const opCount = view.getUint32(FRAME_HEADER_BYTES + 1, true);
  let at = FRAME_HEADER_BYTES + PAYLOAD_HEADER_BYTES;
  const empty = new Uint8Array(0);
  for (let n = 0; n < opCount; n++) {
    if (at + 5 > frame.length) throw new Error(`op ${n} header runs past the frame`);
    const type = frame[at]!;
    const keyBytes = view.getUint32(at + 1, true);
    if (type !== OP_PUT && type !== OP_DELETE) throw new Error(`op ${n} has unknown type ${type}`);
    if (keyBytes > KEY_BYTES_MAX || at + 5 + keyBytes > frame.length) throw new Error(`op ${n} key runs past the frame`);
    const key = frame.subarray(at + 5, at + 5 + keyBytes);
    at += 5 + keyBytes;
    if (type === OP_DELETE) {
      visit({ type, key, value: empty, valueOffset: -1 });
      continue;
    }
    if (at + 4 > frame.length) throw new Error(`op ${n} value length runs past the frame`);
    const valueBytes = view.getUint32(at, true);
    if (valueBytes > VALUE_BYTES_MAX || at + 4 + valueBytes > frame.length) throw new Error(`op ${n} value runs past the frame`);
    visit({ type, key, value: frame.subarray(at + 4, at + 4 + valueBytes), valueOffset: at + 4 });
    at += 4 + valueBytes;
  }
  if (at !== frame.length) throw new Error(`${frame.length - at} trailing bytes after the last op`);
}
