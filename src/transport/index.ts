/**
 * Peer transport over HTTP: Raft messages, forwarded writes and read-index
 * requests as CBOR bodies sent with `fetch` to each peer's Raft port, and the
 * fetch handler that serves them. Every request carries the cluster secret;
 * the server compares it in constant time and answers 401 before reading the
 * body when it is wrong. It never crashes on input: bad bodies are 4xx.
 *
 * Messages are fire-and-forget (Raft retries what is lost): per peer at most
 * one POST is in flight and everything queued meanwhile goes in the next one.
 * Writes a follower forwards to the leader ride in the same POSTs (one
 * request per round trip carries both the follower's Raft answers and its
 * clients' writes); the reply then carries one ack per write.
 *
 * A POST whose messages call for an answer (appends, heartbeats, votes)
 * gets the receiver's Raft answers in its response: the receiver holds the
 * response until its next Ready has been persisted (at most
 * REPLY_WAIT_MS) and puts that Ready's messages for the sender in it,
 * instead of POSTing them back. One round trip then carries an append and
 * its acknowledgement, halving the requests (and their wake-ups) per round.
 * A snapshot message travels in a POST of its own, and its delivery is
 * reported (the core must hear how a snapshot send ended). Every request
 * names the sender's Raft address in a header, so a node whose member book
 * does not name the sender yet (a joining node, or one catching up from an
 * old snapshot) can answer it.
 *
 * The peer set changes with the membership (`setPeers`). A peer answering
 * 410 says this node was removed from the cluster.
 */
import { defaultHasher } from "../merkle/index.ts";
import { type Message, type NodeId } from "../raft/index.ts";
import { cbor } from "../ledger/entry.ts";
import {
  decodeEntriesRequest, decodeMembershipReply, decodeMembershipRequest, decodePeerBatch, decodePeerReply, decodeReadIndexReply,
  encodeEntriesRequest, encodeMembershipReply, encodeMembershipRequest, encodePeerBatch, encodePeerReply, encodeReadIndexReply,
  FORWARDED_COMMANDS_MAX, MESSAGES_PER_BATCH_MAX, WireFormatError, type EntriesRequest, type ForwardAck, type ForwardedWrite,
  type MembershipReply, type MembershipRequest, type ReadIndexReply,
} from "./codec.ts";

export {
  FORWARDED_COMMANDS_MAX, REQUEST_ID_CHARS_MAX, WireFormatError, type EntriesRequest, type ForwardAck, type ForwardedWrite, type ForwardReply,
  type MemberInfo, type MembershipReply, type MembershipRequest, type ReadIndexReply,
} from "./codec.ts";

/** Paths on the Raft port. */
export const RAFT_PATHS = {
  messages: "/raft/v1/messages",
  readIndex: "/raft/v1/read-index",
  membership: "/raft/v1/membership",
  entries: "/raft/v1/entries",
} as const;
/** Header naming the sender's Raft address (host:port or URL) on every peer request. */
export const SENDER_ADDRESS_HEADER = "x-scribe-raft-address";
/** Longest a messages POST waits for the receiver's answers (its next persisted Ready) before answering without them. */
export const REPLY_WAIT_MS = 100;
/** Most POSTs waiting for answers at once on one node; beyond it answers go back by POST. */
export const REPLY_SLOTS_MAX = 256;
/** Most messages queued for one peer while its previous POST is in flight; beyond it new ones are dropped. */
const QUEUED_MESSAGES_MAX = 50_000;
const CBOR_TYPE = "application/cbor";
/** Length-prefixed CBOR frames (see src/node/entries-stream.ts). */
const ENTRIES_STREAM_TYPE = "application/vnd.scribe.entries";
const encoder = new TextEncoder();

/** Base URL for an address given as `host:port` or a full `http(s)://` URL. */
export function peerUrl(address: string): string {
  return /^https?:\/\//.test(address) ? address.replace(/\/+$/, "") : `http://${address}`;
}

/**
 * Constant-time check of a presented secret against the expected one: it
 * compares SHA-256 digests, so lengths leak nothing either. The expected
 * digest is computed once; each check hashes only the presented secret, with
 * the runtime's fast SHA-256 where there is one (every peer request pays it).
 */
