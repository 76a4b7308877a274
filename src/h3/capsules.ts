/**
 * The Capsule Protocol (RFC 9297 §3) and the HTTP/3 Datagram format (RFC 9297 §2.1).
 *
 * Capsules: `Capsule Type (i), Capsule Length (i), Capsule Value (..)`, carried in the data
 * stream of an extended CONNECT request, i.e. the concatenated payloads of its DATA frames
 * (§3.1). {@link CapsuleParser} parses them from chunks of any size:
 * - DATAGRAM capsules (type 0x00, §3.5) up to `maxDatagramSize` are delivered; larger ones are
 *   discarded without buffering (§3.5: an implementation "SHOULD discard the capsule without
 *   buffering its contents into memory");
 * - capsules whose type is in `keepTypes` (default: the WebTransport CLOSE / DRAIN capsules) are
 *   delivered whole, up to `maxCapsuleSize`;
 * - every other type is skipped without buffering (§3.2: "Endpoints which receive a Capsule with
 *   an unknown Capsule Type MUST silently drop that Capsule and skip over it").
 * Errors are stream errors ({@link H3StreamError}) of type H3_MESSAGE_ERROR: §3.3 makes a
 * capsule-processing error, and a truncated last capsule at a clean end of stream, a "malformed
 * or incomplete" message, which RFC 9114 §4.1.2 turns into a stream error of type
 * H3_MESSAGE_ERROR. A kept capsule larger than `maxCapsuleSize` is treated the same way (the
 * limit is the one its own specification sets, e.g. a CLOSE_WEBTRANSPORT_SESSION message is at
 * most 1024 bytes).
 *
 * HTTP/3 Datagrams: `Quarter Stream ID (i), HTTP Datagram Payload (..)` in a QUIC DATAGRAM frame,
 * where the quarter stream ID is the client-initiated bidirectional stream ID divided by 4.
 */
import { ByteReader, ByteWriter, varintLength, varintLengthBig } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { H3Error, H3ErrorCode, H3StreamError } from "./error-codes.ts";
import { ByteQueue } from "./frame-reader.ts";

/** Capsule types. */
export const CapsuleType = {
  /** RFC 9297 §3.5. */
  DATAGRAM: 0x00,
  /** draft-ietf-webtrans-http3 §5: 32-bit error code, then a UTF-8 message (≤ 1024 bytes). */
  CLOSE_WEBTRANSPORT_SESSION: 0x2843,
  /** draft-ietf-webtrans-http3: empty. */
  DRAIN_WEBTRANSPORT_SESSION: 0x78ae,
} as const;

export type CapsuleType = (typeof CapsuleType)[keyof typeof CapsuleType];

/** One capsule. */
export interface Capsule {
  /** Capsule Type (values above 2^53 − 1 saturate; such types are never kept). */
  type: number;
  /** Capsule Value (a view into the parsed input, or a copy when it spanned chunks). */
  value: Uint8Array;
}

/** Encoded size of a capsule. */
export function capsuleSize(type: number | bigint, valueLength: number): number {
  const t = typeof type === "bigint" ? varintLengthBig(type) : varintLength(type);
  return t + varintLength(valueLength) + valueLength;
}

/** Writes a capsule; QuicUsageError (writer unchanged) when invalid or too large for `w`. */
export function encodeCapsule(w: ByteWriter, type: number | bigint, value: Uint8Array): void {
  if (typeof type === "number" && !Number.isSafeInteger(type))
    throw new QuicUsageError(`bad capsule type ${type}`);
  const t = typeof type === "bigint" ? type : BigInt(type);
  if (t < 0n || t > (1n << 62n) - 1n) throw new QuicUsageError(`capsule type out of range: ${type}`);
  const size = capsuleSize(t, value.length);
  if (w.remaining < size) throw new QuicUsageError("encodeCapsule: buffer too small");
  w.writeVarintBig(t);
  w.writeVarint(value.length);
  w.writeBytes(value);
}

/** A capsule as a fresh byte array. */
export function capsuleBytes(type: number | bigint, value: Uint8Array): Uint8Array {
  const w = new ByteWriter(new Uint8Array(capsuleSize(type, value.length)));
  encodeCapsule(w, type, value);
  return w.buf;
}

/** Options of {@link CapsuleParser}. */
export interface CapsuleParserOptions {
  /** Largest DATAGRAM capsule delivered; larger ones are discarded unbuffered. Default 65535. */
  maxDatagramSize?: number | undefined;
  /**
   * Non-DATAGRAM capsule types delivered as `capsule` events. Default: CLOSE_WEBTRANSPORT_SESSION
   * and DRAIN_WEBTRANSPORT_SESSION.
   */
  keepTypes?: readonly number[] | undefined;
  /** Largest kept capsule; larger is H3_MESSAGE_ERROR. Default 16384. */
  maxCapsuleSize?: number | undefined;
}

