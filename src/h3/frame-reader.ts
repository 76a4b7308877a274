/**
 * Incremental HTTP/3 frame reader for one stream's byte sequence (RFC 9114 §7.1).
 *
 * Push chunks as they arrive (any boundaries), call {@link FrameReader.finish} at FIN, and pull
 * events with {@link FrameReader.pull} until it returns undefined:
 * - DATA frames are streamed: each event carries a slice of the payload (a view into a pushed
 *   chunk), so a body is never buffered (§4.1 "SHOULD begin processing partial HTTP messages").
 * - Every other frame is delivered whole. Its payload is buffered up to a limit
 *   ({@link FrameReaderOptions.maxFrameSize}); frames of unknown type larger than
 *   {@link FrameReaderOptions.maxUnknownFrameSize} are skipped without buffering (§9: unknown
 *   frames have no meaning and MUST be ignored).
 * - With `webTransport`, type 0x41 is the WEBTRANSPORT_STREAM signal; everything after it is
 *   delivered as raw chunks.
 *
 * On a unidirectional stream, read the stream header first (stream-types.ts) and push the bytes
 * after it; the reader sees only frames.
 *
 * Memory: the reader never copies more than one frame payload (≤ the limits above) plus a 16-byte
 * header; the rest are views into the chunks pushed and not yet pulled.
 *
 * Errors ({@link H3Error}; after one, every call throws it again):
 * - H3_FRAME_ERROR: the stream ends inside a frame (§7.1 "if the last frame on the stream was
 *   truncated, this MUST be treated as a connection error of type H3_FRAME_ERROR"); a payload
 *   with extra or missing bytes (§7.1); a fixed-layout frame (CANCEL_PUSH, GOAWAY, MAX_PUSH_ID)
 *   whose Length cannot hold exactly one varint (0 or > 8), detected from the header (§7.1
 *   "invalid size").
 * - H3_EXCESSIVE_LOAD: a HEADERS, PUSH_PROMISE, SETTINGS or PRIORITY_UPDATE frame longer than
 *   `maxFrameSize`, detected from the header, before any payload is buffered. Such a frame is
 *   well-formed (§7.1 puts no bound on these lengths, so H3_FRAME_ERROR, "invalid size", would
 *   accuse the peer of a layout error it did not make); it is our resource limit being exceeded,
 *   which §10.5 lets an endpoint treat as "a connection error of type H3_EXCESSIVE_LOAD".
 * - H3_FRAME_UNEXPECTED: HTTP/2 frame types (§7.2.8); with `stream` set, frames not allowed on
 *   that stream (§7.2, see {@link assertFrameAllowed}) and a WEBTRANSPORT_STREAM signal after
 *   HEADERS/DATA/PUSH_PROMISE on a request stream or on another kind of stream.
 * - H3_MISSING_SETTINGS (§6.2.1): on a control stream, a first frame that is not SETTINGS;
 *   H3_FRAME_UNEXPECTED for a second SETTINGS (§7.2.4); H3_CLOSED_CRITICAL_STREAM when a
 *   control stream ends (§6.2.1).
 * - H3_SETTINGS_ERROR: see settings.ts.
 */
import { QuicUsageError } from "../quic/errors.ts";
import { H3Error, H3ErrorCode } from "./error-codes.ts";
import {
  assertFrameAllowed,
  decodeFramePayload,
  FrameType,
  frameTypeName,
  type H3Frame,
  type H3Role,
  type H3StreamKind,
  isHttp2ReservedFrameType,
  maxFixedPayloadLength,
  normalizeFrameType,
} from "./frames.ts";

// ---------------------------------------------------------------------------------------------
// ByteQueue: a FIFO of chunk views with cross-chunk peeking (shared with capsules.ts)

/** Length (1, 2, 4 or 8) of a varint from its first byte (RFC 9000 §16). */
export function varintLengthFromFirstByte(b: number): 1 | 2 | 4 | 8 {
  return (1 << (b >> 6)) as 1 | 2 | 4 | 8;
}

