/**
 * RaftNode retries a forwarded write elsewhere when the connection to the
 * leader is refused, on the premise that a refused connection sent nothing.
 * That holds only if fetch never re-sends a peer request on a fresh
 * connection after it went out on a reused one: Bun's fetch does re-send
 * idempotent methods (PUT, DELETE) when a reused keep-alive connection
 * closes before the response, and a refusal of that re-send would hide a
 * first send the leader may have applied. Peer requests are POSTs, which it
 * does not re-send; this test pins that down for the runtime's fetch and for
 * the socket client nodes use (adapters/runtime/peer-socket.ts), which never
 * re-sends anything.
 */
import { afterEach, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { socketPeerFetch } from "../../adapters/runtime/peer-socket.ts";
import { HttpTransport, type HttpTransportOptions } from "../../src/transport/index.ts";

const clients: Array<[string, HttpTransportOptions["peerFetch"]]> = [
  ["global fetch", undefined],
  ["socket client", socketPeerFetch({ responseBytesMax: 1 << 20, fallback: () => Promise.reject(new Error("no https here")) })],
];

let server: Server | undefined;
afterEach(() => {
  server?.close();
  server = undefined;
});

/**
 * A peer that answers its first request with keep-alive, then reads the second, closes the connection
 * without answering (as a leader killed mid-request does) and stops listening, so a re-send is refused.
 */
async function peerDyingOnSecondRequest(close: (socket: Socket) => void): Promise<{ address: string; requests: () => number }> {
  let requests = 0;
  server = createServer((socket) => {
    socket.on("error", () => {});
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      const headerEnd = buffered.indexOf("\r\n\r\n");
      const length = Number(/content-length: *(\d+)/i.exec(buffered)?.[1] ?? 0);
      if (headerEnd === -1 || buffered.length < headerEnd + 4 + length) return;
      buffered = "";
      if (++requests === 1) {
        socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx");
        return;
      }
      server!.close();
      close(socket);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, requests: () => requests };
}

for (const [clientName, peerFetch] of clients) for (const [name, close] of [["FIN", (socket: Socket) => socket.end()], ["RST", (socket: Socket) => socket.resetAndDestroy()]] as const) {
  test(`${clientName}: a peer request that went out on a reused connection is not re-sent when the peer closes it (${name})`, async () => {
    const peer = await peerDyingOnSecondRequest(close);
    const transport = new HttpTransport({ peers: new Map([[2, peer.address]]), secret: "s".repeat(16), requestTimeoutMs: 5_000, now: Date.now, peerFetch });
    // The first reply is not a valid read-index reply; it only puts the connection in the keep-alive pool.
    await transport.readIndex(2, 5_000).catch(() => undefined);
    const error = await transport.forward(2, [{ requestId: "test-1", command: { operations: [{ op: "put", key: "k", value: new Uint8Array([1]), contentType: "application/octet-stream" }] } }])
      .then(() => undefined, (caught: { code?: string }) => caught);
    expect(peer.requests()).toBe(2);
    expect(error).toBeDefined();
    expect(["ECONNREFUSED", "ConnectionRefused"]).not.toContain(error!.code);
  });
}
