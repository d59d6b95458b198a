/**
 * SHA-256 (FIPS 180-4) compiled to WebAssembly at load time from the
 * emitter below, for runtimes whose fastest SHA-256 is otherwise plain
 * JavaScript (Deno). The compression function is emitted fully unrolled:
 * the 64 schedule words and the eight working variables are wasm locals,
 * renamed round by round while emitting, so it runs as straight-line
 * register code with no array loads or bounds checks. There is no binary
 * blob to trust: the module is built from this file's code on every load.
 * Must give exactly the digests of every other SHA-256
 * (test/unit/hasher.test.ts); pure, no I/O.
 */
import { SHA256_IV, SHA256_K } from "./sha256.ts";

// Memory layout of the module's one 64 KiB page.
const STATE_AT = 0;
const DIGEST_AT = 32;
const INPUT_AT = 64;
/** Input bytes copied in per `blocks` call; longer inputs go through in slices of this size. */
const INPUT_BYTES_MAX = 32 * 1024;

// The few wasm opcodes the emitter uses.
const OP = {
  block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b, localGet: 0x20, localSet: 0x21, localTee: 0x22,
  i32Load: 0x28, i32Store: 0x36, i32Const: 0x41, i32Eqz: 0x45, i32Add: 0x6a, i32Sub: 0x6b, i32And: 0x71,
  i32Or: 0x72, i32Xor: 0x73, i32ShrU: 0x76, i32Rotl: 0x77, i32Rotr: 0x78,
} as const;
const VOID_BLOCK = 0x40;
const ALIGN_4 = 2;

function unsignedLeb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function signedLeb(n: number): number[] {
  n |= 0;
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) return [...out, byte];
    out.push(byte | 0x80);
  }
}

/** Appends instructions to one function body. */
class Code {
  readonly bytes: number[] = [];
  op(...bytes: number[]): this {
    this.bytes.push(...bytes);
    return this;
  }
  get(local: number): this {
    return this.op(OP.localGet, ...unsignedLeb(local));
  }
  set(local: number): this {
    return this.op(OP.localSet, ...unsignedLeb(local));
  }
  tee(local: number): this {
    return this.op(OP.localTee, ...unsignedLeb(local));
  }
  const(n: number): this {
    return this.op(OP.i32Const, ...signedLeb(n));
  }
  load(offset: number): this {
    return this.op(OP.i32Load, ALIGN_4, ...unsignedLeb(offset));
  }
  store(offset: number): this {
    return this.op(OP.i32Store, ALIGN_4, ...unsignedLeb(offset));
  }
  /** rotr(x, a) ^ rotr(x, b) ^ (rotr or, when `lastIsShift`, shr)(x, c) of local x: SHA-256's Σ and σ functions. */
  sigma(x: number, a: number, b: number, c: number, lastIsShift: boolean): this {
    this.get(x).const(a).op(OP.i32Rotr).get(x).const(b).op(OP.i32Rotr).op(OP.i32Xor);
    return this.get(x).const(c).op(lastIsShift ? OP.i32ShrU : OP.i32Rotr).op(OP.i32Xor);
  }
  /** The i32 on the stack, byte-reversed (wasm loads little-endian; SHA-256 words are big-endian). */
  byteSwap(scratch: number): this {
    this.tee(scratch).const(8).op(OP.i32Rotl).const(0x00ff00ff).op(OP.i32And);
    return this.get(scratch).const(8).op(OP.i32Rotr).const(0xff00ff00 | 0).op(OP.i32And).op(OP.i32Or);
  }
}

/** state = IV. */
function emitInit(code: Code): void {
  SHA256_IV.forEach((word, i) => code.const(0).const(word).store(STATE_AT + 4 * i));
}

/** The state as 32 big-endian bytes at DIGEST_AT. */
function emitFinish(code: Code, scratch: number): void {
  for (let i = 0; i < 8; i++) code.const(0).const(0).load(STATE_AT + 4 * i).byteSwap(scratch).store(DIGEST_AT + 4 * i);
}

