import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import {
  type AckInfo,
  LossDetection,
  type LossDetectionOptions,
  PacketNumberSpace,
} from "./loss-detection.ts";
import { SentPacket } from "./sent-packet.ts";

const { Initial, Handshake, ApplicationData: App } = PacketNumberSpace;

type Ld = LossDetection<string>;

function send(
  ld: Ld,
  space: PacketNumberSpace,
  pn: number,
  t: number,
  opts: { size?: number; ackEliciting?: boolean; inFlight?: boolean } = {},
): SentPacket<string> {
  const ackEliciting = opts.ackEliciting ?? true;
  const p = new SentPacket(
    pn,
    t,
    opts.size ?? 1200,
    ackEliciting,
    opts.inFlight ?? ackEliciting,
    `${space}:${pn}`,
  );
  ld.onPacketSent(space, p);
  return p;
}

/** ACK of [high, low] pairs given highest first, as on the wire. */
function ack(ranges: number[], ackDelay = 0, ecn?: AckInfo["ecn"]): AckInfo {
  return { largest: ranges[0], ackDelay, ranges, ecn };
}

const pns = (ps: readonly SentPacket<string>[]) => ps.map((p) => p.packetNumber);

/** A server with a confirmed handshake: only Application Data rules matter. */
function confirmedServer(opts: Partial<LossDetectionOptions> = {}): Ld {
  const ld = new LossDetection<string>({ isServer: true, ...opts });
  ld.setHandshakeConfirmed(0);
  return ld;
}

function expectViolation(f: () => unknown): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(QuicError);
    expect((e as QuicError).code).toBe(TransportErrorCode.PROTOCOL_VIOLATION);
    return;
  }
  expect.unreachable("no PROTOCOL_VIOLATION thrown");
}

