/**
 * quic-go 0.29's own interop-runner endpoints (github.com/lucas-clemente/quic-go/interop/{server,
 * client}, unmodified, built by interop/peers/install.sh) in the interop matrix. They implement
 * the runner's test cases themselves, chosen by TESTCASE, and expect the runner's filesystem:
 * /certs/cert.pem + /certs/priv.key, /www, /downloads, /logs, and the server listens on :443.
 * Each run gets chroot jails under the run's folder (the binaries are static), like
 * interop/peers/selftest.sh. The server binds UDP 443 in the host's network namespace (so
 * purequic's client can reach it): one at a time across processes (a lock file in the temp
 * directory), and only as root (chroot, port < 1024).
 */
import { type ChildProcess, spawn } from "node:child_process";
import {
  copyFileSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Impl, type RunContext, run } from "../matrix.ts";
import { udpPortBound, urlHost, waitForUdpListener } from "./udp-listener.ts";

const PORT = 443;

/** Our case name → the server's TESTCASE; cases the runner plays as plain transfers map to it. */
const SERVER_TESTCASE: Record<string, string> = {
  handshake: "handshake",
  retry: "retry",
  resumption: "resumption",
  zerortt: "zerortt",
  multiconnect: "multiconnect",
  // The runner plays these as multiconnect (one connection per file) and handshake.
  handshakeloss: "multiconnect",
  handshakecorruption: "multiconnect",
  longrtt: "handshake",
  chacha20: "chacha20",
  http3: "http3",
  versionnegotiation: "versionnegotiation",
};
const CLIENT_TESTCASE: Record<string, string> = { ...SERVER_TESTCASE, keyupdate: "keyupdate" };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A lock file naming the process whose quic-go interop server holds UDP 443, taken with O_EXCL;
 * one left by a process that no longer exists is removed. Waits up to 3 minutes (a cell).
 * Returns the release function.
 */
async function lockPort443(): Promise<() => void> {
  const file = join(tmpdir(), "purequic-interop-udp443.lock");
  const deadline = Date.now() + 180_000;
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: "wx" });
      let released = false;
      return () => {
        if (released) return;
        released = true;
        rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number(readFileOr(file));
    if (!Number.isInteger(owner) || owner <= 0 || !alive(owner)) rmSync(file, { force: true });
    else if (Date.now() > deadline) throw new Error(`udp port ${PORT} held by process ${owner} (${file})`);
    else await sleep(200);
  }
}

function readFileOr(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Hard link when possible (same filesystem), else copy. */
function place(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

/** A jail with the runner's layout: bin/<name>, certs, www, downloads, logs. */
function makeJail(ctx: RunContext, role: "server" | "client", bin: string): string {
  const jail = join(ctx.dir, `jail-${role}`);
  for (const d of ["bin", "certs", "www", "downloads", "logs/qlog"])
    mkdirSync(join(jail, d), { recursive: true });
  place(bin, join(jail, "bin", role));
  copyFileSync(ctx.cert, join(jail, "certs/cert.pem"));
  copyFileSync(ctx.key, join(jail, "certs/priv.key"));
  return jail;
}

export function quicgoInterop(clientBin: string, serverBin: string): Impl {
  // QLOGDIR must be set: quic-go 0.29's interop endpoints panic without it.
  const env = (testcase: string) => ({
    ...process.env,
    TESTCASE: testcase,
    QLOGDIR: "/logs/qlog",
    SSLKEYLOGFILE: "/logs/keys.log",
  });
  return {
    name: "quic-go-interop",
    version: "0.29.0",
    isPurequic: false,
    unsupported: {
      v2: "quic-go 0.29 only knows the QUIC v2 draft (0x709a50c4), not RFC 9369's 0x6b3343cf",
      connectionmigration: "quic-go 0.29 neither offers preferred_address nor migrates",
    },
    unsupportedAsServer: {
      "rebind-port": "quic-go 0.29 servers do not follow a client's new address (no migration support)",
      "rebind-addr": "quic-go 0.29 servers do not follow a client's new address (no migration support)",
    },
    async server(ctx) {
      // Matrix runs of several engineers share the machine: take turns on port 443.
      const release = await lockPort443();
      let child: ChildProcess;
      try {
        for (const t0 = Date.now(); udpPortBound(PORT); await sleep(100))
          if (Date.now() - t0 > 5000) throw new Error(`udp port ${PORT} is in use by another program`);
        const jail = makeJail(ctx, "server", serverBin);
        for (const f of readdirSync(ctx.www)) place(join(ctx.www, f), join(jail, "www", f));
        const testcase = SERVER_TESTCASE[ctx.testCase.name] ?? "transfer";
        child = spawn("chroot", [jail, "/bin/server"], {
          cwd: jail,
          env: env(testcase),
          stdio: ["ignore", "pipe", "pipe"],
        });
      } catch (err) {
        release();
        throw err;
      }
      // The lock lives as long as the server process.
      child.once("exit", release);
      child.once("error", release);
      return waitForUdpListener(child, PORT);
    },
    async client(ctx, port, urls) {
      const jail = makeJail(ctx, "client", clientBin);
      const testcase = CLIENT_TESTCASE[ctx.testCase.name] ?? "transfer";
      // Multiconnect: TESTCASE=multiconnect makes the client use one connection per URL itself.
      const u = urls.map((p) => `https://${urlHost(ctx.host)}:${port}/${p}`);
      const r = await run("chroot", [jail, "/bin/client", ...u], env(testcase), ctx.testCase.timeoutMs);
      for (const f of readdirSync(join(jail, "downloads")))
        renameSync(join(jail, "downloads", f), join(ctx.downloads, f));
      return r;
    },
  };
}
