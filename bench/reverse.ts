/**
 * Reverse-tunnel throughput: `purequic reverse relay` and `purequic reverse edge` as two processes
 * on 127.0.0.1 (edge → relay over QUIC), the TCP clients and the TCP service in this process.
 *
 *   npx tsx bench/reverse.ts [--quick] [--no-write]
 *
 * Cases: one TCP connection uploading (client → service), one downloading (service → client), and
 * 10 concurrent connections moving data both ways. Mbit/s counts payload bytes across the tunnel in
 * both directions over the wall time of the case (TCP connect to last byte); byte counts checked.
 * Also the time to a first response byte through the tunnel for a fresh TCP connection.
 */
import type { ChildProcess } from "node:child_process";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { purequicBin, startUntil } from "../interop/lib.ts";
import {
  type Bench,
  type BenchOptions,
  isMain,
  machineInfo,
  markdownTable,
  parseBenchArgs,
  writeBenchSection,
} from "./harness.ts";

const BLOCK = Buffer.alloc(64 * 1024, 0xa5);

/** The service: reads a 8-byte big-endian count, sends that many bytes, reads the rest to EOF. */
async function startService(): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    let header = Buffer.alloc(0);
    let started = false;
    const uploadDone = new Promise<void>((r) => socket.once("end", () => r()));
    socket.on("data", (c: Buffer) => {
      if (started) return;
      header = Buffer.concat([header, c]);
      if (header.length < 8) return;
      started = true;
      const n = Number(header.readBigUInt64BE(0));
      // End only once the upload is in too, so every case times the bytes it moves.
      void Promise.all([writeBytes(socket, n), uploadDone]).then(() => socket.end());
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return server;
}

async function writeBytes(socket: Socket, n: number): Promise<void> {
  let left = n;
  while (left > 0 && !socket.destroyed) {
    const k = Math.min(left, BLOCK.length);
    left -= k;
    if (!socket.write(BLOCK.subarray(0, k))) await new Promise<void>((r) => socket.once("drain", () => r()));
  }
}

/** One TCP connection through the tunnel: sends `up` bytes, asks for `down`; resolves when all arrived. */
function exchange(port: number, up: number, down: number): Promise<{ firstByteMs: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let firstByteMs = -1;
    let received = 0;
    const socket = tcpConnect({ host: "127.0.0.1", port, allowHalfOpen: true });
    socket.on("connect", () => {
      const h = Buffer.alloc(8);
      h.writeBigUInt64BE(BigInt(down));
      socket.write(h);
      void writeBytes(socket, up).then(() => socket.end());
    });
    socket.on("data", (c: Buffer) => {
      if (firstByteMs < 0) firstByteMs = performance.now() - t0;
      received += c.length;
    });
    socket.on("end", () => {
      if (received !== down) reject(new Error(`received ${received} of ${down} bytes`));
      else resolve({ firstByteMs });
    });
    socket.on("error", reject);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

interface Case {
  readonly name: string;
  readonly connections: number;
  readonly up: number;
  readonly down: number;
}

export const reverseBench: Bench = {
  name: "reverse",
  async run(opts: BenchOptions) {
    const machine = machineInfo();
    const mb = opts.quick ? 4 : 64;
    const runs = opts.quick ? 1 : 3;
    const cases: Case[] = [
      { name: "1 connection, upload", connections: 1, up: mb << 20, down: 0 },
      { name: "1 connection, download", connections: 1, up: 0, down: mb << 20 },
      { name: "10 connections, both ways", connections: 10, up: (mb << 20) / 16, down: (mb << 20) / 16 },
    ];
    const service = await startService();
    const servicePort = (service.address() as { port: number }).port;
    const children: ChildProcess[] = [];
    try {
      const relay = await startUntil(
        purequicBin,
        ["reverse", "relay", "--listen", "127.0.0.1:0", "--expose", "bench=0", "--token", "bench", "-q"],
        /--ca: (\S+)\n/,
      );
      children.push(relay.child);
      const udpPort = Number(/listening on udp [\d.]+:(\d+)/.exec(relay.output())![1]);
      const tcpPort = Number(/bench: tcp [\d.]+:(\d+)/.exec(relay.output())![1]);
      const edge = await startUntil(
        purequicBin,
        [
          "reverse",
          "edge",
          "--relay",
          `127.0.0.1:${udpPort}`,
          "--server-name",
          "localhost",
          "--ca",
          relay.match[1],
          "--token",
          "bench",
          "--service",
          `bench=127.0.0.1:${servicePort}`,
        ],
        /connected to relay/,
      );
      children.push(edge.child);
      // Warm-up (JIT, congestion window) and the session being ready on the relay side.
      for (let i = 0; i < 20; i++) {
        try {
          await exchange(tcpPort, 1 << 20, 1 << 20);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const mbits = new Map<string, number[]>(cases.map((c) => [c.name, []]));
      for (let r = 0; r < runs; r++) {
        for (const c of cases) {
          const t0 = performance.now();
          await Promise.all(Array.from({ length: c.connections }, () => exchange(tcpPort, c.up, c.down)));
          const seconds = (performance.now() - t0) / 1000;
          mbits.get(c.name)!.push(((c.up + c.down) * c.connections * 8) / 1e6 / seconds);
        }
      }
      const latencies: number[] = [];
      for (let i = 0; i < (opts.quick ? 5 : 30); i++)
        latencies.push((await exchange(tcpPort, 0, 1)).firstByteMs);
      const rows = cases.map((c) => {
        const m = mbits.get(c.name)!;
        const moved = ((c.up + c.down) * c.connections) / 2 ** 20;
        return [
          c.name,
          `${moved.toFixed(0)} MiB`,
          median(m).toFixed(0),
          `${Math.min(...m).toFixed(0)}–${Math.max(...m).toFixed(0)}`,
        ];
      });
      const text = markdownTable(["case", "payload", "Mbit/s (median)", "min–max"], rows, [
        "left",
        "right",
        "right",
        "right",
      ]);
      const latency =
        `New TCP connection to first response byte through the tunnel (open request, accept, ` +
        `local connect, data stream): median ${median(latencies).toFixed(1)} ms, ` +
        `min ${Math.min(...latencies).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms over ${latencies.length}.`;
      console.log(`\n${text}\n\n${latency}\n`);
      if (opts.write) {
        const head =
          `Measured ${machine.date} on ${machine.cpu} (${machine.cores} logical cores), Node ${machine.node}, ` +
          `load average ${machine.load.toFixed(2)} at start. \`purequic reverse relay\` and \`purequic reverse edge\` ` +
          `in separate processes on 127.0.0.1 (token auth), TCP clients and the TCP service in the bench process; ` +
          `${runs} run(s) per case, interleaved. Mbit/s counts payload bytes through the tunnel in both directions.`;
        writeBenchSection(
          "reverse",
          `${head}\n\n${text}\n\n${latency}`,
          "Reverse tunnel (`npx tsx bench/reverse.ts`)",
        );
        console.log("written to docs/BENCHMARKS.md");
      }
    } finally {
      for (const c of children) c.kill("SIGTERM");
      service.close();
    }
  },
};

if (isMain(import.meta.url)) await reverseBench.run(parseBenchArgs());
