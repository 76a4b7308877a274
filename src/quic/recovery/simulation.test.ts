/**
 * A deterministic single-flow simulation driving only the recovery modules with virtual time:
 * sender (LossDetection + controller + Pacer) → drop-tail bottleneck of fixed rate and queue →
 * receiver acknowledging every packet → ACKs back after the propagation delay.
 */
import { describe, expect, it } from "vitest";
import { applyCongestionSignals, type CongestionController } from "./congestion-controller.ts";
import { CubicController } from "./cubic.ts";
import { type AckInfo, LossDetection, PacketNumberSpace } from "./loss-detection.ts";
import { NewRenoController } from "./new-reno.ts";
import { Pacer } from "./pacer.ts";
import { SentPacket } from "./sent-packet.ts";

const App = PacketNumberSpace.ApplicationData;

interface SimConfig {
  /** Bottleneck rate, bytes per ms. */
  rate: number;
  /** One-way propagation delay, ms. */
  delay: number;
  /** Drop-tail queue capacity, bytes. */
  queue: number;
  /** Simulated time, ms. */
  duration: number;
  /** Start of the measurement window, ms. */
  warmup: number;
}

interface SimResult {
  utilization: number;
  drops: number;
  reductions: number;
  maxWindow: number;
  minWindowAfterWarmup: number;
  inFlightConsistent: boolean;
  probes: number;
}

const MSS = 1200;
const MAX_RANGES = 32;

function simulate(cc: CongestionController, cfg: SimConfig): SimResult {
  const ld = new LossDetection<null>({ isServer: true, maxAckDelay: 0 });
  ld.setHandshakeConfirmed(0);
  const pacer = new Pacer({ maxDatagramSize: MSS });
  // Bottleneck: FIFO served at `rate`; `linkFreeAt` is when its backlog drains.
  let linkFreeAt = 0;
  // ACKs on their way back, in arrival order (FIFO link, so already sorted).
  const ackTimes: number[] = [];
  const ackFrames: AckInfo[] = [];
  let ackHead = 0;
  // Receiver state: received ranges as [low, high], ascending, last MAX_RANGES kept.
  const received: [number, number][] = [];
  let nextPn = 0;
  let now = 0;
  let delivered = 0;
  let drops = 0;
  let reductions = 0;
  let probes = 0;
  let maxWindow = 0;
  let minWindowAfterWarmup = Number.POSITIVE_INFINITY;
  let inFlightConsistent = true;

  const transmit = () => {
    const pn = nextPn++;
    ld.onPacketSent(App, new SentPacket(pn, now, MSS, true, true, null));
    cc.onPacketSent(MSS, now);
    pacer.onSend(now, MSS);
    const backlog = Math.max(0, linkFreeAt - now) * cfg.rate;
    if (backlog + MSS > cfg.queue) {
      drops++;
      return;
    }
    const start = Math.max(now, linkFreeAt);
    linkFreeAt = start + MSS / cfg.rate;
    // Bytes serialized inside the measurement window.
    const overlap = Math.min(linkFreeAt, cfg.duration) - Math.max(start, cfg.warmup);
    if (overlap > 0) delivered += overlap * cfg.rate;
    // The receiver sees the packet at linkFreeAt + delay and acknowledges it immediately.
    const last = received[received.length - 1];
    if (last !== undefined && last[1] === pn - 1) last[1] = pn;
    else {
      received.push([pn, pn]);
      if (received.length > MAX_RANGES) received.shift();
    }
    const ranges: number[] = [];
    for (let i = received.length - 1; i >= 0; i--) ranges.push(received[i][1], received[i][0]);
    ackTimes.push(linkFreeAt + 2 * cfg.delay);
    ackFrames.push({ largest: pn, ackDelay: 0, ranges });
  };

  const afterSignals = () => {
    pacer.update(now, cc.window, ld.rtt.smoothedRtt);
    if (cc.window > maxWindow) maxWindow = cc.window;
    if (now >= cfg.warmup && cc.window < minWindowAfterWarmup) minWindowAfterWarmup = cc.window;
    if (cc.bytesInFlight !== ld.bytesInFlight) inFlightConsistent = false;
  };

  while (now < cfg.duration) {
    // Send while the window and the pacer allow.
    let nextSend = Number.POSITIVE_INFINITY;
    while (cc.canSend(MSS)) {
      const t = pacer.nextSendTime(now, MSS);
      if (t > now) {
        nextSend = t;
        break;
      }
      transmit();
    }
    const nextAck = ackHead < ackTimes.length ? ackTimes[ackHead] : Number.POSITIVE_INFINITY;
    const timer = ld.getLossDetectionTimer() ?? Number.POSITIVE_INFINITY;
    const next = Math.min(nextSend, nextAck, timer);
    if (next === Number.POSITIVE_INFINITY) throw new Error("simulation stalled");
    now = Math.max(now, next);
    while (ackHead < ackTimes.length && ackTimes[ackHead] <= now) {
      const before = cc.window;
      const r = ld.onAckReceived(App, ackFrames[ackHead++], now);
      applyCongestionSignals(cc, r, now, ld.rtt);
      if (cc.window < before) reductions++;
      afterSignals();
    }
    const deadline = ld.getLossDetectionTimer();
    if (deadline !== undefined && deadline <= now) {
      const r = ld.onLossDetectionTimeout(now);
      if (r.kind === "loss") {
        const before = cc.window;
        applyCongestionSignals(cc, r, now, ld.rtt);
        if (cc.window < before) reductions++;
        afterSignals();
      } else if (r.kind === "probe") {
        // Probes are not blocked by congestion control or pacing (§7.5).
        probes++;
        for (let i = 0; i < r.probe.count; i++) transmit();
      }
    }
    if (ackTimes.length > 4096 && ackHead > ackTimes.length / 2) {
      ackTimes.splice(0, ackHead);
      ackFrames.splice(0, ackHead);
      ackHead = 0;
    }
  }
  return {
    utilization: delivered / (cfg.rate * (cfg.duration - cfg.warmup)),
    drops,
    reductions,
    maxWindow,
    minWindowAfterWarmup,
    inFlightConsistent,
    probes,
  };
}

