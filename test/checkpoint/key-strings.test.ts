import { describe, expect, test } from "bun:test";
import { formatSignerKey, generateSigner, parseSignerKey, parseVerifierKey, verifierKeyString } from "../../src/checkpoint/index.ts";

describe("key strings whose base64 contains '+'", () => {
  test("verifier and signer keys round-trip even when the key material has a plus sign", () => {
    let found = 0;
    for (let i = 0; i < 200 && found < 5; i++) {
      const signer = generateSigner(`scribe-${i}`);
      const verifier = verifierKeyString(signer);
      if (!verifier.split("+").slice(2).join("+").includes("+")) continue;
      found++;
      expect(parseVerifierKey(verifier).publicKey).toEqual(signer.publicKey);
      expect(parseSignerKey(formatSignerKey(signer)).keyId).toBe(signer.keyId);
    }
    expect(found).toBe(5);
  });
});
