/**
 * Typed failures of Merkle proof verification. `RootMismatchError` is the one
 * security-relevant outcome (the proof does not lead to the trusted root) and
 * carries both hashes; `ProofError` means the inputs are malformed (index out
 * of range, sizes out of order, wrong proof length, wrong hash length).
 */

/** Malformed proof inputs; nothing was proven either way. */
export class ProofError extends Error {
  override name = "ProofError";
}

/** The proof is well formed but its computed root differs from the expected one. */
export class RootMismatchError extends Error {
  override name = "RootMismatchError";
  readonly expected: Uint8Array;
  readonly computed: Uint8Array;

  constructor(expected: Uint8Array, computed: Uint8Array, what = "root") {
    super(`${what} mismatch: expected ${toHex(expected)}, computed ${toHex(computed)}`);
    this.expected = expected;
    this.computed = computed;
  }
}

function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
