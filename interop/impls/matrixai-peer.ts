/**
 * An hq-interop client and server on @matrixai/quic (a Node binding of Cloudflare quiche 0.18),
 * for the interop matrix (interop/impls/matrixai.ts). Same command line and output as our quinn
 * and quic-go peers (interop/peers/README.md):
 *
 *   tsx interop/impls/matrixai-peer.ts server --listen HOST:PORT --cert PEM --key PEM --root DIR
 *   tsx interop/impls/matrixai-peer.ts client (--insecure | --ca PEM) [--server-name NAME]
 *       [--output DIR] [--each] [--max-data BYTES] URL...
 *
 * The package is not a dependency of purequic: interop/impls/install-matrixai.sh installs it into
 * $PURQUIC_CACHE/interop/matrixai (default <repo>/.cache/interop/matrixai), where this script
 * loads it from. The server prints `listening on HOST:PORT` when ready. The client fetches all
 * URLs concurrently (at most 50 at once) on one connection (`--each`: one connection per URL, in
 * turn; `--max-data`: its initial_max_data, for diagnosis) and exits 0 only if every file
 * arrived complete. hq-interop: per file one bidirectional stream carrying
 * `GET /path\r\n` and FIN; the server answers with the file and FIN, or resets the stream
 * (0x194 missing file, 0x190 bad request). quiche's server always sends a stateless Retry first.
 */
import { createHmac, randomFillSync, timingSafeEqual } from "node:crypto";
import { createWriteStream, existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, normalize, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const repo = join(dirname(new URL(import.meta.url).pathname), "../..");
const cacheDir = join(process.env.PURQUIC_CACHE ?? join(repo, ".cache"), "interop/matrixai");
const entry = join(cacheDir, "node_modules/@matrixai/quic/dist/index.js");
if (!existsSync(entry)) {
  process.stderr.write(`matrixai-peer: ${entry} missing: run interop/impls/install-matrixai.sh\n`);
  process.exit(2);
}

// The few parts of @matrixai/quic's API used here (its types are not visible from the repo).
interface QuicStream {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  cancel(reason?: unknown): void;
}
interface QuicConnection extends EventTarget {
  newStream(type?: "bidi" | "uni"): QuicStream;
  /** The quiche connection (public at run time, protected in the typings). */
  conn: { peerStreamsLeftBidi(): number };
}
interface QuicModule {
  QUICServer: new (
    opts: unknown,
  ) => EventTarget & {
    start(opts: { host: string; port: number; ipv6Only?: boolean }): Promise<void>;
    readonly host: string;
    readonly port: number;
    stop(opts?: { force?: boolean }): Promise<void>;
  };
  QUICClient: {
    createQUICClient(
      opts: unknown,
      ctx?: { timer?: number },
    ): Promise<{ connection: QuicConnection; destroy(opts?: { force?: boolean }): Promise<void> }>;
  };
  events: Record<string, { name: string }>;
}
const quic = (await import(pathToFileURL(entry).href)) as QuicModule;

const HQ_FILE_NOT_FOUND = 0x194;
const HQ_BAD_REQUEST = 0x190;
const IDLE_TIMEOUT_MS = 30_000;
const MAX_PARALLEL_STREAMS = 50;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    listen: { type: "string" },
    cert: { type: "string" },
    key: { type: "string" },
    root: { type: "string" },
    ca: { type: "string" },
    insecure: { type: "boolean" },
    "server-name": { type: "string" },
    output: { type: "string" },
    each: { type: "boolean" },
    timeout: { type: "string" },
    "max-data": { type: "string" },
  },
});
const [command, ...urls] = positionals;

/** hostname, port of "HOST:PORT" or "[V6]:PORT". */
function splitHostPort(s: string): [string, number] {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(s);
  if (!m) throw new Error(`bad HOST:PORT ${s}`);
  return [m[1], Number(m[2])];
}

