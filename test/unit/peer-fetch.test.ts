import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { nodeHttpPeerFetch, type PeerFetch } from "../../adapters/runtime/peer-fetch.ts";
import { freePort } from "../helpers/process.ts";

// The Node peer client, exercised here under Bun's node:http against a real server.
describe("nodeHttpPeerFetch", () => {
  let server: ReturnType<typeof Bun.serve>;
  let base: string;
  let peerFetch: PeerFetch;
  const seen: Array<{ path: string; authorization: string | null; length: number }> = [];

  beforeAll(async () => {
    server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(request) {
        const path = new URL(request.url).pathname;
        const body = new Uint8Array(await request.arrayBuffer());
        seen.push({ path, authorization: request.headers.get("authorization"), length: body.length });
        if (path === "/echo") return new Response(body.slice().reverse(), { headers: { "X-Peer": "yes" } });
        if (path === "/empty") return new Response(null, { status: 204 });
        if (path === "/big") return new Response(new Uint8Array(4096));
        if (path === "/slow") return new Promise<Response>(() => {});
        return new Response("nope", { status: 404 });
      },
    });
    base = `http://127.0.0.1:${server.port}`;
    peerFetch = await nodeHttpPeerFetch({ responseBytesMax: 1024 });
  });
  afterAll(() => server.stop(true));

  const post = (path: string, body: Uint8Array, signal?: AbortSignal) =>
    peerFetch(`${base}${path}`, { method: "POST", body, headers: { Authorization: "Bearer s3cret" }, signal });

  test("sends the body and headers and answers a standard Response", async () => {
    const response = await post("/echo", new Uint8Array([1, 2, 3]));
    expect(response.status).toBe(200);
    expect(response.headers.get("x-peer")).toBe("yes");
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array([3, 2, 1]));
    expect(seen.at(-1)).toEqual({ path: "/echo", authorization: "Bearer s3cret", length: 3 });
  });

  test("keeps statuses: 204 without a body, 404 with one", async () => {
    const empty = await post("/empty", new Uint8Array(0));
    expect(empty.status).toBe(204);
    expect(empty.body).toBeNull();
    const missing = await post("/missing", new Uint8Array(1));
    expect(missing.status).toBe(404);
    expect(missing.ok).toBe(false);
    expect(await missing.text()).toBe("nope");
  });

  test("many requests in flight all complete on the keep-alive pool", async () => {
    const replies = await Promise.all(Array.from({ length: 64 }, (_, i) => post("/echo", new Uint8Array([i, 0]))));
    const bodies = await Promise.all(replies.map(async (reply) => new Uint8Array(await reply.arrayBuffer())));
    expect(bodies.map((body) => body[1])).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });

  test("a response over the cap, a timeout and a refused connection reject", async () => {
    await expect(post("/big", new Uint8Array(1))).rejects.toThrow("exceeds 1024 bytes");
    await expect(post("/slow", new Uint8Array(1), AbortSignal.timeout(200))).rejects.toThrow();
    const closedPort = await freePort();
    await expect(peerFetch(`http://127.0.0.1:${closedPort}/x`, { method: "POST", body: new Uint8Array(1), headers: {} })).rejects.toThrow();
  });
});
