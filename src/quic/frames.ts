/**
 * QUIC frame codec: every frame of RFC 9000 §19 plus DATAGRAM (RFC 9221 §4), and the extension
 * frames ACK_FREQUENCY / IMMEDIATE_ACK (draft-ietf-quic-ack-frequency) and RESET_STREAM_AT
 * (draft-ietf-quic-reliable-stream-reset). Whether an extension frame was negotiated is the
 * connection's business: the codec decodes it whenever it is well formed.
 *
 * Integer representation (see bytes.ts, "number vs bigint"):
 * - `number` for offsets, lengths, flow-control limits, stream counts, stream IDs, packet numbers,
 *   sequence numbers, ACK ranges, the raw (unscaled) ACK Delay, ECN counts and the Frame Type field
 *   of CONNECTION_CLOSE. They are decoded with {@link ByteReader.readVarint}, which saturates values
 *   above 2^53−1 to `Number.MAX_SAFE_INTEGER`; such a value can never be legitimate for a live
 *   connection (no peer sends 8 PiB or 2^53 packets), so the connection rejects it on its own
 *   grounds. Where the exact value matters for a MUST of the codec itself (§19.6/§19.8
 *   offset + length ≤ 2^62−1, §19.11/§19.14 stream count ≤ 2^60, §19.3.1 no negative packet
 *   number, §19.15 Retire Prior To ≤ Sequence Number) a saturated field is re-read exactly with
 *   {@link ByteReader.readVarintBig}.
 * - `bigint` for application and transport error codes (RESET_STREAM, STOP_SENDING,
 *   CONNECTION_CLOSE): they are identifiers that may use the whole 62-bit range (GREASE values).
 *
 * Decoded byte fields (data, token, connection ID, reset token, reason phrase) are views into the
 * input buffer (no copy): copy them if the buffer is reused.
 *
 * Errors: {@link decodeFrame} throws only {@link QuicError}: FRAME_ENCODING_ERROR (with `frameType`
 * set) for malformed, truncated or unknown frames, PROTOCOL_VIOLATION for a frame type that is not
 * minimally encoded (§12.4). {@link encodeFrame} throws {@link QuicUsageError} for a frame that is
 * not valid (a local bug) and leaves the writer where it was.
 */
import {
  type ByteReader,
  type ByteWriter,
  MAX_SAFE_VARINT,
  MAX_VARINT,
  TruncatedError,
  varintLength,
} from "./bytes.ts";
import { frameEncodingError, protocolViolation, QuicUsageError } from "./errors.ts";

/** Wire codes of the frame types (RFC 9000 §12.4 table, RFC 9221 §4). */
export const FrameType = {
  PADDING: 0x00,
  PING: 0x01,
  ACK: 0x02,
  ACK_ECN: 0x03,
  RESET_STREAM: 0x04,
  STOP_SENDING: 0x05,
  CRYPTO: 0x06,
  NEW_TOKEN: 0x07,
  /** STREAM is 0x08..0x0f: 0x08 | OFF (0x04) | LEN (0x02) | FIN (0x01). */
  STREAM: 0x08,
  MAX_DATA: 0x10,
  MAX_STREAM_DATA: 0x11,
  MAX_STREAMS_BIDI: 0x12,
  MAX_STREAMS_UNI: 0x13,
  DATA_BLOCKED: 0x14,
  STREAM_DATA_BLOCKED: 0x15,
  STREAMS_BLOCKED_BIDI: 0x16,
  STREAMS_BLOCKED_UNI: 0x17,
  NEW_CONNECTION_ID: 0x18,
  RETIRE_CONNECTION_ID: 0x19,
  PATH_CHALLENGE: 0x1a,
  PATH_RESPONSE: 0x1b,
  CONNECTION_CLOSE: 0x1c,
  CONNECTION_CLOSE_APP: 0x1d,
  HANDSHAKE_DONE: 0x1e,
  /** draft-ietf-quic-ack-frequency §5. */
  IMMEDIATE_ACK: 0x1f,
  /** draft-ietf-quic-reliable-stream-reset §4. */
  RESET_STREAM_AT: 0x24,
  /** draft-ietf-quic-ack-frequency §4 (a two-byte varint on the wire: 0x40af). */
  ACK_FREQUENCY: 0xaf,
  /** DATAGRAM without Length: the data runs to the end of the packet. */
  DATAGRAM: 0x30,
  /** DATAGRAM with Length. */
  DATAGRAM_LEN: 0x31,
} as const;

/** STREAM type bits (§19.8). */
const STREAM_OFF = 0x04;
const STREAM_LEN = 0x02;
const STREAM_FIN = 0x01;

/** §19.15: connection IDs in NEW_CONNECTION_ID are 1..20 bytes. */
const MAX_CID_LENGTH = 20;
/** §19.15: Stateless Reset Token is 128 bits. */
const RESET_TOKEN_LENGTH = 16;
/** §19.17/§19.18: PATH_CHALLENGE / PATH_RESPONSE data is 64 bits. */
const PATH_DATA_LENGTH = 8;
/** §19.11/§19.14: a stream count cannot exceed 2^60. */
const MAX_STREAM_COUNT = 1n << 60n;

export interface PaddingFrame {
  kind: "padding";
  /** Number of consecutive 0x00 bytes (≥ 1). Decoding coalesces a run into one frame. */
  length: number;
}

export interface PingFrame {
  kind: "ping";
}

export interface AckEcnCounts {
  ect0: number;
  ect1: number;
  ce: number;
}

