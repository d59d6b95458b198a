import { afterAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { copyFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32c } from "../../adapters/fs-log/crc32c.ts";
import { createFsLogStorage, type FsLogStorageOptions, StorageFailStopError } from "../../adapters/fs-log/index.ts";
import { batchEncodedBytes, checkFrame, encodeFrame } from "../../adapters/fs-log/record.ts";
import { encodedFrameUpdates, frameUpdates } from "../../adapters/fs-log/recover.ts";
import { type BatchOp, StorageCorruptionError } from "../../src/storage/index.ts";
import { describeStorageConformance } from "./conformance.ts";
import { killTestValue } from "./fs-log-kill-values.ts";

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const text = (data: Uint8Array | undefined): string | undefined => (data === undefined ? undefined : new TextDecoder().decode(data));
const SEGMENT_1 = "0000000001.seg";

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "fs-log-test-"));
  tempDirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** Copy the files of a live store: what a crash at this instant would leave (every acknowledged byte is synced). */
async function crashImage(dir: string, files?: string[]): Promise<string> {
  const image = await tempDir();
  for (const name of files ?? (await readdir(dir))) await copyFile(join(dir, name), join(image, name));
  return image;
}

describeStorageConformance({
  name: "fs-log",
  durable: true,
  open: (location) => createFsLogStorage({ dir: location }),
  makeLocation: () => mkdtemp(join(tmpdir(), "fs-log-conformance-")),
  cleanup: (location) => rm(location, { recursive: true, force: true }),
});

describe("crc32c", () => {
  // Bitwise reference straight from the definition, used only to cross-check the table code.
  function crc32cReference(data: Uint8Array): number {
    let crc = 0xffffffff;
    for (const byte of data) {
      crc ^= byte;
      for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    }
    return ~crc >>> 0;
  }

  test("matches the published vectors (check value and RFC 3720 B.4)", () => {
    expect(crc32c(bytes("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  test("equals the bitwise reference for every length 0..100, and chains", () => {
    const data = Uint8Array.from({ length: 100 }, (_, i) => (i * 89 + 7) & 0xff);
    for (let length = 0; length <= 100; length++) {
      expect(crc32c(data.subarray(0, length))).toBe(crc32cReference(data.subarray(0, length)));
      expect(crc32c(data.subarray(length), crc32c(data.subarray(0, length)))).toBe(crc32cReference(data));
    }
  });
});

describe("fs-log frames", () => {
  test("the index updates taken from the ops at commit equal those recovery parses from the frame", () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let round = 0; round < 50; round++) {
      const batches = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
        const ops: BatchOp[] = Array.from({ length: Math.floor(random() * 40) }, (_, i): BatchOp => {
          const key = Uint8Array.from({ length: Math.floor(random() * 300) }, () => Math.floor(random() * 256));
          if (random() < 0.2) return { type: "delete", key };
          return { type: "put", key, value: new Uint8Array(Math.floor(random() * 600)).fill(i) };
        });
        return { ops, encodedBytes: batchEncodedBytes(ops) };
      });
      const { frame, valueOffsets } = encodeFrame(batches);
      expect(checkFrame(frame, 0)).toEqual({ kind: "valid", frameBytes: frame.length });
      const frameOffset = Math.floor(random() * 10_000);
      expect(encodedFrameUpdates(batches, valueOffsets, 3, frameOffset, 256)).toEqual(frameUpdates(frame, 3, frameOffset, 256));
    }
  });
});