// Locals of the compressing functions: the parameter `count`, then the block pointer, a scratch, t1, the working
// variables a..h, the 64 schedule words.
const COUNT = 0, POINTER = 1, SCRATCH = 2, T1 = 3, VARS = 4, W = 12;
const COMPRESS_LOCALS = [3 + 8 + 64];

/** Compress `count` consecutive 64-byte blocks from INPUT_AT into the state. */
function emitBlocks(code: Code): void {
  code.const(INPUT_AT).set(POINTER);
  code.op(OP.block, VOID_BLOCK, OP.loop, VOID_BLOCK);
  code.get(COUNT).op(OP.i32Eqz).op(OP.brIf, 1);
  for (let i = 0; i < 8; i++) code.const(0).load(STATE_AT + 4 * i).set(VARS + i);
  for (let i = 0; i < 16; i++) code.get(POINTER).load(4 * i).byteSwap(SCRATCH).set(W + i);
  for (let i = 16; i < 64; i++) {
    // W[i] = σ1(W[i-2]) + W[i-7] + σ0(W[i-15]) + W[i-16]
    code.sigma(W + i - 2, 17, 19, 10, true).get(W + i - 7).op(OP.i32Add);
    code.sigma(W + i - 15, 7, 18, 3, true).op(OP.i32Add).get(W + i - 16).op(OP.i32Add).set(W + i);
  }
  // names[j] is the local holding working variable j (a..h) in this round; each round shifts them one place.
  let names = Array.from({ length: 8 }, (_, j) => VARS + j);
  for (let i = 0; i < 64; i++) {
    const [a, b, c, d, e, f, g, h] = names as [number, number, number, number, number, number, number, number];
    // T1 = h + Σ1(e) + Ch(e, f, g) + K[i] + W[i], with Ch = g ^ (e & (f ^ g))
    code.get(h).sigma(e, 6, 11, 25, false).op(OP.i32Add);
    code.get(g).get(e).get(f).get(g).op(OP.i32Xor).op(OP.i32And).op(OP.i32Xor).op(OP.i32Add);
    code.const(SHA256_K[i]!).op(OP.i32Add).get(W + i).op(OP.i32Add).set(T1);
    // d += T1; h = T1 + Σ0(a) + Maj(a, b, c), with Maj = (a & b) | (c & (a | b))
    code.get(d).get(T1).op(OP.i32Add).set(d);
    code.get(T1).sigma(a, 2, 13, 22, false).op(OP.i32Add);
    code.get(a).get(b).op(OP.i32And).get(c).get(a).get(b).op(OP.i32Or).op(OP.i32And).op(OP.i32Or).op(OP.i32Add).set(h);
    names = [h, a, b, c, d, e, f, g];
  }
  // After 64 rounds (a multiple of 8) the names are back where they started.
  for (let i = 0; i < 8; i++) code.const(0).const(0).load(STATE_AT + 4 * i).get(VARS + i).op(OP.i32Add).store(STATE_AT + 4 * i);
  code.get(POINTER).const(64).op(OP.i32Add).set(POINTER);
  code.get(COUNT).const(1).op(OP.i32Sub).set(COUNT);
  code.op(OP.br, 0, OP.end, OP.end);
}

/** The module's functions, in export order. */
function emitFunctions(): Array<{ type: number; locals: number[]; code: Code }> {
  const init = new Code();
  emitInit(init);
  const blocks = new Code();
  emitBlocks(blocks);
  const finish = new Code();
  emitFinish(finish, 0);
  // digest(count): init, blocks and finish in one call, for an input that fits the input area at once.
  const digest = new Code();
  emitInit(digest);
  emitBlocks(digest);
  emitFinish(digest, SCRATCH);
  return [
    { type: 0, locals: [], code: init },
    { type: 1, locals: COMPRESS_LOCALS, code: blocks },
    { type: 0, locals: [1], code: finish },
    { type: 1, locals: COMPRESS_LOCALS, code: digest },
  ];
}

