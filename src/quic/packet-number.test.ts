import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodePacketNumber,
  type PacketNumberLength,
  packetNumberLength,
  readPacketNumber,
  truncatePacketNumber,
  writePacketNumber,
} from "./packet-number.ts";

const pnLengthArb = fc.constantFrom<PacketNumberLength>(1, 2, 3, 4);

describe("packet number encoding (RFC 9000 §17.1, Appendix A.2)", () => {
  it("chooses the sizes of the Appendix A.2 examples", () => {
    // Acknowledged 0xabe8b3, sending 0xac5c02: 29,519 outstanding, twice that needs 16 bits.
    expect(packetNumberLength(0xac5c02, 0xabe8b3)).toBe(2);
    // Sending 0xace8fe in the same state needs 18 bits: the 24-bit encoding.
    expect(packetNumberLength(0xace8fe, 0xabe8b3)).toBe(3);
  });

  it("covers the whole range counted from -1 before any acknowledgment", () => {
    expect(packetNumberLength(0, -1)).toBe(1);
    expect(packetNumberLength(126, -1)).toBe(1); // 127 packets, 254 < 256
    expect(packetNumberLength(127, -1)).toBe(2); // 128 packets: 256 is not "more than twice"
    expect(packetNumberLength(0x7ffe, -1)).toBe(2);
    expect(packetNumberLength(0x7fff, -1)).toBe(3);
    expect(packetNumberLength(0x7ffffe, -1)).toBe(3);
    expect(packetNumberLength(0x7fffff, -1)).toBe(4);
    expect(packetNumberLength(2 ** 40, -1)).toBe(4); // no encoding suffices: capped at 4
  });

  it("uses more bytes the more packets are unacknowledged", () => {
    expect(packetNumberLength(1000, 999)).toBe(1);
    expect(packetNumberLength(1127, 1000)).toBe(1);
    expect(packetNumberLength(1128, 1000)).toBe(2);
  });

  it("truncates to the least significant bytes and writes them big-endian", () => {
    expect(truncatePacketNumber(0xac5c02, 2)).toBe(0x5c02);
    expect(truncatePacketNumber(654360564, 3)).toBe(49140);
    expect(truncatePacketNumber(2 ** 40 + 0x01020304, 4)).toBe(0x01020304);
    const buf = new Uint8Array(6);
    writePacketNumber(buf, 1, 0x01020304, 4);
    expect([...buf]).toEqual([0, 1, 2, 3, 4, 0]);
    expect(readPacketNumber(buf, 1, 4)).toBe(0x01020304);
    writePacketNumber(buf, 0, 0xbff4, 3);
    expect([...buf.subarray(0, 3)]).toEqual([0x00, 0xbf, 0xf4]);
    expect(readPacketNumber(buf, 0, 3)).toBe(0xbff4);
  });

  it("reads back what it writes, for every length", () => {
    fc.assert(
      fc.property(pnLengthArb, fc.integer({ min: 0, max: 2 ** 50 }), (len, pn) => {
        const buf = new Uint8Array(4);
        const t = truncatePacketNumber(pn, len);
        expect(t).toBeLessThan(2 ** (8 * len));
        writePacketNumber(buf, 0, t, len);
        expect(readPacketNumber(buf, 0, len)).toBe(t);
      }),
    );
  });
});

describe("packet number decoding (RFC 9000 §17.1, Appendix A.3)", () => {
  it("decodes the Appendix A.3 example", () => {
    expect(decodePacketNumber(0xa82f30ea, 0x9b32, 2)).toBe(0xa82f9b32);
  });

  it("decodes the RFC 9001 A.5 packet number", () => {
    expect(decodePacketNumber(654360563, 49140, 3)).toBe(654360564);
  });

  it("wraps up and down across window boundaries, never below zero", () => {
    expect(decodePacketNumber(-1, 0, 1)).toBe(0);
    expect(decodePacketNumber(-1, 255, 1)).toBe(255); // would be -1 if wrapped down
    expect(decodePacketNumber(250, 3, 1)).toBe(259); // wraps up
    expect(decodePacketNumber(260, 250, 1)).toBe(250); // wraps down
    expect(decodePacketNumber(255, 0x80, 1)).toBe(384); // at expected + hwin: upper edge included
    expect(decodePacketNumber(255, 0x81, 1)).toBe(129); // past it: the lower candidate
    expect(decodePacketNumber(2 ** 52, 0, 4)).toBe(2 ** 52);
  });

  it("recovers every packet number in the window (expected - hwin, expected + hwin]", () => {
    fc.assert(
      fc.property(
        pnLengthArb,
        fc.integer({ min: -1, max: 2 ** 48 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (len, largest, f) => {
          const expected = largest + 1;
          const hwin = 2 ** (8 * len - 1);
          const lo = Math.max(0, expected - hwin + 1);
          const hi = expected + hwin;
          const pn = Math.min(hi, lo + Math.floor(f * (hi - lo + 1)));
          expect(decodePacketNumber(largest, truncatePacketNumber(pn, len), len)).toBe(pn);
        },
      ),
    );
  });

  it("decode(encode(pn)) == pn for any largest_acked and largest_received the encoding allows", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1, max: 2 ** 48 }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (largestAcked, gap, f) => {
          const pn = largestAcked + gap;
          const len = packetNumberLength(pn, largestAcked);
          // The receiver has seen at least largest_acked; it may also have seen packets beyond pn
          // (reordering), up to the edge of the half-window above pn.
          const hwin = 2 ** (8 * len - 1);
          if (2 * gap >= 2 ** (8 * len)) return; // beyond 2^31 unacked: no encoding suffices
          const maxReceived = pn + hwin - 2;
          const largestReceived = Math.min(
            maxReceived,
            largestAcked + Math.floor(f * (maxReceived - largestAcked + 1)),
          );
          expect(decodePacketNumber(largestReceived, truncatePacketNumber(pn, len), len)).toBe(pn);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("decodes the next packet from the previous one with every length", () => {
    fc.assert(
      fc.property(pnLengthArb, fc.integer({ min: 0, max: 2 ** 52 }), (len, pn) => {
        expect(decodePacketNumber(pn - 1, truncatePacketNumber(pn, len), len)).toBe(pn);
      }),
    );
  });
});
