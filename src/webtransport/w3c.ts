/**
 * A W3C-shaped WebTransport client for Node (https://www.w3.org/TR/webtransport/), so that code
 * written for browsers runs unchanged against a WebTransport server from Node:
 *
 * ```ts
 * const wt = new WebTransport("https://127.0.0.1:4433/webtransport/echo", {
 *   serverCertificateHashes: [{ algorithm: "sha-256", value: hash }],
 * });
 * await wt.ready;
 * const { readable, writable } = await wt.createBidirectionalStream();
 * ```
 *
 * What it has: `ready`, `closed` (resolves with `{ closeCode, reason }` on a session close, rejects
 * with {@link WebTransportError} when the connection failed), `draining`, `datagrams`
 * (`readable`, `writable`, `maxDatagramSize`), `createBidirectionalStream`,
 * `createUnidirectionalStream`, `incomingBidirectionalStreams`, `incomingUnidirectionalStreams`,
 * `close({ closeCode, reason })`. Every `new WebTransport` opens a dedicated QUIC connection (as
 * Chromium does). Not modelled: `getStats`, send groups and ordering, `protocols`,
 * `congestionControl`. Stream errors carry `streamErrorCode` (the peer's 32-bit code); aborting a
 * writable / cancelling a readable with a WebTransportError sends its `streamErrorCode`.
 * Certificate options beyond the W3C ones (Node has no browser trust store): `ca`, `insecure`.
 */
import { connectWebTransport } from "./client.ts";
import type { WebTransportSession } from "./session.ts";
import {
  streamErrorCodeOf,
  type WebTransportRecvStream,
  type WebTransportSendStream,
  WebTransportStreamError,
} from "./streams.ts";

/** W3C WebTransportErrorOptions. */
export interface WebTransportErrorOptions {
  source?: "stream" | "session";
  streamErrorCode?: number | null;
}

/** W3C WebTransportError: a DOMException with `source` and `streamErrorCode`. */
export class WebTransportError extends DOMException {
  readonly source: "stream" | "session";
  readonly streamErrorCode: number | null;
  /** W3C `(message, options)`; Chromium's single `{ message, streamErrorCode }` form works too. */
  constructor(
    message: string | (WebTransportErrorOptions & { message?: string }) = "",
    options: WebTransportErrorOptions = {},
  ) {
    const init = typeof message === "object" ? message : options;
    super(typeof message === "object" ? (message.message ?? "") : message, "WebTransportError");
    this.source = init.source ?? "stream";
    this.streamErrorCode = init.streamErrorCode ?? null;
  }
}

export interface WebTransportHash {
  algorithm: string;
  value: ArrayBufferView | ArrayBuffer;
}

export interface WebTransportOptions {
  /** SHA-256 hashes of acceptable server certificates (leaf DER), as in the W3C API. */
  serverCertificateHashes?: WebTransportHash[];
  /** Accepted and ignored: every session has its own connection here. */
  allowPooling?: boolean;
  /** Accepted and ignored: HTTP/3 always offers datagrams. */
  requireUnreliable?: boolean;
  /** purequic: PEM CA certificate(s) to verify the server with instead of hashes. */
  ca?: string | readonly string[];
  /** purequic: skip certificate verification (tests only). */
  insecure?: boolean;
  /** purequic: the `origin` header to send (a browser sends the page's). */
  origin?: string;
}

export interface WebTransportCloseInfo {
  closeCode: number;
  reason: string;
}

export interface WebTransportBidirectionalStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

export interface WebTransportDatagramDuplexStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
  readonly maxDatagramSize: number;
}

function bytesOf(v: ArrayBufferView | ArrayBuffer): Uint8Array {
  if (v instanceof ArrayBuffer) return new Uint8Array(v.slice(0));
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
}

function toW3cError(err: unknown): unknown {
  if (err instanceof WebTransportStreamError) {
    return new WebTransportError(err.message, { source: "stream", streamErrorCode: err.code });
  }
  return err;
}

function readableOf(recv: WebTransportRecvStream): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      try {
        const chunk = await recv.read();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk.slice());
      } catch (err) {
        controller.error(toW3cError(err));
      }
    },
    cancel: (reason) => recv.stop(streamErrorCodeOf(reason)),
  });
}

function writableOf(send: WebTransportSendStream): WritableStream<Uint8Array> {
  return new WritableStream<Uint8Array>({
    write: async (chunk) => {
      try {
        // Copy: the caller may reuse its buffer once the write resolved.
        await send.write(Uint8Array.from(chunk));
      } catch (err) {
        throw toW3cError(err);
      }
    },
    close: async () => {
      try {
        await send.finish();
      } catch (err) {
        throw toW3cError(err);
      }
    },
    abort: (reason) => send.reset(streamErrorCodeOf(reason)),
  });
}

