/**
 * The fault proxy on its own, in front of small loopback servers: bytes pass
 * both ways, cuts (refused and blackholed, one-way, partitions, isolation)
 * hit exactly the links they name and heal, delays delay only the named
 * direction, delayed bytes are bounded per connection, and socket errors on
 * either side never escape.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import { createHash } from "node:crypto";
import { FaultProxy } from "./fault-proxy.ts";
import { until } from "./poll.ts";

/** How long a request may take before a reachability probe calls the link dead. */
const PROBE_TIMEOUT_MS = 400;
/** Bound on the time a reset link may take to fail a request (it must not wait for a timeout). */
const FAST_FAILURE_MS = 250;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openProxy(nodeIds: number[], bufferedBytesMax?: number): Promise<FaultProxy> {
  const proxy = await FaultProxy.open({ nodeIds, bufferedBytesMax });
  cleanups.push(() => proxy.close());
  return proxy;
}

/** An HTTP server answering `node <id>: <request body>`; returns its port. */
async function httpTarget(id: number): Promise<number> {
  const server: HttpServer = createHttpServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => response.end(`node ${id}: ${Buffer.concat(chunks).toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return (server.address() as { port: number }).port;
}

async function post(proxy: FaultProxy, from: number, to: number, body: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<string> {
  // A fresh connection per request, so no pooled connection hides what the proxy does with new ones.
  const response = await fetch(`http://127.0.0.1:${proxy.port(from, to)}/`, {
    method: "POST", body, headers: { Connection: "close" }, signal: AbortSignal.timeout(timeoutMs),
  });
  return response.text();
}

async function reachable(proxy: FaultProxy, from: number, to: number): Promise<boolean> {
  return post(proxy, from, to, "ping").then((text) => text === `node ${to}: ping`, () => false);
}

/** Reachability of every ordered pair, as "from->to" strings. */
async function reachableLinks(proxy: FaultProxy, ids: number[]): Promise<string[]> {
  const links = ids.flatMap((from) => ids.filter((to) => to !== from).map((to) => [from, to] as const));
  const results = await Promise.all(links.map(([from, to]) => reachable(proxy, from, to)));
  return links.filter((_, i) => results[i]).map(([from, to]) => `${from}->${to}`);
}

async function threeNodes(): Promise<FaultProxy> {
  const proxy = await openProxy([1, 2, 3]);
  for (const id of [1, 2, 3]) proxy.setTarget(id, await httpTarget(id));
  return proxy;
}

async function elapsedMs(work: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const start = performance.now();
  let error: unknown;
  await work().catch((caught) => (error = caught));
  return { ms: performance.now() - start, error };
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1" }, () => resolve(socket));
    socket.once("error", reject);
  });
}

