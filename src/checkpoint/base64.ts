/**
 * Strict standard base64 (RFC 4648 section 4, padded) over Web-standard
 * atob/btoa. Decoding accepts only the canonical encoding: right alphabet,
 * right padding, zero trailing bits, so one byte string has one text form.
 */

const BASE64_PATTERN = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type NativeBase64 = {
  toBase64?: (this: Uint8Array) => string;
};
type NativeFromBase64 = { fromBase64?: (text: string, options: { lastChunkHandling: "strict" }) => Uint8Array };
// The TC39 Uint8Array base64 methods where the runtime has them (Bun, Deno): several times faster than the
// atob/btoa round trip through a binary string, which is what Node 20 still gets.
const nativeToBase64 = (Uint8Array.prototype as NativeBase64).toBase64;
const nativeFromBase64 = (Uint8Array as unknown as NativeFromBase64).fromBase64;

/** Encodes bytes as padded standard base64. */
export function encodeBase64(bytes: Uint8Array): string {
  if (nativeToBase64 !== undefined) return nativeToBase64.call(bytes);
  let binary = "";
  const CHUNK_BYTES = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK_BYTES) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK_BYTES));
  }
  return btoa(binary);
}

/** Decodes canonical padded standard base64; undefined for anything else. */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (!BASE64_PATTERN.test(text)) return undefined;
  if (nativeFromBase64 !== undefined) {
    // "strict" refuses non-zero trailing bits; the pattern above already refused whitespace and bad padding.
    try {
      return nativeFromBase64(text, { lastChunkHandling: "strict" });
    } catch {
      return undefined;
    }
  }
  const binary = atob(text);
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  // Non-zero trailing bits decode fine but are not canonical.
  return encodeBase64(bytes) === text ? bytes : undefined;
}
