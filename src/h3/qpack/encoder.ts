/**
 * The QPACK encoder (RFC 9204 §2.1): turns field sections into encoded field sections and
 * encoder-stream instructions, using the static table, the dynamic table and Huffman coding, and
 * tracks the peer decoder's acknowledgments (decoder stream) to know which entries it can
 * reference without blocking and which it can evict. Sans-IO: bytes in, bytes out.
 *
 * Strategy (single pass, in the spirit of RFC 9204 Appendix C):
 * - static exact match → indexed static line;
 * - dynamic exact match that may be referenced → indexed dynamic line (relative or post-Base);
 * - otherwise, if the line is worth indexing and fits without evicting a non-evictable entry
 *   (§2.1.1), insert it (Insert with Name Reference / Literal Name; Duplicate for an exact match
 *   in the draining area) and reference the new entry if blocking is allowed; else a literal,
 *   with a static or dynamic name reference when available;
 * - sensitive lines (see {@link QpackEncoderOptions.isSensitive}) are never inserted and are sent
 *   as literals with the N bit (§4.5.4, §7.1.3).
 *
 * Referencing an entry not yet acknowledged (absolute index ≥ Known Received Count) may block the
 * stream at the decoder; the encoder does so only while the number of streams that could be
 * blocked stays within the peer's SETTINGS_QPACK_BLOCKED_STREAMS (§2.1.2), otherwise it inserts
 * the entry for later field sections and sends a literal now. Entries below the draining index
 * (§2.1.1.1) are not referenced, so they become evictable.
 *
 * Usage by the HTTP/3 layer: {@link QpackEncoder.applyPeerSettings} when the peer's SETTINGS
 * arrive; {@link QpackEncoder.encodeFieldSection} for each HEADERS frame, then send
 * {@link QpackEncoder.takeEncoderStreamData} on the encoder stream (before or with the HEADERS
 * frame, to limit blocking); decoder stream data → {@link QpackEncoder.receiveDecoderStream}.
 */
import { QuicUsageError } from "../../quic/errors.ts";
import { ENTRY_OVERHEAD, EncoderDynamicTable } from "./dynamic-table.ts";
import { decoderStreamError, QpackErrorCode } from "./errors.ts";
import { INCOMPLETE, isByteString, QpackReader, QpackWriter } from "./prefix-int.ts";
import { staticFindExact, staticFindName } from "./static-table.ts";

/** A field line to encode: name, value (byte strings), and optionally "never index" (N bit). */
export type QpackFieldInput = readonly [name: string, value: string, neverIndex?: boolean];

export interface QpackEncoderOptions {
  /**
   * The largest dynamic table capacity this encoder will use (its own memory bound, §7.3). The
   * capacity set is min(this, the peer's SETTINGS_QPACK_MAX_TABLE_CAPACITY). Default 4096.
   */
  maxTableCapacity?: number;
  /** Huffman-code string literals when that is shorter (default true). */
  huffman?: boolean;
  /**
   * Field lines never to insert in the dynamic table and to send as never-indexed literals
   * (N bit, §7.1.3). Default: `authorization`, `proxy-authorization`, and `cookie` values
   * shorter than 20 bytes (low entropy, easy to guess, §7.1.3).
   */
  isSensitive?: (name: string, value: string) => boolean;
  /**
   * Whether a (non-sensitive) field line is worth inserting in the dynamic table when it is not
   * there yet. Default: always (lines larger than 3/4 of the capacity are never inserted).
   * Returning false for values that rarely repeat (e.g. `:path`, `content-length`, `date`) saves
   * encoder-stream bytes and table churn.
   */
  shouldIndex?: (name: string, value: string) => boolean;
  /**
   * Bytes of table space kept free for new insertions, as a fraction of the capacity: entries
   * that would be evicted by inserting that much are "draining" (§2.1.1.1) and not referenced.
   * Default 1/8.
   */
  drainingFraction?: number;
  /**
   * Most field sections with dynamic references awaiting acknowledgment; beyond, sections are
   * encoded without dynamic references (bounds the encoder's memory if the peer never
   * acknowledges, §7.3). Default 1000.
   */
  maxUnacknowledgedSections?: number;
}

/** The peer's QPACK settings (RFC 9204 §5), from its SETTINGS frame. */
export interface QpackPeerSettings {
  /** SETTINGS_QPACK_MAX_TABLE_CAPACITY (0x01), default 0. */
  maxTableCapacity: number;
  /** SETTINGS_QPACK_BLOCKED_STREAMS (0x07), default 0. */
  blockedStreams: number;
}

