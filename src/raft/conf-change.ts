/**
 * Encoding of a ConfChange inside a `confChange` log entry: 1 type byte, the
 * node id as a big-endian 32-bit integer, then the optional context bytes
 * (opaque to the core; the application puts e.g. a member's addresses there).
 * Fixed once released: a change without context is the original 5 bytes.
 * Also the one definition of what a change does to a membership, shared by
 * the core's tracker and by applications that mirror the membership.
 */
import { assert } from './errors.ts';
import type { ConfChange, ConfState } from './types.ts';

const TYPES: ConfChange['type'][] = ['addLearner', 'addVoter', 'removeNode'];
const CONF_CHANGE_HEAD_BYTES = 5;
const NODE_ID_MAX = 0xffffffff;
/** Longest context a conf change may carry. */
export const CONF_CHANGE_CONTEXT_BYTES_MAX = 4096;

/** Encodes a conf change for an entry's data. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const code = TYPES.indexOf(change.type);
  assert(code >= 0, `unknown conf change type ${String(change.type)}`);
  assert(Number.isSafeInteger(change.nodeId) && change.nodeId >= 1 && change.nodeId <= NODE_ID_MAX, `bad conf change node id ${change.nodeId}`);
  const context = change.context ?? new Uint8Array(0);
  assert(context.byteLength <= CONF_CHANGE_CONTEXT_BYTES_MAX, `conf change context of ${context.byteLength} bytes`);
  const bytes = new Uint8Array(CONF_CHANGE_HEAD_BYTES + context.byteLength);
  bytes[0] = code;
  new DataView(bytes.buffer).setUint32(1, change.nodeId);
  bytes.set(context, CONF_CHANGE_HEAD_BYTES);
  return bytes;
}

/** Decodes what encodeConfChange produced; a malformed entry is a bug (assertion). */
export function decodeConfChange(data: Uint8Array): ConfChange {
  assert(
    data.byteLength >= CONF_CHANGE_HEAD_BYTES && data.byteLength <= CONF_CHANGE_HEAD_BYTES + CONF_CHANGE_CONTEXT_BYTES_MAX,
    `conf change entry of ${data.byteLength} bytes`,
  );
  const type = TYPES[data[0]!];
  assert(type !== undefined, `unknown conf change code ${data[0]}`);
  const nodeId = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1);
  if (data.byteLength === CONF_CHANGE_HEAD_BYTES) return { type, nodeId };
  return { type, nodeId, context: data.slice(CONF_CHANGE_HEAD_BYTES) };
}

/**
 * The membership after `change`: removeNode drops the node from both sets;
 * addVoter makes it a voter (promoting a learner); addLearner adds a learner,
 * except that a voter is never demoted (a stale addLearner changes nothing).
 */
export function confStateAfter(confState: ConfState, change: ConfChange): ConfState {
  const voters = new Set(confState.voters);
  const learners = new Set(confState.learners);
  if (change.type === 'removeNode') {
    voters.delete(change.nodeId);
    learners.delete(change.nodeId);
  } else if (change.type === 'addVoter') {
    learners.delete(change.nodeId);
    voters.add(change.nodeId);
  } else if (!voters.has(change.nodeId)) {
    learners.add(change.nodeId);
  }
  const sorted = (set: Set<number>) => [...set].sort((a, b) => a - b);
  return { voters: sorted(voters), learners: sorted(learners) };
}
