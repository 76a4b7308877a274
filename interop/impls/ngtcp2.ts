/**
 * ngtcp2 0.12.1 in the interop matrix: Debian's example programs gtlsserver and gtlsclient
 * (GnuTLS). They speak HTTP/3 only, so every case runs over h3 (purequic's server and `purequic get`
 * choose h3 from the ALPN the peer offers). Quirks (shared/interop/PEERS.md): gtlsserver prints
 * nothing when ready (we wait for its UDP socket); gtlsclient exits 0 even on failure and does not
 * verify the certificate — the matrix's byte-for-byte file check decides.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Impl, type RunContext, run } from "../matrix.ts";
import { PROBE_VERSION, versionHex } from "../version-negotiation.ts";
import { freeUdpPort, urlHost, waitForUdpListener } from "./udp-listener.ts";

/** ngtcp2's own qlog of a run, next to purequic's (it does not create the folder itself). */
function qlogDir(ctx: RunContext): string {
  const dir = join(ctx.dir, "ngtcp2-qlog");
  mkdirSync(dir, { recursive: true });
  return dir;
}

const CHACHA20_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305";

export function ngtcp2(clientBin: string, serverBin: string): Impl {
  const env = (ctx: RunContext) => ({ ...process.env, SSLKEYLOGFILE: join(ctx.dir, "keys.log") });
  return {
    name: "ngtcp2",
    version: "0.12.1",
    isPurequic: false,
    unsupported: {
      v2: "ngtcp2 0.12.1 only knows the QUIC v2 draft (0x709a50c4), not RFC 9369's 0x6b3343cf",
    },
    async server(ctx) {
      const port = await freeUdpPort(ctx.host);
      const args = ["-q", "--no-quic-dump", "--no-http-dump", "-d", ctx.www];
      args.push(`--qlog-dir=${qlogDir(ctx)}`);
      const tc = ctx.testCase.name;
      if (tc === "chacha20") args.push(`--ciphers=${CHACHA20_ONLY}`);
      if (tc === "retry") args.push("-V");
      if (tc === "connectionmigration" && !ctx.host.includes(":"))
        args.push(`--preferred-ipv4-addr=${ctx.host}:${await freeUdpPort(ctx.host)}`);
      args.push(ctx.host, String(port), ctx.key, ctx.cert);
      const child = spawn(serverBin, args, { env: env(ctx), stdio: ["ignore", "pipe", "pipe"] });
      return waitForUdpListener(child, port);
    },
    async client(ctx, port, urls) {
      const tc = ctx.testCase;
      const base = ["-q", "--no-quic-dump", "--no-http-dump", "--exit-on-all-streams-close"];
      // ngtcp2's own view of every run (its qlog), next to purequic's.
      base.push(`--qlog-dir=${qlogDir(ctx)}`);
      base.push("--download", ctx.downloads);
      if (tc.name === "chacha20") base.push(`--ciphers=${CHACHA20_ONLY}`);
      if (tc.name === "keyupdate") base.push("--key-update=1ms");
      // An unknown version goes out with v1's packet types; on the VN gtlsclient stops with
      // ERR_RECV_VERSION_NEGOTIATION (no --preferred-versions: nothing to retry with).
      if (tc.name === "versionnegotiation") base.push(`--version=${versionHex(PROBE_VERSION)}`);
      const u = urls.map((p) => `https://${urlHost(ctx.host)}:${port}/${p}`);
      const once = (extra: string[], list: string[]) =>
        run(clientBin, [...base, ...extra, ctx.host, String(port), ...list], env(ctx), tc.timeoutMs);
      const resume =
        tc.resume ?? (tc.name === "zerortt" ? "0rtt" : tc.name === "resumption" ? "ticket" : undefined);
      if (resume) {
        // Connection 1 fetches the first file and stores the session ticket and transport
        // parameters; connection 2 resumes with them (0-RTT only for zerortt).
        const session = ["--session-file", join(ctx.dir, "ngtcp2.session")];
        session.push("--tp-file", join(ctx.dir, "ngtcp2.tp"));
        const first = await once(session, u.slice(0, 1));
        if (first.code !== 0) return first;
        if (!existsSync(join(ctx.dir, "ngtcp2.session")))
          return { code: 1, output: `${first.output}\n[ngtcp2] no session ticket saved by connection 1` };
        const second = await once(
          resume === "ticket" ? [...session, "--disable-early-data"] : session,
          u.slice(1),
        );
        return { code: second.code, output: `${first.output}\n${second.output}` };
      }
      if (tc.connections === "each") {
        let output = "";
        for (const url of u) {
          const r = await once([], [url]);
          output += r.output;
          if (r.code !== 0) return { code: r.code, output };
        }
        return { code: 0, output };
      }
      return once([], u);
    },
  };
}