describe("fs-log recovery", () => {
  test("a last record cut at every byte offset is dropped and everything before it kept", async () => {
    const dir = await tempDir();
    const store = await createFsLogStorage({ dir });
    for (let n = 0; n < 4; n++) await store.commit([{ type: "put", key: bytes(`k${n}`), value: bytes(`v${n}`.repeat(20)) }]);
    const lastStart = (await stat(join(dir, SEGMENT_1))).size;
    await store.commit([
      { type: "put", key: bytes("last"), value: bytes("tail".repeat(30)) },
      { type: "delete", key: bytes("k0") },
    ]);
    const full = await readFile(join(dir, SEGMENT_1));
    await store.close();
    expect(full.length).toBeGreaterThan(lastStart);
    for (let cut = lastStart; cut < full.length; cut++) {
      const image = await tempDir();
      await writeFile(join(image, SEGMENT_1), full.subarray(0, cut));
      const reopened = await createFsLogStorage({ dir: image });
      expect(reopened.recovery.truncatedTailBytes).toBe(cut - lastStart);
      for (let n = 0; n < 4; n++) expect(text(await reopened.get(bytes(`k${n}`)))).toBe(`v${n}`.repeat(20));
      expect(await reopened.get(bytes("last"))).toBeUndefined();
      await reopened.commit([{ type: "put", key: bytes("after"), value: bytes("x") }]);
      await reopened.close();
      expect((await stat(join(image, SEGMENT_1))).size).toBeGreaterThan(lastStart);
      const again = await createFsLogStorage({ dir: image });
      expect(again.recovery.truncatedTailBytes).toBe(0);
      expect(text(await again.get(bytes("after")))).toBe("x");
      expect(text(await again.get(bytes("k0")))).toBe("v0".repeat(20));
      await again.close();
      await rm(image, { recursive: true, force: true });
    }
  });

  test("a flipped bit before the tail refuses open with file and offset", async () => {
    const dir = await tempDir();
    const store = await createFsLogStorage({ dir });
    const starts: number[] = [];
    for (let n = 0; n < 3; n++) {
      starts.push((await stat(join(dir, SEGMENT_1))).size);
      await store.commit([{ type: "put", key: bytes(`k${n}`), value: new Uint8Array(600).fill(n) }]);
    }
    const image = await crashImage(dir, [SEGMENT_1]);
    await store.close();
    const clean = await readFile(join(image, SEGMENT_1));
    for (const [frame, flipAt] of [[0, starts[0]! + 2], [1, starts[1]! + 5], [1, starts[1]! + 300], [0, starts[1]! - 1]] as const) {
      const damaged = Uint8Array.from(clean);
      damaged[flipAt] = damaged[flipAt]! ^ 0x10;
      await writeFile(join(image, SEGMENT_1), damaged);
      const opening = createFsLogStorage({ dir: image });
      await expect(opening).rejects.toBeInstanceOf(StorageCorruptionError);
      await expect(opening).rejects.toThrow(`${join(image, SEGMENT_1)} at offset ${starts[frame]}`);
    }
    await writeFile(join(image, SEGMENT_1), clean);
    const reopened = await createFsLogStorage({ dir: image });
    expect(await reopened.get(bytes("k2"))).toEqual(new Uint8Array(600).fill(2));
    await reopened.close();
  });

  test("a bad frame in a sealed segment refuses open even if it is that segment's last", async () => {
    const dir = await tempDir();
    const store = await createFsLogStorage({ dir, segmentBytes: 4096 });
    for (let n = 0; n < 12; n++) await store.commit([{ type: "put", key: bytes(`k${n}`), value: new Uint8Array(1000).fill(n) }]);
    await store.close();
    await rm(join(dir, "index.ckpt"));
    const segment = join(dir, SEGMENT_1);
    await truncate(segment, (await stat(segment)).size - 1);
    await expect(createFsLogStorage({ dir })).rejects.toThrow(`${segment} at offset`);
  });

  test("a value read from disk is re-checked against its checksum", async () => {
    const dir = await tempDir();
    const store = await createFsLogStorage({ dir, inlineValueBytesMax: 16 });
    await store.commit([{ type: "put", key: bytes("big"), value: new Uint8Array(5000).fill(7) }]);
    const segment = await readFile(join(dir, SEGMENT_1));
    segment[segment.length - 10] = 0;
    await writeFile(join(dir, SEGMENT_1), segment);
    await expect(store.get(bytes("big"))).rejects.toBeInstanceOf(StorageCorruptionError);
    await store.close();
  });

  test("segments roll at the configured size and all reopen, with or without the checkpoint", async () => {
    const dir = await tempDir();
    const options: FsLogStorageOptions = { dir, segmentBytes: 8192, inlineValueBytesMax: 64 };
    const store = await createFsLogStorage(options);
    const valueOf = (n: number) => new Uint8Array(100 + ((n * 37) % 900)).fill(n & 0xff);
    for (let n = 0; n < 100; n++) await store.commit([{ type: "put", key: bytes(`k${String(n).padStart(3, "0")}`), value: valueOf(n) }]);
    await store.commit([{ type: "delete", key: bytes("k050") }]);
    await store.close();
    const segments = (await readdir(dir)).filter((name) => name.endsWith(".seg")).sort();
    expect(segments.length).toBeGreaterThan(5);
    for (const name of segments.slice(0, -1)) expect((await stat(join(dir, name))).size).toBeLessThan(8192 + 1);
    for (const withCheckpoint of [true, false]) {
      if (!withCheckpoint) await rm(join(dir, "index.ckpt"));
      const reopened = await createFsLogStorage(options);
      expect(reopened.recovery.segmentCount).toBe(segments.length);
      expect(reopened.recovery.replayedFrames).toBe(withCheckpoint ? 0 : 101);
      const all = await reopened.scan({ limit: 1000 });
      expect(all.length).toBe(99);
      for (const pair of all) expect(pair.value).toEqual(valueOf(Number(text(pair.key)!.slice(1))));
      await reopened.close();
    }
  });

  test("a checkpoint lets reopen replay only the frames written after it", async () => {
    const dir = await tempDir();
    const options: FsLogStorageOptions = { dir, segmentBytes: 4096, checkpointBytes: 1 << 30 };
    const store = await createFsLogStorage(options);
    for (let n = 0; n < 30; n++) await store.commit([{ type: "put", key: bytes(`a${n}`), value: new Uint8Array(300).fill(n) }]);
    await store.close();
    const reopened = await createFsLogStorage(options);
    expect(reopened.recovery.checkpointPosition).toBeDefined();
    expect(reopened.recovery.replayedFrames).toBe(0);
    for (let n = 0; n < 3; n++) await reopened.commit([{ type: "put", key: bytes(`b${n}`), value: bytes(`tail${n}`) }]);
    await reopened.commit([{ type: "delete", key: bytes("a0") }]);
    const crashed = await createFsLogStorage({ ...options, dir: await crashImage(dir) });
    expect(crashed.recovery.replayedFrames).toBe(4);
    expect(crashed.recovery.checkpointPosition).toEqual(reopened.recovery.checkpointPosition);
    expect(await crashed.get(bytes("a0"))).toBeUndefined();
    expect(await crashed.get(bytes("a29"))).toEqual(new Uint8Array(300).fill(29));
    expect(text(await crashed.get(bytes("b2")))).toBe("tail2");
    expect((await crashed.scan({ limit: 100 })).length).toBe(32);
    await crashed.close();
    await reopened.close();
  });

  test("a checkpoint is written in the background once checkpointBytes of log accumulate", async () => {
    const dir = await tempDir();
    const store = await createFsLogStorage({ dir, checkpointBytes: 10_000 });
    for (let n = 0; n < 50; n++) await store.commit([{ type: "put", key: bytes(`k${n}`), value: new Uint8Array(500) }]);
    await pollUntil(async () => (await readdir(dir)).includes("index.ckpt"), 5000);
    const crashed = await createFsLogStorage({ dir: await crashImage(dir) });
    expect(crashed.recovery.checkpointPosition).toBeDefined();
    expect(crashed.recovery.replayedFrames).toBeLessThan(50);
    expect((await crashed.scan({ limit: 100 })).length).toBe(50);
    await crashed.close();
    await store.close();
  });
});

