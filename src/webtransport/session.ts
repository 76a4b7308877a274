/**
 * A WebTransport session over HTTP/3 (draft-ietf-webtrans-http3-02, what Chromium speaks; the
 * wire formats below are unchanged in later drafts), for both roles.
 *
 * - The session is an extended CONNECT stream (`:protocol = webtransport`); its ID is the session
 *   ID. After the 2xx response the stream carries capsules (RFC 9297 §3):
 *   CLOSE_WEBTRANSPORT_SESSION (0x2843: 32-bit code, UTF-8 reason ≤ 1024 bytes) and
 *   DRAIN_WEBTRANSPORT_SESSION (0x78ae); unknown capsules are skipped (RFC 9297 §3.2).
 * - Streams: a unidirectional stream starts with type 0x54 and the session ID (§4.1), a
 *   bidirectional one with the 0x41 signal and the session ID (§4.2). The H3 layer hands the
 *   peer's to {@link WebTransportSessions}, which routes them here.
 * - Datagrams: HTTP/3 datagrams (RFC 9297 §2.1) of the CONNECT stream.
 * - Closing (§5): close(code, reason) sends the CLOSE capsule and FIN; a peer's CLOSE (or a bare
 *   FIN: code 0) is answered with FIN. Either way every stream of the session is reset / stopped
 *   with WT_SESSION_GONE and the session's queues end.
 * - Stream error codes are 32-bit application codes, mapped into the HTTP/3 range (§4.3,
 *   `error-codes.ts`).
 */
import { CapsuleParser, CapsuleType, capsuleBytes } from "../h3/capsules.ts";
import {
  type H3Connection,
  H3ConnectionClosedError,
  type H3Stream,
  H3StreamAbortedError,
  type H3WebTransportStream,
} from "../h3/connection.ts";
import { H3Error, H3ErrorCode } from "../h3/error-codes.ts";
import { WEBTRANSPORT_STREAM_SIGNAL } from "../h3/session.ts";
import { UniStreamType } from "../h3/stream-types.ts";
import { ByteWriter, varintLength } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { AsyncQueue } from "./async-queue.ts";
import { WT_SESSION_GONE } from "./error-codes.ts";
import type { WebTransportCloseInfo, WebTransportSessionApi } from "./session-interface.ts";
import {
  type SessionStream,
  type StreamOwner,
  type WebTransportBiStream,
  WebTransportRecvStream,
  WebTransportSendStream,
  webTransportCodec,
} from "./streams.ts";
import type { WebTransportVersion } from "./version.ts";

/** draft-ietf-webtrans-http3-02 §5: the close reason is at most 1024 bytes of UTF-8. */
export const MAX_CLOSE_REASON_BYTES = 1024;

/** What the extended CONNECT request said (the server's view; the client's own request). */
export interface WebTransportRequestInfo {
  /** https URL from :scheme, :authority and :path. */
  readonly url: URL;
  /** The `origin` header (a browser always sends it). */
  readonly origin: string | undefined;
  /** Every regular header field. */
  readonly headers: Headers;
  /** The negotiated WebTransport version (see `version.ts`). */
  readonly version: WebTransportVersion;
}

export interface WebTransportSessionOptions {
  /** Datagrams kept unread before the oldest is dropped. Default 256. */
  maxBufferedDatagrams?: number;
  /** Incoming streams kept unaccepted before new ones are refused. Default 256. */
  maxBufferedStreams?: number;
}

const te = new TextEncoder();
const td = new TextDecoder();

function preamble(type: number, sessionId: number): Uint8Array {
  const w = new ByteWriter(new Uint8Array(varintLength(type) + varintLength(sessionId)));
  w.writeVarint(type);
  w.writeVarint(sessionId);
  return w.buf;
}

/** One WebTransport session on an HTTP/3 connection. */
export class WebTransportSession implements WebTransportSessionApi, StreamOwner {
  /** The session ID: the CONNECT stream's ID. */
  readonly id: number;
  /** The negotiated WebTransport version. */
  readonly version: WebTransportVersion;
  private readonly incomingBi: AsyncQueue<WebTransportBiStream>;
  private readonly incomingUni: AsyncQueue<WebTransportRecvStream>;
  private readonly datagrams: AsyncQueue<Uint8Array>;
  private readonly streams = new Set<SessionStream>();
  private reason: WebTransportCloseInfo | undefined;
  private closedResolve!: (i: WebTransportCloseInfo) => void;
  private drainingResolve!: () => void;
  private drainSent = false;
  /** Resolves once the session is closed (never rejects). */
  readonly closed: Promise<WebTransportCloseInfo>;
  /** Resolves when the peer asks to wind the session down (DRAIN capsule, or HTTP/3 GOAWAY). */
  readonly draining: Promise<void>;

