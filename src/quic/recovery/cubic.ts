/**
 * CUBIC congestion control (RFC 9438, which obsoletes RFC 8312) on the QUIC machinery of
 * RFC 9002 §7 (one reduction per recovery period, minimum window, persistent congestion,
 * ECN-CE), see {@link WindowController}.
 *
 * RFC 9438 is not in the local spec folder: the section numbers and formulas below are cited
 * from memory of RFC 9438:
 * - §4.1.1 constants C = 0.4, β_cubic = 0.7;
 * - §4.2 W_cubic(t) = C·(t − K)³ + W_max, K = ∛((W_max − cwnd_epoch) / C), t the time since the
 *   start of the congestion avoidance stage, and per ACK `cwnd += (target − cwnd) / cwnd` with
 *   target = W_cubic(t + RTT) clamped to [cwnd, 1.5·cwnd];
 * - §4.3 Reno-friendly region: W_est = cwnd_epoch at the start of the stage,
 *   `W_est += α_cubic · segments_acked / cwnd`, α_cubic = 3(1 − β)/(1 + β) until
 *   W_est ≥ cwnd_prior, then 1; if W_cubic(t) < W_est, cwnd = W_est;
 * - §4.4 / §4.5 concave (cwnd < W_max) and convex (cwnd ≥ W_max) regions follow §4.2;
 * - §4.6 multiplicative decrease: ssthresh = cwnd·β_cubic, cwnd = max(ssthresh, minimum window);
 * - §4.7 fast convergence: W_max = cwnd·(1 + β)/2 when cwnd < the previous W_max, else cwnd;
 * - §4.8 after a timeout (here: persistent congestion) the first stage uses K = 0 and
 *   W_max = cwnd_epoch;
 * - §4.10 slow start below ssthresh (standard slow start; HyStart++ is not implemented).
 *
 * Units: RFC 9438 counts segments and seconds; here windows are bytes (segments × mss, so the
 * cubic term is scaled by mss) and times are ms (converted to seconds for W_cubic). The per-ACK
 * increase is scaled by the segments the ACK acknowledged (byte counting), like W_est.
 * Not implemented: §4.9 undo of spurious congestion events, excluding application-limited periods
 * from t (§5.8; growth is merely suspended while `appLimited`).
 */
import { WindowController } from "./congestion-controller.ts";
import type { RttView } from "./rtt-estimator.ts";

/** C (RFC 9438 §4.1.1). */
export const CUBIC_C = 0.4;
/** β_cubic (RFC 9438 §4.1.1). */
export const CUBIC_BETA = 0.7;
/** α_cubic = 3(1 − β_cubic)/(1 + β_cubic) (RFC 9438 §4.3). */
export const CUBIC_ALPHA = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

export interface CubicOptions {
  /** Fast convergence (RFC 9438 §4.7), default on. */
  fastConvergence?: boolean;
}

export class CubicController extends WindowController {
  /** W_max (bytes): window just before the last reduction (after fast convergence). */
  wMax = 0;
  /** cwnd_prior (bytes): window when ssthresh was last set. */
  cwndPrior = 0;
  /** K (seconds) of the current congestion avoidance stage. */
  k = 0;
  /** t_epoch (ms): start of the current congestion avoidance stage, undefined outside one. */
  epochStart: number | undefined = undefined;
  /** cwnd_epoch (bytes). */
  cwndEpoch = 0;
  /** W_est (bytes), the Reno-friendly estimate. */
  wEst = 0;
  private readonly fastConvergence: boolean;
  private afterTimeout = false;

  constructor(maxDatagramSize?: number, options: CubicOptions = {}) {
    super(maxDatagramSize);
    this.fastConvergence = options.fastConvergence ?? true;
  }

  /** W_cubic(t) in bytes for t in seconds since the start of the stage (RFC 9438 §4.2). */
  wCubic(tSeconds: number): number {
    const d = tSeconds - this.k;
    return CUBIC_C * d * d * d * this.mss + this.wMax;
  }

  protected grow(ackedBytes: number, now: number, rtt: RttView): void {
    if (this.cwnd < this.ssthresh) {
      // RFC 9438 §4.10: slow start below ssthresh.
      this.cwnd += ackedBytes;
      return;
    }
    if (this.epochStart === undefined) this.startEpoch(now);
    const t = (now - (this.epochStart as number)) / 1000;
    const cwnd = this.cwnd;
    // §4.3 Reno-friendly estimate; α becomes 1 once W_est reaches cwnd_prior.
    const alpha = this.wEst >= this.cwndPrior ? 1 : CUBIC_ALPHA;
    this.wEst += (alpha * this.mss * ackedBytes) / cwnd;
    if (this.wCubic(t) < this.wEst) {
      // Reno-friendly region: cwnd SHOULD be set to W_est.
      if (this.wEst > cwnd) this.cwnd = this.wEst;
      return;
    }
    // §4.2, §4.4, §4.5: move toward W_cubic one RTT ahead, at most 1.5× per RTT.
    let target = this.wCubic(t + rtt.smoothedRtt / 1000);
    if (target < cwnd) target = cwnd;
    else if (target > 1.5 * cwnd) target = 1.5 * cwnd;
    this.cwnd = cwnd + ((target - cwnd) * ackedBytes) / cwnd;
  }

  protected reduce(_now: number): void {
    const cwnd = this.cwnd;
    // §4.7 fast convergence: release bandwidth when the window stopped short of the last W_max.
    this.wMax = this.fastConvergence && cwnd < this.wMax ? (cwnd * (1 + CUBIC_BETA)) / 2 : cwnd;
    this.cwndPrior = cwnd;
    // §4.6 multiplicative decrease (the base class floors at kMinimumWindow, RFC 9002 §7.2).
    this.ssthresh = Math.max(cwnd * CUBIC_BETA, this.minimumWindow);
    this.cwnd = this.ssthresh;
    this.epochStart = undefined;
  }

  protected override afterPersistentCongestion(_now: number): void {
    // §4.8: the first congestion avoidance stage after a timeout uses K = 0, W_max = cwnd_epoch.
    this.epochStart = undefined;
    this.afterTimeout = true;
  }

  private startEpoch(now: number): void {
    this.epochStart = now;
    const cwnd = this.cwnd;
    this.cwndEpoch = cwnd;
    this.wEst = cwnd;
    if (this.afterTimeout || cwnd >= this.wMax) {
      // After a timeout (§4.8), or a stage starting at or above W_max (e.g. slow start ended
      // without a loss): the curve starts at its plateau, in the convex region.
      this.wMax = cwnd;
      this.k = 0;
      this.afterTimeout = false;
    } else {
      this.k = Math.cbrt((this.wMax - cwnd) / (CUBIC_C * this.mss));
    }
  }
}
