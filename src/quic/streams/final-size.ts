/**
 * Final-size rules of RFC 9000 §4.5, shared by the receive buffer and the receive state machine.
 * §4.5: "Once a final size for a stream is known, it cannot change. If a RESET_STREAM or STREAM
 * frame is received indicating a change in the final size for the stream, an endpoint SHOULD
 * respond with an error of type FINAL_SIZE_ERROR [...] A receiver SHOULD treat receipt of data at
 * or beyond the final size as an error of type FINAL_SIZE_ERROR, even after a stream is closed."
 * A final size below data already received is a change too (the data proves a larger size).
 *
 * `finalSize` is −1 while unknown; `highest` is the largest offset + length received so far.
 */
import { QuicError, TransportErrorCode } from "../errors.ts";

/** §4.5 checks for a STREAM frame ending at `end` (FIN if `fin`). */
export function checkFinalSize(
  finalSize: number,
  highest: number,
  end: number,
  fin: boolean,
  frameType: number,
): void {
  if (finalSize >= 0) {
    // §4.5: "A receiver SHOULD treat receipt of data at or beyond the final size as an error of
    // type FINAL_SIZE_ERROR"; a FIN that changes the final size likewise.
    if (end > finalSize) {
      throw new QuicError(TransportErrorCode.FINAL_SIZE_ERROR, "data beyond final size", frameType);
    }
    if (fin && end !== finalSize) {
      throw new QuicError(TransportErrorCode.FINAL_SIZE_ERROR, "final size changed", frameType);
    }
  } else if (fin && end < highest) {
    throw new QuicError(TransportErrorCode.FINAL_SIZE_ERROR, "final size below data received", frameType);
  }
}

/** §4.5 checks for a RESET_STREAM with `resetFinalSize`. */
export function checkResetFinalSize(
  finalSize: number,
  highest: number,
  resetFinalSize: number,
  frameType: number,
): void {
  if (finalSize >= 0 ? resetFinalSize !== finalSize : resetFinalSize < highest) {
    throw new QuicError(
      TransportErrorCode.FINAL_SIZE_ERROR,
      finalSize >= 0 ? "final size changed" : "final size below data received",
      frameType,
    );
  }
}
