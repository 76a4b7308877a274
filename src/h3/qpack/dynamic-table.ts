/**
 * The QPACK dynamic table (RFC 9204 §3.2): a FIFO of field lines with absolute indices
 * (§3.2.4), sized as name + value + 32 bytes per entry (§3.2.1), bounded by a capacity
 * (§3.2.2). {@link DynamicTable} is the decoder's view; {@link EncoderDynamicTable} adds what the
 * encoder tracks: lookups, the Known Received Count (§2.1.4), reference counts of unacknowledged
 * field sections, evictability (§2.1.1) and the draining index (§2.1.1.1).
 *
 * Index conversions (§3.2.5, §3.2.6), for Insert Count `n` and a field section's Base `b`:
 * encoder-stream relative `r` → absolute `n − 1 − r`; field-line relative `r` → `b − 1 − r`;
 * post-Base `p` → `b + p`.
 */
import { QuicUsageError } from "../../quic/errors.ts";

/** Per-entry overhead in the size of a dynamic table entry (RFC 9204 §3.2.1). */
export const ENTRY_OVERHEAD = 32;

/** Size of an entry (RFC 9204 §3.2.1): name and value lengths in bytes, plus 32. */
export function entrySize(name: string, value: string): number {
  return name.length + value.length + ENTRY_OVERHEAD;
}

/**
 * Storage of the dynamic table: a ring of entries covering absolute indices
 * [{@link dropped}, {@link insertCount}). Growth is amortised; lookups are O(1).
 */
export class DynamicTable {
  /** Current capacity in bytes (set by Set Dynamic Table Capacity, §4.3.1). */
  capacity = 0;
  /** Sum of the entries' sizes (§3.2.1). */
  size = 0;
  /** Total number of insertions (the Insert Count): the absolute index of the next entry. */
  insertCount = 0;
  /** Absolute index of the oldest live entry (equals the number of evicted entries). */
  dropped = 0;

  protected names: string[] = new Array<string>(16);
  protected values: string[] = new Array<string>(16);
  protected mask = 15;

  /** Number of live entries. */
  get length(): number {
    return this.insertCount - this.dropped;
  }

  /** True when `abs` is the absolute index of a live (inserted, not evicted) entry. */
  has(abs: number): boolean {
    return abs >= this.dropped && abs < this.insertCount;
  }

  /** Name of the live entry `abs` (see {@link has}). */
  name(abs: number): string {
    return this.names[abs & this.mask];
  }

  /** Value of the live entry `abs` (see {@link has}). */
  value(abs: number): string {
    return this.values[abs & this.mask];
  }

  /** Size of the live entry `abs` (§3.2.1). */
  entrySize(abs: number): number {
    const i = abs & this.mask;
    return this.names[i].length + this.values[i].length + ENTRY_OVERHEAD;
  }

  /** Absolute index of an encoder-stream relative index (§3.2.5): `insertCount − 1 − rel`. */
  absFromEncoderRelative(rel: number): number {
    return this.insertCount - 1 - rel;
  }

  /**
   * Sets the capacity, evicting from the oldest end until the size fits (§3.2.2). Limits and
   * evictability are the caller's concern.
   */
  setCapacity(capacity: number): void {
    this.capacity = capacity;
    this.evictTo(capacity);
  }

  /**
   * Inserts an entry, first evicting from the oldest end until it fits (§3.2.2). The caller has
   * checked that `entrySize(name, value) ≤ capacity`. Returns its absolute index.
   */
  insert(name: string, value: string): number {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (size > this.capacity) throw new QuicUsageError("dynamic table entry larger than the capacity");
    this.evictTo(this.capacity - size);
    if (this.insertCount - this.dropped > this.mask) this.grow();
    const abs = this.insertCount++;
    const i = abs & this.mask;
    this.names[i] = name;
    this.values[i] = value;
    this.size += size;
    this.onInsert(abs);
    return abs;
  }

  /** Evicts the oldest entries until `size ≤ target`. */
  protected evictTo(target: number): void {
    while (this.size > target && this.dropped < this.insertCount) {
      const abs = this.dropped;
      this.size -= this.entrySize(abs);
      this.onEvict(abs);
      const i = abs & this.mask;
      this.names[i] = "";
      this.values[i] = "";
      this.dropped = abs + 1;
    }
  }

  /** Hook: entry `abs` was just inserted. */
  protected onInsert(_abs: number): void {}

  /** Hook: entry `abs` is about to be evicted. */
  protected onEvict(_abs: number): void {}