describe("LossDetection: acknowledgment-based loss (§6.1)", () => {
  it("declares packets lost by the packet threshold and arms the time threshold for the rest", () => {
    const ld = confirmedServer();
    for (let pn = 0; pn < 5; pn++) send(ld, App, pn, pn);
    expect(ld.bytesInFlight).toBe(6000);
    const r = ld.onAckReceived(App, ack([4, 3]), 50);
    expect(pns(r.newlyAcked)).toEqual([3, 4]);
    // First sample: latest_rtt = 50 − 4 = 46.
    expect(r.rttSample).toBe(46);
    expect(ld.rtt.smoothedRtt).toBe(46);
    // 4 ≥ pn + 3 for pn ≤ 1; pn 2 is within the reordering threshold.
    expect(pns(r.lost)).toEqual([0, 1]);
    expect(r.persistentCongestion).toBe(false);
    expect(ld.bytesInFlight).toBe(1200);
    // loss_delay = 9/8 · max(46, 46) = 51.75: pn 2 (sent at 2) is lost at 53.75.
    expect(ld.getLossDetectionTimer()).toBe(53.75);
    expect(ld.onLossDetectionTimeout(53.7)).toEqual({ kind: "none" });
    const t = ld.onLossDetectionTimeout(53.75);
    expect(t.kind).toBe("loss");
    if (t.kind !== "loss") return;
    expect(t.space).toBe(App);
    expect(pns(t.lost)).toEqual([2]);
    expect(ld.bytesInFlight).toBe(0);
    // Nothing left in flight at a server: no timer.
    expect(ld.getLossDetectionTimer()).toBeUndefined();
  });

  it("declares packets lost by the time threshold on ACK", () => {
    const ld = confirmedServer();
    send(ld, App, 0, 0);
    send(ld, App, 1, 100);
    // latest_rtt 50 → loss_delay 56.25; pn 0 sent at 0 ≤ 150 − 56.25: lost although 1 < 0 + 3.
    const r = ld.onAckReceived(App, ack([1, 1]), 150);
    expect(r.rttSample).toBe(50);
    expect(pns(r.lost)).toEqual([0]);
  });

  it("uses max(smoothed_rtt, latest_rtt) for the time threshold", () => {
    const ld = confirmedServer();
    send(ld, App, 0, 0);
    ld.onAckReceived(App, ack([0, 0]), 100); // smoothed 100, rttvar 50
    send(ld, App, 1, 200);
    send(ld, App, 2, 201);
    // latest_rtt 20 < smoothed_rtt (now 90): loss_delay = 9/8 · 90 = 101.25, not 9/8 · 20.
    const r = ld.onAckReceived(App, ack([2, 2]), 221);
    expect(ld.rtt.latestRtt).toBe(20);
    expect(ld.rtt.smoothedRtt).toBe(90);
    expect(r.lost).toEqual([]);
    expect(ld.getLossDetectionTimer()).toBe(200 + 101.25);
  });

  it("does not take an RTT sample when the largest is not newly acked or nothing ack-eliciting is", () => {
    const ld = confirmedServer();
    send(ld, App, 0, 0);
    send(ld, App, 1, 10, { ackEliciting: false });
    // Only a non-ack-eliciting packet newly acknowledged: MUST NOT sample (§5.1).
    let r = ld.onAckReceived(App, ack([1, 1]), 100);
    expect(r.rttSample).toBeUndefined();
    expect(ld.rtt.hasSample).toBe(false);
    // Largest (1) already acknowledged: SHOULD NOT sample.
    r = ld.onAckReceived(App, ack([1, 0]), 120);
    expect(pns(r.newlyAcked)).toEqual([0]);
    expect(r.rttSample).toBeUndefined();
    // A duplicate ACK does nothing.
    r = ld.onAckReceived(App, ack([1, 0]), 130);
    expect(r.newlyAcked).toEqual([]);
    expect(r.lost).toEqual([]);
  });

  it("ignores the ack delay of Initial ACKs and applies it elsewhere", () => {
    const ld = new LossDetection<string>({ isServer: true });
    send(ld, Initial, 0, 0);
    send(ld, Handshake, 0, 0);
    ld.onAckReceived(Initial, ack([0, 0], 0), 100); // first sample 100
    send(ld, Initial, 1, 100);
    ld.onAckReceived(Initial, ack([1, 1], 30), 240); // 140, delay ignored
    expect(ld.rtt.smoothedRtt).toBe(0.875 * 100 + 0.125 * 140);
    send(ld, Handshake, 1, 240);
    const before = ld.rtt.smoothedRtt;
    ld.onAckReceived(Handshake, ack([1, 1], 30), 380); // 140 − 30 = 110
    expect(ld.rtt.smoothedRtt).toBe(0.875 * before + 0.125 * 110);
  });

  it("reports an ECN-CE increase with the largest newly acked send time", () => {
    const ld = confirmedServer();
    send(ld, App, 0, 0);
    send(ld, App, 1, 5);
    let r = ld.onAckReceived(App, ack([0, 0], 0, { ect0: 1, ect1: 0, ce: 0 }), 50);
    expect(r.ecnCe).toBeUndefined();
    r = ld.onAckReceived(App, ack([1, 0], 0, { ect0: 1, ect1: 0, ce: 1 }), 60);
    expect(r.ecnCe).toEqual({ sentTime: 5, count: 1 });
    send(ld, App, 2, 70);
    // A reordered ACK with a lower count is no signal.
    r = ld.onAckReceived(App, ack([2, 2], 0, { ect0: 1, ect1: 0, ce: 0 }), 100);
    expect(r.ecnCe).toBeUndefined();
  });
});

describe("LossDetection: ACK validation (RFC 9000 §13.1)", () => {
  it("rejects an ACK of a packet number above the largest sent", () => {
    const ld = confirmedServer();
    expectViolation(() => ld.onAckReceived(App, ack([0, 0]), 1));
    send(ld, App, 0, 0);
    send(ld, App, 1, 0);
    expectViolation(() => ld.onAckReceived(App, ack([2, 0]), 1));
    // Other spaces are separate.
    expectViolation(() => ld.onAckReceived(Handshake, ack([0, 0]), 1));
    expect(ld.onAckReceived(App, ack([1, 0]), 1).newlyAcked).toHaveLength(2);
  });

  it("carries the ACK frame type", () => {
    const ld = confirmedServer();
    try {
      ld.onAckReceived(App, ack([3, 3], 0, { ect0: 0, ect1: 0, ce: 0 }), 1);
    } catch (e) {
      expect((e as QuicError).frameType).toBe(0x03);
    }
    expect.assertions(1);
  });

  it("rejects an ACK covering a skipped packet number", () => {
    const ld = confirmedServer();
    send(ld, App, 0, 0);
    ld.onPacketNumberSkipped(App, 1);
    send(ld, App, 2, 0);
    expectViolation(() => ld.onAckReceived(App, ack([2, 0]), 10));
    expect(pns(ld.onAckReceived(App, ack([2, 2, 0, 0]), 10).newlyAcked)).toEqual([0, 2]);
  });

  it("rejects sending in a discarded space", () => {
    const ld = new LossDetection<string>({ isServer: true });
    ld.discardSpace(Initial, 0);
    expect(() => send(ld, Initial, 0, 0)).toThrow(QuicUsageError);
  });
});

