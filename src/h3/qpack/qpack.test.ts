/**
 * Encoder ↔ decoder properties: round trips under random chunking and delivery order, blocked
 * sections, compression with the dynamic table, limits, and hostile input.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { H3Error } from "../error-codes.ts";
import { QpackDecoder, type QpackField } from "./decoder.ts";
import { QpackEncoder, type QpackFieldInput } from "./encoder.ts";
import { QpackError, QpackErrorCode, QpackFieldSectionTooLargeError } from "./errors.ts";
import { QpackWriter } from "./prefix-int.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** Deterministic PRNG (mulberry32) for delivery schedules. */
function rng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n) >>> 0;
  };
}

class ByteQueue {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }
  /** Removes and returns up to `n` bytes. */
  take(n: number): Uint8Array {
    const all = Buffer.concat(this.chunks);
    const out = Uint8Array.from(all.subarray(0, n));
    const rest = Uint8Array.from(all.subarray(n));
    this.chunks = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return out;
  }
}

const byteChar = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
const nameArb = fc.oneof(
  fc.constantFrom(
    ":method",
    ":path",
    ":authority",
    ":status",
    "content-type",
    "user-agent",
    "x-custom",
    "x-trace",
    "authorization",
    "cookie",
  ),
  fc.string({ unit: byteChar, maxLength: 12 }),
);
const valueArb = fc.oneof(
  fc.constantFrom(
    "GET",
    "/",
    "/index.html",
    "example.com",
    "text/html",
    "",
    "200",
    "abc",
    "a-much-longer-value-0123456789",
  ),
  fc.string({ unit: byteChar, maxLength: 40 }),
);
const fieldArb: fc.Arbitrary<QpackFieldInput> = fc.oneof(
  fc.tuple(nameArb, valueArb),
  fc.tuple(nameArb, valueArb, fc.constant(true)),
);
const sectionArb = fc.array(fieldArb, { maxLength: 10 });

const isSensitive = (name: string) => name === "authorization";
const expected = (fields: readonly QpackFieldInput[]): QpackField[] =>
  fields.map(([n, v, ni]) => (ni === true || isSensitive(n) ? [n, v, true] : [n, v]));

interface Pending {
  streamId: number;
  bytes: Uint8Array;
  fields: readonly QpackFieldInput[];
  arrived: boolean;
}

/**
 * Runs encoder and decoder against each other: field sections arrive in random order; encoder
 * and decoder stream bytes in random chunks at random times. Checks every section decodes to its
 * input and the end state is consistent.
 */
