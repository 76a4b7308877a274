/**
 * For peers that neither pick their own port nor say when they are ready (ngtcp2's gtlsserver,
 * quic-go's interop server on :443): a free UDP port, and waiting until a process has a UDP
 * socket bound to a port (read from /proc/net/udp and udp6, Linux only).
 */
import type { ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFileSync } from "node:fs";
import type { ServerRun } from "../matrix.ts";

/** A UDP port that was free a moment ago on `host` (bound, read, released). */
export function freeUdpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket(host.includes(":") ? "udp6" : "udp4");
    s.once("error", reject);
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Whether some socket is bound to UDP `port` (any address, IPv4 or IPv6). */
export function udpPortBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const table of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local?.endsWith(hex)) return true;
    }
  }
  return false;
}

/**
 * Resolves with a ServerRun once `port` is bound, rejects if the child exits first or after
 * `timeoutMs`. The child's output is collected for the results folder.
 */
export function waitForUdpListener(
  child: ChildProcess,
  port: number,
  timeoutMs = 20_000,
): Promise<ServerRun> {
  let out = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const onExit = (code: number | null) => {
      clearInterval(timer);
      reject(new Error(`server exited ${code} before binding udp port ${port}: ${out.slice(-300)}`));
    };
    child.once("exit", onExit);
    const timer = setInterval(() => {
      if (udpPortBound(port)) {
        clearInterval(timer);
        child.off("exit", onExit);
        resolve({ port, child, output: () => out });
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer);
        child.off("exit", onExit);
        child.kill("SIGKILL");
        reject(new Error(`server did not bind udp port ${port} within ${timeoutMs} ms: ${out.slice(-300)}`));
      }
    }, 50);
  });
}

/** `host` as it appears in a URL authority (IPv6 in brackets). */
export function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
