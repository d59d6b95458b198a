/**
 * Clients of the simulated cluster: each issues one operation at a time on a
 * small set of register keys — a write (proposal) or a linearizable read
 * (ReadIndex) — to the node it believes is leader, and records the history
 * for the linearizability checker. A write completes when the node it was
 * proposed to applies it; a read when that node's applied index reaches the
 * confirmed read index. A crash or timeout leaves a write's outcome unknown.
 */
import { ProposalDroppedError, type NodeId, type ReadState } from '../../src/raft/index.ts';
import type { RegisterOperation } from './linearizability.ts';
import type { Random } from './random.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the workload needs from the cluster. */
export interface WorkloadHost {
  now: number;
  /** Strictly increasing logical time for call/return events. */
  clock(): number;
  /** A live node that currently believes it is leader, if any (the one with the highest term). */
  leader(): LeaderHandle | undefined;
  /**
   * Where reads go: by default `leader()`; a host may pick any node that believes it leads, a deposed one
   * included, so a lease that outlives its leadership gets asked.
   */
  reader?(): LeaderHandle | undefined;
  trace(line: string): void;
}

/** A node that believes it is leader, as the workload drives it. */
export interface LeaderHandle {
  id: NodeId;
  incarnation: number;
  propose(data: Uint8Array): void;
  readIndex(context: Uint8Array): void;
}

interface PendingOperation {
  opId: number;
  client: number;
  kind: 'read' | 'write';
  key: string;
  value: string | null;
  node: NodeId;
  incarnation: number;
  callTime: number;
  deadline: number;
  readIndex?: number;
}

/** Ticks a client waits before giving up on an operation (outcome unknown). */
const OPERATION_TIMEOUT_TICKS = 200;

/** Encodes a write command as entry data. */
export function encodeWrite(opId: number, key: string, value: string): Uint8Array {
  return encoder.encode(`${opId}|${key}|${value}`);
}

export function decodeWrite(data: Uint8Array): { opId: number; key: string; value: string } {
  const [opId, key, value] = decoder.decode(data).split('|');
  return { opId: Number(opId), key: key!, value: value! };
}

export class Workload {
  readonly history: RegisterOperation[] = [];
  readonly #pending = new Map<number, PendingOperation>();
  readonly #busy = new Set<number>();
  #nextOpId = 1;
  completed = 0;

  constructor(readonly random: Random, readonly clients: number, readonly keys: string[], readonly opProbability: number) {}

  /** Each idle client may start an operation. */
  issue(host: WorkloadHost): void {
    for (let client = 0; client < this.clients; client++) {
      if (this.#busy.has(client) || !this.random.chance(this.opProbability)) continue;
      let leader = host.leader();
      if (!leader) continue;
      const opId = this.#nextOpId++;
      const key = this.random.pick(this.keys);
      const isWrite = this.random.chance(0.5);
      if (!isWrite && host.reader !== undefined) leader = host.reader() ?? leader;
      const value = isWrite ? `v${opId}` : null;
      try {
        if (isWrite) leader.propose(encodeWrite(opId, key, value!));
        else leader.readIndex(encoder.encode(`r${opId}`));
      } catch (error) {
        if (error instanceof ProposalDroppedError) continue;
        throw error;
      }
      const pending: PendingOperation = {
        opId, client, kind: isWrite ? 'write' : 'read', key, value, node: leader.id, incarnation: leader.incarnation,
        callTime: host.clock(), deadline: host.now + OPERATION_TIMEOUT_TICKS,
      };
      this.#pending.set(opId, pending);
      this.#busy.add(client);
      host.trace(`client ${client} ${pending.kind} ${key}${isWrite ? `=${value}` : ''} op ${opId} via ${leader.id}`);
    }
  }

  #complete(op: PendingOperation, value: string | null, returnTime: number): void {
    this.#pending.delete(op.opId);
    this.#busy.delete(op.client);
    this.history.push({ key: op.key, kind: op.kind, value, callTime: op.callTime, returnTime, label: `op ${op.opId}` });
    if (returnTime !== Infinity) this.completed++;
  }

  /** Outcome unknown: a write may or may not have happened; an unanswered read constrains nothing. */
  #abandon(op: PendingOperation): void {
    if (op.kind === 'write') this.#complete(op, op.value, Infinity);
    else {
      this.#pending.delete(op.opId);
      this.#busy.delete(op.client);
    }
  }

  onApplied(node: NodeId, incarnation: number, opId: number, host: WorkloadHost): void {
    const op = this.#pending.get(opId);
    if (op && op.kind === 'write' && op.node === node && op.incarnation === incarnation) {
      this.#complete(op, op.value, host.clock());
    }
  }

  onReadState(node: NodeId, incarnation: number, state: ReadState): void {
    const opId = Number(decoder.decode(state.context).slice(1));
    const op = this.#pending.get(opId);
    if (op && op.kind === 'read' && op.node === node && op.incarnation === incarnation) op.readIndex = state.index;
  }

  /** Serves confirmed reads whose index the node has applied. */
  serveReads(node: NodeId, incarnation: number, applied: number, read: (key: string) => string | null, host: WorkloadHost): void {
    for (const op of [...this.#pending.values()]) {
      if (op.kind !== 'read' || op.node !== node || op.incarnation !== incarnation) continue;
      if (op.readIndex !== undefined && op.readIndex <= applied) this.#complete(op, read(op.key), host.clock());
    }
  }

  onCrash(node: NodeId, incarnation: number): void {
    for (const op of [...this.#pending.values()]) {
      if (op.node === node && op.incarnation === incarnation) this.#abandon(op);
    }
  }

  expire(now: number): void {
    for (const op of [...this.#pending.values()]) if (op.deadline < now) this.#abandon(op);
  }

  finish(): void {
    for (const op of [...this.#pending.values()]) this.#abandon(op);
  }
}
