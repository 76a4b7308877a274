/**
 * HTTP/3 error codes (RFC 9114 §8.1), QPACK error codes (RFC 9204 §6), H3_DATAGRAM_ERROR
 * (RFC 9297 §2.1), the reserved "GREASE" code points shared by every HTTP/3 registry
 * (`0x1f * N + 0x21`: error codes §8.1, frame types §7.2.8, setting ids §7.2.4.1, stream types
 * §6.2.3), and {@link H3Error}, the only exception HTTP/3 decoders throw for peer input.
 */
import { MAX_VARINT } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";

/** Wire values of the HTTP/3 application error codes. */
export const H3ErrorCode = {
  /** RFC 9297 §2.1, §5: an HTTP Datagram could not be processed. */
  H3_DATAGRAM_ERROR: 0x33,
  // RFC 9114 §8.1
  H3_NO_ERROR: 0x0100,
  H3_GENERAL_PROTOCOL_ERROR: 0x0101,
  H3_INTERNAL_ERROR: 0x0102,
  H3_STREAM_CREATION_ERROR: 0x0103,
  H3_CLOSED_CRITICAL_STREAM: 0x0104,
  H3_FRAME_UNEXPECTED: 0x0105,
  H3_FRAME_ERROR: 0x0106,
  H3_EXCESSIVE_LOAD: 0x0107,
  H3_ID_ERROR: 0x0108,
  H3_SETTINGS_ERROR: 0x0109,
  H3_MISSING_SETTINGS: 0x010a,
  H3_REQUEST_REJECTED: 0x010b,
  H3_REQUEST_CANCELLED: 0x010c,
  H3_REQUEST_INCOMPLETE: 0x010d,
  H3_MESSAGE_ERROR: 0x010e,
  H3_CONNECT_ERROR: 0x010f,
  H3_VERSION_FALLBACK: 0x0110,
  // RFC 9204 §6
  QPACK_DECOMPRESSION_FAILED: 0x0200,
  QPACK_ENCODER_STREAM_ERROR: 0x0201,
  QPACK_DECODER_STREAM_ERROR: 0x0202,
} as const;

export type H3ErrorCode = (typeof H3ErrorCode)[keyof typeof H3ErrorCode];

const names = new Map<number, string>(Object.entries(H3ErrorCode).map(([k, v]) => [v, k]));

// ---------------------------------------------------------------------------------------------
// Reserved values 0x1f * N + 0x21 (RFC 9114 §6.2.3, §7.2.4.1, §7.2.8, §8.1, §9)

/** Largest N for which 0x1f * N + 0x21 is still a varint (≤ 2^62 − 1). */
export const MAX_GREASE_N = (MAX_VARINT - 0x21n) / 0x1fn;

/**
 * True for the reserved values `0x1f * N + 0x21` (N ≥ 0) that every HTTP/3 registry sets aside
 * to exercise the "ignore unknown" requirements: error codes (§8.1), frame types (§7.2.8),
 * setting identifiers (§7.2.4.1) and stream types (§6.2.3).
 */
export function isGreaseValue(v: number | bigint): boolean {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) return Number.isInteger(v) && isGreaseValue(BigInt(v));
    return v >= 0x21 && (v - 0x21) % 0x1f === 0;
  }
  return v >= 0x21n && v <= MAX_VARINT && (v - 0x21n) % 0x1fn === 0n;
}

/** The N-th reserved value, `0x1f * N + 0x21`, for N in [0, {@link MAX_GREASE_N}]. */
export function greaseValue(n: number | bigint): bigint {
  if (typeof n === "number" && !Number.isSafeInteger(n)) throw new QuicUsageError(`bad GREASE index ${n}`);
  const big = BigInt(n);
  if (big < 0n || big > MAX_GREASE_N) throw new QuicUsageError(`GREASE index out of range: ${n}`);
  return 0x1fn * big + 0x21n;
}

