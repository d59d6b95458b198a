/**
 * CBOR wire shapes between peers: Raft messages, forwarded write commands
 * and their outcomes. Everything is a fixed-order CBOR array (no maps), and
 * every decoder checks the shape field by field and throws `WireFormatError`
 * on anything else, so a malformed body is a 400 and never reaches the core.
 */
import { cbor, cborUint, decodeCbor } from "../ledger/entry.ts";
import { type WriteCommand, type WriteOperation } from "../ledger/commands.ts";
import { type AppliedOperation } from "../ledger/ledger.ts";
import { type Entry, type Message, type MessageType, type Snapshot } from "../raft/index.ts";

/** A peer sent bytes that do not decode to the expected shape. */
export class WireFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WireFormatError";
  }
}

/** Most messages in one batch POST. */
export const MESSAGES_PER_BATCH_MAX = 10_000;
/** Most forwarded writes in one peer POST (a follower sends what arrived in one event-loop turn, capped). */
export const FORWARDED_COMMANDS_MAX = 4096;
/** Most operations in one forwarded command (the leader checks its own, smaller limit too). */
const OPERATIONS_PER_COMMAND_MAX = 100_000;

const MESSAGE_TYPES: readonly MessageType[] = [
  "app", "appResp", "vote", "voteResp", "preVote", "preVoteResp", "heartbeat", "heartbeatResp", "snap", "timeoutNow",
];

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new WireFormatError(`malformed ${what}`);
}
const isUint = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;
const u = (value: number) => cborUint(value);

/** Most nesting of arrays a wire value may have (a message holds entries holding bytes: 3). */
const NESTING_MAX = 8;

/**
 * cbor-x decodes integers >= 2^32 written with the uint64 head (`cborUint`) as
 * BigInt; turn safe ones back into numbers so shape checks see one type.
 */
export function withSafeIntegers(value: unknown, depth = 0): unknown {
  if (typeof value === "bigint") return value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  if (!Array.isArray(value)) return value;
  if (depth >= NESTING_MAX) throw new WireFormatError("value nested too deeply");
  for (let i = 0; i < value.length; i++) value[i] = withSafeIntegers(value[i], depth + 1);
  return value;
}

/** Decode CBOR bytes, turning decoder failures into `WireFormatError`. */
export function decodeWire(bytes: Uint8Array): unknown {
  let raw: unknown;
  try {
    raw = decodeCbor(bytes);
  } catch (error) {
    throw new WireFormatError(`body is not CBOR: ${(error as Error).message}`);
  }
  return withSafeIntegers(raw);
}

function entryToWire(entry: Entry): unknown[] {
  return [u(entry.index), u(entry.term), entry.type === "normal" ? 0 : 1, entry.data];
}

function entryFromWire(raw: unknown): Entry {
  check(Array.isArray(raw) && raw.length === 4 && isUint(raw[0]) && isUint(raw[1]) && (raw[2] === 0 || raw[2] === 1) && isBytes(raw[3]), "entry");
  return { index: raw[0], term: raw[1], type: raw[2] === 0 ? "normal" : "confChange", data: raw[3] };
}

function snapshotToWire(snapshot: Snapshot): unknown[] {
  const { index, term, confState } = snapshot.metadata;
  return [u(index), u(term), confState.voters.map(u), confState.learners.map(u), snapshot.data];
}

function snapshotFromWire(raw: unknown): Snapshot {
  check(Array.isArray(raw) && raw.length === 5 && isUint(raw[0]) && isUint(raw[1]) && isBytes(raw[4]), "snapshot");
  check(Array.isArray(raw[2]) && raw[2].every(isUint) && Array.isArray(raw[3]) && raw[3].every(isUint), "snapshot membership");
  return { metadata: { index: raw[0], term: raw[1], confState: { voters: raw[2], learners: raw[3] } }, data: raw[4] };
}

/** What one POST to a peer's messages route carries: Raft messages, and writes forwarded to it as the leader. */
export interface PeerBatch {
  messages: Message[];
  writes: ForwardedWrite[];
}

/** Encode one POST's body: [[message, ...], [forwarded write, ...]] (see encodeForwardRequest for the writes). */
export function encodePeerBatch(messages: readonly Message[], writes: readonly ForwardedWrite[]): Uint8Array {
  return cbor.encode([messagesToWire(messages), writes.map(forwardedWriteToWire)]);
}

function messagesToWire(messages: readonly Message[]): unknown[] {
  return messages.map((m) => [
    MESSAGE_TYPES.indexOf(m.type), u(m.from), u(m.to), u(m.term), u(m.logTerm), u(m.index), m.entries.map(entryToWire),
    u(m.commit), m.reject, u(m.rejectHint), m.snapshot === undefined ? null : snapshotToWire(m.snapshot), m.context ?? null,
  ]);
}

