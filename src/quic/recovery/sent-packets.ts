/**
 * The packets outstanding in one packet number space (RFC 9002 Appendix A.1), kept in
 * packet-number order.
 *
 * Packet numbers only increase (RFC 9000 §12.3), so sending appends. Storage is two parallel
 * arrays (packets and their numbers) read from a moving `head` index: removing a packet leaves a
 * hole (so indices stay stable while a caller walks them), removing the oldest advances `head`
 * past the holes, and `push` compacts once the holes outnumber the live packets (amortized O(1)).
 * Finding a packet number is a binary search, so acknowledging a range costs
 * O(log n + slots in the range) and never scans the whole space.
 */
import { QuicUsageError } from "../errors.ts";
import type { SentPacket } from "./sent-packet.ts";

const COMPACT_MIN_HOLES = 32;

export class SentPackets<T> {
  private slots: (SentPacket<T> | undefined)[] = [];
  private pns: number[] = [];
  private head = 0;
  private live = 0;
  private inFlightBytes = 0;
  private ackElicitingLive = 0;
  private largest = -1;

  /** Number of outstanding packets. */
  get count(): number {
    return this.live;
  }

  /** Sum of `size` over outstanding packets with `inFlight` set. */
  get bytesInFlight(): number {
    return this.inFlightBytes;
  }

  /** Number of outstanding ack-eliciting packets. */
  get ackElicitingCount(): number {
    return this.ackElicitingLive;
  }

  /** Largest packet number ever added, −1 if none (it survives removal and {@link clear}). */
  get largestSent(): number {
    return this.largest;
  }

  /**
   * Appends a packet. Its number must exceed every number added before (RFC 9000 §12.3: a packet
   * number is never reused within a space), else {@link QuicUsageError}.
   */
  push(packet: SentPacket<T>): void {
    const pn = packet.packetNumber;
    if (!(pn > this.largest) || !Number.isSafeInteger(pn))
      throw new QuicUsageError(`packet number ${pn} not above the largest sent ${this.largest}`);
    const holes = this.slots.length - this.live;
    if (holes >= COMPACT_MIN_HOLES && holes > this.live) this.compact();
    this.largest = pn;
    this.slots.push(packet);
    this.pns.push(pn);
    this.live++;
    if (packet.inFlight) this.inFlightBytes += packet.size;
    if (packet.ackEliciting) this.ackElicitingLive++;
  }

  /** The outstanding packet with number `pn`, if any. */
  get(pn: number): SentPacket<T> | undefined {
    const i = this.lowerBound(pn);
    return i < this.pns.length && this.pns[i] === pn ? this.slots[i] : undefined;
  }

  /** The outstanding packet with the smallest number. */
  oldest(): SentPacket<T> | undefined {
    return this.head < this.slots.length ? this.slots[this.head] : undefined;
  }

  /** First slot index to walk with {@link at} (slots may be holes). */
  get start(): number {
    return this.head;
  }

  /** One past the last slot index. Indices are stable until the next {@link push}. */
  get end(): number {
    return this.slots.length;
  }

  /** The packet in slot `i`, undefined for a hole. */
  at(i: number): SentPacket<T> | undefined {
    return this.slots[i];
  }

  /** Packet number of slot `i` (also defined for holes). */
  packetNumberAt(i: number): number {
    return this.pns[i];
  }

  /** Smallest slot index in [start, end] whose packet number is ≥ `pn` (binary search). */
  lowerBound(pn: number): number {
    const pns = this.pns;
    let lo = this.head;
    let hi = pns.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pns[mid] < pn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Removes the packet in slot `i` and returns it (undefined for a hole). */
  removeAt(i: number): SentPacket<T> | undefined {
    const p = this.slots[i];
    if (p === undefined) return undefined;
    this.slots[i] = undefined;
    this.live--;
    if (p.inFlight) this.inFlightBytes -= p.size;
    if (p.ackEliciting) this.ackElicitingLive--;
    if (i === this.head) {
      const slots = this.slots;
      let h = i + 1;
      while (h < slots.length && slots[h] === undefined) h++;
      this.head = h;
    }
    return p;
  }

  /**
   * Removes every outstanding packet numbered in [low, high] and appends them to `out` in
   * ascending order. Returns how many were removed.
   */
  removeRange(low: number, high: number, out: SentPacket<T>[]): number {
    let n = 0;
    const pns = this.pns;
    for (let i = this.lowerBound(low); i < pns.length && pns[i] <= high; i++) {
      const p = this.removeAt(i);
      if (p !== undefined) {
        out.push(p);
        n++;
      }
    }
    return n;
  }

  /** Removes every outstanding packet, appending them to `out` (if given) in ascending order. */
  clear(out?: SentPacket<T>[]): void {
    if (out !== undefined) {
      const slots = this.slots;
      for (let i = this.head; i < slots.length; i++) {
        const p = slots[i];
        if (p !== undefined) out.push(p);
      }
    }
    this.slots = [];
    this.pns = [];
    this.head = 0;
    this.live = 0;
    this.inFlightBytes = 0;
    this.ackElicitingLive = 0;
  }

  /** Drops the holes (slot indices change). Called by {@link push} when holes dominate. */
  compact(): void {
    const slots = this.slots;
    const pns = this.pns;
    let w = 0;
    for (let r = this.head; r < slots.length; r++) {
      const p = slots[r];
      if (p !== undefined) {
        slots[w] = p;
        pns[w] = pns[r];
        w++;
      }
    }
    slots.length = w;
    pns.length = w;
    this.head = 0;
  }
}
