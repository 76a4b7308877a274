import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { SentPacket } from "./sent-packet.ts";
import { SentPackets } from "./sent-packets.ts";

const pkt = (pn: number, size = 100, ackEliciting = true, inFlight = true) =>
  new SentPacket(pn, pn, size, ackEliciting, inFlight, `f${pn}`);

function livePns<T>(s: SentPackets<T>): number[] {
  const out: number[] = [];
  for (let i = s.start; i < s.end; i++) {
    const p = s.at(i);
    if (p !== undefined) out.push(p.packetNumber);
  }
  return out;
}

describe("SentPackets", () => {
  it("keeps packets in order with counters", () => {
    const s = new SentPackets<string>();
    expect(s.largestSent).toBe(-1);
    s.push(pkt(0, 100));
    s.push(pkt(2, 200, false, true));
    s.push(pkt(5, 300, false, false));
    expect(s.count).toBe(3);
    expect(s.bytesInFlight).toBe(300);
    expect(s.ackElicitingCount).toBe(1);
    expect(s.largestSent).toBe(5);
    expect(s.get(2)?.frames).toBe("f2");
    expect(s.get(3)).toBeUndefined();
    expect(s.oldest()?.packetNumber).toBe(0);
  });

  it("rejects a packet number that does not increase", () => {
    const s = new SentPackets<string>();
    s.push(pkt(3));
    expect(() => s.push(pkt(3))).toThrow(QuicUsageError);
    expect(() => s.push(pkt(1))).toThrow(QuicUsageError);
  });

  it("removes ranges in ascending order and advances past leading holes", () => {
    const s = new SentPackets<string>();
    for (let pn = 0; pn < 10; pn++) s.push(pkt(pn));
    const out: SentPacket<string>[] = [];
    expect(s.removeRange(3, 5, out)).toBe(3);
    expect(out.map((p) => p.packetNumber)).toEqual([3, 4, 5]);
    expect(s.removeRange(3, 5, out)).toBe(0);
    expect(s.removeRange(0, 2, out)).toBe(3);
    expect(s.oldest()?.packetNumber).toBe(6);
    expect(s.start).toBe(6);
    expect(s.count).toBe(4);
    expect(s.bytesInFlight).toBe(400);
    expect(livePns(s)).toEqual([6, 7, 8, 9]);
    // The largest sent survives removal and clear.
    const all: SentPacket<string>[] = [];
    s.clear(all);
    expect(all.map((p) => p.packetNumber)).toEqual([6, 7, 8, 9]);
    expect(s.count).toBe(0);
    expect(s.bytesInFlight).toBe(0);
    expect(s.largestSent).toBe(9);
  });

  it("compacts holes on push once they outnumber live packets", () => {
    const s = new SentPackets<string>();
    for (let pn = 0; pn < 200; pn++) s.push(pkt(pn));
    const out: SentPacket<string>[] = [];
    // Keep 0 alive so the head cannot advance: 1..150 become holes.
    s.removeRange(1, 150, out);
    expect(s.end - s.start).toBe(200);
    s.push(pkt(200));
    expect(s.start).toBe(0);
    expect(s.end).toBe(51);
    expect(livePns(s)).toEqual([0, ...Array.from({ length: 50 }, (_, i) => 151 + i)]);
    expect(s.get(151)?.packetNumber).toBe(151);
  });

  it("behaves like a map of packet numbers (property)", () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("push" as const),
        gap: fc.integer({ min: 1, max: 3 }),
        size: fc.nat(1500),
      }),
      fc.record({ kind: fc.constant("range" as const), a: fc.nat(400), len: fc.nat(40) }),
      fc.record({ kind: fc.constant("get" as const), pn: fc.nat(400) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const s = new SentPackets<string>();
        const model = new Map<number, number>();
        let next = 0;
        for (const o of ops) {
          if (o.kind === "push") {
            next += o.gap;
            s.push(pkt(next, o.size));
            model.set(next, o.size);
          } else if (o.kind === "range") {
            const out: SentPacket<string>[] = [];
            s.removeRange(o.a, o.a + o.len, out);
            const expected = [...model.keys()]
              .filter((pn) => pn >= o.a && pn <= o.a + o.len)
              .sort((x, y) => x - y);
            expect(out.map((p) => p.packetNumber)).toEqual(expected);
            for (const pn of expected) model.delete(pn);
          } else {
            expect(s.get(o.pn)?.packetNumber).toBe(model.has(o.pn) ? o.pn : undefined);
          }
          expect(s.count).toBe(model.size);
          let bytes = 0;
          for (const v of model.values()) bytes += v;
          expect(s.bytesInFlight).toBe(bytes);
        }
        expect(livePns(s)).toEqual([...model.keys()].sort((x, y) => x - y));
      }),
    );
  });
});