describe("LossDetection: PTO (§6.2)", () => {
  it("arms 999 ms for a handshake packet with the 333 ms initial RTT, without max_ack_delay", () => {
    const ld = new LossDetection<string>({ isServer: true });
    send(ld, Initial, 0, 10);
    expect(ld.getLossDetectionTimer()).toBe(1009);
  });

  it("doubles the PTO on each expiry and resets it on acknowledgment", () => {
    const ld = confirmedServer();
    send(ld, App, 0, 0);
    // 333 + 4·166.5 + max_ack_delay 25.
    expect(ld.getLossDetectionTimer()).toBe(1024);
    expect(ld.onLossDetectionTimeout(1023)).toEqual({ kind: "none" });
    expect(ld.onLossDetectionTimeout(1024)).toEqual({
      kind: "probe",
      probe: { space: App, count: 2, antiDeadlock: false },
    });
    expect(ld.ptoCount).toBe(1);
    // A PTO MUST NOT declare anything lost.
    expect(ld.bytesInFlight).toBe(1200);
    // Before the probes go out, the timer is already backed off: 0 + 2·(999 + 25).
    expect(ld.getLossDetectionTimer()).toBe(2048);
    send(ld, App, 1, 1024);
    send(ld, App, 2, 1024);
    expect(ld.getLossDetectionTimer()).toBe(1024 + 2 * 1024);
    expect(ld.onLossDetectionTimeout(3072).kind).toBe("probe");
    expect(ld.ptoCount).toBe(2);
    send(ld, App, 3, 3072);
    expect(ld.getLossDetectionTimer()).toBe(3072 + 4 * 1024);
    const r = ld.onAckReceived(App, ack([3, 3]), 3172);
    expect(ld.ptoCount).toBe(0);
    // pn 0 by packet threshold; 1 and 2 (sent 2048 ms earlier) by time threshold.
    expect(pns(r.lost)).toEqual([0, 1, 2]);
    expect(ld.getLossDetectionTimer()).toBeUndefined();
  });

  it("sends one probe when configured so", () => {
    const ld = confirmedServer({ ptoProbeCount: 1 });
    send(ld, App, 0, 0);
    const t = ld.onLossDetectionTimeout(2000);
    expect(t).toEqual({ kind: "probe", probe: { space: App, count: 1, antiDeadlock: false } });
  });

  it("does not arm a PTO for Application Data before handshake confirmation", () => {
    const ld = new LossDetection<string>({ isServer: true });
    send(ld, App, 0, 0);
    expect(ld.getLossDetectionTimer()).toBeUndefined();
    send(ld, Handshake, 0, 10);
    expect(ld.getLossDetectionTimer()).toBe(1009);
    const t = ld.onLossDetectionTimeout(1009);
    expect(t.kind === "probe" && t.probe.space).toBe(Handshake);
    ld.setHandshakeConfirmed(1010);
    // Handshake: 10 + 2·999 = 2008; Application Data: 0 + 2·(999 + 25) = 2048.
    expect(ld.getLossDetectionTimer()).toBe(2008);
    ld.discardSpace(Handshake, 1020);
    // Discard resets the backoff: 0 + 1024.
    expect(ld.ptoCount).toBe(0);
    expect(ld.getLossDetectionTimer()).toBe(1024);
  });

  it("picks the earliest of the Initial and Handshake PTOs", () => {
    const ld = new LossDetection<string>({ isServer: true });
    send(ld, Handshake, 0, 5);
    send(ld, Initial, 0, 7);
    expect(ld.getLossDetectionTimer()).toBe(1004);
    const t = ld.onLossDetectionTimeout(1004);
    expect(t.kind === "probe" && t.probe.space).toBe(Handshake);
  });

  it("backoff is shared across spaces", () => {
    const ld = new LossDetection<string>({ isServer: true });
    send(ld, Initial, 0, 0);
    expect(ld.onLossDetectionTimeout(999).kind).toBe("probe");
    send(ld, Handshake, 0, 1000);
    // Initial: 0 + 2·999 = 1998; Handshake: 1000 + 1998 = 2998.
    expect(ld.getLossDetectionTimer()).toBe(1998);
  });

  it("arms the client anti-deadlock PTO with nothing in flight until address validation", () => {
    const ld = new LossDetection<string>({ isServer: false });
    send(ld, Initial, 0, 0);
    expect(ld.getLossDetectionTimer()).toBe(999);
    expect(ld.onLossDetectionTimeout(999)).toEqual({
      kind: "probe",
      probe: { space: Initial, count: 2, antiDeadlock: false },
    });
    send(ld, Initial, 1, 999);
    // An Initial ACK does not reset the client's backoff (§6.2.1).
    ld.onAckReceived(Initial, ack([1, 0]), 1099); // sample 100 → smoothed 100, rttvar 50
    expect(ld.ptoCount).toBe(1);
    expect(ld.bytesInFlight).toBe(0);
    // Nothing in flight, but the server may be amplification-blocked: now + (100 + 200)·2.
    expect(ld.getLossDetectionTimer()).toBe(1099 + 600);
    ld.setHandshakeKeysAvailable(1100);
    expect(ld.getLossDetectionTimer()).toBe(1100 + 600);
    expect(ld.onLossDetectionTimeout(1700)).toEqual({
      kind: "probe",
      probe: { space: Handshake, count: 1, antiDeadlock: true },
    });
    expect(ld.ptoCount).toBe(2);
    expect(ld.getLossDetectionTimer()).toBe(1700 + 1200);
    // A Handshake ACK proves address validation: backoff reset, no timer with nothing in flight.
    send(ld, Handshake, 0, 1700);
    ld.onAckReceived(Handshake, ack([0, 0]), 1800);
    expect(ld.peerCompletedAddressValidation).toBe(true);
    expect(ld.ptoCount).toBe(0);
    expect(ld.getLossDetectionTimer()).toBeUndefined();
  });

  it("keeps the client anti-deadlock PTO when only 0-RTT packets are in flight", () => {
    const ld = new LossDetection<string>({ isServer: false });
    send(ld, Initial, 0, 0);
    send(ld, App, 0, 1);
    ld.onAckReceived(Initial, ack([0, 0]), 100);
    expect(ld.getLossDetectionTimer()).toBe(100 + 300);
    ld.setHandshakeConfirmed(150);
    // Confirmed: the ordinary Application Data PTO, 1 + 300 + 25.
    expect(ld.getLossDetectionTimer()).toBe(326);
  });

  it("does not arm the server PTO while amplification-blocked", () => {
    const ld = new LossDetection<string>({ isServer: true });
    send(ld, Initial, 0, 0);
    ld.setAmplificationBlocked(true, 0);
    expect(ld.getLossDetectionTimer()).toBeUndefined();
    expect(ld.onLossDetectionTimeout(5000)).toEqual({ kind: "none" });
    // A datagram unblocks it: the timer is in the past, so the caller fires it at once.
    ld.setAmplificationBlocked(false, 1500);
    expect(ld.getLossDetectionTimer()).toBe(999);
    expect(ld.onLossDetectionTimeout(1500).kind).toBe("probe");
  });
});

