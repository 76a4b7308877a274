import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BufferOverflowError, ByteWriter } from "./bytes.ts";
import { defaultCryptoProvider } from "./crypto/node-provider.ts";
import { QuicError, QuicUsageError, TransportErrorCode } from "./errors.ts";
import {
  buildRetryPacket,
  encodeVersionNegotiation,
  FIXED_BIT,
  type LongHeader,
  type LongHeaderFields,
  MAX_CID_LENGTH,
  PacketDropError,
  type PacketHeader,
  PacketType,
  type ParseOptions,
  parsePacketHeader,
  patchLongHeaderLength,
  type RetryHeader,
  readProtectedFields,
  type ShortHeader,
  splitCoalescedPackets,
  type UnsupportedVersionHeader,
  type VersionNegotiationHeader,
  validateRetryPacket,
  versionNegotiationResponse,
  writeLongHeader,
  writeShortHeader,
} from "./packet-header.ts";
import { MIN_PROTECTED_LENGTH } from "./packet-protection.ts";
import {
  greaseVersion,
  isReservedVersion,
  isSupportedVersion,
  LongPacketType,
  longTypeFromWireBits,
  longTypeToWireBits,
  QUIC_V1,
  QUIC_V2,
  SUPPORTED_VERSIONS,
} from "./version.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

const OPTS: ParseOptions = { localCidLength: 8 };
const CID_A = hex("0102030405060708");
const CID_B = hex("a1a2a3a4");

/** Writes a long header followed by `payload` (the protected part stand-in) into a fresh buffer. */
function longPacket(fields: Omit<LongHeaderFields, "length">, payloadLength = 30): Uint8Array {
  const buf = new Uint8Array(200 + payloadLength + (fields.token?.length ?? 0));
  const w = new ByteWriter(buf);
  const length = fields.pnLength + payloadLength + 16;
  writeLongHeader(w, { ...fields, length });
  w.writeZeros(payloadLength + 16);
  return buf.slice(0, w.pos);
}

function shortPacket(dcid: Uint8Array, pn: number, payloadLength = 30): Uint8Array {
  const buf = new Uint8Array(100 + payloadLength);
  const w = new ByteWriter(buf);
  writeShortHeader(w, { dcid, packetNumber: pn, pnLength: 2, keyPhase: 0 });
  w.writeZeros(payloadLength + 16);
  return buf.slice(0, w.pos);
}

/** Parsing either succeeds within bounds or throws PacketDropError — nothing else. */
function parseOrDrop(buf: Uint8Array, offset: number, opts: ParseOptions): PacketHeader | undefined {
  try {
    const h = parsePacketHeader(buf, offset, opts);
    checkBounds(buf, h);
    return h;
  } catch (e) {
    if (!(e instanceof PacketDropError)) throw e;
    expect(e).toBeInstanceOf(QuicError);
    expect(e.drop).toBe(true);
    return undefined;
  }
}

function checkBounds(buf: Uint8Array, h: PacketHeader): void {
  expect(h.packetStart).toBeGreaterThanOrEqual(0);
  expect(h.packetEnd).toBeLessThanOrEqual(buf.length);
  expect(h.packetEnd).toBeGreaterThan(h.packetStart);
  const views: Uint8Array[] = [h.dcid];
  if (h.type !== PacketType.OneRtt) views.push(h.scid);
  if (h.type === PacketType.Initial || h.type === PacketType.Retry) views.push(h.token);
  for (const v of views) {
    expect(v.buffer).toBe(buf.buffer);
    expect(v.byteOffset + v.length).toBeLessThanOrEqual(buf.byteOffset + h.packetEnd);
  }
  if (h.type === PacketType.OneRtt || h.type === PacketType.Initial || h.type === PacketType.ZeroRtt) {
    expect(h.pnOffset + MIN_PROTECTED_LENGTH).toBeLessThanOrEqual(h.packetEnd);
  }
  if (h.type === PacketType.Handshake)
    expect(h.pnOffset + MIN_PROTECTED_LENGTH).toBeLessThanOrEqual(h.packetEnd);
  if (
    h.type !== PacketType.OneRtt &&
    h.type !== PacketType.VersionNegotiation &&
    h.type !== PacketType.UnsupportedVersion
  ) {
    expect(isSupportedVersion(h.version)).toBe(true);
    expect(h.dcid.length).toBeLessThanOrEqual(MAX_CID_LENGTH);
    expect(h.scid.length).toBeLessThanOrEqual(MAX_CID_LENGTH);
  }
}

