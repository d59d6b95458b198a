import { describe, expect, test } from "bun:test";
import { defaultHasher, HASH_BYTES, nobleHasher, slabSha256Hasher, wasmSha256Into } from "../../src/merkle/index.ts";
import { sha256Into } from "../../src/merkle/sha256.ts";
import { nodeCryptoHasher, runtimeHasher } from "../../adapters/runtime/hasher.ts";

describe("hashers", () => {
  test("Bun.SHA256, node:crypto, @noble/hashes and the JavaScript and wasm slab SHA-256 give identical digests", async () => {
    const nodeCrypto = (await nodeCryptoHasher())!;
    const wasm = wasmSha256Into();
    expect(wasm).toBeDefined();
    const hashers = [defaultHasher, nobleHasher, nodeCrypto, slabSha256Hasher(), slabSha256Hasher(wasm), await runtimeHasher()];
    expect(nodeCrypto).toBeDefined();
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) & 0xff);
    // 55/56 and 119/120: where the padding spills into a second block; 32 KiB +- 1 and 64 KiB + 64: where the wasm
    // hasher's input goes through in slices.
    for (const length of [0, 1, 55, 56, 63, 64, 65, 100, 119, 120, 127, 128, 129, 1000, 4097, 32_767, 32_768, 32_769, 65_600]) {
      for (let round = 0; round < 20; round++) {
        const input = Uint8Array.from({ length }, random);
        const expected = nobleHasher.sha256(input);
        expect(expected.length).toBe(32);
        for (const hasher of hashers) expect(Array.from(hasher.sha256(input))).toEqual(Array.from(expected));
        // A view into a larger buffer (the hot path hashes rows in place) hashes only its own bytes.
        const padded = new Uint8Array(length + 7).fill(0xee);
        padded.set(input, 3);
        for (const hasher of hashers) expect(Array.from(hasher.sha256(padded.subarray(3, 3 + length)))).toEqual(Array.from(expected));
      }
    }
    expect(Buffer.from(nobleHasher.sha256(new TextEncoder().encode("abc"))).toString("hex")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });

  test("the slab hasher never overwrites a digest it handed out, across slabs", () => {
    const hasher = slabSha256Hasher();
    const inputs = Array.from({ length: 1000 }, (_, i) => new TextEncoder().encode(`input ${i}`));
    const digests = inputs.map((input) => hasher.sha256(input));
    for (const [i, digest] of digests.entries()) {
      expect(digest.length).toBe(HASH_BYTES);
      expect(Array.from(digest)).toEqual(Array.from(nobleHasher.sha256(inputs[i]!)));
    }
  });

  test("sha256Into (JavaScript and wasm) writes only its 32 bytes and refuses an output without room", () => {
    for (const digestInto of [sha256Into, wasmSha256Into()!]) {
      const out = new Uint8Array(40).fill(0xaa);
      const input = new TextEncoder().encode("abc");
      digestInto(input, out, 4);
      expect(Array.from(out.subarray(4, 36))).toEqual(Array.from(nobleHasher.sha256(input)));
      expect(Array.from(out.subarray(0, 4))).toEqual([0xaa, 0xaa, 0xaa, 0xaa]);
      expect(Array.from(out.subarray(36))).toEqual([0xaa, 0xaa, 0xaa, 0xaa]);
      expect(() => digestInto(input, out, 9)).toThrow();
    }
  });
});
