/**
 * Node addressing for the stored Merkle tree, and the read port storage
 * adapters implement. The tree is stored as complete-subtree hashes only:
 * node (level L, index i) covers leaves [i*2^L, (i+1)*2^L) and exists once all
 * those leaves exist. Incomplete (ephemeral) nodes of the right edge are never
 * stored; they are recomputed from complete ones. Pure index arithmetic on
 * safe integers (no 32-bit bitwise operators: trees may exceed 2^31 leaves).
 */

/** Highest level that can occur: sizes are at most Number.MAX_SAFE_INTEGER < 2^53. */
export const LEVEL_MAX = 52;

/** A complete subtree: leaves [index * 2^level, (index + 1) * 2^level). */
export interface NodeId {
  level: number;
  index: number;
}

/** A node together with its hash, as produced by appends. */
export interface StoredNode extends NodeId {
  hash: Uint8Array;
}

/**
 * Batched read of complete-subtree hashes. Returns the hashes in the order of
 * `ids`. Must throw when a node is missing: a missing complete node is
 * corruption, never an "empty" answer.
 */
export interface NodeReader {
  getNodes(ids: NodeId[]): Promise<Uint8Array[]>;
}

/** Thrown for a tree size or index outside the safe-integer domain. */
export class TreeSizeError extends Error {
  override name = "TreeSizeError";
}

/** Asserts `value` is an integer in [0, Number.MAX_SAFE_INTEGER]. */
export function assertTreeSize(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TreeSizeError(`${what} must be a non-negative safe integer, got ${value}`);
  }
}

/** First leaf covered by `node`. Invariant: a multiple of 2^level. */
export function nodeBegin(node: NodeId): number {
  return node.index * 2 ** node.level;
}

/** One past the last leaf covered by `node`: nodeBegin + 2^level. */
export function nodeEnd(node: NodeId): number {
  return (node.index + 1) * 2 ** node.level;
}

/**
 * Largest power of two strictly less than `n` (RFC 9162's k).
 * Precondition: n >= 2. Invariant: k < n <= 2k.
 */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * Splits leaves [begin, end) into complete subtrees, left to right.
 * Precondition: 0 <= begin <= end. Each step takes the largest subtree that is
 * aligned at `begin` and fits before `end`, so the result has O(log) nodes and
 * the nodes strictly decrease in level after the first alignment-bound ones.
 */
export function rangeNodes(begin: number, end: number): NodeId[] {
  const nodes: NodeId[] = [];
  while (begin < end) {
    let level = 0;
    while (
      level < LEVEL_MAX &&
      begin % 2 ** (level + 1) === 0 &&
      begin + 2 ** (level + 1) <= end
    ) {
      level++;
    }
    nodes.push({ level, index: begin / 2 ** level });
    begin += 2 ** level;
  }
  return nodes;
}

/** Stable text key for a node, handy for maps in adapters and tests. */
export function nodeKey(node: NodeId): string {
  return `${node.level}/${node.index}`;
}
