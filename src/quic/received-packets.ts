/**
 * Receive-side acknowledgment state of one packet number space (RFC 9000 §13.2, RFC 9002 §6.2
 * and §7): which packets were received (duplicate detection), when an ACK frame is due, and the
 * ACK frame itself (ranges, ACK Delay, ECN counts).
 *
 * SANS-IO: every time is a `now` in milliseconds supplied by the caller; nothing here reads a
 * clock or arms a timer. The connection:
 * 1. after decrypting a packet, calls {@link ReceivedPackets.isDuplicate} (drop if true) and, once
 *    the packet is processed, {@link ReceivedPackets.onPacketReceived};
 * 2. sends an ACK when `now ≥ ackDeadline()` (an ACK-only packet if nothing else is going out) and
 *    MAY piggyback one on any packet it sends when {@link ReceivedPackets.hasUnacked} is true;
 * 3. after putting the frame from {@link ReceivedPackets.buildAckFrame} into a packet, calls
 *    {@link ReceivedPackets.onAckSent} and remembers the frame's `largest` with the sent packet;
 * 4. when that packet is acknowledged, calls {@link ReceivedPackets.onAckOfAck} with it (§13.2.4).
 *
 * Duplicates and the tracked window: numbers below the {@link AckRanges} floor (raised by ACK-of-ACK
 * pruning and by the cap on remembered ranges) are treated as duplicates, so a packet that arrives
 * after an ACK covering later packets was itself acknowledged is dropped. This is what lets the
 * ranges be discarded (§13.2.3: "Maintaining a minimum packet number that increases as ranges are
 * discarded"); such a packet is more than a round trip late and the peer has declared it lost.
 *
 * Ack frequency: the ack-eliciting threshold, max_ack_delay and reordering threshold are settable
 * ({@link ReceivedPackets.setAckFrequency}) for the ACK_FREQUENCY extension. Reordering Threshold 0
 * turns off immediate ACKs on reordering and gaps (ack-frequency §6.2); 1 is RFC 9000 §13.2.1;
 * larger values follow ack-frequency §6.2: an ACK is immediate only once a missing packet is
 * Reordering Threshold below the largest ack-eliciting packet (the peer could declare it lost),
 * or when a late packet arrives that the peer has already declared lost.
 */
import { AckRanges, DEFAULT_MAX_TRACKED_RANGES } from "./ack-ranges.ts";
import { QuicUsageError } from "./errors.ts";
import type { AckFrame } from "./frames.ts";

/** Packet number spaces (RFC 9000 §12.3); 0-RTT and 1-RTT share "application". */
export type PacketNumberSpace = "initial" | "handshake" | "application";

/** The ECN field of the IP header (RFC 3168 §5), as the two low bits of the TOS/Traffic Class. */
export const Ecn = {
  NOT_ECT: 0b00,
  ECT1: 0b01,
  ECT0: 0b10,
  CE: 0b11,
} as const;
export type Ecn = (typeof Ecn)[keyof typeof Ecn];

/** RFC 9000 §18.2 default max_ack_delay, milliseconds. */
export const DEFAULT_MAX_ACK_DELAY = 25;
/** RFC 9000 §18.2 default ack_delay_exponent. */
export const DEFAULT_ACK_DELAY_EXPONENT = 3;
/**
 * RFC 9000 §13.2.2: "A receiver SHOULD send an ACK frame after receiving at least two
 * ack-eliciting packets."
 */
export const DEFAULT_ACK_ELICITING_THRESHOLD = 2;
/** Default number of ranges put in one ACK frame (older ranges are omitted, §13.2.3). */
export const DEFAULT_MAX_ACK_RANGES = 64;

export interface ReceivedPacketsOptions {
  /**
   * Our max_ack_delay transport parameter (ms). Used for the application space only: Initial and
   * Handshake packets are acknowledged immediately (§13.2.1). Default 25.
   */
  maxAckDelay?: number | undefined;
  /**
   * Exponent the ACK Delay field is encoded with (§19.3): our ack_delay_exponent transport
   * parameter, default 3. The peer decodes it with the value it has for us; before it has our
   * transport parameters (Initial) it can only assume the default, so keep 3 there.
   */
  ackDelayExponent?: number | undefined;
  /** Ack-eliciting packets that make an ACK due immediately (§13.2.2; default 2). ≥ 1. */
  ackElicitingThreshold?: number | undefined;
  /** Ranges remembered (duplicate detection and ACK content). Default 256. */
  maxTrackedRanges?: number | undefined;
  /** Ranges put in one ACK frame. Default 64. */
  maxAckRanges?: number | undefined;
}