function section(id: number, content: number[]): number[] {
  return [id, ...unsignedLeb(content.length), ...content];
}

function vector(items: number[][]): number[] {
  return [...unsignedLeb(items.length), ...items.flat()];
}

const name = (text: string): number[] => [...unsignedLeb(text.length), ...Array.from(text, (char) => char.charCodeAt(0))];

/** The module's bytes: memory, init(), blocks(count), finish(), digest(count). */
export function sha256WasmBytes(): Uint8Array<ArrayBuffer> {
  const I32 = 0x7f;
  const functions = emitFunctions();
  const types = [[0x60, 0, 0], [0x60, 1, I32, 0]];
  const bodies = functions.map(({ locals, code }) => {
    const declared = vector(locals.map((count) => [...unsignedLeb(count), I32]));
    const body = [...declared, ...code.bytes, OP.end];
    return [...unsignedLeb(body.length), ...body];
  });
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector(types)),
    ...section(3, vector(functions.map(({ type }) => [type]))),
    ...section(5, vector([[0x00, 1]])),
    ...section(7, vector([[...name("memory"), 0x02, 0], [...name("init"), 0x00, 0], [...name("blocks"), 0x00, 1], [...name("finish"), 0x00, 2], [...name("digest"), 0x00, 3]])),
    ...section(10, vector(bodies)),
  ]);
}

interface Sha256Exports {
  memory: { buffer: ArrayBuffer };
  init(): void;
  blocks(count: number): void;
  finish(): void;
  digest(count: number): void;
}

/** A SHA-256 writing into a caller's buffer, like {@link sha256Into}. */
export type Sha256Into = (data: Uint8Array, out: Uint8Array, at: number) => void;

/**
 * The wasm SHA-256, or undefined where WebAssembly is missing or refuses the
 * module (callers fall back to the JavaScript one).
 */
export function wasmSha256Into(): Sha256Into | undefined {
  const wasm = (globalThis as { WebAssembly?: typeof WebAssembly }).WebAssembly;
  if (wasm === undefined) return undefined;
  let exports: Sha256Exports;
  try {
    exports = new wasm.Instance(new wasm.Module(sha256WasmBytes())).exports as unknown as Sha256Exports;
  } catch {
    return undefined;
  }
  // The memory never grows, so this view stays valid.
  const memory = new Uint8Array(exports.memory.buffer);
  const digest = new Uint8Array(exports.memory.buffer, DIGEST_AT, 32);
  const { init, blocks, finish, digest: digestShort } = exports;
  return (data, out, at) => {
    if (at < 0 || at + 32 > out.length) throw new Error(`sha256Into: no room for a digest at ${at} in ${out.length} bytes`);
    const length = data.length;
    const long = length > INPUT_BYTES_MAX;
    if (long) init();
    let offset = 0;
    for (; length - offset > INPUT_BYTES_MAX; offset += INPUT_BYTES_MAX) {
      memory.set(data.subarray(offset, offset + INPUT_BYTES_MAX), INPUT_AT);
      blocks(INPUT_BYTES_MAX / 64);
    }
    // The rest, 0x80, zeros, and the bit length as a big-endian 64-bit integer, in one or two more blocks.
    const rest = length - offset;
    memory.set(offset === 0 ? data : data.subarray(offset), INPUT_AT);
    const padded = (rest + 9 + 63) & ~63;
    memory[INPUT_AT + rest] = 0x80;
    memory.fill(0, INPUT_AT + rest + 1, INPUT_AT + padded - 8);
    writeUint32(memory, INPUT_AT + padded - 8, Math.floor(length / 0x2000_0000));
    writeUint32(memory, INPUT_AT + padded - 4, (length << 3) >>> 0);
    if (long) {
      blocks(padded / 64);
      finish();
    } else digestShort(padded / 64);
    out.set(digest, at);
  };
}

function writeUint32(out: Uint8Array, at: number, n: number): void {
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
}
