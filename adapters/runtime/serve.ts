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

/** Listen on `hostname:port` with `fetch`. */
export async function serve(options: { fetch: FetchHandler; hostname: string; port: number }): Promise<RunningServer> {
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
  return new Promise((resolve) => {
    const server = nodeServe({ fetch: options.fetch, hostname: options.hostname, port: options.port }, (info) => {
      resolve({ port: info.port, stop: () => new Promise<void>((done) => server.close(() => done())) });
    });
  });
}