function expectDrop(buf: Uint8Array, opts: ParseOptions = OPTS, offset = 0): PacketDropError {
  try {
    parsePacketHeader(buf, offset, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(PacketDropError);
    expect((e as PacketDropError).code).toBe(TransportErrorCode.PROTOCOL_VIOLATION);
    return e as PacketDropError;
  }
  throw new Error("expected the packet to be dropped");
}

describe("versions (RFC 9000 §15, RFC 9369 §3)", () => {
  it("knows v1 and v2", () => {
    expect(QUIC_V1).toBe(1);
    expect(QUIC_V2).toBe(0x6b3343cf);
    expect(SUPPORTED_VERSIONS).toEqual([QUIC_V1, QUIC_V2]);
    expect(isSupportedVersion(QUIC_V1)).toBe(true);
    expect(isSupportedVersion(QUIC_V2)).toBe(true);
    expect(isSupportedVersion(0)).toBe(false);
    expect(isSupportedVersion(0x709a50c4)).toBe(false); // the v2 draft codepoint
  });

  it("recognizes reserved versions 0x?a?a?a?a", () => {
    expect(isReservedVersion(0x0a0a0a0a)).toBe(true);
    expect(isReservedVersion(0xfafafafa)).toBe(true);
    expect(isReservedVersion(0x1a2a3a4a)).toBe(true);
    expect(isReservedVersion(0x0a0a0a0b)).toBe(false);
    expect(isReservedVersion(QUIC_V1)).toBe(false);
    expect(isReservedVersion(QUIC_V2)).toBe(false);
  });

  it("greaseVersion always yields a reserved version", () => {
    expect(greaseVersion(0)).toBe(0x0a0a0a0a);
    expect(greaseVersion(0xffffffff)).toBe(0xfafafafa);
    expect(greaseVersion(hex("12345678"))).toBe(0x1a3a5a7a);
    expect(() => greaseVersion(hex("0102"))).toThrow(QuicUsageError);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (r) => {
        const v = greaseVersion(r);
        expect(isReservedVersion(v)).toBe(true);
        expect(v >>> 0).toBe(v);
      }),
    );
  });

  it("maps long packet types to wire bits: identity in v1, permuted in v2 (RFC 9369 §3.2)", () => {
    const v1 = [0, 1, 2, 3];
    const v2 = [1, 2, 3, 0];
    for (const t of [
      LongPacketType.Initial,
      LongPacketType.ZeroRtt,
      LongPacketType.Handshake,
      LongPacketType.Retry,
    ]) {
      expect(longTypeToWireBits(QUIC_V1, t)).toBe(v1[t]);
      expect(longTypeToWireBits(QUIC_V2, t)).toBe(v2[t]);
      expect(longTypeFromWireBits(QUIC_V1, v1[t])).toBe(t);
      expect(longTypeFromWireBits(QUIC_V2, v2[t])).toBe(t);
    }
    expect(() => longTypeToWireBits(0x0a0a0a0a, LongPacketType.Initial)).toThrow(QuicUsageError);
  });
});

