/**
 * Which HTTP client is fastest for peer traffic on each runtime, and which
 * protocol each runtime's fetch negotiates. A Node server (node:http for
 * plain HTTP/1.1, node:http2 with allowHTTP1 behind TLS, so ALPN decides
 * between h2 and http/1.1) answers 1 KiB POST bodies with the protocol
 * version it saw; the same client script then runs under Bun, Deno and
 * Node with global fetch, with node:http(s) plus a keep-alive Agent and with
 * the repo's socket client (adapters/runtime/peer-socket.ts, plain http), in
 * sequence (one request at a time, as a Raft heartbeat/append round trip
 * is) and with 16 requests in flight. Prints a table; never fails on speed.
 * The TLS part needs `openssl` on PATH (skipped, saying so, without it).
 *
 * Flags: USAGE below (`--help` prints it).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchFlags, wholeNumberFlag } from "./stats.ts";

const USAGE = "bun run bench/peer-client.ts [--requests 2000]";
const values = benchFlags(USAGE, { requests: { type: "string" } });
const REQUESTS = wholeNumberFlag("requests", values.requests, 2000);
const IN_FLIGHT = 16;
const BODY_BYTES = 1024;
const bin = (name: string) => join(import.meta.dir, "..", "node_modules", ".bin", name);

/** Plain HTTP/1.1 on one port, TLS with h2 + http/1.1 via ALPN on another; prints both ports. */
const SERVER = `
import http from "node:http";
import http2 from "node:http2";
import { readFileSync } from "node:fs";
const handler = (req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => { res.writeHead(200, { "content-type": "text/plain" }); res.end(req.httpVersion); });
};
const plain = http.createServer({ keepAliveTimeout: 60000 }, handler).listen(0, "127.0.0.1", () => {
  let tlsPort = 0;
  const dir = process.env.CERT_DIR;
  const done = () => console.log(JSON.stringify({ plain: plain.address().port, tls: tlsPort }));
  if (!dir) return done();
  const secure = http2.createSecureServer({
    key: readFileSync(dir + "/key.pem"), cert: readFileSync(dir + "/cert.pem"), allowHTTP1: true,
  }, handler).listen(0, "127.0.0.1", () => { tlsPort = secure.address().port; done(); });
});
`;

/** Runs one (client, url) measurement; prints {perSecondSequential, perSecondParallel, version}. */
const CLIENT = `
const [client, url, requests, inFlight, bodyBytes] = JSON.parse(process.env.PEER_BENCH_ARGS);
const body = new Uint8Array(bodyBytes).fill(7);
let send;
if (client === "fetch") {
  send = async () => { const r = await fetch(url, { method: "POST", body, headers: { "content-type": "application/cbor" } }); return r.text(); };
} else if (client === "socket") {
  const { socketPeerFetch } = await import(process.env.PEER_SOCKET_MODULE);
  const peerFetch = socketPeerFetch({ responseBytesMax: 1 << 20, fallback: () => Promise.reject(new Error("https is not spoken")) });
  send = async () => (await peerFetch(url, { method: "POST", body, headers: { "content-type": "application/cbor" } })).text();
} else {
  const tls = url.startsWith("https:");
  const mod = tls ? await import("node:https") : await import("node:http");
  const agent = new mod.Agent({ keepAlive: true, maxSockets: inFlight });
  send = () => new Promise((resolve, reject) => {
    const req = mod.request(url, { method: "POST", agent, headers: { "content-type": "application/cbor", "content-length": String(body.length) } }, (res) => {
      let text = ""; res.setEncoding("utf8"); res.on("data", (c) => (text += c)); res.on("end", () => resolve(text));
    });
    req.on("error", reject); req.end(body);
  });
}
const version = await send();
for (let i = 0; i < 100; i++) await send();
let t = performance.now();
const cpu = process.cpuUsage();
for (let i = 0; i < requests; i++) await send();
const sequential = requests / ((performance.now() - t) / 1000);
const used = process.cpuUsage(cpu);
const cpuUs = (used.user + used.system) / requests;
t = performance.now();
let next = 0;
await Promise.all(Array.from({ length: inFlight }, async () => { while (next++ < requests) await send(); }));
const parallel = requests / ((performance.now() - t) / 1000);
console.log(JSON.stringify({ sequential, parallel, version, cpuUs }));
`;

