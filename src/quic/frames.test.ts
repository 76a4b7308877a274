import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter, MAX_SAFE_VARINT, MAX_VARINT } from "./bytes.ts";
import { QuicError, QuicUsageError, TransportErrorCode } from "./errors.ts";
import {
  type AckFrame,
  decodeFrame,
  encodeFrame,
  type Frame,
  type FrameKind,
  FrameType,
  frameSize,
  frameTypeOf,
  isAckEliciting,
  isFrameAllowed,
  isProbingFrame,
  streamFrameOverhead,
} from "./frames.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const ascii = (s: string) => new TextEncoder().encode(s);

function encode(f: Frame): Uint8Array {
  const w = new ByteWriter(new Uint8Array(frameSize(f)));
  encodeFrame(f, w);
  expect(w.pos).toBe(w.buf.length);
  return w.written();
}

/** Decodes exactly one frame that must span all of `bytes`. */
function decodeOne(bytes: Uint8Array): Frame {
  const r = new ByteReader(bytes);
  const f = decodeFrame(r);
  expect(r.pos).toBe(bytes.length);
  return f;
}

function decodeError(bytes: Uint8Array): QuicError {
  try {
    decodeFrame(new ByteReader(bytes));
  } catch (e) {
    expect(e).toBeInstanceOf(QuicError);
    return e as QuicError;
  }
  throw new Error(`expected decode of ${toHex(bytes)} to fail`);
}

function expectFrameEncodingError(bytes: Uint8Array, frameType: number): void {
  const e = decodeError(bytes);
  expect(e.code).toBe(TransportErrorCode.FRAME_ENCODING_ERROR);
  expect(e.frameType).toBe(frameType);
}

const ALL_KINDS: FrameKind[] = [
  "padding",
  "ping",
  "ack",
  "reset_stream",
  "stop_sending",
  "crypto",
  "new_token",
  "stream",
  "max_data",
  "max_stream_data",
  "max_streams",
  "data_blocked",
  "stream_data_blocked",
  "streams_blocked",
  "new_connection_id",
  "retire_connection_id",
  "path_challenge",
  "path_response",
  "connection_close",
  "handshake_done",
  "datagram",
  "reset_stream_at",
  "ack_frequency",
  "immediate_ack",
];

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** Numbers in [0, 2^53−1], biased to exercise every varint length. */
const num = fc.oneof(
  fc.integer({ min: 0, max: 0x3f }),
  fc.integer({ min: 0x40, max: 0x3fff }),
  fc.integer({ min: 0x4000, max: 0x3fff_ffff }),
  fc.integer({ min: 0x4000_0000, max: MAX_SAFE_VARINT }),
  fc.constantFrom(0, 0x3f, 0x40, 0x3fff, 0x4000, 0x3fff_ffff, 0x4000_0000, MAX_SAFE_VARINT),
);
const errorCode = fc.oneof(
  fc.bigInt({ min: 0n, max: 0x3fn }),
  fc.bigInt({ min: 0n, max: MAX_VARINT }),
  fc.constantFrom(0n, MAX_VARINT, BigInt(MAX_SAFE_VARINT) + 1n),
);
const bytes = (minLength: number, maxLength: number) => fc.uint8Array({ minLength, maxLength });

/** Valid ACK ranges, built bottom-up so that no packet number goes below 0. */
const ackRanges = fc.oneof(
  fc
    .record({
      base: fc.integer({ min: 0, max: 2 ** 40 }),
      first: fc.integer({ min: 0, max: 1000 }),
      more: fc.array(
        fc.tuple(
          num.map((v) => v % 100_000),
          num.map((v) => v % 100_000),
        ),
        { maxLength: 30 },
      ),
    })
    .map(({ base, first, more }) => {
      const pairs: number[][] = [];
      let low = base;
      let high = base + first;
      pairs.push([high, low]);
      for (const [gap, len] of more) {
        low = high + gap + 2;
        high = low + len;
        pairs.push([high, low]);
      }
      return pairs.reverse().flat();
    }),
  // One range anywhere in [0, 2^53−1].
  fc.tuple(num, num).map(([a, b]) => [Math.max(a, b), Math.min(a, b)]),
);

