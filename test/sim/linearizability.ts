/**
 * Linearizability checker for per-key registers (Wing & Gong's search with
 * Lowe's memoization, as in Porcupine). Histories are split per key (a
 * register history is linearizable iff each key's is). An operation whose
 * outcome is unknown (crash, timeout) has `returnTime: Infinity`: it may take
 * effect at any point after its call, or never (linearizing it after every
 * other operation is the same as never).
 *
 * Exported for reuse by cluster end-to-end tests.
 */

/** One client operation on a register. `value` is what a write wrote or a read returned (null = never written). */
export interface RegisterOperation {
  key: string;
  kind: 'read' | 'write';
  value: string | null;
  /** Logical time of the invocation. */
  callTime: number;
  /** Logical time of the response, or Infinity when the outcome is unknown. */
  returnTime: number;
  /** Free-form label for reports. */
  label?: string;
}

/** Result of a check: ok, or the key whose history admits no linearization. */
export type LinearizabilityResult = { ok: true } | { ok: false; key: string; operations: RegisterOperation[] };

/** Bound on the search per key, so a pathological history fails loudly instead of hanging. */
export const SEARCH_STEPS_MAX = 5_000_000;

interface Event {
  op: number;
  isCall: boolean;
  time: number;
  prev: Event | undefined;
  next: Event | undefined;
  match: Event | undefined;
}

function buildEventList(ops: RegisterOperation[]): Event {
  const events: Event[] = [];
  ops.forEach((op, i) => {
    const call: Event = { op: i, isCall: true, time: op.callTime, prev: undefined, next: undefined, match: undefined };
    const ret: Event = { op: i, isCall: false, time: op.returnTime, prev: undefined, next: undefined, match: undefined };
    call.match = ret;
    events.push(call, ret);
  });
  // At equal times calls come after returns: an operation returning at t precedes one called at t.
  events.sort((a, b) => a.time - b.time || Number(a.isCall) - Number(b.isCall) || a.op - b.op);
  const head: Event = { op: -1, isCall: false, time: -Infinity, prev: undefined, next: undefined, match: undefined };
  let tail = head;
  for (const event of events) {
    tail.next = event;
    event.prev = tail;
    tail = event;
  }
  return head;
}

function lift(call: Event): void {
  call.prev!.next = call.next;
  if (call.next) call.next.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

function unlift(call: Event): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  if (call.next) call.next.prev = call;
}

/** Checks one key's history; `ops` must all have the same key. */
export function checkRegister(ops: RegisterOperation[]): boolean {
  for (const op of ops) {
    if (!(op.callTime <= op.returnTime)) throw new Error(`operation returns before its call: ${JSON.stringify(op)}`);
  }
  const head = buildEventList(ops);
  const linearized = new Uint8Array(ops.length);
  const cache = new Set<string>();
  const stack: Array<{ call: Event; state: string | null }> = [];
  let state: string | null = null;
  let entry = head.next;
  for (let steps = 0; head.next !== undefined; steps++) {
    if (steps > SEARCH_STEPS_MAX) throw new Error(`linearizability search exceeded ${SEARCH_STEPS_MAX} steps`);
    if (entry === undefined) return false;
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const legal = op.kind === 'write' || op.value === state;
      const nextState: string | null = op.kind === 'write' ? op.value : state;
      if (legal) {
        linearized[entry.op] = 1;
        const key = `${String(nextState)}|${linearized.join('')}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ call: entry, state });
          state = nextState;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.op] = 0;
      }
      entry = entry.next;
    } else {
      // A return whose call is still unlinearized: backtrack.
      const top = stack.pop();
      if (!top) return false;
      state = top.state;
      linearized[top.call.op] = 0;
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return true;
}

/** Checks a multi-key history, key by key. */
export function checkLinearizable(history: RegisterOperation[]): LinearizabilityResult {
  const byKey = new Map<string, RegisterOperation[]>();
  for (const op of history) {
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  for (const [key, operations] of [...byKey].sort(([a], [b]) => a.localeCompare(b))) {
    if (!checkRegister(operations)) return { ok: false, key, operations };
  }
  return { ok: true };
}
