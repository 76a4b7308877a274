/**
 * QUIC loss detection (RFC 9002 §6, pseudocode in Appendix A) for the three packet number spaces,
 * as a sans-IO state machine: the caller supplies `now` (ms) to every call, arms one timer at
 * {@link LossDetection.getLossDetectionTimer} and calls {@link LossDetection.onLossDetectionTimeout}
 * when it fires.
 *
 * The module is independent of congestion control: ACK processing and timeouts return the newly
 * acknowledged and lost packets and the congestion signals (persistent congestion, ECN-CE increase);
 * the connection feeds them to a `CongestionController` (see `applyCongestionSignals` in
 * congestion-controller.ts) and retransmits the frames of lost packets.
 *
 * Deviations from / choices within the Appendix A pseudocode:
 * - GetLossTimeAndSpace skips spaces without a loss time (the pseudocode's `loss_time < time` test
 *   would pick an unset 0).
 * - The client anti-deadlock PTO (§6.2.2.1) is also armed when the only ack-eliciting packets in
 *   flight are Application Data (0-RTT) packets that may not arm a PTO before handshake
 *   confirmation (§6.2.1): the MUST of §6.2.2.1 holds "even if there are no packets in flight", and
 *   the pseudocode would otherwise leave no timer at all.
 * - Lost packets are removed at once (no state kept to detect spurious retransmissions).
 * - The ack delay of Initial ACKs is ignored (§5.3 MAY).
 * - Persistent congestion (§7.6.2) is evaluated over the ack-eliciting packets declared lost by one
 *   ACK or timeout (as Appendix B.8 OnPacketsLost does), but "no packet sent between them was
 *   acknowledged" is checked across all spaces, using the global send order.
 */
import { protocolViolation, QuicUsageError } from "../errors.ts";
import {
  K_GRANULARITY,
  K_INITIAL_RTT,
  K_PERSISTENT_CONGESTION_THRESHOLD,
  RttEstimator,
} from "./rtt-estimator.ts";
import type { SentPacket } from "./sent-packet.ts";
import { SentPackets } from "./sent-packets.ts";

/** kPacketNumberSpace (Appendix A.2). */
export const PacketNumberSpace = { Initial: 0, Handshake: 1, ApplicationData: 2 } as const;
export type PacketNumberSpace = (typeof PacketNumberSpace)[keyof typeof PacketNumberSpace];

const SPACE_NAMES = ["Initial", "Handshake", "ApplicationData"] as const;

/** kPacketThreshold, RECOMMENDED 3 (§6.1.1). */
export const K_PACKET_THRESHOLD = 3;
/** kTimeThreshold, RECOMMENDED 9/8 (§6.1.2). */
export const K_TIME_THRESHOLD = 9 / 8;
/** Default max_ack_delay transport parameter: 25 ms (RFC 9000 §18.2). */
export const DEFAULT_MAX_ACK_DELAY = 25;

/** How many skipped packet numbers per space are remembered to catch optimistic ACKs. */
const MAX_SKIPPED = 16;

export interface LossDetectionOptions {
  /** Endpoint role: a server assumes the peer validated its address (Appendix A.6). */
  isServer: boolean;
  /** kInitialRtt in ms (default 333, §6.2.2). Ignored when `rtt` is given. */
  initialRtt?: number;
  /** A shared RTT estimator (default: a new one). */
  rtt?: RttEstimator;
  /** The peer's max_ack_delay in ms (default 25); see {@link LossDetection.setMaxAckDelay}. */
  maxAckDelay?: number;
  /** kPacketThreshold (default 3; §6.1.1: SHOULD NOT be less than 3). */
  packetThreshold?: number;
  /** kTimeThreshold (default 9/8). */
  timeThreshold?: number;
  /** kPersistentCongestionThreshold (default 3). */
  persistentCongestionThreshold?: number;
  /** Ack-eliciting datagrams to send on a PTO: 1 or 2 (default 2, §6.2.4 "up to two"). */
  ptoProbeCount?: number;
}