// 10 Mbit/s (1250 B/ms), 40 ms RTT: bandwidth-delay product 50 kB ≈ 42 packets.
const BASE: SimConfig = { rate: 1250, delay: 20, queue: 50_000, duration: 30_000, warmup: 3_000 };
const BDP = BASE.rate * 2 * BASE.delay;

describe("simulation: one flow over a bottleneck", () => {
  for (const [name, make] of [
    ["NewReno", () => new NewRenoController(MSS)],
    ["CUBIC", () => new CubicController(MSS)],
  ] as const) {
    it(`${name} reaches the bottleneck bandwidth and oscillates around it`, () => {
      const r = simulate(make(), BASE);
      expect(r.inFlightConsistent).toBe(true);
      // Utilization of the bottleneck over the measurement window.
      expect(r.utilization).toBeGreaterThan(0.9);
      expect(r.utilization).toBeLessThanOrEqual(1 + 1e-9);
      // It probes past the path capacity (BDP + queue) and backs off repeatedly.
      expect(r.maxWindow).toBeGreaterThan(BDP);
      expect(r.drops).toBeGreaterThan(0);
      expect(r.reductions).toBeGreaterThanOrEqual(3);
      // After warm-up the window never collapses to the minimum (no spurious persistent congestion).
      expect(r.minWindowAfterWarmup).toBeGreaterThan(BDP / 3);
    });

    it(`${name} keeps a shallow-buffered bottleneck busy`, () => {
      const r = simulate(make(), { ...BASE, queue: BDP / 4 });
      expect(r.inFlightConsistent).toBe(true);
      expect(r.utilization).toBeGreaterThan(0.7);
      expect(r.reductions).toBeGreaterThanOrEqual(3);
    });
  }

  it("CUBIC recovers faster than NewReno on a long fat path", () => {
    // 100 Mbit/s, 100 ms RTT: BDP 1.25 MB, shallow queue: CUBIC's growth beats NewReno's 1 mss/RTT.
    const cfg: SimConfig = { rate: 12_500, delay: 50, queue: 300_000, duration: 30_000, warmup: 5_000 };
    const reno = simulate(new NewRenoController(MSS), cfg);
    const cubic = simulate(new CubicController(MSS), cfg);
    expect(cubic.inFlightConsistent && reno.inFlightConsistent).toBe(true);
    expect(cubic.utilization).toBeGreaterThan(0.7);
    expect(cubic.utilization).toBeGreaterThan(reno.utilization);
  });
});
