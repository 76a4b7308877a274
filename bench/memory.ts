/**
 * Memory per established idle connection in a server process: heap and RSS growth after GC
 * (node --expose-gc) at 1,000 and 10,000 connections, over the server's figures after a warm-up
 * (JIT, caches) with no connection.
 *
 *   npm run bench:memory [-- --quick] [-- --no-write]      (--quick: 100 and 1,000 connections)
 *
 * The server (`listen()`, ALPN "bench", its accepted QuicConnection objects kept) and two client
 * processes (purequic, 32 handshakes in flight each, all connections of a process on one UDP
 * socket) run in separate processes; idle timeout and keep-alive are off on both sides, so the
 * connections stay established and silent. Each run starts a fresh server; per-connection figures
 * are (after − baseline) / connections.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeTestCertificate } from "../interop/lib.ts";
import { connect, listen, type QuicConnection, type QuicServer } from "../src/quic/api.ts";
import { Endpoint } from "../src/quic/endpoint.ts";
import {
  type Bench,
  type BenchOptions,
  isMain,
  machineInfo,
  markdownTable,
  parseBenchArgs,
  writeBenchSection,
} from "./harness.ts";
import { benchRole, medianOf, RoleProcess, roleArgs, serveRole, spread } from "./role-process.ts";

const CLIENT_PROCESSES = 2;
const IN_FLIGHT_PER_CLIENT = 32;
const IDLE = { maxIdleTimeout: 0, keepAliveInterval: 0 } as const;

interface Usage {
  readonly heapUsed: number;
  readonly rss: number;
  readonly external: number;
  readonly connections: number;
}

interface RoleArgs {
  readonly cert: string;
  readonly key: string;
}

/** (Server role) */
function serverRole({ cert, key }: RoleArgs): void {
  let server: QuicServer | undefined;
  const live: QuicConnection[] = [];
  let established = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  serveRole({
    listen: async () => {
      server = await listen({
        host: "127.0.0.1",
        alpn: ["bench"],
        certificatePem: readFileSync(cert, "utf8"),
        privateKeyPem: readFileSync(key, "utf8"),
        transport: IDLE,
      });
      void (async () => {
        for await (const qc of server!) {
          live.push(qc);
          qc.handshakeComplete.then(
            () => established++,
            () => {},
          );
        }
      })();
      return server.address.port;
    },
    measure: async (): Promise<Usage> => {
      if (!gc) throw new Error("run the server with --expose-gc");
      // Let the connections finish their post-handshake exchanges before measuring.
      await new Promise((r) => setTimeout(r, 1000));
      for (let i = 0; i < 4; i++) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
      const m = process.memoryUsage();
      return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, connections: established };
    },
    forget: () => {
      for (const qc of live.splice(0)) void qc.close().catch(() => {});
      established = 0;
    },
  });
}

/** (Client role) Keeps every connection it opens. */
function clientRole({ cert }: RoleArgs): void {
  const ca = readFileSync(cert, "utf8");
  const kept: QuicConnection[] = [];
  let endpoint: Endpoint | undefined;
  serveRole({
    open: async ({ port, count }: { port: number; count: number }) => {
      endpoint ??= await Endpoint.bind({ host: "127.0.0.1" });
      let left = count;
      let failed = 0;
      let firstError = "";
      const loop = async () => {
        while (left > 0) {
          left--;
          try {
            kept.push(
              await connect({
                host: "127.0.0.1",
                port,
                serverName: "localhost",
                alpn: ["bench"],
                ca,
                endpoint,
                transport: IDLE,
              }),
            );
          } catch (err) {
            failed++;
            firstError ||= (err as Error).message;
          }
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT_PER_CLIENT }, loop));
      return { failed, firstError };
    },
    closeAll: async () => {
      for (const qc of kept.splice(0)) void qc.close().catch(() => {});
    },
  });
}

