import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BufferOverflowError,
  ByteReader,
  ByteWriter,
  MAX_SAFE_VARINT,
  MAX_VARINT,
  TruncatedError,
  varintLength,
  varintLengthBig,
} from "./bytes.ts";
import { QuicError, TransportErrorCode } from "./errors.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));

describe("varint (RFC 9000 §16, Appendix A.1 examples)", () => {
  it("decodes the RFC's sample encodings", () => {
    expect(new ByteReader(hex("c2197c5eff14e88c")).readVarintBig()).toBe(151288809941952652n);
    expect(new ByteReader(hex("9d7f3e7d")).readVarint()).toBe(494878333);
    expect(new ByteReader(hex("7bbd")).readVarint()).toBe(15293);
    expect(new ByteReader(hex("25")).readVarint()).toBe(37);
    expect(new ByteReader(hex("4025")).readVarint()).toBe(37);
  });

  it("encodes the RFC's sample values to the same bytes", () => {
    const w = new ByteWriter(new Uint8Array(8));
    w.writeVarintBig(151288809941952652n);
    expect(Buffer.from(w.written()).toString("hex")).toBe("c2197c5eff14e88c");
    const w2 = new ByteWriter(new Uint8Array(8));
    w2.writeVarint(494878333);
    expect(Buffer.from(w2.written()).toString("hex")).toBe("9d7f3e7d");
  });

  it("round-trips the full 62-bit range exactly as bigint", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_VARINT }), (v) => {
        const w = new ByteWriter(new Uint8Array(8));
        w.writeVarintBig(v);
        expect(w.pos).toBe(varintLengthBig(v));
        const r = new ByteReader(w.written());
        expect(r.readVarintBig()).toBe(v);
        expect(r.done).toBe(true);
      }),
    );
  });

  it("round-trips numbers exactly up to 2^53-1 and saturates above", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (v) => {
        const w = new ByteWriter(new Uint8Array(8));
        w.writeVarint(v);
        expect(w.pos).toBe(varintLength(v));
        expect(new ByteReader(w.written()).readVarint()).toBe(v);
      }),
    );
    const w = new ByteWriter(new Uint8Array(8));
    w.writeVarintBig(MAX_VARINT);
    expect(new ByteReader(w.written()).readVarint()).toBe(MAX_SAFE_VARINT);
    const w2 = new ByteWriter(new Uint8Array(8));
    w2.writeVarintBig(1n << 53n);
    expect(new ByteReader(w2.written()).readVarint()).toBe(MAX_SAFE_VARINT);
  });

  it("writes fixed-length encodings that decode to the same value", () => {
    for (const len of [1, 2, 4, 8] as const) {
      const w = new ByteWriter(new Uint8Array(8));
      w.writeVarintFixed(37, len);
      expect(w.pos).toBe(len);
      expect(new ByteReader(w.written()).readVarint()).toBe(37);
    }
    expect(() => new ByteWriter(new Uint8Array(8)).writeVarintFixed(64, 1)).toThrow(/does not fit/);
  });

  it("rejects out-of-range values on encode", () => {
    const w = new ByteWriter(new Uint8Array(8));
    expect(() => w.writeVarint(-1)).toThrow(/out of range/);
    expect(() => w.writeVarint(1.5)).toThrow(/out of range/);
    expect(() => w.writeVarintBig(MAX_VARINT + 1n)).toThrow(/out of range/);
  });

  it("fails truncated input with FRAME_ENCODING_ERROR, never reading past the end", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0x40n, max: MAX_VARINT }), (v) => {
        const w = new ByteWriter(new Uint8Array(8));
        w.writeVarintBig(v);
        const bytes = w.written();
        for (let cut = 0; cut < bytes.length; cut++) {
          const r = new ByteReader(bytes, 0, cut);
          let err: unknown;
          try {
            r.readVarintBig();
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(TruncatedError);
          expect((err as QuicError).code).toBe(TransportErrorCode.FRAME_ENCODING_ERROR);
        }
      }),
    );
  });
});

describe("ByteReader / ByteWriter", () => {
  it("round-trips fixed-width integers and byte strings", () => {
    const w = new ByteWriter(new Uint8Array(16));
    w.writeUint8(0xab);
    w.writeUint16(0xbeef);
    w.writeUint24(0x123456);
    w.writeUint32(0xdeadbeef);
    w.writeBytes(hex("0102"));
    w.writeZeros(2);
    const r = new ByteReader(w.written());
    expect(r.readUint8()).toBe(0xab);
    expect(r.readUint16()).toBe(0xbeef);
    expect(r.readUint24()).toBe(0x123456);
    expect(r.readUint32()).toBe(0xdeadbeef);
    expect([...r.readBytes(2)]).toEqual([1, 2]);
    r.skip(2);
    expect(r.remaining).toBe(0);
    expect(() => r.readUint8()).toThrow(TruncatedError);
  });

  it("respects a sub-range end and reports overflow as a usage error", () => {
    const r = new ByteReader(hex("01020304"), 1, 3);
    expect(r.readUint16()).toBe(0x0203);
    expect(() => r.readUint8()).toThrow(QuicError);
    const w = new ByteWriter(new Uint8Array(4), 0, 2);
    expect(() => w.writeUint32(1)).toThrow(BufferOverflowError);
    expect(() => new ByteReader(new Uint8Array(2)).readBytes(-1)).toThrow(TruncatedError);
  });
});
