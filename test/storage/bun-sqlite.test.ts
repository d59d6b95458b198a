import { Database } from "bun:sqlite";
import { describe, expect, test } from "bun:test";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBunSqliteStorage, GROUPS_IN_FLIGHT_MAX } from "../../adapters/bun-sqlite/index.ts";
import { createInlineWriter, SYNCS_IN_FLIGHT_MAX, type SyncCalls } from "../../adapters/bun-sqlite/inline-writer.ts";
import { createWorkerWriter } from "../../adapters/bun-sqlite/worker-writer.ts";
import { describeStorageConformance } from "./conformance.ts";

describeStorageConformance({
  name: "bun-sqlite",
  durable: true,
  open: (dir) => createBunSqliteStorage({ path: join(dir, "ledger.sqlite") }),
  makeLocation: () => mkdtemp(join(tmpdir(), "scribe-sqlite-")),
  cleanup: (dir) => rm(dir, { recursive: true, force: true }),
});

describeStorageConformance({
  name: "bun-sqlite (inline writer)",
  durable: true,
  open: (dir) => createBunSqliteStorage({ path: join(dir, "ledger.sqlite"), writer: "inline" }),
  makeLocation: () => mkdtemp(join(tmpdir(), "scribe-sqlite-inline-")),
  cleanup: (dir) => rm(dir, { recursive: true, force: true }),
});

const bytes = (text: string) => new TextEncoder().encode(text);

