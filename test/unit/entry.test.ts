import { describe, expect, test } from "bun:test";
import { decodeEntry, encodeEntry, EntryDecodeError, type Entry } from "../../src/ledger/entry.ts";

const base: Entry = {
  seq: 0, op: "put", key: "k", valueHash: new Uint8Array(32).fill(7), sizeBytes: 13, contentType: "text/plain", timestampMs: 1763790000000,
};

describe("entry encoding", () => {
  test("the documented bytes: a CBOR array of 7 in fixed order with shortest integer heads", () => {
    const bytes = encodeEntry(base);
    const hex = Buffer.from(bytes).toString("hex");
    expect(hex).toBe("87" + "00" + "01" + "616b" + "5820" + "07".repeat(32) + "0d" + "6a746578742f706c61696e" + "1b0000019aaa138f80");
    const tombstone = encodeEntry({ ...base, seq: 2 ** 33, op: "delete", valueHash: null, sizeBytes: 0, contentType: null, timestampMs: 5 });
    expect(Buffer.from(tombstone).toString("hex")).toBe("87" + "1b0000000200000000" + "02" + "616b" + "f6" + "00" + "f6" + "05");
  });

  test("round-trips keys and content types in any script, including after many decodes", () => {
    for (const key of ["é", "日本語のキー", "emoji 🎉", "a\u0000b", "x".repeat(300) + "ü"]) {
      for (let i = 0; i < 50; i++) {
        const entry = { ...base, seq: i, key, contentType: `text/plain; name=${key}` };
        expect(decodeEntry(encodeEntry(entry))).toEqual(entry);
      }
    }
  });

  test("integers take the shortest CBOR head at every size boundary", () => {
    const headBytes = (n: number) => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x1_0000 ? 3 : n < 2 ** 32 ? 5 : 9);
    const baseLength = encodeEntry(base).length; // seq 0 takes a 1-byte head
    const integers = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
    for (const n of integers) {
      const entry = { ...base, seq: n };
      const bytes = encodeEntry(entry);
      expect(bytes.length).toBe(baseLength - 1 + headBytes(n));
      expect(decodeEntry(bytes)).toEqual(entry);
    }
    for (const length of [0, 23, 24, 255, 256, 65536]) {
      const entry = { ...base, key: "k".repeat(length), contentType: "t".repeat(length) };
      expect(decodeEntry(encodeEntry(entry))).toEqual(entry);
    }
  });

  test("rejects non-canonical or malformed bytes", () => {
    const bytes = encodeEntry(base);
    expect(() => decodeEntry(bytes.subarray(0, bytes.length - 1))).toThrow(EntryDecodeError);
    const longHead = Uint8Array.from([0x87, 0x18, 0x00, ...bytes.subarray(2)]); // seq 0 written with a 1-byte head
    expect(() => decodeEntry(longHead)).toThrow(EntryDecodeError);
    expect(() => decodeEntry(Uint8Array.from([0x83, 1, 2, 3]))).toThrow(EntryDecodeError);
  });
});

describe("cbor-x native acceleration stays off", () => {
  test("no module imports the cbor-x root, and the shared decoder is the JS one", async () => {
    const { isNativeAccelerationEnabled } = await import("cbor-x/decode");
    await import("../../src/server.ts");
    expect(isNativeAccelerationEnabled).toBe(false);
    const { Glob } = await import("bun");
    const offenders: string[] = [];
    for (const folder of ["src", "adapters", "bench"]) {
      for await (const path of new Glob(`${folder}/**/*.ts`).scan({ cwd: new URL("../..", import.meta.url).pathname })) {
        const text = await Bun.file(new URL(`../../${path}`, import.meta.url)).text();
        if (/from\s+["']cbor-x["']/.test(text)) offenders.push(path);
      }
    }
    expect(offenders).toEqual([]);
  });
});
