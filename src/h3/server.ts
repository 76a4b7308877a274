/**
 * HTTP/3 server: `serveH3(source, handler)` answers every request of a QUIC server's "h3"
 * connections (or of one connection) with a WHATWG `(Request) => Response` handler.
 *
 * The Request: URL from :scheme, :authority (or Host) and :path; method; headers (cookie field
 * lines joined with "; ", RFC 9114 §4.2.1); a streaming body (`ReadableStream`, fed from the QUIC
 * stream as the handler reads it; null for GET and HEAD); `signal` aborts when the client cancels
 * the request (its STOP_SENDING / RESET_STREAM). Request trailers and the RFC 9218 priority are
 * in the second argument, {@link H3RequestInfo}.
 *
 * The Response: status and headers (connection-specific fields dropped, §4.2), then the body
 * streamed with backpressure; no body for HEAD, 204 and 304. Trailers: give the Response a
 * `trailers` property (`HeadersInit`, or a promise / function of one, resolved after the body was
 * sent, so it can carry a checksum of it):
 *
 * ```ts
 * serveH3(server, () => Object.assign(new Response(body), { trailers: Promise.resolve({ "x-sum": "…" }) }));
 * ```
 *
 * Errors: a handler that throws gets a 500 (and `options.onError`), one that returns nothing a 404;
 * a request that cannot be represented as a WHATWG Request (CONNECT, invalid URL) gets 501 / 400.
 * Unread request content is drained (up to 256 KiB) or refused with STOP_SENDING(H3_NO_ERROR)
 * once the response is complete (§4.1).
 *
 * Shutdown: {@link H3Server.close} sends GOAWAY on every connection (first 2^62−4, then the real
 * limit, §5.2), waits for the requests in flight, closes with H3_NO_ERROR, then closes the QUIC
 * server when it owns one.
 */
import type { QuicConnection, QuicServer } from "../quic/api.ts";
import { H3Connection, type H3ConnectionOptions, type H3Stream } from "./connection.ts";
import { H3ErrorCode } from "./error-codes.ts";
import { type HeaderField, isConnectionSpecificField, type RequestHead } from "./message.ts";
import type { Priority } from "./priority.ts";
import { GOAWAY_MAX_STREAM_ID, type H3RequestHead } from "./session.ts";

/** The second argument of a handler. */
export interface H3RequestInfo {
  /** The request stream's QUIC ID. */
  streamId: number;
  /** The HTTP/3 connection. */
  connection: H3Connection;
  /** RFC 9218 priority from the `priority` header or a PRIORITY_UPDATE (initial value). */
  priority: Priority;
  /** The request's trailer section, once its body was read to the end (empty Headers if none). */
  trailers: Promise<Headers>;
  /** The decoded request head (pseudo-headers and fields as received). */
  head: RequestHead;
}

export type H3Handler = (
  request: Request,
  info: H3RequestInfo,
) => Response | null | undefined | Promise<Response | null | undefined>;

/** What `new Headers(init)` accepts. */
export type H3HeadersInit = ConstructorParameters<typeof Headers>[0];

/** A Response that may carry trailers (see the module comment). */
export type H3HandlerResponse = Response & {
  trailers?:
    | H3HeadersInit
    | Promise<H3HeadersInit>
    | (() => H3HeadersInit | Promise<H3HeadersInit>)
    | undefined;
};

export interface ServeH3Options extends Omit<H3ConnectionOptions, "onRequest"> {
  /** Errors thrown by the handler (the client gets a 500), and failed responses. */
  onError?: ((err: unknown) => void) | undefined;
  /** How long {@link H3Server.close} waits for requests in flight. Default 5000 ms. */
  shutdownTimeoutMs?: number | undefined;
  /**
   * Extended CONNECT (RFC 9220, needs `enableConnectProtocol` or `webTransport`): takes over every
   * CONNECT request with a `:protocol` (e.g. a WebTransport session); it sends the response on
   * `stream` itself. Without it such requests get 501.
   */
  onConnect?:
    | ((stream: H3Stream, head: H3RequestHead, connection: H3Connection) => void | Promise<void>)
    | undefined;
}

