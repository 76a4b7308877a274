/**
 * The QPACK decoder (RFC 9204 §2.2): applies the peer's encoder-stream instructions to the
 * dynamic table, decodes encoded field sections (or reports them blocked until the table has the
 * entries they need), and produces decoder-stream instructions. Sans-IO: bytes in, bytes out.
 *
 * Usage by the HTTP/3 layer:
 * - encoder stream data → {@link QpackDecoder.receiveEncoderStream}, which returns the streams
 *   that became unblocked; the caller decodes their pending field section again;
 * - a HEADERS frame payload → {@link QpackDecoder.decodeFieldSection}; on `blocked`, keep the
 *   bytes (they stay in the stream's flow-control window, §2.2.1) and retry when unblocked;
 * - a stream reset or abandoned before all its field sections were decoded →
 *   {@link QpackDecoder.cancelStream} (§4.4.2);
 * - after any of these, {@link QpackDecoder.takeDecoderStreamData} → decoder stream.
 *
 * Errors: {@link QpackError} (connection errors QPACK_DECOMPRESSION_FAILED,
 * QPACK_ENCODER_STREAM_ERROR) and {@link QpackFieldSectionTooLargeError} (a stream error). No
 * other exception escapes for any input, and memory is bounded by our settings: the table by
 * SETTINGS_QPACK_MAX_TABLE_CAPACITY, a buffered partial encoder instruction by ~4× that, a
 * decoded field section by SETTINGS_MAX_FIELD_SECTION_SIZE.
 */
import { QuicUsageError } from "../../quic/errors.ts";
import { DynamicTable, ENTRY_OVERHEAD } from "./dynamic-table.ts";
import {
  decompressionFailed,
  encoderStreamError,
  QpackErrorCode,
  QpackFieldSectionTooLargeError,
} from "./errors.ts";
import { INCOMPLETE, QpackReader, QpackWriter } from "./prefix-int.ts";
import { STATIC_TABLE, STATIC_TABLE_SIZE } from "./static-table.ts";

/**
 * A field line: name and value as byte strings (char codes ≤ 0xff, see `prefix-int.ts`), and
 * `true` as the third element when it was (or must be) sent as a never-indexed literal, the N
 * bit (RFC 9204 §4.5.4, §7.1.3): an intermediary re-encoding it MUST keep it literal.
 */
export type QpackField = [name: string, value: string, neverIndex?: boolean];

export interface QpackDecoderOptions {
  /**
   * Our SETTINGS_QPACK_MAX_TABLE_CAPACITY (RFC 9204 §5): the largest dynamic table capacity the
   * peer's encoder may set. Default 0 (no dynamic table).
   */
  maxTableCapacity?: number;
  /** Our SETTINGS_QPACK_BLOCKED_STREAMS (RFC 9204 §5). Default 0. */
  maxBlockedStreams?: number;
  /**
   * Our SETTINGS_MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2, §7.2.4.1): the largest decoded field
   * section, counted as name + value + 32 per field line. Default 65536. `Infinity` disables the
   * check (memory is then bounded only by what the peer sends).
   */
  maxFieldSectionSize?: number;
}

/** Result of {@link QpackDecoder.decodeFieldSection}. */
export type QpackDecodeResult =
  | {
      kind: "done";
      fields: QpackField[];
      /** The section's Required Insert Count (0: no dynamic table reference). */
      requiredInsertCount: number;
      /** Decoded size: name + value + 32 per field line (RFC 9114 §4.2.2). */
      size: number;
    }
  | {
      /** The section needs entries not yet received (§2.1.2); retry when the stream unblocks. */
      kind: "blocked";
      requiredInsertCount: number;
    };

const NO_STREAMS: readonly number[] = Object.freeze([]);

export class QpackDecoder {
  /** The dynamic table as built from the peer's encoder stream. */
  readonly table = new DynamicTable();
  /** Our SETTINGS_QPACK_MAX_TABLE_CAPACITY. */
  readonly maxTableCapacity: number;
  /** Our SETTINGS_QPACK_BLOCKED_STREAMS. */
  readonly maxBlockedStreams: number;
  /** Our SETTINGS_MAX_FIELD_SECTION_SIZE. */
  readonly maxFieldSectionSize: number;

