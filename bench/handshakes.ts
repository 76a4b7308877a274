/**
 * Handshakes: full and resumed QUIC + TLS 1.3 handshakes per second that one server process
 * completes, with purequic clients in two other processes (each with 16 connections in flight
 * on one UDP socket, opening a new one as soon as one completes), and the handshake latency
 * (connect() until the handshake completed) at that load: median and p99.
 *
 *   npm run bench:handshakes [-- --quick] [-- --no-write]
 *   tsx bench/handshakes.ts --no-write --servers purequic --modes full --runs 3 --server-cpu-prof /tmp/prof
 *
 * Servers: purequic's CLI server, and quinn-peer and quicgo-peer (interop/peers) when built: the
 * same clients measure them in the same run, runs interleaved. ALPN hq-interop, ECDSA P-256
 * certificate, no stream is opened; a client closes each connection once it completed (resumed:
 * once it also got the new session ticket, which the next connection uses).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificate, purequicBin, startUntil } from "../interop/lib.ts";
import { connect, type QuicConnection } from "../src/quic/api.ts";
import { Endpoint } from "../src/quic/endpoint.ts";
import type { SessionTicketEntry } from "../src/quic/tls/session-cache.ts";
import {
  type Bench,
  type BenchOptions,
  isMain,
  machineInfo,
  markdownTable,
  parseBenchArgs,
  writeBenchSection,
} from "./harness.ts";
import {
  availableServers,
  processCpuSeconds,
  type RunningServer,
  type ServerName,
  startServer,
} from "./peer-servers.ts";
import { benchRole, medianOf, percentile, RoleProcess, roleArgs, serveRole, spread } from "./role-process.ts";

const CLIENT_PROCESSES = 2;
const ALL_SERVERS: readonly ServerName[] = ["purequic", "quinn", "quic-go"];

/** Options of this bench beyond the harness's: which servers and modes, how many runs, profiling. */
interface HandshakeBenchOptions {
  servers: readonly ServerName[];
  modes: readonly Mode[];
  runs: number;
  /** Directory for a V8 CPU profile of the purequic server (`node --cpu-prof`), written when it stops. */
  serverCpuProf: string | undefined;
  /** Directory for V8 CPU profiles of the client processes, one per client and run. */
  clientCpuProf: string | undefined;
}

const HELP = `options: --quick (short runs, CI smoke)  --no-write (leave docs/BENCHMARKS.md alone)
  --servers LIST          comma-separated, of ${ALL_SERVERS.join(",")} (default: all that are built)
  --modes LIST            full,resumed (default: both)
  --runs N                runs per row (default 3)
  --server-cpu-prof DIR   run the purequic server under node --cpu-prof, profile in DIR
  --client-cpu-prof DIR   profile each client process during each run (node:inspector), into DIR`;

/** Takes this bench's own options out of `argv`; the rest goes to the harness's parser. */
function parseHandshakeArgs(argv: string[]): HandshakeBenchOptions {
  const opts: HandshakeBenchOptions = {
    servers: ALL_SERVERS,
    modes: ["full", "resumed"],
    runs: 3,
    serverCpuProf: undefined,
    clientCpuProf: undefined,
  };
  const value = (i: number) => {
    const v = argv[i + 1];
    if (v === undefined) throw new Error(`${argv[i]} needs a value`);
    argv.splice(i, 2);
    return v;
  };
  for (let i = 0; i < argv.length; ) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      console.log(HELP);
      process.exit(0);
    } else if (arg === "--servers") {
      const list = value(i).split(",");
      for (const s of list)
        if (!ALL_SERVERS.includes(s as ServerName)) throw new Error(`--servers: unknown server ${s}`);
      opts.servers = list as ServerName[];
    } else if (arg === "--modes") {
      const list = value(i).split(",");
      for (const m of list)
        if (m !== "full" && m !== "resumed") throw new Error(`--modes: unknown mode ${m}`);
      opts.modes = list as Mode[];
    } else if (arg === "--runs") {
      opts.runs = Number(value(i));
      if (!Number.isInteger(opts.runs) || opts.runs < 1) throw new Error("--runs needs a positive integer");
    } else if (arg === "--server-cpu-prof") opts.serverCpuProf = value(i);
    else if (arg === "--client-cpu-prof") opts.clientCpuProf = value(i);
    else i++;
  }
  return opts;
}
const IN_FLIGHT_PER_CLIENT = 16;

type Mode = "full" | "resumed";

interface ClientRunRequest {
  readonly port: number;
  readonly mode: Mode;
  readonly durationMs: number;
  readonly concurrency: number;
}

interface ClientRunResult {
  readonly completed: number;
  readonly resumed: number;
  readonly errors: number;
  readonly firstError: string;
  readonly seconds: number;
  readonly latenciesMs: number[];
}

