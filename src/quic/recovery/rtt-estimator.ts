/**
 * RTT estimation (RFC 9002 §5, pseudocode in Appendix A.7 "UpdateRtt").
 *
 * Sans-IO: every time value is a caller-supplied number of milliseconds (may be fractional).
 */

/** kGranularity: timer granularity, RECOMMENDED 1 ms (RFC 9002 §6.1.2, Appendix A.2). */
export const K_GRANULARITY = 1;
/** kInitialRtt: RTT before the first sample, RECOMMENDED 333 ms (RFC 9002 §6.2.2, Appendix A.2). */
export const K_INITIAL_RTT = 333;
/** kPersistentCongestionThreshold, RECOMMENDED 3 (RFC 9002 §7.6.1). */
export const K_PERSISTENT_CONGESTION_THRESHOLD = 3;

/** The RTT figures a congestion controller or pacer reads. {@link RttEstimator} satisfies it. */
export interface RttView {
  readonly latestRtt: number;
  readonly minRtt: number;
  readonly smoothedRtt: number;
  readonly rttvar: number;
}

export class RttEstimator implements RttView {
  /** Most recent RTT sample (§5.1), 0 before the first sample. */
  latestRtt = 0;
  /** Minimum RTT seen, not adjusted for ack delay (§5.2), 0 before the first sample. */
  minRtt = 0;
  /** Exponentially weighted moving average of the ack-delay-adjusted samples (§5.3). */
  smoothedRtt: number;
  /** Mean deviation of the samples (§5.3). */
  rttvar: number;
  /** `now` of the first RTT sample ("first_rtt_sample", Appendix A.3), undefined before it. */
  firstSampleTime: number | undefined;

  constructor(
    /** kInitialRtt: 333 ms unless e.g. a resumed connection knows better (§6.2.2). */
    private initialRtt = K_INITIAL_RTT,
    readonly granularity = K_GRANULARITY,
  ) {
    // §5.3: smoothed_rtt = kInitialRtt, rttvar = kInitialRtt / 2 before any sample.
    this.smoothedRtt = initialRtt;
    this.rttvar = initialRtt / 2;
  }

  /** True once an RTT sample has been taken. */
  get hasSample(): boolean {
    return this.firstSampleTime !== undefined;
  }

  /**
   * Feeds one RTT sample (§5.1: `now − time sent of the newly acknowledged largest packet`).
   *
   * @param latestRtt the raw sample in ms (negative values, from a non-monotonic clock, count as 0)
   * @param ackDelay the peer-reported ACK Delay in ms, already scaled by ack_delay_exponent
   * @param now the current time (recorded as the time of the first sample)
   * @param handshakeConfirmed whether the handshake is confirmed (RFC 9001 §4.1.2)
   * @param maxAckDelay the peer's max_ack_delay in ms
   */
  update(
    latestRtt: number,
    ackDelay: number,
    now: number,
    handshakeConfirmed: boolean,
    maxAckDelay: number,
  ): void {
    if (!(latestRtt > 0)) latestRtt = 0;
    if (!(ackDelay > 0)) ackDelay = 0;
    this.latestRtt = latestRtt;
    if (this.firstSampleTime === undefined) {
      // §5.2: min_rtt MUST be set to latest_rtt on the first sample; §5.3: the estimator is reset
      // from that sample.
      this.minRtt = latestRtt;
      this.smoothedRtt = latestRtt;
      this.rttvar = latestRtt / 2;
      this.firstSampleTime = now;
      return;
    }
    // §5.2: min_rtt MUST be the lesser of min_rtt and latest_rtt; it ignores the ack delay.
    if (latestRtt < this.minRtt) this.minRtt = latestRtt;
    // §5.3: MUST use the lesser of ack delay and max_ack_delay after handshake confirmation
    // (and SHOULD ignore max_ack_delay before it).
    if (handshakeConfirmed && ackDelay > maxAckDelay) ackDelay = maxAckDelay;
    // §5.3: MUST NOT subtract the ack delay if the result would be smaller than min_rtt.
    let adjusted = latestRtt;
    if (latestRtt >= this.minRtt + ackDelay) adjusted = latestRtt - ackDelay;
    // Appendix A.7 order (as RFC 6298): rttvar uses the previous smoothed_rtt.
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.smoothedRtt - adjusted);
    this.smoothedRtt = 0.875 * this.smoothedRtt + 0.125 * adjusted;
  }

  /**
   * The base PTO period (§6.2.1): `smoothed_rtt + max(4·rttvar, kGranularity) [+ max_ack_delay]`,
   * without backoff. `includeAckDelay` is false for the Initial and Handshake spaces (§6.2.1:
   * max_ack_delay is 0 there). Always at least kGranularity.
   */
  pto(maxAckDelay: number, includeAckDelay: boolean): number {
    return (
      this.smoothedRtt + Math.max(4 * this.rttvar, this.granularity) + (includeAckDelay ? maxAckDelay : 0)
    );
  }

  /**
   * Persistent congestion duration (§7.6.1):
   * `(smoothed_rtt + max(4·rttvar, kGranularity) + max_ack_delay) × threshold`, max_ack_delay
   * included irrespective of the packet number space.
   */
  persistentCongestionDuration(maxAckDelay: number, threshold = K_PERSISTENT_CONGESTION_THRESHOLD): number {
    return this.pto(maxAckDelay, true) * threshold;
  }

  /** §5.2: endpoints SHOULD set min_rtt to the newest sample after persistent congestion. */
  onPersistentCongestion(): void {
    if (this.hasSample) this.minRtt = this.latestRtt;
  }

  /**
   * Forgets every sample (new path, §5.3 / RFC 9000 §9.4, or Retry, §6.3), optionally with a new
   * initial RTT.
   */
  reset(initialRtt = this.initialRtt): void {
    this.initialRtt = initialRtt;
    this.latestRtt = 0;
    this.minRtt = 0;
    this.smoothedRtt = initialRtt;
    this.rttvar = initialRtt / 2;
    this.firstSampleTime = undefined;
  }
}