describe("fs-log group commit and fsync failures", () => {
  test("commits issued together share one fdatasync", async () => {
    const dir = await tempDir();
    let segmentSyncs = 0;
    const store = await createFsLogStorage({ dir, fsyncHook: (target) => void (target.kind === "segment" && segmentSyncs++) });
    await Promise.all(Array.from({ length: 50 }, (_, n) => store.commit([{ type: "put", key: bytes(`k${n}`), value: bytes(`${n}`) }])));
    expect(segmentSyncs).toBe(1);
    expect((await store.scan({ limit: 100 })).length).toBe(50);
    await store.close();
  });

  test("an fsync error rejects every commit of its group, then the store refuses writes", async () => {
    const dir = await tempDir();
    let failNext = false;
    const store = await createFsLogStorage({
      dir,
      fsyncHook: (target) => {
        if (failNext && target.kind === "segment") throw new Error("injected EIO");
      },
    });
    await store.commit([{ type: "put", key: bytes("before"), value: bytes("ok") }]);
    failNext = true;
    const group = Array.from({ length: 10 }, (_, n) => store.commit([{ type: "put", key: bytes(`g${n}`), value: bytes("x") }]));
    const results = await Promise.allSettled(group);
    for (const result of results) {
      expect(result.status).toBe("rejected");
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(StorageFailStopError);
      expect(String((result as PromiseRejectedResult).reason.message)).toContain("injected EIO");
    }
    failNext = false;
    await expect(store.commit([{ type: "put", key: bytes("later"), value: bytes("x") }])).rejects.toBeInstanceOf(StorageFailStopError);
    expect(await store.get(bytes("g0"))).toBeUndefined();
    expect(text(await store.get(bytes("before")))).toBe("ok");
    await store.close();
    const reopened = await createFsLogStorage({ dir });
    expect(text(await reopened.get(bytes("before")))).toBe("ok");
    await reopened.commit([{ type: "put", key: bytes("later"), value: bytes("y") }]);
    expect(text(await reopened.get(bytes("later")))).toBe("y");
    await reopened.close();
  });

  test("commits queued behind a failing group are rejected too, never written", async () => {
    const dir = await tempDir();
    let release: () => void = () => {};
    let syncs = 0;
    const store = await createFsLogStorage({
      dir,
      fsyncHook: async (target) => {
        if (target.kind !== "segment") return;
        if (++syncs === 1) {
          await new Promise<void>((resolve) => (release = resolve));
          throw new Error("injected EIO");
        }
      },
    });
    const first = store.commit([{ type: "put", key: bytes("a"), value: bytes("1") }]);
    await pollUntil(async () => syncs === 1, 5000);
    const queued = store.commit([{ type: "put", key: bytes("b"), value: bytes("2") }]);
    release();
    const [firstResult, queuedResult] = await Promise.allSettled([first, queued]);
    expect((firstResult as PromiseRejectedResult).reason).toBeInstanceOf(StorageFailStopError);
    expect((queuedResult as PromiseRejectedResult).reason).toBeInstanceOf(StorageFailStopError);
    expect(syncs).toBe(1);
    await store.close();
  });

  test("a failing directory fsync during a segment roll fails the commit", async () => {
    const dir = await tempDir();
    let failDirectory = false;
    const store = await createFsLogStorage({
      dir,
      segmentBytes: 4096,
      fsyncHook: (target) => {
        if (failDirectory && target.kind === "directory") throw new Error("injected dir EIO");
      },
    });
    await store.commit([{ type: "put", key: bytes("a"), value: new Uint8Array(3000) }]);
    failDirectory = true;
    await expect(store.commit([{ type: "put", key: bytes("b"), value: new Uint8Array(3000) }])).rejects.toThrow("injected dir EIO");
    await store.close();
  });
});