export class ReceivedPackets {
  private readonly ranges: AckRanges;
  private readonly immediateSpace: boolean;
  private maxAckDelay: number;
  private ackElicitingThreshold: number;
  private readonly ackDelayDivisor: number;
  private readonly maxAckRanges: number;

  private _largest = -1;
  private _largestTime = 0;
  private largestAckEliciting = -1;
  /** Ack-eliciting packets received since the last ACK was sent. */
  private unackedEliciting = 0;
  /** Receive time of the first of those. */
  private firstUnackedTime = 0;
  private immediate = false;
  /** ACK_FREQUENCY Reordering Threshold: 0 = reordering and gaps do not make an ACK immediate. */
  private reorderingThreshold = 1;
  /** Largest Acknowledged of the last ACK frame sent (ack-frequency §6.2 "Largest Acked"), −1 if none. */
  private largestAckedSent = -1;
  /** Any packet (ack-eliciting or not) received since the last ACK was sent. */
  private unackedAny = false;

  /** Cumulative ECN counts of packets processed in this space (§13.4.1). */
  ect0 = 0;
  ect1 = 0;
  ce = 0;

  constructor(
    readonly space: PacketNumberSpace,
    options: ReceivedPacketsOptions = {},
  ) {
    this.immediateSpace = space !== "application";
    this.maxAckDelay = options.maxAckDelay ?? DEFAULT_MAX_ACK_DELAY;
    this.ackElicitingThreshold = options.ackElicitingThreshold ?? DEFAULT_ACK_ELICITING_THRESHOLD;
    const exponent = options.ackDelayExponent ?? DEFAULT_ACK_DELAY_EXPONENT;
    if (!Number.isInteger(exponent) || exponent < 0 || exponent > 20) {
      throw new QuicUsageError(`ack_delay_exponent out of range: ${exponent}`); // §18.2: ≤ 20
    }
    this.ackDelayDivisor = 2 ** exponent;
    this.maxAckRanges = options.maxAckRanges ?? DEFAULT_MAX_ACK_RANGES;
    this.ranges = new AckRanges(options.maxTrackedRanges ?? DEFAULT_MAX_TRACKED_RANGES);
    if (!(this.ackElicitingThreshold >= 1)) throw new QuicUsageError("ackElicitingThreshold must be ≥ 1");
  }

  /**
   * Largest packet number processed in this space, −1 if none. Kept even when ranges are pruned:
   * packet number decoding needs it (§13.2.3, §17.1).
   */
  get largest(): number {
    return this._largest;
  }

  /** When the packet numbered {@link largest} was received. */
  get largestReceivedTime(): number {
    return this._largestTime;
  }

  /** Everything below this is treated as a duplicate (see the module comment). */
  get floor(): number {
    return this.ranges.floor;
  }

  /** The remembered packet numbers (read-only use, e.g. tests and qlog). */
  get received(): AckRanges {
    return this.ranges;
  }

  /** Whether `pn` was already received, or lies below the tracked window: drop the packet. */
  isDuplicate(pn: number): boolean {
    return pn < this.ranges.floor || this.ranges.contains(pn);
  }

