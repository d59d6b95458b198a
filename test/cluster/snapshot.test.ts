/**
 * Snapshots and log compaction on an in-process cluster (small
 * snapshot_entries so the log is compacted after a few hundred writes, small
 * stream frames so a catch-up is many frames): a node added after compaction
 * catches up by snapshot and ends with storage identical to the leader's
 * (entries, versions, latest index, Merkle nodes, idempotency table); a
 * corrupted stream is refused by its Merkle root and retried; a cut stream
 * resumes where it stopped; a node closed in the middle of an install
 * finishes it on restart before it applies anything; every node restarted
 * after compaction comes back with the same state.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { CLUSTER_SECRET, InProcessCluster, until, type PeerWrap } from "../helpers/in-process-cluster.ts";
import { cbor, decodeCbor, decodeEntry, encodeEntry } from "../../src/ledger/entry.ts";
import { Tag } from "../../src/storage/keys.ts";
import { type Storage } from "../../src/storage/index.ts";

const WRITES = 300;
const CHUNK_ENTRIES = 16;
/** How long a join may wait for an earlier membership change to finish. */
const JOIN_WAIT_MS = 20_000;
let cluster: InProcessCluster;

beforeAll(async () => {
  cluster = await InProcessCluster.found([1, 2, 3], {
    consensus: { snapshot_entries: 50, compaction_margin_entries: 10 },
    streamLimits: { chunkEntriesMax: CHUNK_ENTRIES, chunkBytesMax: 64 * 1024, idleTimeoutMs: 3_000 },
  });
  await cluster.leader();
  for (let i = 0; i < WRITES; i++) {
    const response = await cluster.put(1 + (i % 3), `key/${i % 40}`, `value ${i}`, { "Idempotency-Key": `write-${i}` });
    expect(response.status).toBeLessThan(300);
  }
  await cluster.converged([1, 2, 3]);
});

afterAll(async () => {
  await cluster.close();
});

/** Every row of the ranges that must be identical on all replicas: the ledger, and the idempotency table. */
async function replicatedRows(storage: Storage): Promise<string[]> {
  const ledger = await storage.scan({ start: Uint8Array.of(Tag.chunk), end: Uint8Array.of(Tag.value + 1), limit: 100_000 });
  const idem = await storage.scan({ start: Uint8Array.of(Tag.raft, ...new TextEncoder().encode("idem")), end: Uint8Array.of(Tag.raft, ...new TextEncoder().encode("idem"), 0xff), limit: 100_000 });
  return [...ledger, ...idem].map(({ key, value }) => `${Buffer.from(key).toString("hex")}=${Buffer.from(value).toString("hex")}`);
}

async function expectIdentical(a: number, b: number): Promise<void> {
  await cluster.converged([a, b]);
  expect(await replicatedRows(cluster.get(b).storage)).toEqual(await replicatedRows(cluster.get(a).storage));
  const size = cluster.server(a).node.ledger.treeSize;
  for (const treeSize of [1, size >> 1, size]) {
    const notes = await Promise.all([a, b].map(async (id) => (await cluster.server(id).app.request(`/v1/checkpoint?treeSize=${treeSize}`)).text()));
    expect(notes[1]).toBe(notes[0]!);
  }
  expect(Buffer.from(cluster.server(b).node.ledger.rootHash).equals(Buffer.from(cluster.server(a).node.ledger.rootHash))).toBe(true);
}

/** Entries-stream requests seen on every member's peer port, as [fromSeq, toSeq]. */
const streamRequests: Array<[number, number]> = [];

/** Wrap every running member's peer port with `transform` for entries-stream responses. */
function onEntriesStreams(transform: (body: ReadableStream<Uint8Array>, request: [number, number]) => ReadableStream<Uint8Array>): void {
  const wrap: PeerWrap = async (request, handler) => {
    if (!request.url.endsWith("/raft/v1/entries")) return handler(request);
    const body = new Uint8Array(await request.arrayBuffer());
    const range = decodeCbor(body) as [number, number];
    streamRequests.push(range);
    const response = await handler(new Request(request.url, { method: "POST", body, headers: request.headers }));
    if (!response.ok || response.body === null) return response;
    return new Response(transform(response.body, range), { status: 200, headers: response.headers });
  };
  for (const member of cluster.members.values()) member.wrap = wrap;
}

function clearWraps(): void {
  for (const member of cluster.members.values()) member.wrap = undefined;
}

