/**
 * A minimal HTTP/1.1 client over node:net sockets for peer requests: POST a
 * byte body, read the whole (capped) response into a standard Response.
 * Written because Bun's fetch call costs its JS thread about 100 µs of CPU
 * and 450-600 µs of wall time per request inside a busy node (measured with
 * the Raft port under load; a bare fetch loop shows 30 µs), and Raft sends
 * hundreds of requests a second; a socket write costs a few microseconds.
 *
 * Plain http only (https URLs are handed to the fallback client). Each
 * connection carries one request at a time (no pipelining) and goes back to
 * a per-origin keep-alive pool afterwards; idle connections are closed after
 * PEER_IDLE_MS, below every server's keep-alive timeout, so a request is never
 * written into a connection the server is closing. A failed request is never
 * retried here: the caller decides (Raft messages are resent by Raft; a
 * forwarded write whose fate is unknown is reported as such). Response
 * bodies may be Content-Length, chunked or close-delimited.
 */
import { connect, type Socket } from "node:net";
import { type PeerFetch } from "./peer-fetch.ts";

/** Open connections per origin (host:port); requests beyond wait for one. */
export const PEER_SOCKETS_PER_ORIGIN_MAX = 16;
/** Requests waiting for a connection per origin; beyond it a request fails at once. */
export const PEER_WAITING_REQUESTS_MAX = 1024;
/** A connection idle this long is closed (servers keep idle ones 5 s or more). */
export const PEER_IDLE_MS = 2_000;
/** Largest response head (status line and headers). */
export const PEER_RESPONSE_HEAD_BYTES_MAX = 16 * 1024;

const CRLF_CRLF = Buffer.from("\r\n\r\n");

/** Options of {@link socketPeerFetch}. */
export interface SocketPeerFetchOptions {
  /** Largest response body accepted. */
  responseBytesMax: number;
  /** Client for URLs this one does not speak (https). */
  fallback: PeerFetch;
}

class PeerHttpError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
    this.name = "PeerHttpError";
  }
}

/** The request a connection is busy with. */
interface InFlight {
  resolve: (response: Response) => void;
  reject: (error: unknown) => void;
  parser: ResponseParser;
}

/** One keep-alive connection to an origin. */
class Connection {
  readonly socket: Socket;
  #current: InFlight | undefined;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  closed = false;

  constructor(host: string, port: number, readonly pool: OriginPool) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    this.socket.on("error", (error) => this.#close(error));
    this.socket.on("close", () => this.#close(new PeerHttpError("peer closed the connection", "ECONNRESET")));
  }

  /** Send one request; the connection must be free. */
  send(head: string, body: Uint8Array, responseBytesMax: number, signal: AbortSignal | undefined): Promise<Response> {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    return new Promise<Response>((resolve, reject) => {
      const onAbort = () => this.#close(signal!.reason ?? new DOMException("aborted", "AbortError"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const done = () => signal?.removeEventListener("abort", onAbort);
      this.#current = {
        resolve: (response) => (done(), resolve(response)),
        reject: (error) => (done(), reject(error)),
        parser: new ResponseParser(responseBytesMax),
      };
      if (signal?.aborted) return onAbort();
      const headBytes = Buffer.from(head, "latin1");
      const frame = Buffer.allocUnsafe(headBytes.length + body.length);
      headBytes.copy(frame, 0);
      frame.set(body, headBytes.length);
      this.socket.write(frame);
    });
  }

  #onData(chunk: Buffer): void {
    const current = this.#current;
    if (current === undefined) return this.#close(new PeerHttpError("peer sent bytes with no request in flight"));
    let result: ParsedResponse | undefined;
    try {
      result = current.parser.push(chunk);
    } catch (error) {
      return this.#close(error);
    }
    if (result === undefined) return;
    this.#current = undefined;
    current.resolve(result.response);
    if (result.reusable) this.#park();
    else this.#close(undefined);
  }

  /** Back to the pool, closed once idle for PEER_IDLE_MS. */
  #park(): void {
    this.#idleTimer = setTimeout(() => this.#close(undefined), PEER_IDLE_MS);
    this.pool.release(this);
  }

  /** Close for good; a request in flight fails with `error` (close-delimited bodies complete instead). */
  #close(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.socket.destroy();
    const current = this.#current;
    this.#current = undefined;
    if (current !== undefined) {
      const ended = current.parser.end();
      if (ended !== undefined && error instanceof PeerHttpError && error.code === "ECONNRESET") current.resolve(ended.response);
      else current.reject(error ?? new PeerHttpError("connection closed"));
    }
    this.pool.forget(this);
  }
}

