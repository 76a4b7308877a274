/**
 * HTTP/3, with purequic's client against several servers in the same run:
 *
 *  1. 1 KB GETs per second on one connection, 100 in flight (`createH3Fetch`, every body checked);
 *     servers: purequic's CLI server, `serveH3()` answering from memory (a role process), quic-go's http3 (our quicgo-h3-peer, built by
 *     interop/h3.ts) and ngtcp2's gtlsserver (nghttp3).
 *  2. One large download (200 MB; 20 MB with --quick) with `purequic get --alpn h3` (a separate
 *     process, its wall time, SHA-256 checked) from the same three servers.
 *
 *   npm run bench:h3 [-- --quick] [-- --no-write]
 *
 * Each server runs in its own process; runs are interleaved across servers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificate, purequicBin } from "../interop/lib.ts";
import { createH3Fetch } from "../src/h3/client.ts";
import { serveH3 } from "../src/h3/server.ts";
import { listen } from "../src/quic/api.ts";
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
import { benchRole, medianOf, RoleProcess, roleArgs, serveRole, spread } from "./role-process.ts";

const BODY = 1024;
const IN_FLIGHT = 100;

interface MemoryServerArgs {
  readonly cert: string;
  readonly key: string;
  readonly body: string;
}

/**
 * (Server role) `serveH3()` answering every request with the same in-memory body: the HTTP/3
 * stack without the CLI server's file system work (realpath, open, stat, read per request).
 */
function memoryServerRole({ cert, key, body }: MemoryServerArgs): void {
  const bytes = Buffer.from(body, "base64");
  serveRole({
    listen: async () => {
      const server = await listen({
        host: "127.0.0.1",
        alpn: ["h3"],
        certificatePem: readFileSync(cert, "utf8"),
        privateKeyPem: readFileSync(key, "utf8"),
      });
      serveH3(server, () => new Response(bytes, { headers: { "content-type": "application/octet-stream" } }));
      return server.address.port;
    },
  });
}

/** `total` GETs of /1k.bin on one connection, `IN_FLIGHT` at a time; returns GETs per second. */
async function gets(port: number, ca: string, total: number, expected: Uint8Array): Promise<number> {
  const h3fetch = createH3Fetch({ ca });
  const url = `https://localhost:${port}/1k.bin`;
  try {
    // The handshake and SETTINGS exchange stay out of the timed part.
    const first = await h3fetch(url);
    await first.arrayBuffer();
    let next = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < total) {
        next++;
        const res = await h3fetch(url);
        const got = new Uint8Array(await res.arrayBuffer());
        if (
          res.status !== 200 ||
          got.length !== BODY ||
          got[BODY - 1] !== expected[BODY - 1] ||
          got[0] !== expected[0]
        )
          throw new Error(`GET: status ${res.status}, ${got.length} bytes, not the file`);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const rate = total / ((performance.now() - t0) / 1000);
    if (h3fetch.connections !== 1) throw new Error(`${h3fetch.connections} connections instead of one`);
    return rate;
  } finally {
    await h3fetch.close().catch(() => {});
  }
}

/** `purequic get` of one file into `out`; returns the client's wall seconds. */
function download(port: number, cert: string, out: string, file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const args = [
      "get",
      "-q",
      "--alpn",
      "h3",
      "--ca",
      cert,
      "--output",
      out,
      `https://localhost:${port}/${file}`,
    ];
    const child: ChildProcess = spawn(purequicBin, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr?.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 600_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve((performance.now() - t0) / 1000);
      else reject(new Error(`purequic get exited ${code}: ${err.trim().slice(-200)}`));
    });
  });
}

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest("hex");
}

/** The in-memory serveH3 server (GETs only). */
const SERVE_H3 = "purequic serveH3 (in memory)";

interface Row {
  server: ServerName | typeof SERVE_H3;
  getRates: number[];
  /** Server CPU µs per GET. */
  getCpuUs: number[];
  getError: string;
  mbits: number[];
  dlError: string;
}

