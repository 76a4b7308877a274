/**
 * WebTransport error codes on HTTP/3 (draft-ietf-webtrans-http3-02 §4.3, same formula in later
 * drafts): an application's 32-bit stream error code `e` travels in RESET_STREAM / STOP_SENDING as
 * the HTTP/3 code `0x52e4a40fa8db + e + floor(e / 0x1e)`, which skips the reserved (GREASE)
 * codepoints `0x1f·N + 0x21` inside the range. Chromium (quiche) maps 32-bit codes the same way.
 *
 * Codes the stack itself uses: WT_SESSION_GONE (draft-03 and later; the streams of a closed
 * session are reset with it) and WT_BUFFERED_STREAM_REJECTED (a stream for an unknown session
 * that could not be buffered). quiche uses H3_CONNECT_ERROR (0x10f) for both; both are "session
 * gone" to us.
 */

import { isGreaseValue } from "../h3/error-codes.ts";
import { QuicUsageError } from "../quic/errors.ts";

/** The first HTTP/3 code of the WebTransport range (application code 0). */
export const WT_APPLICATION_ERROR_FIRST = 0x52e4a40fa8dbn;
/** The last HTTP/3 code of the range (application code 0xffffffff). */
export const WT_APPLICATION_ERROR_LAST = 0x52e5ac983162n;
/** draft-ietf-webtrans-http3 (-03 and later): the session of this stream is gone. */
export const WT_SESSION_GONE = 0x170d7b68;
/** draft-ietf-webtrans-http3: a stream for an unknown session was not buffered. */
export const WT_BUFFERED_STREAM_REJECTED = 0x3994bd84;
/** RFC 9114 §8.1 H3_CONNECT_ERROR: quiche's "session gone". */
export const H3_CONNECT_ERROR = 0x10f;

/** The HTTP/3 code carrying WebTransport stream error code `code` (0 … 2^32 − 1). */
export function webTransportCodeToHttp3(code: number): bigint {
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) {
    throw new QuicUsageError(`WebTransport error codes are 32-bit unsigned integers, not ${code}`);
  }
  // draft-ietf-webtrans-http3-02 §4.3: first + e + floor(e / 0x1e).
  return WT_APPLICATION_ERROR_FIRST + BigInt(code) + BigInt(Math.floor(code / 0x1e));
}

/**
 * The WebTransport code an HTTP/3 code carries, or undefined when it is not one (outside the
 * range, or a reserved codepoint inside it).
 */
export function http3CodeToWebTransport(code: number | bigint): number | undefined {
  const h = typeof code === "bigint" ? code : BigInt(code);
  if (h < WT_APPLICATION_ERROR_FIRST || h > WT_APPLICATION_ERROR_LAST || isGreaseValue(h)) return undefined;
  const shifted = h - WT_APPLICATION_ERROR_FIRST;
  return Number(shifted - shifted / 0x1fn);
}

/** True when an HTTP/3 code means "the session went away" (ours, the draft's or quiche's). */
export function isSessionGoneCode(code: number | bigint): boolean {
  const c = Number(code);
  return c === WT_SESSION_GONE || c === H3_CONNECT_ERROR;
}
