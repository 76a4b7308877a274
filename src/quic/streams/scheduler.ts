/**
 * Which stream sends next: RFC 9218 (Extensible Priorities) scheduling over the streams that have
 * data to send.
 *
 * - Urgency 0–7, lower first (§4.1): a stream is picked only when no stream of a lower urgency is
 *   active.
 * - Within an urgency, non-incremental streams go one at a time, in ascending stream ID order,
 *   each until it has nothing more to send (§10: "Non-incremental responses of the same urgency
 *   SHOULD be served by prioritizing bandwidth allocation in ascending order of the stream ID").
 * - Incremental streams of that urgency share the bandwidth round-robin, `quantum` bytes per turn
 *   (§10: "SHOULD be served by sharing bandwidth among them").
 * - Non-incremental before incremental within one urgency (as quiche does). §10 leaves mixing the
 *   two to the implementation; this can starve incremental streams of the same urgency while
 *   non-incremental ones have data.
 *
 * The default priority of a stream is urgency 3 incremental, which makes the scheduler plain fair
 * round-robin when nobody sets priorities. (RFC 9218's default for HTTP is non-incremental: pass
 * `defaultIncremental: false` for that.)
 *
 * Cost: picking is O(1) (a bit mask over the 8 urgencies, then the head of a heap or ring);
 * activating or deactivating a stream is O(1) for incremental and O(log n) for non-incremental
 * streams. No allocation per pick: each stream has one entry object, made when it is added.
 *
 * Usage per packet: `id = next()`; take data from that stream; `onSent(id, bytes)`; when the
 * stream has nothing more to send (or is flow-control blocked), `setActive(id, false)`.
 */
import { QuicUsageError } from "../errors.ts";

export const DEFAULT_URGENCY = 3;
export const URGENCY_LEVELS = 8;
/** Default round-robin quantum, bytes. */
export const DEFAULT_QUANTUM = 16 * 1024;

class Entry {
  active = false;
  /** Position in the level's heap (non-incremental), −1 when not there. */
  heapIndex = -1;
  /** Ring links (incremental). */
  prev: Entry = this;
  next: Entry = this;
  /** Bytes sent in the current round-robin turn. */
  sent = 0;

  constructor(
    readonly id: number,
    public urgency: number,
    public incremental: boolean,
  ) {}
}

class Level {
  /** Active non-incremental entries: a binary min-heap on stream ID. */
  readonly heap: Entry[] = [];
  /** The incremental entry whose turn it is; the ring continues through `next`. */
  ring: Entry | null = null;
}

export interface StreamSchedulerOptions {
  /** Bytes an incremental stream sends per round-robin turn. Default 16 KiB. */
  quantum?: number | undefined;
  /** Urgency of streams added without one. Default 3. */
  defaultUrgency?: number | undefined;
  /** Incremental flag of streams added without one. Default true (fair round-robin). */
  defaultIncremental?: boolean | undefined;
}

export class StreamScheduler {
  private readonly entries = new Map<number, Entry>();
  private readonly levels: Level[] = [];
  /** Bit u set when level u has an active stream. */
  private mask = 0;
  private _activeCount = 0;
  readonly quantum: number;
  private readonly defaultUrgency: number;
  private readonly defaultIncremental: boolean;

  constructor(options: StreamSchedulerOptions = {}) {
    this.quantum = options.quantum ?? DEFAULT_QUANTUM;
    if (!(this.quantum >= 1)) throw new QuicUsageError("quantum must be ≥ 1");
    this.defaultUrgency = checkUrgency(options.defaultUrgency ?? DEFAULT_URGENCY);
    this.defaultIncremental = options.defaultIncremental ?? true;
    for (let u = 0; u < URGENCY_LEVELS; u++) this.levels.push(new Level());
  }

  /** Streams with data to send. */
  get activeCount(): number {
    return this._activeCount;
  }

  /** Registers a stream (inactive). */
  add(streamId: number, urgency: number = this.defaultUrgency, incremental = this.defaultIncremental): void {
    if (this.entries.has(streamId)) throw new QuicUsageError(`stream ${streamId} already scheduled`);
    this.entries.set(streamId, new Entry(streamId, checkUrgency(urgency), incremental));
  }

  /** Forgets a stream. */
  remove(streamId: number): void {
    const e = this.entries.get(streamId);
    if (!e) return;
    if (e.active) this.deactivate(e);
    this.entries.delete(streamId);
  }

  has(streamId: number): boolean {
    return this.entries.has(streamId);
  }

