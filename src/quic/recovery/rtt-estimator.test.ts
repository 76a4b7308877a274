import { describe, expect, it } from "vitest";
import { K_GRANULARITY, K_INITIAL_RTT, RttEstimator } from "./rtt-estimator.ts";

describe("RttEstimator (RFC 9002 §5)", () => {
  it("starts from kInitialRtt = 333 ms: smoothed 333, rttvar 166.5, PTO 999 ms (+ max_ack_delay)", () => {
    const r = new RttEstimator();
    expect(K_INITIAL_RTT).toBe(333);
    expect(K_GRANULARITY).toBe(1);
    expect(r.hasSample).toBe(false);
    expect(r.smoothedRtt).toBe(333);
    expect(r.rttvar).toBe(166.5);
    expect(r.latestRtt).toBe(0);
    expect(r.minRtt).toBe(0);
    expect(r.pto(25, false)).toBe(999);
    expect(r.pto(25, true)).toBe(1024);
  });

  it("takes a configurable initial RTT", () => {
    const r = new RttEstimator(100);
    expect(r.smoothedRtt).toBe(100);
    expect(r.rttvar).toBe(50);
    expect(r.pto(0, false)).toBe(300);
  });

  it("resets to the first sample, ignoring its ack delay (§5.3)", () => {
    const r = new RttEstimator();
    r.update(100, 40, 1000, true, 25);
    expect(r.hasSample).toBe(true);
    expect(r.firstSampleTime).toBe(1000);
    expect(r.latestRtt).toBe(100);
    expect(r.minRtt).toBe(100);
    expect(r.smoothedRtt).toBe(100);
    expect(r.rttvar).toBe(50);
  });

  it("follows the §5.3 EWMA, worked by hand", () => {
    const r = new RttEstimator();
    r.update(100, 0, 0, true, 25);
    // latest 120, ack delay 10: 120 ≥ min_rtt 100 + 10, adjusted = 110.
    // rttvar = 3/4·50 + 1/4·|100 − 110| = 37.5 + 2.5 = 40; smoothed = 7/8·100 + 1/8·110 = 101.25.
    r.update(120, 10, 1, true, 25);
    expect(r.minRtt).toBe(100);
    expect(r.rttvar).toBe(40);
    expect(r.smoothedRtt).toBe(101.25);
    // latest 105, ack delay 10: 105 < 100 + 10, so the delay is not subtracted (MUST NOT).
    // rttvar = 30 + 1/4·|101.25 − 105| = 30.9375; smoothed = 88.59375 + 13.125 = 101.71875.
    r.update(105, 10, 2, true, 25);
    expect(r.rttvar).toBe(30.9375);
    expect(r.smoothedRtt).toBe(101.71875);
    expect(r.latestRtt).toBe(105);
    // PTO = 101.71875 + 4·30.9375 (= 123.75) + 25.
    expect(r.pto(25, true)).toBe(101.71875 + 123.75 + 25);
  });

  it("limits the ack delay by max_ack_delay only after handshake confirmation", () => {
    const confirmed = new RttEstimator();
    confirmed.update(100, 0, 0, true, 25);
    confirmed.update(200, 50, 1, true, 25); // adjusted = 200 − 25 = 175
    expect(confirmed.smoothedRtt).toBe(0.875 * 100 + 0.125 * 175);
    expect(confirmed.rttvar).toBe(0.75 * 50 + 0.25 * 75);

    const unconfirmed = new RttEstimator();
    unconfirmed.update(100, 0, 0, false, 25);
    unconfirmed.update(200, 50, 1, false, 25); // adjusted = 200 − 50 = 150
    expect(unconfirmed.smoothedRtt).toBe(0.875 * 100 + 0.125 * 150);
    expect(unconfirmed.rttvar).toBe(0.75 * 50 + 0.25 * 50);
  });

  it("never adjusts min_rtt by the ack delay (§5.2)", () => {
    const r = new RttEstimator();
    r.update(100, 0, 0, true, 25);
    r.update(90, 20, 1, true, 25);
    expect(r.minRtt).toBe(90);
    // 90 < 90 + 20: adjusted stays 90.
    expect(r.smoothedRtt).toBe(0.875 * 100 + 0.125 * 90);
    r.update(150, 20, 2, true, 25);
    expect(r.minRtt).toBe(90);
  });

  it("keeps the PTO at least kGranularity and includes max_ack_delay only when asked", () => {
    const r = new RttEstimator();
    r.update(0.1, 0, 0, true, 25);
    expect(r.rttvar).toBe(0.05);
    expect(r.pto(25, false)).toBeCloseTo(1.1, 12);
    expect(r.pto(25, true)).toBeCloseTo(26.1, 12);
  });

  it("computes the persistent congestion duration with max_ack_delay (§7.6.1)", () => {
    const r = new RttEstimator();
    r.update(100, 0, 0, true, 25);
    expect(r.persistentCongestionDuration(25)).toBe((100 + 200 + 25) * 3);
    expect(r.persistentCongestionDuration(0, 2)).toBe(600);
  });

  it("resets min_rtt to the latest sample after persistent congestion, and resets fully", () => {
    const r = new RttEstimator();
    r.update(50, 0, 0, true, 25);
    r.update(300, 0, 1, true, 25);
    expect(r.minRtt).toBe(50);
    r.onPersistentCongestion();
    expect(r.minRtt).toBe(300);
    r.reset(200);
    expect(r.hasSample).toBe(false);
    expect(r.smoothedRtt).toBe(200);
    expect(r.rttvar).toBe(100);
    expect(r.minRtt).toBe(0);
  });

  it("treats a negative sample (clock went back) as 0", () => {
    const r = new RttEstimator();
    r.update(-5, 0, 0, true, 25);
    expect(r.latestRtt).toBe(0);
    expect(r.smoothedRtt).toBe(0);
  });
});
