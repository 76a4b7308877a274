/**
 * A sans-IO HTTP/3 connection core (RFC 9114, QPACK RFC 9204): stream-level inputs in, stream
 * actions and HTTP events out. It knows nothing of sockets, promises or WHATWG objects; the
 * adapter (`connection.ts`) feeds it from a QUIC connection, and the tests wire two sessions
 * back to back.
 *
 * Inputs:
 * - {@link H3Session.peerStreamOpened}: the peer opened a stream (optional: the first
 *   {@link H3Session.receive} on a new peer stream opens it too);
 * - {@link H3Session.receive}: bytes (views are kept until consumed, never modified) and FIN on
 *   any stream;
 * - {@link H3Session.streamReset} (peer RESET_STREAM), {@link H3Session.streamStopped} (peer
 *   STOP_SENDING on a request stream) and {@link H3Session.localUniStopped} (on one of ours);
 * - the local API: {@link H3Session.sendRequest} / {@link H3Session.sendResponse} /
 *   {@link H3Session.sendHeaders}, {@link H3Session.sendData}, {@link H3Session.sendTrailers},
 *   {@link H3Session.finish}, {@link H3Session.cancel}, {@link H3Session.stopReading},
 *   {@link H3Session.goaway}, {@link H3Session.close}, {@link H3Session.sendPriorityUpdate}.
 *
 * Outputs, drained with {@link H3Session.takeActions} / {@link H3Session.takeEvents} after every
 * call: {@link H3Action}s (write to one of our three unidirectional streams, write/FIN on a request
 * stream, RESET_STREAM, STOP_SENDING, close the connection) and {@link H3Event}s (SETTINGS, GOAWAY,
 * request/response heads, body chunks, trailers, end, stream errors, priority changes, closed).
 * Actions must be executed in order per stream; our unidirectional streams are named
 * ({@link LocalUniStream}), the adapter opens them and maps names to QUIC stream IDs. The first
 * write on each already carries its stream type (RFC 9114 §6.2).
 *
 * What it owns:
 * - our control stream: SETTINGS first (§6.2.1) with QPACK_MAX_TABLE_CAPACITY,
 *   QPACK_BLOCKED_STREAMS, MAX_FIELD_SECTION_SIZE, ENABLE_CONNECT_PROTOCOL (server),
 *   H3_DATAGRAM and a reserved setting, then a reserved frame (§7.2.8, §7.2.4.1: GREASE);
 *   GOAWAY and PRIORITY_UPDATE later. The QPACK encoder and decoder streams (RFC 9204 §4.2).
 * - the peer's unidirectional streams: one control stream (a second one is
 *   H3_STREAM_CREATION_ERROR; closing it H3_CLOSED_CRITICAL_STREAM, §6.2.1), one encoder and one
 *   decoder stream (RFC 9204 §4.2, same rules), push streams refused (we never send MAX_PUSH_ID:
 *   a client receiving one answers H3_ID_ERROR, §4.6; a server H3_STREAM_CREATION_ERROR, §6.2.2),
 *   and every other type read-aborted with STOP_SENDING(H3_STREAM_CREATION_ERROR) and ignored
 *   (§6.2: "MUST NOT consider unknown stream types to be a connection error of any kind").
 * - request streams: HEADERS, DATA*, optional trailing HEADERS with the order rules of §4.1
 *   (violations are connection errors H3_FRAME_UNEXPECTED), unknown frames skipped (§9),
 *   interim 1xx responses, QPACK blocked sections kept and retried when the encoder stream
 *   unblocks them (RFC 9204 §2.1.2), Stream Cancellation when a stream is abandoned (§4.4.2),
 *   HTTP semantics (message.ts) → stream errors H3_MESSAGE_ERROR (RESET_STREAM + STOP_SENDING).
 * - GOAWAY (§5.2) both ways: a server stops accepting request IDs at or above the GOAWAY it sent
 *   (rejecting them with H3_REQUEST_REJECTED); a client stops opening requests once it received
 *   one, and reports its requests at or above the ID as retry-safe errors.
 * - priorities (RFC 9218): the `priority` request header and PRIORITY_UPDATE frames become
 *   {@link Priority} values in events; the adapter applies them (SendStream.setPriority).
 *
 * Errors: peer misbehaviour becomes a stream error (event "stream-error" + reset/stop actions)
 * or a connection error (a "close" action and a "closed" event); after that every input is
 * ignored. Local misuse throws {@link QuicUsageError}. Nothing else is thrown for peer input.
 */
import { randomBytes as cryptoRandomBytes } from "node:crypto";
import { ByteWriter } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { decodeH3Datagram, encodeH3Datagram, h3DatagramSize } from "./capsules.ts";
import { H3Error, H3ErrorCode, randomGreaseValue } from "./error-codes.ts";
import { FrameReader } from "./frame-reader.ts";
import {
  encodeFrame,
  encodeFrameHeader,
  FrameType,
  frameHeaderSize,
  frameSize,
  type H3Frame,
} from "./frames.ts";
import {
  H3MessageError,
  type HeaderField,
  parseRequestHead,
  parseResponseHead,
  parseTrailers,
  type RequestHead,
  type ResponseHead,
  responseHasNoContent,
} from "./message.ts";
import {
  DEFAULT_PRIORITY,
  type Priority,
  type PriorityParameters,
  parsePriority,
  priorityFromUpdate,
  priorityUpdateFrame,
} from "./priority.ts";
import { QpackDecoder } from "./qpack/decoder.ts";
import { QpackEncoder, type QpackEncoderOptions, type QpackFieldInput } from "./qpack/encoder.ts";
import { type H3Settings, settingsFromEntries, settingsToEntries } from "./settings.ts";
import { isClientBidiStreamId, UniStreamHeaderReader, UniStreamType } from "./stream-types.ts";

/** Our unidirectional streams, by name. */
export type LocalUniStream = "control" | "qpack-encoder" | "qpack-decoder";

/** What the adapter must do, in order. */
export type H3Action =
  /** Write on one of our unidirectional streams (opening it on the first write). */
  | { type: "uni-write"; stream: LocalUniStream; data: Uint8Array }
  /** Write on a request stream, then FIN when `fin`. `data` may be empty. */
  | { type: "write"; streamId: number; data: Uint8Array; fin: boolean }
  /** RESET_STREAM on our sending half. */
  | { type: "reset"; streamId: number; code: number }
  /** STOP_SENDING on our receiving half (discard what arrives). */
  | { type: "stop"; streamId: number; code: number }
  /** Close the QUIC connection with this application error code. */
  | { type: "close"; code: number; reason: string }
  /** Send a QUIC DATAGRAM frame (RFC 9221) carrying this HTTP/3 datagram (RFC 9297 §2.1). */
  | { type: "datagram"; data: Uint8Array };

/** A request head as delivered to a server, with its priority (RFC 9218). */
export interface H3RequestHead extends RequestHead {
  priority: Priority;
}

