import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AckRanges } from "./ack-ranges.ts";
import { ByteReader, ByteWriter } from "./bytes.ts";
import { type AckFrame, decodeFrame, encodeFrame, frameSize } from "./frames.ts";

/** Ascending [low, high] pairs of a set of integers. */
function rangesOf(set: Set<number>): [number, number][] {
  const sorted = [...set].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const v of sorted) {
    const last = out[out.length - 1];
    if (last && last[1] + 1 === v) last[1] = v;
    else out.push([v, v]);
  }
  return out;
}

function rangesOfAck(a: AckRanges): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < a.rangeCount; i++) out.push([a.rangeLow(i), a.rangeHigh(i)]);
  return out;
}

/** Reference model: a plain Set, a floor, and the same cap rule. */
class Model {
  set = new Set<number>();
  floor = 0;
  constructor(readonly cap: number) {}
  insert(pn: number): boolean {
    if (pn < this.floor || this.set.has(pn)) return false;
    this.set.add(pn);
    const rs = rangesOf(this.set);
    if (rs.length > this.cap) {
      const [lo, hi] = rs[0];
      for (let v = lo; v <= hi; v++) this.set.delete(v);
      this.floor = hi + 1;
    }
    return true;
  }
  removeBelow(pn: number): void {
    if (pn <= this.floor) return;
    this.floor = pn;
    for (const v of [...this.set]) if (v < pn) this.set.delete(v);
  }
}