/** Decode and validate one POST's messages and forwarded writes. */
export function decodePeerBatch(bytes: Uint8Array): PeerBatch {
  const raw = decodeWire(bytes);
  check(Array.isArray(raw) && raw.length === 2 && Array.isArray(raw[0]) && Array.isArray(raw[1]), "peer batch");
  check(raw[1].length <= FORWARDED_COMMANDS_MAX, "forwarded writes");
  return { messages: messagesFromWire(raw[0]), writes: raw[1].map(forwardedWriteFromWire) };
}

function messagesFromWire(raw: unknown[]): Message[] {
  check(raw.length <= MESSAGES_PER_BATCH_MAX, "message batch");
  return raw.map((m: unknown): Message => {
    check(Array.isArray(m) && m.length === 12, "message");
    const [type, from, to, term, logTerm, index, entries, commit, reject, rejectHint, snapshot, context] = m;
    check(Number.isInteger(type) && type >= 0 && type < MESSAGE_TYPES.length, "message type");
    check([from, to, term, logTerm, index, commit, rejectHint].every(isUint) && from > 0 && to > 0, "message numbers");
    check(Array.isArray(entries) && typeof reject === "boolean", "message fields");
    check(context === null || isBytes(context), "message context");
    const message: Message = {
      type: MESSAGE_TYPES[type]!, from, to, term, logTerm, index, entries: entries.map(entryFromWire), commit, reject, rejectHint,
    };
    if (snapshot !== null) message.snapshot = snapshotFromWire(snapshot);
    if (context !== null) message.context = context;
    return message;
  });
}

function operationToWire(operation: WriteOperation): unknown[] {
  const ifVersion = operation.ifVersion === undefined ? null : u(operation.ifVersion);
  if (operation.op === "delete") return [2, operation.key, ifVersion];
  return [1, operation.key, operation.value, operation.contentType, operation.ifAbsent === true, ifVersion];
}

function operationFromWire(raw: unknown): WriteOperation {
  check(Array.isArray(raw) && typeof raw[1] === "string", "operation");
  const ifVersion = raw[raw.length - 1];
  check(ifVersion === null || isUint(ifVersion), "operation version");
  const version = ifVersion === null ? {} : { ifVersion: ifVersion as number };
  if (raw[0] === 2 && raw.length === 3) return { op: "delete", key: raw[1], ...version };
  check(raw[0] === 1 && raw.length === 6 && isBytes(raw[2]) && typeof raw[3] === "string" && typeof raw[4] === "boolean", "put operation");
  return { op: "put", key: raw[1], value: raw[2], contentType: raw[3], ...(raw[4] ? { ifAbsent: true } : {}), ...version };
}

/** Plain-array form of a command, for embedding in proposals and forward requests. */
export function commandToWire(command: WriteCommand): unknown[] {
  return command.operations.map(operationToWire);
}

/** Validate the plain-array form of a command. */
export function commandFromWire(raw: unknown): WriteCommand {
  check(Array.isArray(raw) && raw.length <= OPERATIONS_PER_COMMAND_MAX, "command");
  return { operations: raw.map(operationFromWire) };
}

function appliedToWire(op: AppliedOperation): unknown[] {
  return [op.op === "put" ? 1 : 2, op.key, u(op.seq), u(op.version), op.leafHash, op.created];
}

function appliedFromWire(raw: unknown): AppliedOperation {
  check(Array.isArray(raw) && raw.length === 6 && (raw[0] === 1 || raw[0] === 2) && typeof raw[1] === "string", "applied operation");
  check(isUint(raw[2]) && isUint(raw[3]) && isBytes(raw[4]) && typeof raw[5] === "boolean", "applied operation fields");
  return { op: raw[0] === 1 ? "put" : "delete", key: raw[1], seq: raw[2], version: raw[3], leafHash: raw[4], created: raw[5] };
}

/** The first result of a write sent with an idempotency key, as its record keeps it. */
export type ForwardReply =
  | { kind: "applied"; applied: AppliedOperation[]; treeSize: number; raftIndex: number; replayed?: boolean }
  | { kind: "refused"; code: string; message: string }
  | { kind: "notLeader"; leaderId: number };

/** Plain-array form of a recorded reply (how idempotency records keep a first result). */
export function forwardReplyToWire(reply: ForwardReply): unknown[] {
  if (reply.kind === "applied") {
    const wire = [0, reply.applied.map(appliedToWire), u(reply.treeSize), u(reply.raftIndex)];
    return reply.replayed === true ? [...wire, true] : wire;
  }
  if (reply.kind === "refused") return [1, reply.code, reply.message];
  return [2, u(reply.leaderId)];
}