  /**
   * Records a processed packet. Returns false (and records nothing, ECN included: §13.4.1
   * "duplicate QUIC packets ... do not increase ECN counts") for a duplicate.
   *
   * @param ecn the ECN codepoint of the IP packet that carried it ({@link Ecn}).
   */
  onPacketReceived(pn: number, now: number, ackEliciting: boolean, ecn: Ecn = Ecn.NOT_ECT): boolean {
    if (!this.ranges.insert(pn)) return false;
    if (pn > this._largest) {
      this._largest = pn;
      this._largestTime = now;
    }
    // §13.4.1: each processed packet increments the count of its IP packet's codepoint.
    if (ecn === Ecn.ECT0) this.ect0++;
    else if (ecn === Ecn.ECT1) this.ect1++;
    else if (ecn === Ecn.CE) this.ce++;
    this.unackedAny = true;
    // §13.2.1: only ack-eliciting packets make an ACK due; non-ack-eliciting ones are
    // acknowledged with the next ACK sent for another reason (MUST NOT answer them alone).
    if (!ackEliciting) return true;

    if (this.unackedEliciting++ === 0) this.firstUnackedTime = now;
    const largestAE = this.largestAckEliciting;
    if (pn > largestAE) this.largestAckEliciting = pn;
    if (!this.immediate) {
      const threshold = this.reorderingThreshold;
      if (
        // §13.2.1: Initial and Handshake ack-eliciting packets MUST be acknowledged immediately.
        this.immediateSpace ||
        // §13.2.2: after (by default) two ack-eliciting packets.
        this.unackedEliciting >= this.ackElicitingThreshold ||
        // §13.2.1: a packet number below another ack-eliciting packet received (reordering) …
        (threshold === 1 && pn < largestAE) ||
        // … or above it with missing packets in between (a gap). Numbers below the floor are
        // settled (acknowledged and the ACK acknowledged, or forgotten): no gap reported there.
        (threshold === 1 && this.hasGapBelow(pn, largestAE)) ||
        // ack-frequency §6.2: with a Reordering Threshold above 1, only outside the peer's
        // reordering window.
        (threshold > 1 && this.outsideReorderingWindow(pn, threshold)) ||
        // §13.2.1: ECN-CE SHOULD be acknowledged immediately.
        ecn === Ecn.CE
      ) {
        this.immediate = true;
      }
    }
    return true;
  }

  /**
   * ack-frequency §6.2, Reordering Threshold > 1: the ack-eliciting packet `pn` (already recorded)
   * is outside the peer's reordering window when
   * - Largest Unacked − the smallest Unreported Missing packet ≥ threshold (the peer can now
   *   declare that packet lost: tell it), or
   * - `pn` ≤ Largest Acked − threshold (a late packet the peer has already declared lost: the
   *   ACK lets it detect the spurious retransmission).
   * Largest Reported Missing = Largest Acked − threshold; Unreported Missing = the packets above
   * it and below Largest Unacked not received. Before any ACK was sent every missing packet above
   * the floor is unreported.
   */
  private outsideReorderingWindow(pn: number, threshold: number): boolean {
    const largestAcked = this.largestAckedSent;
    if (largestAcked >= 0 && pn <= largestAcked - threshold) return true;
    const largestUnacked = this.largestAckEliciting;
    let low = this.ranges.floor;
    if (largestAcked >= 0 && largestAcked - threshold + 1 > low) low = largestAcked - threshold + 1;
    if (largestUnacked - low < threshold) return false; // no missing packet can be far enough below
    const missing = this.smallestMissingFrom(low);
    return missing < largestUnacked && largestUnacked - missing >= threshold;
  }

