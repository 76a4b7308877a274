import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteWriter, MAX_VARINT } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import {
  type CapsuleEvent,
  CapsuleParser,
  type CapsuleParserOptions,
  CapsuleType,
  capsuleBytes,
  capsuleSize,
  decodeH3Datagram,
  encodeCapsule,
  encodeH3Datagram,
  h3DatagramSize,
  MAX_QUARTER_STREAM_ID,
  quarterStreamId,
} from "./capsules.ts";
import { H3Error, H3ErrorCode, H3StreamError } from "./error-codes.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const concat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

function errorOf(f: () => unknown): H3Error {
  try {
    f();
  } catch (e) {
    if (e instanceof H3Error) return e;
    throw e;
  }
  throw new Error("expected an H3Error");
}

/** Feeds chunks with a pull after each; checks the memory bound; returns copies of the events. */
function parse(chunks: Uint8Array[], opts: CapsuleParserOptions = {}): CapsuleEvent[] {
  const p = new CapsuleParser(opts);
  const bound = Math.max(opts.maxDatagramSize ?? 65535, opts.maxCapsuleSize ?? 16384) + 16;
  const out: CapsuleEvent[] = [];
  const take = (): void => {
    for (const ev of p.pullAll()) {
      if (ev.kind === "datagram") out.push({ kind: "datagram", payload: ev.payload.slice() });
      else if (ev.kind === "capsule")
        out.push({ kind: "capsule", capsule: { ...ev.capsule, value: ev.capsule.value.slice() } });
      else out.push(ev);
    }
  };
  for (const c of chunks) {
    p.push(c);
    take();
    expect(p.bufferedBytes).toBeLessThanOrEqual(bound);
  }
  p.finish();
  take();
  expect(p.done).toBe(true);
  return out;
}

interface Cap {
  type: bigint;
  value: Uint8Array;
}

const capArb: fc.Arbitrary<Cap> = fc.oneof(
  fc.record({ type: fc.constant(0n), value: fc.uint8Array({ maxLength: 200 }) }),
  fc.record({
    type: fc.constantFrom(
      BigInt(CapsuleType.CLOSE_WEBTRANSPORT_SESSION),
      BigInt(CapsuleType.DRAIN_WEBTRANSPORT_SESSION),
    ),
    value: fc.uint8Array({ maxLength: 50 }),
  }),
  // Unknown types, including Chromium's GREASE capsules 41·N + 23.
  fc.record({
    type: fc.oneof(
      fc.bigInt({ min: 0n, max: (MAX_VARINT - 23n) / 41n }).map((n) => 41n * n + 23n),
      fc.bigInt({ min: 1n, max: MAX_VARINT }),
    ),
    value: fc.uint8Array({ maxLength: 100 }),
  }),
);

function expected(caps: Cap[], opts: CapsuleParserOptions = {}): CapsuleEvent[] {
  const keep = new Set((opts.keepTypes ?? [0x2843, 0x78ae]).map(BigInt));
  return caps.map((c): CapsuleEvent => {
    if (c.type === 0n && c.value.length <= (opts.maxDatagramSize ?? 65535))
      return { kind: "datagram", payload: c.value };
    if (c.type !== 0n && keep.has(c.type))
      return { kind: "capsule", capsule: { type: Number(c.type), value: c.value } };
    return { kind: "skipped", type: c.type, length: c.value.length };
  });
}

describe("capsule encoding", () => {
  it("writes Type, Length, Value (RFC 9297 §3.2)", () => {
    expect(toHex(capsuleBytes(CapsuleType.DATAGRAM, hex("abcd")))).toBe("0002abcd");
    expect(toHex(capsuleBytes(CapsuleType.CLOSE_WEBTRANSPORT_SESSION, hex("00000000")))).toBe(
      "6843" + "04" + "00000000",
    );
    expect(toHex(capsuleBytes(CapsuleType.DRAIN_WEBTRANSPORT_SESSION, new Uint8Array(0)))).toBe("800078ae00");
    expect(capsuleSize(0, 100)).toBe(1 + 2 + 100);
  });

  it("refuses invalid capsules without writing", () => {
    const w = new ByteWriter(new Uint8Array(4));
    expect(() => encodeCapsule(w, -1, new Uint8Array(0))).toThrow(QuicUsageError);
    expect(() => encodeCapsule(w, 1.5, new Uint8Array(0))).toThrow(QuicUsageError);
    expect(() => encodeCapsule(w, MAX_VARINT + 1n, new Uint8Array(0))).toThrow(QuicUsageError);
    expect(() => encodeCapsule(w, 0, new Uint8Array(3))).toThrow(QuicUsageError);
    expect(w.pos).toBe(0);
  });
});