function simulate(
  peerCapacity: number,
  ourCapacity: number,
  blockedStreams: number,
  huffman: boolean,
  sections: readonly (readonly QpackFieldInput[])[],
  seed: number,
): { blocked: number; inserts: number; evictions: number } {
  const rand = rng(seed);
  let blockedResults = 0;
  const enc = new QpackEncoder({ maxTableCapacity: ourCapacity, huffman, isSensitive });
  const dec = new QpackDecoder({
    maxTableCapacity: peerCapacity,
    maxBlockedStreams: blockedStreams,
    maxFieldSectionSize: Number.POSITIVE_INFINITY,
  });
  enc.applyPeerSettings({ maxTableCapacity: peerCapacity, blockedStreams });
  const toDecoder = new ByteQueue();
  const toEncoder = new ByteQueue();
  const inFlight: Pending[] = [];
  const blocked = new Map<number, Pending>();
  let done = 0;

  const decode = (p: Pending) => {
    const r = dec.decodeFieldSection(p.streamId, p.bytes);
    if (r.kind === "blocked") {
      blockedResults++;
      blocked.set(p.streamId, p);
      return;
    }
    expect(r.fields).toEqual(expected(p.fields));
    blocked.delete(p.streamId);
    done++;
  };
  const deliverEncoderStream = (n: number) => {
    for (const id of dec.receiveEncoderStream(toDecoder.take(n))) {
      const p = blocked.get(id);
      expect(p).toBeDefined();
      decode(p!);
    }
  };
  const step = () => {
    switch (rand(4)) {
      case 0:
        if (toDecoder.length > 0) deliverEncoderStream(1 + rand(toDecoder.length));
        break;
      case 1: {
        const waiting = inFlight.filter((p) => !p.arrived);
        if (waiting.length > 0) {
          const p = waiting[rand(waiting.length)];
          p.arrived = true;
          decode(p);
        }
        break;
      }
      case 2:
        toEncoder.push(dec.takeDecoderStreamData());
        if (toEncoder.length > 0) enc.receiveDecoderStream(toEncoder.take(1 + rand(toEncoder.length)));
        break;
      default:
        break;
    }
    expect(dec.blockedStreamCount).toBeLessThanOrEqual(blockedStreams);
  };

  sections.forEach((fields, i) => {
    const bytes = enc.encodeFieldSection(4 * i, fields);
    toDecoder.push(enc.takeEncoderStreamData());
    inFlight.push({ streamId: 4 * i, bytes, fields, arrived: false });
    expect(enc.blockingStreamCount).toBeLessThanOrEqual(blockedStreams);
    for (let k = rand(4); k > 0; k--) step();
  });
  // Drain everything.
  for (const p of inFlight) if (!p.arrived) decode(p);
  deliverEncoderStream(toDecoder.length);
  expect(done).toBe(sections.length);
  expect(dec.blockedStreamCount).toBe(0);
  toEncoder.push(dec.takeDecoderStreamData());
  enc.receiveDecoderStream(toEncoder.take(toEncoder.length));
  expect(enc.unacknowledgedSectionCount).toBe(0);
  expect(enc.blockingStreamCount).toBe(0);
  expect(enc.knownReceivedCount).toBe(enc.table.insertCount);
  // Both tables hold the same entries.
  expect(dec.table.insertCount).toBe(enc.table.insertCount);
  expect(dec.table.dropped).toBe(enc.table.dropped);
  expect(dec.table.size).toBe(enc.table.size);
  for (let a = enc.table.dropped; a < enc.table.insertCount; a++) {
    expect([dec.table.name(a), dec.table.value(a)]).toEqual([enc.table.name(a), enc.table.value(a)]);
    expect(enc.table.refCount(a)).toBe(0);
  }
  return { blocked: blockedResults, inserts: enc.table.insertCount, evictions: enc.table.dropped };
}

const totals = () => ({ blocked: 0, inserts: 0, evictions: 0 });
function add(t: ReturnType<typeof totals>, s: ReturnType<typeof totals>): void {
  t.blocked += s.blocked;
  t.inserts += s.inserts;
  t.evictions += s.evictions;
}

