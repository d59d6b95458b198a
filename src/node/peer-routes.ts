/**
 * Where a node sends to each peer: the Raft addresses of its member book,
 * plus addresses learned from the requests of senders the book does not name
 * yet (this node is joining, or catching up from a snapshot older than the
 * sender's admission). The book is authoritative for every id it names;
 * learned routes are few and bounded.
 */
import { type NodeId } from "../raft/index.ts";
import { isMemberAddress, type Membership } from "./members.ts";

/** Most Raft addresses remembered for senders the member book does not name (yet); the oldest is forgotten first. */
export const LEARNED_ROUTES_MAX = 64;

export class PeerRoutes {
  readonly #selfId: NodeId;
  /** Insertion order is age: the first key is the oldest route. */
  readonly #learned = new Map<NodeId, string>();

  constructor(selfId: NodeId) {
    this.#selfId = selfId;
  }

  /** Remember `address` for `from` when `membership` does not name it; returns whether a route changed. */
  learn(membership: Membership, from: NodeId, address: string): boolean {
    if (membership.addresses.has(from) || !isMemberAddress(address) || this.#learned.get(from) === address) return false;
    this.#learned.delete(from);
    this.#learned.set(from, address);
    for (const id of this.#learned.keys()) {
      if (this.#learned.size <= LEARNED_ROUTES_MAX) break;
      this.#learned.delete(id);
    }
    return true;
  }

  /** The book changed: forget learned routes of the ids it names or removed. */
  adopt(membership: Membership): void {
    for (const id of [...this.#learned.keys()]) if (membership.addresses.has(id) || membership.removed.has(id)) this.#learned.delete(id);
  }

  /** Raft address of every peer (self excluded): the book's, and the learned ones for ids it does not name. */
  addresses(membership: Membership): Map<NodeId, string> {
    const peers = new Map<NodeId, string>(this.#learned);
    for (const [id, { raftAddress }] of membership.addresses) peers.set(id, raftAddress);
    peers.delete(this.#selfId);
    return peers;
  }
}
