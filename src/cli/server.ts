/**
 * `purequic server`: serves files over hq-interop (the QUIC Interop Runner's HTTP/0.9 over QUIC:
 * a bidi stream carries `GET /path\r\n`, the reply is the file's bytes then FIN; a missing file
 * resets the stream). Without --cert/--key a development certificate is generated.
 */

import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, realpath, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { listen, type QuicConnection, readPem } from "../quic/api.ts";
import { parseCipherList } from "./ciphers.ts";
import type { Command } from "./command.ts";
import { parseHostPort } from "./hostport.ts";

const HELP = `Usage: purequic server [options]

Serves the files under --root with hq-interop (GET /path over a bidirectional stream).

Options:
  --listen HOST:PORT  address to listen on (default 127.0.0.1:4433)
  --root DIR          directory to serve (default: a generated demo directory)
  --cert FILE         PEM certificate chain (default: a generated development certificate)
  --key FILE          PEM private key
  --alpn LIST         comma-separated ALPN protocols (default hq-interop)
  --ciphers LIST      TLS cipher suites to accept, e.g. TLS_CHACHA20_POLY1305_SHA256
  --max-streams N     concurrent bidirectional streams a client may open (default 100)
  --retry             validate every client address with a Retry first (RFC 9000 §8.1.2)
  -h, --help          show this help
`;

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

async function serveConnection(conn: QuicConnection, root: string): Promise<void> {
  for (let bi = await conn.acceptBi(); bi; bi = await conn.acceptBi()) {
    const { send, recv } = bi;
    void (async () => {
      const request = new TextDecoder().decode(await recv.readAll(MAX_REQUEST));
      const m = /^GET (\S+)\s*$/.exec(request);
      const file = m ? await resolveFile(root, m[1]) : undefined;
      if (!file) {
        send.reset(HQ_NOT_FOUND);
        return;
      }
      for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
        await send.write(chunk as Buffer);
      }
      await send.finish();
    })().catch(() => {
      try {
        send.reset(0x101n);
      } catch {
        // connection already gone
      }
    });
  }
}

export const serverCommand: Command = {
  name: "server",
  summary: "serve files over QUIC (hq-interop)",
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
        "max-streams": { type: "string" },
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
    const { host, port } = parseHostPort(values.listen ?? "127.0.0.1:4433");
    const root = await realpath(values.root ?? (await makeDemoRoot()));
    const alpn = (values.alpn ?? "hq-interop").split(",").filter(Boolean);
    const server = await listen({
      host,
      port,
      alpn,
      certificatePem: values.cert ? readPem(values.cert) : undefined,
      privateKeyPem: values.key ? readPem(values.key) : undefined,
      retry: values.retry ? "always" : "never",
      cipherSuites: values.ciphers ? parseCipherList(values.ciphers) : undefined,
      transport: values["max-streams"]
        ? { maxConcurrentBidiStreams: Number(values["max-streams"]) }
        : undefined,
    });
    const a = server.address;
    const shown = a.family === "IPv6" ? `[${a.address}]` : a.address;
    process.stdout.write(
      `purequic server listening on udp ${shown}:${a.port}, ALPN ${alpn.join(",")}, serving ${root}${values.retry ? ", Retry on" : ""}\n`,
    );
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
    const stop = () => {
      // One line of counters on the way out (the interop runner reads it).
      process.stdout.write(`purequic server stats: ${JSON.stringify(server.stats())}\n`);
      void server.close().then(() => process.exit(0));
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    for await (const conn of server) void serveConnection(conn, root).catch(() => {});
    return 0;
  },
};
