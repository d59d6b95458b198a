/**
 * Proof verification exactly per RFC 9162 2.1.3.2 (inclusion) and 2.1.4.2
 * (consistency), the client side of the ledger's promises. Every input is
 * treated as hostile: shapes are checked before any hashing. Must never accept
 * a proof of the wrong length or report a mismatch as malformed (or the
 * reverse): malformed is `ProofError`, wrong root is `RootMismatchError`.
 */
import { bytesEqual, HASH_BYTES, type Hasher, nodeHash } from "./hash.ts";
import { ProofError, RootMismatchError } from "./errors.ts";
import { assertTreeSize } from "./node.ts";
import { consistencyProofNodes, inclusionProofNodes } from "./proof.ts";

export { ProofError, RootMismatchError };

/** Checks that `hash` is a 32-byte array; ProofError otherwise. */
function assertHash(hash: unknown, what: string): asserts hash is Uint8Array {
  if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) {
    throw new ProofError(`${what} must be a ${HASH_BYTES}-byte hash`);
  }
}

/** Checks sizes are safe integers, mapping the failure to ProofError. */
function assertSize(value: number, what: string): void {
  try {
    assertTreeSize(value, what);
  } catch (error) {
    throw new ProofError((error as Error).message);
  }
}

/** Checks the proof is an array of 32-byte hashes of exactly `expected` elements. */
function assertProofShape(proof: readonly Uint8Array[], expected: number): void {
  if (!Array.isArray(proof)) throw new ProofError("proof must be an array");
  if (proof.length !== expected) {
    throw new ProofError(`proof has ${proof.length} elements, expected ${expected}`);
  }
  proof.forEach((hash, i) => assertHash(hash, `proof[${i}]`));
}

/** Right-shifts (halves) a safe integer; `>>` would truncate to 32 bits. */
function half(value: number): number {
  return Math.floor(value / 2);
}

/** True when the lowest bit is set. */
function isOdd(value: number): boolean {
  return value % 2 === 1;
}

/**
 * Root implied by an inclusion proof (RFC 9162 2.1.3.2 steps 1-4).
 * Preconditions (ProofError): 0 <= index < size; leafHash and every proof
 * element are 32 bytes; proof length equals the PATH length for (index, size).
 */
export function rootFromInclusionProof(
  hasher: Hasher,
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  assertSize(index, "index");
  assertSize(size, "size");
  if (index >= size) throw new ProofError(`index ${index} is not below tree size ${size}`);
  assertHash(leafHash, "leaf hash");
  assertProofShape(proof, inclusionProofNodes(index, size).length);
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw new ProofError("proof is longer than the path to the root");
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(hasher, p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(hasher, r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofError("proof is shorter than the path to the root");
  return r;
}

/**
 * Verifies that `leafHash` is leaf `index` of the tree of `size` leaves whose
 * root is `root`. Throws ProofError for malformed input, RootMismatchError
 * (expected = root, computed = the proof's root) when the proof is wrong.
 */
export function verifyInclusion(
  hasher: Hasher,
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  if (!(root instanceof Uint8Array)) throw new ProofError("root must be bytes");
  const computed = rootFromInclusionProof(hasher, index, size, leafHash, proof);
  if (!bytesEqual(computed, root)) throw new RootMismatchError(root, computed);
}

/**
 * Verifies that the tree of `m` leaves with root `root1` is a prefix of the
 * tree of `n` leaves with root `root2` (RFC 9162 2.1.4.2).
 * Preconditions (ProofError): 0 < m <= n (a consistency proof from the empty
 * tree proves nothing and is refused); proof length equals PROOF(m, D[n])'s
 * (empty when m == n); every proof element is 32 bytes. Roots are compared
 * byte for byte. A wrong root throws RootMismatchError naming which one.
 */
export function verifyConsistency(
  hasher: Hasher,
  m: number,
  n: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  assertSize(m, "m");
  assertSize(n, "n");
  if (!(root1 instanceof Uint8Array) || !(root2 instanceof Uint8Array)) {
    throw new ProofError("roots must be bytes");
  }
  if (m > n) throw new ProofError(`old size ${m} is larger than new size ${n}`);
  if (m === 0) throw new ProofError("consistency from the empty tree is undefined (m = 0)");
  assertProofShape(proof, consistencyProofNodes(m, n).length);
  if (m === n) {
    if (!bytesEqual(root1, root2)) throw new RootMismatchError(root1, root2, "equal-size roots");
    return;
  }
  assertHash(root1, "old root");
  assertHash(root2, "new root");
  const { first, second } = rootsFromConsistencyProof(hasher, m, n, root1, proof);
  if (!bytesEqual(first, root1)) throw new RootMismatchError(root1, first, "old root");
  if (!bytesEqual(second, root2)) throw new RootMismatchError(root2, second, "new root");
}

/**
 * RFC 9162 2.1.4.2 steps 2-6: the (old, new) roots implied by the proof.
 * Precondition: 0 < m < n and the proof shape was checked.
 */
function rootsFromConsistencyProof(
  hasher: Hasher,
  m: number,
  n: number,
  root1: Uint8Array,
  proof: readonly Uint8Array[],
): { first: Uint8Array; second: Uint8Array } {
  // When m is a power of two the old root is itself a node of the new tree
  // and is not sent: the verifier already knows it.
  const path = isPowerOfTwo(m) ? [root1, ...proof] : [...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofError("proof is longer than the path to the root");
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(hasher, c, fr);
      sr = nodeHash(hasher, c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(hasher, sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw new ProofError("proof is shorter than the path to the root");
  return { first: fr, second: sr };
}

/** True for 1, 2, 4, ...; safe for values up to 2^53. */
function isPowerOfTwo(value: number): boolean {
  if (value < 1) return false;
  while (value % 2 === 0) value /= 2;
  return value === 1;
}
