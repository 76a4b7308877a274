import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import {
  applyCongestionSignals,
  type CcPacket,
  initialWindow,
  minimumWindow,
} from "./congestion-controller.ts";
import { NewRenoController } from "./new-reno.ts";
import { RttEstimator } from "./rtt-estimator.ts";

const MSS = 1200;
const rtt = new RttEstimator(100);
const pkt = (timeSent: number, size = MSS, inFlight = true): CcPacket => ({ size, timeSent, inFlight });

/** Sends `n` full packets at `t` and returns them. */
function sendN(cc: NewRenoController, n: number, t: number): CcPacket[] {
  const out: CcPacket[] = [];
  for (let i = 0; i < n; i++) {
    cc.onPacketSent(MSS, t);
    out.push(pkt(t));
  }
  return out;
}

describe("NewReno windows (RFC 9002 §7.2)", () => {
  it("computes the initial window min(10·mss, max(2·mss, 14720)) and minimum window 2·mss", () => {
    expect(initialWindow(1200)).toBe(12000);
    expect(initialWindow(1500)).toBe(14720);
    expect(initialWindow(9000)).toBe(18000);
    expect(minimumWindow(1200)).toBe(2400);
    const cc = new NewRenoController();
    expect(cc.window).toBe(12000);
    expect(cc.ssthresh).toBe(Number.POSITIVE_INFINITY);
    expect(new NewRenoController(1500).window).toBe(14720);
    expect(() => new NewRenoController(1000)).toThrow(QuicUsageError);
  });

  it("recomputes the initial window when the datagram size changes before any feedback", () => {
    const cc = new NewRenoController(1500);
    cc.setMaxDatagramSize(1200);
    expect(cc.window).toBe(12000);
    expect(cc.minimumWindow).toBe(2400);
    cc.onPacketsAcked([pkt(0)], 10, rtt);
    cc.setMaxDatagramSize(1400);
    expect(cc.window).toBe(13200);
  });

  it("blocks sending beyond the window", () => {
    const cc = new NewRenoController();
    sendN(cc, 9, 0);
    expect(cc.canSend(MSS)).toBe(true);
    sendN(cc, 1, 0);
    expect(cc.bytesInFlight).toBe(12000);
    expect(cc.canSend(1)).toBe(false);
  });
});

