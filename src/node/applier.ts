/**
 * The apply side of a Raft node: committed Raft entries become ledger writes.
 *
 * Three steps per batch of committed entries, driven by the Ready loop:
 * `prepare` turns each entry into ledger ops (pushed onto the Ready's storage
 * batch) and publishes it (readable at once); `answer` settles the clients
 * waiting for those entries and wakes readers waiting for the index, once the
 * entries are durable in this node's Raft log; `finish` records what became
 * durable once the storage commit holding the ops ended. Publishing and
 * answering before the ledger rows are durable is safe: the entries are
 * committed (durable on a quorum, this node included), so a restart replays
 * them from the log into the same state.
 */
import { type BatchOp } from "../storage/index.ts";
import { type CommandResult, type Ledger } from "../ledger/ledger.ts";
import { decodeConfChange, type Entry } from "../raft/index.ts";
import { appliedIndexOp, membershipOp } from "./raft-log-storage.ts";
import { decodeProposal, type Proposal } from "./proposal.ts";
import { membershipAfter, type Membership } from "./members.ts";
import { type IdempotencyRecords } from "./raft-idempotency.ts";
import { prepareIdempotent } from "./idempotent-apply.ts";

/** A committed entry whose ledger writes were prepared and published, waiting for them to be durable. */
interface AppliedEntry {
  index: number;
  /** Undefined for the final marker that only advances the applied index. */
  proposal: Proposal | undefined;
  results: CommandResult[];
  /** Positions answered with the recorded result of an earlier write with the same idempotency key. */
  replayed: Set<number>;
}

/** What one `prepare` produced, to be answered and finished by the same applier. */
export interface AppliedBatch {
  entries: AppliedEntry[];
  /** The membership after the batch's conf changes; undefined when it had none. */
  membership: Membership | undefined;
  /** For each awaited membership change index: whether the entry applied there is that change. */
  confOutcomes: Map<number, boolean>;
}

/** Options of {@link Applier}. */
export interface ApplierOptions {
  ledger: Ledger;
  idempotency: IdempotencyRecords;
  /** The applied index the node opened at. */
  appliedIndex: number;
  /** The membership as of the applied index. */
  membership: () => Membership;
  /** Answer the clients of one applied proposal (proposals.ts). */
  settleProposal: (proposal: Proposal | undefined, results: readonly CommandResult[], replayed: ReadonlySet<number>) => void;
  /** Whether `entry` is a membership change someone waits for (membership-changes.ts). */
  awaitedOutcome: (entry: Entry) => boolean | undefined;
  /** Settle the awaited membership changes once applied (membership-changes.ts). */
  settleChanges: (outcomes: ReadonlyMap<number, boolean>, appliedIndex: number) => void;
  /** The membership as of the applied index changed. */
  adoptMembership: (membership: Membership) => void;
}

export class Applier {
  readonly #options: ApplierOptions;
  /** Last Raft index whose ledger writes are durable here (snapshots, compaction and status go by it). */
  #appliedIndex: number;
  /**
   * Last Raft index whose ledger writes are published (readable) here; its clients are answered. Ahead of
   * `#appliedIndex` while the storage commit holding those writes is in flight.
   */
  #publishedIndex: number;
  #publishedWaiters: Array<{ index: number; resolve: () => void }> = [];