export interface QpackEncodeOptions {
  /**
   * Most encoder-stream bytes this field section may generate (e.g. the encoder stream's
   * available flow-control credit: §2.1.3, an encoder SHOULD NOT write an instruction without
   * credit for all of it). Lines that do not fit are sent without inserting. Default unlimited.
   */
  encoderStreamBudget?: number;
}

/** An encoded field section awaiting its Section Acknowledgment. */
interface OutstandingSection {
  /** Required Insert Count. */
  ric: number;
  /** Absolute indices referenced (each holds one reference count). */
  refs: number[];
}

function defaultIsSensitive(name: string, value: string): boolean {
  return (
    name === "authorization" || name === "proxy-authorization" || (name === "cookie" && value.length < 20)
  );
}

// Upper bound of the bytes of an insert instruction besides name and value (two integers).
const INSERT_OVERHEAD = 20;

export class QpackEncoder {
  /** The encoder's copy of the dynamic table. */
  readonly table = new EncoderDynamicTable();

  private readonly ourMaxCapacity: number;
  private readonly huffman: boolean;
  private readonly isSensitive: (name: string, value: string) => boolean;
  private readonly shouldIndex: (name: string, value: string) => boolean;
  private readonly drainingFraction: number;
  private readonly maxUnacked: number;

  private settingsApplied = false;
  /** Peer's SETTINGS_QPACK_MAX_TABLE_CAPACITY: defines MaxEntries (§4.5.1.1). */
  private peerMaxCapacity = 0;
  private peerBlockedStreams = 0;
  private maxEntries = 0;

  /** Unacknowledged sections with dynamic references, per stream, oldest first. */
  private readonly sections = new Map<number, OutstandingSection[]>();
  private unackedCount = 0;

  private readonly enc = new QpackWriter(256);
  private readonly lines = new QpackWriter(256);
  private readonly prefix = new QpackWriter(16);
  private readonly decoderReader = new QpackReader(QpackErrorCode.DECODER_STREAM_ERROR, () =>
    decoderStreamError("unexpected string"),
  );
  // A partial decoder instruction (at most a few bytes).
  private partial = new Uint8Array(0);

  constructor(options: QpackEncoderOptions = {}) {
    const cap = options.maxTableCapacity ?? 4096;
    if (!Number.isSafeInteger(cap) || cap < 0) throw new QuicUsageError(`bad maxTableCapacity ${cap}`);
    this.ourMaxCapacity = cap;
    this.huffman = options.huffman ?? true;
    this.isSensitive = options.isSensitive ?? defaultIsSensitive;
    this.shouldIndex = options.shouldIndex ?? (() => true);
    this.drainingFraction = options.drainingFraction ?? 1 / 8;
    this.maxUnacked = options.maxUnacknowledgedSections ?? 1000;
  }

  /** Known Received Count (§2.1.4). */
  get knownReceivedCount(): number {
    return this.table.knownReceivedCount;
  }

  /** Number of streams that could currently be blocked at the decoder (§2.1.2). */
  get blockingStreamCount(): number {
    return this.countBlockingStreams(-1);
  }

  /** Number of field sections with dynamic references not yet acknowledged. */
  get unacknowledgedSectionCount(): number {
    return this.unackedCount;
  }

  /**
   * Applies the peer's QPACK settings (once, from its SETTINGS frame). With a non-zero maximum
   * capacity, sets the dynamic table capacity to min(ours, peer's) and queues Set Dynamic Table
   * Capacity (§4.3.1) on the encoder stream.
   */
  applyPeerSettings(settings: QpackPeerSettings): void {
    if (this.settingsApplied) throw new QuicUsageError("QPACK peer settings already applied");
    const { maxTableCapacity, blockedStreams } = settings;
    if (!Number.isSafeInteger(maxTableCapacity) || maxTableCapacity < 0) {
      throw new QuicUsageError(`bad peer maxTableCapacity ${maxTableCapacity}`);
    }
    if (!Number.isSafeInteger(blockedStreams) || blockedStreams < 0) {
      throw new QuicUsageError(`bad peer blockedStreams ${blockedStreams}`);
    }
    this.settingsApplied = true;
    this.peerMaxCapacity = maxTableCapacity;
    this.peerBlockedStreams = blockedStreams;
    this.maxEntries = Math.floor(maxTableCapacity / 32);
    const capacity = Math.min(this.ourMaxCapacity, maxTableCapacity);
    if (capacity > 0) this.setCapacity(capacity);
  }

