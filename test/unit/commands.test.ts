import { describe, expect, test } from "bun:test";
import { DEFAULT_LIMITS, validateCommand } from "../../src/ledger/commands.ts";
import { InvalidRequestError } from "../../src/ledger/errors.ts";

describe("command validation", () => {
  test("a content type with a lone surrogate is refused, like such a key", () => {
    const put = (contentType: string) => ({ operations: [{ op: "put" as const, key: "k", value: new Uint8Array(1), contentType }] });
    expect(() => validateCommand(put("text/plain; x=\ud800"), DEFAULT_LIMITS)).toThrow(InvalidRequestError);
    expect(() => validateCommand(put("text/plain; x=日本"), DEFAULT_LIMITS)).not.toThrow();
  });
});
