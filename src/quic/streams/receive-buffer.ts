/**
 * Receive side of a stream or CRYPTO stream: out-of-order reassembly by offset (RFC 9000 §2.2)
 * and delivery of the contiguous prefix to the reader.
 *
 * Storage is a sorted list of non-overlapping pieces. A frame's data is stored as views of the
 * frame (no copy) unless the buffer was built with `copy: true`; with views the caller must not
 * reuse the datagram buffer the frames were decoded from while data is buffered. Overlapping data
 * is not compared (RFC 9000 §2.2 makes that a MAY): the bytes received first are kept and only the
 * gaps are filled from a later frame.
 *
 * Flow control is the caller's: run the frame through the stream's and the connection's
 * `ReceiveFlowControl` (flow-control.ts; FLOW_CONTROL_ERROR, §4.1) before inserting. That bounds
 * what this buffer holds by the advertised window; the buffer itself enforces only the final-size
 * rules of §4.5 (FINAL_SIZE_ERROR). The CRYPTO variant, which has no flow control, enforces its own limit
 * on out-of-order bytes (§7.5, CRYPTO_BUFFER_EXCEEDED).
 *
 * Reading: {@link ReceiveBuffer.read} returns stored views (zero copy, at most one stored piece
 * per call); {@link ReceiveBuffer.readInto} copies across pieces into the caller's buffer.
 */
import { QuicError, TransportErrorCode } from "../errors.ts";
import { checkFinalSize, checkResetFinalSize } from "./final-size.ts";

/** Compact the piece arrays once this many consumed slots precede `head` (and they are half of them). */
const COMPACT_MIN = 32;

const EMPTY = new Uint8Array(0);

export interface ReceiveBufferOptions {
  /** Copy inserted data instead of keeping views of it. Default false. */
  copy?: boolean | undefined;
}

export class ReceiveBuffer {
  /** Stored pieces: ascending, non-overlapping, at or above `_readOffset`; live from `head`. */
  private pieces: Uint8Array[] = [];
  private offsets: number[] = [];
  private head = 0;

  private _readOffset = 0;
  /** End of the data available without a gap from `_readOffset`. */
  private _contiguous = 0;
  private _highest = 0;
  private _finalSize = -1;
  private _buffered = 0;
  private _discarded = false;
  private readonly copy: boolean;

  constructor(options: ReceiveBufferOptions = {}) {
    this.copy = options.copy ?? false;
  }

  /** Bytes delivered to the reader so far. */
  get readOffset(): number {
    return this._readOffset;
  }

  /** Largest offset + length received (the flow-control usage of the stream). */
  get highestOffset(): number {
    return this._highest;
  }

  /** Final size (§4.5) once a FIN or RESET_STREAM told it, else −1. */
  get finalSize(): number {
    return this._finalSize;
  }

  /** Bytes that can be read now, without a gap. */
  get readable(): number {
    return this._contiguous - this._readOffset;
  }

  /** Bytes held in memory (readable and out of order). */
  get bufferedBytes(): number {
    return this._buffered;
  }

  /** Separately stored pieces (the size of the reassembly structure, RFC 9000 §21.7). */
  get pieceCount(): number {
    return this.pieces.length - this.head;
  }

  /** Bytes held beyond the first gap. */
  get outOfOrderBytes(): number {
    return this._buffered - (this._contiguous - this._readOffset);
  }

  /** All data up to the final size has arrived (§3.2 "Data Recvd"). */
  get allReceived(): boolean {
    return this._finalSize >= 0 && this._contiguous === this._finalSize;
  }

  /** All data up to the final size has been read (§3.2 "Data Read"). */
  get finished(): boolean {
    return this._finalSize >= 0 && this._readOffset === this._finalSize;
  }

  /** Whether the buffer was discarded (reset or {@link discard}). */
  get discarded(): boolean {
    return this._discarded;
  }

  /**
   * Stores the data of a STREAM (or CRYPTO) frame at `offset`; `fin` marks it the last.
   *
   * @throws QuicError FINAL_SIZE_ERROR (RFC 9000 §4.5): a FIN that changes a known final size or
   *   lies below data already received, or data beyond a known final size.
   */
  insert(offset: number, data: Uint8Array, fin = false, frameType = 0): void {
    const len = data.length;
    const end = offset + len;
    checkFinalSize(this._finalSize, this._highest, end, fin, frameType);
    if (fin) this._finalSize = end;
    if (end > this._highest) this._highest = end;
    if (this._discarded) return;

    // Data below `_contiguous` is already here (or was read): only the rest is new.
    let s = Math.max(offset, this._contiguous);
    if (s >= end) return;
    const pieces = this.pieces;
    const offsets = this.offsets;
    let n = pieces.length;
    const lastEnd = n > this.head ? offsets[n - 1] + pieces[n - 1].length : 0;
    if (n === this.head || s >= lastEnd) {
      // Fast path: in order, or beyond everything stored.
      this.store(n, data, offset, s, end);
    } else {
      // Fill the gaps between stored pieces; stored bytes win over the new ones.
      let i = this.firstEndingAfter(s);
      while (s < end) {
        if (i >= n) {
          this.store(n, data, offset, s, end);
          break;
        }
        const cs = offsets[i];
        if (s < cs) {
          const pe = Math.min(end, cs);
          this.store(i, data, offset, s, pe);
          i++;
          n++;
          s = pe;
        } else {
          const ce = cs + pieces[i].length;
          if (ce > s) s = ce;
          i++;
        }
      }
    }
    if (this._contiguous < end) this.advanceContiguous();
  }

