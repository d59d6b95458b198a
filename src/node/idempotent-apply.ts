/**
 * Applying a group of write commands with idempotency keys, shared by the
 * single node and the Raft state machine: a command whose key is already
 * recorded (earlier, or by an earlier command of the same group) is not
 * applied again but answered with the recorded first result; the first
 * result of every keyed command is recorded in the same storage batch as the
 * ledger writes. It prepares only: the caller commits `ops` and publishes,
 * each when its durability rules allow.
 */
import { type BatchOp } from "../storage/index.ts";
import { type WriteCommand } from "../ledger/commands.ts";
import { type CommandResult, type Ledger, type Prepared } from "../ledger/ledger.ts";
import {
  BatchTooLargeError, DeleteNotAllowedError, ImmutableKeyError, InvalidKeyError, InvalidRequestError, KeyNotFoundError,
  KeyTooLongError, LedgerError, PreconditionFailedError, ValueTooLargeError,
} from "../ledger/errors.ts";
import { type ForwardReply } from "../transport/index.ts";
import { MemberNotFoundError, MembershipChangePendingError, MembershipConflictError, NodeUnavailableError } from "./index.ts";
import { type IdempotencyRecords } from "./raft-idempotency.ts";

/** One command of a group, with the client's idempotency key if it sent one. */
export interface KeyedCommand {
  command: WriteCommand;
  idempotencyKey?: string;
}

/** What a group produced: the ledger's prepared writes (none when every command was a replay), one result per command. */
export interface IdempotentGroup {
  prepared: Prepared | undefined;
  results: CommandResult[];
  /** Positions answered with the recorded result of an earlier write with the same key. */
  replayed: Set<number>;
}

/**
 * Prepare `commands` at `timestampMs`; `index` orders this group's records
 * among all others (the Raft index, or the single node's group counter).
 * Record writes and prunes are pushed onto `ops` after the ledger's.
 */
export async function prepareIdempotent(
  options: { ledger: Ledger; records: IdempotencyRecords; commands: readonly KeyedCommand[]; timestampMs: number; index: number },
  ops: BatchOp[],
): Promise<IdempotentGroup> {
  const { ledger, records, commands, timestampMs, index } = options;
  const results: Array<CommandResult | undefined> = [];
  const replayed = new Set<number>();
  const firstOf = new Map<string, number>();
  const fresh: number[] = [];
  for (const [position, { idempotencyKey: key }] of commands.entries()) {
    if (key === undefined) {
      fresh.push(position);
      continue;
    }
    replayed.add(position);
    if (firstOf.has(key)) continue;
    const prior = await records.lookup(key);
    if (prior !== undefined) {
      results[position] = resultOfReply(prior);
      continue;
    }
    replayed.delete(position);
    firstOf.set(key, position);
    fresh.push(position);
  }
  let prepared: Prepared | undefined;
  if (fresh.length > 0) {
    prepared = await ledger.prepare(fresh.map((position) => commands[position]!.command), timestampMs);
    ops.push(...prepared.ops);
    fresh.forEach((position, i) => {
      const result = prepared!.results[i]!;
      results[position] = result;
      const key = commands[position]!.idempotencyKey;
      if (key !== undefined) records.record(key, { raftIndex: index, position, timestampMs }, replyOfResult(result, index), ops);
    });
  }
  commands.forEach(({ idempotencyKey: key }, position) => {
    results[position] ??= results[firstOf.get(key!)!];
  });
  records.prune(timestampMs, ops);
  return { prepared, results: results as CommandResult[], replayed };
}

/**
 * Codes of errors a leader may send back for a forwarded write or a recorded result, and their types (so they
 * map to the same status). Built on first use: ./index.ts imports this module's users, so its classes are not
 * initialized yet when this module loads.
 */
let remoteErrorTypes: Record<string, { prototype: LedgerError }> | undefined;

/** The ledger error a code names (an unknown code: the leader could not serve, 503). */
export function remoteError(code: string, message: string): LedgerError {
  remoteErrorTypes ??= {
    invalid_key: InvalidKeyError, key_too_long: KeyTooLongError, value_too_large: ValueTooLargeError, not_found: KeyNotFoundError,
    precondition_failed: PreconditionFailedError, immutable: ImmutableKeyError, delete_not_allowed: DeleteNotAllowedError,
    invalid_request: InvalidRequestError, batch_too_large: BatchTooLargeError, membership_conflict: MembershipConflictError,
    change_pending: MembershipChangePendingError, member_not_found: MemberNotFoundError,
  };
  const type = remoteErrorTypes[code];
  if (type === undefined) return new NodeUnavailableError(`leader: ${message}`, 1);
  const error = new LedgerError(code, message);
  Object.setPrototypeOf(error, type.prototype);
  return error;
}

/** The client-facing result recorded for an idempotency key. */
export function replyOfResult(result: CommandResult, raftIndex: number): ForwardReply {
  if (result.ok) return { kind: "applied", applied: result.applied, treeSize: result.treeSize, raftIndex };
  return { kind: "refused", code: result.error.code, message: result.error.message };
}

/** The result a recorded reply stands for. */
export function resultOfReply(reply: ForwardReply): CommandResult {
  if (reply.kind === "applied") return { ok: true, applied: reply.applied, treeSize: reply.treeSize };
  if (reply.kind === "refused") return { ok: false, error: remoteError(reply.code, reply.message) };
  throw new Error("assertion: an idempotency record holds a notLeader reply");
}