/** (Client role) Opens connections for `durationMs` with `concurrency` in flight. */
async function clientRun(ca: string, r: ClientRunRequest): Promise<ClientRunResult> {
  const endpoint = await Endpoint.bind({ host: "127.0.0.1" });
  const tickets: SessionTicketEntry[] = [];
  const dial = (session: SessionTicketEntry | undefined) =>
    connect({
      host: "127.0.0.1",
      port: r.port,
      serverName: "localhost",
      alpn: ["hq-interop"],
      ca,
      endpoint,
      session,
    });
  const nextTicket = (qc: QuicConnection) =>
    new Promise<SessionTicketEntry | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 1000);
      qc.onSessionTicket((t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  if (r.mode === "resumed") {
    // One ticket per connection in flight to start with; each connection leaves its new one.
    for (let i = 0; i < r.concurrency; i++) {
      const qc = await dial(undefined);
      const t = await nextTicket(qc);
      if (t) tickets.push(t);
      void qc.close().catch(() => {});
    }
    if (tickets.length === 0) throw new Error("the server sent no session ticket");
  }
  let completed = 0;
  let resumed = 0;
  let errors = 0;
  let firstError = "";
  const latenciesMs: number[] = [];
  const t0 = performance.now();
  const end = t0 + r.durationMs;
  const loop = async () => {
    while (performance.now() < end) {
      const session = r.mode === "resumed" ? (tickets.pop() ?? tickets[0]) : undefined;
      const start = performance.now();
      try {
        const qc = await dial(session);
        latenciesMs.push(performance.now() - start);
        completed++;
        if (qc.peerCertificates.length === 0) resumed++;
        if (r.mode === "resumed") {
          const t = await nextTicket(qc);
          if (t) tickets.push(t);
        }
        void qc.close().catch(() => {});
      } catch (err) {
        errors++;
        firstError ||= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: r.concurrency }, loop));
  const seconds = (performance.now() - t0) / 1000;
  void endpoint.close().catch(() => {});
  return { completed, resumed, errors, firstError, seconds, latenciesMs };
}

/** The purequic CLI server under `node --cpu-prof` (not allowed in NODE_OPTIONS, hence its own command). */
async function startProfiledServer(
  dir: string,
  cert: string,
  key: string,
  root: string,
): Promise<RunningServer> {
  const r = await startUntil(
    process.execPath,
    [
      "--cpu-prof",
      `--cpu-prof-dir=${dir}`,
      purequicBin,
      "server",
      "--listen",
      "127.0.0.1:0",
      "--cert",
      cert,
      "--key",
      key,
      "--root",
      root,
    ],
    /listening on udp [\d.]+:(\d+)/,
  );
  return { name: "purequic", port: Number(r.match[1]), child: r.child };
}

let profiles = 0;

/** Runs `f` under the V8 CPU profiler of this process; writes the profile into `dir`. */
async function profiled<T>(dir: string, f: () => Promise<T>): Promise<T> {
  const session = new Session();
  session.connect();
  const post = (method: string) =>
    new Promise<unknown>((res, rej) => session.post(method, (err, r) => (err ? rej(err) : res(r))));
  await post("Profiler.enable");
  await post("Profiler.start");
  try {
    return await f();
  } finally {
    const { profile } = (await post("Profiler.stop")) as { profile: unknown };
    writeFileSync(join(dir, `client-${process.pid}-${++profiles}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

interface Cell {
  server: ServerName;
  mode: Mode;
  rates: number[];
  p50: number[];
  p99: number[];
  resumedShare: number[];
  /** Server CPU milliseconds per completed handshake. */
  cpuMs: number[];
  errors: number;
  firstError: string;
}

export const handshakesBench = {
  name: "handshakes",
  async run(opts: BenchOptions, hs: HandshakeBenchOptions = parseHandshakeArgs([])): Promise<void> {
    const runs = hs.runs;
    const durationMs = opts.quick ? 1000 : 4000;
    const machine = machineInfo();
    const work = mkdtempSync(join(tmpdir(), "purequic-bench-hs-"));
    const { cert, key } = makeTestCertificate(work);
    const ca = readFileSync(cert, "utf8");
    const { names, missing } = availableServers(hs.servers);
    const servers: RunningServer[] = [];
    const clients: RoleProcess[] = [];
    const cells: Cell[] = [];
    for (const server of names)
      for (const mode of hs.modes)
        cells.push({
          server,
          mode,
          rates: [],
          p50: [],
          p99: [],
          resumedShare: [],
          cpuMs: [],
          errors: 0,
          firstError: "",
        });
    try {
      for (const n of names) {
        if (n === "purequic" && hs.serverCpuProf)
          servers.push(await startProfiledServer(hs.serverCpuProf, cert, key, work));
        else servers.push(await startServer(n, cert, key, work));
      }
      for (let i = 0; i < CLIENT_PROCESSES; i++)
        clients.push(await RoleProcess.start(import.meta.url, "client", { ca, cpuProf: hs.clientCpuProf }));
      for (let r = 0; r < runs; r++) {
        for (const cell of cells) {
          const srv = servers.find((s) => s.name === cell.server)!;
          const port = srv.port;
          const cpu0 = processCpuSeconds(srv.child.pid);
          const req: ClientRunRequest = {
            port,
            mode: cell.mode,
            durationMs,
            concurrency: IN_FLIGHT_PER_CLIENT,
          };
          const results = await Promise.all(clients.map((c) => c.call<ClientRunResult>("run", req)));
          const completed = results.reduce((a, x) => a + x.completed, 0);
          const cpuMs = ((processCpuSeconds(srv.child.pid) - cpu0) * 1000) / Math.max(1, completed);
          cell.cpuMs.push(cpuMs);
          const seconds = Math.max(...results.map((x) => x.seconds));
          const lat = results.flatMap((x) => x.latenciesMs);
          cell.rates.push(completed / seconds);
          cell.p50.push(medianOf(lat));
          cell.p99.push(percentile(lat, 99));
          cell.resumedShare.push(results.reduce((a, x) => a + x.resumed, 0) / Math.max(1, completed));
          cell.errors += results.reduce((a, x) => a + x.errors, 0);
          cell.firstError ||= results.find((x) => x.firstError)?.firstError ?? "";
          console.log(
            `run ${r + 1}: ${cell.server} ${cell.mode}: ${(completed / seconds).toFixed(0)}/s, p50 ${medianOf(lat).toFixed(1)} ms, p99 ${percentile(lat, 99).toFixed(1)} ms, server CPU ${cpuMs.toFixed(2)} ms/handshake`,
          );
        }
      }
    } finally {
      for (const c of clients) c.kill();
      for (const s of servers) {
        if (s.name === "purequic" && hs.serverCpuProf) {
          // SIGTERM stops the CLI server cleanly, so node writes the profile on exit.
          const exited = new Promise((res) => s.child.once("exit", res));
          s.child.kill("SIGTERM");
          await Promise.race([exited, new Promise((res) => setTimeout(res, 10_000))]);
        }
        s.child.kill("SIGKILL");
      }
      rmSync(work, { recursive: true, force: true });
    }
    const ms = (n: number) => n.toFixed(1);
    const rows = cells.map((c) => {
      const [rate, rateRange] = spread(c.rates, (n) => n.toFixed(0));
      const note = [
        c.mode === "resumed" ? `${(medianOf(c.resumedShare) * 100).toFixed(0)}% resumed` : "",
        c.errors ? `${c.errors} failed: ${c.firstError.split("\n")[0].slice(0, 80)}` : "",
      ]
        .filter(Boolean)
        .join("; ");
      const cpu = medianOf(c.cpuMs);
      return [
        c.server,
        c.mode,
        rate,
        rateRange,
        spread(c.p50, ms)[0],
        spread(c.p99, ms)[0],
        spread(c.p99, ms)[1],
        ...spread(c.cpuMs, (n) => n.toFixed(2)),
        Number.isFinite(cpu) ? (1000 / cpu).toFixed(0) : "",
        note,
      ];
    });
    const table = markdownTable(
      [
        "server",
        "handshake",
        "handshakes/s (median)",
        "min–max",
        "p50 ms",
        "p99 ms",
        "p99 min–max",
        "server CPU ms/handshake",
        "min–max",
        "handshakes per server CPU-second",
        "note",
      ],
      rows,
      ["left", "left", "right", "right", "right", "right", "right", "right", "right", "right", "left"],
    );
    console.log(`\n${table}\n`);
    if (opts.write) {
      const head =
        `Measured ${machine.date} on ${machine.cpu} (${machine.cores} logical cores), Node ${machine.node}, load average ${machine.load.toFixed(2)} at start. ` +
        `One server process; purequic clients in ${CLIENT_PROCESSES} other processes with ${IN_FLIGHT_PER_CLIENT} connections in flight each, ` +
        `for ${durationMs / 1000} s per run, ${runs} runs per row, interleaved; rates are handshakes completed by the clients per second, ` +
        `latency is connect() → handshake complete (median and p99 over all connections of a run; median over runs, p99 spread). ` +
        `ECDSA P-256 certificate verified by the client, ALPN hq-interop, no stream. Clients and server share the machine's ${machine.cores} cores, ` +
        `so the clients' own TLS work bounds the rates too: the server's CPU time per handshake (user + system, /proc) is the figure that does not depend on the clients, ` +
        `and its inverse is what one fully busy server core would complete. Target: ≥ 1,000 full handshakes/s. ${missing}`;
      writeBenchSection("handshakes", `${head}\n\n${table}`, "Handshakes (`npm run bench:handshakes`)");
      console.log("written to docs/BENCHMARKS.md");
    }
  },
} satisfies Bench;

if (isMain(import.meta.url)) {
  if (benchRole() === "client") {
    const { ca, cpuProf } = roleArgs<{ ca: string; cpuProf?: string }>();
    serveRole({
      run: (r: ClientRunRequest) => (cpuProf ? profiled(cpuProf, () => clientRun(ca, r)) : clientRun(ca, r)),
    });
  } else {
    const argv = process.argv.slice(2);
    const hs = parseHandshakeArgs(argv);
    await handshakesBench.run(parseBenchArgs(argv), hs);
  }
}
