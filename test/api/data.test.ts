import { afterEach, describe, expect, test } from "bun:test";
import { sha256 } from "@noble/hashes/sha2.js";
import { openTestServer, json } from "../helpers/server.ts";
import { type LedgerServer } from "../../src/server.ts";
import { decodeEntry, encodeEntry } from "../../src/ledger/entry.ts";
import { fromBase64, toBase64 } from "../../src/encoding.ts";

let server: LedgerServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(config?: Record<string, Record<string, unknown>>) {
  server = await openTestServer({ config });
  const app = server.app;
  return {
    put: (key: string, body: BodyInit, headers: Record<string, string> = {}) =>
      app.request(`/v1/kv/${encodeURIComponent(key)}`, { method: "PUT", body, headers }),
    get: (path: string, headers: Record<string, string> = {}) => app.request(path, { headers }),
    del: (key: string, headers: Record<string, string> = {}) =>
      app.request(`/v1/kv/${encodeURIComponent(key)}`, { method: "DELETE", headers }),
    request: (path: string, init?: RequestInit) => app.request(path, init),
  };
}

describe("PUT and GET /v1/kv/{key}", () => {
  test("first put is 201 with seq 0, version 1; the next is 200 with version 2", async () => {
    const api = await start();
    const first = await api.put("a", "one", { "Content-Type": "text/plain" });
    expect(first.status).toBe(201);
    const body = await json(first);
    expect(body).toMatchObject({ key: "a", seq: 0, version: 1, treeSize: 1 });
    expect(fromBase64(body.leafHash)!.length).toBe(32);
    const second = await api.put("a", "two");
    expect(second.status).toBe(200);
    expect(await json(second)).toMatchObject({ key: "a", seq: 1, version: 2, treeSize: 2 });
  });

  test("a PUT or DELETE retried with the same Idempotency-Key is answered with the first result, marked replayed", async () => {
    const api = await start();
    const first = await api.put("idem", "one", { "Idempotency-Key": "client-7" });
    expect(first.status).toBe(201);
    expect(first.headers.get("Idempotent-Replayed")).toBeNull();
    const retried = await api.put("idem", "one", { "Idempotency-Key": "client-7" });
    expect(retried.status).toBe(201);
    expect(retried.headers.get("Idempotent-Replayed")).toBe("true");
    expect(await json(retried)).toEqual(await json(first));
    const gone = await api.del("idem", { "Idempotency-Key": "client-8" });
    expect((await api.del("idem", { "Idempotency-Key": "client-8" })).headers.get("Idempotent-Replayed")).toBe("true");
    expect(gone.status).toBe(200);
    expect((await json(await api.get("/v1/log?limit=10"))).entries.length).toBe(2);
    const bad = await api.put("idem", "x", { "Idempotency-Key": "x".repeat(129) });
    expect(bad.status).toBe(400);
  });

  test("GET returns the exact bytes, content type and ledger headers; ?version reads old versions", async () => {
    const api = await start();
    const bytes = new Uint8Array([0, 255, 1, 254, 10]);
    await api.put("bin/key with space", bytes, { "Content-Type": "application/x-thing" });
    await api.put("bin/key with space", "second");
    const latest = await api.get(`/v1/kv/${encodeURIComponent("bin/key with space")}`);
    expect(latest.status).toBe(200);
    expect(await latest.text()).toBe("second");
    expect(latest.headers.get("X-Scribe-Version")).toBe("2");
    expect(latest.headers.get("X-Scribe-Seq")).toBe("1");
    expect(latest.headers.get("ETag")).toBe('"2"');
    const old = await api.get("/v1/kv/bin/key%20with%20space?version=1");
    expect(new Uint8Array(await old.arrayBuffer())).toEqual(bytes);
    expect(old.headers.get("Content-Type")).toBe("application/x-thing");
    const asJson = await json(await api.get("/v1/kv/bin/key%20with%20space?version=1", { Accept: "application/json" }));
    expect(asJson).toMatchObject({ key: "bin/key with space", encoding: "base64", value: toBase64(bytes), version: 1, seq: 0 });
    expect((await api.get("/v1/kv/bin/key%20with%20space?version=3")).status).toBe(404);
    expect((await api.get("/v1/kv/missing")).status).toBe(404);
    expect((await api.get("/v1/kv/a?consistency=stale")).status).toBe(404);
    expect((await api.get("/v1/kv/a?consistency=bogus")).status).toBe(400);
  });

  test("DELETE appends a tombstone: GET 404, history keeps every version, a new put is 201 again", async () => {
    const api = await start();
    await api.put("k", "v1");
    await api.put("k", "v2");
    const deleted = await api.del("k");
    expect(deleted.status).toBe(200);
    expect(await json(deleted)).toMatchObject({ key: "k", op: "delete", seq: 2, version: 3 });
    expect((await api.get("/v1/kv/k")).status).toBe(404);
    expect((await api.del("k")).status).toBe(404);
    expect(await (await api.get("/v1/kv/k?version=1")).text()).toBe("v1");
    const history = await json(await api.get("/v1/history/k"));
    expect(history.versions.map((item: { version: number; deleted: boolean }) => [item.version, item.deleted])).toEqual([
      [3, true], [2, false], [1, false],
    ]);
    const page = await json(await api.get("/v1/history/k?limit=2"));
    expect(page.versions.length).toBe(2);
    expect(page.next).toBe(2);
    const rest = await json(await api.get(`/v1/history/k?before=${page.next}`));
    expect(rest.versions.map((item: { version: number }) => item.version)).toEqual([1]);
    expect(rest.next).toBeNull();
    expect((await api.put("k", "v4")).status).toBe(201);
    expect((await api.get("/v1/history/never")).status).toBe(404);
  });

  test("If-None-Match: * is write-once and If-Match appends only on the matching version", async () => {
    const api = await start();
    expect((await api.put("once", "x", { "If-None-Match": "*" })).status).toBe(201);
    const refused = await api.put("once", "y", { "If-None-Match": "*" });
    expect(refused.status).toBe(412);
    expect((await json(refused)).error.code).toBe("precondition_failed");
    expect((await api.put("once", "y", { "If-Match": '"2"' })).status).toBe(412);
    expect((await api.put("once", "y", { "If-Match": '"1"' })).status).toBe(200);
    expect((await api.put("once", "z", { "If-Match": "garbage" })).status).toBe(400);
    expect((await api.del("once", { "If-Match": '"1"' })).status).toBe(412);
    expect(await (await api.get("/v1/kv/once")).text()).toBe("y");
  });

  test("immutable ledger refuses overwrite with 409 and delete with 405", async () => {
    const api = await start({ ledger: { immutable: true } });
    expect((await api.put("fixed", "1")).status).toBe(201);
    const overwrite = await api.put("fixed", "2");
    expect(overwrite.status).toBe(409);
    expect((await json(overwrite)).error.code).toBe("immutable");
    expect((await api.del("fixed")).status).toBe(405);
    expect(await (await api.get("/v1/kv/fixed")).text()).toBe("1");
  });
});

