/**
 * Bounds-checked byte cursors and QUIC variable-length integers (RFC 9000 §16).
 *
 * Number vs bigint: a varint carries up to 62 bits, a JS number holds integers exactly up to
 * 2^53−1. The codec is exact over the whole 62-bit range through the bigint methods
 * ({@link ByteReader.readVarintBig}, {@link ByteWriter.writeVarintBig}). The number methods are
 * for hot-path quantities: offsets, lengths, limits, counts, stream IDs, packet numbers, sequence
 * numbers. For those, {@link ByteReader.readVarint} saturates values above 2^53−1 to
 * `Number.MAX_SAFE_INTEGER` (8 PiB), a value no offset, limit or identifier of a live connection
 * can reach; where the exact large value still matters (an error code, a GREASE identifier, the
 * §19.8 offset+length bound) the field is bigint or re-read with the bigint method. See
 * docs/ARCHITECTURE.md, "Integers on the wire".
 */
import { QuicError, QuicUsageError, TransportErrorCode } from "./errors.ts";

/** Largest value a varint can carry: 2^62 − 1. */
export const MAX_VARINT = (1n << 62n) - 1n;
/** Largest value the number-typed varint methods carry exactly: 2^53 − 1. */
export const MAX_SAFE_VARINT = Number.MAX_SAFE_INTEGER;

const TWO_32 = 0x1_0000_0000;

/** Encoded size (1, 2, 4 or 8) of a varint; `v` must be an integer in [0, 2^53−1]. */
export function varintLength(v: number): 1 | 2 | 4 | 8 {
  if (v < 0x40) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x4000_0000) return 4;
  return 8;
}

/** Encoded size (1, 2, 4 or 8) of a bigint varint in [0, 2^62−1]. */
export function varintLengthBig(v: bigint): 1 | 2 | 4 | 8 {
  if (v < 0x40n) return 1;
  if (v < 0x4000n) return 2;
  if (v < 0x4000_0000n) return 4;
  return 8;
}

/**
 * Thrown by a reader that runs past its end. It is a {@link QuicError} with FRAME_ENCODING_ERROR;
 * callers decoding something else (transport parameters, TLS) catch and re-code it.
 */
export class TruncatedError extends QuicError {
  constructor(what: string) {
    super(TransportErrorCode.FRAME_ENCODING_ERROR, `truncated ${what}`);
  }
}

/** Thrown by a writer whose buffer is too small: a caller bug (size before you encode). */
export class BufferOverflowError extends QuicUsageError {}

