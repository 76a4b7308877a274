/**
 * QUIC transport error codes (RFC 9000 §20.1) and the typed errors the codec and the
 * connection raise. Decoders never throw anything but {@link QuicError}: whatever a peer sends,
 * the connection can turn the failure into a CONNECTION_CLOSE with the right code.
 */

export const TransportErrorCode = {
  NO_ERROR: 0x00,
  INTERNAL_ERROR: 0x01,
  CONNECTION_REFUSED: 0x02,
  FLOW_CONTROL_ERROR: 0x03,
  STREAM_LIMIT_ERROR: 0x04,
  STREAM_STATE_ERROR: 0x05,
  FINAL_SIZE_ERROR: 0x06,
  FRAME_ENCODING_ERROR: 0x07,
  TRANSPORT_PARAMETER_ERROR: 0x08,
  CONNECTION_ID_LIMIT_ERROR: 0x09,
  PROTOCOL_VIOLATION: 0x0a,
  INVALID_TOKEN: 0x0b,
  APPLICATION_ERROR: 0x0c,
  CRYPTO_BUFFER_EXCEEDED: 0x0d,
  KEY_UPDATE_ERROR: 0x0e,
  AEAD_LIMIT_REACHED: 0x0f,
  NO_VIABLE_PATH: 0x10,
  /** RFC 9368 §6: version negotiation failed or was tampered with. */
  VERSION_NEGOTIATION_ERROR: 0x11,
  /** Base of the CRYPTO_ERROR range (0x0100–0x01ff): 0x0100 + TLS alert (RFC 9001 §4.8). */
  CRYPTO_ERROR: 0x0100,
} as const;

export type TransportErrorCode = (typeof TransportErrorCode)[keyof typeof TransportErrorCode];

const names = new Map<number, string>(Object.entries(TransportErrorCode).map(([k, v]) => [v, k]));

/** Human-readable name of a transport error code, e.g. `FRAME_ENCODING_ERROR` or `CRYPTO_ERROR(0x2a)`. */
export function transportErrorName(code: number): string {
  if (code >= 0x0100 && code <= 0x01ff)
    return `CRYPTO_ERROR(0x${(code - 0x100).toString(16).padStart(2, "0")})`;
  return names.get(code) ?? `0x${code.toString(16)}`;
}

/**
 * A protocol error: the condition a peer caused (or that we detected), with the transport error
 * code that goes into CONNECTION_CLOSE (RFC 9000 §19.19), and the frame type that triggered it
 * when known.
 */
export class QuicError extends Error {
  override readonly name = "QuicError";
  constructor(
    /** Transport error code (RFC 9000 §20.1), 0x0100–0x01ff for TLS alerts. */
    readonly code: number,
    /** Reason phrase, safe to send to the peer. */
    readonly reason: string,
    /** Frame type that triggered the error, 0 when unknown (§19.19). */
    readonly frameType = 0,
  ) {
    super(`${transportErrorName(code)}: ${reason}`);
  }
}

/** FRAME_ENCODING_ERROR: a frame or packet was badly formatted (RFC 9000 §20.1). */
export function frameEncodingError(reason: string, frameType = 0): QuicError {
  return new QuicError(TransportErrorCode.FRAME_ENCODING_ERROR, reason, frameType);
}

/** PROTOCOL_VIOLATION (RFC 9000 §20.1). */
export function protocolViolation(reason: string, frameType = 0): QuicError {
  return new QuicError(TransportErrorCode.PROTOCOL_VIOLATION, reason, frameType);
}

/** TRANSPORT_PARAMETER_ERROR (RFC 9000 §20.1). */
export function transportParameterError(reason: string): QuicError {
  return new QuicError(TransportErrorCode.TRANSPORT_PARAMETER_ERROR, reason);
}

/**
 * API misuse by the local application (not the peer): a value out of range, a buffer too small
 * for an encoder, a call in the wrong state. Never caused by peer input.
 */
export class QuicUsageError extends Error {
  override readonly name = "QuicUsageError";
}
