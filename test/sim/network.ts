/**
 * Simulated network: every message gets a random delay (so messages reorder),
 * may be dropped or duplicated, and directed links can be cut to build
 * symmetric or asymmetric partitions. Time is the simulation's tick counter.
 */
import type { Message, NodeId } from '../../src/raft/index.ts';
import type { Random } from './random.ts';

/** Fault rates of one run; chosen per seed. */
export interface NetworkFaults {
  dropProbability: number;
  duplicateProbability: number;
  delayTicksMax: number;
}

export interface InFlight {
  message: Message;
  deliverAt: number;
  /** Sender incarnation, so snapshot reports go only to the process that sent it. */
  senderIncarnation: number;
}

/** Most messages queued at once; beyond it the network drops (a bound, as real buffers have). */
const IN_FLIGHT_MAX = 20_000;

export class SimNetwork {
  #inFlight: InFlight[] = [];
  #cut = new Set<string>();
  faults: NetworkFaults;
  reliable = false;

  constructor(readonly random: Random, faults: NetworkFaults) {
    this.faults = faults;
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.#cut.add(`${from}>${to}`);
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.#cut.has(`${from}>${to}`);
  }

  heal(): void {
    this.#cut.clear();
  }

  cutDescription(): string {
    return [...this.#cut].sort().join(' ');
  }

  /** Queues a message; returns false when it was dropped on the way out. */
  send(message: Message, now: number, senderIncarnation: number): boolean {
    const faults = this.reliable ? { dropProbability: 0, duplicateProbability: 0, delayTicksMax: 1 } : this.faults;
    if (this.#inFlight.length >= IN_FLIGHT_MAX || this.random.chance(faults.dropProbability)) return false;
    const copies = this.random.chance(faults.duplicateProbability) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.#inFlight.push({ message, deliverAt: now + this.random.int(0, faults.delayTicksMax), senderIncarnation });
    }
    return true;
  }

  /** Messages due by `now`, in random order; messages on cut links are lost. */
  takeDue(now: number): { deliver: InFlight[]; lost: InFlight[] } {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const item of this.#inFlight) (item.deliverAt <= now ? due : later).push(item);
    this.#inFlight = later;
    const deliver: InFlight[] = [];
    const lost: InFlight[] = [];
    for (const item of this.random.shuffle(due)) {
      (this.isCut(item.message.from, item.message.to) ? lost : deliver).push(item);
    }
    return { deliver, lost };
  }

  pending(): number {
    return this.#inFlight.length;
  }
}
