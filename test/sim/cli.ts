/**
 * Command line for the deterministic simulation:
 *   npm run sim -- --seed-start S --seeds N [--trace] [--trace-messages] [--chaos-ticks T] [--bug NAME]
 * `--bug up-to-date|figure-8|long-lease` injects a deliberate safety bug, to watch the checks fire
 * (long-lease also turns lease reads on for every seed).
 * Prints "N seeds, K failures" and, for each failing seed, the command that
 * replays it alone with a trace. Exits 1 if any seed failed.
 */
import { parseArgs } from 'node:util';
import type { TestingKnobs } from '../../src/raft/index.ts';
import { runSeed, type SimResult } from './simulation.ts';

const BUGS: Record<string, TestingKnobs> = {
  'up-to-date': { skipUpToDateCheck: true },
  'figure-8': { commitPreviousTermEntries: true },
  'long-lease': { leaseExtraTicks: 60 },
};

const SEEDS_MAX = 10_000_000;

function integerOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    console.error(`--${name} must be an integer in [${min}, ${max}], got ${raw}`);
    process.exit(2);
  }
  return value;
}

/** The single command that replays `seed` with a step trace. */
export function replayCommand(seed: number): string {
  return `npm run sim -- --seed-start ${seed} --seeds 1 --trace`;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      'seed-start': { type: 'string' },
      seeds: { type: 'string' },
      trace: { type: 'boolean', default: false },
      'trace-messages': { type: 'boolean', default: false },
      'chaos-ticks': { type: 'string' },
      bug: { type: 'string' },
    },
  });
  const seedStart = integerOption('seed-start', values['seed-start'], 0, 0, 2 ** 32 - 1);
  const seeds = integerOption('seeds', values.seeds, 100, 1, SEEDS_MAX);
  const chaosTicks = integerOption('chaos-ticks', values['chaos-ticks'], 600, 1, 1_000_000);
  const bug = values.bug;
  if (bug !== undefined && !(bug in BUGS)) {
    console.error(`--bug must be one of ${Object.keys(BUGS).join(', ')}`);
    process.exit(2);
  }
  const testingKnobs = bug === undefined ? undefined : BUGS[bug];
  const tracing = values.trace || values['trace-messages'];
  const trace = tracing ? (line: string) => console.log(line) : undefined;
  const started = performance.now();
  const failures: SimResult[] = [];
  for (let seed = seedStart; seed < seedStart + seeds; seed++) {
    const leaseReads = testingKnobs?.leaseExtraTicks !== undefined ? true : undefined;
    const result = runSeed(seed, { trace, traceMessages: values['trace-messages'], chaosTicks, testingKnobs, leaseReads });
    if (!result.ok) failures.push(result);
    if (tracing) console.log(`seed ${seed}: ${result.ok ? 'ok' : 'FAILED'} after ${result.ticks} ticks ${JSON.stringify(result.stats)}`);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${seeds} seeds, ${failures.length} failures (${seconds}s, seeds ${seedStart}..${seedStart + seeds - 1})`);
  for (const failure of failures) {
    console.log(`seed ${failure.seed} failed at tick ${failure.ticks}: ${failure.error}`);
    console.log(`  replay: ${replayCommand(failure.seed)}${bug === undefined ? '' : ` --bug ${bug}`}`);
  }
  process.exit(failures.length > 0 ? 1 : 0);
}

if (import.meta.main) main();