const UTF8 = new TextEncoder();

/** The W3C `WebTransport` interface over purequic (see the module comment). */
export class WebTransport {
  readonly ready: Promise<void>;
  readonly closed: Promise<WebTransportCloseInfo>;
  readonly draining: Promise<void>;
  readonly datagrams: WebTransportDatagramDuplexStream;
  readonly incomingBidirectionalStreams: ReadableStream<WebTransportBidirectionalStream>;
  readonly incomingUnidirectionalStreams: ReadableStream<ReadableStream<Uint8Array>>;
  private session: WebTransportSession | undefined;
  private readonly opened: Promise<WebTransportSession>;
  private pendingClose: WebTransportCloseInfo | undefined;

  constructor(url: string | URL, options: WebTransportOptions = {}) {
    const u = new URL(url);
    if (u.protocol !== "https:") throw new SyntaxError(`WebTransport needs an https URL, not ${u.protocol}`);
    if (u.hash !== "") throw new SyntaxError("WebTransport URLs have no fragment");
    const hashes = (options.serverCertificateHashes ?? []).map((h) => {
      if (h.algorithm.toLowerCase() !== "sha-256") {
        throw new TypeError(`serverCertificateHashes: only sha-256 is supported, not ${h.algorithm}`);
      }
      return bytesOf(h.value);
    });
    this.opened = connectWebTransport(u, {
      ...(hashes.length > 0 ? { serverCertificateHashes: hashes } : {}),
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.insecure !== undefined ? { insecure: options.insecure } : {}),
      ...(options.origin !== undefined ? { origin: options.origin } : {}),
    });
    this.opened.catch(() => {});
    this.ready = this.opened.then(
      (s) => {
        this.session = s;
        if (this.pendingClose) s.close(this.pendingClose.closeCode, this.pendingClose.reason);
      },
      (err: unknown) => {
        throw new WebTransportError(`opening the session failed: ${(err as Error).message}`, {
          source: "session",
        });
      },
    );
    this.ready.catch(() => {});
    this.closed = this.ready.then(async () => {
      const info = await this.session!.closed;
      // A close capsule (ours or the peer's) or a clean FIN resolves; a failure rejects.
      if (!info.clean) throw new WebTransportError(info.reason, { source: "session" });
      return { closeCode: info.code, reason: info.reason };
    });
    this.closed.catch(() => {});
    this.draining = this.opened.then((s) => s.draining);
    this.draining.catch(() => {});

    const sessionNow = () => this.opened;
    this.datagrams = {
      readable: new ReadableStream<Uint8Array>({
        pull: async (controller) => {
          const s = await sessionNow();
          const d = await s.readDatagram();
          if (d === null) controller.close();
          else controller.enqueue(d);
        },
      }),
      writable: new WritableStream<Uint8Array>({
        write: async (chunk) => {
          const s = await sessionNow();
          // W3C: a datagram larger than maxDatagramSize is dropped, not an error.
          if (s.closeReason || chunk.length > s.maxDatagramSize) return;
          s.sendDatagram(chunk);
        },
      }),
      get maxDatagramSize(): number {
        return self.session?.maxDatagramSize ?? 1024;
      },
    };
    const self = this;
    this.incomingBidirectionalStreams = new ReadableStream<WebTransportBidirectionalStream>({
      pull: async (controller) => {
        const s = await sessionNow();
        const bi = await s.acceptBi();
        if (bi === null) controller.close();
        else controller.enqueue({ readable: readableOf(bi.recv), writable: writableOf(bi.send) });
      },
    });
    this.incomingUnidirectionalStreams = new ReadableStream<ReadableStream<Uint8Array>>({
      pull: async (controller) => {
        const s = await sessionNow();
        const r = await s.acceptUni();
        if (r === null) controller.close();
        else controller.enqueue(readableOf(r));
      },
    });
  }

  async createBidirectionalStream(): Promise<WebTransportBidirectionalStream> {
    await this.ready;
    const bi = await this.session!.openBi();
    return { readable: readableOf(bi.recv), writable: writableOf(bi.send) };
  }

  async createUnidirectionalStream(): Promise<WritableStream<Uint8Array>> {
    await this.ready;
    return writableOf(await this.session!.openUni());
  }

  /** Closes the session with CLOSE_WEBTRANSPORT_SESSION (reason truncated to 1024 bytes). */
  close(info: Partial<WebTransportCloseInfo> = {}): void {
    const closeCode = info.closeCode ?? 0;
    let reason = info.reason ?? "";
    // W3C: the reason is truncated to 1024 bytes of UTF-8 (on a character boundary).
    while (UTF8.encode(reason).length > 1024) reason = reason.slice(0, -1);
    if (this.session) this.session.close(closeCode, reason);
    else this.pendingClose ??= { closeCode, reason };
  }
}
