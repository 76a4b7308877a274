/**
 * Handshakes: full and resumed QUIC + TLS 1.3 handshakes per second that one server process
 * completes, with purequic clients in two other processes (each with 16 connections in flight
 * on one UDP socket, opening a new one as soon as one completes), and the handshake latency
 * (connect() until the handshake completed) at that load: median and p99.
 *
 *   npm run bench:handshakes [-- --quick] [-- --no-write]
 *
 * Servers: purequic's CLI server, and quinn-peer and quicgo-peer (interop/peers) when built: the
 * same clients measure them in the same run, runs interleaved. ALPN hq-interop, ECDSA P-256
 * certificate, no stream is opened; a client closes each connection once it completed (resumed:
 * once it also got the new session ticket, which the next connection uses).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificate } from "../interop/lib.ts";
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

export const handshakesBench: Bench = {
  name: "handshakes",
  async run(opts: BenchOptions): Promise<void> {
    const runs = 3;
    const durationMs = opts.quick ? 1000 : 4000;
    const machine = machineInfo();
    const work = mkdtempSync(join(tmpdir(), "purequic-bench-hs-"));
    const { cert, key } = makeTestCertificate(work);
    const ca = readFileSync(cert, "utf8");
    const { names, missing } = availableServers(["purequic", "quinn", "quic-go"]);
    const servers: RunningServer[] = [];
    const clients: RoleProcess[] = [];
    const cells: Cell[] = [];
    for (const server of names)
      for (const mode of ["full", "resumed"] as const)
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
      for (const n of names) servers.push(await startServer(n, cert, key, work));
      for (let i = 0; i < CLIENT_PROCESSES; i++)
        clients.push(await RoleProcess.start(import.meta.url, "client", { ca }));
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
      for (const s of servers) s.child.kill("SIGKILL");
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
};

if (isMain(import.meta.url)) {
  if (benchRole() === "client") {
    const { ca } = roleArgs<{ ca: string }>();
    serveRole({ run: (r: ClientRunRequest) => clientRun(ca, r) });
  } else await handshakesBench.run(parseBenchArgs());
}