/** A running HTTP/3 server. */
export interface H3Server {
  /** Serves one more (handshaking or established) QUIC connection; null if its ALPN is not h3. */
  serve(conn: QuicConnection): Promise<H3Connection | null>;
  /** Graceful shutdown: GOAWAY, drain, close (and close the QUIC server when given one). */
  close(): Promise<void>;
  /** Connections being served. */
  readonly connections: number;
}

const noop = (): void => {};
const DRAIN_LIMIT = 256 * 1024;

/**
 * Received fields as name/value pairs for `new Request` / `new Headers` (a Request given pairs
 * builds one Headers object, its own, instead of copying ours).
 */
function headerPairsOf(fields: readonly HeaderField[]): [string, string][] {
  const out: [string, string][] = [];
  const cookie: string[] = [];
  for (const [name, value] of fields) {
    if (name === "cookie") cookie.push(value);
    else out.push([name, value]);
  }
  // RFC 9114 §4.2.1: several cookie field lines "MUST be concatenated into a single byte string
  // using the two-byte delimiter of '; '" before going to a generic HTTP application.
  if (cookie.length > 0) out.push(["cookie", cookie.join("; ")]);
  return out;
}

function headersOf(fields: readonly HeaderField[]): Headers {
  return new Headers(headerPairsOf(fields));
}

async function resolveTrailers(t: H3HandlerResponse["trailers"]): Promise<HeaderField[] | undefined> {
  if (t === undefined) return undefined;
  const init = await (typeof t === "function" ? t() : t);
  const out: HeaderField[] = [];
  for (const [name, value] of new Headers(init)) {
    if (!isConnectionSpecificField(name, value) && name !== "content-length") out.push([name, value]);
  }
  return out;
}

function plain(stream: H3Stream, status: number, text: string): void {
  const body = new TextEncoder().encode(text);
  stream.sendHeaders(
    [
      [":status", String(status)],
      ["content-type", "text/plain; charset=utf-8"],
      ["content-length", String(body.length)],
    ],
    false,
  );
  void stream.writeData(body, true);
}