describe("encoder → decoder round trip", () => {
  it("round-trips random field sections with random chunking, order and acknowledgments", () => {
    const t = totals();
    fc.assert(
      fc.property(
        fc.constantFrom(0, 31, 64, 220, 1024, 4096),
        fc.constantFrom(0, 100, 4096),
        fc.integer({ min: 0, max: 3 }),
        fc.boolean(),
        fc.array(sectionArb, { minLength: 1, maxLength: 14 }),
        fc.integer(),
        (peerCap, ourCap, blocked, huffman, sections, seed) => {
          add(t, simulate(peerCap, ourCap, blocked, huffman, sections, seed));
        },
      ),
      { numRuns: 400 },
    );
    // The runs did exercise blocking, insertion and eviction.
    expect(t.blocked).toBeGreaterThan(0);
    expect(t.inserts).toBeGreaterThan(0);
    expect(t.evictions).toBeGreaterThan(0);
  });

  it("round-trips repeated sections from a small pool (heavy dynamic table use, eviction)", () => {
    const t = totals();
    const pool = fc.array(sectionArb, { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        fc.constantFrom(128, 300, 1000),
        fc.integer({ min: 0, max: 4 }),
        pool,
        fc.array(fc.nat(), { minLength: 5, maxLength: 30 }),
        fc.integer(),
        (cap, blocked, sections, picks, seed) => {
          const list = picks.map((p) => sections[p % sections.length]);
          add(t, simulate(cap, cap, blocked, true, list, seed));
        },
      ),
      { numRuns: 300 },
    );
    expect(t.blocked).toBeGreaterThan(0);
    expect(t.evictions).toBeGreaterThan(0);
  });

  it("a section blocked on missing inserts decodes once they arrive", () => {
    const enc = new QpackEncoder();
    const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 1 });
    enc.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams: 1 });
    const fields: QpackFieldInput[] = [
      [":authority", "example.org"],
      ["x-custom", "hello"],
    ];
    const section = enc.encodeFieldSection(0, fields);
    const instructions = enc.takeEncoderStreamData();
    expect(dec.decodeFieldSection(0, section)).toEqual({ kind: "blocked", requiredInsertCount: 2 });
    expect(dec.receiveEncoderStream(instructions.subarray(0, 5))).toEqual([]);
    expect(dec.receiveEncoderStream(instructions.subarray(5))).toEqual([0]);
    const r = dec.decodeFieldSection(0, section);
    expect(r.kind === "done" && r.fields).toEqual(fields);
  });
});

describe("compression", () => {
  const request: QpackFieldInput[] = [
    [":method", "GET"],
    [":scheme", "https"],
    [":authority", "www.example.com"],
    [":path", "/assets/app.js?v=1234567"],
    ["user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"],
    ["accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
    ["accept-language", "en-US,en;q=0.5"],
    ["accept-encoding", "gzip, deflate, br"],
    ["cookie", "session=0123456789abcdef0123456789abcdef"],
    ["x-request-source", "purequic-test"],
  ];

  for (const blockedStreams of [0, 100]) {
    it(`10 identical requests: the 10th costs < 30% of the first (blocked streams ${blockedStreams})`, () => {
      const enc = new QpackEncoder();
      const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: blockedStreams });
      enc.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams });
      const dec0 = dec.receiveEncoderStream(enc.takeEncoderStreamData());
      expect(dec0).toEqual([]);
      const costs: number[] = [];
      for (let i = 0; i < 10; i++) {
        const section = enc.encodeFieldSection(4 * i, request);
        const instructions = enc.takeEncoderStreamData();
        costs.push(section.length + instructions.length);
        dec.receiveEncoderStream(instructions);
        const r = dec.decodeFieldSection(4 * i, section);
        expect(r.kind === "done" && r.fields).toEqual(request);
        enc.receiveDecoderStream(dec.takeDecoderStreamData());
      }
      expect(costs[9]).toBeLessThan(0.3 * costs[0]);
      // All ten lines indexed: one byte each, plus the two-byte prefix.
      expect(costs[9]).toBe(12);
    });
  }

  it("never-indexed lines stay literal with the N bit and round-trip as such", () => {
    const enc = new QpackEncoder();
    const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 10 });
    enc.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams: 10 });
    dec.receiveEncoderStream(enc.takeEncoderStreamData());
    const fields: QpackFieldInput[] = [
      ["authorization", "Bearer abc"],
      ["cookie", "a=b"],
      ["x-secret", "s3cr3t", true],
    ];
    for (let i = 0; i < 3; i++) {
      const section = enc.encodeFieldSection(4 * i, fields);
      dec.receiveEncoderStream(enc.takeEncoderStreamData());
      const r = dec.decodeFieldSection(4 * i, section);
      expect(r.kind === "done" && r.fields).toEqual([
        ["authorization", "Bearer abc", true],
        ["cookie", "a=b", true],
        ["x-secret", "s3cr3t", true],
      ]);
      enc.receiveDecoderStream(dec.takeDecoderStreamData());
    }
    // Nothing sensitive entered the table.
    for (let a = enc.table.dropped; a < enc.table.insertCount; a++) {
      expect(["authorization", "cookie", "x-secret"]).not.toContain(enc.table.name(a));
    }
  });
});

