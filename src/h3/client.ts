/**
 * HTTP/3 client: WHATWG `fetch` over purequic (ALPN "h3").
 *
 * - {@link H3Client}: one HTTP/3 connection; {@link H3Client.fetch} takes a `Request`, `URL` or
 *   string (plus `RequestInit`) and returns a `Response`, many requests concurrently.
 * - {@link createH3Fetch}: a fetch function with a connection pool: one connection per origin
 *   (host:port), reopened when it closes or the server sends GOAWAY.
 *
 * Request bodies: a body given as string / ArrayBuffer / typed array / Blob / URLSearchParams /
 * FormData is buffered and sent with `content-length`; a `ReadableStream` body (with
 * `duplex: "half"`, as Node requires) is streamed as it is produced, with backpressure.
 * Response bodies are `ReadableStream`s fed from the QUIC stream as they are read (QUIC flow
 * control holds the server back while nobody reads).
 *
 * Trailers: the returned Response has a `trailers` property, a `Promise<Headers>` resolving once
 * the body was read to its end (empty Headers when there were none; rejected if the stream
 * fails). See {@link H3Response}. Request trailers: `init.trailers` ({@link H3RequestInit}).
 *
 * Cancellation: `init.signal` / `request.signal` aborts the request at any time: the stream is
 * reset and its reading stopped with H3_REQUEST_CANCELLED (RFC 9114 §4.1.1); the pending promise
 * or the body stream then rejects with the signal's reason.
 *
 * Differences from a browser fetch: no redirects are followed (3xx responses are returned as
 * they are), no cookies, cache or CORS; `response.url` is the request URL. Network and protocol
 * failures reject with `TypeError("fetch failed")` whose `cause` is an
 * {@link H3StreamAbortedError} / {@link H3ConnectionClosedError} or the QUIC error.
 */
import { connect, type QuicConnection } from "../quic/api.ts";
import type { TransportConfig } from "../quic/connection/config.ts";
import {
  H3Connection,
  H3ConnectionClosedError,
  type H3ConnectionOptions,
  type H3Stream,
  H3StreamAbortedError,
} from "./connection.ts";
import { H3ErrorCode } from "./error-codes.ts";
import { isConnectionSpecificField } from "./message.ts";

/** A fetch Response with HTTP trailers. */
export type H3Response = Response & {
  /** The trailer section, once the body has been read to its end (empty Headers if none). */
  readonly trailers: Promise<Headers>;
};

/** What `new Headers(init)` accepts. */
type HeadersInitLike = ConstructorParameters<typeof Headers>[0];

/**
 * RequestInit plus request trailers: `trailers` (a HeadersInit, or a promise / function of one,
 * resolved once the body was sent, so it can carry a checksum of a streamed body) is sent as a
 * trailer section after the body (RFC 9114 §4.1). Pseudo-headers, connection-specific fields and
 * content-length are not allowed in trailers (RFC 9114 §4.3, RFC 9110 §6.5.1): they are dropped.
 */
export type H3RequestInit = RequestInit & {
  trailers?:
    | HeadersInitLike
    | Promise<HeadersInitLike>
    | (() => HeadersInitLike | Promise<HeadersInitLike>)
    | undefined;
};

/** Options of {@link H3Client.connect} and {@link createH3Fetch}. */
export interface H3ClientOptions {
  /** Accept any server certificate (testing only). */
  insecure?: boolean | undefined;
  /** Trust anchors (PEM) instead of Node's root store. */
  ca?: string | readonly string[] | undefined;
  /** Accept a server whose leaf certificate has one of these SHA-256 hashes. */
  serverCertificateHashes?: readonly Uint8Array[] | undefined;
  /** HTTP/3 session options (QPACK table size, GREASE...). */
  h3?: Omit<H3ConnectionOptions, "onRequest"> | undefined;
  /** QUIC transport parameters. */
  transport?: Partial<TransportConfig> | undefined;
  /** TLS key log (SSLKEYLOGFILE format). */
  keyLog?: ((line: string) => void) | undefined;
}

const noop = (): void => {};

/** True for init bodies that Request holds in memory (sent with content-length). */
function isBufferedBody(body: unknown): boolean {
  return (
    typeof body === "string" ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof Blob ||
    body instanceof URLSearchParams ||
    body instanceof FormData
  );
}

