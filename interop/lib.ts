/**
 * Shared by the interop smoke test and the transfer benchmark: where the built peers are, a test
 * certificate, and starting a server process until it reports its port.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
export const purequicBin = join(repo, "bin/purequic");

/** Paths of the peers interop/peers/install.sh built (empty when it has not run). */
export function peersEnv(): Record<string, string> {
  const file = join(process.env.PURQUIC_CACHE ?? join(repo, ".cache"), "interop/peers.env");
  const env: Record<string, string> = {};
  if (!existsSync(file)) return env;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^(\w+)='?([^']*)'?$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/**
 * A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1 with CA:FALSE (webpki-based
 * peers such as quinn refuse CA:TRUE leaves). Returns the paths of cert.pem and key.pem in `dir`.
 */
export function makeTestCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-days",
      "10",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-subj",
      "/CN=localhost",
    ],
    { stdio: "ignore" },
  );
  return { cert, key };
}

/** Starts a process and resolves once its output matches `ready` (group 1 is usually the port). */
export function startUntil(
  cmd: string,
  args: string[],
  ready: RegExp,
  timeoutMs = 20_000,
  env?: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; match: RegExpMatchArray; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${cmd} did not start: ${out.slice(-500)}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, match: m, output: () => out });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code}: ${out.slice(-500)}`));
    });
  });
}
