/**
 * QPACK wire primitives (RFC 9204 §4.1): N-bit prefix integers (RFC 7541 §5.1, not QUIC
 * varints) and N-bit prefix string literals with the H (Huffman) flag (RFC 7541 §5.2,
 * RFC 9204 §4.1.2).
 *
 * Strings are byte strings: JS strings whose char codes are all ≤ 0xff, one char per octet
 * (the "latin1" mapping, lossless for any octets). Field names and values keep that form through
 * the encoder and decoder; the HTTP layer converts to and from UTF-8 where it wants text.
 */
import { QuicUsageError } from "../../quic/errors.ts";
import type { H3Error } from "../error-codes.ts";
import { QpackError, type QpackErrorCode } from "./errors.ts";
import {
  HUFFMAN_TOO_LONG,
  huffmanDecodeInto,
  huffmanEncodedLength,
  huffmanEncodeInto,
  huffmanMaxDecodedLength,
} from "./huffman.ts";

/** {@link QpackReader.readInt}: the input ends inside the integer. */
export const INCOMPLETE = -1;

/**
 * Largest number of continuation bytes accepted after the prefix. RFC 9204 §4.1.1: QPACK
 * implementations MUST be able to decode integers up to and including 62 bits long; 9 × 7 bits
 * cover 62 bits beyond any prefix. Longer encodings (including zero-padded ones) are rejected:
 * RFC 9204 §2.2.3 lets an implementation limit the encoded length.
 */
const MAX_CONTINUATION_BYTES = 9;

const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------
// Byte strings

/**
 * True when every char code of `s` is ≤ 0xff, i.e. `s` is a byte string the encoder can send.
 */
export function isByteString(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/** The octets `buf[start, end)` as a byte string (one char per octet). */
export function bytesToString(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n <= 0) return "";
  if (n <= 64) return String.fromCharCode.apply(null, buf.subarray(start, end) as unknown as number[]);
  return Buffer.from(buf.buffer, buf.byteOffset + start, n).toString("latin1");
}

/** A byte string's octets (char codes are masked to 8 bits). */
export function stringToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// Scratch space for Huffman decoding, grown on demand up to SCRATCH_MAX; a longer string (only
// possible when the caller's limit admits it) decodes into a temporary buffer.
const SCRATCH_MAX = 64 * 1024;
let scratch = new Uint8Array(1024);

// ---------------------------------------------------------------------------------------------
// Reader

/**
 * A read cursor over `buf[pos, end)` for QPACK integers and string literals. Truncation is not
 * an error here: reads return {@link INCOMPLETE} / `undefined` and leave `pos` unchanged, so the
 * encoder- and decoder-stream parsers can wait for more bytes; a field-section decoder turns it
 * into an error. Malformed input (integer overflow, bad Huffman code, string over its limit)
 * throws the error chosen by the caller: {@link QpackError} with `errorCode`, or `tooLong(limit)`.
 */
export class QpackReader {
  /**
   * After an incomplete {@link readString}: the position (exclusive) the buffer must reach before
   * the string can be complete, or 0 when unknown. Lets a streaming parser skip re-parsing.
   */
  needed = 0;

  constructor(
    /** Error code for malformed input. */
    public errorCode: QpackErrorCode,
    /** Error for a string longer than the caller's limit. */
    public tooLong: (limit: number) => H3Error,
    public buf: Uint8Array = EMPTY,
    public pos = 0,
    public end = buf.length,
  ) {}

