/**
 * End-to-end check of purequic through interop/relay.ts: one `bin/purequic server`, and for each
 * scenario a fresh relay in front of it and `bin/purequic get --insecure` through the relay. The
 * scenarios follow the QUIC Interop Runner's network simulator settings (see
 * /work/shared/specs/interop-runner-testcases.md); "link" is the runner's default
 * `simple-p2p --delay=15ms --bandwidth=10Mbps --queue=25`. Each download is checked by SHA-256.
 *
 *   npx tsx interop/relay-selftest.ts [--only NAME,NAME] [--connections N] [--seed N] [--list]
 *
 * Prints one line per scenario and a summary; exits 1 if any scenario failed. This is a report,
 * not a gate: some scenarios (rebind-*) need connection migration, which purequic may lack.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { purequicBin, startUntil } from "./lib.ts";
import {
  amplificationReport,
  type DirectionStats,
  type Relay,
  type RelayOptions,
  startRelay,
} from "./relay.ts";

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    connections: { type: "string" },
    seed: { type: "string" },
    list: { type: "boolean" },
  },
});
const connections = Number(values.connections ?? 10);
const seed = Number(values.seed ?? 1);

/** The runner's default link, one way: 15 ms, 10 Mbit/s, 25-packet queue. */
const link = { delayMs: 15, bandwidth: 1_250_000, queue: 25 } as const;
const both = <T extends object>(x: T) => ({ toServer: { ...x }, toClient: { ...x } });

interface Scenario {
  name: string;
  /** The runner test this stands for (or "extra"). */
  runner: string;
  file: string;
  relay: Omit<RelayOptions, "server" | "seed">;
  /** Sequential connections (one `get` each), as the runner's multiconnect tests. */
  connections?: number;
  timeoutMs: number;
  /** An extra check on the relay's capture; returns a problem, or undefined. */
  check?: (relay: Relay) => string | undefined;
  /** Extra information for the report. */
  info?: (relay: Relay) => string;
}

/** Client datagrams with an Initial that the relay saw before the server's first datagram reached the client. */
function clientInitialsBeforeReply(relay: Relay): number {
  const log = relay.stats.log;
  const reply = log.find((r) => r.dir === "toClient" && r.deliveredAt !== undefined)?.deliveredAt ?? Infinity;
  return log.filter((r) => r.dir === "toServer" && r.kinds[0] === "initial" && r.t < reply).length;
}

