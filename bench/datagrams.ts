/**
 * Datagrams (RFC 9221): unreliable datagrams per second at the largest size the connection
 * allows (`maxDatagramSize` once PMTU discovery had a second to raise it), one way, client → server,
 * and where they were lost: dropped by the sender's queue (it keeps 1,024; the oldest goes first),
 * or sent but never delivered to the receiving application.
 *
 *   npm run bench:datagrams [-- --quick] [-- --no-write]
 *
 * The receiver is a server in another process (`listen()`, ALPN "bench", reading every datagram);
 * the sender (this process) offers as many as it can: bursts of 64 `sendDatagram()` calls, one
 * burst per event-loop turn, for the run's duration. Every datagram carries its index, so the
 * receiver counts distinct ones. Measured at the advertised maximum and at 8 bytes less: a datagram
 * of the advertised maximum did not fit in a packet when this was written and blocked the queue
 * (see the table's notes). The real peers here (quinn-peer, quicgo-peer, gtlsserver) do not
 * speak datagrams, so there is no comparison in this table.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificate } from "../interop/lib.ts";
import { connect, listen, type QuicConnection } from "../src/quic/api.ts";
import {
  type Bench,
  type BenchOptions,
  isMain,
  machineInfo,
  markdownTable,
  parseBenchArgs,
  writeBenchSection,
} from "./harness.ts";
import { benchRole, RoleProcess, roleArgs, serveRole, spread } from "./role-process.ts";

const BURST = 64;

interface RoleArgs {
  readonly cert: string;
  readonly key: string;
}

interface Received {
  readonly datagrams: number;
  readonly bytes: number;
}

/** (Server role) Counts the distinct datagrams of the latest connection. */
function serverRole({ cert, key }: RoleArgs): void {
  let current = { seen: new Set<number>(), bytes: 0 };
  serveRole({
    listen: async () => {
      const server = await listen({
        host: "127.0.0.1",
        alpn: ["bench"],
        certificatePem: readFileSync(cert, "utf8"),
        privateKeyPem: readFileSync(key, "utf8"),
      });
      void (async () => {
        for await (const qc of server) {
          const counts = { seen: new Set<number>(), bytes: 0 };
          current = counts;
          void (async () => {
            for (let d = await qc.readDatagram(); d; d = await qc.readDatagram()) {
              if (d.length >= 4) counts.seen.add(new DataView(d.buffer, d.byteOffset, 4).getUint32(0));
              counts.bytes += d.length;
            }
          })();
        }
      })();
      return server.address.port;
    },
    received: (): Received => ({ datagrams: current.seen.size, bytes: current.bytes }),
  });
}

interface RunResult {
  size: number;
  sent: number;
  droppedAtSender: number;
  received: number;
  seconds: number;
}

/** Sizes measured: the advertised maximum, and 8 bytes less (see the module comment). */
const SHRINK = [0, 8] as const;

async function sendRun(
  port: number,
  ca: string,
  ms: number,
  shrink: number,
  server: RoleProcess,
): Promise<RunResult> {
  const qc: QuicConnection = await connect({
    host: "127.0.0.1",
    port,
    serverName: "localhost",
    alpn: ["bench"],
    ca,
  });
  try {
    await new Promise((r) => setTimeout(r, 1000)); // PMTU discovery
    const size = qc.maxDatagramSize - shrink;
    const payload = new Uint8Array(size);
    const view = new DataView(payload.buffer);
    const dropped0 = qc.stats().datagramsDropped;
    let sent = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      for (let i = 0; i < BURST; i++) {
        view.setUint32(0, sent);
        qc.sendDatagram(payload);
        sent++;
      }
      await new Promise((r) => setImmediate(r));
    }
    const seconds = (performance.now() - t0) / 1000;
    const droppedAtSender = qc.stats().datagramsDropped - dropped0;
    // Whatever is still queued or in flight has this long to arrive.
    await new Promise((r) => setTimeout(r, 1000));
    const { datagrams } = await server.call<Received>("received");
    return { size, sent, droppedAtSender, received: datagrams, seconds };
  } finally {
    await qc.close().catch(() => {});
  }
}

