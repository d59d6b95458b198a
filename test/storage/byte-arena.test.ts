import { describe, expect, test } from "bun:test";
import { ByteArena } from "../../src/storage/byte-arena.ts";

describe("ByteArena", () => {
  test("hands out zero-filled arrays that never overlap, across chunks", () => {
    const arena = new ByteArena({ chunkBytes: 256, sharedBytesMax: 64 });
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) % 65;
    const taken: Uint8Array[] = [];
    for (let i = 0; i < 500; i++) {
      const length = random();
      const bytes = arena.take(length);
      expect(bytes.length).toBe(length);
      expect(bytes.every((byte) => byte === 0)).toBe(true);
      bytes.fill(i & 0xff);
      taken.push(bytes);
    }
    // Writing each array after the others changed nothing any other array holds.
    taken.forEach((bytes, i) => expect(bytes.every((byte) => byte === (i & 0xff))).toBe(true));
    const spans = taken.filter((bytes) => bytes.length > 0).map((bytes) => ({ buffer: bytes.buffer, from: bytes.byteOffset, to: bytes.byteOffset + bytes.length }));
    for (const [i, a] of spans.entries()) {
      for (const b of spans.slice(i + 1)) if (a.buffer === b.buffer) expect(a.to <= b.from || b.to <= a.from).toBe(true);
    }
  });

  test("a request above sharedBytesMax gets an array of its own", () => {
    const arena = new ByteArena({ chunkBytes: 256, sharedBytesMax: 64 });
    const small = arena.take(8);
    const large = arena.take(65);
    expect(large.byteOffset).toBe(0);
    expect(large.buffer.byteLength).toBe(65);
    expect(large.buffer).not.toBe(small.buffer);
    expect(arena.take(8).buffer).toBe(small.buffer);
  });

  test("refuses a shared limit above a quarter chunk", () => {
    expect(() => new ByteArena({ chunkBytes: 256, sharedBytesMax: 65 })).toThrow(RangeError);
    expect(() => new ByteArena({ chunkBytes: 256, sharedBytesMax: 0 })).toThrow(RangeError);
  });
});
