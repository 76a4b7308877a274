/**
 * Datagram Packetization Layer PMTU Discovery (DPLPMTUD, RFC 8899; RFC 9000 §14.3) for one path:
 * which UDP payload size the connection uses, when to send a probe of which size, and black-hole
 * detection. Sans-IO: the connection sends the probes (a PING padded to the probe size, RFC 9000
 * §14.3.1), reports their fate and the fate of its other packets, and passes `now`.
 *
 * States (RFC 8899 §5.2): BASE — the PLPMTU is BASE_PLPMTU (1200, RFC 9000 §14); SEARCHING —
 * probes look for a larger size; SEARCH_COMPLETE — the size is settled, a new search starts after
 * PMTU_RAISE_TIMER; ERROR is folded into BASE (a black hole sends the PLPMTU back to the base).
 *
 * Search (RFC 8899 §5.3 leaves the algorithm open): the first probe tries the upper bound — the
 * common case (loopback, Ethernet with a 1452-byte bound) then needs one round trip — and a size
 * whose probe is lost MAX_PROBES times becomes the new (exclusive) upper bound; after that the
 * search halves the interval between the largest acknowledged size and that bound, and stops
 * when the interval is under `minStep` bytes (quinn stops at 20 too).
 *
 * Black holes (RFC 8899 §4.3, §5.2): a lost packet larger than the base counts when it was sent
 * after the last acknowledged packet larger than the base (later large packets getting through
 * means the loss was congestion, not the path MTU). `blackHoleThreshold` such loss events (one per
 * ACK or timeout that declares them) bring the PLPMTU back to the base; the search resumes after
 * PMTU_RAISE_TIMER.
 */
import { QuicUsageError } from "../errors.ts";

/** BASE_PLPMTU for QUIC (RFC 9000 §14, RFC 8899 §5.1.2). */
export const BASE_PLPMTU = 1200;
/** MAX_PROBES (RFC 8899 §5.1.2): lost probes of one size before giving up on it. */
export const MAX_PROBES = 3;
/** PMTU_RAISE_TIMER (RFC 8899 §5.1.1): 600 s between searches for a larger size. */
export const PMTU_RAISE_INTERVAL = 600_000;

export interface PmtuDiscoveryOptions {
  /** Largest UDP payload to probe for (our configured cap, already min'd with the peer's limit). */
  upperBound: number;
  /** Starting PLPMTU; default {@link BASE_PLPMTU}. */
  base?: number;
  /** Stop searching when the remaining interval is smaller than this (bytes); default 20. */
  minStep?: number;
  /** Time between searches once complete, or after a black hole (ms); default 600 s. */
  raiseInterval?: number;
  /** Loss events of large packets that declare a black hole; default 3. */
  blackHoleThreshold?: number;
  /**
   * Told when the PLPMTU changes (a probe acknowledged, a black hole) or a search ends
   * (`done`, possibly without a change): what qlog's mtu_updated records.
   */
  onUpdate?: ((update: PmtuUpdate, now: number) => void) | undefined;
}

/** A change of the PLPMTU or the end of a search: `old` is omitted when the size did not change. */
export interface PmtuUpdate {
  old?: number;
  new: number;
  /** The search is complete (the size is settled until PMTU_RAISE_TIMER). */
  done: boolean;
}

export type PmtuState = "base" | "searching" | "complete";

export class PmtuDiscovery {
  private readonly base: number;
  private readonly upperBound: number;
  private readonly minStep: number;
  private readonly raiseInterval: number;
  private readonly blackHoleThreshold: number;
  private readonly onUpdate: PmtuDiscoveryOptions["onUpdate"];

  private _current: number;
  private _state: PmtuState = "base";
  /** Largest size known to work in this search. */
  private searchLow: number;
  /** Smallest size known (MAX_PROBES lost) not to work, exclusive bound: upperBound + 1 at first. */
  private searchHigh: number;
  /** Size of the probe in flight, 0 when none. */
  private inFlight = 0;
  /** The size being probed and how many of its probes were lost. */
  private probeSize = 0;
  private lostProbes = 0;
  /** When the next search may start (state "complete" or after a black hole). */
  private nextSearchAt = 0;
  /** Send time of the latest acknowledged non-probe packet larger than the base. */
  private lastLargeAckedSent = Number.NEGATIVE_INFINITY;
  private blackHoleEvents = 0;
  /** How many times a black hole sent the PLPMTU back to the base (stats, tests). */
  blackHoles = 0;

  constructor(options: PmtuDiscoveryOptions, now: number) {
    this.base = options.base ?? BASE_PLPMTU;
    if (!(this.base >= BASE_PLPMTU)) throw new QuicUsageError(`PMTU base below ${BASE_PLPMTU}`);
    this.upperBound = Math.max(this.base, Math.floor(options.upperBound));
    this.minStep = options.minStep ?? 20;
    this.raiseInterval = options.raiseInterval ?? PMTU_RAISE_INTERVAL;
    this.blackHoleThreshold = options.blackHoleThreshold ?? 3;
    this.onUpdate = options.onUpdate;
    this._current = this.base;
    this.searchLow = this.base;
    this.searchHigh = this.upperBound + 1;
    this.nextSearchAt = now;
    if (this.upperBound <= this.base) this._state = "complete";
  }

