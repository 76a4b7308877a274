/**
 * A set of byte offsets as sorted, disjoint, non-adjacent half-open ranges `[start, end)`, kept in
 * one flat ascending `number[]`: `[start0, end0, start1, end1, …]`. Used by the send buffer for
 * acknowledged and lost byte ranges. Appending after the last range and trimming the first one
 * are O(1); other updates are a binary search plus an in-array move.
 */
export class RangeSet {
  private r: number[] = [];

  get isEmpty(): boolean {
    return this.r.length === 0;
  }

  /** Number of disjoint ranges. */
  get count(): number {
    return this.r.length >> 1;
  }

  start(i: number): number {
    return this.r[2 * i];
  }

  end(i: number): number {
    return this.r[2 * i + 1];
  }

  /** Total number of offsets in the set. */
  size(): number {
    const r = this.r;
    let n = 0;
    for (let i = 0; i < r.length; i += 2) n += r[i + 1] - r[i];
    return n;
  }

  clear(): void {
    this.r.length = 0;
  }

  /** Whether every offset of `[start, end)` is in the set (true for an empty range). */
  covers(start: number, end: number): boolean {
    if (start >= end) return true;
    const i = this.firstEndingAfter(start);
    return i < this.r.length && this.r[i] <= start && end <= this.r[i + 1];
  }

  /** Adds `[start, end)`; returns how many offsets were not in the set before. */
  add(start: number, end: number): number {
    if (start >= end) return 0;
    const r = this.r;
    const n = r.length;
    if (n === 0 || start > r[n - 1]) {
      r.push(start, end);
      return end - start;
    }
    // i: first range with end ≥ start (touching or overlapping); j: first range with start > end.
    let i = this.firstEndingAtOrAfter(start);
    if (i === n) {
      r.push(start, end);
      return end - start;
    }
    let j = i;
    let covered = 0;
    while (j < n && r[j] <= end) {
      // Each such range touches or overlaps [start, end): its overlap is ≥ 0.
      covered += Math.min(end, r[j + 1]) - Math.max(start, r[j]);
      j += 2;
    }
    if (j === i) {
      r.splice(i, 0, start, end);
      return end - start;
    }
    const s = Math.min(start, r[i]);
    const e = Math.max(end, r[j - 1]);
    r[i] = s;
    r[i + 1] = e;
    i += 2;
    if (j > i) r.splice(i, j - i);
    return end - start - covered;
  }

  /** Removes `[start, end)`; returns how many offsets were removed. */
  remove(start: number, end: number): number {
    if (start >= end) return 0;
    const r = this.r;
    let i = this.firstEndingAfter(start);
    let removed = 0;
    while (i < r.length && r[i] < end) {
      const s = r[i];
      const e = r[i + 1];
      removed += Math.min(e, end) - Math.max(s, start);
      if (s < start && e > end) {
        // Split.
        r.splice(i + 1, 0, start, end);
        return removed;
      }
      if (s < start) {
        r[i + 1] = start;
        i += 2;
      } else if (e > end) {
        r[i] = end;
        return removed;
      } else {
        r.splice(i, 2);
      }
    }
    return removed;
  }

  /**
   * Adds the offsets of `[start, end)` that are not in `exclude`. Returns how many were added.
   */
  addExcept(start: number, end: number, exclude: RangeSet): number {
    let added = 0;
    const x = exclude.r;
    let k = exclude.firstEndingAfter(start);
    let s = start;
    while (s < end) {
      if (k >= x.length || x[k] >= end) {
        added += this.add(s, end);
        break;
      }
      if (x[k] > s) added += this.add(s, x[k]);
      s = Math.max(s, x[k + 1]);
      k += 2;
    }
    return added;
  }

  /** Flat copy `[start, end, …]` (tests, debugging). */
  toArray(): number[] {
    return this.r.slice();
  }

  /** Absolute index of the first range whose end is > `offset`. */
  private firstEndingAfter(offset: number): number {
    const r = this.r;
    let lo = 0;
    let hi = r.length >> 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (r[2 * mid + 1] > offset) hi = mid;
      else lo = mid + 1;
    }
    return 2 * lo;
  }

  /** Absolute index of the first range whose end is ≥ `offset`. */
  private firstEndingAtOrAfter(offset: number): number {
    return this.firstEndingAfter(offset - 1);
  }
}
