/**
 * Pacer (RFC 9002 §7.7): a token bucket filled at `rate = N · congestion_window / smoothed_rtt`
 * (N = 1.25) with a capacity of a few datagrams, so that packets are spread over the RTT instead
 * of sent in window-sized bursts (§7.7: senders MUST pace or limit bursts, SHOULD limit them to the
 * initial window).
 *
 * Sans-IO: the caller asks {@link Pacer.nextSendTime} before sending an in-flight packet, arms a
 * timer if that is in the future, and calls {@link Pacer.onSend} when it sends. ACK-only packets
 * SHOULD NOT be paced (§7.7): do not pass them.
 */
import { QuicUsageError } from "../errors.ts";
import { initialWindow, MIN_MAX_DATAGRAM_SIZE, PACING_GAIN } from "./congestion-controller.ts";

export interface PacerOptions {
  /** max_datagram_size (bytes), default 1200. */
  maxDatagramSize?: number;
  /** Bucket capacity in datagrams, default 10 (capped at the initial window, §7.7 SHOULD). */
  burstPackets?: number;
  /** N of §7.7, default 1.25 (at least 1). */
  gain?: number;
}

/** How coarse the caller's timers are, in milliseconds (see {@link Pacer.capacity}). */
const TIMER_GRANULARITY_MS = 2;

export class Pacer {
  private mss: number;
  private readonly burstPackets: number;
  private readonly gain: number;
  /** Refill rate in bytes per ms; Infinity until {@link update} is called (no pacing). */
  private bytesPerMs = Number.POSITIVE_INFINITY;
  private tokens: number;
  private lastRefill: number | undefined = undefined;

  constructor(options: PacerOptions = {}) {
    this.mss = options.maxDatagramSize ?? MIN_MAX_DATAGRAM_SIZE;
    this.burstPackets = options.burstPackets ?? 10;
    this.gain = options.gain ?? PACING_GAIN;
    if (!(this.gain >= 1)) throw new QuicUsageError("pacing gain must be at least 1");
    if (!(this.burstPackets >= 1)) throw new QuicUsageError("burst must be at least one packet");
    this.tokens = this.capacity;
  }

  /**
   * Bucket capacity in bytes: the burst, at most the initial window, at least one datagram — and
   * at least what the rate earns in two milliseconds: an event loop's timers fire at ~1 ms
   * granularity, so a smaller bucket would cap the rate at burst/ms (≈ 100 Mbit/s for 10 packets)
   * however large the window (quinn sizes its pacing bursts the same way).
   */
  get capacity(): number {
    const burst = Math.max(this.mss, Math.min(this.burstPackets * this.mss, initialWindow(this.mss)));
    return Number.isFinite(this.bytesPerMs) ? Math.max(burst, this.bytesPerMs * TIMER_GRANULARITY_MS) : burst;
  }

  /** Current rate in bytes/ms. */
  get rate(): number {
    return this.bytesPerMs;
  }

  /** The PMTU changed. */
  setMaxDatagramSize(size: number): void {
    this.mss = size;
    if (this.tokens > this.capacity) this.tokens = this.capacity;
  }

  /**
   * Sets the rate from the congestion window and smoothed RTT (§7.7:
   * `N · congestion_window / smoothed_rtt`). Call after each ACK; tokens earned at the old rate
   * up to `now` are kept.
   */
  update(now: number, congestionWindow: number, smoothedRtt: number): void {
    this.refill(now);
    this.bytesPerMs = (this.gain * congestionWindow) / Math.max(smoothedRtt, 0.001);
  }

  /**
   * Earliest time ≥ `now` at which a packet of `bytes` may be sent: `now` if the bucket holds
   * enough tokens, else when it will have refilled them.
   */
  nextSendTime(now: number, bytes: number): number {
    const tokens = this.tokensAt(now);
    const need = Math.min(bytes, this.capacity);
    if (tokens >= need) return now;
    return now + (need - tokens) / this.bytesPerMs;
  }

  /** A paced packet of `bytes` was sent at `now`: spends its tokens (the bucket may go into debt). */
  onSend(now: number, bytes: number): void {
    this.refill(now);
    this.tokens -= bytes;
  }

  private tokensAt(now: number): number {
    const last = this.lastRefill;
    if (last === undefined || now <= last) return Math.min(this.tokens, this.capacity);
    return Math.min(this.capacity, this.tokens + (now - last) * this.bytesPerMs);
  }

  private refill(now: number): void {
    this.tokens = this.tokensAt(now);
    if (this.lastRefill === undefined || now > this.lastRefill) this.lastRefill = now;
  }
}
