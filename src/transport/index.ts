/**
 * Peer transport over HTTP: Raft messages, forwarded writes and read-index
 * requests as CBOR bodies sent with `fetch` to each peer's Raft port, and the
 * fetch handler that serves them. Every request carries the cluster secret;
 * the server compares it in constant time and answers 401 before reading the
 * body when it is wrong. It never crashes on input: bad bodies are 4xx.
 *
 * Messages are fire-and-forget (Raft retries what is lost): per peer at most
 * one POST is in flight and everything queued meanwhile goes in the next one.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { type Message, type NodeId } from "../raft/index.ts";
import { type WriteCommand } from "../ledger/commands.ts";
import { cbor } from "../ledger/entry.ts";
import {
  decodeForwardReplies, decodeForwardRequest, decodeMessages, decodeReadIndexReply, encodeForwardReplies, encodeForwardRequest,
  encodeMessages, encodeReadIndexReply, MESSAGES_PER_BATCH_MAX, WireFormatError, type ForwardedWrite, type ForwardReply, type ReadIndexReply,
} from "./codec.ts";

export { FORWARDED_COMMANDS_MAX, WireFormatError, type ForwardedWrite, type ForwardReply, type ReadIndexReply } from "./codec.ts";

/** Paths on the Raft port. */
export const RAFT_PATHS = { messages: "/raft/v1/messages", forward: "/raft/v1/forward", readIndex: "/raft/v1/read-index" } as const;
/** Most messages queued for one peer while its previous POST is in flight; beyond it new ones are dropped. */
const QUEUED_MESSAGES_MAX = 50_000;
const CBOR_TYPE = "application/cbor";
const encoder = new TextEncoder();

/** Base URL for an address given as `host:port` or a full `http(s)://` URL. */
export function peerUrl(address: string): string {
  return /^https?:\/\//.test(address) ? address.replace(/\/+$/, "") : `http://${address}`;
}

/** Constant-time equality of two secrets (compares their SHA-256 digests, so lengths leak nothing either). */
export function secretsEqual(a: string, b: string): boolean {
  const left = sha256(encoder.encode(a));
  const right = sha256(encoder.encode(b));
  let diff = 0;
  for (let i = 0; i < left.length; i++) diff |= left[i]! ^ right[i]!;
  return diff === 0;
}

/** Options of {@link HttpTransport}. */
export interface HttpTransportOptions {
  /** Raft address (`host:port` or URL) of every peer, self excluded. */
  peers: Map<NodeId, string>;
  secret: string;
  /** Deadline of one message POST. */
  requestTimeoutMs: number;
  /** Clock for reachability; injected so tests control time. */
  now: () => number;
}

interface PeerQueue {
  url: string;
  queued: Message[];
  sending: boolean;
  lastSuccessMs: number;
}

/** Sends to peers over HTTP with `fetch`. */
export class HttpTransport {
  readonly #options: HttpTransportOptions;
  readonly #peers = new Map<NodeId, PeerQueue>();
  #closed = false;

  constructor(options: HttpTransportOptions) {
    this.#options = options;
    for (const [id, address] of options.peers) this.#peers.set(id, { url: peerUrl(address), queued: [], sending: false, lastSuccessMs: -Infinity });
  }

