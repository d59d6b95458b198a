/** The [cluster] config section: validated as a whole, absent = single node. */
import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { ConfigError, envLayer, parseConfigFile, resolveConfig } from "../../src/config/index.ts";

const peers = [1, 2, 3].map((id) => ({ id, client_address: `127.0.0.1:800${id}`, raft_address: `127.0.0.1:900${id}` }));
const base = { node: { id: "2" }, network: { raft_port: 9002 }, cluster: { secret: "0123456789abcdef", peers } };

describe("[cluster] config", () => {
  test("absent means a single node", () => {
    expect(resolveConfig({}).cluster).toBeUndefined();
  });

  test("a valid section gets its defaults", () => {
    const config = resolveConfig(base);
    expect(config.cluster!.peers!.length).toBe(3);
    expect(config.cluster!.leader_wait_ms).toBe(3000);
    expect(config.cluster!.request_timeout_ms).toBe(10_000);
    expect(config.consensus.tick_ms).toBe(100);
  });

  test("snapshot and compaction keys have defaults and ranges", () => {
    const config = resolveConfig(base);
    expect(config.consensus.snapshot_entries).toBe(10_000);
    expect(config.consensus.compaction_margin_entries).toBe(1000);
    expect(resolveConfig(base, { consensus: { snapshot_entries: 50, compaction_margin_entries: 0 } }).consensus.snapshot_entries).toBe(50);
    expect(() => resolveConfig(base, { consensus: { snapshot_entries: 0 } })).toThrow(/snapshot_entries/);
    expect(() => resolveConfig(base, { consensus: { compaction_margin_entries: -1 } })).toThrow(/compaction_margin_entries/);
  });

  test("a joining node needs no peers, but a numeric id and a raft port", () => {
    const joiner = { node: { id: "4", raft_address: "10.0.0.4:9004" }, network: { raft_port: 9004 }, cluster: { secret: "0123456789abcdef" } };
    const config = resolveConfig(joiner);
    expect(config.cluster!.peers).toBeUndefined();
    expect(config.node.raft_address).toBe("10.0.0.4:9004");
    expect(() => resolveConfig(joiner, { node: { id: "node-4" } })).toThrow(/node.id must be an integer/);
    expect(() => resolveConfig(joiner, { node: { id: "0" } })).toThrow(/node.id must be an integer/);
  });

  test("the tutorial's node configs are valid: three founders and a joiner without peers", async () => {
    for (const n of [1, 2, 3, 4]) {
      const name = `config-node${n}.toml`;
      const config = resolveConfig(parseConfigFile(await readFile(new URL(`../../${name}`, import.meta.url), "utf8"), name));
      expect(config.node.id).toBe(String(n));
      expect(config.cluster!.peers?.length).toBe(n === 4 ? undefined : 3);
    }
  });

  test("the secret may come from SCRIBE_CLUSTER_SECRET", () => {
    const config = resolveConfig(base, envLayer({ SCRIBE_CLUSTER_SECRET: "from-the-environment" }));
    expect(config.cluster!.secret).toBe("from-the-environment");
  });

  test.each([
    ["node id not among the peers", { node: { id: "7" } }, /node.id 7/],
    ["no raft port", { network: { raft_port: undefined } }, /raft_port/],
    ["a short secret", { cluster: { secret: "short", peers } }, /at least 16/],
    ["duplicate peer ids", { cluster: { secret: "0123456789abcdef", peers: [peers[0], peers[0], peers[1]] } }, /distinct/],
    ["heartbeat not below election", { consensus: { heartbeat_timeout: 10, election_timeout: 10 } }, /heartbeat_timeout/],
    ["an unknown key", { cluster: { secret: "0123456789abcdef", peers, extra: 1 } }, /cluster/],
    // The member book refuses these when read back, so a node started with one could never restart.
    ["a raft address with port 0", { cluster: { secret: "0123456789abcdef", peers: [peers[0], { ...peers[1]!, raft_address: "127.0.0.1:0" }, peers[2]] } }, /raft_address/],
    ["a client address that is not host:port", { cluster: { secret: "0123456789abcdef", peers: [peers[0], { ...peers[1]!, client_address: "localhost" }, peers[2]] } }, /client_address/],
  ])("refuses %s", (_name, override, message) => {
    const layer = structuredClone(base) as Record<string, Record<string, unknown>>;
    for (const [section, values] of Object.entries(override)) layer[section] = { ...layer[section], ...values };
    if (layer.network!.raft_port === undefined) delete layer.network!.raft_port;
    expect(() => resolveConfig(layer)).toThrow(ConfigError);
    expect(() => resolveConfig(layer)).toThrow(message);
  });
});
