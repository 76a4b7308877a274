/**
 * WebTransport server: an HTTP/3 server (`createH3Server`) with WebTransport enabled — SETTINGS
 * H3_DATAGRAM, ENABLE_CONNECT_PROTOCOL and ENABLE_WEBTRANSPORT (draft-02, Chromium's default) —
 * that turns every extended CONNECT with `:protocol = webtransport` into a
 * {@link WebTransportSession}. Other requests go to an ordinary `(Request) => Response` handler, so
 * one server serves a page and its WebTransport endpoint.
 *
 * ```ts
 * const server = serveWebTransport(await listen({ port: 4433, alpn: ["h3"] }), {
 *   accept: (req) => (req.url.pathname === "/echo" ? true : 404),
 *   onSession: async (session) => {
 *     for (let bi = await session.acceptBi(); bi; bi = await session.acceptBi()) { ... }
 *   },
 * });
 * ```
 *
 * `accept(request)` sees the URL (path and query), the `origin` header and every header; it
 * returns true / undefined to accept (200), false to refuse (403), or an HTTP status (or
 * `{ status, headers }`) to refuse with. Accepted sessions answer 200 with
 * `sec-webtransport-http3-draft: draft02` (required by Chromium before mid-2023, harmless since).
 * A client that did not enable HTTP/3 datagrams cannot run WebTransport: 400.
 */
import type { H3Connection, H3Stream } from "../h3/connection.ts";
import { H3ErrorCode } from "../h3/error-codes.ts";
import {
  createH3Server,
  type H3Handler,
  type H3Server,
  type ServeH3Options,
  serveFrom,
} from "../h3/server.ts";
import type { H3RequestHead } from "../h3/session.ts";
import type { QuicConnection, QuicServer } from "../quic/api.ts";
import {
  type WebTransportRequestInfo,
  WebTransportSession,
  type WebTransportSessionOptions,
} from "./session.ts";
import { routeWebTransportStream, sessionsOf } from "./session-registry.ts";
import { peerSupports, versionOfToken, type WebTransportVersion } from "./version.ts";

/** A WebTransport session request, as the server's accept hook sees it. */
export interface WebTransportRequest extends WebTransportRequestInfo {
  /** The HTTP/3 connection it arrived on (several sessions may share it). */
  readonly connection: H3Connection;
}

export type WebTransportAcceptResult =
  | boolean
  | undefined
  | number
  | { status: number; headers?: ConstructorParameters<typeof Headers>[0] };

export interface WebTransportServerOptions
  extends Omit<ServeH3Options, "onConnect" | "webTransport" | "onWebTransportStream">,
    WebTransportSessionOptions {
  /** Decides on a session request (default: accept all). See the module comment. */
  accept?:
    | ((request: WebTransportRequest) => WebTransportAcceptResult | Promise<WebTransportAcceptResult>)
    | undefined;
  /** Gets every accepted session. */
  onSession: (session: WebTransportSession, request: WebTransportRequest) => void;
  /** Versions served (see `version.ts`). Default both: "latest" and "draft02". */
  versions?: readonly WebTransportVersion[] | undefined;
  /** How long a session request waits for the client's SETTINGS. Default 5000 ms. */
  settingsTimeoutMs?: number | undefined;
  /**
   * Concurrent bidi and uni streams a client may open per connection (QUIC MAX_STREAMS), for all
   * its sessions and requests together. Chromium fails `createBidirectionalStream()` at once when
   * the limit is reached rather than waiting. Default 256.
   */
  maxConcurrentStreams?: number | undefined;
}

const _noop = (): void => {};
const draft02Header: [string, string][] = [["sec-webtransport-http3-draft", "draft02"]];

function headersOf(fields: readonly (readonly [string, string])[]): Headers {
  const h = new Headers();
  for (const [n, v] of fields) h.append(n, v);
  return h;
}

function refuse(stream: H3Stream, status: number, extra: [string, string][] = []): void {
  stream.sendHeaders([[":status", String(status)], ...extra], true);
  stream.stopReading(H3ErrorCode.H3_NO_ERROR);
}