export const datagramsBench: Bench = {
  name: "datagrams",
  async run(opts: BenchOptions): Promise<void> {
    const runs = opts.quick ? 3 : 5;
    const ms = opts.quick ? 1000 : 3000;
    const machine = machineInfo();
    const work = mkdtempSync(join(tmpdir(), "purequic-bench-dgram-"));
    const { cert, key } = makeTestCertificate(work);
    const ca = readFileSync(cert, "utf8");
    const results: RunResult[][] = SHRINK.map(() => []);
    const server = await RoleProcess.start(import.meta.url, "server", { cert, key } satisfies RoleArgs);
    try {
      const port = await server.call<number>("listen");
      for (let r = 0; r < runs; r++) {
        for (const [i, shrink] of SHRINK.entries()) {
          const res = await sendRun(port, ca, ms, shrink, server);
          results[i].push(res);
          console.log(
            `run ${r + 1}: ${res.size} B: offered ${(res.sent / res.seconds).toFixed(0)}/s, delivered ${(res.received / res.seconds).toFixed(0)}/s, ` +
              `dropped at sender ${res.droppedAtSender}, lost after sending ${res.sent - res.droppedAtSender - res.received}`,
          );
        }
      }
    } finally {
      server.kill();
      rmSync(work, { recursive: true, force: true });
    }
    const pct = (n: number) => `${(n * 100).toFixed(1)}%`;
    const int = (n: number) => Math.round(n).toLocaleString("en-US");
    const sizes = [...new Set(results.flat().map((r) => r.size))].join(" and ");
    const rows = results.flatMap((rs, i) => {
      const label = (f: string) =>
        `${SHRINK[i] === 0 ? "max" : `max − ${SHRINK[i]}`} (${rs[0]?.size} B): ${f}`;
      return [
        [
          label("offered (sendDatagram calls)/s"),
          ...spread(
            rs.map((r) => r.sent / r.seconds),
            int,
          ),
        ],
        [
          label("delivered to the receiver/s"),
          ...spread(
            rs.map((r) => r.received / r.seconds),
            int,
          ),
        ],
        [
          label("delivered Mbit/s (payload)"),
          ...spread(
            rs.map((r) => (r.received * r.size * 8) / 1e6 / r.seconds),
            (n) => n.toFixed(0),
          ),
        ],
        [
          label("dropped by the sender's queue"),
          ...spread(
            rs.map((r) => r.droppedAtSender / r.sent),
            pct,
          ),
        ],
        [
          label("lost after sending"),
          ...spread(
            rs.map(
              (r) => (r.sent - r.droppedAtSender - r.received) / Math.max(1, r.sent - r.droppedAtSender),
            ),
            pct,
          ),
        ],
        [
          label("total loss (1 − delivered/offered)"),
          ...spread(
            rs.map((r) => 1 - r.received / r.sent),
            pct,
          ),
        ],
      ];
    });
    const table = markdownTable(["figure", "median", "min–max"], rows);
    console.log(`\n${table}\n`);
    if (opts.write) {
      const head =
        `Measured ${machine.date} on ${machine.cpu} (${machine.cores} logical cores), Node ${machine.node}, load average ${machine.load.toFixed(2)} at start. ` +
        `Datagrams of ${sizes} bytes (the connection's \`maxDatagramSize\` 1 s after the handshake, time for PMTU discovery to raise it, loopback), purequic → purequic, receiver in another process; ` +
        `the sender offers bursts of ${BURST} per event-loop turn for ${ms / 1000} s; ${runs} runs, each on a new connection. ` +
        `"Lost after sending" counts datagrams that left the sender's queue (into packets, subject to congestion control) but never reached the receiving application. ` +
        `Two sizes: \`maxDatagramSize\` as the connection advertises it, and 8 bytes less (a datagram of the advertised maximum once blocked the sender's queue for good; ` +
        `found by this bench, fixed, src/quic/connection/datagrams.test.ts). ` +
        `No comparison: none of the built peers (quinn-peer, quicgo-peer, gtlsserver) sends or receives datagrams.`;
      writeBenchSection("datagrams", `${head}\n\n${table}`, "Datagrams (`npm run bench:datagrams`)");
      console.log("written to docs/BENCHMARKS.md");
    }
  },
};

if (isMain(import.meta.url)) {
  if (benchRole() === "server") serverRole(roleArgs<RoleArgs>());
  else await datagramsBench.run(parseBenchArgs());
}