/** What happened, for the application. */
export type H3Event =
  | { type: "settings"; settings: H3Settings }
  | { type: "goaway"; id: bigint }
  /** Server: a request's header section. */
  | { type: "request"; streamId: number; head: H3RequestHead }
  /** Client: an interim (1xx) response. */
  | { type: "informational"; streamId: number; head: ResponseHead }
  /** Client: the final response's header section. */
  | { type: "response"; streamId: number; head: ResponseHead }
  /** Body bytes (a view: copy it to keep it past the next input). */
  | { type: "data"; streamId: number; data: Uint8Array }
  | { type: "trailers"; streamId: number; fields: HeaderField[] }
  /** The message ended cleanly (FIN, Content-Length matched). */
  | { type: "end"; streamId: number }
  /**
   * The stream was aborted: by the peer (`remote`, RESET_STREAM with `code`) or by us after a
   * stream error (our RESET_STREAM/STOP_SENDING used `code`). `retryable`: the request was not
   * processed by the server (H3_REQUEST_REJECTED, or above a GOAWAY, RFC 9114 §4.1.1, §5.2) and
   * can be sent again on another connection.
   */
  | {
      type: "stream-error";
      streamId: number;
      code: number;
      reason: string;
      remote: boolean;
      retryable: boolean;
    }
  /** The peer asked us to stop sending on the stream (STOP_SENDING); our sending half is done. */
  | { type: "stopped"; streamId: number; code: number }
  /** Server: a new priority for a request stream (PRIORITY_UPDATE, RFC 9218 §7). */
  | { type: "priority"; streamId: number; priority: Priority }
  /**
   * A WebTransport stream (draft-ietf-webtrans-http3-02 §4): a peer stream whose preamble named
   * WebTransport session `sessionId` (a CONNECT stream ID). From now on the session no longer reads
   * it: `data` (a view) and `fin` are what followed the preamble in the input that completed it; the
   * adapter hands the QUIC stream to the WebTransport layer.
   */
  | {
      type: "webtransport-stream";
      streamId: number;
      sessionId: number;
      bidi: boolean;
      data: Uint8Array;
      fin: boolean;
    }
  /** An HTTP/3 datagram (RFC 9297 §2.1) for request stream `streamId` (payload is a view). */
  | { type: "datagram"; streamId: number; payload: Uint8Array }
  | { type: "closed"; code: number; reason: string; remote: boolean };

export interface H3SessionOptions {
  role: "client" | "server";
  /** Our SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 §5). Default 4096. */
  qpackMaxTableCapacity?: number;
  /** Our SETTINGS_QPACK_BLOCKED_STREAMS (RFC 9204 §5). Default 16. */
  qpackBlockedStreams?: number;
  /** Our SETTINGS_MAX_FIELD_SECTION_SIZE (§4.2.2); also the largest HEADERS frame. Default 65536. */
  maxFieldSectionSize?: number;
  /** Server: SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 9220 §3). Default false. */
  enableConnectProtocol?: boolean;
  /** SETTINGS_H3_DATAGRAM (RFC 9297 §2.1.1). Default false. */
  h3Datagram?: boolean;
  /**
   * WebTransport over HTTP/3 (draft-ietf-webtrans-http3-02, what Chromium speaks, and the current
   * draft): sends H3_DATAGRAM, ENABLE_WEBTRANSPORT (0x2b603742), WT_ENABLED (0x2c7cf000) and, on a
   * server, ENABLE_CONNECT_PROTOCOL; routes
   * peer uni streams of type 0x54 and bidi streams starting with the 0x41 signal as
   * "webtransport-stream" events; a client accepts server-initiated bidi streams (they must carry
   * the 0x41 signal). Default false.
   */
  webTransport?: boolean;
  /**
   * With `webTransport`: which WebTransport versions the SETTINGS announce — draft-02
   * (ENABLE_WEBTRANSPORT) and the current draft (WT_ENABLED). Default both.
   */
  webTransportVersions?: { draft02: boolean; latest: boolean } | undefined;
  /** Send a reserved setting and a reserved frame on the control stream. Default true. */
  grease?: boolean;
  /** Random source for GREASE. Default node:crypto. */
  randomBytes?: (n: number) => Uint8Array;
  /** QPACK encoder tuning (its maxTableCapacity bounds the table we use for the peer). */
  qpackEncoder?: QpackEncoderOptions;
  /** PRIORITY_UPDATE frames kept for request streams not opened yet. Default 64. */
  maxPendingPriorityUpdates?: number;
}

/** Receive phases of a request stream (RFC 9114 §4.1). */
const Recv = {
  /** Waiting for the (final) header section. */
  Headers: 0,
  /** After the header section: DATA, or trailers. */
  Body: 1,
  /** After the trailer section: nothing but unknown frames and FIN. */
  AfterTrailers: 2,
  /** Ended, aborted or stopped. */
  Closed: 3,
} as const;
type Recv = (typeof Recv)[keyof typeof Recv];

/** Send phases of a request stream. */
const Send = {
  /** Nothing sent, or only interim responses. */
  Idle: 0,
  /** Header section sent: DATA, trailers or FIN next. */
  Body: 1,
  /** FIN or RESET_STREAM sent, or stopped by the peer. */
  Closed: 2,
} as const;
type Send = (typeof Send)[keyof typeof Send];

interface RequestStream {
  readonly id: number;
  readonly reader: FrameReader;
  recv: Recv;
  send: Send;
  /** A field section waiting for QPACK encoder-stream updates (RFC 9204 §2.1.2). */
  blocked: Uint8Array | undefined;
  contentLength: number | undefined;
  received: number;
  /** The message cannot have content (response to HEAD, 204, 304). */
  noContent: boolean;
  /** A CONNECT request stream (§4.4): no trailers. */
  connect: boolean;
  /**
   * WebTransport: a peer stream whose first bytes may be the 0x41 signal; the bytes seen so far
   * (at most 16) until that is decided, undefined once it is.
   */
  sniff: Uint8Array | undefined;
  /** Client: the request's method. */
  method: string | undefined;
}

/** Peer unidirectional stream kinds. */
const Uni = {
  Header: 0,
  Control: 1,
  Encoder: 2,
  Decoder: 3,
  Ignored: 4,
  /** A WebTransport stream handed to the adapter (draft-ietf-webtrans-http3-02 §4.1). */
  WebTransport: 5,
} as const;
type Uni = (typeof Uni)[keyof typeof Uni];

interface PeerUniStream {
  readonly id: number;
  kind: Uni;
  header: UniStreamHeaderReader | undefined;
  reader: FrameReader | undefined;
}

const MAX_STREAM_ID_BIG = (1n << 62n) - 1n;
/** draft-ietf-webtrans-http3-02 §4.2: the WEBTRANSPORT_STREAM signal opening a bidi WT stream. */
export const WEBTRANSPORT_STREAM_SIGNAL = 0x41;

/** A varint at `pos` of `buf`: [value (saturated to 2^53 − 1), length], or undefined if truncated. */
function peekVarint(buf: Uint8Array, pos: number): [number, number] | undefined {
  if (buf.length <= pos) return undefined;
  const len = 1 << (buf[pos] >> 6);
  if (buf.length < pos + len) return undefined;
  let v = buf[pos] & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + buf[pos + i];
  return [Math.min(v, Number.MAX_SAFE_INTEGER), len];
}
/** §5.2: the largest client-initiated bidirectional stream ID, for a graceful GOAWAY. */
export const GOAWAY_MAX_STREAM_ID = (1n << 62n) - 4n;

/** Field names not worth inserting in the QPACK dynamic table: they rarely repeat. */
const VOLATILE = new Set([
  ":path",
  "content-length",
  "date",
  "etag",
  "last-modified",
  "if-none-match",
  "if-modified-since",
  "content-range",
  "range",
]);

function isRequestStreamId(id: number): boolean {
  return id % 4 === 0;
}
function isUniStreamId(id: number): boolean {
  return (id & 2) === 2;
}
function isServerInitiated(id: number): boolean {
  return (id & 1) === 1;
}

function frameBytes(f: H3Frame): Uint8Array {
  const w = new ByteWriter(new Uint8Array(frameSize(f)));
  encodeFrame(w, f);
  return w.buf;
}