/**
 * A FIFO of byte chunks. Holds views of the pushed chunks (no copy) and releases them as they are
 * consumed. For parsers that must not buffer more than they decide to.
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0;
  private offset = 0;
  /** Unread bytes. */
  length = 0;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The byte `i` positions ahead (0 ≤ i < length). */
  peekByte(i: number): number {
    let idx = this.head;
    let off = this.offset + i;
    while (off >= this.chunks[idx].length) {
      off -= this.chunks[idx].length;
      idx++;
    }
    return this.chunks[idx][off];
  }

  /**
   * Peeks the varint starting `at` bytes ahead: [value, length], or undefined when not all of its
   * bytes are here yet. The value is a bigint only when it exceeds 2^53 − 1.
   */
  peekVarint(at: number): [number | bigint, number] | undefined {
    if (this.length <= at) return undefined;
    const first = this.peekByte(at);
    const len = varintLengthFromFirstByte(first);
    if (this.length < at + len) return undefined;
    if (len < 8) {
      let v = first & 0x3f;
      for (let i = 1; i < len; i++) v = v * 256 + this.peekByte(at + i);
      return [v, len];
    }
    let v = BigInt(first & 0x3f);
    for (let i = 1; i < 8; i++) v = (v << 8n) | BigInt(this.peekByte(at + i));
    return [v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v, 8];
  }

  /** Consumes up to `max` bytes from the front chunk and returns them as a view. */
  readChunk(max: number): Uint8Array {
    const c = this.chunks[this.head];
    const n = Math.min(max, c.length - this.offset);
    const out = c.subarray(this.offset, this.offset + n);
    this.advance(n);
    return out;
  }

  /** Consumes exactly `n` ≤ length bytes: a view when they lie in one chunk, else a copy. */
  read(n: number): Uint8Array {
    const c = this.chunks[this.head];
    if (n === 0) return new Uint8Array(0);
    if (c.length - this.offset >= n) return this.readChunk(n);
    const out = new Uint8Array(n);
    this.copyInto(out, 0, n);
    return out;
  }

  /** Consumes `n` ≤ length bytes into `dst` at `dstOffset`. */
  copyInto(dst: Uint8Array, dstOffset: number, n: number): void {
    while (n > 0) {
      const part = this.readChunk(n);
      dst.set(part, dstOffset);
      dstOffset += part.length;
      n -= part.length;
    }
  }

  /** Discards `n` ≤ length bytes. */
  skip(n: number): void {
    while (n > 0) n -= this.readChunk(n).length;
  }

  private advance(n: number): void {
    this.offset += n;
    this.length -= n;
    if (this.offset === this.chunks[this.head].length) {
      this.offset = 0;
      this.head++;
      if (this.head === this.chunks.length) {
        this.chunks = [];
        this.head = 0;
      } else if (this.head >= 64) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// FrameReader

/** Options of {@link FrameReader}. */
export interface FrameReaderOptions {
  /**
   * Largest payload buffered for HEADERS, PUSH_PROMISE, SETTINGS and PRIORITY_UPDATE; a larger
   * Length is H3_EXCESSIVE_LOAD. Default 65536.
   */
  maxFrameSize?: number | undefined;
  /**
   * Largest payload kept for a frame of unknown type; larger ones are skipped without buffering
   * and reported with `discarded` set. Default 4096.
   */
  maxUnknownFrameSize?: number | undefined;
  /** Interpret type 0x41 as the WEBTRANSPORT_STREAM signal (WebTransport negotiated). */
  webTransport?: boolean | undefined;
  /** Enforce the per-stream rules of §7.2 (and §6.2.1 for the control stream). */
  stream?: H3StreamKind | undefined;
  /** Role of the local (receiving) endpoint, for the role-specific rules of §7.2.5, §7.2.7. */
  role?: H3Role | undefined;
}

/** A slice of a DATA frame's payload. */
export interface DataChunkEvent {
  kind: "data";
  /** Payload bytes (a view into a pushed chunk); empty only for a zero-length DATA frame. */
  data: Uint8Array;
  /** The DATA frame's Length. */
  frameLength: number;
  /** First slice of this DATA frame. */
  start: boolean;
  /** Last slice of this DATA frame. */
  end: boolean;
}

/** A complete non-DATA frame. */
export interface FrameEvent {
  kind: "frame";
  frame: Exclude<H3Frame, { kind: "data" }>;
}

/** Stream data after a WEBTRANSPORT_STREAM signal (a view into a pushed chunk). */
export interface RawEvent {
  kind: "raw";
  data: Uint8Array;
}

export type FrameReaderEvent = DataChunkEvent | FrameEvent | RawEvent;

const DEFAULT_MAX_FRAME_SIZE = 65536;
const DEFAULT_MAX_UNKNOWN_FRAME_SIZE = 4096;

/** Reader states. */
const State = {
  /** Waiting for a frame's Type and Length. */
  Header: 0,
  /** Inside a DATA payload: streaming. */
  Data: 1,
  /** Buffering a non-DATA payload. */
  Payload: 2,
  /** Skipping an unknown frame's payload. */
  Skip: 3,
  /** After WEBTRANSPORT_STREAM: raw data. */
  Raw: 4,
} as const;
type State = (typeof State)[keyof typeof State];

/** Incremental frame reader for one stream. See the module comment. */
export class FrameReader {
  private readonly queue = new ByteQueue();
  private readonly maxFrameSize: number;
  private readonly maxUnknownFrameSize: number;
  private readonly webTransport: boolean;
  private readonly stream: H3StreamKind | undefined;
  private readonly role: H3Role | undefined;

  private state: State = State.Header;
  private fin = false;
  private error: H3Error | undefined;
  /** Current frame. */
  private type: number | bigint = 0;
  private frameLength = 0;
  private remaining = 0;
  private payload: Uint8Array | undefined;
  private filled = 0;
  /** Frames fully or partly read so far. */
  private frames = 0;
  /** A HEADERS, DATA or PUSH_PROMISE frame was seen (WEBTRANSPORT_STREAM is then unexpected). */
  private sawHttpFrame = false;

  constructor(opts: FrameReaderOptions = {}) {
    this.maxFrameSize = opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.maxUnknownFrameSize = opts.maxUnknownFrameSize ?? DEFAULT_MAX_UNKNOWN_FRAME_SIZE;
    if (!(this.maxFrameSize >= 0) || !(this.maxUnknownFrameSize >= 0)) {
      throw new QuicUsageError("FrameReader: bad limits");
    }
    this.webTransport = opts.webTransport ?? false;
    this.stream = opts.stream;
    this.role = opts.role;
  }

  /** Adds stream bytes (the chunk is referenced, not copied, until pulled). */
  push(chunk: Uint8Array): void {
    if (this.fin) throw new QuicUsageError("FrameReader: push after finish");
    this.queue.push(chunk);
  }

  /** Marks the end of the stream (FIN received). */
  finish(): void {
    this.fin = true;
  }

  /** Bytes pushed and not yet consumed, plus the partial frame payload being buffered. */
  get bufferedBytes(): number {
    return this.queue.length + this.filled;
  }

  /** True once the stream ended and every byte was consumed cleanly. */
  get done(): boolean {
    return (
      this.fin &&
      this.error === undefined &&
      this.queue.length === 0 &&
      (this.state === State.Header || this.state === State.Raw)
    );
  }

  /** True after a WEBTRANSPORT_STREAM signal: the rest of the stream comes as raw events. */
  get isRaw(): boolean {
    return this.state === State.Raw;
  }

  /**
   * The next event, or undefined when more bytes are needed (or the stream is done). Throws
   * {@link H3Error} on a protocol violation (see the module comment).
   */
  pull(): FrameReaderEvent | undefined {
    if (this.error !== undefined) throw this.error;
    try {
      return this.step();
    } catch (e) {
      if (e instanceof H3Error) this.error = e;
      throw e;
    }
  }

  /** Pulls every event available now. */
  pullAll(): FrameReaderEvent[] {
    const out: FrameReaderEvent[] = [];
    for (let ev = this.pull(); ev !== undefined; ev = this.pull()) out.push(ev);
    return out;
  }

  private truncated(): H3Error {
    // §6.2.1: "If either control stream is closed at any point, this MUST be treated as a
    // connection error of type H3_CLOSED_CRITICAL_STREAM."
    if (this.stream === "control") return this.criticalClosed();
    // §7.1: a truncated last frame on a cleanly terminated stream → H3_FRAME_ERROR.
    return new H3Error(
      H3ErrorCode.H3_FRAME_ERROR,
      `stream ended inside ${frameTypeName(this.type)} frame`,
      this.type,
    );
  }

  private criticalClosed(): H3Error {
    return new H3Error(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM, "control stream closed");
  }

  private step(): FrameReaderEvent | undefined {
    const q = this.queue;
    switch (this.state) {
      case State.Header:
        return this.readHeader();
      case State.Data: {
        if (q.length === 0) {
          if (this.fin) throw this.truncated();
          return undefined;
        }
        const start = this.remaining === this.frameLength;
        const data = q.readChunk(this.remaining);
        this.remaining -= data.length;
        const end = this.remaining === 0;
        if (end) this.state = State.Header;
        return { kind: "data", data, frameLength: this.frameLength, start, end };
      }
      case State.Payload: {
        const payload = this.payload!;
        const n = Math.min(q.length, this.remaining);
        q.copyInto(payload, this.filled, n);
        this.filled += n;
        this.remaining -= n;
        if (this.remaining > 0) {
          if (this.fin) throw this.truncated();
          return undefined;
        }
        this.payload = undefined;
        this.filled = 0;
        this.state = State.Header;
        return this.complete(payload);
      }
      case State.Skip: {
        const n = Math.min(q.length, this.remaining);
        q.skip(n);
        this.remaining -= n;
        if (this.remaining > 0) {
          if (this.fin) throw this.truncated();
          return undefined;
        }
        this.state = State.Header;
        const type = typeof this.type === "bigint" ? this.type : BigInt(this.type);
        return {
          kind: "frame",
          frame: { kind: "unknown", type, payload: new Uint8Array(0), discarded: this.frameLength },
        };
      }
      case State.Raw:
        if (q.length === 0) return undefined;
        return { kind: "raw", data: q.readChunk(q.length) };
    }
  }

  private readHeader(): FrameReaderEvent | undefined {
    const q = this.queue;
    if (q.length === 0) {
      if (this.fin && this.stream === "control") throw this.criticalClosed();
      return undefined;
    }
    const typeField = q.peekVarint(0);
    if (typeField === undefined) {
      if (this.fin) throw this.truncated();
      return undefined;
    }
    const type = normalizeFrameType(typeField[0]);
    this.type = type;
    // Checks that need only the type run before the Length arrives.
    this.checkType(type);
    const second = q.peekVarint(typeField[1]);
    if (second === undefined) {
      if (this.fin) throw this.truncated();
      return undefined;
    }
    q.skip(typeField[1] + second[1]);
    this.frames++;
    // Values ≥ 2^53 saturate: no stream carries that many bytes, and every limit below is smaller.
    const value = typeof second[0] === "bigint" ? Number.MAX_SAFE_INTEGER : second[0];

    if (type === FrameType.WEBTRANSPORT_STREAM && this.webTransport) {
      this.state = State.Raw;
      return { kind: "frame", frame: { kind: "webtransport_stream", sessionId: value } };
    }

    const length = value;
    this.frameLength = length;
    this.remaining = length;

    if (type === FrameType.DATA) {
      this.sawHttpFrame = true;
      if (length === 0)
        return { kind: "data", data: new Uint8Array(0), frameLength: 0, start: true, end: true };
      this.state = State.Data;
      return this.step();
    }
    if (type === FrameType.HEADERS || type === FrameType.PUSH_PROMISE) this.sawHttpFrame = true;

    const fixed = maxFixedPayloadLength(type);
    if (fixed !== undefined) {
      // §7.1: the payload must hold exactly one varint (1..8 bytes): any other Length is a layout
      // error, known before a single payload byte is read.
      if (length === 0 || length > fixed) {
        throw new H3Error(
          H3ErrorCode.H3_FRAME_ERROR,
          `${frameTypeName(type)} with invalid length ${length}`,
          type,
        );
      }
    } else if (isKnownBufferedType(type)) {
      // §10.5: refuse to commit more memory than our limit (see the module comment).
      if (length > this.maxFrameSize) {
        throw new H3Error(
          H3ErrorCode.H3_EXCESSIVE_LOAD,
          `${frameTypeName(type)} frame of ${length} bytes exceeds the limit of ${this.maxFrameSize}`,
          type,
        );
      }
    } else if (length > this.maxUnknownFrameSize) {
      // §9: unknown frame types MUST be ignored; skip the payload without buffering it.
      this.state = State.Skip;
      return this.step();
    }

    if (length <= q.length) return this.complete(q.read(length));
    this.payload = new Uint8Array(length);
    this.filled = 0;
    this.state = State.Payload;
    return this.step();
  }

  private checkType(type: number | bigint): void {
    // §7.2.8: HTTP/2 frame types → H3_FRAME_UNEXPECTED, without reading their payload.
    if (isHttp2ReservedFrameType(type)) {
      throw new H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, `HTTP/2 frame type ${frameTypeName(type)}`, type);
    }
    const stream = this.stream;
    if (stream === undefined) return;
    if (stream === "control") {
      if (this.frames === 0 && type !== FrameType.SETTINGS) {
        // §6.2.1: "If the first frame of the control stream is any other frame type, this MUST be
        // treated as a connection error of type H3_MISSING_SETTINGS."
        throw new H3Error(
          H3ErrorCode.H3_MISSING_SETTINGS,
          `first frame on the control stream is ${frameTypeName(type)}`,
          type,
        );
      }
      if (this.frames > 0 && type === FrameType.SETTINGS) {
        // §7.2.4: "If an endpoint receives a second SETTINGS frame on the control stream, the
        // endpoint MUST respond with a connection error of type H3_FRAME_UNEXPECTED."
        throw new H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "second SETTINGS frame", type);
      }
    }
    if (type === FrameType.WEBTRANSPORT_STREAM && this.webTransport) {
      // draft-ietf-webtrans-http3-02 §4.2: the signal opens a bidirectional stream; Chromium/quiche
      // reject it after HTTP data (H3_FRAME_UNEXPECTED), and on any other kind of stream.
      if (stream !== "request" || this.sawHttpFrame) {
        throw new H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, "unexpected WEBTRANSPORT_STREAM", type);
      }
      return;
    }
    assertFrameAllowed(type, stream, this.role);
  }

  private complete(payload: Uint8Array): FrameEvent {
    const frame = decodeFramePayload(this.type, payload);
    if (frame.kind === "data") throw new QuicUsageError("unreachable: DATA in complete()");
    return { kind: "frame", frame };
  }
}

function isKnownBufferedType(type: number | bigint): boolean {
  return (
    type === FrameType.HEADERS ||
    type === FrameType.PUSH_PROMISE ||
    type === FrameType.SETTINGS ||
    type === FrameType.PRIORITY_UPDATE_REQUEST ||
    type === FrameType.PRIORITY_UPDATE_PUSH
  );
}
