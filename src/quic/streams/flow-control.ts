/**
 * Data flow control (RFC 9000 §4.1, §4.2), one instance per stream and one per connection, for
 * each direction. Limits are absolute byte counts: for a stream, the largest offset; for the
 * connection, the sum over streams (the caller feeds each stream's increase into the connection's
 * controller).
 *
 * SANS-IO: times (`now`) and the smoothed RTT are milliseconds supplied by the caller.
 */
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";

/**
 * Our side as a sender: the peer's limit (MAX_DATA / MAX_STREAM_DATA), what we used, and when to
 * tell the peer we are blocked (DATA_BLOCKED / STREAM_DATA_BLOCKED, once per limit value).
 */
export class SendFlowControl {
  private _limit: number;
  private _used = 0;
  /** Limit for which a BLOCKED frame was last sent, −1 for none. */
  private blockedSentAt = -1;

  /** @param initialLimit from the peer's transport parameters (initial_max_data / _stream_data_*). */
  constructor(initialLimit: number) {
    this._limit = initialLimit;
  }

  /** The peer's current limit. */
  get limit(): number {
    return this._limit;
  }

  /** Bytes counted so far (stream: highest offset sent; connection: sum of those). */
  get used(): number {
    return this._used;
  }

  /** Credit left. */
  get available(): number {
    return this._limit > this._used ? this._limit - this._used : 0;
  }

  /** No credit left. */
  get isBlocked(): boolean {
    return this._used >= this._limit;
  }

  /**
   * MAX_DATA / MAX_STREAM_DATA from the peer. §4.1: "A sender MUST ignore any MAX_STREAM_DATA or
   * MAX_DATA frames that do not increase flow control limits." Returns whether the limit grew.
   */
  onMaxData(maximum: number): boolean {
    if (maximum <= this._limit) return false;
    this._limit = maximum;
    return true;
  }

  /**
   * `bytes` of new data were sent. §4.1: "Senders MUST NOT send data in excess of either
   * limit": exceeding it is a local bug (QuicUsageError).
   */
  onSent(bytes: number): void {
    const used = this._used + bytes;
    if (used > this._limit) throw new QuicUsageError(`flow control limit ${this._limit} exceeded`);
    this._used = used;
  }

  /**
   * Whether to send DATA_BLOCKED / STREAM_DATA_BLOCKED (§4.1 SHOULD): blocked at a limit for which
   * none was sent yet. Ask only when there is data waiting.
   */
  shouldSendBlocked(): boolean {
    return this._used >= this._limit && this.blockedSentAt !== this._limit;
  }

  /** The BLOCKED frame was sent; returns the limit to put in it. */
  onBlockedSent(): number {
    this.blockedSentAt = this._limit;
    return this._limit;
  }

  /** The BLOCKED frame for `limit` was lost: allow sending it again if still blocked there. */
  onBlockedLost(limit: number): void {
    if (this.blockedSentAt === limit) this.blockedSentAt = -1;
  }
}

export interface ReceiveFlowControlOptions {
  /** Initial window: the limit advertised in the transport parameters. */
  window: number;
  /** Largest window auto-tuning may grow to. Default `window` (no auto-tuning). */
  maxWindow?: number | undefined;
  /**
   * Announce a new limit once the application consumed this fraction of the window since the
   * last announcement (0 < f ≤ 1). Default 0.5.
   */
  updateFraction?: number | undefined;
  /**
   * Auto-tuning: the window doubles when, at an update, consumption since the previous update
   * would use up a whole window in less than this many RTTs. Default 2.
   */
  autoTuneRtts?: number | undefined;
}

/**
 * Our side as a receiver: the limit we advertised, what the peer sent, what the application
 * consumed, and when to advertise more (MAX_DATA / MAX_STREAM_DATA).
 *
 * Auto-tuning (as quinn and quic-go do): the window must exceed the bandwidth-delay product or
 * the sender stalls waiting for credit. At each update, if the data consumed since the previous
 * update (an "epoch") went faster than `window / (autoTuneRtts · RTT)`, the window doubles, up to
 * `maxWindow`. Slow consumption never grows it.
 */
export class ReceiveFlowControl {
  private _limit: number;
  private _window: number;
  private readonly maxWindow: number;
  private readonly updateFraction: number;
  private readonly autoTuneRtts: number;
  private _highest = 0;
  private _consumed = 0;
  private epochStart = -1;
  private epochConsumed = 0;