/** The connections to one origin. */
class OriginPool {
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  readonly #waiting: Array<(connection: Connection) => void> = [];

  constructor(readonly host: string, readonly port: number) {}

  /** A free connection: an idle one, a new one under the cap, or the next one released. */
  acquire(): Promise<Connection> {
    const idle = this.#idle.pop();
    if (idle !== undefined) return Promise.resolve(idle);
    if (this.#all.size < PEER_SOCKETS_PER_ORIGIN_MAX) {
      const connection = new Connection(this.host, this.port, this);
      this.#all.add(connection);
      return Promise.resolve(connection);
    }
    if (this.#waiting.length >= PEER_WAITING_REQUESTS_MAX) return Promise.reject(new PeerHttpError(`more than ${PEER_WAITING_REQUESTS_MAX} peer requests waiting for a connection`));
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(connection: Connection): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next(connection);
    else this.#idle.push(connection);
  }

  forget(connection: Connection): void {
    this.#all.delete(connection);
    const at = this.#idle.indexOf(connection);
    if (at >= 0) this.#idle.splice(at, 1);
    // A waiter takes the freed slot with a new connection.
    const next = this.#waiting.shift();
    if (next !== undefined) {
      const replacement = new Connection(this.host, this.port, this);
      this.#all.add(replacement);
      next(replacement);
    }
  }
}

interface ParsedResponse {
  response: Response;
  /** Whether the connection may carry another request. */
  reusable: boolean;
}

/** Incremental parser of one HTTP/1.1 response. */
class ResponseParser {
  #head: Buffer | undefined = Buffer.alloc(0);
  #status = 0;
  #headers = new Headers();
  #mode: "length" | "chunked" | "close" | "none" = "none";
  #remaining = 0;
  #chunks: Buffer[] = [];
  #total = 0;
  #keepAlive = true;
  /** Chunked decoding: bytes of an incomplete size line or trailer kept between pushes. */
  #line = Buffer.alloc(0);
  #chunkState: "size" | "data" | "data-crlf" | "trailer" = "size";

  constructor(readonly bodyBytesMax: number) {}

