import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { SendBuffer, type SendChunk, SMALL_WRITE } from "./send-buffer.ts";

const seq = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

describe("SendBuffer", () => {
  it("sends new data as a view of a large write (zero copy)", () => {
    const sb = new SendBuffer();
    const big = seq(5000);
    sb.write(big);
    const c = sb.nextChunk(1200) as SendChunk;
    expect(c.offset).toBe(0);
    expect(c.data.length).toBe(1200);
    expect(c.data.buffer).toBe(big.buffer);
    expect(c.retransmit).toBe(false);
    expect(c.fin).toBe(false);
    expect(sb.sentOffset).toBe(1200);
  });

  it("coalesces small writes into one frame", () => {
    const sb = new SendBuffer();
    for (let i = 0; i < 10; i++) sb.write(seq(10, i * 10));
    const c = sb.nextChunk(1000) as SendChunk;
    expect(c.data.length).toBe(100);
    expect([...c.data]).toEqual([...seq(100)]);
    // Small writes are copied: mutating the source afterwards does not matter.
    const src = seq(5, 100);
    sb.write(src);
    src.fill(0);
    expect([...(sb.nextChunk(1000) as SendChunk).data]).toEqual([...seq(5, 100)]);
  });

  it("starts with a small staging block and doubles it up to 16 KiB, keeping every byte", () => {
    const sb = new SendBuffer();
    sb.write(seq(30, 0)); // a request head
    expect(sb.stagingBytes).toBe(256);
    const sizes: number[] = [];
    let written = 30;
    while (written < 40_000) {
      sb.write(seq(100, written));
      written += 100;
      if (sizes[sizes.length - 1] !== sb.stagingBytes) sizes.push(sb.stagingBytes);
    }
    expect(sizes).toEqual([256, 512, 1024, 2048, 4096, 8192, 16384]);
    const got: number[] = [];
    for (let c = sb.nextChunk(100_000); c !== null; c = sb.nextChunk(100_000)) got.push(...c.data);
    expect(got).toEqual([...seq(written)]);
  });

  it("copies only when a frame straddles stored chunks", () => {
    const sb = new SendBuffer();
    const a = seq(SMALL_WRITE * 2);
    const b = seq(SMALL_WRITE * 2, 7);
    sb.write(a);
    sb.write(b);
    const c = sb.nextChunk(SMALL_WRITE * 3) as SendChunk;
    expect(c.data.buffer).not.toBe(a.buffer);
    expect([...c.data]).toEqual([...a, ...b.subarray(0, SMALL_WRITE)]);
    const d = sb.nextChunk(100000) as SendChunk;
    expect(d.data.buffer).toBe(b.buffer);
  });

  it("retransmits lost ranges first, then new data", () => {
    const sb = new SendBuffer();
    sb.write(seq(3000));
    sb.nextChunk(1000);
    sb.nextChunk(1000);
    sb.onLost(0, 1000, false);
    const c = sb.nextChunk(600) as SendChunk;
    expect([c.offset, c.data.length, c.retransmit]).toEqual([0, 600, true]);
    const d = sb.nextChunk(600) as SendChunk;
    expect([d.offset, d.data.length, d.retransmit]).toEqual([600, 400, true]);
    const e = sb.nextChunk(600) as SendChunk;
    expect([e.offset, e.retransmit]).toEqual([2000, false]);
  });

  it("does not resend what was acknowledged after a loss (spurious loss)", () => {
    const sb = new SendBuffer();
    sb.write(seq(3000));
    sb.nextChunk(3000);
    sb.onAcked(1000, 500, false);
    sb.onLost(0, 3000, false);
    const got: [number, number][] = [];
    for (let c = sb.nextChunk(10000); c; c = sb.nextChunk(10000)) got.push([c.offset, c.data.length]);
    expect(got).toEqual([
      [0, 1000],
      [1500, 1500],
    ]);
    // Acked after being queued: dropped from the retransmission queue.
    sb.onLost(0, 1000, false);
    sb.onAcked(0, 1000, false);
    expect(sb.hasLost).toBe(false);
    expect(sb.nextChunk(1000)).toBeNull();
  });

  it("respects the flow-control limit for new data only", () => {
    const sb = new SendBuffer();
    sb.write(seq(3000));
    expect(sb.nextChunk(5000, 1000)?.data.length).toBe(1000);
    expect(sb.nextChunk(5000, 1000)).toBeNull();
    expect(sb.isBlocked(1000)).toBe(true);
    expect(sb.hasDataToSend(1000)).toBe(false);
    sb.onLost(0, 1000, false);
    // Retransmission is not limited by flow control (already counted).
    expect(sb.nextChunk(5000, 1000)?.data.length).toBe(1000);
    expect(sb.isBlocked(3000)).toBe(false);
    expect(sb.nextChunk(5000, 3000)?.data.length).toBe(2000);
    expect(sb.isBlocked(3000)).toBe(false);
  });

  it("sends FIN with the last data, or alone, and resends it when lost", () => {
    const sb = new SendBuffer();
    sb.write(seq(100));
    sb.finish();
    expect(sb.finalSize).toBe(100);
    const c = sb.nextChunk(1000) as SendChunk;
    expect(c.fin).toBe(true);
    expect(sb.nextChunk(1000)).toBeNull();
    sb.onLost(0, 100, true);
    const r = sb.nextChunk(1000) as SendChunk;
    expect([r.offset, r.data.length, r.fin, r.retransmit]).toEqual([0, 100, true, true]);
    sb.onAcked(0, 100, true);
    expect(sb.isFullyAcked).toBe(true);
    expect(sb.bufferedBytes).toBe(0);

    const s2 = new SendBuffer();
    s2.write(seq(10));
    expect(s2.nextChunk(100)?.fin).toBe(false);
    s2.finish();
    expect(s2.hasDataToSend()).toBe(true);
    const f = s2.nextChunk(100) as SendChunk;
    expect([f.offset, f.data.length, f.fin]).toEqual([10, 0, true]);
    s2.onAcked(0, 10, false);
    expect(s2.isFullyAcked).toBe(false);
    s2.onLost(10, 0, true);
    const f2 = s2.nextChunk(100) as SendChunk;
    expect([f2.offset, f2.data.length, f2.fin, f2.retransmit]).toEqual([10, 0, true, true]);
    s2.onAcked(10, 0, true);
    expect(s2.isFullyAcked).toBe(true);
    expect(() => s2.write(seq(1))).toThrow(QuicUsageError);
  });

  it("reset frees everything and reports the final size", () => {
    const sb = new SendBuffer();
    sb.write(seq(5000));
    sb.nextChunk(1200);
    expect(sb.reset()).toBe(1200);
    expect(sb.bufferedBytes).toBe(0);
    expect(sb.nextChunk(1000)).toBeNull();
    expect(sb.hasDataToSend()).toBe(false);
    expect(() => sb.write(seq(1))).toThrow(QuicUsageError);
  });

  it("fills a caller-provided chunk object", () => {
    const sb = new SendBuffer();
    sb.write(seq(10));
    const out: SendChunk = { offset: -1, data: new Uint8Array(0), fin: false, retransmit: true };
    expect(sb.nextChunk(4, Number.POSITIVE_INFINITY, out)).toBe(out);
    expect([out.offset, out.data.length, out.retransmit]).toEqual([0, 4, false]);
  });

  it("delivers every byte exactly once as acked and frees memory under random acks/losses (property)", () => {
    const scenario = fc.record({
      writes: fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 12 }),
      copy: fc.boolean(),
      steps: fc.array(
        fc.record({
          maxBytes: fc.integer({ min: 1, max: 1500 }),
          credit: fc.integer({ min: 0, max: 3000 }),
          fate: fc.constantFrom("ack", "lose", "lose-then-ack", "hold"),
          pick: fc.nat(),
        }),
        { maxLength: 400 },
      ),
    });
    fc.assert(
      fc.property(scenario, ({ writes, copy, steps }) => {
        const sb = new SendBuffer();
        const source: number[] = [];
        let v = 0;
        for (const len of writes) {
          const data = Uint8Array.from({ length: len }, () => v++ & 0xff);
          source.push(...data);
          sb.write(data, copy);
        }
        sb.finish();
        const total = source.length;
        let flowLimit = 0;
        let ackedSum = 0;
        const inFlight: { offset: number; len: number; fin: boolean }[] = [];
        const lostRanges: [number, number][] = [];
        let finFrames = 0;

        const settle = (idx: number, fate: string) => {
          const [f] = inFlight.splice(idx, 1);
          if (fate === "ack") ackedSum += sb.onAcked(f.offset, f.len, f.fin);
          else if (fate === "lose") {
            sb.onLost(f.offset, f.len, f.fin);
            lostRanges.push([f.offset, f.offset + f.len]);
          } else {
            // Declared lost, then its ACK arrives anyway.
            sb.onLost(f.offset, f.len, f.fin);
            lostRanges.push([f.offset, f.offset + f.len]);
            ackedSum += sb.onAcked(f.offset, f.len, f.fin);
          }
        };

        const sendOne = (maxBytes: number): boolean => {
          const sentBefore = sb.sentOffset;
          const c = sb.nextChunk(maxBytes, flowLimit);
          if (!c) return false;
          expect(c.data.length).toBeLessThanOrEqual(maxBytes);
          expect([...c.data]).toEqual(source.slice(c.offset, c.offset + c.data.length));
          if (c.retransmit) {
            // Only ranges that were declared lost come back.
            for (let b = c.offset; b < c.offset + c.data.length; b++) {
              expect(lostRanges.some(([s, e]) => s <= b && b < e)).toBe(true);
            }
          } else {
            expect(c.offset).toBe(sentBefore);
          }
          expect(sb.sentOffset).toBeLessThanOrEqual(Math.max(flowLimit, sentBefore));
          if (c.fin) {
            expect(c.offset + c.data.length).toBe(total);
            finFrames++;
          }
          inFlight.push({ offset: c.offset, len: c.data.length, fin: c.fin });
          return true;
        };

        for (const s of steps) {
          flowLimit += s.credit;
          sendOne(s.maxBytes);
          if (inFlight.length > 0 && s.fate !== "hold") settle(s.pick % inFlight.length, s.fate);
        }
        // Drain: full credit, ack everything eventually.
        flowLimit = Number.POSITIVE_INFINITY;
        for (let guard = 0; !sb.isFullyAcked; guard++) {
          expect(guard).toBeLessThan(100_000);
          while (sendOne(1200)) {}
          while (inFlight.length > 0) settle(0, "ack");
        }
        expect(ackedSum).toBe(total);
        expect(sb.ackedOffset).toBe(total);
        expect(sb.bufferedBytes).toBe(0);
        expect(finFrames).toBeGreaterThanOrEqual(1);
        expect(sb.hasDataToSend()).toBe(false);
        expect(sb.nextChunk(1000)).toBeNull();
      }),
    );
  });

  it("frees acknowledged prefix memory incrementally", () => {
    const sb = new SendBuffer();
    for (let i = 0; i < 100; i++) sb.write(seq(2000));
    expect(sb.bufferedBytes).toBe(200_000);
    for (let i = 0; i < 50; i++) {
      const c = sb.nextChunk(2000) as SendChunk;
      sb.onAcked(c.offset, c.data.length, c.fin);
    }
    expect(sb.bufferedBytes).toBe(100_000);
    // An out-of-order ack does not free memory below the gap.
    const c1 = sb.nextChunk(2000) as SendChunk;
    const c2 = sb.nextChunk(2000) as SendChunk;
    sb.onAcked(c2.offset, c2.data.length, false);
    expect(sb.bufferedBytes).toBe(100_000);
    sb.onAcked(c1.offset, c1.data.length, false);
    expect(sb.bufferedBytes).toBe(96_000);
  });
});

