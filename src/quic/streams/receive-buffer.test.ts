import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicError, TransportErrorCode } from "../errors.ts";
import { CryptoReceiveBuffer, ReceiveBuffer } from "./receive-buffer.ts";

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof QuicError) return e.code;
    throw e;
  }
  throw new Error("did not throw");
}

const bytes = (...v: number[]) => Uint8Array.from(v);

/** Reads everything readable with read(max) views. */
function drain(rb: ReceiveBuffer, max = Number.POSITIVE_INFINITY): number[] {
  const out: number[] = [];
  for (let v = rb.read(max); v !== null; v = rb.read(max)) out.push(...v);
  return out;
}

describe("ReceiveBuffer", () => {
  it("delivers in-order data without copying", () => {
    const rb = new ReceiveBuffer();
    const a = bytes(1, 2, 3);
    rb.insert(0, a);
    expect(rb.readable).toBe(3);
    const v = rb.read();
    expect(v).toBe(a); // the very view that was inserted
    expect(rb.read()).toBeNull();
    expect(rb.readOffset).toBe(3);
    expect(rb.bufferedBytes).toBe(0);
  });

  it("copies on insert when asked to", () => {
    const rb = new ReceiveBuffer({ copy: true });
    const a = bytes(1, 2, 3);
    rb.insert(0, a);
    a[0] = 99;
    expect([...(rb.read() as Uint8Array)]).toEqual([1, 2, 3]);
  });

  it("reassembles out of order and holds data behind a gap", () => {
    const rb = new ReceiveBuffer();
    rb.insert(3, bytes(3, 4));
    rb.insert(7, bytes(7));
    expect(rb.readable).toBe(0);
    expect(rb.read()).toBeNull();
    expect(rb.outOfOrderBytes).toBe(3);
    rb.insert(0, bytes(0, 1, 2));
    expect(rb.readable).toBe(5);
    rb.insert(5, bytes(5, 6));
    expect(rb.readable).toBe(8);
    expect(drain(rb, 2)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("keeps the first data on overlap and fills only the gaps", () => {
    const rb = new ReceiveBuffer();
    rb.insert(2, bytes(20, 30));
    rb.insert(6, bytes(60));
    rb.insert(0, bytes(0, 1, 2, 3, 4, 5, 6, 7, 8)); // overlaps both stored pieces
    expect(drain(rb)).toEqual([0, 1, 20, 30, 4, 5, 60, 7, 8]);
    // Data entirely below the read offset is ignored.
    rb.insert(0, bytes(9, 9, 9));
    expect(rb.readable).toBe(0);
    expect(rb.bufferedBytes).toBe(0);
  });

  it("readInto copies across pieces and partial pieces", () => {
    const rb = new ReceiveBuffer();
    rb.insert(0, bytes(0, 1));
    rb.insert(2, bytes(2, 3, 4));
    const dst = new Uint8Array(4);
    expect(rb.readInto(dst)).toBe(4);
    expect([...dst]).toEqual([0, 1, 2, 3]);
    expect(rb.readInto(dst, 3)).toBe(1);
    expect(dst[3]).toBe(4);
    expect(rb.readInto(dst)).toBe(0);
  });

  it("tracks the final size and completion", () => {
    const rb = new ReceiveBuffer();
    rb.insert(2, bytes(2, 3), true);
    expect(rb.finalSize).toBe(4);
    expect(rb.allReceived).toBe(false);
    rb.insert(0, bytes(0, 1));
    expect(rb.allReceived).toBe(true);
    expect(rb.finished).toBe(false);
    drain(rb);
    expect(rb.finished).toBe(true);
    // Empty FIN frame at the end is fine (same final size).
    rb.insert(4, new Uint8Array(0), true);
    const empty = new ReceiveBuffer();
    empty.insert(0, new Uint8Array(0), true);
    expect(empty.allReceived && empty.finished).toBe(true);
  });

  it("enforces the final-size rules of §4.5 with FINAL_SIZE_ERROR", () => {
    const FINAL = TransportErrorCode.FINAL_SIZE_ERROR;
    // A FIN changing the final size.
    let rb = new ReceiveBuffer();
    rb.insert(0, bytes(1, 2), true);
    expect(codeOf(() => rb.insert(0, bytes(1, 2, 3), true))).toBe(FINAL);
    expect(codeOf(() => rb.insert(0, bytes(1), true))).toBe(FINAL);
    // Data beyond the final size — exactly one byte beyond.
    expect(codeOf(() => rb.insert(2, bytes(3)))).toBe(FINAL);
    rb.insert(1, bytes(2)); // within: fine
    // A FIN below data already received.
    rb = new ReceiveBuffer();
    rb.insert(5, bytes(5, 6));
    expect(codeOf(() => rb.insert(0, bytes(0), true))).toBe(FINAL);
    rb.insert(0, bytes(0, 1, 2, 3, 4, 5, 6), true); // at the highest offset: fine
    // RESET_STREAM with a different final size / below data received.
    rb = new ReceiveBuffer();
    rb.insert(0, bytes(1, 2, 3), true);
    expect(codeOf(() => rb.onReset(4))).toBe(FINAL);
    rb = new ReceiveBuffer();
    rb.insert(0, bytes(1, 2, 3));
    expect(codeOf(() => rb.onReset(2))).toBe(FINAL);
    rb.onReset(10);
    expect(rb.discarded).toBe(true);
    expect(rb.finalSize).toBe(10);
    expect(rb.bufferedBytes).toBe(0);
    // After a reset, data is ignored but still checked against the final size.
    rb.insert(3, bytes(4, 5));
    expect(rb.readable).toBe(0);
    expect(codeOf(() => rb.insert(9, bytes(1, 2)))).toBe(FINAL);
  });

  it("discard drops buffered data and reports how much", () => {
    const rb = new ReceiveBuffer();
    rb.insert(0, bytes(1, 2));
    rb.insert(5, bytes(1, 2, 3));
    expect(rb.discard()).toBe(5);
    rb.insert(2, bytes(1, 2, 3));
    expect(rb.readable).toBe(0);
    expect(rb.highestOffset).toBe(8);
  });

  it("reassembles any fragmentation, duplication and reordering exactly (property)", () => {
    const scenario = fc.uint8Array({ minLength: 0, maxLength: 600 }).chain((data) =>
      fc.record({
        data: fc.constant(data),
        // Cut points define a covering set of frames; extra random frames duplicate/overlap.
        cuts: fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, data.length - 1) }), { maxLength: 30 }),
        extra: fc.array(fc.record({ s: fc.nat(data.length), len: fc.nat(80) }), { maxLength: 20 }),
        order: fc.array(fc.nat(), { maxLength: 80 }),
        reads: fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 80 }),
        copy: fc.boolean(),
        useReadInto: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(scenario, ({ data, cuts, extra, order, reads, copy, useReadInto }) => {
        const n = data.length;
        const points = [0, ...cuts.filter((c) => c < n).sort((a, b) => a - b), n];
        const frames: { off: number; end: number }[] = [];
        for (let i = 0; i + 1 < points.length; i++) frames.push({ off: points[i], end: points[i + 1] });
        if (frames.length === 0) frames.push({ off: 0, end: 0 });
        for (const { s, len } of extra) frames.push({ off: s, end: Math.min(n, s + len) });
        // Shuffle with the random keys.
        const keyed = frames.map((f, i) => ({ f, k: order[i] ?? i }));
        keyed.sort((a, b) => a.k - b.k);

        const rb = new ReceiveBuffer({ copy });
        const out: number[] = [];
        let r = 0;
        const readSome = () => {
          const max = reads[r++ % Math.max(1, reads.length)] ?? 50;
          if (useReadInto) {
            const dst = new Uint8Array(max);
            const k = rb.readInto(dst);
            for (let i = 0; i < k; i++) out.push(dst[i]);
          } else {
            const v = rb.read(max);
            if (v) out.push(...v);
          }
        };
        for (const { f } of keyed) {
          // FIN on every frame that reaches the end (consistent final size).
          rb.insert(f.off, data.subarray(f.off, f.end), f.end === n);
          readSome();
          expect(rb.bufferedBytes).toBeGreaterThanOrEqual(rb.readable);
        }
        expect(rb.allReceived).toBe(true);
        while (rb.readable > 0) readSome();
        expect(out).toEqual([...data]);
        expect(rb.finished).toBe(true);
        expect(rb.bufferedBytes).toBe(0);
        expect(rb.highestOffset).toBe(n);
      }),
    );
  });
});

describe("CryptoReceiveBuffer", () => {
  it("errors with CRYPTO_BUFFER_EXCEEDED one byte beyond the out-of-order limit (§7.5)", () => {
    const cb = new CryptoReceiveBuffer(4096);
    cb.insert(10, new Uint8Array(4096)); // exactly the limit, behind a gap
    expect(cb.outOfOrderBytes).toBe(4096);
    expect(codeOf(() => cb.insert(5000, new Uint8Array(1)))).toBe(TransportErrorCode.CRYPTO_BUFFER_EXCEEDED);
    const cb2 = new CryptoReceiveBuffer(4096);
    cb2.insert(1, new Uint8Array(4096));
    cb2.insert(0, new Uint8Array(1)); // fills the gap: all readable, nothing out of order
    expect(cb2.outOfOrderBytes).toBe(0);
    cb2.insert(4098, new Uint8Array(4096)); // in-order data being readable does not count
    expect(cb2.readable).toBe(4097);
    expect(() => new CryptoReceiveBuffer(4095)).toThrow(RangeError);
  });
});
