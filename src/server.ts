/**
 * Composition root: builds a serving ledger node (storage, ledger, node,
 * HTTP app) from a validated config and already-opened runtime pieces.
 * Shared by `src/main.ts` and the tests, so tests exercise the same wiring.
 */
import { type Hono } from "hono";
import { type Storage } from "./storage/index.ts";
import { ConfigError, type Config } from "./config/index.ts";
import { createApp, Metrics, type HttpLimits } from "./api/index.ts";
import { Ledger } from "./ledger/ledger.ts";
import { CheckpointIssuer } from "./ledger/checkpoints.ts";
import { LocalNode } from "./node/local-node.ts";
import { defaultHasher, type Hasher } from "./merkle/index.ts";
import { type Signer } from "./checkpoint/index.ts";
import { RaftNode } from "./node/raft-node.ts";
import { RaftLogStorage } from "./node/raft-log-storage.ts";
import { IdempotencyRecords } from "./node/raft-idempotency.ts";
import { createPeerHandler, HttpTransport, type HttpTransportOptions } from "./transport/index.ts";
import { type MemberAddresses } from "./node/members.ts";
import { SNAPSHOT_DATA_BYTES_MAX } from "./node/snapshot-state.ts";
import { type EntriesStreamLimits } from "./node/entries-stream.ts";

/** A running single node: its node, HTTP app and a way to stop it. */
export interface LedgerServer {
  node: LocalNode;
  app: Hono;
  metrics: Metrics;
  close(): Promise<void>;
}

/**
 * Least time between two background checkpoint signatures. Every publish
 * asks for one; re-signing back to back under load cost 5-10% of each
 * cluster node's CPU. A reader asking for a newer size has it signed on demand.
 */
export const CHECKPOINT_SIGN_INTERVAL_MS = 100;
const pauseBetweenSignatures = () => new Promise<void>((resolve) => setTimeout(resolve, CHECKPOINT_SIGN_INTERVAL_MS));

/** Yield to the event loop (a macrotask, so I/O gets its turn) between pages of the key filter's load. */
const pauseBetweenKeyPages = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** Open the ledger in `storage` with the edge's checkpoint pacing, and start loading its key filter in the background. */
async function openLedger(config: Config, storage: Storage, signer: Signer, hasher: Hasher | undefined): Promise<Ledger> {
  const checkpoints = new CheckpointIssuer({ signer, origin: config.ledger.origin, pause: pauseBetweenSignatures });
  const ledger = await Ledger.open({
    storage, hasher: hasher ?? defaultHasher, checkpoints, immutable: config.ledger.immutable, hotCacheBytesMax: config.ledger.hot_cache_bytes,
  });
  void ledger.loadKeyFilter(pauseBetweenKeyPages);
  return ledger;
}

/** Limits for the HTTP layer from config. */
export function httpLimits(config: Config): HttpLimits {
  const { ledger, limits } = config;
  return {
    keyBytesMax: ledger.key_bytes_max,
    valueBytesMax: ledger.value_bytes_max,
    batchOperationsMax: ledger.batch_operations_max,
    batchBytesMax: ledger.batch_bytes_max,
    contentTypeBytesMax: 256,
    bodyBytesMax: limits.body_bytes_max,
    pageSizeDefault: limits.page_size_default,
    pageSizeMax: limits.page_size_max,
    watchStreamsMax: limits.watch_streams_max,
  };
}

/** Open the ledger in `storage` and wire a single node and its HTTP app. */
export async function openLedgerServer(options: {
  config: Config;
  storage: Storage;
  signer: Signer;
  /** SHA-256 implementation; default: Bun's on Bun, @noble/hashes elsewhere. */
  hasher?: Hasher;
  now?: () => number;
  onFatal?: (error: unknown) => void;
}): Promise<LedgerServer> {
  const { config, storage } = options;
  const ledger = await openLedger(config, storage, options.signer, options.hasher);
  const address = config.node.address ?? `${config.network.listen_addr}:${config.network.client_port}`;
  const node = new LocalNode({
    nodeId: config.node.id,
    address,
    ledger,
    storage,
    idempotency: await IdempotencyRecords.open(storage),
    now: options.now ?? Date.now,
    onFatal: options.onFatal,
    limits: {
      queueCommandsMax: config.limits.write_queue_commands_max,
      queueBytesMax: config.limits.write_queue_bytes_max,
      groupCommandsMax: config.limits.group_commands_max,
      groupBytesMax: config.limits.group_bytes_max,
    },
  });
  const metrics = new Metrics();
  const app = createApp({
    node,
    limits: httpLimits(config),
    metrics,
    storageBytes: () => storage.sizeBytes(),
    queueDepth: () => node.queueDepth,
  });
  return { node, app, metrics, close: () => node.close() };
}

