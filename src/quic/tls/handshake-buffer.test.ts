/**
 * HandshakeBuffer tests: framing of the CRYPTO byte stream into messages under any chunking, the
 * message size limit (rejected from the header alone), and buffer ownership.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import {
  DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE,
  HandshakeBuffer,
  type RawHandshakeMessage,
} from "./handshake-buffer.ts";
import { decodeHandshake, HandshakeType } from "./messages.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** RFC 8448 §3: the server's encrypted flight (EncryptedExtensions, Certificate, CertificateVerify, Finished). */
const SERVER_FLIGHT = hex(
  "080000240022000a00140012001d00170018001901000101010201030104001c00024001000000000b0001b9000001b5" +
    "0001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a0603550403130372" +
    "7361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372" +
    "736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c" +
    "0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0cc" +
    "b0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a" +
    "8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0" +
    "300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594" +
    "365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1" +
    "fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b4" +
    "2b4de100000f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc" +
    "90db78e2d33a5c141a078653fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671" +
    "459e46445c9ea58c181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3140000" +
    "209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718",
);

function frame(type: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.length);
  out[0] = type;
  out[1] = body.length >>> 16;
  out[2] = body.length >>> 8;
  out[3] = body.length;
  out.set(body, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const summary = (ms: RawHandshakeMessage[]) => ms.map((m) => [m.type, toHex(m.raw)]);

function alertOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof TlsError) return e.alert;
    throw e;
  }
  return undefined;
}

