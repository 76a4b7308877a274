/**
 * Does a real Chromium accept purequic's generated development certificate through WebTransport's
 * `serverCertificateHashes`? There is no HTTP/3 layer yet, so the WebTransport session itself cannot
 * succeed: what is measured is on the purequic server side.
 *
 *   right hash: the QUIC handshake completes (the server receives Chromium's Finished, which Chromium
 *               only sends after it verified the certificate against the hash), ALPN is h3, and
 *               Chromium then opens its HTTP/3 unidirectional streams (control, QPACK).
 *   wrong hash: the handshake never completes; Chromium closes the connection (CRYPTO_ERROR expected).
 *
 * The page is served over plain HTTP from 127.0.0.1 (a secure context: loopback is potentially
 * trustworthy), and Chromium runs headless via playwright-core on Debian's /usr/lib/chromium/chromium
 * (interop/chromium/install.sh installs both). No `--ignore-certificate-errors-spki-list` is passed.
 *
 *   npx tsx interop/chromium/cert-hash.ts [--case right|wrong]... [--host 127.0.0.1|localhost]
 *       [--timeout MS] [--chromium PATH] [--log-dir DIR] [--keep-logs] [--verbose]
 *
 * Prints one result line per case and "N passed, M failed"; exits non-zero on any failure. Logs
 * (Chromium net-log, console, server events) go to a temporary directory that is kept and printed
 * when a case fails or with --keep-logs / --log-dir.
 *
 * Importable: `runChromiumCertHashChecks(options)` returns one `CertHashResult` per case and
 * cleans up after itself (browser, QUIC server, HTTP server).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { Browser, ConsoleMessage } from "playwright-core";
import { chromium } from "playwright-core";
import {
  ConnectionClosedError,
  describeReason,
  listen,
  type QuicConnection,
  type QuicServer,
} from "../../src/quic/api.ts";
import type { ConnectionCloseReason } from "../../src/quic/connection/config.ts";

export const DEFAULT_CHROMIUM = "/usr/lib/chromium/chromium";

export type CertHashCase = "right" | "wrong";

export interface CertHashOptions {
  /** Cases to run, in order. Default both. */
  readonly cases?: readonly CertHashCase[];
  /** Host name the page and the WebTransport URL use: "127.0.0.1" (default) or "localhost". */
  readonly host?: "127.0.0.1" | "localhost";
  /** Upper bound for one case, ms. Default 30 000. */
  readonly timeoutMs?: number;
  readonly chromiumPath?: string;
  /** Where logs go; default a fresh temporary directory. */
  readonly logDir?: string;
  /** Keep the log directory even when every case passed. */
  readonly keepLogs?: boolean;
  /** Progress lines go here (default: nowhere). */
  readonly log?: (line: string) => void;
}

export interface CertHashResult {
  readonly name: string;
  readonly ok: boolean;
  /** One line: what happened. */
  readonly detail: string;
  /** Wall time of the case, ms (browser start to verdict). */
  readonly ms: number;
  /** The case's log directory, when it was kept. */
  readonly logDir?: string;
}

/** What the purequic server saw of one incoming connection. */
interface ConnectionObservation {
  readonly conn: QuicConnection;
  readonly remote: string;
  readonly acceptedAt: number;
  handshakeAt?: number;
  alpn?: string;
  serverName?: string;
  cipherSuite?: string;
  readonly uni: StreamObservation[];
  readonly bidi: StreamObservation[];
  /** When the close was first known (handshake rejection or the end of draining). */
  closeSeenAt?: number;
  /** When conn.closed resolved (after draining). */
  closedAt?: number;
  closeReason?: ConnectionCloseReason;
}

interface StreamObservation {
  readonly id: number;
  readonly at: number;
  bytes: Uint8Array;
  fin: boolean;
}

const STREAM_CAPTURE_LIMIT = 4096;

// -------------------------------------------------------------------------------------------------
// Small HTTP/3 decoding helpers, only to describe what Chromium sent.