  /** Doubles the ring; subclasses with ring-aligned arrays re-lay them out too. */
  protected grow(): void {
    const oldMask = this.mask;
    const newMask = oldMask * 2 + 1;
    const names = new Array<string>(newMask + 1);
    const values = new Array<string>(newMask + 1);
    for (let abs = this.dropped; abs < this.insertCount; abs++) {
      names[abs & newMask] = this.names[abs & oldMask];
      values[abs & newMask] = this.values[abs & oldMask];
    }
    this.names = names;
    this.values = values;
    this.regrow(oldMask, newMask);
    this.mask = newMask;
  }

  /** Hook for {@link grow}: re-lay out subclass arrays from `oldMask` to `newMask` slots. */
  protected regrow(_oldMask: number, _newMask: number): void {}
}

/**
 * The encoder's dynamic table: adds exact and name lookups (latest entry wins), the Known
 * Received Count, per-entry counts of references from unacknowledged field sections, and the
 * evictability rules of RFC 9204 §2.1.1.
 */
export class EncoderDynamicTable extends DynamicTable {
  /**
   * Known Received Count (§2.1.4): insertions the decoder has acknowledged. Entries with
   * absolute index below it can be referenced without risk of blocking.
   */
  knownReceivedCount = 0;

  private refs: number[] = new Array<number>(16).fill(0);
  private readonly exact = new Map<string, Map<string, number>>();
  private readonly byName = new Map<string, number>();

  /** Absolute index of the newest live entry with this name and value, or −1. */
  findExact(name: string, value: string): number {
    const values = this.exact.get(name);
    if (values === undefined) return -1;
    return values.get(value) ?? -1;
  }

  /** Absolute index of the newest live entry with this name, or −1. */
  findName(name: string): number {
    return this.byName.get(name) ?? -1;
  }

  /** Number of unacknowledged field sections referencing entry `abs`. */
  refCount(abs: number): number {
    return this.refs[abs & this.mask];
  }

  addRef(abs: number): void {
    this.refs[abs & this.mask]++;
  }

  releaseRef(abs: number): void {
    const i = abs & this.mask;
    if (this.refs[i] <= 0) throw new QuicUsageError(`dynamic table entry ${abs} has no reference`);
    this.refs[i]--;
  }

  /**
   * §2.1.1: an entry is evictable once its insertion is acknowledged (absolute index below the
   * Known Received Count) and no unacknowledged field section references it.
   */
  isEvictable(abs: number): boolean {
    return abs < this.knownReceivedCount && this.refs[abs & this.mask] === 0;
  }

  /**
   * True if the table can reach `size ≤ target` by evicting only evictable entries (§2.1.1: the
   * encoder MUST NOT cause a non-evictable entry to be evicted).
   */
  canEvictTo(target: number): boolean {
    if (target < 0) return false;
    let size = this.size;
    for (let abs = this.dropped; size > target; abs++) {
      if (abs >= this.insertCount || !this.isEvictable(abs)) return false;
      size -= this.entrySize(abs);
    }
    return true;
  }

  /** True if an entry of `size` bytes can be inserted now (§2.1.1, §3.2.2). */
  canInsert(size: number): boolean {
    return size <= this.capacity && this.canEvictTo(this.capacity - size);
  }

  /**
   * The draining index (§2.1.1.1): the smallest absolute index the encoder will still reference,
   * so that `headroom` bytes can be inserted later without evicting a referenced entry. Entries
   * below it are "draining": not referenced again (a Duplicate is used instead), so their
   * outstanding references drain and they become evictable.
   */
  drainingIndex(headroom: number): number {
    let abs = this.dropped;
    let sizeFrom = this.size; // size of the entries with index ≥ abs
    while (abs < this.insertCount && sizeFrom + headroom > this.capacity) {
      sizeFrom -= this.entrySize(abs);
      abs++;
    }
    return abs;
  }

  protected override onInsert(abs: number): void {
    const name = this.name(abs);
    const value = this.value(abs);
    this.refs[abs & this.mask] = 0;
    let values = this.exact.get(name);
    if (values === undefined) {
      values = new Map();
      this.exact.set(name, values);
    }
    values.set(value, abs);
    this.byName.set(name, abs);
  }

  protected override onEvict(abs: number): void {
    const name = this.name(abs);
    const value = this.value(abs);
    // The maps hold the newest index; an older duplicate never shadows a newer one (FIFO).
    const values = this.exact.get(name);
    if (values !== undefined && values.get(value) === abs) {
      values.delete(value);
      if (values.size === 0) this.exact.delete(name);
    }
    if (this.byName.get(name) === abs) this.byName.delete(name);
  }

  protected override regrow(oldMask: number, newMask: number): void {
    const refs = new Array<number>(newMask + 1).fill(0);
    for (let abs = this.dropped; abs < this.insertCount; abs++)
      refs[abs & newMask] = this.refs[abs & oldMask];
    this.refs = refs;
  }
}