export interface AckFrame {
  kind: "ack";
  /** Largest Acknowledged; equals `ranges[0]`. */
  largest: number;
  /** ACK Delay as on the wire, not scaled by ack_delay_exponent. */
  ackDelay: number;
  /**
   * Acknowledged ranges as flat [high, low] pairs (inclusive), in descending order:
   * `[largest, largest − firstAckRange, high1, low1, …]`, with `high(i+1) ≤ low(i) − 2`.
   * Exact when every packet number is ≤ 2^53−1; larger ones saturate (see the module comment).
   */
  ranges: number[];
  /** ECN counts: present for type 0x03 (ACK_ECN). */
  ecn?: AckEcnCounts | undefined;
}

export interface ResetStreamFrame {
  kind: "reset_stream";
  streamId: number;
  errorCode: bigint;
  finalSize: number;
}

export interface StopSendingFrame {
  kind: "stop_sending";
  streamId: number;
  errorCode: bigint;
}

export interface CryptoFrame {
  kind: "crypto";
  offset: number;
  data: Uint8Array;
}

export interface NewTokenFrame {
  kind: "new_token";
  /** Non-empty (§19.7). */
  token: Uint8Array;
}

export interface StreamFrame {
  kind: "stream";
  streamId: number;
  offset: number;
  data: Uint8Array;
  fin: boolean;
  /**
   * No Length field: the data runs to the end of the packet, so the frame must be the last one
   * in it. The decoder sets this from the LEN bit.
   */
  noLength?: boolean | undefined;
}

export interface MaxDataFrame {
  kind: "max_data";
  maximum: number;
}

export interface MaxStreamDataFrame {
  kind: "max_stream_data";
  streamId: number;
  maximum: number;
}

export interface MaxStreamsFrame {
  kind: "max_streams";
  bidi: boolean;
  /** ≤ 2^60 (§19.11). */
  maximum: number;
}

export interface DataBlockedFrame {
  kind: "data_blocked";
  /** Connection-level limit at which blocking occurred. */
  limit: number;
}

export interface StreamDataBlockedFrame {
  kind: "stream_data_blocked";
  streamId: number;
  /** Stream-level limit at which blocking occurred. */
  limit: number;
}

export interface StreamsBlockedFrame {
  kind: "streams_blocked";
  bidi: boolean;
  /** Stream limit at which blocking occurred, ≤ 2^60 (§19.14). */
  limit: number;
}

export interface NewConnectionIdFrame {
  kind: "new_connection_id";
  sequence: number;
  /** ≤ `sequence` (§19.15). */
  retirePriorTo: number;
  /** 1..20 bytes (§19.15). */
  connectionId: Uint8Array;
  /** 16 bytes. */
  statelessResetToken: Uint8Array;
}

export interface RetireConnectionIdFrame {
  kind: "retire_connection_id";
  sequence: number;
}

export interface PathChallengeFrame {
  kind: "path_challenge";
  /** 8 bytes. */
  data: Uint8Array;
}

export interface PathResponseFrame {
  kind: "path_response";
  /** 8 bytes. */
  data: Uint8Array;
}

export interface ConnectionCloseFrame {
  kind: "connection_close";
  /** true: type 0x1d (application error code, no Frame Type field); false: type 0x1c. */
  application: boolean;
  errorCode: bigint;
  /** Frame type that triggered the error (0 when unknown); 0 and not encoded when `application`. */
  frameType: number;
  /** Reason phrase bytes (SHOULD be UTF-8; decode leniently). */
  reason: Uint8Array;
}

export interface HandshakeDoneFrame {
  kind: "handshake_done";
}

export interface DatagramFrame {
  kind: "datagram";
  data: Uint8Array;
  /** Type 0x30 (no Length, data runs to the end of the packet) rather than 0x31. */
  noLength?: boolean | undefined;
}

/** RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset §4): RESET_STREAM with a Reliable Size. */
export interface ResetStreamAtFrame {
  kind: "reset_stream_at";
  streamId: number;
  errorCode: bigint;
  finalSize: number;
  /** Bytes the receiver still delivers to the application; ≤ finalSize. */
  reliableSize: number;
}

/** ACK_FREQUENCY (draft-ietf-quic-ack-frequency §4). */
export interface AckFrequencyFrame {
  kind: "ack_frequency";
  sequence: number;
  /** Ack-eliciting packets the receiver may get without acknowledging (0 = ack every one). */
  ackElicitingThreshold: number;
  /** The max_ack_delay the receiver should use, in microseconds. */
  requestedMaxAckDelay: number;
  /** Reordering that elicits an immediate ACK (0 = none, 1 = RFC 9000 default). */
  reorderingThreshold: number;
}

/** IMMEDIATE_ACK (draft-ietf-quic-ack-frequency §5). */
export interface ImmediateAckFrame {
  kind: "immediate_ack";
}

export type Frame =
  | PaddingFrame
  | PingFrame
  | AckFrame
  | ResetStreamFrame
  | StopSendingFrame
  | CryptoFrame
  | NewTokenFrame
  | StreamFrame
  | MaxDataFrame
  | MaxStreamDataFrame
  | MaxStreamsFrame
  | DataBlockedFrame
  | StreamDataBlockedFrame
  | StreamsBlockedFrame
  | NewConnectionIdFrame
  | RetireConnectionIdFrame
  | PathChallengeFrame
  | PathResponseFrame
  | ConnectionCloseFrame
  | HandshakeDoneFrame
  | DatagramFrame
  | ResetStreamAtFrame
  | AckFrequencyFrame
  | ImmediateAckFrame;

export type FrameKind = Frame["kind"];