/** Split a stream into its frames (4-byte length + CBOR) and re-emit them through `edit`; `undefined` ends the stream. */
function perFrame(edit: (frame: unknown[], index: number) => unknown[] | undefined): (body: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array> {
  return (body) => {
    let buffered = new Uint8Array(0);
    let index = 0;
    let ended = false;
    return body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (ended) return;
        const joined = new Uint8Array(buffered.length + chunk.length);
        joined.set(buffered);
        joined.set(chunk, buffered.length);
        buffered = joined;
        while (buffered.length >= 4) {
          const length = new DataView(buffered.buffer, buffered.byteOffset).getUint32(0);
          if (buffered.length < 4 + length) break;
          const frame = decodeCbor(buffered.subarray(4, 4 + length)) as unknown[];
          buffered = buffered.slice(4 + length);
          const edited = edit(frame, index++);
          if (edited === undefined) {
            ended = true;
            controller.terminate();
            return;
          }
          const bytes = cbor.encode(edited);
          const out = new Uint8Array(4 + bytes.length);
          new DataView(out.buffer).setUint32(0, bytes.length);
          out.set(bytes, 4);
          controller.enqueue(out);
        }
      },
    }));
  };
}

/** Admit `id` (a fresh joiner) through member `via` and wait until it is a member. */
async function join(id: number, via: number): Promise<void> {
  await cluster.createJoiner(id);
  // The previous test's joiner may still be being promoted (one membership change at a time: 409 meanwhile).
  const response = await until(`the cluster to admit node ${id}`, async () => {
    const reply = await cluster.add(via, id);
    return reply.status === 409 ? undefined : reply;
  }, JOIN_WAIT_MS);
  expect(response.status).toBe(201);
}