/** An ACK frame as loss detection needs it. */
export interface AckInfo {
  /** Largest Acknowledged. */
  readonly largest: number;
  /** ACK Delay in ms, already scaled by the peer's ack_delay_exponent. */
  readonly ackDelay: number;
  /** Flat inclusive [high, low] pairs in descending order, as `AckFrame.ranges`. */
  readonly ranges: readonly number[];
  /** ECN counts of an ACK_ECN frame. */
  readonly ecn?: { readonly ect0: number; readonly ect1: number; readonly ce: number } | undefined;
}

/** An increase of the peer-reported ECN-CE count (Appendix B.7): a congestion signal. */
export interface EcnCeSignal {
  /** Time the largest newly acknowledged packet was sent (OnCongestionEvent's `sent_time`). */
  readonly sentTime: number;
  /** The new ECN-CE count. */
  readonly count: number;
}

export interface AckResult<T> {
  /** Packets this ACK newly acknowledged, ascending packet number. */
  newlyAcked: SentPacket<T>[];
  /** Packets declared lost while processing this ACK, ascending packet number. */
  lost: SentPacket<T>[];
  /** The RTT sample (latest_rtt) if this ACK produced one (§5.1). */
  rttSample: number | undefined;
  /** Whether `lost` establishes persistent congestion (§7.6.2). */
  persistentCongestion: boolean;
  /** Set when the ECN-CE count increased (§7.1, Appendix B.7). */
  ecnCe: EcnCeSignal | undefined;
}

/** What to send when the PTO fires (§6.2.4). */
export interface ProbeRequest {
  /** Space to send the probe(s) in. */
  readonly space: PacketNumberSpace;
  /** Number of ack-eliciting datagrams to send (not blocked by congestion control, §7.5). */
  readonly count: number;
  /**
   * Client anti-deadlock probe (§6.2.2.1): MUST be a Handshake packet if the client has Handshake
   * keys, else an Initial packet in a datagram of at least 1200 bytes.
   */
  readonly antiDeadlock: boolean;
}

export type TimeoutResult<T> =
  | { readonly kind: "none" }
  | {
      readonly kind: "loss";
      readonly space: PacketNumberSpace;
      readonly lost: SentPacket<T>[];
      readonly persistentCongestion: boolean;
    }
  | { readonly kind: "probe"; readonly probe: ProbeRequest };

export interface DiscardResult<T> {
  /** The outstanding packets of the space, ascending packet number. */
  discarded: SentPacket<T>[];
  /** Bytes in flight they accounted for: remove them from the congestion controller (§6.4). */
  bytesInFlight: number;
}

const NONE: TimeoutResult<never> = { kind: "none" };

class SpaceState<T> {
  readonly sent = new SentPackets<T>();
  /** largest_acked_packet, −1 for "infinite" (none yet). */
  largestAcked = -1;
  /** time_of_last_ack_eliciting_packet. */
  timeOfLastAckEliciting = 0;
  /** loss_time, undefined for 0. */
  lossTime: number | undefined = undefined;
  /** ecn_ce_counters (Appendix B.2). */
  ecnCe = 0;
  /** Keys discarded (§6.4): no more packets. */
  discarded = false;
  /** Packet numbers deliberately skipped (RFC 9000 §21.4); an ACK of one is a violation. */
  skipped: number[] = [];
}

export class LossDetection<T> {
  readonly rtt: RttEstimator;
  readonly isServer: boolean;
  /** pto_count: PTOs since the last acknowledgment that reset it (§6.2.1). */
  ptoCount = 0;
  /** The peer's max_ack_delay (ms). */
  maxAckDelay: number;
  private readonly packetThreshold: number;
  private readonly timeThreshold: number;
  private readonly pcThreshold: number;
  private readonly ptoProbeCount: number;
  private readonly spaces: [SpaceState<T>, SpaceState<T>, SpaceState<T>];
  private confirmed = false;
  private handshakeKeys = false;
  private handshakeAckReceived = false;
  private ampBlocked = false;
  private timer: number | undefined = undefined;
  private sendCounter = 0;
  /** Send orders of acknowledged packets newer than the oldest outstanding one, ascending. */
  private ackedOrders: number[] = [];
  private ackedHead = 0;
  // Outputs of ptoTime(), kept in fields so that the per-packet timer update allocates nothing.
  private ptoSpace: PacketNumberSpace = PacketNumberSpace.Initial;
  private ptoAntiDeadlock = false;