async function handleStream(
  stream: H3Stream,
  h3: H3Connection,
  handler: H3Handler,
  options: ServeH3Options,
): Promise<void> {
  let head: H3RequestHead;
  try {
    const e = await stream.nextEvent();
    if (e === null || e.type !== "request") return;
    head = e.head;
  } catch {
    return; // stream aborted before its head: nothing to answer
  }
  const method = head.method;

  let requestEnded = false;
  let trailerFields: HeaderField[] | undefined;
  let trailersResolve!: (h: Headers) => void;
  let trailersReject!: (e: unknown) => void;
  const trailers = new Promise<Headers>((resolve, reject) => {
    trailersResolve = resolve;
    trailersReject = reject;
  });
  trailers.catch(noop);
  const nextChunk = async (): Promise<Uint8Array | null> => {
    for (;;) {
      const e = await stream.nextEvent();
      if (e === null || e.type === "end") {
        requestEnded = true;
        trailersResolve(headersOf(trailerFields ?? []));
        return null;
      }
      if (e.type === "data") return e.data;
      if (e.type === "trailers") trailerFields = e.fields;
    }
  };

  // `request.signal`, made only when the handler asks for it: a Request built with a `signal`
  // follows it through a FinalizationRegistry and listeners, which costs more than the rest of
  // the Request (measured ≈ 35 µs per request, Node 20).
  let stopped = false;
  let abort: AbortController | undefined;
  const cancelled = () => new DOMException("request cancelled by the client", "AbortError");
  stream.onStopped(() => {
    stopped = true;
    abort?.abort(cancelled());
  });
  const signal = (): AbortSignal => {
    if (abort === undefined) {
      abort = new AbortController();
      if (stopped) abort.abort(cancelled());
    }
    return abort.signal;
  };

  if (method === "CONNECT" && head.protocol !== undefined && options.onConnect !== undefined) {
    await options.onConnect(stream, head, h3);
    return;
  }
  if (method === "CONNECT") {
    // RFC 9220 §3 / RFC 9114 §4.4: not something a Request/Response handler can serve.
    plain(stream, 501, "CONNECT is not supported\n");
    stream.stopReading(H3ErrorCode.H3_NO_ERROR);
    return;
  }

  let request: Request;
  const hasBody = method !== "GET" && method !== "HEAD";
  try {
    const host = head.authority ?? head.fields.find((f) => f[0] === "host")?.[1];
    const path = head.path === "*" ? "/" : head.path;
    // A string: Request parses it (and throws TypeError for an invalid URL) — once.
    const url = `${head.scheme}://${host}${path}`;
    const body = hasBody
      ? new ReadableStream<Uint8Array>({
          pull: async (controller) => {
            try {
              const chunk = await nextChunk();
              // Copy: the chunk is a view into a received packet.
              if (chunk === null) controller.close();
              else controller.enqueue(chunk.slice());
            } catch (err) {
              trailersReject(err);
              controller.error(err);
            }
          },
          cancel: () => {
            if (!requestEnded) stream.stopReading(H3ErrorCode.H3_NO_ERROR);
          },
        })
      : null;
    request = new Request(url, {
      method,
      headers: headerPairsOf(head.fields),
      body,
      ...(body ? { duplex: "half" } : {}),
    } as RequestInit);
    Object.defineProperty(request, "signal", { get: signal, configurable: true });
  } catch {
    plain(stream, 400, "bad request\n");
    stream.stopReading(H3ErrorCode.H3_NO_ERROR);
    return;
  }
  if (!hasBody) {
    // Read to the FIN in the background (a GET's content, if any, is discarded).
    void (async () => {
      let n = 0;
      for (let c = await nextChunk(); c !== null; c = await nextChunk()) {
        n += c.length;
        if (n > DRAIN_LIMIT) {
          stream.stopReading(H3ErrorCode.H3_NO_ERROR);
          return;
        }
      }
    })().catch((err) => trailersReject(err));
  }

  const info: H3RequestInfo = {
    streamId: stream.id,
    connection: h3,
    priority: head.priority,
    trailers,
    head,
  };
  let response: H3HandlerResponse | null | undefined;
  try {
    response = await handler(request, info);
    if (response !== null && response !== undefined && !(response instanceof Response)) {
      throw new TypeError("the handler did not return a Response");
    }
  } catch (err) {
    options.onError?.(err);
    if (stopped) return;
    plain(stream, 500, "internal server error\n");
    finishRequest(request, () => requestEnded);
    return;
  }
  if (response === null || response === undefined) {
    plain(stream, 404, "not found\n");
    finishRequest(request, () => requestEnded);
    return;
  }
  try {
    await sendResponse(stream, method, response, () => stopped);
  } catch (err) {
    options.onError?.(err);
    stream.cancel(H3ErrorCode.H3_REQUEST_CANCELLED);
    return;
  }
  finishRequest(request, () => requestEnded);
}

/** After the response: read the rest of the request (bounded) or stop it (§4.1). */
function finishRequest(request: Request, ended: () => boolean): void {
  if (ended() || request.body === null || request.body.locked) return;
  const reader = request.body.getReader();
  void (async () => {
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      n += value.length;
      if (n > DRAIN_LIMIT) {
        await reader.cancel();
        return;
      }
    }
  })().catch(noop);
}

