/**
 * The HTTP conformance suite against a real server on every runtime: Bun
 * (sqlite), Deno (Deno KV), Node (fs log, from a `bun build --target node`
 * bundle) and the `bun build --compile` binary run from an empty directory.
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, buildNodeBundle, DENO_SERVE_COMMAND, REPO_ROOT, startNode, type NodeProcess } from "../helpers/process.ts";
import { describeHttpConformance, VALUE_BYTES_MAX, type StartedServer } from "./conformance.ts";

const ENV = { SCRIBE_LEDGER_VALUE_BYTES_MAX: String(VALUE_BYTES_MAX) };
const START_TIMEOUT_MS = 30_000;

/** SIGTERM, then wait for exit (SIGKILL after 10 s so a hung shutdown cannot hang the suite). */
async function stopProcess(node: Pick<NodeProcess, "child" | "exited" | "output">): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill("SIGTERM");
  const killer = setTimeout(() => node.child.kill("SIGKILL"), 10_000);
  const code = await node.exited;
  clearTimeout(killer);
  if (code !== 0 && code !== "SIGTERM") console.error(`server exited with ${code}; output:\n${node.output()}`);
}

/** Like startNode, but with an explicit cwd (startNode always runs in the repo root). */
function spawnIn(cwd: string, command: string[], env: Record<string, string>): Promise<NodeProcess> {
  const child = spawn(command[0]!, command.slice(1), { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start within ${START_TIMEOUT_MS} ms; output:\n${output}`));
    }, START_TIMEOUT_MS);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, baseUrl: match[1]!, output: () => output, exited });
      }
    });
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before listening; output:\n${output}`));
    });
  });
}

/** A started server plus clean-up of everything it was given. */
function started(node: NodeProcess, cleanup: string[]): StartedServer {
  return {
    baseUrl: node.baseUrl,
    stop: async () => {
      await stopProcess(node);
      for (const path of cleanup) rmSync(path, { recursive: true, force: true });
    },
  };
}

const tempDir = (label: string) => mkdtempSync(join(tmpdir(), `scribe-http-${label}-`));

describeHttpConformance("bun / sqlite", async () => {
  const dir = tempDir("bun");
  const node = await startNode(["--port", "0", "--data-dir", dir], { env: ENV });
  return started(node, [dir]);
});

describeHttpConformance("deno / denokv", async () => {
  const dir = tempDir("deno");
  const node = await startNode(["--port", "0", "--data-dir", dir], { command: DENO_SERVE_COMMAND, env: ENV });
  return started(node, [dir]);
});

describeHttpConformance("node / fs", async () => {
  const dir = tempDir("node");
  // --packages external: the bundle imports from node_modules, so it must live inside the repo (dist/ is ignored).
  const outdir = join(REPO_ROOT, "dist", `test-node-${process.pid}`);
  try {
    const node = await startNode(["--port", "0", "--data-dir", dir], { command: buildNodeBundle(outdir), env: ENV });
    return started(node, [dir, outdir]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outdir, { recursive: true, force: true });
    throw error;
  }
});

describeHttpConformance("compiled binary", async () => {
  const buildDir = tempDir("build");
  const runDir = tempDir("bin");
  try {
    const built = join(buildDir, "scribe-node");
    execFileSync(join(BIN, "bun"), ["build", "--compile", "src/main.ts", "adapters/bun-sqlite/writer-worker.ts", "--outfile", built], {
      cwd: REPO_ROOT,
      stdio: "pipe",
    });
    // the binary alone, in an empty directory: it must need nothing from the checkout
    const binary = join(runDir, "scribe-node");
    copyFileSync(built, binary);
    rmSync(buildDir, { recursive: true, force: true });
    // The worker writer: its module is a second entry point inside the binary, the part a bundle can get wrong
    // (`bun run src/main.ts` above covers the default inline writer).
    const node = await spawnIn(runDir, [binary, "--port", "0", "--data-dir", join(runDir, "data")], { ...ENV, SCRIBE_STORAGE_SQLITE_WRITER: "worker" });
    return started(node, [runDir]);
  } catch (error) {
    rmSync(buildDir, { recursive: true, force: true });
    rmSync(runDir, { recursive: true, force: true });
    throw error;
  }
});