describe("AckRanges", () => {
  it("merges adjacent numbers and keeps gaps", () => {
    const a = new AckRanges();
    for (const pn of [0, 1, 2, 5, 6, 9]) expect(a.insert(pn)).toBe(true);
    expect(rangesOfAck(a)).toEqual([
      [0, 2],
      [5, 6],
      [9, 9],
    ]);
    expect(a.largest).toBe(9);
    expect(a.smallest).toBe(0);
    // Filling the gaps joins ranges.
    expect(a.insert(4)).toBe(true);
    expect(a.insert(3)).toBe(true);
    expect(rangesOfAck(a)).toEqual([
      [0, 6],
      [9, 9],
    ]);
    expect(a.insert(8)).toBe(true);
    expect(a.insert(7)).toBe(true);
    expect(rangesOfAck(a)).toEqual([[0, 9]]);
  });

  it("rejects duplicates and reports containment", () => {
    const a = new AckRanges();
    a.insert(10);
    a.insert(12);
    expect(a.insert(10)).toBe(false);
    expect(a.insert(12)).toBe(false);
    expect(a.contains(10)).toBe(true);
    expect(a.contains(11)).toBe(false);
    expect(a.contains(12)).toBe(true);
    expect(a.contains(9)).toBe(false);
    expect(a.contains(13)).toBe(false);
    expect(a.rangeLowContaining(12)).toBe(12);
    expect(a.rangeLowContaining(11)).toBe(-1);
  });

  it("inserts before the oldest range", () => {
    const a = new AckRanges();
    a.insert(10);
    a.insert(5);
    a.insert(1);
    a.insert(2);
    expect(rangesOfAck(a)).toEqual([
      [1, 2],
      [5, 5],
      [10, 10],
    ]);
    expect(a.rangeLowContaining(2)).toBe(1);
  });

  it("produces the frames.ts flat descending representation", () => {
    const a = new AckRanges();
    for (const pn of [0, 1, 2, 5, 6, 9]) a.insert(pn);
    expect(a.toAckFrameRanges()).toEqual([9, 9, 6, 5, 2, 0]);
    expect(a.toAckFrameRanges(2)).toEqual([9, 9, 6, 5]);
    const reuse = [1, 2, 3, 4, 5, 6, 7, 8];
    expect(a.toAckFrameRanges(1, reuse)).toBe(reuse);
    expect(reuse).toEqual([9, 9]);
    expect(new AckRanges().toAckFrameRanges()).toEqual([]);
  });

  it("drops the oldest range beyond the cap and raises the floor", () => {
    const a = new AckRanges(3);
    for (const pn of [0, 2, 4]) a.insert(pn);
    expect(a.floor).toBe(0);
    a.insert(6);
    expect(rangesOfAck(a)).toEqual([
      [2, 2],
      [4, 4],
      [6, 6],
    ]);
    expect(a.floor).toBe(1);
    // Below the floor: refused, even though it was never received.
    expect(a.insert(0)).toBe(false);
    expect(a.insert(1)).toBe(true); // ≥ floor: accepted, joins [2, 2]
    expect(rangesOfAck(a)[0]).toEqual([1, 2]);
    // A new oldest range that itself overflows the cap is dropped at once.
    const b = new AckRanges(2);
    b.insert(10);
    b.insert(20);
    expect(b.insert(5)).toBe(true);
    expect(b.contains(5)).toBe(false);
    expect(b.floor).toBe(6);
  });

  it("removeBelow prunes and trims the straddling range", () => {
    const a = new AckRanges();
    for (const pn of [1, 2, 3, 4, 8, 9, 20]) a.insert(pn);
    a.removeBelow(3);
    expect(rangesOfAck(a)).toEqual([
      [3, 4],
      [8, 9],
      [20, 20],
    ]);
    expect(a.floor).toBe(3);
    a.removeBelow(2); // never lowers
    expect(a.floor).toBe(3);
    a.removeBelow(10);
    expect(rangesOfAck(a)).toEqual([[20, 20]]);
    expect(a.insert(9)).toBe(false);
    a.removeBelow(100);
    expect(a.isEmpty).toBe(true);
    expect(a.largest).toBe(-1);
    expect(a.insert(100)).toBe(true);
  });

  it("stays correct across many in-order arrivals with gaps (compaction)", () => {
    const a = new AckRanges(16);
    for (let pn = 0; pn < 10_000; pn += 2) a.insert(pn);
    expect(a.rangeCount).toBe(16);
    expect(a.largest).toBe(9998);
    expect(a.smallest).toBe(9998 - 30);
    expect(a.floor).toBe(9998 - 30 - 1);
    expect(a.contains(9996)).toBe(true);
    expect(a.contains(9997)).toBe(false);
  });

  it("behaves like a reference Set with a floor and a cap (property)", () => {
    const op = fc.oneof(
      { weight: 8, arbitrary: fc.record({ kind: fc.constant("insert" as const), pn: fc.nat(200) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("removeBelow" as const), pn: fc.nat(200) }) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(op, { maxLength: 300 }), (cap, ops) => {
        const a = new AckRanges(cap);
        const m = new Model(cap);
        for (const o of ops) {
          if (o.kind === "insert") expect(a.insert(o.pn)).toBe(m.insert(o.pn));
          else {
            a.removeBelow(o.pn);
            m.removeBelow(o.pn);
          }
          expect(a.floor).toBe(m.floor);
        }
        expect(rangesOfAck(a)).toEqual(rangesOf(m.set));
        for (let pn = 0; pn <= 201; pn++) expect(a.contains(pn)).toBe(m.set.has(pn));
        const max = m.set.size ? Math.max(...m.set) : -1;
        expect(a.largest).toBe(max);
      }),
    );
  });

  it("frame ranges encode and decode through frames.ts (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat(100_000), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 40 }),
        (pns, max) => {
          const a = new AckRanges();
          for (const pn of pns) a.insert(pn);
          const ranges = a.toAckFrameRanges(max);
          const frame: AckFrame = { kind: "ack", largest: ranges[0], ackDelay: 0, ranges };
          const w = new ByteWriter(new Uint8Array(frameSize(frame)));
          encodeFrame(frame, w);
          const back = decodeFrame(new ByteReader(w.written())) as AckFrame;
          expect(back.ranges).toEqual(ranges);
          // The newest `max` ranges of the reference.
          const ref = rangesOf(new Set(pns))
            .reverse()
            .slice(0, max)
            .flatMap(([lo, hi]) => [hi, lo]);
          expect(ranges).toEqual(ref);
        },
      ),
    );
  });
});