  /** The smallest packet number ≥ `from` not received (binary search over the ranges). */
  private smallestMissingFrom(from: number): number {
    const ranges = this.ranges;
    // The last range whose low end is ≤ from.
    let lo = 0;
    let hi = ranges.rangeCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ranges.rangeLow(mid) > from) hi = mid;
      else lo = mid + 1;
    }
    if (lo === 0) return from;
    const high = ranges.rangeHigh(lo - 1);
    return high >= from ? high + 1 : from;
  }

  private hasGapBelow(pn: number, largestAE: number): boolean {
    const low = this.ranges.rangeLowContaining(pn);
    return low > largestAE + 1 && low > this.ranges.floor;
  }

  /**
   * When an ACK frame must be sent: Infinity when no ack-eliciting packet awaits
   * acknowledgment; a time ≤ now when one is due immediately; otherwise the receipt time of the
   * first unacknowledged ack-eliciting packet + max_ack_delay (§13.2.1: "ack-eliciting 0-RTT and
   * 1-RTT packets [MUST be acknowledged] within its advertised max_ack_delay").
   */
  ackDeadline(): number {
    if (this.unackedEliciting === 0) return Number.POSITIVE_INFINITY;
    if (this.immediate) return this.firstUnackedTime;
    return this.firstUnackedTime + this.maxAckDelay;
  }

  /** An ack-eliciting packet awaits acknowledgment and the ACK is due without delay. */
  get ackImmediately(): boolean {
    return this.immediate && this.unackedEliciting > 0;
  }

  /** Ack-eliciting packets received since the last ACK was sent. */
  get pendingAckEliciting(): number {
    return this.unackedEliciting;
  }

  /**
   * Some packet was received since the last ACK was sent: an ACK frame may be piggybacked on an
   * outgoing packet (§13.2: "SHOULD attempt to include an ACK frame if one has not been sent
   * recently"). Never send an ACK-only packet just for this.
   */
  get hasUnacked(): boolean {
    return this.unackedAny;
  }

  /**
   * The ACK frame to send now, or null when no range is left to acknowledge. ACK Delay is
   * now − receipt time of the largest packet (§13.2.5), in microseconds scaled down by
   * 2^ack_delay_exponent (§19.3). ECN counts are included (type 0x03) once any ECN codepoint has
   * been seen (§13.4.1). Does not change state: call {@link onAckSent} once it is sent.
   *
   * @param maxRanges ranges to include at most (the newest ones, §13.2.3); default from options.
   */
  buildAckFrame(now: number, maxRanges: number = this.maxAckRanges): AckFrame | null {
    if (this.ranges.isEmpty) return null;
    const ranges = this.ranges.toAckFrameRanges(maxRanges);
    let ackDelay = 0;
    const elapsed = now - this._largestTime;
    // Only when the largest packet is in the frame (it always is unless pruned away).
    if (elapsed > 0 && ranges[0] === this._largest) {
      ackDelay = Math.floor((elapsed * 1000) / this.ackDelayDivisor);
    }
    const frame: AckFrame = { kind: "ack", largest: ranges[0], ackDelay, ranges };
    if (this.ect0 + this.ect1 + this.ce > 0) frame.ecn = { ect0: this.ect0, ect1: this.ect1, ce: this.ce };
    return frame;
  }

  /**
   * An ACK frame from {@link buildAckFrame} was sent (its Largest Acknowledged is `largestAcked`,
   * by default the largest packet received): nothing is pending until new packets arrive. (§13.2.1: at most one ACK-only packet per ack-eliciting packet received follows.)
   */
  onAckSent(largestAcked: number = this._largest): void {
    if (largestAcked > this.largestAckedSent) this.largestAckedSent = largestAcked;
    this.unackedEliciting = 0;
    this.immediate = false;
    this.unackedAny = false;
  }

  /**
   * A packet carrying an ACK frame with Largest Acknowledged `largestAcked` was acknowledged by
   * the peer: stop acknowledging packets ≤ `largestAcked` (§13.2.4). They become duplicates.
   */
  onAckOfAck(largestAcked: number): void {
    // Never beyond what we received: the largest must stay decodable and the floor sane.
    const bound = Math.min(largestAcked, this._largest) + 1;
    this.ranges.removeBelow(bound);
  }

  /** IMMEDIATE_ACK (ack-frequency §5): a pending acknowledgment becomes due now. */
  requestImmediateAck(): void {
    if (this.unackedEliciting > 0) this.immediate = true;
  }

  /**
   * Changes the ack-eliciting threshold and max_ack_delay (ACK_FREQUENCY). A pending deadline
   * follows the new max_ack_delay; reaching the new threshold makes the ACK immediate.
   */
  setAckFrequency(ackElicitingThreshold: number, maxAckDelay: number, reorderingThreshold = 1): void {
    if (!(ackElicitingThreshold >= 1)) throw new QuicUsageError("ackElicitingThreshold must be ≥ 1");
    this.ackElicitingThreshold = ackElicitingThreshold;
    this.maxAckDelay = maxAckDelay;
    this.reorderingThreshold = reorderingThreshold;
    if (this.unackedEliciting >= ackElicitingThreshold) this.immediate = true;
  }
}
