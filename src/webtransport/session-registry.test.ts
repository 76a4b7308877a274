import { describe, expect, it } from "vitest";
import type { H3WebTransportStream } from "../h3/connection.ts";
import type { RecvStream, SendStream } from "../quic/api.ts";
import { WT_BUFFERED_STREAM_REJECTED, WT_SESSION_GONE } from "./error-codes.ts";
import {
  MAX_ENDED_SESSIONS,
  MAX_UNASSOCIATED_STREAMS,
  type RegisteredSession,
  WebTransportSessions,
} from "./session-registry.ts";

/** A stream whose stop/reset codes are recorded. */
function stream(sessionId: number, streamId: number, bidi = true) {
  const codes: { stop?: number; reset?: number } = {};
  const recv = { id: streamId, stop: (c: number) => (codes.stop = Number(c)) } as unknown as RecvStream;
  const send = { id: streamId, reset: (c: number) => (codes.reset = Number(c)) } as unknown as SendStream;
  const s = {
    connection: undefined,
    sessionId,
    streamId,
    send: bidi ? send : undefined,
    recv,
    initial: new Uint8Array(0),
    fin: false,
  } as unknown as H3WebTransportStream;
  return { s, codes };
}

function session(id: number): RegisteredSession & { got: number[] } {
  const got: number[] = [];
  return { id, got, deliver: (s) => got.push(s.streamId) };
}

describe("WebTransportSessions (stream routing)", () => {
  it("routes streams to their session by session ID", () => {
    const r = new WebTransportSessions();
    const a = session(0);
    const b = session(4);
    r.add(a);
    r.add(b);
    r.route(stream(4, 1).s);
    r.route(stream(0, 5).s);
    r.route(stream(4, 3, false).s);
    expect(a.got).toEqual([5]);
    expect(b.got).toEqual([1, 3]);
  });

  it("buffers streams that arrive before their session, in order", () => {
    const r = new WebTransportSessions();
    r.route(stream(8, 1).s);
    r.route(stream(12, 5).s);
    r.route(stream(8, 9).s);
    expect(r.bufferedStreams).toBe(3);
    const s = session(8);
    r.add(s);
    expect(s.got).toEqual([1, 9]);
    expect(r.bufferedStreams).toBe(1);
  });

  it("refuses the oldest buffered stream past the limit with WT_BUFFERED_STREAM_REJECTED", () => {
    const r = new WebTransportSessions();
    const all = Array.from({ length: MAX_UNASSOCIATED_STREAMS + 1 }, (_, i) => stream(100, 4 * i + 1));
    for (const x of all) r.route(x.s);
    expect(r.bufferedStreams).toBe(MAX_UNASSOCIATED_STREAMS);
    expect(all[0].codes).toEqual({ stop: WT_BUFFERED_STREAM_REJECTED, reset: WT_BUFFERED_STREAM_REJECTED });
    expect(all[1].codes).toEqual({});
  });

  it("refuses streams of an ended session with WT_SESSION_GONE, buffered or late", () => {
    const r = new WebTransportSessions();
    const s = session(0);
    r.add(s);
    r.remove(s);
    const late = stream(0, 1);
    r.route(late.s);
    expect(late.codes).toEqual({ stop: WT_SESSION_GONE, reset: WT_SESSION_GONE });
    expect(s.got).toEqual([]);
    expect(r.size).toBe(0);
  });

  it("remembers at most MAX_ENDED_SESSIONS ended sessions, forgetting the oldest", () => {
    const r = new WebTransportSessions();
    for (let i = 0; i <= MAX_ENDED_SESSIONS; i++) {
      const s = session(4 * i);
      r.add(s);
      r.remove(s);
    }
    expect(r.endedSessions).toBe(MAX_ENDED_SESSIONS);
    // The oldest (session 0) is forgotten: its late stream waits as unassociated.
    const forgotten = stream(0, 1);
    r.route(forgotten.s);
    expect(forgotten.codes).toEqual({});
    expect(r.bufferedStreams).toBe(1);
    // The newest is still refused as gone.
    const late = stream(4 * MAX_ENDED_SESSIONS, 5);
    r.route(late.s);
    expect(late.codes).toEqual({ stop: WT_SESSION_GONE, reset: WT_SESSION_GONE });
  });
});
