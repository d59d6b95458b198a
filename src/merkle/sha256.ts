/**
 * SHA-256 (FIPS 180-4) in plain JavaScript, shaped for the write path's short
 * inputs (values, entries, 65-byte node inputs): one call per digest, the
 * state in locals, message words read straight from the input, padding built
 * in one reused 128-byte block, the digest written into a caller's buffer.
 * No per-call object, view or array is created, which is what makes a
 * general streaming hasher (@noble/hashes) slow on Deno. Must give exactly
 * the digests of every other SHA-256 (test/unit/hasher.test.ts).
 */

/** Round constants: the first 32 bits of the fractional parts of the cube roots of the first 64 primes. */
// prettier-ignore
const K = Int32Array.from([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** Initial hash value: the first 32 bits of the fractional parts of the square roots of the first 8 primes. */
const IV = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

const BLOCK_BYTES = 64;
/** Padding needs 0x80 and an 8-byte length after the message: a tail of 56 bytes or more spills into a second block. */
const TAIL_BYTES_ONE_BLOCK_MAX = 55;

// Module scratch is safe: hashing is synchronous and nothing here outlives a call.
const state = new Int32Array(8);
const schedule = new Int32Array(64);
const tail = new Uint8Array(2 * BLOCK_BYTES);

/** Mix the 64-byte block at `bytes[at..]` into `state`. */
function compress(bytes: Uint8Array, at: number): void {
  const w = schedule;
  for (let i = 0; i < 16; i++, at += 4) w[i] = (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
  for (let i = 16; i < 64; i++) {
    const w15 = w[i - 15]!;
    const w2 = w[i - 2]!;
    const s0 = ((w15 >>> 7) | (w15 << 25)) ^ ((w15 >>> 18) | (w15 << 14)) ^ (w15 >>> 3);
    const s1 = ((w2 >>> 17) | (w2 << 15)) ^ ((w2 >>> 19) | (w2 << 13)) ^ (w2 >>> 10);
    w[i] = (s1 + w[i - 7]! + s0 + w[i - 16]!) | 0;
  }
  let a = state[0]!, b = state[1]!, c = state[2]!, d = state[3]!, e = state[4]!, f = state[5]!, g = state[6]!, h = state[7]!;
  for (let i = 0; i < 64; i++) {
    const sigma1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (h + sigma1 + ((e & f) ^ (~e & g)) + K[i]! + w[i]!) | 0;
    const sigma0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (sigma0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
  state[4] = (state[4]! + e) | 0;
  state[5] = (state[5]! + f) | 0;
  state[6] = (state[6]! + g) | 0;
  state[7] = (state[7]! + h) | 0;
}

/**
 * Write SHA-256(`data`) into `out[at..at + 32)`.
 * Precondition: `out` has 32 bytes from `at` (checked: a violation is a programming error).
 */
export function sha256Into(data: Uint8Array, out: Uint8Array, at: number): void {
  if (at < 0 || at + 32 > out.length) throw new Error(`sha256Into: no room for a digest at ${at} in ${out.length} bytes`);
  state.set(IV);
  const length = data.length;
  const fullBytes = length - (length % BLOCK_BYTES);
  for (let offset = 0; offset < fullBytes; offset += BLOCK_BYTES) compress(data, offset);
  // The last partial block, 0x80, zeros, and the bit length as a big-endian 64-bit integer.
  const rest = length - fullBytes;
  const paddedBytes = rest > TAIL_BYTES_ONE_BLOCK_MAX ? 2 * BLOCK_BYTES : BLOCK_BYTES;
  for (let i = 0; i < rest; i++) tail[i] = data[fullBytes + i]!;
  tail[rest] = 0x80;
  for (let i = rest + 1; i < paddedBytes - 8; i++) tail[i] = 0;
  writeUint32(tail, paddedBytes - 8, Math.floor(length / 0x2000_0000));
  writeUint32(tail, paddedBytes - 4, (length << 3) >>> 0);
  compress(tail, 0);
  if (paddedBytes > BLOCK_BYTES) compress(tail, BLOCK_BYTES);
  for (let i = 0; i < 8; i++) writeUint32(out, at + 4 * i, state[i]!);
}

function writeUint32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}
