/**
 * The ledger catch-up of a snapshot install: a node that adopted a snapshot
 * naming tree size T and root R pulls the entries it lacks, seqs
 * [its tree size, T), from a peer's Raft port as a stream, and appends them
 * in bounded batches.
 *
 * Stream body: frames of a 4-byte big-endian length and a CBOR array
 *   [firstSeq, [[entryBytes, version, value | null], ...], consistencyProof]
 * where the proof is RFC 9162's from the tree after the frame to T. Before a
 * batch is committed the receiver checks it with R (from the Raft snapshot,
 * not from the stream): the rows it is about to write are then exactly the
 * prefix of the snapshot's tree, so nothing unverified is ever durable or
 * published, a broken stream is refused at the first bad frame, and a retry
 * resumes after the last good one. At the end the tree's root must equal R.
 *
 * Any member whose ledger holds T entries can serve the stream: history
 * below T is the same on every replica.
 */
import { type Ledger } from "../ledger/ledger.ts";
import { type DecidedEntry, type LedgerReader } from "../ledger/reader.ts";
import { cbor, cborUint } from "../ledger/entry.ts";
import { bytesEqual, RootMismatchError, verifyConsistency } from "../merkle/index.ts";
import { type Storage } from "../storage/index.ts";
import { decodeWire, type EntriesRequest } from "../transport/codec.ts";

/** Limits of one entries stream; both ends use the same. */
export interface EntriesStreamLimits {
  /** Most entries in one frame, which the receiver commits as one batch. */
  chunkEntriesMax: number;
  /** Entry and value bytes after which a frame ends (a frame always holds at least one entry). */
  chunkBytesMax: number;
  /** A stream stalled this long (no frame read, or none arriving) is aborted. */
  idleTimeoutMs: number;
}

/** Defaults of the entries stream limits: 1000 entries or 1 MiB per frame, 30 s idle. */
export const ENTRIES_STREAM_DEFAULTS: EntriesStreamLimits = {
  chunkEntriesMax: 1000,
  chunkBytesMax: 1024 * 1024,
  idleTimeoutMs: 30_000,
};

const FRAME_HEADER_BYTES = 4;
/** Bytes a frame may hold beyond its entries and values (CBOR heads, the proof). */
const FRAME_OVERHEAD_BYTES = 64 * 1024;

/** Largest frame a receiver accepts: a full chunk, or one entry with a value of the largest size. */
export function frameBytesMax(limits: EntriesStreamLimits, valueBytesMax: number): number {
  return Math.max(limits.chunkBytesMax, valueBytesMax) * 2 + FRAME_OVERHEAD_BYTES;
}

/** The stream was broken (malformed, truncated, stalled); nothing of the bad frame was applied. */
export class EntriesStreamError extends Error {
  override name = "EntriesStreamError";
}

/** A batch's storage commit failed: the ledger in memory is ahead of storage, so the node must fail-stop (never retry). */
export class CatchUpCommitError extends Error {
  override name = "CatchUpCommitError";
  constructor(override readonly cause: unknown) {
    super(`storage commit of pulled entries failed: ${String(cause)}`);
  }
}

/** Bits of an item's chunk flags: where the source's chunk rows begin and end. */
const CHUNK_START = 1;
const CHUNK_END = 2;

function chunkFlags(item: DecidedEntry): number {
  return (item.chunkStart ? CHUNK_START : 0) | (item.chunkEnd ? CHUNK_END : 0);
}