  /**
   * Changes the dynamic table capacity and queues Set Dynamic Table Capacity (§4.3.1). It MUST
   * NOT exceed the peer's maximum, and MUST NOT evict entries that are not evictable (§3.2.2).
   */
  setCapacity(capacity: number): void {
    if (!Number.isSafeInteger(capacity) || capacity < 0 || capacity > this.peerMaxCapacity) {
      throw new QuicUsageError(`capacity ${capacity} exceeds the peer's maximum ${this.peerMaxCapacity}`);
    }
    if (capacity === this.table.capacity) return;
    if (!this.table.canEvictTo(capacity)) {
      throw new QuicUsageError("reducing the capacity would evict entries that are not evictable");
    }
    this.enc.writeInt(0x20, 5, capacity);
    this.table.setCapacity(capacity);
  }

  /**
   * Inserts an entry explicitly (a speculative insert, §2.1: an encoder MAY insert any entry),
   * choosing Insert with Name Reference (static, else dynamic) or Insert with Literal Name.
   * Returns its absolute index. Throws {@link QuicUsageError} if it cannot be inserted now.
   */
  insert(name: string, value: string): number {
    if (!isByteString(name) || !isByteString(value)) throw new QuicUsageError("field strings must be bytes");
    if (!this.table.canInsert(name.length + value.length + ENTRY_OVERHEAD)) {
      throw new QuicUsageError("entry does not fit in the dynamic table");
    }
    return this.emitInsert(name, value);
  }

  /**
   * Duplicates the live entry `abs` (§4.3.4). Returns the new absolute index. Throws
   * {@link QuicUsageError} if it cannot be inserted now.
   */
  duplicate(abs: number): number {
    const table = this.table;
    if (!table.has(abs)) throw new QuicUsageError(`no dynamic table entry ${abs}`);
    if (!table.canInsert(table.entrySize(abs)))
      throw new QuicUsageError("entry does not fit in the dynamic table");
    return this.emitDuplicate(abs);
  }

  /** Encoder-stream bytes queued so far (empty when none); the queue is emptied. */
  takeEncoderStreamData(): Uint8Array {
    return this.enc.take();
  }

  // -------------------------------------------------------------------------------------------
  // Field sections

  /**
   * Encodes one field section (RFC 9204 §4.5) for `streamId`, in order (§2.1: an encoder MUST
   * emit field representations in the order of the input). Names and values are byte strings
   * (char codes ≤ 0xff; {@link QuicUsageError} otherwise). Instructions it needs on the encoder
   * stream are queued for {@link takeEncoderStreamData}.
   */
  encodeFieldSection(
    streamId: number,
    fields: readonly QpackFieldInput[],
    options: QpackEncodeOptions = {},
  ): Uint8Array {
    if (!Number.isSafeInteger(streamId) || streamId < 0)
      throw new QuicUsageError(`bad stream ID ${streamId}`);
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      if (!isByteString(f[0]) || !isByteString(f[1])) {
        throw new QuicUsageError(`field ${i} has a char above 0xff (encode text as UTF-8 bytes first)`);
      }
    }
    const table = this.table;
    const lines = this.lines;
    const huffman = this.huffman;
    lines.reset();

    // §3.2.3: with a maximum capacity of 0 (capacity stays 0) the encoder MUST NOT insert entries
    // nor send encoder instructions.
    const useDynamic = table.capacity > 0 && this.unackedCount < this.maxUnacked;
    const base = table.insertCount;
    const krc = table.knownReceivedCount;
    let ric = 0;
    const refs: number[] = [];
    // §2.1.2: the encoder MUST limit the streams that could become blocked to
    // SETTINGS_QPACK_BLOCKED_STREAMS at all times.
    const mayBlock =
      useDynamic &&
      (this.isStreamBlocking(streamId) || this.countBlockingStreams(streamId) < this.peerBlockedStreams);
    const headroom = Math.floor(table.capacity * this.drainingFraction);
    let draining = useDynamic ? table.drainingIndex(headroom) : 0;
    let budget = options.encoderStreamBudget ?? Number.POSITIVE_INFINITY;

    const canRef = (abs: number): boolean => abs >= draining && (abs < krc || mayBlock);
    const useRef = (abs: number): void => {
      refs.push(abs);
      table.addRef(abs);
      if (abs >= ric) ric = abs + 1;
    };

    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      const name = f[0];
      const value = f[1];

