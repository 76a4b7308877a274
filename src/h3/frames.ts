/**
 * HTTP/3 frame codec (RFC 9114 §7): DATA, HEADERS, CANCEL_PUSH, SETTINGS, PUSH_PROMISE, GOAWAY,
 * MAX_PUSH_ID, PRIORITY_UPDATE (RFC 9218 §7.2), the WEBTRANSPORT_STREAM signal
 * (draft-ietf-webtrans-http3-02 §4.2) and unknown / reserved frame types.
 *
 * Layout (§7.1): `Type (i), Length (i), Frame Payload (..)`, both varints (non-minimal encodings
 * are accepted on receipt; the encoder writes the shortest form). WEBTRANSPORT_STREAM is the
 * exception: `0x41 (i), Session ID (i)` with no Length; the rest of the stream is raw data.
 *
 * Integers: push IDs, the prioritized element ID and the session ID are `number`s (values above
 * 2^53 − 1 saturate, see src/quic/bytes.ts); the GOAWAY identifier is a `bigint` because the
 * shutdown sentinels of §5.2 (2^62 − 4, 2^62 − 1) exceed 2^53; unknown frame types are bigints.
 *
 * Decoded byte fields (DATA, field sections, unknown payloads) are views into the input (no copy).
 *
 * Errors: decoding throws only {@link H3Error}:
 * - H3_FRAME_ERROR: truncated frame, payload with extra or missing bytes (§7.1 "MUST be treated
 *   as a connection error of type H3_FRAME_ERROR"; §10.8 lengths MUST match exactly);
 * - H3_FRAME_UNEXPECTED: an HTTP/2 frame type 0x02, 0x06, 0x08, 0x09 (§7.2.8), or, through
 *   {@link assertFrameAllowed}, a frame on a stream where §7.2 forbids it;
 * - H3_SETTINGS_ERROR: an invalid SETTINGS payload (see settings.ts).
 * Encoding throws {@link QuicUsageError} for an invalid frame and leaves the writer unchanged.
 */
import {
  ByteReader,
  type ByteWriter,
  MAX_SAFE_VARINT,
  varintLength,
  varintLengthBig,
} from "../quic/bytes.ts";
import { QuicError, QuicUsageError } from "../quic/errors.ts";
import { H3Error, H3ErrorCode, isGreaseValue } from "./error-codes.ts";
import { type SettingEntry, settingName, validateSettingEntries } from "./settings.ts";

/** Frame type codes. */
export const FrameType = {
  DATA: 0x00,
  HEADERS: 0x01,
  CANCEL_PUSH: 0x03,
  SETTINGS: 0x04,
  PUSH_PROMISE: 0x05,
  GOAWAY: 0x07,
  MAX_PUSH_ID: 0x0d,
  /** draft-ietf-webtrans-http3-02 §4.2: bidirectional WebTransport stream signal (no Length). */
  WEBTRANSPORT_STREAM: 0x41,
  /** RFC 9218 §7.2: PRIORITY_UPDATE for a request stream. */
  PRIORITY_UPDATE_REQUEST: 0xf0700,
  /** RFC 9218 §7.2: PRIORITY_UPDATE for a push stream. */
  PRIORITY_UPDATE_PUSH: 0xf0701,
} as const;

export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** HTTP/2 frame types with no HTTP/3 equivalent (§7.2.8, §11.2.1): MUST NOT be sent. */
export const HTTP2_RESERVED_FRAME_TYPES: readonly number[] = [0x02, 0x06, 0x08, 0x09];

const names = new Map<number, string>(Object.entries(FrameType).map(([k, v]) => [v, k]));

/** True for the reserved frame types `0x1f * N + 0x21` (§7.2.8). */
export function isReservedFrameType(type: number | bigint): boolean {
  return isGreaseValue(type);
}

