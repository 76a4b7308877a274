import { describe, expect, it } from "vitest";
import { CUBIC_ALPHA, CUBIC_BETA, CUBIC_C, CubicController } from "./cubic.ts";
import { RttEstimator } from "./rtt-estimator.ts";

const MSS = 1200;

/** Slow-starts a controller to 120000 bytes, then loses a packet sent at 999 at t = 1000. */
function afterFirstLoss(rttMs = 100, fastConvergence = true): { cc: CubicController; rtt: RttEstimator } {
  const rtt = new RttEstimator(rttMs);
  const cc = new CubicController(MSS, { fastConvergence });
  cc.onPacketSent(108000, 0);
  cc.onPacketsAcked([{ size: 108000, timeSent: 0, inFlight: true }], 100, rtt);
  expect(cc.window).toBe(120000);
  cc.onPacketsLost([{ size: 0, timeSent: 999, inFlight: true }], 1000);
  return { cc, rtt };
}

/**
 * Acknowledges one window per smoothed RTT in steps of `step` ms from `from` to `to` (packets sent
 * one RTT before their acknowledgment) and records the window at each step.
 */
function drive(
  cc: CubicController,
  rtt: RttEstimator,
  from: number,
  to: number,
  step: number,
): Map<number, number> {
  const windows = new Map<number, number>();
  for (let t = from; t <= to; t += step) {
    const bytes = (cc.window * step) / rtt.smoothedRtt;
    cc.onPacketSent(bytes, t - rtt.smoothedRtt);
    cc.onPacketsAcked([{ size: bytes, timeSent: t - rtt.smoothedRtt, inFlight: true }], t, rtt);
    windows.set(t, cc.window);
  }
  return windows;
}