/** Packet types that carry frames (§12.4 "Pkts" column). */
export type FramePacketType = "initial" | "0rtt" | "handshake" | "1rtt";

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/**
 * Decodes one frame at `r.pos` and advances past it. Loop with `while (!r.done)` over a packet
 * payload. A STREAM or DATAGRAM frame without Length consumes the rest of the reader. On error
 * the reader's position is unspecified.
 *
 * @throws QuicError FRAME_ENCODING_ERROR (malformed, truncated, unknown type; `frameType` set)
 *   or PROTOCOL_VIOLATION (frame type not minimally encoded).
 */
export function decodeFrame(r: ByteReader): Frame {
  const start = r.pos;
  if (start >= r.end) throw frameEncodingError("empty frame");
  const buf = r.buf;
  const first = buf[start];
  let type: number;
  if (first < 0x40) {
    type = first;
    r.pos = start + 1;
  } else if (first === 0x40 && start + 1 < r.end && buf[start + 1] === 0xaf) {
    type = FrameType.ACK_FREQUENCY; // the only two-byte frame type we know
    r.pos = start + 2;
  } else {
    type = readLongFrameType(r);
  }
  try {
    switch (type) {
      case 0x00: {
        // Coalesce a run of PADDING (§19.1) into one frame.
        const end = r.end;
        let p = start + 1;
        while (p < end && buf[p] === 0) p++;
        r.pos = p;
        return { kind: "padding", length: p - start };
      }
      case 0x01:
        return { kind: "ping" };
      case 0x02:
      case 0x03:
        return decodeAck(r, type);
      case 0x04: {
        const streamId = r.readVarint();
        const errorCode = r.readVarintBig();
        const finalSize = r.readVarint();
        return { kind: "reset_stream", streamId, errorCode, finalSize };
      }
      case 0x05: {
        const streamId = r.readVarint();
        const errorCode = r.readVarintBig();
        return { kind: "stop_sending", streamId, errorCode };
      }
      case 0x06: {
        const offsetPos = r.pos;
        const offset = r.readVarint();
        const length = r.readVarint();
        const data = r.readBytes(length, "CRYPTO data");
        // §19.6: offset + length MUST NOT exceed 2^62−1 (FRAME_ENCODING_ERROR).
        if (offset === MAX_SAFE_VARINT) checkOffsetBound(r, offsetPos, length, type);
        return { kind: "crypto", offset, data };
      }
      case 0x07: {
        const length = r.readVarint();
        // §19.7: a client MUST treat an empty token as FRAME_ENCODING_ERROR.
        if (length === 0) throw frameEncodingError("empty NEW_TOKEN", type);
        const token = r.readBytes(length, "NEW_TOKEN token");
        return { kind: "new_token", token };
      }
      case 0x08:
      case 0x09:
      case 0x0a:
      case 0x0b:
      case 0x0c:
      case 0x0d:
      case 0x0e:
      case 0x0f: {
        const streamId = r.readVarint();
        let offsetPos = -1;
        let offset = 0;
        if (type & STREAM_OFF) {
          offsetPos = r.pos;
          offset = r.readVarint();
        }
        const noLength = (type & STREAM_LEN) === 0;
        const data = noLength
          ? r.readBytes(r.remaining, "STREAM data")
          : r.readBytes(r.readVarint(), "STREAM data");
        // §19.8: offset + length MUST NOT exceed 2^62−1 (FRAME_ENCODING_ERROR).
        if (offset === MAX_SAFE_VARINT) checkOffsetBound(r, offsetPos, data.length, type);
        return { kind: "stream", streamId, offset, data, fin: (type & STREAM_FIN) !== 0, noLength };
      }
      case 0x10:
        return { kind: "max_data", maximum: r.readVarint() };
      case 0x11: {
        const streamId = r.readVarint();
        const maximum = r.readVarint();
        return { kind: "max_stream_data", streamId, maximum };
      }
      case 0x12:
      case 0x13: {
        // §19.11: a count above 2^60 MUST be treated as FRAME_ENCODING_ERROR.
        const maximum = readStreamCount(r, type);
        return { kind: "max_streams", bidi: type === 0x12, maximum };
      }
      case 0x14:
        return { kind: "data_blocked", limit: r.readVarint() };
      case 0x15: {
        const streamId = r.readVarint();
        const limit = r.readVarint();
        return { kind: "stream_data_blocked", streamId, limit };
      }
      case 0x16:
      case 0x17: {
        // §19.14: a count above 2^60 is STREAM_LIMIT_ERROR or FRAME_ENCODING_ERROR.
        const limit = readStreamCount(r, type);
        return { kind: "streams_blocked", bidi: type === 0x16, limit };
      }
      case 0x18:
        return decodeNewConnectionId(r, type);
      case 0x19:
        return { kind: "retire_connection_id", sequence: r.readVarint() };
      case 0x1a:
        return { kind: "path_challenge", data: r.readBytes(PATH_DATA_LENGTH, "PATH_CHALLENGE data") };
      case 0x1b:
        return { kind: "path_response", data: r.readBytes(PATH_DATA_LENGTH, "PATH_RESPONSE data") };
      case 0x1c:
      case 0x1d: {
        const application = type === 0x1d;
        const errorCode = r.readVarintBig();
        const frameType = application ? 0 : r.readVarint();
        const reason = r.readBytes(r.readVarint(), "CONNECTION_CLOSE reason");
        return { kind: "connection_close", application, errorCode, frameType, reason };
      }
      case 0x1e:
        return { kind: "handshake_done" };
      case 0x1f:
        return { kind: "immediate_ack" };
      case 0x24: {
        const streamId = r.readVarint();
        const errorCode = r.readVarintBig();
        const finalSize = r.readVarint();
        const reliableSize = r.readVarint();
        // draft-ietf-quic-reliable-stream-reset §4: Reliable Size > Final Size MUST be a
        // FRAME_ENCODING_ERROR.
        if (reliableSize > finalSize) throw frameEncodingError("reliable size above final size", type);
        return { kind: "reset_stream_at", streamId, errorCode, finalSize, reliableSize };
      }
      case 0xaf: {
        const sequence = r.readVarint();
        const ackElicitingThreshold = r.readVarint();
        const requestedMaxAckDelay = r.readVarint();
        const reorderingThreshold = r.readVarint();
        return {
          kind: "ack_frequency",
          sequence,
          ackElicitingThreshold,
          requestedMaxAckDelay,
          reorderingThreshold,
        };
      }
      case 0x30:
        return { kind: "datagram", data: r.readBytes(r.remaining, "DATAGRAM data"), noLength: true };
      case 0x31:
        return { kind: "datagram", data: r.readBytes(r.readVarint(), "DATAGRAM data"), noLength: false };
      default:
        // §12.4: a frame of unknown type MUST be treated as FRAME_ENCODING_ERROR.
        throw frameEncodingError(`unknown frame type 0x${type.toString(16)}`, type);
    }
  } catch (e) {
    // Truncation inside a frame is a FRAME_ENCODING_ERROR for that frame type.
    if (e instanceof TruncatedError) throw frameEncodingError(e.reason, type);
    throw e;
  }
}