      if (f[2] === true || this.isSensitive(name, value)) {
        // Never-indexed literal (N bit), name by reference when possible.
        const s = staticFindName(name);
        if (s >= 0) {
          lines.writeInt(0x70, 4, s); // 01 N=1 T=1
          lines.writeString(0, 8, value, huffman);
          continue;
        }
        const d = useDynamic ? table.findName(name) : -1;
        if (d >= 0 && canRef(d)) {
          useRef(d);
          this.writeDynamicNameLiteral(d, base, value, true);
          continue;
        }
        lines.writeString(0x30, 4, name, huffman); // 001 N=1
        lines.writeString(0, 8, value, huffman);
        continue;
      }

      const s = staticFindExact(name, value);
      if (s >= 0) {
        lines.writeInt(0xc0, 6, s); // 1 T=1: indexed static
        continue;
      }

      if (useDynamic) {
        const size = name.length + value.length + ENTRY_OVERHEAD;
        const d = table.findExact(name, value);
        if (d >= 0) {
          if (canRef(d)) {
            useRef(d);
            this.writeIndexed(d, base);
            continue;
          }
          // Draining entry: re-insert it with a Duplicate (§2.1.1.1) and reference the copy, now
          // if blocking is allowed, else once acknowledged.
          if (d < draining && budget >= 10 && table.canInsert(size)) {
            const before = this.enc.pos;
            const nd = this.emitDuplicate(d);
            budget -= this.enc.pos - before;
            draining = table.drainingIndex(headroom);
            if (canRef(nd)) {
              useRef(nd);
              this.writeIndexed(nd, base);
              continue;
            }
          }
        } else if (
          size <= (table.capacity * 3) / 4 &&
          this.shouldIndex(name, value) &&
          size + INSERT_OVERHEAD <= budget &&
          table.canInsert(size)
        ) {
          const before = this.enc.pos;
          const nd = this.emitInsert(name, value);
          budget -= this.enc.pos - before;
          draining = table.drainingIndex(headroom);
          if (canRef(nd)) {
            useRef(nd);
            this.writeIndexed(nd, base);
            continue;
          }
        }
      }