describe("encoder respects the peer's limits", () => {
  it("blocks at most SETTINGS_QPACK_BLOCKED_STREAMS streams, else references only acknowledged entries", () => {
    const enc = new QpackEncoder();
    enc.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams: 1 });
    const a = enc.encodeFieldSection(0, [["x-a", "1"]]);
    expect(a[0]).not.toBe(0); // RIC > 0: references the new entry
    expect(enc.blockingStreamCount).toBe(1);
    const b = enc.encodeFieldSection(4, [["x-a", "1"]]);
    expect(toHex(b.subarray(0, 2))).toBe("0000"); // may not block a second stream
    expect(enc.blockingStreamCount).toBe(1);
    // The same stream may keep referencing unacknowledged entries.
    const c = enc.encodeFieldSection(0, [["x-b", "2"]]);
    expect(c[0]).not.toBe(0);
    // Once acknowledged, references no longer block.
    enc.receiveDecoderStream(hex("8080")); // two Section Acknowledgments for stream 0
    expect(enc.blockingStreamCount).toBe(0);
    // RIC 1 (encoded 2), Base 2 (Delta 1), relative index 1 → entry 0.
    const d = enc.encodeFieldSection(8, [["x-a", "1"]]);
    expect(toHex(d)).toBe("020181");
  });

  it("with no blocked streams allowed, inserts now and references after the acknowledgment", () => {
    const enc = new QpackEncoder();
    enc.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams: 0 });
    const first = enc.encodeFieldSection(0, [["x-a", "1"]]);
    expect(toHex(first.subarray(0, 2))).toBe("0000");
    expect(enc.table.insertCount).toBe(1);
    expect(toHex(enc.encodeFieldSection(4, [["x-a", "1"]])).slice(0, 4)).toBe("0000");
    enc.receiveDecoderStream(hex("01"));
    expect(toHex(enc.encodeFieldSection(8, [["x-a", "1"]]))).toBe("020080");
  });

  it("uses min(our, peer) capacity and never sends instructions when the peer's maximum is 0", () => {
    const e1 = new QpackEncoder({ maxTableCapacity: 1000 });
    e1.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams: 0 });
    expect(toHex(e1.takeEncoderStreamData())).toBe("3fc907"); // 1000 = 31 + 969
    const e2 = new QpackEncoder();
    e2.applyPeerSettings({ maxTableCapacity: 0, blockedStreams: 100 });
    e2.encodeFieldSection(0, [["x-a", "1"]]);
    expect(e2.takeEncoderStreamData().length).toBe(0);
    expect(() => e2.setCapacity(1)).toThrow();
  });

  it("never evicts an entry referenced by an unacknowledged section", () => {
    const enc = new QpackEncoder({ drainingFraction: 0 });
    enc.applyPeerSettings({ maxTableCapacity: 100, blockedStreams: 10 });
    enc.encodeFieldSection(0, [["x-a", "0123456789"]]); // 3 + 10 + 32 = 45 bytes, referenced
    enc.receiveDecoderStream(hex("01")); // acknowledged insert, still referenced by stream 0
    enc.encodeFieldSection(4, [["x-b", "0123456789"]]); // 90 bytes used
    // A third entry would evict x-a, referenced by stream 0: literal instead, no insert.
    const s = enc.encodeFieldSection(8, [["x-c", "0123456789"]]);
    expect(enc.table.insertCount).toBe(2);
    expect(toHex(s.subarray(0, 2))).toBe("0000");
    expect(() => enc.insert("x-c", "0123456789")).toThrow();
    enc.receiveDecoderStream(hex("80")); // stream 0 acknowledged: x-a evictable
    expect(enc.insert("x-c", "0123456789")).toBe(2);
    expect(enc.table.dropped).toBe(1);
  });

  it("duplicates a draining entry instead of referencing it (§2.1.1.1)", () => {
    const enc = new QpackEncoder(); // headroom 1/8 of 200 = 25 bytes
    const dec = new QpackDecoder({ maxTableCapacity: 200, maxBlockedStreams: 10 });
    enc.applyPeerSettings({ maxTableCapacity: 200, blockedStreams: 10 });
    const roundTrip = (streamId: number, fields: QpackFieldInput[]) => {
      const section = enc.encodeFieldSection(streamId, fields);
      const instructions = enc.takeEncoderStreamData();
      dec.receiveEncoderStream(instructions);
      const r = dec.decodeFieldSection(streamId, section);
      expect(r.kind === "done" && r.fields).toEqual(fields);
      enc.receiveDecoderStream(dec.takeDecoderStreamData());
      return instructions;
    };
    for (const [i, n] of ["x-a", "x-b", "x-c", "x-d", "x-e"].entries()) roundTrip(4 * i, [[n, "1"]]);
    expect(enc.table.size).toBe(180); // x-a (entry 0) is now draining: 180 + 25 > 200
    const instructions = roundTrip(20, [["x-a", "1"]]);
    expect(toHex(instructions)).toBe("04"); // Duplicate, relative index 4 → entry 0
    expect(enc.table.insertCount).toBe(6);
    expect(enc.table.findExact("x-a", "1")).toBe(5);
    expect(dec.table.dropped).toBe(1);
  });

  it("stays within the encoder-stream budget", () => {
    const enc = new QpackEncoder();
    enc.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams: 10 });
    enc.takeEncoderStreamData();
    enc.encodeFieldSection(0, [["x-long", "v".repeat(100)]], { encoderStreamBudget: 50 });
    expect(enc.takeEncoderStreamData().length).toBe(0);
    enc.encodeFieldSection(4, [["x-long", "v".repeat(100)]], { encoderStreamBudget: 200 });
    expect(enc.takeEncoderStreamData().length).toBeGreaterThan(0);
  });

  it("rejects strings with chars above 0xff", () => {
    const enc = new QpackEncoder();
    expect(() => enc.encodeFieldSection(0, [["x-a", "caf\u00e9 \u2603"]])).toThrow(/0xff/);
    expect(toHex(enc.encodeFieldSection(0, [["x-a", "caf\u00e9"]]))).toMatch(/^0000/);
  });
});