function readVarint(b: Uint8Array, pos: number): { value: number; next: number } | undefined {
  if (pos >= b.length) return undefined;
  const len = 1 << (b[pos] >> 6);
  if (pos + len > b.length) return undefined;
  let v = b[pos] & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + b[pos + i];
  return { value: v, next: pos + len };
}

const UNI_STREAM_TYPES: Record<number, string> = {
  0: "control",
  1: "push",
  2: "qpack-encoder",
  3: "qpack-decoder",
  84: "webtransport",
};

const SETTING_NAMES: Record<number, string> = {
  1: "QPACK_MAX_TABLE_CAPACITY",
  6: "MAX_FIELD_SECTION_SIZE",
  7: "QPACK_BLOCKED_STREAMS",
  8: "ENABLE_CONNECT_PROTOCOL",
  51: "H3_DATAGRAM",
  16765559: "H3_DATAGRAM(draft04)",
  727725890: "ENABLE_WEBTRANSPORT(draft02)",
  3329323114: "WEBTRANS_MAX_SESSIONS(draft07)",
};

/** "control[SETTINGS ...]", "qpack-encoder", "type 0x21 (reserved)" … */
function describeUniStream(s: StreamObservation): string {
  const t = readVarint(s.bytes, 0);
  if (!t) return `stream ${s.id} (no type yet)`;
  const name = UNI_STREAM_TYPES[t.value] ?? `type 0x${t.value.toString(16)}`;
  if (t.value !== 0x00) return name;
  // Control stream: the first frame must be SETTINGS (type 0x04).
  const ft = readVarint(s.bytes, t.next);
  const fl = ft && readVarint(s.bytes, ft.next);
  if (!ft || !fl) return name;
  if (ft.value !== 0x04) return `${name}[first frame 0x${ft.value.toString(16)}]`;
  const end = fl.next + fl.value;
  if (end > s.bytes.length) return `${name}[SETTINGS truncated]`;
  const settings: string[] = [];
  for (let p = fl.next; p < end; ) {
    const id = readVarint(s.bytes, p);
    const val = id && readVarint(s.bytes, id.next);
    if (!id || !val || val.next > end) break;
    const grease = id.value >= 0x21 && (id.value - 0x21) % 0x1f === 0;
    const settingName = SETTING_NAMES[id.value] ?? `${grease ? "GREASE " : ""}0x${id.value.toString(16)}`;
    settings.push(`${settingName}=${val.value}`);
    p = val.next;
  }
  return `${name}[SETTINGS ${settings.join(" ")}]`;
}

/** TLS alert names for CRYPTO_ERROR codes 0x0100 + alert (RFC 9001 §4.8). */
const TLS_ALERTS: Record<number, string> = {
  10: "unexpected_message",
  40: "handshake_failure",
  42: "bad_certificate",
  43: "unsupported_certificate",
  44: "certificate_revoked",
  45: "certificate_expired",
  46: "certificate_unknown",
  47: "illegal_parameter",
  48: "unknown_ca",
  50: "decode_error",
  51: "decrypt_error",
  70: "protocol_version",
  80: "internal_error",
  109: "missing_extension",
  110: "unsupported_extension",
  112: "unrecognized_name",
  116: "certificate_required",
  120: "no_application_protocol",
};

function describeClose(r: ConnectionCloseReason | undefined): string {
  if (!r) return "not closed";
  // Chromium appends BoringSSL's error stack to its reason phrase: keep the line readable.
  if (r.kind === "transport" || r.kind === "application")
    r = { ...r, reason: r.reason.replace(/\.? ?SSLErrorStack:.*$/, "") };
  if (r.kind === "transport" && r.code >= 0x100 && r.code <= 0x1ff) {
    const alert = r.code - 0x100;
    return `${describeReason(r)} = CRYPTO_ERROR alert ${alert} ${TLS_ALERTS[alert] ?? ""}`.trim();
  }
  return describeReason(r);
}

function isCryptoError(r: ConnectionCloseReason | undefined): boolean {
  return r?.kind === "transport" && r.code >= 0x100 && r.code <= 0x1ff;
}

// -------------------------------------------------------------------------------------------------
// Server side