  /** §4.5.1.1: MaxEntries = floor(MaxTableCapacity / 32). */
  private readonly maxEntries: number;
  /** Insert count the encoder is known to have learnt (acks + increments sent). */
  private knownReceivedCount = 0;
  /** Blocked streams → their Required Insert Count. */
  private readonly blocked = new Map<number, number>();
  private readonly out = new QpackWriter(64);

  private readonly sectionReader: QpackReader;
  private readonly encoderReader: QpackReader;
  // Encoder stream bytes not yet parsed (a partial instruction).
  private pending = new Uint8Array(0);
  private pendingLen = 0;
  // Do not re-parse before this many pending bytes are available.
  private pendingNeeded = 0;

  constructor(options: QpackDecoderOptions = {}) {
    const cap = options.maxTableCapacity ?? 0;
    const blocked = options.maxBlockedStreams ?? 0;
    const fs = options.maxFieldSectionSize ?? 65536;
    if (!Number.isSafeInteger(cap) || cap < 0) throw new QuicUsageError(`bad maxTableCapacity ${cap}`);
    if (!Number.isSafeInteger(blocked) || blocked < 0)
      throw new QuicUsageError(`bad maxBlockedStreams ${blocked}`);
    if (!(fs >= 0)) throw new QuicUsageError(`bad maxFieldSectionSize ${fs}`);
    this.maxTableCapacity = cap;
    this.maxBlockedStreams = blocked;
    this.maxFieldSectionSize = fs;
    this.maxEntries = Math.floor(cap / 32);
    this.sectionReader = new QpackReader(
      QpackErrorCode.DECOMPRESSION_FAILED,
      () => new QpackFieldSectionTooLargeError(this.maxFieldSectionSize),
    );
    this.encoderReader = new QpackReader(QpackErrorCode.ENCODER_STREAM_ERROR, () =>
      encoderStreamError("inserted entry larger than the dynamic table capacity"),
    );
  }

  /** Insert Count: total insertions into the dynamic table (§2.1.4). */
  get insertCount(): number {
    return this.table.insertCount;
  }

  /** Number of streams currently blocked (≤ {@link maxBlockedStreams}). */
  get blockedStreamCount(): number {
    return this.blocked.size;
  }

  // -------------------------------------------------------------------------------------------
  // Field sections