export function forwardReplyFromWire(raw: unknown): ForwardReply {
  check(Array.isArray(raw), "forward reply");
  if (raw[0] === 0 && (raw.length === 4 || (raw.length === 5 && raw[4] === true)) && Array.isArray(raw[1]) && isUint(raw[2]) && isUint(raw[3])) {
    const reply: ForwardReply = { kind: "applied", applied: raw[1].map(appliedFromWire), treeSize: raw[2], raftIndex: raw[3] };
    return raw.length === 5 ? { ...reply, replayed: true } : reply;
  }
  if (raw[0] === 1 && raw.length === 3 && typeof raw[1] === "string" && typeof raw[2] === "string") {
    return { kind: "refused", code: raw[1], message: raw[2] };
  }
  check(raw[0] === 2 && raw.length === 2 && isUint(raw[1]), "forward reply");
  return { kind: "notLeader", leaderId: raw[1] };
}

/** Longest request id a forwarded write may carry (the forwarding node's boot id and a counter). */
export const REQUEST_ID_CHARS_MAX = 64;

/**
 * One write a follower forwards: the request id it waits under (the leader puts it in the entry, so the
 * follower answers its client when it applies that entry itself) and the client's idempotency key if it sent one.
 */
export interface ForwardedWrite {
  requestId: string;
  command: WriteCommand;
  idempotencyKey?: string;
}

/**
 * The leader's answer to one forwarded write, given as soon as it was proposed (or not): the outcome
 * itself reaches the follower through the log.
 */
export type ForwardAck =
  | { kind: "proposed" }
  | { kind: "refused"; code: string; message: string }
  | { kind: "notLeader"; leaderId: number };

/** A forwarded write on the wire: [requestId, command, idempotency key or null]; the key's format is checked by the node. */
function forwardedWriteToWire(write: ForwardedWrite): unknown[] {
  return [write.requestId, commandToWire(write.command), write.idempotencyKey ?? null];
}

function forwardedWriteFromWire(item: unknown): ForwardedWrite {
  check(Array.isArray(item) && item.length === 3 && (item[2] === null || typeof item[2] === "string"), "forwarded write");
  check(typeof item[0] === "string" && item[0].length >= 1 && item[0].length <= REQUEST_ID_CHARS_MAX, "forwarded request id");
  const command = commandFromWire(item[1]);
  return item[2] === null ? { requestId: item[0], command } : { requestId: item[0], command, idempotencyKey: item[2] as string };
}

function forwardAckToWire(ack: ForwardAck): unknown[] {
  if (ack.kind === "proposed") return [0];
  if (ack.kind === "refused") return [1, ack.code, ack.message];
  return [2, u(ack.leaderId)];
}

function forwardAckFromWire(raw: unknown): ForwardAck {
  check(Array.isArray(raw), "forward ack");
  if (raw[0] === 0 && raw.length === 1) return { kind: "proposed" };
  if (raw[0] === 1 && raw.length === 3 && typeof raw[1] === "string" && typeof raw[2] === "string") return { kind: "refused", code: raw[1], message: raw[2] };
  check(raw[0] === 2 && raw.length === 2 && isUint(raw[1]), "forward ack");
  return { kind: "notLeader", leaderId: raw[1] };
}

/** What a peer answers to a messages POST: its acks of the forwarded writes, and its Raft replies to the sender. */
export interface PeerReply {
  /** One per forwarded write of the POST, in order. */
  acks: ForwardAck[];
  /** Raft messages for the sender, from the receiver's first Ready after it stepped the POST's messages. */
  messages: Message[];
}

/** Encode a peer's answer to a messages POST: [[ack, ...], [message, ...]]. */
export function encodePeerReply(reply: { acks: readonly ForwardAck[]; messages: readonly Message[] }): Uint8Array {
  return cbor.encode([reply.acks.map(forwardAckToWire), messagesToWire(reply.messages)]);
}

/** Decode and validate a peer's answer to a POST that forwarded `ackCount` writes. */
export function decodePeerReply(bytes: Uint8Array, ackCount: number): PeerReply {
  const raw = decodeWire(bytes);
  check(Array.isArray(raw) && raw.length === 2 && Array.isArray(raw[0]) && Array.isArray(raw[1]), "peer reply");
  check(raw[0].length === ackCount, "forward acks");
  return { acks: raw[0].map(forwardAckFromWire), messages: messagesFromWire(raw[1]) };
}

/** The leader's answer to a read-index request: the index to wait for, or who leads. */
export type ReadIndexReply = { kind: "index"; index: number } | { kind: "notLeader"; leaderId: number };

export function encodeReadIndexReply(reply: ReadIndexReply): Uint8Array {
  return cbor.encode(reply.kind === "index" ? [0, u(reply.index)] : [2, u(reply.leaderId)]);
}

