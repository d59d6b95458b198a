/**
 * Runtime entry for every runtime: `bun run src/main.ts`, `deno task serve`,
 * `npm run serve:node --` and the compiled binary all start here. Reads flags, env and the
 * config file, opens the storage adapter for this runtime, loads (or
 * creates) the checkpoint signing key, serves the HTTP API, and shuts down
 * gracefully on SIGINT/SIGTERM: stop accepting, finish queued writes, close
 * storage. With `--join URL` a new cluster node asks a member to add it
 * instead of founding a cluster of its own.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, envLayer, flagLayer, parseConfigFile, resolveConfig, type Config } from "./config/index.ts";
import { openClusterServer, openLedgerServer, selfAddresses } from "./server.ts";
import { JOIN_DEFAULTS, joinCluster, JoinRefusedError } from "./node/join.ts";
import { loadOrCreateSigner, SIGNING_KEY_FILE } from "../adapters/runtime/keyfile.ts";
import { openStorage, runtimeName, type StorageChoice, type StorageTuning } from "../adapters/runtime/storage.ts";
import { ListenError, serve } from "../adapters/runtime/serve.ts";
import { verifierKeyString } from "./checkpoint/index.ts";
import { runtimeHasher } from "../adapters/runtime/hasher.ts";
import { runtimePeerFetch } from "../adapters/runtime/peer-fetch.ts";
import { DataDirLockedError, lockDataDir } from "../adapters/runtime/lock.ts";

const HELP = `scribe-ledger: a verifiable, append-only key-value ledger

Usage: bun run src/main.ts [flags]        (Bun; default storage sqlite)
       deno task serve [flags]            (Deno; default storage denokv)
       npm run serve:node -- [flags]      (Node; default storage fs)
       dist/scribe-node [flags]           (binary from npm run build:binary)

Flags (beat SCRIBE_<SECTION>_<KEY> env variables, which beat the config file):
  --config FILE     TOML config file ([node], [network], [storage], [consensus], [ledger], [limits])
  --host ADDR       listen address            (network.listen_addr, default 127.0.0.1)
  --port N          HTTP port                 (network.client_port, default 8080)
  --data-dir DIR    data directory            (node.data_dir, default ./data)
  --node-id ID      node id                   (node.id, default 1)
  --storage NAME    auto|memory|sqlite|fs|denokv (storage.adapter, default auto:
                    sqlite on Bun, denokv on Deno, fs on Node)
  --join URL        cluster node with an empty data dir: ask the member at URL (its
                    client API, e.g. http://127.0.0.1:8001; any member forwards to
                    the leader) to add this node, with node.address and
                    node.raft_address; it then receives a snapshot and the log and
                    never founds a cluster. A restart needs no --join (the node
                    comes back from its own storage).
  --help            print this help

A [cluster] section (secret; peers to found a cluster) makes the node a Raft
cluster member serving peers on network.raft_port; see config-node1.toml.
Snapshots and log compaction: consensus.snapshot_entries (default 10000) and
consensus.compaction_margin_entries (default 1000).
SQLite write path: storage.sqlite_writer = auto|inline|worker (default auto: inline
on a single node, worker in a cluster; README "SQLite writer").

       bun run src/main.ts keygen FILE [KEY_NAME]
                    create a checkpoint signing key file (if missing) and print its
                    verifier key; point every cluster node's ledger.signing_key_file at it

Exit codes: 0 after a clean shutdown; 2 when start-up is refused for something you
can fix (a bad flag or config value, a data dir in use, a port that cannot be bound);
70 after a storage failure while serving; 1 for anything else.

Example: SCRIBE_NETWORK_CLIENT_PORT=9000 bun run src/main.ts --data-dir /var/lib/scribe
`;

function parseFlags(argv: string[]): { config?: string; join?: string; help: boolean; flags: Record<string, string | undefined> } {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      "data-dir": { type: "string" },
      "node-id": { type: "string" },
      storage: { type: "string" },
      join: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  return {
    config: values.config,
    join: values.join,
    help: values.help === true,
    flags: { host: values.host, port: values.port, dataDir: values["data-dir"], nodeId: values["node-id"], storage: values.storage },
  };
}

async function loadConfig(argv: string[]): Promise<{ config: Config; join: string | undefined } | undefined> {
  const parsed = parseFlags(argv);
  if (parsed.help) {
    console.log(HELP);
    return undefined;
  }
  const fileLayer = parsed.config === undefined ? {} : parseConfigFile(await readFile(parsed.config, "utf8"), parsed.config);
  const config = resolveConfig(fileLayer, envLayer(process.env), flagLayer(parsed.flags));
  if (parsed.join !== undefined && config.cluster === undefined) throw new ConfigError("--join needs a [cluster] section (secret) in the config");
  if (parsed.join !== undefined && !/^(https?:\/\/)?[^\s/]+(:\d+)?\/?$/.test(parsed.join)) throw new ConfigError(`--join: not a URL: ${parsed.join}`);
  return { config, join: parsed.join };
}

async function keygen(args: string[]): Promise<void> {
  if (args.length < 1 || args.length > 2) throw new ConfigError("usage: keygen FILE [KEY_NAME]");
  const { signer, created } = await loadOrCreateSigner(args[0]!, args[1] ?? "scribe-ledger");
  console.log(`${created ? "created" : "exists"}: ${args[0]}`);
  console.log(`verifier key: ${verifierKeyString(signer)}`);
}

/**
 * Adapter tuning from config. `storage.sqlite_writer = "auto"` picks `automatic`: inline for a single node
 * (its commit path is bound by thread hand-offs), the worker for a cluster member (bound by main-thread CPU);
 * README, "SQLite writer".
 */
