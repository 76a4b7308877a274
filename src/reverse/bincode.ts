/**
 * bincode 1.3 "legacy" defaults, the payload encoding of quic-reverse control messages: fixed-width
 * little-endian integers, u64 lengths, u32 enum variant indices, 1-byte Option tags and bools.
 * The reader is bounds-checked: a declared length larger than what remains is `unexpected_eof`,
 * never an allocation.
 */
import { QuicUsageError } from "../quic/errors.ts";
import { ReverseDecodeError } from "./errors.ts";

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** Reads bincode values from one payload. */
export class BincodeReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  private need(n: number): void {
    if (this.remaining < n) {
      throw new ReverseDecodeError(
        "unexpected_eof",
        `unexpected end of input: need ${n} bytes, ${this.remaining} left`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.offset++];
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }

  i64(): bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.offset, true);
    this.offset += 8;
    return v;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new ReverseDecodeError("invalid_bool", `invalid bool encoding ${b}`);
    return b === 1;
  }

  /** An Option tag: false for None, true for Some. */
  optionTag(): boolean {
    const t = this.u8();
    if (t > 1) throw new ReverseDecodeError("invalid_option_tag", `invalid Option tag ${t}`);
    return t === 1;
  }

  /** A u32 enum variant index, checked against the number of variants. */
  variant(count: number, what: string): number {
    const i = this.u32();
    if (i >= count) {
      throw new ReverseDecodeError("invalid_variant_index", `invalid ${what} variant index ${i}`);
    }
    return i;
  }

  /** A u64 length, checked against the bytes that remain (never preallocated). */
  private length(): number {
    const n = this.u64();
    if (n > BigInt(this.remaining)) {
      throw new ReverseDecodeError(
        "unexpected_eof",
        `unexpected end of input: declared length ${n}, ${this.remaining} bytes left`,
      );
    }
    return Number(n);
  }

  /** A Vec<u8>: a copy, so the caller may keep it. */
  bytesField(): Uint8Array {
    const n = this.length();
    const v = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return v;
  }

  /** A String: strict UTF-8 (lone continuation bytes, overlongs, surrogates... are rejected). */
  string(): string {
    const n = this.length();
    const raw = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    try {
      return utf8Decoder.decode(raw);
    } catch {
      throw new ReverseDecodeError("invalid_utf8", "string is not valid UTF-8");
    }
  }

  /** A u64 element count (a map's), checked only for being representable; entries are read one by one. */
  count(): bigint {
    return this.u64();
  }
}

/** Writes bincode values into a growing buffer. */
export class BincodeWriter {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new QuicUsageError(`u8 out of range: ${v}`);
    this.reserve(1);
    this.buf[this.length++] = v;
  }

  u16(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new QuicUsageError(`u16 out of range: ${v}`);
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }

  u32(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new QuicUsageError(`u32 out of range: ${v}`);
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }

  u64(v: bigint): void {
    if (v < 0n || v > U64_MAX) throw new QuicUsageError(`u64 out of range: ${v}`);
    this.reserve(8);
    this.view.setBigUint64(this.length, v, true);
    this.length += 8;
  }

  i64(v: bigint): void {
    if (v < I64_MIN || v > I64_MAX) throw new QuicUsageError(`i64 out of range: ${v}`);
    this.reserve(8);
    this.view.setBigInt64(this.length, v, true);
    this.length += 8;
  }

  bool(v: boolean): void {
    this.u8(v ? 1 : 0);
  }

  bytesField(v: Uint8Array): void {
    this.u64(BigInt(v.length));
    this.reserve(v.length);
    this.buf.set(v, this.length);
    this.length += v.length;
  }

  string(v: string): void {
    this.bytesField(utf8Encoder.encode(v));
  }

  /** Option<String>: tag 0, or tag 1 then the string. */
  optionalString(v: string | null | undefined): void {
    if (v === null || v === undefined) this.u8(0);
    else {
      this.u8(1);
      this.string(v);
    }
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}
