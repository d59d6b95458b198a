/**
 * RFC 6962 / RFC 9162 Merkle tree for Scribe Ledger: hashing, the in-memory
 * append frontier, proof generation over stored complete subtrees, and proof
 * verification. Pure: no I/O beyond the injected NodeReader, no clock.
 */
export { bytesEqual, defaultHasher, EMPTY_ROOT, HASH_BYTES, type Hasher, leafHash, nobleHasher, nodeHash, slabSha256Hasher } from "./hash.ts";
export {
  assertTreeSize,
  LEVEL_MAX,
  nodeBegin,
  nodeEnd,
  type NodeId,
  nodeKey,
  type NodeReader,
  rangeNodes,
  splitPoint,
  type StoredNode,
  TreeSizeError,
} from "./node.ts";
export { foldRightToLeft, MerkleFrontier } from "./compact-range.ts";
export { type Sha256Into, wasmSha256Into } from "./sha256-wasm.ts";
export {
  consistencyProof,
  consistencyProofNodes,
  inclusionProof,
  inclusionProofNodes,
  type ProofElement,
  rootAt,
} from "./proof.ts";
export { ProofError, RootMismatchError } from "./errors.ts";
export { rootFromInclusionProof, verifyConsistency, verifyInclusion } from "./verify.ts";
