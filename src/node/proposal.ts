/**
 * The data of a normal Raft entry: a group of write commands with the one
 * timestamp the leader assigned when proposing it, so every replica prepares
 * byte-identical ledger entries. Each command carries the request id of the
 * node that proposed it, so that node can answer its waiting client, and the
 * client's idempotency key if it sent one.
 *
 *   CBOR array [timestampMs, [[requestId, command] or [requestId, command, idempotencyKey], ...]]
 */
import { cbor, cborUint } from "../ledger/entry.ts";
import { type WriteCommand } from "../ledger/commands.ts";
import { commandFromWire, commandToWire, decodeWire } from "../transport/codec.ts";

/** One command inside a proposal. */
export interface ProposedCommand {
  requestId: string;
  command: WriteCommand;
  /** Set when the client sent an `Idempotency-Key`: a retry with the same key gets the first result. */
  idempotencyKey?: string;
}

/** A decoded proposal. */
export interface Proposal {
  timestampMs: number;
  commands: ProposedCommand[];
}

export function encodeProposal(proposal: Proposal): Uint8Array {
  return cbor.encode([cborUint(proposal.timestampMs), proposal.commands.map(({ requestId, command, idempotencyKey }) =>
    idempotencyKey === undefined ? [requestId, commandToWire(command)] : [requestId, commandToWire(command), idempotencyKey])]);
}

/** Decode an entry the log holds; a malformed one is corruption (it passed through our own encoder). */
export function decodeProposal(bytes: Uint8Array): Proposal {
  const raw = decodeWire(bytes);
  if (!Array.isArray(raw) || raw.length !== 2 || !Number.isSafeInteger(raw[0]) || !Array.isArray(raw[1])) {
    throw new Error("assertion: malformed proposal in the Raft log");
  }
  const commands = raw[1].map((item: unknown): ProposedCommand => {
    if (!Array.isArray(item) || item.length < 2 || item.length > 3 || typeof item[0] !== "string" || (item.length === 3 && typeof item[2] !== "string")) {
      throw new Error("assertion: malformed proposed command");
    }
    const proposed: ProposedCommand = { requestId: item[0], command: commandFromWire(item[1]) };
    if (item.length === 3) proposed.idempotencyKey = item[2];
    return proposed;
  });
  return { timestampMs: raw[0], commands };
}