  constructor(options: ApplierOptions) {
    this.#options = options;
    this.#appliedIndex = options.appliedIndex;
    this.#publishedIndex = options.appliedIndex;
  }

  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /**
   * Prepare and publish each committed entry in order (those at or below the applied index are skipped),
   * pushing its ledger writes, the applied index and any new membership onto `ops`.
   */
  async prepare(entries: readonly Entry[], ops: BatchOp[]): Promise<AppliedBatch> {
    const applied: AppliedEntry[] = [];
    const confOutcomes = new Map<number, boolean>();
    let membership: Membership | undefined;
    let last = this.#appliedIndex;
    for (const entry of entries) {
      if (entry.index <= last) continue;
      last = entry.index;
      const awaited = this.#options.awaitedOutcome(entry);
      if (awaited !== undefined) confOutcomes.set(entry.index, awaited);
      if (entry.type === "confChange") {
        // The core applies the same change to its tracker at advance(); the addresses ride in its context.
        membership = membershipAfter(membership ?? this.#options.membership(), decodeConfChange(entry.data));
        continue;
      }
      // No-ops change no ledger state.
      if (entry.data.length === 0) continue;
      const proposal = decodeProposal(entry.data);
      applied.push({ index: entry.index, proposal, ...await this.#applyProposal(entry.index, proposal, ops) });
    }
    if (last > this.#appliedIndex) ops.push(appliedIndexOp(last));
    if (membership !== undefined) ops.push(membershipOp(membership));
    applied.push({ index: last, proposal: undefined, results: [], replayed: new Set() });
    return { entries: applied, membership, confOutcomes };
  }

  /** Once `prepare` published a batch whose entries are durable in this node's Raft log: answer and wake. */
  answer(batch: AppliedBatch): void {
    for (const { index, proposal, results, replayed } of batch.entries) {
      this.#publishedIndex = Math.max(this.#publishedIndex, index);
      this.#options.settleProposal(proposal, results, replayed);
    }
    this.#publishedIndex = Math.max(this.#publishedIndex, this.#appliedIndex);
    if (this.#publishedWaiters.length > 0) {
      const ready = this.#publishedWaiters.filter((waiter) => waiter.index <= this.#publishedIndex);
      this.#publishedWaiters = this.#publishedWaiters.filter((waiter) => waiter.index > this.#publishedIndex);
      for (const waiter of ready) waiter.resolve();
    }
  }

  /** Once the ops of `prepare` are durable: advance the applied index, adopt membership, settle conf changes. */
  finish(batch: AppliedBatch): void {
    this.#options.idempotency.flushed();
    if (batch.membership !== undefined) this.#options.adoptMembership(batch.membership);
    for (const { index } of batch.entries) this.#appliedIndex = Math.max(this.#appliedIndex, index);
    this.#options.settleChanges(batch.confOutcomes, this.#appliedIndex);
  }

  /** A snapshot install put the ledger at `index` with `membership`: everything up to it is applied and durable. */
  installed(index: number, membership: Membership): void {
    if (index < this.#appliedIndex) throw new Error(`assertion: snapshot install at ${index} below the applied index ${this.#appliedIndex}`);
    this.#appliedIndex = index;
    const batch: AppliedBatch = { entries: [], membership, confOutcomes: new Map() };
    this.answer(batch);
    this.finish(batch);
  }

  /** Resolves true once `index` is published (readable) here, or false after `waitMs` (the caller decides what that means). */
  waitPublished(index: number, waitMs: number): Promise<boolean> {
    if (index <= this.#publishedIndex) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { index, resolve: () => { clearTimeout(timer); resolve(true); } };
      const timer = setTimeout(() => {
        this.#publishedWaiters = this.#publishedWaiters.filter((other) => other !== waiter);
        resolve(false);
      }, Math.max(0, waitMs));
      this.#publishedWaiters.push(waiter);
    });
  }

  /** Prepare and publish one proposal (idempotency keys honoured, see idempotent-apply.ts). */
  async #applyProposal(raftIndex: number, proposal: Proposal, ops: BatchOp[]): Promise<{ results: CommandResult[]; replayed: Set<number> }> {
    const { ledger, idempotency } = this.#options;
    const group = await prepareIdempotent(
      { ledger, records: idempotency, commands: proposal.commands, timestampMs: proposal.timestampMs, index: raftIndex },
      ops,
    );
    if (group.prepared !== undefined) ledger.publish(group.prepared);
    return group;
  }
}