async function readAll(readable: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of readable) {
    length += chunk.length;
    if (length > limit) throw new Error(`more than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}

async function serve(): Promise<void> {
  const [host, port] = splitHostPort(values.listen ?? "127.0.0.1:0");
  const root = resolve(values.root ?? ".");
  // quiche's server derives connection IDs and Retry tokens with these HMAC operations.
  const tokenKey = randomFillSync(new Uint8Array(32)).buffer;
  const hmac = (key: ArrayBuffer, data: ArrayBuffer) =>
    createHmac("sha256", Buffer.from(key)).update(Buffer.from(data)).digest();
  const server = new quic.QUICServer({
    // The reason given to abort() is the hq-interop error code of the RESET_STREAM.
    reasonToCode: (_type: string, reason: unknown) => (typeof reason === "number" ? reason : 0),
    crypto: {
      key: tokenKey,
      ops: {
        sign: async (key: ArrayBuffer, data: ArrayBuffer) => {
          const mac = hmac(key, data);
          return mac.buffer.slice(mac.byteOffset, mac.byteOffset + mac.length);
        },
        verify: async (key: ArrayBuffer, data: ArrayBuffer, sig: ArrayBuffer) => {
          const mac = hmac(key, data);
          return mac.length === sig.byteLength && timingSafeEqual(mac, Buffer.from(sig));
        },
      },
    },
    config: {
      key: readFileSync(values.key ?? "key.pem", "utf8"),
      cert: readFileSync(values.cert ?? "cert.pem", "utf8"),
      applicationProtos: ["hq-interop"],
      verifyPeer: false,
      maxIdleTimeout: IDLE_TIMEOUT_MS,
      logKeys: process.env.SSLKEYLOGFILE,
    },
  });
  server.addEventListener(quic.events.EventQUICServerConnection.name, (evt) => {
    const conn = (evt as CustomEvent<QuicConnection>).detail;
    conn.addEventListener(quic.events.EventQUICConnectionStream.name, (e) => {
      void answer((e as CustomEvent<QuicStream>).detail, root).catch((err) =>
        process.stderr.write(`request failed: ${(err as Error).message}\n`),
      );
    });
  });
  await server.start({ host, port, ipv6Only: host.includes(":") });
  process.stdout.write(
    `listening on ${host.includes(":") ? `[${server.host}]` : server.host}:${server.port}\n`,
  );
  const stop = () => void server.stop({ force: true }).finally(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

const verbose = !!process.env.MATRIXAI_PEER_VERBOSE;

/**
 * Writes `data` and the FIN on `stream`. quiche 0.18 loses a zero-length FIN written at an offset
 * the peer has already acknowledged (cloudflare/quiche#2525: the stream is collected before any
 * frame carries the FIN, and the peer never sees the end of the stream). @matrixai/quic's
 * `writable.close()` always writes such a separate FIN, and a peer that acknowledges quickly
 * (purequic does) hits it about every other time. So the bytes go to quiche directly with the FIN
 * on the last of them, and the WritableStream is never closed.
 */
async function sendAll(stream: QuicStream, data: Uint8Array): Promise<void> {
  const s = stream as unknown as {
    streamId: number;
    connection: {
      send(): Promise<void>;
      conn: { streamSend(id: number, b: Uint8Array, fin: boolean): number | null };
    };
  };
  let rest = data;
  for (;;) {
    // quiche takes what flow control and its buffer allow; the FIN only with the last byte.
    const n = s.connection.conn.streamSend(s.streamId, rest, true) ?? 0;
    await s.connection.send();
    if (n === rest.length) return;
    rest = rest.subarray(n);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function answer(stream: QuicStream, root: string): Promise<void> {
  if (verbose) process.stderr.write("stream accepted\n");
  const request = new TextDecoder().decode(await readAll(stream.readable, 4096));
  if (verbose) process.stderr.write(`request ${JSON.stringify(request)}\n`);
  const m = /^GET (\/[^\r\n ]*)\r?\n?$/.exec(request);
  if (!m) {
    await stream.writable.abort(HQ_BAD_REQUEST);
    return;
  }
  const path = normalize(join(root, decodeURIComponent(m[1])));
  if (!path.startsWith(`${root}/`) || !existsSync(path) || !statSync(path).isFile()) {
    await stream.writable.abort(HQ_FILE_NOT_FOUND);
    return;
  }
  await sendAll(stream, readFileSync(path));
  if (verbose) process.stderr.write(`sent ${path}\n`);
}

async function get(): Promise<number> {
  if (urls.length === 0) throw new Error("no URL");
  const parsed = urls.map((u) => new URL(u));
  const origin = parsed[0].host;
  if (parsed.some((u) => u.host !== origin)) throw new Error("all URLs must name the same HOST:PORT");
  const host = parsed[0].hostname.replace(/^\[|\]$/g, "");
  const port = Number(parsed[0].port || 443);
  const output = values.output;
  const deadline = Date.now() + Number(values.timeout ?? 60) * 1000;
  const connect = () =>
    quic.QUICClient.createQUICClient(
      {
        host: host === "localhost" ? "127.0.0.1" : host,
        port,
        serverName: values["server-name"] ?? host,
        crypto: { ops: { randomBytes: async (b: ArrayBuffer) => void randomFillSync(new Uint8Array(b)) } },
        config: {
          ca: values.ca ? readFileSync(values.ca, "utf8") : undefined,
          verifyPeer: !values.insecure,
          applicationProtos: ["hq-interop"],
          maxIdleTimeout: IDLE_TIMEOUT_MS,
          logKeys: process.env.SSLKEYLOGFILE,
          ...(values["max-data"] ? { initialMaxData: Number(values["max-data"]) } : {}),
        },
      },
      { timer: Math.max(1, deadline - Date.now()) },
    );
  const fetchOne = async (conn: QuicConnection, url: URL): Promise<number> => {
    // quiche's own count of the streams the peer still allows (MAX_STREAMS); opening one more
    // would break @matrixai/quic's stream ID bookkeeping for good.
    while (conn.conn.peerStreamsLeftBidi() === 0) {
      if (Date.now() > deadline) throw new Error("timed out waiting for MAX_STREAMS");
      await new Promise((r) => setTimeout(r, 5));
    }
    const stream = conn.newStream("bidi");
    // The request and its FIN in one write, straight to quiche: see sendAll().
    await sendAll(stream, new TextEncoder().encode(`GET ${url.pathname}\r\n`));
    let bytes = 0;
    if (output) {
      const file = createWriteStream(join(output, basename(url.pathname)));
      for await (const chunk of stream.readable) {
        bytes += chunk.length;
        if (!file.write(chunk)) await new Promise<void>((r) => file.once("drain", () => r()));
      }
      await new Promise<void>((r, j) => file.end((e?: Error | null) => (e ? j(e) : r())));
    } else for await (const chunk of stream.readable) bytes += chunk.length;
    return bytes;
  };
  const started = performance.now();
  let total = 0;
  let ok = 0;
  const groups = values.each ? parsed.map((u) => [u]) : [parsed];
  for (const group of groups) {
    const client = await connect();
    // @matrixai/quic throws instead of waiting when a new stream would pass the peer's
    // MAX_STREAMS limit: keep well below the usual 100 and let finished streams raise it.
    let next = 0;
    const worker = async () => {
      while (next < group.length) {
        const url = group[next++];
        try {
          const bytes = await fetchOne(client.connection, url);
          total += bytes;
          ok++;
        } catch (err) {
          process.stderr.write(`${url.href}: ${(err as Error)?.message ?? err}\n`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_PARALLEL_STREAMS, group.length) }, worker));
    // force: the request streams' WritableStreams were never closed (sendAll), and a graceful
    // destroy waits for them forever. Every response has been read to its end by now.
    await client.destroy({ force: true });
  }
  const secs = (performance.now() - started) / 1000;
  process.stdout.write(
    `RESULT peer=matrixai ok=${ok === parsed.length ? 1 : 0} files=${ok}/${parsed.length} bytes=${total} elapsed_s=${secs.toFixed(3)}\n`,
  );
  return ok === parsed.length ? 0 : 1;
}

try {
  if (command === "server") await serve();
  else if (command === "client") process.exit(await get());
  else {
    process.stderr.write("usage: matrixai-peer.ts server|client ... (see the top of this file)\n");
    process.exit(2);
  }
} catch (err) {
  process.stderr.write(`matrixai-peer: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
}
