/**
 * The send and receive halves of a WebTransport stream: a QUIC stream whose error codes are the
 * application's (32-bit on HTTP/3, mapped into the HTTP/3 range by a {@link StreamErrorCodec};
 * passed through unchanged on a raw QUIC session). Shaped like quinn's / purequic's streams:
 * `write`/`finish`/`reset`/`stopped` and `read`/`readAll`/`stop`, plus WHATWG `writable` /
 * `readable` adapters.
 */
import { type RecvStream, type SendStream, StreamResetError } from "../quic/api.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { http3CodeToWebTransport, webTransportCodeToHttp3 } from "./error-codes.ts";

/** How application stream error codes travel on the wire. */
export interface StreamErrorCodec {
  toWire(code: number): bigint;
  /** The application code of a received wire code (0 when it carries none). */
  fromWire(code: bigint): number;
}

/** WebTransport over HTTP/3 (draft-02 §4.3). */
export const webTransportCodec: StreamErrorCodec = {
  toWire: webTransportCodeToHttp3,
  fromWire: (c) => http3CodeToWebTransport(c) ?? 0,
};

/** Raw QUIC: codes are QUIC application error codes. */
export const rawQuicCodec: StreamErrorCodec = {
  toWire: (c) => {
    if (!Number.isSafeInteger(c) || c < 0) throw new QuicUsageError(`bad stream error code ${c}`);
    return BigInt(c);
  },
  fromWire: (c) => Number(c),
};

/** The peer reset the stream (`reset`) or asked us to stop sending (`stopped`). */
export class WebTransportStreamError extends Error {
  override readonly name = "WebTransportStreamError";
  constructor(
    readonly streamId: number,
    /** The application error code. */
    readonly code: number,
    readonly kind: "reset" | "stopped",
  ) {
    super(`stream ${streamId} ${kind === "reset" ? "reset" : "stopped"} by the peer with code ${code}`);
  }
}

/** Something the session tracks to abandon on close. */
export interface SessionStream {
  abandon(wireCode: bigint): void;
}

/** Hooks a session gives its streams. */
export interface StreamOwner {
  done(s: SessionStream): void;
}

function mapError(err: unknown, codec: StreamErrorCodec): unknown {
  if (err instanceof StreamResetError) {
    return new WebTransportStreamError(
      err.streamId,
      codec.fromWire(err.errorCode),
      err.message.includes("stopped") ? "stopped" : "reset",
    );
  }
  return err;
}

/** The sending half of a WebTransport stream. */
export class WebTransportSendStream implements SessionStream {
  private ended = false;

  constructor(
    /** @internal */ readonly inner: SendStream,
    private readonly codec: StreamErrorCodec,
    private readonly owner?: StreamOwner,
  ) {
    void inner.stopped.then(() => this.end());
  }

  /** The QUIC stream ID. */
  get id(): number {
    return this.inner.id;
  }

  /** Queues data; resolves under the high-water mark. Rejects with {@link WebTransportStreamError} when stopped. */
  async write(data: Uint8Array): Promise<void> {
    try {
      await this.inner.write(data);
    } catch (err) {
      throw mapError(err, this.codec);
    }
  }

  /** Ends the stream (FIN); resolves once the peer acknowledged everything. */
  async finish(): Promise<void> {
    try {
      await this.inner.finish();
    } finally {
      this.end();
    }
  }

  /** Abandons the stream with an application error code (RESET_STREAM). */
  reset(code = 0): void {
    const wire = this.codec.toWire(code);
    try {
      this.inner.reset(wire);
    } catch {
      // connection gone
    }
    this.end();
  }

  /** Resolves with the application code when the peer sends STOP_SENDING. */
  get stopped(): Promise<number> {
    return this.inner.stopped.then((c) => this.codec.fromWire(c));
  }

  /** RFC 9218-style priority of this stream's data. */
  setPriority(urgency: number, incremental = true): void {
    this.inner.setPriority(urgency, incremental);
  }

  /** A WHATWG WritableStream (close() sends FIN, abort(e) resets with e.streamErrorCode ?? 0). */
  get writable(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.finish(),
      abort: (reason) => this.reset(streamErrorCodeOf(reason)),
    });
  }

  /** @internal */
  abandon(wireCode: bigint): void {
    if (this.ended) return;
    try {
      this.inner.reset(wireCode);
    } catch {
      // connection gone
    }
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.owner?.done(this);
  }
}

/** The receiving half of a WebTransport stream. */
export class WebTransportRecvStream implements SessionStream, AsyncIterable<Uint8Array> {
  private initial: Uint8Array | undefined;
  private ended = false;

  constructor(
    /** @internal */ readonly inner: RecvStream,
    private readonly codec: StreamErrorCodec,
    initial?: Uint8Array,
    private readonly owner?: StreamOwner,
  ) {
    this.initial = initial !== undefined && initial.length > 0 ? initial : undefined;
  }

  /** The QUIC stream ID. */
  get id(): number {
    return this.inner.id;
  }

  /** The next chunk, or null at the end. Rejects with {@link WebTransportStreamError} on a reset. */
  async read(): Promise<Uint8Array | null> {
    const first = this.initial;
    if (first !== undefined) {
      this.initial = undefined;
      return first;
    }
    try {
      const c = await this.inner.read();
      if (c === null) this.end();
      return c;
    } catch (err) {
      this.end();
      throw mapError(err, this.codec);
    }
  }

  /** Reads to the end; rejects past `limit` bytes. */
  async readAll(limit = Number.POSITIVE_INFINITY): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (let c = await this.read(); c !== null; c = await this.read()) {
      total += c.length;
      if (total > limit) throw new QuicUsageError(`stream ${this.id} exceeds ${limit} bytes`);
      chunks.push(c);
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (let c = await this.read(); c !== null; c = await this.read()) yield c;
  }

  /** Tells the peer to stop sending (STOP_SENDING with an application code). */
  stop(code = 0): void {
    const wire = this.codec.toWire(code);
    this.initial = undefined;
    try {
      this.inner.stop(wire);
    } catch {
      // connection gone
    }
    this.end();
  }

  /** A WHATWG ReadableStream (cancel(e) sends STOP_SENDING with e.streamErrorCode ?? 0). */
  get readable(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await this.read();
        if (chunk) controller.enqueue(chunk.slice());
        else controller.close();
      },
      cancel: (reason) => this.stop(streamErrorCodeOf(reason)),
    });
  }

  /** @internal */
  abandon(wireCode: bigint): void {
    if (this.ended) return;
    this.initial = undefined;
    try {
      this.inner.stop(wireCode);
    } catch {
      // connection gone
    }
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.owner?.done(this);
  }
}

/** A bidirectional stream. */
export interface WebTransportBiStream {
  readonly send: WebTransportSendStream;
  readonly recv: WebTransportRecvStream;
}

/** `reason.streamErrorCode` when it is a valid 32-bit code (W3C WebTransportError), else 0. */
export function streamErrorCodeOf(reason: unknown): number {
  if (typeof reason === "object" && reason !== null && "streamErrorCode" in reason) {
    const c = (reason as { streamErrorCode: unknown }).streamErrorCode;
    if (typeof c === "number" && Number.isInteger(c) && c >= 0 && c <= 0xffffffff) return c;
  }
  return 0;
}
