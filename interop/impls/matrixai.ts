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
import { type Impl, type KnownBug, type RunContext, run, waitForPort } from "../matrix.ts";
import { quicheLostFinSeen } from "../peer-bug-evidence.ts";
import { urlHost } from "./udp-listener.ts";

export const MATRIXAI_VERSION = "2.0.9";
const script = join(repo, "interop/impls/matrixai-peer.ts");
/**
 * node with tsx's loader, not the `tsx` wrapper: the wrapper runs the script in a child process
 * that outlives a SIGKILL of the wrapper (a timed-out client would be left running).
 */
const node = process.execPath;
const withTsx = ["--import", import.meta.resolve("tsx/esm")];

/** The command (program, arguments before the peer's own) that runs matrixai-peer.ts. */
export const MATRIXAI_PEER_COMMAND: readonly [string, readonly string[]] = [node, [...withTsx, script]];

/** Whether install-matrixai.sh has installed the package. */
export function matrixaiInstalled(): boolean {
  const cache = join(process.env.PURQUIC_CACHE ?? join(repo, ".cache"), "interop/matrixai");
  return existsSync(join(cache, "node_modules/@matrixai/quic/dist/index.js"));
}

const QUICHE_SECOND_REBINDING =
  "quiche 0.18 in @matrixai/quic follows only the first NAT rebinding: after the second it never validates the new address and keeps sending to the retired binding (its active_connection_id_limit 2 is not configurable there; with 8 it follows the second)";

/**
 * Signature in a run (peer-bug-evidence.ts): the client idled out, and purequic's qlog shows an
 * acknowledged FIN that came with bytes the client had already acknowledged, on a connection the
 * client never closed.
 */
const QUICHE_LOST_FIN: KnownBug = {
  reason:
    "quiche 0.18 drops a FIN that arrives in a retransmission together with bytes it already read (RecvBuf::write), so its client never sees the response end and times out",
  seen: quicheLostFinSeen,
};

export function matrixai(): Impl {
  const env = (ctx: RunContext) => ({ ...process.env, SSLKEYLOGFILE: join(ctx.dir, "keys.log") });
  return {
    name: "matrixai-quiche",
    version: MATRIXAI_VERSION,
    isPurequic: false,
    unsupported: {
      v2: "quiche 0.18 does not implement QUIC v2",
      // Run 2026-12-07 both ways: purequic's client saw no preferred_address from the server, and
      // the client never sent a PATH_CHALLENGE to purequic's preferred address.
      connectionmigration:
        "@matrixai/quic 2.0.9 has no preferred-address setting for its server, and its quiche 0.18 client never probes a server's preferred_address",
    },
    unsupportedAsServer: {
      // Seen in purequic's qlog and the relay log (rebind-port and rebind-addr alike): quiche
      // validates the first rebinding (PATH_CHALLENGE at 1.06 s) but not the second: ~15 client
      // datagrams arrive from the new binding, no PATH_CHALLENGE goes there, and every reply and
      // PTO probe (6.1 … 24.5 s) goes to the retired binding until the idle timeout. With its
      // active_connection_id_limit raised from 2 to 8 (a native Config patch in the harness:
      // @matrixai/quic's config does not expose it) it followed the second rebinding too.
      "rebind-port": QUICHE_SECOND_REBINDING,
      "rebind-addr": QUICHE_SECOND_REBINDING,
      handshake: "quiche's server in @matrixai/quic always sends a stateless Retry (the case forbids one)",
      // QUICConnection builds a new quiche Config (a new TLS context with new ticket keys) for
      // every connection: its tickets are never accepted by the next connection.
      resumption:
        "@matrixai/quic's server issues tickets but cannot resume them (new TLS context per connection)",
      zerortt:
        "@matrixai/quic's server issues tickets but cannot resume them (new TLS context per connection)",
    },
    // Seen 2026-12-07 in purequic's qlog (results …21-06-01-781Z, …21-15-27-245Z): a response's
    // bytes 0..1024 are acknowledged, the packet with the FIN alone is lost, and purequic's PTO
    // probe sends 0..1024 again with the FIN (valid, RFC 9002 §6.2.4). quiche acknowledges it, but
    // its application never sees the end of the stream and idles out after 30 s: quiche 0.18's
    // RecvBuf::write (stream/recv_buf.rs) takes the final size and then drops the non-empty chunk
    // that lies wholly below the read offset, so the stream never becomes readable. purequic's
    // hq-interop server now sends a small file's FIN with its bytes, which avoids the pattern.
    knownBugsAsClient: {
      handshakeloss: QUICHE_LOST_FIN,
      handshakecorruption: QUICHE_LOST_FIN,
    },
    unsupportedAsClient: {
      chacha20: "@matrixai/quic has no cipher-suite setting: its client always offers AES-GCM too",
      resumption: "@matrixai/quic's client cannot keep a session ticket for a second connection",
      zerortt: "@matrixai/quic's client cannot keep a session ticket for a second connection",
      keyupdate: "@matrixai/quic's client cannot be told to initiate a key update",
      versionnegotiation:
        "@matrixai/quic's client has no version option: the addon's Config constructors take none (quiche's PROTOCOL_VERSION, v1)",
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
