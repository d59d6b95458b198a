/**
 * Configuration: defaults, a TOML file, `SCRIBE_<SECTION>_<KEY>` environment
 * variables and command-line flags, merged in that order (later wins) and
 * validated as a whole with valibot. A bad value stops start-up with a
 * message naming the key. Pure: the caller reads the file and the env.
 */
import { parse as parseToml } from "smol-toml";
import * as v from "valibot";
import { isMemberAddress } from "../node/members.ts";

const port = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(65535));
const positive = v.pipe(v.number(), v.integer(), v.minValue(1));
/** A member address as the membership book stores it: host:port with a port in 1..65535, or an http(s) URL. */
const memberAddress = v.pipe(v.string(), v.check(isMemberAddress, "must be host:port (port 1-65535) or an http(s) URL"));
const id = v.pipe(v.union([v.string(), v.number()]), v.transform(String), v.regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 of A-Z a-z 0-9 _ . -"));

const ConfigSchema = v.strictObject({
  node: v.strictObject({
    id,
    /** Address clients and peers use to reach this node's HTTP API (host:port). */
    address: v.optional(v.string()),
    /** Address peers use to reach this node's Raft port (host:port or URL); default listen_addr:raft_port. */
    raft_address: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
    data_dir: v.pipe(v.string(), v.minLength(1)),
  }),
  network: v.strictObject({
    listen_addr: v.pipe(v.string(), v.minLength(1)),
    client_port: port,
    raft_port: v.optional(port),
    raft_tcp_port: v.optional(port),
  }),
  storage: v.strictObject({
    adapter: v.picklist(["auto", "memory", "sqlite", "fs", "denokv"]),
    segment_size: v.optional(positive),
    /** sqlite adapter write path: auto (inline on a single node, worker in a cluster), inline or worker. */
    sqlite_writer: v.optional(v.picklist(["auto", "inline", "worker"])),
    max_cache_size: v.optional(positive),
    s3_bucket: v.optional(v.string()),
    s3_region: v.optional(v.string()),
    s3_endpoint: v.optional(v.string()),
  }),
  consensus: v.strictObject({
    /** Election timeout in ticks (randomized in [n, 2n) by the core). */
    election_timeout: positive,
    /** Leader heartbeat interval in ticks; must be below election_timeout. */
    heartbeat_timeout: positive,
    max_log_entries: positive,
    /** Length of one Raft tick in milliseconds. */
    tick_ms: v.pipe(positive, v.maxValue(60_000)),
    /** Applied Raft entries between two snapshots; each snapshot is followed by a log compaction. */
    snapshot_entries: v.pipe(positive, v.maxValue(10_000_000)),
    /** Entries kept in the log behind a snapshot, so a follower slightly behind catches up without one. */
    compaction_margin_entries: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(10_000_000)),
    /**
     * How a leader confirms a linearizable read: "read_index" (a heartbeat round per batch of reads) or
     * "lease" (answered at once while its lease holds; assumes tick rates agree, see README). Same on every node.
     */
    read_mode: v.picklist(["read_index", "lease"]),
  }),
  ledger: v.strictObject({
    /** Refuse a second version of any key and every delete. */
    immutable: v.boolean(),
    /** Checkpoint origin line: names this log for verifiers. */
    origin: v.pipe(v.string(), v.regex(/^[^\s\n]{1,128}$/, "must be 1-128 non-space characters")),
    /** Name of the checkpoint signing key (appears in signature lines). */
    key_name: v.pipe(v.string(), v.regex(/^[^\s+\n]{1,128}$/, "must be 1-128 characters without spaces or '+'")),
    key_bytes_max: v.pipe(positive, v.maxValue(64 * 1024)),
    value_bytes_max: v.pipe(positive, v.maxValue(1024 * 1024 * 1024)),
    batch_operations_max: v.pipe(positive, v.maxValue(100_000)),
    batch_bytes_max: positive,
    /** Memory budget of the in-memory cache of recently written or read keys (their newest record and small value); 0 turns it off. */
    hot_cache_bytes: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1024 * 1024 * 1024 * 1024)),
    /** Checkpoint signing key file; default <data_dir>/checkpoint.key. Every node of a cluster must use the same key. */
    signing_key_file: v.optional(v.pipe(v.string(), v.minLength(1))),
  }),
  limits: v.strictObject({
    body_bytes_max: positive,
    page_size_default: positive,
    page_size_max: v.pipe(positive, v.maxValue(100_000)),
    watch_streams_max: positive,
    write_queue_commands_max: positive,
    write_queue_bytes_max: positive,
    group_commands_max: positive,
    group_bytes_max: positive,
  }),
  /** Present = this node is a member of a Raft cluster; absent = a single node. */
  cluster: v.optional(
    v.strictObject({
      /** Shared secret every peer request carries (Authorization: Bearer); at least 16 characters. */
      secret: v.pipe(v.union([v.string(), v.number()]), v.transform(String), v.minLength(16, "must be at least 16 characters")),
      /** Every founding member, this node included. Ids are positive integers. Optional for a node that joins (--join). */
      peers: v.optional(v.pipe(
        v.array(v.strictObject({
          id: v.pipe(positive, v.maxValue(2 ** 31)),
          /** host:port of the member's HTTP API (used for leader reports). */
          client_address: memberAddress,
          /** host:port (or URL) of the member's Raft port. */
          raft_address: memberAddress,
        })),
        v.minLength(1),
        v.maxLength(64),
      )),
      /** How long a write or linearizable read waits for a leader before 503. */
      leader_wait_ms: v.optional(positive, 3000),
      /** How long a proposed write may take to commit and apply before 503 (its outcome is then unknown). */
      request_timeout_ms: v.optional(positive, 10_000),
    }),
  ),
});

