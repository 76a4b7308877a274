import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter, MAX_VARINT } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { H3Error, H3ErrorCode, isGreaseValue } from "./error-codes.ts";
import { decodeFrame, encodeFrame, frameSize } from "./frames.ts";
import {
  DEFAULT_SETTINGS,
  type H3Settings,
  HTTP2_RESERVED_SETTING_IDS,
  isHttp2ReservedSettingId,
  isReservedSettingId,
  type SettingEntry,
  SettingId,
  settingName,
  settingsFromEntries,
  settingsToEntries,
  validateSettingEntries,
} from "./settings.ts";

const e = (id: number | bigint, value: number | bigint): SettingEntry => ({
  id: BigInt(id),
  value: BigInt(value),
});

function settingsErrorOf(entries: SettingEntry[]): H3Error {
  try {
    validateSettingEntries(entries);
  } catch (err) {
    if (err instanceof H3Error) return err;
    throw err;
  }
  throw new Error("expected H3_SETTINGS_ERROR");
}

const BOOLEAN_IDS = [
  SettingId.ENABLE_CONNECT_PROTOCOL,
  SettingId.H3_DATAGRAM,
  SettingId.H3_DATAGRAM_DRAFT04,
  SettingId.ENABLE_WEBTRANSPORT_DRAFT02,
  SettingId.WT_ENABLED,
];

describe("setting identifiers", () => {
  it("has the registered and draft values", () => {
    expect(SettingId.QPACK_MAX_TABLE_CAPACITY).toBe(0x01);
    expect(SettingId.MAX_FIELD_SECTION_SIZE).toBe(0x06);
    expect(SettingId.QPACK_BLOCKED_STREAMS).toBe(0x07);
    expect(SettingId.ENABLE_CONNECT_PROTOCOL).toBe(0x08);
    expect(SettingId.H3_DATAGRAM).toBe(0x33);
    expect(SettingId.H3_DATAGRAM_DRAFT04).toBe(0xffd277);
    expect(SettingId.ENABLE_WEBTRANSPORT_DRAFT02).toBe(0x2b603742);
    expect(SettingId.WEBTRANSPORT_MAX_SESSIONS_DRAFT07).toBe(0xc671706a);
    expect(SettingId.WT_MAX_SESSIONS).toBe(0x14e9cd29);
    expect(SettingId.WT_ENABLED).toBe(0x2c7cf000);
    expect(SettingId.WT_INITIAL_MAX_DATA).toBe(0x2b61);
    expect(SettingId.WT_INITIAL_MAX_STREAMS_UNI).toBe(0x2b64);
    expect(SettingId.WT_INITIAL_MAX_STREAMS_BIDI).toBe(0x2b65);
    expect(HTTP2_RESERVED_SETTING_IDS).toEqual([2, 3, 4, 5]);
  });

  it("classifies and names identifiers", () => {
    expect(isReservedSettingId(0x21)).toBe(true);
    expect(isReservedSettingId(0x33)).toBe(false);
    expect(isHttp2ReservedSettingId(0x02)).toBe(true);
    expect(isHttp2ReservedSettingId(0x05n)).toBe(true);
    expect(isHttp2ReservedSettingId(0x06)).toBe(false);
    expect(isHttp2ReservedSettingId(0x00)).toBe(false);
    expect(settingName(0x33)).toBe("H3_DATAGRAM");
    expect(settingName(0x40n)).toBe("GREASE(0x40)");
    expect(settingName(0x99)).toBe("0x99");
  });
});

describe("settings validation", () => {
  it("rejects duplicate identifiers (§7.2.4)", () => {
    expect(settingsErrorOf([e(6, 1), e(6, 1)]).code).toBe(H3ErrorCode.H3_SETTINGS_ERROR);
    expect(settingsErrorOf([e(0x21, 1), e(1, 0), e(0x21, 2)]).code).toBe(H3ErrorCode.H3_SETTINGS_ERROR);
  });

  it("rejects HTTP/2 settings 0x02–0x05 (§7.2.4.1)", () => {
    for (const id of [2, 3, 4, 5]) {
      const err = settingsErrorOf([e(id, 0)]);
      expect(err.code).toBe(H3ErrorCode.H3_SETTINGS_ERROR);
      expect(err.frameType).toBe(0x04);
    }
  });

  it("accepts the reserved 0x00 and 0x01/0x06 (HTTP/2 ids with an HTTP/3 meaning)", () => {
    expect(() => validateSettingEntries([e(0, 5), e(1, 4096), e(6, 16384)])).not.toThrow();
  });

  it("requires 0 or 1 for boolean settings", () => {
    for (const id of BOOLEAN_IDS) {
      expect(() => validateSettingEntries([e(id, 0)])).not.toThrow();
      expect(() => validateSettingEntries([e(id, 1)])).not.toThrow();
      expect(settingsErrorOf([e(id, 2)]).code).toBe(H3ErrorCode.H3_SETTINGS_ERROR);
      expect(settingsErrorOf([e(id, MAX_VARINT)]).code).toBe(H3ErrorCode.H3_SETTINGS_ERROR);
    }
  });

  it("ignores unknown and reserved identifiers with any value (§7.2.4)", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MAX_VARINT }).filter((id) => !(id >= 2n && id <= 5n)),
        fc.bigInt({ min: 0n, max: 1n }),
        (id, value) => {
          expect(() => validateSettingEntries([{ id, value }])).not.toThrow();
        },
      ),
    );
    const s = settingsFromEntries([e(0x21, 12345), e(0x1234, MAX_VARINT)]);
    expect(s.unknown).toEqual([e(0x21, 12345), e(0x1234, MAX_VARINT)]);
  });
});