describe("decoder limits", () => {
  const expectQpackError = (f: () => unknown, code: number) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(QpackError);
      expect((e as QpackError).code).toBe(code);
      return;
    }
    throw new Error("expected a QpackError");
  };

  it("a capacity above our maximum is QPACK_ENCODER_STREAM_ERROR", () => {
    const dec = new QpackDecoder({ maxTableCapacity: 100 });
    dec.receiveEncoderStream(hex("3f45")); // 100
    expectQpackError(() => dec.receiveEncoderStream(hex("3f46")), QpackErrorCode.ENCODER_STREAM_ERROR);
    const zero = new QpackDecoder();
    zero.receiveEncoderStream(hex("20")); // capacity 0 is fine
    expectQpackError(() => zero.receiveEncoderStream(hex("21")), QpackErrorCode.ENCODER_STREAM_ERROR);
  });

  it("an entry larger than the capacity, or a bad reference, is QPACK_ENCODER_STREAM_ERROR", () => {
    const mk = () => {
      const d = new QpackDecoder({ maxTableCapacity: 100 });
      d.receiveEncoderStream(hex("3f45"));
      return d;
    };
    const w = new QpackWriter();
    w.writeString(0x40, 6, "x", false);
    w.writeString(0, 8, "v".repeat(68), false); // 1 + 68 + 32 = 101 > 100
    expectQpackError(() => mk().receiveEncoderStream(w.take()), QpackErrorCode.ENCODER_STREAM_ERROR);
    expectQpackError(() => mk().receiveEncoderStream(hex("ff2400")), QpackErrorCode.ENCODER_STREAM_ERROR); // static 99
    expectQpackError(() => mk().receiveEncoderStream(hex("8000")), QpackErrorCode.ENCODER_STREAM_ERROR); // empty table
    expectQpackError(() => mk().receiveEncoderStream(hex("00")), QpackErrorCode.ENCODER_STREAM_ERROR); // duplicate
    // A huge announced string is refused from its length alone.
    expectQpackError(() => mk().receiveEncoderStream(hex("c07fffff03")), QpackErrorCode.ENCODER_STREAM_ERROR);
  });

  it("a Required Insert Count no encoder could produce is QPACK_DECOMPRESSION_FAILED", () => {
    const dec = new QpackDecoder({ maxTableCapacity: 100, maxBlockedStreams: 10 }); // MaxEntries 3
    expectQpackError(() => dec.decodeFieldSection(0, hex("0700")), QpackErrorCode.DECOMPRESSION_FAILED); // > 2*3
    // RFC 9204 §4.5.1.1 example: encoded 4 with 10 inserts → 9 (blocked here: table empty → error
    // paths only with inserts; with 0 inserts, encoded 5 → 4 > MaxValue 3 and ≤ FullRange: error)
    expectQpackError(() => dec.decodeFieldSection(0, hex("0500")), QpackErrorCode.DECOMPRESSION_FAILED);
    expect(dec.decodeFieldSection(0, hex("0400"))).toEqual({ kind: "blocked", requiredInsertCount: 3 });
    // No dynamic table at all: any non-zero Required Insert Count is invalid.
    expectQpackError(
      () => new QpackDecoder().decodeFieldSection(0, hex("0100")),
      QpackErrorCode.DECOMPRESSION_FAILED,
    );
    // Negative Base: Sign 1 with Delta Base ≥ Required Insert Count.
    expectQpackError(() => dec.decodeFieldSection(4, hex("0281")), QpackErrorCode.DECOMPRESSION_FAILED);
  });

  it("reconstructs wrapped Required Insert Counts (RFC 9204 §4.5.1.1 example)", () => {
    const dec = new QpackDecoder({ maxTableCapacity: 100, maxBlockedStreams: 1 });
    dec.receiveEncoderStream(hex("3f45"));
    for (let i = 0; i < 10; i++) dec.receiveEncoderStream(hex("c000")); // :authority ""
    // 10 inserts, encoded 4 → Required Insert Count 9; Base 9; relative index 0 = entry 8.
    const r = dec.decodeFieldSection(0, hex("040080"));
    expect(r).toEqual({ kind: "done", fields: [[":authority", ""]], requiredInsertCount: 9, size: 42 });
  });

  it("more blocked streams than allowed is QPACK_DECOMPRESSION_FAILED", () => {
    const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 1 });
    expect(dec.decodeFieldSection(0, hex("0200")).kind).toBe("blocked");
    expect(dec.decodeFieldSection(0, hex("0200")).kind).toBe("blocked"); // same stream: still one
    expectQpackError(() => dec.decodeFieldSection(4, hex("0200")), QpackErrorCode.DECOMPRESSION_FAILED);
    const none = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 0 });
    expectQpackError(() => none.decodeFieldSection(0, hex("0200")), QpackErrorCode.DECOMPRESSION_FAILED);
  });

  it("invalid references in field lines are QPACK_DECOMPRESSION_FAILED", () => {
    const dec = new QpackDecoder({ maxTableCapacity: 100, maxBlockedStreams: 1 });
    dec.receiveEncoderStream(hex("3f45"));
    dec.receiveEncoderStream(hex("c003616263")); // :authority abc (45 bytes)
    dec.receiveEncoderStream(hex("c003646566")); // :authority def (90 bytes)
    dec.receiveEncoderStream(hex("c003676869")); // evicts entry 0
    expectQpackError(() => dec.decodeFieldSection(0, hex("ff63")), QpackErrorCode.DECOMPRESSION_FAILED); // static 99
    expectQpackError(() => dec.decodeFieldSection(0, hex("000080")), QpackErrorCode.DECOMPRESSION_FAILED); // RIC 0
    // RIC 3, Base 3, relative 2 → entry 0, evicted.
    expectQpackError(() => dec.decodeFieldSection(0, hex("040082")), QpackErrorCode.DECOMPRESSION_FAILED);
    // RIC 2, Base 2, post-Base 0 → entry 2 ≥ RIC.
    expectQpackError(() => dec.decodeFieldSection(0, hex("030010")), QpackErrorCode.DECOMPRESSION_FAILED);
    // Truncated lines.
    expectQpackError(() => dec.decodeFieldSection(0, hex("00")), QpackErrorCode.DECOMPRESSION_FAILED);
    expectQpackError(() => dec.decodeFieldSection(0, hex("0000510b2f")), QpackErrorCode.DECOMPRESSION_FAILED);
    expect(dec.decodeFieldSection(0, hex("040080"))).toMatchObject({ fields: [[":authority", "ghi"]] });
  });

  it("a field section above SETTINGS_MAX_FIELD_SECTION_SIZE is a stream error", () => {
    const dec = new QpackDecoder({ maxFieldSectionSize: 100 });
    const enc = new QpackEncoder();
    const ok = enc.encodeFieldSection(0, [["x-a", "v".repeat(65)]]); // 3 + 65 + 32 = 100
    expect(dec.decodeFieldSection(0, ok).kind).toBe("done");
    const big = enc.encodeFieldSection(0, [["x-a", "v".repeat(66)]]);
    expect(() => dec.decodeFieldSection(0, big)).toThrow(QpackFieldSectionTooLargeError);
    const many = enc.encodeFieldSection(0, [
      [":method", "GET"],
      [":method", "GET"],
      [":method", "GET"],
    ]); // 3 × 42 = 126
    try {
      dec.decodeFieldSection(0, many);
      throw new Error("no error");
    } catch (e) {
      expect(e).toBeInstanceOf(QpackFieldSectionTooLargeError);
      expect((e as QpackFieldSectionTooLargeError).isStreamError).toBe(true);
      expect((e as QpackFieldSectionTooLargeError).code).toBe(QpackErrorCode.DECOMPRESSION_FAILED);
    }
  });

  it("decoder-stream errors are QPACK_DECODER_STREAM_ERROR", () => {
    const mk = () => {
      const e = new QpackEncoder();
      e.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams: 10 });
      e.encodeFieldSection(0, [["x-a", "1"]]);
      return e;
    };
    expectQpackError(() => mk().receiveDecoderStream(hex("84")), QpackErrorCode.DECODER_STREAM_ERROR);
    expectQpackError(() => mk().receiveDecoderStream(hex("8080")), QpackErrorCode.DECODER_STREAM_ERROR);
    expectQpackError(() => mk().receiveDecoderStream(hex("00")), QpackErrorCode.DECODER_STREAM_ERROR);
    expectQpackError(() => mk().receiveDecoderStream(hex("02")), QpackErrorCode.DECODER_STREAM_ERROR);
    mk().receiveDecoderStream(hex("44")); // cancelling an unknown stream is fine
    const e = mk();
    e.receiveDecoderStream(hex("ff")); // partial Section Acknowledgment
    expectQpackError(() => e.receiveDecoderStream(hex("00")), QpackErrorCode.DECODER_STREAM_ERROR); // stream 127
  });
});