describe("CapsuleParser", () => {
  it("parses capsules from any chunking and skips unknown types (§3.2)", () => {
    fc.assert(
      fc.property(
        fc.array(capArb, { maxLength: 8 }),
        fc.array(fc.nat({ max: 5000 }), { maxLength: 30 }),
        (caps, cuts) => {
          const bytes = concat(caps.map((c) => capsuleBytes(c.type, c.value)));
          expect(parse(split(bytes, cuts))).toEqual(expected(caps));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("discards oversized DATAGRAM capsules without buffering (§3.5)", () => {
    const big = new Uint8Array(10_000);
    const bytes = concat([capsuleBytes(0, big), capsuleBytes(0, hex("01"))]);
    const p = new CapsuleParser({ maxDatagramSize: 100 });
    const events: CapsuleEvent[] = [];
    for (const chunk of split(bytes, [3, 1000, 5000, 9000, 10_003])) {
      p.push(chunk);
      events.push(...p.pullAll());
      expect(p.bufferedBytes).toBe(0);
    }
    expect(events).toEqual([
      { kind: "skipped", type: 0n, length: 10_000 },
      { kind: "datagram", payload: hex("01") },
    ]);
  });

  it("keeps configured types", () => {
    const bytes = capsuleBytes(0x99, hex("ab"));
    expect(parse([bytes], { keepTypes: [0x99] })).toEqual([
      { kind: "capsule", capsule: { type: 0x99, value: hex("ab") } },
    ]);
    expect(parse([bytes])).toEqual([{ kind: "skipped", type: 0x99n, length: 1 }]);
  });

  it("treats an oversized kept capsule as a malformed message", () => {
    const p = new CapsuleParser({ maxCapsuleSize: 10 });
    p.push(hex("6843 0b"));
    const err = errorOf(() => p.pull());
    expect(err).toBeInstanceOf(H3StreamError);
    expect(err.code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
    expect(errorOf(() => p.pull())).toBe(err);
  });

  it("treats a truncated last capsule as a malformed message (§3.3)", () => {
    fc.assert(
      fc.property(fc.array(capArb, { minLength: 1, maxLength: 5 }), fc.nat(), (caps, k) => {
        const encoded = caps.map((c) => capsuleBytes(c.type, c.value));
        const bytes = concat(encoded);
        const cut = k % (bytes.length + 1);
        const boundaries = new Set([0]);
        let acc = 0;
        for (const c of encoded) {
          acc += c.length;
          boundaries.add(acc);
        }
        const p = new CapsuleParser();
        p.push(bytes.subarray(0, cut));
        p.finish();
        if (boundaries.has(cut)) {
          p.pullAll();
          expect(p.done).toBe(true);
        } else {
          const err = errorOf(() => p.pullAll());
          expect(err.isStreamError).toBe(true);
          expect(err.code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("throws only H3StreamError on random input, within the memory bound", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.nat({ max: 300 }), { maxLength: 20 }),
        fc.integer({ min: 0, max: 64 }),
        (bytes, cuts, limit) => {
          const p = new CapsuleParser({
            maxDatagramSize: limit,
            maxCapsuleSize: limit,
            keepTypes: [1, 2, 0x2843],
          });
          try {
            for (const chunk of split(bytes, cuts)) {
              p.push(chunk);
              p.pullAll();
              expect(p.bufferedBytes).toBeLessThanOrEqual(limit + 16);
            }
            p.finish();
            p.pullAll();
          } catch (err) {
            expect(err).toBeInstanceOf(H3StreamError);
            expect((err as H3Error).code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("refuses a push after finish", () => {
    const p = new CapsuleParser();
    p.finish();
    expect(() => p.push(new Uint8Array(1))).toThrow(QuicUsageError);
  });
});

describe("HTTP/3 datagrams (RFC 9297 §2.1)", () => {
  it("round-trips for client-initiated bidirectional streams", () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 50 }), fc.uint8Array({ maxLength: 100 }), (q, payload) => {
        const streamId = q * 4;
        expect(quarterStreamId(streamId)).toBe(q);
        const w = new ByteWriter(new Uint8Array(h3DatagramSize(streamId, payload.length)));
        encodeH3Datagram(w, streamId, payload);
        expect(w.remaining).toBe(0);
        const d = decodeH3Datagram(w.buf);
        expect(d.streamId).toBe(streamId);
        expect(d.payload).toEqual(payload);
      }),
    );
  });

  it("encodes known bytes", () => {
    const w = new ByteWriter(new Uint8Array(8));
    encodeH3Datagram(w, 8, hex("aa"));
    expect(toHex(w.written())).toBe("02aa");
    expect(decodeH3Datagram(hex("00"))).toEqual({ streamId: 0, payload: new Uint8Array(0) });
    expect(decodeH3Datagram(hex("4001 bb"))).toEqual({ streamId: 4, payload: hex("bb") });
  });

  it("only accepts client-initiated bidirectional streams when sending", () => {
    for (const id of [1, 2, 3, 5, 6, 7, -4, 4.5, Number.MAX_SAFE_INTEGER + 1]) {
      expect(() => quarterStreamId(id)).toThrow(QuicUsageError);
      expect(() => h3DatagramSize(id, 0)).toThrow(QuicUsageError);
    }
  });

  it("rejects short datagrams and quarter stream IDs above 2^60-1 with H3_DATAGRAM_ERROR", () => {
    for (const bytes of ["", "40", "80 0000", "c0 00000000 0000"]) {
      expect(errorOf(() => decodeH3Datagram(hex(bytes))).code).toBe(H3ErrorCode.H3_DATAGRAM_ERROR);
    }
    const maxOk = new ByteWriter(new Uint8Array(8));
    maxOk.writeVarintBig(MAX_QUARTER_STREAM_ID);
    expect(decodeH3Datagram(maxOk.buf).streamId).toBe(Number.MAX_SAFE_INTEGER);
    const tooBig = new ByteWriter(new Uint8Array(8));
    tooBig.writeVarintBig(MAX_QUARTER_STREAM_ID + 1n);
    expect(errorOf(() => decodeH3Datagram(tooBig.buf)).code).toBe(H3ErrorCode.H3_DATAGRAM_ERROR);
    expect(errorOf(() => decodeH3Datagram(hex("ffffffffffffffff"))).code).toBe(H3ErrorCode.H3_DATAGRAM_ERROR);
  });

  it("throws only H3_DATAGRAM_ERROR on random input", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20 }), (bytes) => {
        try {
          const d = decodeH3Datagram(bytes);
          expect(d.streamId % 4 === 0 || d.streamId === Number.MAX_SAFE_INTEGER).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(H3Error);
          expect((err as H3Error).code).toBe(H3ErrorCode.H3_DATAGRAM_ERROR);
        }
      }),
    );
  });
});
