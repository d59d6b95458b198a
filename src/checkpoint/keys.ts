/**
 * Ed25519 signer and verifier keys in the C2SP signed-note text forms:
 *   verifier: <name>+<hex8 key id>+<base64(0x01 || 32-byte public key)>
 *   signer:   PRIVATE+KEY+<name>+<hex8 key id>+<base64(0x01 || 32-byte seed)>
 * Key id = first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).
 * Uses @noble/curves so every runtime signs and verifies identically. Never
 * logs or formats a seed except through formatSignerKey.
 */
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { decodeBase64, encodeBase64 } from "./base64.ts";
import { KeyFormatError } from "./errors.ts";

/** Signature algorithm byte for Ed25519 in C2SP signed notes. */
export const ALGORITHM_ED25519 = 0x01;
export const PUBLIC_KEY_BYTES = 32;
export const SEED_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** Upper bound on key names, in UTF-8 bytes; far above any real origin. */
export const KEY_NAME_BYTES_MAX = 1024;

/** Public half: verifies signatures made by the matching Signer. */
export interface Verifier {
  readonly name: string;
  /** Key id as an unsigned 32-bit integer (big-endian of the 4 id bytes). */
  readonly keyId: number;
  readonly publicKey: Uint8Array;
}

/** Private half: the 32-byte Ed25519 seed plus its derived public data. */
export interface Signer extends Verifier {
  readonly seed: Uint8Array;
}

const encoder = new TextEncoder();

/**
 * A key name is non-empty, has no Unicode whitespace, no '+', no control
 * characters, and is at most KEY_NAME_BYTES_MAX UTF-8 bytes (C2SP signed-note).
 */
export function isValidKeyName(name: string): boolean {
  if (typeof name !== "string" || name.length === 0) return false;
  if (/[\s+\u0000-\u001f\u007f]/u.test(name)) return false;
  if (!isWellFormedUnicode(name)) return false;
  return encoder.encode(name).length <= KEY_NAME_BYTES_MAX;
}

/** True when the string has no lone UTF-16 surrogates (so it is valid UTF-8 when encoded). */
export function isWellFormedUnicode(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

/** Key id = big-endian uint32 of SHA-256(name || "\n" || 0x01 || publicKey)[0:4]. */
export function computeKeyId(name: string, publicKey: Uint8Array): number {
  const nameBytes = encoder.encode(name);
  const input = new Uint8Array(nameBytes.length + 2 + publicKey.length);
  input.set(nameBytes, 0);
  input[nameBytes.length] = 0x0a;
  input[nameBytes.length + 1] = ALGORITHM_ED25519;
  input.set(publicKey, nameBytes.length + 2);
  const digest = sha256(input);
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0, false);
}

/** Key id as 8 lowercase hex digits. */
export function formatKeyId(keyId: number): string {
  return keyId.toString(16).padStart(8, "0");
}

/** Builds a Signer from a name and 32-byte seed. Throws KeyFormatError on bad input. */
export function signerFromSeed(name: string, seed: Uint8Array): Signer {
  if (!isValidKeyName(name)) throw new KeyFormatError(`invalid key name ${JSON.stringify(name)}`);
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) {
    throw new KeyFormatError(`Ed25519 seed must be ${SEED_BYTES} bytes`);
  }
  const publicKey = ed25519.getPublicKey(seed);
  return { name, keyId: computeKeyId(name, publicKey), publicKey, seed: seed.slice() };
}

/** A fresh random Ed25519 signer (Web Crypto randomness via noble). */
export function generateSigner(name: string): Signer {
  return signerFromSeed(name, ed25519.utils.randomSecretKey());
}

/** The public half of a signer. */
export function verifierOf(signer: Verifier): Verifier {
  return { name: signer.name, keyId: signer.keyId, publicKey: signer.publicKey };
}