export type CapsuleEvent =
  | { kind: "datagram"; payload: Uint8Array }
  | { kind: "capsule"; capsule: Capsule }
  /** A capsule skipped without buffering: unknown type, or a DATAGRAM over the limit. */
  | { kind: "skipped"; type: bigint; length: number };

const DEFAULT_KEEP: readonly number[] = [
  CapsuleType.CLOSE_WEBTRANSPORT_SESSION,
  CapsuleType.DRAIN_WEBTRANSPORT_SESSION,
];

const ParserState = { Header: 0, Value: 1, Skip: 2 } as const;
type ParserState = (typeof ParserState)[keyof typeof ParserState];

/**
 * Incremental capsule parser for a CONNECT stream's data stream (the DATA payloads, in order).
 * Push bytes, {@link finish} at FIN, pull events. Buffers at most one capsule value (≤ the
 * limits) plus a 16-byte header.
 */
export class CapsuleParser {
  private readonly queue = new ByteQueue();
  private readonly maxDatagramSize: number;
  private readonly keep: ReadonlySet<number>;
  private readonly maxCapsuleSize: number;
  private state: ParserState = ParserState.Header;
  private fin = false;
  private error: H3Error | undefined;
  private type: number | bigint = 0;
  private length = 0;
  private remaining = 0;
  private value: Uint8Array | undefined;
  private filled = 0;

  constructor(opts: CapsuleParserOptions = {}) {
    this.maxDatagramSize = opts.maxDatagramSize ?? 65535;
    this.keep = new Set(opts.keepTypes ?? DEFAULT_KEEP);
    this.maxCapsuleSize = opts.maxCapsuleSize ?? 16384;
  }

  /** Adds data-stream bytes (referenced, not copied, until pulled). */
  push(chunk: Uint8Array): void {
    if (this.fin) throw new QuicUsageError("CapsuleParser: push after finish");
    this.queue.push(chunk);
  }

  /** The data stream ended cleanly (FIN). */
  finish(): void {
    this.fin = true;
  }

  /** True once the stream ended on a capsule boundary and everything was consumed. */
  get done(): boolean {
    return (
      this.fin && this.error === undefined && this.queue.length === 0 && this.state === ParserState.Header
    );
  }

  /** Bytes pushed and not consumed, plus the partial capsule value buffered. */
  get bufferedBytes(): number {
    return this.queue.length + this.filled;
  }

  /** The next event, or undefined when more bytes are needed. Throws {@link H3StreamError}. */
  pull(): CapsuleEvent | undefined {
    if (this.error !== undefined) throw this.error;
    try {
      return this.step();
    } catch (e) {
      if (e instanceof H3Error) this.error = e;
      throw e;
    }
  }

  /** Every event available now. */
  pullAll(): CapsuleEvent[] {
    const out: CapsuleEvent[] = [];
    for (let ev = this.pull(); ev !== undefined; ev = this.pull()) out.push(ev);
    return out;
  }

  private malformed(reason: string): H3StreamError {
    return new H3StreamError(H3ErrorCode.H3_MESSAGE_ERROR, reason, this.type);
  }

  private step(): CapsuleEvent | undefined {
    const q = this.queue;
    switch (this.state) {
      case ParserState.Header: {
        if (q.length === 0) return undefined;
        const t = q.peekVarint(0);
        const l = t === undefined ? undefined : q.peekVarint(t[1]);
        if (t === undefined || l === undefined) {
          // RFC 9297 §3.3: a truncated last capsule at a clean end of stream is malformed.
          if (this.fin) throw this.malformed("data stream ended inside a capsule header");
          return undefined;
        }
        q.skip(t[1] + l[1]);
        this.type = t[0];
        this.length = typeof l[0] === "bigint" ? Number.MAX_SAFE_INTEGER : l[0];
        this.remaining = this.length;
        const type = t[0];
        const isDatagram = type === CapsuleType.DATAGRAM;
        const kept = isDatagram || (typeof type === "number" && this.keep.has(type));
        if (!kept || (isDatagram && this.length > this.maxDatagramSize)) {
          this.state = ParserState.Skip;
          return this.step();
        }
        if (!isDatagram && this.length > this.maxCapsuleSize) {
          throw this.malformed(`capsule 0x${type.toString(16)} of ${this.length} bytes exceeds the limit`);
        }
        if (this.length <= q.length) return this.deliver(q.read(this.length));
        this.value = new Uint8Array(this.length);
        this.filled = 0;
        this.state = ParserState.Value;
        return this.step();
      }
      case ParserState.Value: {
        const n = Math.min(q.length, this.remaining);
        q.copyInto(this.value!, this.filled, n);
        this.filled += n;
        this.remaining -= n;
        if (this.remaining > 0) {
          if (this.fin) throw this.malformed("data stream ended inside a capsule");
          return undefined;
        }
        const value = this.value!;
        this.value = undefined;
        this.filled = 0;
        this.state = ParserState.Header;
        return this.deliver(value);
      }
      case ParserState.Skip: {
        const n = Math.min(q.length, this.remaining);
        q.skip(n);
        this.remaining -= n;
        if (this.remaining > 0) {
          if (this.fin) throw this.malformed("data stream ended inside a capsule");
          return undefined;
        }
        this.state = ParserState.Header;
        const type = typeof this.type === "bigint" ? this.type : BigInt(this.type);
        return { kind: "skipped", type, length: this.length };
      }
    }
  }

