/**
 * Control-stream framing of quic-reverse: a u32 big-endian payload length (at most 65,536), then
 * the payload. {@link decodeFrame} decodes one frame from a complete buffer; {@link FrameReader}
 * reassembles frames from stream chunks (several frames per chunk, frames split across chunks),
 * holding at most one frame plus one chunk.
 */
import { QuicUsageError } from "../quic/errors.ts";
import { ReverseDecodeError } from "./errors.ts";

/** Largest payload a frame may carry (`MAX_FRAME_SIZE`). */
export const MAX_FRAME_SIZE = 65536;
export const FRAME_HEADER_SIZE = 4;

/** The local application tried to frame a payload over {@link MAX_FRAME_SIZE}. */
export class FrameTooLargeError extends QuicUsageError {
  readonly category = "frame_too_large";
  constructor(readonly size: number) {
    super(`frame size ${size} exceeds maximum ${MAX_FRAME_SIZE}`);
  }
}

/** Length prefix + payload; refuses payloads over 65,536 bytes. */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_SIZE) throw new FrameTooLargeError(payload.length);
  const out = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

function tooLarge(size: number): ReverseDecodeError {
  return new ReverseDecodeError("frame_too_large", `frame size ${size} exceeds maximum ${MAX_FRAME_SIZE}`);
}

function readLength(bytes: Uint8Array, offset: number): number {
  return (
    ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0
  );
}

/**
 * Decodes the frame at the start of `bytes`: its payload (a view) and the bytes it used. Throws
 * `frame_incomplete` when bytes are missing and `frame_too_large` as soon as the length is known
 * to exceed the maximum.
 */
export function decodeFrame(bytes: Uint8Array): { payload: Uint8Array; consumed: number } {
  if (bytes.length < FRAME_HEADER_SIZE) {
    throw new ReverseDecodeError(
      "frame_incomplete",
      `unexpected end of input: expected ${FRAME_HEADER_SIZE} bytes, got ${bytes.length}`,
    );
  }
  const length = readLength(bytes, 0);
  if (length > MAX_FRAME_SIZE) throw tooLarge(length);
  const total = FRAME_HEADER_SIZE + length;
  if (bytes.length < total) {
    throw new ReverseDecodeError(
      "frame_incomplete",
      `unexpected end of input: expected ${total} bytes, got ${bytes.length}`,
    );
  }
  return { payload: bytes.subarray(FRAME_HEADER_SIZE, total), consumed: total };
}

/** Incremental frame reassembly over a byte stream. */
export class FrameReader {
  private buf = new Uint8Array(1024);
  private start = 0;
  private end = 0;

  /** Bytes held that do not yet make a whole frame (or that were not read out yet). */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Appends stream bytes (copied). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      if (live + chunk.length <= this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        let size = this.buf.length * 2;
        while (size < live + chunk.length) size *= 2;
        const next = new Uint8Array(size);
        next.set(this.buf.subarray(this.start, this.end));
        this.buf = next;
      }
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  /**
   * The next whole frame's payload (a copy), or undefined when more bytes are needed. Throws
   * `frame_too_large` once the 4 length bytes announce more than 65,536 bytes.
   */
  next(): Uint8Array | undefined {
    const live = this.end - this.start;
    if (live < FRAME_HEADER_SIZE) return this.compactIfEmpty();
    const length = readLength(this.buf, this.start);
    if (length > MAX_FRAME_SIZE) throw tooLarge(length);
    if (live < FRAME_HEADER_SIZE + length) return undefined;
    const from = this.start + FRAME_HEADER_SIZE;
    const payload = this.buf.slice(from, from + length);
    this.start = from + length;
    this.compactIfEmpty();
    return payload;
  }

  private compactIfEmpty(): undefined {
    if (this.start === this.end) {
      this.start = 0;
      this.end = 0;
      // Drop a buffer grown for one large frame.
      if (this.buf.length > 4 * (FRAME_HEADER_SIZE + MAX_FRAME_SIZE)) this.buf = new Uint8Array(1024);
    }
    return undefined;
  }
}