/** A read cursor over `buf[pos, end)`. Never reads past `end`; every read is bounds-checked. */
export class ByteReader {
  constructor(
    public buf: Uint8Array,
    public pos = 0,
    public end = buf.length,
  ) {
    if (pos < 0 || end > buf.length || pos > end) throw new QuicUsageError("ByteReader: bad bounds");
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** True when no bytes remain. */
  get done(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number, what: string): void {
    if (this.end - this.pos < n) throw new TruncatedError(what);
  }

  readUint8(): number {
    this.need(1, "uint8");
    return this.buf[this.pos++];
  }

  readUint16(): number {
    this.need(2, "uint16");
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 2;
    return (b[p] << 8) | b[p + 1];
  }

  readUint24(): number {
    this.need(3, "uint24");
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 3;
    return (b[p] << 16) | (b[p + 1] << 8) | b[p + 2];
  }

  readUint32(): number {
    this.need(4, "uint32");
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }

  /** `n` bytes as a view into the underlying buffer (no copy). */
  readBytes(n: number, what = "bytes"): Uint8Array {
    if (!(n >= 0)) throw new TruncatedError(what);
    this.need(n, what);
    const p = this.pos;
    this.pos = p + n;
    return this.buf.subarray(p, p + n);
  }

  skip(n: number, what = "bytes"): void {
    this.need(n, what);
    this.pos += n;
  }

  /**
   * A varint as a number: exact up to 2^53−1; larger values saturate to
   * `Number.MAX_SAFE_INTEGER` (see the module comment).
   */
  readVarint(): number {
    this.need(1, "varint");
    const b = this.buf;
    const p = this.pos;
    const first = b[p];
    switch (first >> 6) {
      case 0:
        this.pos = p + 1;
        return first;
      case 1:
        this.need(2, "varint");
        this.pos = p + 2;
        return ((first & 0x3f) << 8) | b[p + 1];
      case 2:
        this.need(4, "varint");
        this.pos = p + 4;
        return (((first & 0x3f) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
      default: {
        this.need(8, "varint");
        this.pos = p + 8;
        const hi = (((first & 0x3f) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
        if (hi >= 0x20_0000) return MAX_SAFE_VARINT; // ≥ 2^53: saturate
        const lo = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
        return hi * TWO_32 + lo;
      }
    }
  }

  /** A varint as a bigint, exact over the full 62-bit range. */
  readVarintBig(): bigint {
    this.need(1, "varint");
    const first = this.buf[this.pos];
    if (first >> 6 !== 3) return BigInt(this.readVarint());
    this.need(8, "varint");
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 8;
    const hi = (((first & 0x3f) << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
    const lo = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
}

/** A write cursor over a caller-provided buffer `buf[pos, end)`. Never writes past `end`. */
export class ByteWriter {
  constructor(
    public buf: Uint8Array,
    public pos = 0,
    public end = buf.length,
  ) {
    if (pos < 0 || end > buf.length || pos > end) throw new QuicUsageError("ByteWriter: bad bounds");
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** The bytes written so far from `start` (a view, no copy). */
  written(start = 0): Uint8Array {
    return this.buf.subarray(start, this.pos);
  }

  private need(n: number): void {
    if (this.end - this.pos < n) {
      throw new BufferOverflowError(`buffer too small: need ${n} bytes, ${this.end - this.pos} left`);
    }
  }

  writeUint8(v: number): void {
    this.need(1);
    this.buf[this.pos++] = v;
  }

  writeUint16(v: number): void {
    this.need(2);
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 8;
    b[p + 1] = v;
    this.pos = p + 2;
  }

  writeUint24(v: number): void {
    this.need(3);
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 16;
    b[p + 1] = v >>> 8;
    b[p + 2] = v;
    this.pos = p + 3;
  }

  writeUint32(v: number): void {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.pos = p + 4;
  }

  writeBytes(src: Uint8Array): void {
    this.need(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** Writes `n` zero bytes (PADDING, reserved space). */
  writeZeros(n: number): void {
    this.need(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }

  /** A varint in its shortest encoding; `v` must be an integer in [0, 2^53−1]. */
  writeVarint(v: number): void {
    this.writeVarintFixed(v, varintLength(v));
  }

  /**
   * A varint in exactly `length` bytes (1, 2, 4 or 8), as used for Length fields reserved before
   * the payload is known (RFC 9000 §16 allows non-minimal encodings).
   */
  writeVarintFixed(v: number, length: 1 | 2 | 4 | 8): void {
    if (!Number.isInteger(v) || v < 0 || v > MAX_SAFE_VARINT) {
      throw new QuicUsageError(`varint out of range: ${v}`);
    }
    this.need(length);
    const b = this.buf;
    const p = this.pos;
    switch (length) {
      case 1:
        if (v >= 0x40) throw new QuicUsageError(`varint ${v} does not fit in 1 byte`);
        b[p] = v;
        break;
      case 2:
        if (v >= 0x4000) throw new QuicUsageError(`varint ${v} does not fit in 2 bytes`);
        b[p] = 0x40 | (v >>> 8);
        b[p + 1] = v;
        break;
      case 4:
        if (v >= 0x4000_0000) throw new QuicUsageError(`varint ${v} does not fit in 4 bytes`);
        b[p] = 0x80 | (v >>> 24);
        b[p + 1] = v >>> 16;
        b[p + 2] = v >>> 8;
        b[p + 3] = v;
        break;
      default: {
        const hi = Math.floor(v / TWO_32);
        const lo = v >>> 0;
        b[p] = 0xc0 | (hi >>> 24);
        b[p + 1] = hi >>> 16;
        b[p + 2] = hi >>> 8;
        b[p + 3] = hi;
        b[p + 4] = lo >>> 24;
        b[p + 5] = lo >>> 16;
        b[p + 6] = lo >>> 8;
        b[p + 7] = lo;
      }
    }
    this.pos = p + length;
  }

  /** A varint from a bigint in [0, 2^62−1], shortest encoding. */
  writeVarintBig(v: bigint): void {
    if (v < 0n || v > MAX_VARINT) throw new QuicUsageError(`varint out of range: ${v}`);
    if (v <= BigInt(MAX_SAFE_VARINT)) {
      this.writeVarint(Number(v));
      return;
    }
    this.need(8);
    const hi = Number(v >> 32n);
    const lo = Number(v & 0xffff_ffffn);
    const b = this.buf;
    const p = this.pos;
    b[p] = 0xc0 | (hi >>> 24);
    b[p + 1] = hi >>> 16;
    b[p + 2] = hi >>> 8;
    b[p + 3] = hi;
    b[p + 4] = lo >>> 24;
    b[p + 5] = lo >>> 16;
    b[p + 6] = lo >>> 8;
    b[p + 7] = lo;
    this.pos = p + 8;
  }
}
