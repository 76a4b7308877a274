/**
 * The interop matrix, in the spirit of the QUIC Interop Runner (../shared/specs/
 * interop-runner-testcases.md): for every test case, every peer and both roles (purequic client ×
 * peer server, peer client × purequic server) it runs a real transfer on 127.0.0.1 and checks
 * the downloaded files byte for byte, plus facts read from purequic's qlog (handshakes, versions,
 * Retry). Writes docs/INTEROP.md's matrix and a results folder with every log.
 *
 *   npx tsx interop/run.ts [--subset ci] [--peer quinn] [--case transfer] [--no-write]
 *
 * Cells: ✓ passed · ✗ failed (with where to look) · n/a (the peer cannot do it) · pending (a
 * purequic feature still to come, with its issue).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeTestCertificate, peersEnv, purequicBin, repo } from "./lib.ts";

// ---------------------------------------------------------------------------------------------
// Implementations

interface ServerRun {
  port: number;
  child: ChildProcess;
  output: () => string;
}

interface Impl {
  readonly name: string;
  readonly version: string;
  readonly isPurequic: boolean;
  /** Case names this implementation cannot take part in, with the reason. */
  readonly unsupported: Record<string, string>;
  server(ctx: RunContext): Promise<ServerRun>;
  client(ctx: RunContext, port: number, urls: string[]): Promise<{ code: number | null; output: string }>;
}

interface RunContext {
  readonly dir: string;
  readonly www: string;
  readonly downloads: string;
  readonly cert: string;
  readonly key: string;
  readonly qlogDir: string;
  readonly testCase: TestCase;
  readonly host: string;
}

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (d) => (output += d));
    child.stderr?.on("data", (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n[interop] killed after ${timeoutMs} ms`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const PENDING_IN_PUREQUIC: Record<string, string> = {
  resumption: "resumption through the QUIC API (issue #6)",
  zerortt: "0-RTT in the connection (issue #6)",
  keyupdate: "initiating a key update from the CLI (issue #6)",
  v2: "compatible version negotiation to v2 (issue #6)",
  "rebind-port": "path validation on NAT rebinding (issue #6)",
  "rebind-addr": "path validation on NAT rebinding (issue #6)",
  connectionmigration: "preferred_address and active migration (issue #6)",
};

function purequic(): Impl {
  const env = (ctx: RunContext) => ({
    ...process.env,
    QLOGDIR: ctx.qlogDir,
    SSLKEYLOGFILE: join(ctx.dir, "keys.log"),
  });
  return {
    name: "purequic",
    version: JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version as string,
    isPurequic: true,
    unsupported: {},
    async server(ctx) {
      const listen = ctx.host.includes(":") ? `[${ctx.host}]:0` : `${ctx.host}:0`;
      const args = ["server", "--listen", listen, "--cert", ctx.cert, "--key", ctx.key, "--root", ctx.www];
      args.push(...(ctx.testCase.purequicServerArgs ?? []));
      const child = spawn(purequicBin, args, { env: env(ctx), stdio: ["ignore", "pipe", "pipe"] });
      return waitForPort(child, /listening on udp \S+:(\d+)/);
    },
    async client(ctx, port, urls) {
      const base = ["get", "-q", "--ca", ctx.cert, "--server-name", "localhost", "--output", ctx.downloads];
      base.push(...(ctx.testCase.purequicClientArgs ?? []));
      const u = urls.map(
        (p) => `https://${ctx.host.includes(":") ? `[${ctx.host}]` : ctx.host}:${port}/${p}`,
      );
      if (ctx.testCase.connections === "each") {
        // multiconnect: one connection per file, sequentially.
        let output = "";
        for (const url of u) {
          const r = await run(purequicBin, [...base, url], env(ctx), ctx.testCase.timeoutMs);
          output += r.output;
          if (r.code !== 0) return { code: r.code, output };
        }
        return { code: 0, output };
      }
      return run(purequicBin, [...base, ...u], env(ctx), ctx.testCase.timeoutMs);
    },
  };
}