function fieldsToHeaders(fields: readonly (readonly [string, string])[]): Headers {
  const h = new Headers();
  for (const [name, value] of fields) {
    try {
      h.append(name, value);
    } catch {
      // a value Headers refuses: dropped
    }
  }
  return h;
}

/** The trailer fields to send for `init.trailers` (undefined: none given). */
async function resolveRequestTrailers(t: H3RequestInit["trailers"]): Promise<[string, string][] | undefined> {
  if (t === undefined) return undefined;
  const init = await (typeof t === "function" ? t() : t);
  const out: [string, string][] = [];
  for (const [name, value] of new Headers(init)) {
    if (name === "content-length" || name === "host" || isConnectionSpecificField(name, value)) continue;
    out.push([name, value]);
  }
  return out;
}

function fetchFailed(cause: unknown): TypeError {
  return new TypeError("fetch failed", { cause });
}

/** A host name to dial: `localhost` is 127.0.0.1 (never ::1), brackets removed from IPv6. */
function dialHost(hostname: string): string {
  const h = hostname.replace(/^\[|\]$/g, "");
  return h === "localhost" ? "127.0.0.1" : h;
}

/** One HTTP/3 connection. */
export class H3Client {
  constructor(
    /** The underlying HTTP/3 connection. */
    readonly connection: H3Connection,
  ) {}

  /** Connects to `host:port` with ALPN "h3". `serverName` defaults to `host`. */
  static async connect(
    host: string,
    port: number,
    options: H3ClientOptions & { serverName?: string | undefined } = {},
  ): Promise<H3Client> {
    const quic: QuicConnection = await connect({
      host: dialHost(host),
      port,
      serverName: options.serverName ?? host.replace(/^\[|\]$/g, ""),
      alpn: ["h3"],
      insecure: options.insecure,
      ca: options.ca,
      serverCertificateHashes: options.serverCertificateHashes,
      transport: options.transport,
      keyLog: options.keyLog,
    });
    return new H3Client(new H3Connection(quic, options.h3));
  }

  /** Whether new requests can go on this connection (not closed, no GOAWAY). */
  get available(): boolean {
    return this.connection.canRequest;
  }

