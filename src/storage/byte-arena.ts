/**
 * Small byte arrays carved out of shared ArrayBuffer chunks. On Deno,
 * `new Uint8Array(n)` costs about 300 ns whatever `n` (every backing store
 * goes through the embedder's allocator), while a view made with
 * `new Uint8Array(buffer, offset, length)` costs about 20 ns; on Bun both
 * are tens of nanoseconds. The write path builds several short arrays per
 * put (keys, key ranges, version rows), so on Deno taking them from an arena
 * saves more than a hash costs.
 *
 * The price: a view keeps its whole chunk alive. So an arena must only serve
 * arrays of one lifetime class (all dropped soon, or all kept about as long
 * as one another), and a request above `sharedBytesMax` gets an array of its
 * own. It must never hand out overlapping views.
 */

/** Options of {@link ByteArena}. */
export interface ByteArenaOptions {
  /** Size of each shared chunk; small enough that a chunk pinned by one stray view wastes little. */
  chunkBytes: number;
  /** Largest request served from a chunk (at most a quarter chunk, so an abandoned chunk tail stays small). */
  sharedBytesMax: number;
}

export const ARENA_DEFAULTS: ByteArenaOptions = { chunkBytes: 16 * 1024, sharedBytesMax: 4 * 1024 };

export class ByteArena {
  readonly #chunkBytes: number;
  readonly #sharedBytesMax: number;
  #chunk: ArrayBuffer;
  #offset = 0;

  constructor(options: ByteArenaOptions = ARENA_DEFAULTS) {
    const { chunkBytes, sharedBytesMax } = options;
    if (!Number.isSafeInteger(chunkBytes) || !Number.isSafeInteger(sharedBytesMax) || sharedBytesMax < 1 || 4 * sharedBytesMax > chunkBytes) {
      throw new RangeError(`arena needs 1 <= sharedBytesMax <= chunkBytes / 4, got ${sharedBytesMax} and ${chunkBytes}`);
    }
    this.#chunkBytes = chunkBytes;
    this.#sharedBytesMax = sharedBytesMax;
    this.#chunk = new ArrayBuffer(chunkBytes);
  }

  /** A zero-filled array of `length` bytes that no other array of this arena overlaps. */
  take(length: number): Uint8Array {
    if (length > this.#sharedBytesMax) return new Uint8Array(length);
    if (this.#offset + length > this.#chunkBytes) {
      // The rest of the old chunk is abandoned: less than sharedBytesMax, and never handed out.
      this.#chunk = new ArrayBuffer(this.#chunkBytes);
      this.#offset = 0;
    }
    const view = new Uint8Array(this.#chunk, this.#offset, length);
    this.#offset += length;
    return view;
  }
}
