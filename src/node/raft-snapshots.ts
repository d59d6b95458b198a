/**
 * Snapshots and log compaction of a Raft node (the node calls in from its
 * Ready loop, one call at a time, never concurrently with applying):
 *
 * - creating a snapshot from live state at the applied index, at open and
 *   every `snapshotEntries` applied entries, at the end of a Ready (so the
 *   durable ledger, idempotency table and membership all stand exactly at
 *   that index), and then compacting the log up to a margin behind it;
 * - installing a snapshot from the leader: once the node has stored it (the
 *   install record), pull the ledger entries it names from peers, verified
 *   batch by batch against its Merkle root, then replace the idempotency
 *   table and membership and move the applied index to it in one commit;
 * - serving entries streams to other nodes installing a snapshot.
 *
 * It never decides anything about Raft itself: the core decides when a
 * follower needs a snapshot; this module only makes and moves the data.
 */
import { type Ledger } from "../ledger/ledger.ts";
import { type BatchOp, type Storage } from "../storage/index.ts";
import { type NodeId } from "../raft/index.ts";
import { PeerRequestError, type EntriesRequest, type HttpTransport } from "../transport/index.ts";
import { CatchUpCommitError, ENTRIES_STREAM_DEFAULTS, entriesStream, pullEntries, type EntriesStreamLimits } from "./entries-stream.ts";
import { type Membership } from "./members.ts";
import { type IdempotencyRecords } from "./raft-idempotency.ts";
import { type RaftLogStorage } from "./raft-log-storage.ts";
import { decodeSnapshotState, encodeSnapshotState, SNAPSHOT_DATA_BYTES_MAX, type SnapshotState } from "./snapshot-state.ts";
import { type SnapshotStatus } from "./index.ts";

/** Most log entries one compaction commit deletes (a long compaction is several commits). */
export const COMPACTION_DELETES_PER_COMMIT_MAX = 10_000;
/** Attempts to pull a snapshot's entries (from the peers in turn) before the node gives up and fail-stops. */
export const CATCH_UP_ATTEMPTS_MAX = 60;
/** Pause between two such attempts. */
export const CATCH_UP_RETRY_DELAY_MS = 250;
/** Most entries streams served at once; more are refused with 503 (the receiver retries). */
export const ENTRIES_STREAMS_MAX = 4;

/** Options of {@link RaftSnapshots}. */
export interface RaftSnapshotsOptions {
  nodeId: NodeId;
  ledger: Ledger;
  storage: Storage;
  log: RaftLogStorage;
  idempotency: IdempotencyRecords;
  transport: HttpTransport;
  /** Applied entries between two snapshots (each followed by a compaction). */
  snapshotEntries: number;
  /** Entries kept in the log behind the snapshot, so a follower slightly behind needs no snapshot. */
  compactionMarginEntries: number;
  streamLimits?: EntriesStreamLimits;
  /** Largest value a put may carry (bounds a stream frame). */
  valueBytesMax: number;
  /** Aborted when the node closes: an install in progress stops (a restart resumes it). */
  signal: AbortSignal;
}

/** A finished install: the applied index and membership the node now has. */
export interface InstalledSnapshot {
  index: number;
  membership: Membership;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });

/** Snapshot creation, compaction, installs and entries streams of one Raft node (see the module comment). */
export class RaftSnapshots {
  readonly #options: RaftSnapshotsOptions;
  readonly #limits: EntriesStreamLimits;
  #created = 0;
  #sent = 0;
  #installed = 0;
  #streamsServed = 0;
  #streamsServing = 0;
  #installFailures = 0;
  #lastInstallError: string | undefined;
  /** No snapshot is attempted below this applied index (after one was too large to take). */
  #nextAttemptIndex = 0;

  constructor(options: RaftSnapshotsOptions) {
    this.#options = options;
    this.#limits = options.streamLimits ?? ENTRIES_STREAM_DEFAULTS;
  }

  /**
   * Make the snapshot the core would send a snapshot of live state at
   * `appliedIndex` (= the published state; its commit may not be fsynced
   * yet, but the compaction commit after it is, and makes it so). False when its data
   * would exceed SNAPSHOT_DATA_BYTES_MAX (then nothing changes).
   */
  async create(appliedIndex: number, membership: Membership): Promise<boolean> {
    const { ledger, idempotency, log } = this.#options;
    const data = encodeSnapshotState({
      treeSize: ledger.treeSize, rootHash: ledger.rootHash, membership, idempotency: await idempotency.exportRows(),
    });
    if (data.length > SNAPSHOT_DATA_BYTES_MAX) {
      console.warn(`raft: snapshot at ${appliedIndex} would be ${data.length} bytes (> ${SNAPSHOT_DATA_BYTES_MAX}); the log is not compacted`);
      this.#nextAttemptIndex = appliedIndex + this.#options.snapshotEntries;
      return false;
    }
    log.setLocalSnapshot(appliedIndex, membership.confState, data);
    this.#created++;
    return true;
  }

