/**
 * Stream state machines of RFC 9000 §3: the sending part (§3.1) and the receiving part (§3.2),
 * the frame rules of §3.5 and §19.4/§19.5/§19.8/§19.10/§19.13, and the final-size rules of §4.5.
 *
 * Errors: a frame from the peer that is not allowed throws {@link QuicError} (STREAM_STATE_ERROR,
 * FINAL_SIZE_ERROR); a local action that is not allowed (a bug of ours or the application's)
 * throws {@link QuicUsageError}. Frames that may legitimately arrive late in any state (§3.5: "A
 * receiver could receive any of these three frames in any state, due to the possibility of
 * delayed delivery") are accepted and reported as "ignore" through the return values.
 */
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import { FrameType } from "../frames.ts";
import { checkFinalSize, checkResetFinalSize } from "./final-size.ts";
import { hasRecvPart, hasSendPart, isLocallyInitiated } from "./stream-id.ts";

/** States of the sending part (§3.1, Figure 2). */
export type SendState = "ready" | "send" | "data_sent" | "data_recvd" | "reset_sent" | "reset_recvd";

/** States of the receiving part (§3.2, Figure 3). */
export type RecvState = "recv" | "size_known" | "data_recvd" | "data_read" | "reset_recvd" | "reset_read";

export class SendStreamState {
  private _state: SendState = "ready";

  get state(): SendState {
    return this._state;
  }

  /** "Data Recvd" or "Reset Recvd". */
  get isTerminal(): boolean {
    return this._state === "data_recvd" || this._state === "reset_recvd";
  }

  /** New data may be written and sent ("Ready" or "Send"). */
  get canSendData(): boolean {
    return this._state === "ready" || this._state === "send";
  }

  /**
   * A STREAM frame was sent (`fin`: with the FIN bit). Ready → Send, → Data Sent with FIN;
   * retransmissions in Data Sent keep the state.
   *
   * @throws QuicUsageError in Reset Sent or a terminal state (§3.5: "A sender MUST NOT send a
   *   STREAM or STREAM_DATA_BLOCKED frame for a stream in the 'Reset Sent' state or any terminal
   *   state").
   */
  onStreamSent(fin: boolean): void {
    switch (this._state) {
      case "ready":
      case "send":
        this._state = fin ? "data_sent" : "send";
        return;
      case "data_sent":
        return;
      default:
        throw new QuicUsageError(`STREAM sent in state ${this._state}`);
    }
  }

  /**
   * A STREAM_DATA_BLOCKED frame was sent: Ready → Send.
   *
   * @throws QuicUsageError in Reset Sent or a terminal state (§3.5).
   */
  onStreamDataBlockedSent(): void {
    switch (this._state) {
      case "ready":
        this._state = "send";
        return;
      case "send":
      case "data_sent":
        return;
      default:
        throw new QuicUsageError(`STREAM_DATA_BLOCKED sent in state ${this._state}`);
    }
  }

  /**
   * A RESET_STREAM frame was sent (application abort, or answer to STOP_SENDING): Ready, Send or
   * Data Sent → Reset Sent; a retransmission in Reset Sent keeps it.
   *
   * @throws QuicUsageError in a terminal state (§3.5: "A sender MUST NOT send any of these frames
   *   from a terminal state").
   */
  onResetSent(): void {
    switch (this._state) {
      case "ready":
      case "send":
      case "data_sent":
        this._state = "reset_sent";
        return;
      case "reset_sent":
        return;
      default:
        throw new QuicUsageError(`RESET_STREAM sent in state ${this._state}`);
    }
  }

  /**
   * Every byte and the FIN were acknowledged: Data Sent → Data Recvd. Ignored once reset (the
   * reset wins). @throws QuicUsageError before the FIN was sent.
   */
  onAllDataAcked(): void {
    switch (this._state) {
      case "data_sent":
        this._state = "data_recvd";
        return;
      case "data_recvd":
      case "reset_sent":
      case "reset_recvd":
        return;
      default:
        throw new QuicUsageError(`all data acknowledged in state ${this._state}`);
    }
  }

  /** The RESET_STREAM was acknowledged: Reset Sent → Reset Recvd. */
  onResetAcked(): void {
    if (this._state === "reset_sent") this._state = "reset_recvd";
    else if (this._state !== "reset_recvd") {
      throw new QuicUsageError(`RESET_STREAM acknowledged in state ${this._state}`);
    }
  }

  /**
   * MAX_STREAM_DATA from the peer (valid in any state, §3.5). Returns whether to apply it: from
   * Data Sent on, the limit no longer matters (§3.1: "can safely ignore").
   */
  onMaxStreamData(): boolean {
    return this._state === "ready" || this._state === "send";
  }