  /**
   * Decodes one encoded field section (the payload of a HEADERS frame) received on `streamId`.
   * Returns the field lines in order (§2.2: the decoder MUST emit them in order), or `blocked`
   * when its Required Insert Count exceeds the Insert Count (§2.2.1); the stream then counts
   * against SETTINGS_QPACK_BLOCKED_STREAMS until it unblocks or is cancelled. Decoding a section
   * with dynamic references queues a Section Acknowledgment (§4.4.1).
   */
  decodeFieldSection(streamId: number, section: Uint8Array): QpackDecodeResult {
    const r = this.sectionReader;
    r.reset(section, 0, section.length);
    // §4.5.1: Required Insert Count (8+), Sign bit and Delta Base (7+).
    const encodedRic = r.readInt(8);
    if (encodedRic === INCOMPLETE) throw decompressionFailed("truncated field section prefix");
    const ric = this.reconstructRequiredInsertCount(encodedRic);
    if (r.pos >= r.end) throw decompressionFailed("truncated field section prefix");
    const sign = section[r.pos] & 0x80;
    const deltaBase = r.readInt(7);
    if (deltaBase === INCOMPLETE) throw decompressionFailed("truncated field section prefix");
    let base: number;
    if (sign === 0) {
      base = ric + deltaBase;
    } else {
      // §4.5.1.2: a Sign bit of 1 with Required Insert Count ≤ Delta Base is invalid (negative Base).
      if (ric <= deltaBase) throw decompressionFailed("negative Base");
      base = ric - deltaBase - 1;
    }

    const table = this.table;
    if (ric > table.insertCount) {
      // §2.1.2: more blocked streams than promised MUST be QPACK_DECOMPRESSION_FAILED.
      if (!this.blocked.has(streamId)) {
        if (this.blocked.size >= this.maxBlockedStreams) {
          throw decompressionFailed(`more than ${this.maxBlockedStreams} blocked streams`);
        }
        this.blocked.set(streamId, ric);
      }
      return { kind: "blocked", requiredInsertCount: ric };
    }

    const fields: QpackField[] = [];
    const limit = this.maxFieldSectionSize;
    let size = 0;
    while (r.pos < r.end) {
      const b = section[r.pos];
      let name: string;
      let value: string;
      let neverIndex = false;
      if (b & 0x80) {
        // §4.5.2 Indexed Field Line: 1 T Index(6+)
        const index = r.readInt(6);
        if (index === INCOMPLETE) throw truncated();
        if (b & 0x40) {
          if (index >= STATIC_TABLE_SIZE) throw decompressionFailed(`invalid static index ${index}`);
          [name, value] = STATIC_TABLE[index];
        } else {
          const abs = this.checkFieldRef(base - 1 - index, ric);
          name = table.name(abs);
          value = table.value(abs);
        }
      } else if (b & 0x40) {
        // §4.5.4 Literal Field Line with Name Reference: 01 N T NameIndex(4+), value (8+)
        neverIndex = (b & 0x20) !== 0;
        const index = r.readInt(4);
        if (index === INCOMPLETE) throw truncated();
        if (b & 0x10) {
          if (index >= STATIC_TABLE_SIZE) throw decompressionFailed(`invalid static index ${index}`);
          name = STATIC_TABLE[index][0];
        } else {
          name = table.name(this.checkFieldRef(base - 1 - index, ric));
        }
        const v = r.readString(8, limit - size - ENTRY_OVERHEAD - name.length);
        if (v === undefined) throw truncated();
        value = v;
      } else if (b & 0x20) {
        // §4.5.6 Literal Field Line with Literal Name: 001 N H NameLen(3+), name, value (8+)
        neverIndex = (b & 0x10) !== 0;
        const n = r.readString(4, limit - size - ENTRY_OVERHEAD);
        if (n === undefined) throw truncated();
        name = n;
        const v = r.readString(8, limit - size - ENTRY_OVERHEAD - name.length);
        if (v === undefined) throw truncated();
        value = v;
      } else if (b & 0x10) {
        // §4.5.3 Indexed Field Line with Post-Base Index: 0001 Index(4+)
        const index = r.readInt(4);
        if (index === INCOMPLETE) throw truncated();
        const abs = this.checkFieldRef(base + index, ric);
        name = table.name(abs);
        value = table.value(abs);
      } else {
        // §4.5.5 Literal Field Line with Post-Base Name Reference: 0000 N NameIndex(3+), value
        neverIndex = (b & 0x08) !== 0;
        const index = r.readInt(3);
        if (index === INCOMPLETE) throw truncated();
        name = table.name(this.checkFieldRef(base + index, ric));
        const v = r.readString(8, limit - size - ENTRY_OVERHEAD - name.length);
        if (v === undefined) throw truncated();
        value = v;
      }
      size += name.length + value.length + ENTRY_OVERHEAD;
      if (size > limit) throw new QpackFieldSectionTooLargeError(limit);
      fields.push(neverIndex ? [name, value, true] : [name, value]);
    }

    this.blocked.delete(streamId);
    if (ric > 0) {
      // §2.2.2.1: after decoding a section with dynamic references, the decoder MUST emit a
      // Section Acknowledgment (§4.4.1): '1' Stream ID (7+).
      this.out.writeInt(0x80, 7, streamId);
      if (ric > this.knownReceivedCount) this.knownReceivedCount = ric;
    }
    return { kind: "done", fields, requiredInsertCount: ric, size };
  }