/** A frame type encoded on 2, 4 or 8 bytes other than ACK_FREQUENCY's 0x40af: never a known one. */
function readLongFrameType(r: ByteReader): number {
  const len = 1 << (r.buf[r.pos] >> 6);
  const type = r.readVarint(); // TruncatedError is already a FRAME_ENCODING_ERROR
  // §12.4: a frame type MUST use the shortest possible encoding; we treat a longer one as
  // PROTOCOL_VIOLATION (which §12.4 permits).
  if (varintLength(type) !== len) {
    throw protocolViolation(`frame type 0x${type.toString(16)} not minimally encoded`, type);
  }
  throw frameEncodingError(`unknown frame type 0x${type.toString(16)}`, type);
}

/** Slow path for a saturated offset: exact check of offset + length ≤ 2^62−1 (§19.6, §19.8). */
function checkOffsetBound(r: ByteReader, offsetPos: number, length: number, type: number): void {
  const pos = r.pos;
  r.pos = offsetPos;
  const offset = r.readVarintBig();
  r.pos = pos;
  if (offset + BigInt(length) > MAX_VARINT) {
    throw frameEncodingError("offset + length exceeds 2^62-1", type);
  }
}

/** A MAX_STREAMS / STREAMS_BLOCKED count, checked against 2^60 exactly (§19.11, §19.14). */
function readStreamCount(r: ByteReader, type: number): number {
  const pos = r.pos;
  const count = r.readVarint();
  if (count === MAX_SAFE_VARINT) {
    r.pos = pos;
    if (r.readVarintBig() > MAX_STREAM_COUNT) throw frameEncodingError("stream count exceeds 2^60", type);
  }
  return count;
}

function decodeNewConnectionId(r: ByteReader, type: number): NewConnectionIdFrame {
  const seqPos = r.pos;
  const sequence = r.readVarint();
  const rptPos = r.pos;
  const retirePriorTo = r.readVarint();
  // §19.15: Retire Prior To > Sequence Number MUST be treated as FRAME_ENCODING_ERROR. Both
  // saturated: compare exactly.
  let retireTooLarge = retirePriorTo > sequence;
  if (retirePriorTo === MAX_SAFE_VARINT && sequence === MAX_SAFE_VARINT) {
    const pos = r.pos;
    r.pos = seqPos;
    const seqBig = r.readVarintBig();
    r.pos = rptPos;
    retireTooLarge = r.readVarintBig() > seqBig;
    r.pos = pos;
  }
  if (retireTooLarge) throw frameEncodingError("NEW_CONNECTION_ID Retire Prior To > Sequence Number", type);
  const length = r.readUint8();
  // §19.15: a length below 1 or above 20 MUST be treated as FRAME_ENCODING_ERROR.
  if (length < 1 || length > MAX_CID_LENGTH) {
    throw frameEncodingError(`NEW_CONNECTION_ID length ${length}`, type);
  }
  const connectionId = r.readBytes(length, "NEW_CONNECTION_ID connection ID");
  const statelessResetToken = r.readBytes(RESET_TOKEN_LENGTH, "stateless reset token");
  return { kind: "new_connection_id", sequence, retirePriorTo, connectionId, statelessResetToken };
}

function decodeAck(r: ByteReader, type: number): AckFrame {
  const start = r.pos;
  const largest = r.readVarint();
  const ackDelay = r.readVarint();
  const count = r.readVarint();
  const firstRange = r.readVarint();
  // Each ACK Range takes at least 2 bytes: bound a hostile ACK Range Count before allocating.
  if (count > r.remaining / 2) throw frameEncodingError("ACK Range Count exceeds the frame", type);
  if (largest === MAX_SAFE_VARINT || firstRange === MAX_SAFE_VARINT) return decodeAckExact(r, start, type);
  let low = largest - firstRange;
  // §19.3.1: a negative packet number MUST be treated as FRAME_ENCODING_ERROR.
  if (low < 0) throw frameEncodingError("ACK range below packet number 0", type);
  const ranges: number[] = [largest, low];
  for (let i = 0; i < count; i++) {
    const gap = r.readVarint();
    const len = r.readVarint();
    if (gap === MAX_SAFE_VARINT || len === MAX_SAFE_VARINT) return decodeAckExact(r, start, type);
    // Exact or sign-preserving: all operands are integers below 2^53.
    const high = low - gap - 2;
    low = high - len;
    if (low < 0) throw frameEncodingError("ACK range below packet number 0", type); // §19.3.1
    ranges.push(high, low);
  }
  let ecn: AckEcnCounts | undefined;
  if (type === 0x03) ecn = { ect0: r.readVarint(), ect1: r.readVarint(), ce: r.readVarint() };
  return { kind: "ack", largest, ackDelay, ranges, ecn };
}