describe("batch, list and log", () => {
  test("a batch gets consecutive seqs; a failing precondition applies none of it", async () => {
    const api = await start();
    await api.put("taken", "x");
    const ok = await api.request("/v1/batch", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ operations: [
        { type: "put", key: "b1", value: "one" },
        { type: "put", key: "b2", value: "AAEC", encoding: "base64" },
        { type: "delete", key: "taken" },
      ] }),
    });
    expect(ok.status).toBe(200);
    const body = await json(ok);
    expect(body.results.map((r: { seq: number }) => r.seq)).toEqual([1, 2, 3]);
    expect(new Uint8Array(await (await api.get("/v1/kv/b2")).arrayBuffer())).toEqual(new Uint8Array([0, 1, 2]));
    const refused = await api.request("/v1/batch", {
      method: "POST",
      body: JSON.stringify({ operations: [{ type: "put", key: "b3", value: "x" }, { type: "put", key: "b1", value: "y", ifAbsent: true }] }),
    });
    expect(refused.status).toBe(412);
    expect((await api.get("/v1/kv/b3")).status).toBe(404);
    expect((await json(await api.get("/v1/log"))).treeSize).toBe(4);
  });

  test("CBOR batch bodies carry raw bytes", async () => {
    const api = await start();
    const { cbor } = await import("../../src/ledger/entry.ts");
    const body = new Uint8Array(cbor.encode({ operations: [{ type: "put", key: "c", value: new Uint8Array([9, 8, 7]) }] }));
    const response = await api.request("/v1/batch", { method: "POST", headers: { "Content-Type": "application/cbor" }, body });
    expect(response.status).toBe(200);
    expect(new Uint8Array(await (await api.get("/v1/kv/c")).arrayBuffer())).toEqual(new Uint8Array([9, 8, 7]));
  });

  test("list keys by prefix with a cursor, skipping deleted keys", async () => {
    const api = await start();
    for (const key of ["user:1", "user:2", "user:3", "user:4", "other", "user:5"]) await api.put(key, key);
    await api.del("user:3");
    const first = await json(await api.get("/v1/kv?prefix=user:&limit=2"));
    expect(first.keys.map((k: { key: string }) => k.key)).toEqual(["user:1", "user:2"]);
    expect(first.next).toBe("user:4");
    const second = await json(await api.get(`/v1/kv?prefix=user:&limit=2&start=${encodeURIComponent(first.next)}`));
    expect(second.keys.map((k: { key: string }) => k.key)).toEqual(["user:4", "user:5"]);
    expect(second.next).toBeNull();
    expect((await json(await api.get("/v1/kv"))).keys.length).toBe(5);
  });

  test("log entries rebuild byte for byte and hash to their leaf", async () => {
    const api = await start();
    await api.put("x", "hello", { "Content-Type": "text/plain" });
    await api.del("x");
    const log = await json(await api.get("/v1/log?from=0&limit=10"));
    expect(log.entries.length).toBe(2);
    for (const item of log.entries) {
      const entryBytes = fromBase64(item.entry)!;
      const entry = decodeEntry(entryBytes);
      expect(entry).toMatchObject({ seq: item.seq, op: item.op, key: "x", timestampMs: item.timestampMs });
      expect(encodeEntry(entry)).toEqual(entryBytes);
      const leaf = sha256(new Uint8Array([0, ...entryBytes]));
      expect(toBase64(leaf)).toBe(item.leafHash);
    }
    expect(log.entries[0].valueHash).toBe(toBase64(sha256(new TextEncoder().encode("hello"))));
    expect(log.entries[1].valueHash).toBeNull();
    expect((await json(await api.get("/v1/log?from=1&limit=1"))).entries[0].seq).toBe(1);
  });
});
