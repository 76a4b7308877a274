import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import { FrameType } from "../frames.ts";
import {
  checkPeerStreamFrame,
  type RecvState,
  RecvStreamState,
  type SendState,
  SendStreamState,
  StreamState,
} from "./stream-state.ts";

const { STREAM_STATE_ERROR, FINAL_SIZE_ERROR } = TransportErrorCode;

function errorOf(fn: () => unknown): QuicError {
  try {
    fn();
  } catch (e) {
    if (e instanceof QuicError) return e;
    throw e;
  }
  throw new Error("did not throw");
}

// ---------------------------------------------------------------------------------------------
// Sending part: exhaustive table of local events × states (§3.1, §3.5).
// ---------------------------------------------------------------------------------------------

type SendEvent = "stream" | "stream_fin" | "blocked" | "reset" | "all_acked" | "reset_acked";

function applySend(s: SendStreamState, e: SendEvent): void {
  if (e === "stream") s.onStreamSent(false);
  else if (e === "stream_fin") s.onStreamSent(true);
  else if (e === "blocked") s.onStreamDataBlockedSent();
  else if (e === "reset") s.onResetSent();
  else if (e === "all_acked") s.onAllDataAcked();
  else s.onResetAcked();
}

/** Events leading from Ready to each state. */
const sendPaths: Record<SendState, SendEvent[]> = {
  ready: [],
  send: ["stream"],
  data_sent: ["stream_fin"],
  data_recvd: ["stream_fin", "all_acked"],
  reset_sent: ["reset"],
  reset_recvd: ["reset", "reset_acked"],
};

/** Expected state after an event, or "usage" for a local action that is not allowed. */
const sendTable: Record<SendState, Record<SendEvent, SendState | "usage">> = {
  ready: {
    stream: "send",
    stream_fin: "data_sent",
    blocked: "send",
    reset: "reset_sent",
    all_acked: "usage",
    reset_acked: "usage",
  },
  send: {
    stream: "send",
    stream_fin: "data_sent",
    blocked: "send",
    reset: "reset_sent",
    all_acked: "usage",
    reset_acked: "usage",
  },
  data_sent: {
    stream: "data_sent",
    stream_fin: "data_sent",
    blocked: "data_sent",
    reset: "reset_sent",
    all_acked: "data_recvd",
    reset_acked: "usage",
  },
  data_recvd: {
    stream: "usage",
    stream_fin: "usage",
    blocked: "usage",
    reset: "usage",
    all_acked: "data_recvd",
    reset_acked: "usage",
  },
  reset_sent: {
    stream: "usage",
    stream_fin: "usage",
    blocked: "usage",
    reset: "reset_sent",
    all_acked: "reset_sent",
    reset_acked: "reset_recvd",
  },
  reset_recvd: {
    stream: "usage",
    stream_fin: "usage",
    blocked: "usage",
    reset: "usage",
    all_acked: "reset_recvd",
    reset_acked: "reset_recvd",
  },
};