      // Literal, with a name reference when possible.
      const sn = staticFindName(name);
      if (sn >= 0) {
        lines.writeInt(0x50, 4, sn); // 01 N=0 T=1
        lines.writeString(0, 8, value, huffman);
        continue;
      }
      const dn = useDynamic ? table.findName(name) : -1;
      if (dn >= 0 && canRef(dn)) {
        useRef(dn);
        this.writeDynamicNameLiteral(dn, base, value, false);
        continue;
      }
      lines.writeString(0x20, 4, name, huffman); // 001 N=0
      lines.writeString(0, 8, value, huffman);
    }

    // §4.5.1: the prefix.
    const prefix = this.prefix;
    prefix.reset();
    if (ric === 0) {
      prefix.writeInt(0, 8, 0);
      prefix.writeInt(0, 7, 0);
    } else {
      // §4.5.1.1: EncInsertCount = (ReqInsertCount mod (2 * MaxEntries)) + 1.
      prefix.writeInt(0, 8, (ric % (2 * this.maxEntries)) + 1);
      // §4.5.1.2: Sign 0 and Base − RIC, or Sign 1 and RIC − Base − 1.
      if (base >= ric) prefix.writeInt(0x00, 7, base - ric);
      else prefix.writeInt(0x80, 7, ric - base - 1);
      let list = this.sections.get(streamId);
      if (list === undefined) {
        list = [];
        this.sections.set(streamId, list);
      }
      list.push({ ric, refs });
      this.unackedCount++;
    }
    const out = new Uint8Array(prefix.pos + lines.pos);
    out.set(prefix.view(), 0);
    out.set(lines.view(), prefix.pos);
    return out;
  }

  /** Indexed field line for dynamic entry `abs`: relative (§4.5.2) or post-Base (§4.5.3). */
  private writeIndexed(abs: number, base: number): void {
    if (abs < base)
      this.lines.writeInt(0x80, 6, base - 1 - abs); // 1 T=0
    else this.lines.writeInt(0x10, 4, abs - base); // 0001
  }

  /** Literal with a dynamic name reference: relative (§4.5.4) or post-Base (§4.5.5). */
  private writeDynamicNameLiteral(abs: number, base: number, value: string, neverIndex: boolean): void {
    if (abs < base)
      this.lines.writeInt(neverIndex ? 0x60 : 0x40, 4, base - 1 - abs); // 01 N T=0
    else this.lines.writeInt(neverIndex ? 0x08 : 0x00, 3, abs - base); // 0000 N
    this.lines.writeString(0, 8, value, this.huffman);
  }

  /** Queues an insert instruction (§4.3.2 / §4.3.3) and inserts the entry. */
  private emitInsert(name: string, value: string): number {
    const enc = this.enc;
    const s = staticFindName(name);
    if (s >= 0) {
      enc.writeInt(0xc0, 6, s); // 1 T=1
    } else {
      const d = this.table.findName(name);
      if (d >= 0) {
        // References on the encoder stream never block eviction (§2.1.1).
        enc.writeInt(0x80, 6, this.table.insertCount - 1 - d); // 1 T=0
      } else {
        enc.writeString(0x40, 6, name, this.huffman); // 01 H NameLen(5+)
      }
    }
    enc.writeString(0, 8, value, this.huffman);
    return this.table.insert(name, value);
  }

  /** Queues a Duplicate (§4.3.4) of `abs` and inserts the copy. */
  private emitDuplicate(abs: number): number {
    const table = this.table;
    this.enc.writeInt(0x00, 5, table.insertCount - 1 - abs);
    return table.insert(table.name(abs), table.value(abs));
  }

  /** True if `streamId` has an unacknowledged section that may block (RIC > Known Received Count). */
  private isStreamBlocking(streamId: number): boolean {
    const list = this.sections.get(streamId);
    if (list === undefined) return false;
    const krc = this.table.knownReceivedCount;
    for (const s of list) if (s.ric > krc) return true;
    return false;
  }

  /** Streams other than `except` that could be blocked at the decoder. */
  private countBlockingStreams(except: number): number {
    const krc = this.table.knownReceivedCount;
    let n = 0;
    for (const [id, list] of this.sections) {
      if (id === except) continue;
      for (const s of list) {
        if (s.ric > krc) {
          n++;
          break;
        }
      }
    }
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // Decoder stream

  /**
   * Consumes decoder-stream bytes (any chunking). Throws {@link QpackError}
   * QPACK_DECODER_STREAM_ERROR for an invalid instruction.
   */
  receiveDecoderStream(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.partial.length > 0) {
      buf = new Uint8Array(this.partial.length + chunk.length);
      buf.set(this.partial, 0);
      buf.set(chunk, this.partial.length);
    }
    const r = this.decoderReader;
    r.reset(buf, 0, buf.length);
    while (r.pos < r.end) {
      const at = r.pos;
      if (!this.parseDecoderInstruction(r)) {
        r.pos = at;
        break;
      }
    }
    this.partial = r.pos < buf.length ? buf.slice(r.pos) : new Uint8Array(0);
  }

  /** One decoder instruction (§4.4); false if incomplete. */
  private parseDecoderInstruction(r: QpackReader): boolean {
    const b = r.buf[r.pos];
    const table = this.table;
    if (b & 0x80) {
      // §4.4.1 Section Acknowledgment: 1 StreamID(7+)
      const streamId = r.readInt(7);
      if (streamId === INCOMPLETE) return false;
      const list = this.sections.get(streamId);
      // An acknowledgment for a stream with no unacknowledged section with a non-zero Required
      // Insert Count MUST be QPACK_DECODER_STREAM_ERROR.
      if (list === undefined || list.length === 0) {
        throw decoderStreamError(`Section Acknowledgment for stream ${streamId} without pending section`);
      }
      const section = list.shift()!;
      if (list.length === 0) this.sections.delete(streamId);
      this.release(section);
      // §2.1.4: the Known Received Count becomes at least the section's Required Insert Count.
      if (section.ric > table.knownReceivedCount) table.knownReceivedCount = section.ric;
    } else if (b & 0x40) {
      // §4.4.2 Stream Cancellation: 01 StreamID(6+). All references on the stream are released.
      const streamId = r.readInt(6);
      if (streamId === INCOMPLETE) return false;
      const list = this.sections.get(streamId);
      if (list !== undefined) {
        this.sections.delete(streamId);
        for (const section of list) this.release(section);
      }
    } else {
      // §4.4.3 Insert Count Increment: 00 Increment(6+)
      const increment = r.readInt(6);
      if (increment === INCOMPLETE) return false;
      // An increment of zero, or beyond what the encoder has sent, MUST be
      // QPACK_DECODER_STREAM_ERROR.
      if (increment === 0) throw decoderStreamError("Insert Count Increment of 0");
      if (increment > table.insertCount - table.knownReceivedCount) {
        throw decoderStreamError(`Insert Count Increment ${increment} beyond the Insert Count`);
      }
      table.knownReceivedCount += increment;
    }
    return true;
  }

  private release(section: OutstandingSection): void {
    this.unackedCount--;
    for (const abs of section.refs) this.table.releaseRef(abs);
  }
}
