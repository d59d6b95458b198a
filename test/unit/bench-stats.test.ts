/** The benchmarks' shared helpers: a bad flag stops the run naming itself; the median of the rounds. */
import { describe, expect, test } from "bun:test";
import { median, wholeNumberFlag } from "../../bench/stats.ts";

describe("bench stats", () => {
  test("a flag is its default when absent, its whole number when given", () => {
    expect(wholeNumberFlag("rounds", undefined, 3)).toBe(3);
    expect(wholeNumberFlag("rounds", "7", 3)).toBe(7);
    expect(wholeNumberFlag("warmup", "0", 5, 0)).toBe(0);
  });

  test("anything else is refused, naming the flag and the value", () => {
    for (const raw of ["0", "-1", "1.5", "abc", "", " 2", "1e3", "99999999999999999999"]) {
      expect(() => wholeNumberFlag("rounds", raw, 1)).toThrow(`--rounds must be a whole number of at least 1, not "${raw}"`);
    }
  });

  test("median of odd and even counts, and of none", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