  /**
   * RESET_STREAM with Final Size `finalSize`: checks it (§4.5) and discards the buffered data.
   *
   * @throws QuicError FINAL_SIZE_ERROR when it changes a known final size or is below data
   *   already received.
   */
  onReset(finalSize: number, frameType = 0x04): void {
    checkResetFinalSize(this._finalSize, this._highest, finalSize, frameType);
    this._finalSize = finalSize;
    if (finalSize > this._highest) this._highest = finalSize;
    this.discard();
  }

  /**
   * Drops all buffered data and ignores data arriving later (final-size checks still apply), e.g.
   * after the application stopped reading (STOP_SENDING). Returns the number of bytes dropped.
   */
  discard(): number {
    const dropped = this._buffered;
    this.pieces.length = 0;
    this.offsets.length = 0;
    this.head = 0;
    this._buffered = 0;
    this._contiguous = this._readOffset;
    this._discarded = true;
    return dropped;
  }

  /**
   * Up to `maxBytes` of the next readable bytes as a view of stored data (no copy; at most one
   * stored piece: call again for more), or null when nothing is readable.
   */
  read(maxBytes: number = Number.POSITIVE_INFINITY): Uint8Array | null {
    if (this._contiguous === this._readOffset || maxBytes <= 0) return null;
    const h = this.head;
    const piece = this.pieces[h];
    let out: Uint8Array;
    if (maxBytes >= piece.length) {
      out = piece;
      this.pieces[h] = EMPTY;
      this.head = h + 1;
      this.compact();
    } else {
      out = piece.subarray(0, maxBytes);
      this.pieces[h] = piece.subarray(maxBytes);
      this.offsets[h] += maxBytes;
    }
    this._readOffset += out.length;
    this._buffered -= out.length;
    return out;
  }

  /**
   * Copies readable bytes into `dst` from `dstOffset` on, as many as fit. Returns the number of
   * bytes copied (0 when nothing is readable).
   */
  readInto(dst: Uint8Array, dstOffset = 0): number {
    let pos = dstOffset;
    const cap = dst.length;
    const pieces = this.pieces;
    const offsets = this.offsets;
    let h = this.head;
    while (pos < cap && this._contiguous > this._readOffset) {
      const piece = pieces[h];
      const n = Math.min(piece.length, cap - pos);
      if (n === piece.length) {
        dst.set(piece, pos);
        pieces[h] = EMPTY;
        h++;
      } else {
        dst.set(piece.subarray(0, n), pos);
        pieces[h] = piece.subarray(n);
        offsets[h] += n;
      }
      pos += n;
      this._readOffset += n;
      this._buffered -= n;
    }
    this.head = h;
    this.compact();
    return pos - dstOffset;
  }

  /** Stores `data[s − base, e − base)` as a piece at index `i`. */
  private store(i: number, data: Uint8Array, base: number, s: number, e: number): void {
    let view = s === base && e - base === data.length ? data : data.subarray(s - base, e - base);
    if (this.copy) view = view.slice();
    if (i === this.pieces.length) {
      this.pieces.push(view);
      this.offsets.push(s);
    } else {
      this.pieces.splice(i, 0, view);
      this.offsets.splice(i, 0, s);
    }
    this._buffered += e - s;
  }

  /** Extends `_contiguous` over the stored pieces that now follow it without a gap. */
  private advanceContiguous(): void {
    const pieces = this.pieces;
    const offsets = this.offsets;
    const n = pieces.length;
    let c = this._contiguous;
    let i = this.firstEndingAfter(c);
    while (i < n && offsets[i] <= c) {
      const e = offsets[i] + pieces[i].length;
      if (e > c) c = e;
      i++;
    }
    this._contiguous = c;
  }

  /** Index of the first live piece whose end is > `off`. */
  private firstEndingAfter(off: number): number {
    const pieces = this.pieces;
    const offsets = this.offsets;
    let lo = this.head;
    let hi = pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid] + pieces[mid].length > off) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private compact(): void {
    const h = this.head;
    const pieces = this.pieces;
    const n = pieces.length;
    if (h === n) {
      pieces.length = 0;
      this.offsets.length = 0;
      this.head = 0;
    } else if (h >= COMPACT_MIN && h * 2 >= n) {
      pieces.copyWithin(0, h);
      this.offsets.copyWithin(0, h);
      pieces.length = n - h;
      this.offsets.length = n - h;
      this.head = 0;
    }
  }
}

/**
 * The CRYPTO stream of one encryption level (RFC 9000 §19.6): no FIN, no flow control, but a cap
 * on data buffered out of order (§7.5: at least 4096 bytes MUST be supported; beyond the cap the
 * connection is closed with CRYPTO_BUFFER_EXCEEDED).
 */
export class CryptoReceiveBuffer extends ReceiveBuffer {
  /** @param maxOutOfOrder bytes buffered beyond the first gap at most (default 16 KiB, ≥ 4096). */
  constructor(
    readonly maxOutOfOrder = 16 * 1024,
    options: ReceiveBufferOptions = {},
  ) {
    super(options);
    if (!(maxOutOfOrder >= 4096)) throw new RangeError("CRYPTO buffer limit must be ≥ 4096 (RFC 9000 §7.5)");
  }

  /**
   * Stores a CRYPTO frame's data.
   *
   * @throws QuicError CRYPTO_BUFFER_EXCEEDED when more than `maxOutOfOrder` bytes would be held
   *   beyond the first gap (§7.5).
   */
  override insert(offset: number, data: Uint8Array, _fin = false, frameType = 0x06): void {
    super.insert(offset, data, false, frameType);
    // Checked after storing (pieces may overlap what is there); the connection closes anyway.
    const held = this.outOfOrderBytes;
    if (held > this.maxOutOfOrder) {
      throw new QuicError(
        TransportErrorCode.CRYPTO_BUFFER_EXCEEDED,
        `${held} bytes of CRYPTO data buffered out of order`,
        frameType,
      );
    }
  }
}
