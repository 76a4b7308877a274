import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { H3Error } from "../error-codes.ts";
import {
  HUFFMAN_CODES,
  HUFFMAN_EOS,
  HUFFMAN_INVALID,
  HUFFMAN_LENGTHS,
  HUFFMAN_TOO_LONG,
  huffmanDecode,
  huffmanDecodeInto,
  huffmanEncode,
  huffmanEncodedLength,
} from "./huffman.ts";
import { bytesToString, stringToBytes } from "./prefix-int.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const decodeString = (h: string) => {
  const b = huffmanDecode(hex(h));
  return bytesToString(b, 0, b.length);
};

// RFC 7541 Appendix C.4 (requests) and C.6 (responses) Huffman-coded strings.
const VECTORS: [string, string][] = [
  ["www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"],
  ["no-cache", "a8eb10649cbf"],
  ["custom-key", "25a849e95ba97d7f"],
  ["custom-value", "25a849e95bb8e8b4bf"],
  ["302", "6402"],
  ["307", "640eff"],
  ["private", "aec3771a4b"],
  ["Mon, 21 Oct 2013 20:13:21 GMT", "d07abe941054d444a8200595040b8166e082a62d1bff"],
  ["Mon, 21 Oct 2013 20:13:22 GMT", "d07abe941054d444a8200595040b8166e084a62d1bff"],
  ["https://www.example.com", "9d29ad171863c78f0b97c8e9ae82ae43d3"],
  ["gzip", "9bd9ab"],
  [
    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
  ],
];

const byteString = (maxLength = 64) =>
  fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength });

describe("Huffman code table (RFC 7541 Appendix B)", () => {
  it("has 257 codes of 5..30 bits, EOS being 30 ones", () => {
    expect(HUFFMAN_CODES.length).toBe(257);
    for (let s = 0; s < 257; s++) {
      expect(HUFFMAN_LENGTHS[s]).toBeGreaterThanOrEqual(5);
      expect(HUFFMAN_LENGTHS[s]).toBeLessThanOrEqual(30);
      expect(HUFFMAN_CODES[s]).toBeLessThan(2 ** HUFFMAN_LENGTHS[s]);
    }
    expect(HUFFMAN_LENGTHS[HUFFMAN_EOS]).toBe(30);
    expect(HUFFMAN_CODES[HUFFMAN_EOS]).toBe(0x3fffffff);
  });

  it("is complete (Kraft sum exactly 1) and canonical (codes follow (length, symbol) order)", () => {
    let kraft = 0;
    for (let s = 0; s < 257; s++) kraft += 2 ** (30 - HUFFMAN_LENGTHS[s]);
    expect(kraft).toBe(2 ** 30);
    const order = [...Array(257).keys()].sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
    let code = 0;
    let len = HUFFMAN_LENGTHS[order[0]];
    for (const s of order) {
      code *= 2 ** (HUFFMAN_LENGTHS[s] - len);
      len = HUFFMAN_LENGTHS[s];
      expect(HUFFMAN_CODES[s], `symbol ${s}`).toBe(code);
      code++;
    }
  });

  it("matches spot values of the RFC table", () => {
    const spot: [number, number, number][] = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [10, 0x3ffffffc, 30],
      [32, 0x14, 6],
      [48, 0x0, 5],
      [97, 0x3, 5],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [195, 0x7fff1, 19],
      [255, 0x3ffffee, 26],
    ];
    for (const [s, code, len] of spot) {
      expect([HUFFMAN_CODES[s], HUFFMAN_LENGTHS[s]]).toEqual([code, len]);
    }
  });
});

describe("Huffman encoding and decoding", () => {
  it("encodes the RFC 7541 Appendix C vectors", () => {
    for (const [s, h] of VECTORS) {
      expect(toHex(huffmanEncode(s)), s).toBe(h);
      expect(huffmanEncodedLength(s)).toBe(h.length / 2);
    }
  });

  it("decodes the RFC 7541 Appendix C vectors", () => {
    for (const [s, h] of VECTORS) expect(decodeString(h)).toBe(s);
  });

  it("round-trips any byte string, and the encoded length is exact", () => {
    fc.assert(
      fc.property(byteString(200), (s) => {
        const enc = huffmanEncode(s);
        expect(enc.length).toBe(huffmanEncodedLength(s));
        expect(decodeString(toHex(enc))).toBe(s);
      }),
      { numRuns: 500 },
    );
  });

  it("decodes every valid input to the unique encoding: random bytes either fail or re-encode identically", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (src) => {
        const out = new Uint8Array(64);
        const n = huffmanDecodeInto(src, 0, src.length, out, 0, out.length);
        if (n === HUFFMAN_INVALID) return;
        expect(n).toBeGreaterThanOrEqual(0);
        expect(toHex(huffmanEncode(bytesToString(out, 0, n)))).toBe(toHex(src));
      }),
      { numRuns: 2000 },
    );
  });

  it("rejects padding longer than 7 bits", () => {
    // "302" is exactly 16 bits: an extra all-ones byte is 8 bits of padding.
    expect(huffmanDecodeInto(hex("640effff"), 0, 4, new Uint8Array(8), 0, 8)).toBe(HUFFMAN_INVALID);
    expect(huffmanDecodeInto(hex("6402ff"), 0, 3, new Uint8Array(8), 0, 8)).toBe(HUFFMAN_INVALID);
    expect(() => huffmanDecode(hex("ff"))).toThrow(H3Error);
    expect(() => huffmanDecode(hex("f1e3c2e5f23a6ba0ab90f4ffff"))).toThrow(H3Error);
  });

  it("rejects padding that is not the most significant bits of EOS", () => {
    // "307" = 17 bits + 7 padding bits 1111111. 0xfe ends the padding with a 0; 0x80 leaves
    // "0000000": '0' (00000) then padding "00".
    expect(() => huffmanDecode(hex("640efe"))).toThrow(H3Error);
    expect(() => huffmanDecode(hex("640e80"))).toThrow(H3Error);
    // (0x7f is not a padding error: the first bit belongs to the code, giving "306".)
    expect(decodeString("640e7f")).toBe("306");
    expect(decodeString("640eff")).toBe("307");
  });

  it("rejects EOS inside the string", () => {
    expect(() => huffmanDecode(hex("ffffffff"))).toThrow(H3Error); // EOS + 2 padding bits
    // 'a' (00011) + EOS (30 ones) + 5 padding ones = 40 bits
    expect(() => huffmanDecode(hex("1fffffffff"))).toThrow(H3Error);
  });

  it("accepts the empty string and stops at the output limit", () => {
    expect(huffmanDecode(new Uint8Array(0)).length).toBe(0);
    const enc = huffmanEncode("www.example.com");
    expect(huffmanDecodeInto(enc, 0, enc.length, new Uint8Array(20), 0, 14)).toBe(HUFFMAN_TOO_LONG);
    expect(huffmanDecodeInto(enc, 0, enc.length, new Uint8Array(20), 0, 15)).toBe(15);
  });

  it("rejects strings with chars above 0xff", () => {
    expect(() => huffmanEncodedLength("é€")).toThrow();
    expect(huffmanEncodedLength(bytesToString(stringToBytes("é"), 0, 1))).toBe(huffmanEncodedLength("\xe9"));
  });
});