function storageTuning(config: Config, automatic: "inline" | "worker"): StorageTuning {
  const chosen = config.storage.sqlite_writer ?? "auto";
  return { segmentBytes: config.storage.segment_size, sqliteWriter: chosen === "auto" ? automatic : chosen };
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "keygen") return keygen(argv.slice(1));
  const loaded = await loadConfig(argv);
  if (loaded === undefined) return;
  const { config } = loaded;
  if (config.cluster !== undefined) return mainCluster(config, loaded.join);
  const unlock = await lockDataDir(config.node.data_dir);
  const storage = await openStorage(config.storage.adapter as StorageChoice, config.node.data_dir, storageTuning(config, "inline"));
  const { signer, created } = await loadOrCreateSigner(signingKeyPath(config), config.ledger.key_name);
  const server = await openLedgerServer({
    config,
    storage,
    signer,
    hasher: await runtimeHasher(),
    onFatal: (error) => {
      console.error("fatal: storage commit failed; stopping so a restart recovers from durable state:", error);
      process.exit(70);
    },
  });
  const listening = await serve({ fetch: server.app.fetch, hostname: config.network.listen_addr, port: config.network.client_port });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping (finishing in-flight writes)`);
    await listening.stop();
    await server.close();
    await unlock();
    console.log("stopped cleanly");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  // Printed only now: whoever waits for "listening" may signal us at once.
  console.log(`scribe-ledger node ${config.node.id} on ${runtimeName()} with ${storage.name} storage`);
  console.log(`data dir: ${config.node.data_dir}${created ? " (new signing key created)" : ""}`);
  console.log(`verifier key: ${server.node.ledger.checkpoints.verifierKey}`);
  console.log(`tree size: ${server.node.ledger.treeSize}`);
  console.log(`listening on http://${config.network.listen_addr}:${listening.port}`);
}

function signingKeyPath(config: Config): string {
  return config.ledger.signing_key_file ?? join(config.node.data_dir, SIGNING_KEY_FILE);
}

const onFatal = (error: unknown) => {
  console.error("fatal: storage commit failed; stopping so a restart recovers from durable state:", error);
  process.exit(70);
};

/** Ask the member at `url` to add this node (see src/node/join.ts); a final refusal stops start-up. */
async function joinOrStop(url: string, config: Config): Promise<void> {
  const member = { id: Number(config.node.id), ...selfAddresses(config) };
  try {
    const added = await joinCluster(url, member, JOIN_DEFAULTS, (problem) => console.log(`join via ${url}: ${problem}; retrying`));
    console.log(`joined the cluster via ${url} as node ${member.id} (${added ? "added as a learner" : "already a member"})`);
  } catch (error) {
    if (error instanceof JoinRefusedError) throw new ConfigError(`--join: ${url} ${error.message}`);
    throw error;
  }
}

/** A Raft cluster member: the client API on client_port, peers on raft_port. */
async function mainCluster(config: Config, joinUrl: string | undefined): Promise<void> {
  const unlock = await lockDataDir(config.node.data_dir);
  const storage = await openStorage(config.storage.adapter as StorageChoice, config.node.data_dir, storageTuning(config, "worker"));
  const { signer, created } = await loadOrCreateSigner(signingKeyPath(config), config.ledger.key_name);
  const server = await openClusterServer({ config, storage, signer, hasher: await runtimeHasher(), peerFetch: await runtimePeerFetch(), onFatal, join: joinUrl !== undefined });
  // A node that already belongs to a cluster (a restart) comes back from its storage; --join is then moot.
  const mustJoin = joinUrl !== undefined && server.node.status().members.length === 0;
  const host = config.network.listen_addr;
  const peers = await serve({ fetch: server.peerFetch, hostname: host, port: config.network.raft_port! });
  const listening = await serve({ fetch: server.app.fetch, hostname: host, port: config.network.client_port });
  server.node.start();
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping`);
    await listening.stop();
    await server.close();
    await peers.stop();
    await unlock();
    console.log("stopped cleanly");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  // Printed only now: whoever waits for "listening" may signal us at once.
  console.log(`scribe-ledger node ${config.node.id} (Raft cluster of ${server.node.status().members.length}) on ${runtimeName()} with ${storage.name} storage`);
  console.log(`data dir: ${config.node.data_dir}${created ? " (new signing key created)" : ""}`);
  console.log(`verifier key: ${server.node.ledger.checkpoints.verifierKey}`);
  console.log(`tree size: ${server.node.ledger.treeSize}`);
  console.log(`raft peers on ${host}:${peers.port}`);
  console.log(`listening on http://${host}:${listening.port}`);
  if (joinUrl !== undefined && !mustJoin) console.log(`this data dir already belongs to a cluster; --join ${joinUrl} ignored`);
  if (mustJoin) await joinOrStop(joinUrl!, config);
}

main(process.argv.slice(2)).catch((error) => {
  if (error instanceof ConfigError || error instanceof DataDirLockedError || error instanceof ListenError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
    console.error(`error: ${(error as Error).message}\nrun with --help for usage`);
    process.exit(2);
  }
  console.error("fatal:", error);
  process.exit(1);
});