  /** Changes a stream's priority (e.g. PRIORITY_UPDATE); an active stream is re-queued. */
  setPriority(streamId: number, urgency: number, incremental: boolean): void {
    const e = this.entry(streamId);
    checkUrgency(urgency);
    if (e.urgency === urgency && e.incremental === incremental) return;
    const active = e.active;
    if (active) this.deactivate(e);
    e.urgency = urgency;
    e.incremental = incremental;
    if (active) this.activate(e);
  }

  /** The stream's urgency and incremental flag. */
  priorityOf(streamId: number): { urgency: number; incremental: boolean } {
    const e = this.entry(streamId);
    return { urgency: e.urgency, incremental: e.incremental };
  }

  /** Marks a stream as having data to send (true) or not (false). Idempotent. */
  setActive(streamId: number, active: boolean): void {
    const e = this.entry(streamId);
    if (active === e.active) return;
    if (active) this.activate(e);
    else this.deactivate(e);
  }

  isActive(streamId: number): boolean {
    return this.entries.get(streamId)?.active === true;
  }

  /** The stream to send from next, −1 when none is active. */
  next(): number {
    const mask = this.mask;
    if (mask === 0) return -1;
    const level = this.levels[31 - Math.clz32(mask & -mask)];
    const heap = level.heap;
    if (heap.length > 0) return heap[0].id;
    return (level.ring as Entry).id;
  }

  /**
   * `bytes` were sent from `streamId`. An incremental stream whose turn used up the quantum
   * passes the turn to the next stream of its ring.
   */
  onSent(streamId: number, bytes: number): void {
    const e = this.entries.get(streamId);
    if (!e?.active || !e.incremental) return;
    e.sent += bytes;
    if (e.sent < this.quantum) return;
    e.sent = 0;
    const level = this.levels[e.urgency];
    if (level.ring === e) level.ring = e.next;
  }

  private entry(streamId: number): Entry {
    const e = this.entries.get(streamId);
    if (!e) throw new QuicUsageError(`stream ${streamId} not scheduled`);
    return e;
  }

  private activate(e: Entry): void {
    e.active = true;
    this._activeCount++;
    const level = this.levels[e.urgency];
    if (e.incremental) {
      const cur = level.ring;
      if (cur === null) {
        e.prev = e;
        e.next = e;
        level.ring = e;
      } else {
        // Join at the end of the round: just before the stream whose turn it is.
        const last = cur.prev;
        e.prev = last;
        e.next = cur;
        last.next = e;
        cur.prev = e;
      }
      e.sent = 0;
    } else {
      heapPush(level.heap, e);
    }
    this.mask |= 1 << e.urgency;
  }

  private deactivate(e: Entry): void {
    e.active = false;
    this._activeCount--;
    const level = this.levels[e.urgency];
    if (e.incremental) {
      if (e.next === e) {
        level.ring = null;
      } else {
        e.prev.next = e.next;
        e.next.prev = e.prev;
        if (level.ring === e) level.ring = e.next;
      }
      e.prev = e;
      e.next = e;
      e.sent = 0;
    } else {
      heapRemove(level.heap, e);
    }
    if (level.ring === null && level.heap.length === 0) this.mask &= ~(1 << e.urgency);
  }
}

function checkUrgency(u: number): number {
  if (!Number.isInteger(u) || u < 0 || u >= URGENCY_LEVELS)
    throw new QuicUsageError(`urgency ${u} not in 0..7`);
  return u;
}

// Binary min-heap on stream ID, entries track their index for O(log n) removal.

function heapPush(heap: Entry[], e: Entry): void {
  e.heapIndex = heap.length;
  heap.push(e);
  siftUp(heap, e.heapIndex);
}

function heapRemove(heap: Entry[], e: Entry): void {
  const i = e.heapIndex;
  const last = heap.pop() as Entry;
  e.heapIndex = -1;
  if (last === e) return;
  heap[i] = last;
  last.heapIndex = i;
  siftDown(heap, i);
  siftUp(heap, last.heapIndex);
}

function siftUp(heap: Entry[], i: number): void {
  const e = heap[i];
  while (i > 0) {
    const p = (i - 1) >> 1;
    const parent = heap[p];
    if (parent.id <= e.id) break;
    heap[i] = parent;
    parent.heapIndex = i;
    i = p;
  }
  heap[i] = e;
  e.heapIndex = i;
}

function siftDown(heap: Entry[], i: number): void {
  const n = heap.length;
  const e = heap[i];
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && heap[r].id < heap[l].id ? r : l;
    const child = heap[c];
    if (child.id >= e.id) break;
    heap[i] = child;
    child.heapIndex = i;
    i = c;
  }
  heap[i] = e;
  e.heapIndex = i;
}