describe("snapshots and log compaction", () => {
  test("the log is compacted behind snapshots on every node", async () => {
    for (const id of [1, 2, 3]) {
      const snapshot = cluster.server(id).node.status().snapshot!;
      expect(snapshot.created).toBeGreaterThanOrEqual(2);
      expect(snapshot.logFirstIndex).toBeGreaterThan(WRITES / 2);
      expect(snapshot.index - snapshot.logFirstIndex + 1).toBeGreaterThanOrEqual(10);
    }
  });

  test("a node added after compaction catches up by snapshot and holds exactly the leader's state", async () => {
    const leader = await cluster.leader();
    const sentBefore = cluster.server(leader.id).node.status().snapshot!.sent;
    streamRequests.length = 0;
    onEntriesStreams((body) => body);
    await join(4, leader.id === 1 ? 2 : 1);
    await until("node 4 to install a snapshot", () => (cluster.server(4).node.status().snapshot!.installed === 1 ? true : undefined));
    clearWraps();
    expect(cluster.server(leader.id).node.status().snapshot!.sent).toBeGreaterThan(sentBefore);
    expect(streamRequests[0]![0]).toBe(0);
    expect(streamRequests.length).toBe(1);
    await expectIdentical(leader.id, 4);
    const read = await cluster.server(4).app.request("/v1/kv/key/7?consistency=stale", { headers: { Accept: "application/json" } });
    const lastWriteOfKey7 = Math.floor((WRITES - 1 - 7) / 40) * 40 + 7;
    expect((await read.json()).value).toBe(`value ${lastWriteOfKey7}`);
    const proof = await cluster.server(4).app.request("/v1/proof/inclusion?seq=3");
    expect(proof.status).toBe(200);
    // It keeps up by the log afterwards, and the idempotency table came along: a retry of an old write replays.
    const retry = await cluster.put(4, "key/3", "other", { "Idempotency-Key": "write-3" });
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect((await cluster.put(4, "after-install", "x")).status).toBe(201);
    await expectIdentical(leader.id, 4);
  });

  test("a stream with a tampered entry is refused by the Merkle root before anything is stored, then retried", async () => {
    const leader = await cluster.leader();
    streamRequests.length = 0;
    let tampered = 0;
    onEntriesStreams((body) => (tampered++ > 0 ? body : perFrame((frame, index) => {
      if (index !== 1) return frame;
      // A well-formed entry with another content type: its value, version and timestamp still check out, only the
      // tree does not. (Not another timestamp: one moved past a neighbour's is refused as going back, not by the root.)
      const items = frame[1] as unknown[][];
      const entry = decodeEntry(items[0]![0] as Uint8Array);
      if (entry.op !== "put") throw new Error("assertion: the tampered entry is a put");
      items[0]![0] = encodeEntry({ ...entry, contentType: `${entry.contentType};tampered` });
      return frame;
    })(body)));
    await join(5, leader.id);
    await until("node 5 to install a snapshot", () => (cluster.server(5).node.status().snapshot!.installed === 1 ? true : undefined));
    clearWraps();
    const status = cluster.server(5).node.status().snapshot!;
    expect(status.installFailures).toBe(1);
    expect(status.lastInstallError).toContain("mismatch");
    // The retry resumed after the one good frame: the tampered one was never stored.
    expect(streamRequests.map(([from]) => from)).toEqual([0, CHUNK_ENTRIES]);
    await expectIdentical(leader.id, 5);
  });

  test("a stream cut short is resumed from where it stopped", async () => {
    const leader = await cluster.leader();
    streamRequests.length = 0;
    let cut = 0;
    onEntriesStreams((body) => (cut++ > 0 ? body : perFrame((frame, index) => (index < 3 ? frame : undefined))(body)));
    await join(6, leader.id);
    await until("node 6 to install a snapshot", () => (cluster.server(6).node.status().snapshot!.installed === 1 ? true : undefined));
    clearWraps();
    expect(cluster.server(6).node.status().snapshot!.lastInstallError).toContain("truncated");
    expect(streamRequests.map(([from]) => from)).toEqual([0, 3 * CHUNK_ENTRIES]);
    await expectIdentical(leader.id, 6);
  });

  test("a node closed in the middle of an install finishes it on restart, before applying anything", async () => {
    const leader = await cluster.leader();
    streamRequests.length = 0;
    // Every stream stalls after two frames; the joiner is closed while it waits.
    onEntriesStreams((body) => {
      const reader = perFrame((frame) => frame)(body).getReader();
      let frames = 0;
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (frames++ >= 2) return new Promise<void>(() => {});
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        },
      });
    });
    await join(7, leader.id);
    await until("node 7 to store two frames", () => (cluster.server(7).node.ledger.treeSize === 2 * CHUNK_ENTRIES ? true : undefined));
    expect(cluster.server(7).node.status().snapshot!.installing).toBe(true);
    expect(cluster.server(7).node.status().appliedIndex).toBe(0);
    await cluster.stop(7);
    clearWraps();
    streamRequests.length = 0;
    onEntriesStreams((body) => body);
    const restarted = await cluster.start(7);
    // The install resumes after the stored frames, and the node has applied nothing of the log meanwhile.
    expect(restarted.node.status().snapshot!.installing).toBe(true);
    await until("node 7 to finish the install", () => (restarted.node.status().snapshot!.installing ? undefined : true));
    clearWraps();
    expect(streamRequests[0]![0]).toBe(2 * CHUNK_ENTRIES);
    await expectIdentical(leader.id, 7);
  });

  test("every node restarted after compaction comes back with the same state", async () => {
    const ids = cluster.running().map((m) => m.id);
    const leader = await cluster.leader();
    const before = await replicatedRows(cluster.get(leader.id).storage);
    const size = cluster.server(leader.id).node.ledger.treeSize;
    const note = await (await cluster.server(leader.id).app.request("/v1/checkpoint")).text();
    for (const id of ids) await cluster.stop(id);
    for (const id of ids) await cluster.start(id);
    const fresh = await cluster.leader();
    for (const id of ids) {
      expect(cluster.server(id).node.ledger.treeSize).toBe(size);
      expect(await (await cluster.server(id).app.request("/v1/checkpoint")).text()).toBe(note);
      expect(await replicatedRows(cluster.get(id).storage)).toEqual(before);
      expect(cluster.server(id).node.status().snapshot!.logFirstIndex).toBeGreaterThan(2);
    }
    const retry = await cluster.put(ids[0]!, "key/9", "other", { "Idempotency-Key": `write-${WRITES - 1}` });
    expect(retry.headers.get("Idempotent-Replayed")).toBe("true");
    expect((await cluster.put(ids[1]!, "after-restart", "x")).status).toBe(201);
    for (const id of ids) await expectIdentical(fresh.id, id);
    // The restarted leader's log is compacted; its snapshot was made at open, and a new node installs it.
    const leaderSnapshot = cluster.server(fresh.id).node.status().snapshot!;
    expect(leaderSnapshot.created).toBe(1);
    expect(leaderSnapshot.logFirstIndex).toBeGreaterThan(2);
    await join(8, fresh.id);
    await until("node 8 to install a snapshot", () => (cluster.server(8).node.status().snapshot!.installed === 1 ? true : undefined));
    expect(cluster.server(8).node.status().snapshot!.index).toBe(leaderSnapshot.index);
    await expectIdentical(fresh.id, 8);
  });

  test("hostile requests on the entries and membership peer routes are 4xx and change nothing", async () => {
    const leader = await cluster.leader();
    const url = (path: string) => `http://${cluster.raftAddress(leader.id)}/raft/v1/${path}`;
    const post = (path: string, body: Uint8Array, headers: Record<string, string> = {}) =>
      fetch(url(path), { method: "POST", body: new Uint8Array(body) as Uint8Array<ArrayBuffer>, headers });
    const auth = { Authorization: `Bearer ${CLUSTER_SECRET}` };
    const size = cluster.server(leader.id).node.ledger.treeSize;
    const members = JSON.stringify(cluster.server(leader.id).node.status().members.map((m) => m.id));
    expect((await post("entries", cbor.encode([0, 1]))).status).toBe(401);
    expect((await post("membership", cbor.encode([2, 1]))).status).toBe(401);
    const bodies: Array<[string, Uint8Array, number]> = [
      ["entries", cbor.encode([5, 2]), 400],
      ["entries", cbor.encode([-1, 2]), 400],
      ["entries", cbor.encode(["0", 2]), 400],
      ["entries", cbor.encode([0]), 400],
      ["entries", new Uint8Array([0xff]), 400],
      ["entries", cbor.encode([0, size + 1]), 409],
      ["membership", cbor.encode([1, 9, "not an address", "127.0.0.1:1"]), 400],
      ["membership", cbor.encode([1, 9, "127.0.0.1:1", "no-port"]), 400],
      ["membership", cbor.encode([1, 2 ** 40, "127.0.0.1:1", "127.0.0.1:2"]), 400],
      ["membership", cbor.encode([1, 9, "x".repeat(5000), "127.0.0.1:1"]), 400],
      ["membership", cbor.encode([3, 9]), 400],
      ["membership", cbor.encode([2, 0]), 400],
      ["membership", cbor.encode({ a: 1 }), 400],
    ];
    for (const [path, body, status] of bodies) {
      const response = await post(path, body, auth);
      expect({ path, status: response.status }).toEqual({ path, status });
      await response.arrayBuffer();
    }
    // A well-formed change that conflicts is answered (refused, code and message), not applied.
    const refused = await post("membership", cbor.encode([2, 77]), auth);
    expect(refused.status).toBe(200);
    expect(decodeCbor(new Uint8Array(await refused.arrayBuffer()))).toEqual([1, "member_not_found", "node 77 is not a member of the cluster"]);
    // A snapshot message whose data is garbage never reaches the core.
    const snap = cbor.encode([[8, leader.id === 1 ? 2 : 1, leader.id, 99, 0, 0, [], 0, false, 0, [500, 99, [1], [], new Uint8Array([1, 2, 3])], null]]);
    const stepped = await post("messages", snap, auth);
    expect(stepped.status).toBe(400);
    expect(cluster.server(leader.id).node.ledger.treeSize).toBe(size);
    expect(cluster.server(leader.id).node.status().role).toBe("leader");
    expect(JSON.stringify(cluster.server(leader.id).node.status().members.map((m) => m.id))).toBe(members);
  });
});