const MAX_SAFE_BIG = BigInt(MAX_SAFE_VARINT);
const toSaturated = (v: bigint): number => (v > MAX_SAFE_BIG ? MAX_SAFE_VARINT : Number(v));

/**
 * Slow path for an ACK with a field ≥ 2^53−1: re-decode from `start` with exact bigint arithmetic
 * for the §19.3.1 check, then saturate the packet numbers.
 */
function decodeAckExact(r: ByteReader, start: number, type: number): AckFrame {
  r.pos = start;
  const largest = r.readVarintBig();
  const ackDelay = r.readVarint();
  const count = r.readVarint();
  let low = largest - r.readVarintBig();
  if (low < 0n) throw frameEncodingError("ACK range below packet number 0", type); // §19.3.1
  const ranges: number[] = [toSaturated(largest), toSaturated(low)];
  for (let i = 0; i < count; i++) {
    const high = low - r.readVarintBig() - 2n;
    low = high - r.readVarintBig();
    if (low < 0n) throw frameEncodingError("ACK range below packet number 0", type); // §19.3.1
    ranges.push(toSaturated(high), toSaturated(low));
  }
  let ecn: AckEcnCounts | undefined;
  if (type === 0x03) ecn = { ect0: r.readVarint(), ect1: r.readVarint(), ce: r.readVarint() };
  return { kind: "ack", largest: toSaturated(largest), ackDelay, ranges, ecn };
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/**
 * Writes `f` at `w.pos`. Size the buffer with {@link frameSize} first.
 *
 * @throws QuicUsageError when `f` is not a valid frame or the buffer is too small
 *   (BufferOverflowError); the writer is then left at its original position.
 */
export function encodeFrame(f: Frame, w: ByteWriter): void {
  const start = w.pos;
  try {
    encodeUnchecked(f, w);
  } catch (e) {
    w.pos = start;
    throw e;
  }
}

function encodeUnchecked(f: Frame, w: ByteWriter): void {
  switch (f.kind) {
    case "padding":
      if (!Number.isInteger(f.length) || f.length < 1) throw new QuicUsageError(`PADDING length ${f.length}`);
      w.writeZeros(f.length);
      return;
    case "ping":
      w.writeUint8(FrameType.PING);
      return;
    case "ack":
      encodeAck(f, w);
      return;
    case "reset_stream":
      w.writeUint8(FrameType.RESET_STREAM);
      w.writeVarint(f.streamId);
      w.writeVarintBig(f.errorCode);
      w.writeVarint(f.finalSize);
      return;
    case "stop_sending":
      w.writeUint8(FrameType.STOP_SENDING);
      w.writeVarint(f.streamId);
      w.writeVarintBig(f.errorCode);
      return;
    case "crypto":
      w.writeUint8(FrameType.CRYPTO);
      w.writeVarint(f.offset);
      w.writeVarint(f.data.length);
      w.writeBytes(f.data);
      return;
    case "new_token":
      if (f.token.length === 0) throw new QuicUsageError("NEW_TOKEN token must not be empty"); // §19.7
      w.writeUint8(FrameType.NEW_TOKEN);
      w.writeVarint(f.token.length);
      w.writeBytes(f.token);
      return;
    case "stream": {
      checkVarint(f.offset, "STREAM offset");
      const type = streamType(f);
      w.writeUint8(type);
      w.writeVarint(f.streamId);
      if (type & STREAM_OFF) w.writeVarint(f.offset);
      if (type & STREAM_LEN) w.writeVarint(f.data.length);
      w.writeBytes(f.data);
      return;
    }
    case "max_data":
      w.writeUint8(FrameType.MAX_DATA);
      w.writeVarint(f.maximum);
      return;
    case "max_stream_data":
      w.writeUint8(FrameType.MAX_STREAM_DATA);
      w.writeVarint(f.streamId);
      w.writeVarint(f.maximum);
      return;
    case "max_streams":
      // Numbers stay ≤ 2^53−1 < 2^60, so the §19.11 bound holds for any valid varint.
      w.writeUint8(f.bidi ? FrameType.MAX_STREAMS_BIDI : FrameType.MAX_STREAMS_UNI);
      w.writeVarint(f.maximum);
      return;
    case "data_blocked":
      w.writeUint8(FrameType.DATA_BLOCKED);
      w.writeVarint(f.limit);
      return;
    case "stream_data_blocked":
      w.writeUint8(FrameType.STREAM_DATA_BLOCKED);
      w.writeVarint(f.streamId);
      w.writeVarint(f.limit);
      return;
    case "streams_blocked":
      w.writeUint8(f.bidi ? FrameType.STREAMS_BLOCKED_BIDI : FrameType.STREAMS_BLOCKED_UNI);
      w.writeVarint(f.limit);
      return;
    case "new_connection_id": {
      const cidLen = f.connectionId.length;
      if (cidLen < 1 || cidLen > MAX_CID_LENGTH) {
        throw new QuicUsageError(`NEW_CONNECTION_ID connection ID length ${cidLen}`); // §19.15
      }
      if (f.statelessResetToken.length !== RESET_TOKEN_LENGTH) {
        throw new QuicUsageError(`stateless reset token length ${f.statelessResetToken.length}`);
      }
      checkVarint(f.sequence, "NEW_CONNECTION_ID sequence");
      checkVarint(f.retirePriorTo, "NEW_CONNECTION_ID retire prior to");
      if (f.retirePriorTo > f.sequence) {
        throw new QuicUsageError("NEW_CONNECTION_ID retire prior to > sequence"); // §19.15
      }
      w.writeUint8(FrameType.NEW_CONNECTION_ID);
      w.writeVarint(f.sequence);
      w.writeVarint(f.retirePriorTo);
      w.writeUint8(cidLen);
      w.writeBytes(f.connectionId);
      w.writeBytes(f.statelessResetToken);
      return;
    }
    case "retire_connection_id":
      w.writeUint8(FrameType.RETIRE_CONNECTION_ID);
      w.writeVarint(f.sequence);
      return;
    case "path_challenge":
    case "path_response":
      if (f.data.length !== PATH_DATA_LENGTH) throw new QuicUsageError(`${f.kind} data must be 8 bytes`);
      w.writeUint8(f.kind === "path_challenge" ? FrameType.PATH_CHALLENGE : FrameType.PATH_RESPONSE);
      w.writeBytes(f.data);
      return;
    case "connection_close":
      w.writeUint8(f.application ? FrameType.CONNECTION_CLOSE_APP : FrameType.CONNECTION_CLOSE);
      w.writeVarintBig(f.errorCode);
      if (!f.application) w.writeVarint(f.frameType);
      w.writeVarint(f.reason.length);
      w.writeBytes(f.reason);
      return;
    case "handshake_done":
      w.writeUint8(FrameType.HANDSHAKE_DONE);
      return;
    case "immediate_ack":
      w.writeUint8(FrameType.IMMEDIATE_ACK);
      return;
    case "reset_stream_at":
      if (f.reliableSize > f.finalSize)
        throw new QuicUsageError("RESET_STREAM_AT reliable size above final size");
      w.writeUint8(FrameType.RESET_STREAM_AT);
      w.writeVarint(f.streamId);
      w.writeVarintBig(f.errorCode);
      w.writeVarint(f.finalSize);
      w.writeVarint(f.reliableSize);
      return;
    case "ack_frequency":
      w.writeVarint(FrameType.ACK_FREQUENCY);
      w.writeVarint(f.sequence);
      w.writeVarint(f.ackElicitingThreshold);
      w.writeVarint(f.requestedMaxAckDelay);
      w.writeVarint(f.reorderingThreshold);
      return;
    case "datagram":
      if (f.noLength) {
        w.writeUint8(FrameType.DATAGRAM);
      } else {
        w.writeUint8(FrameType.DATAGRAM_LEN);
        w.writeVarint(f.data.length);
      }
      w.writeBytes(f.data);
      return;
    default:
      throw new QuicUsageError(`unknown frame kind ${(f as { kind: unknown }).kind}`);
  }
}

function checkVarint(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > MAX_SAFE_VARINT)
    throw new QuicUsageError(`${what} out of range: ${v}`);
}

