/**
 * Congestion controller interface and the rules every QUIC controller shares (RFC 9002 §7,
 * pseudocode in Appendix B): bytes in flight, initial and minimum window (§7.2), one reduction
 * per recovery period (§7.3.2), ECN-CE as a congestion signal (§7.1), persistent congestion
 * (§7.6.2), the one-packet send allowance on entering recovery (§7.3.2), application-limited
 * handling (§7.8) and the pacing rate (§7.7).
 *
 * Windows and sizes are bytes; times are caller-supplied milliseconds.
 */
import { QuicUsageError } from "../errors.ts";
import type { RttView } from "./rtt-estimator.ts";

/** What a controller needs of a sent packet. `SentPacket<T>` satisfies it. */
export interface CcPacket {
  readonly size: number;
  readonly timeSent: number;
  readonly inFlight: boolean;
}

/** The congestion signals of one ACK or timeout. `AckResult<T>` satisfies it. */
export interface CongestionSignals {
  readonly newlyAcked?: readonly CcPacket[];
  readonly lost: readonly CcPacket[];
  readonly persistentCongestion: boolean;
  readonly ecnCe?: { readonly sentTime: number } | undefined;
}

/** Pacing gain N of §7.7 (`rate = N · cwnd / smoothed_rtt`). */
export const PACING_GAIN = 1.25;

/** Smallest max_datagram_size QUIC allows (RFC 9000 §14). */
export const MIN_MAX_DATAGRAM_SIZE = 1200;

export interface CongestionController {
  /** Congestion window (bytes). */
  readonly window: number;
  /** Slow start threshold (bytes), Infinity until the first congestion event. */
  readonly ssthresh: number;
  /** Bytes of in-flight packets not yet acknowledged, lost or discarded. */
  readonly bytesInFlight: number;
  /** max_datagram_size in use (bytes). */
  readonly maxDatagramSize: number;
  /**
   * Set while the sender is application- or flow-control-limited: the window is then not grown
   * (§7.8 SHOULD NOT increase).
   */
  appLimited: boolean;
  /** The PMTU changed (§7.2: the initial window follows max_datagram_size). */
  setMaxDatagramSize(size: number): void;
  /** An in-flight packet (ack-eliciting or PADDING) of `bytes` was sent (Appendix B.4). */
  onPacketSent(bytes: number, now: number): void;
  /** Newly acknowledged packets of one ACK (Appendix B.5). */
  onPacketsAcked(packets: readonly CcPacket[], now: number, rtt: RttView): void;
  /** Packets declared lost: leave flight, congestion event on the latest one (Appendix B.8). */
  onPacketsLost(packets: readonly CcPacket[], now: number): void;
  /** A congestion event for a packet sent at `sentTime` (Appendix B.6). */
  onCongestionEvent(sentTime: number, now: number): void;
  /** The peer-reported ECN-CE count increased (§7.1, Appendix B.7). */
  onEcnCe(sentTime: number, now: number): void;
  /** Persistent congestion was established (§7.6.2): window to the minimum. */
  onPersistentCongestion(now: number): void;
  /** Packets discarded with their keys leave flight (§6.4, Appendix B.9). */
  removeFromFlight(bytes: number): void;
  /** Whether a packet sent at `sentTime` belongs to the current recovery period. */
  inRecovery(sentTime: number): boolean;
  /**
   * Whether a packet of `bytes` may be sent now (§7: MUST NOT exceed the window, except PTO probes,
   * which the caller sends regardless, and one packet on entering recovery).
   */
  canSend(bytes: number): boolean;
  /** Pacing rate in bytes/ms for a smoothed RTT (§7.7: N · cwnd / smoothed_rtt). */
  pacingRate(smoothedRtt: number): number;
}

/**
 * Feeds the outcome of `LossDetection.onAckReceived` / `onLossDetectionTimeout` to a controller
 * in the Appendix A.7 order: ECN (B.7), then losses (B.8, persistent congestion included), then
 * acknowledgments (B.5).
 */
export function applyCongestionSignals(
  cc: CongestionController,
  signals: CongestionSignals,
  now: number,
  rtt: RttView,
): void {
  if (signals.ecnCe !== undefined) cc.onEcnCe(signals.ecnCe.sentTime, now);
  if (signals.lost.length > 0) cc.onPacketsLost(signals.lost, now);
  if (signals.persistentCongestion) cc.onPersistentCongestion(now);
  const acked = signals.newlyAcked;
  if (acked !== undefined && acked.length > 0) cc.onPacketsAcked(acked, now, rtt);
}

/** kInitialWindow (§7.2): min(10 · mss, max(2 · mss, 14720)). */
export function initialWindow(maxDatagramSize: number): number {
  return Math.min(10 * maxDatagramSize, Math.max(2 * maxDatagramSize, 14720));
}

/** kMinimumWindow (§7.2): 2 · mss. */
export function minimumWindow(maxDatagramSize: number): number {
  return 2 * maxDatagramSize;
}

/**
 * The §7 machinery shared by window-based controllers. Subclasses decide how the window grows
 * on acknowledgment ({@link grow}) and shrinks on a congestion event ({@link reduce}).
 */
