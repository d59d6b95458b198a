/**
 * Answers riding in the response of the POST that asked for them: the slot
 * bookkeeping (which Ready fills a slot, when an empty one gives up), and
 * the transport round trip (the server holds the response for the answers,
 * the client steps them).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type Message, type MessageType } from "../../src/raft/index.ts";
import { ReplySlots } from "../../src/node/reply-slots.ts";
import { createPeerHandler, HttpTransport, type PeerHandler } from "../../src/transport/index.ts";

const message = (type: MessageType, from: number, to: number, index = 0): Message => ({
  type, from, to, term: 1, logTerm: 1, index, entries: [], commit: 0, reject: false, rejectHint: 0,
});

describe("ReplySlots", () => {
  test("a slot is filled by the first Ready started after it opened, not the one in progress", async () => {
    const slots = new ReplySlots(5_000, 8);
    const answers = slots.open(2, 7)!;
    // Ready 7 was already running when the POST's messages were stepped: its messages go by POST.
    expect(slots.divert([message("appResp", 1, 2, 1)], 7)).toHaveLength(1);
    expect(slots.size).toBe(1);
    const rest = slots.divert([message("appResp", 1, 2, 2), message("appResp", 1, 3, 2)], 8);
    expect(rest.map((m) => m.to)).toEqual([3]);
    expect(slots.size).toBe(0);
    expect((await answers).map((m) => m.index)).toEqual([2]);
  });

  test("a filling Ready with nothing for the peer resolves the slot empty", async () => {
    const slots = new ReplySlots(5_000, 8);
    const answers = slots.open(2, 0)!;
    expect(slots.divert([message("app", 1, 3)], 1)).toHaveLength(1);
    expect(await answers).toEqual([]);
  });

  test("an unfilled slot resolves empty after the wait, and on closeAll", async () => {
    const slots = new ReplySlots(30, 8);
    const started = performance.now();
    expect(await slots.open(2, 0)!).toEqual([]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    const closed = new ReplySlots(60_000, 8);
    const pending = closed.open(3, 0)!;
    closed.closeAll();
    expect(await pending).toEqual([]);
    expect(closed.size).toBe(0);
  });

  test("no more than max slots open; beyond that answers go by POST", () => {
    const slots = new ReplySlots(60_000, 2);
    expect(slots.open(2, 0)).toBeDefined();
    expect(slots.open(3, 0)).toBeDefined();
    expect(slots.open(4, 0)).toBeUndefined();
    slots.closeAll();
  });
});

describe("answers in the POST response", () => {
  let server: ReturnType<typeof Bun.serve> | undefined;
  afterEach(() => {
    server?.stop(true);
    server = undefined;
  });

  function peerServer(receive: PeerHandler["receive"]): string {
    const handler = {
      receive,
      forwardWrites: async () => [],
      readIndex: async () => ({ kind: "notLeader", leaderId: 0 }),
      changeMembership: async () => ({ kind: "refused", code: "x", message: "x" }),
      streamEntries: () => new ReadableStream(),
    } as unknown as PeerHandler;
    const fetchHandler = createPeerHandler({ secret: "s".repeat(16), handler, bodyBytesMax: 1 << 20 });
    server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: fetchHandler });
    return `127.0.0.1:${server.port}`;
  }

  test("the server holds the response for the answers and the client steps them", async () => {
    const address = peerServer((messages) => {
      expect(messages.map((m) => m.type)).toEqual(["app"]);
      return new Promise((resolve) => setTimeout(() => resolve([message("appResp", 2, 1, 5)]), 20));
    });
    const replies: Array<{ from: number; messages: Message[] }> = [];
    const transport = new HttpTransport({ peers: new Map([[2, address]]), secret: "s".repeat(16), requestTimeoutMs: 5_000, now: Date.now });
    transport.setEventHandlers({ onSnapshotSent: () => {}, onRemoved: () => {}, onReplies: (from, messages) => replies.push({ from, messages }) });
    transport.send([message("app", 1, 2, 5)]);
    const deadline = Date.now() + 5_000;
    while (replies.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(replies).toHaveLength(1);
    expect(replies[0]!.from).toBe(2);
    expect(replies[0]!.messages.map((m) => [m.type, m.index])).toEqual([["appResp", 5]]);
    expect(transport.counters().requests).toBe(1);
    transport.close();
  });

  test("a POST that calls for no answers is answered at once with 204", async () => {
    let calls = 0;
    const address = peerServer(() => {
      calls++;
      return undefined;
    });
    const transport = new HttpTransport({ peers: new Map([[2, address]]), secret: "s".repeat(16), requestTimeoutMs: 5_000, now: Date.now });
    const replies: Message[][] = [];
    transport.setEventHandlers({ onSnapshotSent: () => {}, onRemoved: () => {}, onReplies: (_from, messages) => replies.push(messages) });
    transport.send([message("appResp", 1, 2)]);
    const deadline = Date.now() + 5_000;
    while (transport.lastSuccessMs(2) === -Infinity && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(calls).toBe(1);
    expect(transport.lastSuccessMs(2)).toBeGreaterThan(0);
    expect(replies).toEqual([]);
    transport.close();
  });
});