  /** Sends a request and resolves with the response head; see the module comment. */
  async fetch(input: Request | URL | string, init?: H3RequestInit): Promise<H3Response> {
    const req = input instanceof Request && init === undefined ? input : new Request(input, init);
    const trailersInit = init?.trailers;
    const signal = req.signal;
    signal.throwIfAborted();
    const url = new URL(req.url);
    if (url.protocol !== "https:") throw new TypeError(`HTTP/3 needs an https URL, got ${url.protocol}`);
    const method = req.method;

    let body: Uint8Array | ReadableStream<Uint8Array> | null = null;
    if (req.body !== null) {
      body = isBufferedBody(init?.body) ? new Uint8Array(await req.arrayBuffer()) : req.body;
    }

    // RFC 9114 §4.3.1: the pseudo-headers first; :authority rather than Host (SHOULD).
    const fields: [string, string][] = [
      [":method", method],
      [":scheme", "https"],
      [":authority", url.host],
      [":path", `${url.pathname || "/"}${url.search}`],
    ];
    for (const [name, value] of req.headers) {
      // §4.2: connection-specific fields MUST NOT be generated.
      if (name === "host" || isConnectionSpecificField(name, value)) continue;
      if (name === "content-length" && body instanceof Uint8Array) continue;
      if (name === "cookie") {
        // §4.2.1: cookies MAY be split into separate field lines for better compression.
        for (const c of value.split(/;\s*/)) if (c) fields.push(["cookie", c]);
        continue;
      }
      fields.push([name, value]);
    }
    if (body instanceof Uint8Array) fields.push(["content-length", String(body.length)]);

    let stream: H3Stream;
    try {
      stream = await this.connection.openRequest(fields, body === null && trailersInit === undefined);
    } catch (err) {
      throw fetchFailed(err);
    }

    let aborted = false;
    let bodyController: ReadableStreamDefaultController<Uint8Array> | undefined;
    let trailersReject: (e: unknown) => void = noop;
    const onAbort = () => {
      aborted = true;
      stream.cancel(H3ErrorCode.H3_REQUEST_CANCELLED);
      trailersReject(signal.reason);
      try {
        bodyController?.error(signal.reason);
      } catch {
        // already closed
      }
    };
    // A Request made here without `init.signal` has a signal nothing can abort: no listener then
    // (adding and removing one is a measurable share of a small request's cost).
    const abortable = input instanceof Request || (init?.signal !== undefined && init.signal !== null);
    if (abortable) signal.addEventListener("abort", onAbort, { once: true });
    const cleanup = abortable ? () => signal.removeEventListener("abort", onAbort) : noop;

    if (trailersInit !== undefined) {
      void this.upload(stream, body, trailersInit);
    } else if (body instanceof Uint8Array) {
      if (body.length > 0) void stream.writeData(body, true);
      else stream.finish();
    } else if (body !== null) {
      void this.upload(stream, body, undefined);
    }

    // The response head (skipping interim 1xx responses).
    let head:
      | { status: number; fields: [string, string][] | readonly (readonly [string, string])[] }
      | undefined;
    try {
      for (;;) {
        const e = await stream.nextEvent();
        if (e === null)
          throw new H3StreamAbortedError(
            stream.id,
            H3ErrorCode.H3_REQUEST_INCOMPLETE,
            false,
            false,
            "no response",
          );
        if (e.type === "response") {
          head = e.head;
          break;
        }
      }
    } catch (err) {
      cleanup();
      if (aborted) throw signal.reason;
      stream.cancel();
      throw fetchFailed(err);
    }

    let trailerHeaders: Headers | undefined;
    let trailersResolve!: (h: Headers) => void;
    const trailers = new Promise<Headers>((resolve, reject) => {
      trailersResolve = resolve;
      trailersReject = reject;
    });
    trailers.catch(noop);

    const status = head.status;
    const noBody = method === "HEAD" || status === 204 || status === 205 || status === 304;
    const next = async (): Promise<Uint8Array | null> => {
      for (;;) {
        const e = await stream.nextEvent();
        if (e === null || e.type === "end") {
          cleanup();
          trailersResolve(trailerHeaders ?? new Headers());
          return null;
        }
        if (e.type === "data") return e.data;
        if (e.type === "trailers") trailerHeaders = fieldsToHeaders(e.fields);
      }
    };
    let responseBody: ReadableStream<Uint8Array> | null = null;
    if (noBody) {
      // Read to the end in the background (trailers, clean close).
      void (async () => {
        while ((await next()) !== null) {
          // content is not allowed here; the session already refused it
        }
      })().catch((err) => {
        cleanup();
        trailersReject(err);
      });
    } else {
      responseBody = new ReadableStream<Uint8Array>({
        start: (controller) => {
          bodyController = controller;
        },
        pull: async (controller) => {
          try {
            const chunk = await next();
            // The chunk is a view into a received packet: copy it, the consumer owns what it gets.
            if (chunk === null) controller.close();
            else controller.enqueue(chunk.slice());
          } catch (err) {
            cleanup();
            const reason = aborted ? signal.reason : fetchFailed(err);
            trailersReject(reason);
            controller.error(reason);
          }
        },
        cancel: () => {
          cleanup();
          trailersReject(new DOMException("body cancelled", "AbortError"));
          stream.cancel(H3ErrorCode.H3_REQUEST_CANCELLED);
        },
      });
    }
    const res = new Response(responseBody, { status, headers: fieldsToHeaders(head.fields) });
    Object.defineProperty(res, "url", { value: req.url });
    Object.defineProperty(res, "trailers", { value: trailers, enumerable: true });
    return res as H3Response;
  }

