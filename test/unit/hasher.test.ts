import { describe, expect, test } from "bun:test";
import { defaultHasher, HASH_BYTES, nobleHasher, reusingNobleHasher } from "../../src/merkle/index.ts";
import { nodeCryptoHasher, runtimeHasher } from "../../adapters/runtime/hasher.ts";

describe("hashers", () => {
  test("Bun.SHA256, node:crypto and @noble/hashes give identical SHA-256 digests", async () => {
    const nodeCrypto = (await nodeCryptoHasher())!;
    const hashers = [defaultHasher, nobleHasher, nodeCrypto, reusingNobleHasher(), await runtimeHasher()];
    expect(nodeCrypto).toBeDefined();
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) & 0xff);
    for (const length of [0, 1, 55, 56, 63, 64, 65, 100, 1000, 4097]) {
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

  test("the reusing noble hasher never overwrites a digest it handed out, across slabs", () => {
    const hasher = reusingNobleHasher();
    const inputs = Array.from({ length: 1000 }, (_, i) => new TextEncoder().encode(`input ${i}`));
    const digests = inputs.map((input) => hasher.sha256(input));
    for (const [i, digest] of digests.entries()) {
      expect(digest.length).toBe(HASH_BYTES);
      expect(Array.from(digest)).toEqual(Array.from(nobleHasher.sha256(inputs[i]!)));
    }
  });
});