describe("NewReno trajectory (RFC 9002 §7.3, Appendix B)", () => {
  it("slow start → loss → recovery → congestion avoidance → persistent congestion", () => {
    const cc = new NewRenoController();
    // Slow start: the window grows by the bytes acknowledged.
    const first = sendN(cc, 10, 0);
    cc.onPacketsAcked(first, 100, rtt);
    expect(cc.window).toBe(24000);
    expect(cc.bytesInFlight).toBe(0);
    const second = sendN(cc, 20, 100);
    cc.onPacketsAcked(second.slice(0, 10), 200, rtt);
    expect(cc.window).toBe(36000);

    // Loss of a packet sent at 100, detected at 210: halve once.
    cc.onPacketsLost([second[10]], 210);
    expect(cc.ssthresh).toBe(18000);
    expect(cc.window).toBe(18000);
    expect(cc.inRecovery(100)).toBe(true);
    expect(cc.bytesInFlight).toBe(9 * MSS);
    // A second loss of a packet sent before recovery started: no second reduction (§7.3.2).
    cc.onPacketsLost([second[11]], 220);
    expect(cc.window).toBe(18000);
    // ECN-CE for a packet sent before recovery: no reduction either.
    cc.onEcnCe(100, 225);
    expect(cc.window).toBe(18000);
    // Acknowledgments of packets sent before recovery started do not grow the window.
    cc.onPacketsAcked(second.slice(12), 230, rtt);
    expect(cc.window).toBe(18000);
    expect(cc.bytesInFlight).toBe(0);

    // Congestion avoidance after a packet sent during recovery is acknowledged: one mss per
    // window acknowledged.
    const ca = sendN(cc, 15, 240);
    cc.onPacketsAcked(ca.slice(0, 14), 340, rtt); // 16800 bytes < 18000
    expect(cc.inRecovery(240)).toBe(false);
    expect(cc.window).toBe(18000);
    cc.onPacketsAcked(ca.slice(14), 341, rtt); // 18000 acknowledged
    expect(cc.window).toBe(19200);
    // The next increase needs a full 19200 bytes.
    const ca2 = sendN(cc, 16, 350);
    cc.onPacketsAcked(ca2.slice(0, 15), 450, rtt); // 18000
    expect(cc.window).toBe(19200);
    cc.onPacketsAcked(ca2.slice(15), 451, rtt); // 19200
    expect(cc.window).toBe(20400);

    // A loss of a packet sent after recovery started is a new congestion event.
    const late = sendN(cc, 1, 460);
    cc.onPacketsLost(late, 560);
    expect(cc.window).toBe(10200);
    expect(cc.ssthresh).toBe(10200);

    // Persistent congestion: minimum window, recovery ended, slow start up to ssthresh.
    cc.onPersistentCongestion(570);
    expect(cc.window).toBe(2400);
    expect(cc.inRecovery(565)).toBe(false);
    const ss = sendN(cc, 2, 580);
    cc.onPacketsAcked(ss, 680, rtt);
    expect(cc.window).toBe(4800);
  });

  it("never goes below the minimum window", () => {
    const cc = new NewRenoController();
    for (let i = 0; i < 10; i++) cc.onCongestionEvent(i * 10 + 1, i * 10 + 5);
    expect(cc.window).toBe(2400);
    expect(cc.ssthresh).toBe(1200);
  });

  it("reacts to ECN-CE like a loss, once per recovery period", () => {
    const cc = new NewRenoController();
    cc.onEcnCe(5, 10);
    expect(cc.window).toBe(6000);
    cc.onEcnCe(8, 12);
    expect(cc.window).toBe(6000);
    cc.onEcnCe(11, 20);
    expect(cc.window).toBe(3000);
  });

  it("ignores non-in-flight packets and does not grow when application-limited", () => {
    const cc = new NewRenoController();
    const ps = sendN(cc, 5, 0);
    cc.appLimited = true;
    cc.onPacketsAcked(ps, 100, rtt);
    expect(cc.window).toBe(12000);
    expect(cc.bytesInFlight).toBe(0);
    cc.appLimited = false;
    cc.onPacketsAcked([pkt(1, MSS, false)], 100, rtt);
    expect(cc.window).toBe(12000);
    cc.onPacketsLost([pkt(1, MSS, false)], 110);
    expect(cc.window).toBe(12000);
  });

  it("allows one packet beyond the window on entering recovery (§7.3.2)", () => {
    const cc = new NewRenoController();
    sendN(cc, 10, 0);
    cc.onPacketsLost([pkt(0)], 100);
    expect(cc.bytesInFlight).toBe(10800);
    expect(cc.window).toBe(6000);
    expect(cc.canSend(MSS)).toBe(true);
    cc.onPacketSent(MSS, 100);
    expect(cc.canSend(MSS)).toBe(false);
  });

  it("removes discarded bytes from flight", () => {
    const cc = new NewRenoController();
    sendN(cc, 3, 0);
    cc.removeFromFlight(2400);
    expect(cc.bytesInFlight).toBe(1200);
  });

  it("applies loss detection signals in Appendix A order", () => {
    const cc = new NewRenoController();
    const ps = sendN(cc, 10, 0);
    const later = sendN(cc, 1, 50);
    // Loss and acknowledgment in one ACK: reduce, then do not grow for packets sent before.
    applyCongestionSignals(
      cc,
      { newlyAcked: ps.slice(3), lost: ps.slice(0, 3), persistentCongestion: false, ecnCe: undefined },
      100,
      rtt,
    );
    expect(cc.window).toBe(6000);
    expect(cc.bytesInFlight).toBe(1200);
    applyCongestionSignals(cc, { newlyAcked: later, lost: [], persistentCongestion: false }, 150, rtt);
    expect(cc.window).toBe(6000); // sent at 50, before recovery started at 100
    applyCongestionSignals(cc, { lost: [], persistentCongestion: true }, 160, rtt);
    expect(cc.window).toBe(2400);
  });

  it("computes the pacing rate N·cwnd/smoothed_rtt", () => {
    const cc = new NewRenoController();
    expect(cc.pacingRate(100)).toBe(150);
  });
});
