/**
 * Stream identifiers (RFC 9000 §2.1) and stream counting for the stream limits (§4.6).
 *
 * Bit 0x01 of a stream ID is the initiator (0 client, 1 server), bit 0x02 the direction
 * (0 bidirectional, 1 unidirectional); the IDs of one type are `4·index + type`. Stream IDs are
 * numbers (see bytes.ts, "number vs bigint"); arithmetic uses `% 4` and `/ 4` so IDs above 2^32
 * are handled exactly.
 */
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";

/** The two low bits of a stream ID (§2.1 table). */
export const StreamType = {
  CLIENT_BIDI: 0,
  SERVER_BIDI: 1,
  CLIENT_UNI: 2,
  SERVER_UNI: 3,
} as const;
export type StreamType = (typeof StreamType)[keyof typeof StreamType];

/** §4.6/§19.11: a stream count cannot exceed 2^60 (the largest ID must be a varint). */
export const MAX_STREAM_COUNT = 2 ** 60;

/** The type (two low bits) of a stream ID. */
export function streamTypeOf(streamId: number): StreamType {
  return (streamId % 4) as StreamType;
}

/** The stream type opened by `server` (true) or the client, in the given direction. */
export function streamTypeFor(bidi: boolean, server: boolean): StreamType {
  return ((bidi ? 0 : 2) | (server ? 1 : 0)) as StreamType;
}

/** §2.1: client-initiated streams have even IDs. */
export function isClientInitiated(streamId: number): boolean {
  return streamId % 2 === 0;
}

/** §2.1: server-initiated streams have odd IDs. */
export function isServerInitiated(streamId: number): boolean {
  return streamId % 2 === 1;
}

/** §2.1: bit 0x02 clear. */
export function isBidirectional(streamId: number): boolean {
  return streamId % 4 < 2;
}

/** §2.1: bit 0x02 set. */
export function isUnidirectional(streamId: number): boolean {
  return streamId % 4 >= 2;
}

/** Whether the endpoint (`isServer`) opened, or would open, this stream. */
export function isLocallyInitiated(streamId: number, isServer: boolean): boolean {
  return isServerInitiated(streamId) === isServer;
}

/** Whether the endpoint has a sending part for this stream: bidirectional, or its own unidirectional. */
export function hasSendPart(streamId: number, isServer: boolean): boolean {
  return isBidirectional(streamId) || isLocallyInitiated(streamId, isServer);
}

/** Whether the endpoint has a receiving part: bidirectional, or the peer's unidirectional. */
export function hasRecvPart(streamId: number, isServer: boolean): boolean {
  return isBidirectional(streamId) || !isLocallyInitiated(streamId, isServer);
}

/** Position of the stream among the streams of its type: 0 for the first. */
export function streamIndex(streamId: number): number {
  return Math.floor(streamId / 4);
}

/** The stream ID at `index` among the streams of `type`. */
export function streamIdOf(type: StreamType, index: number): number {
  return index * 4 + type;
}

/**
 * Number of streams of its type that opening `streamId` implies (all lower-numbered streams of a
 * type are opened with it, §2.1/§3.2): the count to compare against a max_streams limit. §4.6:
 * only IDs below `max_streams · 4 + first_stream_id_of_type` can be opened, i.e. the count must be
 * ≤ max_streams.
 */
export function streamCount(streamId: number): number {
  return streamIndex(streamId) + 1;
}

/**
 * The streams this endpoint opens, of one type, against the peer's limit (initial_max_streams_*,
 * then MAX_STREAMS).
 */
export class LocalStreamIds {
  private _opened = 0;
  private _limit: number;
  /** Limit for which STREAMS_BLOCKED was last sent, −1 for none. */
  private blockedSentAt = -1;

  constructor(
    readonly type: StreamType,
    peerMaxStreams = 0,
  ) {
    this._limit = Math.min(peerMaxStreams, MAX_STREAM_COUNT);
  }

  /** Streams opened so far. */
  get opened(): number {
    return this._opened;
  }

  /** The peer's current limit (cumulative count). */
  get limit(): number {
    return this._limit;
  }

  canOpen(): boolean {
    return this._opened < this._limit;
  }

  /**
   * The ID of a new stream. §4.6: "An endpoint MUST NOT open more streams than permitted by the
   * current stream limit set by its peer": throws QuicUsageError when at the limit (check
   * {@link canOpen}; send STREAMS_BLOCKED instead).
   */
  open(): number {
    if (this._opened >= this._limit) throw new QuicUsageError("stream limit reached");
    return streamIdOf(this.type, this._opened++);
  }

