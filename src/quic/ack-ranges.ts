/**
 * A set of packet numbers kept as sorted, disjoint, non-adjacent inclusive ranges: the state an
 * endpoint keeps to build ACK frames (RFC 9000 §13.2.3) and to detect duplicate packets.
 *
 * Representation: one flat `number[]` of `[low, high]` pairs in ascending order, live from index
 * `head` to the end. Appending in order (the common case: the next packet number extends the last
 * range or opens a new one after a gap) is O(1); dropping the oldest range is O(1) amortized
 * (advance `head`, compact now and then); a reordered packet costs an O(log n) binary search plus
 * an in-array move bounded by the range cap.
 *
 * Forgetting: the set has a {@link AckRanges.floor}. Every number below it has been forgotten
 * (removed by {@link AckRanges.removeBelow} after an ACK of an ACK, §13.2.4, or by the cap on the
 * number of ranges), and {@link AckRanges.insert} refuses such numbers. RFC 9000 §13.2.3: "A
 * receiver MUST retain an ACK Range unless it can ensure that it will not subsequently accept
 * packets with numbers in that range. Maintaining a minimum packet number that increases as
 * ranges are discarded is one way to achieve this": the floor is that minimum, so a caller that
 * treats numbers below it as duplicates satisfies the MUST.
 */
/** Default cap on the number of ranges remembered. */
export const DEFAULT_MAX_TRACKED_RANGES = 256;

/** Compact the backing array once this many dead slots precede `head` (and they are half of it). */
const COMPACT_MIN = 64;

export class AckRanges {
  /** `[low0, high0, low1, high1, …]` ascending, live from `head`. */
  private r: number[] = [];
  private head = 0;
  private _floor = 0;

  /** @param maxRanges ranges kept at most; beyond, the oldest (lowest) ranges are dropped. ≥ 1. */
  constructor(readonly maxRanges: number = DEFAULT_MAX_TRACKED_RANGES) {
    if (!(maxRanges >= 1)) throw new RangeError("AckRanges: maxRanges must be ≥ 1");
  }

  /** Numbers below this have been forgotten: never reported as contained, refused by insert. */
  get floor(): number {
    return this._floor;
  }

  /** Number of disjoint ranges. */
  get rangeCount(): number {
    return (this.r.length - this.head) >> 1;
  }

  get isEmpty(): boolean {
    return this.r.length === this.head;
  }

  /** Largest number in the set, −1 if empty. */
  get largest(): number {
    const r = this.r;
    return r.length === this.head ? -1 : r[r.length - 1];
  }

  /** Smallest number in the set, −1 if empty. */
  get smallest(): number {
    return this.r.length === this.head ? -1 : this.r[this.head];
  }

  /** Low end of the `i`-th range in ascending order (0 = oldest). */
  rangeLow(i: number): number {
    return this.r[this.head + 2 * i];
  }

  /** High end (inclusive) of the `i`-th range in ascending order (0 = oldest). */
  rangeHigh(i: number): number {
    return this.r[this.head + 2 * i + 1];
  }

  /**
   * Adds `pn`. Returns false, changing nothing, when `pn` is already present or below
   * {@link floor}. When the insertion makes more than `maxRanges` ranges, the oldest range is
   * dropped and the floor moves above it (possibly dropping `pn` itself, which then still counts
   * as inserted: it was new).
   */
  insert(pn: number): boolean {
    if (pn < this._floor) return false;
    const r = this.r;
    const n = r.length;
    // Fast paths: empty, or at/after the last range (in-order arrival).
    if (n === this.head) {
      r.push(pn, pn);
      return true;
    }
    const lastHigh = r[n - 1];
    if (pn > lastHigh) {
      if (pn === lastHigh + 1) {
        r[n - 1] = pn;
        return true;
      }
      r.push(pn, pn);
      this.enforceCap();
      return true;
    }
    const j = this.search(pn);
    const hasPrev = j > this.head;
    if (hasPrev && pn <= r[j - 1]) return false; // inside the previous range
    const joinsPrev = hasPrev && r[j - 1] + 1 === pn;
    const joinsNext = j < n && r[j] - 1 === pn;
    if (joinsPrev && joinsNext) {
      r[j - 1] = r[j + 1];
      r.splice(j, 2);
    } else if (joinsPrev) {
      r[j - 1] = pn;
    } else if (joinsNext) {
      r[j] = pn;
    } else {
      r.splice(j, 0, pn, pn);
      this.enforceCap();
    }
    return true;
  }

  /** Whether `pn` is in the set (false below {@link floor}). */
  contains(pn: number): boolean {
    const r = this.r;
    const n = r.length;
    if (n === this.head || pn < r[this.head] || pn > r[n - 1]) return false;
    // The range before index i is the last one with low ≤ pn.
    return pn <= r[this.search(pn) - 1];
  }

  /** Low end of the range containing `pn`, −1 when `pn` is not in the set. O(log n). */
  rangeLowContaining(pn: number): number {
    const r = this.r;
    const n = r.length;
    if (n === this.head || pn < r[this.head] || pn > r[n - 1]) return -1;
    // In-order arrivals ask about the newest range: check it first.
    if (pn >= r[n - 2]) return r[n - 2];
    const i = this.search(pn);
    return pn <= r[i - 1] ? r[i - 2] : -1;
  }

  /**
   * Forgets every number below `pn` and raises {@link floor} to `pn` (never lowers it). Used on
   * an ACK of an ACK (RFC 9000 §13.2.4) with `pn` = that ACK's Largest Acknowledged + 1.
   */
  removeBelow(pn: number): void {
    if (pn <= this._floor) return;
    this._floor = pn;
    const r = this.r;
    const n = r.length;
    let h = this.head;
    // Ranges are few after pruning; walk from the oldest.
    while (h < n && r[h + 1] < pn) h += 2;
    if (h < n && r[h] < pn) r[h] = pn;
    this.head = h;
    this.maybeCompact();
  }

  /** Removes everything; the floor stays. */
  clear(): void {
    this.r.length = 0;
    this.head = 0;
  }

  /**
   * The newest `maxRanges` ranges in the flat descending representation of `AckFrame.ranges`
   * (frames.ts): `[high, low, high, low, …]`. Empty when the set is empty. Writes into `out` when
   * given (its length is reset), so a caller can reuse one array.
   */
  toAckFrameRanges(maxRanges: number = this.maxRanges, out: number[] = []): number[] {
    out.length = 0;
    const r = this.r;
    const stop = Math.max(this.head, r.length - 2 * maxRanges);
    for (let i = r.length - 2; i >= stop; i -= 2) out.push(r[i + 1], r[i]);
    return out;
  }

  /** Absolute (even) index of the first live range whose low is > `pn`; `r.length` if none. */
  private search(pn: number): number {
    const r = this.r;
    let lo = this.head >> 1;
    let hi = r.length >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r[2 * mid] > pn) hi = mid;
      else lo = mid + 1;
    }
    return 2 * lo;
  }

  private enforceCap(): void {
    if ((this.r.length - this.head) >> 1 <= this.maxRanges) return;
    // Drop the oldest range; everything up to its high end is forgotten (see the module comment).
    this._floor = this.r[this.head + 1] + 1;
    this.head += 2;
    this.maybeCompact();
  }

  private maybeCompact(): void {
    const h = this.head;
    const r = this.r;
    if (h === r.length) {
      r.length = 0;
      this.head = 0;
    } else if (h >= COMPACT_MIN && h * 2 >= r.length) {
      r.copyWithin(0, h);
      r.length -= h;
      this.head = 0;
    }
  }
}
