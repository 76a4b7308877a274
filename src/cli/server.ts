/**
 * `purequic server`: serves files over HTTP/3 and hq-interop, picking the protocol per connection
 * from the negotiated ALPN. h3: GET/HEAD /path → the file with content-length and a content-type
 * from its extension, 404 otherwise. hq-interop (the QUIC Interop Runner's HTTP/0.9 over QUIC): a
 * bidi stream carries `GET /path\r\n`, the reply is the file's bytes then FIN; a missing file
 * resets the stream. Without --cert/--key a development certificate is generated.
 */

import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, realpath, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join, resolve, sep } from "node:path";
import { Readable } from "node:stream";
import { parseArgs } from "node:util";
import type { H3Handler } from "../h3/server.ts";
import { listen, type QuicConnection, readPem } from "../quic/api.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { ChatRoom } from "../webtransport/chat-room.ts";
import { webTransportDemoPage } from "../webtransport/demo-page.ts";
import { echoSession } from "../webtransport/echo.ts";
import { createWebTransportServer } from "../webtransport/server.ts";
import { parseCipherList } from "./ciphers.ts";
import type { Command } from "./command.ts";
import { parseHostPort } from "./hostport.ts";
import { type StaticFile, StaticFiles } from "./static-files.ts";
import { parseVersionList } from "./versions.ts";

const HELP = `Usage: purequic server [options]

Serves the files under --root over HTTP/3 (GET /path) and hq-interop (GET /path over a
bidirectional stream), choosing per connection from the negotiated ALPN.
WebTransport (h3): /webtransport/echo echoes streams and datagrams, /webtransport/chat is a
chat room, /webtransport.html a demo page for both (the server prints how to open it).

Options:
  --listen HOST:PORT  address to listen on (default 127.0.0.1:4433)
  --root DIR          directory to serve (default: a generated demo directory)
  --cert FILE         PEM certificate chain (default: a generated development certificate)
  --key FILE          PEM private key
  --alpn LIST         comma-separated ALPN protocols (default h3,hq-interop)
  --ciphers LIST      TLS cipher suites to accept, e.g. TLS_CHACHA20_POLY1305_SHA256
  --max-streams N     concurrent bidirectional streams a client may open (default 100)
  --max-handshakes N  handshakes in progress at once; clients beyond it are refused with
                      CONNECTION_REFUSED (RFC 9000 §5.2.2; default 1024)
  --retry             validate every client address with a Retry first (RFC 9000 §8.1.2)
  --early-data        accept 0-RTT from resuming clients (replayable: serve only safe requests)
  --preferred-address HOST:PORT
                      also listen there and advertise it as preferred_address: clients move
                      their connections to it after the handshake (RFC 9000 §9.6; port 0: any)
  --disable-migration send disable_active_migration: clients must not migrate (RFC 9000 §18.2)
  --versions LIST     QUIC versions to switch clients to, preferred first (compatible version
                      negotiation, RFC 9368), e.g. v2,v1: a v1 client offering v2 is upgraded
                      (default v1,v2 in the client's order of preference)
  --key-update-interval N
                      update the 1-RTT keys every N packets sent (RFC 9001 §6; default: only
                      ahead of the AEAD limit)
  -h, --help          show this help
`;

/** The value of an option that takes a positive integer; a QuicUsageError for anything else. */
export function parsePositiveInteger(option: string, value: string): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new QuicUsageError(`--${option} needs a positive integer, got "${value}"`);
  }
  return n;
}

/** hq-interop error code for a missing file (the stream is reset with it). */
const HQ_NOT_FOUND = 0x104n;
const MAX_REQUEST = 8192;

export async function makeDemoRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "purequic-demo-"));
  await writeFile(
    join(dir, "index.html"),
    "<!doctype html><title>purequic</title><h1>Hello from purequic over QUIC</h1>\n",
  );
  await writeFile(join(dir, "1MB.bin"), randomBytes(1 << 20));
  await writeFile(join(dir, "10MB.bin"), randomBytes(10 << 20));
  return dir;
}

/** Maps a request path to a file under root, refusing anything that escapes it. */
async function resolveFile(root: string, path: string): Promise<string | undefined> {
  const clean = decodeURIComponent(path.split("?")[0]).replace(/^\/+/, "");
  const full = resolve(root, clean);
  if (full !== root && !full.startsWith(root + sep)) return undefined;
  try {
    const real = await realpath(full);
    if (real !== root && !real.startsWith(root + sep)) return undefined;
    const s = await stat(real);
    return s.isFile() ? real : undefined;
  } catch {
    return undefined;
  }
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".css": "text/css",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".wasm": "application/wasm",
  ".pdf": "application/pdf",
};

