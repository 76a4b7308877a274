/**
 * Send side of a stream (or of a CRYPTO stream): the bytes the application wrote, what has been
 * sent, acknowledged and declared lost, by byte range.
 *
 * Memory: large writes are kept as the caller's views, without copying — the caller must not
 * modify a buffer after writing it (pass `copy = true` otherwise). Writes smaller than
 * {@link SMALL_WRITE} are copied into shared staging blocks so that many small writes still
 * make full STREAM frames. Storage below the acknowledged prefix is released as ACKs arrive.
 *
 * Sending: {@link SendBuffer.nextChunk} hands out the next range to put in a frame, lost ranges
 * first (lowest offset first), then new data up to the caller's flow-control limit. A range is a
 * view into the stored data when it lies within one stored chunk, a fresh copy when it straddles
 * chunks. The caller reports each sent frame's fate with {@link SendBuffer.onAcked} /
 * {@link SendBuffer.onLost}; a range acked after being declared lost (spurious loss) is not resent.
 *
 * Flow control: only new data counts; retransmissions were already counted (RFC 9000 §4.1).
 * `flowLimit` in the methods below is the absolute stream offset new data may not pass, i.e.
 * min(peer's MAX_STREAM_DATA, sentOffset + connection credit left).
 */
import { QuicUsageError } from "../errors.ts";
import { RangeSet } from "./range-set.ts";

/** Writes below this size are copied into staging blocks (coalescing small writes). */
export const SMALL_WRITE = 1024;
/** Size of a staging block (the largest; see {@link FIRST_STAGING_BLOCK}). */
const STAGING_BLOCK = 16 * 1024;
/**
 * Size of a buffer's first staging block; each next one doubles, up to {@link STAGING_BLOCK}. A
 * stream that writes a few small frames (an HTTP/3 request or response head) then costs 256
 * bytes instead of a zeroed 16 KiB block (measured: the most allocated object per request with
 * 100 small requests in flight); one that keeps writing small pieces soon coalesces them into
 * full-size blocks again.
 */
const FIRST_STAGING_BLOCK = 256;
/** Compact the chunk arrays once this many freed slots precede `head` (and they are half of them). */
const COMPACT_MIN = 32;

const EMPTY = new Uint8Array(0);

/** One frame's worth of stream data. */
export interface SendChunk {
  /** Stream offset of `data`. */
  offset: number;
  /**
   * A view of stored data (or a copy when straddling chunks): encode it into the packet right
   * away. It stays valid until its range is acknowledged, after which the storage may be reused.
   */
  data: Uint8Array;
  /** The FIN bit: `offset + data.length` is the final size. */
  fin: boolean;
  /** The range was sent before (lost ranges): not counted against flow control again. */
  retransmit: boolean;
}

export class SendBuffer {
  /** Stored data, contiguous, `chunks[i]` at stream offset `offsets[i]`; live from `head`. */
  private chunks: Uint8Array[] = [];
  private offsets: number[] = [];
  private head = 0;

  private staging: Uint8Array = EMPTY;
  private stagingUsed = 0;
  /** Whether the last chunk is a view of `staging` ending at `stagingUsed` (so it can grow). */
  private lastIsStaging = false;

  private _writeOffset = 0;
  private _sentOffset = 0;
  private _ackedOffset = 0;
  /** Acknowledged ranges above `_ackedOffset`. */
  private readonly acked = new RangeSet();
  /** Ranges declared lost and not acknowledged since, to retransmit. */
  private readonly lost = new RangeSet();

  private finWritten = false;
  private finSent = false;
  private finAcked = false;
  private finLost = false;
  private _reset = false;
  /** RESET_STREAM_AT: only bytes below this are still sent (Infinity when not reset that way). */
  private _reliableSize = Number.POSITIVE_INFINITY;

  /** Total bytes written (the final size once finished). */
  get writeOffset(): number {
    return this._writeOffset;
  }

