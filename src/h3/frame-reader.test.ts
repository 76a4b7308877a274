import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteWriter, MAX_VARINT } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { H3Error, H3ErrorCode } from "./error-codes.ts";
import { ByteQueue, FrameReader, type FrameReaderEvent, type FrameReaderOptions } from "./frame-reader.ts";
import { encodeFrame, frameSize, type H3Frame } from "./frames.ts";
import { type SettingEntry, SettingId } from "./settings.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function encode(f: H3Frame): Uint8Array {
  const w = new ByteWriter(new Uint8Array(frameSize(f)));
  encodeFrame(w, f);
  return w.buf;
}

/** Splits `bytes` at the given cut points (sorted, deduplicated, in range). */
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

/** Reassembles events into frames: DATA slices are joined per frame. */
class Collector {
  frames: H3Frame[] = [];
  raw: Uint8Array[] = [];
  private data: Uint8Array[] | undefined;

  add(ev: FrameReaderEvent): void {
    if (ev.kind === "data") {
      if (ev.start) {
        expect(this.data).toBeUndefined();
        this.data = [];
      }
      expect(this.data).toBeDefined();
      if (ev.frameLength > 0) expect(ev.data.length).toBeGreaterThan(0);
      this.data!.push(ev.data.slice());
      if (ev.end) {
        const data = concat(this.data!);
        expect(data.length).toBe(ev.frameLength);
        this.frames.push({ kind: "data", data });
        this.data = undefined;
      }
    } else if (ev.kind === "frame") {
      expect(this.data).toBeUndefined();
      this.frames.push(ev.frame);
    } else {
      this.raw.push(ev.data.slice());
    }
  }
}

/** Feeds chunks, pulling after each; returns the frames. Checks the memory bound after each drain. */
function run(chunks: Uint8Array[], opts: FrameReaderOptions = {}, fin = true): Collector {
  const reader = new FrameReader(opts);
  const c = new Collector();
  const bound = Math.max(opts.maxFrameSize ?? 65536, opts.maxUnknownFrameSize ?? 4096) + 16;
  for (const chunk of chunks) {
    reader.push(chunk);
    for (const ev of reader.pullAll()) c.add(ev);
    expect(reader.bufferedBytes).toBeLessThanOrEqual(bound);
  }
  if (fin) {
    reader.finish();
    for (const ev of reader.pullAll()) c.add(ev);
    expect(reader.done).toBe(true);
  }
  return c;
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

const e = (id: number | bigint, value: number | bigint): SettingEntry => ({
  id: BigInt(id),
  value: BigInt(value),
});

const anyId = fc.oneof(fc.nat({ max: 100 }), fc.maxSafeNat());
const ascii = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 30,
});
const unknownType = fc
  .oneof(fc.bigInt({ min: 0n, max: 0x100n }), fc.bigInt({ min: 0n, max: MAX_VARINT }))
  .filter((t) => t > 0x0dn && t !== 0x41n && t !== 0xf0700n && t !== 0xf0701n);
const settingsArb = fc
  .uniqueArray(
    fc.record({
      id: fc.oneof(fc.constantFrom(1n, 6n, 7n, 0x21n, 0x40n), fc.bigInt({ min: 0x100n, max: MAX_VARINT })),
      value: fc.bigInt({ min: 0n, max: MAX_VARINT }),
    }),
    { selector: (x) => x.id, maxLength: 6 },
  )
  .map((entries) => ({ kind: "settings" as const, entries }));

const arbFrame: fc.Arbitrary<H3Frame> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("data" as const), data: fc.uint8Array({ maxLength: 300 }) }),
  },
  fc.record({ kind: fc.constant("headers" as const), fieldSection: fc.uint8Array({ maxLength: 200 }) }),
  fc.record({ kind: fc.constant("cancel_push" as const), pushId: anyId }),
  fc.record({ kind: fc.constant("max_push_id" as const), pushId: anyId }),
  settingsArb,
  fc.record({
    kind: fc.constant("push_promise" as const),
    pushId: anyId,
    fieldSection: fc.uint8Array({ maxLength: 50 }),
  }),
  fc.record({ kind: fc.constant("goaway" as const), id: fc.bigInt({ min: 0n, max: MAX_VARINT }) }),
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

