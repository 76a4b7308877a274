/**
 * The servers the multi-process benches measure, started on 127.0.0.1 with a test certificate:
 * purequic's CLI server (`bin/purequic server`, h3 + hq-interop) and the real peers built by
 * interop/peers/install.sh and interop/h3.ts (quinn-peer and quicgo-peer: hq-interop;
 * quicgo-h3-peer: quic-go's http3; gtlsserver: ngtcp2 + nghttp3). A peer that is not built is
 * left out by {@link availableServers}, and the bench says so in its notes.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { peersEnv, purequicBin, repo, startUntil } from "../interop/lib.ts";

export type ServerName = "purequic" | "quinn" | "quic-go" | "quic-go h3" | "ngtcp2";

export interface RunningServer {
  readonly name: ServerName;
  readonly port: number;
  readonly child: ChildProcess;
}

/** A UDP port free right now on 127.0.0.1 (for servers that cannot pick one themselves). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function binaries(): Partial<Record<ServerName, string>> {
  const peers = peersEnv();
  const h3peer = join(peers.PURQUIC_INTEROP_CACHE ?? join(repo, ".cache/interop"), "bin/quicgo-h3-peer");
  const out: Partial<Record<ServerName, string>> = { purequic: purequicBin };
  if (peers.QUINN_PEER && existsSync(peers.QUINN_PEER)) out.quinn = peers.QUINN_PEER;
  if (peers.QUICGO_PEER && existsSync(peers.QUICGO_PEER)) out["quic-go"] = peers.QUICGO_PEER;
  if (existsSync(h3peer)) out["quic-go h3"] = h3peer;
  if (peers.NGTCP2_SERVER && existsSync(peers.NGTCP2_SERVER)) out.ngtcp2 = peers.NGTCP2_SERVER;
  return out;
}

/** Which of `wanted` are built here, and a note naming the missing ones. */
export function availableServers(wanted: readonly ServerName[]): { names: ServerName[]; missing: string } {
  const bins = binaries();
  const names = wanted.filter((n) => bins[n] !== undefined);
  const gone = wanted.filter((n) => bins[n] === undefined);
  return {
    names,
    missing: gone.length
      ? `Not built here (interop/peers/install.sh, interop/h3.ts): ${gone.join(", ")}.`
      : "",
  };
}

/** Starts server `name` serving the files under `root`; resolves once it listens. */
export async function startServer(
  name: ServerName,
  cert: string,
  key: string,
  root: string,
  extra: readonly string[] = [],
): Promise<RunningServer> {
  const bin = binaries()[name];
  if (!bin) throw new Error(`${name} is not built`);
  if (name === "purequic") {
    const r = await startUntil(
      bin,
      ["server", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--root", root, ...extra],
      /listening on udp [\d.]+:(\d+)/,
    );
    return { name, port: Number(r.match[1]), child: r.child };
  }
  if (name === "quinn" || name === "quic-go") {
    const r = await startUntil(
      bin,
      ["server", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--root", root, ...extra],
      /listening on [\d.]+:(\d+)/,
    );
    return { name, port: Number(r.match[1]), child: r.child };
  }
  const port = await freeUdpPort();
  if (name === "quic-go h3") {
    const r = await startUntil(
      bin,
      ["server", "--listen", `127.0.0.1:${port}`, "--cert", cert, "--key", key, "--root", root],
      /listening on/,
    );
    return { name, port, child: r.child };
  }
  // ngtcp2's gtlsserver prints nothing when ready with -q: give it a moment, as interop/h3.ts does.
  const child = spawn(bin, ["-q", "-d", root, "127.0.0.1", String(port), key, cert], { stdio: "ignore" });
  await new Promise((res) => setTimeout(res, 500));
  if (child.exitCode !== null) throw new Error(`gtlsserver exited with ${child.exitCode}`);
  return { name, port, child };
}

/**
 * CPU seconds (user + system) process `pid` used so far, from /proc/<pid>/stat (Linux; NaN
 * elsewhere). Clock ticks are taken as 100 per second (USER_HZ on Linux x86 and arm).
 */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