/** A running cluster member: its Raft node, the client HTTP app and the fetch handler of its Raft port. */
export interface ClusterServer {
  node: RaftNode;
  app: Hono;
  metrics: Metrics;
  /** Serve this on `network.raft_port`. */
  peerFetch: (request: Request) => Promise<Response>;
  close(): Promise<void>;
}

/** Timeout of one message POST to a peer. */
const PEER_REQUEST_TIMEOUT_MS = 5_000;

/** The addresses this cluster node announces: its own peers entry, else node.address / node.raft_address, else listen_addr:ports. */
export function selfAddresses(config: Config): MemberAddresses {
  const self = config.cluster?.peers?.find((peer) => String(peer.id) === config.node.id);
  const host = config.network.listen_addr;
  return {
    clientAddress: config.node.address ?? self?.client_address ?? `${host}:${config.network.client_port}`,
    raftAddress: config.node.raft_address ?? self?.raft_address ?? `${host}:${config.network.raft_port}`,
  };
}

/**
 * Open the ledger in `storage` and wire a Raft cluster member (config must have [cluster]). Call `node.start()`
 * once serving. A data dir without cluster state founds a cluster with `cluster.peers`, unless `join` is set:
 * then the node waits for a leader to add it (see `--join` in src/main.ts) and never founds one.
 */
export async function openClusterServer(options: {
  config: Config;
  storage: Storage;
  signer: Signer;
  /** Client for peer requests (default: global fetch). */
  peerFetch?: HttpTransportOptions["peerFetch"];
  hasher?: Hasher;
  now?: () => number;
  onFatal?: (error: unknown) => void;
  /** This node joins an existing cluster: never found one from cluster.peers. */
  join?: boolean;
  /** Entries stream limits (tests shrink them). */
  streamLimits?: EntriesStreamLimits;
}): Promise<ClusterServer> {
  const { config, storage } = options;
  const cluster = config.cluster;
  if (cluster === undefined) throw new Error("assertion: openClusterServer needs a [cluster] config");
  const now = options.now ?? Date.now;
  const nodeId = Number(config.node.id);
  const ledger = await openLedger(config, storage, options.signer, options.hasher);
  const founding = options.join === true || cluster.peers === undefined ? undefined
    : new Map(cluster.peers.map((peer) => [peer.id, { clientAddress: peer.client_address, raftAddress: peer.raft_address }]));
  const log = await RaftLogStorage.open(storage, { founding });
  const fresh = log.membership.confState.voters.length === 0 && log.installing === undefined && log.initialState().hardState.term === 0;
  if (fresh && options.join !== true) {
    throw new ConfigError("config: this data dir holds no cluster state: give cluster.peers to found a cluster, or --join URL to join one");
  }
  const idempotency = await IdempotencyRecords.open(storage);
  const transport = new HttpTransport({
    peers: new Map(),
    secret: cluster.secret,
    requestTimeoutMs: PEER_REQUEST_TIMEOUT_MS,
    now,
    selfAddress: selfAddresses(config).raftAddress,
    peerFetch: options.peerFetch,
  });
  const limits = httpLimits(config);
  const node = await RaftNode.open({
    nodeId,
    ledger,
    storage,
    log,
    idempotency,
    transport,
    now,
    tickMs: config.consensus.tick_ms,
    electionTicks: config.consensus.election_timeout,
    heartbeatTicks: config.consensus.heartbeat_timeout,
    leaseReads: config.consensus.read_mode === "lease",
    leaderWaitMs: cluster.leader_wait_ms,
    requestTimeoutMs: cluster.request_timeout_ms,
    commandLimits: limits,
    snapshotEntries: config.consensus.snapshot_entries,
    compactionMarginEntries: config.consensus.compaction_margin_entries,
    streamLimits: options.streamLimits,
    onFatal: options.onFatal,
    limits: {
      queueCommandsMax: config.limits.write_queue_commands_max,
      queueBytesMax: config.limits.write_queue_bytes_max,
      groupCommandsMax: config.limits.group_commands_max,
      groupBytesMax: config.limits.group_bytes_max,
    },
  });
  const metrics = new Metrics();
  const app = createApp({ node, limits, metrics, storageBytes: () => storage.sizeBytes(), queueDepth: () => node.queueDepth });
  // A snapshot message carries the idempotency table: the peer body limit always leaves room for the largest.
  const peerBodyBytesMax = Math.max(config.limits.body_bytes_max * 2, SNAPSHOT_DATA_BYTES_MAX + 1024 * 1024);
  const peerFetch = createPeerHandler({ secret: cluster.secret, handler: node, bodyBytesMax: peerBodyBytesMax });
  return { node, app, metrics, peerFetch, close: () => node.close() };
}
