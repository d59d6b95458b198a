/**
 * The HTTP client peers use for Raft requests (messages, forwarded writes,
 * read index, membership). Raft sends hundreds to thousands of requests a
 * second, so the per-request cost of the client matters:
 *
 * - Plain http on every runtime goes through `socketPeerFetch`
 *   (peer-socket.ts): HTTP/1.1 written straight to pooled node:net sockets.
 *   Bun's fetch call blocks its JS thread for 450-600 µs (about 100 µs of
 *   CPU) per request inside a busy node; Deno's fetch costs more CPU per
 *   request than the socket client (bench/peer-client.ts); Node's global
 *   fetch (undici) costs several times node:http.
 * - https goes to the runtime's fetch on Bun and Deno and to
 *   `nodeHttpPeerFetch` (node:http(s) on keep-alive agents) on Node.
 *
 * Streams (entries for a catching-up node) use the global fetch, which streams.
 */
import { socketPeerFetch } from "./peer-socket.ts";
import { runtimeName } from "./storage.ts";

/** A POST of a byte body; what the peer transport needs from fetch. */
export type PeerFetch = (
  url: string,
  init: { method: "POST"; body: Uint8Array; headers: Record<string, string>; signal?: AbortSignal },
) => Promise<Response>;

/** Keep-alive sockets per peer host. */
export const PEER_SOCKETS_MAX = 16;
/** Largest response body a peer may send to one non-streamed request. */
export const PEER_RESPONSE_BYTES_MAX = 64 * 1024 * 1024;

/** The fastest peer client on this runtime. */
export async function runtimePeerFetch(): Promise<PeerFetch> {
  const globalFetch: PeerFetch = (url, init) => fetch(url, init as RequestInit);
  const fallback = runtimeName() === "node" ? await nodeHttpPeerFetch() : globalFetch;
  return socketPeerFetch({ responseBytesMax: PEER_RESPONSE_BYTES_MAX, fallback });
}

/** node:http(s) requests on keep-alive agents, answered as standard Responses (works on any runtime with node:http). */
export async function nodeHttpPeerFetch(options: { responseBytesMax?: number } = {}): Promise<PeerFetch> {
  const [http, https] = await Promise.all([import("node:http"), import("node:https")]);
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: PEER_SOCKETS_MAX }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: PEER_SOCKETS_MAX }),
  };
  const responseBytesMax = options.responseBytesMax ?? PEER_RESPONSE_BYTES_MAX;
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const client = target.protocol === "https:" ? https : target.protocol === "http:" ? http : undefined;
      if (client === undefined) return reject(new TypeError(`peer URL must be http or https: ${url}`));
      const request = client.request(
        target,
        {
          method: init.method,
          agent: agents[target.protocol as "http:" | "https:"],
          headers: { ...init.headers, "Content-Length": String(init.body.length) },
          signal: init.signal,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let total = 0;
          response.on("data", (chunk: Buffer) => {
            total += chunk.length;
            if (total > responseBytesMax) {
              response.destroy(new Error(`peer response exceeds ${responseBytesMax} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.on("error", reject);
          response.on("end", () => {
            const status = response.statusCode ?? 502;
            // Response refuses a body on 204/304; those carry none anyway.
            const body = status === 204 || status === 304 ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
            const headers = new Headers();
            for (const [name, value] of Object.entries(response.headers)) {
              if (typeof value === "string") headers.set(name, value);
              else if (Array.isArray(value)) for (const item of value) headers.append(name, item);
            }
            resolve(new Response(body as Uint8Array<ArrayBuffer> | null, { status, headers }));
          });
        },
      );
      request.on("error", reject);
      request.end(init.body);
    });
}
