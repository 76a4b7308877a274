/**
 * One QUIC stream as the connection keeps it: the send part (buffer, state, flow control) and the
 * receive part (reassembly, state, flow control) that its direction has (RFC 9000 §2, §3, §4).
 */
import { ReceiveFlowControl, SendFlowControl } from "../streams/flow-control.ts";
import { ReceiveBuffer } from "../streams/receive-buffer.ts";
import { SendBuffer } from "../streams/send-buffer.ts";
import { StreamState } from "../streams/stream-state.ts";

export class SendPart {
  readonly buffer = new SendBuffer();
  readonly flow: SendFlowControl;
  /** Application error code of a RESET_STREAM we must send (or have sent). */
  resetCode: bigint | undefined;
  resetPending = false;
  /** STOP_SENDING error code received from the peer. */
  stopCode: bigint | undefined;
  /** The peer was told everything (data and FIN acknowledged, or reset acknowledged). */
  done = false;
  /**
   * RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset): its error code, whether the frame
   * must be sent (again), and whether the peer acknowledged the one with the smallest Reliable
   * Size (`buffer.reliableSize`). Unlike `resetCode`, data below the Reliable Size still flows.
   */
  resetAtCode: bigint | undefined;
  resetAtPending = false;
  resetAtAcked = false;

  constructor(peerLimit: number) {
    this.flow = new SendFlowControl(peerLimit);
  }
}

export class RecvPart {
  readonly buffer = new ReceiveBuffer();
  readonly flow: ReceiveFlowControl;
  /** Application error code of a STOP_SENDING we must send. */
  stopCode: bigint | undefined;
  stopPending = false;
  /** RESET_STREAM error code received from the peer. */
  resetCode: bigint | undefined;
  /**
   * A RESET_STREAM_AT from the peer (smallest Reliable Size so far): the reset takes effect once
   * the application has read the bytes below the Reliable Size.
   */
  resetAt: { code: bigint; finalSize: number; reliableSize: number } | undefined;
  maxStreamDataPending = false;

  constructor(window: number, maxWindow: number) {
    this.flow = new ReceiveFlowControl({ window, maxWindow });
  }
}

export class Stream {
  readonly state: StreamState;
  readonly send: SendPart | null;
  readonly recv: RecvPart | null;
  /** RFC 9218 urgency (0–7) and incremental flag, fed to the scheduler. */
  urgency = 3;
  incremental = true;

  constructor(
    readonly id: number,
    isServer: boolean,
    sendLimit: number,
    recvWindow: number,
    maxRecvWindow: number,
  ) {
    this.state = new StreamState(id, isServer);
    this.send = this.state.send ? new SendPart(sendLimit) : null;
    this.recv = this.state.recv ? new RecvPart(recvWindow, maxRecvWindow) : null;
  }
}