describe("long headers (RFC 9000 §17.2)", () => {
  for (const version of [QUIC_V1, QUIC_V2]) {
    for (const type of [PacketType.Initial, PacketType.ZeroRtt, PacketType.Handshake] as const) {
      it(`round-trips type ${type} in version 0x${version.toString(16)}`, () => {
        const token = type === PacketType.Initial ? hex("deadbeef") : undefined;
        const buf = longPacket({
          type,
          version,
          dcid: CID_A,
          scid: CID_B,
          token,
          packetNumber: 0x1234,
          pnLength: 2,
        });
        const wireBits = longTypeToWireBits(version, type);
        expect(buf[0]).toBe(0xc0 | (wireBits << 4) | 0x01);
        const h = parsePacketHeader(buf, 0, OPTS) as LongHeader;
        expect(h.type).toBe(type);
        expect(h.version).toBe(version);
        expect(toHex(h.dcid)).toBe(toHex(CID_A));
        expect(toHex(h.scid)).toBe(toHex(CID_B));
        expect(toHex(h.token)).toBe(token === undefined ? "" : "deadbeef");
        expect(h.length).toBe(2 + 30 + 16);
        expect(h.packetEnd).toBe(buf.length);
        expect(h.pnOffset).toBe(buf.length - h.length);
        expect(h.firstByte).toBe(buf[0]);
        // Phase (b), here without header protection.
        const f = readProtectedFields(buf, 0, h.pnOffset, 0x1200);
        expect(f.pnLength).toBe(2);
        expect(f.truncatedPn).toBe(0x1234);
        expect(f.packetNumber).toBe(0x1234);
        expect(f.reservedBits).toBe(0);
        expect(f.keyPhase).toBe(0);
        expect(f.payloadOffset).toBe(h.pnOffset + 2);
      });
    }
  }

  it("encodes the Length field in 2 bytes by default, more when needed, or as asked", () => {
    const base = {
      type: PacketType.Handshake,
      version: QUIC_V1,
      dcid: CID_A,
      scid: CID_B,
      packetNumber: 0,
      pnLength: 1,
    } as const;
    const w = new ByteWriter(new Uint8Array(64));
    const pn1 = writeLongHeader(w, { ...base, length: 40 });
    expect(toHex(w.buf.subarray(pn1 - 2, pn1))).toBe("4028");
    const w2 = new ByteWriter(new Uint8Array(64));
    const pn2 = writeLongHeader(w2, { ...base, length: 20000 });
    expect(toHex(w2.buf.subarray(pn2 - 4, pn2))).toBe("80004e20");
    const w3 = new ByteWriter(new Uint8Array(64));
    const pn3 = writeLongHeader(w3, { ...base, length: 40, lengthSize: 1 });
    expect(toHex(w3.buf.subarray(pn3 - 1, pn3))).toBe("28");
    patchLongHeaderLength(w.buf, pn1, 2, 1000);
    expect(toHex(w.buf.subarray(pn1 - 2, pn1))).toBe("43e8");
    expect(() => patchLongHeaderLength(w.buf, pn1, 2, 20000)).toThrow(QuicUsageError);
  });

  it("clears the fixed bit only when asked (RFC 9287) and writes reserved bits 0", () => {
    const buf = longPacket({
      type: PacketType.Handshake,
      version: QUIC_V1,
      dcid: CID_A,
      scid: CID_B,
      packetNumber: 1,
      pnLength: 4,
      fixedBit: false,
    });
    expect(buf[0]).toBe(0x80 | 0x20 | 0x03);
    expectDrop(buf);
    const h = parsePacketHeader(buf, 0, { localCidLength: 8, allowGreasedQuicBit: true });
    expect(h.type).toBe(PacketType.Handshake);
  });

  it("rejects bad encoder input as a usage error", () => {
    const w = new ByteWriter(new Uint8Array(100));
    const ok = {
      type: PacketType.Initial,
      version: QUIC_V1,
      dcid: CID_A,
      scid: CID_B,
      packetNumber: 0,
      pnLength: 1,
      length: 30,
    } as const;
    expect(() => writeLongHeader(w, { ...ok, version: 0xff00001d })).toThrow(QuicUsageError);
    expect(() => writeLongHeader(w, { ...ok, dcid: new Uint8Array(21) })).toThrow(QuicUsageError);
    expect(() => writeLongHeader(w, { ...ok, type: PacketType.Handshake, token: hex("01") })).toThrow(
      QuicUsageError,
    );
    expect(() => writeLongHeader(w, { ...ok, pnLength: 5 as 4 })).toThrow(QuicUsageError);
    expect(() => writeLongHeader(new ByteWriter(new Uint8Array(20)), ok)).toThrow(BufferOverflowError);
    expect(() =>
      writeShortHeader(new ByteWriter(new Uint8Array(9)), {
        dcid: CID_A,
        packetNumber: 0,
        pnLength: 2,
        keyPhase: 0,
      }),
    ).toThrow(BufferOverflowError);
  });

  it("drops v1/v2 connection IDs longer than 20 bytes (RFC 9000 §17.2)", () => {
    const buf = longPacket({
      type: PacketType.Handshake,
      version: QUIC_V1,
      dcid: CID_A,
      scid: CID_B,
      packetNumber: 1,
      pnLength: 1,
    });
    const bad = new Uint8Array(buf.length + 13);
    bad.set(buf.subarray(0, 5));
    bad[5] = 21;
    bad.set(new Uint8Array(21), 6);
    bad.set(buf.subarray(6 + 8), 6 + 21);
    expect(expectDrop(bad).reason).toMatch(/connection ID length 21/);
  });

  it("drops a Length that runs past the datagram or leaves no room for the sample", () => {
    const buf = longPacket({
      type: PacketType.Handshake,
      version: QUIC_V1,
      dcid: CID_A,
      scid: CID_B,
      packetNumber: 1,
      pnLength: 1,
    });
    const h = parsePacketHeader(buf, 0, OPTS) as LongHeader;
    expectDrop(buf.subarray(0, buf.length - 1)); // Length now exceeds the datagram
    const short = buf.slice();
    patchLongHeaderLength(short, h.pnOffset, 2, MIN_PROTECTED_LENGTH - 1);
    expectDrop(short);
    patchLongHeaderLength(short, h.pnOffset, 2, MIN_PROTECTED_LENGTH);
    expect(parsePacketHeader(short, 0, OPTS).packetEnd).toBe(h.pnOffset + MIN_PROTECTED_LENGTH);
  });

  it("parses unsupported versions by the invariants only, with connection IDs up to 255 bytes (RFC 8999 §5.1)", () => {
    for (const [version, cidLength] of [
      [0x0a1a2a3a, 255],
      [0xff00001d, 21],
      [0x709a50c4, 0],
    ] as const) {
      const dcid = new Uint8Array(cidLength).fill(0xd1);
      const scid = new Uint8Array(cidLength === 0 ? 3 : cidLength - 1).fill(0x5c);
      const buf = new Uint8Array(1200);
      buf[0] = 0x80; // no fixed bit: not ours to judge in another version
      new DataView(buf.buffer).setUint32(1, version);
      buf[5] = dcid.length;
      buf.set(dcid, 6);
      buf[6 + dcid.length] = scid.length;
      buf.set(scid, 7 + dcid.length);
      const h = parsePacketHeader(buf, 0, OPTS) as UnsupportedVersionHeader;
      expect(h.type).toBe(PacketType.UnsupportedVersion);
      expect(h.version).toBe(version);
      expect(toHex(h.dcid)).toBe(toHex(dcid));
      expect(toHex(h.scid)).toBe(toHex(scid));
      expect(h.packetEnd).toBe(1200);
      // The server answers with Version Negotiation echoing the connection IDs swapped.
      const vn = versionNegotiationResponse(h, SUPPORTED_VERSIONS, 0x15);
      const p = parsePacketHeader(vn, 0, OPTS) as VersionNegotiationHeader;
      expect(p.type).toBe(PacketType.VersionNegotiation);
      expect(toHex(p.dcid)).toBe(toHex(scid));
      expect(toHex(p.scid)).toBe(toHex(dcid));
      expect(p.versions).toEqual([QUIC_V1, QUIC_V2]);
      expect(vn[0]).toBe(0xc0 | 0x15);
    }
    // Truncated invariant fields are still dropped.
    const t = hex("800a0a0a0a05aabb");
    expectDrop(t);
  });
});