  /** End of the data sent at least once: the stream's flow-control usage and RESET final size. */
  get sentOffset(): number {
    return this._sentOffset;
  }

  /** Every byte below this is acknowledged. */
  get ackedOffset(): number {
    return this._ackedOffset;
  }

  /** Bytes held in memory (written and not yet released by acknowledgment). */
  get bufferedBytes(): number {
    return this.head < this.chunks.length ? this._writeOffset - this.offsets[this.head] : 0;
  }

  /** The application finished the stream (FIN written). */
  get finished(): boolean {
    return this.finWritten;
  }

  /** Final size, −1 until finished. */
  get finalSize(): number {
    return this.finWritten ? this._writeOffset : -1;
  }

  /** Every byte and the FIN acknowledged: the send part can enter "Data Recvd" (RFC 9000 §3.1). */
  get isFullyAcked(): boolean {
    return this.finAcked && this._ackedOffset === this._writeOffset;
  }

  /** Whether every written byte was sent at least once and the FIN too if written. */
  get allSent(): boolean {
    return this._sentOffset === this._writeOffset && (!this.finWritten || this.finSent);
  }

  /** Whether lost ranges (or a lost FIN) await retransmission. */
  get hasLost(): boolean {
    return !this.lost.isEmpty || (this.finLost && !this.finAcked);
  }

  /**
   * Appends application data. Views are kept (the caller must not modify `data` afterwards)
   * unless `copy` is true or the write is small (see the module comment).
   */
  write(data: Uint8Array, copy = false): void {
    if (this.finWritten) throw new QuicUsageError("write after finish");
    if (this._reset) throw new QuicUsageError("write after reset");
    const len = data.length;
    if (len === 0) return;
    if (len < SMALL_WRITE || (copy && len <= STAGING_BLOCK)) {
      this.appendStaged(data);
    } else {
      this.chunks.push(copy ? data.slice() : data);
      this.offsets.push(this._writeOffset);
      this.lastIsStaging = false;
    }
    this._writeOffset += len;
  }

  /** The application has no more data: the next frame reaching the end carries FIN. */
  finish(): void {
    if (this._reset) throw new QuicUsageError("finish after reset");
    this.finWritten = true;
  }

  /** Size of the staging block held (observability, tests). */
  get stagingBytes(): number {
    return this.staging.length;
  }

  /**
   * Frees the staging block when no data is stored, for buffers that go idle for long (the
   * CRYPTO buffers once the handshake is over); the next small write allocates a new one.
   */
  releaseStaging(): void {
    if (this.chunks.length !== 0) return;
    this.staging = EMPTY;
    this.stagingUsed = 0;
    this.lastIsStaging = false;
  }

  /**
   * Abandons the stream (RESET_STREAM): frees all data; nothing more is sent. Returns the final
   * size for the RESET_STREAM frame: the data sent so far (RFC 9000 §4.5, §19.4).
   */
  reset(): number {
    this._reset = true;
    this.chunks.length = 0;
    this.offsets.length = 0;
    this.head = 0;
    this.staging = EMPTY;
    this.lastIsStaging = false;
    this.lost.clear();
    this.acked.clear();
    return this._sentOffset;
  }

  /**
   * RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset §5): the bytes below `reliableSize`
   * are still delivered — sent, and sent again when lost — and nothing above it is sent (again);
   * no FIN follows. A later call may only lower the size (§5.2: it MUST NOT increase).
   */
  resetAt(reliableSize: number): void {
    if (this._reset) throw new QuicUsageError("RESET_STREAM_AT after reset");
    if (!Number.isInteger(reliableSize) || reliableSize < 0 || reliableSize > this._writeOffset)
      throw new QuicUsageError(
        `reliable size ${reliableSize} outside the ${this._writeOffset} bytes written`,
      );
    if (reliableSize >= this._reliableSize) return;
    this._reliableSize = reliableSize;
    this.lost.remove(reliableSize, Math.max(reliableSize, this._sentOffset));
    this.finLost = false;
  }