  /**
   * STOP_SENDING from the peer (valid in any state, §3.5). Returns whether a RESET_STREAM must be
   * sent now: §3.5 "MUST send a RESET_STREAM frame if the stream is in the 'Ready' or 'Send'
   * state"; in Data Sent it MAY be deferred, we reset at once (the data is no longer wanted).
   */
  onStopSending(): boolean {
    return this._state === "ready" || this._state === "send" || this._state === "data_sent";
  }
}

export class RecvStreamState {
  private _state: RecvState = "recv";
  private _finalSize = -1;
  private _highest = 0;

  get state(): RecvState {
    return this._state;
  }

  /** Final size once known (§4.5), −1 before. */
  get finalSize(): number {
    return this._finalSize;
  }

  /** Largest offset + length received. */
  get highestOffset(): number {
    return this._highest;
  }

  /** "Data Read" or "Reset Read". */
  get isTerminal(): boolean {
    return this._state === "data_read" || this._state === "reset_read";
  }

  /** §3.2: "The receiver only sends MAX_STREAM_DATA frames in the 'Recv' state." */
  get canSendMaxStreamData(): boolean {
    return this._state === "recv";
  }

  /**
   * §3.5: STOP_SENDING MAY be sent in any state but Reset Recvd / Reset Read; it is only useful
   * in Recv and Size Known, the states this returns true for.
   */
  get canSendStopSending(): boolean {
    return this._state === "recv" || this._state === "size_known";
  }

  /**
   * A STREAM frame `[offset, offset + length)` arrived (any state: it may be late). Recv → Size
   * Known on FIN. Returns whether the data is wanted (Recv or Size Known): store it then, and
   * call {@link onAllDataReceived} once the buffer holds everything.
   *
   * @throws QuicError FINAL_SIZE_ERROR (§4.5): data beyond a known final size, a FIN changing it
   *   or below data received; checked in every state ("even after a stream is closed").
   */
  onStreamFrame(offset: number, length: number, fin: boolean, frameType: number = FrameType.STREAM): boolean {
    const end = offset + length;
    checkFinalSize(this._finalSize, this._highest, end, fin, frameType);
    if (end > this._highest) this._highest = end;
    if (fin) this._finalSize = end;
    if (this._state === "recv") {
      if (fin) this._state = "size_known";
      return true;
    }
    return this._state === "size_known";
  }

  /**
   * A RESET_STREAM frame arrived. Recv, Size Known → Reset Recvd; also Data Recvd → Reset Recvd
   * (the optional transition of Figure 3: we deliver the reset). Returns whether the reset is
   * new, i.e. the application must be told and unread data dropped.
   *
   * @throws QuicError FINAL_SIZE_ERROR (§4.5) when `finalSize` differs from a known final size
   *   or is below the data received.
   */
  onResetStream(finalSize: number, frameType: number = FrameType.RESET_STREAM): boolean {
    checkResetFinalSize(this._finalSize, this._highest, finalSize, frameType);
    this._finalSize = finalSize;
    if (finalSize > this._highest) this._highest = finalSize;
    switch (this._state) {
      case "recv":
      case "size_known":
      case "data_recvd":
        this._state = "reset_recvd";
        return true;
      default:
        return false;
    }
  }

  /**
   * All data up to the final size is buffered: Size Known → Data Recvd. No-op in Data Recvd and
   * later or after a reset.
   *
   * @throws QuicUsageError in Recv (the final size is unknown).
   */
  onAllDataReceived(): void {
    if (this._state === "size_known") this._state = "data_recvd";
    else if (this._state === "recv") throw new QuicUsageError("all data received before the final size");
  }

  /** The application read everything: Data Recvd → Data Read. @throws QuicUsageError otherwise. */
  onAllDataRead(): void {
    if (this._state === "data_recvd") this._state = "data_read";
    else if (this._state !== "data_read") {
      throw new QuicUsageError(`all data read in state ${this._state}`);
    }
  }

  /** The application was told of the reset: Reset Recvd → Reset Read. @throws QuicUsageError otherwise. */
  onResetRead(): void {
    if (this._state === "reset_recvd") this._state = "reset_read";
    else if (this._state !== "reset_read") {
      throw new QuicUsageError(`reset read in state ${this._state}`);
    }
  }
}