/** `PRIVATE+KEY+<name>+<hex id>+<base64(0x01||seed)>`: secret, store like a password. */
export function formatSignerKey(signer: Signer): string {
  return `PRIVATE+KEY+${signer.name}+${formatKeyId(signer.keyId)}+${encodeBase64(withAlgorithm(signer.seed))}`;
}

/** `<name>+<hex id>+<base64(0x01||public key)>`. */
export function verifierKeyString(signer: Verifier): string {
  return `${signer.name}+${formatKeyId(signer.keyId)}+${encodeBase64(withAlgorithm(signer.publicKey))}`;
}

/** Parses a signer key string, checking name, algorithm, length and key id. */
export function parseSignerKey(text: string): Signer {
  if (typeof text !== "string") throw new KeyFormatError("signer key must be a string");
  const parts = splitFields(text.trim(), 5);
  if (parts.length !== 5 || parts[0] !== "PRIVATE" || parts[1] !== "KEY") {
    throw new KeyFormatError("signer key must be PRIVATE+KEY+<name>+<hex id>+<base64 key>");
  }
  const [, , name, idText, keyText] = parts as [string, string, string, string, string];
  const seed = parseKeyMaterial(keyText, SEED_BYTES, "seed");
  const signer = signerFromSeed(name, seed);
  checkKeyId(idText, signer.keyId);
  return signer;
}

/** Parses a verifier key string, checking name, algorithm, length, point and key id. */
export function parseVerifierKey(text: string): Verifier {
  if (typeof text !== "string") throw new KeyFormatError("verifier key must be a string");
  const parts = splitFields(text.trim(), 3);
  if (parts.length !== 3) throw new KeyFormatError("verifier key must be <name>+<hex id>+<base64 key>");
  const [name, idText, keyText] = parts as [string, string, string];
  if (!isValidKeyName(name)) throw new KeyFormatError(`invalid key name ${JSON.stringify(name)}`);
  const publicKey = parseKeyMaterial(keyText, PUBLIC_KEY_BYTES, "public key");
  if (!ed25519.utils.isValidPublicKey(publicKey, false)) {
    throw new KeyFormatError("public key is not a valid Ed25519 point");
  }
  const keyId = computeKeyId(name, publicKey);
  checkKeyId(idText, keyId);
  return { name, keyId, publicKey };
}

/**
 * Splits at the first `count - 1` plus signs only: the last field is base64,
 * whose alphabet includes "+", while names and key ids never contain one.
 */
function splitFields(text: string, count: number): string[] {
  const parts: string[] = [];
  let rest = text;
  while (parts.length < count - 1) {
    const plus = rest.indexOf("+");
    if (plus < 0) break;
    parts.push(rest.slice(0, plus));
    rest = rest.slice(plus + 1);
  }
  parts.push(rest);
  return parts;
}

/** Decodes base64(0x01 || key) and returns the key bytes; KeyFormatError otherwise. */
function parseKeyMaterial(text: string, keyBytes: number, what: string): Uint8Array {
  const decoded = decodeBase64(text);
  if (decoded === undefined) throw new KeyFormatError(`${what} is not canonical base64`);
  if (decoded.length !== 1 + keyBytes || decoded[0] !== ALGORITHM_ED25519) {
    throw new KeyFormatError(`${what} must be 0x01 followed by ${keyBytes} bytes (Ed25519)`);
  }
  return decoded.subarray(1).slice();
}

/** The key id text must be 8 hex digits equal to the id computed from name and key. */
function checkKeyId(idText: string, computed: number): void {
  if (!/^[0-9a-fA-F]{8}$/.test(idText)) throw new KeyFormatError("key id must be 8 hex digits");
  if (Number.parseInt(idText, 16) !== computed) {
    throw new KeyFormatError(`key id ${idText} does not match the key (computed ${formatKeyId(computed)})`);
  }
}

function withAlgorithm(key: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + key.length);
  out[0] = ALGORITHM_ED25519;
  out.set(key, 1);
  return out;
}