describe("short headers (RFC 9000 §17.3.1)", () => {
  it("round-trips with spin bit, key phase and every packet number length", () => {
    for (const pnLength of [1, 2, 3, 4] as const) {
      for (const keyPhase of [0, 1] as const) {
        for (const spinBit of [0, 1] as const) {
          const buf = new Uint8Array(64);
          const w = new ByteWriter(buf);
          const pnOffset = writeShortHeader(w, {
            dcid: CID_A,
            packetNumber: 0xabcdef12,
            pnLength,
            keyPhase,
            spinBit,
          });
          expect(pnOffset).toBe(9);
          expect(buf[0]).toBe(0x40 | (spinBit << 5) | (keyPhase << 2) | (pnLength - 1));
          w.writeZeros(30);
          const h = parsePacketHeader(buf.subarray(0, w.pos), 0, OPTS) as ShortHeader;
          expect(h.type).toBe(PacketType.OneRtt);
          expect(toHex(h.dcid)).toBe(toHex(CID_A));
          expect(h.pnOffset).toBe(9);
          expect(h.packetEnd).toBe(w.pos);
          const f = readProtectedFields(buf, 0, h.pnOffset, 0xabcdef00);
          expect(f.keyPhase).toBe(keyPhase);
          expect(f.pnLength).toBe(pnLength);
          expect(f.packetNumber).toBe(0xabcdef12);
          expect(f.reservedBits).toBe(0);
        }
      }
    }
  });

  it("needs the local connection ID length and room for the sample (RFC 9001 §5.4.2)", () => {
    const buf = shortPacket(CID_A, 5, 0); // pn 2 + tag 16 = 18 < 20
    expectDrop(buf);
    const ok = shortPacket(CID_A, 5, 2);
    expect(parsePacketHeader(ok, 0, OPTS).type).toBe(PacketType.OneRtt);
    expect((parsePacketHeader(ok, 0, { localCidLength: 0 }) as ShortHeader).pnOffset).toBe(1);
    expect(() => parsePacketHeader(ok, 0, { localCidLength: -1 })).toThrow(QuicUsageError);
  });

  it("drops a cleared fixed bit unless grease_quic_bit was advertised (RFC 9000 §17.3.1, RFC 9287)", () => {
    const buf = new Uint8Array(64);
    const w = new ByteWriter(buf);
    writeShortHeader(w, { dcid: CID_A, packetNumber: 1, pnLength: 1, keyPhase: 0, fixedBit: false });
    expect(buf[0] & FIXED_BIT).toBe(0);
    expectDrop(buf);
    expect(parsePacketHeader(buf, 0, { localCidLength: 8, allowGreasedQuicBit: true }).type).toBe(
      PacketType.OneRtt,
    );
  });

  it("reports reserved bits after header protection removal (phase b)", () => {
    const buf = shortPacket(CID_A, 5);
    buf[0] |= 0x18;
    expect(readProtectedFields(buf, 0, 9, 4).reservedBits).toBe(0x18);
    const long = longPacket({
      type: PacketType.Handshake,
      version: QUIC_V2,
      dcid: CID_A,
      scid: CID_B,
      packetNumber: 1,
      pnLength: 1,
    });
    long[0] |= 0x0c;
    const h = parsePacketHeader(long, 0, OPTS) as LongHeader;
    expect(readProtectedFields(long, 0, h.pnOffset, -1).reservedBits).toBe(0x0c);
    const reused = readProtectedFields(long, 0, h.pnOffset, -1);
    expect(readProtectedFields(buf, 0, 9, 4, reused)).toBe(reused);
    expect(() => readProtectedFields(buf.subarray(0, 10), 0, 9, 4)).toThrow(PacketDropError);
  });
});