  /** Feed received bytes; the response once complete. */
  push(chunk: Buffer): ParsedResponse | undefined {
    if (this.#head !== undefined) {
      const head = Buffer.concat([this.#head, chunk]);
      const end = head.indexOf(CRLF_CRLF);
      if (end < 0) {
        if (head.length > PEER_RESPONSE_HEAD_BYTES_MAX) throw new PeerHttpError(`peer response head exceeds ${PEER_RESPONSE_HEAD_BYTES_MAX} bytes`);
        this.#head = head;
        return undefined;
      }
      if (end > PEER_RESPONSE_HEAD_BYTES_MAX) throw new PeerHttpError(`peer response head exceeds ${PEER_RESPONSE_HEAD_BYTES_MAX} bytes`);
      this.#head = undefined;
      this.#parseHead(head.toString("latin1", 0, end));
      if (this.#mode === "none") return this.#finish();
      chunk = head.subarray(end + CRLF_CRLF.length);
    }
    if (this.#mode === "length") return this.#pushLength(chunk);
    if (this.#mode === "chunked") return this.#pushChunked(chunk);
    this.#take(chunk);
    return undefined;
  }

  /** The connection ended: a close-delimited body is complete now; anything else was cut short. */
  end(): ParsedResponse | undefined {
    return this.#head === undefined && this.#mode === "close" ? this.#finish() : undefined;
  }

  #parseHead(text: string): void {
    const lines = text.split("\r\n");
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
    if (status === null) throw new PeerHttpError(`peer sent a malformed status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    this.#status = Number(status[1]);
    if (this.#status < 200) throw new PeerHttpError(`peer answered an interim status ${this.#status}`);
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon <= 0) throw new PeerHttpError("peer sent a malformed header line");
      this.#headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    }
    const connection = this.#headers.get("connection")?.toLowerCase() ?? "";
    this.#keepAlive = lines[0]!.startsWith("HTTP/1.1") ? !connection.includes("close") : connection.includes("keep-alive");
    const length = this.#headers.get("content-length");
    if (this.#status === 204 || this.#status === 304) this.#mode = "none";
    else if (/chunked/i.test(this.#headers.get("transfer-encoding") ?? "")) this.#mode = "chunked";
    else if (length !== null) {
      if (!/^\d+$/.test(length)) throw new PeerHttpError(`peer sent a malformed Content-Length: ${length}`);
      this.#remaining = Number(length);
      if (this.#remaining > this.bodyBytesMax) throw new PeerHttpError(`peer response exceeds ${this.bodyBytesMax} bytes`);
      this.#mode = this.#remaining === 0 ? "none" : "length";
    } else {
      this.#mode = "close";
      this.#keepAlive = false;
    }
  }

  #take(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.#total += bytes.length;
    if (this.#total > this.bodyBytesMax) throw new PeerHttpError(`peer response exceeds ${this.bodyBytesMax} bytes`);
    this.#chunks.push(bytes);
  }

  #pushLength(chunk: Buffer): ParsedResponse | undefined {
    if (chunk.length > this.#remaining) throw new PeerHttpError("peer sent more bytes than its Content-Length");
    this.#take(chunk);
    this.#remaining -= chunk.length;
    return this.#remaining === 0 ? this.#finish() : undefined;
  }

  #pushChunked(chunk: Buffer): ParsedResponse | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.#chunkState === "data") {
        const take = Math.min(this.#remaining, chunk.length - at);
        this.#take(chunk.subarray(at, at + take));
        at += take;
        this.#remaining -= take;
        if (this.#remaining === 0) this.#chunkState = "data-crlf";
        continue;
      }
      const newline = chunk.indexOf(0x0a, at);
      const piece = chunk.subarray(at, newline < 0 ? chunk.length : newline + 1);
      this.#line = this.#line.length === 0 ? Buffer.from(piece) : Buffer.concat([this.#line, piece]);
      at += piece.length;
      if (this.#line.length > PEER_RESPONSE_HEAD_BYTES_MAX) throw new PeerHttpError("peer sent an overlong chunk line");
      if (newline < 0) break;
      const line = this.#line.toString("latin1").replace(/\r?\n$/, "");
      this.#line = Buffer.alloc(0);
      if (this.#chunkState === "data-crlf") {
        if (line !== "") throw new PeerHttpError("peer sent a malformed chunk end");
        this.#chunkState = "size";
      } else if (this.#chunkState === "size") {
        const size = /^([0-9a-fA-F]{1,8})(;.*)?$/.exec(line);
        if (size === null) throw new PeerHttpError("peer sent a malformed chunk size");
        this.#remaining = parseInt(size[1]!, 16);
        this.#chunkState = this.#remaining === 0 ? "trailer" : "data";
      } else if (line === "") {
        if (at !== chunk.length) throw new PeerHttpError("peer sent bytes after its response");
        return this.#finish();
      }
    }
    return undefined;
  }

  #finish(): ParsedResponse {
    const body = this.#mode === "none" ? null : this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const response = new Response(body as Uint8Array<ArrayBuffer> | null, { status: this.#status, headers: this.#headers });
    return { response, reusable: this.#keepAlive };
  }
}

/** Peer requests over pooled keep-alive sockets (see the module comment); https goes to `fallback`. */
export function socketPeerFetch(options: SocketPeerFetchOptions): PeerFetch {
  const pools = new Map<string, OriginPool>();
  return async (url, init) => {
    const target = new URL(url);
    if (target.protocol !== "http:") return options.fallback(url, init);
    const port = Number(target.port || 80);
    const host = target.hostname.replace(/^\[|\]$/g, "");
    let pool = pools.get(target.host);
    if (pool === undefined) pools.set(target.host, (pool = new OriginPool(host, port)));
    let head = `${init.method} ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Length: ${init.body.length}\r\n`;
    for (const [name, value] of Object.entries(init.headers)) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new TypeError(`peer request header ${name} contains a line break`);
      head += `${name}: ${value}\r\n`;
    }
    head += "\r\n";
    init.signal?.throwIfAborted();
    const connection = await pool.acquire();
    return connection.send(head, init.body, options.responseBytesMax, init.signal);
  };
}
