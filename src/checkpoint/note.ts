/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 signatures:
 *   <text ending in "\n">\n— <key name> <base64(4-byte key id || signature)>\n...
 * `openNote` is the trust boundary for checkpoints received from anywhere: it
 * must never return text that no known key signed, and never accept a note a
 * known key signed badly. Limits bound the work done on hostile input.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { NoteVerificationError } from "./errors.ts";
import { isValidKeyName, isWellFormedUnicode, type Signer, SIGNATURE_BYTES, type Verifier } from "./keys.ts";

/** Most signature lines read from one note (as golang.org/x/mod/sumdb/note). */
export const NOTE_SIGNATURES_MAX = 100;
/** Largest note accepted, in UTF-8 bytes. */
export const NOTE_BYTES_MAX = 1024 * 1024;

const SIGNATURE_PREFIX = "\u2014 ";
const KEY_ID_BYTES = 4;
const encoder = new TextEncoder();

/** A signature line whose key is not among the verifiers (kept, not trusted). */
export interface UnverifiedSignature {
  name: string;
  keyId: number;
}

/** An opened note: its text and the known keys that verified it (at least one). */
export interface OpenedNote {
  text: string;
  verifiedBy: Verifier[];
  unverified: UnverifiedSignature[];
}

/**
 * Note text rules: non-empty, ends with "\n", valid Unicode, and no ASCII
 * control character other than "\n". Returns a reason, or undefined when valid.
 */
function noteTextProblem(text: string): string | undefined {
  if (text.length === 0 || !text.endsWith("\n")) return "text must be non-empty and end with a newline";
  if (!isWellFormedUnicode(text)) return "text is not valid UTF-8";
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) return "text contains a control character";
  return undefined;
}

/**
 * Signs `text` and returns the note with one signature line.
 * Precondition: `text` satisfies the note text rules (throws NoteVerificationError "malformed").
 */
export function signNote(signer: Signer, text: string): string {
  const message = noteMessage(text);
  return assembleNote(signer, text, ed25519.sign(message, signer.seed));
}

/**
 * `signNote` through Web Crypto's Ed25519 where the runtime has it (about
 * 30x faster than the portable code on Bun), falling back to @noble.
 * Ed25519 is deterministic (RFC 8032), so both give the same bytes.
 */
export async function signNoteAsync(signer: Signer, text: string): Promise<string> {
  const message = noteMessage(text);
  const key = await webCryptoKey(signer);
  const signature = key === undefined
    ? ed25519.sign(message, signer.seed)
    : new Uint8Array(await crypto.subtle.sign("Ed25519", key, message));
  return assembleNote(signer, text, signature);
}

function noteMessage(text: string): Uint8Array<ArrayBuffer> {
  const problem = noteTextProblem(text);
  if (problem !== undefined) throw new NoteVerificationError("malformed", problem);
  return encoder.encode(text);
}

function assembleNote(signer: Signer, text: string, signature: Uint8Array): string {
  const payload = new Uint8Array(KEY_ID_BYTES + SIGNATURE_BYTES);
  new DataView(payload.buffer).setUint32(0, signer.keyId, false);
  payload.set(signature, KEY_ID_BYTES);
  return `${text}\n${SIGNATURE_PREFIX}${signer.name} ${encodeBase64(payload)}\n`;
}

// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): fixed 16-byte prefix.
const PKCS8_ED25519_PREFIX = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
const webCryptoKeys = new WeakMap<Signer, Promise<CryptoKey | undefined>>();

/** The signer's seed as a Web Crypto key, or undefined where Ed25519 is not supported. */
function webCryptoKey(signer: Signer): Promise<CryptoKey | undefined> {
  let key = webCryptoKeys.get(signer);
  if (key === undefined) {
    const pkcs8 = Uint8Array.from([...PKCS8_ED25519_PREFIX, ...signer.seed]);
    key = (globalThis.crypto?.subtle?.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]) ?? Promise.resolve(undefined))
      .catch(() => undefined);
    webCryptoKeys.set(signer, key);
  }
  return key;
}

