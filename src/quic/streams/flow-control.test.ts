import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import { ReceiveFlowControl, SendFlowControl } from "./flow-control.ts";

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof QuicError) return e.code;
    throw e;
  }
  throw new Error("did not throw");
}

describe("SendFlowControl", () => {
  it("tracks credit and ignores limits that do not increase (§4.1)", () => {
    const f = new SendFlowControl(1000);
    f.onSent(600);
    expect(f.available).toBe(400);
    expect(f.onMaxData(900)).toBe(false);
    expect(f.onMaxData(1000)).toBe(false);
    expect(f.limit).toBe(1000);
    expect(f.onMaxData(1500)).toBe(true);
    expect(f.available).toBe(900);
    f.onSent(900);
    expect(f.isBlocked).toBe(true);
    expect(() => f.onSent(1)).toThrow(QuicUsageError);
  });

  it("asks for DATA_BLOCKED once per limit value", () => {
    const f = new SendFlowControl(100);
    expect(f.shouldSendBlocked()).toBe(false);
    f.onSent(100);
    expect(f.shouldSendBlocked()).toBe(true);
    expect(f.onBlockedSent()).toBe(100);
    expect(f.shouldSendBlocked()).toBe(false);
    f.onBlockedLost(100);
    expect(f.shouldSendBlocked()).toBe(true);
    f.onBlockedSent();
    f.onMaxData(200);
    expect(f.shouldSendBlocked()).toBe(false);
    f.onSent(100);
    expect(f.shouldSendBlocked()).toBe(true);
    expect(f.onBlockedSent()).toBe(200);
    f.onBlockedLost(100); // stale loss: ignored
    expect(f.shouldSendBlocked()).toBe(false);
  });
});

describe("ReceiveFlowControl", () => {
  it("errors with FLOW_CONTROL_ERROR at exactly limit + 1 (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 << 30 }), (limit) => {
        const s = new ReceiveFlowControl({ window: limit });
        expect(s.onReceivedOffset(limit)).toBe(limit);
        expect(codeOf(() => s.onReceivedOffset(limit + 1))).toBe(TransportErrorCode.FLOW_CONTROL_ERROR);
        const c = new ReceiveFlowControl({ window: limit });
        c.onReceivedBytes(limit);
        expect(codeOf(() => c.onReceivedBytes(1))).toBe(TransportErrorCode.FLOW_CONTROL_ERROR);
      }),
    );
  });

  it("reports how much the highest offset grew (for the connection)", () => {
    const s = new ReceiveFlowControl({ window: 1000 });
    expect(s.onReceivedOffset(100)).toBe(100);
    expect(s.onReceivedOffset(50)).toBe(0); // retransmission below
    expect(s.onReceivedOffset(300)).toBe(200);
    expect(s.highest).toBe(300);
    expect(() => s.onConsumed(301, 0)).toThrow(QuicUsageError);
  });

  it("announces a new limit once half the window is consumed", () => {
    const s = new ReceiveFlowControl({ window: 1000 });
    s.onReceivedOffset(1000);
    s.onConsumed(499, 0);
    expect(s.shouldSendUpdate()).toBe(false);
    s.onConsumed(1, 0);
    expect(s.shouldSendUpdate()).toBe(true);
    expect(s.takeUpdate(0, 0)).toBe(1500);
    expect(s.limit).toBe(1500);
    expect(s.shouldSendUpdate()).toBe(false);
    // The new limit is enforced.
    s.onReceivedOffset(1500);
    expect(codeOf(() => s.onReceivedOffset(1501))).toBe(TransportErrorCode.FLOW_CONTROL_ERROR);
  });

  it("doubles the window when it is used up within ~2 RTTs, up to the maximum", () => {
    const rtt = 100;
    const s = new ReceiveFlowControl({ window: 1000, maxWindow: 3000 });
    let now = 0;
    const cycle = (dt: number) => {
      s.onReceivedOffset(s.limit);
      now += dt;
      s.onConsumed(s.highest - s.consumed, now);
      expect(s.shouldSendUpdate()).toBe(true);
      return s.takeUpdate(now, rtt);
    };
    // First consumption starts the epoch; consuming a whole window in 50 ms (< 2 RTT) → grow.
    s.onReceivedOffset(10);
    s.onConsumed(10, now);
    now += 50;
    s.onReceivedOffset(1000);
    s.onConsumed(990, now);
    s.takeUpdate(now, rtt);
    expect(s.window).toBe(2000);
    cycle(50);
    expect(s.window).toBe(3000); // capped
    cycle(50);
    expect(s.window).toBe(3000);
  });

  it("does not grow the window under slow consumption", () => {
    const s = new ReceiveFlowControl({ window: 1000, maxWindow: 1 << 20 });
    let now = 0;
    for (let i = 0; i < 20; i++) {
      s.onReceivedOffset(s.limit);
      s.onConsumed(s.highest - s.consumed, now);
      now += 1000; // a window per 10 RTTs
      s.takeUpdate(now, 100);
    }
    expect(s.window).toBe(1000);
    // Without an RTT estimate, no tuning either.
    const t = new ReceiveFlowControl({ window: 1000, maxWindow: 1 << 20 });
    t.onReceivedOffset(1000);
    t.onConsumed(1000, 0);
    t.takeUpdate(0, 0);
    expect(t.window).toBe(1000);
  });

  it("grows only when the window would be used up in under 2 RTTs (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 1, max: 500 }),
        fc.integer({ min: 1000, max: 100_000 }),
        (elapsed, rtt, window) => {
          const s = new ReceiveFlowControl({ window, maxWindow: window * 4 });
          s.onReceivedOffset(window);
          s.onConsumed(1, 0); // epoch starts at 0
          s.onConsumed(window - 1, elapsed);
          s.takeUpdate(elapsed, rtt);
          // The whole window went by in `elapsed`: grow iff elapsed < 2 · rtt.
          expect(s.window).toBe(elapsed < 2 * rtt ? window * 2 : window);
          expect(s.limit).toBe(window + s.window);
        },
      ),
    );
  });

  it("ensureWindow raises the window within the maximum", () => {
    const c = new ReceiveFlowControl({ window: 1000, maxWindow: 5000 });
    c.ensureWindow(1500);
    expect(c.window).toBe(1500);
    c.ensureWindow(10_000);
    expect(c.window).toBe(5000);
    c.ensureWindow(10);
    expect(c.window).toBe(5000);
  });
});
