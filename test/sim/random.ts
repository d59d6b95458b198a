/** Seeded randomness for the simulation: one stream per seed drives the whole run. */
import { seededRandom } from '../../src/raft/index.ts';

export class Random {
  readonly #next: () => number;
  constructor(seed: number) {
    // Mixing the seed keeps neighbouring seeds from producing correlated streams.
    this.#next = seededRandom(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ (seed >>> 13));
  }

  float(): number {
    return this.#next();
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.#next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.#next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.#next() * items.length)]!;
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.#next() * (i + 1));
      [items[i], items[j]] = [items[j]!, items[i]!];
    }
    return items;
  }

  /** A derived seed, for PRNGs handed to components (e.g. each node's election timer). */
  seed(): number {
    return Math.floor(this.#next() * 0x100000000);
  }
}