export function secretChecker(expected: string): (presented: string) => boolean {
  const want = defaultHasher.sha256(encoder.encode(expected)).slice();
  return (presented) => {
    const got = defaultHasher.sha256(encoder.encode(presented));
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff |= want[i]! ^ got[i]!;
    return diff === 0;
  };
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
  /** This node's Raft address, sent with every request. */
  selfAddress?: string;
  /** Client for non-streamed peer requests (default: global fetch; Node passes a node:http one, see adapters/runtime/peer-fetch.ts). */
  peerFetch?: (url: string, init: { method: "POST"; body: Uint8Array; headers: Record<string, string>; signal?: AbortSignal }) => Promise<Response>;
}

/** What the transport tells its node (set once by the node with `setEventHandlers`). */
export interface TransportEvents {
  /** How the POST carrying a snapshot message to `to` ended (delivered = the peer accepted it). */
  onSnapshotSent(to: NodeId, delivered: boolean): void;
  /** A peer answered 410: it knows this node was removed from the cluster. */
  onRemoved(by: NodeId): void;
  /** Raft messages peer `from` sent back in its response to a POST (validated like received ones). */
  onReplies(from: NodeId, messages: Message[]): void;
}

/** Writes forwarded in one call, waiting for a POST to the leader. */
interface QueuedWrites {
  writes: readonly ForwardedWrite[];
  resolve: (acks: ForwardAck[]) => void;
  reject: (error: unknown) => void;
}

interface PeerQueue {
  id: NodeId;
  url: string;
  queued: Message[];
  writes: QueuedWrites[];
  sending: boolean;
  lastSuccessMs: number;
}

/** Sends to peers over HTTP with `fetch`. */
export class HttpTransport {
  readonly #options: HttpTransportOptions;
  readonly #peers = new Map<NodeId, PeerQueue>();
  #events: TransportEvents | undefined;
  #closed = false;
  readonly #counters = { requests: 0, messages: 0, forwardedWrites: 0 };

  constructor(options: HttpTransportOptions) {
    this.#options = options;
    this.setPeers(options.peers);
  }