function streamType(f: StreamFrame): number {
  let type: number = FrameType.STREAM;
  if (f.offset > 0) type |= STREAM_OFF;
  if (!f.noLength) type |= STREAM_LEN;
  if (f.fin) type |= STREAM_FIN;
  return type;
}

/** Checks the [high, low] pairs: even, non-empty, each low ≤ high, and a gap between pairs. */
function checkAckRanges(f: AckFrame): void {
  const rs = f.ranges;
  const n = rs.length;
  if (n < 2 || (n & 1) !== 0) throw new QuicUsageError("ACK ranges must be non-empty [high, low] pairs");
  if (f.largest !== rs[0]) throw new QuicUsageError("ACK largest must equal ranges[0]");
  for (let i = 0; i < n; i += 2) {
    const high = rs[i];
    const low = rs[i + 1];
    checkVarint(high, "ACK packet number");
    checkVarint(low, "ACK packet number");
    if (low > high) throw new QuicUsageError(`ACK range [${high}, ${low}] is inverted`);
    if (i > 0 && high > rs[i - 1] - 2) {
      throw new QuicUsageError("ACK ranges must be descending and separated by a gap");
    }
  }
}

function encodeAck(f: AckFrame, w: ByteWriter): void {
  checkAckRanges(f);
  const rs = f.ranges;
  const n = rs.length;
  w.writeUint8(f.ecn ? FrameType.ACK_ECN : FrameType.ACK);
  w.writeVarint(rs[0]);
  w.writeVarint(f.ackDelay);
  w.writeVarint((n >> 1) - 1);
  w.writeVarint(rs[0] - rs[1]);
  for (let i = 2; i < n; i += 2) {
    w.writeVarint(rs[i - 1] - rs[i] - 2); // Gap (§19.3.1)
    w.writeVarint(rs[i] - rs[i + 1]); // ACK Range Length
  }
  const ecn = f.ecn;
  if (ecn) {
    w.writeVarint(ecn.ect0);
    w.writeVarint(ecn.ect1);
    w.writeVarint(ecn.ce);
  }
}

// ---------------------------------------------------------------------------------------------
// Sizes and classification
// ---------------------------------------------------------------------------------------------

/**
 * Exact number of bytes {@link encodeFrame} writes for `f`. Assumes a valid frame (it does not
 * validate; encodeFrame does).
 */
