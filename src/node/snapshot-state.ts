/**
 * The data of a Raft snapshot of the ledger at applied index A. The ledger's
 * history is append-only and identical on every replica, so a snapshot does
 * not copy it: it names the tree (size and Merkle root at A) and the
 * receiver pulls the entries it lacks from any peer, checking them against
 * that root. What is not in the ledger is carried whole: the member book and
 * the idempotency table exactly as of A (see raft-idempotency.ts for why it
 * must be exact).
 *
 *   CBOR [1, treeSize, rootHash, membership (members.ts), [[key, record], ...]]
 *
 * Decoding checks every field (the bytes come from a peer or from disk).
 */
import { cbor, cborUint } from "../ledger/entry.ts";
import { decodeWire, WireFormatError } from "../transport/codec.ts";
import { type ConfState } from "../raft/index.ts";
import { membershipFromWire, membershipToWire, sameConfState, type Membership } from "./members.ts";
import { IDEMPOTENCY_KEYS_MAX, idempotencyRowHead, type IdempotencyRow } from "./raft-idempotency.ts";

/** What a snapshot holds besides its Raft metadata. */
export interface SnapshotState {
  /** Entries in the ledger at the snapshot's index. */
  treeSize: number;
  /** Merkle root at `treeSize`: what pulled entries must add up to. */
  rootHash: Uint8Array;
  membership: Membership;
  /** The idempotency table at the snapshot's index, in apply order. */
  idempotency: IdempotencyRow[];
}

/** Largest encoded snapshot state; a bigger one is not taken (the log is then not compacted) and never accepted. */
export const SNAPSHOT_DATA_BYTES_MAX = 48 * 1024 * 1024;
const FORMAT = 1;

/** The snapshot data for `state` (deterministic CBOR). */
export function encodeSnapshotState(state: SnapshotState): Uint8Array {
  return cbor.encode([
    FORMAT, cborUint(state.treeSize), state.rootHash, membershipToWire(state.membership),
    state.idempotency.map(({ key, record }) => [key, record]),
  ]);
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new WireFormatError(`malformed snapshot ${what}`);
}

/** Decode and check snapshot data whose Raft metadata says `confState`; throws WireFormatError. */
export function decodeSnapshotState(bytes: Uint8Array, confState: ConfState): SnapshotState {
  check(bytes.length <= SNAPSHOT_DATA_BYTES_MAX, "size");
  const raw = decodeWire(bytes);
  check(Array.isArray(raw) && raw.length === 5 && raw[0] === FORMAT, "data");
  const [, treeSize, rootHash, membershipWire, rows] = raw as unknown[];
  check(Number.isSafeInteger(treeSize) && (treeSize as number) >= 0, "tree size");
  check(rootHash instanceof Uint8Array && rootHash.length === 32, "root hash");
  const membership = membershipFromWire(membershipWire);
  check(sameConfState(membership.confState, confState), "membership (differs from the Raft metadata)");
  check(Array.isArray(rows) && rows.length <= IDEMPOTENCY_KEYS_MAX, "idempotency table");
  const keys = new Set<string>();
  let previous = { index: -1, position: -1 };
  const idempotency = rows.map((row: unknown): IdempotencyRow => {
    check(Array.isArray(row) && row.length === 2 && typeof row[0] === "string" && row[1] instanceof Uint8Array, "idempotency row");
    const parsed = { key: row[0], record: row[1] };
    const head = idempotencyRowHead(parsed);
    check(head !== undefined && !keys.has(parsed.key), "idempotency record");
    check(head.index > previous.index || (head.index === previous.index && head.position > previous.position), "idempotency order");
    keys.add(parsed.key);
    previous = head;
    return parsed;
  });
  return { treeSize: treeSize as number, rootHash, membership, idempotency };
}