/**
 * A random reserved value over the whole varint range. `randomBytes(n)` must return `n` random
 * bytes (e.g. `crypto.randomBytes`).
 */
export function randomGreaseValue(randomBytes: (n: number) => Uint8Array): bigint {
  const r = randomBytes(8);
  if (r.length < 8) throw new QuicUsageError("randomGreaseValue: randomBytes returned too few bytes");
  let n = 0n;
  for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(r[i]);
  return greaseValue(n % (MAX_GREASE_N + 1n));
}

/** True for a reserved error code (§8.1); receipt is equivalent to H3_NO_ERROR. */
export const isGreaseCode: (code: number | bigint) => boolean = isGreaseValue;

/**
 * The reserved error code `0x1f * N + 0x21` (§8.1). An implementation SHOULD send one of these
 * with some probability where it would have sent H3_NO_ERROR.
 */
export const greaseErrorCode: (n: number | bigint) => bigint = greaseValue;

/** Human-readable name of an HTTP/3 error code, e.g. `H3_FRAME_ERROR`, `GREASE(0x40)` or `0x1234`. */
export function h3ErrorName(code: number | bigint): string {
  if (typeof code === "bigint") {
    if (code <= BigInt(Number.MAX_SAFE_INTEGER)) return h3ErrorName(Number(code));
    return isGreaseValue(code) ? `GREASE(0x${code.toString(16)})` : `0x${code.toString(16)}`;
  }
  const name = names.get(code);
  if (name !== undefined) return name;
  return isGreaseValue(code) ? `GREASE(0x${code.toString(16)})` : `0x${code.toString(16)}`;
}

/**
 * RFC 9114 §8: unknown error codes, and known ones in an unexpected context, MUST be treated as
 * equivalent to H3_NO_ERROR. This maps a received code to a known {@link H3ErrorCode} or to
 * H3_NO_ERROR; the caller decides what "unexpected context" means.
 */
export function normalizeReceivedErrorCode(code: number | bigint): H3ErrorCode {
  const n = typeof code === "bigint" ? (code <= 0xffffn ? Number(code) : -1) : code;
  return names.has(n) ? (n as H3ErrorCode) : H3ErrorCode.H3_NO_ERROR;
}

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * An HTTP/3 protocol error caused by the peer: a connection error (RFC 9114 §8) whose `code` goes
 * into the application CONNECTION_CLOSE (RFC 9000 §19.19, type 0x1d). Decoders in `src/h3/` throw
 * nothing else for peer input; local misuse is a {@link QuicUsageError}.
 */
export class H3Error extends Error {
  override readonly name: string = "H3Error";
  constructor(
    /** HTTP/3 error code ({@link H3ErrorCode}). */
    readonly code: number,
    /** Reason phrase, safe to send to the peer. */
    readonly reason: string,
    /** Frame (or capsule) type that triggered the error, when known. */
    readonly frameType?: number | bigint,
  ) {
    super(`${h3ErrorName(code)}: ${reason}`);
  }

  /** True when only the stream needs to be reset (an {@link H3StreamError}). */
  get isStreamError(): boolean {
    return false;
  }
}

/**
 * A stream error (RFC 9114 §8): only the affected stream is reset (RESET_STREAM / STOP_SENDING
 * with `code`); the connection stays up. An endpoint MAY still escalate it to a connection error
 * (§8). Example: a malformed capsule sequence is a malformed message (RFC 9297 §3.3), which
 * RFC 9114 §4.1.2 makes a stream error of type H3_MESSAGE_ERROR.
 */
export class H3StreamError extends H3Error {
  override readonly name: string = "H3StreamError";
  override get isStreamError(): boolean {
    return true;
  }
}

/** Shorthand for `new H3Error(code, reason, frameType)`. */
export function h3Error(code: H3ErrorCode, reason: string, frameType?: number | bigint): H3Error {
  return new H3Error(code, reason, frameType);
}