  constructor(options: LossDetectionOptions) {
    this.isServer = options.isServer;
    this.rtt = options.rtt ?? new RttEstimator(options.initialRtt ?? K_INITIAL_RTT, K_GRANULARITY);
    this.maxAckDelay = options.maxAckDelay ?? DEFAULT_MAX_ACK_DELAY;
    this.packetThreshold = options.packetThreshold ?? K_PACKET_THRESHOLD;
    this.timeThreshold = options.timeThreshold ?? K_TIME_THRESHOLD;
    this.pcThreshold = options.persistentCongestionThreshold ?? K_PERSISTENT_CONGESTION_THRESHOLD;
    this.ptoProbeCount = options.ptoProbeCount ?? 2;
    if (this.ptoProbeCount !== 1 && this.ptoProbeCount !== 2)
      throw new QuicUsageError("ptoProbeCount must be 1 or 2");
    this.spaces = [new SpaceState<T>(), new SpaceState<T>(), new SpaceState<T>()];
  }

  // ---- Inputs about the handshake -----------------------------------------------------------

  /** Whether the handshake is confirmed (RFC 9001 §4.1.2). */
  get handshakeConfirmed(): boolean {
    return this.confirmed;
  }

  /** The handshake is confirmed: Application Data may now arm the PTO (§6.2.1). */
  setHandshakeConfirmed(now: number): void {
    this.confirmed = true;
    this.setTimer(now);
  }

  /** The endpoint has Handshake keys (selects the anti-deadlock probe space, §6.2.2.1). */
  setHandshakeKeysAvailable(now: number): void {
    this.handshakeKeys = true;
    this.setTimer(now);
  }

  /**
   * Server only: whether the anti-amplification limit (RFC 9000 §8.1) blocks sending. While
   * blocked, the PTO timer is not armed (§6.2.2.1). When a datagram unblocks the server, call
   * this with `false`: if {@link getLossDetectionTimer} is then ≤ now, run
   * {@link onLossDetectionTimeout} at once (Appendix A.6).
   */
  setAmplificationBlocked(blocked: boolean, now: number): void {
    this.ampBlocked = blocked;
    this.setTimer(now);
  }

  /** Sets the peer's max_ack_delay (ms), from its transport parameters. */
  setMaxAckDelay(maxAckDelay: number, now: number): void {
    this.maxAckDelay = maxAckDelay;
    this.setTimer(now);
  }

  /**
   * PeerCompletedAddressValidation (Appendix A.6): always true at a server; at a client, once a
   * Handshake ACK was received or the handshake is confirmed.
   */
  get peerCompletedAddressValidation(): boolean {
    return this.isServer || this.handshakeAckReceived || this.confirmed;
  }

  // ---- Sending -----------------------------------------------------------------------------

  /**
   * Records a sent packet (Appendix A.5 OnPacketSent); `packet.timeSent` is "now". Packet numbers
   * must increase within a space. Register every packet, ACK-only ones included: they are needed
   * to validate ACKs and to learn when an ACK frame was acknowledged.
   */
  onPacketSent(space: PacketNumberSpace, packet: SentPacket<T>): void {
    const sp = this.spaces[space];
    if (sp.discarded) throw new QuicUsageError(`${SPACE_NAMES[space]} keys were discarded`);
    sp.sent.push(packet);
    packet.sendOrder = ++this.sendCounter;
    if (packet.inFlight) {
      if (packet.ackEliciting) sp.timeOfLastAckEliciting = packet.timeSent;
      // §6.2.1: SHOULD restart the PTO timer every time an ack-eliciting packet is sent.
      this.setTimer(packet.timeSent);
    }
  }

  /**
   * Records a packet number deliberately left unused (RFC 9000 §21.4, optimistic-ACK defense): an
   * ACK covering it is a PROTOCOL_VIOLATION.
   */
  onPacketNumberSkipped(space: PacketNumberSpace, packetNumber: number): void {
    const skipped = this.spaces[space].skipped;
    if (skipped.length >= MAX_SKIPPED) skipped.shift();
    skipped.push(packetNumber);
  }

