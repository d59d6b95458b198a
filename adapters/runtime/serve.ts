/**
 * Serves a fetch handler on a port with the runtime's own server:
 * Bun.serve, Deno.serve, or @hono/node-server on Node.
 */
import { runtimeName } from "./storage.ts";

/** A listening server. */
export interface RunningServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  /** Stop accepting connections; in-flight requests finish. */
  stop(): Promise<void>;
}

type FetchHandler = (request: Request) => Response | Promise<Response>;

/** The server could not start listening (the port is in use, or binding it is not allowed). */
export class ListenError extends Error {
  override name = "ListenError";
}

type ServeOptions = { fetch: FetchHandler; hostname: string; port: number };

/** What the usual bind failures mean, by error code. */
const LISTEN_FAILURES: Record<string, string> = {
  EADDRINUSE: "the port is in use (stop what holds it or choose another port)",
  EACCES: "binding this port is not allowed for this user",
  EADDRNOTAVAIL: "this host has no such address",
};

/** Listen on `hostname:port` with `fetch`; a failure to bind is a {@link ListenError} naming the address. */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  try {
    return await serveOnRuntime(options);
  } catch (error) {
    // Bind failures carry a system error code on every runtime; anything else is not about the address.
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string") throw error;
    throw new ListenError(`cannot listen on ${options.hostname}:${options.port}: ${LISTEN_FAILURES[code] ?? code}`);
  }
}

async function serveOnRuntime(options: ServeOptions): Promise<RunningServer> {
  const runtime = runtimeName();
  if (runtime === "bun") {
    const bun = (globalThis as unknown as { Bun: { serve(o: unknown): { port: number; stop(force?: boolean): Promise<void> | void } } }).Bun;
    const server = bun.serve({ fetch: options.fetch, hostname: options.hostname, port: options.port, idleTimeout: 60, maxRequestBodySize: 2 ** 31 - 1 });
    return { port: server.port, stop: async () => void (await server.stop(false)) };
  }
  if (runtime === "deno") {
    const deno = (globalThis as unknown as { Deno: { serve(o: unknown, h: FetchHandler): { addr: { port: number }; shutdown(): Promise<void> } } }).Deno;
    const server = deno.serve({ hostname: options.hostname, port: options.port, onListen: () => {} }, options.fetch);
    return { port: server.addr.port, stop: () => server.shutdown() };
  }
  const { serve: nodeServe } = await import("@hono/node-server");
  return new Promise((resolve, reject) => {
    const server = nodeServe({ fetch: options.fetch, hostname: options.hostname, port: options.port }, (info) => {
      server.off("error", reject);
      resolve({ port: info.port, stop: () => new Promise<void>((done) => server.close(() => done())) });
    });
    server.once("error", reject);
  });
}