  /** The PLPMTU: the largest UDP payload the connection sends (probes aside). */
  get current(): number {
    return this._current;
  }

  get state(): PmtuState {
    return this._state;
  }

  /** Whether a probe is in flight. */
  get probing(): boolean {
    return this.inFlight > 0;
  }

  /**
   * The size of the probe to send now, or 0 when none is due (one probe at a time; between
   * searches, until the raise timer fires).
   */
  probeDue(now: number): number {
    if (this.inFlight > 0 || this.upperBound <= this.base) return 0;
    if (this._state !== "searching") {
      if (now < this.nextSearchAt) return 0;
      this.startSearch();
      if (this.probeSize === 0) return 0;
    }
    return this.probeSize;
  }

  /** The probe of `size` bytes returned by {@link probeDue} was sent. */
  onProbeSent(size: number): void {
    this.inFlight = size;
  }

  /**
   * The probe of `size` was acknowledged: the path carries it (RFC 8899 §4.2). Returns the new
   * PLPMTU when it grew, else 0.
   */
  onProbeAcked(size: number, now: number): number {
    if (size === this.inFlight) this.inFlight = 0;
    if (size <= this._current) return 0;
    const old = this._current;
    this._current = size;
    this.searchLow = Math.max(this.searchLow, size);
    this.lostProbes = 0;
    this.blackHoleEvents = 0;
    this.nextProbe(now, false);
    this.onUpdate?.({ old, new: size, done: this._state === "complete" }, now);
    return size;
  }

  /** The probe of `size` was declared lost (not a congestion signal, RFC 9000 §14.4). */
  onProbeLost(size: number, now: number): void {
    if (size === this.inFlight) this.inFlight = 0;
    if (this._state !== "searching" || size !== this.probeSize) return;
    // RFC 8899 §5.2: MAX_PROBES lost probes of a size mean the path does not carry it.
    if (++this.lostProbes < MAX_PROBES) return;
    this.searchHigh = size;
    this.lostProbes = 0;
    this.nextProbe(now, true);
  }

  /** A non-probe packet of `size` bytes sent at `timeSent` was acknowledged. */
  onPacketAcked(size: number, timeSent: number): void {
    if (size > this.base && timeSent > this.lastLargeAckedSent) {
      this.lastLargeAckedSent = timeSent;
      this.blackHoleEvents = 0;
    }
  }

  /**
   * Non-probe packets were declared lost in one ACK or timeout; `latestLargeSent` is the send
   * time of the latest of those larger than the base (−Infinity when none was). Returns true when
   * this declares a black hole (RFC 8899 §4.3): the PLPMTU is then back at the base and the caller
   * must shrink its packets.
   */
  onPacketsLost(latestLargeSent: number, now: number): boolean {
    if (!(latestLargeSent > this.lastLargeAckedSent)) return false;
    return this.blackHoleEvent(now);
  }

  /**
   * A probe timeout fired in the application space with no probe of ours in flight: when every
   * packet is larger than the path carries, nothing is acknowledged and no loss is ever declared
   * by an ACK, so PTOs count as loss events too — when a packet larger than the base was sent
   * (at `lastLargeSent`) after the last acknowledged one. Returns true on a black hole (as above).
   */
  onProbeTimeout(lastLargeSent: number, now: number): boolean {
    if (!(lastLargeSent > this.lastLargeAckedSent)) return false;
    return this.blackHoleEvent(now);
  }

  private blackHoleEvent(now: number): boolean {
    if (this._current <= this.base) return false;
    if (++this.blackHoleEvents < this.blackHoleThreshold) return false;
    this.onBlackHole(now);
    return true;
  }

  /** Back to the base size; the search resumes after the raise interval. */
  private onBlackHole(now: number): void {
    this.blackHoles++;
    this.blackHoleEvents = 0;
    this.onUpdate?.({ old: this._current, new: this.base, done: false }, now);
    this._current = this.base;
    this._state = "base";
    this.inFlight = 0;
    this.probeSize = 0;
    this.nextSearchAt = now + this.raiseInterval;
  }

  private startSearch(): void {
    this._state = "searching";
    this.searchLow = this._current;
    this.searchHigh = this.upperBound + 1;
    this.lostProbes = 0;
    // The first probe tries the upper bound.
    this.probeSize = this.upperBound > this._current ? this.upperBound : 0;
    // Already at the upper bound: nothing to search (not reported: nothing changed).
    if (this.probeSize === 0) this.complete(this.nextSearchAt, false);
  }

  /** The next size to probe, or the end of the search; `report`: tell onUpdate about the end. */
  private nextProbe(now: number, report: boolean): void {
    const low = this.searchLow;
    const high = this.searchHigh; // exclusive
    if (high - 1 - low < this.minStep) {
      this.complete(now, report);
      return;
    }
    this.probeSize = low + ((high - low) >> 1);
  }

  private complete(now: number, report: boolean): void {
    this._state = "complete";
    this.probeSize = 0;
    this.nextSearchAt = now + this.raiseInterval;
    if (report) this.onUpdate?.({ new: this._current, done: true }, now);
  }
}