  private deliver(value: Uint8Array): CapsuleEvent {
    this.state = ParserState.Header;
    if (this.type === CapsuleType.DATAGRAM) return { kind: "datagram", payload: value };
    return { kind: "capsule", capsule: { type: Number(this.type), value } };
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP/3 Datagrams (RFC 9297 §2.1)

/** RFC 9297 §2.1: "the largest legal value of Quarter Stream ID is 2^60-1". */
export const MAX_QUARTER_STREAM_ID = (1n << 60n) - 1n;

/**
 * The Quarter Stream ID of a request stream: `streamId / 4`. The stream must be a
 * client-initiated bidirectional stream (RFC 9297 §2.1), i.e. a multiple of 4; anything else is a
 * local bug (QuicUsageError).
 */
export function quarterStreamId(streamId: number): number {
  if (!Number.isSafeInteger(streamId) || streamId < 0 || streamId % 4 !== 0) {
    throw new QuicUsageError(
      `HTTP/3 datagrams need a client-initiated bidirectional stream, not ${streamId}`,
    );
  }
  return streamId / 4;
}

/** Encoded size of an HTTP/3 datagram for `streamId` with a payload of `payloadLength` bytes. */
export function h3DatagramSize(streamId: number, payloadLength: number): number {
  return varintLength(quarterStreamId(streamId)) + payloadLength;
}

/** Writes an HTTP/3 datagram (the Datagram Data of a QUIC DATAGRAM frame). */
export function encodeH3Datagram(w: ByteWriter, streamId: number, payload: Uint8Array): void {
  const q = quarterStreamId(streamId);
  if (w.remaining < varintLength(q) + payload.length)
    throw new QuicUsageError("encodeH3Datagram: buffer too small");
  w.writeVarint(q);
  w.writeBytes(payload);
}

/** A decoded HTTP/3 datagram. */
export interface H3Datagram {
  /**
   * The request stream ID (quarter stream ID × 4). Values above 2^53 − 1 saturate to
   * `Number.MAX_SAFE_INTEGER`; no such stream can exist (RFC 9297 §2.1: treat as beyond the
   * stream limits, H3_ID_ERROR, or drop).
   */
  streamId: number;
  /** HTTP Datagram Payload (a view into the input; may be empty). */
  payload: Uint8Array;
}

/**
 * Decodes the Datagram Data of a QUIC DATAGRAM frame. Throws {@link H3Error} H3_DATAGRAM_ERROR
 * (a connection error, RFC 9297 §2.1) when it is too short to hold the Quarter Stream ID, or when
 * that exceeds 2^60 − 1.
 */
export function decodeH3Datagram(data: Uint8Array): H3Datagram {
  const r = new ByteReader(data);
  if (data.length === 0 || data.length < 1 << (data[0] >> 6)) {
    // RFC 9297 §2.1: "a QUIC DATAGRAM frame whose payload is too short to allow parsing the
    // Quarter Stream ID field MUST be treated as an HTTP/3 connection error of type
    // H3_DATAGRAM_ERROR".
    throw new H3Error(H3ErrorCode.H3_DATAGRAM_ERROR, "datagram too short for a quarter stream ID");
  }
  const q = r.readVarintBig();
  if (q > MAX_QUARTER_STREAM_ID) {
    // RFC 9297 §2.1: a larger value "MUST be treated as an HTTP/3 connection error of type
    // H3_DATAGRAM_ERROR".
    throw new H3Error(H3ErrorCode.H3_DATAGRAM_ERROR, `quarter stream ID ${q} exceeds 2^60-1`);
  }
  const id = q * 4n;
  const streamId = id > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(id);
  return { streamId, payload: data.subarray(r.pos) };
}
