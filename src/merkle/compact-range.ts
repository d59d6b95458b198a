/**
 * The append side of the tree: a compact range [0, size) kept in memory as the
 * right edge ("frontier") of perfect subtrees, highest level first. Appending a
 * leaf does zero storage reads and returns every newly complete node so the
 * caller can store it in the same batch as the entry. Must never read storage
 * on append and never keep more than LEVEL_MAX + 1 hashes.
 */
import { defaultHasher, EMPTY_ROOT, HASH_BYTES, type Hasher, nodeHash } from "./hash.ts";
import {
  assertTreeSize,
  LEVEL_MAX,
  type NodeReader,
  rangeNodes,
  type StoredNode,
} from "./node.ts";

export class MerkleFrontier {
  readonly #hasher: Hasher;
  /** Perfect subtrees covering [0, size), left to right, strictly decreasing level. */
  readonly #nodes: StoredNode[];
  #size: number;

  private constructor(hasher: Hasher, size: number, nodes: StoredNode[]) {
    this.#hasher = hasher;
    this.#size = size;
    this.#nodes = nodes;
  }

  /** An empty tree. */
  static empty(hasher: Hasher = defaultHasher): MerkleFrontier {
    return new MerkleFrontier(hasher, 0, []);
  }

  /**
   * Rebuilds the frontier of a tree of `size` leaves from stored nodes with
   * one batched read of at most log2(size) + 1 nodes.
   * Precondition: `size` is a safe non-negative integer and every complete
   * node of the tree is stored (the reader throws otherwise).
   */
  static async load(size: number, reader: NodeReader, hasher: Hasher = defaultHasher): Promise<MerkleFrontier> {
    assertTreeSize(size, "size");
    const ids = rangeNodes(0, size);
    const hashes = ids.length === 0 ? [] : await reader.getNodes(ids);
    if (hashes.length !== ids.length) {
      throw new Error(`NodeReader returned ${hashes.length} hashes for ${ids.length} ids`);
    }
    const nodes = ids.map((id, i) => {
      const hash = hashes[i]!;
      if (hash.length !== HASH_BYTES) {
        throw new Error(`stored node ${id.level}/${id.index} has ${hash.length} bytes, want ${HASH_BYTES}`);
      }
      return { level: id.level, index: id.index, hash };
    });
    return new MerkleFrontier(hasher, size, nodes);
  }

  /** An independent copy: appends to it leave this frontier unchanged. */
  clone(): MerkleFrontier {
    return new MerkleFrontier(this.#hasher, this.#size, this.#nodes.map((node) => ({ ...node })));
  }

  /** Number of leaves appended so far. */
  get size(): number {
    return this.#size;
  }

  /** The frontier nodes (copies of the ids; hashes are shared, do not mutate). */
  nodes(): StoredNode[] {
    return this.#nodes.map((node) => ({ ...node }));
  }

  /**
   * Appends one leaf hash and returns every node that became complete: the
   * leaf (level 0) first, then each completed parent, bottom up.
   * Precondition: `leaf` is 32 bytes and the tree is below the size limit.
   */
  append(leaf: Uint8Array): StoredNode[] {
    const created: StoredNode[] = [];
    this.appendCollecting(leaf, 0, created);
    return created;
  }

  /**
   * {@link append} for the write path: pushes onto `created` only the
   * completed nodes of level `levelMin` and up (bottom up), so a caller that
   * stores only high nodes allocates no list per leaf.
   */
  appendCollecting(leaf: Uint8Array, levelMin: number, created: StoredNode[]): void {
    if (leaf.length !== HASH_BYTES) {
      throw new Error(`leaf hash must be ${HASH_BYTES} bytes, got ${leaf.length}`);
    }
    assertTreeSize(this.#size + 1, "size after append");
    const nodes = this.#nodes;
    let node: StoredNode = { level: 0, index: this.#size, hash: leaf };
    if (levelMin === 0) created.push(node);
    // Merge while the last frontier node is the left sibling of `node`.
    while (nodes.length > 0 && nodes[nodes.length - 1]!.level === node.level) {
      const left = nodes.pop()!;
      node = {
        level: node.level + 1,
        index: left.index / 2,
        hash: nodeHash(this.#hasher, left.hash, node.hash),
      };
      if (node.level >= levelMin) created.push(node);
    }
    nodes.push(node);
    this.#size += 1;
    if (nodes.length > LEVEL_MAX + 1) throw new Error("frontier invariant broken: too many nodes");
  }

  /** Root hash of the current tree (EMPTY_ROOT when empty). */
  root(): Uint8Array {
    return foldRightToLeft(this.#hasher, this.#nodes.map((node) => node.hash));
  }
}

/**
 * Hashes a run of adjacent complete subtrees (left to right) into the hash of
 * the subtree they form in RFC 9162, combining from the right: because levels
 * strictly decrease left to right, the rightmost pair is always the lowest
 * incomplete node. Empty input yields EMPTY_ROOT.
 */
export function foldRightToLeft(hasher: Hasher, hashes: Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return EMPTY_ROOT.slice();
  let accumulated = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) {
    accumulated = nodeHash(hasher, hashes[i]!, accumulated);
  }
  return accumulated;
}