const cutsArb = fc.array(fc.nat({ max: 100_000 }), { maxLength: 40 });

describe("ByteQueue", () => {
  it("peeks varints across chunks and reads views or copies", () => {
    const q = new ByteQueue();
    q.push(hex("c0"));
    q.push(new Uint8Array(0));
    q.push(hex("0000"));
    expect(q.peekVarint(0)).toBeUndefined();
    q.push(hex("0000000005 4041"));
    expect(q.length).toBe(10);
    expect(q.peekVarint(0)).toEqual([5, 8]);
    expect(q.peekVarint(8)).toEqual([0x41, 2]);
    expect(q.read(8)).toEqual(hex("c000000000000005"));
    expect(q.readChunk(10)).toEqual(hex("4041"));
    expect(q.length).toBe(0);
    q.push(hex("ffffffffffffffff"));
    expect(q.peekVarint(0)).toEqual([(1n << 62n) - 1n, 8]);
  });
});

describe("FrameReader", () => {
  it("yields the same frames and DATA bytes for any chunking", () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { maxLength: 10 }), cutsArb, (frames, cuts) => {
        const bytes = concat(frames.map(encode));
        expect(run(split(bytes, cuts)).frames).toEqual(frames);
      }),
      { numRuns: 1000 },
    );
  });

  it("delivers one byte at a time", () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { maxLength: 5 }), (frames) => {
        const bytes = concat(frames.map(encode));
        const chunks = Array.from(bytes, (b) => Uint8Array.of(b));
        expect(run(chunks).frames).toEqual(frames);
      }),
      { numRuns: 200 },
    );
  });

  it("streams DATA without buffering it", () => {
    const body = new Uint8Array(1 << 20).map((_, i) => i * 7);
    const head = new ByteWriter(new Uint8Array(16));
    head.writeVarint(0);
    head.writeVarint(body.length);
    const reader = new FrameReader({ maxFrameSize: 1024 });
    reader.push(head.written());
    expect(reader.pull()).toBeUndefined();
    const received: Uint8Array[] = [];
    for (let off = 0; off < body.length; off += 1000) {
      const chunk = body.subarray(off, off + 1000);
      reader.push(chunk);
      const ev = reader.pull();
      if (ev?.kind !== "data") throw new Error("expected a DATA slice");
      // A view, not a copy; flags mark the first and last slices.
      if (ev.data.buffer !== body.buffer) throw new Error("DATA was copied");
      if (ev.start !== (off === 0) || ev.end !== off + 1000 >= body.length) throw new Error("bad flags");
      received.push(ev.data);
      if (reader.pull() !== undefined || reader.bufferedBytes !== 0) throw new Error("buffered DATA");
    }
    expect(Buffer.from(concat(received)).equals(Buffer.from(body))).toBe(true);
    reader.finish();
    expect(reader.pull()).toBeUndefined();
    expect(reader.done).toBe(true);
  });

  it("reports a zero-length DATA frame", () => {
    const reader = new FrameReader();
    reader.push(hex("0000"));
    expect(reader.pull()).toEqual({
      kind: "data",
      data: new Uint8Array(0),
      frameLength: 0,
      start: true,
      end: true,
    });
  });

  it("skips large unknown frames without buffering them", () => {
    const payload = new Uint8Array(100_000);
    const bytes = concat([
      encode({ kind: "unknown", type: 0x21n, payload }),
      encode({ kind: "cancel_push", pushId: 3 }),
    ]);
    const c = run(split(bytes, [1, 2, 50, 5000, 99_990]), { maxUnknownFrameSize: 16 });
    expect(c.frames).toEqual([
      { kind: "unknown", type: 0x21n, payload: new Uint8Array(0), discarded: 100_000 },
      { kind: "cancel_push", pushId: 3 },
    ]);
    // A small one is kept.
    expect(run([hex("2102abcd")], { maxUnknownFrameSize: 2 }).frames).toEqual([
      { kind: "unknown", type: 0x21n, payload: hex("abcd") },
    ]);
  });

  it("ends cleanly only on a frame boundary (§7.1)", () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { minLength: 1, maxLength: 6 }), fc.nat(), (frames, k) => {
        const encoded = frames.map(encode);
        const bytes = concat(encoded);
        const cut = k % (bytes.length + 1);
        const boundaries = new Set<number>([0]);
        let acc = 0;
        for (const f of encoded) {
          acc += f.length;
          boundaries.add(acc);
        }
        const reader = new FrameReader();
        reader.push(bytes.subarray(0, cut));
        reader.finish();
        if (boundaries.has(cut)) {
          reader.pullAll();
          expect(reader.done).toBe(true);
        } else {
          const err = h3ErrorOf(() => {
            for (;;) if (reader.pull() === undefined) return;
          });
          expect(err.code).toBe(H3ErrorCode.H3_FRAME_ERROR);
          expect(reader.done).toBe(false);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("rejects oversized HEADERS/SETTINGS with H3_EXCESSIVE_LOAD before buffering (§10.5)", () => {
    for (const type of ["01", "04", "05", "800f0700"]) {
      const reader = new FrameReader({ maxFrameSize: 1000 });
      reader.push(hex(`${type} 43e9`)); // Length 1001, no payload yet
      const err = h3ErrorOf(() => reader.pull());
      expect(err.code).toBe(H3ErrorCode.H3_EXCESSIVE_LOAD);
      expect(reader.bufferedBytes).toBe(0);
      // Sticky.
      expect(h3ErrorOf(() => reader.pull())).toBe(err);
    }
    // At the limit it is fine, and buffered only up to the limit.
    const reader = new FrameReader({ maxFrameSize: 1000 });
    reader.push(hex("01 43e8"));
    reader.push(new Uint8Array(999));
    expect(reader.pull()).toBeUndefined();
    expect(reader.bufferedBytes).toBe(999);
    reader.push(new Uint8Array(1));
    expect(reader.pull()).toEqual({
      kind: "frame",
      frame: { kind: "headers", fieldSection: new Uint8Array(1000) },
    });
  });

  it("rejects fixed-layout frames with an impossible Length from the header (§7.1)", () => {
    for (const bytes of ["03 09", "07 00", "0d 40 09", "07 c0000000ffffffff"]) {
      const reader = new FrameReader();
      reader.push(hex(bytes));
      expect(h3ErrorOf(() => reader.pull()).code).toBe(H3ErrorCode.H3_FRAME_ERROR);
    }
  });

  it("rejects HTTP/2 frame types as soon as the type is read (§7.2.8)", () => {
    for (const t of ["02", "06", "08", "09", "4002"]) {
      const reader = new FrameReader();
      reader.push(hex(t));
      expect(h3ErrorOf(() => reader.pull()).code).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
    }
  });

  it("rejects malformed payloads with H3_FRAME_ERROR and bad SETTINGS with H3_SETTINGS_ERROR", () => {
    const cases: [string, number][] = [
      ["07 02 04 00", H3ErrorCode.H3_FRAME_ERROR], // GOAWAY with an extra byte
      ["04 02 06 80", H3ErrorCode.H3_FRAME_ERROR], // SETTINGS value cut inside the payload
      ["04 04 06 00 06 01", H3ErrorCode.H3_SETTINGS_ERROR], // duplicate
      ["04 02 03 00", H3ErrorCode.H3_SETTINGS_ERROR], // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
      ["04 02 08 05", H3ErrorCode.H3_SETTINGS_ERROR], // ENABLE_CONNECT_PROTOCOL=5
    ];
    for (const [bytes, code] of cases) {
      const reader = new FrameReader();
      reader.push(hex(bytes));
      expect(h3ErrorOf(() => reader.pull()).code, bytes).toBe(code);
    }
  });

  it("refuses misuse", () => {
    expect(() => new FrameReader({ maxFrameSize: -1 })).toThrow(QuicUsageError);
    const reader = new FrameReader();
    reader.finish();
    expect(() => reader.push(new Uint8Array(1))).toThrow(QuicUsageError);
  });
});