export function frameSize(f: Frame): number {
  switch (f.kind) {
    case "padding":
      return f.length;
    case "ping":
    case "handshake_done":
    case "immediate_ack":
      return 1;
    case "reset_stream_at":
      return (
        1 +
        varintLength(f.streamId) +
        varintLengthOfBig(f.errorCode) +
        varintLength(f.finalSize) +
        varintLength(f.reliableSize)
      );
    case "ack_frequency":
      return (
        2 +
        varintLength(f.sequence) +
        varintLength(f.ackElicitingThreshold) +
        varintLength(f.requestedMaxAckDelay) +
        varintLength(f.reorderingThreshold)
      );
    case "ack": {
      const rs = f.ranges;
      const n = rs.length;
      let size =
        1 +
        varintLength(rs[0]) +
        varintLength(f.ackDelay) +
        varintLength((n >> 1) - 1) +
        varintLength(rs[0] - rs[1]);
      for (let i = 2; i < n; i += 2)
        size += varintLength(rs[i - 1] - rs[i] - 2) + varintLength(rs[i] - rs[i + 1]);
      const ecn = f.ecn;
      if (ecn) size += varintLength(ecn.ect0) + varintLength(ecn.ect1) + varintLength(ecn.ce);
      return size;
    }
    case "reset_stream":
      return 1 + varintLength(f.streamId) + varintLengthOfBig(f.errorCode) + varintLength(f.finalSize);
    case "stop_sending":
      return 1 + varintLength(f.streamId) + varintLengthOfBig(f.errorCode);
    case "crypto":
      return 1 + varintLength(f.offset) + varintLength(f.data.length) + f.data.length;
    case "new_token":
      return 1 + varintLength(f.token.length) + f.token.length;
    case "stream":
      return streamFrameOverhead(f.streamId, f.offset, f.data.length, f.noLength) + f.data.length;
    case "max_data":
      return 1 + varintLength(f.maximum);
    case "max_stream_data":
      return 1 + varintLength(f.streamId) + varintLength(f.maximum);
    case "max_streams":
      return 1 + varintLength(f.maximum);
    case "data_blocked":
      return 1 + varintLength(f.limit);
    case "stream_data_blocked":
      return 1 + varintLength(f.streamId) + varintLength(f.limit);
    case "streams_blocked":
      return 1 + varintLength(f.limit);
    case "new_connection_id":
      return (
        1 +
        varintLength(f.sequence) +
        varintLength(f.retirePriorTo) +
        1 +
        f.connectionId.length +
        f.statelessResetToken.length
      );
    case "retire_connection_id":
      return 1 + varintLength(f.sequence);
    case "path_challenge":
    case "path_response":
      return 1 + f.data.length;
    case "connection_close":
      return (
        1 +
        varintLengthOfBig(f.errorCode) +
        (f.application ? 0 : varintLength(f.frameType)) +
        varintLength(f.reason.length) +
        f.reason.length
      );
    case "datagram":
      return (f.noLength ? 1 : 1 + varintLength(f.data.length)) + f.data.length;
    default:
      throw new QuicUsageError(`unknown frame kind ${(f as { kind: unknown }).kind}`);
  }
}

function varintLengthOfBig(v: bigint): number {
  // Error codes are usually small: avoid bigint comparisons beyond the first.
  return v < 0x40n ? 1 : v < 0x4000n ? 2 : v < 0x4000_0000n ? 4 : 8;
}

/**
 * Bytes a STREAM frame takes besides its data: type, Stream ID, Offset (when > 0) and Length
 * (unless `noLength`). For packing: the frame's size is this plus `dataLength`.
 */
export function streamFrameOverhead(
  streamId: number,
  offset: number,
  dataLength: number,
  noLength = false,
): number {
  return (
    1 +
    varintLength(streamId) +
    (offset > 0 ? varintLength(offset) : 0) +
    (noLength ? 0 : varintLength(dataLength))
  );
}

/**
 * The wire type code {@link encodeFrame} uses for `f` (e.g. for the Frame Type field of a
 * CONNECTION_CLOSE about it). For STREAM it includes the OFF/LEN/FIN bits as they would be encoded.
 */
export function frameTypeOf(f: Frame): number {
  switch (f.kind) {
    case "padding":
      return FrameType.PADDING;
    case "ping":
      return FrameType.PING;
    case "ack":
      return f.ecn ? FrameType.ACK_ECN : FrameType.ACK;
    case "reset_stream":
      return FrameType.RESET_STREAM;
    case "stop_sending":
      return FrameType.STOP_SENDING;
    case "crypto":
      return FrameType.CRYPTO;
    case "new_token":
      return FrameType.NEW_TOKEN;
    case "stream":
      return streamType(f);
    case "max_data":
      return FrameType.MAX_DATA;
    case "max_stream_data":
      return FrameType.MAX_STREAM_DATA;
    case "max_streams":
      return f.bidi ? FrameType.MAX_STREAMS_BIDI : FrameType.MAX_STREAMS_UNI;
    case "data_blocked":
      return FrameType.DATA_BLOCKED;
    case "stream_data_blocked":
      return FrameType.STREAM_DATA_BLOCKED;
    case "streams_blocked":
      return f.bidi ? FrameType.STREAMS_BLOCKED_BIDI : FrameType.STREAMS_BLOCKED_UNI;
    case "new_connection_id":
      return FrameType.NEW_CONNECTION_ID;
    case "retire_connection_id":
      return FrameType.RETIRE_CONNECTION_ID;
    case "path_challenge":
      return FrameType.PATH_CHALLENGE;
    case "path_response":
      return FrameType.PATH_RESPONSE;
    case "connection_close":
      return f.application ? FrameType.CONNECTION_CLOSE_APP : FrameType.CONNECTION_CLOSE;
    case "handshake_done":
      return FrameType.HANDSHAKE_DONE;
    case "datagram":
      return f.noLength ? FrameType.DATAGRAM : FrameType.DATAGRAM_LEN;
    case "immediate_ack":
      return FrameType.IMMEDIATE_ACK;
    case "reset_stream_at":
      return FrameType.RESET_STREAM_AT;
    case "ack_frequency":
      return FrameType.ACK_FREQUENCY;
    default:
      throw new QuicUsageError(`unknown frame kind ${(f as { kind: unknown }).kind}`);
  }
}