  /** Sends the request content (if any), then the trailers (if given) or FIN. */
  private async upload(
    stream: H3Stream,
    body: Uint8Array | ReadableStream<Uint8Array> | null,
    trailers: H3RequestInit["trailers"],
  ): Promise<void> {
    const reader = body instanceof ReadableStream ? body.getReader() : undefined;
    try {
      if (body instanceof Uint8Array) {
        if (body.length > 0 && !(await stream.writeData(body))) return;
      } else if (reader !== undefined) {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (value.length === 0) continue;
          if (!(await stream.writeData(value))) {
            // The server stopped reading (e.g. it answered early, §4.1) or the stream is gone.
            await reader.cancel().catch(noop);
            return;
          }
        }
      }
      const fields = await resolveRequestTrailers(trailers);
      if (stream.sendClosedCode !== undefined) return;
      // RFC 9114 §4.1: the trailer section is a HEADERS frame after the content; none: FIN.
      if (fields !== undefined && fields.length > 0) stream.sendTrailers(fields);
      else stream.finish();
    } catch {
      // The body stream (or the trailers' promise) failed: abandon the request (§4.1.1).
      stream.cancel(H3ErrorCode.H3_REQUEST_CANCELLED);
      await reader?.cancel().catch(noop);
    }
  }

  /** Graceful close: no new requests, wait for those in flight (up to `timeoutMs`), then close. */
  async close(timeoutMs = 5000): Promise<void> {
    const c = this.connection;
    if (c.isClosed) return;
    c.goaway();
    const deadline = Date.now() + timeoutMs;
    while (c.activeRequests > 0 && !c.isClosed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    c.close(H3ErrorCode.H3_NO_ERROR);
    await c.quic.closed.catch(noop);
  }
}

/** A fetch function with a per-origin HTTP/3 connection pool. */
export interface H3Fetch {
  (input: Request | URL | string, init?: H3RequestInit): Promise<H3Response>;
  /** Closes every pooled connection (gracefully). */
  close(): Promise<void>;
  /** Number of pooled connections. */
  readonly connections: number;
}

interface PoolEntry {
  client: H3Client | undefined;
  promise: Promise<H3Client>;
}

/**
 * A `fetch` for https URLs over HTTP/3 keeping one connection per origin (host:port), shared by
 * every concurrent request to it. A connection that closes or receives GOAWAY leaves the pool
 * (requests in flight finish on it); requests the server did not process (rejected, above its
 * GOAWAY) are retried once on a new connection when their body can be replayed.
 */
export function createH3Fetch(options: H3ClientOptions = {}): H3Fetch {
  const pool = new Map<string, PoolEntry>();

  const clientFor = (url: URL): Promise<H3Client> => {
    const port = Number(url.port || 443);
    const key = `${url.hostname}:${port}`;
    const existing = pool.get(key);
    if (existing && (existing.client === undefined || existing.client.available)) return existing.promise;
    if (existing) pool.delete(key);
    const entry: PoolEntry = {
      client: undefined,
      promise: H3Client.connect(url.hostname, port, options).then((client) => {
        entry.client = client;
        const drop = () => {
          if (pool.get(key) === entry) pool.delete(key);
        };
        // §5.2: after a GOAWAY no new requests go on this connection; close it once the requests
        // in flight are done.
        client.connection.onGoaway(() => {
          drop();
          void client.close().catch(noop);
        });
        void client.connection.closed.then(drop);
        return client;
      }),
    };
    entry.promise.catch(() => {
      if (pool.get(key) === entry) pool.delete(key);
    });
    pool.set(key, entry);
    return entry.promise;
  };

  const h3fetch = async (input: Request | URL | string, init?: H3RequestInit): Promise<H3Response> => {
    const url = new URL(input instanceof Request ? input.url : input);
    const replayable = init?.body === undefined || init.body === null || isBufferedBody(init.body);
    const canRetry = replayable && !(input instanceof Request && input.body !== null);
    for (let attempt = 0; ; attempt++) {
      let client: H3Client;
      try {
        client = await clientFor(url);
      } catch (err) {
        throw fetchFailed(err);
      }
      try {
        return await client.fetch(input, init);
      } catch (err) {
        const cause = err instanceof TypeError ? err.cause : undefined;
        const retry =
          (cause instanceof H3StreamAbortedError && cause.retryable) ||
          (cause instanceof H3ConnectionClosedError &&
            !cause.remote &&
            cause.code === H3ErrorCode.H3_NO_ERROR);
        if (attempt === 0 && canRetry && retry) continue;
        throw err;
      }
    }
  };

  const close = async (): Promise<void> => {
    const entries = [...pool.values()];
    pool.clear();
    await Promise.all(entries.map((e) => e.promise.then((c) => c.close(), noop)));
  };
  Object.defineProperty(h3fetch, "close", { value: close });
  Object.defineProperty(h3fetch, "connections", { get: () => pool.size });
  return h3fetch as H3Fetch;
}
