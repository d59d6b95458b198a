/**
 * HTTP conformance suite: the contract in ../shared/API.md (as implemented per
 * the README), exercised with plain `fetch` against a real server process.
 * `describeHttpConformance` registers one describe block per runtime; the
 * server is started once in beforeAll and stopped in afterAll. Every test
 * uses its own key prefix so tests do not depend on each other.
 *
 * The server must be started with SCRIBE_LEDGER_VALUE_BYTES_MAX=1024.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openNote, parseCheckpoint, parseVerifierKey } from "../../src/checkpoint/index.ts";
import { leafHash, nobleHasher, verifyConsistency, verifyInclusion } from "../../src/merkle/index.ts";

export interface StartedServer {
  baseUrl: string;
  stop: () => Promise<void>;
}

/** The value limit the server under test must be started with. */
export const VALUE_BYTES_MAX = 1024;

const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "base64"));
const b64of = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");
const enc = (key: string): string => encodeURIComponent(key);

/** Membership changes answer 501 on a single node until Raft lands (README, Operations). */
function isMembershipChange(method: string, path: string, status: number): boolean {
  if (status !== 501) return false;
  return (method === "POST" && (path === "/cluster/members" || path === "/cluster/add")) ||
    (method === "DELETE" && (path.startsWith("/cluster/members/") || path.startsWith("/cluster/remove/")));
}