describe("HandshakeBuffer framing", () => {
  it("splits the RFC 8448 server flight into its four messages", () => {
    const hb = new HandshakeBuffer();
    const msgs = hb.pushAndDrain(SERVER_FLIGHT);
    expect(msgs.map((m) => m.type)).toEqual([
      HandshakeType.encrypted_extensions,
      HandshakeType.certificate,
      HandshakeType.certificate_verify,
      HandshakeType.finished,
    ]);
    expect(msgs.map((m) => m.raw.length)).toEqual([40, 445, 136, 36]);
    expect(toHex(concat(msgs.map((m) => m.raw)))).toBe(toHex(SERVER_FLIGHT));
    for (const m of msgs) {
      expect(toHex(m.body)).toBe(toHex(m.raw.subarray(4)));
      expect(decodeHandshake(m.raw).type).toBe(m.type);
    }
    expect(hb.bufferedBytes).toBe(0);
    expect(hb.atMessageBoundary).toBe(true);
  });

  it("one byte at a time gives the same messages, each as soon as its last byte arrives", () => {
    const hb = new HandshakeBuffer();
    const out: RawHandshakeMessage[] = [];
    const completedAt: number[] = [];
    for (let i = 0; i < SERVER_FLIGHT.length; i++) {
      const got = hb.pushAndDrain(SERVER_FLIGHT.subarray(i, i + 1));
      if (got.length > 0) completedAt.push(i + 1);
      out.push(...got);
      expect(hb.atMessageBoundary).toBe(completedAt[completedAt.length - 1] === i + 1);
    }
    expect(completedAt).toEqual([40, 485, 621, 657]);
    expect(summary(out)).toEqual(summary(new HandshakeBuffer().pushAndDrain(SERVER_FLIGHT)));
  });

  it("random messages under random chunking = the same messages from the whole input", () => {
    const message = fc
      .record({ type: fc.integer({ min: 0, max: 255 }), body: fc.uint8Array({ maxLength: 700 }) })
      .map(({ type, body }) => frame(type, body));
    fc.assert(
      fc.property(
        fc.array(message, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (frames, cuts) => {
          const all = concat(frames);
          const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
          const hb = new HandshakeBuffer({ maxMessageSize: 700 });
          const out: RawHandshakeMessage[] = [];
          let prev = 0;
          for (const p of [...points, all.length]) {
            hb.push(all.subarray(prev, p));
            // Sometimes leave messages queued across pushes.
            if (p % 3 !== 0) for (let m = hb.next(); m; m = hb.next()) out.push(m);
            prev = p;
          }
          for (let m = hb.next(); m; m = hb.next()) out.push(m);
          expect(out.map((m) => toHex(m.raw))).toEqual(frames.map(toHex));
          expect(out.map((m) => m.type)).toEqual(frames.map((f) => f[0]));
          expect(hb.bufferedBytes).toBe(0);
          expect(hb.atMessageBoundary).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("empty bodies and empty pushes", () => {
    const hb = new HandshakeBuffer();
    hb.push(new Uint8Array());
    expect(hb.next()).toBeUndefined();
    const msgs = hb.pushAndDrain(hex("050000001800000101"));
    expect(msgs.map((m) => [m.type, toHex(m.body)])).toEqual([
      [5, ""],
      [24, "01"],
    ]);
  });

  it("reports a partial message: header bytes only, or header without its whole body", () => {
    const hb = new HandshakeBuffer();
    hb.push(hex("14"));
    expect(hb.atMessageBoundary).toBe(false);
    expect(hb.next()).toBeUndefined();
    hb.push(hex("000002aa"));
    expect(hb.atMessageBoundary).toBe(false);
    expect(hb.bufferedBytes).toBe(5);
    expect(hb.next()).toBeUndefined();
    hb.push(hex("bb14"));
    // A complete message is queued but the next one has started.
    expect(hb.atMessageBoundary).toBe(false);
    expect(toHex(hb.next()?.raw ?? new Uint8Array())).toBe("14000002aabb");
    expect(hb.bufferedBytes).toBe(1);
    expect(hb.atMessageBoundary).toBe(false);
    hb.push(hex("00000100"));
    // Complete but not yet taken: no partial message, yet bytes remain unconsumed.
    expect(hb.atMessageBoundary).toBe(true);
    expect(hb.bufferedBytes).toBe(5);
    expect(toHex(hb.next()?.raw ?? new Uint8Array())).toBe("1400000100");
    expect(hb.bufferedBytes).toBe(0);
  });

  it("copies: later changes to pushed chunks or returned messages affect nothing else", () => {
    const hb = new HandshakeBuffer();
    const chunk = hex("0800000200000800");
    hb.push(chunk);
    chunk.fill(0xff);
    const first = hb.next();
    expect(toHex(first?.raw ?? new Uint8Array())).toBe("0800000200" + "00");
    first?.raw.fill(0xee);
    hb.push(hex("000200000b0000"));
    expect(summary(hb.pushAndDrain(new Uint8Array()))).toEqual([[8, "080000020000"]]);
  });
});

describe("HandshakeBuffer size limit", () => {
  it("defaults to 64 KiB and accepts a message of exactly the limit", () => {
    expect(DEFAULT_MAX_HANDSHAKE_MESSAGE_SIZE).toBe(65536);
    const hb = new HandshakeBuffer({ maxMessageSize: 100 });
    const ok = frame(11, new Uint8Array(100).fill(7));
    expect(hb.pushAndDrain(ok).map((m) => m.body.length)).toEqual([100]);
  });

  it("rejects an oversized message from its 4 header bytes alone, with illegal_parameter", () => {
    const hb = new HandshakeBuffer({ maxMessageSize: 100 });
    expect(alertOf(() => hb.push(hex("0b000065")))).toBe(AlertDescription.illegal_parameter);
    expect(hb.bufferedBytes).toBe(0);
    // The buffer stays failed.
    expect(alertOf(() => hb.push(hex("00")))).toBe(AlertDescription.illegal_parameter);
    expect(alertOf(() => hb.next())).toBe(AlertDescription.illegal_parameter);
  });

  it("a 16 MiB length field is refused at once by the default limit (nothing of it is buffered)", () => {
    const hb = new HandshakeBuffer();
    hb.push(hex("01ff"));
    expect(hb.bufferedBytes).toBe(2);
    const before = process.memoryUsage().arrayBuffers;
    expect(alertOf(() => hb.push(hex("ffff")))).toBe(AlertDescription.illegal_parameter);
    expect(hb.bufferedBytes).toBe(0);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(8 * 1024 * 1024);
  });

  it("an oversized header behind complete messages in the same chunk fails the push itself", () => {
    const hb = new HandshakeBuffer({ maxMessageSize: 10 });
    expect(alertOf(() => hb.push(hex("1400000100" + "0b00000b")))).toBe(AlertDescription.illegal_parameter);
  });

  it("never holds more than one partial message of at most limit + 4 bytes", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 40 }), (sizes) => {
        const hb = new HandshakeBuffer({ maxMessageSize: 64 });
        const stream = concat(sizes.map((n) => frame(1, new Uint8Array(Math.min(n, 64)))));
        for (let i = 0; i < stream.length; i += 7) {
          hb.pushAndDrain(stream.subarray(i, i + 7));
          expect(hb.bufferedBytes).toBeLessThanOrEqual(64 + 4);
        }
        expect(hb.bufferedBytes).toBe(0);
      }),
    );
  });

  it("refuses nonsensical limits", () => {
    expect(() => new HandshakeBuffer({ maxMessageSize: -1 })).toThrow(QuicUsageError);
    expect(() => new HandshakeBuffer({ maxMessageSize: 2 ** 24 })).toThrow(QuicUsageError);
    expect(() => new HandshakeBuffer({ maxMessageSize: 1.5 })).toThrow(QuicUsageError);
    expect(new HandshakeBuffer({ maxMessageSize: 2 ** 24 - 1 }).maxMessageSize).toBe(2 ** 24 - 1);
  });
});

describe("HandshakeBuffer storage release", () => {
  const msg = (type: number, body: number[]) => Uint8Array.from([type, 0, 0, body.length, ...body]);
  const storage = (b: HandshakeBuffer) => (b as unknown as { buf: Uint8Array }).buf.length;

  it("keeps a partial message and releases storage only once everything was consumed", () => {
    const b = new HandshakeBuffer();
    const m = msg(4, [1, 2, 3, 4, 5]);
    b.push(m.subarray(0, 6));
    b.releaseStorage();
    expect(b.bufferedBytes).toBe(6);
    expect(storage(b)).toBeGreaterThan(0);
    b.push(m.subarray(6));
    expect(Array.from(b.next()!.raw)).toEqual(Array.from(m));
    expect(storage(b)).toBeGreaterThan(0);
    b.releaseStorage();
    expect(storage(b)).toBe(0);
    // Still usable afterwards: a later message is framed as before.
    const m2 = msg(24, [9]);
    expect(b.pushAndDrain(m2).map((r) => Array.from(r.raw))).toEqual([Array.from(m2)]);
  });
});
