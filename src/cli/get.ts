import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { parseArgs } from "node:util";
import { Presets, SingleBar } from "cli-progress";
import { ConnectionClosedError, connect, describeReason, type QuicConnection, readPem } from "../quic/api.ts";
import type { SessionTicketEntry } from "../quic/tls/session-cache.ts";
import { parseCipherList } from "./ciphers.ts";
import type { Command } from "./command.ts";
import { type DownloadResult, download } from "./download.ts";
import { h3ClientFor, h3FetchOne } from "./h3-get.ts";
import { loadSessionFile, saveSessionFile } from "./session-file.ts";
import { parseInitialVersion, parseVersionList, versionName } from "./versions.ts";

const HELP = `Usage: purequic get [options] URL...

Fetches every URL (https://HOST:PORT/path, one origin) over one QUIC connection, one request
stream per URL, and saves each file as DIR/<basename>. Offers ALPN h3 then hq-interop and speaks
what the server chooses (HTTP/3 GET, or hq-interop's GET /path); --alpn hq-interop forces the
latter.

Options:
  --output DIR        where to save files (default .)
  --ca FILE           trust this PEM root instead of the system roots
  --insecure          do not verify the server certificate
  --cert-hash HEX     accept the server certificate with this SHA-256 (as WebTransport does)
  --alpn LIST         comma-separated ALPN protocols (default h3,hq-interop)
  --ciphers LIST      TLS cipher suites to offer, e.g. TLS_CHACHA20_POLY1305_SHA256
  --server-name NAME  name for SNI and certificate checks (default: the URL's host)
  --session-file F    resume with the session ticket saved in F (when present and still valid),
                      and save the newest ticket this run receives there (owner-only file)
  --zerortt           send the requests in 0-RTT when the session allows it (needs
                      --session-file; 0-RTT requests can be replayed: only for safe requests)
  --version V         QUIC version of the first Initial: v1 (default) or v2; or a reserved
                      version 0x?a?a?a?a ("reserved": a random one) to probe the server: it
                      answers with Version Negotiation and get exits 1 naming its versions
                      (with --versions, it retries in one of those instead, RFC 9368)
  --versions LIST     versions offered for compatible negotiation, preferred first, e.g. v2,v1
                      (start in v1, let the server upgrade to v2; default: --version, then the other)
  --key-update        update the 1-RTT keys once, as early as allowed (RFC 9001 §6)
  --migrate-after N   move the connection to a new local port once N bytes arrived (active
                      migration, RFC 9000 §9.2; the server's preferred address is always used)
  -q, --quiet         no progress output
  -h, --help          show this help
`;

/** hq-interop: `GET /path` on a bidirectional stream; the reply is the file's bytes, then FIN. */
function fetchOne(
  conn: QuicConnection,
  url: URL,
  dir: string,
  onBytes: (n: number) => void,
): Promise<DownloadResult> {
  return download(
    url,
    dir,
    onBytes,
    async () => {
      const { send, recv } = await conn.openBi();
      await send.write(new TextEncoder().encode(`GET ${url.pathname}\r\n`));
      void send.finish().catch(() => {});
      return recv;
    },
    true,
  );
}

