/** Test helpers: an in-process ledger server on the memory adapter, and request shorthands. */
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { resolveConfig, type Config } from "../../src/config/index.ts";
import { openLedgerServer, type LedgerServer } from "../../src/server.ts";
import { generateSigner } from "../../src/checkpoint/index.ts";
import { type Storage } from "../../src/storage/index.ts";

/** A fixed signer so tests are reproducible. */
export const testSigner = generateSigner("test-ledger");

/** Open a single node on `storage` (default: fresh memory) with config overrides. */
export async function openTestServer(options: {
  storage?: Storage;
  config?: Record<string, Record<string, unknown>>;
  now?: () => number;
} = {}): Promise<LedgerServer & { storage: Storage; config: Config }> {
  const storage = options.storage ?? createMemoryStorage();
  const config = resolveConfig(options.config ?? {});
  let clock = 1_700_000_000_000;
  const server = await openLedgerServer({ config, storage, signer: testSigner, now: options.now ?? (() => clock++) });
  return { ...server, storage, config };
}

/** JSON body of a response, asserting nothing. */
export async function json(response: Response): Promise<any> {
  return response.json();
}