/**
 * The h3 handler: GET/HEAD of a file under root, 404 for anything else. Small files are answered
 * from memory while unchanged, paths resolved once a second ({@link StaticFiles}).
 */
function fileHandler(files: StaticFiles): H3Handler {
  const notFound = () =>
    new Response("not found\n", { status: 404, headers: { "content-type": "text/plain" } });
  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    const url = new URL(req.url);
    const file = await files.resolve(url.pathname + url.search);
    if (!file) return notFound();
    let opened: StaticFile;
    try {
      opened = await files.open(file);
    } catch {
      return notFound(); // removed (or replaced by a directory) since it was resolved
    }
    const headers = {
      "content-length": String(opened.size),
      "content-type": CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream",
    };
    if (req.method === "HEAD") return new Response(null, { headers });
    if (opened.bytes !== undefined) return new Response(opened.bytes, { headers });
    const body = Readable.toWeb(
      createReadStream(file, { highWaterMark: 256 * 1024 }),
    ) as ReadableStream<Uint8Array>;
    return new Response(body, { headers });
  };
}

async function serveConnection(conn: QuicConnection, files: StaticFiles): Promise<void> {
  for (let bi = await conn.acceptBi(); bi; bi = await conn.acceptBi()) {
    const { send, recv } = bi;
    void (async () => {
      const request = new TextDecoder().decode(await recv.readAll(MAX_REQUEST));
      const m = /^GET (\S+)\s*$/.exec(request);
      const file = m ? await files.resolve(m[1]) : undefined;
      if (!file) {
        send.reset(HQ_NOT_FOUND);
        return;
      }
      // A small file comes from memory (StaticFiles: one stat, no open/read/close) and, as below,
      // its FIN leaves with its bytes.
      const small = (await files.open(file)).bytes;
      if (small !== undefined) {
        if (small.length > 0) await Promise.all([send.write(small), send.finish()]);
        else await send.finish();
        return;
      }
      // The FIN leaves with the file's last bytes (a write and finish() in the same tick share a
      // packet): one packet less per small file than a FIN on its own. The read stops at the size
      // seen now, so a file growing meanwhile cannot write past the FIN.
      const size = (await stat(file)).size;
      let left = size;
      if (size > 0) {
        for await (const chunk of createReadStream(file, { end: size - 1, highWaterMark: 256 * 1024 })) {
          left -= (chunk as Buffer).length;
          if (left > 0) await send.write(chunk as Buffer);
          else await Promise.all([send.write(chunk as Buffer), send.finish()]);
        }
      }
      if (left > 0 || size === 0) await send.finish(); // empty, or the file shrank while read
    })().catch(() => {
      try {
        send.reset(0x101n);
      } catch {
        // connection already gone
      }
    });
  }
}

/** Serves a connection with the protocol its ALPN names (HTTP/3 or hq-interop). */
async function dispatch(
  conn: QuicConnection,
  files: StaticFiles,
  serveH3: (conn: QuicConnection) => Promise<unknown>,
): Promise<void> {
  try {
    await conn.handshakeComplete;
  } catch {
    return;
  }
  if (conn.handshakeData.alpn === "h3") await serveH3(conn);
  else await serveConnection(conn, files);
}

