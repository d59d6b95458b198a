/**
 * The signed-note vectors and a signing round trip on whatever runtime runs
 * this file: runtimes.test.ts runs it under Deno directly and under Node as a
 * bundle, so checkpoint signing and verification are proven not to depend on
 * one runtime's crypto. Prints "signed-note vectors ok: N on RUNTIME" and
 * exits non-zero on the first mismatch.
 *
 *   deno run -A test/checkpoint/vectors-runtime.ts ../shared/testdata/signed-note/vectors.json
 */
import { readFileSync } from "node:fs";
import {
  formatCheckpoint, generateSigner, NoteVerificationError, openNote, parseVerifierKey, signCheckpoint, signNoteAsync, verifierKeyString,
} from "../../src/checkpoint/index.ts";
import { runtimeName } from "../../adapters/runtime/storage.ts";

interface NoteVector { verifierKey: string; note: string; text: string | null; valid: boolean }

function fail(message: string): never {
  throw new Error(`signed-note check failed on ${runtimeName()}: ${message}`);
}

const file = process.argv[2] ?? fail("usage: vectors-runtime.ts VECTORS_JSON");
const { vectors } = JSON.parse(readFileSync(file, "utf8")) as { vectors: NoteVector[] };
if (!vectors.some((v) => v.valid) || !vectors.some((v) => !v.valid)) fail("the vector file needs valid and tampered notes");
for (const [i, vector] of vectors.entries()) {
  const verifier = parseVerifierKey(vector.verifierKey);
  if (verifierKeyString(verifier) !== vector.verifierKey) fail(`vector ${i}: verifier key does not round-trip`);
  let text: string | undefined;
  try {
    text = openNote(vector.note, [verifier]).text;
  } catch (error) {
    if (!(error instanceof NoteVerificationError)) throw error;
  }
  if (vector.valid && text !== vector.text) fail(`vector ${i} should verify with text ${JSON.stringify(vector.text)}`);
  if (!vector.valid && text !== undefined) fail(`tampered vector ${i} verified`);
}

// Signing here (Web Crypto where the runtime has Ed25519, noble otherwise) gives the bytes noble gives, and they verify.
const signer = generateSigner("runtime.example/check");
const checkpoint = { origin: "runtime.example/check", treeSize: 42, rootHash: Uint8Array.from({ length: 32 }, (_, i) => i) };
const portable = signCheckpoint(signer, checkpoint);
const native = await signNoteAsync(signer, formatCheckpoint(checkpoint));
if (native !== portable) fail("the runtime's Ed25519 signature differs from noble's");
if (openNote(native, [parseVerifierKey(verifierKeyString(signer))]).text !== formatCheckpoint(checkpoint)) fail("own checkpoint does not verify");
console.log(`signed-note vectors ok: ${vectors.length} on ${runtimeName()}`);