class Observer {
  readonly connections: ConnectionObservation[] = [];
  readonly events: string[] = [];
  private readonly t0 = Date.now();
  private waiters: (() => void)[] = [];

  constructor(private readonly log: (line: string) => void) {}

  now(): number {
    return Date.now() - this.t0;
  }

  note(line: string): void {
    const l = `[server +${this.now()}ms] ${line}`;
    this.events.push(l);
    this.log(l);
    this.changed();
  }

  changed(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves at the next change (or after `ms`). */
  nextChange(ms: number): Promise<void> {
    return new Promise((res) => {
      const t = setTimeout(res, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        res();
      });
    });
  }

  observe(conn: QuicConnection): void {
    const o: ConnectionObservation = {
      conn,
      remote: `${conn.remoteAddress.address}:${conn.remoteAddress.port}`,
      acceptedAt: this.now(),
      uni: [],
      bidi: [],
    };
    this.connections.push(o);
    this.note(`connection #${this.connections.length} from ${o.remote}`);
    conn.handshakeComplete.then(
      () => {
        o.handshakeAt = this.now();
        const hd = conn.handshakeData;
        o.alpn = hd.alpn;
        o.serverName = hd.serverName;
        o.cipherSuite = hd.cipherSuite;
        this.note(
          `handshake complete: alpn=${hd.alpn} sni=${hd.serverName ?? "(none)"} cipher=${hd.cipherSuite}`,
        );
      },
      (err: unknown) => {
        // Rejected as soon as the connection starts closing during the handshake: the reason is known
        // here, while conn.closed only resolves after the draining period (3 PTO).
        if (err instanceof ConnectionClosedError && !o.closeReason) {
          o.closeSeenAt = this.now();
          o.closeReason = err.reason;
          this.note(`handshake aborted: ${describeClose(err.reason)}`);
        }
      },
    );
    void conn.closed.then((r) => {
      o.closedAt = this.now();
      o.closeSeenAt ??= o.closedAt;
      o.closeReason ??= r;
      this.note(`connection closed: ${describeClose(r)}`);
    });
    void (async () => {
      for (let s = await conn.acceptUni(); s; s = await conn.acceptUni()) {
        const so: StreamObservation = { id: s.id, at: this.now(), bytes: new Uint8Array(0), fin: false };
        o.uni.push(so);
        this.note(`peer opened uni stream ${s.id}`);
        void this.capture(s, so, () => describeUniStream(so));
      }
    })();
    void (async () => {
      for (let b = await conn.acceptBi(); b; b = await conn.acceptBi()) {
        const so: StreamObservation = { id: b.recv.id, at: this.now(), bytes: new Uint8Array(0), fin: false };
        o.bidi.push(so);
        this.note(`peer opened bidi stream ${b.recv.id}`);
        void this.capture(b.recv, so, () => `${so.bytes.length} bytes`);
      }
    })();
  }

  private async capture(
    s: { read(): Promise<Uint8Array | null> },
    so: StreamObservation,
    describe: () => string,
  ): Promise<void> {
    try {
      for (let c = await s.read(); c; c = await s.read()) {
        if (so.bytes.length < STREAM_CAPTURE_LIMIT) {
          const merged = new Uint8Array(so.bytes.length + c.length);
          merged.set(so.bytes);
          merged.set(c, so.bytes.length);
          so.bytes = merged;
          this.note(`stream ${so.id}: ${describe()}`);
        }
      }
      so.fin = true;
    } catch {
      // connection closed or stream reset: what was captured stays
    }
  }
}