/** True for an HTTP/2-only frame type (§7.2.8): receipt is H3_FRAME_UNEXPECTED. */
export function isHttp2ReservedFrameType(type: number | bigint): boolean {
  const t = typeof type === "bigint" ? (type <= 0x09n ? Number(type) : -1) : type;
  return t === 0x02 || t === 0x06 || t === 0x08 || t === 0x09;
}

/** Name of a frame type: `HEADERS`, `GREASE(0x21)`, `HTTP2(0x02)`, `0x1234`. */
export function frameTypeName(type: number | bigint): string {
  const n = typeof type === "bigint" && type <= BigInt(MAX_SAFE_VARINT) ? Number(type) : type;
  const name = typeof n === "number" ? names.get(n) : undefined;
  if (name !== undefined) return name;
  if (isHttp2ReservedFrameType(n)) return `HTTP2(0x0${n.toString(16)})`;
  return isGreaseValue(type) ? `GREASE(0x${type.toString(16)})` : `0x${type.toString(16)}`;
}

// ---------------------------------------------------------------------------------------------
// Frame shapes

/** DATA (§7.2.1). */
export interface DataFrame {
  kind: "data";
  data: Uint8Array;
}

/** HEADERS (§7.2.2): a QPACK-encoded field section (RFC 9204 §4.5). */
export interface HeadersFrame {
  kind: "headers";
  fieldSection: Uint8Array;
}

/** CANCEL_PUSH (§7.2.3). */
export interface CancelPushFrame {
  kind: "cancel_push";
  pushId: number;
}

/** SETTINGS (§7.2.4): the raw entries, validated on decode (see settings.ts). */
export interface SettingsFrame {
  kind: "settings";
  entries: SettingEntry[];
}

/** PUSH_PROMISE (§7.2.5). */
export interface PushPromiseFrame {
  kind: "push_promise";
  pushId: number;
  fieldSection: Uint8Array;
}

/** GOAWAY (§7.2.6): a client-initiated bidi stream ID (from a server) or a push ID (from a client). */
export interface GoawayFrame {
  kind: "goaway";
  id: bigint;
}

/** MAX_PUSH_ID (§7.2.7). */
export interface MaxPushIdFrame {
  kind: "max_push_id";
  pushId: number;
}

/** PRIORITY_UPDATE (RFC 9218 §7.2): type 0xf0700 (request stream) or 0xf0701 (push stream). */
export interface PriorityUpdateFrame {
  kind: "priority_update";
  /** True for 0xf0701 (a push ID), false for 0xf0700 (a request stream ID). */
  push: boolean;
  /** Prioritized Element ID: stream ID or push ID. */
  elementId: number;
  /** Priority Field Value: ASCII text (decoded byte-for-byte as Latin-1); see priority.ts. */
  value: string;
}

/** The WEBTRANSPORT_STREAM signal: `0x41 (i), Session ID (i)`, then raw stream data. */
export interface WebTransportStreamFrame {
  kind: "webtransport_stream";
  sessionId: number;
}

/** A frame of a type this codec does not interpret, including reserved (GREASE) ones (§9). */
export interface UnknownFrame {
  kind: "unknown";
  type: bigint;
  payload: Uint8Array;
  /**
   * Set by the frame reader when the payload was larger than its `maxUnknownFrameSize`: the
   * payload was skipped without buffering, `payload` is empty and this is its length.
   */
  discarded?: number | undefined;
}

export type H3Frame =
  | DataFrame
  | HeadersFrame
  | CancelPushFrame
  | SettingsFrame
  | PushPromiseFrame
  | GoawayFrame
  | MaxPushIdFrame
  | PriorityUpdateFrame
  | WebTransportStreamFrame
  | UnknownFrame;