/** The validated configuration. */
export type Config = v.InferOutput<typeof ConfigSchema>;

/** Defaults: a single node on 127.0.0.1:8080 with data in ./data. */
export const DEFAULT_CONFIG: Config = {
  node: { id: "1", data_dir: "./data" },
  network: { listen_addr: "127.0.0.1", client_port: 8080 },
  storage: { adapter: "auto" },
  consensus: {
    election_timeout: 10, heartbeat_timeout: 3, max_log_entries: 1000, tick_ms: 100, snapshot_entries: 10_000, compaction_margin_entries: 1000,
    read_mode: "read_index",
  },
  ledger: {
    immutable: false,
    origin: "scribe-ledger",
    key_name: "scribe-ledger",
    key_bytes_max: 1024,
    value_bytes_max: 16 * 1024 * 1024,
    batch_operations_max: 1000,
    batch_bytes_max: 32 * 1024 * 1024,
    hot_cache_bytes: 256 * 1024 * 1024,
  },
  limits: {
    body_bytes_max: 64 * 1024 * 1024,
    page_size_default: 100,
    page_size_max: 1000,
    watch_streams_max: 256,
    write_queue_commands_max: 100_000,
    write_queue_bytes_max: 512 * 1024 * 1024,
    group_commands_max: 4096,
    group_bytes_max: 64 * 1024 * 1024,
  },
};

/** Thrown for any bad configuration; the message names the key. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

type Layer = Record<string, Record<string, unknown>>;

/** Command-line flags that map onto config keys. */
export interface ConfigFlags {
  host?: string;
  port?: string;
  dataDir?: string;
  nodeId?: string;
  storage?: string;
}

/** Parse TOML text into a config layer. */
export function parseConfigFile(text: string, path: string): Layer {
  try {
    return parseToml(text) as Layer;
  } catch (error) {
    throw new ConfigError(`config file ${path}: ${(error as Error).message}`);
  }
}

const SECTIONS = [...Object.keys(DEFAULT_CONFIG), "cluster"] as Array<keyof Config>;

/** Turn an env value into the type its default has, so "8080" validates as a port. */
function coerce(raw: string): unknown {
  if (/^-?\d+$/.test(raw)) return Number(raw);
  if (raw === "true" || raw === "false") return raw === "true";
  return raw;
}

/** Config layer from `SCRIBE_<SECTION>_<KEY>` variables, e.g. SCRIBE_NETWORK_CLIENT_PORT. */
export function envLayer(env: Record<string, string | undefined>): Layer {
  const layer: Layer = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith("SCRIBE_") || raw === undefined) continue;
    const rest = name.slice("SCRIBE_".length).toLowerCase();
    const section = SECTIONS.find((candidate) => rest.startsWith(`${candidate}_`));
    if (section === undefined) throw new ConfigError(`environment variable ${name}: unknown section (known: ${SECTIONS.join(", ")})`);
    (layer[section] ??= {})[rest.slice(section.length + 1)] = coerce(raw);
  }
  return layer;
}

/** Config layer from command-line flags. */
export function flagLayer(flags: ConfigFlags): Layer {
  const layer: Layer = {};
  const set = (section: string, key: string, value: unknown) => ((layer[section] ??= {})[key] = value);
  if (flags.host !== undefined) set("network", "listen_addr", flags.host);
  if (flags.port !== undefined) set("network", "client_port", coerce(flags.port));
  if (flags.dataDir !== undefined) set("node", "data_dir", flags.dataDir);
  if (flags.nodeId !== undefined) set("node", "id", flags.nodeId);
  if (flags.storage !== undefined) set("storage", "adapter", flags.storage);
  return layer;
}

/** Merge layers over the defaults (later layers win) and validate. */
export function resolveConfig(...layers: Layer[]): Config {
  const merged: Layer = structuredClone(DEFAULT_CONFIG) as unknown as Layer;
  for (const layer of layers) {
    for (const [section, values] of Object.entries(layer)) {
      if (values === null || typeof values !== "object" || Array.isArray(values)) {
        throw new ConfigError(`config: [${section}] must be a table`);
      }
      merged[section] = { ...(merged[section] ?? {}), ...values };
    }
  }
  const parsed = v.safeParse(ConfigSchema, merged);
  if (!parsed.success) {
    const issue = parsed.issues[0]!;
    const path = v.getDotPath(issue) ?? "(root)";
    throw new ConfigError(`config: ${path}: ${issue.message}`);
  }
  const config = parsed.output;
  if (config.limits.page_size_default > config.limits.page_size_max) {
    throw new ConfigError("config: limits.page_size_default must not exceed limits.page_size_max");
  }
  if (config.cluster !== undefined) checkCluster(config);
  return config;
}

function checkCluster(config: Config): void {
  if (config.consensus.heartbeat_timeout >= config.consensus.election_timeout) {
    throw new ConfigError("config: consensus.heartbeat_timeout must be below consensus.election_timeout");
  }
  const peers = config.cluster!.peers;
  if (peers !== undefined) {
    if (new Set(peers.map((peer) => peer.id)).size !== peers.length) throw new ConfigError("config: cluster.peers: ids must be distinct");
    const self = peers.find((peer) => String(peer.id) === config.node.id);
    if (self === undefined) throw new ConfigError(`config: node.id ${config.node.id} must be the id of one of cluster.peers`);
  } else if (!/^[1-9]\d{0,9}$/.test(config.node.id) || Number(config.node.id) > 2 ** 31) {
    throw new ConfigError(`config: node.id must be an integer in [1, 2^31] in a cluster, got ${config.node.id}`);
  }
  if (config.network.raft_port === undefined) throw new ConfigError("config: network.raft_port is required with [cluster]");
}
