/**
 * Errors of the quic-reverse layer. Decoding errors carry a category that matches the golden
 * vectors (/work/shared/vectors/quic-reverse-v1.json); session errors carry a kind shaped like the
 * Rust crate's `Error` enum.
 */

/** Why peer bytes could not be decoded (the vectors' `error` categories). */
export type ReverseDecodeErrorCategory =
  | "frame_incomplete"
  | "frame_too_large"
  | "unexpected_eof"
  | "invalid_variant_index"
  | "invalid_option_tag"
  | "invalid_bool"
  | "invalid_utf8"
  | "invalid_magic"
  | "unsupported_version"
  | "id_mismatch";

/** Peer bytes that are not a valid frame, message or StreamBind header. */
export class ReverseDecodeError extends Error {
  override readonly name = "ReverseDecodeError";
  constructor(
    readonly category: ReverseDecodeErrorCategory,
    message: string,
  ) {
    super(message);
  }
}

/** What went wrong in a session, named after the Rust crate's errors. */
export type ReverseSessionErrorKind =
  /** The peer's Hello/HelloAck version is not one we support. */
  | "version-mismatch"
  /** A message other than Hello/HelloAck during negotiation. */
  | "unexpected-message"
  /** Decode error, frame error or end of stream during negotiation (Rust reports it as a timeout). */
  | "negotiation-failed"
  /** The negotiation, an open, a stream bind or a ping did not complete in time. */
  | "timeout"
  /** The peer rejected an open request. */
  | "stream-rejected"
  /** The peer broke the protocol after negotiation (bad frame, bad StreamBind...). */
  | "protocol-violation"
  /** The session is not (or no longer) ready. */
  | "session-closed"
  /** Too many open requests in flight. */
  | "limit-exceeded"
  /** The underlying connection or stream failed. */
  | "transport";

/** A session-level failure: returned to the caller of open/ping/..., or reported as an event. */
export class ReverseSessionError extends Error {
  override readonly name = "ReverseSessionError";
  constructor(
    readonly kind: ReverseSessionErrorKind,
    message: string,
    /** For "stream-rejected": the peer's code and reason. */
    readonly rejection?: { readonly code: string; readonly reason: string | null },
  ) {
    super(message);
  }
}