export function describeHttpConformance(name: string, start: () => Promise<StartedServer>): void {
  describe(`HTTP conformance: ${name}`, () => {
    let server: StartedServer | undefined;
    /** Every response seen, so the suite can assert nothing was ever a 5xx. */
    const seen: { method: string; path: string; status: number }[] = [];
    let run = 0;
    /** A fresh key prefix per test. */
    const prefix = (label: string): string => `t${++run}-${label}-${Date.now().toString(36)}/`;

    async function http(path: string, init: RequestInit = {}): Promise<Response> {
      const response = await fetch(`${server!.baseUrl}${path}`, init);
      seen.push({ method: init.method ?? "GET", path, status: response.status });
      return response;
    }
    const put = (key: string, body: BodyInit, headers: Record<string, string> = {}) =>
      http(`/v1/kv/${enc(key)}`, { method: "PUT", body, headers });
    const del = (key: string, headers: Record<string, string> = {}) => http(`/v1/kv/${enc(key)}`, { method: "DELETE", headers });
    const getJson = async (path: string, init?: RequestInit): Promise<any> => {
      const response = await http(path, init);
      expect(response.status).toBe(200);
      return response.json();
    };
    const postJson = (path: string, body: unknown, method = "POST") =>
      http(path, { method, headers: { "Content-Type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
    /** A 4xx with the JSON error shape; returns the error object. */
    async function expectError(response: Response, status: number, code?: string): Promise<{ code: string; message: string }> {
      expect(response.status).toBe(status);
      expect(response.headers.get("Content-Type") ?? "").toContain("application/json");
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(typeof body.error.code).toBe("string");
      expect(typeof body.error.message).toBe("string");
      expect(body.error.code.length).toBeGreaterThan(0);
      if (code !== undefined) expect(body.error.code).toBe(code);
      return body.error;
    }
    async function verifiedCheckpoint(query = "") {
      const keyResponse = await http("/v1/checkpoint/key");
      expect(keyResponse.status).toBe(200);
      const verifier = parseVerifierKey((await keyResponse.text()).trim());
      const noteResponse = await http(`/v1/checkpoint${query}`);
      expect(noteResponse.status).toBe(200);
      expect(noteResponse.headers.get("Content-Type") ?? "").toContain("text/plain");
      const note = await noteResponse.text();
      return { note, verifier, checkpoint: parseCheckpoint(openNote(note, [verifier]).text) };
    }

    beforeAll(async () => {
      server = await start();
    }, 90_000);
    afterAll(async () => {
      await server?.stop();
    }, 30_000);

    describe("data", () => {
      test("watch?from=0&format=ndjson streams the first entry as an NDJSON line", async () => {
        await put(`${prefix("watch")}w`, "x");
        const first = await getJson("/v1/log?from=0&limit=1");
        const controller = new AbortController();
        const response = await http("/v1/watch?from=0&format=ndjson", { signal: controller.signal });
        expect(response.status).toBe(200);
        expect(response.headers.get("Content-Type") ?? "").toContain("ndjson");
        const reader = response.body!.getReader();
        const decoder = new TextDecoder();
        let buffered = "";
        const deadline = Date.now() + 10_000;
        while (!buffered.includes("\n") && Date.now() < deadline) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += decoder.decode(value, { stream: true });
        }
        await reader.cancel().catch(() => {});
        controller.abort();
        const line = buffered.slice(0, buffered.indexOf("\n"));
        const entry = JSON.parse(line);
        expect(entry.seq).toBe(0);
        expect(entry.leafHash).toBe(first.entries[0].leafHash);
        // the server is still healthy after the client went away
        expect((await http("/health")).status).toBe(200);
      });
      test("PUT is 201 then 200 with {key, seq, version, leafHash, treeSize}; GET has ledger headers", async () => {
        const key = `${prefix("put")}a`;
        const first = await put(key, "one", { "Content-Type": "text/plain" });
        expect(first.status).toBe(201);
        const body = (await first.json()) as any;
        expect(body).toMatchObject({ key, version: 1 });
        expect(Number.isInteger(body.seq)).toBe(true);
        expect(body.treeSize).toBe(body.seq + 1);
        expect(b64(body.leafHash).length).toBe(32);
        const second = await put(key, "two", { "Content-Type": "text/plain" });
        expect(second.status).toBe(200);
        const secondBody = (await second.json()) as any;
        expect(secondBody).toMatchObject({ key, version: 2 });
        expect(secondBody.seq).toBeGreaterThan(body.seq);
        const latest = await http(`/v1/kv/${enc(key)}`);
        expect(latest.status).toBe(200);
        expect(await latest.text()).toBe("two");
        expect(latest.headers.get("Content-Type") ?? "").toContain("text/plain");
        expect(latest.headers.get("X-Scribe-Version")).toBe("2");
        expect(latest.headers.get("X-Scribe-Seq")).toBe(String(secondBody.seq));
        expect(latest.headers.get("ETag")).toBe('"2"');
        const old = await http(`/v1/kv/${enc(key)}?version=1`);
        expect(old.status).toBe(200);
        expect(await old.text()).toBe("one");
        expect(old.headers.get("X-Scribe-Seq")).toBe(String(body.seq));
        expect((await http(`/v1/kv/${enc(key)}?version=3`)).status).toBe(404);
        expect((await http(`/v1/kv/${enc(key)}?consistency=stale`)).status).toBe(200);
        await expectError(await http(`/v1/kv/${enc(key)}?consistency=bogus`), 400);
        await expectError(await http(`/v1/kv/${enc(`${prefix("missing")}x`)}`), 404);
      });

      test("binary values round-trip byte for byte, raw and as base64 JSON", async () => {
        const key = `${prefix("bin")}blob`;
        const bytes = new Uint8Array(256 + 7);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 0xff;
        bytes[0] = 0xff;
        bytes[1] = 0xfe;
        bytes[2] = 0x00;
        expect((await put(key, bytes, { "Content-Type": "application/octet-stream" })).status).toBe(201);
        const raw = await http(`/v1/kv/${enc(key)}`);
        expect(raw.headers.get("Content-Type") ?? "").toContain("application/octet-stream");
        expect(new Uint8Array(await raw.arrayBuffer())).toEqual(bytes);
        const asJson = await getJson(`/v1/kv/${enc(key)}`, { headers: { Accept: "application/json" } });
        expect(asJson).toMatchObject({ key, encoding: "base64", value: b64of(bytes), version: 1 });
        const textKey = `${prefix("text")}t`;
        await put(textKey, "héllo ✓", { "Content-Type": "text/plain; charset=utf-8" });
        const textJson = await getJson(`/v1/kv/${enc(textKey)}`, { headers: { Accept: "application/json" } });
        expect(textJson.value).toBe("héllo ✓");
        expect(textJson.encoding ?? "utf-8").not.toBe("base64");
        expect(textJson.version).toBe(1);
        expect(Number.isInteger(textJson.seq)).toBe(true);
      });

      test("keys may contain '/', spaces, unicode and percent signs (raw and encoded paths agree)", async () => {
        const base = prefix("keys");
        const key = `${base}dir/sub dir/ünï✓/100%`;
        expect((await put(key, "deep")).status).toBe(201);
        expect(await (await http(`/v1/kv/${enc(key)}`)).text()).toBe("deep");
        // '/' left unencoded in the path addresses the same key
        const slashKey = `${base}a/b/c`;
        expect((await http(`/v1/kv/${slashKey}`, { method: "PUT", body: "slash" })).status).toBe(201);
        expect(await (await http(`/v1/kv/${enc(slashKey)}`)).text()).toBe("slash");
        const listed = await getJson(`/v1/kv?prefix=${enc(base)}`);
        expect(listed.keys.map((k: { key: string }) => k.key).sort()).toEqual([slashKey, key].sort());
      });

      test("DELETE appends a tombstone: GET 404, old versions stay, second DELETE 404, a new PUT is 201", async () => {
        const key = `${prefix("del")}k`;
        await put(key, "v1");
        await put(key, "v2");
        const deleted = await del(key);
        expect(deleted.status).toBe(200);
        expect(await deleted.json()).toMatchObject({ key, op: "delete", version: 3 });
        await expectError(await http(`/v1/kv/${enc(key)}`), 404);
        await expectError(await del(key), 404);
        await expectError(await del(`${prefix("never")}x`), 404);
        expect(await (await http(`/v1/kv/${enc(key)}?version=1`)).text()).toBe("v1");
        expect((await put(key, "v4")).status).toBe(201);
      });

      test("If-None-Match: * is write-once; If-Match appends only on the matching version", async () => {
        const key = `${prefix("cond")}once`;
        expect((await put(key, "x", { "If-None-Match": "*" })).status).toBe(201);
        await expectError(await put(key, "y", { "If-None-Match": "*" }), 412, "precondition_failed");
        await expectError(await put(key, "y", { "If-Match": '"2"' }), 412);
        const matched = await put(key, "y", { "If-Match": '"1"' });
        expect(matched.status).toBe(200);
        expect(await matched.json()).toMatchObject({ version: 2 });
        await expectError(await put(key, "z", { "If-Match": "garbage" }), 400);
        await expectError(await del(key, { "If-Match": '"1"' }), 412);
        expect(await (await http(`/v1/kv/${enc(key)}`)).text()).toBe("y");
        expect((await del(key, { "If-Match": '"2"' })).status).toBe(200);
      });

      test("history: newest first, paginated with before/next", async () => {
        const key = `${prefix("hist")}h`;
        const seqs: number[] = [];
        for (const value of ["a", "b", "c"]) seqs.push(((await (await put(key, value)).json()) as any).seq);
        await del(key);
        const all = await getJson(`/v1/history/${enc(key)}`);
        expect(all.versions.map((v: { version: number; deleted: boolean }) => [v.version, v.deleted])).toEqual([
          [4, true], [3, false], [2, false], [1, false],
        ]);
        expect(all.versions.slice(1).map((v: { seq: number }) => v.seq)).toEqual([...seqs].reverse());
        for (const v of all.versions) expect(typeof v.timestampMs === "number" || typeof v.timestamp === "number" || typeof v.timestamp === "string").toBe(true);
        const page = await getJson(`/v1/history/${enc(key)}?limit=3`);
        expect(page.versions.map((v: { version: number }) => v.version)).toEqual([4, 3, 2]);
        expect(page.next).toBe(2);
        const rest = await getJson(`/v1/history/${enc(key)}?before=${page.next}&limit=3`);
        expect(rest.versions.map((v: { version: number }) => v.version)).toEqual([1]);
        expect(rest.next).toBeNull();
        await expectError(await http(`/v1/history/${enc(`${prefix("nohist")}x`)}`), 404);
      });

      test("list: prefix with a cursor, skipping deleted keys", async () => {
        const base = prefix("list");
        for (const suffix of ["1", "2", "3", "4", "5"]) await put(`${base}user:${suffix}`, suffix);
        await put(`${base}other`, "o");
        await del(`${base}user:3`);
        const p = enc(`${base}user:`);
        const first = await getJson(`/v1/kv?prefix=${p}&limit=2`);
        expect(first.keys.map((k: { key: string }) => k.key)).toEqual([`${base}user:1`, `${base}user:2`]);
        expect(typeof first.next).toBe("string");
        const second = await getJson(`/v1/kv?prefix=${p}&limit=2&start=${enc(first.next)}`);
        expect(second.keys.map((k: { key: string }) => k.key)).toEqual([`${base}user:4`, `${base}user:5`]);
        expect(second.next).toBeNull();
        const everything = await getJson(`/v1/kv?prefix=${enc(base)}`);
        expect(everything.keys.length).toBe(5);
        await expectError(await http(`/v1/kv?limit=abc`), 400);
      });

      test("batch (JSON): consecutive seqs; a failing op applies nothing", async () => {
        const base = prefix("batch");
        await put(`${base}taken`, "x");
        const ok = await postJson("/v1/batch", {
          operations: [
            { type: "put", key: `${base}b1`, value: "one" },
            { type: "put", key: `${base}b2`, value: "AAEC/w==", encoding: "base64", contentType: "application/octet-stream" },
            { type: "delete", key: `${base}taken` },
          ],
        });
        expect(ok.status).toBe(200);
        const seqs = ((await ok.json()) as any).results.map((r: { seq: number }) => r.seq);
        expect(seqs.length).toBe(3);
        expect(seqs[1]).toBe(seqs[0] + 1);
        expect(seqs[2]).toBe(seqs[0] + 2);
        expect(await (await http(`/v1/kv/${enc(`${base}b1`)}`)).text()).toBe("one");
        expect(new Uint8Array(await (await http(`/v1/kv/${enc(`${base}b2`)}`)).arrayBuffer())).toEqual(new Uint8Array([0, 1, 2, 255]));
        expect((await http(`/v1/kv/${enc(`${base}taken`)}`)).status).toBe(404);

        const sizeBefore = (await verifiedCheckpoint()).checkpoint.treeSize;
        const refused = await postJson("/v1/batch", {
          operations: [
            { type: "put", key: `${base}b3`, value: "x" },
            { type: "put", key: `${base}b1`, value: "y", ifAbsent: true },
          ],
        });
        await expectError(refused, 412);
        expect((await http(`/v1/kv/${enc(`${base}b3`)}`)).status).toBe(404);
        expect(await (await http(`/v1/kv/${enc(`${base}b1`)}`)).text()).toBe("one");
        const versionRefused = await postJson("/v1/batch", {
          operations: [
            { type: "put", key: `${base}b4`, value: "x" },
            { type: "put", key: `${base}b1`, value: "y", ifVersion: 7 },
          ],
        });
        await expectError(versionRefused, 412);
        expect((await http(`/v1/kv/${enc(`${base}b4`)}`)).status).toBe(404);
        expect((await verifiedCheckpoint()).checkpoint.treeSize).toBe(sizeBefore);
      });

      test("batch: malformed JSON and invalid operations are 400 and apply nothing", async () => {
        const base = prefix("badbatch");
        await expectError(await postJson("/v1/batch", "{not json"), 400);
        await expectError(await postJson("/v1/batch", "[]"), 400);
        await expectError(await postJson("/v1/batch", { operations: [] }), 400);
        await expectError(await postJson("/v1/batch", { operations: "nope" }), 400);
        await expectError(await postJson("/v1/batch", { operations: [{ type: "put", key: `${base}ok`, value: "v" }, { type: "explode", key: `${base}x` }] }), 400);
        await expectError(await postJson("/v1/batch", { operations: [{ type: "put", key: `${base}ok`, value: "v" }, { type: "put", value: "v" }] }), 400);
        await expectError(await postJson("/v1/batch", { operations: [{ type: "put", key: `${base}b64`, value: "!!!", encoding: "base64" }] }), 400);
        expect((await http(`/v1/kv/${enc(`${base}ok`)}`)).status).toBe(404);
      });

      test("log: entries in seq order with base64 entry bytes hashing to their leaf", async () => {
        const key = `${prefix("log")}x`;
        const first = (await (await put(key, "hello", { "Content-Type": "text/plain" })).json()) as any;
        await del(key);
        const log = await getJson(`/v1/log?from=${first.seq}&limit=2`);
        expect(log.entries.map((e: { seq: number }) => e.seq)).toEqual([first.seq, first.seq + 1]);
        for (const item of log.entries) {
          expect(b64of(leafHash(nobleHasher, b64(item.entry)))).toBe(item.leafHash);
        }
        expect(log.entries[0].leafHash).toBe(first.leafHash);
        expect(log.entries[0].key).toBe(key);
        expect(log.entries[1].valueHash).toBeNull();
        expect(log.treeSize).toBeGreaterThanOrEqual(first.seq + 2);
        const one = await getJson(`/v1/log?from=${first.seq + 1}&limit=1`);
        expect(one.entries.map((e: { seq: number }) => e.seq)).toEqual([first.seq + 1]);
        await expectError(await http(`/v1/log?from=-5`), 400);
      });


      test("non-ASCII keys come back intact from log, watch, history and key proof", async () => {
        const key = `${prefix("uni")}ünï✓/日本/é`;
        const written = (await (await put(key, "v", { "Content-Type": "text/plain" })).json()) as any;
        const log = await http(`/v1/log?from=${written.seq}&limit=1`);
        expect(log.status).toBe(200);
        const item = ((await log.json()) as any).entries[0];
        expect(item.key).toBe(key);
        expect(b64of(leafHash(nobleHasher, b64(item.entry)))).toBe(written.leafHash);
        const proof = await getJson(`/v1/proof/key/${enc(key)}`);
        expect(proof).toMatchObject({ key, seq: written.seq, leafHash: written.leafHash });
        const history = await getJson(`/v1/history/${enc(key)}`);
        expect(history.versions.map((v: { seq: number }) => v.seq)).toEqual([written.seq]);
        expect(await getJson(`/verify/${enc(key)}`)).toMatchObject({ key, verified: true });
        const controller = new AbortController();
        const response = await http(`/v1/watch?from=${written.seq}&format=ndjson`, { signal: controller.signal });
        expect(response.status).toBe(200);
        const reader = response.body!.getReader();
        let buffered = "";
        while (!buffered.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) break;
          buffered += new TextDecoder().decode(value, { stream: true });
        }
        await reader.cancel().catch(() => {});
        controller.abort();
        expect(JSON.parse(buffered.slice(0, buffered.indexOf("\n"))).key).toBe(key);
        expect((await http("/health")).status).toBe(200);
      });
    });

    describe("verification", () => {
      test("checkpoint is a C2SP note signed by the served verifier key; tampering fails", async () => {
        await put(`${prefix("cp")}k`, "v");
        const { note, verifier, checkpoint } = await verifiedCheckpoint();
        const lines = note.split("\n");
        expect(lines[0]).toBe(checkpoint.origin);
        expect(lines[1]).toBe(String(checkpoint.treeSize));
        expect(lines[2]).toBe(b64of(checkpoint.rootHash));
        expect(lines[3]).toBe("");
        expect(lines[4]!.startsWith("— ")).toBe(true);
        expect(checkpoint.treeSize).toBeGreaterThan(0);
        const tampered = note.replace(`\n${checkpoint.treeSize}\n`, `\n${checkpoint.treeSize + 1}\n`);
        expect(() => openNote(tampered, [verifier])).toThrow();
        const again = await (await http(`/v1/checkpoint?treeSize=1`)).text();
        expect(await (await http(`/v1/checkpoint?treeSize=1`)).text()).toBe(again);
        await expectError(await http(`/v1/checkpoint?treeSize=${checkpoint.treeSize + 1000}`), 400);
      });

      test("inclusion proofs verify against the signed root (client-side, noble SHA-256)", async () => {
        const base = prefix("incl");
        for (let i = 0; i < 5; i++) await put(`${base}k${i}`, `v${i}`);
        const { checkpoint } = await verifiedCheckpoint();
        const size = checkpoint.treeSize;
        const seqs = [0, Math.floor(size / 2), size - 1];
        for (const seq of seqs) {
          const body = await getJson(`/v1/proof/inclusion?seq=${seq}&treeSize=${size}`);
          expect(body).toMatchObject({ seq, treeSize: size });
          verifyInclusion(nobleHasher, seq, size, b64(body.leafHash), body.proof.map(b64), checkpoint.rootHash);
          const wrong = b64(body.leafHash);
          wrong[0] = wrong[0]! ^ 1;
          expect(() => verifyInclusion(nobleHasher, seq, size, wrong, body.proof.map(b64), checkpoint.rootHash)).toThrow();
        }
        const log = await getJson(`/v1/log?from=${size - 1}&limit=1`);
        const lastProof = await getJson(`/v1/proof/inclusion?seq=${size - 1}&treeSize=${size}`);
        expect(lastProof.leafHash).toBe(log.entries[0].leafHash);
        const defaulted = await getJson(`/v1/proof/inclusion?seq=0`);
        expect(defaulted.treeSize).toBeGreaterThanOrEqual(size);
        await expectError(await http(`/v1/proof/inclusion?seq=${size + 1000}`), 400);
        await expectError(await http(`/v1/proof/inclusion`), 400);
        await expectError(await http(`/v1/proof/inclusion?seq=abc`), 400);
      });

      test("consistency proofs link an older signed checkpoint to a newer one", async () => {
        const base = prefix("cons");
        await put(`${base}a`, "1");
        const old = (await verifiedCheckpoint()).checkpoint;
        for (let i = 0; i < 3; i++) await put(`${base}b${i}`, "2");
        const latest = (await verifiedCheckpoint()).checkpoint;
        for (const from of [1, old.treeSize]) {
          const earlier = from === old.treeSize ? old : (await verifiedCheckpoint(`?treeSize=${from}`)).checkpoint;
          const body = await getJson(`/v1/proof/consistency?from=${from}&to=${latest.treeSize}`);
          expect(body).toMatchObject({ from, to: latest.treeSize });
          verifyConsistency(nobleHasher, from, latest.treeSize, earlier.rootHash, latest.rootHash, body.proof.map(b64));
          const forged = new Uint8Array(earlier.rootHash);
          forged[0] = forged[0]! ^ 1;
          expect(() => verifyConsistency(nobleHasher, from, latest.treeSize, forged, latest.rootHash, body.proof.map(b64))).toThrow();
        }
        await expectError(await http(`/v1/proof/consistency?from=5&to=3`), 400);
        await expectError(await http(`/v1/proof/consistency?from=abc`), 400);
      });

      test("key proof: entry bytes -> leaf -> inclusion -> signed checkpoint; ?version= for older", async () => {
        const key = `${prefix("kp")}dir/key`;
        const v1 = (await (await put(key, "first")).json()) as any;
        const v2 = (await (await put(key, "second")).json()) as any;
        const verifier = parseVerifierKey((await (await http("/v1/checkpoint/key")).text()).trim());
        for (const [query, expected] of [["", v2], ["?version=1", v1]] as const) {
          const body = await getJson(`/v1/proof/key/${enc(key)}${query}`);
          expect(body).toMatchObject({ key, seq: expected.seq });
          const entry = b64(body.entry);
          expect(leafHash(nobleHasher, entry)).toEqual(b64(body.leafHash));
          expect(body.leafHash).toBe(expected.leafHash);
          const checkpoint = parseCheckpoint(openNote(body.checkpoint, [verifier]).text);
          expect(checkpoint.treeSize).toBe(body.treeSize);
          expect(checkpoint.rootHash).toEqual(b64(body.rootHash));
          verifyInclusion(nobleHasher, body.seq, body.treeSize, b64(body.leafHash), body.proof.map(b64), checkpoint.rootHash);
        }
        await expectError(await http(`/v1/proof/key/${enc(`${prefix("kpnone")}x`)}`), 404);
        await expectError(await http(`/v1/proof/key/${enc(key)}?version=0`), 400);
      });

      test("compat /verify/{key} reports verified with hex hashes", async () => {
        const key = `${prefix("verify")}k`;
        await put(key, "v");
        const body = await getJson(`/verify/${enc(key)}`);
        expect(body).toMatchObject({ key, verified: true });
        expect(body.proof.root_hash).toMatch(/^[0-9a-f]{64}$/);
        expect(Array.isArray(body.proof.siblings)).toBe(true);
        for (const sibling of body.proof.siblings) expect(sibling).toMatch(/^[0-9a-f]{64}$/);
        expect((await http(`/verify/${enc(`${prefix("verifynone")}x`)}`)).status).toBe(404);
      });
    });

    describe("compat routes", () => {
      test("PUT /{key} then GET /{key} then DELETE /{key}", async () => {
        const key = `my-key-${prefix("c1").replace(/\//g, "")}`;
        const created = await http(`/${key}`, { method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: "my value data" });
        expect(created.status).toBe(201);
        const get = await http(`/${key}`);
        expect(get.status).toBe(200);
        expect(await get.text()).toBe("my value data");
        expect(await (await http(`/v1/kv/${key}`)).text()).toBe("my value data");
        expect((await http(`/${key}`, { method: "DELETE" })).status).toBe(200);
        await expectError(await http(`/${key}`), 404);
      });

      test("PUT/POST /put with JSON {key, value}; GET /get/{key}", async () => {
        const base = prefix("c2");
        const put1 = await postJson("/put", { key: `${base}alice`, value: "Alice Smith" }, "PUT");
        expect(put1.status).toBe(201);
        const put2 = await postJson("/put", { key: `${base}balance`, value: "1000.50" }, "POST");
        expect(put2.status).toBe(201);
        const get = await http(`/get/${enc(`${base}alice`)}`);
        expect(get.status).toBe(200);
        expect(await get.text()).toBe("Alice Smith");
        expect(await (await http(`/get/${enc(`${base}balance`)}`)).text()).toBe("1000.50");
        await expectError(await http(`/get/${enc(`${base}nobody`)}`), 404);
        await expectError(await postJson("/put", '{"key": 1}', "PUT"), 400);
        await expectError(await postJson("/put", "{oops", "POST"), 400);
      });

      test("BlockDB: POST /api/v1/put, GET /api/v1/get/{key}, POST /api/v1/batch", async () => {
        const base = prefix("c3");
        expect((await postJson("/api/v1/put", { key: `${base}user:1001`, value: "John Doe" })).status).toBe(201);
        const get = await http(`/api/v1/get/${enc(`${base}user:1001`)}`);
        expect(get.status).toBe(200);
        expect(await get.text()).toBe("John Doe");
        const batch = await postJson("/api/v1/batch", {
          operations: [
            { type: "put", key: `${base}user:1002`, value: "Jane Smith" },
            { type: "put", key: `${base}user:1003`, value: "Bob" },
          ],
        });
        expect(batch.status).toBe(200);
        expect(await (await http(`/api/v1/get/${enc(`${base}user:1002`)}`)).text()).toBe("Jane Smith");
        expect(await (await http(`/api/v1/get/${enc(`${base}user:1003`)}`)).text()).toBe("Bob");
        await expectError(await http(`/api/v1/get/${enc(`${base}none`)}`), 404);
        await expectError(await postJson("/api/v1/batch", "{bad"), 400);
      });
    });

    describe("operations", () => {
      test("/health, /metrics, /metrics/prometheus", async () => {
        await put(`${prefix("ops")}k`, "v");
        const health = await http("/health");
        expect(health.status).toBe(200);
        expect(await health.json()).toMatchObject({ status: "ok" });
        const metrics = await getJson("/metrics");
        expect(metrics.status).toBe("ok");
        expect(metrics.tree_size).toBeGreaterThan(0);
        expect(metrics.put_requests).toBeGreaterThan(0);
        const prometheus = await http("/metrics/prometheus");
        expect(prometheus.status).toBe(200);
        expect(prometheus.headers.get("Content-Type") ?? "").toContain("text/plain");
        const text = await prometheus.text();
        expect(text).toContain("scribe_http_requests_total{");
        expect(text).toContain("scribe_http_request_duration_seconds_bucket{");
        expect(text).toMatch(/scribe_merkle_tree_size \d+/);
        expect(text).toMatch(/scribe_storage_bytes \d+/);
      });

      test("/cluster/status|info|members|nodes|leader|leader/info", async () => {
        const cp = (await verifiedCheckpoint()).checkpoint;
        for (const path of ["/cluster/status", "/cluster/info"]) {
          const status = await getJson(path);
          expect(status).toMatchObject({ nodeId: "1", role: "leader", leaderId: "1" });
          expect(status.treeSize).toBeGreaterThanOrEqual(cp.treeSize);
          expect(Array.isArray(status.members)).toBe(true);
        }
        for (const path of ["/cluster/members", "/cluster/nodes"]) {
          const body = await getJson(path);
          expect(body.members.length).toBe(1);
          expect(body.members[0]).toMatchObject({ id: "1", role: "voter", reachable: true });
        }
        for (const path of ["/cluster/leader", "/cluster/leader/info"]) {
          expect(await getJson(path)).toMatchObject({ leaderId: "1" });
        }
      });
    });

    describe("errors", () => {
      test("malformed percent-encoding is 400 with a JSON error", async () => {
        for (const path of ["/v1/kv/%", "/v1/kv/%E0%A4%A", "/v1/kv/%FF%FE", "/v1/history/%ZZ", "/v1/proof/key/%"]) {
          await expectError(await http(path), 400);
        }
        await expectError(await http("/v1/kv/%", { method: "PUT", body: "x" }), 400);
      });

      test("a key over 1024 bytes is 400 key_too_long; exactly 1024 is fine", async () => {
        const base = prefix("long");
        const ok = base + "k".repeat(1024 - Buffer.byteLength(base));
        expect((await put(ok, "x")).status).toBe(201);
        await expectError(await put(`${ok}k`, "x"), 400, "key_too_long");
        await expectError(await put(base + "é".repeat(600), "x"), 400, "key_too_long");
      });

      test("a value over the limit is 413 and stores nothing; exactly the limit is fine", async () => {
        const key = `${prefix("big")}v`;
        await expectError(await put(key, new Uint8Array(VALUE_BYTES_MAX + 1)), 413);
        expect((await http(`/v1/kv/${enc(key)}`)).status).toBe(404);
        expect((await put(key, new Uint8Array(VALUE_BYTES_MAX))).status).toBe(201);
        expect((await http(`/v1/kv/${enc(key)}`, { headers: { Accept: "application/json" } })).status).toBe(200);
        await expectError(await postJson("/v1/batch", { operations: [{ type: "put", key: `${key}2`, value: "x".repeat(VALUE_BYTES_MAX + 1) }] }), 413);
        expect((await http(`/v1/kv/${enc(`${key}2`)}`)).status).toBe(404);
      });

      test("unknown routes are 404 with a JSON error; route names are not keys", async () => {
        await expectError(await http("/v2/nothing/here"), 404);
        await expectError(await http("/v1/unknown"), 404);
        await expectError(await http("/a/b/c/d"), 404);
        await expectError(await http("/health", { method: "PUT", body: "x" }), 404);
      });

      test("garbage requests at every route never yield a 5xx, and every 4xx is a JSON error", async () => {
        const paths = [
          "/v1/kv/", "/v1/kv/a?version=-1", "/v1/kv/a?version=1e9", "/v1/kv/a?version=99999999999999999999",
          "/v1/kv?limit=0", "/v1/kv?limit=abc", "/v1/kv?prefix=%00", "/v1/history/a?before=0", "/v1/batch",
          "/v1/log?from=999999", "/v1/log?limit=-1", "/v1/proof/inclusion?seq=1&treeSize=0", "/v1/proof/consistency?from=0&to=0",
          "/v1/proof/key/", "/v1/checkpoint?treeSize=-1", "/v1/watch?from=abc", "/verify/", "/get/", "/api/v1/get/",
          "/put", "/api/v1/put", "/api/v1/batch", "/cluster/members", "/cluster/remove/x",
        ];
        for (const method of ["GET", "PUT", "POST", "DELETE", "PATCH"]) {
          for (const path of paths) {
            const body = method === "GET" ? undefined : '{"operations": [{"type": 5}], "key": [], "value": {}}';
            const response = await http(path, { method, body, headers: { "Content-Type": "application/json" } });
            const what = `${method} ${path} -> ${response.status}`;
            expect({ what, serverError: response.status >= 500 && !isMembershipChange(method, path, response.status) }).toEqual({ what, serverError: false });
            if (response.status >= 400) {
              const error = ((await response.json()) as any).error;
              expect({ what, code: typeof error?.code, message: typeof error?.message }).toEqual({ what, code: "string", message: "string" });
            } else {
              await response.body?.cancel();
            }
          }
        }
      });

      test("no request in this suite got a 5xx", () => {
        const fivexx = seen.filter((r) => r.status >= 500 && !isMembershipChange(r.method, r.path, r.status));
        expect(fivexx).toEqual([]);
        expect(seen.length).toBeGreaterThan(50);
      });
    });
  });
}