/** quinn 0.9 and quic-go 0.29 through our hq-interop peers (interop/peers/). */
function ourPeer(name: string, version: string, bin: string, unsupported: Record<string, string>): Impl {
  return {
    name,
    version,
    isPurequic: false,
    unsupported,
    async server(ctx) {
      const args = [
        "server",
        "--listen",
        `${ctx.host.includes(":") ? `[${ctx.host}]` : ctx.host}:0`,
        "--cert",
        ctx.cert,
        "--key",
        ctx.key,
        "--root",
        ctx.www,
      ];
      if (ctx.testCase.name === "chacha20") args.push("--chacha20");
      if (ctx.testCase.name === "retry") args.push("--retry");
      if (ctx.testCase.name === "multiplexing") args.push("--max-streams", "100");
      const child = spawn(bin, args, {
        env: { ...process.env, SSLKEYLOGFILE: join(ctx.dir, "keys.log") },
        stdio: ["ignore", "pipe", "pipe"],
      });
      return waitForPort(child, /listening on \S+:(\d+)/);
    },
    async client(ctx, port, urls) {
      const host = ctx.host.includes(":") ? `[${ctx.host}]` : ctx.host;
      const base = ["client", "--ca", ctx.cert, "--server-name", "localhost", "--output", ctx.downloads];
      if (ctx.testCase.name === "chacha20") base.push("--chacha20");
      const u = urls.map((p) => `https://${host}:${port}/${p}`);
      const env = { ...process.env, SSLKEYLOGFILE: join(ctx.dir, "keys.log") };
      if (ctx.testCase.connections === "each") {
        let output = "";
        for (const url of u) {
          const r = await run(bin, [...base, url], env, ctx.testCase.timeoutMs);
          output += r.output;
          if (r.code !== 0) return { code: r.code, output };
        }
        return { code: 0, output };
      }
      return run(bin, [...base, ...u], env, ctx.testCase.timeoutMs);
    },
  };
}

function waitForPort(child: ChildProcess, ready: RegExp): Promise<ServerRun> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start: ${out.slice(-300)}`));
    }, 20_000);
    const on = (d: Buffer) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), child, output: () => out });
      }
    };
    child.stdout?.on("data", on);
    child.stderr?.on("data", on);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}: ${out.slice(-300)}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Test cases

interface TestCase {
  readonly name: string;
  readonly description: string;
  /** Files to serve and download: [name, size]. */
  readonly files: () => [string, number][];
  readonly connections?: "one" | "each";
  readonly host?: string;
  readonly timeoutMs: number;
  readonly purequicServerArgs?: string[];
  readonly purequicClientArgs?: string[];
  /** Extra checks on purequic's qlog files (the purequic side of the run). */
  readonly check?: (facts: QlogFacts, tc: TestCase) => string | undefined;
  /** A purequic feature this case needs that does not exist yet. */
  readonly pending?: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;

function randomName(n: number): string {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  const b = randomBytes(n);
  return Array.from(b, (x) => letters[x % 26]).join("");
}

const oneHandshake = (f: QlogFacts, tc: TestCase) => {
  const expected = tc.connections === "each" ? tc.files().length : 1;
  if (f.connections !== expected)
    return `${f.connections} connections in purequic's qlog, expected ${expected}`;
  if (f.versions.size > 1 || !f.versions.has(1))
    return `versions seen: ${[...f.versions].map((v) => `0x${v.toString(16)}`).join(",")}`;
  return undefined;
};

