/**
 * Request metrics: counts per (method, route, status) and a latency
 * histogram per (method, route), rendered as JSON or Prometheus text.
 * Routes are the registered patterns, never raw paths, so the number of
 * series is bounded by the route table.
 */
import { type ReplicationCounters, type SnapshotStatus } from "../node/index.ts";

/** Latency histogram bucket upper bounds in seconds. */
export const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Most distinct (method, route) series kept; later ones fold into one ("other", "other") series. */
export const ROUTE_SERIES_MAX = 200;
const OTHER_SERIES = "other";

interface Histogram {
  buckets: number[];
  count: number;
  sumSeconds: number;
}

/** One (method, route) series: its latency histogram and its request counts by status. */
interface Series {
  method: string;
  route: string;
  histogram: Histogram;
  byStatus: Map<number, number>;
}

/** Gauges supplied by the node at scrape time. */
export interface Gauges {
  treeSize: number;
  keysApprox?: number;
  storageBytes: number;
  raftTerm: number;
  raftCommitIndex: number;
  raftAppliedIndex: number;
  writeQueueDepth: number;
  healthy: boolean;
  /** Cluster nodes: snapshots and log compaction. */
  snapshot?: SnapshotStatus;
  /** Cluster nodes: Raft rounds, storage commits and peer requests. */
  replication?: ReplicationCounters;
}

export class Metrics {
  /**
   * Series by method, then route: looked up per request without building a
   * key string (a string key per request showed up in a PUT's profile).
   */
  readonly #series = new Map<string, Map<string, Series>>();
  #seriesCount = 0;
  readonly #operations = { get: 0, put: 0, delete: 0, batch: 0, errors: 0 };
  readonly startedAtMs = Date.now();

  /** Record one finished request. */
  observe(method: string, route: string, status: number, seconds: number): void {
    const series = this.#seriesOf(method, route);
    series.byStatus.set(status, (series.byStatus.get(status) ?? 0) + 1);
    const { histogram } = series;
    histogram.count++;
    histogram.sumSeconds += seconds;
    for (let i = 0; i < LATENCY_BUCKETS_SECONDS.length; i++) {
      if (seconds <= LATENCY_BUCKETS_SECONDS[i]!) {
        histogram.buckets[i]!++;
        break;
      }
    }
    if (status >= 400) this.#operations.errors++;
  }

  /**
   * The series of (method, route), made on first use. Past ROUTE_SERIES_MAX a
   * new pair folds into the one ("other", "other") series: methods come from
   * clients, so neither they nor routes may grow the table without bound.
   */
  #seriesOf(method: string, route: string): Series {
    const found = this.#series.get(method)?.get(route);
    if (found !== undefined) return found;
    if (this.#seriesCount >= ROUTE_SERIES_MAX && !(method === OTHER_SERIES && route === OTHER_SERIES)) return this.#seriesOf(OTHER_SERIES, OTHER_SERIES);
    let routes = this.#series.get(method);
    if (routes === undefined) {
      routes = new Map();
      this.#series.set(method, routes);
    }
    const series: Series = { method, route, histogram: { buckets: LATENCY_BUCKETS_SECONDS.map(() => 0), count: 0, sumSeconds: 0 }, byStatus: new Map() };
    routes.set(route, series);
    this.#seriesCount++;
    return series;
  }

  /** Every series, in the order first seen per method. */
  *#allSeries(): IterableIterator<Series> {
    for (const routes of this.#series.values()) yield* routes.values();
  }

  /** Count a data operation (for the JSON view the seed's /metrics shows). */
  count(operation: "get" | "put" | "delete" | "batch"): void {
    this.#operations[operation]++;
  }