describe("Version Negotiation (RFC 9000 §17.2.1, RFC 8999 §6)", () => {
  it("round-trips, ignoring the unused bits", () => {
    const versions = [QUIC_V2, QUIC_V1, greaseVersion(0x12345678)];
    const vn = encodeVersionNegotiation(CID_B, CID_A, versions, 0x3f);
    expect(toHex(vn.subarray(0, 6))).toBe("ff0000000004");
    for (const first of [0x80, 0xff, 0xc0, 0xbf]) {
      vn[0] = first;
      const h = parsePacketHeader(vn, 0, OPTS) as VersionNegotiationHeader;
      expect(h.type).toBe(PacketType.VersionNegotiation);
      expect(h.version).toBe(0);
      expect(toHex(h.dcid)).toBe(toHex(CID_B));
      expect(toHex(h.scid)).toBe(toHex(CID_A));
      expect(h.versions).toEqual(versions);
      expect(h.packetEnd).toBe(vn.length);
    }
  });

  it("drops an empty or truncated version list", () => {
    const vn = encodeVersionNegotiation(CID_B, CID_A, [QUIC_V1]);
    expectDrop(vn.subarray(0, vn.length - 4));
    for (let cut = 1; cut < 4; cut++) expectDrop(vn.subarray(0, vn.length - cut));
    expect(() => encodeVersionNegotiation(CID_B, CID_A, [])).toThrow(QuicUsageError);
    expect(() => encodeVersionNegotiation(new Uint8Array(256), CID_A, [1])).toThrow(QuicUsageError);
  });

  it("answers only packets of unsupported versions", () => {
    const vn = encodeVersionNegotiation(CID_B, CID_A, [QUIC_V1]);
    const h = parsePacketHeader(vn, 0, OPTS);
    expect(() => versionNegotiationResponse(h as unknown as UnsupportedVersionHeader)).toThrow(
      QuicUsageError,
    );
  });
});