  // ---- Acknowledgments ---------------------------------------------------------------------

  /**
   * Processes an ACK frame (Appendix A.7 OnAckReceived). Throws {@link QuicError}
   * PROTOCOL_VIOLATION when it acknowledges a packet number never sent (RFC 9000 §13.1): the
   * largest acknowledged above the largest sent, or a skipped packet number.
   *
   * An ACK for a space whose keys were discarded is ignored (empty result).
   */
  onAckReceived(space: PacketNumberSpace, ack: AckInfo, now: number): AckResult<T> {
    const sp = this.spaces[space];
    const result: AckResult<T> = {
      newlyAcked: [],
      lost: [],
      rttSample: undefined,
      persistentCongestion: false,
      ecnCe: undefined,
    };
    if (sp.discarded) return result;
    const largest = ack.largest;
    const ranges = ack.ranges;
    const frameType = ack.ecn ? 0x03 : 0x02;
    // RFC 9000 §13.1: an acknowledgment for a packet not sent SHOULD be a PROTOCOL_VIOLATION.
    if (largest > sp.sent.largestSent)
      throw protocolViolation(
        `ACK of unsent packet ${largest} in ${SPACE_NAMES[space]} space (largest sent ${sp.sent.largestSent})`,
        frameType,
      );
    if (sp.skipped.length > 0) checkSkipped(sp.skipped, largest, ranges, frameType);
    if (space === PacketNumberSpace.Handshake) this.handshakeAckReceived = true;
    if (largest > sp.largestAcked) sp.largestAcked = largest;

    // DetectAndRemoveAckedPackets: ranges from the lowest up, so newlyAcked ends up ascending.
    const newlyAcked = result.newlyAcked;
    if (ranges.length < 2) {
      sp.sent.removeRange(largest, largest, newlyAcked);
    } else {
      for (let i = ranges.length - 2; i >= 0; i -= 2)
        sp.sent.removeRange(ranges[i + 1], ranges[i], newlyAcked);
    }
    if (newlyAcked.length === 0) return result;

    let ackEliciting = false;
    for (let i = 0; i < newlyAcked.length; i++) {
      const p = newlyAcked[i];
      if (p.ackEliciting) ackEliciting = true;
      this.recordAcked(p.sendOrder);
    }
    const largestNewly = newlyAcked[newlyAcked.length - 1];
    // §5.1: a sample only when the largest acknowledged is newly acknowledged and at least one
    // newly acknowledged packet is ack-eliciting (MUST NOT otherwise).
    if (largestNewly.packetNumber === largest && ackEliciting) {
      const sample = now - largestNewly.timeSent;
      // §5.3: MAY ignore the ack delay of Initial packets.
      const ackDelay = space === PacketNumberSpace.Initial ? 0 : ack.ackDelay;
      this.rtt.update(sample, ackDelay, now, this.confirmed, this.maxAckDelay);
      result.rttSample = this.rtt.latestRtt;
    }

    // ProcessECN (Appendix B.7): an increased ECN-CE count is a congestion event.
    const ecn = ack.ecn;
    if (ecn !== undefined && ecn.ce > sp.ecnCe) {
      sp.ecnCe = ecn.ce;
      result.ecnCe = { sentTime: largestNewly.timeSent, count: ecn.ce };
    }

    this.detectAndRemoveLost(sp, now, result.lost);
    if (result.lost.length > 0) result.persistentCongestion = this.inPersistentCongestion(result.lost);

    // §6.2.1: the PTO backoff is reset on acknowledgment, except at a client not yet sure the
    // server validated its address.
    if (this.peerCompletedAddressValidation) this.ptoCount = 0;
    this.pruneAcked();
    this.setTimer(now);
    return result;
  }

  // ---- Timer -------------------------------------------------------------------------------

  /** Deadline of the loss detection timer (ms), undefined when not armed. */
  getLossDetectionTimer(): number | undefined {
    return this.timer;
  }

