import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { nodeHttpPeerFetch, type PeerFetch } from "../../adapters/runtime/peer-fetch.ts";
import { PEER_RESPONSE_HEAD_BYTES_MAX, socketPeerFetch } from "../../adapters/runtime/peer-socket.ts";
import { freePort } from "../helpers/process.ts";

const RESPONSE_BYTES_MAX = 1024;
const refuse: PeerFetch = () => Promise.reject(new Error("fallback used"));

// Both peer clients against a real Bun server: same answers as fetch would give.
const clients: Array<[string, () => Promise<PeerFetch>]> = [
  ["nodeHttpPeerFetch", () => nodeHttpPeerFetch({ responseBytesMax: RESPONSE_BYTES_MAX })],
  ["socketPeerFetch", async () => socketPeerFetch({ responseBytesMax: RESPONSE_BYTES_MAX, fallback: refuse })],
];

describe.each(clients)("%s", (_name, makeClient) => {
  let server: ReturnType<typeof Bun.serve>;
  let base: string;
  let peerFetch: PeerFetch;
  const seen: Array<{ path: string; authorization: string | null; length: number }> = [];
  const clientPorts = new Set<number>();

  beforeAll(async () => {
    server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(request, bunServer) {
        const path = new URL(request.url).pathname;
        const body = new Uint8Array(await request.arrayBuffer());
        seen.push({ path, authorization: request.headers.get("authorization"), length: body.length });
        clientPorts.add(bunServer.requestIP(request)!.port);
        if (path === "/echo") return new Response(body.slice().reverse(), { headers: { "X-Peer": "yes" } });
        if (path === "/empty") return new Response(null, { status: 204 });
        if (path === "/big") return new Response(new Uint8Array(4096));
        if (path === "/slow") return new Promise<Response>(() => {});
        if (path === "/streamed") {
          // No length known up front: Bun answers chunked.
          return new Response(new ReadableStream({
            start(controller) {
              controller.enqueue(new Uint8Array([1, 2]));
              controller.enqueue(new Uint8Array([3]));
              controller.close();
            },
          }));
        }
        return new Response("nope", { status: 404 });
      },
    });
    base = `http://127.0.0.1:${server.port}`;
    peerFetch = await makeClient();
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

  test("reads a chunked response body", async () => {
    const response = await post("/streamed", new Uint8Array(1));
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
  });

  test("many requests in flight all complete on the keep-alive pool", async () => {
    const replies = await Promise.all(Array.from({ length: 64 }, (_, i) => post("/echo", new Uint8Array([i, 0]))));
    const bodies = await Promise.all(replies.map(async (reply) => new Uint8Array(await reply.arrayBuffer())));
    expect(bodies.map((body) => body[1])).toEqual(Array.from({ length: 64 }, (_, i) => i));
  });

  test("sequential requests reuse one connection", async () => {
    await post("/echo", new Uint8Array(1));
    clientPorts.clear();
    for (let i = 0; i < 20; i++) await (await post("/echo", new Uint8Array([i]))).arrayBuffer();
    expect(clientPorts.size).toBe(1);
  });

  test("a response over the cap, a timeout and a refused connection reject", async () => {
    await expect(post("/big", new Uint8Array(1))).rejects.toThrow("exceeds 1024 bytes");
    await expect(post("/slow", new Uint8Array(1), AbortSignal.timeout(200))).rejects.toThrow();
    const closedPort = await freePort();
    await expect(peerFetch(`http://127.0.0.1:${closedPort}/x`, { method: "POST", body: new Uint8Array(1), headers: {} })).rejects.toThrow();
    // Still usable afterwards.
    expect((await post("/empty", new Uint8Array(0))).status).toBe(204);
  });
});

// Responses a Bun server never sends, from a raw socket server: close-delimited bodies, Connection: close,
// garbage, oversized heads, a server that hangs up mid-response.
describe("socketPeerFetch against raw responses", () => {
  let server: Server;
  let base: string;
  let answer: (socket: Socket) => void = () => {};
  const peerFetch = socketPeerFetch({ responseBytesMax: RESPONSE_BYTES_MAX, fallback: refuse });

  beforeAll(async () => {
    server = createServer((socket) => {
      let request = "";
      socket.on("data", (chunk) => {
        request += chunk.toString("latin1");
        if (request.includes("\r\n\r\n")) {
          request = "";
          answer(socket);
        }
      });
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server.close());

  const post = () => peerFetch(`${base}/raft/v1/messages`, { method: "POST", body: new Uint8Array(0), headers: {} });

  test("a close-delimited body ends with the connection", async () => {
    answer = (socket) => socket.end("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello");
    expect(await (await post()).text()).toBe("hello");
    expect(await (await post()).text()).toBe("hello");
  });

  test("Connection: close with a length is honoured, and the next request opens a new connection", async () => {
    answer = (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    expect(await (await post()).text()).toBe("ok");
    expect(await (await post()).text()).toBe("ok");
  });

  test("a response split into single bytes is reassembled", async () => {
    answer = (socket) => {
      const bytes = Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
      let at = 0;
      const next = () => {
        if (at < bytes.length) socket.write(bytes.subarray(at, ++at), next);
      };
      next();
    };
    // Chunk sizes are hex: "A" is ten bytes.
    expect(await (await post()).text()).toBe("abcde0123456789");
  });

  test("garbage, an oversized head, a bad length and a hang-up mid-body reject", async () => {
    answer = (socket) => socket.write("SMTP ready\r\n\r\n");
    await expect(post()).rejects.toThrow("malformed status line");
    answer = (socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(PEER_RESPONSE_HEAD_BYTES_MAX)}\r\n\r\n`);
    await expect(post()).rejects.toThrow("head exceeds");
    answer = (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n");
    await expect(post()).rejects.toThrow("malformed Content-Length");
    answer = (socket) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${RESPONSE_BYTES_MAX + 1}\r\n\r\n`);
    await expect(post()).rejects.toThrow("exceeds 1024 bytes");
    answer = (socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    await expect(post()).rejects.toThrow("closed the connection");
    answer = (socket) => socket.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    await expect(post()).rejects.toThrow("malformed chunk size");
  });

  test("a header value with a line break is refused before anything is sent", async () => {
    await expect(peerFetch(`${base}/x`, { method: "POST", body: new Uint8Array(0), headers: { "X-Evil": "a\r\nInjected: 1" } })).rejects.toThrow("line break");
  });

  test("https goes to the fallback client", async () => {
    await expect(peerFetch("https://127.0.0.1:1/x", { method: "POST", body: new Uint8Array(0), headers: {} })).rejects.toThrow("fallback used");
  });
});