export const memoryBench: Bench = {
  name: "memory",
  async run(opts: BenchOptions): Promise<void> {
    const runs = 3;
    const steps = opts.quick ? [100, 1000] : [1000, 10_000];
    const machine = machineInfo();
    const work = mkdtempSync(join(tmpdir(), "purequic-bench-mem-"));
    const { cert, key } = makeTestCertificate(work);
    const args: RoleArgs = { cert, key };
    const perConn = steps.map(() => ({
      heap: [] as number[],
      rss: [] as number[],
      external: [] as number[],
    }));
    const notes: string[] = [];
    const openSeconds: number[] = [];
    try {
      for (let r = 0; r < runs; r++) {
        const server = await RoleProcess.start(import.meta.url, "server", args, ["--expose-gc"]);
        const clients: RoleProcess[] = [];
        try {
          for (let i = 0; i < CLIENT_PROCESSES; i++)
            clients.push(await RoleProcess.start(import.meta.url, "client", args));
          const port = await server.call<number>("listen");
          // Warm-up: code paths compiled and caches filled before the baseline.
          await Promise.all(clients.map((c) => c.call("open", { port, count: 50 })));
          await Promise.all(clients.map((c) => c.call("closeAll")));
          await server.call("forget");
          await new Promise((res) => setTimeout(res, 2000));
          const base = await server.call<Usage>("measure");
          let opened = 0;
          const t0 = performance.now();
          for (const [i, n] of steps.entries()) {
            const share = Math.ceil((n - opened) / CLIENT_PROCESSES);
            const res = await Promise.all(
              clients.map((c) =>
                c.call<{ failed: number; firstError: string }>("open", { port, count: share }),
              ),
            );
            opened += share * CLIENT_PROCESSES;
            const failed = res.reduce((a, x) => a + x.failed, 0);
            if (failed)
              notes.push(
                `run ${r + 1}: ${failed} connections failed (${res.find((x) => x.firstError)?.firstError})`,
              );
            const u = await server.call<Usage>("measure");
            const conns = u.connections;
            perConn[i].heap.push((u.heapUsed - base.heapUsed) / conns);
            perConn[i].rss.push((u.rss - base.rss) / conns);
            perConn[i].external.push((u.external - base.external) / conns);
            console.log(
              `run ${r + 1}: ${conns} connections: heap +${((u.heapUsed - base.heapUsed) / conns / 1024).toFixed(1)} KiB, rss +${((u.rss - base.rss) / conns / 1024).toFixed(1)} KiB per connection`,
            );
          }
          openSeconds.push((performance.now() - t0) / 1000);
        } finally {
          for (const c of clients) c.kill();
          server.kill();
        }
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    const kib = (n: number) => (n / 1024).toFixed(1);
    const rows = steps.map((n, i) => [
      n.toLocaleString("en-US"),
      ...spread(perConn[i].heap, kib),
      ...spread(perConn[i].rss, kib),
      spread(perConn[i].external, kib)[0],
      perConn[i].rss.length > 0 && medianOf(perConn[i].rss) <= 32 * 1024 ? "yes" : "no",
    ]);
    const table = markdownTable(
      [
        "idle connections",
        "heap KiB/conn (median)",
        "heap min–max",
        "RSS KiB/conn (median)",
        "RSS min–max",
        "external KiB/conn",
        "RSS ≤ 32 KiB",
      ],
      rows,
    );
    console.log(`\n${table}\n${notes.join("\n")}`);
    if (opts.write) {
      const head =
        `Measured ${machine.date} on ${machine.cpu} (${machine.cores} logical cores), Node ${machine.node}, load average ${machine.load.toFixed(2)} at start. ` +
        `Server process (\`listen()\`, ALPN "bench", no application protocol on top, idle timeout and keep-alive off) under --expose-gc; ` +
        `heap used and RSS after 4 forced GCs, minus the same figures after a warm-up of 100 connections opened and closed; external (ArrayBuffers, Buffers) is part of RSS, not of the heap; ` +
        `divided by the connections whose handshake completed. Clients: ${CLIENT_PROCESSES} purequic processes, ${IN_FLIGHT_PER_CLIENT} handshakes in flight each. ` +
        `${runs} runs, each with a fresh server, going up to ${steps.at(-1)?.toLocaleString("en-US")} connections ` +
        `(${Math.round(Math.min(...openSeconds))}–${Math.round(Math.max(...openSeconds))} s per run to open them). Target: ≤ 32 KiB per idle connection. ${notes.join(" ")}`;
      writeBenchSection(
        "memory",
        `${head}\n\n${table}`,
        "Memory per idle connection (`npm run bench:memory`)",
      );
      console.log("written to docs/BENCHMARKS.md");
    }
  },
};

if (isMain(import.meta.url)) {
  const role = benchRole();
  if (role === "server") serverRole(roleArgs<RoleArgs>());
  else if (role === "client") clientRole(roleArgs<RoleArgs>());
  else await memoryBench.run(parseBenchArgs());
}