/** The type code of a frame. */
export function frameTypeOf(f: H3Frame): number | bigint {
  switch (f.kind) {
    case "data":
      return FrameType.DATA;
    case "headers":
      return FrameType.HEADERS;
    case "cancel_push":
      return FrameType.CANCEL_PUSH;
    case "settings":
      return FrameType.SETTINGS;
    case "push_promise":
      return FrameType.PUSH_PROMISE;
    case "goaway":
      return FrameType.GOAWAY;
    case "max_push_id":
      return FrameType.MAX_PUSH_ID;
    case "priority_update":
      return f.push ? FrameType.PRIORITY_UPDATE_PUSH : FrameType.PRIORITY_UPDATE_REQUEST;
    case "webtransport_stream":
      return FrameType.WEBTRANSPORT_STREAM;
    case "unknown":
      return f.type;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding

const isSafeUint = (v: number): boolean => Number.isSafeInteger(v) && v >= 0;

function checkId(v: number, what: string): void {
  if (!isSafeUint(v)) throw new QuicUsageError(`${what} out of range: ${v}`);
}

/** True for a type decoded as something other than "unknown" (or refused): not sendable as unknown. */
function isInterpretedType(type: bigint): boolean {
  if (type > 0xfffffn) return false;
  const n = Number(type);
  return names.has(n) || isHttp2ReservedFrameType(n);
}

/** Encoded size of a frame type field. */
function typeSize(type: number | bigint): number {
  return typeof type === "bigint" ? varintLengthBig(type) : varintLength(type);
}

/** Encoded size of a frame header (`Type (i), Length (i)`). */
export function frameHeaderSize(type: number | bigint, payloadLength: number): number {
  return typeSize(type) + varintLength(payloadLength);
}

/**
 * Writes a frame header. With {@link FrameType.DATA} and the body length this starts a DATA
 * frame whose payload the caller writes (or sends) separately, without copying it.
 */
export function encodeFrameHeader(w: ByteWriter, type: number | bigint, payloadLength: number): void {
  if (!isSafeUint(payloadLength)) throw new QuicUsageError(`frame length out of range: ${payloadLength}`);
  if (typeof type === "number" && !isSafeUint(type))
    throw new QuicUsageError(`frame type out of range: ${type}`);
  const t = typeof type === "bigint" ? type : BigInt(type);
  if (t < 0n || t > (1n << 62n) - 1n) throw new QuicUsageError(`frame type out of range: ${type}`);
  if (w.remaining < frameHeaderSize(type, payloadLength)) {
    throw new QuicUsageError("encodeFrameHeader: buffer too small");
  }
  w.writeVarintBig(t);
  w.writeVarint(payloadLength);
}

function latin1Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f) throw new QuicUsageError("PRIORITY_UPDATE value must be ASCII");
  }
  return s.length;
}

function settingsPayloadSize(entries: readonly SettingEntry[]): number {
  let n = 0;
  for (const e of entries) {
    if (e.id < 0n || e.value < 0n || e.id > (1n << 62n) - 1n || e.value > (1n << 62n) - 1n) {
      throw new QuicUsageError(`setting ${settingName(e.id)} out of varint range`);
    }
    n += varintLengthBig(e.id) + varintLengthBig(e.value);
  }
  return n;
}

/** Payload length of a frame (validates its fields; QuicUsageError if invalid). */
export function framePayloadSize(f: H3Frame): number {
  switch (f.kind) {
    case "data":
      return f.data.length;
    case "headers":
      return f.fieldSection.length;
    case "cancel_push":
    case "max_push_id":
      checkId(f.pushId, "push ID");
      return varintLength(f.pushId);
    case "settings":
      return settingsPayloadSize(f.entries);
    case "push_promise":
      checkId(f.pushId, "push ID");
      return varintLength(f.pushId) + f.fieldSection.length;
    case "goaway":
      if (f.id < 0n || f.id > (1n << 62n) - 1n) throw new QuicUsageError(`GOAWAY id out of range: ${f.id}`);
      return varintLengthBig(f.id);
    case "priority_update":
      checkId(f.elementId, "prioritized element ID");
      return varintLength(f.elementId) + latin1Length(f.value);
    case "webtransport_stream":
      checkId(f.sessionId, "session ID");
      return varintLength(f.sessionId);
    case "unknown":
      if (f.type < 0n || f.type > (1n << 62n) - 1n) throw new QuicUsageError(`frame type out of range`);
      // §7.2.8: HTTP/2 types MUST NOT be sent; known types must use their own kind so that
      // decode(encode(f)) is f.
      if (isInterpretedType(f.type)) {
        throw new QuicUsageError(`frame type ${frameTypeName(f.type)} cannot be sent as unknown`);
      }
      return f.payload.length;
  }
}

