import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter } from "./bytes.ts";
import { type AckFrame, decodeFrame, encodeFrame, frameSize } from "./frames.ts";
import { Ecn, ReceivedPackets } from "./received-packets.ts";

const INF = Number.POSITIVE_INFINITY;

function rangesOf(set: Set<number>): number[] {
  const sorted = [...set].sort((a, b) => b - a);
  const out: number[] = [];
  for (const v of sorted) {
    if (out.length > 0 && out[out.length - 1] - 1 === v) out[out.length - 1] = v;
    else out.push(v, v);
  }
  return out;
}

describe("ReceivedPackets", () => {
  it("detects duplicates and does not count them (ECN included)", () => {
    const rp = new ReceivedPackets("application");
    expect(rp.isDuplicate(5)).toBe(false);
    expect(rp.onPacketReceived(5, 0, true, Ecn.ECT0)).toBe(true);
    expect(rp.isDuplicate(5)).toBe(true);
    expect(rp.onPacketReceived(5, 1, true, Ecn.CE)).toBe(false);
    expect(rp.ect0).toBe(1);
    expect(rp.ce).toBe(0);
    expect(rp.pendingAckEliciting).toBe(1);
    expect(rp.largest).toBe(5);
  });

  it("acknowledges ack-eliciting Initial and Handshake packets immediately", () => {
    for (const space of ["initial", "handshake"] as const) {
      const rp = new ReceivedPackets(space);
      expect(rp.ackDeadline()).toBe(INF);
      rp.onPacketReceived(0, 100, false);
      expect(rp.ackDeadline()).toBe(INF); // not ack-eliciting: no ACK of its own
      expect(rp.hasUnacked).toBe(true);
      rp.onPacketReceived(1, 105, true);
      expect(rp.ackImmediately).toBe(true);
      expect(rp.ackDeadline()).toBe(105);
    }
  });

  it("delays the first 1-RTT ack-eliciting packet by max_ack_delay, acks the second at once", () => {
    const rp = new ReceivedPackets("application", { maxAckDelay: 25 });
    rp.onPacketReceived(0, 1000, true);
    expect(rp.ackImmediately).toBe(false);
    expect(rp.ackDeadline()).toBe(1025);
    rp.onPacketReceived(1, 1010, true);
    expect(rp.ackImmediately).toBe(true);
    expect(rp.ackDeadline()).toBeLessThanOrEqual(1010);
    rp.onAckSent();
    expect(rp.ackDeadline()).toBe(INF);
    expect(rp.ackImmediately).toBe(false);
    expect(rp.hasUnacked).toBe(false);
    // Non-ack-eliciting after the ACK: no deadline (§13.2.1 MUST NOT answer them alone).
    rp.onPacketReceived(2, 1020, false);
    expect(rp.ackDeadline()).toBe(INF);
    expect(rp.hasUnacked).toBe(true);
    rp.onPacketReceived(3, 1030, true);
    expect(rp.ackDeadline()).toBe(1055);
  });

  it("honours a configurable ack-eliciting threshold and max_ack_delay", () => {
    const rp = new ReceivedPackets("application", { ackElicitingThreshold: 3, maxAckDelay: 10 });
    rp.onPacketReceived(0, 0, true);
    rp.onPacketReceived(1, 1, true);
    expect(rp.ackImmediately).toBe(false);
    expect(rp.ackDeadline()).toBe(10);
    rp.setAckFrequency(5, 40);
    expect(rp.ackDeadline()).toBe(40);
    rp.onPacketReceived(2, 2, true);
    rp.onPacketReceived(3, 3, true);
    expect(rp.ackImmediately).toBe(false);
    rp.onPacketReceived(4, 4, true);
    expect(rp.ackImmediately).toBe(true);
    // Lowering the threshold below the pending count makes the ACK immediate.
    const rp2 = new ReceivedPackets("application", { ackElicitingThreshold: 10 });
    rp2.onPacketReceived(0, 0, true);
    rp2.onPacketReceived(1, 0, true);
    expect(rp2.ackImmediately).toBe(false);
    rp2.setAckFrequency(2, 25);
    expect(rp2.ackImmediately).toBe(true);
  });

  it("acks immediately on reordering, on a gap and on ECN-CE (§13.2.1)", () => {
    const big = { ackElicitingThreshold: 100 };
    // Reordering: a packet below the largest ack-eliciting one.
    let rp = new ReceivedPackets("application", big);
    rp.onPacketReceived(0, 0, true);
    rp.onPacketReceived(2, 0, true);
    rp.onAckSent();
    rp.onPacketReceived(1, 0, true);
    expect(rp.ackImmediately).toBe(true);
    // A gap: 1 missing between 0 and 2.
    rp = new ReceivedPackets("application", big);
    rp.onPacketReceived(0, 0, true);
    expect(rp.ackImmediately).toBe(false);
    rp.onPacketReceived(2, 0, true);
    expect(rp.ackImmediately).toBe(true);
    // No gap when a non-ack-eliciting packet filled it.
    rp = new ReceivedPackets("application", big);
    rp.onPacketReceived(0, 0, true);
    rp.onPacketReceived(1, 0, false);
    rp.onPacketReceived(2, 0, true);
    expect(rp.ackImmediately).toBe(false);
    // A gap of non-ack-eliciting-only arrivals does not trigger by itself.
    rp = new ReceivedPackets("application", big);
    rp.onPacketReceived(0, 0, true);
    rp.onPacketReceived(5, 0, false);
    expect(rp.ackImmediately).toBe(false);
    // ECN-CE on an ack-eliciting packet.
    rp = new ReceivedPackets("application", big);
    rp.onPacketReceived(0, 0, true, Ecn.CE);
    expect(rp.ackImmediately).toBe(true);
    expect(rp.ce).toBe(1);
    // … but not on a non-ack-eliciting one.
    rp = new ReceivedPackets("application", big);
    rp.onPacketReceived(0, 0, false, Ecn.CE);
    expect(rp.ackDeadline()).toBe(INF);
  });

  describe("Reordering Threshold (ack-frequency §6.2)", () => {
    /** Receives `pns` in order (ack-eliciting) and returns, per packet, whether an ACK went out. */
    function run(threshold: number, pns: number[]): boolean[] {
      const rp = new ReceivedPackets("application", { ackElicitingThreshold: 1000, maxAckDelay: 25 });
      rp.setAckFrequency(1000, 25, threshold);
      return pns.map((pn) => {
        rp.onPacketReceived(pn, 0, true);
        const sent = rp.ackImmediately;
        if (sent) rp.onAckSent();
        return sent;
      });
    }

    it("0: neither reordering nor gaps make an ACK immediate", () => {
      expect(run(0, [0, 1, 3, 4, 5, 8, 9, 10, 2, 6])).toEqual(Array(10).fill(false));
    });

    it("1: every gap and every reordered packet makes an ACK immediate (RFC 9000 §13.2.1)", () => {
      expect(run(1, [0, 1, 3, 4, 2])).toEqual([false, false, true, false, true]);
    });

    it("3: the draft's example table", () => {
      // | 0 | 1 | 3 | 4 | 5 (5−2 ≥ 3) | 8 | 9 (9−6 ≥ 3) | 10 (10−7 ≥ 3) |
      expect(run(3, [0, 1, 3, 4, 5, 8, 9, 10])).toEqual([
        false,
        false,
        false,
        false,
        true,
        false,
        true,
        true,
      ]);
    });

    it("5: the draft's example table", () => {
      // | 0 | 1 | 3 | 5 | 6 | 7 (7−2 ≥ 5) | 8 | 9 (9−4 ≥ 5) |
      expect(run(5, [0, 1, 3, 5, 6, 7, 8, 9])).toEqual([
        false,
        false,
        false,
        false,
        false,
        true,
        false,
        true,
      ]);
    });

    it("3: a gap or a reordered arrival inside the window is not acknowledged at once", () => {
      // 1 missing, then filled late, all within 3 of the largest: no immediate ACK (1 would ACK twice).
      expect(run(3, [0, 2, 3, 1])).toEqual([false, false, false, false]);
      expect(run(1, [0, 2, 3, 1])).toEqual([false, true, false, true]);
      // Still pending: acknowledged within max_ack_delay like any packet.
      const rp = new ReceivedPackets("application", { ackElicitingThreshold: 1000, maxAckDelay: 25 });
      rp.setAckFrequency(1000, 25, 3);
      for (const pn of [0, 2, 3, 1]) rp.onPacketReceived(pn, 100, true);
      expect(rp.ackDeadline()).toBe(125);
    });

    it("3: a late packet the peer has already declared lost is acknowledged at once", () => {
      // The ACK at 5 reported 2 missing (Largest Acked 5, Largest Reported Missing 2); 2 arriving
      // now is ≤ 5 − 3: the peer has declared it lost, the ACK reveals the spurious loss.
      expect(run(3, [0, 1, 3, 4, 5, 2])).toEqual([false, false, false, false, true, true]);
      // 6 missing when the ACK at 9 was sent (Largest Reported Missing 6): 6 ≤ 9 − 3.
      expect(run(3, [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 6]).slice(-1)).toEqual([true]);
      // 7 late after an ACK at 9: 7 > 9 − 3, the peer cannot have declared it lost yet.
      const r = run(3, [0, 1, 2, 3, 4, 5, 6, 8, 9, 7]);
      expect(r).toEqual([false, false, false, false, false, false, false, false, false, false]);
    });

    it("follows the §6.2 definitions for thresholds 2..6 (property against a direct model)", () => {
      const pkt = fc.record({ pn: fc.nat(40), ae: fc.boolean(), sendAck: fc.boolean() });
      fc.assert(
        fc.property(fc.integer({ min: 2, max: 6 }), fc.array(pkt, { maxLength: 80 }), (t, pkts) => {
          const rp = new ReceivedPackets("application", { ackElicitingThreshold: 1000, maxAckDelay: 25 });
          rp.setAckFrequency(1000, 25, t);
          const received = new Set<number>();
          let largestUnacked = -1;
          let largestAcked = -1;
          let immediate = false;
          let pending = 0;
          for (const { pn, ae, sendAck } of pkts) {
            expect(rp.onPacketReceived(pn, 0, ae)).toBe(!received.has(pn));
            if (!received.has(pn)) {
              received.add(pn);
              if (ae) {
                pending++;
                if (pn > largestUnacked) largestUnacked = pn;
                if (largestAcked >= 0 && pn <= largestAcked - t) immediate = true;
                const lrm = largestAcked >= 0 ? largestAcked - t : -1;
                for (let m = Math.max(0, lrm + 1); m < largestUnacked; m++) {
                  if (received.has(m)) continue;
                  if (largestUnacked - m >= t) immediate = true;
                  break; // only the smallest Unreported Missing counts
                }
              }
            }
            expect(rp.ackImmediately).toBe(immediate && pending > 0);
            if (sendAck && received.size > 0) {
              rp.onAckSent();
              largestAcked = Math.max(largestAcked, ...received);
              immediate = false;
              pending = 0;
            }
          }
        }),
      );
    });
  });

  it("encodes ACK Delay from the largest packet's receipt time with the exponent (§19.3)", () => {
    const rp = new ReceivedPackets("application", { ackDelayExponent: 3 });
    rp.onPacketReceived(7, 1000, true);
    rp.onPacketReceived(3, 1004, true); // not the largest: does not move the reference time
    let f = rp.buildAckFrame(1010.5) as AckFrame;
    expect(f.largest).toBe(7);
    expect(f.ackDelay).toBe(Math.floor(10_500 / 8));
    expect(f.ranges).toEqual([7, 7, 3, 3]);
    expect(f.ecn).toBeUndefined();
    expect(rp.largestReceivedTime).toBe(1000);
    const rp0 = new ReceivedPackets("application", { ackDelayExponent: 0 });
    rp0.onPacketReceived(0, 5, true);
    expect(rp0.buildAckFrame(6)?.ackDelay).toBe(1000);
    expect(rp0.buildAckFrame(4)?.ackDelay).toBe(0); // clock went backwards: no negative delay
    expect(() => new ReceivedPackets("application", { ackDelayExponent: 21 })).toThrow();
    // ECN counts once any codepoint was seen.
    rp.onPacketReceived(8, 1011, true, Ecn.ECT1);
    f = rp.buildAckFrame(1011) as AckFrame;
    expect(f.ecn).toEqual({ ect0: 0, ect1: 1, ce: 0 });
    expect(new ReceivedPackets("initial").buildAckFrame(0)).toBeNull();
  });

  it("prunes on ACK of ACK (§13.2.4) but keeps the largest", () => {
    const rp = new ReceivedPackets("application");
    for (const pn of [0, 1, 2, 4, 5, 8]) rp.onPacketReceived(pn, 0, true);
    const f = rp.buildAckFrame(0) as AckFrame;
    rp.onAckSent();
    expect(f.ranges).toEqual([8, 8, 5, 4, 2, 0]);
    rp.onAckOfAck(4);
    expect(rp.buildAckFrame(0)?.ranges).toEqual([8, 8, 5, 5]);
    expect(rp.isDuplicate(3)).toBe(true); // below the window now
    expect(rp.onPacketReceived(3, 0, true)).toBe(false);
    rp.onAckOfAck(8);
    expect(rp.buildAckFrame(0)).toBeNull();
    expect(rp.largest).toBe(8);
    expect(rp.floor).toBe(9);
    // A bogus largest beyond what we received cannot raise the floor past largest + 1.
    rp.onAckOfAck(1000);
    expect(rp.floor).toBe(9);
    rp.onPacketReceived(9, 0, true);
    expect(rp.buildAckFrame(0)?.ranges).toEqual([9, 9]);
    // Packet 9 continues right after the pruned range: no gap, not immediate.
    expect(rp.ackImmediately).toBe(false);
  });

  it("keeps the ranges bounded", () => {
    const rp = new ReceivedPackets("application", { maxTrackedRanges: 8, maxAckRanges: 4 });
    for (let pn = 0; pn < 1000; pn += 2) rp.onPacketReceived(pn, 0, false);
    expect(rp.received.rangeCount).toBe(8);
    const f = rp.buildAckFrame(0) as AckFrame;
    expect(f.ranges).toEqual([998, 998, 996, 996, 994, 994, 992, 992]);
    expect(rp.buildAckFrame(0, 2)?.ranges).toEqual([998, 998, 996, 996]);
  });

  it("ACK frames equal the received set, capped to the newest ranges (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(500), { maxLength: 300 }),
        fc.integer({ min: 1, max: 30 }),
        (pns, maxAckRanges) => {
          const rp = new ReceivedPackets("application", { maxAckRanges });
          const seen = new Set<number>();
          for (const pn of pns) {
            expect(rp.onPacketReceived(pn, 0, true)).toBe(!seen.has(pn));
            seen.add(pn);
          }
          const f = rp.buildAckFrame(0);
          if (seen.size === 0) {
            expect(f).toBeNull();
            return;
          }
          const expected = rangesOf(seen).slice(0, 2 * maxAckRanges);
          expect(f?.ranges).toEqual(expected);
          expect(f?.largest).toBe(Math.max(...seen));
          const w = new ByteWriter(new Uint8Array(frameSize(f as AckFrame)));
          encodeFrame(f as AckFrame, w);
          expect((decodeFrame(new ByteReader(w.written())) as AckFrame).ranges).toEqual(expected);
        },
      ),
    );
  });

  it("triggers immediate ACKs exactly on the §13.2.1 conditions (property)", () => {
    const pkt = fc.record({ pn: fc.nat(60), ae: fc.boolean(), sendAck: fc.boolean() });
    fc.assert(
      fc.property(fc.array(pkt, { maxLength: 120 }), (pkts) => {
        // Threshold out of reach: only reordering and gaps make ACKs immediate.
        const rp = new ReceivedPackets("application", { ackElicitingThreshold: 1000, maxAckDelay: 25 });
        const received = new Set<number>();
        let largestAE = -1;
        let immediate = false;
        let pending = 0;
        for (const { pn, ae, sendAck } of pkts) {
          const dup = received.has(pn);
          expect(rp.onPacketReceived(pn, 0, ae)).toBe(!dup);
          if (!dup) {
            received.add(pn);
            if (ae) {
              pending++;
              let gap = false;
              for (let m = largestAE + 1; m < pn; m++) if (!received.has(m)) gap = true;
              if (pn < largestAE || gap) immediate = true;
              if (pn > largestAE) largestAE = pn;
            }
          }
          expect(rp.ackImmediately).toBe(immediate && pending > 0);
          expect(rp.ackDeadline()).toBe(pending === 0 ? INF : immediate ? 0 : 25);
          if (sendAck) {
            rp.onAckSent();
            immediate = false;
            pending = 0;
          }
        }
      }),
    );
  });
});
