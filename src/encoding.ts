/**
 * Byte encodings used on the wire: standard padded base64 (as in RFC 6962
 * test vectors and C2SP notes; strict, canonical-only decoding shared with
 * the checkpoint code) and lowercase hex.
 */
export { decodeBase64 as fromBase64, encodeBase64 as toBase64 } from "./checkpoint/base64.ts";

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}