  /** Points the reader at `buf[pos, end)`. */
  reset(buf: Uint8Array, pos: number, end: number): void {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
    this.needed = 0;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /**
   * Reads an integer with an N-bit prefix (1 ≤ N ≤ 8): the prefix is the low N bits of
   * `buf[pos]` (the high bits belong to the instruction). Returns the value, or
   * {@link INCOMPLETE}. Values above 2^53−1 saturate to `Number.MAX_SAFE_INTEGER` (above every
   * limit and every stream ID we use); encodings beyond 62 bits are an error.
   */
  readInt(prefixBits: number): number {
    const buf = this.buf;
    const end = this.end;
    let p = this.pos;
    if (p >= end) return INCOMPLETE;
    const max = (1 << prefixBits) - 1;
    let v = buf[p++] & max;
    if (v < max) {
      this.pos = p;
      return v;
    }
    let mult = 1;
    for (let k = 0; ; k++) {
      if (p >= end) return INCOMPLETE;
      const b = buf[p++];
      const bits = b & 0x7f;
      if (k === MAX_CONTINUATION_BYTES - 1 && (bits >= 0x40 || b & 0x80)) {
        throw new QpackError(this.errorCode, "integer exceeds 62 bits");
      }
      v += bits * mult;
      if ((b & 0x80) === 0) break;
      mult *= 128;
    }
    this.pos = p;
    return v > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : v;
  }

  /**
   * Reads a string literal with an N-bit prefix (2 ≤ N ≤ 8, RFC 9204 §4.1.2): H flag at bit
   * N−1 of `buf[pos]`, then the encoded length as an (N−1)-bit prefix integer, then the octets.
   * Returns the string, or `undefined` if the input ends first (`pos` unchanged, {@link needed}
   * set when the length is known). A decoded length above `maxLength` throws `tooLong(maxLength)`
   * before anything is allocated; an invalid Huffman code throws (RFC 7541 §5.2).
   */
  readString(prefixBits: number, maxLength: number): string | undefined {
    const start = this.pos;
    if (start >= this.end) return undefined;
    const huffman = (this.buf[start] >> (prefixBits - 1)) & 1;
    const len = this.readInt(prefixBits - 1);
    if (len === INCOMPLETE) return undefined;
    // Decoded length ≥ encoded length for a raw string; ≥ (8·len − 7)/30 for a Huffman one
    // (codes are at most 30 bits, padding at most 7).
    if (huffman === 0 ? len > maxLength : Math.ceil((len * 8 - 7) / 30) > maxLength) {
      throw this.tooLong(maxLength);
    }
    const p = this.pos;
    if (len > this.end - p) {
      this.needed = p + len;
      this.pos = start;
      return undefined;
    }
    this.pos = p + len;
    if (huffman === 0) return bytesToString(this.buf, p, p + len);
    const cap = Math.min(maxLength, huffmanMaxDecodedLength(len));
    let dst = scratch;
    if (cap > dst.length) {
      dst = new Uint8Array(cap <= SCRATCH_MAX ? Math.min(SCRATCH_MAX, Math.max(cap, dst.length * 2)) : cap);
      if (cap <= SCRATCH_MAX) scratch = dst;
    }
    const n = huffmanDecodeInto(this.buf, p, p + len, dst, 0, cap);
    if (n === HUFFMAN_TOO_LONG) throw this.tooLong(maxLength);
    if (n < 0) throw new QpackError(this.errorCode, "invalid Huffman-coded string");
    return bytesToString(dst, 0, n);
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

/** A growable output buffer for QPACK integers and string literals. */
export class QpackWriter {
  buf: Uint8Array;
  pos = 0;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }

  /**
   * Writes `value` (an integer in [0, 2^53−1]) with an N-bit prefix; `flags` fills the high
   * 8−N bits of the first byte.
   */
  writeInt(flags: number, prefixBits: number, value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new QuicUsageError(`bad QPACK integer ${value}`);
    this.reserve(10);
    const buf = this.buf;
    const max = (1 << prefixBits) - 1;
    if (value < max) {
      buf[this.pos++] = flags | value;
      return;
    }
    buf[this.pos++] = flags | max;
    let v = value - max;
    while (v >= 0x80) {
      buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[this.pos++] = v;
  }

  /**
   * Writes the byte string `s` as a string literal with an N-bit prefix (2 ≤ N ≤ 8): Huffman
   * coded when `huffman` and that is shorter. `flags` fills the high 8−N bits.
   */
  writeString(flags: number, prefixBits: number, s: string, huffman: boolean): void {
    const len = s.length;
    const hlen = huffman && len > 0 ? huffmanEncodedLength(s) : len;
    if (hlen < len) {
      this.writeInt(flags | (1 << (prefixBits - 1)), prefixBits - 1, hlen);
      this.reserve(hlen);
      this.pos = huffmanEncodeInto(s, this.buf, this.pos);
      return;
    }
    this.writeInt(flags, prefixBits - 1, len);
    this.reserve(len);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < len; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Appends raw octets. */
  writeBytes(src: Uint8Array): void {
    this.reserve(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** The bytes written so far (a view, valid until the next write or {@link reset}). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** A copy of the bytes written so far; resets the writer. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }

  reset(): void {
    this.pos = 0;
  }
}
