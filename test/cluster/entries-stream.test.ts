/**
 * The entries stream of a snapshot install, end to end over an in-memory
 * "network": a clean pull yields storage identical to the source; a stream
 * with any one byte flipped (seeded, many positions) is refused, and what the
 * receiver kept is always a prefix of the source's rows (nothing wrong is
 * ever stored), from which a clean pull then completes.
 */
import { describe, expect, test } from "bun:test";
import { createMemoryStorage } from "../../adapters/memory/index.ts";
import { Ledger } from "../../src/ledger/ledger.ts";
import { CheckpointIssuer } from "../../src/ledger/checkpoints.ts";
import { generateSigner } from "../../src/checkpoint/index.ts";
import { defaultHasher } from "../../src/merkle/index.ts";
import { seededRandom } from "../../src/raft/index.ts";
import { entriesStream, pullEntries, type EntriesStreamLimits } from "../../src/node/entries-stream.ts";
import { Tag } from "../../src/storage/keys.ts";
import { type Storage } from "../../src/storage/index.ts";

const signer = generateSigner("t");
const LIMITS: EntriesStreamLimits = { chunkEntriesMax: 8, chunkBytesMax: 4096, idleTimeoutMs: 2_000 };
const FLIP_TRIALS = 60;
const open = (storage: Storage) => Ledger.open({ storage, hasher: defaultHasher, checkpoints: new CheckpointIssuer({ signer, origin: "t" }), immutable: false });

async function ledgerRows(storage: Storage): Promise<string[]> {
  const rows = await storage.scan({ start: Uint8Array.of(Tag.chunk), end: Uint8Array.of(Tag.value + 1), limit: 100_000 });
  return rows.map(({ key, value }) => `${Buffer.from(key).toString("hex")}=${Buffer.from(value).toString("hex")}`);
}

async function sourceLedger(): Promise<{ storage: Storage; ledger: Ledger }> {
  const storage = createMemoryStorage();
  const ledger = await open(storage);
  for (let i = 0; i < 60; i++) {
    const commands = [{ operations: [{ op: "put" as const, key: `k${i % 9}`, value: new Uint8Array(i * 7).fill(i), contentType: "application/x" }] }];
    if (i % 6 === 5) commands.push({ operations: [{ op: "delete" as const, key: `k${(i + 3) % 9}` }] } as never);
    const prepared = await ledger.prepare(commands, 5_000 + i);
    await storage.commit(prepared.ops);
    ledger.publish(prepared);
  }
  return { storage, ledger };
}

/** All bytes of a stream, to replay with edits. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function once(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({ start(controller) { controller.enqueue(bytes); controller.close(); } });
}

describe("entries stream", () => {
  test("a clean pull yields the source's rows; any flipped byte is refused and leaves only a verified prefix", async () => {
    const source = await sourceLedger();
    const target = { treeSize: source.ledger.treeSize, rootHash: source.ledger.rootHash };
    const sourceRows = await ledgerRows(source.storage);
    const random = seededRandom(20_240_601);
    for (let trial = 0; trial < FLIP_TRIALS; trial++) {
      const storage = createMemoryStorage();
      const ledger = await open(storage);
      let flipAt = -1;
      const pull = (flip: boolean) => pullEntries({
        open: async (request) => {
          const bytes = await drain(entriesStream(source.ledger, request, LIMITS));
          if (flip) {
            flipAt = Math.floor(random() * bytes.length);
            bytes[flipAt] ^= 1 << Math.floor(random() * 8);
          }
          return once(bytes);
        },
        ledger, storage, target, limits: LIMITS, valueBytesMax: 1 << 20, signal: new AbortController().signal,
      });
      const refusal = await pull(true).then(() => undefined, (error: unknown) => error);
      expect({ trial, flipAt, refused: refusal !== undefined }).toEqual({ trial, flipAt, refused: true });
      // What was kept are rows of the source (chunk rows aside: the last may be a prefix of the source's, which the next frame rewrites whole).
      const kept = (await ledgerRows(storage)).filter((row) => !row.startsWith(Tag.chunk.toString(16)));
      for (const row of kept) expect(sourceRows).toContain(row);
      expect(ledger.treeSize).toBeLessThan(target.treeSize);
      const sizeAfterFailure = ledger.treeSize;
      expect(await pull(false)).toBe(target.treeSize - sizeAfterFailure);
      expect(await ledgerRows(storage)).toEqual(sourceRows);
    }
  });
});