// -------------------------------------------------------------------------------------------------
// The page

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>purequic serverCertificateHashes check</title>
<script>
function hexToBytes(hex) {
  const b = new Uint8Array(hex.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(hex.substr(2 * i, 2), 16);
  return b;
}
function describeError(e) {
  let s = String(e && e.name) + ": " + String(e && e.message);
  if (e && e.source !== undefined) s += " source=" + e.source;
  if (e && e.streamErrorCode !== undefined && e.streamErrorCode !== null) s += " streamErrorCode=" + e.streamErrorCode;
  return s;
}
window.wtEvents = [];
function report(line) {
  window.wtEvents.push(line);
  console.log("wt: " + line);
}
window.startWebTransport = function (url, hashHex) {
  if (!window.isSecureContext) return "not a secure context";
  if (typeof WebTransport !== "function") return "WebTransport is not available";
  let wt;
  try {
    wt = new WebTransport(url, {
      serverCertificateHashes: [{ algorithm: "sha-256", value: hexToBytes(hashHex) }],
    });
  } catch (e) {
    return "constructor threw " + describeError(e);
  }
  window.wt = wt;
  wt.ready.then(() => report("ready"), (e) => report("ready rejected: " + describeError(e)));
  wt.closed.then((i) => report("closed: " + JSON.stringify(i)), (e) => report("closed rejected: " + describeError(e)));
  return "started";
};
</script>
<p>purequic serverCertificateHashes check</p>
`;

function startHttp(host: string): Promise<Server> {
  return new Promise((res, rej) => {
    const srv = createServer((req, resp) => {
      if (req.url === "/" || req.url === "/index.html") {
        resp.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        resp.end(PAGE);
      } else if (req.url === "/favicon.ico") {
        resp.writeHead(204).end();
      } else {
        resp.writeHead(404).end();
      }
    });
    srv.on("error", rej);
    srv.listen(0, host, () => res(srv));
  });
}

// -------------------------------------------------------------------------------------------------
// Net-log summary: Chromium's own account of the QUIC session.

/** The QUIC-related error lines of a net-log written by --log-net-log (needs a clean browser.close()). */
export function summarizeNetLog(file: string): string[] {
  if (!existsSync(file)) return ["(no net-log)"];
  let log: { constants?: { logEventTypes?: Record<string, number> }; events?: NetLogEvent[] };
  try {
    log = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    // Chromium was killed before it closed the JSON: salvage what was written.
    const text = readFileSync(file, "utf8").replace(/,\s*$/, "");
    try {
      log = JSON.parse(`${text}]}`);
    } catch {
      return ["(net-log is not valid JSON)"];
    }
  }
  const names = new Map<number, string>();
  for (const [k, v] of Object.entries(log.constants?.logEventTypes ?? {})) names.set(v, k);
  const out: string[] = [];
  for (const e of log.events ?? []) {
    const name = names.get(e.type) ?? String(e.type);
    if (!/QUIC|WEB_TRANSPORT|CERT/.test(name) || name === "CERT_VERIFY_PROC_CREATED") continue;
    const p = e.params ?? {};
    const interesting =
      /CLOSE|ERROR|FAIL|WEB_TRANSPORT|CERT_VERIFY|CRYPTO_HANDSHAKE|HANDSHAKE/.test(name) ||
      "net_error" in p ||
      "quic_error" in p ||
      "error" in p;
    if (!interesting) continue;
    const params = Object.entries(p)
      .filter(([k]) => !/^(certificates|cert|certificate|connection_id|source_dependency)$/.test(k))
      .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
      .join(" ")
      .slice(0, 300);
    const line = `${name}${e.phase === 1 ? " BEGIN" : e.phase === 2 ? " END" : ""} ${params}`.trim();
    if (out[out.length - 1] !== line) out.push(line);
  }
  return out.length > 0 ? out : ["(no QUIC/WebTransport errors in the net-log)"];
}

interface NetLogEvent {
  readonly type: number;
  readonly phase?: number;
  readonly params?: Record<string, unknown>;
}

// -------------------------------------------------------------------------------------------------
// One case

function chromiumArgs(netLog: string): string[] {
  return [
    `--log-net-log=${netLog}`,
    "--net-log-capture-mode=Everything",
    "--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebTransport",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-dev-shm-usage",
  ];
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

async function runCase(
  kind: CertHashCase,
  opts: Required<Pick<CertHashOptions, "host" | "timeoutMs" | "chromiumPath">>,
  dir: string,
  log: (line: string) => void,
): Promise<{ ok: boolean; detail: string; ms: number }> {
  const started = Date.now();
  const deadline = started + opts.timeoutMs;
  const observer = new Observer(log);
  const consoleLines: string[] = [];
  const netLog = join(dir, "netlog.json");
  let quic: QuicServer | undefined;
  let http: Server | undefined;
  let browser: Browser | undefined;
  let acceptLoop: Promise<void> | undefined;
  try {
    quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
    const dev = quic.devCertificate;
    if (!dev) throw new Error("purequic server has no development certificate");
    const server = quic;
    acceptLoop = (async () => {
      for await (const conn of server) observer.observe(conn);
    })();
    const hash = Uint8Array.from(dev.certificateSha256);
    if (kind === "wrong") hash[0] ^= 0xff;
    const hashHex = Buffer.from(hash).toString("hex");
    writeFileSync(join(dir, "cert.pem"), dev.certificatePem);
    observer.note(
      `purequic listening on 127.0.0.1:${quic.address.port}, cert sha-256 ${dev.certificateSha256Hex}, ` +
        `valid ${dev.notBefore.toISOString()} .. ${dev.notAfter.toISOString()}; page passes ${hashHex}`,
    );

    http = await startHttp("127.0.0.1");
    const httpPort = (http.address() as AddressInfo).port;
    const pageUrl = `http://${opts.host}:${httpPort}/`;
    const wtUrl = `https://${opts.host}:${quic.address.port}/`;

    browser = await withTimeout(
      chromium.launch({ executablePath: opts.chromiumPath, headless: true, args: chromiumArgs(netLog) }),
      Math.max(1000, deadline - Date.now()),
      "launching Chromium",
    );
    observer.note(`Chromium ${browser.version()} launched`);
    const page = await browser.newPage();
    const onConsole = (m: ConsoleMessage) => {
      const l = `[console +${observer.now()}ms] ${m.type()}: ${m.text()}`;
      consoleLines.push(l);
      log(l);
      observer.changed();
    };
    page.on("console", onConsole);
    page.on("pageerror", (e) => consoleLines.push(`[pageerror +${observer.now()}ms] ${e.message}`));
    await page.goto(pageUrl, { timeout: Math.max(1000, deadline - Date.now()) });
    const tStart = observer.now();
    const started_ = String(
      await page.evaluate(`startWebTransport(${JSON.stringify(wtUrl)}, ${JSON.stringify(hashHex)})`),
    );
    observer.note(`page ${pageUrl}: new WebTransport(${wtUrl}) -> ${started_}`);
    if (started_ !== "started") return { ok: false, detail: `page: ${started_}`, ms: Date.now() - started };

    const rejected = () => consoleLines.some((l) => l.includes("wt: ready rejected"));
    let verdict: { ok: boolean; detail: string } | undefined;
    let rejectedAt: number | undefined;
    while (!verdict) {
      const conns = observer.connections;
      const hs = conns.find((c) => c.handshakeAt !== undefined);
      if (kind === "right") {
        if (hs && hs.uni.length > 0) {
          // Give Chromium a moment to open its remaining streams and fill the control stream:
          // settle once nothing happened for 500 ms (at most 2 s).
          const settleBy = Date.now() + 2000;
          for (let n = -1; n !== observer.events.length && Date.now() < settleBy; ) {
            n = observer.events.length;
            await new Promise((r) => setTimeout(r, 500));
          }
          const streams = hs.uni.map(describeUniStream).join(", ");
          verdict = {
            ok: hs.alpn === "h3",
            detail:
              `handshake complete in ${hs.handshakeAt! - tStart} ms (alpn=${hs.alpn}, ${hs.cipherSuite}), ` +
              `Chromium opened ${hs.uni.length} uni stream(s) [${streams}]` +
              `${hs.bidi.length > 0 ? ` and ${hs.bidi.length} bidi` : ""} ` +
              `after ${hs.uni[0].at - tStart} ms`,
          };
        } else if (!hs && conns.length > 0 && conns.every((c) => c.closeReason)) {
          verdict = {
            ok: false,
            detail: `connection closed before the handshake completed: ${describeClose(conns[0].closeReason)}`,
          };
        } else if (hs?.closeReason) {
          verdict = {
            ok: false,
            detail: `handshake completed but the connection closed before Chromium opened a stream: ${describeClose(hs.closeReason)}`,
          };
        }
      } else {
        if (hs) {
          verdict = {
            ok: false,
            detail: `handshake COMPLETED despite the wrong hash (alpn=${hs.alpn}, ${hs.uni.length} uni streams)`,
          };
        } else if (conns.length > 0 && conns.every((c) => c.closeReason)) {
          const c = conns[0];
          const remote = c.closeReason?.kind === "transport" && c.closeReason.remote;
          verdict = {
            ok: remote,
            detail:
              `no handshake completion; ${remote ? "Chromium" : "the connection"} closed after ` +
              `${c.closeSeenAt! - tStart} ms: ${describeClose(c.closeReason)}` +
              `${isCryptoError(c.closeReason) ? "" : " (not a CRYPTO_ERROR)"}` +
              `${remote ? "" : " — purequic, not Chromium, ended the handshake"}`,
          };
        }
      }
      if (!verdict && rejected()) {
        // The page gave up; give the server 2 s to see the close, then decide.
        rejectedAt ??= Date.now();
        if (Date.now() - rejectedAt > 2000) {
          const c = conns[0];
          verdict = !c
            ? { ok: false, detail: "Chromium never reached the server (ready rejected without a connection)" }
            : kind === "wrong" && c.handshakeAt === undefined
              ? { ok: true, detail: "no handshake completion; page saw ready rejected, server saw no close" }
              : {
                  ok: false,
                  detail: `page saw ready rejected: handshake ${c.handshakeAt !== undefined ? "complete" : "incomplete"}, ${c.uni.length} uni stream(s), ${describeClose(c.closeReason)}`,
                };
        }
      }
      if (verdict) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        const conn = observer.connections[0];
        verdict =
          kind === "wrong" && conn && conn.handshakeAt === undefined
            ? { ok: true, detail: `no handshake completion within ${opts.timeoutMs} ms (no close seen)` }
            : {
                ok: false,
                detail: `timed out after ${opts.timeoutMs} ms: ${observer.connections.length} connection(s), ${
                  conn
                    ? `handshake ${conn.handshakeAt !== undefined ? "complete" : "incomplete"}, ${conn.uni.length} uni stream(s), ${describeClose(conn.closeReason)}`
                    : "Chromium never reached the server"
                }`,
              };
        break;
      }
      await observer.nextChange(Math.min(left, 250));
    }
    // The page's view, for the record. When the handshake completed, the session is still waiting
    // for our SETTINGS: close the connection (H3_NO_ERROR) and let the page see it fail.
    const live = observer.connections.filter((c) => c.handshakeAt !== undefined && !c.closeReason);
    if (live.length > 0) {
      const pageEvents = async () => String(await page.evaluate("window.wtEvents.join('; ')"));
      observer.note(`page before close: ${(await pageEvents()) || "no WebTransport event (ready pending)"}`);
      for (const c of live) void c.conn.close(0x100, "cert-hash check done");
      const by = Date.now() + 2000;
      while (Date.now() < by && !consoleLines.some((l) => l.includes("wt: ready rejected")))
        await observer.nextChange(by - Date.now());
    }
    const wtEvents = String(await page.evaluate("window.wtEvents.join('; ')").catch(() => ""));
    observer.note(`page: ${wtEvents || "no WebTransport event"}`);
    return { ok: verdict.ok, detail: verdict.detail, ms: Date.now() - started };
  } catch (err) {
    return { ok: false, detail: `error: ${(err as Error).message.split("\n")[0]}`, ms: Date.now() - started };
  } finally {
    // Clean shutdown so that the net-log is valid JSON; a hung close is abandoned after 10 s.
    if (browser) await withTimeout(browser.close(), 10_000, "closing Chromium").catch(() => {});
    if (quic) await withTimeout(quic.close(), 5000, "closing the QUIC server").catch(() => {});
    if (acceptLoop) await withTimeout(acceptLoop, 2000, "accept loop").catch(() => {});
    if (http) {
      http.closeAllConnections();
      await new Promise((r) => http?.close(r));
    }
    writeFileSync(join(dir, "server.log"), `${observer.events.join("\n")}\n`);
    writeFileSync(join(dir, "console.log"), `${consoleLines.join("\n")}\n`);
    writeFileSync(join(dir, "netlog-summary.txt"), `${summarizeNetLog(netLog).join("\n")}\n`);
  }
}

