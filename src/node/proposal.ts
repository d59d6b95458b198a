/**
 * The data of a normal Raft entry: a group of write commands with the one
 * timestamp the leader assigned when proposing it, so every replica prepares
 * byte-identical ledger entries. Each command carries the request id of the
 * node that proposed it, so that node can answer its waiting client.
 *
 *   CBOR array [timestampMs, [[requestId, command], ...]]
 */
import { cbor, cborUint } from "../ledger/entry.ts";
import { type WriteCommand } from "../ledger/commands.ts";
import { commandFromWire, commandToWire, decodeWire } from "../transport/codec.ts";

/** One command inside a proposal. */
export interface ProposedCommand {
  requestId: string;
  command: WriteCommand;
}

/** A decoded proposal. */
export interface Proposal {
  timestampMs: number;
  commands: ProposedCommand[];
}

export function encodeProposal(proposal: Proposal): Uint8Array {
  return cbor.encode([cborUint(proposal.timestampMs), proposal.commands.map(({ requestId, command }) => [requestId, commandToWire(command)])]);
}

/** Decode an entry the log holds; a malformed one is corruption (it passed through our own encoder). */
export function decodeProposal(bytes: Uint8Array): Proposal {
  const raw = decodeWire(bytes);
  if (!Array.isArray(raw) || raw.length !== 2 || !Number.isSafeInteger(raw[0]) || !Array.isArray(raw[1])) {
    throw new Error("assertion: malformed proposal in the Raft log");
  }
  const commands = raw[1].map((item: unknown): ProposedCommand => {
    if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== "string") throw new Error("assertion: malformed proposed command");
    return { requestId: item[0], command: commandFromWire(item[1]) };
  });
  return { timestampMs: raw[0], commands };
}
