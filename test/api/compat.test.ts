import { afterEach, describe, expect, test } from "bun:test";
import { openTestServer, json } from "../helpers/server.ts";
import { type LedgerServer } from "../../src/server.ts";

let server: LedgerServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start() {
  server = await openTestServer();
  return server.app;
}

describe("seed README commands work as written", () => {
  test("PUT /my-key with --data-binary, then GET /my-key, then DELETE /my-key", async () => {
    const app = await start();
    const put = await app.request("/my-key", {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: "my value data",
    });
    expect(put.status).toBe(201);
    const get = await app.request("/my-key");
    expect(get.status).toBe(200);
    expect(await get.text()).toBe("my value data");
    expect((await app.request("/my-key", { method: "DELETE" })).status).toBe(200);
    expect((await app.request("/my-key")).status).toBe(404);
  });

  test("PUT/POST /put with JSON {key, value} and GET /get/{key}", async () => {
    const app = await start();
    const put = await app.request("/put", {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: "user:alice", value: "Alice Smith" }),
    });
    expect(put.status).toBe(201);
    await app.request("/put", { method: "POST", body: JSON.stringify({ key: "balance", value: "1000.50" }) });
    expect(await (await app.request("/get/user:alice")).text()).toBe("Alice Smith");
    expect(await (await app.request("/get/balance")).text()).toBe("1000.50");
    expect((await app.request("/get/nobody")).status).toBe(404);
    expect((await app.request("/put", { method: "PUT", body: "{\"key\": 1}" })).status).toBe(400);
  });

  test("PUT /test with a JSON body stores it verbatim; /verify/test proves it", async () => {
    const app = await start();
    await app.request("/test", { method: "PUT", headers: { "Content-Type": "application/json" }, body: '{"value": "hello world"}' });
    expect(await (await app.request("/test")).text()).toBe('{"value": "hello world"}');
    const verify = await json(await app.request("/verify/test"));
    expect(verify).toMatchObject({ key: "test", verified: true, error: null });
  });

  test("BlockDB routes: /api/v1/put, /api/v1/get/{key}, /api/v1/batch", async () => {
    const app = await start();
    const put = await app.request("/api/v1/put", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ key: "user:1001", value: "John Doe" }),
    });
    expect(put.status).toBe(201);
    expect(await (await app.request("/api/v1/get/user:1001")).text()).toBe("John Doe");
    const batch = await app.request("/api/v1/batch", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ operations: [
        { type: "put", key: "user:1001", value: "John Doe" },
        { type: "put", key: "user:1002", value: "Jane Smith" },
      ] }),
    });
    expect(batch.status).toBe(200);
    expect(await (await app.request("/api/v1/get/user:1002")).text()).toBe("Jane Smith");
  });

  test("health, metrics and cluster routes with their aliases", async () => {
    const app = await start();
    await app.request("/k", { method: "PUT", body: "v" });
    await app.request("/k");
    expect(await json(await app.request("/health"))).toMatchObject({ status: "ok" });
    const metrics = await json(await app.request("/metrics"));
    expect(metrics).toMatchObject({ put_requests: 1, get_requests: 1, tree_size: 1, status: "ok" });
    const prometheus = await (await app.request("/metrics/prometheus")).text();
    expect(prometheus).toContain('scribe_http_requests_total{method="PUT",route="/*",status="201"} 1');
    expect(prometheus).toContain("scribe_http_request_duration_seconds_bucket{");
    expect(prometheus).toContain("scribe_merkle_tree_size 1");
    expect(prometheus).toMatch(/scribe_storage_bytes \d+/);
    for (const path of ["/cluster/status", "/cluster/info"]) {
      expect(await json(await app.request(path))).toMatchObject({ nodeId: "1", role: "leader", leaderId: "1", treeSize: 1 });
    }
    for (const path of ["/cluster/members", "/cluster/nodes"]) {
      expect((await json(await app.request(path))).members).toEqual([{ id: "1", address: "127.0.0.1:8080", role: "voter", reachable: true }]);
    }
    for (const path of ["/cluster/leader", "/cluster/leader/info"]) {
      expect(await json(await app.request(path))).toMatchObject({ leaderId: "1" });
    }
    expect((await app.request("/cluster/members", { method: "POST", body: "{}" })).status).toBe(501);
  });

  test("route names are not keys: PUT /health is refused, not stored", async () => {
    const app = await start();
    expect((await app.request("/health", { method: "PUT", body: "x" })).status).toBe(404);
    expect((await app.request("/v1/kv/health", { method: "PUT", body: "x" })).status).toBe(201);
  });
});
