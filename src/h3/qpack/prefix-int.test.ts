import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { H3Error } from "../error-codes.ts";
import { QpackError, QpackErrorCode } from "./errors.ts";
import { INCOMPLETE, QpackReader, QpackWriter } from "./prefix-int.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const reader = (b: Uint8Array) =>
  new QpackReader(
    QpackErrorCode.DECOMPRESSION_FAILED,
    (limit) => new QpackError(QpackErrorCode.DECOMPRESSION_FAILED, `too long ${limit}`),
    b,
  );

describe("prefix integers (RFC 7541 §5.1)", () => {
  it("encodes and decodes the RFC 7541 Appendix C.1 examples", () => {
    const w = new QpackWriter(1);
    w.writeInt(0xe0, 5, 10);
    expect(toHex(w.take())).toBe("ea");
    w.writeInt(0, 5, 1337);
    expect(toHex(w.take())).toBe("1f9a0a");
    w.writeInt(0, 8, 42);
    expect(toHex(w.take())).toBe("2a");
    expect(reader(hex("ea")).readInt(5)).toBe(10);
    expect(reader(hex("1f9a0a")).readInt(5)).toBe(1337);
    expect(reader(hex("2a")).readInt(8)).toBe(42);
  });

  it("round-trips every prefix size and value up to 2^53-1, keeping the flag bits", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.oneof(fc.integer({ min: 0, max: 300 }), fc.maxSafeNat()),
        fc.nat(255),
        (n, v, flags) => {
          const w = new QpackWriter(2);
          const f = flags & ~((1 << n) - 1) & 0xff;
          w.writeInt(f, n, v);
          const b = w.take();
          expect(b[0] & ~((1 << n) - 1) & 0xff).toBe(f);
          const r = reader(b);
          expect(r.readInt(n)).toBe(v);
          expect(r.pos).toBe(b.length);
          // Every strict prefix is incomplete and leaves the position alone.
          for (let k = 0; k < b.length; k++) {
            const rr = reader(b.subarray(0, k));
            expect(rr.readInt(n)).toBe(INCOMPLETE);
            expect(rr.pos).toBe(0);
          }
        },
      ),
    );
  });

  it("decodes 62-bit integers (saturating above 2^53-1) and rejects longer encodings", () => {
    // 2^62 - 1 with an 8-bit prefix: 255, then 2^62 - 256 in 9 continuation bytes.
    const w = new QpackWriter();
    let v = 2n ** 62n - 1n - 255n;
    const bytes = [0xff];
    while (v >= 128n) {
      bytes.push(Number(v % 128n) | 0x80);
      v /= 128n;
    }
    bytes.push(Number(v));
    expect(bytes.length).toBe(10);
    expect(reader(Uint8Array.from(bytes)).readInt(8)).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => reader(hex("ff80808080808080808001")).readInt(8)).toThrow(QpackError);
    expect(() => reader(hex("ff8080808080808080c0")).readInt(8)).toThrow(QpackError);
    // Zero-padded continuation bytes beyond the limit.
    expect(() => reader(hex("1f8080808080808080808000")).readInt(5)).toThrow(H3Error);
    w.reset();
  });
});

describe("string literals (RFC 7541 §5.2, RFC 9204 §4.1.2)", () => {
  it("writes raw or Huffman, whichever is shorter, and reads both back", () => {
    const w = new QpackWriter();
    w.writeString(0, 8, "www.example.com", true);
    expect(toHex(w.view())).toBe("8cf1e3c2e5f23a6ba0ab90f4ff");
    expect(reader(w.take()).readString(8, 100)).toBe("www.example.com");
    w.writeString(0, 8, "www.example.com", false);
    expect(toHex(w.view())).toBe("0f7777772e6578616d706c652e636f6d");
    expect(reader(w.take()).readString(8, 100)).toBe("www.example.com");
    // 4-bit prefix with flags (Literal Field Line with Literal Name, N=1).
    w.writeString(0x30, 4, "custom-key", true);
    const b = w.take();
    expect(b[0] >> 4).toBe(3);
    expect(b[0] & 0x08).toBe(0x08);
    expect(reader(b).readString(4, 100)).toBe("custom-key");
  });

  it("round-trips byte strings for every prefix size 2..8", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }),
        fc.string({
          unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
          maxLength: 300,
        }),
        fc.boolean(),
        (n, s, huffman) => {
          const w = new QpackWriter(1);
          w.writeString(0, n, s, huffman);
          const b = w.take();
          const r = reader(b);
          expect(r.readString(n, s.length)).toBe(s);
          expect(r.pos).toBe(b.length);
          if (b.length > 1) {
            const rr = reader(b.subarray(0, b.length - 1));
            expect(rr.readString(n, s.length)).toBeUndefined();
            expect(rr.pos).toBe(0);
          }
        },
      ),
    );
  });

  it("decodes Huffman strings longer than the shared scratch space", () => {
    const long = "abcdefghij".repeat(20_000);
    const w = new QpackWriter();
    w.writeString(0, 8, long, true);
    expect(reader(w.take()).readString(8, Number.POSITIVE_INFINITY)).toBe(long);
  });

  it("enforces the length limit before decoding", () => {
    const w = new QpackWriter();
    w.writeString(0, 8, "abcdef", false);
    const raw = w.take();
    expect(() => reader(raw).readString(8, 5)).toThrow(/too long 5/);
    w.writeString(0, 8, "abcdefghijkl", true);
    const huff = w.take();
    expect(() => reader(huff).readString(8, 11)).toThrow(/too long 11/);
    expect(reader(huff).readString(8, 12)).toBe("abcdefghijkl");
    // A huge announced length is refused without waiting for (or allocating) the bytes.
    expect(() => reader(hex("7fffffffff0f")).readString(8, 1 << 20)).toThrow(/too long/);
  });
});