/**
 * §13.2 / §12.4 "N": every frame but ACK, PADDING and CONNECTION_CLOSE is ack-eliciting
 * (DATAGRAM is too, RFC 9221 §5.2).
 */
export function isAckEliciting(kind: FrameKind): boolean {
  return kind !== "ack" && kind !== "padding" && kind !== "connection_close";
}

/** §9.1: PATH_CHALLENGE, PATH_RESPONSE, NEW_CONNECTION_ID and PADDING are probing frames. */
export function isProbingFrame(kind: FrameKind): boolean {
  return (
    kind === "path_challenge" ||
    kind === "path_response" ||
    kind === "new_connection_id" ||
    kind === "padding"
  );
}

const PKT_INITIAL = 1;
const PKT_HANDSHAKE = 2;
const PKT_0RTT = 4;
const PKT_1RTT = 8;
const IH01 = PKT_INITIAL | PKT_HANDSHAKE | PKT_0RTT | PKT_1RTT;
const IH_1 = PKT_INITIAL | PKT_HANDSHAKE | PKT_1RTT;
const __01 = PKT_0RTT | PKT_1RTT;
const ___1 = PKT_1RTT;

/**
 * §12.4 "Pkts" column, indexed by type code 0x00..0x1f (0x1f: IMMEDIATE_ACK). RETIRE_CONNECTION_ID is `___1`, not the
 * table's `__01`: §12.5 lists it among the frames that cannot be sent in 0-RTT.
 */
const ALLOWED: readonly number[] = [
  IH01, // 0x00 PADDING
  IH01, // 0x01 PING
  IH_1, // 0x02 ACK
  IH_1, // 0x03 ACK_ECN
  __01, // 0x04 RESET_STREAM
  __01, // 0x05 STOP_SENDING
  IH_1, // 0x06 CRYPTO
  ___1, // 0x07 NEW_TOKEN
  __01, // 0x08..0x0f STREAM
  __01,
  __01,
  __01,
  __01,
  __01,
  __01,
  __01,
  __01, // 0x10 MAX_DATA
  __01, // 0x11 MAX_STREAM_DATA
  __01, // 0x12 MAX_STREAMS_BIDI
  __01, // 0x13 MAX_STREAMS_UNI
  __01, // 0x14 DATA_BLOCKED
  __01, // 0x15 STREAM_DATA_BLOCKED
  __01, // 0x16 STREAMS_BLOCKED_BIDI
  __01, // 0x17 STREAMS_BLOCKED_UNI
  __01, // 0x18 NEW_CONNECTION_ID
  ___1, // 0x19 RETIRE_CONNECTION_ID (§12.5)
  __01, // 0x1a PATH_CHALLENGE
  ___1, // 0x1b PATH_RESPONSE
  IH01, // 0x1c CONNECTION_CLOSE (transport): "ih01"
  __01, // 0x1d CONNECTION_CLOSE (application): only 0-RTT / 1-RTT (§12.5, §19.19)
  ___1, // 0x1e HANDSHAKE_DONE
  // ack-frequency §3: IMMEDIATE_ACK and ACK_FREQUENCY cannot be sent in 0-RTT (min_ack_delay is
  // not remembered).
  ___1, // 0x1f IMMEDIATE_ACK
];

function packetBit(packetType: FramePacketType): number {
  switch (packetType) {
    case "initial":
      return PKT_INITIAL;
    case "handshake":
      return PKT_HANDSHAKE;
    case "0rtt":
      return PKT_0RTT;
    case "1rtt":
      return PKT_1RTT;
    default:
      throw new QuicUsageError(`unknown packet type ${String(packetType)}`);
  }
}

/**
 * Whether a frame may appear in a packet of `packetType` (§12.4 table, §12.5; DATAGRAM only in
 * 0-RTT/1-RTT, RFC 9221 §5). Receipt of a frame that is not allowed MUST be treated as
 * PROTOCOL_VIOLATION (§12.4). Takes the wire type code or a frame (a kind alone is ambiguous for
 * CONNECTION_CLOSE, whose two variants differ). Unknown type codes are never allowed.
 */
export function isFrameAllowed(frame: number | Frame, packetType: FramePacketType): boolean {
  const type = typeof frame === "number" ? frame : frameTypeOf(frame);
  const bit = packetBit(packetType);
  if (type >= 0 && type < ALLOWED.length) return (ALLOWED[type] & bit) !== 0;
  if (type === FrameType.DATAGRAM || type === FrameType.DATAGRAM_LEN) return (__01 & bit) !== 0;
  // reliable-stream-reset §4: application data packet number space only (0-RTT when remembered).
  if (type === FrameType.RESET_STREAM_AT) return (__01 & bit) !== 0;
  if (type === FrameType.ACK_FREQUENCY) return (___1 & bit) !== 0;
  return false;
}