function encodeFrame(firstSeq: number, items: readonly DecidedEntry[], proof: readonly Uint8Array[]): Uint8Array {
  const body = cbor.encode([cborUint(firstSeq), items.map((item) => [item.entryBytes, cborUint(item.version), item.value, chunkFlags(item)]), proof]);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

function decodeFrame(bytes: Uint8Array): { firstSeq: number; items: DecidedEntry[]; proof: Uint8Array[] } {
  const raw = decodeWire(bytes);
  const bad = () => new EntriesStreamError("malformed entries frame");
  if (!Array.isArray(raw) || raw.length !== 3 || !Number.isSafeInteger(raw[0]) || !Array.isArray(raw[1]) || !Array.isArray(raw[2])) throw bad();
  if (raw[1].length === 0 || !raw[2].every((hash: unknown) => hash instanceof Uint8Array && hash.length === 32)) throw bad();
  const items = raw[1].map((item: unknown): DecidedEntry => {
    if (!Array.isArray(item) || item.length !== 4 || !(item[0] instanceof Uint8Array) || !Number.isSafeInteger(item[1])) throw bad();
    if (item[2] !== null && !(item[2] instanceof Uint8Array)) throw bad();
    if (!Number.isInteger(item[3]) || item[3] < 0 || item[3] > (CHUNK_START | CHUNK_END)) throw bad();
    return { entryBytes: item[0], version: item[1], value: item[2], chunkStart: (item[3] & CHUNK_START) !== 0, chunkEnd: (item[3] & CHUNK_END) !== 0 };
  });
  return { firstSeq: raw[0], items, proof: raw[2] };
}

/**
 * Serve entries [fromSeq, toSeq) of `reader` (whose tree holds toSeq
 * entries) as a stream of frames, read on demand: a frame is read from
 * storage only when the receiver wants the next one. `onEnd` hears whether
 * the last frame was taken ("done") or the stream failed or stalled.
 */
export function entriesStream(
  reader: LedgerReader,
  request: EntriesRequest,
  limits: EntriesStreamLimits,
  onEnd: (outcome: "done" | "failed") => void = () => {},
): ReadableStream<Uint8Array> {
  let seq = request.fromSeq;
  let idle: ReturnType<typeof setTimeout> | undefined;
  let ended = false;
  const end = (outcome: "done" | "failed") => {
    clearTimeout(idle);
    if (ended) return;
    ended = true;
    onEnd(outcome);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      clearTimeout(idle);
      if (seq >= request.toSeq) {
        controller.close();
        end("done");
        return;
      }
      try {
        const items = await reader.decidedEntries(seq, { limit: Math.min(limits.chunkEntriesMax, request.toSeq - seq), bytesMax: limits.chunkBytesMax });
        const after = seq + items.length;
        const proof = after < request.toSeq ? await reader.consistencyProof(after, request.toSeq) : [];
        controller.enqueue(encodeFrame(seq, items, proof));
        seq = after;
      } catch (error) {
        end("failed");
        throw error;
      }
      idle = setTimeout(() => {
        controller.error(new EntriesStreamError(`receiver took no frame for ${limits.idleTimeoutMs} ms`));
        end("failed");
      }, limits.idleTimeoutMs);
    },
    cancel() {
      end("failed");
    },
  }, { highWaterMark: 0 });
}

/** Bytes received but not yet framed; concatenates only when a frame is taken. */
class ByteQueue {
  #chunks: Uint8Array[] = [];
  length = 0;

  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `n` bytes (n <= length), removed. */
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const used = Math.min(chunk.length, n - filled);
      out.set(chunk.subarray(0, used), filled);
      filled += used;
      if (used === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(used);
    }
    this.length -= n;
    return out;
  }

  peekUint32(): number {
    const head = this.take(FRAME_HEADER_BYTES);
    this.#chunks.unshift(head);
    this.length += FRAME_HEADER_BYTES;
    return new DataView(head.buffer).getUint32(0);
  }
}

/** Options of {@link pullEntries}. */
export interface PullEntriesOptions {
  /** Open a stream of entries [fromSeq, toSeq) from some peer. */
  open: (request: EntriesRequest, signal: AbortSignal) => Promise<ReadableStream<Uint8Array>>;
  ledger: Ledger;
  storage: Storage;
  /** The snapshot's tree: what the ledger must reach, and the root it must then have. */
  target: { treeSize: number; rootHash: Uint8Array };
  limits: EntriesStreamLimits;
  /** Largest value a put may carry (bounds a frame). */
  valueBytesMax: number;
  /** Aborted when the node closes. */
  signal: AbortSignal;
}