async function pollUntil(condition: () => Promise<boolean>, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${deadlineMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const ROOT = join(import.meta.dir, "..", "..");
const DENO = join(ROOT, "node_modules", ".bin", "deno");

describe("fs-log on other runtimes", () => {
  test("the conformance suite passes under deno", () => {
    const args = ["test", "-A", "--config", "test/storage/deno-kv/deno.json", "test/storage/fs-log.deno.ts"];
    const result = spawnSync(DENO, args, { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 120_000 });
    if (result.status !== 0) console.error(result.stdout, result.stderr, result.error);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("0 failed");
  }, 130_000);

  const node = spawnSync("node", ["--version"]).status === 0;
  test.skipIf(!node)("a write / reopen smoke run passes under node (bundled to JS)", async () => {
    const outdir = await tempDir();
    const build = await Bun.build({ entrypoints: [join(import.meta.dir, "fs-log-node-smoke.ts")], target: "node", outdir });
    expect(build.success).toBe(true);
    const result = spawnSync("node", [build.outputs[0]!.path], { encoding: "utf8", timeout: 60_000 });
    if (result.status !== 0) console.error(result.stdout, result.stderr);
    expect(result.stdout).toContain("fs-log node smoke ok");
  }, 70_000);
});

describe("fs-log kill -9", () => {
  const ROUNDS = 6;
  const seed = Number(process.env.FS_LOG_KILL_SEED ?? Date.now() % 1_000_000);
  const writer = join(import.meta.dir, "fs-log-writer.ts");
  const underBun = (dir: string, prefix: string, childSeed: number) => [process.execPath, writer, dir, prefix, String(childSeed)];
  const underDeno = (dir: string, prefix: string, childSeed: number) => [DENO, "run", "-A", writer, dir, prefix, String(childSeed)];

  test(`every acknowledged commit survives SIGKILL at a random moment (${ROUNDS} rounds, seed ${seed})`, () =>
    killRounds(ROUNDS, seed, underBun), 120_000);

  test(`the same holds with the writer running under deno (2 rounds, seed ${seed})`, () => killRounds(2, seed, underDeno), 120_000);

  async function killRounds(rounds: number, seed: number, command: (dir: string, prefix: string, childSeed: number) => string[]) {
    const dir = await tempDir();
    let state = seed;
    const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296);
    const present = new Set<string>();
    const deleting = new Set<string>();
    const deleted = new Set<string>();
    for (let round = 0; round < rounds; round++) {
      const target = 100 + Math.floor(random() * 3000);
      const lines = await runWriterUntilKilled(command(dir, `r${round}`, Math.floor(random() * 1e9)), target);
      for (const line of lines) {
        const key = line.slice(2);
        if (line.startsWith("P ")) present.add(key);
        else if (line.startsWith("d ")) deleting.add(key);
        else if (line.startsWith("D ")) {
          present.delete(key);
          deleting.delete(key);
          deleted.add(key);
        } else throw new Error(`unexpected writer line ${line}`);
      }
      const store = await createFsLogStorage({ dir });
      for (const key of present) {
        const value = await store.get(bytes(key));
        if (value === undefined && deleting.has(key)) continue;
        if (value === undefined) throw new Error(`seed ${seed} round ${round}: acknowledged key ${key} is missing`);
        expect(value).toEqual(killTestValue(key));
      }
      for (const key of deleted) expect(await store.get(bytes(key))).toBeUndefined();
      await store.close();
    }
    expect(present.size).toBeGreaterThan(rounds * 100 * 0.5);
  }

  async function runWriterUntilKilled(command: string[], ackLinesTarget: number): Promise<string[]> {
    const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let errors = "";
    let exited = false;
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (errors += chunk));
    const exit = new Promise<void>((resolve) => child.on("exit", () => ((exited = true), resolve())));
    try {
      await pollUntil(async () => {
        if (exited) throw new Error(`writer exited early: ${errors}`);
        return output.split("\n").length > ackLinesTarget;
      }, 30_000);
    } finally {
      child.kill("SIGKILL");
      await exit;
    }
    const complete = output.slice(0, output.lastIndexOf("\n") + 1);
    return complete.split("\n").filter((line) => line !== "");
  }
});