  /** Replace the peer set (self excluded): new peers are added, gone ones dropped with their queues, moved ones re-addressed. */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [id, peer] of [...this.#peers]) {
      if (peers.has(id)) continue;
      this.#peers.delete(id);
      failWrites(peer.writes.splice(0), new Error(`peer ${id} left the peer set`));
    }
    for (const [id, address] of peers) {
      const peer = this.#peers.get(id);
      if (peer === undefined) this.#peers.set(id, { id, url: peerUrl(address), queued: [], writes: [], sending: false, lastSuccessMs: -Infinity });
      else peer.url = peerUrl(address);
    }
  }

  /** Tell `events` about snapshot deliveries and removals (the node calls this once). */
  setEventHandlers(events: TransportEvents): void {
    this.#events = events;
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

  /**
   * Ask peer `to` (the leader) to propose `writes` (at most FORWARDED_COMMANDS_MAX): they go in the next POST
   * to it. One ack per write. Rejects when the POST fails (a refused connection sent nothing) or is refused.
   */
  forward(to: NodeId, writes: readonly ForwardedWrite[]): Promise<ForwardAck[]> {
    const peer = this.#peers.get(to);
    if (peer === undefined) return Promise.reject(new Error(`no peer ${to}`));
    if (this.#closed) return Promise.reject(new Error("transport closed"));
    if (writes.length === 0 || writes.length > FORWARDED_COMMANDS_MAX) throw new Error(`assertion: ${writes.length} writes forwarded at once`);
    return new Promise((resolve, reject) => {
      peer.writes.push({ writes, resolve, reject });
      if (!peer.sending) void this.#flush(peer);
    });
  }

  async #flush(peer: PeerQueue): Promise<void> {
    peer.sending = true;
    try {
      while ((peer.queued.length > 0 || peer.writes.length > 0) && !this.#closed) {
        const batch = peer.queued.length === 0 ? [] : peer.queued.splice(0, nextBatchLength(peer.queued));
        // A snapshot travels alone (it may take long); writes wait for the next POST.
        const snapshotTo = batch[0]?.type === "snap" ? batch[0].to : undefined;
        const writes = snapshotTo === undefined ? takeWrites(peer.writes) : [];
        const delivered = await this.#postBatch(peer, batch, writes);
        if (snapshotTo !== undefined) this.#events?.onSnapshotSent(snapshotTo, delivered);
      }
    } finally {
      peer.sending = false;
    }
  }

  /** One POST of `messages` and `writes`; whether the peer took it. Settles every entry of `writes`. */
  async #postBatch(peer: PeerQueue, messages: readonly Message[], writes: readonly QueuedWrites[]): Promise<boolean> {
    const forwarded = writes.flatMap((queued) => queued.writes);
    this.#counters.requests++;
    this.#counters.messages += messages.length;
    this.#counters.forwardedWrites += forwarded.length;
    try {
      const response = await this.#post(peer.url + RAFT_PATHS.messages, encodePeerBatch(messages, forwarded), this.#options.requestTimeoutMs);
      if (response.status === 410) this.#events?.onRemoved(peer.id);
      if (response.status !== 200) {
        await response.body?.cancel();
        if (!response.ok) failWrites(writes, new Error(`peer answered ${response.status}`));
        else if (forwarded.length > 0) failWrites(writes, new Error(`peer answered ${response.status} without acks`));
      } else {
        const { acks, messages: replies } = decodePeerReply(new Uint8Array(await response.arrayBuffer()), forwarded.length);
        let start = 0;
        for (const queued of writes) queued.resolve(acks.slice(start, (start += queued.writes.length)));
        if (replies.length > 0) this.#events?.onReplies(peer.id, replies);
      }
      if (response.ok) peer.lastSuccessMs = this.#options.now();
      return response.ok;
    } catch (error) {
      // Lost messages are Raft's normal case: heartbeats and retries resend what matters. Writes learn of it.
      failWrites(writes, error);
      return false;
    }
  }

  /** POST `body`; `streamed` responses always go through the global fetch, which streams. */
  #post(url: string, body: Uint8Array, timeoutMs: number | AbortSignal, streamed = false): Promise<Response> {
    const headers: Record<string, string> = { "Content-Type": CBOR_TYPE, Authorization: `Bearer ${this.#options.secret}` };
    if (this.#options.selfAddress !== undefined) headers[SENDER_ADDRESS_HEADER] = this.#options.selfAddress;
    const signal = typeof timeoutMs === "number" ? AbortSignal.timeout(timeoutMs) : timeoutMs;
    const client = streamed ? undefined : this.#options.peerFetch;
    if (client !== undefined) return client(url, { method: "POST", body, headers, signal });
    return fetch(url, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers, signal });
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

  /** Ask peer `to` (the leader) for a read index. */
  async readIndex(to: NodeId, timeoutMs: number): Promise<ReadIndexReply> {
    return decodeReadIndexReply(await this.#call(to, RAFT_PATHS.readIndex, cbor.encode(null), timeoutMs));
  }

  /** Ask peer `to` (the leader) to make a membership change and answer once it is applied there. */
  async forwardMembership(to: NodeId, request: MembershipRequest, timeoutMs: number): Promise<MembershipReply> {
    return decodeMembershipReply(await this.#call(to, RAFT_PATHS.membership, encodeMembershipRequest(request), timeoutMs));
  }

  /**
   * Open a stream of ledger entries [fromSeq, toSeq) from the Raft port at
   * `address` (any member holding them). The caller reads and checks the
   * body and owns `signal` (its timeouts). Rejects unless the peer answers 200.
   */
  async streamEntries(address: string, request: EntriesRequest, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const response = await this.#post(peerUrl(address) + RAFT_PATHS.entries, encodeEntriesRequest(request), signal, true);
    if (!response.ok || response.body === null) {
      const text = await response.text().catch(() => "");
      throw new Error(`peer ${address} answered ${response.status} to an entries stream: ${text.slice(0, 200)}`);
    }
    return response.body;
  }

  /** Message POSTs sent, the Raft messages and forwarded writes they carried (since start). */
  counters(): { requests: number; messages: number; forwardedWrites: number } {
    return { ...this.#counters };
  }

  /** Time of the last successful exchange with `peer`, or -Infinity. */
  lastSuccessMs(peer: NodeId): number {
    return this.#peers.get(peer)?.lastSuccessMs ?? -Infinity;
  }

  close(): void {
    this.#closed = true;
    for (const peer of this.#peers.values()) failWrites(peer.writes.splice(0), new Error("transport closed"));
  }
}

/** Queued writes for one POST: whole calls, at most FORWARDED_COMMANDS_MAX writes (each call holds at most that). */
function takeWrites(queue: QueuedWrites[]): QueuedWrites[] {
  let count = 0;
  let calls = 0;
  while (calls < queue.length && count + queue[calls]!.writes.length <= FORWARDED_COMMANDS_MAX) count += queue[calls++]!.writes.length;
  return queue.splice(0, calls);
}

function failWrites(writes: readonly QueuedWrites[], error: unknown): void {
  for (const queued of writes) queued.reject(error);
}

/** Messages up to (not including) the first snapshot message, or the snapshot message alone. */
function nextBatchLength(queued: readonly Message[]): number {
  const limit = Math.min(queued.length, MESSAGES_PER_BATCH_MAX);
  if (queued[0]!.type === "snap") return 1;
  for (let i = 1; i < limit; i++) if (queued[i]!.type === "snap") return i;
  return limit;
}

/** What the Raft port serves; implemented by the Raft node. */
export interface PeerHandler {
  /**
   * Step validated messages from a peer, sent from Raft address `senderAddress` (the header, if present).
   * When they call for answers, returns the answers for the sender from the node's next persisted Ready
   * (resolving within REPLY_WAIT_MS, with whatever that is; the rest goes out by POST as usual).
   */
  receive(messages: Message[], senderAddress: string | undefined): Promise<Message[]> | undefined;
  /** Propose writes forwarded by a follower (they came with its messages) and ack each once proposed (or refused). */
  forwardWrites(writes: ForwardedWrite[]): Promise<ForwardAck[]>;
  /** Confirm leadership and return the commit index a follower must apply before reading. */
  readIndex(): Promise<ReadIndexReply>;
  /** Make a membership change forwarded by a follower (leader only) and answer once applied. */
  changeMembership(request: MembershipRequest): Promise<MembershipReply>;
  /** Stream ledger entries [fromSeq, toSeq); throws PeerRequestError(409) when this node does not hold them. */
  streamEntries(request: EntriesRequest): ReadableStream<Uint8Array>;
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
  const secretMatches = secretChecker(options.secret);
  return async (request) => {
    const authorization = request.headers.get("authorization") ?? "";
    const presented = authorization.startsWith("Bearer ") ? authorization.slice("Bearer ".length) : "";
    if (!secretMatches(presented)) return plain(401, "cluster secret missing or wrong");
    const path = new URL(request.url).pathname;
    if (!Object.values(RAFT_PATHS).includes(path as never)) return plain(404, "no such Raft route");
    if (request.method !== "POST") return plain(405, "POST only");
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > options.bodyBytesMax) return plain(413, "body too large");
    try {
      const body = new Uint8Array(await request.arrayBuffer());
      if (body.length > options.bodyBytesMax) return plain(413, "body too large");
      if (path === RAFT_PATHS.messages) {
        const { messages, writes } = decodePeerBatch(body);
        const replies = options.handler.receive(messages, request.headers.get(SENDER_ADDRESS_HEADER) ?? undefined);
        const acks = writes.length === 0 ? [] : await options.handler.forwardWrites(writes);
        const answers = replies === undefined ? [] : await replies;
        if (acks.length === 0 && answers.length === 0) return new Response(null, { status: 204 });
        return cborResponse(encodePeerReply({ acks, messages: answers }));
      }
      if (path === RAFT_PATHS.membership) return cborResponse(encodeMembershipReply(await options.handler.changeMembership(decodeMembershipRequest(body))));
      if (path === RAFT_PATHS.entries) {
        const stream = options.handler.streamEntries(decodeEntriesRequest(body));
        return new Response(stream, { status: 200, headers: { "Content-Type": ENTRIES_STREAM_TYPE } });
      }
      return cborResponse(encodeReadIndexReply(await options.handler.readIndex()));
    } catch (error) {
      if (error instanceof WireFormatError) return plain(400, error.message);
      if (error instanceof PeerRequestError) return plain(error.status, error.message);
      console.error("raft port: internal error:", error);
      return plain(500, "internal error");
    }
  };
}

/** A peer request refused for a reason the handler names (e.g. a message for another node; 410: the sender was removed). */
export class PeerRequestError extends Error {
  constructor(readonly status: 400 | 409 | 410 | 503, message: string) {
    super(message);
    this.name = "PeerRequestError";
  }
}

/**
 * Whether a peer request failed because the connection was refused: nothing was sent, so asking the (new)
 * leader again is safe (test/cluster/forward-resend.test.ts pins down that fetch does not re-send a POST).
 */
export function isConnectionRefused(error: unknown): boolean {
  const code = (error as { code?: unknown; cause?: { code?: unknown } }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
  return code === "ConnectionRefused" || code === "ECONNREFUSED";
}