  /**
   * §4.5.1.1: Required Insert Count from its encoded value. Values no conformant encoder could
   * produce MUST be treated as QPACK_DECOMPRESSION_FAILED.
   */
  private reconstructRequiredInsertCount(encoded: number): number {
    if (encoded === 0) return 0;
    const maxEntries = this.maxEntries;
    const fullRange = 2 * maxEntries;
    if (encoded > fullRange) throw decompressionFailed(`invalid Required Insert Count ${encoded}`);
    const maxValue = this.table.insertCount + maxEntries;
    const maxWrapped = Math.floor(maxValue / fullRange) * fullRange;
    let ric = maxWrapped + encoded - 1;
    if (ric > maxValue) {
      if (ric <= fullRange) throw decompressionFailed(`invalid Required Insert Count ${encoded}`);
      ric -= fullRange;
    }
    if (ric === 0) throw decompressionFailed(`invalid Required Insert Count ${encoded}`);
    return ric;
  }

  /**
   * §2.2.3: a reference to an evicted entry, or to an absolute index ≥ Required Insert Count,
   * MUST be treated as QPACK_DECOMPRESSION_FAILED.
   */
  private checkFieldRef(abs: number, ric: number): number {
    if (abs < 0 || abs >= ric) throw decompressionFailed(`invalid dynamic table reference ${abs}`);
    if (abs < this.table.dropped) throw decompressionFailed(`reference to evicted entry ${abs}`);
    return abs;
  }

  /**
   * The stream was reset or its reading abandoned before all its field sections were decoded:
   * forget its blocked state and queue a Stream Cancellation (§4.4.2: '01' Stream ID (6+)). A
   * decoder with a maximum table capacity of 0 MAY omit it, and does.
   */
  cancelStream(streamId: number): void {
    this.blocked.delete(streamId);
    if (this.maxTableCapacity > 0) this.out.writeInt(0x40, 6, streamId);
  }

  // -------------------------------------------------------------------------------------------
  // Encoder stream

  /**
   * Consumes encoder-stream bytes (any chunking; a partial instruction is buffered). Returns the
   * streams that were blocked and can now be decoded (their Required Insert Count is reached);
   * they no longer count as blocked. Throws {@link QpackError} QPACK_ENCODER_STREAM_ERROR for an
   * invalid instruction.
   */
  receiveEncoderStream(chunk: Uint8Array): readonly number[] {
    const before = this.table.insertCount;
    if (this.pendingLen === 0) {
      const used = this.parseEncoderInstructions(chunk, 0, chunk.length);
      if (used < chunk.length) this.keepPending(chunk, used, chunk.length);
    } else {
      this.appendPending(chunk);
      if (this.pendingLen >= this.pendingNeeded) {
        const used = this.parseEncoderInstructions(this.pending, 0, this.pendingLen);
        this.pending.copyWithin(0, used, this.pendingLen);
        this.pendingLen -= used;
      }
    }
    if (this.table.insertCount === before || this.blocked.size === 0) return NO_STREAMS;
    const unblocked: number[] = [];
    const count = this.table.insertCount;
    for (const [streamId, ric] of this.blocked) if (ric <= count) unblocked.push(streamId);
    for (const streamId of unblocked) this.blocked.delete(streamId);
    return unblocked;
  }

  private keepPending(src: Uint8Array, start: number, end: number): void {
    this.pendingLen = 0;
    this.appendPending(src.subarray(start, end));
  }

  private appendPending(src: Uint8Array): void {
    const need = this.pendingLen + src.length;
    if (need > this.pending.length) {
      const b = new Uint8Array(Math.max(need, this.pending.length * 2, 64));
      b.set(this.pending.subarray(0, this.pendingLen));
      this.pending = b;
    }
    this.pending.set(src, this.pendingLen);
    this.pendingLen = need;
  }

