/**
 * The loop shared by the kill -9 child processes (fs-log-writer.ts,
 * deno-kv-writer.ts): workers commit under load forever. Before each commit
 * a worker prints the commit's announce line, if any, and "d <key>" for each
 * key it deletes (such a key may be present or absent after a crash); after
 * the commit resolved, "P <key>" per put and "D <key>" per delete. The parent
 * kills the process at a random moment and checks the printed ops against
 * the reopened store.
 */
import { type Storage } from "../../src/storage/index.ts";

const WORKERS = 4;
const encoder = new TextEncoder();

/** Options of {@link runKillWriter}. */
export interface KillWriterOptions {
  store: Storage;
  seed: number;
  /** The put keys of commit `n` of worker `id`, and a line to print before it (drawing from `random`). */
  nextCommit(id: number, n: number, random: () => number): { keys: string[]; announce?: string };
  /** The value stored under `key` (the parent recomputes it to check). */
  value(key: string): Uint8Array;
}

export async function runKillWriter(options: KillWriterOptions): Promise<void> {
  const { store } = options;
  let state = options.seed >>> 0;
  const random = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  const worker = async (id: number): Promise<void> => {
    const acked: string[] = [];
    for (let n = 0; ; n++) {
      const { keys, announce = "" } = options.nextCommit(id, n, random);
      const deleted = acked.length > 0 && random() < 0.3 ? acked.splice(Math.floor(random() * acked.length), 1) : [];
      // An unacknowledged commit may still turn out durable, so announce it and its deletes before committing.
      const before = announce + deleted.map((key) => `d ${key}\n`).join("");
      if (before !== "") process.stdout.write(before);
      await store.commit([
        ...keys.map((key) => ({ type: "put" as const, key: encoder.encode(key), value: options.value(key) })),
        ...deleted.map((key) => ({ type: "delete" as const, key: encoder.encode(key) })),
      ]);
      acked.push(...keys);
      process.stdout.write(keys.map((key) => `P ${key}\n`).join("") + deleted.map((key) => `D ${key}\n`).join(""));
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, id) => worker(id)));
}
