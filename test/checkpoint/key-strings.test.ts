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

describe("signNoteAsync", () => {
  test("gives the same note as the portable signer, and it verifies", async () => {
    const { signNote, signNoteAsync, openNote, verifierOf } = await import("../../src/checkpoint/index.ts");
    for (let i = 0; i < 20; i++) {
      const signer = generateSigner(`async-${i}`);
      const text = `origin-${i}\n${i * 977}\n${btoa(String.fromCharCode(...new Uint8Array(32).fill(i)))}\n`;
      const fast = await signNoteAsync(signer, text);
      expect(fast).toBe(signNote(signer, text));
      expect(openNote(fast, [verifierOf(signer)]).text).toBe(text);
    }
  });
});