describe("fault proxy", () => {
  test("passes requests and replies to the link's current target, and follows a new target", async () => {
    const proxy = await openProxy([1, 2]);
    proxy.setTarget(2, await httpTarget(2));
    expect(await post(proxy, 1, 2, "hello")).toBe("node 2: hello");
    proxy.setTarget(2, await httpTarget(22));
    expect(await post(proxy, 1, 2, "again")).toBe("node 22: again");
    expect(proxy.stats(1, 2).accepted).toBeGreaterThanOrEqual(2);
  });

  test("a link whose target is down resets connections at once instead of hanging them", async () => {
    const proxy = await openProxy([1, 2]);
    const { ms, error } = await elapsedMs(() => post(proxy, 1, 2, "x"));
    expect(error).toBeDefined();
    expect(ms).toBeLessThan(FAST_FAILURE_MS);
    expect(proxy.stats(1, 2).reset).toBe(1);
  });

  test("refuse: a cut resets live connections and new ones fail fast; heal reopens the link", async () => {
    const proxy = await openProxy([1, 2]);
    proxy.setTarget(2, await httpTarget(2));
    const socket = await openSocket(proxy.port(1, 2));
    socket.on("error", () => {});
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    const reply = await new Promise<string>((resolve) => socket.once("data", (chunk) => resolve(chunk.toString())));
    expect(reply).toContain("node 2: hi");
    expect(proxy.liveConnections(1, 2)).toBe(1);

    proxy.cut(1, 2, "refuse");
    await closed;
    expect(proxy.liveConnections(1, 2)).toBe(0);
    const { ms, error } = await elapsedMs(() => post(proxy, 1, 2, "x"));
    expect(error).toBeDefined();
    expect(ms).toBeLessThan(FAST_FAILURE_MS);

    proxy.heal();
    expect(await post(proxy, 1, 2, "back")).toBe("node 2: back");
  });

  test("blackhole: requests hang until the client's own timeout; heal resets the held ones", async () => {
    const proxy = await openProxy([1, 2]);
    proxy.setTarget(2, await httpTarget(2));
    proxy.cut(1, 2, "blackhole");
    const timed = await elapsedMs(() => post(proxy, 1, 2, "x", PROBE_TIMEOUT_MS));
    expect((timed.error as Error).name).toBe("TimeoutError");
    expect(timed.ms).toBeGreaterThanOrEqual(PROBE_TIMEOUT_MS - 5);

    const hanging = post(proxy, 1, 2, "held", 60_000).then(() => "answered", () => "failed");
    await until("the second request to reach the blackhole", () => (proxy.stats(1, 2).blackholed === 2 ? true : undefined), 5_000);
    proxy.heal();
    expect(await hanging).toBe("failed");
    expect(await post(proxy, 1, 2, "after")).toBe("node 2: after");
  });

  test("one-way cut, partition and isolation cut exactly the links they name", async () => {
    const proxy = await threeNodes();
    const all = ["1->2", "1->3", "2->1", "2->3", "3->1", "3->2"];
    expect(await reachableLinks(proxy, [1, 2, 3])).toEqual(all);

    proxy.cut(1, 2);
    expect(proxy.cutMode(1, 2)).toBe("refuse");
    expect(await reachableLinks(proxy, [1, 2, 3])).toEqual(all.filter((link) => link !== "1->2"));
    proxy.heal();

    proxy.partition(2, 3, "blackhole");
    expect(await reachableLinks(proxy, [1, 2, 3])).toEqual(["1->2", "1->3", "2->1", "3->1"]);
    proxy.heal();

    proxy.isolate(1);
    expect(await reachableLinks(proxy, [1, 2, 3])).toEqual(["2->3", "3->2"]);
    proxy.heal();
    expect(await reachableLinks(proxy, [1, 2, 3])).toEqual(all);
  });

  test("delay: what `from` sends on the link arrives late; replies and other links are not delayed", async () => {
    const delayMs = 300;
    const proxy = await threeNodes();
    proxy.delay(1, 2, delayMs);
    const delayed = await elapsedMs(() => post(proxy, 1, 2, "slow", 5_000));
    expect(delayed.error).toBeUndefined();
    expect(delayed.ms).toBeGreaterThanOrEqual(delayMs - 5);
    expect(delayed.ms).toBeLessThan(2 * delayMs);
    for (const [from, to] of [[2, 1], [1, 3]] as const) {
      const other = await elapsedMs(() => post(proxy, from, to, "fast", 5_000));
      expect(other.error).toBeUndefined();
      expect(other.ms).toBeLessThan(delayMs);
    }
    proxy.clearDelays();
    expect((await elapsedMs(() => post(proxy, 1, 2, "fast", 5_000))).ms).toBeLessThan(delayMs);
  });

  test("a large transfer on a delayed link arrives intact while the delayed bytes held stay bounded", async () => {
    const bufferedBytesMax = 64 * 1024;
    const totalBytes = 16 * 1024 * 1024;
    // A runtime reads at most a few hundred KiB from a socket in one go.
    const readBytesMax = 1024 * 1024;
    const proxy = await openProxy([1, 2], bufferedBytesMax);
    const received = createHash("sha256");
    let receivedBytes = 0;
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const server: TcpServer = createTcpServer((socket) => {
      socket.on("data", (chunk) => {
        received.update(chunk);
        receivedBytes += chunk.length;
      });
      socket.on("end", () => {
        socket.end();
        finished();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    proxy.setTarget(2, (server.address() as { port: number }).port);
    proxy.delay(1, 2, 20);
    const payload = Buffer.alloc(totalBytes);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31 + (i >> 11)) & 0xff;
    const socket = await openSocket(proxy.port(1, 2));
    socket.end(payload);
    await done;
    expect(receivedBytes).toBe(totalBytes);
    expect(received.digest("hex")).toBe(createHash("sha256").update(payload).digest("hex"));
    const { bufferedBytesPeak } = proxy.stats(1, 2);
    expect(bufferedBytesPeak).toBeGreaterThan(0);
    // Reading stops once the bound is reached; one more socket read may land on top.
    expect(bufferedBytesPeak).toBeLessThanOrEqual(bufferedBytesMax + readBytesMax);
  });

  test("socket errors on either side never escape, and the link keeps working", async () => {
    const proxy = await openProxy([1, 2]);
    const rude: TcpServer = createTcpServer((socket) => socket.resetAndDestroy());
    await new Promise<void>((resolve) => rude.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => rude.close(() => resolve())));
    proxy.setTarget(2, (rude.address() as { port: number }).port);
    expect(await reachable(proxy, 1, 2)).toBe(false);

    proxy.setTarget(2, await httpTarget(2));
    for (let i = 0; i < 5; i++) {
      const socket = await openSocket(proxy.port(1, 2));
      socket.on("error", () => {});
      socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial");
      socket.resetAndDestroy();
    }
    proxy.cut(1, 2, "refuse");
    proxy.heal();
    expect(await post(proxy, 1, 2, "still here")).toBe("node 2: still here");
  });
});