  /**
   * The loss detection timer fired (Appendix A.9 OnLossDetectionTimeout). Returns the packets
   * declared lost by the time threshold, or the probes to send (the caller sends them, and registers
   * them with {@link onPacketSent}, which rearms the timer), or `none` when called before the
   * deadline or without one.
   */
  onLossDetectionTimeout(now: number): TimeoutResult<T> {
    const timer = this.timer;
    if (timer === undefined || now < timer) return NONE;
    const lossSpace = this.earliestLossSpace();
    if (lossSpace !== undefined) {
      // Time threshold loss detection (§6.1.2).
      const lost: SentPacket<T>[] = [];
      this.detectAndRemoveLost(this.spaces[lossSpace], now, lost);
      const persistentCongestion = lost.length > 0 && this.inPersistentCongestion(lost);
      this.pruneAcked();
      this.setTimer(now);
      return { kind: "loss", space: lossSpace, lost, persistentCongestion };
    }
    // PTO (§6.2). It MUST NOT mark anything lost (§6.2).
    this.ptoTime(now);
    const probe: ProbeRequest = {
      space: this.ptoSpace,
      count: this.ptoAntiDeadlock ? 1 : this.ptoProbeCount,
      antiDeadlock: this.ptoAntiDeadlock,
    };
    // §6.2.1: when a PTO timer expires, the PTO backoff MUST be increased.
    this.ptoCount++;
    this.setTimer(now);
    return { kind: "probe", probe };
  }

  // ---- Key discard and reset ---------------------------------------------------------------

  /**
   * Initial or Handshake keys were discarded (§6.4, Appendix A.11): all recovery state of the
   * space is dropped and its packets leave bytes in flight (MUST); the PTO backoff is reset and the
   * timer rearmed (§6.2.2: MUST be reset). Also usable for ApplicationData when 0-RTT is rejected
   * (§6.4): its packets are dropped but the space stays usable for 1-RTT.
   */
  discardSpace(space: PacketNumberSpace, now: number): DiscardResult<T> {
    const sp = this.spaces[space];
    const bytesInFlight = sp.sent.bytesInFlight;
    const discarded: SentPacket<T>[] = [];
    sp.sent.clear(discarded);
    sp.timeOfLastAckEliciting = 0;
    sp.lossTime = undefined;
    if (space !== PacketNumberSpace.ApplicationData) sp.discarded = true;
    this.ptoCount = 0;
    this.pruneAcked();
    this.setTimer(now);
    return { discarded, bytesInFlight };
  }

  /**
   * Client received a Retry (§6.3): resets loss recovery state and timers (packet numbers keep
   * increasing, RFC 9000 §17.2.5.3). Returns every outstanding packet, whose CRYPTO data is to be
   * resent, and their bytes in flight. `initialRtt` may be the Retry-measured RTT (§6.3 MAY).
   */
  resetForRetry(now: number, initialRtt?: number): DiscardResult<T> {
    const discarded: SentPacket<T>[] = [];
    let bytesInFlight = 0;
    for (const sp of this.spaces) {
      bytesInFlight += sp.sent.bytesInFlight;
      sp.sent.clear(discarded);
      sp.timeOfLastAckEliciting = 0;
      sp.lossTime = undefined;
    }
    discarded.sort((a, b) => a.sendOrder - b.sendOrder);
    this.ptoCount = 0;
    this.rtt.reset(initialRtt);
    this.pruneAcked();
    this.setTimer(now);
    return { discarded, bytesInFlight };
  }

  // ---- Queries -----------------------------------------------------------------------------

  /** Bytes in flight over all spaces. */
  get bytesInFlight(): number {
    const s = this.spaces;
    return s[0].sent.bytesInFlight + s[1].sent.bytesInFlight + s[2].sent.bytesInFlight;
  }

  /** Outstanding packets of a space (read-only use: to pick data to resend in a probe). */
  sentPackets(space: PacketNumberSpace): SentPackets<T> {
    return this.spaces[space].sent;
  }

  /** Whether ack-eliciting packets of the space are outstanding (§6.2.4: probe those spaces too). */
  hasAckElicitingInFlight(space: PacketNumberSpace): boolean {
    return this.spaces[space].sent.ackElicitingCount > 0;
  }

  /** Largest acknowledged packet number of the space, −1 if none. */
  largestAcked(space: PacketNumberSpace): number {
    return this.spaces[space].largestAcked;
  }