async function onConnect(
  stream: H3Stream,
  head: H3RequestHead,
  h3: H3Connection,
  options: WebTransportServerOptions,
  live: Set<WebTransportSession>,
): Promise<void> {
  const version = versionOfToken(head.protocol ?? "");
  if (version === undefined || !(options.versions ?? ["latest", "draft02"]).includes(version)) {
    refuse(stream, 501);
    return;
  }
  // Current draft, "Negotiating the Draft Version": "the server MUST NOT process any incoming
  // WebTransport requests until the client's SETTINGS have been received".
  const timeout = options.settingsTimeoutMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  const peer = await Promise.race([
    h3.settings,
    new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), timeout);
    }),
  ]).finally(() => clearTimeout(timer));
  // Both versions need HTTP/3 datagrams from both sides (draft-02 §3, current draft §3.1); the
  // version's own setting must have been announced by the client.
  if (peer === undefined || !peerSupports(version, peer, false)) {
    refuse(stream, 400);
    return;
  }
  let url: URL;
  try {
    url = new URL(`${head.scheme}://${head.authority}${head.path}`);
  } catch {
    refuse(stream, 400);
    return;
  }
  const headers = headersOf(head.fields);
  const request: WebTransportRequest = {
    url,
    origin: headers.get("origin") ?? undefined,
    headers,
    version,
    connection: h3,
  };
  let verdict: WebTransportAcceptResult;
  try {
    verdict = await options.accept?.(request);
  } catch (err) {
    options.onError?.(err);
    refuse(stream, 500);
    return;
  }
  let status = 200;
  const extra: [string, string][] = [];
  if (verdict === false) status = 403;
  else if (typeof verdict === "number") status = verdict;
  else if (typeof verdict === "object") {
    status = verdict.status;
    for (const [n, v] of new Headers(verdict.headers)) extra.push([n, v]);
  }
  if (!Number.isInteger(status) || status < 200 || status > 599) status = 500;
  if (status >= 300) {
    refuse(stream, status, extra);
    return;
  }
  if (h3.isClosed) return;
  const registry = sessionsOf(h3);
  if (version === "latest" && registry.size > 0) {
    // Current draft §5.1: without flow control (not implemented) a server "MUST reset the
    // excessive CONNECT streams with a H3_REQUEST_REJECTED status".
    stream.cancel(H3ErrorCode.H3_REQUEST_REJECTED);
    return;
  }
  const session = new WebTransportSession(h3, stream, "server", request, options, (s) => {
    registry.remove(s);
    live.delete(s);
  });
  registry.add(session);
  live.add(session);
  stream.sendHeaders(
    // draft-02: `sec-webtransport-http3-draft: draft02` (Chromium required it before mid-2023).
    [[":status", String(status)], ...(version === "draft02" ? draft02Header : []), ...extra],
    false,
  );
  try {
    options.onSession(session, request);
  } catch (err) {
    options.onError?.(err);
    session.close(0, "internal error");
  }
}

/**
 * A WebTransport + HTTP/3 server without a source of connections (give it connections with
 * `serve`, e.g. the "h3" ones of a multi-protocol QUIC server). `handler` answers ordinary
 * requests (default: 404).
 */
export function createWebTransportServer(
  options: WebTransportServerOptions,
  handler: H3Handler = () => null,
): H3Server {
  const live = new Set<WebTransportSession>();
  const inner = createH3Server(handler, {
    ...options,
    webTransport: true,
    webTransportVersions: {
      draft02: (options.versions ?? ["draft02"]).includes("draft02"),
      latest: (options.versions ?? ["latest"]).includes("latest"),
    },
    onWebTransportStream: routeWebTransportStream,
    onConnect: (stream, head, h3) => onConnect(stream, head, h3, options, live),
  });
  const streams = options.maxConcurrentStreams ?? 256;
  return {
    serve: async (conn) => {
      try {
        await conn.handshakeComplete;
        conn.setMaxConcurrentBiStreams(streams);
        // Plus the peer's three HTTP/3 unidirectional streams (control, QPACK encoder and decoder).
        conn.setMaxConcurrentUniStreams(streams + 3);
      } catch {
        return null;
      }
      return inner.serve(conn);
    },
    close: async () => {
      // Sessions would hold the graceful HTTP/3 shutdown until its timeout: close them first.
      for (const s of [...live]) s.close(0, "server shutting down");
      await inner.close();
    },
    get connections(): number {
      return inner.connections;
    },
  };
}

/** Serves WebTransport (and `handler` for other requests) on every "h3" connection of `source`. */
export function serveWebTransport(
  source: QuicServer | QuicConnection,
  options: WebTransportServerOptions,
  handler?: H3Handler,
): H3Server {
  return serveFrom(source, createWebTransportServer(options, handler));
}