const CASES: TestCase[] = [
  {
    name: "handshake",
    description: "one handshake, 1 KiB file, no Retry",
    files: () => [["hs.bin", 1 * KiB]],
    timeoutMs: 30_000,
    check: (f, tc) => oneHandshake(f, tc) ?? (f.retries > 0 ? "a Retry was seen" : undefined),
  },
  {
    name: "transfer",
    description: "2, 3 and 5 MiB in parallel on one connection (flow control windows grow)",
    files: () => [
      ["t2.bin", 2 * MiB],
      ["t3.bin", 3 * MiB],
      ["t5.bin", 5 * MiB],
    ],
    timeoutMs: 60_000,
    check: oneHandshake,
  },
  {
    name: "multiplexing",
    description: "1999 files of 32 bytes on one connection (stream limits raised by MAX_STREAMS)",
    files: () => Array.from({ length: 1999 }, (_, i) => [`m${i}.txt`, 32] as [string, number]),
    timeoutMs: 120_000,
    check: oneHandshake,
  },
  {
    name: "chacha20",
    description: "only TLS_CHACHA20_POLY1305_SHA256 offered and accepted, 3 MiB",
    files: () => [["c20.bin", 3 * MiB]],
    timeoutMs: 60_000,
    purequicClientArgs: ["--ciphers", "TLS_CHACHA20_POLY1305_SHA256"],
    purequicServerArgs: ["--ciphers", "TLS_CHACHA20_POLY1305_SHA256"],
    check: oneHandshake,
  },
  {
    name: "multiconnect",
    description: "a new connection for each of 10 files of 1 KiB",
    files: () => Array.from({ length: 10 }, (_, i) => [`mc${i}.bin`, 1 * KiB] as [string, number]),
    connections: "each",
    timeoutMs: 60_000,
    check: oneHandshake,
  },
  {
    name: "ipv6",
    description: "5 and 10 KiB over ::1",
    files: () => [
      ["v6a.bin", 5 * KiB],
      ["v6b.bin", 10 * KiB],
    ],
    host: "::1",
    timeoutMs: 30_000,
    check: oneHandshake,
  },
  {
    name: "zerortt-names",
    description: "40 files of 32 bytes with 250-letter names (the zerortt file set, over 1-RTT)",
    files: () => Array.from({ length: 40 }, () => [`${randomName(250)}`, 32] as [string, number]),
    timeoutMs: 30_000,
    check: oneHandshake,
  },
  {
    name: "retry",
    description: "the server sends a Retry, the client repeats its Initial with the token, 10 KiB",
    files: () => [["retry.bin", 10 * KiB]],
    timeoutMs: 30_000,
    purequicServerArgs: ["--retry"],
    check: (f, tc) =>
      oneHandshake(f, tc) ?? (f.retries < 1 ? "no Retry seen by purequic (qlog / server stats)" : undefined),
  },
  {
    name: "resumption",
    description: "second connection resumes with a ticket",
    files: () => [],
    timeoutMs: 1,
    pending: PENDING_IN_PUREQUIC.resumption,
  },
  {
    name: "zerortt",
    description: "second connection sends its requests in 0-RTT",
    files: () => [],
    timeoutMs: 1,
    pending: PENDING_IN_PUREQUIC.zerortt,
  },
  {
    name: "keyupdate",
    description: "client updates keys within the first MB",
    files: () => [],
    timeoutMs: 1,
    pending: PENDING_IN_PUREQUIC.keyupdate,
  },
  {
    name: "v2",
    description: "v1 Initial, compatible negotiation to QUIC v2",
    files: () => [],
    timeoutMs: 1,
    pending: PENDING_IN_PUREQUIC.v2,
  },
  {
    name: "rebind-port",
    description: "NAT rebinding of the client port",
    files: () => [],
    timeoutMs: 1,
    pending: PENDING_IN_PUREQUIC["rebind-port"],
  },
  {
    name: "rebind-addr",
    description: "NAT rebinding of the client address",
    files: () => [],
    timeoutMs: 1,
    pending: PENDING_IN_PUREQUIC["rebind-addr"],
  },
  {
    name: "connectionmigration",
    description: "client migrates to the server's preferred address",
    files: () => [],
    timeoutMs: 1,
    pending: PENDING_IN_PUREQUIC.connectionmigration,
  },
];

const CI_SUBSET = ["handshake", "transfer", "multiplexing", "chacha20", "multiconnect", "ipv6", "retry"];

// ---------------------------------------------------------------------------------------------
// Facts from purequic's qlog

interface QlogFacts {
  connections: number;
  versions: Set<number>;
  retries: number;
}

function qlogFacts(dir: string): QlogFacts {
  const facts: QlogFacts = { connections: 0, versions: new Set(), retries: 0 };
  if (!existsSync(dir)) return facts;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".sqlog")) continue;
    facts.connections++;
    for (const rec of readFileSync(join(dir, f), "utf8").split("\u001e")) {
      if (!rec.trim()) continue;
      try {
        const e = JSON.parse(rec) as {
          name?: string;
          data?: { chosen_version?: string; header?: { packet_type?: string; version?: string } };
        };
        if (e.name === "quic:version_information" && e.data?.chosen_version !== undefined) {
          facts.versions.add(Number.parseInt(e.data.chosen_version, 16));
        }
        if (
          (e.name === "quic:packet_received" || e.name === "quic:packet_sent") &&
          e.data?.header?.packet_type === "retry"
        )
          facts.retries++;
      } catch {
        // a truncated last record of a killed process
      }
    }
  }
  return facts;
}

