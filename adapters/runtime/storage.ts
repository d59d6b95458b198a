/**
 * Picks and opens the storage adapter for this runtime: `auto` means SQLite
 * on Bun, Deno KV on Deno and the filesystem log on Node. Adapters are
 * imported lazily so a runtime never loads one it cannot run.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type Storage } from "../../src/storage/index.ts";

export type StorageChoice = "auto" | "memory" | "sqlite" | "fs" | "denokv";

/** Which runtime this process runs on. */
export function runtimeName(): "bun" | "deno" | "node" {
  if (typeof (globalThis as { Bun?: unknown }).Bun !== "undefined") return "bun";
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") return "deno";
  return "node";
}

/** The adapter `auto` resolves to on this runtime. */
export function defaultStorage(): Exclude<StorageChoice, "auto"> {
  return { bun: "sqlite", deno: "denokv", node: "fs" }[runtimeName()] as Exclude<StorageChoice, "auto">;
}

/** Adapter tuning from config. */
export interface StorageTuning {
  /** fs adapter: segment file size in bytes. */
  segmentBytes?: number;
  /** sqlite adapter: the write path (see adapters/bun-sqlite/index.ts). Default "worker". */
  sqliteWriter?: "inline" | "worker";
}

/** Open the chosen adapter with its files under `dataDir` (created if missing). */
export async function openStorage(choice: StorageChoice, dataDir: string, tuning: StorageTuning = {}): Promise<Storage> {
  const adapter = choice === "auto" ? defaultStorage() : choice;
  if (adapter === "memory") {
    const { createMemoryStorage } = await import("../memory/index.ts");
    return createMemoryStorage();
  }
  await mkdir(dataDir, { recursive: true });
  if (adapter === "sqlite") {
    const { createBunSqliteStorage } = await import("../bun-sqlite/index.ts");
    return createBunSqliteStorage({ path: join(dataDir, "ledger.sqlite"), writer: tuning.sqliteWriter });
  }
  if (adapter === "fs") {
    const { createFsLogStorage } = await import("../fs-log/index.ts");
    return createFsLogStorage({ dir: join(dataDir, "log"), segmentBytes: tuning.segmentBytes });
  }
  const { createDenoKvStorage } = await import("../deno-kv/index.ts");
  return createDenoKvStorage({ path: join(dataDir, "ledger.denokv") });
}
