import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter, MAX_VARINT } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { H3Error, H3ErrorCode } from "./error-codes.ts";
import {
  assertFrameAllowed,
  decodeFrame,
  decodeFramePayload,
  encodeFrame,
  encodeFrameHeader,
  FrameType,
  frameHeaderSize,
  frameSize,
  frameTypeName,
  frameTypeOf,
  type H3Frame,
  type H3StreamKind,
  HTTP2_RESERVED_FRAME_TYPES,
  isHttp2ReservedFrameType,
  isReservedFrameType,
} from "./frames.ts";
import { type SettingEntry, SettingId } from "./settings.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function encode(f: H3Frame): Uint8Array {
  const size = frameSize(f);
  const w = new ByteWriter(new Uint8Array(size));
  encodeFrame(w, f);
  expect(w.pos).toBe(size);
  return w.buf;
}

function h3ErrorOf(f: () => unknown): H3Error {
  try {
    f();
  } catch (e) {
    if (e instanceof H3Error) return e;
    throw e;
  }
  throw new Error("expected an H3Error");
}

const BOOLEAN_IDS = new Set<bigint>(
  [
    SettingId.ENABLE_CONNECT_PROTOCOL,
    SettingId.H3_DATAGRAM,
    SettingId.H3_DATAGRAM_DRAFT04,
    SettingId.ENABLE_WEBTRANSPORT_DRAFT02,
    SettingId.WT_ENABLED,
  ].map(BigInt),
);

const varintBig = fc.oneof(fc.bigInt({ min: 0n, max: 0x3fn }), fc.bigInt({ min: 0n, max: MAX_VARINT }));
const anyId = fc.oneof(fc.nat({ max: 100 }), fc.maxSafeNat());
const ascii = fc.string({
  unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
  maxLength: 40,
});
const settingIdArb = fc.oneof(
  fc.constantFrom(...Object.values(SettingId).map(BigInt), 0n),
  fc.bigInt({ min: 0n, max: MAX_VARINT }),
);
const settingEntries: fc.Arbitrary<SettingEntry[]> = fc
  .uniqueArray(fc.record({ id: settingIdArb.filter((id) => id < 2n || id > 5n), value: varintBig }), {
    selector: (e) => e.id,
    maxLength: 12,
  })
  .map((es) => es.map((e) => (BOOLEAN_IDS.has(e.id) ? { id: e.id, value: e.value & 1n } : e)));

/** Types that decode as "unknown". */
const unknownType = fc
  .oneof(fc.bigInt({ min: 0n, max: 0x100n }), fc.bigInt({ min: 0n, max: MAX_VARINT }))
  .filter((t) => t > 0x0dn && t !== 0x41n && t !== 0xf0700n && t !== 0xf0701n);

const arbFrame: fc.Arbitrary<H3Frame> = fc.oneof(
  fc.record({ kind: fc.constant("data" as const), data: fc.uint8Array({ maxLength: 100 }) }),
  fc.record({ kind: fc.constant("headers" as const), fieldSection: fc.uint8Array({ maxLength: 100 }) }),
  fc.record({ kind: fc.constant("cancel_push" as const), pushId: anyId }),
  fc.record({ kind: fc.constant("max_push_id" as const), pushId: anyId }),
  fc.record({ kind: fc.constant("settings" as const), entries: settingEntries }),
  fc.record({
    kind: fc.constant("push_promise" as const),
    pushId: anyId,
    fieldSection: fc.uint8Array({ maxLength: 100 }),
  }),
  fc.record({ kind: fc.constant("goaway" as const), id: varintBig }),
  fc.record({
    kind: fc.constant("priority_update" as const),
    push: fc.boolean(),
    elementId: anyId,
    value: ascii,
  }),
  fc.record({
    kind: fc.constant("unknown" as const),
    type: unknownType,
    payload: fc.uint8Array({ maxLength: 100 }),
  }),
);