// ---------------------------------------------------------------------------------------------
// Running

type Cell = { status: "pass" | "fail" | "n/a" | "pending"; detail: string };

async function runCell(tc: TestCase, client: Impl, server: Impl, resultsDir: string): Promise<Cell> {
  const unsupported = client.unsupported[tc.name] ?? server.unsupported[tc.name];
  if (unsupported) return { status: "n/a", detail: unsupported };
  if (tc.pending) return { status: "pending", detail: tc.pending };
  const dir = join(resultsDir, `${tc.name}__${client.name}-client__${server.name}-server`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const www = join(dir, "www");
  const downloads = join(dir, "downloads");
  const qlogDir = join(dir, "qlog");
  mkdirSync(www);
  mkdirSync(downloads);
  const { cert, key } = makeTestCertificate(dir);
  const files = tc.files();
  const hashes = new Map<string, string>();
  for (const [name, size] of files) {
    const data = randomBytes(size);
    writeFileSync(join(www, name), data);
    hashes.set(name, createHash("sha256").update(data).digest("hex"));
  }
  const ctx: RunContext = {
    dir,
    www,
    downloads,
    cert,
    key,
    qlogDir,
    testCase: tc,
    host: tc.host ?? "127.0.0.1",
  };
  let srv: ServerRun | undefined;
  try {
    srv = await server.server(ctx);
    const r = await client.client(
      ctx,
      srv.port,
      files.map(([n]) => n),
    );
    writeFileSync(join(dir, "client.log"), r.output);
    if (r.code !== 0) return { status: "fail", detail: `client exited ${r.code}; see ${dir}/client.log` };
    for (const [name, hash] of hashes) {
      const f = join(downloads, name);
      if (!existsSync(f))
        return { status: "fail", detail: `${files.length > 3 ? "a file" : name} missing; see ${dir}` };
      if (createHash("sha256").update(readFileSync(f)).digest("hex") !== hash)
        return { status: "fail", detail: `${name} differs; see ${dir}` };
    }
    const extra = readdirSync(downloads).filter((n) => !hashes.has(n));
    if (extra.length > 0)
      return { status: "fail", detail: `unexpected files ${extra.slice(0, 3).join(", ")}` };
    // Stop the server (purequic prints its counters on SIGTERM) and let qlog files flush.
    const facts = qlogFacts(qlogDir);
    if (server.isPurequic && srv) {
      srv.child.kill("SIGTERM");
      await new Promise((r) => {
        srv?.child.once("exit", r);
        setTimeout(r, 2000);
      });
      const stats = /purequic server stats: (\{.*\})/.exec(srv.output());
      if (stats) facts.retries += (JSON.parse(stats[1]) as { retriesSent?: number }).retriesSent ?? 0;
    }
    await new Promise((r) => setTimeout(r, 300));
    const problem = tc.check?.(
      server.isPurequic ? { ...facts, ...qlogFacts(qlogDir), retries: facts.retries } : qlogFacts(qlogDir),
      tc,
    );
    if (problem) return { status: "fail", detail: `${problem}; see ${dir}/qlog` };
    rmSync(www, { recursive: true, force: true });
    rmSync(downloads, { recursive: true, force: true });
    return { status: "pass", detail: "" };
  } catch (err) {
    return { status: "fail", detail: `${(err as Error).message.split("\n")[0]}; see ${dir}` };
  } finally {
    if (srv) {
      writeFileSync(join(dir, "server.log"), srv.output());
      srv.child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 100));
      srv.child.kill("SIGKILL");
    }
  }
}

const { values } = parseArgs({
  options: {
    subset: { type: "string" },
    peer: { type: "string", multiple: true },
    case: { type: "string", multiple: true },
    "no-write": { type: "boolean" },
  },
});