describe("LossDetection: discarding keys (§6.4)", () => {
  it("drops the space's packets from bytes in flight and resets the timer", () => {
    const ld = new LossDetection<string>({ isServer: true });
    send(ld, Initial, 0, 0);
    send(ld, Initial, 1, 1, { ackEliciting: false, inFlight: true }); // PADDING only
    send(ld, Initial, 2, 2, { ackEliciting: false, inFlight: false, size: 50 }); // ACK only
    send(ld, Handshake, 0, 3, { size: 1000 });
    expect(ld.bytesInFlight).toBe(3400);
    expect(ld.onLossDetectionTimeout(999).kind).toBe("probe");
    const d = ld.discardSpace(Initial, 1000);
    expect(pns(d.discarded)).toEqual([0, 1, 2]);
    expect(d.bytesInFlight).toBe(2400);
    expect(ld.bytesInFlight).toBe(1000);
    expect(ld.ptoCount).toBe(0);
    expect(ld.getLossDetectionTimer()).toBe(3 + 999);
    expect(ld.isDiscarded(Initial)).toBe(true);
    // ACKs for the discarded space are ignored.
    expect(ld.onAckReceived(Initial, ack([0, 0]), 1001).newlyAcked).toEqual([]);
  });

  it("clears a pending loss timer of the discarded space", () => {
    const ld = new LossDetection<string>({ isServer: true });
    send(ld, Handshake, 0, 0);
    send(ld, Handshake, 1, 1);
    ld.onAckReceived(Handshake, ack([1, 1]), 50);
    expect(ld.getLossDetectionTimer()).toBe(0 + (9 / 8) * 49);
    ld.discardSpace(Handshake, 51);
    expect(ld.getLossDetectionTimer()).toBeUndefined();
    expect(ld.bytesInFlight).toBe(0);
  });

  it("resets everything on Retry and returns the packets to resend", () => {
    const ld = new LossDetection<string>({ isServer: false });
    send(ld, Initial, 0, 0);
    send(ld, App, 0, 1);
    const r = ld.resetForRetry(30, 30);
    expect(r.discarded.map((p) => p.frames)).toEqual(["0:0", "2:0"]);
    expect(r.bytesInFlight).toBe(2400);
    expect(ld.bytesInFlight).toBe(0);
    expect(ld.rtt.smoothedRtt).toBe(30);
    // Packet numbers continue.
    expect(() => send(ld, Initial, 0, 31)).toThrow(QuicUsageError);
    send(ld, Initial, 1, 31);
    expect(ld.getLossDetectionTimer()).toBe(31 + 30 + 60);
  });
});