  constructor(
    readonly connection: H3Connection,
    private readonly connect: H3Stream,
    readonly role: "client" | "server",
    readonly request: WebTransportRequestInfo,
    options: WebTransportSessionOptions = {},
    private readonly onTerminated?: (s: WebTransportSession) => void,
  ) {
    this.id = connect.id;
    this.version = request.version;
    const gone = (s: SessionStream) => s.abandon(BigInt(WT_SESSION_GONE));
    const maxStreams = options.maxBufferedStreams ?? 256;
    this.incomingBi = new AsyncQueue<WebTransportBiStream>(maxStreams, (b) => {
      gone(b.send);
      gone(b.recv);
    });
    this.incomingUni = new AsyncQueue<WebTransportRecvStream>(maxStreams, gone);
    this.datagrams = new AsyncQueue<Uint8Array>(options.maxBufferedDatagrams ?? 256);
    this.closed = new Promise((r) => {
      this.closedResolve = r;
    });
    this.draining = new Promise((r) => {
      this.drainingResolve = r;
    });
    connection.onDatagram(this.id, (payload) => this.datagrams.push(payload.slice()));
    connection.onGoaway(() => this.drainingResolve());
    void this.readCapsules();
  }

  get closeReason(): WebTransportCloseInfo | undefined {
    return this.reason;
  }

  get maxDatagramSize(): number {
    return this.reason ? 0 : this.connection.maxDatagramPayload(this.id);
  }

  acceptBi(): Promise<WebTransportBiStream | null> {
    return this.incomingBi.shift();
  }

  acceptUni(): Promise<WebTransportRecvStream | null> {
    return this.incomingUni.shift();
  }

  async openBi(): Promise<WebTransportBiStream> {
    this.checkOpen();
    const { send, recv } = await this.connection.quic.openBi();
    this.checkOpen();
    // draft-02 §4.2: "WEBTRANSPORT_STREAM signal (0x41), Session ID", then data.
    send.write(preamble(WEBTRANSPORT_STREAM_SIGNAL, this.id)).catch(() => {});
    const s = {
      send: this.track(new WebTransportSendStream(send, webTransportCodec, this)),
      recv: this.track(new WebTransportRecvStream(recv, webTransportCodec, undefined, this)),
    };
    return s;
  }

  async openUni(): Promise<WebTransportSendStream> {
    this.checkOpen();
    const send = await this.connection.quic.openUni();
    this.checkOpen();
    // draft-02 §4.1: "Stream Type (0x54), Session ID", then data.
    send.write(preamble(UniStreamType.WEBTRANSPORT, this.id)).catch(() => {});
    return this.track(new WebTransportSendStream(send, webTransportCodec, this));
  }

  sendDatagram(data: Uint8Array): void {
    this.checkOpen();
    this.connection.sendDatagram(this.id, data);
  }

  readDatagram(): Promise<Uint8Array | null> {
    return this.datagrams.shift();
  }

