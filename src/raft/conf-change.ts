/**
 * Encoding of a ConfChange inside a `confChange` log entry: 1 type byte then
 * the node id as a big-endian 32-bit integer. Fixed once released.
 */
import { assert } from './errors.ts';
import type { ConfChange } from './types.ts';

const TYPES: ConfChange['type'][] = ['addLearner', 'addVoter', 'removeNode'];
const CONF_CHANGE_BYTES = 5;
const NODE_ID_MAX = 0xffffffff;

/** Encodes a conf change for an entry's data. */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const code = TYPES.indexOf(change.type);
  assert(code >= 0, `unknown conf change type ${String(change.type)}`);
  assert(Number.isSafeInteger(change.nodeId) && change.nodeId >= 1 && change.nodeId <= NODE_ID_MAX, `bad conf change node id ${change.nodeId}`);
  const bytes = new Uint8Array(CONF_CHANGE_BYTES);
  bytes[0] = code;
  new DataView(bytes.buffer).setUint32(1, change.nodeId);
  return bytes;
}

/** Decodes what encodeConfChange produced; a malformed entry is a bug (assertion). */
export function decodeConfChange(data: Uint8Array): ConfChange {
  assert(data.byteLength === CONF_CHANGE_BYTES, `conf change entry of ${data.byteLength} bytes`);
  const type = TYPES[data[0]!];
  assert(type !== undefined, `unknown conf change code ${data[0]}`);
  const nodeId = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1);
  return { type, nodeId };
}
