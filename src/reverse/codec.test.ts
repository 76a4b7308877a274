import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReverseDecodeError } from "./errors.ts";
import { decodeFrame, encodeFrame, FrameReader, FrameTooLargeError, MAX_FRAME_SIZE } from "./frame.ts";
import { decodeMessage, encodeMessage, type MetadataValue, type ProtocolMessage } from "./messages.ts";
import { decodeStreamBind, encodeStreamBind } from "./stream-bind.ts";
import { hex, messageFromJson, toHex, vectors } from "./testdata/vectors.ts";

function categoryOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ReverseDecodeError) return err.category;
    throw err;
  }
  return "no error";
}

describe("quic-reverse vectors: valid", () => {
  it("has the documented number of vectors", () => {
    expect(vectors.valid.length).toBe(53);
  });
  for (const v of vectors.valid) {
    it(v.name, () => {
      const message = messageFromJson(v.message);
      const payload = encodeMessage(message);
      expect(toHex(payload)).toBe(v.payload_hex);
      expect(payload.length).toBe(v.payload_len);
      expect(toHex(encodeFrame(payload))).toBe(v.frame_hex);
      expect(decodeMessage(hex(v.payload_hex))).toEqual(message);
      const { payload: framed, consumed } = decodeFrame(hex(v.frame_hex));
      expect(consumed).toBe(v.frame_hex.length / 2);
      expect(decodeMessage(framed)).toEqual(message);
      expect(v.layout.map((f: { hex: string }) => f.hex).join("")).toBe(v.payload_hex);
    });
  }
});

describe("quic-reverse vectors: decode_only", () => {
  for (const v of vectors.decode_only) {
    it(v.name, () => {
      const expected = messageFromJson(v.expected);
      expect(decodeMessage(hex(v.payload_hex))).toEqual(expected);
      expect(decodeMessage(decodeFrame(hex(v.frame_hex)).payload)).toEqual(expected);
    });
  }
  it("a repeated key keeps the later value", () => {
    const dup = vectors.decode_only.find((v: { name: string }) => /dup/.test(v.name));
    const m = decodeMessage(hex(dup.payload_hex));
    expect(m.type === "OpenRequest" && m.metadata.type === "Structured" && m.metadata.entries.size).toBe(1);
  });
});

describe("quic-reverse vectors: frame_sequences", () => {
  for (const v of vectors.frame_sequences) {
    it(`${v.name}, whole and split at every position`, () => {
      const stream = hex(v.stream_hex);
      for (let split = 0; split <= stream.length; split++) {
        const r = new FrameReader();
        const out: string[] = [];
        for (const part of [stream.subarray(0, split), stream.subarray(split)]) {
          r.push(part);
          for (let p = r.next(); p; p = r.next()) out.push(toHex(p));
        }
        expect(out).toEqual(v.payloads_hex);
        expect(r.buffered).toBe(0);
      }
      // One byte at a time.
      const r = new FrameReader();
      const out: string[] = [];
      for (const b of stream) {
        r.push(Uint8Array.of(b));
        for (let p = r.next(); p; p = r.next()) out.push(toHex(p));
      }
      expect(out).toEqual(v.payloads_hex);
      if (v.messages) {
        expect(v.payloads_hex.map((p: string) => decodeMessage(hex(p)))).toEqual(
          v.messages.map(messageFromJson),
        );
      }
    });
  }
});

describe("quic-reverse vectors: stream_bind", () => {
  for (const v of vectors.stream_bind) {
    it(v.name, () => {
      const bytes = hex(v.hex);
      expect(decodeStreamBind(bytes)).toBe(BigInt(v.logical_stream_id));
      expect(decodeStreamBind(bytes, BigInt(v.logical_stream_id))).toBe(BigInt(v.logical_stream_id));
      expect(toHex(encodeStreamBind(BigInt(v.logical_stream_id)))).toBe(v.hex.slice(0, 26));
    });
  }
});

describe("quic-reverse vectors: invalid", () => {
  it("has the documented number of vectors", () => {
    expect(vectors.invalid.length).toBe(69);
  });
  for (const v of vectors.invalid) {
    it(`${v.name} → ${v.error}`, () => {
      if (v.layer === "frame") {
        const bytes = hex(v.frame_hex);
        expect(categoryOf(() => decodeFrame(bytes))).toBe(v.error);
        const r = new FrameReader();
        r.push(bytes);
        if (v.frame_reader.result === "need_more_data") {
          expect(r.next()).toBeUndefined();
          expect(r.buffered).toBe(v.frame_reader.buffered);
        } else {
          expect(categoryOf(() => r.next())).toBe(v.frame_reader.error);
        }
      } else if (v.layer === "message") {
        expect(categoryOf(() => decodeMessage(hex(v.payload_hex)))).toBe(v.error);
        if (v.frame_hex !== undefined) {
          const { payload } = decodeFrame(hex(v.frame_hex));
          expect(categoryOf(() => decodeMessage(payload))).toBe(v.error);
        }
      } else {
        expect(v.layer).toBe("stream_bind");
        const expected =
          v.expected_logical_stream_id === undefined ? undefined : BigInt(v.expected_logical_stream_id);
        expect(categoryOf(() => decodeStreamBind(hex(v.stream_bind_hex), expected))).toBe(v.error);
      }
    });
  }
});