/** Decodes raw bytes as strict UTF-8 (NoteVerificationError on invalid bytes). */
function decodeNoteBytes(bytes: Uint8Array): string {
  if (bytes.length > NOTE_BYTES_MAX) throw new NoteVerificationError("malformed", "note too large");
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new NoteVerificationError("malformed", "note is not valid UTF-8");
  }
}

interface SignatureLine {
  name: string;
  keyId: number;
  signature: Uint8Array;
}

/** Parses one "— <name> <base64>" line; throws "malformed" otherwise. */
function parseSignatureLine(line: string): SignatureLine {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteVerificationError("malformed", "bad signature line prefix");
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(" ");
  const name = space < 0 ? rest : rest.slice(0, space);
  const payload = space < 0 ? undefined : decodeBase64(rest.slice(space + 1));
  if (!isValidKeyName(name) || payload === undefined || payload.length <= KEY_ID_BYTES) {
    throw new NoteVerificationError("malformed", "bad signature line");
  }
  const keyId = new DataView(payload.buffer, payload.byteOffset, KEY_ID_BYTES).getUint32(0, false);
  return { name, keyId, signature: payload.subarray(KEY_ID_BYTES) };
}

/** Splits a note into its text and signature lines at the last blank line. */
function splitNote(note: string): { text: string; lines: string[] } {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new NoteVerificationError("malformed", "no blank line before signatures");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0 || !block.endsWith("\n")) {
    throw new NoteVerificationError("malformed", "signature block must be non-empty and end with a newline");
  }
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > NOTE_SIGNATURES_MAX) throw new NoteVerificationError("malformed", "too many signatures");
  return { text, lines };
}

/**
 * Opens a signed note: checks its form, verifies every signature whose
 * (name, key id) is among `verifiers`, and returns the text.
 * Throws NoteVerificationError: "malformed" (encoding, layout, more than
 * NOTE_SIGNATURES_MAX signatures), "invalid-signature" (a known key's
 * signature fails), "unverified" (no known key signed it).
 */
export function openNote(note: string | Uint8Array, verifiers: readonly Verifier[]): OpenedNote {
  const noteText = note instanceof Uint8Array ? decodeNoteBytes(note) : note;
  if (typeof noteText !== "string") throw new NoteVerificationError("malformed", "note must be text or bytes");
  if (noteText.length > NOTE_BYTES_MAX || encoder.encode(noteText).length > NOTE_BYTES_MAX) {
    throw new NoteVerificationError("malformed", "note too large");
  }
  const problem = noteTextProblem(noteText);
  if (problem !== undefined) throw new NoteVerificationError("malformed", problem);
  const { text, lines } = splitNote(noteText);
  const signatures = lines.map(parseSignatureLine);
  const message = encoder.encode(text);
  const verifiedBy: Verifier[] = [];
  const unverified: UnverifiedSignature[] = [];
  for (const { name, keyId, signature } of signatures) {
    const verifier = verifiers.find((v) => v.name === name && v.keyId === keyId);
    if (verifier === undefined) {
      if (!unverified.some((u) => u.name === name && u.keyId === keyId)) unverified.push({ name, keyId });
      continue;
    }
    if (verifiedBy.includes(verifier)) continue; // repeated signature by one key
    if (!verifyEd25519(signature, message, verifier.publicKey)) {
      throw new NoteVerificationError("invalid-signature", `signature by ${name} does not verify`);
    }
    verifiedBy.push(verifier);
  }
  if (verifiedBy.length === 0) throw new NoteVerificationError("unverified", "no signature from a known key");
  return { text, verifiedBy, unverified };
}

/** Strict (non-ZIP-215) Ed25519 verification; false for any malformed input. */
function verifyEd25519(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}