describe("CUBIC (RFC 9438)", () => {
  it("uses C = 0.4, β = 0.7 and α = 3(1 − β)/(1 + β)", () => {
    expect(CUBIC_C).toBe(0.4);
    expect(CUBIC_BETA).toBe(0.7);
    expect(CUBIC_ALPHA).toBeCloseTo(0.9 / 1.7, 12);
  });

  it("slow-starts from the RFC 9002 initial window", () => {
    const cc = new CubicController();
    expect(cc.window).toBe(12000);
    cc.onPacketsAcked([{ size: 6000, timeSent: 0, inFlight: true }], 50, new RttEstimator());
    expect(cc.window).toBe(18000);
  });

  it("reduces the window to 0.7·W on loss, once per recovery period", () => {
    const { cc } = afterFirstLoss();
    expect(cc.window).toBe(84000);
    expect(cc.ssthresh).toBe(84000);
    expect(cc.wMax).toBe(120000);
    expect(cc.cwndPrior).toBe(120000);
    cc.onPacketsLost([{ size: 0, timeSent: 1000, inFlight: true }], 1050);
    expect(cc.window).toBe(84000);
    cc.onEcnCe(1001, 1060);
    expect(cc.window).toBe(58800);
  });

  it("computes K = ∛((W_max − cwnd_epoch)/C) at the start of congestion avoidance", () => {
    const { cc, rtt } = afterFirstLoss();
    expect(cc.epochStart).toBeUndefined();
    // An acknowledgment of a packet sent during recovery does not start the epoch.
    cc.onPacketsAcked([{ size: 1200, timeSent: 1000, inFlight: true }], 1100, rtt);
    expect(cc.epochStart).toBeUndefined();
    cc.onPacketsAcked([{ size: 1200, timeSent: 1001, inFlight: true }], 1101, rtt);
    expect(cc.epochStart).toBe(1101);
    expect(cc.cwndEpoch).toBe(84000);
    // (120000 − 84000) / (0.4 · 1200) = 75 segments³·s⁻³ → K = ∛75 s ≈ 4.2172 s.
    expect(cc.k).toBeCloseTo(4.217163, 5);
    expect(cc.wCubic(cc.k)).toBeCloseTo(120000, 6);
    expect(cc.wCubic(0)).toBeCloseTo(84000, 6);
  });

  it("follows W_cubic(t): concave up to W_max at t = K, then convex", () => {
    const { cc, rtt } = afterFirstLoss();
    const w = drive(cc, rtt, 1100, 1100 + 5600, 10);
    const epoch = cc.epochStart as number;
    expect(epoch).toBe(1110);
    // The window tracks W_cubic(t) (it aims one RTT ahead, bounded by the ACK clock).
    for (const s of [0.5, 1, 2, 3, 4, 4.5, 5.5]) {
      const t = epoch + s * 1000;
      const expected = cc.wCubic(s);
      expect(Math.abs((w.get(t) as number) - expected) / expected).toBeLessThan(0.005);
    }
    // Concave: the growth per second shrinks while approaching W_max ...
    const growth = (a: number, b: number) =>
      (w.get(epoch + b * 1000) as number) - (w.get(epoch + a * 1000) as number);
    expect(growth(0, 1)).toBeGreaterThan(growth(1, 2));
    expect(growth(1, 2)).toBeGreaterThan(growth(2, 3));
    expect(growth(2, 3)).toBeGreaterThan(growth(3, 4));
    // ... plateaus around W_max at t = K ...
    const atK = w.get(epoch + Math.round(cc.k * 100) * 10) as number;
    expect(Math.abs(atK - 120000)).toBeLessThan(100);
    expect(w.get(epoch + 3000) as number).toBeLessThan(120000);
    // ... and accelerates beyond it (convex).
    expect(growth(5, 5.5)).toBeGreaterThan(growth(4.5, 5));
    expect(w.get(epoch + 5500) as number).toBeGreaterThan(120000);
  });

  it("uses the Reno-friendly estimate when it exceeds W_cubic (α_cubic, then 1 past cwnd_prior)", () => {
    // With a 5 ms RTT, Reno's growth (α·mss per RTT) outpaces the cubic curve near W_max − 30%.
    const { cc, rtt } = afterFirstLoss(5);
    let t = 1001;
    let prev = cc.window;
    const ackWindow = () => {
      const w = cc.window;
      for (let j = 0; j < 5; j++) {
        cc.onPacketSent(w / 5, t);
        cc.onPacketsAcked([{ size: w / 5, timeSent: t, inFlight: true }], t + 1, rtt);
        t += 1;
      }
    };
    for (let i = 0; i < 10; i++) {
      ackWindow();
      const w = cc.window;
      expect(w).toBe(Math.floor(cc.wEst));
      expect(cc.wEst).toBeGreaterThan(cc.wCubic((t - (cc.epochStart as number)) / 1000));
      // α_cubic · mss per window acknowledged (slightly less as the window grows within it).
      expect(w - prev).toBeGreaterThan(CUBIC_ALPHA * MSS * 0.99);
      expect(w - prev).toBeLessThanOrEqual(CUBIC_ALPHA * MSS);
      prev = w;
    }
    // Once W_est ≥ cwnd_prior (120000), α becomes 1: one mss per window.
    while (cc.wEst < 120000) ackWindow();
    prev = cc.window;
    ackWindow();
    expect(cc.wEst).toBeGreaterThan(cc.wCubic((t - (cc.epochStart as number)) / 1000));
    expect(cc.window - prev).toBeGreaterThan(MSS * 0.99);
    expect(cc.window - prev).toBeLessThanOrEqual(MSS);
  });

  it("applies fast convergence when the window did not regain W_max", () => {
    for (const fast of [true, false]) {
      const { cc, rtt } = afterFirstLoss(100, fast);
      drive(cc, rtt, 1100, 2100, 10);
      const w = cc.window;
      expect(w).toBeLessThan(120000);
      cc.onPacketsLost([{ size: 0, timeSent: 2050, inFlight: true }], 2100);
      // `window` is rounded down from the exact window: allow one byte.
      expect(Math.abs(cc.wMax - (fast ? (w * (1 + CUBIC_BETA)) / 2 : w))).toBeLessThan(1);
      expect(Math.abs(cc.ssthresh - w * CUBIC_BETA)).toBeLessThan(1);
      expect(Math.abs(cc.window - w * CUBIC_BETA)).toBeLessThan(1);
    }
  });

  it("does not apply fast convergence when the window exceeded W_max", () => {
    const { cc, rtt } = afterFirstLoss();
    drive(cc, rtt, 1100, 1100 + 5600, 10);
    const w = cc.window;
    expect(w).toBeGreaterThan(120000);
    cc.onPacketsLost([{ size: 0, timeSent: 6650, inFlight: true }], 6700);
    expect(Math.abs(cc.wMax - w)).toBeLessThan(1);
  });

  it("restarts from the minimum window after persistent congestion with K = 0 (§4.8)", () => {
    const { cc, rtt } = afterFirstLoss();
    cc.onPersistentCongestion(1200);
    expect(cc.window).toBe(2400);
    expect(cc.inRecovery(1000)).toBe(false);
    // Slow start up to ssthresh (84000) ...
    cc.onPacketsAcked([{ size: 81600, timeSent: 1250, inFlight: true }], 1300, rtt);
    expect(cc.window).toBe(84000);
    // ... then a convex stage from W_max = cwnd_epoch.
    cc.onPacketsAcked([{ size: 1200, timeSent: 1300, inFlight: true }], 1400, rtt);
    expect(cc.k).toBe(0);
    expect(cc.wMax).toBe(84000);
    expect(cc.window).toBeGreaterThanOrEqual(84000);
  });

  it("never goes below the minimum window", () => {
    const cc = new CubicController();
    for (let i = 0; i < 20; i++) cc.onCongestionEvent(i * 10 + 1, i * 10 + 5);
    expect(cc.window).toBe(2400);
  });
});
