/**
 * The fastest SHA-256 each runtime offers behind the core's `Hasher`
 * interface: Bun.SHA256 on Bun (already the core's default there);
 * node:crypto's one-shot `hash` on Node (`createHash` where it is missing);
 * on Deno, where every typed-array allocation is expensive, the core's
 * SHA-256 compiled to WebAssembly writing into a digest slab
 * (src/merkle/sha256-wasm.ts; the plain JavaScript one of sha256.ts where
 * WebAssembly is missing): about twice @noble/hashes there and three times
 * node:crypto. All produce identical digests (test/unit/hasher.test.ts).
 */
import { defaultHasher, slabSha256Hasher, type Hasher, wasmSha256Into } from "../../src/merkle/index.ts";
import { runtimeName } from "./storage.ts";

type NodeCrypto = {
  createHash(algorithm: string): { update(data: Uint8Array): { digest(): Uint8Array } };
  hash?: (algorithm: string, data: Uint8Array, outputEncoding: "buffer") => Uint8Array;
};

const asBytes = (digest: Uint8Array): Uint8Array => new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);

/** A hasher over node:crypto (its one-shot `hash` when present), or undefined where node:crypto is missing. */
export async function nodeCryptoHasher(): Promise<Hasher | undefined> {
  let crypto: NodeCrypto;
  try {
    crypto = (await import("node:crypto")) as unknown as NodeCrypto;
  } catch {
    return undefined;
  }
  const oneShot = crypto.hash;
  if (typeof oneShot === "function") return { sha256: (data) => asBytes(oneShot("sha256", data, "buffer")) };
  return { sha256: (data) => asBytes(crypto.createHash("sha256").update(data).digest()) };
}

/** The hasher to use on this runtime. */
export async function runtimeHasher(): Promise<Hasher> {
  const runtime = runtimeName();
  if (runtime === "bun") return defaultHasher;
  if (runtime === "deno") return slabSha256Hasher(wasmSha256Into());
  return (await nodeCryptoHasher()) ?? slabSha256Hasher();
}