  constructor(options: ReceiveFlowControlOptions) {
    const window = options.window;
    if (!(window >= 0)) throw new QuicUsageError("flow control window must be ≥ 0");
    this._window = window;
    this._limit = window;
    this.maxWindow = Math.max(window, options.maxWindow ?? window);
    const f = options.updateFraction ?? 0.5;
    if (!(f > 0 && f <= 1)) throw new QuicUsageError("updateFraction must be in (0, 1]");
    this.updateFraction = f;
    this.autoTuneRtts = options.autoTuneRtts ?? 2;
  }

  /** The limit advertised to the peer. */
  get limit(): number {
    return this._limit;
  }

  /** Current window size. */
  get window(): number {
    return this._window;
  }

  /** Highest offset (stream) or total (connection) received. */
  get highest(): number {
    return this._highest;
  }

  /** Bytes consumed by the application. */
  get consumed(): number {
    return this._consumed;
  }

  /**
   * A STREAM frame (or RESET_STREAM final size) reached offset `end` on this stream. Returns by
   * how much the highest received offset grew: the amount to feed to the connection's
   * controller with {@link onReceivedBytes}.
   *
   * @throws QuicError FLOW_CONTROL_ERROR when `end` exceeds the advertised limit (§4.1 MUST,
   *   §19.9/§19.10).
   */
  onReceivedOffset(end: number, frameType = 0): number {
    if (end > this._limit) {
      throw new QuicError(
        TransportErrorCode.FLOW_CONTROL_ERROR,
        `received offset ${end} beyond limit ${this._limit}`,
        frameType,
      );
    }
    if (end <= this._highest) return 0;
    const grew = end - this._highest;
    this._highest = end;
    return grew;
  }

  /**
   * Connection level: `bytes` more were received in total (the sum of the streams' increases).
   *
   * @throws QuicError FLOW_CONTROL_ERROR beyond the advertised MAX_DATA (§4.1, §19.9).
   */
  onReceivedBytes(bytes: number, frameType = 0): void {
    const total = this._highest + bytes;
    if (total > this._limit) {
      throw new QuicError(
        TransportErrorCode.FLOW_CONTROL_ERROR,
        `received ${total} bytes beyond limit ${this._limit}`,
        frameType,
      );
    }
    this._highest = total;
  }

  /**
   * The application consumed `bytes` (or they were discarded: a reset stream's unread bytes are
   * consumed as far as the connection is concerned).
   */
  onConsumed(bytes: number, now: number): void {
    const consumed = this._consumed + bytes;
    if (consumed > this._highest) throw new QuicUsageError("consumed more than received");
    if (this.epochStart < 0 && bytes > 0) {
      // The first epoch starts with the first consumption (like quic-go), so a fast start can
      // grow the window at the first update.
      this.epochStart = now;
      this.epochConsumed = this._consumed;
    }
    this._consumed = consumed;
  }

  /**
   * Whether a new limit is worth announcing: the application consumed at least
   * `updateFraction · window` since the last announcement.
   */
  shouldSendUpdate(): boolean {
    return this._consumed + this._window - this._limit >= this._window * this.updateFraction;
  }

  /**
   * Computes and records the new limit to announce (consumed + window, after auto-tuning with
   * the smoothed RTT `rtt`, 0 if unknown), and returns it. Never lowers the limit.
   */
  takeUpdate(now: number, rtt: number): number {
    if (this.epochStart >= 0 && rtt > 0 && this._window < this.maxWindow) {
      const inEpoch = this._consumed - this.epochConsumed;
      // Grow when the epoch's consumption rate would use up the window in < autoTuneRtts RTTs:
      // elapsed / (inEpoch / window) < autoTuneRtts · rtt. Needs a meaningful sample (half a window).
      if (
        inEpoch * 2 >= this._window &&
        (now - this.epochStart) * this._window < this.autoTuneRtts * rtt * inEpoch
      ) {
        this._window = Math.min(this._window * 2, this.maxWindow);
      }
    }
    if (this.epochStart >= 0) {
      this.epochStart = now;
      this.epochConsumed = this._consumed;
    }
    const limit = this._consumed + this._window;
    if (limit > this._limit) this._limit = limit;
    return this._limit;
  }

  /**
   * Makes the window at least `minWindow` (capped by maxWindow), e.g. to keep the connection
   * window above a stream window that auto-tuning grew (quic-go keeps it at 1.5×).
   */
  ensureWindow(minWindow: number): void {
    const w = Math.min(minWindow, this.maxWindow);
    if (w > this._window) this._window = w;
  }
}