  /** Queue `messages` for their peers; unknown peers and overflow are dropped (Raft retries). */
  send(messages: readonly Message[]): void {
    if (this.#closed) return;
    for (const message of messages) {
      const peer = this.#peers.get(message.to);
      if (peer === undefined || peer.queued.length >= QUEUED_MESSAGES_MAX) continue;
      peer.queued.push(message);
    }
    for (const peer of this.#peers.values()) if (!peer.sending && peer.queued.length > 0) void this.#flush(peer);
  }

  async #flush(peer: PeerQueue): Promise<void> {
    peer.sending = true;
    try {
      while (peer.queued.length > 0 && !this.#closed) {
        const batch = peer.queued.splice(0, MESSAGES_PER_BATCH_MAX);
        try {
          const response = await this.#post(peer.url + RAFT_PATHS.messages, encodeMessages(batch), this.#options.requestTimeoutMs);
          await response.body?.cancel();
          if (response.ok) peer.lastSuccessMs = this.#options.now();
        } catch {
          // Lost messages are Raft's normal case: heartbeats and retries resend what matters.
        }
      }
    } finally {
      peer.sending = false;
    }
  }

  #post(url: string, body: Uint8Array, timeoutMs: number): Promise<Response> {
    return fetch(url, {
      method: "POST",
      body: body as Uint8Array<ArrayBuffer>,
      headers: { "Content-Type": CBOR_TYPE, Authorization: `Bearer ${this.#options.secret}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
  }

  async #call(to: NodeId, path: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const peer = this.#peers.get(to);
    if (peer === undefined) throw new Error(`no peer ${to}`);
    const response = await this.#post(peer.url + path, body, timeoutMs);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (!response.ok) throw new Error(`peer ${to} answered ${response.status}`);
    peer.lastSuccessMs = this.#options.now();
    return bytes;
  }

  /** Ask peer `to` (the leader) to propose `writes` (at most FORWARDED_COMMANDS_MAX); one reply per write. Network failures reject. */
  async forwardWrites(to: NodeId, writes: readonly ForwardedWrite[], timeoutMs: number): Promise<ForwardReply[]> {
    return decodeForwardReplies(await this.#call(to, RAFT_PATHS.forward, encodeForwardRequest(writes), timeoutMs), writes.length);
  }

  /** Ask peer `to` (the leader) for a read index. */
  async readIndex(to: NodeId, timeoutMs: number): Promise<ReadIndexReply> {
    return decodeReadIndexReply(await this.#call(to, RAFT_PATHS.readIndex, cbor.encode(null), timeoutMs));
  }

  /** Time of the last successful exchange with `peer`, or -Infinity. */
  lastSuccessMs(peer: NodeId): number {
    return this.#peers.get(peer)?.lastSuccessMs ?? -Infinity;
  }

  close(): void {
    this.#closed = true;
  }
}

/** What the Raft port serves; implemented by the Raft node. */
export interface PeerHandler {
  /** Step validated messages from a peer. */
  receive(messages: Message[]): void;
  /** Propose writes forwarded by a follower and answer, one reply per write, once applied here. */
  forwardWrites(writes: ForwardedWrite[]): Promise<ForwardReply[]>;
  /** Confirm leadership and return the commit index a follower must apply before reading. */
  readIndex(): Promise<ReadIndexReply>;
}

/** Options of {@link createPeerHandler}. */
export interface PeerServerOptions {
  secret: string;
  handler: PeerHandler;
  /** Largest request body accepted. */
  bodyBytesMax: number;
}

function plain(status: number, text: string): Response {
  return new Response(text, { status, headers: { "Content-Type": "text/plain; charset=utf-8" } });
}

function cborResponse(bytes: Uint8Array): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, { status: 200, headers: { "Content-Type": CBOR_TYPE } });
}

/** The fetch handler of the Raft port. */
export function createPeerHandler(options: PeerServerOptions): (request: Request) => Promise<Response> {
  return async (request) => {
    const authorization = request.headers.get("authorization") ?? "";
    const presented = authorization.startsWith("Bearer ") ? authorization.slice("Bearer ".length) : "";
    if (!secretsEqual(presented, options.secret)) return plain(401, "cluster secret missing or wrong");
    const path = new URL(request.url).pathname;
    if (!Object.values(RAFT_PATHS).includes(path as never)) return plain(404, "no such Raft route");
    if (request.method !== "POST") return plain(405, "POST only");
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > options.bodyBytesMax) return plain(413, "body too large");
    try {
      const body = new Uint8Array(await request.arrayBuffer());
      if (body.length > options.bodyBytesMax) return plain(413, "body too large");
      if (path === RAFT_PATHS.messages) {
        options.handler.receive(decodeMessages(body));
        return new Response(null, { status: 204 });
      }
      if (path === RAFT_PATHS.forward) return cborResponse(encodeForwardReplies(await options.handler.forwardWrites(decodeForwardRequest(body))));
      return cborResponse(encodeReadIndexReply(await options.handler.readIndex()));
    } catch (error) {
      if (error instanceof WireFormatError) return plain(400, error.message);
      if (error instanceof PeerRequestError) return plain(error.status, error.message);
      console.error("raft port: internal error:", error);
      return plain(500, "internal error");
    }
  };
}

/** A peer request refused for a reason the handler names (e.g. a message for another node). */
export class PeerRequestError extends Error {
  constructor(readonly status: 400 | 409 | 503, message: string) {
    super(message);
    this.name = "PeerRequestError";
  }
}