describe("SendStreamState (§3.1)", () => {
  for (const [state, row] of Object.entries(sendTable) as [
    SendState,
    Record<SendEvent, SendState | "usage">,
  ][]) {
    it(`from ${state}`, () => {
      for (const [event, expected] of Object.entries(row) as [SendEvent, SendState | "usage"][]) {
        const s = new SendStreamState();
        for (const e of sendPaths[state]) applySend(s, e);
        expect(s.state).toBe(state);
        if (expected === "usage") {
          expect(() => applySend(s, event), `${state} + ${event}`).toThrow(QuicUsageError);
          expect(s.state).toBe(state);
        } else {
          applySend(s, event);
          expect(s.state, `${state} + ${event}`).toBe(expected);
        }
      }
    });
  }

  it("answers peer frames in any state (§3.5)", () => {
    const expectations: Record<SendState, [boolean, boolean]> = {
      // [apply MAX_STREAM_DATA, must send RESET_STREAM on STOP_SENDING]
      ready: [true, true],
      send: [true, true],
      data_sent: [false, true],
      data_recvd: [false, false],
      reset_sent: [false, false],
      reset_recvd: [false, false],
    };
    for (const [state, [maxData, reset]] of Object.entries(expectations) as [
      SendState,
      [boolean, boolean],
    ][]) {
      const s = new SendStreamState();
      for (const e of sendPaths[state]) applySend(s, e);
      expect(s.onMaxStreamData()).toBe(maxData);
      expect(s.onStopSending()).toBe(reset);
      expect(s.canSendData).toBe(state === "ready" || state === "send");
      expect(s.isTerminal).toBe(state === "data_recvd" || state === "reset_recvd");
    }
  });

  it("never leaves a terminal state under random local events (property)", () => {
    const events: SendEvent[] = ["stream", "stream_fin", "blocked", "reset", "all_acked", "reset_acked"];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...events), { maxLength: 40 }), (seq) => {
        const s = new SendStreamState();
        let model: SendState = "ready";
        for (const e of seq) {
          const next: SendState | "usage" = sendTable[model][e];
          if (next === "usage") expect(() => applySend(s, e)).toThrow(QuicUsageError);
          else {
            const wasTerminal = s.isTerminal;
            applySend(s, e);
            model = next;
            if (wasTerminal) expect(s.isTerminal).toBe(true);
          }
          expect(s.state).toBe(model);
        }
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Receiving part (§3.2) and final size (§4.5).
// ---------------------------------------------------------------------------------------------

describe("RecvStreamState (§3.2)", () => {
  it("walks Recv → Size Known → Data Recvd → Data Read", () => {
    const r = new RecvStreamState();
    expect(r.state).toBe("recv");
    expect(r.canSendMaxStreamData).toBe(true);
    expect(r.onStreamFrame(0, 10, false)).toBe(true);
    expect(r.state).toBe("recv");
    expect(() => r.onAllDataReceived()).toThrow(QuicUsageError);
    expect(r.onStreamFrame(10, 5, true)).toBe(true);
    expect(r.state).toBe("size_known");
    expect(r.finalSize).toBe(15);
    expect(r.canSendMaxStreamData).toBe(false);
    expect(r.canSendStopSending).toBe(true);
    expect(() => r.onAllDataRead()).toThrow(QuicUsageError);
    r.onAllDataReceived();
    expect(r.state).toBe("data_recvd");
    expect(r.canSendStopSending).toBe(false);
    // Late retransmissions: accepted, not wanted.
    expect(r.onStreamFrame(0, 15, true)).toBe(false);
    r.onAllDataRead();
    expect(r.state).toBe("data_read");
    expect(r.isTerminal).toBe(true);
    expect(r.onStreamFrame(5, 5, false)).toBe(false);
    expect(r.onResetStream(15)).toBe(false); // late reset in a terminal state: ignored
    expect(r.state).toBe("data_read");
  });

  it("walks to Reset Recvd → Reset Read from Recv, Size Known and Data Recvd", () => {
    for (const setup of ["recv", "size_known", "data_recvd"] as RecvState[]) {
      const r = new RecvStreamState();
      r.onStreamFrame(0, 4, setup !== "recv");
      if (setup === "data_recvd") r.onAllDataReceived();
      expect(r.state).toBe(setup);
      expect(r.onResetStream(4)).toBe(true);
      expect(r.state).toBe("reset_recvd");
      expect(r.canSendStopSending).toBe(false);
      expect(r.onResetStream(4)).toBe(false); // duplicate
      expect(r.onStreamFrame(0, 4, false)).toBe(false);
      expect(() => r.onAllDataRead()).toThrow(QuicUsageError);
      r.onResetRead();
      expect(r.state).toBe("reset_read");
      expect(r.isTerminal).toBe(true);
    }
    expect(() => new RecvStreamState().onResetRead()).toThrow(QuicUsageError);
  });

  it("throws FINAL_SIZE_ERROR per §4.5, in every state", () => {
    // FIN changes the final size.
    let r = new RecvStreamState();
    r.onStreamFrame(0, 10, true);
    let e = errorOf(() => r.onStreamFrame(0, 11, true));
    expect(e.code).toBe(FINAL_SIZE_ERROR);
    expect(e.frameType).toBe(FrameType.STREAM);
    expect(errorOf(() => r.onStreamFrame(0, 9, true)).code).toBe(FINAL_SIZE_ERROR);
    // Data beyond the final size: exactly one byte beyond.
    expect(errorOf(() => r.onStreamFrame(10, 1, false)).code).toBe(FINAL_SIZE_ERROR);
    expect(r.onStreamFrame(9, 1, false)).toBe(true);
    // RESET_STREAM with another final size.
    e = errorOf(() => r.onResetStream(11));
    expect(e.code).toBe(FINAL_SIZE_ERROR);
    expect(e.frameType).toBe(FrameType.RESET_STREAM);
    // FIN / RESET below the data received.
    r = new RecvStreamState();
    r.onStreamFrame(0, 100, false);
    expect(errorOf(() => r.onStreamFrame(0, 50, true)).code).toBe(FINAL_SIZE_ERROR);
    expect(errorOf(() => r.onResetStream(99)).code).toBe(FINAL_SIZE_ERROR);
    // After a reset the final size still binds ("even after a stream is closed").
    r.onResetStream(120);
    r.onResetRead();
    expect(errorOf(() => r.onStreamFrame(110, 11, false)).code).toBe(FINAL_SIZE_ERROR);
    expect(errorOf(() => r.onStreamFrame(0, 10, true)).code).toBe(FINAL_SIZE_ERROR);
    expect(errorOf(() => r.onResetStream(121)).code).toBe(FINAL_SIZE_ERROR);
    expect(r.onStreamFrame(110, 10, true)).toBe(false);
  });

  it("final-size errors match a reference model (property)", () => {
    const frame = fc.oneof(
      fc.record({
        kind: fc.constant("stream" as const),
        off: fc.nat(30),
        len: fc.nat(10),
        fin: fc.boolean(),
      }),
      fc.record({ kind: fc.constant("reset" as const), size: fc.nat(40) }),
    );
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 20 }), (frames) => {
        const r = new RecvStreamState();
        let finalSize = -1;
        let highest = 0;
        for (const f of frames) {
          let bad: boolean;
          let newFinal: number;
          let end: number;
          if (f.kind === "stream") {
            end = f.off + f.len;
            bad = finalSize >= 0 ? end > finalSize || (f.fin && end !== finalSize) : f.fin && end < highest;
            newFinal = f.fin ? end : finalSize;
          } else {
            end = f.size;
            bad = finalSize >= 0 ? f.size !== finalSize : f.size < highest;
            newFinal = f.size;
          }
          const call = () =>
            f.kind === "stream" ? r.onStreamFrame(f.off, f.len, f.fin) : r.onResetStream(f.size);
          if (bad) {
            expect(errorOf(call).code).toBe(FINAL_SIZE_ERROR);
            return; // the connection closes
          }
          call();
          finalSize = newFinal;
          highest = Math.max(highest, end);
          expect(r.finalSize).toBe(finalSize);
          expect(r.highestOffset).toBe(highest);
        }
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Direction and existence checks (§19.4, §19.5, §19.8, §19.10, §19.13).
// ---------------------------------------------------------------------------------------------

describe("STREAM_STATE_ERROR rules", () => {
  // As a client: stream 2 is our unidirectional (send-only), 3 the server's (receive-only).
  const client = false;

  it("StreamState rejects frames its direction does not allow", () => {
    const sendOnly = new StreamState(2, client);
    expect(sendOnly.recv).toBeNull();
    expect(errorOf(() => sendOnly.onRecvStream(0, 1, false)).code).toBe(STREAM_STATE_ERROR); // §19.8
    expect(errorOf(() => sendOnly.onRecvResetStream(0)).code).toBe(STREAM_STATE_ERROR); // §19.4
    expect(errorOf(() => sendOnly.onRecvStreamDataBlocked()).code).toBe(STREAM_STATE_ERROR); // §19.13
    expect(sendOnly.onRecvStopSending()).toBe(true);
    expect(sendOnly.onRecvMaxStreamData()).toBe(true);

    const recvOnly = new StreamState(3, client);
    expect(recvOnly.send).toBeNull();
    const e = errorOf(() => recvOnly.onRecvStopSending()); // §19.5
    expect(e.code).toBe(STREAM_STATE_ERROR);
    expect(e.frameType).toBe(FrameType.STOP_SENDING);
    expect(errorOf(() => recvOnly.onRecvMaxStreamData()).code).toBe(STREAM_STATE_ERROR); // §19.10
    expect(recvOnly.onRecvStream(0, 5, true)).toBe(true);
    recvOnly.onRecvStreamDataBlocked();

    const bidi = new StreamState(0, client);
    expect(bidi.onRecvStream(0, 5, false)).toBe(true);
    expect(bidi.onRecvMaxStreamData()).toBe(true);
  });

  it("isClosed once every existing part is terminal", () => {
    const s = new StreamState(1, client); // server-initiated bidi
    expect(s.isClosed).toBe(false);
    s.send?.onResetSent();
    s.send?.onResetAcked();
    expect(s.isClosed).toBe(false);
    s.onRecvStream(0, 0, true);
    s.recv?.onAllDataReceived();
    s.recv?.onAllDataRead();
    expect(s.isClosed).toBe(true);
    const uni = new StreamState(3, client);
    uni.onRecvResetStream(0);
    uni.recv?.onResetRead();
    expect(uni.isClosed).toBe(true);
  });

  it("checkPeerStreamFrame applies direction and existence rules", () => {
    const server = true;
    const cases: [number, number, boolean, boolean, boolean][] = [
      // [frameType, streamId, isServer, locallyOpened, ok]
      [0x08, 3, server, true, false], // STREAM on the server's own uni stream: send-only
      [0x0f, 2, server, false, true], // STREAM on the client's uni stream
      [FrameType.RESET_STREAM, 3, server, true, false],
      [FrameType.STREAM_DATA_BLOCKED, 3, server, true, false],
      [FrameType.STOP_SENDING, 2, server, false, false], // receive-only
      [FrameType.MAX_STREAM_DATA, 2, server, false, false],
      [FrameType.STOP_SENDING, 3, server, true, true],
      [FrameType.MAX_STREAM_DATA, 1, server, false, false], // our bidi, not yet created (§19.10)
      [FrameType.STOP_SENDING, 1, server, false, false], // (§19.5)
      [0x08, 1, server, false, false], // (§19.8)
      [0x08, 1, server, true, true],
      [0x08, 0, server, false, true], // peer-initiated: existence is not ours to check
      [FrameType.MAX_STREAM_DATA, 0, server, false, true],
    ];
    for (const [type, id, isServer, opened, ok] of cases) {
      const call = () => checkPeerStreamFrame(type, id, isServer, opened);
      if (ok) expect(call, `type ${type} id ${id}`).not.toThrow();
      else {
        const e = errorOf(call);
        expect(e.code, `type ${type} id ${id}`).toBe(STREAM_STATE_ERROR);
        expect(e.frameType).toBe(type);
      }
    }
    expect(() => checkPeerStreamFrame(FrameType.MAX_DATA, 0, true, true)).toThrow(QuicUsageError);
  });
});