describe("Retry (RFC 9000 §17.2.5)", () => {
  const provider = defaultCryptoProvider;
  for (const version of [QUIC_V1, QUIC_V2]) {
    it(`builds, parses and validates a v${version === QUIC_V1 ? 1 : 2} Retry`, () => {
      const odcid = hex("8394c8f03e515708");
      const retry = buildRetryPacket(
        provider,
        { version, dcid: CID_B, scid: CID_A, token: hex("0011223344") },
        odcid,
      );
      expect((retry[0] >> 4) & 3).toBe(longTypeToWireBits(version, LongPacketType.Retry));
      const h = parsePacketHeader(retry, 0, OPTS) as RetryHeader;
      expect(h.type).toBe(PacketType.Retry);
      expect(h.version).toBe(version);
      expect(toHex(h.dcid)).toBe(toHex(CID_B));
      expect(toHex(h.scid)).toBe(toHex(CID_A));
      expect(toHex(h.token)).toBe("0011223344");
      expect(h.integrityTag.length).toBe(16);
      expect(h.packetEnd).toBe(retry.length);
      expect(validateRetryPacket(provider, retry, h, odcid)).toBe(true);
      expect(validateRetryPacket(provider, retry, h, CID_A)).toBe(false);
    });
  }

  it("drops a Retry with an empty token or no room for the tag (RFC 9000 §17.2.5.2)", () => {
    const retry = buildRetryPacket(
      provider,
      { version: QUIC_V1, dcid: CID_B, scid: CID_A, token: hex("aa") },
      hex("99"),
    );
    const noToken = new Uint8Array(retry.length - 1);
    noToken.set(retry.subarray(0, retry.length - 17));
    noToken.set(retry.subarray(retry.length - 16), retry.length - 17);
    expect(expectDrop(noToken).reason).toMatch(/empty token/);
    expectDrop(retry.subarray(0, 5 + 1 + 4 + 1 + 8 + 10));
  });

  it("refuses to build a Retry a client would discard", () => {
    expect(() =>
      buildRetryPacket(
        provider,
        { version: QUIC_V1, dcid: CID_B, scid: CID_A, token: new Uint8Array(0) },
        hex("99"),
      ),
    ).toThrow(QuicUsageError);
    expect(() =>
      buildRetryPacket(provider, { version: QUIC_V1, dcid: CID_B, scid: CID_A, token: hex("01") }, CID_A),
    ).toThrow(QuicUsageError);
  });
});

describe("coalesced packets (RFC 9000 §12.2)", () => {
  const initial = longPacket(
    { type: PacketType.Initial, version: QUIC_V1, dcid: CID_A, scid: CID_B, packetNumber: 0, pnLength: 1 },
    40,
  );
  const handshake = longPacket(
    { type: PacketType.Handshake, version: QUIC_V1, dcid: CID_A, scid: CID_B, packetNumber: 0, pnLength: 2 },
    25,
  );
  const oneRtt = shortPacket(CID_A, 3, 50);
  const concat = (...parts: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  };

  it("splits Initial ‖ Handshake ‖ 1-RTT at the Length boundaries", () => {
    const dgram = concat(initial, handshake, oneRtt);
    const hs = splitCoalescedPackets(dgram, OPTS);
    expect(hs.map((h) => h.type)).toEqual([PacketType.Initial, PacketType.Handshake, PacketType.OneRtt]);
    expect(hs.map((h) => [h.packetStart, h.packetEnd])).toEqual([
      [0, initial.length],
      [initial.length, initial.length + handshake.length],
      [initial.length + handshake.length, dgram.length],
    ]);
    // Phase (a) of each packet, one by one, gives the same.
    let offset = 0;
    for (const h of hs) {
      expect(parsePacketHeader(dgram, offset, OPTS)).toEqual(h);
      offset = h.packetEnd;
    }
  });

  it("keeps the packets before a malformed one and ignores a different DCID", () => {
    const junk = hex("00ffee");
    expect(splitCoalescedPackets(concat(initial, handshake, junk), OPTS).map((h) => h.type)).toEqual([
      PacketType.Initial,
      PacketType.Handshake,
    ]);
    const other = longPacket({
      type: PacketType.Handshake,
      version: QUIC_V1,
      dcid: CID_B,
      scid: CID_B,
      packetNumber: 0,
      pnLength: 2,
    });
    expect(splitCoalescedPackets(concat(initial, other, handshake), OPTS).map((h) => h.packetStart)).toEqual([
      0,
      initial.length + other.length,
    ]);
    expect(splitCoalescedPackets(new Uint8Array(0), OPTS)).toEqual([]);
    expect(splitCoalescedPackets(junk, OPTS)).toEqual([]);
  });
});