  /** Whether the space's keys were discarded. */
  isDiscarded(space: PacketNumberSpace): boolean {
    return this.spaces[space].discarded;
  }

  // ---- Internals ---------------------------------------------------------------------------

  /** DetectAndRemoveLostPackets (Appendix A.10), appending to `lost` in ascending order. */
  private detectAndRemoveLost(sp: SpaceState<T>, now: number, lost: SentPacket<T>[]): void {
    sp.lossTime = undefined;
    const rtt = this.rtt;
    // §6.1.2: max(kTimeThreshold · max(smoothed_rtt, latest_rtt), kGranularity); MUST be at least
    // kGranularity.
    const lossDelay = Math.max(
      this.timeThreshold * Math.max(rtt.latestRtt, rtt.smoothedRtt),
      rtt.granularity,
    );
    const largestAcked = sp.largestAcked;
    const sent = sp.sent;
    // Packets above the threshold distance are all removed, so the walk visits the packets lost
    // now, at most packetThreshold − 1 survivors, and the holes among them.
    for (let i = sent.start; i < sent.end; i++) {
      if (sent.packetNumberAt(i) > largestAcked) break;
      const p = sent.at(i);
      if (p === undefined) continue;
      // Compared as timeSent + lossDelay ≤ now: the same expression as the timer below, so a timer
      // firing at exactly that time always declares the packet lost (no float rounding gap).
      if (p.timeSent + lossDelay <= now || largestAcked >= p.packetNumber + this.packetThreshold) {
        sent.removeAt(i);
        lost.push(p);
      } else {
        const t = p.timeSent + lossDelay;
        if (sp.lossTime === undefined || t < sp.lossTime) sp.lossTime = t;
      }
    }
  }

  /**
   * §7.6.2: two ack-eliciting packets declared lost, both sent after the first RTT sample, with no
   * packet sent between them acknowledged (in any space), sent more than the persistent congestion
   * duration apart. `lost` is ascending in send order. Resets min_rtt when established (§5.2).
   */
  private inPersistentCongestion(lost: readonly SentPacket<T>[]): boolean {
    const rtt = this.rtt;
    const firstSample = rtt.firstSampleTime;
    // §7.6.2: the period SHOULD NOT start until there is at least one RTT sample.
    if (firstSample === undefined) return false;
    const duration = rtt.persistentCongestionDuration(this.maxAckDelay, this.pcThreshold);
    let start: SentPacket<T> | undefined;
    let prev: SentPacket<T> | undefined;
    for (let i = 0; i < lost.length; i++) {
      const p = lost[i];
      // §7.6.2: both packets MUST be ack-eliciting; only packets sent after the first sample.
      if (!p.ackEliciting || !(p.timeSent > firstSample)) continue;
      if (start === undefined || prev === undefined || this.ackedBetween(prev.sendOrder, p.sendOrder)) {
        start = p;
      } else if (p.timeSent - start.timeSent > duration) {
        rtt.onPersistentCongestion();
        return true;
      }
      prev = p;
    }
    return false;
  }

