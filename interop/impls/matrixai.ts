/**
 * @matrixai/quic 2.0.9 (a Node binding of Cloudflare quiche 0.18, BoringSSL) in the interop
 * matrix, through our hq-interop client and server on its API (interop/impls/matrixai-peer.ts,
 * run with tsx). The package lives outside purequic's dependencies, in
 * $PURQUIC_CACHE/interop/matrixai, installed by interop/impls/install-matrixai.sh.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { repo } from "../lib.ts";
import { type Impl, type RunContext, run, waitForPort } from "../matrix.ts";
import { urlHost } from "./udp-listener.ts";

export const MATRIXAI_VERSION = "2.0.9";
const script = join(repo, "interop/impls/matrixai-peer.ts");
/**
 * node with tsx's loader, not the `tsx` wrapper: the wrapper runs the script in a child process
 * that outlives a SIGKILL of the wrapper (a timed-out client would be left running).
 */
const node = process.execPath;
const withTsx = ["--import", import.meta.resolve("tsx/esm")];

/** Whether install-matrixai.sh has installed the package. */
export function matrixaiInstalled(): boolean {
  const cache = join(process.env.PURQUIC_CACHE ?? join(repo, ".cache"), "interop/matrixai");
  return existsSync(join(cache, "node_modules/@matrixai/quic/dist/index.js"));
}

export function matrixai(): Impl {
  const env = (ctx: RunContext) => ({ ...process.env, SSLKEYLOGFILE: join(ctx.dir, "keys.log") });
  return {
    name: "matrixai-quiche",
    version: MATRIXAI_VERSION,
    isPurequic: false,
    unsupported: {
      v2: "quiche 0.18 does not implement QUIC v2",
      connectionmigration: "@matrixai/quic neither offers preferred_address nor migrates",
    },
    unsupportedAsServer: {
      handshake: "quiche's server in @matrixai/quic always sends a stateless Retry (the case forbids one)",
      // QUICConnection builds a new quiche Config (a new TLS context with new ticket keys) for
      // every connection: its tickets are never accepted by the next connection.
      resumption:
        "@matrixai/quic's server issues tickets but cannot resume them (new TLS context per connection)",
      zerortt:
        "@matrixai/quic's server issues tickets but cannot resume them (new TLS context per connection)",
    },
    unsupportedAsClient: {
      chacha20: "@matrixai/quic has no cipher-suite setting: its client always offers AES-GCM too",
      resumption: "@matrixai/quic's client cannot keep a session ticket for a second connection",
      zerortt: "@matrixai/quic's client cannot keep a session ticket for a second connection",
      keyupdate: "@matrixai/quic's client cannot be told to initiate a key update",
    },
    async server(ctx) {
      const listen = `${urlHost(ctx.host)}:0`;
      const args = [...withTsx, script, "server", "--listen", listen, "--cert", ctx.cert, "--key", ctx.key];
      args.push("--root", ctx.www);
      const child = spawn(node, args, { env: env(ctx), stdio: ["ignore", "pipe", "pipe"] });
      return waitForPort(child, /^listening on \S+:(\d+)$/m);
    },
    async client(ctx, port, urls) {
      const args = [...withTsx, script, "client", ...(ctx.insecure ? ["--insecure"] : ["--ca", ctx.cert])];
      args.push("--server-name", "localhost", "--output", ctx.downloads);
      args.push("--timeout", String(Math.ceil(ctx.testCase.timeoutMs / 1000)));
      if (ctx.testCase.connections === "each") args.push("--each");
      args.push(...urls.map((p) => `https://${urlHost(ctx.host)}:${port}/${p}`));
      return run(node, args, env(ctx), ctx.testCase.timeoutMs + 5000);
    },
  };
}