  /**
   * Closes the session (draft-02 §5): CLOSE_WEBTRANSPORT_SESSION with `code` (32-bit) and
   * `reason` (≤ 1024 bytes of UTF-8), then FIN; resets the session's streams.
   */
  close(code = 0, reason = ""): void {
    if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) {
      throw new QuicUsageError(`a session close code is a 32-bit unsigned integer, not ${code}`);
    }
    const text = te.encode(reason);
    if (text.length > MAX_CLOSE_REASON_BYTES) {
      throw new QuicUsageError(`a session close reason is at most ${MAX_CLOSE_REASON_BYTES} bytes`);
    }
    if (this.reason) return;
    const value = new Uint8Array(4 + text.length);
    new DataView(value.buffer).setUint32(0, code);
    value.set(text, 4);
    void this.connect.writeData(capsuleBytes(CapsuleType.CLOSE_WEBTRANSPORT_SESSION, value), true);
    this.terminate({ code, reason, remote: false, clean: true });
  }

  /** Asks the peer to wind the session down (DRAIN_WEBTRANSPORT_SESSION, sent once). */
  drain(): void {
    if (this.reason || this.drainSent) return;
    this.drainSent = true;
    void this.connect.writeData(capsuleBytes(CapsuleType.DRAIN_WEBTRANSPORT_SESSION, new Uint8Array(0)));
  }

  /** @internal a peer stream of this session (from {@link WebTransportSessions}). */
  deliver(s: H3WebTransportStream): void {
    if (s.send !== undefined) {
      const b = {
        send: this.track(new WebTransportSendStream(s.send, webTransportCodec, this)),
        recv: this.track(new WebTransportRecvStream(s.recv, webTransportCodec, s.initial, this)),
      };
      if (this.reason) this.abandonAll([b.send, b.recv]);
      else this.incomingBi.push(b);
    } else {
      const r = this.track(new WebTransportRecvStream(s.recv, webTransportCodec, s.initial, this));
      if (this.reason) this.abandonAll([r]);
      else this.incomingUni.push(r);
    }
  }

  /** @internal StreamOwner */
  done(s: SessionStream): void {
    this.streams.delete(s);
  }

  private track<T extends SessionStream>(s: T): T {
    this.streams.add(s);
    return s;
  }

  private abandonAll(list: Iterable<SessionStream>): void {
    for (const s of [...list]) s.abandon(BigInt(WT_SESSION_GONE));
  }

  private checkOpen(): void {
    if (this.reason) throw new QuicUsageError(`WebTransport session ${this.id} is closed`);
  }

  private terminate(info: WebTransportCloseInfo): void {
    if (this.reason) return;
    this.reason = info;
    // draft-ietf-webtrans-http3 §5: on session termination the endpoint resets the send side and
    // aborts reading on the receive side of every stream of the session (WT_SESSION_GONE).
    this.abandonAll(this.streams);
    this.streams.clear();
    this.incomingBi.close(true);
    this.incomingUni.close(true);
    this.datagrams.close(true);
    this.connection.onDatagram(this.id, undefined);
    this.onTerminated?.(this);
    this.closedResolve(info);
  }

  private async readCapsules(): Promise<void> {
    // A CLOSE capsule holds a 4-byte code and up to 1024 bytes of reason.
    const parser = new CapsuleParser({ maxCapsuleSize: 4 + MAX_CLOSE_REASON_BYTES });
    try {
      for (let e = await this.connect.nextEvent(); e !== null; e = await this.connect.nextEvent()) {
        if (e.type === "data") {
          parser.push(e.data);
          for (let c = parser.pull(); c !== undefined; c = parser.pull()) this.onCapsule(c);
        } else if (e.type === "end") {
          parser.finish();
          for (let c = parser.pull(); c !== undefined; c = parser.pull()) this.onCapsule(c);
          break;
        }
      }
      // draft-02 §5: a FIN without CLOSE_WEBTRANSPORT_SESSION is a close with code 0; answer it
      // with our FIN.
      this.terminate({ code: 0, reason: "", remote: true, clean: true });
      this.connect.finish();
    } catch (err) {
      if (err instanceof H3Error) {
        // RFC 9297 §3.3: a malformed capsule makes the message malformed: H3_MESSAGE_ERROR.
        this.connect.cancel(H3ErrorCode.H3_MESSAGE_ERROR);
        this.terminate({ code: 0, reason: `malformed capsule: ${err.reason}`, remote: false, clean: false });
      } else if (err instanceof H3StreamAbortedError || err instanceof H3ConnectionClosedError) {
        this.terminate({ code: 0, reason: err.message, remote: err.remote, clean: false });
      } else {
        this.terminate({ code: 0, reason: String(err), remote: false, clean: false });
      }
    }
  }

  private onCapsule(
    c:
      | { kind: "datagram"; payload: Uint8Array }
      | { kind: "capsule"; capsule: { type: number; value: Uint8Array } }
      | { kind: "skipped" },
  ): void {
    if (c.kind === "datagram") {
      // RFC 9297 §3.5: a DATAGRAM capsule is a datagram that took the reliable path.
      if (!this.reason) this.datagrams.push(c.payload.slice());
      return;
    }
    if (c.kind !== "capsule") return;
    const { type, value } = c.capsule;
    if (type === CapsuleType.CLOSE_WEBTRANSPORT_SESSION) {
      if (value.length < 4) {
        throw new H3Error(H3ErrorCode.H3_MESSAGE_ERROR, "CLOSE_WEBTRANSPORT_SESSION shorter than its code");
      }
      const code = new DataView(value.buffer, value.byteOffset, 4).getUint32(0);
      const reason = td.decode(value.subarray(4));
      this.terminate({ code, reason, remote: true, clean: true });
      // draft-02 §5: the peer's CLOSE is answered by closing our side of the CONNECT stream.
      this.connect.finish();
    } else if (type === CapsuleType.DRAIN_WEBTRANSPORT_SESSION) {
      this.drainingResolve();
    }
  }
}