/** Total encoded size of a frame (header + payload). */
export function frameSize(f: H3Frame): number {
  const payload = framePayloadSize(f);
  if (f.kind === "webtransport_stream") return varintLength(FrameType.WEBTRANSPORT_STREAM) + payload;
  return frameHeaderSize(frameTypeOf(f), payload) + payload;
}

/** Writes `f`; throws QuicUsageError (writer unchanged) if `f` is invalid or does not fit. */
export function encodeFrame(w: ByteWriter, f: H3Frame): void {
  const payload = framePayloadSize(f);
  const type = frameTypeOf(f);
  const total =
    f.kind === "webtransport_stream" ? typeSize(type) + payload : frameHeaderSize(type, payload) + payload;
  if (w.remaining < total)
    throw new QuicUsageError(`encodeFrame: buffer too small (${total} > ${w.remaining})`);
  if (f.kind === "webtransport_stream") {
    w.writeVarint(FrameType.WEBTRANSPORT_STREAM);
    w.writeVarint(f.sessionId);
    return;
  }
  encodeFrameHeader(w, type, payload);
  switch (f.kind) {
    case "data":
      w.writeBytes(f.data);
      break;
    case "headers":
      w.writeBytes(f.fieldSection);
      break;
    case "cancel_push":
    case "max_push_id":
      w.writeVarint(f.pushId);
      break;
    case "settings":
      for (const e of f.entries) {
        w.writeVarintBig(e.id);
        w.writeVarintBig(e.value);
      }
      break;
    case "push_promise":
      w.writeVarint(f.pushId);
      w.writeBytes(f.fieldSection);
      break;
    case "goaway":
      w.writeVarintBig(f.id);
      break;
    case "priority_update":
      w.writeVarint(f.elementId);
      for (let i = 0; i < f.value.length; i++) w.writeUint8(f.value.charCodeAt(i));
      break;
    case "unknown":
      w.writeBytes(f.payload);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

const frameError = (reason: string, type: number | bigint): H3Error =>
  new H3Error(H3ErrorCode.H3_FRAME_ERROR, reason, type);

/**
 * Largest payload a frame type can have when its layout is fixed (one varint: CANCEL_PUSH,
 * GOAWAY, MAX_PUSH_ID), or undefined. A Length above it cannot match the layout: H3_FRAME_ERROR
 * (§7.1) as soon as the header is read.
 */
export function maxFixedPayloadLength(type: number | bigint): number | undefined {
  return type === FrameType.CANCEL_PUSH || type === FrameType.GOAWAY || type === FrameType.MAX_PUSH_ID
    ? 8
    : undefined;
}

/** Frame type as a number when it is one we know (< 2^20), else as a bigint. */
export function normalizeFrameType(type: number | bigint): number | bigint {
  if (typeof type === "number") return type <= 0xfffff ? type : BigInt(type);
  return type <= 0xfffffn ? Number(type) : type;
}

/** Reads one varint that must end exactly at the end of the payload. */
function readOnlyVarint(r: ByteReader, type: number): number {
  const v = r.readVarint();
  if (!r.done) throw frameError(`${frameTypeName(type)} has ${r.remaining} extra bytes`, type);
  return v;
}

/**
 * Decodes a frame payload of type `type` (already read with its Length) and checks that it has
 * exactly the fields of its type (§7.1). `payload` may be a view; the result's byte fields are
 * views into it. HTTP/2 types throw H3_FRAME_UNEXPECTED; unknown types give an
 * {@link UnknownFrame}. WEBTRANSPORT_STREAM has no payload and is not handled here.
 */
export function decodeFramePayload(type: number | bigint, payload: Uint8Array): H3Frame {
  const t = normalizeFrameType(type);
  if (typeof t === "bigint") return { kind: "unknown", type: t, payload };
  const r = new ByteReader(payload);
  try {
    switch (t) {
      case FrameType.DATA:
        return { kind: "data", data: payload };
      case FrameType.HEADERS:
        return { kind: "headers", fieldSection: payload };
      case FrameType.CANCEL_PUSH:
        return { kind: "cancel_push", pushId: readOnlyVarint(r, t) };
      case FrameType.MAX_PUSH_ID:
        return { kind: "max_push_id", pushId: readOnlyVarint(r, t) };
      case FrameType.GOAWAY: {
        const id = r.readVarintBig();
        if (!r.done) throw frameError(`GOAWAY has ${r.remaining} extra bytes`, t);
        return { kind: "goaway", id };
      }
      case FrameType.SETTINGS: {
        const entries: SettingEntry[] = [];
        while (!r.done) {
          // §7.2.4: each setting is Identifier (i), Value (i); a payload ending inside one is a
          // layout error (§7.1) → the TruncatedError below becomes H3_FRAME_ERROR.
          const id = r.readVarintBig();
          const value = r.readVarintBig();
          entries.push({ id, value });
        }
        validateSettingEntries(entries);
        return { kind: "settings", entries };
      }
      case FrameType.PUSH_PROMISE: {
        const pushId = r.readVarint();
        return { kind: "push_promise", pushId, fieldSection: payload.subarray(r.pos) };
      }
      case FrameType.PRIORITY_UPDATE_REQUEST:
      case FrameType.PRIORITY_UPDATE_PUSH: {
        const elementId = r.readVarint();
        const rest = payload.subarray(r.pos);
        let value = "";
        for (let i = 0; i < rest.length; i += 4096) {
          value += String.fromCharCode(...rest.subarray(i, i + 4096));
        }
        return { kind: "priority_update", push: t === FrameType.PRIORITY_UPDATE_PUSH, elementId, value };
      }
      default:
        if (isHttp2ReservedFrameType(t)) {
          // §7.2.8: "their receipt MUST be treated as a connection error of type H3_FRAME_UNEXPECTED".
          throw new H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, `HTTP/2 frame type ${frameTypeName(t)}`, t);
        }
        return { kind: "unknown", type: BigInt(t), payload };
    }
  } catch (e) {
    // §7.1: a payload that "terminates before the end of the identified fields MUST be treated as
    // a connection error of type H3_FRAME_ERROR".
    if (e instanceof QuicError) throw frameError(`truncated ${frameTypeName(t)} payload`, t);
    throw e;
  }
}

/** Options of {@link decodeFrame}. */
export interface DecodeFrameOptions {
  /** Interpret type 0x41 as the WEBTRANSPORT_STREAM signal (WebTransport negotiated). */
  webTransport?: boolean | undefined;
}

/**
 * Decodes one whole frame at `r.pos` and advances past it. A frame that runs past `r.end` is
 * H3_FRAME_ERROR (§7.1: a truncated frame at the end of a stream). For frames arriving in
 * chunks use {@link FrameReader} (frame-reader.ts).
 */
export function decodeFrame(r: ByteReader, opts: DecodeFrameOptions = {}): H3Frame {
  const start = r.pos;
  let type: number | bigint = 0;
  try {
    type = normalizeFrameType(readFrameType(r));
    if (isHttp2ReservedFrameType(type)) {
      throw new H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, `HTTP/2 frame type ${frameTypeName(type)}`, type);
    }
    if (type === FrameType.WEBTRANSPORT_STREAM && opts.webTransport) {
      return { kind: "webtransport_stream", sessionId: r.readVarint() };
    }
    const length = r.readVarint();
    if (length > r.remaining) throw frameError(`truncated ${frameTypeName(type)} frame`, type);
    return decodeFramePayload(type, r.readBytes(length));
  } catch (e) {
    r.pos = start;
    if (e instanceof QuicError) throw frameError(`truncated ${frameTypeName(type)} frame`, type);
    throw e;
  }
}

