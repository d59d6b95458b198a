/**
 * Open-time recovery for the fs-log adapter: find the segments, load the
 * index checkpoint, replay the frames after it, and decide what a bad frame
 * means. It must never silently drop a frame that could have been
 * acknowledged: only the last frame of the last segment may be cut, and only
 * when no valid frame follows it (a group commit is one frame written by one
 * write + fdatasync, so an unacknowledged write is always a single tail frame).
 */
import { join } from "node:path";
import { StorageCorruptionError } from "../../src/storage/index.ts";
import { type Checkpoint, decodeCheckpoint, type LogPosition } from "./checkpoint.ts";
import { crc32c } from "./crc32c.ts";
import { fileBytes, listDir, openFile, readWholeFile, removeFile, truncateFd } from "./fs-io.ts";
import { type IndexEntry, KeyIndex, toKeyString } from "./key-index.ts";
import { checkFrame, type CheckedBatch, FRAME_MAGIC, forEachOp, OP_PUT } from "./record.ts";

export const CHECKPOINT_FILE = "index.ckpt";
export const CHECKPOINT_TEMP_FILE = "index.ckpt.tmp";
const SEGMENT_NAME = /^(\d{10})\.seg$/;
/** Segment numbers are u32 in checkpoints and value references. */
export const SEGMENT_NUMBER_MAX = 0xffff_ffff;

/** File name of segment `n`; zero-padded so names sort in log order. */
export function segmentPath(dir: string, segment: number): string {
  return join(dir, `${String(segment).padStart(10, "0")}.seg`);
}

/** What open found and did; exposed on the store for tests and operators. */
export interface RecoveryReport {
  /** Log position the loaded checkpoint covered, or undefined when none was loaded. */
  checkpointPosition?: LogPosition;
  /** Frames and bytes replayed from the segments after the checkpoint. */
  replayedFrames: number;
  replayedBytes: number;
  /** Bytes cut from the end of the last segment as a torn tail (0 when clean). */
  truncatedTailBytes: number;
  segmentCount: number;
}

/** The state open hands to the store. `writeFd` is open read-write on the last segment. */
export interface RecoveredLog {
  index: KeyIndex;
  activeSegment: number;
  writeFd: number;
  writePosition: number;
  sealedBytes: number;
  checkpointFileBytes: number;
  report: RecoveryReport;
}

/** Everything recovery needs from the store. */
export interface RecoveryContext {
  dir: string;
  inlineValueBytesMax: number;
  /** fdatasync `fd` (through the fault-injection hook) after truncating a torn tail. */
  syncFile(fd: number, path: string): Promise<void>;
}

/** The index changes a frame makes, in op order; `undefined` entry = delete. */
export interface FrameUpdates {
  keys: string[];
  entries: Array<IndexEntry | undefined>;
}

/**
 * Decode what a valid frame at `frameOffset` of `segment` does to the index,
 * without touching it, so the commit path can do this CPU work while its
 * fdatasync is in flight and apply it only once the frame is durable.
 */
export function frameUpdates(frame: Uint8Array, segment: number, frameOffset: number, inlineValueBytesMax: number): FrameUpdates {
  const updates: FrameUpdates = { keys: [], entries: [] };
  forEachOp(frame, (op) => {
    updates.keys.push(toKeyString(op.key));
    if (op.type !== OP_PUT) updates.entries.push(undefined);
    else if (op.value.length <= inlineValueBytesMax) updates.entries.push(op.value.slice());
    else updates.entries.push({ segment, offset: frameOffset + op.valueOffset, length: op.value.length, crc: crc32c(op.value) });
  });
  return updates;
}

/**
 * What a frame just encoded from `batches` does to the index: the same
 * updates as {@link frameUpdates} of that frame, taken from the ops instead of
 * parsing the frame back (inline values are copied, so the index never pins
 * a caller's larger buffer).
 */
export function encodedFrameUpdates(
  batches: readonly CheckedBatch[], valueOffsets: readonly number[], segment: number, frameOffset: number, inlineValueBytesMax: number,
): FrameUpdates {
  const updates: FrameUpdates = { keys: [], entries: [] };
  let n = 0;
  for (const { ops } of batches) {
    for (let i = 0; i < ops.length; i++, n++) {
      const op = ops[i]!;
      updates.keys.push(toKeyString(op.key));
      if (op.type !== "put") updates.entries.push(undefined);
      else if (op.value.length <= inlineValueBytesMax) updates.entries.push(op.value.slice());
      else updates.entries.push({ segment, offset: frameOffset + valueOffsets[n]!, length: op.value.length, crc: crc32c(op.value) });
    }
  }
  return updates;
}

/** Apply decoded frame updates to `index`, in order. */
export function applyUpdates(index: KeyIndex, updates: FrameUpdates): void {
  for (let i = 0; i < updates.keys.length; i++) {
    const entry = updates.entries[i];
    if (entry === undefined) index.delete(updates.keys[i]!);
    else index.set(updates.keys[i]!, entry);
  }
}

