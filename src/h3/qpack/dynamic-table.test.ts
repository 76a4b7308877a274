import { describe, expect, it } from "vitest";
import { DynamicTable, EncoderDynamicTable, entrySize } from "./dynamic-table.ts";

describe("DynamicTable (RFC 9204 §3.2)", () => {
  it("sizes entries as name + value + 32 and evicts from the oldest end", () => {
    const t = new DynamicTable();
    t.setCapacity(100);
    expect(entrySize("ab", "cde")).toBe(37);
    expect(t.insert("a", "1")).toBe(0); // 34
    expect(t.insert("b", "2")).toBe(1); // 68
    expect(t.size).toBe(68);
    expect(t.insert("c", "3")).toBe(2); // 102 > 100: evicts entry 0
    expect([t.dropped, t.insertCount, t.length, t.size]).toEqual([1, 3, 2, 68]);
    expect(t.has(0)).toBe(false);
    expect([t.name(2), t.value(2)]).toEqual(["c", "3"]);
    expect(t.absFromEncoderRelative(0)).toBe(2);
    expect(t.absFromEncoderRelative(1)).toBe(1);
    t.setCapacity(40); // shrinking evicts
    expect([t.dropped, t.size]).toEqual([2, 34]);
    t.setCapacity(0);
    expect([t.dropped, t.size, t.length]).toEqual([3, 0, 0]);
    expect(() => t.insert("x", "y")).toThrow();
  });

  it("keeps absolute indices across ring growth and wrap-around", () => {
    const t = new DynamicTable();
    t.setCapacity(34 * 40);
    for (let i = 0; i < 1000; i++) {
      t.insert("n", String.fromCharCode(65 + (i % 26)));
      expect(t.length).toBe(Math.min(i + 1, 40));
      let ok = true;
      for (let a = t.dropped; a < t.insertCount; a++)
        ok &&= t.value(a) === String.fromCharCode(65 + (a % 26));
      expect(ok).toBe(true);
    }
    expect(t.insertCount).toBe(1000);
    expect(t.dropped).toBe(960);
  });
});

describe("EncoderDynamicTable", () => {
  it("finds the newest exact and name matches and forgets evicted ones", () => {
    const t = new EncoderDynamicTable();
    t.setCapacity(200);
    t.insert("x", "1");
    t.insert("x", "2");
    t.insert("x", "1");
    expect(t.findExact("x", "1")).toBe(2);
    expect(t.findExact("x", "2")).toBe(1);
    expect(t.findName("x")).toBe(2);
    t.knownReceivedCount = 3;
    t.insert("y", "1");
    t.insert("y", "2"); // 5 × 34 = 170
    t.insert("z", "1"); // evicts entry 0: (x,1) still at 2
    expect(t.findExact("x", "1")).toBe(2);
    t.setCapacity(102); // keeps 3 newest
    expect(t.findExact("x", "1")).toBe(-1);
    expect(t.findExact("x", "2")).toBe(-1);
    expect(t.findName("x")).toBe(-1);
    expect(t.findName("y")).toBe(4);
  });

  it("evicts only acknowledged, unreferenced entries (§2.1.1)", () => {
    const t = new EncoderDynamicTable();
    t.setCapacity(100);
    t.insert("a", "1"); // 34
    t.insert("b", "2"); // 68
    expect(t.canInsert(34)).toBe(false); // entry 0 not acknowledged
    t.knownReceivedCount = 1;
    expect(t.canInsert(34)).toBe(true);
    t.addRef(0);
    expect(t.isEvictable(0)).toBe(false);
    expect(t.canInsert(34)).toBe(false);
    expect(t.canInsert(32)).toBe(true); // fits without eviction
    t.releaseRef(0);
    expect(() => t.releaseRef(0)).toThrow();
    expect(t.canInsert(101)).toBe(false);
    expect(t.canEvictTo(66)).toBe(true);
    expect(t.canEvictTo(30)).toBe(false); // would need entry 1, unacknowledged
  });

  it("computes the draining index from the headroom (§2.1.1.1)", () => {
    const t = new EncoderDynamicTable();
    t.setCapacity(136);
    for (const v of ["1", "2", "3", "4"]) t.insert("a", v); // 4 × 34 = 136
    expect(t.drainingIndex(0)).toBe(0);
    expect(t.drainingIndex(1)).toBe(1);
    expect(t.drainingIndex(34)).toBe(1);
    expect(t.drainingIndex(35)).toBe(2);
    expect(t.drainingIndex(200)).toBe(4);
  });
});