describe("a voter installing a snapshot", () => {
  test("does not campaign while it cannot apply, and finishes once a peer serves it", async () => {
    const small = await InProcessCluster.found([1, 2, 3], {
      consensus: { snapshot_entries: 20, compaction_margin_entries: 5 },
      streamLimits: { chunkEntriesMax: 4, chunkBytesMax: 64 * 1024, idleTimeoutMs: 3_000 },
    });
    try {
      const leader = await small.leader();
      const [lagging, other] = [1, 2, 3].filter((id) => id !== leader.id) as [number, number];
      const up = [leader.id, other];
      await small.stop(lagging);
      for (let i = 0; i < 60; i++) expect((await small.put(up[i % 2]!, `k${i}`, `v${i}`)).status).toBe(201);
      await until("compaction past the stopped node", () => (small.server(leader.id).node.status().snapshot!.logFirstIndex > 30 ? true : undefined));
      // Streams stall after their first frame: node 3 stays in the middle of its install.
      let stalled = true;
      const stall: PeerWrap = async (request, handler) => {
        const response = await handler(request);
        if (!request.url.endsWith("/raft/v1/entries") || response.body === null) return response;
        const reader = response.body.getReader();
        let sent = 0;
        return new Response(new ReadableStream<Uint8Array>({
          async pull(controller) {
            while (stalled && sent > 0) await new Promise((resolve) => setTimeout(resolve, 20));
            const { done, value } = await reader.read();
            sent++;
            if (done) controller.close();
            else controller.enqueue(value);
          },
        }), { status: 200, headers: response.headers });
      };
      for (const id of up) small.get(id).wrap = stall;
      await small.start(lagging);
      await until("the restarted node to be installing", () => (small.server(lagging).node.status().snapshot!.installing ? true : undefined));
      for (const id of up) await small.stop(id);
      // Far beyond an election timeout (10-20 ticks of 20 ms) without a leader: it must not have campaigned.
      const roles = new Set<string>();
      const watchUntil = Date.now() + 1_000;
      while (Date.now() < watchUntil) {
        roles.add(small.server(lagging).node.status().role);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect([...roles]).toEqual(["follower"]);
      stalled = false;
      for (const id of up) await small.start(id);
      await until("the restarted node to finish its install", () => (small.server(lagging).node.status().snapshot!.installed === 1 ? true : undefined));
      await small.converged([1, 2, 3]);
      expect(await replicatedRows(small.get(lagging).storage)).toEqual(await replicatedRows(small.get(leader.id).storage));
    } finally {
      await small.close();
    }
  }, 30_000);
});
