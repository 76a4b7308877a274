/**
 * WebTransport client (draft-ietf-webtrans-http3-02, as Chromium speaks it):
 *
 * - {@link connectWebTransport}: a dedicated QUIC connection (ALPN h3, QUIC v1, datagrams on) and
 *   one session on it, like a browser's `new WebTransport(url)`. Closing the session closes the
 *   connection.
 * - {@link openWebTransportSession}: one more session on an existing HTTP/3 connection created with
 *   `webTransport: true` (several sessions per connection, where the server allows it).
 *
 * The request: `CONNECT` with `:protocol = webtransport`, `:scheme https`, `:authority`, `:path`
 * (path and query of the URL), `sec-webtransport-http3-draft02: 1`, and `origin` when given.
 * It is sent only after the server's SETTINGS enabled WebTransport: H3_DATAGRAM = 1 (RFC 9297)
 * plus ENABLE_WEBTRANSPORT = 1 (draft-02) or ENABLE_CONNECT_PROTOCOL = 1 (RFC 9220); otherwise
 * {@link WebTransportConnectError}. A 2xx response opens the session; any other status rejects it.
 */
import { H3Connection } from "../h3/connection.ts";
import { H3ErrorCode } from "../h3/error-codes.ts";
import { type ConnectOptions, connect } from "../quic/api.ts";
import { WebTransportSession, type WebTransportSessionOptions } from "./session.ts";
import { sessionsOf } from "./session-registry.ts";
import { negotiateVersion, UPGRADE_TOKEN, type WebTransportVersion } from "./version.ts";

/** The session could not be established; `status` is the server's HTTP status when it answered. */
export class WebTransportConnectError extends Error {
  override readonly name = "WebTransportConnectError";
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface OpenWebTransportOptions extends WebTransportSessionOptions {
  /** The `origin` header (a browser sends the page's origin). */
  origin?: string | undefined;
  /** More request header fields (lower-case names). */
  headers?: Record<string, string> | undefined;
  /** Give up waiting for SETTINGS and the response after this long. Default 10 000 ms. */
  timeoutMs?: number | undefined;
  /** Versions to offer; the highest the server announced is used. Default "latest", "draft02". */
  versions?: readonly WebTransportVersion[] | undefined;
}

export interface ConnectWebTransportOptions
  extends OpenWebTransportOptions,
    Partial<
      Pick<
        ConnectOptions,
        "ca" | "insecure" | "serverCertificateHashes" | "transport" | "keyLog" | "serverName" | "endpoint"
      >
    > {}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new WebTransportConnectError(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** Opens a session on `h3` (a client H3Connection with `webTransport: true`). */
export async function openWebTransportSession(
  h3: H3Connection,
  url: string | URL,
  options: OpenWebTransportOptions = {},
): Promise<WebTransportSession> {
  const u = new URL(url);
  if (u.protocol !== "https:")
    throw new WebTransportConnectError(`WebTransport needs an https URL, not ${u}`);
  if (!h3.session.webTransport) {
    throw new WebTransportConnectError("the HTTP/3 connection was not created with webTransport: true");
  }
  const timeout = options.timeoutMs ?? 10_000;
  const settings = await withTimeout(h3.settings, timeout, "waiting for the server's SETTINGS");
  const version = negotiateVersion(options.versions ?? ["latest", "draft02"], settings, true);
  if (version === undefined) {
    throw new WebTransportConnectError("the server does not support WebTransport (SETTINGS)");
  }
  const registry = sessionsOf(h3);
  if (version === "latest" && registry.size > 0) {
    // Current draft §5.1: without flow control, "clients MUST NOT attempt to establish more than
    // one simultaneous WebTransport session".
    throw new WebTransportConnectError("one session per connection with the current draft (no flow control)");
  }
  const fields: [string, string][] = [
    [":method", "CONNECT"],
    [":protocol", UPGRADE_TOKEN[version]],
    [":scheme", "https"],
    [":authority", u.host],
    [":path", `${u.pathname}${u.search}`],
  ];
  if (version === "draft02") fields.push(["sec-webtransport-http3-draft02", "1"]);
  if (options.origin !== undefined) fields.push(["origin", options.origin]);
  for (const [n, v] of Object.entries(options.headers ?? {})) fields.push([n.toLowerCase(), v]);
  const stream = await h3.openRequest(fields, false);
  let status: number;
  try {
    for (;;) {
      const e = await withTimeout(stream.nextEvent(), timeout, "waiting for the CONNECT response");
      if (e === null)
        throw new WebTransportConnectError("the server ended the CONNECT stream without a response");
      if (e.type === "response") {
        status = e.head.status;
        break;
      }
    }
  } catch (err) {
    stream.cancel(H3ErrorCode.H3_REQUEST_CANCELLED);
    if (err instanceof WebTransportConnectError) throw err;
    throw new WebTransportConnectError(`CONNECT failed: ${(err as Error).message}`);
  }
  if (status < 200 || status > 299) {
    stream.cancel(H3ErrorCode.H3_REQUEST_CANCELLED);
    throw new WebTransportConnectError(`the server refused the session with status ${status}`, status);
  }
  const headers = new Headers();
  for (const [n, v] of fields) if (!n.startsWith(":")) headers.append(n, v);
  const session = new WebTransportSession(
    h3,
    stream,
    "client",
    { url: u, origin: options.origin, headers, version },
    options,
    (s) => registry.remove(s),
  );
  registry.add(session);
  return session;
}

/**
 * Connects to `url` on a dedicated QUIC connection and opens one session (see the module
 * comment). Certificate checks: `serverCertificateHashes` (SHA-256 of the leaf DER, as the W3C
 * API), `ca`, or `insecure`.
 */
export async function connectWebTransport(
  url: string | URL,
  options: ConnectWebTransportOptions = {},
): Promise<WebTransportSession> {
  const u = new URL(url);
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const quic = await connect({
    host,
    port: u.port === "" ? 443 : Number(u.port),
    alpn: ["h3"],
    ...(options.serverName !== undefined ? { serverName: options.serverName } : {}),
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(options.insecure !== undefined ? { insecure: options.insecure } : {}),
    ...(options.serverCertificateHashes !== undefined
      ? { serverCertificateHashes: options.serverCertificateHashes }
      : {}),
    ...(options.keyLog !== undefined ? { keyLog: options.keyLog } : {}),
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    transport: { maxDatagramFrameSize: 65536, ...options.transport },
  });
  const h3 = new H3Connection(quic, { webTransport: true });
  let session: WebTransportSession;
  try {
    session = await openWebTransportSession(h3, u, options);
  } catch (err) {
    h3.close(H3ErrorCode.H3_NO_ERROR, "WebTransport session refused");
    throw err;
  }
  // A dedicated connection ends with its session, once our last stream data is acknowledged.
  void session.closed.then(async () => {
    await Promise.race([h3.allAcknowledged(), new Promise((r) => setTimeout(r, 1000).unref())]);
    if (!h3.isClosed) h3.close(H3ErrorCode.H3_NO_ERROR, "WebTransport session closed");
  });
  return session;
}