interface Runtime {
  name: string;
  command: (env: NodeJS.ProcessEnv, code: string) => { cmd: string; args: string[]; env: NodeJS.ProcessEnv };
}

const runtimes: Runtime[] = [
  { name: "bun", command: (env, code) => ({ cmd: bin("bun"), args: ["-e", code], env }) },
  {
    name: "deno",
    command: (env, code) => ({
      cmd: bin("deno"),
      args: ["eval", ...(env.CERT_FILE ? [`--cert=${env.CERT_FILE}`] : []), code],
      env,
    }),
  },
  { name: "node", command: (env, code) => ({ cmd: "node", args: ["--input-type=module", "-e", code], env }) },
];

function runClient(runtime: Runtime, client: string, url: string, certFile?: string) {
  const env = {
    ...process.env,
    PEER_BENCH_ARGS: JSON.stringify([client, url, REQUESTS, IN_FLIGHT, BODY_BYTES]),
    PEER_SOCKET_MODULE: socketModule,
    ...(certFile ? { NODE_EXTRA_CA_CERTS: certFile, CERT_FILE: certFile } : {}),
  };
  const { cmd, args, env: childEnv } = runtime.command(env, CLIENT);
  const result = spawnSync(cmd, args, { env: childEnv, encoding: "utf8", timeout: 300_000 });
  const line = result.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as { sequential: number; parallel: number; version: string; cpuUs: number };
  } catch {
    return { error: (result.stderr || result.stdout || "no output").trim().split("\n")[0].slice(0, 80) };
  }
}

const dir = await mkdtemp(join(tmpdir(), "peer-bench-"));
// The repo's socket client, bundled to plain JS so Node imports it too.
const socketModule = join(dir, "peer-socket.js");
spawnSync(bin("bun"), ["build", join(import.meta.dir, "..", "adapters", "runtime", "peer-socket.ts"), "--target", "node", "--outfile", socketModule], { stdio: "ignore" });
let certFile: string | undefined;
const openssl = spawnSync(
  "openssl",
  ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    // A leaf, not a CA: rustls (Deno) refuses a CA certificate used as a server certificate.
    "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")],
  { encoding: "utf8" },
);
if (openssl.status === 0) certFile = join(dir, "cert.pem");
else console.log("openssl not available: TLS/HTTP2 rows skipped");

const server = spawn("node", ["--input-type=module", "-e", SERVER], {
  env: { ...process.env, ...(certFile ? { CERT_DIR: dir } : {}) },
  stdio: ["ignore", "pipe", "inherit"],
});
const ports = await new Promise<{ plain: number; tls: number }>((resolve, reject) => {
  let out = "";
  server.stdout!.on("data", (chunk) => {
    out += chunk;
    if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]));
  });
  server.on("exit", (code) => reject(new Error(`server exited ${code}`)));
});

console.log(`${BODY_BYTES}-byte POST bodies, ${REQUESTS} requests sequential and with ${IN_FLIGHT} in flight; server: Node ${spawnSync("node", ["--version"], { encoding: "utf8" }).stdout.trim()}`);
console.log("| runtime | client | transport | negotiated | sequential req/s | client CPU µs/req (sequential) | 16 in flight req/s |");
console.log("|---|---|---|---|---:|---:|---:|");
try {
  for (const runtime of runtimes) {
    for (const client of ["fetch", "node:http", "socket"]) {
      const targets: [string, string][] = [["http", `http://127.0.0.1:${ports.plain}/`]];
      if (certFile && client !== "socket") targets.push(["https", `https://127.0.0.1:${ports.tls}/`]);
      for (const [transport, url] of targets) {
        const figures = runClient(runtime, client, url, certFile);
        const clientName = client === "node:http" && transport === "https" ? "node:https" : client;
        if ("error" in figures) {
          console.log(`| ${runtime.name} | ${clientName} | ${transport} | error: ${figures.error} | - | - | - |`);
        } else {
          const n = (x: number) => Math.round(x).toLocaleString("en-US");
          console.log(`| ${runtime.name} | ${clientName} | ${transport} | HTTP/${figures.version} | ${n(figures.sequential)} | ${n(figures.cpuUs)} | ${n(figures.parallel)} |`);
        }
      }
    }
  }
} finally {
  server.kill();
  await rm(dir, { recursive: true, force: true });
}
