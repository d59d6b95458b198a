/**
 * A fault-injecting TCP proxy for real-process cluster tests. It has one
 * listener per DIRECTED peer link: node `from` is configured to reach node
 * `to` at `port(from, to)`, and the proxy passes those connections on to
 * wherever `to` listens now (`setTarget`, updated when a node restarts on a
 * new port). The test then controls each link:
 *
 * - `cut(from, to, mode)` (one-way), `partition(a, b)`, `isolate(node)`:
 *   live connections of the link are reset, new ones are either reset at
 *   once (`refuse`: the client sees ECONNRESET, the nearest a proxy that
 *   keeps its port can come to ECONNREFUSED) or accepted and never answered
 *   (`blackhole`: the client's request must time out); `heal()` reopens
 *   every link and resets the connections a blackhole was holding.
 * - `delay(from, to, ms)`: every byte `from` sends on the link reaches `to`
 *   `ms` later (replies travel undelayed; `delay(to, from)` delays `to`'s own
 *   requests). At most `bufferedBytesMax` delayed bytes are held per
 *   connection; beyond that the proxy stops reading from the client, so TCP
 *   backpressure slows it instead of the proxy's memory growing.
 *
 * A link is directed at the connection level: cutting `from -> to` stops
 * `from`'s requests to `to` (and their replies) while `to`'s own connections
 * to `from` still work. That is the asymmetry Raft's messages see (each
 * message is a request on its sender's connection); TCP itself cannot lose
 * one direction of a connection and keep the other.
 *
 * It must never crash the test: every socket has an error handler, and a
 * failed upstream connect just resets the client side.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

/** What a cut link does with new connections: reset them at once, or accept and never answer. */
export type CutMode = "refuse" | "blackhole";

/** Default bound on delayed bytes held per connection. */
export const BUFFERED_BYTES_MAX_DEFAULT = 1024 * 1024;
const HOST = "127.0.0.1";

/** Options of {@link FaultProxy.open}. */
export interface FaultProxyOptions {
  /** Every node id; a link is opened for each ordered pair of distinct ids. */
  nodeIds: readonly number[];
  /** Most delayed bytes held per connection before the proxy stops reading from its client. */
  bufferedBytesMax?: number;
}

/** Counters of one link, for tests of the proxy itself. */
export interface LinkStats {
  /** Connections accepted on the listener. */
  accepted: number;
  /** Connections reset on arrival (refused link, or no reachable target). */
  reset: number;
  /** Connections accepted into a blackhole. */
  blackholed: number;
  /** Largest number of delayed bytes ever held for one connection of this link. */
  bufferedBytesPeak: number;
}

/** One client connection and its upstream, with the client's delayed bytes. */
interface Pipe {
  client: Socket;
  upstream: Socket;
  queue: Array<{ chunk: Buffer; dueMs: number }>;
  queuedBytes: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Waiting for the upstream to drain before writing more. */
  blocked: boolean;
  clientEnded: boolean;
}

interface Link {
  from: number;
  to: number;
  server: Server;
  port: number;
  cut: CutMode | undefined;
  delayMs: number;
  pipes: Set<Pipe>;
  /** Connections held open, unanswered, by a blackhole. */
  held: Set<Socket>;
  stats: LinkStats;
}

const linkName = (from: number, to: number) => `${from}->${to}`;

