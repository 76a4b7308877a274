import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { Pacer } from "./pacer.ts";

const MSS = 1200;

describe("Pacer (RFC 9002 §7.7)", () => {
  it("does not pace before it knows a rate", () => {
    const p = new Pacer();
    for (let i = 0; i < 100; i++) {
      expect(p.nextSendTime(0, MSS)).toBe(0);
      p.onSend(0, MSS);
    }
  });

  it("computes rate = 1.25 · cwnd / smoothed_rtt", () => {
    const p = new Pacer();
    p.update(0, 12000, 100);
    expect(p.rate).toBe(150);
    p.update(0, 12000, 100 / 1.25);
    expect(p.rate).toBe(187.5);
  });

  it("allows a burst of 10 packets, then spaces them at the computed rate", () => {
    const p = new Pacer({ burstPackets: 10 });
    expect(p.capacity).toBe(12000);
    p.update(0, 12000, 100); // 150 bytes/ms: one 1200-byte packet every 8 ms
    const times: number[] = [];
    let now = 0;
    while (times.length < 20) {
      const t = p.nextSendTime(now, MSS);
      expect(t).toBeGreaterThanOrEqual(now);
      now = t;
      p.onSend(now, MSS);
      times.push(now);
    }
    expect(times.slice(0, 10)).toEqual(new Array(10).fill(0));
    for (let i = 10; i < 20; i++) expect(times[i]).toBeCloseTo((i - 9) * 8, 9);
  });

  it("caps the bucket after idle time at the burst size", () => {
    const p = new Pacer({ burstPackets: 4 });
    p.update(0, 12000, 100);
    let sent = 0;
    while (p.nextSendTime(10_000, MSS) === 10_000 && sent < 100) {
      p.onSend(10_000, MSS);
      sent++;
    }
    expect(sent).toBe(4);
    expect(p.nextSendTime(10_000, MSS)).toBeCloseTo(10_008, 9);
  });

  it("limits the burst to the initial window", () => {
    const p = new Pacer({ burstPackets: 100, maxDatagramSize: 1500 });
    expect(p.capacity).toBe(14720);
  });

  it("averages the configured rate over a long run", () => {
    const p = new Pacer();
    p.update(0, 60000, 50); // 1500 bytes/ms = 1.25 packets/ms
    let now = 0;
    let sent = 0;
    while (true) {
      const t = p.nextSendTime(now, MSS);
      if (t > 1000) break;
      now = t;
      p.onSend(now, MSS);
      sent++;
    }
    // Burst of 10 plus 1000 ms · 1500 B/ms / 1200 B.
    expect(sent).toBe(10 + 1250);
  });

  it("keeps tokens earned at the old rate when the rate changes", () => {
    const p = new Pacer({ burstPackets: 1 });
    p.update(0, 12000, 100); // 150 B/ms
    p.onSend(0, MSS);
    p.update(4, 1200, 100); // 600 tokens earned; now 15 B/ms
    expect(p.nextSendTime(4, MSS)).toBeCloseTo(4 + 600 / 15, 9);
  });

  it("rejects a gain below 1", () => {
    expect(() => new Pacer({ gain: 0.9 })).toThrow(QuicUsageError);
  });
});