const scenarios: Scenario[] = [
  { name: "handshake", runner: "handshake", file: "1KB.bin", relay: both(link), timeoutMs: 60_000 },
  { name: "plain", runner: "transfer (no link limits)", file: "10MB.bin", relay: {}, timeoutMs: 60_000 },
  {
    name: "drop-5%",
    runner: "extra: 5% loss each way",
    file: "10MB.bin",
    relay: both({ drop: 0.05 }),
    timeoutMs: 120_000,
  },
  {
    name: "mixed",
    runner: "extra: 5% drop, 2% corrupt, 10 ms",
    file: "10MB.bin",
    relay: both({ drop: 0.05, corrupt: 0.02, delayMs: 10 }),
    timeoutMs: 120_000,
  },
  {
    name: "reorder",
    runner: "extra: jitter 5 ms, 5% held 20 ms",
    file: "10MB.bin",
    relay: both({ jitterMs: 5, reorder: 0.05, reorderMs: 20 }),
    timeoutMs: 120_000,
  },
  { name: "link-10MB", runner: "goodput link", file: "10MB.bin", relay: both(link), timeoutMs: 120_000 },
  {
    name: "transferloss",
    runner: "transferloss",
    file: "2MB.bin",
    relay: both({ ...link, drop: 0.02, dropBurst: 3 }),
    timeoutMs: 60_000,
  },
  {
    name: "transfercorruption",
    runner: "transfercorruption",
    file: "2MB.bin",
    relay: both({ ...link, corrupt: 0.02, corruptBurst: 3 }),
    timeoutMs: 60_000,
  },
  {
    name: "handshakeloss",
    runner: "handshakeloss",
    file: "1KB.bin",
    connections,
    relay: both({ ...link, drop: 0.3, dropBurst: 3 }),
    timeoutMs: 300_000,
  },
  {
    name: "handshakecorruption",
    runner: "handshakecorruption",
    file: "1KB.bin",
    connections,
    relay: both({ ...link, corrupt: 0.3, corruptBurst: 3 }),
    timeoutMs: 300_000,
  },
  {
    name: "longrtt",
    runner: "longrtt",
    file: "1KB.bin",
    relay: both({ ...link, delayMs: 750 }),
    timeoutMs: 60_000,
    check: (relay) => {
      // The runner wants at least two ClientHellos: the client's Initial PTO fires before the first
      // server packet reaches it, so every client Initial sent before then carries the ClientHello.
      const n = clientInitialsBeforeReply(relay);
      return n >= 2 ? undefined : `only ${n} client Initial datagram(s) before the first reply reached it`;
    },
    info: (relay) =>
      `${clientInitialsBeforeReply(relay)} client Initials before the first reply reached the client`,
  },
  {
    name: "blackhole",
    runner: "blackhole",
    file: "10MB.bin",
    relay: { clock: "first-datagram", ...both({ ...link, blackhole: { onMs: 5000, offMs: 2000 } }) },
    timeoutMs: 60_000,
    info: (relay) =>
      `blackholed ${relay.stats.toServer.dropped.blackhole}+${relay.stats.toClient.dropped.blackhole}`,
  },
  {
    name: "amplificationlimit",
    runner: "amplificationlimit (small dev certificate)",
    file: "5KB.bin",
    relay: { toServer: { ...link, dropList: [[2, 7]] }, toClient: { ...link } },
    timeoutMs: 60_000,
    check: (relay) => {
      const a = amplificationReport(relay.stats.log, 1);
      if (!a.clientHandshakeSeen) return "no client Handshake packet reached the server";
      return a.exceeded ? `server sent ${a.serverBytes} B for ${a.clientBytes} B received (> 3x)` : undefined;
    },
    info: (relay) => {
      const a = amplificationReport(relay.stats.log, 1);
      return `server ${a.serverBytes} B / client ${a.clientBytes} B before the client's Handshake (max ${a.maxRatio.toFixed(2)}x)`;
    },
  },
  {
    name: "rebind-port",
    runner: "rebind-port",
    file: "10MB.bin",
    relay: { clock: "first-datagram", rebind: { firstMs: 1000, everyMs: 5000 }, ...both(link) },
    timeoutMs: 60_000,
    info: (relay) =>
      `${relay.stats.rebinds.length} rebind(s), stale drops ${relay.stats.toClient.dropped.stale}`,
  },
  {
    name: "rebind-addr",
    runner: "rebind-addr",
    file: "10MB.bin",
    relay: { clock: "first-datagram", rebind: { firstMs: 1000, everyMs: 5000, addr: true }, ...both(link) },
    timeoutMs: 60_000,
    info: (relay) =>
      `${relay.stats.rebinds.length} rebind(s) (${relay.stats.rebinds.map((r) => r.to).join(", ")}), stale drops ${relay.stats.toClient.dropped.stale}`,
  },
];

if (values.list) {
  for (const s of scenarios) process.stdout.write(`${s.name.padEnd(20)} ${s.runner}\n`);
  process.exit(0);
}
const only = values.only?.split(",").filter(Boolean);
const selected = only ? scenarios.filter((s) => only.includes(s.name)) : scenarios;
if (only && selected.length !== only.length) {
  process.stderr.write(`unknown scenario in --only; known: ${scenarios.map((s) => s.name).join(", ")}\n`);
  process.exit(2);
}

// --- files and server ---------------------------------------------------------------------------

const work = mkdtempSync(join(tmpdir(), "purequic-relay-selftest-"));
const root = join(work, "www");
const sizes: Record<string, number> = {
  "1KB.bin": 1024,
  "5KB.bin": 5 * 1024,
  "2MB.bin": 2 << 20,
  "10MB.bin": 10 << 20,
};
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const expected: Record<string, string> = {};
mkdirSync(root);
for (const [name, size] of Object.entries(sizes)) {
  const data = randomBytes(size);
  writeFileSync(join(root, name), data);
  expected[name] = sha(data);
}