const frameArb: Record<FrameKind, fc.Arbitrary<Frame>> = {
  padding: fc.integer({ min: 1, max: 1500 }).map((length) => ({ kind: "padding", length })),
  ping: fc.constant({ kind: "ping" }),
  ack: fc
    .record({
      ranges: ackRanges,
      ackDelay: num,
      ecn: fc.option(fc.record({ ect0: num, ect1: num, ce: num }), { nil: undefined }),
    })
    .map(({ ranges, ackDelay, ecn }) => ({ kind: "ack", largest: ranges[0], ackDelay, ranges, ecn })),
  reset_stream: fc
    .record({ streamId: num, errorCode, finalSize: num })
    .map((v) => ({ kind: "reset_stream", ...v })),
  stop_sending: fc.record({ streamId: num, errorCode }).map((v) => ({ kind: "stop_sending", ...v })),
  crypto: fc.record({ offset: num, data: bytes(0, 300) }).map((v) => ({ kind: "crypto", ...v })),
  new_token: bytes(1, 100).map((token) => ({ kind: "new_token", token })),
  stream: fc
    .record({ streamId: num, offset: num, data: bytes(0, 300), fin: fc.boolean(), noLength: fc.boolean() })
    .map((v) => ({ kind: "stream", ...v })),
  max_data: num.map((maximum) => ({ kind: "max_data", maximum })),
  max_stream_data: fc.record({ streamId: num, maximum: num }).map((v) => ({ kind: "max_stream_data", ...v })),
  max_streams: fc.record({ bidi: fc.boolean(), maximum: num }).map((v) => ({ kind: "max_streams", ...v })),
  data_blocked: num.map((limit) => ({ kind: "data_blocked", limit })),
  stream_data_blocked: fc
    .record({ streamId: num, limit: num })
    .map((v) => ({ kind: "stream_data_blocked", ...v })),
  streams_blocked: fc
    .record({ bidi: fc.boolean(), limit: num })
    .map((v) => ({ kind: "streams_blocked", ...v })),
  new_connection_id: fc
    .record({ a: num, b: num, connectionId: bytes(1, 20), statelessResetToken: bytes(16, 16) })
    .map(({ a, b, connectionId, statelessResetToken }) => ({
      kind: "new_connection_id",
      sequence: Math.max(a, b),
      retirePriorTo: Math.min(a, b),
      connectionId,
      statelessResetToken,
    })),
  retire_connection_id: num.map((sequence) => ({ kind: "retire_connection_id", sequence })),
  path_challenge: bytes(8, 8).map((data) => ({ kind: "path_challenge", data })),
  path_response: bytes(8, 8).map((data) => ({ kind: "path_response", data })),
  connection_close: fc
    .record({ application: fc.boolean(), errorCode, frameType: num, reason: bytes(0, 100) })
    .map((v) => ({ kind: "connection_close", ...v, frameType: v.application ? 0 : v.frameType })),
  handshake_done: fc.constant({ kind: "handshake_done" }),
  datagram: fc
    .record({ data: bytes(0, 300), noLength: fc.boolean() })
    .map((v) => ({ kind: "datagram", ...v })),
  reset_stream_at: fc.record({ streamId: num, errorCode, a: num, b: num }).map(({ a, b, ...v }) => ({
    kind: "reset_stream_at",
    ...v,
    finalSize: Math.max(a, b),
    reliableSize: Math.min(a, b),
  })),
  ack_frequency: fc
    .record({
      sequence: num,
      ackElicitingThreshold: num,
      requestedMaxAckDelay: num,
      reorderingThreshold: num,
    })
    .map((v) => ({ kind: "ack_frequency", ...v })),
  immediate_ack: fc.constant({ kind: "immediate_ack" }),
};

const anyFrame = fc.oneof(...ALL_KINDS.map((k) => frameArb[k]));

/** Frames that can be followed by another frame (they do not run to the end of the packet). */
const isSelfDelimiting = (f: Frame) => !((f.kind === "stream" || f.kind === "datagram") && f.noLength);

/** Every Uint8Array field of a decoded frame must lie within the reader's window. */
function expectViewsWithin(f: Frame, buf: Uint8Array, end: number): void {
  for (const v of Object.values(f)) {
    if (v instanceof Uint8Array) {
      expect(v.buffer).toBe(buf.buffer);
      expect(v.byteOffset + v.byteLength).toBeLessThanOrEqual(buf.byteOffset + end);
    }
  }
}

/**
 * Decodes frames from `buf[0, end)` until the end or an error. A buffer longer than `end` gives
 * the reader bytes it must not read. Asserts the hostile-input contract.
 */