  private recordAcked(order: number): void {
    const a = this.ackedOrders;
    if (a.length === this.ackedHead || order > a[a.length - 1]) {
      a.push(order);
      return;
    }
    // Out of order (another space acknowledged later-sent packets first): sorted insert.
    let lo = this.ackedHead;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] < order) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, order);
  }

  /** Whether a packet sent strictly between send orders `a` < `b` was acknowledged. */
  private ackedBetween(a: number, b: number): boolean {
    const acked = this.ackedOrders;
    let lo = this.ackedHead;
    let hi = acked.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (acked[mid] <= a) lo = mid + 1;
      else hi = mid;
    }
    return lo < acked.length && acked[lo] < b;
  }

  /**
   * Forgets acknowledged send orders older than every outstanding packet: a future persistent
   * congestion period starts and ends at packets outstanding now, so they can never fall inside.
   */
  private pruneAcked(): void {
    let min = Number.POSITIVE_INFINITY;
    for (const sp of this.spaces) {
      const p = sp.sent.oldest();
      if (p !== undefined && p.sendOrder < min) min = p.sendOrder;
    }
    const a = this.ackedOrders;
    let h = this.ackedHead;
    while (h < a.length && a[h] < min) h++;
    if (h === a.length) {
      a.length = 0;
      h = 0;
    } else if (h > 64 && h * 2 > a.length) {
      a.copyWithin(0, h);
      a.length -= h;
      h = 0;
    }
    this.ackedHead = h;
  }

  /** GetLossTimeAndSpace (Appendix A.8), skipping spaces without a loss time. */
  private earliestLossSpace(): PacketNumberSpace | undefined {
    let time = Number.POSITIVE_INFINITY;
    let space: PacketNumberSpace | undefined;
    for (let s = 0; s < 3; s++) {
      const t = this.spaces[s].lossTime;
      if (t !== undefined && t < time) {
        time = t;
        space = s as PacketNumberSpace;
      }
    }
    return space;
  }

  /**
   * GetPtoTimeAndSpace (Appendix A.8): returns the PTO deadline (Infinity if none) and leaves the
   * space in `ptoSpace` and whether it is the client's anti-deadlock PTO in `ptoAntiDeadlock`.
   */
  private ptoTime(now: number): number {
    const backoff = 2 ** this.ptoCount;
    // §6.2.1: max_ack_delay is 0 for Initial and Handshake.
    let duration = this.rtt.pto(0, false) * backoff;
    let timeout = Number.POSITIVE_INFINITY;
    let space: PacketNumberSpace = PacketNumberSpace.Initial;
    for (let s = 0; s < 3; s++) {
      const sp = this.spaces[s];
      if (sp.sent.ackElicitingCount === 0) continue;
      if (s === PacketNumberSpace.ApplicationData) {
        // §6.2.1: MUST NOT set the PTO timer for Application Data until handshake confirmation.
        if (!this.confirmed) break;
        duration += this.maxAckDelay * backoff;
      }
      const t = sp.timeOfLastAckEliciting + duration;
      if (t < timeout) {
        timeout = t;
        space = s as PacketNumberSpace;
      }
    }
    if (timeout === Number.POSITIVE_INFINITY && !this.peerCompletedAddressValidation) {
      // §6.2.2.1: the client MUST set the PTO timer until it knows the server validated its
      // address, even with nothing in flight; the anti-deadlock PTO starts from now.
      this.ptoSpace = this.handshakeKeys ? PacketNumberSpace.Handshake : PacketNumberSpace.Initial;
      this.ptoAntiDeadlock = true;
      return now + duration;
    }
    this.ptoSpace = space;
    this.ptoAntiDeadlock = false;
    return timeout;
  }

  /** SetLossDetectionTimer (Appendix A.8). */
  private setTimer(now: number): void {
    const lossSpace = this.earliestLossSpace();
    if (lossSpace !== undefined) {
      // Time threshold loss detection; §6.2.1: the PTO MUST NOT be set along with it.
      this.timer = this.spaces[lossSpace].lossTime;
      return;
    }
    // §6.2.2.1: the server's PTO MUST NOT be armed while it cannot send (amplification limit).
    if (this.isServer && this.ampBlocked) {
      this.timer = undefined;
      return;
    }
    const s = this.spaces;
    const ackEliciting =
      s[0].sent.ackElicitingCount + s[1].sent.ackElicitingCount + s[2].sent.ackElicitingCount;
    if (ackEliciting === 0 && this.peerCompletedAddressValidation) {
      this.timer = undefined;
      return;
    }
    const t = this.ptoTime(now);
    this.timer = t === Number.POSITIVE_INFINITY ? undefined : t;
  }
}

/** RFC 9000 §13.1 / §21.4: an ACK range covering a skipped packet number acknowledges an unsent packet. */
function checkSkipped(
  skipped: readonly number[],
  largest: number,
  ranges: readonly number[],
  type: number,
): void {
  for (const pn of skipped) {
    if (pn > largest) continue;
    if (ranges.length < 2) {
      if (pn === largest) throw protocolViolation(`ACK of skipped packet number ${pn}`, type);
      continue;
    }
    for (let i = 0; i < ranges.length; i += 2) {
      if (pn <= ranges[i] && pn >= ranges[i + 1])
        throw protocolViolation(`ACK of skipped packet number ${pn}`, type);
    }
  }
}