  /** JSON view for `GET /metrics`. */
  json(gauges: Gauges): Record<string, unknown> {
    let requestsTotal = 0;
    for (const series of this.#allSeries()) requestsTotal += series.histogram.count;
    return {
      uptime_seconds: Math.round((Date.now() - this.startedAtMs) / 1000),
      requests_total: requestsTotal,
      get_requests: this.#operations.get,
      put_requests: this.#operations.put,
      delete_requests: this.#operations.delete,
      batch_requests: this.#operations.batch,
      error_responses: this.#operations.errors,
      tree_size: gauges.treeSize,
      entries: gauges.treeSize,
      storage_bytes: gauges.storageBytes,
      write_queue_depth: gauges.writeQueueDepth,
      raft: {
        term: gauges.raftTerm, commit_index: gauges.raftCommitIndex, applied_index: gauges.raftAppliedIndex,
        ...(gauges.snapshot === undefined ? {} : {
          snapshot_index: gauges.snapshot.index, log_first_index: gauges.snapshot.logFirstIndex, snapshots_created: gauges.snapshot.created,
          snapshots_sent: gauges.snapshot.sent, snapshots_installed: gauges.snapshot.installed, snapshot_install_failures: gauges.snapshot.installFailures,
        }),
        ...(gauges.replication === undefined ? {} : {
          readies: gauges.replication.readies, storage_commits: gauges.replication.storageCommits, storage_syncs: gauges.replication.storageSyncs, entries_appended: gauges.replication.entriesAppended,
          peer_requests: gauges.replication.peerRequests, peer_messages: gauges.replication.peerMessages, forwarded_writes: gauges.replication.forwardedWrites,
        }),
      },
      status: gauges.healthy ? "ok" : "unavailable",
    };
  }

  /** Prometheus text exposition format for `GET /metrics/prometheus`. */
  prometheus(gauges: Gauges): string {
    const lines: string[] = [];
    const label = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    lines.push("# HELP scribe_http_requests_total HTTP requests by method, route and status.", "# TYPE scribe_http_requests_total counter");
    for (const { method, route, byStatus } of this.#allSeries()) {
      for (const [status, value] of byStatus) {
        lines.push(`scribe_http_requests_total{method="${label(method)}",route="${label(route)}",status="${status}"} ${value}`);
      }
    }
    lines.push("# HELP scribe_http_request_duration_seconds HTTP request latency.", "# TYPE scribe_http_request_duration_seconds histogram");
    for (const { method, route, histogram } of this.#allSeries()) {
      const labels = `method="${label(method)}",route="${label(route)}"`;
      let cumulative = 0;
      LATENCY_BUCKETS_SECONDS.forEach((bound, i) => {
        cumulative += histogram.buckets[i]!;
        lines.push(`scribe_http_request_duration_seconds_bucket{${labels},le="${bound}"} ${cumulative}`);
      });
      lines.push(`scribe_http_request_duration_seconds_bucket{${labels},le="+Inf"} ${histogram.count}`);
      lines.push(`scribe_http_request_duration_seconds_sum{${labels}} ${histogram.sumSeconds}`);
      lines.push(`scribe_http_request_duration_seconds_count{${labels}} ${histogram.count}`);
    }
    const gauge = (name: string, help: string, value: number) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
    const counter = (name: string, help: string, value: number) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
    gauge("scribe_ledger_entries", "Entries in the ledger (= Merkle tree size).", gauges.treeSize);
    gauge("scribe_merkle_tree_size", "Leaves in the Merkle tree.", gauges.treeSize);
    gauge("scribe_storage_bytes", "Bytes used by the storage adapter.", gauges.storageBytes);
    gauge("scribe_write_queue_depth", "Writes waiting for a durable commit.", gauges.writeQueueDepth);
    gauge("scribe_raft_term", "Current Raft term.", gauges.raftTerm);
    gauge("scribe_raft_commit_index", "Raft commit index.", gauges.raftCommitIndex);
    gauge("scribe_raft_applied_index", "Raft applied index.", gauges.raftAppliedIndex);
    gauge("scribe_node_healthy", "1 when the node serves requests.", gauges.healthy ? 1 : 0);
    if (gauges.snapshot !== undefined) {
      const snapshot = gauges.snapshot;
      gauge("scribe_raft_snapshot_index", "Raft index of the snapshot this node would send.", snapshot.index);
      gauge("scribe_raft_log_first_index", "First Raft index still in the log (the rest is compacted).", snapshot.logFirstIndex);
      gauge("scribe_raft_snapshot_installing", "1 while a snapshot from the leader is being installed.", snapshot.installing ? 1 : 0);
      counter("scribe_raft_snapshots_created_total", "Snapshots taken of local state.", snapshot.created);
      counter("scribe_raft_snapshots_sent_total", "Snapshot messages delivered to followers.", snapshot.sent);
      counter("scribe_raft_snapshots_installed_total", "Snapshots from the leader installed here.", snapshot.installed);
      counter("scribe_raft_snapshot_install_failures_total", "Failed attempts to pull a snapshot's entries (each retried).", snapshot.installFailures);
      counter("scribe_raft_entries_streams_served_total", "Entries streams served to installing nodes.", snapshot.streamsServed);
    }
    if (gauges.replication !== undefined) {
      const replication = gauges.replication;
      counter("scribe_raft_readies_total", "Raft Ready states handled (one round each).", replication.readies);
      counter("scribe_raft_storage_commits_total", "Storage commits made by the Raft loop.", replication.storageCommits);
      counter("scribe_raft_storage_syncs_total", "Raft loop storage commits that were durable (fsync): new log entries, term or vote.", replication.storageSyncs);
      counter("scribe_raft_entries_appended_total", "Raft entries appended to this node's log.", replication.entriesAppended);
      counter("scribe_raft_peer_requests_total", "Peer requests (Raft messages and forwarded writes) sent.", replication.peerRequests);
      counter("scribe_raft_peer_messages_total", "Raft messages sent to peers.", replication.peerMessages);
      counter("scribe_raft_forwarded_writes_total", "Client writes forwarded to the leader.", replication.forwardedWrites);
    }
    gauge("scribe_uptime_seconds", "Seconds since the process started.", Math.round((Date.now() - this.startedAtMs) / 1000));
    for (const operation of ["get", "put", "delete", "batch"] as const) {
      lines.push(`# TYPE scribe_${operation}_operations_total counter`, `scribe_${operation}_operations_total ${this.#operations[operation]}`);
    }
    return lines.join("\n") + "\n";
  }
}