function sectionSize(fields: readonly QpackFieldInput[]): number {
  let n = 0;
  for (const f of fields) n += f[0].length + f[1].length + 32;
  return n;
}

export class H3Session {
  readonly role: "client" | "server";
  /** The settings we sent. */
  readonly localSettings: H3Settings;
  /** The peer's SETTINGS, once received. */
  peerSettings: H3Settings | undefined;
  /** GOAWAY identifier we sent (lowest so far). */
  goawaySent: bigint | undefined;
  /** GOAWAY identifier the peer sent (lowest so far). */
  goawayReceived: bigint | undefined;
  /** Why the connection closed, once it did. */
  closeReason: { code: number; reason: string; remote: boolean } | undefined;

  private readonly encoder: QpackEncoder;
  private readonly decoder: QpackDecoder;
  private readonly maxFrameSize: number;
  private readonly randomBytes: (n: number) => Uint8Array;
  private readonly maxPendingPriorities: number;
  /** WebTransport (draft-02) is enabled. */
  readonly webTransport: boolean;

  private actions: H3Action[] = [];
  private events: H3Event[] = [];
  private readonly requests = new Map<number, RequestStream>();
  private readonly uni = new Map<number, PeerUniStream>();
  private peerControl: number | undefined;
  private peerEncoder: number | undefined;
  private peerDecoder: number | undefined;
  /** Largest peer-initiated stream ID seen, per stream type (low two bits). */
  private readonly maxPeerStream = [-1, -1, -1, -1];
  /** Largest client request stream ID we opened (client) or received (server). */
  private maxRequestId = -4;
  /** Server: MAX_PUSH_ID received (we never push). */
  private maxPushIdReceived: number | undefined;
  /** Server: PRIORITY_UPDATE for request streams not opened yet, in arrival order. */
  private readonly pendingPriorities = new Map<number, Priority>();

  constructor(options: H3SessionOptions) {
    this.role = options.role;
    const capacity = options.qpackMaxTableCapacity ?? 4096;
    const blocked = options.qpackBlockedStreams ?? 16;
    const maxFieldSectionSize = options.maxFieldSectionSize ?? 65536;
    this.randomBytes = options.randomBytes ?? ((n) => cryptoRandomBytes(n));
    this.maxPendingPriorities = options.maxPendingPriorityUpdates ?? 64;
    this.webTransport = options.webTransport ?? false;
    this.maxFrameSize = Number.isFinite(maxFieldSectionSize) ? Math.max(maxFieldSectionSize, 1024) : 1 << 20;
    this.decoder = new QpackDecoder({
      maxTableCapacity: capacity,
      maxBlockedStreams: blocked,
      maxFieldSectionSize,
    });
    this.encoder = new QpackEncoder({
      shouldIndex: (name) => !VOLATILE.has(name),
      ...options.qpackEncoder,
    });
    const settings: Partial<H3Settings> = {
      qpackMaxTableCapacity: capacity,
      qpackBlockedStreams: blocked,
      maxFieldSectionSize,
      h3Datagram: (options.h3Datagram ?? false) || this.webTransport,
    };
    // RFC 9220 §3: the server advertises extended CONNECT; a client has nothing to announce.
    if (this.role === "server")
      settings.enableConnectProtocol = (options.enableConnectProtocol ?? false) || this.webTransport;
    // draft-ietf-webtrans-http3-02 §3.1: SETTINGS_ENABLE_WEBTRANSPORT = 1 on both sides (with
    // H3_DATAGRAM, §3: "MUST" for WebTransport). The current draft (§3.1, "Negotiating the Draft
    // Version"): both sides send SETTINGS_WT_ENABLED; the highest version both sent is used.
    if (this.webTransport) {
      const versions = options.webTransportVersions ?? { draft02: true, latest: true };
      if (versions.draft02) settings.enableWebTransportDraft02 = true;
      if (versions.latest) settings.wtEnabled = true;
    }
    const grease = options.grease ?? true;
    const entries = settingsToEntries(settings, grease ? { grease: this.randomBytes } : {});
    this.localSettings = settingsFromEntries(entries);

    // §6.2.1: "Each side MUST initiate a single control stream at the beginning of the connection
    // and send its SETTINGS frame as the first frame on this stream." §6.2: the QPACK streams are
    // created first too.
    const frames: H3Frame[] = [{ kind: "settings", entries }];
    if (grease) {
      // §7.2.8: reserved frame types exercise the peer's "ignore unknown frames" rule.
      const len = this.randomBytes(1)[0] & 7;
      frames.push({
        kind: "unknown",
        type: randomGreaseValue(this.randomBytes),
        payload: this.randomBytes(len),
      });
    }
    let size = 1;
    for (const f of frames) size += frameSize(f);
    const w = new ByteWriter(new Uint8Array(size));
    w.writeVarint(UniStreamType.CONTROL);
    for (const f of frames) encodeFrame(w, f);
    this.actions.push({ type: "uni-write", stream: "control", data: w.buf });
    this.actions.push({
      type: "uni-write",
      stream: "qpack-encoder",
      data: Uint8Array.of(UniStreamType.QPACK_ENCODER),
    });
    this.actions.push({
      type: "uni-write",
      stream: "qpack-decoder",
      data: Uint8Array.of(UniStreamType.QPACK_DECODER),
    });
  }

  // -------------------------------------------------------------------------------------------
  // Outputs

  /** The actions queued so far (the queue is emptied). */
  takeActions(): H3Action[] {
    const a = this.actions;
    if (a.length === 0) return a;
    this.actions = [];
    return a;
  }

  /** The events queued so far (the queue is emptied). */
  takeEvents(): H3Event[] {
    const e = this.events;
    if (e.length === 0) return e;
    this.events = [];
    return e;
  }

  get isClosed(): boolean {
    return this.closeReason !== undefined;
  }

  /** Request streams still open in either direction. */
  get activeRequests(): number {
    return this.requests.size;
  }

  /** Client: true while new requests may be sent (no GOAWAY either way, not closed). */
  get canRequest(): boolean {
    return (
      this.closeReason === undefined && this.goawayReceived === undefined && this.goawaySent === undefined
    );
  }

  /** The QPACK encoder's dynamic table insert count (observability, tests). */
  get qpackInsertCount(): number {
    return this.encoder.table.insertCount;
  }

  /** Whether a request stream is known and not fully closed. */
  hasStream(streamId: number): boolean {
    return this.requests.has(streamId);
  }

  /** WebTransport: whether a new peer bidi stream is still undecided (request or WT stream). */
  isUndecided(streamId: number): boolean {
    return this.requests.get(streamId)?.sniff !== undefined;
  }

