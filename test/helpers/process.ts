/** Spawning real node processes for end-to-end tests and benchmarks, and finding free ports for them. */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The project's own bun, deno and tsc (npm devDependencies). */
export const BIN = join(REPO_ROOT, "node_modules", ".bin");
/** What `deno task serve` runs (deno.json), as a command line; flags go after it. */
export const DENO_SERVE_COMMAND = [join(BIN, "deno"), "run", "--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", "--unstable-kv", "src/main.ts"];

/**
 * Bundle src/main.ts for Node into `outdir` (the way `npm run build:node` does; `outdir` must be inside the
 * repo, since the bundle imports from node_modules) and return the command that runs it.
 */
export function buildNodeBundle(outdir: string): string[] {
  execFileSync(join(BIN, "bun"), ["build", "src/main.ts", "--target", "node", "--outdir", outdir, "--packages", "external", "--splitting"], { cwd: REPO_ROOT, stdio: "pipe" });
  return [process.env.NODE ?? "node", join(outdir, "main.js")];
}
/** How long a node may take to print its listening line. */
export const START_TIMEOUT_MS = 20_000;

/** A running node process and its base URL. */
export interface NodeProcess {
  child: ChildProcess;
  baseUrl: string;
  output: () => string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

/** Start `bun run src/main.ts` with `args` (add `--port 0`) and wait for its listening line. */
export function startNode(args: string[], options: { command?: string[]; env?: Record<string, string> } = {}): Promise<NodeProcess> {
  const command = options.command ?? [process.execPath, "run", "src/main.ts"];
  const child = spawn(command[0]!, [...command.slice(1), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`node did not start within ${START_TIMEOUT_MS} ms; output:\n${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, baseUrl: match[1]!, output: () => output, exited });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`node exited (${code}) before listening; output:\n${output}`));
    });
  });
}

/** A loopback port the OS just handed out (bound, then released; another process could take it meanwhile). */
/**
 * Ports handed out below the kernel's ephemeral range (32768+ on Linux), so an
 * outgoing connection of some other process cannot take a port between our
 * check and the node's bind; never the same one twice in one test process.
 */
const PORT_RANGE = { first: 20_000, last: 32_000 };
/** Random ports tried before falling back to one the kernel picks. */
const PORT_ATTEMPTS_MAX = 50;
const handedOut = new Set<number>();

function bindable(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => resolve(bound));
    });
  });
}

/** A loopback TCP port free right now (see PORT_RANGE). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < PORT_ATTEMPTS_MAX; attempt++) {
    const port = PORT_RANGE.first + Math.floor(Math.random() * (PORT_RANGE.last - PORT_RANGE.first + 1));
    if (handedOut.has(port)) continue;
    if ((await bindable(port)) !== undefined) {
      handedOut.add(port);
      return port;
    }
  }
  const port = await bindable(0);
  if (port === undefined) throw new Error("no free loopback port");
  handedOut.add(port);
  return port;
}