function decodeHostile(buf: Uint8Array, end: number): void {
  const r = new ByteReader(buf, 0, end);
  while (!r.done) {
    let f: Frame;
    try {
      f = decodeFrame(r);
    } catch (e) {
      expect(e).toBeInstanceOf(QuicError);
      const code = (e as QuicError).code;
      expect([TransportErrorCode.FRAME_ENCODING_ERROR, TransportErrorCode.PROTOCOL_VIOLATION]).toContain(
        code,
      );
      return;
    }
    expect(r.pos).toBeLessThanOrEqual(end);
    expect(ALL_KINDS).toContain(f.kind);
    expectViewsWithin(f, buf, end);
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Known bytes
// ---------------------------------------------------------------------------------------------

describe("known encodings (RFC 9000 §19 layouts)", () => {
  const cases: [string, string, Frame][] = [
    ["PING", "01", { kind: "ping" }],
    ["HANDSHAKE_DONE", "1e", { kind: "handshake_done" }],
    ["PADDING ×3", "000000", { kind: "padding", length: 3 }],
    [
      // largest 100 (2-byte), delay 5, 1 extra range, first range 2 → [100, 98];
      // gap 3 → high 98−3−2 = 93, length 4 → low 89.
      "ACK with two ranges",
      "02 4064 05 01 02 03 04",
      { kind: "ack", largest: 100, ackDelay: 5, ranges: [100, 98, 93, 89], ecn: undefined },
    ],
    [
      "ACK_ECN",
      "03 05 00 00 00 01 02 03",
      { kind: "ack", largest: 5, ackDelay: 0, ranges: [5, 5], ecn: { ect0: 1, ect1: 2, ce: 3 } },
    ],
    [
      "RESET_STREAM with a 62-bit error code",
      "04 04 ffffffffffffffff 10",
      { kind: "reset_stream", streamId: 4, errorCode: MAX_VARINT, finalSize: 16 },
    ],
    ["STOP_SENDING", "05 08 41 00", { kind: "stop_sending", streamId: 8, errorCode: 0x100n }],
    ["CRYPTO", "06 00 02 aabb", { kind: "crypto", offset: 0, data: hex("aabb") }],
    ["NEW_TOKEN", "07 03 010203", { kind: "new_token", token: hex("010203") }],
    [
      "STREAM OFF|LEN|FIN",
      "0f 04 4100 03 616263",
      { kind: "stream", streamId: 4, offset: 256, data: ascii("abc"), fin: true, noLength: false },
    ],
    [
      "STREAM without offset or length",
      "08 00 6869",
      { kind: "stream", streamId: 0, offset: 0, data: ascii("hi"), fin: false, noLength: true },
    ],
    ["MAX_DATA", "10 80010000", { kind: "max_data", maximum: 0x10000 }],
    ["MAX_STREAM_DATA", "11 01 4400", { kind: "max_stream_data", streamId: 1, maximum: 0x400 }],
    ["MAX_STREAMS (bidi)", "12 0a", { kind: "max_streams", bidi: true, maximum: 10 }],
    ["MAX_STREAMS (uni)", "13 4064", { kind: "max_streams", bidi: false, maximum: 100 }],
    ["DATA_BLOCKED", "14 3f", { kind: "data_blocked", limit: 63 }],
    ["STREAM_DATA_BLOCKED", "15 02 07", { kind: "stream_data_blocked", streamId: 2, limit: 7 }],
    ["STREAMS_BLOCKED (bidi)", "16 01", { kind: "streams_blocked", bidi: true, limit: 1 }],
    ["STREAMS_BLOCKED (uni)", "17 02", { kind: "streams_blocked", bidi: false, limit: 2 }],
    [
      "NEW_CONNECTION_ID",
      "18 02 01 04 c0ffee01 000102030405060708090a0b0c0d0e0f",
      {
        kind: "new_connection_id",
        sequence: 2,
        retirePriorTo: 1,
        connectionId: hex("c0ffee01"),
        statelessResetToken: hex("000102030405060708090a0b0c0d0e0f"),
      },
    ],
    ["RETIRE_CONNECTION_ID", "19 05", { kind: "retire_connection_id", sequence: 5 }],
    ["PATH_CHALLENGE", "1a 0102030405060708", { kind: "path_challenge", data: hex("0102030405060708") }],
    ["PATH_RESPONSE", "1b 0807060504030201", { kind: "path_response", data: hex("0807060504030201") }],
    [
      "CONNECTION_CLOSE (transport)",
      "1c 0a 08 03 626164",
      { kind: "connection_close", application: false, errorCode: 0x0an, frameType: 8, reason: ascii("bad") },
    ],
    [
      "CONNECTION_CLOSE (application)",
      "1d 80010000 00",
      {
        kind: "connection_close",
        application: true,
        errorCode: 0x10000n,
        frameType: 0,
        reason: new Uint8Array(),
      },
    ],
    ["DATAGRAM with length", "31 02 aabb", { kind: "datagram", data: hex("aabb"), noLength: false }],
    ["DATAGRAM without length", "30 aabb", { kind: "datagram", data: hex("aabb"), noLength: true }],
  ];

  for (const [name, wire, frame] of cases) {
    it(`${name}: decodes ${wire}`, () => {
      expect(decodeOne(hex(wire))).toEqual(frame);
    });
    it(`${name}: encodes to ${wire}`, () => {
      expect(toHex(encode(frame))).toBe(toHex(hex(wire)));
      expect(frameSize(frame)).toBe(hex(wire).length);
    });
  }

  it("decodes a packet payload: PADDING run, PING, PADDING to the end", () => {
    const r = new ByteReader(hex("0000 01 000000"));
    expect(decodeFrame(r)).toEqual({ kind: "padding", length: 2 });
    expect(decodeFrame(r)).toEqual({ kind: "ping" });
    expect(decodeFrame(r)).toEqual({ kind: "padding", length: 3 });
    expect(r.done).toBe(true);
  });

  it("decodes STREAM with the OFF bit and offset 0, and LEN bit with length 0", () => {
    expect(decodeOne(hex("0e 01 00 00"))).toEqual({
      kind: "stream",
      streamId: 1,
      offset: 0,
      data: new Uint8Array(),
      fin: false,
      noLength: false,
    });
  });

  it("returns views into the input, not copies", () => {
    const buf = hex("31 02 aabb");
    const f = decodeOne(buf) as { data: Uint8Array };
    expect(f.data.buffer).toBe(buf.buffer);
    expect(f.data.byteOffset).toBe(2);
  });

  it("a STREAM/DATAGRAM without length stops at the reader's end, not the buffer's", () => {
    const buf = hex("30 aabbcc dd");
    const r = new ByteReader(buf, 0, 4);
    expect(decodeFrame(r)).toEqual({ kind: "datagram", data: hex("aabbcc"), noLength: true });
    expect(r.pos).toBe(4);
  });

  it("keeps saturated values and accepts the exact 62-bit bounds", () => {
    // STREAM offset 2^62−1 with no data: offset + length = 2^62−1 is allowed.
    expect(decodeOne(hex("0e 00 ffffffffffffffff 00"))).toMatchObject({
      kind: "stream",
      offset: MAX_SAFE_VARINT,
    });
    // MAX_STREAMS exactly 2^60 is allowed (saturated to 2^53−1 as a number).
    expect(decodeOne(hex("12 d000000000000000"))).toEqual({
      kind: "max_streams",
      bidi: true,
      maximum: MAX_SAFE_VARINT,
    });
    // ACK of [2^62−1 .. 0]: exact check passes, packet numbers saturate.
    expect(decodeOne(hex("02 ffffffffffffffff 00 00 ffffffffffffffff"))).toEqual({
      kind: "ack",
      largest: MAX_SAFE_VARINT,
      ackDelay: 0,
      ranges: [MAX_SAFE_VARINT, 0],
      ecn: undefined,
    });
    // NEW_CONNECTION_ID with sequence = retire prior to = 2^60.
    const ncid = hex(`18 d000000000000000 d000000000000000 01 aa ${"00".repeat(16)}`);
    expect(decodeOne(ncid)).toMatchObject({ sequence: MAX_SAFE_VARINT, retirePriorTo: MAX_SAFE_VARINT });
  });

  it("frameTypeOf gives the wire code encodeFrame writes", () => {
    fc.assert(
      fc.property(anyFrame, (f) => {
        // The type is a varint: one byte but for ACK_FREQUENCY (0x40af).
        expect(frameTypeOf(f)).toBe(new ByteReader(encode(f)).readVarint());
      }),
    );
  });

  it("streamFrameOverhead + data length = frameSize", () => {
    fc.assert(
      fc.property(frameArb.stream, (f) => {
        if (f.kind !== "stream") return;
        expect(streamFrameOverhead(f.streamId, f.offset, f.data.length, f.noLength) + f.data.length).toBe(
          frameSize(f),
        );
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Round trip
// ---------------------------------------------------------------------------------------------

describe("round trip", () => {
  for (const kind of ALL_KINDS) {
    it(`${kind}: decode(encode(f)) = f and frameSize = bytes written`, () => {
      fc.assert(
        fc.property(frameArb[kind], fc.integer({ min: 0, max: 7 }), (f, at) => {
          // Encode at an offset in a larger buffer, to check frameSize against w.pos.
          const size = frameSize(f);
          const w = new ByteWriter(new Uint8Array(at + size + 5), at);
          encodeFrame(f, w);
          expect(w.pos - at).toBe(size);
          const r = new ByteReader(w.buf, at, w.pos);
          const back = decodeFrame(r);
          expect(r.pos).toBe(w.pos);
          expect(back.kind).toBe(kind);
          expect(back).toEqual(f);
        }),
        { numRuns: 300 },
      );
    });
  }

  it("a packet of several frames decodes to the same list", () => {
    const middle = anyFrame.filter((f) => isSelfDelimiting(f) && f.kind !== "padding");
    fc.assert(
      fc.property(fc.array(middle, { minLength: 1, maxLength: 10 }), anyFrame, (frames, last) => {
        const all = [...frames, last];
        const size = all.reduce((n, f) => n + frameSize(f), 0);
        const w = new ByteWriter(new Uint8Array(size));
        for (const f of all) encodeFrame(f, w);
        expect(w.pos).toBe(size);
        const r = new ByteReader(w.buf);
        const back: Frame[] = [];
        while (!r.done) back.push(decodeFrame(r));
        expect(back).toEqual(all);
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Hostile input
// ---------------------------------------------------------------------------------------------

describe("hostile input", () => {
  it("random bytes: a frame or a FRAME_ENCODING_ERROR / PROTOCOL_VIOLATION, within bounds", () => {
    fc.assert(
      fc.property(bytes(0, 200), bytes(0, 16), (input, tail) => {
        const buf = new Uint8Array(input.length + tail.length);
        buf.set(input);
        buf.set(tail, input.length);
        decodeHostile(buf, input.length);
      }),
      { numRuns: 3000 },
    );
  });

  it("random bytes starting with each known type code", () => {
    const codes = [...Array(0x20).keys(), 0x24, 0x30, 0x31];
    fc.assert(
      fc.property(fc.constantFrom(...codes), bytes(0, 40), (code, rest) => {
        const buf = new Uint8Array(1 + rest.length + 8).fill(0xff);
        buf[0] = code;
        buf.set(rest, 1);
        decodeHostile(buf, 1 + rest.length);
      }),
      { numRuns: 3000 },
    );
  });

  it("every truncation of a length-delimited frame is a FRAME_ENCODING_ERROR for its type", () => {
    fc.assert(
      fc.property(anyFrame, (f) => {
        const full = encode(f);
        for (let k = 0; k < full.length; k++) {
          // The buffer holds the whole frame; the reader may only see k bytes of it.
          const r = new ByteReader(full, 0, k);
          const typeLength = f.kind === "ack_frequency" ? 2 : 1;
          if (k < typeLength || f.kind === "padding" || !isSelfDelimiting(f)) {
            decodeHostile(full, k);
            continue;
          }
          let err: unknown;
          try {
            decodeFrame(r);
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(QuicError);
          expect((err as QuicError).code).toBe(TransportErrorCode.FRAME_ENCODING_ERROR);
          expect((err as QuicError).frameType).toBe(frameTypeOf(f));
        }
      }),
      { numRuns: 500 },
    );
  });

  it("single-byte mutations of valid frames", () => {
    fc.assert(
      fc.property(anyFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), (f, at, value) => {
        const buf = encode(f).slice();
        if (buf.length === 0) return;
        buf[at % buf.length] = value;
        decodeHostile(buf, buf.length);
      }),
      { numRuns: 3000 },
    );
  });

  it("an ACK with a huge range count fails fast without allocating the ranges", () => {
    // ACK Range Count = 2^62−1, then only a few bytes: rejected on the count, before any range.
    expectFrameEncodingError(hex("02 05 00 ffffffffffffffff 00 0000"), FrameType.ACK);
    expect(decodeError(hex(`02 05 00 bfffffff 00 ${"00".repeat(1000)}`)).reason).toMatch(/ACK Range Count/);
    // ACK Range Count = 2^30−1 (4-byte varint) with 10 bytes of ranges.
    expectFrameEncodingError(hex(`03 05 00 bfffffff 00 ${"00".repeat(10)}`), FrameType.ACK_ECN);
    // Exactly as many ranges as the bytes carry still decodes.
    const f = decodeOne(hex("02 40c8 00 03 00 00 00 00 00 00 00")) as AckFrame;
    expect(f.ranges).toEqual([200, 200, 198, 198, 196, 196, 194, 194]);
  });

  it("an ACK range count one past the data is truncation", () => {
    expectFrameEncodingError(hex("02 40c8 00 04 00 00 00 00 00 00 00 00"), FrameType.ACK);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Specific negative cases
// ---------------------------------------------------------------------------------------------

describe("extension frames", () => {
  it("known encodings: IMMEDIATE_ACK, RESET_STREAM_AT, ACK_FREQUENCY (two-byte type 0x40af)", () => {
    expect(toHex(encode({ kind: "immediate_ack" }))).toBe("1f");
    expect(
      toHex(
        encode({ kind: "reset_stream_at", streamId: 4, errorCode: 0x10n, finalSize: 100, reliableSize: 10 }),
      ),
    ).toBe("2404104064" + "0a");
    const af: Frame = {
      kind: "ack_frequency",
      sequence: 1,
      ackElicitingThreshold: 9,
      requestedMaxAckDelay: 25_000,
      reorderingThreshold: 0,
    };
    expect(toHex(encode(af))).toBe("40af" + "01" + "09" + "800061a8" + "00");
    expect(decodeOne(hex("40af 01 09 800061a8 00"))).toEqual(af);
    expect(frameTypeOf(af)).toBe(0xaf);
  });

  it("RESET_STREAM_AT with Reliable Size above Final Size is a FRAME_ENCODING_ERROR (§4)", () => {
    expectFrameEncodingError(hex("24 04 10 05 06"), FrameType.RESET_STREAM_AT);
    expect(() =>
      encode({ kind: "reset_stream_at", streamId: 0, errorCode: 0n, finalSize: 1, reliableSize: 2 }),
    ).toThrow(QuicUsageError);
  });

  it("ACK_FREQUENCY / IMMEDIATE_ACK only in 1-RTT, RESET_STREAM_AT in 0-RTT and 1-RTT", () => {
    for (const t of ["initial", "handshake", "0rtt"] as const) {
      expect(isFrameAllowed(FrameType.ACK_FREQUENCY, t)).toBe(false);
      expect(isFrameAllowed(FrameType.IMMEDIATE_ACK, t)).toBe(false);
    }
    expect(isFrameAllowed(FrameType.ACK_FREQUENCY, "1rtt")).toBe(true);
    expect(isFrameAllowed(FrameType.IMMEDIATE_ACK, "1rtt")).toBe(true);
    expect(isFrameAllowed(FrameType.RESET_STREAM_AT, "0rtt")).toBe(true);
    expect(isFrameAllowed(FrameType.RESET_STREAM_AT, "1rtt")).toBe(true);
    expect(isFrameAllowed(FrameType.RESET_STREAM_AT, "handshake")).toBe(false);
  });

  it("a truncated ACK_FREQUENCY is a FRAME_ENCODING_ERROR for 0xaf", () => {
    expectFrameEncodingError(hex("40af 01 09"), FrameType.ACK_FREQUENCY);
    expect(decodeError(hex("40")).code).toBe(TransportErrorCode.FRAME_ENCODING_ERROR);
  });
});

describe("malformed frames", () => {
  it("unknown frame types are FRAME_ENCODING_ERROR with the type (§12.4)", () => {
    expectFrameEncodingError(hex("20"), 0x20);
    expectFrameEncodingError(hex("4040"), 0x40);
    expectFrameEncodingError(hex("21 00"), 0x21);
    expectFrameEncodingError(hex("32"), 0x32);
    expectFrameEncodingError(hex("3f"), 0x3f);
    expectFrameEncodingError(hex("4040"), 0x40);
    expectFrameEncodingError(hex("80004000"), 0x4000);
  });

  it("a frame type not in its shortest encoding is PROTOCOL_VIOLATION (§12.4)", () => {
    for (const wire of ["4001", "4006", "8000001c", "c000000000000001", "4000", "80003fff"]) {
      const e = decodeError(hex(wire));
      expect(e.code).toBe(TransportErrorCode.PROTOCOL_VIOLATION);
    }
  });

  it("an empty reader is a FRAME_ENCODING_ERROR", () => {
    expect(decodeError(new Uint8Array()).code).toBe(TransportErrorCode.FRAME_ENCODING_ERROR);
  });

  it("ACK range below packet number 0 (§19.3.1)", () => {
    expectFrameEncodingError(hex("02 05 00 00 06"), FrameType.ACK); // 5 − 6 < 0
    // [5, 3], gap 1 → high 3 − 1 − 2 = 0, length 1 → low −1.
    expectFrameEncodingError(hex("02 05 00 01 02 01 01"), FrameType.ACK);
    // [5, 3], gap 2 → high 3 − 2 − 2 = −1.
    expectFrameEncodingError(hex("02 05 00 01 02 02 00"), FrameType.ACK);
    // ECN variant reports its own type.
    expectFrameEncodingError(hex("03 05 00 00 06 00 00 00"), FrameType.ACK_ECN);
    expect(decodeOne(hex("02 05 00 01 02 01 00"))).toMatchObject({ ranges: [5, 3, 0, 0] });
  });

  it("ACK range underflow hidden by saturation is still caught exactly (§19.3.1)", () => {
    // largest 2^60, first range 2^61: both saturate to 2^53−1 as numbers.
    expectFrameEncodingError(hex("02 d000000000000000 00 00 e000000000000000"), FrameType.ACK);
    // [2^62−1 .. 0] then a gap: high < 0.
    expectFrameEncodingError(hex("02 ffffffffffffffff 00 01 ffffffffffffffff 00 00"), FrameType.ACK);
    // Saturated gap on a small ACK.
    expectFrameEncodingError(hex("02 40c8 00 01 00 ffffffffffffffff 00"), FrameType.ACK);
  });

  it("STREAM / CRYPTO offset + length above 2^62−1 (§19.8, §19.6)", () => {
    expectFrameEncodingError(hex("0e 00 ffffffffffffffff 01 aa"), 0x0e);
    expectFrameEncodingError(hex("0c 00 ffffffffffffffff aa"), 0x0c); // no LEN: data to the end
    expectFrameEncodingError(hex("06 ffffffffffffffff 01 aa"), FrameType.CRYPTO);
    expect(decodeOne(hex("06 fffffffffffffffe 01 aa"))).toMatchObject({
      kind: "crypto",
      offset: MAX_SAFE_VARINT,
    });
  });

  it("MAX_STREAMS / STREAMS_BLOCKED above 2^60 (§19.11, §19.14)", () => {
    expectFrameEncodingError(hex("12 d000000000000001"), 0x12);
    expectFrameEncodingError(hex("13 ffffffffffffffff"), 0x13);
    expectFrameEncodingError(hex("16 d000000000000001"), 0x16);
    expectFrameEncodingError(hex("17 e000000000000000"), 0x17);
    expect(decodeOne(hex("17 d000000000000000"))).toMatchObject({ kind: "streams_blocked", bidi: false });
  });

  it("NEW_CONNECTION_ID connection ID length 0 or 21 (§19.15)", () => {
    const token = "00".repeat(16);
    expectFrameEncodingError(hex(`18 01 00 00 ${token}`), FrameType.NEW_CONNECTION_ID);
    expectFrameEncodingError(hex(`18 01 00 15 ${"aa".repeat(21)} ${token}`), FrameType.NEW_CONNECTION_ID);
    expect(decodeOne(hex(`18 01 00 14 ${"aa".repeat(20)} ${token}`))).toMatchObject({ sequence: 1 });
  });

  it("NEW_CONNECTION_ID retire prior to > sequence (§19.15)", () => {
    const tail = `04 aabbccdd ${"00".repeat(16)}`;
    expectFrameEncodingError(hex(`18 01 02 ${tail}`), FrameType.NEW_CONNECTION_ID);
    // Both saturated: compared exactly.
    expectFrameEncodingError(
      hex(`18 d000000000000000 d000000000000001 ${tail}`),
      FrameType.NEW_CONNECTION_ID,
    );
    expect(decodeOne(hex(`18 02 02 ${tail}`))).toMatchObject({ sequence: 2, retirePriorTo: 2 });
  });

  it("NEW_CONNECTION_ID with a short stateless reset token is truncation", () => {
    expectFrameEncodingError(hex(`18 01 00 01 aa ${"00".repeat(15)}`), FrameType.NEW_CONNECTION_ID);
  });

  it("empty NEW_TOKEN (§19.7)", () => {
    expectFrameEncodingError(hex("07 00"), FrameType.NEW_TOKEN);
  });

  it("short PATH_CHALLENGE / PATH_RESPONSE", () => {
    expectFrameEncodingError(hex("1a 01020304050607"), FrameType.PATH_CHALLENGE);
    expectFrameEncodingError(hex("1b"), FrameType.PATH_RESPONSE);
  });

  it("lengths past the end of the reader", () => {
    expectFrameEncodingError(hex("06 00 05 aabb"), FrameType.CRYPTO);
    expectFrameEncodingError(hex("0a 00 ffffffffffffffff aa"), 0x0a); // saturated length
    expectFrameEncodingError(hex("31 03 aabb"), FrameType.DATAGRAM_LEN);
    expectFrameEncodingError(hex("1c 00 00 05 61"), FrameType.CONNECTION_CLOSE);
  });
});

// ---------------------------------------------------------------------------------------------
// Encoder validation
// ---------------------------------------------------------------------------------------------

describe("encoder rejects invalid frames with QuicUsageError", () => {
  const token = new Uint8Array(16);
  const invalid: [string, Frame][] = [
    ["PADDING length 0", { kind: "padding", length: 0 }],
    ["empty NEW_TOKEN", { kind: "new_token", token: new Uint8Array() }],
    [
      "connection ID length 0",
      {
        kind: "new_connection_id",
        sequence: 1,
        retirePriorTo: 0,
        connectionId: new Uint8Array(),
        statelessResetToken: token,
      },
    ],
    [
      "connection ID length 21",
      {
        kind: "new_connection_id",
        sequence: 1,
        retirePriorTo: 0,
        connectionId: new Uint8Array(21),
        statelessResetToken: token,
      },
    ],
    [
      "reset token length 15",
      {
        kind: "new_connection_id",
        sequence: 1,
        retirePriorTo: 0,
        connectionId: new Uint8Array(8),
        statelessResetToken: new Uint8Array(15),
      },
    ],
    [
      "retire prior to > sequence",
      {
        kind: "new_connection_id",
        sequence: 1,
        retirePriorTo: 2,
        connectionId: new Uint8Array(8),
        statelessResetToken: token,
      },
    ],
    ["PATH_CHALLENGE of 7 bytes", { kind: "path_challenge", data: new Uint8Array(7) }],
    ["PATH_RESPONSE of 9 bytes", { kind: "path_response", data: new Uint8Array(9) }],
    [
      "negative STREAM offset",
      { kind: "stream", streamId: 0, offset: -1, data: new Uint8Array(), fin: false },
    ],
    ["fractional stream ID", { kind: "max_stream_data", streamId: 1.5, maximum: 0 }],
    ["MAX_DATA above 2^53−1", { kind: "max_data", maximum: 2 ** 60 }],
    ["error code above 2^62−1", { kind: "stop_sending", streamId: 0, errorCode: MAX_VARINT + 1n }],
    ["negative error code", { kind: "reset_stream", streamId: 0, errorCode: -1n, finalSize: 0 }],
    ["ACK with no ranges", { kind: "ack", largest: 0, ackDelay: 0, ranges: [] }],
    ["ACK with an odd range list", { kind: "ack", largest: 5, ackDelay: 0, ranges: [5, 3, 1] }],
    ["ACK largest ≠ ranges[0]", { kind: "ack", largest: 6, ackDelay: 0, ranges: [5, 3] }],
    ["ACK inverted range", { kind: "ack", largest: 5, ackDelay: 0, ranges: [5, 6] }],
    ["ACK adjacent ranges (no gap)", { kind: "ack", largest: 9, ackDelay: 0, ranges: [9, 5, 4, 0] }],
    ["ACK ascending ranges", { kind: "ack", largest: 1, ackDelay: 0, ranges: [1, 0, 5, 3] }],
    ["ACK negative low", { kind: "ack", largest: 1, ackDelay: 0, ranges: [1, -1] }],
  ];

  for (const [name, f] of invalid) {
    it(name, () => {
      const w = new ByteWriter(new Uint8Array(64), 3);
      expect(() => encodeFrame(f, w)).toThrow(QuicUsageError);
      expect(w.pos).toBe(3);
    });
  }

  it("accepts ranges separated by exactly one missing packet", () => {
    const f: Frame = { kind: "ack", largest: 9, ackDelay: 0, ranges: [9, 6, 4, 0] };
    expect(decodeOne(encode(f))).toEqual({ ...f, ecn: undefined });
  });

  it("a buffer too small throws and leaves the writer unchanged", () => {
    const f: Frame = { kind: "crypto", offset: 0, data: new Uint8Array(10) };
    const w = new ByteWriter(new Uint8Array(frameSize(f) - 1));
    expect(() => encodeFrame(f, w)).toThrow(QuicUsageError);
    expect(w.pos).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Classification tables
// ---------------------------------------------------------------------------------------------

describe("isFrameAllowed (§12.4 table, §12.5)", () => {
  const I = "initial";
  const H = "handshake";
  const Z = "0rtt";
  const O = "1rtt";
  /** Expected "Pkts" column per type code. */
  const table: [number, string][] = [
    [0x00, "IH01"],
    [0x01, "IH01"],
    [0x02, "IH_1"],
    [0x03, "IH_1"],
    [0x04, "__01"],
    [0x05, "__01"],
    [0x06, "IH_1"],
    [0x07, "___1"],
    [0x08, "__01"],
    [0x0f, "__01"],
    [0x10, "__01"],
    [0x13, "__01"],
    [0x17, "__01"],
    [0x18, "__01"],
    [0x19, "___1"], // §12.5: RETIRE_CONNECTION_ID cannot be sent in 0-RTT
    [0x1a, "__01"],
    [0x1b, "___1"],
    [0x1c, "IH01"],
    [0x1d, "__01"],
    [0x1e, "___1"],
    [0x30, "__01"],
    [0x31, "__01"],
  ];

  for (const [code, pkts] of table) {
    it(`0x${code.toString(16)}: ${pkts}`, () => {
      expect(isFrameAllowed(code, I)).toBe(pkts[0] === "I");
      expect(isFrameAllowed(code, H)).toBe(pkts[1] === "H");
      expect(isFrameAllowed(code, Z)).toBe(pkts[2] === "0");
      expect(isFrameAllowed(code, O)).toBe(pkts[3] === "1");
    });
  }

  it("0-RTT excludes ACK, CRYPTO, HANDSHAKE_DONE, NEW_TOKEN, PATH_RESPONSE, RETIRE_CONNECTION_ID", () => {
    for (const code of [0x02, 0x03, 0x06, 0x1e, 0x07, 0x1b, 0x19])
      expect(isFrameAllowed(code, Z)).toBe(false);
  });

  it("takes a frame and tells the two CONNECTION_CLOSE variants apart", () => {
    const close = (application: boolean): Frame => ({
      kind: "connection_close",
      application,
      errorCode: 0n,
      frameType: 0,
      reason: new Uint8Array(),
    });
    expect(isFrameAllowed(close(false), I)).toBe(true);
    expect(isFrameAllowed(close(true), I)).toBe(false);
    expect(isFrameAllowed(close(true), H)).toBe(false);
    expect(isFrameAllowed(close(true), O)).toBe(true);
    expect(
      isFrameAllowed({ kind: "stream", streamId: 0, offset: 9, data: new Uint8Array(), fin: true }, H),
    ).toBe(false);
    expect(isFrameAllowed({ kind: "crypto", offset: 0, data: new Uint8Array() }, H)).toBe(true);
  });

  it("unknown types are never allowed", () => {
    for (const code of [0x20, 0x23, 0x2f, 0x32, 0x40, -1, 0.5]) expect(isFrameAllowed(code, O)).toBe(false);
  });

  it("all 1-RTT: every frame kind is allowed in 1-RTT packets (§12.4)", () => {
    fc.assert(
      fc.property(anyFrame, (f) => {
        expect(isFrameAllowed(f, O)).toBe(true);
      }),
    );
  });
});

describe("isAckEliciting / isProbingFrame", () => {
  it("only ACK, PADDING and CONNECTION_CLOSE are not ack-eliciting (§13.2, RFC 9221 §5.2)", () => {
    for (const kind of ALL_KINDS) {
      expect(isAckEliciting(kind)).toBe(!["ack", "padding", "connection_close"].includes(kind));
    }
    expect(isAckEliciting("datagram")).toBe(true);
    expect(isAckEliciting("ping")).toBe(true);
  });

  it("probing frames are PATH_CHALLENGE, PATH_RESPONSE, NEW_CONNECTION_ID and PADDING (§9.1)", () => {
    const probing = ALL_KINDS.filter(isProbingFrame).sort();
    expect(probing).toEqual(["new_connection_id", "padding", "path_challenge", "path_response"]);
  });
});