describe("hostile input", () => {
  const onlyQpackErrors = (f: () => unknown, codes: number[]) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof H3Error) || !codes.includes(e.code)) throw e;
      if (!(e instanceof QpackError || e instanceof QpackFieldSectionTooLargeError)) throw e;
    }
  };

  /** A decoder with a populated table of mixed entries. */
  function populated(blocked = 2): QpackDecoder {
    const enc = new QpackEncoder();
    const dec = new QpackDecoder({
      maxTableCapacity: 512,
      maxBlockedStreams: blocked,
      maxFieldSectionSize: 4096,
    });
    enc.applyPeerSettings({ maxTableCapacity: 512, blockedStreams: blocked });
    for (let i = 0; i < 12; i++) enc.encodeFieldSection(0, [[`x-h${i}`, `value-${i}`]]);
    dec.receiveEncoderStream(enc.takeEncoderStreamData());
    return dec;
  }

  it("random field sections: a result or QPACK_DECOMPRESSION_FAILED, nothing else", () => {
    const dec = populated();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(40), (bytes, stream) => {
        onlyQpackErrors(
          () => dec.decodeFieldSection(stream * 4, bytes),
          [QpackErrorCode.DECOMPRESSION_FAILED],
        );
      }),
      { numRuns: 5000 },
    );
  });

  it("random field sections with a plausible prefix", () => {
    const dec = populated(100);
    fc.assert(
      fc.property(fc.nat(24), fc.nat(255), fc.uint8Array({ maxLength: 64 }), (ric, db, bytes) => {
        const section = Uint8Array.from([ric, db, ...bytes]);
        onlyQpackErrors(() => dec.decodeFieldSection(0, section), [QpackErrorCode.DECOMPRESSION_FAILED]);
      }),
      { numRuns: 5000 },
    );
  });

  it("mutated valid sections: a result or QPACK_DECOMPRESSION_FAILED", () => {
    fc.assert(
      fc.property(sectionArb, fc.nat(), fc.nat(255), (fields, at, xor) => {
        const enc = new QpackEncoder();
        const dec = new QpackDecoder({ maxTableCapacity: 4096, maxBlockedStreams: 4 });
        enc.applyPeerSettings({ maxTableCapacity: 4096, blockedStreams: 4 });
        const section = enc.encodeFieldSection(0, fields);
        dec.receiveEncoderStream(enc.takeEncoderStreamData());
        if (section.length > 0) section[at % section.length] ^= xor;
        onlyQpackErrors(() => dec.decodeFieldSection(0, section), [QpackErrorCode.DECOMPRESSION_FAILED]);
      }),
      { numRuns: 1000 },
    );
  });

  it("random encoder-stream bytes, any chunking: only QPACK_ENCODER_STREAM_ERROR", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 24 }), { maxLength: 8 }),
        fc.constantFrom(0, 64, 300),
        (chunks, cap) => {
          const dec = new QpackDecoder({ maxTableCapacity: cap });
          onlyQpackErrors(() => {
            if (cap > 0) dec.receiveEncoderStream(new QpackWriterHelper().capacity(cap));
            for (const c of chunks) dec.receiveEncoderStream(c);
          }, [QpackErrorCode.ENCODER_STREAM_ERROR]);
          expect(dec.table.size).toBeLessThanOrEqual(cap);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("random decoder-stream bytes: only QPACK_DECODER_STREAM_ERROR", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 6 }), (chunks) => {
        const enc = new QpackEncoder();
        enc.applyPeerSettings({ maxTableCapacity: 1024, blockedStreams: 3 });
        for (let i = 0; i < 6; i++) enc.encodeFieldSection(i % 3, [[`x-h${i}`, "v"]]);
        onlyQpackErrors(() => {
          for (const c of chunks) enc.receiveDecoderStream(c);
        }, [QpackErrorCode.DECODER_STREAM_ERROR]);
        expect(enc.knownReceivedCount).toBeLessThanOrEqual(enc.table.insertCount);
      }),
      { numRuns: 5000 },
    );
  });
});

class QpackWriterHelper {
  capacity(c: number): Uint8Array {
    const w = new QpackWriter();
    w.writeInt(0x20, 5, c);
    return w.take();
  }
}
