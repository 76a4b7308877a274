/**
 * Reassembles one encryption level's CRYPTO stream (RFC 9001 §4.1.3: in-order bytes, the QUIC
 * layer has already resolved offsets) into complete handshake messages.
 *
 * Memory is bounded: a message header declaring a body larger than `maxMessageSize` is rejected as
 * soon as its 4 header bytes are in, before any of its body is buffered, so the buffer never holds
 * more than one partial message of at most `maxMessageSize + 4` bytes plus the complete messages
 * the caller has pushed and not yet taken with {@link HandshakeBuffer.next}.
 *
 * Alert for an oversized message: illegal_parameter. The message is not malformed (decode_error
 * would be wrong: its length is a valid uint24); it is a length value we refuse, i.e. "a field in
 * the handshake was incorrect" (RFC 9846 §6.2), which is what OpenSSL and BoringSSL send for an
 * excessive message size. internal_error is for local failures unrelated to the peer, and QUIC's
 * CRYPTO_BUFFER_EXCEEDED (RFC 9000 §7.5) belongs to the QUIC layer's out-of-order buffer, which
 * the connection enforces separately; the alert still reaches the peer as CRYPTO_ERROR 0x012f.
 */
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import { HANDSHAKE_HEADER_SIZE, MAX_HANDSHAKE_BODY } from "./messages.ts";

/** Default largest handshake message body accepted (64 KiB). */
export const DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE = 64 * 1024;

/** One complete handshake message as it appeared in the stream. */
export interface RawHandshakeMessage {
  /** HandshakeType (not validated here). */
  type: number;
  /** The body, without the header (a view into `raw`). */
  body: Uint8Array;
  /** Header + body: the exact bytes for the transcript hash. A copy owned by the caller. */
  raw: Uint8Array;
}

export interface HandshakeBufferOptions {
  /** Largest accepted message body in bytes; default {@link DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE}. */
  maxMessageSize?: number;
}

/** Shared zero-length storage: never written (reserve() replaces it before any byte is stored). */
const EMPTY = new Uint8Array(0);

export class HandshakeBuffer {
  readonly maxMessageSize: number;
  private buf = new Uint8Array(0);
  /** Unconsumed data is buf[start, end). */
  private start = 0;
  private end = 0;
  /** Position of the next message header not yet validated (≥ start). */
  private scan = 0;
  private error: TlsError | undefined;

  constructor(opts: HandshakeBufferOptions = {}) {
    const max = opts.maxMessageSize ?? DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE;
    if (!Number.isInteger(max) || max < 0 || max > MAX_HANDSHAKE_BODY) {
      throw new QuicUsageError(`maxMessageSize out of range: ${max}`);
    }
    this.maxMessageSize = max;
  }

  /** Bytes pushed and not yet returned as messages. */
  get bufferedBytes(): number {
    return this.end - this.start;
  }

  /**
   * True when no partial message is pending: every byte pushed belongs to a complete message
   * (returned or still queued for {@link next}). RFC 9001 §4.1.3's check at a key change ("data
   * from a previous encryption level that TLS has not consumed" is PROTOCOL_VIOLATION) is
   * `bufferedBytes === 0`, which also counts complete messages not yet taken.
   */
  get atMessageBoundary(): boolean {
    return this.scan === this.end;
  }

  /**
   * Appends in-order stream bytes (copied). Throws TlsError(illegal_parameter) as soon as a
   * header declares a body larger than `maxMessageSize`; the buffer then stays failed.
   */
  push(data: Uint8Array): void {
    if (this.error) throw this.error;
    if (data.length === 0) return;
    this.reserve(data.length);
    this.buf.set(data, this.end);
    this.end += data.length;
    this.validateHeaders();
  }

  /** The next complete message, or undefined if more bytes are needed. */
  next(): RawHandshakeMessage | undefined {
    if (this.error) throw this.error;
    const avail = this.end - this.start;
    if (avail < HANDSHAKE_HEADER_SIZE) return undefined;
    const b = this.buf;
    const s = this.start;
    const len = (b[s + 1] << 16) | (b[s + 2] << 8) | b[s + 3];
    const total = HANDSHAKE_HEADER_SIZE + len;
    if (avail < total) return undefined;
    const raw = b.slice(s, s + total);
    this.start = s + total;
    if (this.start === this.end) {
      this.start = this.end = this.scan = 0;
      // Drop a large buffer once drained, so a big message does not pin memory.
      if (this.buf.length > 4096) this.buf = new Uint8Array(0);
    }
    return { type: raw[0], body: raw.subarray(HANDSHAKE_HEADER_SIZE), raw };
  }

  /**
   * Lets go of the storage once every byte was consumed (an idle connection then holds no
   * buffer for a level it will not use again); a later {@link push} allocates anew.
   */
  releaseStorage(): void {
    if (this.start !== this.end || this.buf.length === 0) return;
    this.buf = EMPTY;
    this.start = this.end = this.scan = 0;
  }

  /** Convenience: push, then take every complete message. */
  pushAndDrain(data: Uint8Array): RawHandshakeMessage[] {
    this.push(data);
    const out: RawHandshakeMessage[] = [];
    for (let m = this.next(); m !== undefined; m = this.next()) out.push(m);
    return out;
  }

  private validateHeaders(): void {
    const b = this.buf;
    while (this.end - this.scan >= HANDSHAKE_HEADER_SIZE) {
      const p = this.scan;
      const len = (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
      if (len > this.maxMessageSize) {
        this.error = new TlsError(
          AlertDescription.illegal_parameter,
          `handshake message type ${b[p]} of ${len} bytes exceeds the ${this.maxMessageSize}-byte limit`,
        );
        this.buf = new Uint8Array(0);
        this.start = this.end = this.scan = 0;
        throw this.error;
      }
      // May point past `end`: the message is still partial; `scan` then stays until it completes.
      if (this.end - p < HANDSHAKE_HEADER_SIZE + len) break;
      this.scan = p + HANDSHAKE_HEADER_SIZE + len;
    }
  }

  /** Makes room for `n` more bytes at `end`, compacting or growing. */
  private reserve(n: number): void {
    if (this.buf.length - this.end >= n) return;
    const live = this.end - this.start;
    const need = live + n;
    if (this.buf.length >= need && this.start > 0) {
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      const next = new Uint8Array(Math.max(need, this.buf.length * 2, 256));
      next.set(this.buf.subarray(this.start, this.end));
      this.buf = next;
    }
    this.scan -= this.start;
    this.end = live;
    this.start = 0;
  }
}
