/**
 * Smoke run of the fs-log adapter for Node, which cannot load .ts files here:
 * fs-log.test.ts bundles this file to JavaScript and runs it with `node`.
 * Writes, reopens, and checks; exits non-zero on any mismatch.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFsLogStorage } from "../../adapters/fs-log/index.ts";

const encoder = new TextEncoder();
const dir = await mkdtemp(join(tmpdir(), "fs-log-node-"));
try {
  let store = await createFsLogStorage({ dir, segmentBytes: 8192, inlineValueBytesMax: 64 });
  await Promise.all(
    Array.from({ length: 40 }, (_, n) =>
      store.commit([{ type: "put", key: encoder.encode(`k${String(n).padStart(2, "0")}`), value: new Uint8Array(50 + n * 20).fill(n) }]),
    ),
  );
  await store.commit([{ type: "delete", key: encoder.encode("k07") }]);
  await store.close();
  store = await createFsLogStorage({ dir });
  const all = await store.scan({ limit: 100 });
  if (all.length !== 39) throw new Error(`expected 39 keys after reopen, got ${all.length}`);
  for (const { key, value } of all) {
    const n = Number(new TextDecoder().decode(key).slice(1));
    if (value.length !== 50 + n * 20 || value.some((byte) => byte !== n)) throw new Error(`bad value for k${n}`);
  }
  await store.close();
  console.log("fs-log node smoke ok");
} finally {
  await rm(dir, { recursive: true, force: true });
}
