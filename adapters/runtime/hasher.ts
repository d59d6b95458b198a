/**
 * The fastest SHA-256 each runtime offers behind the core's `Hasher`
 * interface: Bun.CryptoHasher on Bun (already the core's default there),
 * node:crypto on Node and Deno (1.2-1.3x @noble/hashes for 100-byte inputs
 * here), @noble/hashes anywhere else. All produce identical digests
 * (test/unit/hasher.test.ts).
 */
import { defaultHasher, nobleHasher, type Hasher } from "../../src/merkle/index.ts";
import { runtimeName } from "./storage.ts";

/** A hasher over node:crypto, or undefined where node:crypto is missing. */
export async function nodeCryptoHasher(): Promise<Hasher | undefined> {
  try {
    const { createHash } = await import("node:crypto");
    return {
      sha256: (data) => {
        const digest = createHash("sha256").update(data).digest();
        return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
      },
    };
  } catch {
    return undefined;
  }
}

/** The hasher to use on this runtime. */
export async function runtimeHasher(): Promise<Hasher> {
  if (runtimeName() === "bun") return defaultHasher;
  return (await nodeCryptoHasher()) ?? nobleHasher;
}
