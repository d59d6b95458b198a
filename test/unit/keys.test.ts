import { describe, expect, test } from "bun:test";
import { integerKey, KeyBuilder, readKeyInteger, readKeyString, stringKey, Tag } from "../../src/storage/keys.ts";
import { compareBytes } from "../../src/storage/index.ts";

describe("tuple keys", () => {
  test("stringKey and integerKey build the same bytes as KeyBuilder", () => {
    const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
    const strings = ["", "a", "bench/key/00000001", "a\u0000b", "\u0000", "é", "日本", "x".repeat(100), "\u007f"];
    for (const value of strings) {
      expect(hex(stringKey(Tag.meta, value))).toBe(hex(new KeyBuilder(Tag.meta).string(value).build()));
      for (const n of [0, 1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
        expect(hex(stringKey(Tag.version, value, n))).toBe(hex(new KeyBuilder(Tag.version).string(value).integer(n).build()));
      }
    }
    for (const n of [0, 255, 2 ** 32 - 1, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER]) {
      expect(hex(integerKey(Tag.chunk, n))).toBe(hex(new KeyBuilder(Tag.chunk).integer(n).build()));
      expect(hex(integerKey(Tag.merkle, 3, n))).toBe(hex(new KeyBuilder(Tag.merkle).integer(3).integer(n).build()));
    }
    expect(() => integerKey(Tag.chunk, -1)).toThrow(RangeError);
    expect(() => stringKey(Tag.version, "a", 1.5)).toThrow(RangeError);
  });

  test("integers sort numerically and round-trip", () => {
    const values = [0, 1, 255, 256, 65535, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER];
    const keys = values.map((value) => new KeyBuilder(Tag.chunk).integer(value).build());
    for (let i = 1; i < keys.length; i++) expect(compareBytes(keys[i - 1]!, keys[i]!)).toBeLessThan(0);
    keys.forEach((key, i) => expect(readKeyInteger(key, 1)).toBe(values[i]!));
    expect(() => new KeyBuilder(Tag.chunk).integer(-1)).toThrow(RangeError);
    expect(() => new KeyBuilder(Tag.chunk).integer(1.5)).toThrow(RangeError);
  });

  test("strings sort like their UTF-8 bytes, embedded NUL included, and round-trip", () => {
    const long = "x".repeat(100);
    const values = ["", "a", "a\u0000", "a\u0000b", "ab", "b", "é", "日本", `${long}\u0000${long}`, `${long}é\u0000é`];
    const keys = values.map((value) => new KeyBuilder(Tag.version).string(value).integer(3).build());
    const sorted = [...keys].sort(compareBytes);
    const byUtf8 = [...values].sort((a, b) => compareBytes(new TextEncoder().encode(a), new TextEncoder().encode(b)));
    expect(sorted.map((key) => readKeyString(key, 1).value)).toEqual(byUtf8);
    keys.forEach((key, i) => {
      const { value, next } = readKeyString(key, 1);
      expect(value).toBe(values[i]!);
      expect(readKeyInteger(key, next)).toBe(3);
    });
  });

  test("a prefix range holds exactly the strings that start with the prefix", () => {
    const start = new KeyBuilder(Tag.meta).stringPrefix("user:").build();
    const end = new KeyBuilder(Tag.meta).stringPrefix("user:").raw(0xff).build();
    const inside = ["user:", "user:a", "user:\u0000", "user:ü"].map((s) => new KeyBuilder(Tag.meta).string(s).build());
    const outside = ["user", "usera", "user;", "v"].map((s) => new KeyBuilder(Tag.meta).string(s).build());
    for (const key of inside) expect(compareBytes(start, key) <= 0 && compareBytes(key, end) < 0).toBe(true);
    for (const key of outside) expect(compareBytes(start, key) <= 0 && compareBytes(key, end) < 0).toBe(false);
  });
});
