/**
 * `purequic get`: downloads URLs over hq-interop, all on one connection with one stream each,
 * concurrently, into --output DIR/<basename>. Exit 0 only when every file arrived whole.
 */
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { Presets, SingleBar } from "cli-progress";
import { connect, describeReason, type QuicConnection, readPem } from "../quic/api.ts";
import { parseCipherList } from "./ciphers.ts";
import type { Command } from "./command.ts";

const HELP = `Usage: purequic get [options] URL...

Fetches every URL (https://HOST:PORT/path, one origin) over one QUIC connection with hq-interop,
one stream per URL, and saves each file as DIR/<basename>.

Options:
  --output DIR        where to save files (default .)
  --ca FILE           trust this PEM root instead of the system roots
  --insecure          do not verify the server certificate
  --cert-hash HEX     accept the server certificate with this SHA-256 (as WebTransport does)
  --alpn LIST         comma-separated ALPN protocols (default hq-interop)
  --ciphers LIST      TLS cipher suites to offer, e.g. TLS_CHACHA20_POLY1305_SHA256
  --server-name NAME  name for SNI and certificate checks (default: the URL's host)
  -q, --quiet         no progress output
  -h, --help          show this help
`;

interface Result {
  url: string;
  file: string;
  bytes: number;
  ok: boolean;
  error?: string;
}

async function fetchOne(
  conn: QuicConnection,
  url: URL,
  dir: string,
  onBytes: (n: number) => void,
): Promise<Result> {
  const file = join(dir, basename(url.pathname) || "index.html");
  const result: Result = { url: url.href, file, bytes: 0, ok: false };
  try {
    const { send, recv } = await conn.openBi();
    await send.write(new TextEncoder().encode(`GET ${url.pathname}\r\n`));
    void send.finish().catch(() => {});
    const out = createWriteStream(file);
    // Stream chunks are packet-sized: gather them into larger writes (fewer syscalls).
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const block = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (!out.write(block)) await new Promise<void>((r) => out.once("drain", () => r()));
    };
    try {
      for await (const chunk of recv) {
        result.bytes += chunk.length;
        onBytes(chunk.length);
        pending.push(chunk.slice());
        pendingBytes += chunk.length;
        if (pendingBytes >= 256 * 1024) await flush();
      }
      await flush();
    } finally {
      await new Promise<void>((resolve, reject) =>
        out.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
    }
    result.ok = true;
  } catch (err) {
    result.error = (err as Error).message;
  }
  return result;
}

export const getCommand: Command = {
  name: "get",
  summary: "download files over QUIC (hq-interop), concurrently on one connection",
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
        alpn: (values.alpn ?? "hq-interop").split(",").filter(Boolean),
        cipherSuites: values.ciphers ? parseCipherList(values.ciphers) : undefined,
        insecure: values.insecure,
        ca: values.ca ? readPem(values.ca) : undefined,
        serverCertificateHashes: values["cert-hash"]
          ? [Uint8Array.from(Buffer.from(values["cert-hash"], "hex"))]
          : undefined,
      });
    } catch (err) {
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
    let total = 0;
    bar?.start(0, 0, { speed: "0", files: `0/${urls.length}` });
    let filesDone = 0;
    const results = await Promise.all(
      urls.map((u) =>
        fetchOne(conn, u, dir, (n) => {
          total += n;
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
    const elapsed = (performance.now() - started) / 1000;
    await conn.close(0n, "done").catch(() => {});
    const failed = results.filter((r) => !r.ok);
    for (const r of failed) process.stderr.write(`purequic get: ${r.url}: ${r.error}\n`);
    if (!values.quiet) {
      const mbit = (total * 8) / 1e6 / elapsed;
      process.stdout.write(
        `${results.length - failed.length}/${results.length} files, ${total} bytes in ${elapsed.toFixed(2)} s (${mbit.toFixed(1)} Mbit/s)\n`,
      );
    }
    const reason = conn.closeReason;
    if (failed.length > 0 && reason && reason.kind !== "application") {
      process.stderr.write(`purequic get: connection: ${describeReason(reason)}\n`);
    }
    return failed.length === 0 ? 0 : 1;
  },
};