describe("hostile input: only PacketDropError, never past the end", () => {
  const opts = fc.record({
    localCidLength: fc.integer({ min: 0, max: 20 }),
    allowGreasedQuicBit: fc.boolean(),
  });

  it("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), opts, (bytes, o) => {
        if (bytes.length > 0) parseOrDrop(bytes, 0, o);
        expect(() => splitCoalescedPackets(bytes, o)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });

  it("random bytes behind a plausible long header prefix", () => {
    const prefix = fc.record({
      first: fc.integer({ min: 0x80, max: 0xff }),
      version: fc.constantFrom(QUIC_V1, QUIC_V2, 0, 0x0a0a0a0a),
    });
    fc.assert(
      fc.property(
        prefix,
        fc.uint8Array({ minLength: 0, maxLength: 120 }),
        opts,
        ({ first, version }, rest, o) => {
          const buf = new Uint8Array(5 + rest.length);
          buf[0] = first;
          new DataView(buf.buffer).setUint32(1, version);
          buf.set(rest, 5);
          parseOrDrop(buf, 0, o);
        },
      ),
      { numRuns: 3000 },
    );
  });

  const validPackets = (): Uint8Array[] => {
    const provider = defaultCryptoProvider;
    const out: Uint8Array[] = [];
    for (const version of [QUIC_V1, QUIC_V2]) {
      out.push(
        longPacket({
          type: PacketType.Initial,
          version,
          dcid: CID_A,
          scid: CID_B,
          token: hex("77"),
          packetNumber: 9,
          pnLength: 4,
        }),
      );
      out.push(
        longPacket({
          type: PacketType.ZeroRtt,
          version,
          dcid: CID_A,
          scid: CID_B,
          packetNumber: 9,
          pnLength: 1,
        }),
      );
      out.push(
        longPacket({
          type: PacketType.Handshake,
          version,
          dcid: CID_A,
          scid: new Uint8Array(0),
          packetNumber: 9,
          pnLength: 3,
        }),
      );
      out.push(
        buildRetryPacket(provider, { version, dcid: CID_B, scid: CID_A, token: hex("0102") }, hex("0909")),
      );
    }
    out.push(shortPacket(CID_A, 77));
    out.push(encodeVersionNegotiation(CID_A, CID_B, [QUIC_V1, QUIC_V2]));
    return out;
  };

  it("every truncation of every packet type", () => {
    for (const p of validPackets()) {
      for (let n = 1; n <= p.length; n++) {
        // Copy so that a read past `n` would be a read past the end of the buffer.
        parseOrDrop(p.slice(0, n), 0, OPTS);
      }
    }
  });

  it("random mutations of every packet type", () => {
    const packets = validPackets();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: packets.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        opts,
        (i, edits, cut, o) => {
          const p = packets[i].slice();
          for (const [pos, val] of edits) p[pos % p.length] = val;
          const buf = p.slice(0, 1 + (cut % p.length));
          const h = parseOrDrop(buf, 0, o);
          if (
            h !== undefined &&
            (h.type === PacketType.OneRtt ||
              h.type === PacketType.Initial ||
              h.type === PacketType.ZeroRtt ||
              h.type === PacketType.Handshake)
          ) {
            const f = readProtectedFields(buf, h.packetStart, h.pnOffset, -1);
            expect(f.payloadOffset).toBeLessThanOrEqual(h.packetEnd);
          }
          expect(() => splitCoalescedPackets(buf, o)).not.toThrow();
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("reads nothing outside the packet when it is a view into a larger buffer", () => {
    for (const p of validPackets()) {
      const big = new Uint8Array(p.length + 20).fill(0xee);
      big.set(p, 10);
      const view = big.subarray(10, 10 + p.length - 1);
      parseOrDrop(view, 0, OPTS);
    }
  });

  it("rejects an offset outside the datagram as a usage error, the empty rest as a drop", () => {
    const p = shortPacket(CID_A, 1);
    expect(() => parsePacketHeader(p, p.length + 1, OPTS)).toThrow(QuicUsageError);
    expect(() => parsePacketHeader(p, -1, OPTS)).toThrow(QuicUsageError);
    expectDrop(p, OPTS, p.length);
  });
});