describe("FrameReader stream rules", () => {
  const settings = encode({ kind: "settings", entries: [e(SettingId.H3_DATAGRAM, 1)] });
  const codeOf = (opts: FrameReaderOptions, ...frames: (H3Frame | Uint8Array)[]): number | undefined => {
    const reader = new FrameReader(opts);
    for (const f of frames) reader.push(f instanceof Uint8Array ? f : encode(f));
    try {
      reader.pullAll();
      return undefined;
    } catch (err) {
      if (err instanceof H3Error) return err.code;
      throw err;
    }
  };

  it("control stream: SETTINGS first and once (§6.2.1, §7.2.4)", () => {
    const control = { stream: "control" as const };
    expect(codeOf(control, settings, { kind: "goaway", id: 4n })).toBeUndefined();
    expect(codeOf(control, { kind: "goaway", id: 4n })).toBe(H3ErrorCode.H3_MISSING_SETTINGS);
    expect(codeOf(control, { kind: "unknown", type: 0x21n, payload: new Uint8Array(0) })).toBe(
      H3ErrorCode.H3_MISSING_SETTINGS,
    );
    expect(codeOf(control, settings, settings)).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
    expect(codeOf(control, settings, { kind: "data", data: new Uint8Array(1) })).toBe(
      H3ErrorCode.H3_FRAME_UNEXPECTED,
    );
    expect(codeOf(control, settings, { kind: "headers", fieldSection: new Uint8Array(1) })).toBe(
      H3ErrorCode.H3_FRAME_UNEXPECTED,
    );
    expect(codeOf({ ...control, role: "client" }, settings, { kind: "max_push_id", pushId: 1 })).toBe(
      H3ErrorCode.H3_FRAME_UNEXPECTED,
    );
    expect(
      codeOf({ ...control, role: "server" }, settings, { kind: "max_push_id", pushId: 1 }),
    ).toBeUndefined();
    expect(
      codeOf({ ...control, role: "client" }, settings, {
        kind: "priority_update",
        push: false,
        elementId: 0,
        value: "",
      }),
    ).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
  });

  it("control stream: its end is H3_CLOSED_CRITICAL_STREAM (§6.2.1)", () => {
    for (const bytes of [new Uint8Array(0), settings, settings.subarray(0, 3)]) {
      const reader = new FrameReader({ stream: "control" });
      reader.push(bytes);
      reader.pullAll();
      reader.finish();
      expect(h3ErrorOf(() => reader.pullAll()).code).toBe(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM);
    }
  });

  it("request and push streams (§7.2)", () => {
    const request = { stream: "request" as const };
    expect(codeOf(request, { kind: "headers", fieldSection: new Uint8Array(2) })).toBeUndefined();
    expect(codeOf(request, settings)).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
    expect(codeOf(request, { kind: "goaway", id: 0n })).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
    expect(codeOf(request, { kind: "cancel_push", pushId: 0 })).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
    const promise: H3Frame = { kind: "push_promise", pushId: 0, fieldSection: new Uint8Array(2) };
    expect(codeOf({ ...request, role: "client" }, promise)).toBeUndefined();
    expect(codeOf({ ...request, role: "server" }, promise)).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
    expect(codeOf({ stream: "push" }, promise)).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
    expect(codeOf({ stream: "push" }, { kind: "data", data: new Uint8Array(3) })).toBeUndefined();
  });

  it("WEBTRANSPORT_STREAM: signal then raw data", () => {
    const opts = { stream: "request" as const, webTransport: true };
    const bytes = concat([
      encode({ kind: "unknown", type: 0x21n, payload: new Uint8Array(0) }),
      encode({ kind: "webtransport_stream", sessionId: 8 }),
      hex("0102030405"),
    ]);
    fc.assert(
      fc.property(cutsArb, (cuts) => {
        const c = run(split(bytes, cuts), opts);
        expect(c.frames).toEqual([
          { kind: "unknown", type: 0x21n, payload: new Uint8Array(0) },
          { kind: "webtransport_stream", sessionId: 8 },
        ]);
        expect(concat(c.raw)).toEqual(hex("0102030405"));
      }),
    );
    const reader = new FrameReader(opts);
    reader.push(hex("4041 00"));
    reader.pullAll();
    expect(reader.isRaw).toBe(true);
    // After HTTP data it is unexpected (draft-02, quiche), and on other streams.
    expect(codeOf(opts, { kind: "headers", fieldSection: new Uint8Array(2) }, hex("404100"))).toBe(
      H3ErrorCode.H3_FRAME_UNEXPECTED,
    );
    expect(codeOf({ stream: "push", webTransport: true }, hex("404100"))).toBe(
      H3ErrorCode.H3_FRAME_UNEXPECTED,
    );
    // Without WebTransport, 0x41 is just an unknown frame with a Length.
    expect(run([hex("4041 01 aa")], { stream: "request" }).frames).toEqual([
      { kind: "unknown", type: 0x41n, payload: hex("aa") },
    ]);
  });
});