/** Run `body` with the path of a fresh database file in a temporary directory, removed afterwards. */
async function withDatabasePath(prefix: string, body: (path: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  try {
    await body(join(dir, "ledger.sqlite"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("bun-sqlite inline writer after a failed commit", () => {
  test("refuses that commit and every later one; what committed before stays and the failed batch left nothing", async () => {
    await withDatabasePath("scribe-sqlite-inline-fail-", async (path) => {
      const storage = await createBunSqliteStorage({ path, writer: "inline" });
      await storage.commit([{ type: "put", key: bytes("a"), value: bytes("1") }]);
      const saboteur = new Database(path);
      saboteur.exec("CREATE TRIGGER refuse_bad BEFORE INSERT ON kv WHEN NEW.k = CAST('bad' AS BLOB) BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
      saboteur.close();
      const outcome = (commit: Promise<void>) => commit.then(() => "committed", (error: unknown) => String(error));
      // The failing batch's first put would succeed alone: the whole batch must roll back.
      expect(await outcome(storage.commit([{ type: "put", key: bytes("b"), value: bytes("2") }, { type: "put", key: bytes("bad"), value: bytes("x") }]))).toContain("injected failure");
      expect(await outcome(storage.commit([{ type: "put", key: bytes("c"), value: bytes("3") }]))).toContain("injected failure");
      await storage.close();
      const reopened = await createBunSqliteStorage({ path, writer: "inline" });
      expect(new TextDecoder().decode(await reopened.get(bytes("a")))).toBe("1");
      expect(await reopened.get(bytes("b"))).toBeUndefined();
      expect(await reopened.get(bytes("c"))).toBeUndefined();
      await reopened.close();
    });
  });

  test("a commit resolves only after a WAL sync; concurrent commits share syncs and all land", async () => {
    await withDatabasePath("scribe-sqlite-inline-sync-", async (path) => {
      const storage = await createBunSqliteStorage({ path, writer: "inline" });
      let settled = false;
      const first = storage.commit([{ type: "put", key: bytes("k0"), value: bytes("v0") }]).then(() => (settled = true));
      // The fdatasync's completion comes through the event loop, never in a microtask: a commit that resolved
      // without waiting for it would have settled by now.
      for (let i = 0; i < 10; i++) await null;
      expect(settled).toBe(false);
      const rest = Array.from({ length: 200 }, (_, i) => storage.commit([{ type: "put", key: bytes(`k${i + 1}`), value: bytes(`v${i + 1}`) }]));
      await Promise.all([first, ...rest]);
      await storage.close();
      const reopened = await createBunSqliteStorage({ path });
      const rows = await reopened.scan({ limit: 1000 });
      expect(rows.length).toBe(201);
      await reopened.close();
    });
  });
});

/** WAL syncs that end only when the test says so, in any order, with success or an error. */
function heldSyncs(): SyncCalls & { started: Array<{ end: (error?: Error) => void }> } {
  const started: Array<{ end: (error?: Error) => void }> = [];
  return {
    started,
    fdatasync: () => new Promise<void>((resolve, reject) => started.push({ end: (error) => (error === undefined ? resolve() : reject(error)) })),
    fsyncDir: async () => {},
  };
}

/** The schema the adapter creates, on a fresh connection in WAL mode, for driving an inline writer directly. */
function openInlineDatabase(path: string): Database {
  const db = new Database(path, { create: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("CREATE TABLE kv (k BLOB PRIMARY KEY NOT NULL, v BLOB NOT NULL) WITHOUT ROWID");
  return db;
}

/** Let every callback that is ready run (the fake syncs settle through promises, so a few turns suffice). */
const drain = async () => {
  for (let i = 0; i < 10; i++) await null;
};

describe("bun-sqlite inline writer syncs", () => {
  test(`runs up to ${SYNCS_IN_FLIGHT_MAX} syncs at once; a commit behind them shares the next, and each resolves with its own sync`, async () => {
    await withDatabasePath("scribe-sqlite-inline-syncs-", async (path) => {
      const db = openInlineDatabase(path);
      const io = heldSyncs();
      const writer = createInlineWriter(db, path, io);
      const done: string[] = [];
      const commit = (name: string) => writer.commit([{ type: "put", key: bytes(name), value: bytes("v") }], true).then(() => done.push(name));
      const commits = [commit("a"), commit("b")];
      // The second commit did not wait for the first sync to end before its own started.
      expect(SYNCS_IN_FLIGHT_MAX).toBe(2);
      expect(io.started.length).toBe(2);
      commits.push(commit("c"), commit("d"));
      expect(io.started.length).toBe(2);
      // The later sync may end first: only its own commit is acknowledged.
      io.started[1]!.end();
      await drain();
      expect(done).toEqual(["b"]);
      // Its end started one sync for both waiting commits.
      expect(io.started.length).toBe(3);
      io.started[2]!.end();
      await drain();
      expect(done.sort()).toEqual(["b", "c", "d"]);
      io.started[0]!.end();
      await Promise.all(commits);
      expect(done.sort()).toEqual(["a", "b", "c", "d"]);
      await writer.close();
      db.close();
    });
  });

  test("after a failed sync, a sync that ends well later acknowledges nothing, and every later commit is refused", async () => {
    await withDatabasePath("scribe-sqlite-inline-sync-fail-", async (path) => {
      const db = openInlineDatabase(path);
      const io = heldSyncs();
      const writer = createInlineWriter(db, path, io);
      const outcome = (name: string) => writer.commit([{ type: "put", key: bytes(name), value: bytes("v") }], true).then(() => "acknowledged", (error: unknown) => String(error));
      const first = outcome("a");
      const second = outcome("b");
      expect(io.started.length).toBe(2);
      io.started[0]!.end(new Error("EIO"));
      expect(await first).toContain("EIO");
      io.started[1]!.end();
      expect(await second).toContain("EIO");
      expect(await outcome("c")).toContain("EIO");
      await writer.close();
      db.close();
    });
  });
});

describe("bun-sqlite after a failed commit", () => {
  test("refuses the groups sent behind it and every later commit; nothing after the failure is stored", async () => {
    const dir = await mkdtemp(join(tmpdir(), "scribe-sqlite-fail-"));
    const path = join(dir, "ledger.sqlite");
    try {
      const storage = await createBunSqliteStorage({ path });
      const bytes = (text: string) => new TextEncoder().encode(text);
      await storage.commit([{ type: "put", key: bytes("a"), value: bytes("1") }]);
      // Make inserts of key "bad" fail inside the writer's transaction.
      const saboteur = new Database(path);
      saboteur.exec("CREATE TRIGGER refuse_bad BEFORE INSERT ON kv WHEN NEW.k = CAST('bad' AS BLOB) BEGIN SELECT RAISE(ABORT, 'injected failure'); END");
      saboteur.close();
      // Both groups are handed to the worker before either is answered.
      expect(GROUPS_IN_FLIGHT_MAX).toBeGreaterThanOrEqual(2);
      // Settled outcomes are read through .then: awaiting `expect(p).rejects` on these promises hung under bun:test.
      const outcome = (commit: Promise<void>) => commit.then(() => "committed", (error: unknown) => String(error));
      const failing = outcome(storage.commit([{ type: "put", key: bytes("bad"), value: bytes("x") }]));
      const behind = outcome(storage.commit([{ type: "put", key: bytes("b"), value: bytes("2") }]));
      const queued = outcome(storage.commit([{ type: "put", key: bytes("c"), value: bytes("3") }]));
      expect(await failing).toContain("injected failure");
      expect(await behind).toContain("refused after an earlier group failed");
      expect(await queued).toContain("injected failure");
      expect(await outcome(storage.commit([{ type: "put", key: bytes("d"), value: bytes("4") }]))).toContain("sqlite commit failed");
      await storage.close();

      const reopened = await createBunSqliteStorage({ path });
      const keys = (await reopened.scan({ limit: 10 })).map(({ key }) => new TextDecoder().decode(key));
      expect(keys).toEqual(["a"]);
      await reopened.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("bun-sqlite pollCommits", () => {
  test("settles a commit the worker finished while this thread never yields (the reply message cannot have arrived)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "scribe-sqlite-poll-"));
    try {
      const storage = await createBunSqliteStorage({ path: join(dir, "ledger.sqlite") });
      const bytes = (text: string) => new TextEncoder().encode(text);
      expect(storage.pollCommits!()).toBe(0);
      let resolved = false;
      const commit = storage.commit([{ type: "put", key: bytes("k"), value: bytes("v") }]).then(() => (resolved = true));
      // Spin without awaiting: worker messages are only delivered when this thread returns to its event loop.
      const deadline = Date.now() + 10_000;
      let settled = 0;
      while (settled === 0 && Date.now() < deadline) settled = storage.pollCommits!();
      expect(settled).toBe(1);
      expect(resolved).toBe(false); // resolution callbacks run once this synchronous code ends
      await commit;
      expect(resolved).toBe(true);
      // The reply that arrives afterwards settles nothing twice, and the store still works.
      await storage.commit([{ type: "put", key: bytes("k2"), value: bytes("v2") }]);
      expect(storage.pollCommits!()).toBe(0);
      expect(new TextDecoder().decode(await storage.get(bytes("k2")))).toBe("v2");
      await storage.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("bun-sqlite worker writer that cannot start", () => {
  /** The error `createWorkerWriter` rejects with, or a note that it settled otherwise (or not within 10 s). */
  async function startFailure(path: string, workerSpecifier?: string): Promise<string> {
    const timeout = new Promise<string>((resolve) => setTimeout(() => resolve("still pending after 10 s"), 10_000));
    const start = createWorkerWriter(path, 16, workerSpecifier).then(
      async (writer) => {
        await writer.close();
        return "opened";
      },
      (error: unknown) => String(error),
    );
    return Promise.race([start, timeout]);
  }

  test("a worker module that does not load rejects the start instead of leaving it pending", async () => {
    await withDatabasePath("scribe-sqlite-worker-missing-", async (path) => {
      const failure = await startFailure(path, new URL("./no-such-writer-worker.ts", import.meta.url).href);
      expect(failure).toContain("sqlite writer worker could not open");
      expect(failure).toContain("no-such-writer-worker.ts");
    });
  });

  test("a file the worker cannot open rejects the start, naming the file", async () => {
    await withDatabasePath("scribe-sqlite-worker-unopenable-", async (path) => {
      // A directory where the database file should be: SQLite cannot open it.
      await mkdir(path);
      const failure = await startFailure(path);
      expect(failure).toContain(`sqlite writer worker could not open ${path}`);
      // Reported by the worker itself, not noticed as a crash of it.
      expect(failure).not.toContain("worker died");
    });
  });
});

describe("bun-sqlite worker writer whose worker crashes", () => {
  test("the commit in flight and every later one are refused, and close still returns", async () => {
    await withDatabasePath("scribe-sqlite-worker-crash-", async (path) => {
      const writer = await createWorkerWriter(path, 16, new URL("./fixtures/crashing-writer-worker.ts", import.meta.url).href);
      const put = () => writer.commit([{ type: "put", key: bytes("k"), value: bytes("v") }], true).then(() => "acknowledged", (error: unknown) => String(error));
      expect(await put()).toContain("sqlite writer worker died");
      expect(await put()).toContain("sqlite writer worker died");
      const closed = await Promise.race([writer.close().then(() => "closed"), new Promise((resolve) => setTimeout(() => resolve("close still pending after 5 s"), 5000))]);
      expect(closed).toBe("closed");
    });
  });
});