describe("quic-reverse vectors: encode_errors", () => {
  for (const v of vectors.encode_errors) {
    it(v.name, () => {
      expect(() => encodeFrame(new Uint8Array(v.payload_len))).toThrow(FrameTooLargeError);
      const big = encodeMessage({
        type: "OpenRequest",
        requestId: 77n,
        service: "x",
        metadata: { type: "Bytes", value: new Uint8Array(65503) },
        flags: 0,
      });
      expect(big.length).toBe(v.payload_len);
      try {
        encodeFrame(big);
        expect.unreachable();
      } catch (err) {
        expect((err as FrameTooLargeError).category).toBe(v.error);
        expect((err as Error).message).toBe(v.rust_error);
      }
      expect(encodeFrame(new Uint8Array(MAX_FRAME_SIZE)).length).toBe(MAX_FRAME_SIZE + 4);
    });
  }
});

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const optString = fc.option(fc.string({ unit: "grapheme" }), { nil: null });
const metadataValue: fc.Arbitrary<MetadataValue> = fc.oneof(
  fc.record({ type: fc.constant("String" as const), value: fc.string() }),
  fc.record({
    type: fc.constant("Integer" as const),
    value: fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }),
  }),
  fc.record({ type: fc.constant("Boolean" as const), value: fc.boolean() }),
  fc.record({ type: fc.constant("Bytes" as const), value: fc.uint8Array({ maxLength: 16 }) }),
);
const message: fc.Arbitrary<ProtocolMessage> = fc.oneof(
  fc.record({
    type: fc.constant("Hello" as const),
    protocolVersion: fc.integer({ min: 0, max: 0xffff }),
    features: fc.nat({ max: 0xffffffff }),
    agent: optString,
  }),
  fc.record({
    type: fc.constant("OpenRequest" as const),
    requestId: u64,
    service: fc.string(),
    metadata: fc.oneof(
      fc.constant({ type: "Empty" as const }),
      fc.record({ type: fc.constant("Bytes" as const), value: fc.uint8Array({ maxLength: 32 }) }),
      fc
        .array(fc.tuple(fc.string(), metadataValue), { maxLength: 4 })
        .map((e) => ({ type: "Structured" as const, entries: new Map(e) })),
    ),
    flags: fc.nat({ max: 255 }),
  }),
  fc.record({
    type: fc.constant("OpenResponse" as const),
    requestId: u64,
    status: fc.oneof(
      fc.constant({ type: "Accepted" as const }),
      fc.record({
        type: fc.constant("Rejected" as const),
        code: fc.constantFrom(
          "ServiceUnavailable" as const,
          "UnsupportedService" as const,
          "LimitExceeded" as const,
          "Unauthorized" as const,
          "InternalError" as const,
        ),
      }),
    ),
    reason: optString,
    logicalStreamId: fc.option(u64, { nil: null }),
  }),
  fc.record({
    type: fc.constant("StreamClose" as const),
    logicalStreamId: u64,
    code: fc.constantFrom("Normal" as const, "Error" as const, "Timeout" as const, "Reset" as const),
    reason: optString,
  }),
  fc.record({ type: fc.constantFrom("Ping" as const, "Pong" as const), sequence: u64 }),
);

describe("quic-reverse codec properties", () => {
  it("every message survives encode → frame → reader → decode", () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 5 }), fc.nat(), (msgs, cut) => {
        const stream = Buffer.concat(msgs.map((m) => encodeFrame(encodeMessage(m))));
        const at = cut % (stream.length + 1);
        const r = new FrameReader();
        const out: ProtocolMessage[] = [];
        for (const part of [stream.subarray(0, at), stream.subarray(at)]) {
          r.push(part);
          for (let p = r.next(); p; p = r.next()) out.push(decodeMessage(p));
        }
        expect(out).toEqual(msgs);
      }),
    );
  });

  it("random and mutated payloads decode or fail with a ReverseDecodeError, never anything else", () => {
    const encoded = fc.tuple(message, fc.nat(), fc.nat({ max: 255 })).map(([m, at, b]) => {
      const p = encodeMessage(m);
      if (p.length > 0) p[at % p.length] = b;
      return p.subarray(0, p.length - (at % 3));
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), encoded), (bytes) => {
        try {
          decodeMessage(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(ReverseDecodeError);
        }
      }),
    );
  });
});