export const getCommand: Command = {
  name: "get",
  summary: "download files over HTTP/3 (or hq-interop), concurrently on one connection",
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        output: { type: "string" },
        ca: { type: "string" },
        insecure: { type: "boolean" },
        "cert-hash": { type: "string" },
        alpn: { type: "string" },
        ciphers: { type: "string" },
        "server-name": { type: "string" },
        "session-file": { type: "string" },
        zerortt: { type: "boolean" },
        version: { type: "string" },
        versions: { type: "string" },
        "key-update": { type: "boolean" },
        "migrate-after": { type: "string" },
        quiet: { type: "boolean", short: "q" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (positionals.length === 0) {
      process.stderr.write(HELP);
      return 2;
    }
    let urls: URL[];
    try {
      urls = positionals.map((u) => new URL(u));
    } catch {
      process.stderr.write("purequic get: invalid URL\n");
      return 2;
    }
    const origin = urls[0];
    if (urls.some((u) => u.host !== origin.host)) {
      process.stderr.write("purequic get: all URLs must have the same host and port\n");
      return 2;
    }
    const sessionFile = values["session-file"];
    if (values.zerortt && !sessionFile) {
      process.stderr.write("purequic get: --zerortt needs --session-file\n");
      return 2;
    }
    let session: SessionTicketEntry | undefined;
    if (sessionFile) {
      try {
        session = await loadSessionFile(sessionFile);
      } catch (err) {
        // A broken file only costs the resumption: warn and do a full handshake.
        process.stderr.write(`purequic get: ignoring ${sessionFile}: ${(err as Error).message}\n`);
      }
    }
    let version: number | undefined;
    let versions: number[] | undefined;
    try {
      version = values.version ? parseInitialVersion(values.version, () => randomBytes(4)) : undefined;
      versions = values.versions ? parseVersionList(values.versions) : undefined;
    } catch (err) {
      process.stderr.write(`purequic get: ${(err as Error).message}\n`);
      return 2;
    }
    const dir = values.output ?? ".";
    await mkdir(dir, { recursive: true });
    const host = origin.hostname.replace(/^\[|\]$/g, "");
    const started = performance.now();
    let conn: QuicConnection;
    try {
      conn = await connect({
        host,
        port: Number(origin.port || 443),
        serverName: values["server-name"] ?? (host === "127.0.0.1" || host === "::1" ? "localhost" : host),
        alpn: (values.alpn ?? "h3,hq-interop").split(",").filter(Boolean),
        cipherSuites: values.ciphers ? parseCipherList(values.ciphers) : undefined,
        insecure: values.insecure,
        ca: values.ca ? readPem(values.ca) : undefined,
        serverCertificateHashes: values["cert-hash"]
          ? [Uint8Array.from(Buffer.from(values["cert-hash"], "hex"))]
          : undefined,
        session,
        // With 0-RTT, connect() returns before the handshake and the requests below go in 0-RTT.
        earlyData: values.zerortt === true,
        version,
        versions,
      });
      // The update starts once allowed: handshake confirmed, a 1-RTT packet acknowledged.
      if (values["key-update"]) conn.forceKeyUpdate();
    } catch (err) {
      const r = err instanceof ConnectionClosedError ? err.reason : undefined;
      if (r?.kind === "version-mismatch" && version !== undefined) {
        // The probe's answer (RFC 9000 §6): what the server speaks instead.
        process.stderr.write(
          `purequic get: ${origin.host} does not speak QUIC ${versionName(version)}: its Version Negotiation offers ${r.offered.map(versionName).join(", ")}\n`,
        );
        return 1;
      }
      process.stderr.write(`purequic get: cannot connect to ${origin.host}: ${(err as Error).message}\n`);
      return 1;
    }
    const bar =
      process.stderr.isTTY && !values.quiet
        ? new SingleBar(
            { format: " {bar} {value} bytes | {speed} MB/s | {files} files", hideCursor: true },
            Presets.shades_classic,
          )
        : undefined;
    let newestTicket: SessionTicketEntry | undefined;
    let ticketArrived: () => void = () => {};
    const ticketPromise = new Promise<void>((r) => {
      ticketArrived = r;
    });
    if (sessionFile) {
      conn.onSessionTicket((t) => {
        newestTicket = t;
        ticketArrived();
      });
    }
    let total = 0;
    const migrateAfter = values["migrate-after"] === undefined ? undefined : Number(values["migrate-after"]);
    let migrating: Promise<void> | undefined;
    bar?.start(0, 0, { speed: "0", files: `0/${urls.length}` });
    let filesDone = 0;
    // In 0-RTT the ALPN is not negotiated yet: requests speak the session's (a server choosing
    // another one rejects 0-RTT, RFC 9001 §4.6.2; the requests are then sent again in 1-RTT).
    const alpn = conn.handshakeData.alpn ?? (conn.earlyDataState === "pending" ? session?.alpn : undefined);
    const h3 = alpn === "h3" ? h3ClientFor(conn) : undefined;
    const results = await Promise.all(
      urls.map((u) =>
        (h3 ? h3FetchOne.bind(null, h3) : fetchOne.bind(null, conn))(u, dir, (n) => {
          total += n;
          if (migrateAfter !== undefined && !migrating && total >= migrateAfter) {
            const from = conn.localAddress.port;
            migrating = conn.migrate().then(
              (a) => {
                if (!values.quiet) process.stdout.write(`migrated from local port ${from} to ${a.port}\n`);
              },
              (err) => {
                process.stderr.write(`purequic get: migration failed: ${(err as Error).message}\n`);
              },
            );
          }
          const secs = (performance.now() - started) / 1000;
          bar?.setTotal(Math.max(total, 1));
          bar?.update(total, {
            speed: (total / 1e6 / secs).toFixed(1),
            files: `${filesDone}/${urls.length}`,
          });
        }).then((r) => {
          filesDone++;
          return r;
        }),
      ),
    );
    bar?.stop();
    await migrating;
    const elapsed = (performance.now() - started) / 1000;
    const earlyData = conn.earlyDataState;
    if (sessionFile) {
      // The server sends its ticket right after the handshake; give a late one a moment.
      if (!newestTicket && !conn.closeReason) {
        await Promise.race([ticketPromise, new Promise((r) => setTimeout(r, 300).unref())]);
      }
      if (newestTicket) {
        try {
          await saveSessionFile(sessionFile, newestTicket);
        } catch (err) {
          process.stderr.write(`purequic get: cannot save ${sessionFile}: ${(err as Error).message}\n`);
        }
      }
    }
    // HTTP/3 closes with H3_NO_ERROR (RFC 9114 §5.2), hq-interop with 0.
    await conn.close(h3 ? 0x100n : 0n, "done").catch(() => {});
    const failed = results.filter((r) => !r.ok);
    for (const r of failed) process.stderr.write(`purequic get: ${r.url}: ${r.error}\n`);
    if (!values.quiet) {
      const mbit = (total * 8) / 1e6 / elapsed;
      process.stdout.write(
        `${results.length - failed.length}/${results.length} files, ${total} bytes in ${elapsed.toFixed(2)} s (${mbit.toFixed(1)} Mbit/s) over ${h3 ? "h3" : "hq-interop"}\n`,
      );
      const st = conn.stats();
      if (values["key-update"] || values.version || values.versions || st.keyPhase > 0)
        process.stdout.write(
          `QUIC ${versionName(conn.version)}, key phase ${st.keyPhase} (updates: ${st.keyUpdatesLocal} by us, ${st.keyUpdatesRemote} by the server)\n`,
        );
      const path = conn.pathStats();
      if (path.migrations > 0 || migrateAfter !== undefined) {
        const r = conn.remoteAddress;
        process.stdout.write(
          `path: ${path.migrations} migration(s), ${path.validations} validation(s), ${path.failures} failed; server at ${r.family === "IPv6" ? `[${r.address}]` : r.address}:${r.port}\n`,
        );
      }
      if (values.zerortt) {
        const what =
          earlyData === "none" ? "not attempted (no session allowing it)" : `${earlyData} by the server`;
        process.stdout.write(`0-RTT: ${what}, ${conn.stats().zeroRttPacketsSent} 0-RTT packets sent\n`);
      }
    }
    const reason = conn.closeReason;
    if (failed.length > 0 && reason && reason.kind !== "application") {
      process.stderr.write(`purequic get: connection: ${describeReason(reason)}\n`);
    }
    return failed.length === 0 ? 0 : 1;
  },
};
