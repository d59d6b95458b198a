/** Strict standard base64: round trips, and only the canonical text form of bytes decodes. */
import { describe, expect, test } from "bun:test";
import { decodeBase64, encodeBase64 } from "../../src/checkpoint/base64.ts";

describe("base64", () => {
  test("encodes like Buffer and decodes back, at every length up to 100", () => {
    let seed = 7;
    for (let length = 0; length <= 100; length++) {
      const bytes = Uint8Array.from({ length }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24));
      const text = encodeBase64(bytes);
      expect(text).toBe(Buffer.from(bytes).toString("base64"));
      expect(Array.from(decodeBase64(text)!)).toEqual(Array.from(bytes));
    }
  });

  test("refuses anything but the canonical padded form", () => {
    for (const text of ["QQ", "QQ=", "Q===", "QR==", "QUI", "QUJ=", " QQ==", "QQ==\n", "QQ ==", "QQ==QQ==", "Q-==", "QQ_=", "=QQ="]) {
      expect({ text, decoded: decodeBase64(text) }).toEqual({ text, decoded: undefined });
    }
    expect(Array.from(decodeBase64("QQ==")!)).toEqual([0x41]);
    expect(Array.from(decodeBase64("QUI=")!)).toEqual([0x41, 0x42]);
    expect(decodeBase64("")).toEqual(new Uint8Array(0));
  });
});