/** Reset a socket (RST), ignoring a socket that is already gone. */
function reset(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

export class FaultProxy {
  readonly #links = new Map<string, Link>();
  readonly #targets = new Map<number, number>();
  readonly #bufferedBytesMax: number;
  #closed = false;

  private constructor(bufferedBytesMax: number) {
    this.#bufferedBytesMax = bufferedBytesMax;
  }

  /** Open one listener on an ephemeral loopback port per ordered pair of `nodeIds`. */
  static async open(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options.bufferedBytesMax ?? BUFFERED_BYTES_MAX_DEFAULT);
    for (const from of options.nodeIds) {
      for (const to of options.nodeIds) if (from !== to) await proxy.#listen(from, to);
    }
    return proxy;
  }

  async #listen(from: number, to: number): Promise<void> {
    const server = createServer({ allowHalfOpen: true });
    const link: Link = {
      from, to, server, port: 0, cut: undefined, delayMs: 0, pipes: new Set(), held: new Set(),
      stats: { accepted: 0, reset: 0, blackholed: 0, bufferedBytesPeak: 0 },
    };
    server.on("connection", (socket) => this.#accept(link, socket));
    server.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, HOST, () => resolve());
    });
    link.port = (server.address() as { port: number }).port;
    this.#links.set(linkName(from, to), link);
  }

  #link(from: number, to: number): Link {
    const link = this.#links.get(linkName(from, to));
    if (link === undefined) throw new Error(`fault proxy: no link ${linkName(from, to)}`);
    return link;
  }

  /** The port node `from` must use as the Raft address of node `to`. */
  port(from: number, to: number): number {
    return this.#link(from, to).port;
  }

  /** Where node `to` accepts Raft connections now; undefined while it is down (new connections are reset). */
  setTarget(to: number, port: number | undefined): void {
    if (port === undefined) this.#targets.delete(to);
    else this.#targets.set(to, port);
  }

  /** Cut the link `from -> to` (one way): reset its live connections; `mode` decides what new ones get. */
  cut(from: number, to: number, mode: CutMode = "refuse"): void {
    const link = this.#link(from, to);
    link.cut = mode;
    for (const pipe of link.pipes) this.#destroyPipe(link, pipe);
  }

  /** Cut both links between `a` and `b`. */
  partition(a: number, b: number, mode: CutMode = "refuse"): void {
    this.cut(a, b, mode);
    this.cut(b, a, mode);
  }

  /** Cut every link to and from `node`. */
  isolate(node: number, mode: CutMode = "refuse"): void {
    for (const link of this.#links.values()) if (link.from === node || link.to === node) this.cut(link.from, link.to, mode);
  }

  /** Reopen every cut link (delays stay); connections a blackhole held are reset, so their clients retry at once. */
  heal(): void {
    for (const link of this.#links.values()) {
      link.cut = undefined;
      for (const socket of link.held) reset(socket);
      link.held.clear();
    }
  }

  /** Delay every byte `from` sends on the link `from -> to` by `ms` (0 removes the delay). */
  delay(from: number, to: number, ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) throw new Error(`fault proxy: delay must be a finite number of ms >= 0, got ${ms}`);
    this.#link(from, to).delayMs = ms;
  }

  /** Remove every delay. */
  clearDelays(): void {
    for (const link of this.#links.values()) link.delayMs = 0;
  }

  /** Whether the link `from -> to` is cut, and how. */
  cutMode(from: number, to: number): CutMode | undefined {
    return this.#link(from, to).cut;
  }

  /** Counters of the link `from -> to`. */
  stats(from: number, to: number): Readonly<LinkStats> {
    return { ...this.#link(from, to).stats };
  }

  /** Live proxied connections on the link `from -> to`. */
  liveConnections(from: number, to: number): number {
    return this.#link(from, to).pipes.size;
  }

  /** Stop every listener and reset every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closing: Array<Promise<void>> = [];
    for (const link of this.#links.values()) {
      link.cut = "refuse";
      for (const pipe of link.pipes) this.#destroyPipe(link, pipe);
      for (const socket of link.held) reset(socket);
      link.held.clear();
      closing.push(new Promise((resolve) => link.server.close(() => resolve())));
    }
    await Promise.all(closing);
  }

  #accept(link: Link, client: Socket): void {
    client.on("error", () => {});
    link.stats.accepted++;
    const target = this.#targets.get(link.to);
    if (link.cut === "refuse" || target === undefined || this.#closed) {
      link.stats.reset++;
      reset(client);
      return;
    }
    if (link.cut === "blackhole") {
      link.stats.blackholed++;
      client.pause();
      link.held.add(client);
      client.on("close", () => link.held.delete(client));
      return;
    }
    // Nothing is read from the client until the upstream is connected.
    client.pause();
    const upstream = connect({ port: target, host: HOST, allowHalfOpen: true });
    const pipe: Pipe = { client, upstream, queue: [], queuedBytes: 0, timer: undefined, blocked: false, clientEnded: false };
    link.pipes.add(pipe);
    upstream.on("error", () => this.#destroyPipe(link, pipe));
    client.on("close", () => this.#destroyPipe(link, pipe));
    upstream.on("close", () => this.#destroyPipe(link, pipe));
    upstream.once("connect", () => {
      client.on("data", (chunk: Buffer) => this.#fromClient(link, pipe, chunk));
      client.on("end", () => {
        pipe.clientEnded = true;
        this.#drain(link, pipe);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (!client.write(chunk)) {
          upstream.pause();
          client.once("drain", () => upstream.resume());
        }
      });
      upstream.on("end", () => client.end());
      client.resume();
    });
  }

  #fromClient(link: Link, pipe: Pipe, chunk: Buffer): void {
    const last = pipe.queue.at(-1);
    // Order is kept: a chunk is never due before the one ahead of it, even if the delay just shrank.
    pipe.queue.push({ chunk, dueMs: Math.max(Date.now() + link.delayMs, last?.dueMs ?? 0) });
    pipe.queuedBytes += chunk.length;
    link.stats.bufferedBytesPeak = Math.max(link.stats.bufferedBytesPeak, pipe.queuedBytes);
    if (pipe.queuedBytes >= this.#bufferedBytesMax) pipe.client.pause();
    this.#drain(link, pipe);
  }

  /** Write every due chunk upstream, then wait for the next one to fall due (or for the upstream to drain). */
  #drain(link: Link, pipe: Pipe): void {
    if (pipe.timer !== undefined || pipe.blocked || !link.pipes.has(pipe)) return;
    const { upstream, client } = pipe;
    while (pipe.queue.length > 0) {
      const head = pipe.queue[0]!;
      const waitMs = head.dueMs - Date.now();
      if (waitMs > 0) {
        pipe.timer = setTimeout(() => {
          pipe.timer = undefined;
          this.#drain(link, pipe);
        }, waitMs);
        return;
      }
      pipe.queue.shift();
      pipe.queuedBytes -= head.chunk.length;
      if (pipe.queuedBytes < this.#bufferedBytesMax && !pipe.clientEnded) client.resume();
      if (!upstream.write(head.chunk)) {
        pipe.blocked = true;
        upstream.once("drain", () => {
          pipe.blocked = false;
          this.#drain(link, pipe);
        });
        return;
      }
    }
    if (pipe.clientEnded) upstream.end();
  }

  #destroyPipe(link: Link, pipe: Pipe): void {
    if (!link.pipes.delete(pipe)) return;
    clearTimeout(pipe.timer);
    pipe.queue = [];
    pipe.queuedBytes = 0;
    reset(pipe.client);
    pipe.upstream.destroy();
  }
}
