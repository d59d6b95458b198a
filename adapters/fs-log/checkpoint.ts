/**
 * Index checkpoints for the fs-log adapter: a snapshot of the whole in-memory
 * index plus the log position it covers, so that open replays only the frames
 * written after it. Encoding and parsing only; the caller writes the bytes
 * atomically (temp file, fsync, rename, fsync directory).
 *
 *   checkpoint = magic u32 | version u32 | segment u32 | offset u32 | entryCount u32
 *                | entry* | crc u32                      (crc = CRC32C of all before it)
 *   entry      = keyBytes u32 | key | 1 u8 | valueBytes u32 | value            (inline)
 *              | keyBytes u32 | key | 2 u8 | segment u32 | offset u32 | length u32 | crc u32
 */
import { StorageCorruptionError } from "../../src/storage/index.ts";
import { crc32c } from "./crc32c.ts";
import { type IndexEntry, toKeyString, type ValueRef } from "./key-index.ts";
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from "./record.ts";

const CHECKPOINT_MAGIC = 0x5342_434b;
const CHECKPOINT_VERSION = 1;
const HEADER_BYTES = 20;
const ENTRY_INLINE = 1;
const ENTRY_REF = 2;

/** A log position: the checkpoint covers every frame that ends at or before it. */
export interface LogPosition {
  segment: number;
  offset: number;
}

/** A parsed checkpoint: keys in strictly ascending order with their entries. */
export interface Checkpoint {
  position: LogPosition;
  keys: string[];
  entries: IndexEntry[];
}

/** Serialize a checkpoint. `keys` must be in ascending order (as `KeyIndex.sortedEntries` gives). */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  let size = HEADER_BYTES + 4;
  for (let i = 0; i < checkpoint.keys.length; i++) {
    const entry = checkpoint.entries[i]!;
    size += 5 + checkpoint.keys[i]!.length + (entry instanceof Uint8Array ? 4 + entry.length : 16);
  }
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, CHECKPOINT_MAGIC, true);
  view.setUint32(4, CHECKPOINT_VERSION, true);
  view.setUint32(8, checkpoint.position.segment, true);
  view.setUint32(12, checkpoint.position.offset, true);
  view.setUint32(16, checkpoint.keys.length, true);
  let at = HEADER_BYTES;
  for (let i = 0; i < checkpoint.keys.length; i++) {
    const key = checkpoint.keys[i]!;
    view.setUint32(at, key.length, true);
    for (let c = 0; c < key.length; c++) out[at + 4 + c] = key.charCodeAt(c);
    at += 4 + key.length;
    at = encodeEntry(view, out, at, checkpoint.entries[i]!);
  }
  view.setUint32(at, crc32c(out.subarray(0, at)), true);
  return out;
}

function encodeEntry(view: DataView, out: Uint8Array, at: number, entry: IndexEntry): number {
  if (entry instanceof Uint8Array) {
    out[at] = ENTRY_INLINE;
    view.setUint32(at + 1, entry.length, true);
    out.set(entry, at + 5);
    return at + 5 + entry.length;
  }
  out[at] = ENTRY_REF;
  view.setUint32(at + 1, entry.segment, true);
  view.setUint32(at + 5, entry.offset, true);
  view.setUint32(at + 9, entry.length, true);
  view.setUint32(at + 13, entry.crc, true);
  return at + 17;
}

/** Parse and fully validate a checkpoint read from `file`; any defect is a StorageCorruptionError. */
export function decodeCheckpoint(data: Uint8Array, file: string): Checkpoint {
  const fail = (offset: number, reason: string): never => {
    throw new StorageCorruptionError(`${file} at offset ${offset}: ${reason} (delete it to force a full log replay)`);
  };
  if (data.length < HEADER_BYTES + 4) fail(0, `checkpoint of ${data.length} bytes is too short`);
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const crcAt = data.length - 4;
  if (crc32c(data.subarray(0, crcAt)) !== view.getUint32(crcAt, true)) fail(crcAt, "checkpoint checksum mismatch");
  if (view.getUint32(0, true) !== CHECKPOINT_MAGIC) fail(0, "bad checkpoint magic");
  if (view.getUint32(4, true) !== CHECKPOINT_VERSION) fail(4, "unknown checkpoint version");
  const position = { segment: view.getUint32(8, true), offset: view.getUint32(12, true) };
  const count = view.getUint32(16, true);
  const keys: string[] = [];
  const entries: IndexEntry[] = [];
  let at = HEADER_BYTES;
  for (let n = 0; n < count; n++) {
    if (at + 4 > crcAt) fail(at, `entry ${n} runs past the end`);
    const keyBytes = view.getUint32(at, true);
    if (keyBytes > KEY_BYTES_MAX || at + 4 + keyBytes + 1 > crcAt) fail(at, `entry ${n} key runs past the end`);
    const key = toKeyString(data.subarray(at + 4, at + 4 + keyBytes));
    if (keys.length > 0 && !(keys[keys.length - 1]! < key)) fail(at, `entry ${n} key is out of order`);
    at += 4 + keyBytes;
    const decoded = decodeEntry(view, data, at, crcAt);
    if (typeof decoded === "string") fail(at, `entry ${n}: ${decoded}`);
    const [entry, next] = decoded as [IndexEntry, number];
    keys.push(key);
    entries.push(entry);
    at = next;
  }
  if (at !== crcAt) fail(at, `${crcAt - at} trailing bytes after the last entry`);
  return { position, keys, entries };
}

function decodeEntry(view: DataView, data: Uint8Array, at: number, end: number): [IndexEntry, number] | string {
  const kind = data[at];
  if (kind === ENTRY_INLINE) {
    if (at + 5 > end) return "inline length runs past the end";
    const length = view.getUint32(at + 1, true);
    if (length > VALUE_BYTES_MAX || at + 5 + length > end) return "inline value runs past the end";
    return [data.slice(at + 5, at + 5 + length), at + 5 + length];
  }
  if (kind !== ENTRY_REF) return `unknown entry kind ${kind}`;
  if (at + 17 > end) return "value reference runs past the end";
  const ref: ValueRef = {
    segment: view.getUint32(at + 1, true),
    offset: view.getUint32(at + 5, true),
    length: view.getUint32(at + 9, true),
    crc: view.getUint32(at + 13, true),
  };
  if (ref.length > VALUE_BYTES_MAX) return `value reference length ${ref.length} is too large`;
  return [ref, at + 17];
}