describe("LossDetection: persistent congestion (§7.6)", () => {
  /**
   * After a first sample of 100 ms (smoothed 100, rttvar 50, max_ack_delay 25), the duration is
   * (100 + 200 + 25)·3 = 975 ms. pn 1 and pn 2 are ack-eliciting, sent `span` apart; ACK-only
   * packets 3–5 follow, and acknowledging pn 5 declares 1 and 2 lost without a new RTT sample.
   */
  function scenario(span: number, opts: { ackMiddleOf?: PacketNumberSpace; firstAt?: number } = {}) {
    const ld = confirmedServer();
    send(ld, App, 0, 0);
    ld.onAckReceived(App, ack([0, 0]), 100);
    const first = opts.firstAt ?? 101;
    send(ld, App, 1, first);
    if (opts.ackMiddleOf !== undefined) {
      const pn = opts.ackMiddleOf === App ? 2 : 0;
      send(ld, opts.ackMiddleOf, pn, first + 1, { ackEliciting: false });
      ld.onAckReceived(opts.ackMiddleOf, ack([pn, pn]), first + 2);
    }
    const base = opts.ackMiddleOf === App ? 3 : 2;
    send(ld, App, base, first + span);
    for (let i = 1; i <= 3; i++) send(ld, App, base + i, first + span + i, { ackEliciting: false });
    expect(ld.rtt.persistentCongestionDuration(25)).toBe(975);
    const r = ld.onAckReceived(App, ack([base + 3, base + 3]), first + span + 10);
    expect(r.rttSample).toBeUndefined();
    expect(pns(r.lost)).toEqual([1, base]);
    return { ld, r };
  }

  it("is not declared when the period equals the duration", () => {
    expect(scenario(975).r.persistentCongestion).toBe(false);
  });

  it("is declared as soon as the period exceeds the duration", () => {
    const { ld, r } = scenario(975.001);
    expect(r.persistentCongestion).toBe(true);
    // §5.2: min_rtt is reset to the latest sample.
    expect(ld.rtt.minRtt).toBe(ld.rtt.latestRtt);
  });

  it("is not declared when a packet sent in between was acknowledged, in any space", () => {
    expect(scenario(2000, { ackMiddleOf: App }).r.persistentCongestion).toBe(false);
    expect(scenario(2000, { ackMiddleOf: Handshake }).r.persistentCongestion).toBe(false);
  });

  it("only counts packets sent after the first RTT sample", () => {
    // pn 1 sent at 99, before the sample at 100: the lost pair does not qualify.
    expect(scenario(1000, { firstAt: 99 }).r.persistentCongestion).toBe(false);
    expect(scenario(1000, { firstAt: 100.5 }).r.persistentCongestion).toBe(true);
  });

  it("is never declared without an RTT sample", () => {
    const ld = confirmedServer();
    send(ld, App, 0, 0);
    send(ld, App, 1, 5000);
    for (let pn = 2; pn <= 4; pn++) send(ld, App, pn, 5000 + pn, { ackEliciting: false });
    const r = ld.onAckReceived(App, ack([4, 4]), 5010);
    expect(pns(r.lost)).toEqual([0, 1]);
    expect(r.persistentCongestion).toBe(false);
  });

  it("follows the shape of the RFC 9002 §7.6.3 example (time unit 1 = 100 ms)", () => {
    const ld = confirmedServer({ maxAckDelay: 0 });
    send(ld, App, 0, -1000);
    ld.onAckReceived(App, ack([0, 0]), -980); // sample 20
    // t=0 #1, t=1 #2, ack of #1 at 1.2, #3–#7 at 2..6, #8 at 8 (PTO 1), #9 at 12 (PTO 2).
    send(ld, App, 1, 0);
    send(ld, App, 2, 100);
    ld.onAckReceived(App, ack([1, 1]), 120); // sample 120
    for (let pn = 3; pn <= 7; pn++) send(ld, App, pn, (pn - 1) * 100);
    send(ld, App, 8, 800);
    send(ld, App, 9, 1200);
    const r = ld.onAckReceived(App, ack([9, 9]), 1220); // sample 20
    // smoothed 30.9375, rttvar 27.5: duration (30.9375 + 110)·3 = 422.8125 < 800 − 100.
    expect(ld.rtt.smoothedRtt).toBe(30.9375);
    expect(ld.rtt.rttvar).toBe(27.5);
    expect(ld.rtt.persistentCongestionDuration(0)).toBe(422.8125);
    expect(pns(r.lost)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(r.persistentCongestion).toBe(true);
  });
});

describe("LossDetection: scale", () => {
  it("processes 25,000 overlapping ACKs over 50,000 packets in flight correctly", () => {
    const ld = confirmedServer();
    const n = 50_000;
    for (let pn = 0; pn < n; pn++) send(ld, App, pn, pn / 100);
    expect(ld.bytesInFlight).toBe(n * 1200);
    // Each ACK newly acknowledges one packet and repeats up to 31 older ranges (every other packet
    // is acknowledged late, as with reordering), the way real ACK frames do.
    let acked = 0;
    for (let k = 0; k < n; k += 2) {
      const ranges: number[] = [];
      for (let h = k; h >= 0 && ranges.length < 64; h -= 2) ranges.push(h, h);
      acked += ld.onAckReceived(App, ack(ranges), 500 + k / 100).newlyAcked.length;
    }
    expect(acked).toBe(n / 2);
    // The odd packets were declared lost by the packet threshold as the ACKs advanced, except
    // 49997 (within the threshold of 49998) and 49999 (never covered).
    expect(ld.sentPackets(App).count).toBe(2);
  });
});

describe("LossDetection: random ACK patterns (property)", () => {
  type Op =
    | { kind: "send"; space: number; size: number; ackEliciting: boolean; padding: boolean; dt: number }
    | { kind: "ack"; space: number; mask: number[]; dt: number; delay: number }
    | { kind: "timeout" }
    | { kind: "discard"; space: number };

  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      arbitrary: fc.record({
        kind: fc.constant("send" as const),
        space: fc.integer({ min: 0, max: 2 }),
        size: fc.integer({ min: 20, max: 1500 }),
        ackEliciting: fc.boolean(),
        padding: fc.boolean(),
        dt: fc.double({ min: 0, max: 200, noNaN: true }),
      }),
      weight: 5,
    },
    {
      arbitrary: fc.record({
        kind: fc.constant("ack" as const),
        space: fc.integer({ min: 0, max: 2 }),
        mask: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 40 }),
        dt: fc.double({ min: 0, max: 300, noNaN: true }),
        delay: fc.double({ min: 0, max: 50, noNaN: true }),
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ kind: fc.constant("timeout" as const) }), weight: 2 },
    {
      arbitrary: fc.record({ kind: fc.constant("discard" as const), space: fc.integer({ min: 0, max: 1 }) }),
      weight: 1,
    },
  );

  it("never makes bytes in flight negative and settles every packet exactly once", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        fc.array(opArb, { maxLength: 120 }),
        (isServer, confirm, ops) => {
          const ld = new LossDetection<string>({ isServer });
          if (confirm) ld.setHandshakeConfirmed(0);
          const state = new Map<SentPacket<string>, "out" | "acked" | "lost" | "discarded">();
          const nextPn = [0, 0, 0];
          const sentPns: number[][] = [[], [], []];
          let now = 0;
          const settle = (ps: readonly SentPacket<string>[], to: "acked" | "lost" | "discarded") => {
            for (const p of ps) {
              expect(state.get(p)).toBe("out");
              state.set(p, to);
            }
          };
          for (const op of ops) {
            if (op.kind === "send") {
              if (ld.isDiscarded(op.space as PacketNumberSpace)) continue;
              now += op.dt;
              const pn = nextPn[op.space]++;
              const p = new SentPacket(pn, now, op.size, op.ackEliciting, op.ackEliciting || op.padding, "");
              ld.onPacketSent(op.space as PacketNumberSpace, p);
              state.set(p, "out");
              sentPns[op.space].push(pn);
            } else if (op.kind === "ack") {
              const sent = sentPns[op.space];
              if (sent.length === 0) continue;
              now += op.dt;
              // Choose a subset of sent packet numbers; build descending [high, low] ranges.
              const chosen = sent.filter((_, i) => op.mask[i % op.mask.length] !== 0);
              if (chosen.length === 0) continue;
              const ranges: number[] = [];
              for (let i = chosen.length - 1; i >= 0; ) {
                const high = chosen[i];
                let low = high;
                while (i > 0 && chosen[i - 1] === low - 1) low = chosen[--i];
                i--;
                ranges.push(high, low);
              }
              const r = ld.onAckReceived(op.space as PacketNumberSpace, ack(ranges, op.delay), now);
              for (let i = 1; i < r.newlyAcked.length; i++)
                expect(r.newlyAcked[i].packetNumber).toBeGreaterThan(r.newlyAcked[i - 1].packetNumber);
              for (const p of r.newlyAcked) expect(chosen).toContain(p.packetNumber);
              for (const p of r.lost) expect(p.packetNumber).toBeLessThan(ranges[0]);
              settle(r.newlyAcked, "acked");
              settle(r.lost, "lost");
            } else if (op.kind === "timeout") {
              const t = ld.getLossDetectionTimer();
              if (t === undefined) continue;
              expect(Number.isFinite(t)).toBe(true);
              now = Math.max(now, t);
              const r = ld.onLossDetectionTimeout(now);
              expect(r.kind).not.toBe("none");
              if (r.kind === "loss") settle(r.lost, "lost");
            } else {
              settle(ld.discardSpace(op.space as PacketNumberSpace, now).discarded, "discarded");
            }
            // Invariants: bytes in flight ≥ 0 and equal to the outstanding in-flight bytes.
            let bytes = 0;
            let outstanding = 0;
            for (const [p, s] of state) {
              if (s !== "out") continue;
              outstanding++;
              if (p.inFlight) bytes += p.size;
            }
            expect(ld.bytesInFlight).toBeGreaterThanOrEqual(0);
            expect(ld.bytesInFlight).toBe(bytes);
            let tracked = 0;
            for (let s = 0; s < 3; s++) {
              const sp = ld.sentPackets(s as PacketNumberSpace);
              tracked += sp.count;
              for (let i = sp.start; i < sp.end; i++) {
                const p = sp.at(i);
                if (p !== undefined) expect(state.get(p)).toBe("out");
              }
            }
            expect(tracked).toBe(outstanding);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