describe("SendBuffer.resetAt (RESET_STREAM_AT, reliable-stream-reset §5)", () => {
  it("sends and retransmits only below the Reliable Size, never a FIN", () => {
    const b = new SendBuffer();
    b.write(new Uint8Array(100).fill(7));
    b.finish();
    const first = b.nextChunk(30)!;
    expect(first.offset).toBe(0);
    expect(first.data.length).toBe(30);
    b.resetAt(60);
    expect(b.reliableSize).toBe(60);
    // New data stops at 60 and carries no FIN.
    const next = b.nextChunk(1000)!;
    expect(next.offset).toBe(30);
    expect(next.data.length).toBe(30);
    expect(next.fin).toBe(false);
    expect(b.nextChunk(1000)).toBeNull();
    expect(b.hasDataToSend()).toBe(false);
    // A loss below the Reliable Size is sent again; above it, not.
    b.onLost(20, 40, false);
    const again = b.nextChunk(1000)!;
    expect([again.offset, again.data.length]).toEqual([20, 40]);
    expect(b.nextChunk(1000)).toBeNull();
    b.onAcked(0, 60, false);
    expect(b.ackedOffset).toBe(60);
  });

  it("may lower the Reliable Size but never raise it; rejects sizes past the data written", () => {
    const b = new SendBuffer();
    b.write(new Uint8Array(50));
    b.resetAt(40);
    b.resetAt(45);
    expect(b.reliableSize).toBe(40);
    b.resetAt(10);
    expect(b.reliableSize).toBe(10);
    expect(() => b.resetAt(-1)).toThrow(QuicUsageError);
    expect(() => new SendBuffer().resetAt(1)).toThrow(QuicUsageError);
  });
});
