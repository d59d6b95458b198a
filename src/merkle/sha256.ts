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
export const SHA256_K = Int32Array.from([
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
export const SHA256_IV = Int32Array.from([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);

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
  let t1 = 0;
  // Eight rounds per pass, each naming the working variables one place further on, so after eight the names line
  // up again and no round shuffles a..h (about 10% faster on Deno than one round per pass). Per round:
  // T1 = h + Σ1(e) + Ch(e, f, g) + SHA256_K[i] + W[i]; d += T1; h = T1 + Σ0(a) + Maj(a, b, c), with
  // Ch = g ^ (e & (f ^ g)) and Maj = (a & b) | (c & (a | b)), equivalent forms of FIPS 180-4's.
  for (let i = 0; i < 64; i += 8) {
    t1 = (h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) + (g ^ (e & (f ^ g))) + SHA256_K[i]! + w[i]!) | 0;
    d = (d + t1) | 0;
    h = (t1 + (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) + ((a & b) | (c & (a | b)))) | 0;
    t1 = (g + (((d >>> 6) | (d << 26)) ^ ((d >>> 11) | (d << 21)) ^ ((d >>> 25) | (d << 7))) + (f ^ (d & (e ^ f))) + SHA256_K[i + 1]! + w[i + 1]!) | 0;
    c = (c + t1) | 0;
    g = (t1 + (((h >>> 2) | (h << 30)) ^ ((h >>> 13) | (h << 19)) ^ ((h >>> 22) | (h << 10))) + ((h & a) | (b & (h | a)))) | 0;
    t1 = (f + (((c >>> 6) | (c << 26)) ^ ((c >>> 11) | (c << 21)) ^ ((c >>> 25) | (c << 7))) + (e ^ (c & (d ^ e))) + SHA256_K[i + 2]! + w[i + 2]!) | 0;
    b = (b + t1) | 0;
    f = (t1 + (((g >>> 2) | (g << 30)) ^ ((g >>> 13) | (g << 19)) ^ ((g >>> 22) | (g << 10))) + ((g & h) | (a & (g | h)))) | 0;
    t1 = (e + (((b >>> 6) | (b << 26)) ^ ((b >>> 11) | (b << 21)) ^ ((b >>> 25) | (b << 7))) + (d ^ (b & (c ^ d))) + SHA256_K[i + 3]! + w[i + 3]!) | 0;
    a = (a + t1) | 0;
    e = (t1 + (((f >>> 2) | (f << 30)) ^ ((f >>> 13) | (f << 19)) ^ ((f >>> 22) | (f << 10))) + ((f & g) | (h & (f | g)))) | 0;
    t1 = (d + (((a >>> 6) | (a << 26)) ^ ((a >>> 11) | (a << 21)) ^ ((a >>> 25) | (a << 7))) + (c ^ (a & (b ^ c))) + SHA256_K[i + 4]! + w[i + 4]!) | 0;
    h = (h + t1) | 0;
    d = (t1 + (((e >>> 2) | (e << 30)) ^ ((e >>> 13) | (e << 19)) ^ ((e >>> 22) | (e << 10))) + ((e & f) | (g & (e | f)))) | 0;
    t1 = (c + (((h >>> 6) | (h << 26)) ^ ((h >>> 11) | (h << 21)) ^ ((h >>> 25) | (h << 7))) + (b ^ (h & (a ^ b))) + SHA256_K[i + 5]! + w[i + 5]!) | 0;
    g = (g + t1) | 0;
    c = (t1 + (((d >>> 2) | (d << 30)) ^ ((d >>> 13) | (d << 19)) ^ ((d >>> 22) | (d << 10))) + ((d & e) | (f & (d | e)))) | 0;
    t1 = (b + (((g >>> 6) | (g << 26)) ^ ((g >>> 11) | (g << 21)) ^ ((g >>> 25) | (g << 7))) + (a ^ (g & (h ^ a))) + SHA256_K[i + 6]! + w[i + 6]!) | 0;
    f = (f + t1) | 0;
    b = (t1 + (((c >>> 2) | (c << 30)) ^ ((c >>> 13) | (c << 19)) ^ ((c >>> 22) | (c << 10))) + ((c & d) | (e & (c | d)))) | 0;
    t1 = (a + (((f >>> 6) | (f << 26)) ^ ((f >>> 11) | (f << 21)) ^ ((f >>> 25) | (f << 7))) + (h ^ (f & (g ^ h))) + SHA256_K[i + 7]! + w[i + 7]!) | 0;
    e = (e + t1) | 0;
    a = (t1 + (((b >>> 2) | (b << 30)) ^ ((b >>> 13) | (b << 19)) ^ ((b >>> 22) | (b << 10))) + ((b & c) | (d & (b | c)))) | 0;
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
  state.set(SHA256_IV);
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