// -------------------------------------------------------------------------------------------------

const CASE_NAMES: Record<CertHashCase, string> = {
  right: "right hash: Chromium accepts the dev certificate",
  wrong: "wrong hash: Chromium refuses the handshake",
};

/** Runs the cases one after the other, each with a fresh QUIC server, certificate and browser. */
export async function runChromiumCertHashChecks(options: CertHashOptions = {}): Promise<CertHashResult[]> {
  const chromiumPath = options.chromiumPath ?? DEFAULT_CHROMIUM;
  const log = options.log ?? (() => {});
  if (!existsSync(chromiumPath)) {
    return [
      {
        name: "chromium",
        ok: false,
        detail: `${chromiumPath} missing: run interop/chromium/install.sh`,
        ms: 0,
      },
    ];
  }
  const root = options.logDir ? resolve(options.logDir) : mkdtempSync(join(tmpdir(), "purequic-chromium-"));
  const results: CertHashResult[] = [];
  for (const kind of options.cases ?? (["right", "wrong"] as const)) {
    const dir = join(root, kind);
    mkdirSync(dir, { recursive: true });
    const r = await runCase(
      kind,
      { host: options.host ?? "127.0.0.1", timeoutMs: options.timeoutMs ?? 30_000, chromiumPath },
      dir,
      log,
    );
    results.push({ name: CASE_NAMES[kind], ...r, logDir: dir });
  }
  const keep = options.keepLogs || options.logDir !== undefined || results.some((r) => !r.ok);
  if (!keep) {
    rmSync(root, { recursive: true, force: true });
    return results.map(({ logDir: _, ...r }) => r);
  }
  return results;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      case: { type: "string", multiple: true },
      host: { type: "string" },
      timeout: { type: "string" },
      chromium: { type: "string" },
      "log-dir": { type: "string" },
      "keep-logs": { type: "boolean" },
      verbose: { type: "boolean", short: "v" },
    },
  });
  const cases = (values.case ?? ["right", "wrong"]).map((c) => {
    if (c !== "right" && c !== "wrong") throw new Error(`--case must be right or wrong, not ${c}`);
    return c;
  });
  const host = values.host ?? "127.0.0.1";
  if (host !== "127.0.0.1" && host !== "localhost") throw new Error("--host must be 127.0.0.1 or localhost");
  const results = await runChromiumCertHashChecks({
    cases,
    host,
    timeoutMs: values.timeout ? Number(values.timeout) : undefined,
    chromiumPath: values.chromium,
    logDir: values["log-dir"],
    keepLogs: values["keep-logs"],
    log: values.verbose ? (l) => process.stderr.write(`${l}\n`) : undefined,
  });
  for (const r of results) {
    process.stdout.write(`${r.ok ? "PASS" : "FAIL"} chromium ${r.name} (${r.ms} ms): ${r.detail}\n`);
    if (r.logDir && !r.ok) {
      process.stdout.write(`  logs: ${r.logDir}\n`);
      for (const l of readFileSync(join(r.logDir, "netlog-summary.txt"), "utf8")
        .trim()
        .split("\n")
        .slice(-15))
        process.stdout.write(`  netlog: ${l}\n`);
      for (const l of readFileSync(join(r.logDir, "console.log"), "utf8").trim().split("\n").slice(-10))
        if (l) process.stdout.write(`  ${l}\n`);
    }
  }
  const kept = results.find((r) => r.logDir)?.logDir;
  if (kept) process.stdout.write(`logs kept in ${dirname(kept)}\n`);
  const passed = results.filter((r) => r.ok).length;
  process.stdout.write(`${passed} passed, ${results.length - passed} failed\n`);
  process.exit(passed === results.length ? 0 : 1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack ?? err}\n`);
    process.exit(2);
  });
}
