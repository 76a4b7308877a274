import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RangeSet } from "./range-set.ts";

function rangesOf(set: Set<number>): number[] {
  const out: number[] = [];
  for (const v of [...set].sort((a, b) => a - b)) {
    if (out.length > 0 && out[out.length - 1] === v) out[out.length - 1] = v + 1;
    else out.push(v, v + 1);
  }
  return out;
}

describe("RangeSet", () => {
  it("merges touching ranges, splits on removal", () => {
    const r = new RangeSet();
    expect(r.add(0, 10)).toBe(10);
    expect(r.add(10, 20)).toBe(10);
    expect(r.toArray()).toEqual([0, 20]);
    expect(r.add(5, 25)).toBe(5);
    expect(r.remove(8, 12)).toBe(4);
    expect(r.toArray()).toEqual([0, 8, 12, 25]);
    expect(r.covers(0, 8)).toBe(true);
    expect(r.covers(7, 13)).toBe(false);
    const x = new RangeSet();
    x.add(3, 5);
    const y = new RangeSet();
    expect(y.addExcept(0, 10, x)).toBe(8);
    expect(y.toArray()).toEqual([0, 3, 5, 10]);
  });

  it("behaves like a reference Set (property)", () => {
    const op = fc.record({
      kind: fc.constantFrom("add", "remove", "addExcept"),
      s: fc.nat(120),
      len: fc.nat(30),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const r = new RangeSet();
        const ex = new RangeSet();
        ex.add(20, 40);
        ex.add(60, 61);
        const m = new Set<number>();
        for (const { kind, s, len } of ops) {
          let expected = 0;
          for (let v = s; v < s + len; v++) {
            if (kind === "remove") {
              if (m.delete(v)) expected++;
            } else if (kind === "add" || !((v >= 20 && v < 40) || v === 60)) {
              if (!m.has(v)) {
                m.add(v);
                expected++;
              }
            }
          }
          const got =
            kind === "add"
              ? r.add(s, s + len)
              : kind === "remove"
                ? r.remove(s, s + len)
                : r.addExcept(s, s + len, ex);
          expect(got).toBe(expected);
          expect(r.toArray()).toEqual(rangesOf(m));
        }
        expect(r.size()).toBe(m.size);
        expect(r.count).toBe(rangesOf(m).length / 2);
      }),
    );
  });
});
