/**
 * The replicated membership of a Raft cluster as the node sees it at its
 * applied index: the core's conf state plus what the core does not know,
 * each member's client and Raft address, and the ids that were removed (they
 * are never admitted again, so a stale node can be told it is gone).
 *
 * Addresses travel inside the conf-change entry that adds a member (its
 * opaque context), so every replica derives the same book by applying the
 * log; the book is stored with the applied index and carried in snapshots.
 * Everything read from a peer or from disk is checked here.
 */
import { confStateAfter, type ConfChange, type ConfState, type NodeId } from "../raft/index.ts";
import { cbor, cborUint } from "../ledger/entry.ts";
import { decodeWire, WireFormatError } from "../transport/codec.ts";

/** Where a member is reached. */
export interface MemberAddresses {
  /** host:port of its HTTP API. */
  clientAddress: string;
  /** host:port (or http(s) URL) of its Raft port. */
  raftAddress: string;
}

/** The membership as of an applied index. */
export interface Membership {
  confState: ConfState;
  /** Every member's addresses (voters and learners; possibly more after a crash mid-change, never fewer). */
  addresses: Map<NodeId, MemberAddresses>;
  /** Ids removed from the cluster; refused forever after. */
  removed: Set<NodeId>;
}

/** Longest member address, in characters. */
export const MEMBER_ADDRESS_CHARS_MAX = 256;
/** Largest node id (the core encodes ids in 32 bits; config uses the same bound). */
export const MEMBER_ID_MAX = 2 ** 31;
/** Most ids a membership remembers as removed; beyond it the oldest are forgotten. */
export const REMOVED_IDS_MAX = 10_000;

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;

/** Whether `address` is `host:port` or an http(s) URL with a host and nothing after it. */
export function isMemberAddress(address: string): boolean {
  if (address.length === 0 || address.length > MEMBER_ADDRESS_CHARS_MAX) return false;
  if (/^https?:\/\//.test(address)) {
    try {
      const url = new URL(address);
      return url.hostname !== "" && (url.pathname === "/" || url.pathname === "") && url.search === "" && url.hash === "" && url.username === "";
    } catch {
      return false;
    }
  }
  const match = HOST_PORT.exec(address);
  return match !== null && Number(match[2]) >= 1 && Number(match[2]) <= 65_535;
}

/** Whether `id` can name a member. */
export function isMemberId(id: unknown): id is NodeId {
  return typeof id === "number" && Number.isSafeInteger(id) && id >= 1 && id <= MEMBER_ID_MAX;
}

/** The context of an addLearner change: CBOR [clientAddress, raftAddress]. */
export function encodeAddressContext(addresses: MemberAddresses): Uint8Array {
  return cbor.encode([addresses.clientAddress, addresses.raftAddress]);
}

/** Decode a conf change's context; the log holds only what our encoder wrote, so a bad one is a bug. */
export function decodeAddressContext(context: Uint8Array): MemberAddresses {
  const raw = decodeWire(context);
  if (!Array.isArray(raw) || raw.length !== 2 || typeof raw[0] !== "string" || typeof raw[1] !== "string" || !isMemberAddress(raw[0]) || !isMemberAddress(raw[1])) {
    throw new Error("assertion: malformed member addresses in a conf change");
  }
  return { clientAddress: raw[0], raftAddress: raw[1] };
}

/** The founding membership: every peer a voter. */
export function foundingMembership(peers: ReadonlyMap<NodeId, MemberAddresses>): Membership {
  const voters = [...peers.keys()].sort((a, b) => a - b);
  return { confState: { voters, learners: [] }, addresses: new Map(peers), removed: new Set() };
}

/** The empty membership of a node that has not joined yet. */
export function emptyMembership(): Membership {
  return { confState: { voters: [], learners: [] }, addresses: new Map(), removed: new Set() };
}

/** The membership after applying `change` (the same rule as the core, plus addresses and removals). */
export function membershipAfter(membership: Membership, change: ConfChange): Membership {
  const addresses = new Map(membership.addresses);
  const removed = new Set(membership.removed);
  if (change.type === "removeNode") {
    addresses.delete(change.nodeId);
    removed.add(change.nodeId);
    for (const id of removed) {
      if (removed.size <= REMOVED_IDS_MAX) break;
      removed.delete(id);
    }
  } else if (change.context !== undefined) {
    addresses.set(change.nodeId, decodeAddressContext(change.context));
  }
  return { confState: confStateAfter(membership.confState, change), addresses, removed };
}

/** Plain-array form: [voters, learners, [[id, clientAddress, raftAddress], ...], removed]. */
export function membershipToWire(membership: Membership): unknown[] {
  const addresses = [...membership.addresses].sort(([a], [b]) => a - b)
    .map(([id, { clientAddress, raftAddress }]) => [cborUint(id), clientAddress, raftAddress]);
  return [membership.confState.voters.map(cborUint), membership.confState.learners.map(cborUint), addresses, [...membership.removed].map(cborUint)];
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new WireFormatError(`malformed ${what}`);
}

/** Validate the plain-array form (from a peer or from disk); throws WireFormatError. */
export function membershipFromWire(raw: unknown): Membership {
  check(Array.isArray(raw) && raw.length === 4, "membership");
  const [voters, learners, addresses, removed] = raw as unknown[][];
  const ids = (value: unknown): value is NodeId[] => Array.isArray(value) && value.length <= REMOVED_IDS_MAX && value.every(isMemberId);
  check(ids(voters) && ids(learners) && ids(removed) && Array.isArray(addresses), "membership ids");
  check(learners.every((id) => !voters.includes(id)), "membership: a node both voter and learner");
  const book = new Map<NodeId, MemberAddresses>();
  for (const row of addresses) {
    check(Array.isArray(row) && row.length === 3 && isMemberId(row[0]) && typeof row[1] === "string" && typeof row[2] === "string", "member row");
    check(isMemberAddress(row[1]) && isMemberAddress(row[2]) && !book.has(row[0]), "member addresses");
    book.set(row[0], { clientAddress: row[1], raftAddress: row[2] });
  }
  const sorted = (list: NodeId[]) => [...list].sort((a, b) => a - b);
  return { confState: { voters: sorted(voters), learners: sorted(learners) }, addresses: book, removed: new Set(removed) };
}

/** Whether two conf states hold the same members in the same roles. */
export function sameConfState(a: ConfState, b: ConfState): boolean {
  const same = (x: NodeId[], y: NodeId[]) => x.length === y.length && x.every((id, i) => id === y[i]);
  return same([...a.voters].sort((p, q) => p - q), [...b.voters].sort((p, q) => p - q))
    && same([...a.learners].sort((p, q) => p - q), [...b.learners].sort((p, q) => p - q));
}