/** Reads a frame type varint: a number when ≤ 2^53 − 1, else exact as a bigint. */
export function readFrameType(r: ByteReader): number | bigint {
  const start = r.pos;
  const v = r.readVarint();
  if (v < MAX_SAFE_VARINT) return v;
  r.pos = start;
  return r.readVarintBig();
}

// ---------------------------------------------------------------------------------------------
// Where frames may appear (RFC 9114 §7.2 table, RFC 9218 §7.2)

/** The kind of stream frames arrive on: control (§6.2.1), request (§6.1) or push (§6.2.2). */
export type H3StreamKind = "control" | "request" | "push";

/** The role of the endpoint that receives the frame. */
export type H3Role = "client" | "server";

/**
 * Throws H3Error H3_FRAME_UNEXPECTED if a frame of `type` may not be received on `stream` by
 * `receiver` (when given). Unknown and reserved types are allowed everywhere (§9). Sequence rules
 * (SETTINGS first and once on the control stream, HEADERS/DATA order on request streams) are not
 * checked here; the control-stream ones are in {@link FrameReader}.
 */
export function assertFrameAllowed(type: number | bigint, stream: H3StreamKind, receiver?: H3Role): void {
  const t = normalizeFrameType(type);
  if (typeof t === "bigint") return;
  const unexpected = (why: string): never => {
    throw new H3Error(H3ErrorCode.H3_FRAME_UNEXPECTED, `${frameTypeName(t)} ${why}`, t);
  };
  // §7.2.8: HTTP/2 frame types are unexpected anywhere.
  if (isHttp2ReservedFrameType(t)) unexpected("is an HTTP/2 frame type");
  switch (t) {
    case FrameType.DATA: // §7.2.1: "If a DATA frame is received on a control stream ... H3_FRAME_UNEXPECTED"
    case FrameType.HEADERS: // §7.2.2
      if (stream === "control") unexpected("on the control stream");
      return;
    case FrameType.PUSH_PROMISE:
      // §7.2.5: not on the control stream; §4.1: not on push streams; a server MUST treat receipt
      // as H3_FRAME_UNEXPECTED.
      if (stream !== "request") unexpected(`on a ${stream} stream`);
      if (receiver === "server") unexpected("received by a server");
      return;
    case FrameType.CANCEL_PUSH: // §7.2.3
    case FrameType.SETTINGS: // §7.2.4: "MUST NOT be sent on any stream other than the control stream"
    case FrameType.GOAWAY: // §7.2.6
      if (stream !== "control") unexpected(`on a ${stream} stream`);
      return;
    case FrameType.MAX_PUSH_ID: // §7.2.7: control stream only; "A client MUST treat the receipt ... as H3_FRAME_UNEXPECTED"
      if (stream !== "control") unexpected(`on a ${stream} stream`);
      if (receiver === "client") unexpected("received by a client");
      return;
    case FrameType.PRIORITY_UPDATE_REQUEST:
    case FrameType.PRIORITY_UPDATE_PUSH:
      // RFC 9218 §7.2: only on the client control stream; a client receiving one MUST treat it as
      // H3_FRAME_UNEXPECTED.
      if (stream !== "control") unexpected(`on a ${stream} stream`);
      if (receiver === "client") unexpected("received by a client");
      return;
    default:
      return;
  }
}