async function sendResponse(
  stream: H3Stream,
  method: string,
  response: H3HandlerResponse,
  stopped: () => boolean,
): Promise<void> {
  const status = response.status;
  const fields: [string, string][] = [[":status", String(status)]];
  for (const [name, value] of response.headers) {
    // RFC 9114 §4.2: "An endpoint MUST NOT generate an HTTP/3 field section containing
    // connection-specific fields".
    if (!isConnectionSpecificField(name, value)) fields.push([name, value]);
  }
  const withBody = response.body !== null && method !== "HEAD" && status !== 204 && status !== 304;
  const hasTrailers = response.trailers !== undefined;
  if (!withBody && !hasTrailers) {
    stream.sendHeaders(fields, true);
    await response.body?.cancel().catch(noop);
    return;
  }
  if (!stream.sendHeaders(fields, false)) {
    await response.body?.cancel().catch(noop);
    return;
  }
  if (withBody) {
    const reader = response.body!.getReader();
    try {
      for (;;) {
        if (stopped()) {
          await reader.cancel().catch(noop);
          return;
        }
        const { done, value } = await reader.read();
        if (done) break;
        if (value.length === 0) continue;
        if (!(await stream.writeData(value))) {
          await reader.cancel().catch(noop);
          return;
        }
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    await response.body?.cancel().catch(noop);
  }
  const trailerFields = await resolveTrailers(response.trailers);
  if (trailerFields !== undefined && trailerFields.length > 0) stream.sendTrailers(trailerFields);
  else stream.finish();
}

/**
 * An HTTP/3 server without a source of connections: give it connections with
 * {@link H3Server.serve} (e.g. those whose ALPN is "h3" on a multi-protocol QUIC server).
 * `close()` shuts down the connections it serves, not the QUIC server.
 */
export function createH3Server(handler: H3Handler, options: ServeH3Options = {}): H3Server {
  const live = new Set<H3Connection>();
  let closing = false;
  const timeout = options.shutdownTimeoutMs ?? 5000;
  const { onError: _e, shutdownTimeoutMs: _s, onConnect: _c, ...h3opts } = options;

  const serve = async (conn: QuicConnection): Promise<H3Connection | null> => {
    try {
      await conn.handshakeComplete;
    } catch {
      return null;
    }
    if (conn.handshakeData.alpn !== "h3") return null;
    const h3: H3Connection = new H3Connection(conn, {
      ...h3opts,
      onRequest: (stream) => {
        void handleStream(stream, h3, handler, options).catch((err) => {
          options.onError?.(err);
          stream.cancel(H3ErrorCode.H3_INTERNAL_ERROR);
        });
      },
    });
    live.add(h3);
    void h3.closed.then(() => live.delete(h3));
    if (closing) void shutdown(h3, timeout);
    return h3;
  };

  return {
    serve,
    async close(): Promise<void> {
      closing = true;
      await Promise.all([...live].map((h3) => shutdown(h3, timeout)));
    },
    get connections(): number {
      return live.size;
    },
  };
}

/**
 * Serves HTTP/3 with `handler` on every "h3" connection of `source` (a QuicServer: its accept
 * loop is taken over; other ALPNs are left alone), or on one QuicConnection. `close()` also
 * closes a QuicServer source. See the module comment.
 */
export function serveH3(
  source: QuicServer | QuicConnection,
  handler: H3Handler,
  options: ServeH3Options = {},
): H3Server {
  return serveFrom(source, createH3Server(handler, options));
}

/**
 * Feeds `server` every connection of `source` (a QuicServer, whose accept loop it takes over, or
 * one QuicConnection); `close()` of the result also closes a QuicServer source.
 */
export function serveFrom(source: QuicServer | QuicConnection, server: H3Server): H3Server {
  const isServer = !("openBi" in source);
  if (isServer) {
    void (async () => {
      for await (const conn of source as QuicServer) void server.serve(conn);
    })().catch(noop);
  } else {
    void server.serve(source as QuicConnection);
  }
  return {
    serve: server.serve,
    async close(): Promise<void> {
      await server.close();
      if (isServer) await (source as QuicServer).close();
    },
    get connections(): number {
      return server.connections;
    },
  };
}

/** §5.2 graceful shutdown of one connection. */
async function shutdown(h3: H3Connection, timeoutMs: number): Promise<void> {
  if (h3.isClosed) return;
  // First tell the client to stop opening requests, then, after about a round trip in which
  // requests already sent can arrive, the real limit.
  h3.goaway(GOAWAY_MAX_STREAM_ID);
  const rtt = Number.isFinite(h3.quic.rtt) && h3.quic.rtt > 0 ? h3.quic.rtt : 50;
  await new Promise((r) => setTimeout(r, Math.min(2 * rtt + 10, 1000)));
  h3.goaway();
  const deadline = Date.now() + timeoutMs;
  while (h3.activeRequests > 0 && !h3.isClosed && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  // Responses the session has finished may still be in flight: wait for their acknowledgement.
  const left = deadline - Date.now();
  if (left > 0 && !h3.isClosed) {
    await Promise.race([h3.allAcknowledged(), new Promise((r) => setTimeout(r, left).unref())]);
  }
  // §5.2: "An endpoint that completes a graceful shutdown SHOULD use the H3_NO_ERROR error code".
  h3.close(H3ErrorCode.H3_NO_ERROR, "shutdown");
  await h3.quic.closed.catch(noop);
}