  /** The next ID {@link open} would return. */
  get nextId(): number {
    return streamIdOf(this.type, this._opened);
  }

  /** Whether `streamId` (of this type) was opened already (§19.4–§19.13 "not yet created"). */
  isOpened(streamId: number): boolean {
    return streamIndex(streamId) < this._opened;
  }

  /**
   * A MAX_STREAMS frame (or the transport parameter). §19.11: "MAX_STREAMS frames that do not
   * increase the stream limit MUST be ignored." Returns whether the limit grew. The > 2^60 check
   * is the decoder's (FRAME_ENCODING_ERROR) or the transport parameters' job.
   */
  onMaxStreams(maxStreams: number): boolean {
    if (maxStreams <= this._limit) return false;
    this._limit = Math.min(maxStreams, MAX_STREAM_COUNT);
    return true;
  }

  /**
   * Whether to send STREAMS_BLOCKED: the application wants a stream, the limit is reached, and
   * none was sent yet for this limit value.
   */
  shouldSendStreamsBlocked(): boolean {
    return this._opened >= this._limit && this.blockedSentAt !== this._limit;
  }

  /** STREAMS_BLOCKED was sent; returns the limit to put in it (§19.14). */
  onStreamsBlockedSent(): number {
    this.blockedSentAt = this._limit;
    return this._limit;
  }

  /** The packet with STREAMS_BLOCKED for `limit` was lost: send it again if still blocked there. */
  onStreamsBlockedLost(limit: number): void {
    if (this.blockedSentAt === limit) this.blockedSentAt = -1;
  }
}

/**
 * The streams the peer opens, of one type, against our limit. The limit grows as streams close
 * so that up to `window` of them can be open at once.
 */
export class RemoteStreamIds {
  private _opened = 0;
  private _closed = 0;
  private _limit: number;

  /**
   * @param type a peer-initiated stream type.
   * @param window streams the peer may have open at once: the initial max_streams transport
   *   parameter we sent, and the credit kept up as streams close.
   */
  constructor(
    readonly type: StreamType,
    private _window: number,
  ) {
    if (!(_window >= 0 && _window <= MAX_STREAM_COUNT)) throw new QuicUsageError("bad stream window");
    this._limit = _window;
  }

  /** Concurrent peer-initiated streams allowed. */
  get window(): number {
    return this._window;
  }

  /**
   * Changes how many peer-initiated streams may be open at once. A larger window is announced with
   * the next MAX_STREAMS; a smaller one takes effect as streams close (a limit already granted
   * cannot be taken back, RFC 9000 §4.6).
   */
  setWindow(window: number): void {
    if (!(window >= 0 && window <= MAX_STREAM_COUNT)) throw new QuicUsageError("bad stream window");
    this._window = window;
  }

  /** Streams opened by the peer so far (the highest index + 1). */
  get opened(): number {
    return this._opened;
  }

  /** Streams closed (released) so far. */
  get closed(): number {
    return this._closed;
  }

  /** The limit we advertised (cumulative count). */
  get limit(): number {
    return this._limit;
  }

  isOpened(streamId: number): boolean {
    return streamIndex(streamId) < this._opened;
  }

  /**
   * A frame from the peer names `streamId` (of this type). Returns how many streams it opens:
   * 0 when already open, else the new ones are `streamIdOf(type, opened − n … opened − 1)`
   * (§3.2: "all streams of the same type with lower-numbered stream IDs MUST be created").
   *
   * @throws QuicError STREAM_LIMIT_ERROR beyond our limit (§4.6 MUST).
   */
  onPeerStream(streamId: number, frameType = 0): number {
    const count = streamIndex(streamId) + 1;
    if (count <= this._opened) return 0;
    if (count > this._limit) {
      throw new QuicError(
        TransportErrorCode.STREAM_LIMIT_ERROR,
        `stream ${streamId} exceeds limit ${this._limit}`,
        frameType,
      );
    }
    const n = count - this._opened;
    this._opened = count;
    return n;
  }

  /** A peer-initiated stream reached its terminal state and was released. */
  onStreamClosed(): void {
    if (this._closed >= this._opened) throw new QuicUsageError("more streams closed than opened");
    this._closed++;
  }

  /**
   * The new limit to advertise in MAX_STREAMS, or −1 when not worth it yet: sent once a quarter
   * of the window (at least one stream) can be granted. Records it as advertised.
   */
  takeMaxStreamsUpdate(): number {
    const target = Math.min(this._closed + this._window, MAX_STREAM_COUNT);
    if (target - this._limit < Math.max(1, Math.floor(this._window / 4))) return -1;
    this._limit = target;
    return target;
  }
}