/**
 * Bring `ledger` to the target tree: pull, check and append entries batch by
 * batch (one storage commit and publish per frame). Throws
 * EntriesStreamError, RootMismatchError, ProofError, DecidedEntryError,
 * WireFormatError or a network error when an attempt fails; the entries
 * already appended are a verified prefix, and a new call resumes after them.
 * CatchUpCommitError is fatal. Returns the number of entries appended.
 */
export async function pullEntries(options: PullEntriesOptions): Promise<number> {
  const { ledger, target } = options;
  const from = ledger.treeSize;
  if (from > target.treeSize) throw new Error(`assertion: ledger at ${from} is ahead of the snapshot's ${target.treeSize}`);
  if (from === target.treeSize) {
    if (!bytesEqual(ledger.rootHash, target.rootHash)) throw new RootMismatchError(target.rootHash, ledger.rootHash, "installed root");
    return 0;
  }
  const controller = new AbortController();
  const abort = () => controller.abort(new EntriesStreamError("node closing"));
  options.signal.addEventListener("abort", abort);
  let idle: ReturnType<typeof setTimeout> | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(new EntriesStreamError(`no bytes for ${options.limits.idleTimeoutMs} ms`)), options.limits.idleTimeoutMs);
  };
  try {
    armIdle();
    const stream = await options.open({ fromSeq: from, toSeq: target.treeSize }, controller.signal);
    await applyFrames(stream, options, controller.signal, armIdle);
  } finally {
    clearTimeout(idle);
    options.signal.removeEventListener("abort", abort);
  }
  if (ledger.treeSize !== target.treeSize) throw new EntriesStreamError(`stream ended at ${ledger.treeSize} of ${target.treeSize} entries (truncated)`);
  if (!bytesEqual(ledger.rootHash, target.rootHash)) throw new RootMismatchError(target.rootHash, ledger.rootHash, "installed root");
  return ledger.treeSize - from;
}

async function applyFrames(stream: ReadableStream<Uint8Array>, options: PullEntriesOptions, signal: AbortSignal, armIdle: () => void): Promise<void> {
  const { ledger, target } = options;
  const frameMax = frameBytesMax(options.limits, options.valueBytesMax);
  const reader = stream.getReader();
  const queue = new ByteQueue();
  try {
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const { done, value } = await reader.read();
      if (done) break;
      armIdle();
      queue.push(value);
      while (queue.length >= FRAME_HEADER_BYTES) {
        const length = queue.peekUint32();
        if (length > frameMax) throw new EntriesStreamError(`frame of ${length} bytes exceeds ${frameMax}`);
        if (queue.length < FRAME_HEADER_BYTES + length) break;
        queue.take(FRAME_HEADER_BYTES);
        const { firstSeq, items, proof } = decodeFrame(queue.take(length));
        if (firstSeq !== ledger.treeSize || firstSeq + items.length > target.treeSize) {
          throw new EntriesStreamError(`frame of seqs [${firstSeq}, ${firstSeq + items.length}) where ${ledger.treeSize} is next`);
        }
        const prepared = await ledger.prepareDecided(items, (treeSize, rootHash) =>
          verifyConsistency(ledger.hasher, treeSize, target.treeSize, rootHash, target.rootHash, proof));
        try {
          await options.storage.commit(prepared.ops);
        } catch (error) {
          throw new CatchUpCommitError(error);
        }
        ledger.publish(prepared);
      }
    }
    if (queue.length > 0) throw new EntriesStreamError(`stream ended inside a frame (${queue.length} bytes left)`);
  } finally {
    reader.cancel().catch(() => {});
  }
}