describe("typed settings", () => {
  it("applies the defaults (§7.2.4.2)", () => {
    const s = settingsFromEntries([]);
    expect(s).toEqual({ ...DEFAULT_SETTINGS, unknown: [] });
    expect(s.maxFieldSectionSize).toBe(Number.POSITIVE_INFINITY);
    expect(s.qpackMaxTableCapacity).toBe(0);
    expect(s.h3Datagram).toBe(false);
  });

  it("reads a Chromium-like SETTINGS frame", () => {
    // Chromium's WebTransport client: QPACK 65536 / 100 blocked / 16384 field section,
    // H3_DATAGRAM=1 (RFC and draft-04), ENABLE_WEBTRANSPORT draft-02 = 1, one GREASE setting.
    const s = settingsFromEntries([
      e(1, 65536),
      e(6, 16384),
      e(7, 100),
      e(0x33, 1),
      e(0xffd277, 1),
      e(0x2b603742, 1),
      e(0x8c50ef42en, 3325020364),
    ]);
    expect(s.qpackMaxTableCapacity).toBe(65536);
    expect(s.maxFieldSectionSize).toBe(16384);
    expect(s.qpackBlockedStreams).toBe(100);
    expect(s.h3Datagram).toBe(true);
    expect(s.h3DatagramDraft04).toBe(true);
    expect(s.enableWebTransportDraft02).toBe(true);
    expect(s.enableConnectProtocol).toBe(false);
    expect(s.unknown).toEqual([e(0x8c50ef42en, 3325020364)]);
    expect(isGreaseValue(0x8c50ef42en)).toBe(true);
  });

  it("saturates values above 2^53-1", () => {
    expect(settingsFromEntries([e(6, MAX_VARINT)]).maxFieldSectionSize).toBe(Number.MAX_SAFE_INTEGER);
  });

  const arbSettings: fc.Arbitrary<Partial<H3Settings>> = fc.record(
    {
      qpackMaxTableCapacity: fc.maxSafeNat(),
      maxFieldSectionSize: fc.oneof(fc.maxSafeNat(), fc.constant(Number.POSITIVE_INFINITY)),
      qpackBlockedStreams: fc.nat(),
      enableConnectProtocol: fc.boolean(),
      h3Datagram: fc.boolean(),
      h3DatagramDraft04: fc.boolean(),
      enableWebTransportDraft02: fc.boolean(),
      webTransportMaxSessionsDraft07: fc.nat(),
      wtMaxSessions: fc.nat(),
      wtEnabled: fc.boolean(),
      wtInitialMaxData: fc.maxSafeNat(),
      wtInitialMaxStreamsUni: fc.nat(),
      wtInitialMaxStreamsBidi: fc.nat(),
      unknown: fc.uniqueArray(
        fc.record({
          id: fc.bigInt({ min: 0x100000000n, max: MAX_VARINT }),
          value: fc.bigInt({ min: 0n, max: MAX_VARINT }),
        }),
        { selector: (x) => x.id, maxLength: 3 },
      ),
    },
    { requiredKeys: [] },
  );

  it("round-trips through entries and a SETTINGS frame, with GREASE", () => {
    fc.assert(
      fc.property(
        arbSettings,
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.boolean(),
        (s, rnd, grease) => {
          let off = 0;
          const randomBytes = (n: number): Uint8Array => {
            const out = rnd.subarray(off % 56, (off % 56) + n);
            off += n;
            return out;
          };
          const entries = settingsToEntries(s, grease ? { grease: randomBytes } : {});
          const frame = { kind: "settings" as const, entries };
          const w = new ByteWriter(new Uint8Array(frameSize(frame)));
          encodeFrame(w, frame);
          const back = decodeFrame(new ByteReader(w.buf));
          expect(back).toEqual(frame);
          const typed = settingsFromEntries(entries);
          const greased = typed.unknown.filter((x) => !(s.unknown ?? []).some((u) => u.id === x.id));
          expect(greased.length).toBe(grease ? 1 : 0);
          if (grease) expect(isGreaseValue(greased[0].id)).toBe(true);
          const expected = { ...DEFAULT_SETTINGS, ...s, unknown: [...(s.unknown ?? []), ...greased] };
          expect(typed).toEqual(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("omits unlimited MAX_FIELD_SECTION_SIZE and keeps explicit defaults", () => {
    expect(settingsToEntries({ maxFieldSectionSize: Number.POSITIVE_INFINITY })).toEqual([]);
    expect(settingsToEntries({ h3Datagram: false, qpackBlockedStreams: 0 })).toEqual([
      e(0x07, 0),
      e(0x33, 0),
    ]);
  });

  it("refuses invalid local settings with QuicUsageError", () => {
    expect(() => settingsToEntries({ qpackMaxTableCapacity: -1 })).toThrow(QuicUsageError);
    expect(() => settingsToEntries({ qpackMaxTableCapacity: 1.5 })).toThrow(QuicUsageError);
    expect(() => settingsToEntries({ unknown: [e(2, 0)] })).toThrow(QuicUsageError);
    expect(() => settingsToEntries({ h3Datagram: true, unknown: [e(0x33, 1)] })).toThrow(QuicUsageError);
    expect(() => settingsToEntries({ unknown: [e(0x2b603742, 7)] })).toThrow(QuicUsageError);
    expect(() => settingsToEntries({ unknown: [e(MAX_VARINT + 1n, 0)] })).toThrow(QuicUsageError);
  });
});
