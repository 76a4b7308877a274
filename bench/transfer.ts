/**
 * Bulk transfer on loopback, client and server in separate processes, side by side with real
 * peers measured in the same run: one file downloaded over one stream (hq-interop).
 *
 *   npm run bench:transfer [-- --quick] [-- --no-write] [-- --size MB]
 *
 * Pairs: purequic → purequic, quinn → quinn, quic-go → quic-go, @matrixai/quic → @matrixai/quic
 * (quiche), and the mixed pairs with quinn.
 * Peers come from interop/peers/install.sh (skipped with a note when not built). Each figure is
 * the median of the runs with min–max; the ratio column compares with quinn → quinn.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MATRIXAI_PEER_COMMAND, matrixaiInstalled } from "../interop/impls/matrixai.ts";
import { makeTestCertificate, peersEnv, purequicBin as purequic, startUntil } from "../interop/lib.ts";
import {
  type Bench,
  type BenchOptions,
  isMain,
  machineInfo,
  markdownTable,
  parseBenchArgs,
  writeBenchSection,
} from "./harness.ts";

interface Side {
  name: string;
  server?: (cert: string, key: string, root: string) => [string, string[], RegExp];
  client?: (port: number, cert: string, out: string, file: string) => [string, string[]];
}

function sides(peers: Record<string, string>): Side[] {
  const list: Side[] = [
    {
      name: "purequic",
      server: (cert, key, root) => [
        purequic,
        ["server", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--root", root],
        /listening on udp [\d.]+:(\d+)/,
      ],
      client: (port, cert, out, file) => [
        purequic,
        // hq-interop as the other peers (get would pick h3 with a purequic server).
        [
          "get",
          "-q",
          "--alpn",
          "hq-interop",
          "--ca",
          cert,
          "--output",
          out,
          `https://localhost:${port}/${file}`,
        ],
      ],
    },
  ];
  for (const [name, bin] of [
    ["quinn", peers.QUINN_PEER],
    ["quic-go", peers.QUICGO_PEER],
  ] as const) {
    if (!bin || !existsSync(bin)) continue;
    list.push({
      name,
      server: (cert, key, root) => [
        bin,
        ["server", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--root", root],
        /listening on [\d.]+:(\d+)/,
      ],
      client: (port, cert, out, file) => [
        bin,
        [
          "client",
          "--ca",
          cert,
          "--server-name",
          "localhost",
          "--output",
          out,
          `https://127.0.0.1:${port}/${file}`,
        ],
      ],
    });
  }
  if (matrixaiInstalled()) {
    const [node, pre] = MATRIXAI_PEER_COMMAND;
    list.push({
      name: "matrixai",
      server: (cert, key, root) => [
        node,
        [...pre, "server", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--root", root],
        /listening on [\d.]+:(\d+)/,
      ],
      client: (port, cert, out, file) => [
        node,
        [
          ...pre,
          "client",
          "--ca",
          cert,
          "--server-name",
          "localhost",
          "--output",
          out,
          `https://127.0.0.1:${port}/${file}`,
        ],
      ],
    });
  }
  return list;
}

function startServer(
  cmd: string,
  args: string[],
  ready: RegExp,
): Promise<{ child: ChildProcess; port: number }> {
  return startUntil(cmd, args, ready).then((r) => ({ child: r.child, port: Number(r.match[1]) }));
}

/** Runs the client; returns wall seconds and CPU seconds of the client process. */
function runClient(cmd: string, args: string[]): Promise<{ seconds: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const timed = existsSync("/usr/bin/time");
    const child = timed
      ? spawn("/usr/bin/time", ["-f", "CPU %U %S", cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      : spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr?.on("data", (d) => (err += d));
    child.stdout?.on("data", () => {});
    const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      const m = /CPU ([\d.]+) ([\d.]+)/.exec(err);
      if (code !== 0) reject(new Error(`client exited ${code}: ${err.slice(-300)}`));
      else resolve({ seconds, cpu: m ? Number(m[1]) + Number(m[2]) : Number.NaN });
    });
  });
}

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest("hex");
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const transferBench: Bench = {
  name: "transfer",
  async run(opts: BenchOptions): Promise<void> {
    // Issue #10's bulk case: 200 MB.
    const mb = sizeMiB ?? (opts.quick ? 10 : 200);
    const runs = opts.quick ? 1 : 3;
    const work = mkdtempSync(join(tmpdir(), "purequic-bench-"));
    const root = join(work, "www");
    mkdirSync(root);
    const file = "bulk.bin";
    const data = randomBytes(mb * 1024 * 1024);
    writeFileSync(join(root, file), data);
    // A 1 KiB file fetched the same way: the client's start-up, handshake and one request, which
    // the bulk figure includes (Node + tsx start-up is ~1 s for purequic, ~10 ms for the others).
    const tiny = "tiny.bin";
    writeFileSync(join(root, tiny), randomBytes(1024));
    const expected = createHash("sha256").update(data).digest("hex");
    const { cert, key } = makeTestCertificate(work);
    const all = sides(peersEnv());
    const byName = new Map(all.map((s) => [s.name, s]));
    const pairs: [string, string][] = [
      ["purequic", "purequic"],
      ["quinn", "quinn"],
      ["quic-go", "quic-go"],
      ["matrixai", "matrixai"],
      ["purequic", "quinn"],
      ["quinn", "purequic"],
    ];
    const machine = machineInfo();
    const results: {
      client: string;
      server: string;
      mbits: number[];
      /** Wall seconds of the tiny fetch, and Mbit/s of the bulk fetch less that. */
      startup: number[];
      netMbits: number[];
      cpu: number[];
      error?: string;
    }[] = [];
    // Interleave runs across pairs so machine noise spreads evenly.
    for (const [c, s] of pairs)
      if (byName.has(c) && byName.has(s))
        results.push({ client: c, server: s, mbits: [], startup: [], netMbits: [], cpu: [] });
    for (let r = 0; r < runs; r++) {
      for (const res of results) {
        if (res.error) continue;
        const srv = byName.get(res.server)!.server!(cert, key, root);
        let child: ChildProcess | undefined;
        try {
          const started = await startServer(...srv);
          child = started.child;
          const out = join(work, `dl-${res.client}-${res.server}-${r}`);
          mkdirSync(out);
          const [cmd, args] = byName.get(res.client)!.client!(started.port, cert, out, file);
          const t = await runClient(cmd, args);
          const got = await sha256File(join(out, file));
          if (got !== expected) throw new Error("downloaded file differs");
          res.mbits.push((data.length * 8) / 1e6 / t.seconds);
          const small = await runClient(...byName.get(res.client)!.client!(started.port, cert, out, tiny));
          res.startup.push(small.seconds);
          res.netMbits.push((data.length * 8) / 1e6 / Math.max(1e-3, t.seconds - small.seconds));
          res.cpu.push(t.cpu / (data.length / 1e9));
          rmSync(out, { recursive: true, force: true });
        } catch (err) {
          res.error = (err as Error).message.split("\n")[0];
        } finally {
          child?.kill("SIGKILL");
        }
      }
    }
    rmSync(work, { recursive: true, force: true });
    const base = results.find((r) => r.client === "quinn" && r.server === "quinn");
    const baseMedian = base?.mbits.length ? median(base.mbits) : Number.NaN;
    const rows = results.map((r) =>
      r.error || r.mbits.length === 0
        ? [`${r.client} ← ${r.server}`, "failed", "", "", "", "", "", r.error ?? ""]
        : [
            `${r.client} ← ${r.server}`,
            median(r.mbits).toFixed(0),
            `${Math.min(...r.mbits).toFixed(0)}–${Math.max(...r.mbits).toFixed(0)}`,
            Number.isFinite(baseMedian) ? `${(median(r.mbits) / baseMedian).toFixed(2)}×` : "",
            Number.isFinite(median(r.cpu)) ? median(r.cpu).toFixed(1) : "",
            median(r.startup).toFixed(2),
            median(r.netMbits).toFixed(0),
            "",
          ],
    );
    const text = markdownTable(
      [
        "client ← server",
        "Mbit/s (median)",
        "min–max",
        "vs quinn",
        "client CPU s/GB",
        "1 KiB fetch s",
        "Mbit/s less that",
        "note",
      ],
      rows,
      ["left", "right", "right", "right", "right", "right", "right", "left"],
    );
    console.log(`\n${text}\n`);
    if (opts.write) {
      const head =
        `Measured ${machine.date} on ${machine.cpu} (${machine.cores} logical cores), Node ${machine.node}, load average ${machine.load.toFixed(2)} at start. ` +
        `${mb} MiB file over one stream (hq-interop), client and server in separate processes on 127.0.0.1, ` +
        `${runs} run(s) per pair, interleaved; SHA-256 checked. Wall time of the client process (includes its start-up and handshake); ` +
        "the same client fetching a 1 KiB file from the same server measures that fixed part, and the last figure is the file's rate over the wall time less it.";
      writeBenchSection("transfer", `${head}\n\n${text}`, "Bulk transfer (`npm run bench:transfer`)");
      console.log("written to docs/BENCHMARKS.md");
    }
  },
};

/** `--size MB` (this bench's own option), taken out of the arguments the shared parser sees. */
function takeSizeOption(argv: string[]): number | undefined {
  const at = argv.indexOf("--size");
  if (at < 0) return undefined;
  const mb = Number(argv[at + 1]);
  if (!Number.isInteger(mb) || mb <= 0)
    throw new Error(`--size needs a whole number of MiB, got ${argv[at + 1]}`);
  argv.splice(at, 2);
  return mb;
}

const cliArgs = process.argv.slice(2);
const sizeMiB = isMain(import.meta.url) ? takeSizeOption(cliArgs) : undefined;
if (isMain(import.meta.url)) {
  if (cliArgs.includes("--help") || cliArgs.includes("-h"))
    console.log("transfer: --size MB (file size, default 200; 10 with --quick)");
  await transferBench.run(parseBenchArgs(cliArgs));
}
