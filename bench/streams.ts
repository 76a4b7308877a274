/**
 * Many streams: 10,000 request/responses of 1 KB on one connection, 100 in flight (each a
 * bidirectional stream: hq-interop `GET /1k.bin`, the server answers with the 1,024-byte file and
 * FIN); requests per second, every response checked by length and content.
 *
 *   npm run bench:streams [-- --quick] [-- --no-write]
 *
 * The client is purequic (this process); the servers, each in its own process, are purequic's CLI
 * server and quinn-peer and quicgo-peer (interop/peers) when built, all with --max-streams 100;
 * runs interleaved across servers.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificate } from "../interop/lib.ts";
import { connect } from "../src/quic/api.ts";
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
import { medianOf, spread } from "./role-process.ts";

const BODY = 1024;
const IN_FLIGHT = 100;

function body(): Uint8Array {
  const b = new Uint8Array(BODY);
  for (let i = 0; i < BODY; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** One connection, `total` requests with `inFlight` at a time; returns requests per second. */
async function requests(port: number, ca: string, total: number, expected: Uint8Array): Promise<number> {
  const qc = await connect({ host: "127.0.0.1", port, serverName: "localhost", alpn: ["hq-interop"], ca });
  const request = new TextEncoder().encode("GET /1k.bin\r\n");
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < total) {
      next++;
      const { send, recv } = await qc.openBi();
      await send.write(request);
      const fin = send.finish();
      const got = await recv.readAll(BODY * 2);
      await fin;
      if (!sameBytes(got, expected)) throw new Error(`response of ${got.length} bytes differs from the file`);
    }
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    return total / ((performance.now() - t0) / 1000);
  } finally {
    await qc.close().catch(() => {});
  }
}

export const streamsBench: Bench = {
  name: "streams",
  async run(opts: BenchOptions): Promise<void> {
    const runs = 3;
    const total = opts.quick ? 2000 : 10_000;
    const machine = machineInfo();
    const work = mkdtempSync(join(tmpdir(), "purequic-bench-streams-"));
    const root = join(work, "www");
    mkdirSync(root);
    const expected = body();
    writeFileSync(join(root, "1k.bin"), expected);
    const { cert, key } = makeTestCertificate(work);
    const ca = readFileSync(cert, "utf8");
    const { names, missing } = availableServers(["purequic", "quinn", "quic-go"]);
    const results = names.map((server) => ({
      server,
      rates: [] as number[],
      cpuUs: [] as number[],
      error: "",
    }));
    const servers: RunningServer[] = [];
    try {
      for (const n of names)
        servers.push(await startServer(n, cert, key, root, ["--max-streams", String(IN_FLIGHT)]));
      for (let r = 0; r < runs; r++) {
        for (const res of results) {
          if (res.error) continue;
          const srv = servers.find((s) => s.name === res.server)!;
          const cpu0 = processCpuSeconds(srv.child.pid);
          try {
            const rate = await requests(srv.port, ca, total, expected);
            res.rates.push(rate);
            res.cpuUs.push(((processCpuSeconds(srv.child.pid) - cpu0) * 1e6) / total);
            console.log(`run ${r + 1}: purequic → ${res.server}: ${rate.toFixed(0)} requests/s`);
          } catch (err) {
            res.error = (err as Error).message.split("\n")[0];
          }
        }
      }
    } finally {
      for (const s of servers) s.child.kill("SIGKILL");
      rmSync(work, { recursive: true, force: true });
    }
    const base = results.find((r) => r.server === "purequic");
    const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
    const rows = results.map((r: { server: ServerName; rates: number[]; cpuUs: number[]; error: string }) => {
      const [m, range] = spread(r.rates, fmt);
      const ratio =
        base !== undefined && base.rates.length > 0 && r.rates.length > 0
          ? `${(medianOf(r.rates) / medianOf(base.rates)).toFixed(2)}×`
          : "";
      return [`purequic → ${r.server}`, m, range, ratio, ...spread(r.cpuUs, (n) => n.toFixed(0)), r.error];
    });
    const table = markdownTable(
      [
        "client → server",
        "requests/s (median)",
        "min–max",
        "vs purequic server",
        "server CPU µs/request",
        "min–max",
        "note",
      ],
      rows,
      ["left", "right", "right", "right", "right", "right", "left"],
    );
    console.log(`\n${table}\n`);
    if (opts.write) {
      const head =
        `Measured ${machine.date} on ${machine.cpu} (${machine.cores} logical cores), Node ${machine.node}, load average ${machine.load.toFixed(2)} at start. ` +
        `${fmt(total)} request/responses on one connection, ${IN_FLIGHT} in flight, each a bidirectional stream (hq-interop \`GET /1k.bin\` → 1,024 bytes + FIN, ` +
        `every response compared with the file); the time includes the handshake. purequic client in the bench process, server in its own process ` +
        `(--max-streams ${IN_FLIGHT}), ${runs} runs per server, interleaved. Server CPU is the server process's user + system time during a run (/proc) per request, handshake included. ${missing}`;
      writeBenchSection("streams", `${head}\n\n${table}`, "Many streams (`npm run bench:streams`)");
      console.log("written to docs/BENCHMARKS.md");
    }
  },
};

if (isMain(import.meta.url)) await streamsBench.run(parseBenchArgs());
