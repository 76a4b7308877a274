/**
 * QPACK errors (RFC 9204 §6). They are HTTP/3 application error codes, carried in an application
 * CONNECTION_CLOSE (RFC 9000 §19.19, frame type 0x1d) or, for a field section too large to decode,
 * in a stream reset.
 *
 * Choice: QPACK failures caused by the peer are {@link QpackError}, a subclass of the HTTP/3
 * {@link H3Error} (a connection error) whose `code` is one of the three QPACK codes. The only
 * stream-level failure is {@link QpackFieldSectionTooLargeError} (an {@link H3StreamError} with
 * QPACK_DECOMPRESSION_FAILED, RFC 9204 §2.2.3 "Implementation Limits"), so the HTTP layer may
 * answer 431 or reset the stream instead of closing the connection. Nothing else is thrown for
 * peer input; local API misuse throws {@link QuicUsageError}.
 */
import { H3Error, H3ErrorCode, H3StreamError } from "../error-codes.ts";

/** The QPACK error codes (RFC 9204 §6). */
export const QpackErrorCode = {
  /** The decoder failed to interpret an encoded field section. */
  DECOMPRESSION_FAILED: H3ErrorCode.QPACK_DECOMPRESSION_FAILED,
  /** The decoder failed to interpret an encoder instruction (encoder stream). */
  ENCODER_STREAM_ERROR: H3ErrorCode.QPACK_ENCODER_STREAM_ERROR,
  /** The encoder failed to interpret a decoder instruction (decoder stream). */
  DECODER_STREAM_ERROR: H3ErrorCode.QPACK_DECODER_STREAM_ERROR,
} as const;

export type QpackErrorCode = (typeof QpackErrorCode)[keyof typeof QpackErrorCode];

/** A QPACK connection error (RFC 9204 §6) caused by the peer. */
export class QpackError extends H3Error {
  override readonly name: string = "QpackError";
  constructor(code: QpackErrorCode, reason: string) {
    super(code, reason);
  }
}

/**
 * A decoded field section exceeds our SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2) or a
 * string literal exceeds what we accept. A stream error of type QPACK_DECOMPRESSION_FAILED
 * (RFC 9204 §2.2.3); the HTTP layer may instead answer 431 (RFC 9114 §4.2.2). Decoding stops at
 * the limit, so no more than `limit` bytes of fields are ever materialised. The caller abandons
 * the stream and calls `QpackDecoder.cancelStream` (RFC 9204 §4.4.2).
 */
export class QpackFieldSectionTooLargeError extends H3StreamError {
  override readonly name: string = "QpackFieldSectionTooLargeError";
  constructor(
    /** The limit that was exceeded, in bytes (name + value + 32 per field line). */
    readonly limit: number,
  ) {
    super(QpackErrorCode.DECOMPRESSION_FAILED, `field section exceeds ${limit} bytes`);
  }
}

/** Shorthand for QPACK_DECOMPRESSION_FAILED. */
export function decompressionFailed(reason: string): QpackError {
  return new QpackError(QpackErrorCode.DECOMPRESSION_FAILED, reason);
}

/** Shorthand for QPACK_ENCODER_STREAM_ERROR. */
export function encoderStreamError(reason: string): QpackError {
  return new QpackError(QpackErrorCode.ENCODER_STREAM_ERROR, reason);
}

/** Shorthand for QPACK_DECODER_STREAM_ERROR. */
export function decoderStreamError(reason: string): QpackError {
  return new QpackError(QpackErrorCode.DECODER_STREAM_ERROR, reason);
}