describe("frame types", () => {
  it("has the registered values", () => {
    expect(FrameType.DATA).toBe(0x00);
    expect(FrameType.HEADERS).toBe(0x01);
    expect(FrameType.CANCEL_PUSH).toBe(0x03);
    expect(FrameType.SETTINGS).toBe(0x04);
    expect(FrameType.PUSH_PROMISE).toBe(0x05);
    expect(FrameType.GOAWAY).toBe(0x07);
    expect(FrameType.MAX_PUSH_ID).toBe(0x0d);
    expect(FrameType.PRIORITY_UPDATE_REQUEST).toBe(0xf0700);
    expect(FrameType.PRIORITY_UPDATE_PUSH).toBe(0xf0701);
    expect(FrameType.WEBTRANSPORT_STREAM).toBe(0x41);
    expect(HTTP2_RESERVED_FRAME_TYPES).toEqual([0x02, 0x06, 0x08, 0x09]);
  });

  it("classifies and names types", () => {
    expect(isReservedFrameType(0x21)).toBe(true);
    expect(isReservedFrameType(0x41)).toBe(false);
    expect(isHttp2ReservedFrameType(0x06)).toBe(true);
    expect(isHttp2ReservedFrameType(0x07)).toBe(false);
    expect(frameTypeName(0x04)).toBe("SETTINGS");
    expect(frameTypeName(0x02)).toBe("HTTP2(0x02)");
    expect(frameTypeName(0x40n)).toBe("GREASE(0x40)");
    expect(frameTypeName(0xabc)).toBe("0xabc");
  });
});

describe("frame codec", () => {
  it("round-trips every frame kind with exact frameSize", () => {
    fc.assert(
      fc.property(arbFrame, (f) => {
        const bytes = encode(f);
        const r = new ByteReader(bytes);
        const back = decodeFrame(r);
        expect(r.pos).toBe(bytes.length);
        expect(back).toEqual(f);
        expect(frameTypeOf(back)).toEqual(frameTypeOf(f));
      }),
      { numRuns: 2000 },
    );
  });

  it("round-trips WEBTRANSPORT_STREAM (no Length field)", () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (sessionId) => {
        const f: H3Frame = { kind: "webtransport_stream", sessionId };
        const bytes = encode(f);
        expect(decodeFrame(new ByteReader(bytes), { webTransport: true })).toEqual(f);
      }),
    );
    expect(toHex(encode({ kind: "webtransport_stream", sessionId: 4 }))).toBe("404104");
  });

  it("decodes a sequence of frames", () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { maxLength: 8 }), (frames) => {
        const bytes = new Uint8Array(Buffer.concat(frames.map(encode)));
        const r = new ByteReader(bytes);
        const out: H3Frame[] = [];
        while (!r.done) out.push(decodeFrame(r));
        expect(out).toEqual(frames);
      }),
    );
  });

  it("encodes a SETTINGS frame to known bytes", () => {
    const f: H3Frame = {
      kind: "settings",
      entries: [
        { id: 0x01n, value: 4096n }, // QPACK_MAX_TABLE_CAPACITY
        { id: 0x06n, value: 16384n }, // MAX_FIELD_SECTION_SIZE
        { id: 0x07n, value: 100n }, // QPACK_BLOCKED_STREAMS
        { id: 0x33n, value: 1n }, // H3_DATAGRAM
      ],
    };
    const expected = "04 0d 01 5000 06 80004000 07 4064 33 01".replace(/ /g, "");
    expect(toHex(encode(f))).toBe(expected);
    expect(decodeFrame(new ByteReader(hex(expected)))).toEqual(f);
  });

  it("encodes GOAWAY to known bytes, including the §5.2 shutdown sentinels", () => {
    expect(toHex(encode({ kind: "goaway", id: 0n }))).toBe("070100");
    expect(toHex(encode({ kind: "goaway", id: 4n }))).toBe("070104");
    expect(toHex(encode({ kind: "goaway", id: (1n << 62n) - 4n }))).toBe("0708fffffffffffffffc");
    expect(decodeFrame(new ByteReader(hex("0708ffffffffffffffff")))).toEqual({
      kind: "goaway",
      id: (1n << 62n) - 1n,
    });
  });

  it("encodes other frames to known bytes", () => {
    expect(toHex(encode({ kind: "data", data: hex("aabb") }))).toBe("0002aabb");
    expect(toHex(encode({ kind: "headers", fieldSection: hex("0000d1") }))).toBe("01030000d1");
    expect(toHex(encode({ kind: "cancel_push", pushId: 7 }))).toBe("030107");
    expect(toHex(encode({ kind: "max_push_id", pushId: 300 }))).toBe("0d02412c");
    expect(toHex(encode({ kind: "push_promise", pushId: 1, fieldSection: hex("0000") }))).toBe("0503010000");
    expect(toHex(encode({ kind: "priority_update", push: false, elementId: 0, value: "u=0" }))).toBe(
      "800f0700040075" + "3d30",
    );
    expect(toHex(encode({ kind: "unknown", type: 0x21n, payload: hex("ff") }))).toBe("2101ff");
  });

  it("accepts non-minimal varint encodings (RFC 9000 §16)", () => {
    // DATA type as 2 bytes, Length as 4 bytes.
    expect(decodeFrame(new ByteReader(hex("4000 80000001 ee")))).toEqual({ kind: "data", data: hex("ee") });
    // CANCEL_PUSH with an 8-byte push ID.
    expect(decodeFrame(new ByteReader(hex("03 08 c000000000000005")))).toEqual({
      kind: "cancel_push",
      pushId: 5,
    });
  });

  it("saturates push IDs above 2^53-1 but keeps GOAWAY exact", () => {
    const f = decodeFrame(new ByteReader(hex("0d08ffffffffffffffff")));
    expect(f).toEqual({ kind: "max_push_id", pushId: Number.MAX_SAFE_INTEGER });
  });

  it("keeps 0x41 as an unknown frame unless WebTransport is negotiated", () => {
    expect(decodeFrame(new ByteReader(hex("4041 01 aa")))).toEqual({
      kind: "unknown",
      type: 0x41n,
      payload: hex("aa"),
    });
  });
});