  /** Whether the receiving half of a request stream waits for QPACK encoder-stream data. */
  isBlocked(streamId: number): boolean {
    return this.requests.get(streamId)?.blocked !== undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Inputs from the transport

  /** The peer opened stream `streamId` (in ID order, as QUIC reports them). */
  peerStreamOpened(streamId: number): void {
    if (this.closeReason) return;
    this.guard(undefined, () => this.openPeerStream(streamId));
  }

  /** Bytes received on a stream (`fin`: the stream ends after them). */
  receive(streamId: number, data: Uint8Array, fin = false): void {
    if (this.closeReason) return;
    if (isUniStreamId(streamId)) {
      if (isServerInitiated(streamId) === (this.role === "server")) return; // one of ours: not readable
      let s = this.uni.get(streamId);
      if (s === undefined) {
        if (!this.guard(undefined, () => this.openPeerStream(streamId))) return;
        s = this.uni.get(streamId);
        if (s === undefined) return; // closed earlier
      }
      const st = s;
      this.guard(undefined, () => this.receiveUni(st, data, fin));
      return;
    }
    let rs = this.requests.get(streamId);
    if (rs === undefined) {
      // Peer bidi streams: requests (server), WebTransport streams (a WebTransport client).
      const peerBidi =
        this.role === "server"
          ? isRequestStreamId(streamId)
          : this.webTransport && isServerInitiated(streamId);
      if (!peerBidi || streamId <= this.maxPeerStream[streamId & 3]) {
        if (this.role === "client" && isServerInitiated(streamId) && !this.webTransport) {
          // §6.1: "Clients MUST treat receipt of a server-initiated bidirectional stream as a
          // connection error of type H3_STREAM_CREATION_ERROR".
          this.fail(H3ErrorCode.H3_STREAM_CREATION_ERROR, "server-initiated bidirectional stream");
        }
        return; // a closed stream: late data
      }
      if (!this.guard(undefined, () => this.openPeerStream(streamId))) return;
      rs = this.requests.get(streamId);
      if (rs === undefined) return; // rejected
    }
    const r = rs;
    this.guard(r, () => {
      if (r.recv === Recv.Closed) return;
      let d = data;
      if (r.sniff !== undefined) {
        const rest = this.sniffWebTransport(r, data, fin);
        if (rest === undefined) return;
        d = rest;
      }
      if (d.length > 0) r.reader.push(d);
      if (fin) r.reader.finish();
      this.pumpRequest(r);
    });
  }

  /**
   * A QUIC DATAGRAM frame's payload: an HTTP/3 datagram (RFC 9297 §2.1) becomes a "datagram"
   * event. Ignored unless we sent SETTINGS_H3_DATAGRAM; one too short for its quarter stream ID is
   * a connection error H3_DATAGRAM_ERROR. Datagrams for streams that are not open are the
   * application's to drop (§2.1: "MUST be silently dropped" once the stream is closed).
   */
  receiveDatagram(data: Uint8Array): void {
    if (this.closeReason || !this.localSettings.h3Datagram) return;
    this.guard(undefined, () => {
      const d = decodeH3Datagram(data);
      this.events.push({ type: "datagram", streamId: d.streamId, payload: d.payload });
    });
  }

  /**
   * Sends `payload` as an HTTP/3 datagram of request stream `streamId` (a "datagram" action).
   * RFC 9297 §2.1.1: "QUIC DATAGRAM frames MUST NOT be sent until the SETTINGS_H3_DATAGRAM setting
   * has been both sent and received with a value of 1" — a QuicUsageError before that.
   */
  sendDatagram(streamId: number, payload: Uint8Array): void {
    this.checkOpen();
    if (!this.localSettings.h3Datagram || this.peerSettings?.h3Datagram !== true) {
      throw new QuicUsageError("HTTP/3 datagrams need SETTINGS_H3_DATAGRAM sent and received");
    }
    const w = new ByteWriter(new Uint8Array(h3DatagramSize(streamId, payload.length)));
    encodeH3Datagram(w, streamId, payload);
    this.actions.push({ type: "datagram", data: w.buf });
  }

  /** The peer reset its sending half of `streamId` (RESET_STREAM with `code`). */
  streamReset(streamId: number, code: number | bigint): void {
    if (this.closeReason) return;
    const c = Number(code);
    if (isUniStreamId(streamId)) {
      const s = this.uni.get(streamId);
      if (s === undefined) return; // §6.2: tolerated before the stream header
      if (s.kind === Uni.Control || s.kind === Uni.Encoder || s.kind === Uni.Decoder) {
        // §6.2.1, RFC 9204 §4.2: closing a critical stream is H3_CLOSED_CRITICAL_STREAM.
        this.fail(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, "critical stream reset by the peer");
        return;
      }
      this.uni.delete(streamId);
      return;
    }
    const rs = this.requests.get(streamId);
    if (rs === undefined || rs.recv === Recv.Closed) return;
    rs.recv = Recv.Closed;
    rs.blocked = undefined;
    // RFC 9204 §2.2.2.2: a stream reset before all its field sections were processed gets a
    // Stream Cancellation.
    this.decoder.cancelStream(streamId);
    this.flushDecoder();
    const retryable = this.role === "client" && c === H3ErrorCode.H3_REQUEST_REJECTED;
    this.events.push({
      type: "stream-error",
      streamId,
      code: c,
      reason: "reset by the peer",
      remote: true,
      retryable,
    });
    this.retire(rs);
  }

  /** The peer sent STOP_SENDING for our sending half of request stream `streamId`. */
  streamStopped(streamId: number, code: number | bigint): void {
    if (this.closeReason) return;
    const rs = this.requests.get(streamId);
    if (rs === undefined || rs.send === Send.Closed) return;
    // RFC 9000 §3.5: the transport answers with RESET_STREAM; our sending half is over.
    rs.send = Send.Closed;
    this.events.push({ type: "stopped", streamId, code: Number(code) });
    this.retire(rs);
  }

  /** The peer sent STOP_SENDING for one of our unidirectional streams. */
  localUniStopped(stream: LocalUniStream): void {
    // §6.2.1: "the receiver MUST NOT request that the sender close the control stream"; RFC 9204
    // §4.2 likewise for the QPACK streams: H3_CLOSED_CRITICAL_STREAM.
    this.fail(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, `peer stopped our ${stream} stream`);
  }

  /** The QUIC connection closed underneath (transport error, peer close, idle timeout). */
  transportClosed(code: number, reason: string): void {
    if (this.closeReason) return;
    this.closeReason = { code, reason, remote: true };
    this.requests.clear();
    this.events.push({ type: "closed", code, reason, remote: true });
  }

  // -------------------------------------------------------------------------------------------
  // Local API: requests and responses

  /**
   * Client: sends a request's header section on the newly opened bidirectional stream
   * `streamId`. `fields` starts with the pseudo-headers. With `fin`, the request has no content.
   */
  sendRequest(streamId: number, fields: readonly QpackFieldInput[], fin = false): void {
    if (this.role !== "client") throw new QuicUsageError("only a client sends requests");
    if (!isClientBidiStreamId(streamId))
      throw new QuicUsageError(`stream ${streamId} is not a request stream`);
    this.checkOpen();
    // §5.2: "Endpoints MUST NOT initiate new requests ... after receipt of a GOAWAY frame".
    if (this.goawayReceived !== undefined) throw new QuicUsageError("the server sent GOAWAY");
    if (this.requests.has(streamId) || streamId <= this.maxRequestId) {
      throw new QuicUsageError(`stream ${streamId} already carries a request`);
    }
    let method: string | undefined;
    let protocol: string | undefined;
    for (const f of fields) {
      if (f[0] === ":method") method = f[1];
      else if (f[0] === ":protocol") protocol = f[1];
    }
    if (protocol !== undefined) {
      // RFC 9220 §3: "a client MUST NOT send the :protocol pseudo-header ... until it has received
      // SETTINGS_ENABLE_CONNECT_PROTOCOL with a value of 1". Chromium also takes draft-02's
      // ENABLE_WEBTRANSPORT = 1 as that permission for WebTransport.
      const p = this.peerSettings;
      const allowed =
        p !== undefined &&
        (p.enableConnectProtocol ||
          (this.webTransport && protocol === "webtransport" && p.enableWebTransportDraft02));
      if (!allowed) throw new QuicUsageError("the server did not enable extended CONNECT (RFC 9220)");
      if (method !== "CONNECT") throw new QuicUsageError(":protocol needs the CONNECT method");
    }
    this.maxRequestId = streamId;
    const rs = this.newRequestStream(streamId);
    rs.method = method;
    this.requests.set(streamId, rs);
    this.writeHeaders(rs, fields, fin);
    rs.send = fin ? Send.Closed : Send.Body;
  }

  /**
   * Server: sends a response header section (`:status` first). A 1xx status is an interim
   * response (more header sections follow); with `fin`, the response has no content. Returns
   * false when the stream's sending half is already closed (stopped by the peer, reset).
   */
  sendResponse(streamId: number, fields: readonly QpackFieldInput[], fin = false): boolean {
    if (this.role !== "server") throw new QuicUsageError("only a server sends responses");
    return this.sendHeaders(streamId, fields, fin);
  }

  /**
   * Sends a header section on a request stream: the (interim or final) response head for a
   * server, or trailers (`fin` forced) once the head was sent. Returns false when the sending
   * half is already closed.
   */
  sendHeaders(streamId: number, fields: readonly QpackFieldInput[], fin = false): boolean {
    this.checkOpen();
    const rs = this.requests.get(streamId);
    if (rs === undefined) return false;
    if (rs.send === Send.Closed) return false;
    if (rs.send === Send.Body) {
      this.writeHeaders(rs, fields, true);
      rs.send = Send.Closed;
      this.retire(rs);
      return true;
    }
    const status = fields.length > 0 && fields[0][0] === ":status" ? fields[0][1] : "";
    const interim = status.length === 3 && status[0] === "1";
    if (interim && fin) throw new QuicUsageError("an interim response cannot end the stream");
    this.writeHeaders(rs, fields, fin);
    if (!interim) rs.send = fin ? Send.Closed : Send.Body;
    if (fin) this.retire(rs);
    return true;
  }

  /** Sends trailers and ends the stream. Returns false when the sending half is closed. */
  sendTrailers(streamId: number, fields: readonly QpackFieldInput[]): boolean {
    const rs = this.requests.get(streamId);
    if (rs !== undefined && rs.send === Send.Idle)
      throw new QuicUsageError("trailers before the header section");
    for (const f of fields)
      if (f[0].charCodeAt(0) === 0x3a) throw new QuicUsageError("pseudo-header in trailers");
    return this.sendHeaders(streamId, fields, true);
  }

  /**
   * Sends body bytes as one DATA frame (`data` is not copied here: the adapter's transport copies
   * or keeps it until written). Returns false when the sending half is closed.
   */
  sendData(streamId: number, data: Uint8Array, fin = false): boolean {
    this.checkOpen();
    const rs = this.requests.get(streamId);
    if (rs === undefined || rs.send === Send.Closed) return false;
    if (rs.send !== Send.Body) throw new QuicUsageError("DATA before the header section");
    if (data.length > 0) {
      const header = new Uint8Array(frameHeaderSize(FrameType.DATA, data.length));
      encodeFrameHeader(new ByteWriter(header), FrameType.DATA, data.length);
      this.actions.push({ type: "write", streamId, data: header, fin: false });
      this.actions.push({ type: "write", streamId, data, fin });
    } else if (fin) {
      this.actions.push({ type: "write", streamId, data, fin });
    }
    if (fin) {
      rs.send = Send.Closed;
      this.retire(rs);
    }
    return true;
  }

  /** Ends the message (FIN) without trailers. Returns false when the sending half is closed. */
  finish(streamId: number): boolean {
    return this.sendData(streamId, new Uint8Array(0), true);
  }

  /**
   * Abandons a request stream in both directions (RFC 9114 §4.1.1: "resets the sending parts of
   * streams and aborts reading on the receiving parts"), by default with H3_REQUEST_CANCELLED.
   */
  cancel(streamId: number, code: number = H3ErrorCode.H3_REQUEST_CANCELLED): void {
    if (this.closeReason) return;
    const rs = this.requests.get(streamId);
    if (rs === undefined) return;
    this.abortStream(rs, code, "cancelled locally", false, false, false);
  }

  /**
   * Stops reading a request stream (STOP_SENDING), e.g. a server that answered without needing
   * the rest of the request (§4.1: "The error code H3_NO_ERROR SHOULD be used"). The response
   * may still be sent.
   */
  stopReading(streamId: number, code: number = H3ErrorCode.H3_NO_ERROR): void {
    if (this.closeReason) return;
    const rs = this.requests.get(streamId);
    if (rs === undefined || rs.recv === Recv.Closed) return;
    rs.recv = Recv.Closed;
    rs.blocked = undefined;
    this.actions.push({ type: "stop", streamId, code });
    this.decoder.cancelStream(streamId);
    this.flushDecoder();
    this.retire(rs);
  }

  /**
   * Starts or continues a graceful shutdown (RFC 9114 §5.2) with a GOAWAY frame.
   *
   * Server: `id` is the first request stream ID it will not process; default: the one after the
   * last request received. Send {@link GOAWAY_MAX_STREAM_ID} first for a two-phase shutdown.
   * Requests at or above it are rejected as they arrive (H3_REQUEST_REJECTED).
   * Client: `id` is a push ID (default 0: we never allowed pushes). The client stops opening
   * requests.
   * An identifier larger than one sent before is lowered to it ("MUST NOT be greater").
   */
  goaway(id?: bigint): void {
    this.checkOpen();
    let v = id ?? (this.role === "server" ? BigInt(this.maxRequestId + 4) : 0n);
    if (v < 0n || v > MAX_STREAM_ID_BIG) throw new QuicUsageError(`GOAWAY id out of range: ${v}`);
    if (this.role === "server" && v % 4n !== 0n)
      throw new QuicUsageError("GOAWAY id must be a request stream ID");
    if (this.goawaySent !== undefined && v > this.goawaySent) v = this.goawaySent;
    this.goawaySent = v;
    this.actions.push({ type: "uni-write", stream: "control", data: frameBytes({ kind: "goaway", id: v }) });
    if (this.role === "server") {
      // §5.2: "Upon sending a GOAWAY frame, the endpoint SHOULD explicitly cancel ... any requests
      // ... that have identifiers greater than or equal to the one indicated".
      for (const rs of [...this.requests.values()]) {
        if (BigInt(rs.id) >= v)
          this.abortStream(rs, H3ErrorCode.H3_REQUEST_REJECTED, "above GOAWAY", false, false);
      }
    }
  }

  /** Closes the connection (default H3_NO_ERROR, the code of a graceful end, §5.2). */
  close(code: number = H3ErrorCode.H3_NO_ERROR, reason = ""): void {
    if (this.closeReason) return;
    this.closeReason = { code, reason, remote: false };
    this.requests.clear();
    this.actions.push({ type: "close", code, reason });
    this.events.push({ type: "closed", code, reason, remote: false });
  }

  /** Client: a PRIORITY_UPDATE for request stream `streamId` on the control stream (RFC 9218 §7.2). */
  sendPriorityUpdate(streamId: number, priority: PriorityParameters): void {
    if (this.role !== "client") throw new QuicUsageError("servers MUST NOT send PRIORITY_UPDATE");
    this.checkOpen();
    const f = priorityUpdateFrame(streamId, priority);
    this.actions.push({ type: "uni-write", stream: "control", data: frameBytes(f) });
  }

  // -------------------------------------------------------------------------------------------
  // Internals: sending

  private checkOpen(): void {
    if (this.closeReason) throw new QuicUsageError("HTTP/3 connection is closed");
  }

  private writeHeaders(rs: RequestStream, fields: readonly QpackFieldInput[], fin: boolean): void {
    const limit = this.peerSettings?.maxFieldSectionSize ?? Number.POSITIVE_INFINITY;
    // §4.2.2: "An implementation that has received this parameter SHOULD NOT send an HTTP message
    // header that exceeds the indicated size".
    if (sectionSize(fields) > limit) {
      throw new QuicUsageError(`field section exceeds the peer's MAX_FIELD_SECTION_SIZE of ${limit}`);
    }
    const section = this.encoder.encodeFieldSection(rs.id, fields);
    this.flushEncoder();
    const w = new ByteWriter(
      new Uint8Array(frameHeaderSize(FrameType.HEADERS, section.length) + section.length),
    );
    encodeFrameHeader(w, FrameType.HEADERS, section.length);
    w.writeBytes(section);
    this.actions.push({ type: "write", streamId: rs.id, data: w.buf, fin });
  }

  private flushEncoder(): void {
    const d = this.encoder.takeEncoderStreamData();
    if (d.length > 0) this.actions.push({ type: "uni-write", stream: "qpack-encoder", data: d });
  }

  private flushDecoder(): void {
    const d = this.decoder.takeDecoderStreamData();
    if (d.length > 0) this.actions.push({ type: "uni-write", stream: "qpack-decoder", data: d });
  }

  // -------------------------------------------------------------------------------------------
  // Internals: errors

  /** Runs `fn`, turning H3 errors into stream or connection errors. False if one happened. */
  private guard(rs: RequestStream | undefined, fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (e) {
      if (!(e instanceof H3Error)) throw e;
      if (e.isStreamError && rs !== undefined) {
        if (this.requests.get(rs.id) === rs) this.abortStream(rs, e.code, e.reason, false, false);
      } else {
        this.fail(e.code, e.reason);
      }
      return false;
    }
  }

  /** A connection error (RFC 9114 §8): close with `code`. */
  private fail(code: number, reason: string): void {
    if (this.closeReason) return;
    this.closeReason = { code, reason, remote: false };
    this.requests.clear();
    this.actions.push({ type: "close", code, reason });
    this.events.push({ type: "closed", code, reason, remote: false });
  }

  /** A stream error: RESET_STREAM and STOP_SENDING with `code`, then forget the stream. */
  private abortStream(
    rs: RequestStream,
    code: number,
    reason: string,
    remote: boolean,
    retryable: boolean,
    emit = true,
  ): void {
    if (rs.send !== Send.Closed) {
      this.actions.push({ type: "reset", streamId: rs.id, code });
      rs.send = Send.Closed;
    }
    if (rs.recv !== Recv.Closed) {
      this.actions.push({ type: "stop", streamId: rs.id, code });
      rs.recv = Recv.Closed;
      rs.blocked = undefined;
      // RFC 9204 §2.2.2.2: "when it abandons reading of a stream, it generates a Stream
      // Cancellation instruction".
      this.decoder.cancelStream(rs.id);
      this.flushDecoder();
    }
    if (emit) this.events.push({ type: "stream-error", streamId: rs.id, code, reason, remote, retryable });
    this.requests.delete(rs.id);
  }

  /**
   * draft-ietf-webtrans-http3-02 §4.2: decides whether a new peer bidirectional stream starts with
   * the WEBTRANSPORT_STREAM signal (0x41) and a session ID. Returns the bytes that belong to the
   * frame reader (an ordinary request), or undefined when more bytes are needed or the stream was
   * handed off as a "webtransport-stream" event. A client only accepts WebTransport streams from
   * the server (RFC 9114 §6.1 otherwise: H3_STREAM_CREATION_ERROR).
   */
  private sniffWebTransport(rs: RequestStream, data: Uint8Array, fin: boolean): Uint8Array | undefined {
    const seen = rs.sniff!;
    let buf = data;
    if (seen.length > 0) {
      buf = new Uint8Array(seen.length + data.length);
      buf.set(seen);
      buf.set(data, seen.length);
    }
    const type = peekVarint(buf, 0);
    const isSignal = type !== undefined && type[0] === WEBTRANSPORT_STREAM_SIGNAL;
    const session = isSignal ? peekVarint(buf, type[1]) : undefined;
    if (type === undefined || (isSignal && session === undefined)) {
      if (!fin) {
        rs.sniff = buf.slice(); // at most two varints: ≤ 16 bytes
        return undefined;
      }
      rs.sniff = undefined;
      if (this.role === "client") {
        // Ended inside the preamble: nothing to deliver (cf. §6.2 for unidirectional streams).
        rs.recv = Recv.Closed;
        rs.send = Send.Closed;
        this.requests.delete(rs.id);
        return undefined;
      }
      return buf; // the frame reader reports the incomplete request
    }
    rs.sniff = undefined;
    if (!isSignal || session === undefined) {
      if (this.role === "client") {
        throw new H3Error(
          H3ErrorCode.H3_STREAM_CREATION_ERROR,
          "server-initiated bidirectional stream without the WebTransport signal",
        );
      }
      return buf;
    }
    rs.recv = Recv.Closed;
    rs.send = Send.Closed;
    this.requests.delete(rs.id);
    this.events.push({
      type: "webtransport-stream",
      streamId: rs.id,
      sessionId: session[0],
      bidi: true,
      data: buf.subarray(type[1] + session[1]),
      fin,
    });
    return undefined;
  }

  private retire(rs: RequestStream): void {
    if (rs.send === Send.Closed && rs.recv === Recv.Closed) this.requests.delete(rs.id);
  }

  // -------------------------------------------------------------------------------------------
  // Internals: peer streams

  private newRequestStream(id: number): RequestStream {
    return {
      id,
      reader: new FrameReader({ stream: "request", role: this.role, maxFrameSize: this.maxFrameSize }),
      recv: Recv.Headers,
      send: Send.Idle,
      blocked: undefined,
      contentLength: undefined,
      received: 0,
      noContent: false,
      connect: false,
      sniff: undefined,
      method: undefined,
    };
  }

  private openPeerStream(id: number): void {
    const kind = id & 3;
    if (isServerInitiated(id) === (this.role === "server")) {
      throw new H3Error(H3ErrorCode.H3_STREAM_CREATION_ERROR, `stream ${id} is not a peer stream`);
    }
    if (id <= this.maxPeerStream[kind]) return;
    this.maxPeerStream[kind] = id;
    if (isUniStreamId(id)) {
      this.uni.set(id, { id, kind: Uni.Header, header: new UniStreamHeaderReader(), reader: undefined });
      return;
    }
    if (this.role === "client") {
      // §6.1: server-initiated bidirectional streams are a connection error, unless WebTransport
      // allows them (draft-ietf-webtrans-http3-02 §4.2; checked when its first bytes arrive).
      if (!this.webTransport) {
        throw new H3Error(H3ErrorCode.H3_STREAM_CREATION_ERROR, "server-initiated bidirectional stream");
      }
      const rs = this.newRequestStream(id);
      rs.sniff = new Uint8Array(0);
      this.requests.set(id, rs);
      return;
    }
    this.maxRequestId = id;
    if (this.goawaySent !== undefined && BigInt(id) >= this.goawaySent) {
      // §5.2: requests at or above our GOAWAY are rejected, unprocessed (§4.1.1 H3_REQUEST_REJECTED).
      this.actions.push({ type: "reset", streamId: id, code: H3ErrorCode.H3_REQUEST_REJECTED });
      this.actions.push({ type: "stop", streamId: id, code: H3ErrorCode.H3_REQUEST_REJECTED });
      return;
    }
    const rs = this.newRequestStream(id);
    if (this.webTransport) rs.sniff = new Uint8Array(0);
    this.requests.set(id, rs);
  }

  private receiveUni(s: PeerUniStream, data: Uint8Array, fin: boolean): void {
    let rest = data;
    if (s.kind === Uni.Header) {
      const r = s.header!.push(data);
      if (r === undefined) {
        // §6.2: "A receiver MUST tolerate unidirectional streams being closed or reset prior to
        // the reception of the unidirectional stream header."
        if (fin) this.uni.delete(s.id);
        return;
      }
      s.header = undefined;
      rest = r.rest;
      this.classifyUni(s, r.header.type);
      if ((s.kind as Uni) === Uni.WebTransport) {
        // draft-ietf-webtrans-http3-02 §4.1: "0x54, Session ID", then application data.
        this.uni.delete(s.id);
        this.events.push({
          type: "webtransport-stream",
          streamId: s.id,
          sessionId: r.header.id ?? 0,
          bidi: false,
          data: rest,
          fin,
        });
        return;
      }
    }
    switch (s.kind) {
      case Uni.Control: {
        const reader = s.reader!;
        if (rest.length > 0) reader.push(rest);
        if (fin) reader.finish();
        for (let ev = reader.pull(); ev !== undefined; ev = reader.pull()) {
          if (this.closeReason) return;
          if (ev.kind === "frame") this.onControlFrame(ev.frame);
        }
        return;
      }
      case Uni.Encoder: {
        if (rest.length > 0) {
          const unblocked = this.decoder.receiveEncoderStream(rest);
          this.flushDecoder();
          for (const id of unblocked) {
            const rs = this.requests.get(id);
            if (rs === undefined || rs.blocked === undefined) continue;
            this.guard(rs, () => this.unblock(rs));
            if (this.closeReason) return;
          }
        }
        // RFC 9204 §4.2: "Closure of either unidirectional stream type MUST be treated as a
        // connection error of type H3_CLOSED_CRITICAL_STREAM."
        if (fin) throw new H3Error(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, "QPACK encoder stream closed");
        return;
      }
      case Uni.Decoder:
        if (rest.length > 0) this.encoder.receiveDecoderStream(rest);
        if (fin) throw new H3Error(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, "QPACK decoder stream closed");
        return;
      default:
        if (fin) this.uni.delete(s.id);
        return;
    }
  }

  private classifyUni(s: PeerUniStream, type: bigint): void {
    const critical = (which: number | undefined, name: string): void => {
      if (which !== undefined) {
        // §6.2.1: "receipt of a second stream claiming to be a control stream MUST be treated as a
        // connection error of type H3_STREAM_CREATION_ERROR"; RFC 9204 §4.2 likewise for the
        // encoder and decoder streams.
        throw new H3Error(H3ErrorCode.H3_STREAM_CREATION_ERROR, `second ${name} stream`);
      }
    };
    if (type === BigInt(UniStreamType.CONTROL)) {
      critical(this.peerControl, "control");
      this.peerControl = s.id;
      s.kind = Uni.Control;
      s.reader = new FrameReader({ stream: "control", role: this.role, maxFrameSize: this.maxFrameSize });
    } else if (type === BigInt(UniStreamType.QPACK_ENCODER)) {
      critical(this.peerEncoder, "QPACK encoder");
      this.peerEncoder = s.id;
      s.kind = Uni.Encoder;
    } else if (type === BigInt(UniStreamType.QPACK_DECODER)) {
      critical(this.peerDecoder, "QPACK decoder");
      this.peerDecoder = s.id;
      s.kind = Uni.Decoder;
    } else if (type === BigInt(UniStreamType.PUSH)) {
      if (this.role === "server") {
        // §6.2.2: "if a server receives a client-initiated push stream, this MUST be treated as a
        // connection error of type H3_STREAM_CREATION_ERROR".
        throw new H3Error(H3ErrorCode.H3_STREAM_CREATION_ERROR, "push stream from a client");
      }
      // §4.6: "A client MUST treat receipt of a push stream as a connection error of type
      // H3_ID_ERROR when no MAX_PUSH_ID frame has been sent"; we never send one.
      throw new H3Error(H3ErrorCode.H3_ID_ERROR, "push stream without MAX_PUSH_ID");
    } else if (this.webTransport && type === BigInt(UniStreamType.WEBTRANSPORT)) {
      s.kind = Uni.WebTransport;
    } else {
      // §6.2: unknown and reserved types: abort reading (SHOULD use H3_STREAM_CREATION_ERROR),
      // never a connection error.
      s.kind = Uni.Ignored;
      this.actions.push({ type: "stop", streamId: s.id, code: H3ErrorCode.H3_STREAM_CREATION_ERROR });
    }
  }

  private onControlFrame(f: H3Frame): void {
    switch (f.kind) {
      case "settings": {
        // The FrameReader enforces "SETTINGS first, once" (§6.2.1, §7.2.4) and the decoder
        // validated the entries (H3_SETTINGS_ERROR).
        const s = settingsFromEntries(f.entries);
        this.peerSettings = s;
        this.encoder.applyPeerSettings({
          maxTableCapacity: s.qpackMaxTableCapacity,
          blockedStreams: s.qpackBlockedStreams,
        });
        this.flushEncoder();
        this.events.push({ type: "settings", settings: s });
        return;
      }
      case "goaway":
        this.onGoaway(f.id);
        return;
      case "max_push_id":
        // §7.2.7: "receipt of a MAX_PUSH_ID frame that contains a smaller value than previously
        // received MUST be treated as a connection error of type H3_ID_ERROR". (The reader already
        // refused it on a client.)
        if (this.maxPushIdReceived !== undefined && f.pushId < this.maxPushIdReceived) {
          throw new H3Error(H3ErrorCode.H3_ID_ERROR, "MAX_PUSH_ID decreased", FrameType.MAX_PUSH_ID);
        }
        this.maxPushIdReceived = f.pushId;
        return;
      case "cancel_push":
        // §7.2.3: a client: any push ID is above the (unset) maximum → H3_ID_ERROR; a server: "for
        // a push ID that has not yet been mentioned by a PUSH_PROMISE frame, this MUST be treated
        // as a connection error of type H3_ID_ERROR", and we never promise.
        throw new H3Error(
          H3ErrorCode.H3_ID_ERROR,
          `CANCEL_PUSH for unknown push ${f.pushId}`,
          FrameType.CANCEL_PUSH,
        );
      case "priority_update":
        this.onPriorityUpdate(f.push, f.elementId, f.value);
        return;
      default:
        return; // §9: unknown frame types are ignored
    }
  }

  private onGoaway(id: bigint): void {
    if (this.role === "client" && id % 4n !== 0n) {
      // §7.2.6: "A client MUST treat receipt of a GOAWAY frame containing a stream ID of any other
      // type as a connection error of type H3_ID_ERROR."
      throw new H3Error(H3ErrorCode.H3_ID_ERROR, "GOAWAY with a non-request stream ID", FrameType.GOAWAY);
    }
    // §5.2: "Receiving a GOAWAY containing a larger identifier than previously received MUST be
    // treated as a connection error of type H3_ID_ERROR."
    if (this.goawayReceived !== undefined && id > this.goawayReceived) {
      throw new H3Error(H3ErrorCode.H3_ID_ERROR, "GOAWAY identifier increased", FrameType.GOAWAY);
    }
    this.goawayReceived = id;
    this.events.push({ type: "goaway", id });
    if (this.role === "client") {
      // §5.2: requests at or above the ID "will not be processed. Clients can safely retry
      // unprocessed requests on a different HTTP connection"; cancel them to clean up.
      for (const rs of [...this.requests.values()]) {
        if (BigInt(rs.id) >= id) {
          this.abortStream(rs, H3ErrorCode.H3_REQUEST_CANCELLED, "not processed (GOAWAY)", true, true);
        }
      }
    }
  }

  private onPriorityUpdate(push: boolean, elementId: number, value: string): void {
    // (The reader refuses PRIORITY_UPDATE on a client: RFC 9218 §7.2 H3_FRAME_UNEXPECTED.)
    if (push) {
      // RFC 9218 §7.2: a push ID "that has not yet been promised, this MUST be treated as a
      // connection error of type H3_ID_ERROR"; we never promise.
      throw new H3Error(
        H3ErrorCode.H3_ID_ERROR,
        "PRIORITY_UPDATE for an unpromised push",
        FrameType.PRIORITY_UPDATE_PUSH,
      );
    }
    if (!isRequestStreamId(elementId)) {
      // RFC 9218 §7.2: "for a stream ID that is not a request stream, this MUST be treated as a
      // connection error of type H3_ID_ERROR".
      throw new H3Error(
        H3ErrorCode.H3_ID_ERROR,
        `PRIORITY_UPDATE for stream ${elementId}`,
        FrameType.PRIORITY_UPDATE_REQUEST,
      );
    }
    const p = priorityFromUpdate({ kind: "priority_update", push, elementId, value });
    if (p === undefined) return; // RFC 9218 §7: an unparsable value MAY be ignored
    const rs = this.requests.get(elementId);
    if (rs !== undefined) {
      if (rs.recv === Recv.Headers) this.pendingPriorities.set(elementId, p);
      else this.events.push({ type: "priority", streamId: elementId, priority: p });
      return;
    }
    if (elementId <= this.maxRequestId) return; // closed already
    // Not opened yet (reordering): keep it for when the request arrives (RFC 9218 §7.2), bounded.
    this.pendingPriorities.delete(elementId);
    this.pendingPriorities.set(elementId, p);
    if (this.pendingPriorities.size > this.maxPendingPriorities) {
      const oldest = this.pendingPriorities.keys().next().value;
      if (oldest !== undefined) this.pendingPriorities.delete(oldest);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals: request streams

  private pumpRequest(rs: RequestStream): void {
    const reader = rs.reader;
    while (rs.recv !== Recv.Closed && rs.blocked === undefined) {
      const ev = reader.pull();
      if (ev === undefined) break;
      if (ev.kind === "data") {
        this.onData(rs, ev.data);
      } else if (ev.kind === "frame") {
        const f = ev.frame;
        if (f.kind === "headers") this.onHeadersFrame(rs, f.fieldSection);
        else if (f.kind === "push_promise") {
          // §7.2.5: a push ID above the maximum (we never sent MAX_PUSH_ID) "MUST be treated as a
          // connection error of type H3_ID_ERROR".
          throw new H3Error(
            H3ErrorCode.H3_ID_ERROR,
            "PUSH_PROMISE without MAX_PUSH_ID",
            FrameType.PUSH_PROMISE,
          );
        }
        // Unknown and reserved frames: skipped (§9). Other known types were refused by the reader.
      }
      if (this.closeReason) return;
    }
    if (rs.recv !== Recv.Closed && rs.blocked === undefined && reader.done) this.onRequestEnd(rs);
  }

  private onData(rs: RequestStream, data: Uint8Array): void {
    // §4.1: "a DATA frame before any HEADERS frame, or a HEADERS or DATA frame after the trailing
    // HEADERS frame" is an invalid sequence: H3_FRAME_UNEXPECTED.
    if (rs.recv !== Recv.Body) {
      throw new H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "DATA outside the message body", FrameType.DATA);
    }
    if (data.length === 0) return;
    rs.received += data.length;
    if (rs.noContent) throw new H3MessageError("content in a response that cannot have any");
    // §4.1.2: Content-Length must equal the sum of DATA lengths (detected as soon as exceeded).
    if (rs.contentLength !== undefined && rs.received > rs.contentLength) {
      throw new H3MessageError("more content than Content-Length");
    }
    this.events.push({ type: "data", streamId: rs.id, data });
  }

  private onHeadersFrame(rs: RequestStream, section: Uint8Array): void {
    if (rs.recv === Recv.AfterTrailers || (rs.recv === Recv.Body && rs.connect)) {
      // §4.1 (HEADERS after the trailers); §4.4: on a CONNECT stream only DATA is permitted.
      throw new H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "HEADERS after the message", FrameType.HEADERS);
    }
    const r = this.decoder.decodeFieldSection(rs.id, section);
    this.flushDecoder();
    if (r.kind === "blocked") {
      // RFC 9204 §2.2.1: keep the section; no further frame of this stream is processed before it.
      rs.blocked = section;
      return;
    }
    this.onFieldSection(rs, r.fields);
  }

  private unblock(rs: RequestStream): void {
    const section = rs.blocked!;
    rs.blocked = undefined;
    const r = this.decoder.decodeFieldSection(rs.id, section);
    this.flushDecoder();
    if (r.kind === "blocked") {
      rs.blocked = section;
      return;
    }
    this.onFieldSection(rs, r.fields);
    this.pumpRequest(rs);
  }

  private onFieldSection(rs: RequestStream, fields: readonly (readonly [string, string, boolean?])[]): void {
    if (rs.recv === Recv.Body) {
      this.events.push({ type: "trailers", streamId: rs.id, fields: parseTrailers(fields) });
      rs.recv = Recv.AfterTrailers;
      return;
    }
    if (this.role === "server") {
      const head = parseRequestHead(fields, { extendedConnect: this.localSettings.enableConnectProtocol });
      rs.contentLength = head.contentLength;
      rs.connect = head.method === "CONNECT";
      let priority: Priority = DEFAULT_PRIORITY;
      const values: string[] = [];
      for (const f of head.fields) if (f[0] === "priority") values.push(f[1]);
      if (values.length > 0) priority = parsePriority(values);
      // RFC 9218 §7: a PRIORITY_UPDATE received first takes precedence over the header.
      const pending = this.pendingPriorities.get(rs.id);
      if (pending !== undefined) {
        this.pendingPriorities.delete(rs.id);
        priority = pending;
      }
      rs.recv = Recv.Body;
      this.events.push({ type: "request", streamId: rs.id, head: { ...head, priority: { ...priority } } });
      return;
    }
    const head = parseResponseHead(fields);
    if (head.status < 200) {
      this.events.push({ type: "informational", streamId: rs.id, head });
      return;
    }
    rs.contentLength = head.contentLength;
    rs.noContent = responseHasNoContent(rs.method, head.status);
    rs.recv = Recv.Body;
    this.events.push({ type: "response", streamId: rs.id, head });
  }

  private onRequestEnd(rs: RequestStream): void {
    if (rs.recv === Recv.Headers) {
      // §4.1: "If a client-initiated stream terminates without enough of the HTTP message to
      // provide a complete response, the server SHOULD abort its response stream with the error
      // code H3_REQUEST_INCOMPLETE." A response stream ending early is likewise incomplete.
      rs.recv = Recv.Closed;
      this.abortStream(
        rs,
        H3ErrorCode.H3_REQUEST_INCOMPLETE,
        "stream ended before the header section",
        false,
        false,
      );
      return;
    }
    if (!rs.noContent && rs.contentLength !== undefined && rs.received !== rs.contentLength) {
      throw new H3MessageError(`content of ${rs.received} bytes, Content-Length ${rs.contentLength}`);
    }
    rs.recv = Recv.Closed;
    this.events.push({ type: "end", streamId: rs.id });
    this.retire(rs);
  }
}