/** List segment numbers in order; they must run 1, 2, 3, ... with no gap. */
export async function listSegments(dir: string): Promise<number[]> {
  const numbers: number[] = [];
  for (const name of await listDir(dir)) {
    const match = SEGMENT_NAME.exec(name);
    if (match) numbers.push(Number(match[1]));
  }
  numbers.sort((a, b) => a - b);
  numbers.forEach((segment, i) => {
    if (segment !== i + 1) throw new StorageCorruptionError(`${segmentPath(dir, i + 1)} is missing (found segment ${segment} instead)`);
  });
  return numbers;
}

/** Recover an existing log (at least one segment must exist). */
export async function recoverLog(context: RecoveryContext, segments: number[]): Promise<RecoveredLog> {
  if (segments.length === 0) throw new Error("recoverLog needs at least one segment");
  await removeFile(join(context.dir, CHECKPOINT_TEMP_FILE));
  const { index, checkpoint, checkpointFileBytes } = await loadCheckpoint(context.dir);
  const last = segments[segments.length - 1]!;
  const start = checkpoint?.position ?? { segment: 1, offset: 0 };
  if (start.segment > last) throw new StorageCorruptionError(`${segmentPath(context.dir, start.segment)} named by the checkpoint is missing`);
  const report: RecoveryReport = { checkpointPosition: checkpoint?.position, replayedFrames: 0, replayedBytes: 0, truncatedTailBytes: 0, segmentCount: segments.length };
  let sealedBytes = 0;
  for (let segment = 1; segment < start.segment; segment++) sealedBytes += await fileBytes(segmentPath(context.dir, segment));
  let validEnd = 0;
  for (let segment = start.segment; segment <= last; segment++) {
    const data = await readWholeFile(segmentPath(context.dir, segment));
    const from = segment === start.segment ? start.offset : 0;
    validEnd = replaySegment(context, index, { data, segment, from, isLast: segment === last }, report);
    if (segment !== last) sealedBytes += data.length;
    else report.truncatedTailBytes = data.length - validEnd;
  }
  const writeFd = await openFile(segmentPath(context.dir, last), "r+");
  if (report.truncatedTailBytes > 0) {
    await truncateFd(writeFd, validEnd);
    await context.syncFile(writeFd, segmentPath(context.dir, last));
  }
  return { index, activeSegment: last, writeFd, writePosition: validEnd, sealedBytes, checkpointFileBytes, report };
}

async function loadCheckpoint(dir: string): Promise<{ index: KeyIndex; checkpoint?: Checkpoint; checkpointFileBytes: number }> {
  const index = new KeyIndex();
  const path = join(dir, CHECKPOINT_FILE);
  let data: Uint8Array;
  try {
    data = await readWholeFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { index, checkpointFileBytes: 0 };
    throw error;
  }
  const checkpoint = decodeCheckpoint(data, path);
  index.loadSorted(checkpoint.keys, checkpoint.entries);
  return { index, checkpoint, checkpointFileBytes: data.length };
}

interface SegmentData {
  data: Uint8Array;
  segment: number;
  from: number;
  isLast: boolean;
}

/** Replay the frames of one segment from `from`; returns the offset where valid frames end. */
function replaySegment(context: RecoveryContext, index: KeyIndex, input: SegmentData, report: RecoveryReport): number {
  const { data, segment, isLast } = input;
  const path = segmentPath(context.dir, segment);
  if (input.from > data.length) {
    throw new StorageCorruptionError(`${path} is ${data.length} bytes but the checkpoint covers up to offset ${input.from}`);
  }
  let offset = input.from;
  while (offset < data.length) {
    const check = checkFrame(data, offset);
    if (check.kind !== "valid") {
      const reason = check.kind === "partial" ? "incomplete frame" : check.reason;
      if (!isLast) throw new StorageCorruptionError(`${path} at offset ${offset}: ${reason} in a sealed segment`);
      const laterFrame = findValidFrameAfter(data, offset);
      if (laterFrame !== undefined) {
        throw new StorageCorruptionError(`${path} at offset ${offset}: ${reason}, followed by a valid frame at offset ${laterFrame}`);
      }
      return offset;
    }
    const frame = data.subarray(offset, offset + check.frameBytes);
    try {
      applyUpdates(index, frameUpdates(frame, segment, offset, context.inlineValueBytesMax));
    } catch (error) {
      throw new StorageCorruptionError(`${path} at offset ${offset}: checksum-valid frame is malformed: ${(error as Error).message}`);
    }
    report.replayedFrames++;
    report.replayedBytes += check.frameBytes;
    offset += check.frameBytes;
  }
  return offset;
}

/** Offset of the first checksum-valid frame strictly after `offset`, if any. */
function findValidFrameAfter(data: Uint8Array, offset: number): number | undefined {
  const firstMagicByte = FRAME_MAGIC & 0xff;
  for (let at = data.indexOf(firstMagicByte, offset + 1); at !== -1; at = data.indexOf(firstMagicByte, at + 1)) {
    if (checkFrame(data, at).kind === "valid") return at;
  }
  return undefined;
}
