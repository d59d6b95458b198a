/** The benchmarks' shared helpers: a bad flag stops the run naming itself; the median of the rounds. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { median, wholeNumberFlag } from "../../bench/stats.ts";

/** Run a benchmark script with `args` (only its flag parsing: these runs stop before any work). */
function runBench(script: string, args: string[]): { exitCode: number; stdout: string; stderr: string } {
  const result = Bun.spawnSync([process.execPath, join(import.meta.dir, "../../bench", script), ...args], { stdout: "pipe", stderr: "pipe" });
  return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

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

  test("--help prints the usage and exits 0; an unknown flag or a stray argument exits 2 with the usage, no stack trace", () => {
    for (const script of ["http.ts", "embedded.ts", "cluster.ts", "failover.ts", "peer-client.ts"]) {
      const help = runBench(script, ["--help"]);
      expect(help.exitCode).toBe(0);
      expect(help.stdout).toContain(`bench/${script} [--`);
      for (const args of [["--no-such-flag"], ["stray"]]) {
        const bad = runBench(script, args);
        expect(bad.exitCode).toBe(2);
        expect(bad.stderr).toContain(`usage: bun run bench/${script}`);
        expect(bad.stderr).not.toContain("    at ");
      }
    }
  });

  test("median of odd and even counts, and of none", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
});
