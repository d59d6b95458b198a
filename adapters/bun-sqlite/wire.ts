/**
 * How a group of batches travels to the SQLite writer worker: every op packed
 * into one ArrayBuffer that is transferred, not cloned. Structured-cloning an
 * array of thousands of small Uint8Arrays (each a view that drags its whole
 * backing buffer along) cost more than the SQLite inserts themselves.
 *
 * Layout, op after op: kind (1 byte: 0 put, 1 delete), key length (u32 BE),
 * key, and for a put the value length (u32 BE) and the value.
 */
import { type BatchOp } from "../../src/storage/index.ts";

const PUT = 0;
const DELETE = 1;

/** The ops of `batches`, in order, packed into one transferable buffer. */
export function packOps(batches: readonly (readonly BatchOp[])[]): ArrayBuffer {
  let bytes = 0;
  for (const batch of batches) for (const op of batch) bytes += 5 + op.key.length + (op.type === "put" ? 4 + op.value.length : 0);
  const buffer = new ArrayBuffer(bytes);
  const out = new Uint8Array(buffer);
  const view = new DataView(buffer);
  let at = 0;
  for (const batch of batches) {
    for (const op of batch) {
      out[at] = op.type === "put" ? PUT : DELETE;
      view.setUint32(at + 1, op.key.length);
      out.set(op.key, at + 5);
      at += 5 + op.key.length;
      if (op.type === "put") {
        view.setUint32(at, op.value.length);
        out.set(op.value, at + 4);
        at += 4 + op.value.length;
      }
    }
  }
  return buffer;
}

/** Call `put` / `remove` for each op packed in `buffer` (views into it; valid during the call only). */
export function forEachPackedOp(buffer: ArrayBuffer, put: (key: Uint8Array, value: Uint8Array) => void, remove: (key: Uint8Array) => void): void {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  let at = 0;
  while (at < bytes.length) {
    const kind = bytes[at]!;
    const keyLength = view.getUint32(at + 1);
    const key = bytes.subarray(at + 5, at + 5 + keyLength);
    at += 5 + keyLength;
    if (kind === PUT) {
      const valueLength = view.getUint32(at);
      put(key, bytes.subarray(at + 4, at + 4 + valueLength));
      at += 4 + valueLength;
    } else if (kind === DELETE) {
      remove(key);
    } else {
      throw new Error(`assertion: unknown packed op kind ${kind}`);
    }
  }
}