/**
 * Checks a stream frame from the peer against the stream's type and existence, before the
 * stream is looked up or created. `locallyOpened` matters only for streams we initiate: whether we
 * opened that ID already.
 *
 * @throws QuicError STREAM_STATE_ERROR:
 *   - STREAM (§19.8), RESET_STREAM (§19.4) or STREAM_DATA_BLOCKED (§19.13) for a send-only stream
 *     (our unidirectional stream);
 *   - STOP_SENDING (§19.5) or MAX_STREAM_DATA (§19.10) for a receive-only stream (the peer's
 *     unidirectional stream);
 *   - any of them for a locally initiated stream not yet created (§19.5, §19.8, §19.10 MUST; for
 *     RESET_STREAM and STREAM_DATA_BLOCKED, which the RFC does not list, the same reasoning
 *     applies: the peer cannot know of such a stream).
 */
export function checkPeerStreamFrame(
  frameType: number,
  streamId: number,
  isServer: boolean,
  locallyOpened: boolean,
): void {
  if (isSenderFrame(frameType)) {
    if (!hasRecvPart(streamId, isServer)) throw streamStateError(frameType, streamId, "send-only stream");
  } else if (isReceiverFrame(frameType)) {
    if (!hasSendPart(streamId, isServer)) throw streamStateError(frameType, streamId, "receive-only stream");
  } else {
    throw new QuicUsageError(`frame type 0x${frameType.toString(16)} is not a stream frame`);
  }
  if (!locallyOpened && isLocallyInitiated(streamId, isServer)) {
    throw streamStateError(frameType, streamId, "locally initiated stream not yet created");
  }
}

/** STREAM, RESET_STREAM(_AT), STREAM_DATA_BLOCKED: frames of the sending peer, for our receiving part. */
function isSenderFrame(t: number): boolean {
  return (
    (t >= 0x08 && t <= 0x0f) ||
    t === FrameType.RESET_STREAM ||
    t === FrameType.RESET_STREAM_AT ||
    t === FrameType.STREAM_DATA_BLOCKED
  );
}

/** STOP_SENDING, MAX_STREAM_DATA: frames of the receiving peer, for our sending part. */
function isReceiverFrame(t: number): boolean {
  return t === FrameType.STOP_SENDING || t === FrameType.MAX_STREAM_DATA;
}

function streamStateError(frameType: number, streamId: number, what: string): QuicError {
  return new QuicError(TransportErrorCode.STREAM_STATE_ERROR, `stream ${streamId}: ${what}`, frameType);
}

/**
 * Both parts of one stream as seen by this endpoint: a unidirectional stream has only one. The
 * `onRecv*` methods take the peer's frames and throw STREAM_STATE_ERROR for a frame the stream's
 * direction does not allow (§19.4, §19.5, §19.8, §19.10, §19.13).
 */
export class StreamState {
  /** Null for a receive-only stream. */
  readonly send: SendStreamState | null;
  /** Null for a send-only stream. */
  readonly recv: RecvStreamState | null;

  constructor(
    readonly streamId: number,
    isServer: boolean,
  ) {
    this.send = hasSendPart(streamId, isServer) ? new SendStreamState() : null;
    this.recv = hasRecvPart(streamId, isServer) ? new RecvStreamState() : null;
  }

  /** STREAM (§19.8). See {@link RecvStreamState.onStreamFrame}. */
  onRecvStream(offset: number, length: number, fin: boolean, frameType: number = FrameType.STREAM): boolean {
    return this.recvPart(frameType).onStreamFrame(offset, length, fin, frameType);
  }

  /** RESET_STREAM (§19.4). See {@link RecvStreamState.onResetStream}. */
  onRecvResetStream(finalSize: number): boolean {
    return this.recvPart(FrameType.RESET_STREAM).onResetStream(finalSize);
  }

  /** STREAM_DATA_BLOCKED (§19.13): informational; only the direction is checked. */
  onRecvStreamDataBlocked(): void {
    this.recvPart(FrameType.STREAM_DATA_BLOCKED);
  }

  /** STOP_SENDING (§19.5). See {@link SendStreamState.onStopSending}. */
  onRecvStopSending(): boolean {
    return this.sendPart(FrameType.STOP_SENDING).onStopSending();
  }

  /** MAX_STREAM_DATA (§19.10). See {@link SendStreamState.onMaxStreamData}. */
  onRecvMaxStreamData(): boolean {
    return this.sendPart(FrameType.MAX_STREAM_DATA).onMaxStreamData();
  }

  /** Both existing parts are in terminal states: the stream can be released (§3.4 "closed"). */
  get isClosed(): boolean {
    return (this.send === null || this.send.isTerminal) && (this.recv === null || this.recv.isTerminal);
  }

  private recvPart(frameType: number): RecvStreamState {
    if (this.recv === null) throw streamStateError(frameType, this.streamId, "send-only stream");
    return this.recv;
  }

  private sendPart(frameType: number): SendStreamState {
    if (this.send === null) throw streamStateError(frameType, this.streamId, "receive-only stream");
    return this.send;
  }
}
