import { afterEach, describe, expect, test } from "bun:test";
import { openTestServer, json } from "../helpers/server.ts";
import { type LedgerServer } from "../../src/server.ts";
import { fromBase64 } from "../../src/encoding.ts";
import { defaultHasher, leafHash, verifyConsistency, verifyInclusion } from "../../src/merkle/index.ts";
import { openNote, parseCheckpoint, parseVerifierKey } from "../../src/checkpoint/index.ts";

let server: LedgerServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function startWith(keys: number) {
  server = await openTestServer();
  for (let i = 0; i < keys; i++) {
    await server.app.request(`/v1/kv/key-${i}`, { method: "PUT", body: `value-${i}` });
  }
  return server.app;
}

const b64 = (text: string) => fromBase64(text)!;

async function verifiedCheckpoint(app: LedgerServer["app"], query = "") {
  const verifierKey = (await (await app.request("/v1/checkpoint/key")).text()).trim();
  const note = await (await app.request(`/v1/checkpoint${query}`)).text();
  const opened = openNote(note, [parseVerifierKey(verifierKey)]);
  return { note, checkpoint: parseCheckpoint(opened.text) };
}

describe("checkpoints", () => {
  test("the checkpoint is a signed note over origin, tree size and root that the served key verifies", async () => {
    const app = await startWith(5);
    const response = await app.request("/v1/checkpoint");
    expect(response.headers.get("Content-Type")).toContain("text/plain");
    const { note, checkpoint } = await verifiedCheckpoint(app);
    expect(note.split("\n").slice(0, 3)).toEqual(["scribe-ledger", "5", expect.any(String)]);
    expect(checkpoint.treeSize).toBe(5);
    expect(checkpoint.origin).toBe("scribe-ledger");
    const tampered = note.replace("\n5\n", "\n6\n");
    const key = (await (await app.request("/v1/checkpoint/key")).text()).trim();
    expect(() => openNote(tampered, [parseVerifierKey(key)])).toThrow();
  });

  test("an older tree size gets the same note every time (deterministic signatures)", async () => {
    const app = await startWith(4);
    const first = await (await app.request("/v1/checkpoint?treeSize=2")).text();
    await app.request("/v1/kv/more", { method: "PUT", body: "x" });
    expect(await (await app.request("/v1/checkpoint?treeSize=2")).text()).toBe(first);
    expect((await app.request("/v1/checkpoint?treeSize=99")).status).toBe(400);
  });
});

describe("proofs", () => {
  test("inclusion proofs of every seq verify against the checkpoint root", async () => {
    const app = await startWith(13);
    const { checkpoint } = await verifiedCheckpoint(app);
    for (let seq = 0; seq < 13; seq++) {
      const body = await json(await app.request(`/v1/proof/inclusion?seq=${seq}`));
      expect(body.treeSize).toBe(13);
      verifyInclusion(defaultHasher, seq, 13, b64(body.leafHash), body.proof.map(b64), checkpoint.rootHash);
    }
    const bad = await json(await app.request(`/v1/proof/inclusion?seq=3`));
    const wrongLeaf = b64(bad.leafHash);
    wrongLeaf[0] = wrongLeaf[0]! ^ 1;
    expect(() => verifyInclusion(defaultHasher, 3, 13, wrongLeaf, bad.proof.map(b64), checkpoint.rootHash)).toThrow();
    expect((await app.request("/v1/proof/inclusion?seq=13")).status).toBe(400);
    expect((await app.request("/v1/proof/inclusion")).status).toBe(400);
    expect((await app.request("/v1/proof/inclusion?seq=abc")).status).toBe(400);
  });

  test("consistency proofs link every earlier checkpoint to the latest", async () => {
    const app = await startWith(9);
    const latest = (await verifiedCheckpoint(app)).checkpoint;
    for (let size = 1; size <= 9; size++) {
      const old = (await verifiedCheckpoint(app, `?treeSize=${size}`)).checkpoint;
      const body = await json(await app.request(`/v1/proof/consistency?from=${size}&to=9`));
      expect(body).toMatchObject({ from: size, to: 9 });
      verifyConsistency(defaultHasher, size, 9, old.rootHash, latest.rootHash, body.proof.map(b64));
    }
    expect((await app.request("/v1/proof/consistency?from=5&to=3")).status).toBe(400);
  });

  test("a key proof carries the entry bytes, whose leaf hash is in the signed checkpoint", async () => {
    const app = await startWith(6);
    await app.request("/v1/kv/key-2", { method: "PUT", body: "newer" });
    const body = await json(await app.request("/v1/proof/key/key-2"));
    expect(body).toMatchObject({ key: "key-2", seq: 6, version: 2, treeSize: 7 });
    const entry = b64(body.entry);
    expect(leafHash(defaultHasher, entry)).toEqual(b64(body.leafHash));
    const key = (await (await app.request("/v1/checkpoint/key")).text()).trim();
    const checkpoint = parseCheckpoint(openNote(body.checkpoint, [parseVerifierKey(key)]).text);
    expect(checkpoint.rootHash).toEqual(b64(body.rootHash));
    verifyInclusion(defaultHasher, body.seq, body.treeSize, b64(body.leafHash), body.proof.map(b64), checkpoint.rootHash);
    const older = await json(await app.request("/v1/proof/key/key-2?version=1"));
    expect(older.seq).toBe(2);
    expect((await app.request("/v1/proof/key/nope")).status).toBe(404);
  });

  test("the compat /verify/{key} reports verified with hex hashes", async () => {
    const app = await startWith(3);
    const body = await json(await app.request("/verify/key-1"));
    expect(body.verified).toBe(true);
    expect(body.error).toBeNull();
    expect(body.proof.root_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(body.proof.siblings.length).toBe(2);
  });
});
