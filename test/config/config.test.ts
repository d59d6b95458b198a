import { describe, expect, test } from "bun:test";
import { readFile } from "node:fs/promises";
import { ConfigError, DEFAULT_CONFIG, envLayer, flagLayer, parseConfigFile, resolveConfig } from "../../src/config/index.ts";

describe("config", () => {
  test("defaults: one node on 127.0.0.1:8080 with data in ./data", () => {
    const config = resolveConfig();
    expect(config).toEqual(DEFAULT_CONFIG);
    expect(config.network).toMatchObject({ listen_addr: "127.0.0.1", client_port: 8080 });
    expect(config.node.data_dir).toBe("./data");
  });

  test("flags beat env, env beats the file, the file beats defaults", () => {
    const file = parseConfigFile('[network]\nclient_port = 7000\nlisten_addr = "0.0.0.0"\n[node]\nid = 3\n', "test.toml");
    const env = envLayer({ SCRIBE_NETWORK_CLIENT_PORT: "7100", SCRIBE_LEDGER_IMMUTABLE: "true", PATH: "/bin" });
    expect(resolveConfig(file).network.client_port).toBe(7000);
    expect(resolveConfig(file, env).network.client_port).toBe(7100);
    const config = resolveConfig(file, env, flagLayer({ port: "7200", dataDir: "/tmp/x" }));
    expect(config.network.client_port).toBe(7200);
    expect(config.network.listen_addr).toBe("0.0.0.0");
    expect(config.node).toMatchObject({ id: "3", data_dir: "/tmp/x" });
    expect(config.ledger.immutable).toBe(true);
  });

  test("a bad value stops with a message naming the key", () => {
    expect(() => resolveConfig(flagLayer({ port: "99999" }))).toThrow(/network\.client_port/);
    expect(() => resolveConfig(flagLayer({ port: "abc" }))).toThrow(/network\.client_port/);
    expect(() => resolveConfig(envLayer({ SCRIBE_LEDGER_IMMUTABLE: "maybe" }))).toThrow(/ledger\.immutable/);
    expect(() => resolveConfig(flagLayer({ storage: "floppy" }))).toThrow(/storage\.adapter/);
    expect(() => resolveConfig(envLayer({ SCRIBE_LEDGER_HOT_CACHE_BYTES: "-1" }))).toThrow(/ledger\.hot_cache_bytes/);
    expect(() => resolveConfig(envLayer({ SCRIBE_STORAGE_SQLITE_WRITER: "threaded" }))).toThrow(/storage\.sqlite_writer/);
    expect(resolveConfig(envLayer({ SCRIBE_STORAGE_SQLITE_WRITER: "worker" })).storage.sqlite_writer).toBe("worker");
    expect(() => resolveConfig({ network: { client_prot: 1 } })).toThrow(/client_prot/);
    expect(() => envLayer({ SCRIBE_NOPE_X: "1" })).toThrow(ConfigError);
    expect(() => parseConfigFile("[node\nid=", "broken.toml")).toThrow(/broken\.toml/);
    expect(() => resolveConfig({ limits: { page_size_default: 500, page_size_max: 100 } })).toThrow(/page_size_default/);
  });

  test("the example config.toml in the repo is valid", async () => {
    const text = await readFile(new URL("../../config.toml", import.meta.url), "utf8");
    const config = resolveConfig(parseConfigFile(text, "config.toml"));
    expect(config.network.client_port).toBe(8080);
  });
});