  /** The Reliable Size of a RESET_STREAM_AT, Infinity when none. */
  get reliableSize(): number {
    return this._reliableSize;
  }

  /** End of what may still be sent: everything written, or up to a RESET_STREAM_AT's Reliable Size. */
  private get sendEnd(): number {
    return this._reliableSize < this._writeOffset ? this._reliableSize : this._writeOffset;
  }

  /**
   * Whether {@link nextChunk} would return something: lost data, new data within `flowLimit`, or
   * a FIN to (re)send.
   */
  hasDataToSend(flowLimit: number = Number.POSITIVE_INFINITY): boolean {
    if (this._reset) return false;
    if (!this.lost.isEmpty) return true;
    if (this._sentOffset < this.sendEnd) return this._sentOffset < flowLimit;
    return this.finPending();
  }

  /**
   * New data is waiting but `flowLimit` stops it: the caller sends STREAM_DATA_BLOCKED
   * (RFC 9000 §4.1).
   */
  isBlocked(flowLimit: number): boolean {
    return !this._reset && this._sentOffset < this.sendEnd && this._sentOffset >= flowLimit;
  }

  /**
   * The next range to send, at most `maxBytes` long, and marks it sent: a lost range if any
   * (§13.3: data in lost frames is sent again in new frames), else new data below `flowLimit`,
   * else a bare FIN. Returns null when there is nothing to send. `out` is filled and returned when
   * given.
   */
  nextChunk(
    maxBytes: number,
    flowLimit: number = Number.POSITIVE_INFINITY,
    out?: SendChunk,
  ): SendChunk | null {
    if (this._reset) return null;
    const lost = this.lost;
    if (!lost.isEmpty) {
      if (maxBytes <= 0) return null;
      const s = lost.start(0);
      const e = Math.min(lost.end(0), s + maxBytes);
      lost.remove(s, e);
      let fin = false;
      if (e === this._writeOffset && this.finPending()) {
        fin = true;
        this.finSent = true;
        this.finLost = false;
      }
      return fill(out, s, this.slice(s, e), fin, true);
    }
    const s = this._sentOffset;
    const e = Math.min(this.sendEnd, flowLimit, s + Math.max(0, maxBytes));
    if (e > s) {
      this._sentOffset = e;
      let fin = false;
      if (e === this._writeOffset && this.finPending()) {
        fin = true;
        this.finSent = true;
        this.finLost = false;
      }
      return fill(out, s, this.slice(s, e), fin, false);
    }
    if (s === this._writeOffset && this.finPending()) {
      this.finSent = true;
      const retransmit = this.finLost;
      this.finLost = false;
      return fill(out, s, EMPTY, true, retransmit);
    }
    return null;
  }

  /**
   * A frame carrying `[offset, offset + length)` (and the FIN if `fin`) was acknowledged. Returns
   * the number of bytes acknowledged for the first time. Acknowledged storage is released.
   */
  onAcked(offset: number, length: number, fin: boolean): number {
    if (fin) {
      this.finAcked = true;
      this.finLost = false;
    }
    if (this._reset || length === 0) return 0;
    const end = offset + length;
    this.lost.remove(offset, end);
    const start = Math.max(offset, this._ackedOffset);
    if (start >= end) return 0;
    const acked = this.acked;
    const added = acked.add(start, end);
    if (acked.start(0) === this._ackedOffset) {
      this._ackedOffset = acked.end(0);
      acked.remove(acked.start(0), this._ackedOffset);
      this.release();
    }
    return added;
  }

