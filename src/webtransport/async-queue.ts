/**
 * A queue of items handed to one consumer at a time: `shift()` waits for the next item and
 * resolves with null once the queue is closed and empty. With a `limit`, pushing onto a full queue
 * drops the oldest item (what unreliable datagrams want) and reports it to `onDrop`.
 */
export class AsyncQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((v: T | null) => void)[] = [];
  private closedFlag = false;

  constructor(
    private readonly limit = Number.POSITIVE_INFINITY,
    private readonly onDrop?: (item: T) => void,
  ) {}

  get closed(): boolean {
    return this.closedFlag;
  }

  get length(): number {
    return this.items.length;
  }

  /** Adds an item; false (and `onDrop(item)`) once closed. */
  push(item: T): boolean {
    if (this.closedFlag) {
      this.onDrop?.(item);
      return false;
    }
    const w = this.waiters.shift();
    if (w !== undefined) {
      w(item);
      return true;
    }
    this.items.push(item);
    if (this.items.length > this.limit) {
      const old = this.items.shift() as T;
      this.onDrop?.(old);
    }
    return true;
  }

  /** The next item, or null once closed and drained. */
  shift(): Promise<T | null> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift() as T);
    if (this.closedFlag) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Closes the queue; waiting consumers get null. Queued items are dropped when `drop`. */
  close(drop = false): void {
    this.closedFlag = true;
    for (const w of this.waiters.splice(0)) w(null);
    if (drop) for (const item of this.items.splice(0)) this.onDrop?.(item);
  }
}