describe("FrameReader on hostile input", () => {
  const ALLOWED = new Set<number>([
    H3ErrorCode.H3_FRAME_ERROR,
    H3ErrorCode.H3_FRAME_UNEXPECTED,
    H3ErrorCode.H3_SETTINGS_ERROR,
    H3ErrorCode.H3_EXCESSIVE_LOAD,
    H3ErrorCode.H3_MISSING_SETTINGS,
    H3ErrorCode.H3_CLOSED_CRITICAL_STREAM,
  ]);

  const optsArb: fc.Arbitrary<FrameReaderOptions> = fc.record({
    maxFrameSize: fc.integer({ min: 0, max: 200 }),
    maxUnknownFrameSize: fc.integer({ min: 0, max: 200 }),
    webTransport: fc.boolean(),
    stream: fc.constantFrom(undefined, "control" as const, "request" as const, "push" as const),
    role: fc.constantFrom(undefined, "client" as const, "server" as const),
  });

  /** Feeds everything; only H3Error may escape, and memory stays bounded. */
  function feed(chunks: Uint8Array[], opts: FrameReaderOptions, fin: boolean): void {
    const reader = new FrameReader(opts);
    const bound = Math.max(opts.maxFrameSize ?? 65536, opts.maxUnknownFrameSize ?? 4096) + 16;
    try {
      for (const chunk of chunks) {
        reader.push(chunk);
        reader.pullAll();
        expect(reader.bufferedBytes).toBeLessThanOrEqual(bound);
      }
      if (fin) {
        reader.finish();
        reader.pullAll();
      }
    } catch (err) {
      if (!(err instanceof H3Error)) throw err;
      expect(ALLOWED.has(err.code), err.message).toBe(true);
      expect(() => reader.pull()).toThrow(err);
    }
  }

  it("random bytes", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        cutsArb,
        optsArb,
        fc.boolean(),
        (bytes, cuts, opts, fin) => {
          feed(split(bytes, cuts), opts, fin);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("mutated, truncated and extended valid streams", () => {
    const mutation = fc.record({
      at: fc.nat(),
      op: fc.constantFrom("flip", "delete", "insert", "truncate"),
      byte: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(
        fc.array(arbFrame, { maxLength: 6 }),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        cutsArb,
        optsArb,
        fc.boolean(),
        (frames, mutations, cuts, opts, fin) => {
          let bytes = Array.from(concat(frames.map(encode)));
          for (const m of mutations) {
            const i = bytes.length === 0 ? 0 : m.at % bytes.length;
            if (m.op === "flip" && bytes.length > 0) bytes[i] ^= m.byte || 1;
            else if (m.op === "delete") bytes.splice(i, 1);
            else if (m.op === "insert") bytes.splice(i, 0, m.byte);
            else bytes = bytes.slice(0, i);
          }
          feed(split(Uint8Array.from(bytes), cuts), opts, fin);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("a huge declared Length never allocates", () => {
    for (const type of ["01", "04", "21", "00"]) {
      const reader = new FrameReader();
      reader.push(hex(`${type} ffffffffffffffff`));
      try {
        reader.pullAll();
      } catch (err) {
        expect(err).toBeInstanceOf(H3Error);
      }
      expect(reader.bufferedBytes).toBe(0);
    }
  });
});
