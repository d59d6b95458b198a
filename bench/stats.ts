/** Small statistics and flag parsing shared by the benchmarks. */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/**
 * The flags of a benchmark run. `--help` prints `usage` and exits 0; an
 * unknown flag, a missing value or a stray argument prints the problem and
 * `usage` and exits 2 (no stack trace).
 */
export function benchFlags<const T extends ParseArgsOptionsConfig>(usage: string, options: T, args: string[] = process.argv.slice(2)) {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    process.exit(0);
  }
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\nusage: ${usage}`);
    process.exit(2);
  }
}

/** The median of `values` (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The whole number a benchmark flag `--name` gives (`fallback` when absent); at least `min`, or it throws naming the flag. */
export function wholeNumberFlag(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < min) throw new Error(`--${name} must be a whole number of at least ${min}, not "${raw}"`);
  return value;
}