let server: { child: ChildProcess; port: number } | undefined;
async function ensureServer(): Promise<{ child: ChildProcess; port: number; restarted: boolean }> {
  if (server && server.child.exitCode === null && server.child.signalCode === null)
    return { ...server, restarted: false };
  const restarted = server !== undefined;
  const s = await startUntil(
    purequicBin,
    ["server", "--listen", "127.0.0.1:0", "--root", root],
    /listening on udp 127\.0\.0\.1:(\d+)/,
  );
  server = { child: s.child, port: Number(s.match[1]) };
  return { ...server, restarted };
}

function run(
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(purequicBin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    let timedOut = false;
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

/** "min/median/max s" of a list of durations. */
const spread = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0].toFixed(1)}/${s[Math.floor(s.length / 2)].toFixed(1)}/${s[s.length - 1].toFixed(1)} s (min/median/max)`;
};

const dirSummary = (s: DirectionStats) => {
  const dropped = Object.values(s.dropped).reduce((a, b) => a + b, 0);
  return `${s.received} dgrams, ${dropped} dropped, ${s.corrupted} corrupted`;
};

// --- scenarios -----------------------------------------------------------------------------------

interface Row {
  name: string;
  runner: string;
  ok: boolean;
  seconds: number;
  detail: string;
}
const rows: Row[] = [];

for (const sc of selected) {
  const srv = await ensureServer();
  const relay = await startRelay({ server: { host: "127.0.0.1", port: srv.port }, seed, ...sc.relay });
  const started = performance.now();
  const problems: string[] = [];
  if (srv.restarted) problems.push("(server had died and was restarted)");
  const n = sc.connections ?? 1;
  let okGets = 0;
  const getSeconds: number[] = [];
  const deadline = started + sc.timeoutMs;
  for (let i = 0; i < n; i++) {
    const left = deadline - performance.now();
    if (left <= 0) {
      problems.push(`timeout after ${okGets}/${n} connections`);
      break;
    }
    const dl = mkdtempSync(join(work, "dl-"));
    const getStart = performance.now();
    const r = await run(
      ["get", "--insecure", "--output", dl, `https://localhost:${relay.port}/${sc.file}`],
      Math.min(left, 60_000),
    );
    getSeconds.push((performance.now() - getStart) / 1000);
    let got: string | undefined;
    try {
      got = sha(readFileSync(join(dl, sc.file)));
    } catch {
      got = undefined;
    }
    rmSync(dl, { recursive: true, force: true });
    if (r.code === 0 && got === expected[sc.file]) okGets++;
    else {
      const why = r.timedOut
        ? `killed after ${Math.round(Math.min(left, 60_000) / 1000)} s`
        : `exit ${r.code}`;
      const tail = r.output.trim().split("\n").slice(-2).join(" | ").slice(0, 240);
      problems.push(
        `get #${i + 1}: ${why}, file ${got === undefined ? "missing" : got === expected[sc.file] ? "ok" : "differs"}: ${tail}`,
      );
      break;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  await relay.close();
  if (problems.length === 0 || okGets === n) {
    const extra = sc.check?.(relay);
    if (extra) problems.push(extra);
  }
  const info = sc.info?.(relay);
  const detail = [
    `${okGets}/${n} ok`,
    ...(n > 1 ? [`per get ${spread(getSeconds)}`] : []),
    `→server ${dirSummary(relay.stats.toServer)}`,
    `→client ${dirSummary(relay.stats.toClient)}`,
    ...(info ? [info] : []),
    ...problems,
  ].join("; ");
  const ok = okGets === n && problems.filter((p) => !p.startsWith("(")).length === 0;
  rows.push({ name: sc.name, runner: sc.runner, ok, seconds, detail });
  process.stdout.write(
    `${ok ? "PASS" : "FAIL"} ${sc.name.padEnd(20)} ${seconds.toFixed(1).padStart(6)} s  ${detail}\n`,
  );
}

server?.child.kill("SIGTERM");
rmSync(work, { recursive: true, force: true });
const failed = rows.filter((r) => !r.ok);
process.stdout.write(`\n${rows.length - failed.length} passed, ${failed.length} failed (seed ${seed})\n`);
process.exitCode = failed.length === 0 ? 0 : 1;