const peers = peersEnv();
const impls: Impl[] = [];
if (peers.QUINN_PEER) impls.push(ourPeer("quinn", "0.9.3", peers.QUINN_PEER, {}));
if (peers.QUICGO_PEER) impls.push(ourPeer("quic-go", "0.29.0", peers.QUICGO_PEER, {}));
if (impls.length === 0) {
  process.stderr.write("no peers built: run interop/peers/install.sh first\n");
  process.exit(2);
}
const me = purequic();
const selectedPeers = impls.filter((p) => !values.peer || values.peer.includes(p.name));
let cases = CASES.filter((c) => !values.case || values.case.includes(c.name));
if (values.subset === "ci") cases = cases.filter((c) => CI_SUBSET.includes(c.name));

const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const resultsDir = join(repo, "results", `interop-${stamp}`);
mkdirSync(resultsDir, { recursive: true });
const matrix = new Map<string, Cell>();
let failed = 0;
let passed = 0;
for (const tc of cases) {
  for (const peer of selectedPeers) {
    for (const [client, server] of [
      [me, peer],
      [peer, me],
    ] as const) {
      const started = performance.now();
      const cell = await runCell(tc, client, server, resultsDir);
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      matrix.set(`${tc.name}|${peer.name}|${client.isPurequic ? "client" : "server"}`, cell);
      if (cell.status === "pass") passed++;
      if (cell.status === "fail") failed++;
      process.stdout.write(
        `${tc.name.padEnd(14)} ${client.name.padEnd(8)} → ${server.name.padEnd(8)} ${cell.status.padEnd(7)} ${secs}s ${cell.detail}\n`,
      );
    }
  }
}

const symbol = (c: Cell | undefined) =>
  !c ? "" : c.status === "pass" ? "✓" : c.status === "fail" ? "✗" : c.status === "n/a" ? "n/a" : "pending";
const header = [
  "case",
  ...selectedPeers.flatMap((p) => [
    `${p.name} server ← purequic client`,
    `${p.name} client → purequic server`,
  ]),
];
const rows = cases.map((tc) => [
  tc.name,
  ...selectedPeers.flatMap((p) => [
    symbol(matrix.get(`${tc.name}|${p.name}|client`)),
    symbol(matrix.get(`${tc.name}|${p.name}|server`)),
  ]),
]);
const notes = [...matrix.entries()]
  .filter(([, c]) => c.status !== "pass")
  .map(([k, c]) => {
    const [name, peer, role] = k.split("|");
    return `- ${name}, ${peer}, purequic as ${role}: ${c.status} — ${c.detail}`;
  });
const table = [
  `| ${header.join(" | ")} |`,
  `|${header.map(() => "---").join("|")}|`,
  ...rows.map((r) => `| ${r.join(" | ")} |`),
].join("\n");
process.stdout.write(`\n${table}\n\n`);

if (!values["no-write"] && !values.peer && !values.case) {
  const doc = join(repo, "docs/INTEROP.md");
  const section = [
    "<!-- interop:matrix:start -->",
    `Written by \`npx tsx interop/run.ts${values.subset ? ` --subset ${values.subset}` : ""}\` on ${new Date().toISOString().slice(0, 10)}: purequic ${me.version} (Node ${process.version}) against ${selectedPeers.map((p) => `${p.name} ${p.version}`).join(", ")}, on 127.0.0.1. Files are checked byte for byte; facts (handshake count, QUIC version, Retry) come from purequic's qlog. Logs of every run: \`results/\`.`,
    "",
    table,
    "",
    ...(notes.length ? ["Cells that did not pass:", "", ...notes] : ["Every cell passed."]),
    "<!-- interop:matrix:end -->",
  ].join("\n");
  let text = readFileSync(doc, "utf8");
  if (text.includes("<!-- interop:matrix:start -->")) {
    text = text.replace(/<!-- interop:matrix:start -->[\s\S]*<!-- interop:matrix:end -->/, section);
  } else
    text = text.replace(
      "## Smoke test against real peers",
      `## Matrix\n\n${section}\n\n## Smoke test against real peers`,
    );
  writeFileSync(doc, text);
}

process.stdout.write(`interop matrix: ${passed} passed, ${failed} failed\n`);
process.exit(failed === 0 ? 0 : 1);
