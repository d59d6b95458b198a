/**
 * An in-memory filter of every key the ledger holds, so that the lookup of a
 * key that was never written (every PUT of a new key asks for the key's
 * latest version) needs no storage read.
 *
 * It is a blocked Bloom filter that grows by layers: each layer holds twice
 * as many keys as the one before, and all the probes of one key in one layer
 * fall in one 64-byte block (one cache miss per layer). A Bloom filter never
 * forgets a key it was given, so "absent" is always true; "may be present"
 * is sometimes wrong (about 1% of absent keys per full layer), which only
 * costs the storage read the filter did not save.
 *
 * The filter knows the whole store only once `complete()` is called, after
 * the ledger has fed it every stored key; until then every key "may be
 * present". Keys are added when a write is prepared, before it is durable, so
 * a write that then fails leaves a key the store lacks: harmless, like any
 * false positive. Nothing removes a key from the ledger (tombstones are
 * versions too), so nothing is ever removed from the filter.
 */

/** Keys the first layer is sized for; each later layer holds twice the one before. */
export const KEY_FILTER_FIRST_LAYER_KEYS = 65_536;
/** Bits of filter per key a layer is sized for (about 1% false positives once the layer is full). */
const BITS_PER_KEY = 12;
/** Memory the layers may take together; past it the last layer keeps taking keys and its false-positive rate rises. */
export const KEY_FILTER_BYTES_MAX = 128 * 1024 * 1024;
/** Bits set per key, all inside one block: bit (a + i*b) mod 512 for i < PROBES, a and b (odd) from the second hash. */
const PROBES = 7;
/** 32-bit words per block: 16 words = 512 bits = one 64-byte cache line. */
const BLOCK_WORDS = 16;

/** One layer: a bit array of 2^n blocks and the number of keys it was sized for. */
interface Layer {
  words: Uint32Array;
  blockMask: number;
  capacity: number;
  keys: number;
}

export class KeyFilter {
  readonly #layers: Layer[] = [];
  #bytes = 0;
  #complete = false;

  constructor() {
    this.#layers.push(this.#layer(KEY_FILTER_FIRST_LAYER_KEYS));
  }

  /** Whether the filter has seen every stored key, so that `mayContain` false means absent. */
  get isComplete(): boolean {
    return this.#complete;
  }

  /** Memory the layers take. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Mark the filter as holding every stored key (the caller fed it all of them, and adds every new one). */
  complete(): void {
    this.#complete = true;
  }

  /** Remember `key`. */
  add(key: string): void {
    let layer = this.#layers[this.#layers.length - 1]!;
    if (layer.keys >= layer.capacity) {
      const next = layer.capacity * 2;
      if (this.#bytes + layerBytes(next) <= KEY_FILTER_BYTES_MAX) {
        layer = this.#layer(next);
        this.#layers.push(layer);
      }
    }
    layer.keys++;
    const h1 = hashString(key, 0x9e3779b1);
    const h2 = hashString(key, 0x85ebca77);
    const base = (h1 & layer.blockMask) * BLOCK_WORDS;
    const words = layer.words;
    const step = ((h2 >>> 9) & 511) | 1;
    for (let i = 0, bit = h2 & 511; i < PROBES; i++, bit = (bit + step) & 511) words[base + (bit >>> 5)]! |= 1 << (bit & 31);
  }

  /** False only if `key` is certainly not stored; true while the filter is incomplete. */
  mayContain(key: string): boolean {
    if (!this.#complete) return true;
    const h1 = hashString(key, 0x9e3779b1);
    const h2 = hashString(key, 0x85ebca77);
    const step = ((h2 >>> 9) & 511) | 1;
    for (let l = 0; l < this.#layers.length; l++) {
      const layer = this.#layers[l]!;
      const base = (h1 & layer.blockMask) * BLOCK_WORDS;
      const words = layer.words;
      let hits = 0;
      for (let bit = h2 & 511; hits < PROBES && (words[base + (bit >>> 5)]! & (1 << (bit & 31))) !== 0; hits++) bit = (bit + step) & 511;
      if (hits === PROBES) return true;
    }
    return false;
  }

  #layer(capacity: number): Layer {
    const blocks = layerBytes(capacity) / (BLOCK_WORDS * 4);
    this.#bytes += layerBytes(capacity);
    return { words: new Uint32Array(blocks * BLOCK_WORDS), blockMask: blocks - 1, capacity, keys: 0 };
  }
}

/** Bytes of a layer for `capacity` keys: BITS_PER_KEY bits each, rounded up to a power-of-two number of blocks. */
function layerBytes(capacity: number): number {
  const blockBits = BLOCK_WORDS * 32;
  const blocks = Math.max(1, Math.ceil((capacity * BITS_PER_KEY) / blockBits));
  return 2 ** Math.ceil(Math.log2(blocks)) * (blockBits / 8);
}

/**
 * A 32-bit hash of a string's UTF-16 code units (FNV-1a steps with a seed,
 * then the MurmurHash3 finalizer so every output bit depends on every input
 * bit). Only ever compared within one process, so code units are as good as
 * UTF-8 bytes.
 */
function hashString(text: string, seed: number): number {
  let h = seed ^ text.length;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