export const h3Bench: Bench = {
  name: "h3",
  async run(opts: BenchOptions): Promise<void> {
    const runs = 3;
    const total = opts.quick ? 2000 : 10_000;
    const mb = opts.quick ? 20 : 200;
    const machine = machineInfo();
    const work = mkdtempSync(join(tmpdir(), "purequic-bench-h3-"));
    const root = join(work, "www");
    mkdirSync(root);
    const small = randomBytes(BODY);
    writeFileSync(join(root, "1k.bin"), small);
    const big = randomBytes(mb * 1e6);
    writeFileSync(join(root, "big.bin"), big);
    const bigSha = createHash("sha256").update(big).digest("hex");
    const { cert, key } = makeTestCertificate(work);
    const ca = readFileSync(cert, "utf8");
    const { names, missing } = availableServers(["purequic", "quic-go h3", "ngtcp2"]);
    const rows: Row[] = names.map((server) => ({
      server,
      getRates: [],
      getCpuUs: [],
      getError: "",
      mbits: [],
      dlError: "",
    }));
    rows.splice(1, 0, { server: SERVE_H3, getRates: [], getCpuUs: [], getError: "", mbits: [], dlError: "" });
    const servers: RunningServer[] = [];
    let inMemory: RoleProcess | undefined;
    try {
      for (const n of names) servers.push(await startServer(n, cert, key, root));
      inMemory = await RoleProcess.start(import.meta.url, "server", {
        cert,
        key,
        body: small.toString("base64"),
      } satisfies MemoryServerArgs);
      const inMemoryPort = await inMemory.call<number>("listen");
      const portOf = (n: Row["server"]) =>
        n === SERVE_H3 ? inMemoryPort : servers.find((s) => s.name === n)!.port;
      for (let r = 0; r < runs; r++) {
        for (const row of rows) {
          if (row.getError) continue;
          const pid =
            row.server === SERVE_H3
              ? inMemory.child.pid
              : servers.find((s) => s.name === row.server)?.child.pid;
          const cpu0 = processCpuSeconds(pid);
          try {
            const rate = await gets(portOf(row.server), ca, total, small);
            row.getRates.push(rate);
            row.getCpuUs.push(((processCpuSeconds(pid) - cpu0) * 1e6) / (total + 1));
            console.log(`run ${r + 1}: GETs from ${row.server}: ${rate.toFixed(0)}/s`);
          } catch (err) {
            row.getError = (err as Error).message.split("\n")[0];
          }
        }
      }
      for (let r = 0; r < runs; r++) {
        for (const row of rows) {
          if (row.dlError || row.server === SERVE_H3) continue;
          const out = join(work, `dl-${r}`);
          mkdirSync(out, { recursive: true });
          try {
            const seconds = await download(portOf(row.server), cert, out, "big.bin");
            if ((await sha256File(join(out, "big.bin"))) !== bigSha)
              throw new Error("downloaded file differs");
            row.mbits.push((big.length * 8) / 1e6 / seconds);
            console.log(
              `run ${r + 1}: ${mb} MB from ${row.server}: ${((big.length * 8) / 1e6 / seconds).toFixed(0)} Mbit/s`,
            );
          } catch (err) {
            row.dlError = (err as Error).message.split("\n")[0];
          } finally {
            rmSync(out, { recursive: true, force: true });
          }
        }
      }
    } finally {
      inMemory?.kill();
      for (const s of servers) s.child.kill("SIGKILL");
      rmSync(work, { recursive: true, force: true });
    }
    const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
    const qg = rows.find((r) => r.server === "quic-go h3");
    const ratio = (v: number[], base: number[] | undefined) =>
      base && base.length > 0 && v.length > 0 ? `${(medianOf(v) / medianOf(base)).toFixed(2)}×` : "";
    const getsTable = markdownTable(
      [
        "purequic client → server",
        "GETs/s (median)",
        "min–max",
        "vs quic-go h3",
        "server CPU µs/GET",
        "min–max",
        "note",
      ],
      rows.map((r) => [
        `→ ${r.server}`,
        ...spread(r.getRates, fmt),
        ratio(r.getRates, qg?.getRates),
        ...spread(r.getCpuUs, (n) => n.toFixed(0)),
        r.getError,
      ]),
      ["left", "right", "right", "right", "right", "right", "left"],
    );
    const dlTable = markdownTable(
      ["purequic get ← server", "Mbit/s (median)", "min–max", "vs quic-go h3", "note"],
      rows
        .filter((r) => r.server !== SERVE_H3)
        .map((r) => [
          `← ${r.server}`,
          ...spread(r.mbits, (n) => n.toFixed(0)),
          ratio(r.mbits, qg?.mbits),
          r.dlError,
        ]),
      ["left", "right", "right", "right", "left"],
    );
    console.log(`\n${getsTable}\n\n${dlTable}\n`);
    if (opts.write) {
      const head =
        `Measured ${machine.date} on ${machine.cpu} (${machine.cores} logical cores), Node ${machine.node}, load average ${machine.load.toFixed(2)} at start. ` +
        `Servers: purequic's CLI server, quic-go 0.29's http3 (quicgo-h3-peer, interop/h3-quicgo), ngtcp2 0.12's gtlsserver; each in its own process, ${runs} runs per server, interleaved. ${missing}`;
      const getsHead =
        `${fmt(total)} GETs of a 1,024-byte file on one connection, ${IN_FLIGHT} in flight, purequic's \`createH3Fetch\` in the bench process ` +
        `(status, length and bytes checked; the handshake is not timed). "purequic serveH3 (in memory)" is \`serveH3()\` answering from memory (another process), ` +
        `the HTTP/3 stack without the CLI server's per-request file work (realpath, open, stat, read, close). Server CPU: the server process's user + system time during a run (/proc), per GET. Targets: ≥ 20,000 GETs/s and ≥ 1.0× quic-go's h3 server.`;
      const dlHead = `One ${mb} MB file with \`purequic get --alpn h3\` (its own process; wall time including start-up and handshake; SHA-256 checked).`;
      writeBenchSection(
        "h3",
        `${head}\n\n${getsHead}\n\n${getsTable}\n\n${dlHead}\n\n${dlTable}`,
        "HTTP/3 (`npm run bench:h3`)",
      );
      console.log("written to docs/BENCHMARKS.md");
    }
  },
};

if (isMain(import.meta.url)) {
  if (benchRole() === "server") memoryServerRole(roleArgs<MemoryServerArgs>());
  else await h3Bench.run(parseBenchArgs());
}