export abstract class WindowController implements CongestionController {
  ssthresh = Number.POSITIVE_INFINITY;
  bytesInFlight = 0;
  appLimited = false;
  /** Congestion window; may be fractional internally (`window` rounds down). */
  protected cwnd: number;
  protected mss: number;
  /** congestion_recovery_start_time, undefined for none (Appendix B.2). */
  protected recoveryStartTime: number | undefined = undefined;
  /** §7.3.2: on entering recovery a single packet may be sent beyond the window. */
  private recoverySendAllowance = false;
  /** Whether the window is still the untouched initial window (for PMTU changes, §7.2). */
  private pristine = true;

  constructor(maxDatagramSize = MIN_MAX_DATAGRAM_SIZE) {
    checkDatagramSize(maxDatagramSize);
    this.mss = maxDatagramSize;
    this.cwnd = initialWindow(maxDatagramSize);
  }

  get window(): number {
    // Whole bytes; the epsilon absorbs float error such as 84000 · 0.7 = 58799.999….
    return Math.floor(this.cwnd + 1e-6);
  }

  get maxDatagramSize(): number {
    return this.mss;
  }

  get minimumWindow(): number {
    return minimumWindow(this.mss);
  }

  setMaxDatagramSize(size: number): void {
    checkDatagramSize(size);
    this.mss = size;
    // §7.2: the initial window SHOULD be recalculated with the new size (and, if the size
    // decreased to complete the handshake, the window SHOULD be set to it).
    if (this.pristine) this.cwnd = initialWindow(size);
    const min = minimumWindow(size);
    if (this.cwnd < min) this.cwnd = min;
  }

  onPacketSent(bytes: number, _now: number): void {
    // The one-packet allowance of §7.3.2 is for the first packet sent after entering recovery.
    this.recoverySendAllowance = false;
    this.bytesInFlight += bytes;
  }

  onPacketsAcked(packets: readonly CcPacket[], now: number, rtt: RttView): void {
    let acked = 0;
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i];
      if (!p.inFlight) continue;
      this.bytesInFlight -= p.size;
      // §7.8: do not grow when application or flow-control limited.
      if (this.appLimited) continue;
      // §7.3.2: the window does not grow in a recovery period.
      if (this.inRecovery(p.timeSent)) continue;
      acked += p.size;
    }
    if (acked > 0) {
      this.pristine = false;
      this.grow(acked, now, rtt);
    }
  }

  onPacketsLost(packets: readonly CcPacket[], now: number): void {
    let lastLoss = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < packets.length; i++) {
      const p = packets[i];
      if (!p.inFlight) continue;
      this.bytesInFlight -= p.size;
      if (p.timeSent > lastLoss) lastLoss = p.timeSent;
    }
    // Appendix B.8: a congestion event only if in-flight packets were lost.
    if (lastLoss !== Number.NEGATIVE_INFINITY) this.onCongestionEvent(lastLoss, now);
  }

  onCongestionEvent(sentTime: number, now: number): void {
    // §7.3.2: no reaction while already in a recovery period (one reduction per period).
    if (this.inRecovery(sentTime)) return;
    this.recoveryStartTime = now;
    this.pristine = false;
    this.reduce(now);
    // §7.3.2: the window MUST be reduced before recovery ends, and never below the minimum.
    const min = this.minimumWindow;
    if (this.cwnd < min) this.cwnd = min;
    this.recoverySendAllowance = true;
  }

  onEcnCe(sentTime: number, now: number): void {
    this.onCongestionEvent(sentTime, now);
  }

  onPersistentCongestion(now: number): void {
    // §7.6.2: the window MUST be reduced to kMinimumWindow; Appendix B.8 also ends recovery.
    this.cwnd = this.minimumWindow;
    this.recoveryStartTime = undefined;
    this.recoverySendAllowance = false;
    this.pristine = false;
    this.afterPersistentCongestion(now);
  }

  removeFromFlight(bytes: number): void {
    this.bytesInFlight -= bytes;
  }

  inRecovery(sentTime: number): boolean {
    const start = this.recoveryStartTime;
    return start !== undefined && sentTime <= start;
  }

  canSend(bytes: number): boolean {
    return this.bytesInFlight + bytes <= this.cwnd || this.recoverySendAllowance;
  }

  pacingRate(smoothedRtt: number): number {
    return (PACING_GAIN * this.cwnd) / Math.max(smoothedRtt, 0.001);
  }

  /** Grows the window for `ackedBytes` acknowledged outside recovery, not app-limited. */
  protected abstract grow(ackedBytes: number, now: number, rtt: RttView): void;
  /** Sets `ssthresh` and `cwnd` on entering a recovery period. */
  protected abstract reduce(now: number): void;
  /** Hook after persistent congestion reset the window. */
  protected afterPersistentCongestion(_now: number): void {}
}

function checkDatagramSize(size: number): void {
  if (!Number.isFinite(size) || size < MIN_MAX_DATAGRAM_SIZE)
    throw new QuicUsageError(`max datagram size ${size} below ${MIN_MAX_DATAGRAM_SIZE}`);
}