export function decodeReadIndexReply(bytes: Uint8Array): ReadIndexReply {
  const raw = decodeWire(bytes);
  check(Array.isArray(raw) && raw.length === 2 && (raw[0] === 0 || raw[0] === 2) && isUint(raw[1]), "read-index reply");
  return raw[0] === 0 ? { kind: "index", index: raw[1] } : { kind: "notLeader", leaderId: raw[1] };
}

/** A membership change a follower forwards to the leader. */
export type MembershipRequest =
  | { kind: "add"; id: number; clientAddress: string; raftAddress: string }
  | { kind: "remove"; id: number };

/** A member as a membership reply lists it. */
export interface MemberInfo {
  id: number;
  clientAddress: string;
  raftAddress: string;
  role: "voter" | "learner";
}

/** The leader's answer to a membership change: applied (or already so), refused, or not the leader. */
export type MembershipReply =
  | { kind: "done"; changed: boolean; members: MemberInfo[] }
  | { kind: "refused"; code: string; message: string }
  | { kind: "notLeader"; leaderId: number };

/** Longest address or message string in a membership body. */
const MEMBERSHIP_TEXT_CHARS_MAX = 1024;
/** Most members a membership reply lists. */
const MEMBERS_MAX = 1024;
const isText = (value: unknown): value is string => typeof value === "string" && value.length <= MEMBERSHIP_TEXT_CHARS_MAX;

/** A follower's forwarded membership change: [1, id, clientAddress, raftAddress] or [2, id]. */
export function encodeMembershipRequest(request: MembershipRequest): Uint8Array {
  return cbor.encode(request.kind === "add" ? [1, u(request.id), request.clientAddress, request.raftAddress] : [2, u(request.id)]);
}

/** Decode a forwarded membership change; the node checks ids and addresses further. */
export function decodeMembershipRequest(bytes: Uint8Array): MembershipRequest {
  const raw = decodeWire(bytes);
  check(Array.isArray(raw) && isUint(raw[1]) && raw[1] > 0, "membership request");
  if (raw[0] === 1 && raw.length === 4 && isText(raw[2]) && isText(raw[3])) return { kind: "add", id: raw[1], clientAddress: raw[2], raftAddress: raw[3] };
  check(raw[0] === 2 && raw.length === 2, "membership request");
  return { kind: "remove", id: raw[1] };
}

/** The leader's answer: [0, changed, [[id, client, raft, 1 voter | 2 learner], ...]], [1, code, message] or [2, leaderId]. */
export function encodeMembershipReply(reply: MembershipReply): Uint8Array {
  if (reply.kind === "done") {
    return cbor.encode([0, reply.changed, reply.members.map((m) => [u(m.id), m.clientAddress, m.raftAddress, m.role === "voter" ? 1 : 2])]);
  }
  if (reply.kind === "refused") return cbor.encode([1, reply.code, reply.message]);
  return cbor.encode([2, u(reply.leaderId)]);
}

/** Decode and check a membership reply from the leader. */
export function decodeMembershipReply(bytes: Uint8Array): MembershipReply {
  const raw = decodeWire(bytes);
  check(Array.isArray(raw), "membership reply");
  if (raw[0] === 0 && raw.length === 3 && typeof raw[1] === "boolean" && Array.isArray(raw[2]) && raw[2].length <= MEMBERS_MAX) {
    const members = raw[2].map((m: unknown): MemberInfo => {
      check(Array.isArray(m) && m.length === 4 && isUint(m[0]) && isText(m[1]) && isText(m[2]) && (m[3] === 1 || m[3] === 2), "member");
      return { id: m[0], clientAddress: m[1], raftAddress: m[2], role: m[3] === 1 ? "voter" : "learner" };
    });
    return { kind: "done", changed: raw[1], members };
  }
  if (raw[0] === 1 && raw.length === 3 && isText(raw[1]) && isText(raw[2])) return { kind: "refused", code: raw[1], message: raw[2] };
  check(raw[0] === 2 && raw.length === 2 && isUint(raw[1]), "membership reply");
  return { kind: "notLeader", leaderId: raw[1] };
}

/** A request for ledger entries [fromSeq, toSeq) as a stream (a snapshot install's catch-up). */
export interface EntriesRequest {
  fromSeq: number;
  toSeq: number;
}

/** An entries stream request: [fromSeq, toSeq]. */
export function encodeEntriesRequest(request: EntriesRequest): Uint8Array {
  return cbor.encode([u(request.fromSeq), u(request.toSeq)]);
}

/** Decode and check an entries stream request (fromSeq <= toSeq). */
export function decodeEntriesRequest(bytes: Uint8Array): EntriesRequest {
  const raw = decodeWire(bytes);
  check(Array.isArray(raw) && raw.length === 2 && isUint(raw[0]) && isUint(raw[1]) && raw[0] <= raw[1], "entries request");
  return { fromSeq: raw[0], toSeq: raw[1] };
}