describe("frame decoding errors", () => {
  const code = (bytes: string): number => h3ErrorOf(() => decodeFrame(new ByteReader(hex(bytes)))).code;

  it("rejects HTTP/2 frame types with H3_FRAME_UNEXPECTED (§7.2.8)", () => {
    for (const t of HTTP2_RESERVED_FRAME_TYPES) {
      expect(code(`0${t.toString(16)} 00`)).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
      expect(h3ErrorOf(() => decodeFramePayload(t, new Uint8Array(0))).code).toBe(
        H3ErrorCode.H3_FRAME_UNEXPECTED,
      );
    }
    // Also when the type is non-minimally encoded.
    expect(code("4006 00")).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
  });

  it("rejects payloads with extra or missing bytes with H3_FRAME_ERROR (§7.1)", () => {
    expect(code("07 02 00 00")).toBe(H3ErrorCode.H3_FRAME_ERROR); // GOAWAY with an extra byte
    expect(code("07 00")).toBe(H3ErrorCode.H3_FRAME_ERROR); // GOAWAY without its id
    expect(code("07 01 40")).toBe(H3ErrorCode.H3_FRAME_ERROR); // GOAWAY id truncated inside the payload
    expect(code("03 03 01 02 03")).toBe(H3ErrorCode.H3_FRAME_ERROR); // CANCEL_PUSH with extra bytes
    expect(code("0d 00")).toBe(H3ErrorCode.H3_FRAME_ERROR); // empty MAX_PUSH_ID
    expect(code("04 01 01")).toBe(H3ErrorCode.H3_FRAME_ERROR); // SETTINGS: identifier without value
    expect(code("04 03 06 01 07")).toBe(H3ErrorCode.H3_FRAME_ERROR); // SETTINGS: second setting without value
    expect(code("04 02 01 80")).toBe(H3ErrorCode.H3_FRAME_ERROR); // SETTINGS: trailing bytes inside a setting
    expect(code("05 00")).toBe(H3ErrorCode.H3_FRAME_ERROR); // PUSH_PROMISE without push ID
    expect(code("80 0f 07 00 00")).toBe(H3ErrorCode.H3_FRAME_ERROR); // PRIORITY_UPDATE without element ID
  });

  it("rejects truncated frames with H3_FRAME_ERROR and leaves the reader in place", () => {
    for (const bytes of ["", "00", "40", "00 05 aa", "01 40", "c0 00 00"]) {
      const r = new ByteReader(hex(bytes));
      expect(h3ErrorOf(() => decodeFrame(r)).code).toBe(H3ErrorCode.H3_FRAME_ERROR);
      expect(r.pos).toBe(0);
    }
  });

  it("rejects invalid SETTINGS with H3_SETTINGS_ERROR", () => {
    expect(code("04 04 06 01 06 02")).toBe(H3ErrorCode.H3_SETTINGS_ERROR); // duplicate
    expect(code("04 02 02 00")).toBe(H3ErrorCode.H3_SETTINGS_ERROR); // HTTP/2 ENABLE_PUSH
    expect(code("04 03 40 33 02")).toBe(H3ErrorCode.H3_SETTINGS_ERROR); // H3_DATAGRAM=2
  });

  it("throws only H3Error on arbitrary input", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, wt) => {
        const r = new ByteReader(bytes);
        try {
          while (!r.done) decodeFrame(r, { webTransport: wt });
        } catch (e) {
          expect(e).toBeInstanceOf(H3Error);
          expect([
            H3ErrorCode.H3_FRAME_ERROR,
            H3ErrorCode.H3_FRAME_UNEXPECTED,
            H3ErrorCode.H3_SETTINGS_ERROR,
          ]).toContain((e as H3Error).code);
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe("frame encoding errors", () => {
  it("refuses invalid frames with QuicUsageError and leaves the writer unchanged", () => {
    const bad: H3Frame[] = [
      { kind: "cancel_push", pushId: -1 },
      { kind: "max_push_id", pushId: 1.5 },
      { kind: "goaway", id: 1n << 62n },
      { kind: "goaway", id: -1n },
      { kind: "priority_update", push: false, elementId: 0, value: "u=é" },
      { kind: "unknown", type: 0x00n, payload: new Uint8Array(0) }, // DATA
      { kind: "unknown", type: 0x06n, payload: new Uint8Array(0) }, // HTTP/2 (§7.2.8 MUST NOT send)
      { kind: "unknown", type: 1n << 62n, payload: new Uint8Array(0) },
      { kind: "settings", entries: [{ id: 1n << 62n, value: 0n }] },
      { kind: "webtransport_stream", sessionId: -4 },
    ];
    for (const f of bad) {
      const w = new ByteWriter(new Uint8Array(64));
      expect(() => encodeFrame(w, f)).toThrow(QuicUsageError);
      expect(w.pos).toBe(0);
    }
  });

  it("refuses a buffer that is too small without writing", () => {
    const w = new ByteWriter(new Uint8Array(3));
    expect(() => encodeFrame(w, { kind: "data", data: new Uint8Array(2) })).toThrow(QuicUsageError);
    expect(w.pos).toBe(0);
  });

  it("writes a DATA header for streamed bodies", () => {
    const w = new ByteWriter(new Uint8Array(16));
    encodeFrameHeader(w, FrameType.DATA, 100_000);
    expect(w.pos).toBe(frameHeaderSize(FrameType.DATA, 100_000));
    expect(toHex(w.written())).toBe("00800186a0");
    expect(() => encodeFrameHeader(w, -1, 0)).toThrow(QuicUsageError);
    expect(() => encodeFrameHeader(w, 0, -1)).toThrow(QuicUsageError);
  });
});

describe("assertFrameAllowed (§7.2 table)", () => {
  const allowed = (type: number, stream: H3StreamKind, receiver?: "client" | "server"): boolean => {
    try {
      assertFrameAllowed(type, stream, receiver);
      return true;
    } catch (e) {
      expect((e as H3Error).code).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
      return false;
    }
  };

  it("applies the stream rules", () => {
    const T = FrameType;
    const table: [number, boolean, boolean, boolean][] = [
      // type, control, request, push
      [T.DATA, false, true, true],
      [T.HEADERS, false, true, true],
      [T.CANCEL_PUSH, true, false, false],
      [T.SETTINGS, true, false, false],
      [T.PUSH_PROMISE, false, true, false],
      [T.GOAWAY, true, false, false],
      [T.MAX_PUSH_ID, true, false, false],
      [T.PRIORITY_UPDATE_REQUEST, true, false, false],
      [T.PRIORITY_UPDATE_PUSH, true, false, false],
      [0x21, true, true, true],
      [0x02, false, false, false],
    ];
    for (const [t, c, r, p] of table) {
      expect(allowed(t, "control"), frameTypeName(t)).toBe(c);
      expect(allowed(t, "request"), frameTypeName(t)).toBe(r);
      expect(allowed(t, "push"), frameTypeName(t)).toBe(p);
    }
    expect(allowed(0x21n as unknown as number, "control")).toBe(true);
  });

  it("applies the role rules", () => {
    expect(allowed(FrameType.PUSH_PROMISE, "request", "client")).toBe(true);
    expect(allowed(FrameType.PUSH_PROMISE, "request", "server")).toBe(false); // §7.2.5
    expect(allowed(FrameType.MAX_PUSH_ID, "control", "server")).toBe(true);
    expect(allowed(FrameType.MAX_PUSH_ID, "control", "client")).toBe(false); // §7.2.7
    expect(allowed(FrameType.PRIORITY_UPDATE_REQUEST, "control", "server")).toBe(true);
    expect(allowed(FrameType.PRIORITY_UPDATE_PUSH, "control", "client")).toBe(false); // RFC 9218 §7.2
  });
});