  /**
   * A frame carrying `[offset, offset + length)` (and the FIN if `fin`) was declared lost: its
   * not-yet-acknowledged bytes are queued for retransmission.
   */
  onLost(offset: number, length: number, fin: boolean): void {
    if (this._reset) return;
    if (fin && !this.finAcked) this.finLost = true;
    const start = Math.max(offset, this._ackedOffset);
    // Above a RESET_STREAM_AT's Reliable Size nothing is sent again (§5: SHOULD NOT).
    const end = Math.min(offset + length, this._sentOffset, this._reliableSize);
    if (start < end) this.lost.addExcept(start, end, this.acked);
  }

  private finPending(): boolean {
    return (
      this.finWritten &&
      !this.finAcked &&
      (!this.finSent || this.finLost) &&
      this._reliableSize === Number.POSITIVE_INFINITY
    );
  }

  private appendStaged(data: Uint8Array): void {
    const len = data.length;
    if (this.stagingUsed + len > this.staging.length) {
      const next = Math.min(STAGING_BLOCK, Math.max(FIRST_STAGING_BLOCK, this.staging.length * 2));
      this.staging = new Uint8Array(Math.max(next, len));
      this.stagingUsed = 0;
      this.lastIsStaging = false;
    }
    const staging = this.staging;
    const at = this.stagingUsed;
    staging.set(data, at);
    this.stagingUsed = at + len;
    const chunks = this.chunks;
    if (this.lastIsStaging) {
      // Grow the last chunk, a view of this staging block ending at `at`, in place.
      const last = chunks.length - 1;
      const view = chunks[last];
      const from = view.byteOffset - staging.byteOffset;
      chunks[last] = staging.subarray(from, at + len);
    } else {
      chunks.push(staging.subarray(at, at + len));
      this.offsets.push(this._writeOffset);
      this.lastIsStaging = true;
    }
  }

  /** Index of the live chunk containing stream offset `off` (which must be stored). */
  private chunkIndex(off: number): number {
    const offsets = this.offsets;
    let lo = this.head;
    let hi = offsets.length - 1;
    // Fast path: the last chunk (new data is usually sent from it).
    if (off >= offsets[hi]) return hi;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (offsets[mid] <= off) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The stored bytes `[s, e)` (`s < e`): a view when in one chunk, else a copy. */
  private slice(s: number, e: number): Uint8Array {
    let i = this.chunkIndex(s);
    const chunks = this.chunks;
    const offsets = this.offsets;
    const c = chunks[i];
    const cs = offsets[i];
    if (e <= cs + c.length) return c.subarray(s - cs, e - cs);
    const out = new Uint8Array(e - s);
    let pos = 0;
    let off = s;
    while (off < e) {
      const chunk = chunks[i];
      const from = off - offsets[i];
      const n = Math.min(chunk.length - from, e - off);
      out.set(from === 0 && n === chunk.length ? chunk : chunk.subarray(from, from + n), pos);
      pos += n;
      off += n;
      i++;
    }
    return out;
  }

  /** Frees the chunks entirely below the acknowledged prefix. */
  private release(): void {
    const chunks = this.chunks;
    const offsets = this.offsets;
    const acked = this._ackedOffset;
    let h = this.head;
    const n = chunks.length;
    while (h < n && offsets[h] + chunks[h].length <= acked) {
      chunks[h] = EMPTY;
      h++;
    }
    if (h === n) {
      chunks.length = 0;
      offsets.length = 0;
      h = 0;
      // Nothing stored: the staging block can be reused from its start.
      this.lastIsStaging = false;
      this.stagingUsed = 0;
    } else if (h >= COMPACT_MIN && h * 2 >= n) {
      chunks.copyWithin(0, h);
      offsets.copyWithin(0, h);
      chunks.length = n - h;
      offsets.length = n - h;
      h = 0;
    }
    this.head = h;
  }
}

function fill(
  out: SendChunk | undefined,
  offset: number,
  data: Uint8Array,
  fin: boolean,
  retransmit: boolean,
): SendChunk {
  if (!out) return { offset, data, fin, retransmit };
  out.offset = offset;
  out.data = data;
  out.fin = fin;
  out.retransmit = retransmit;
  return out;
}
