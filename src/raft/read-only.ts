/**
 * ReadIndex bookkeeping on the leader (§6.4): a read waits for a heartbeat
 * round acknowledged by a quorum, proving the leader was still the leader
 * when it recorded the commit index the read must wait for.
 */
import type { NodeId, ReadState } from './types.ts';

interface ReadRequest {
  index: number;
  context: Uint8Array;
  acks: Set<NodeId>;
}

function keyOf(context: Uint8Array): string {
  let key = '';
  for (const byte of context) key += byte.toString(16).padStart(2, '0');
  return key;
}

/** Pending ReadIndex requests, in arrival order. */
export class ReadOnly {
  #pending = new Map<string, ReadRequest>();
  #queue: string[] = [];

  /** Records a read at `index`; a duplicate context is ignored. */
  add(index: number, context: Uint8Array, self: NodeId): void {
    const key = keyOf(context);
    if (this.#pending.has(key)) return;
    this.#pending.set(key, { index, context, acks: new Set([self]) });
    this.#queue.push(key);
  }

  /** A heartbeat response carrying `context` from `from`; returns the ackers so far. */
  recvAck(from: NodeId, context: Uint8Array): Set<NodeId> | undefined {
    const request = this.#pending.get(keyOf(context));
    request?.acks.add(from);
    return request?.acks;
  }

  /**
   * The read with `context` is confirmed: it and every earlier read are ready
   * (an ack to a later heartbeat also confirms leadership for earlier reads).
   */
  advance(context: Uint8Array): ReadState[] {
    const key = keyOf(context);
    const at = this.#queue.indexOf(key);
    if (at < 0) return [];
    const done = this.#queue.splice(0, at + 1);
    return done.map((k) => {
      const request = this.#pending.get(k)!;
      this.#pending.delete(k);
      return { index: request.index, context: request.context };
    });
  }

  size(): number {
    return this.#queue.length;
  }

  /** Context of the newest pending read, to piggyback on heartbeats. */
  lastPendingContext(): Uint8Array | undefined {
    const key = this.#queue[this.#queue.length - 1];
    return key === undefined ? undefined : this.#pending.get(key)!.context;
  }

  reset(): void {
    this.#pending.clear();
    this.#queue = [];
  }
}
