/**
 * NewReno congestion control as specified by RFC 9002 §7 and Appendix B: slow start (§7.3.1),
 * recovery period halving the window once (§7.3.2), congestion avoidance growing by one
 * max_datagram_size per window acknowledged (§7.3.3), persistent congestion (§7.6).
 *
 * Congestion avoidance counts acknowledged bytes (Appendix B.5 / RFC 3465 §2.1) instead of the
 * pseudocode's fractional `mss · acked / cwnd`, so the window stays an integer and grows by exactly
 * one mss per full window acknowledged (§7.3.3: MUST be at most one).
 */
import { WindowController } from "./congestion-controller.ts";
import type { RttView } from "./rtt-estimator.ts";

/** kLossReductionFactor, RECOMMENDED 0.5 (§7.3.2, Appendix B.1). */
export const K_LOSS_REDUCTION_FACTOR = 0.5;

export class NewRenoController extends WindowController {
  /** Bytes acknowledged in congestion avoidance toward the next one-mss increase. */
  private bytesAckedInAvoidance = 0;

  protected grow(ackedBytes: number, _now: number, _rtt: RttView): void {
    if (this.cwnd < this.ssthresh) {
      // §7.3.1 slow start: grow by the number of bytes acknowledged.
      this.cwnd += ackedBytes;
      return;
    }
    // §7.3.3 congestion avoidance.
    this.bytesAckedInAvoidance += ackedBytes;
    // One mss for each full window acknowledged (§7.3.3: MUST be at most that).
    while (this.bytesAckedInAvoidance >= this.cwnd) {
      this.bytesAckedInAvoidance -= this.cwnd;
      this.cwnd += this.mss;
    }
  }

  protected reduce(_now: number): void {
    // §7.3.2: ssthresh MUST be set to half the window; the window to max(ssthresh, kMinimumWindow)
    // (Appendix B.6), before the recovery period ends: here, at once.
    this.ssthresh = Math.floor(this.cwnd * K_LOSS_REDUCTION_FACTOR);
    this.cwnd = Math.max(this.ssthresh, this.minimumWindow);
    this.bytesAckedInAvoidance = 0;
  }

  protected override afterPersistentCongestion(_now: number): void {
    this.bytesAckedInAvoidance = 0;
  }
}