export const serverCommand: Command = {
  name: "server",
  summary: "serve files over HTTP/3 and hq-interop",
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        listen: { type: "string" },
        root: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        alpn: { type: "string" },
        ciphers: { type: "string" },
        retry: { type: "boolean" },
        "early-data": { type: "boolean" },
        "max-streams": { type: "string" },
        "max-handshakes": { type: "string" },
        "preferred-address": { type: "string" },
        "disable-migration": { type: "boolean" },
        versions: { type: "string" },
        "key-update-interval": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if ((values.cert === undefined) !== (values.key === undefined)) {
      process.stderr.write("purequic server: --cert and --key go together\n");
      return 2;
    }
    let versions: number[] | undefined;
    let maxHandshakes: number | undefined;
    try {
      versions = values.versions ? parseVersionList(values.versions) : undefined;
      const mh = values["max-handshakes"];
      maxHandshakes = mh === undefined ? undefined : parsePositiveInteger("max-handshakes", mh);
    } catch (err) {
      process.stderr.write(`purequic server: ${(err as Error).message}\n`);
      return 2;
    }
    const keyUpdateInterval = Number(values["key-update-interval"] ?? 0);
    if (!Number.isInteger(keyUpdateInterval) || keyUpdateInterval < 0) {
      process.stderr.write("purequic server: --key-update-interval needs a packet count\n");
      return 2;
    }
    const { host, port } = parseHostPort(values.listen ?? "127.0.0.1:4433");
    const root = await realpath(values.root ?? (await makeDemoRoot()));
    const alpn = (values.alpn ?? "h3,hq-interop").split(",").filter(Boolean);
    const server = await listen({
      host,
      port,
      alpn,
      certificatePem: values.cert ? readPem(values.cert) : undefined,
      privateKeyPem: values.key ? readPem(values.key) : undefined,
      retry: values.retry ? "always" : "never",
      maxHandshakes,
      earlyData: values["early-data"] === true,
      cipherSuites: values.ciphers ? parseCipherList(values.ciphers) : undefined,
      transport:
        values["max-streams"] || values["disable-migration"] || keyUpdateInterval > 0
          ? {
              ...(values["max-streams"] ? { maxConcurrentBidiStreams: Number(values["max-streams"]) } : {}),
              ...(values["disable-migration"] ? { disableActiveMigration: true } : {}),
              ...(keyUpdateInterval > 0 ? { keyUpdateInterval } : {}),
            }
          : undefined,
      versions,
      preferredAddress: values["preferred-address"] ? parseHostPort(values["preferred-address"]) : undefined,
    });
    const a = server.address;
    const shown = a.family === "IPv6" ? `[${a.address}]` : a.address;
    process.stdout.write(
      `purequic server listening on udp ${shown}:${a.port}, ALPN ${alpn.join(",")}, serving ${root}${values.retry ? ", Retry on" : ""}${values["early-data"] ? ", 0-RTT on" : ""}\n`,
    );
    const pa = server.preferredAddress;
    if (pa) {
      const host = pa.family === "IPv6" ? `[${pa.address}]` : pa.address;
      process.stdout.write(`preferred address udp ${host}:${pa.port}\n`);
    }
    if (server.devCertificate) {
      const d = server.devCertificate;
      process.stdout.write(
        `development certificate for localhost, 127.0.0.1, ::1 (valid until ${d.notAfter.toISOString()})\n` +
          `  certificate sha-256: ${d.certificateSha256Hex}\n` +
          `  SPKI sha-256 (base64): ${d.spkiSha256Base64}\n`,
      );
    }
    process.stdout.write(
      `fetch with: bin/purequic get --insecure https://localhost:${a.port}/index.html\n` +
        `        or: bin/purequic get --cert-hash ${server.devCertificate?.certificateSha256Hex ?? "<sha256>"} https://127.0.0.1:${a.port}/10MB.bin\n`,
    );
    // WebTransport (draft-02, Chromium's): /webtransport/echo echoes streams and datagrams,
    // /webtransport/chat is a chat room, /webtransport.html the demo page for both.
    // One cache of resolved paths and small files for both protocols.
    const staticFiles = new StaticFiles((path) => resolveFile(root, path));
    const files = fileHandler(staticFiles);
    const demoPage = webTransportDemoPage(server.devCertificate?.certificateSha256Hex);
    const chat = new ChatRoom();
    const h3 = createWebTransportServer(
      {
        shutdownTimeoutMs: 2000,
        accept: (req) =>
          req.url.pathname === "/webtransport/echo" || req.url.pathname === "/webtransport/chat" ? true : 404,
        onSession: (session, req) => {
          void (req.url.pathname === "/webtransport/chat" ? chat.join(session) : echoSession(session));
        },
      },
      (req, info) =>
        new URL(req.url).pathname === "/webtransport.html"
          ? new Response(demoPage, { headers: { "content-type": "text/html; charset=utf-8" } })
          : files(req, info),
    );
    const local = shown;
    process.stdout.write(
      `WebTransport echo: https://${local}:${a.port}/webtransport/echo (chat: /webtransport/chat)\n` +
        `  demo page: https://${local}:${a.port}/webtransport.html — open it in Chromium with\n` +
        `    chromium --origin-to-force-quic-on=${local}:${a.port}` +
        (server.devCertificate
          ? ` --ignore-certificate-errors-spki-list=${server.devCertificate.spkiSha256Base64}`
          : "") +
        ` https://${local}:${a.port}/webtransport.html\n` +
        (server.devCertificate
          ? `  from any page: new WebTransport("https://127.0.0.1:${a.port}/webtransport/echo", { serverCertificateHashes: [{ algorithm: "sha-256", value: <bytes of ${server.devCertificate.certificateSha256Hex}> }] })\n`
          : ""),
    );
    const stop = () => {
      // One line of counters on the way out (the interop runner reads it).
      process.stdout.write(`purequic server stats: ${JSON.stringify(server.stats())}\n`);
      // HTTP/3 connections get a GOAWAY and a moment to finish (RFC 9114 §5.2).
      void h3
        .close()
        .catch(() => {})
        .then(() => server.close())
        .then(() => process.exit(0));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    for await (const conn of server) void dispatch(conn, staticFiles, h3.serve).catch(() => {});
    return 0;
  },
};