  /** At the end of a Ready: snapshot and compact when `snapshotEntries` entries were applied since the last snapshot. */
  async maybeCompact(appliedIndex: number, membership: Membership): Promise<void> {
    const { log, storage } = this.#options;
    if (log.installing !== undefined || appliedIndex < this.#nextAttemptIndex) return;
    if (appliedIndex - log.snapshot().metadata.index < this.#options.snapshotEntries) return;
    if (!(await this.create(appliedIndex, membership))) return;
    const target = appliedIndex - this.#options.compactionMarginEntries;
    while (log.firstIndex() <= target) {
      const { ops, through } = log.compactionOps(target, COMPACTION_DELETES_PER_COMMIT_MAX);
      await storage.commit(ops);
      log.markCompacted(through);
    }
  }

  /** A snapshot message reached a follower (or not). */
  noteSent(delivered: boolean): void {
    if (delivered) this.#sent++;
  }

  /**
   * Finish the pending install: pull the snapshot's entries (trying
   * `sources()` in turn, at most CATCH_UP_ATTEMPTS_MAX attempts), then in
   * one commit replace the idempotency table, store the membership and move
   * the applied index to the snapshot. Undefined when the node closed first
   * (the install record stays, and a restart resumes). Throws when no
   * attempt succeeded or a commit failed: the node must fail-stop.
   */
  async finishInstall(sources: () => string[]): Promise<InstalledSnapshot | undefined> {
    const { log, storage, idempotency } = this.#options;
    const snapshot = log.installing;
    if (snapshot === undefined) throw new Error("assertion: no install pending");
    const state = decodeSnapshotState(snapshot.data, snapshot.metadata.confState);
    if (!(await this.#pullWithRetries(state, sources))) return undefined;
    const ops: BatchOp[] = [];
    idempotency.replaceOps(state.idempotency, ops);
    ops.push(...log.finishInstallOps(state.membership));
    await storage.commit(ops);
    idempotency.flushed();
    log.markInstallFinished();
    this.#installed++;
    return { index: snapshot.metadata.index, membership: state.membership };
  }

  async #pullWithRetries(state: SnapshotState, sources: () => string[]): Promise<boolean> {
    const { ledger, storage, transport, signal } = this.#options;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) return false;
      const candidates = sources();
      const address = candidates[attempt % Math.max(1, candidates.length)];
      try {
        if (address === undefined) throw new Error("no peer address is known to pull entries from");
        await pullEntries({
          open: (request, streamSignal) => transport.streamEntries(address, request, streamSignal),
          ledger, storage, target: state, limits: this.#limits, valueBytesMax: this.#options.valueBytesMax, signal,
        });
        return true;
      } catch (error) {
        if (error instanceof CatchUpCommitError) throw error;
        if (signal.aborted) return false;
        this.#installFailures++;
        this.#lastInstallError = `${address ?? "no peer"}: ${(error as Error).message}`;
        console.warn(`raft: pulling snapshot entries failed (attempt ${attempt + 1}), retrying: ${this.#lastInstallError}`);
        if (attempt + 1 >= CATCH_UP_ATTEMPTS_MAX) throw new Error(`snapshot install failed after ${attempt + 1} attempts: ${this.#lastInstallError}`);
        await sleep(CATCH_UP_RETRY_DELAY_MS, signal);
      }
    }
  }

  /** Serve entries [fromSeq, toSeq) to a node installing a snapshot. */
  serve(request: EntriesRequest): ReadableStream<Uint8Array> {
    const ledger = this.#options.ledger;
    if (request.toSeq > ledger.treeSize) throw new PeerRequestError(409, `this node holds ${ledger.treeSize} entries, not ${request.toSeq}`);
    if (this.#streamsServing >= ENTRIES_STREAMS_MAX) throw new PeerRequestError(503, `already serving ${ENTRIES_STREAMS_MAX} entries streams`);
    this.#streamsServing++;
    return entriesStream(ledger, request, this.#limits, (outcome) => {
      this.#streamsServing--;
      if (outcome === "done") this.#streamsServed++;
    });
  }

  status(): SnapshotStatus {
    const { log } = this.#options;
    const status: SnapshotStatus = {
      index: log.snapshot().metadata.index, logFirstIndex: log.firstIndex(), installing: log.installing !== undefined,
      created: this.#created, sent: this.#sent, installed: this.#installed, streamsServed: this.#streamsServed,
      installFailures: this.#installFailures,
    };
    if (this.#lastInstallError !== undefined) status.lastInstallError = this.#lastInstallError;
    return status;
  }
}