  /** Parses complete instructions from `buf[start, end)`; returns the position after the last. */
  private parseEncoderInstructions(buf: Uint8Array, start: number, end: number): number {
    const r = this.encoderReader;
    r.reset(buf, start, end);
    this.pendingNeeded = 0;
    while (r.pos < end) {
      const at = r.pos;
      r.needed = 0;
      if (!this.parseEncoderInstruction(r)) {
        r.pos = at;
        // A partial string: nothing to do before its last byte arrives.
        if (r.needed > 0) this.pendingNeeded = r.needed - at;
        break;
      }
    }
    return r.pos;
  }

  /** One encoder instruction (§4.3); false if incomplete. */
  private parseEncoderInstruction(r: QpackReader): boolean {
    const table = this.table;
    const b = r.buf[r.pos];
    if (b & 0x80) {
      // §4.3.2 Insert with Name Reference: 1 T NameIndex(6+), value (8+)
      const index = r.readInt(6);
      if (index === INCOMPLETE) return false;
      let name: string;
      if (b & 0x40) {
        // §3.1: an invalid static index on the encoder stream MUST be QPACK_ENCODER_STREAM_ERROR.
        if (index >= STATIC_TABLE_SIZE) throw encoderStreamError(`invalid static index ${index}`);
        name = STATIC_TABLE[index][0];
      } else {
        name = table.name(this.checkEncoderRef(index));
      }
      const value = r.readString(8, table.capacity - ENTRY_OVERHEAD - name.length);
      if (value === undefined) return false;
      this.insert(name, value);
    } else if (b & 0x40) {
      // §4.3.3 Insert with Literal Name: 01 H NameLen(5+), name, value (8+)
      const name = r.readString(6, table.capacity - ENTRY_OVERHEAD);
      if (name === undefined) return false;
      const value = r.readString(8, table.capacity - ENTRY_OVERHEAD - name.length);
      if (value === undefined) return false;
      this.insert(name, value);
    } else if (b & 0x20) {
      // §4.3.1 Set Dynamic Table Capacity: 001 Capacity(5+)
      const capacity = r.readInt(5);
      if (capacity === INCOMPLETE) return false;
      // The decoder MUST treat a capacity above its limit as QPACK_ENCODER_STREAM_ERROR.
      if (capacity > this.maxTableCapacity) {
        throw encoderStreamError(`capacity ${capacity} exceeds the maximum ${this.maxTableCapacity}`);
      }
      table.setCapacity(capacity);
    } else {
      // §4.3.4 Duplicate: 000 Index(5+)
      const index = r.readInt(5);
      if (index === INCOMPLETE) return false;
      const abs = this.checkEncoderRef(index);
      this.insert(table.name(abs), table.value(abs));
    }
    return true;
  }

  /** §2.2.3: a reference to an evicted entry on the encoder stream is QPACK_ENCODER_STREAM_ERROR. */
  private checkEncoderRef(relative: number): number {
    const abs = this.table.absFromEncoderRelative(relative);
    if (!this.table.has(abs)) throw encoderStreamError(`invalid relative index ${relative}`);
    return abs;
  }

  private insert(name: string, value: string): void {
    // §3.2.2: adding an entry larger than the capacity MUST be QPACK_ENCODER_STREAM_ERROR.
    if (name.length + value.length + ENTRY_OVERHEAD > this.table.capacity) {
      throw encoderStreamError("inserted entry larger than the dynamic table capacity");
    }
    this.table.insert(name, value);
  }

  // -------------------------------------------------------------------------------------------
  // Decoder stream

  /**
   * Decoder-stream bytes to send (Section Acknowledgments and Stream Cancellations queued so
   * far, then an Insert Count Increment (§4.4.3) for insertions not yet covered by them), or an
   * empty array. Increments are deferred to here so that acknowledgments can make them
   * unnecessary (§2.2.2.3).
   */
  takeDecoderStreamData(): Uint8Array {
    const count = this.table.insertCount;
    if (count > this.knownReceivedCount) {
      this.out.writeInt(0x00, 6, count - this.knownReceivedCount);
      this.knownReceivedCount = count;
    }
    return this.out.take();
  }
}

function truncated() {
  return decompressionFailed("truncated field line");
}
