import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import {
  hasRecvPart,
  hasSendPart,
  isBidirectional,
  isClientInitiated,
  isLocallyInitiated,
  isServerInitiated,
  isUnidirectional,
  LocalStreamIds,
  RemoteStreamIds,
  StreamType,
  streamCount,
  streamIdOf,
  streamIndex,
  streamTypeFor,
  streamTypeOf,
} from "./stream-id.ts";

function codeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof QuicError) return e.code;
    throw e;
  }
  throw new Error("did not throw");
}

describe("stream IDs (§2.1)", () => {
  it("decodes the initiator and direction bits per the §2.1 table", () => {
    // id: [client, bidi]
    const table: [number, boolean, boolean][] = [
      [0, true, true],
      [1, false, true],
      [2, true, false],
      [3, false, false],
      [4, true, true],
      [7, false, false],
    ];
    for (const [id, client, bidi] of table) {
      expect(isClientInitiated(id)).toBe(client);
      expect(isServerInitiated(id)).toBe(!client);
      expect(isBidirectional(id)).toBe(bidi);
      expect(isUnidirectional(id)).toBe(!bidi);
    }
    expect(streamTypeFor(true, false)).toBe(StreamType.CLIENT_BIDI);
    expect(streamTypeFor(true, true)).toBe(StreamType.SERVER_BIDI);
    expect(streamTypeFor(false, false)).toBe(StreamType.CLIENT_UNI);
    expect(streamTypeFor(false, true)).toBe(StreamType.SERVER_UNI);
  });

  it("knows which parts each endpoint has", () => {
    // Client-initiated uni (2): the client sends only, the server receives only.
    expect(hasSendPart(2, false)).toBe(true);
    expect(hasRecvPart(2, false)).toBe(false);
    expect(hasSendPart(2, true)).toBe(false);
    expect(hasRecvPart(2, true)).toBe(true);
    // Server-initiated uni (3): the reverse.
    expect(hasSendPart(3, true)).toBe(true);
    expect(hasRecvPart(3, true)).toBe(false);
    expect(hasRecvPart(3, false)).toBe(true);
    // Bidirectional: both.
    for (const id of [0, 1])
      for (const s of [false, true]) expect(hasSendPart(id, s) && hasRecvPart(id, s)).toBe(true);
    expect(isLocallyInitiated(1, true)).toBe(true);
    expect(isLocallyInitiated(1, false)).toBe(false);
  });

  it("maps index and type to IDs exactly, beyond 2^32 too (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 50 }), fc.constantFrom(0, 1, 2, 3), (index, type) => {
        const id = streamIdOf(type as StreamType, index);
        expect(streamIndex(id)).toBe(index);
        expect(streamTypeOf(id)).toBe(type);
        expect(streamCount(id)).toBe(index + 1);
        expect(isBidirectional(id)).toBe(type < 2);
        expect(isServerInitiated(id)).toBe(type % 2 === 1);
      }),
    );
  });
});

describe("LocalStreamIds", () => {
  it("opens IDs in order up to the peer's limit", () => {
    const l = new LocalStreamIds(StreamType.SERVER_UNI, 2);
    expect(l.nextId).toBe(3);
    expect(l.open()).toBe(3);
    expect(l.open()).toBe(7);
    expect(l.canOpen()).toBe(false);
    expect(() => l.open()).toThrow(QuicUsageError);
    expect(l.isOpened(7)).toBe(true);
    expect(l.isOpened(11)).toBe(false);
  });

  it("ignores MAX_STREAMS that do not increase the limit (§19.11)", () => {
    const l = new LocalStreamIds(StreamType.CLIENT_BIDI, 5);
    expect(l.onMaxStreams(3)).toBe(false);
    expect(l.onMaxStreams(5)).toBe(false);
    expect(l.limit).toBe(5);
    expect(l.onMaxStreams(6)).toBe(true);
    expect(l.limit).toBe(6);
  });

  it("signals STREAMS_BLOCKED once per limit value", () => {
    const l = new LocalStreamIds(StreamType.CLIENT_BIDI, 1);
    expect(l.shouldSendStreamsBlocked()).toBe(false);
    l.open();
    expect(l.shouldSendStreamsBlocked()).toBe(true);
    expect(l.onStreamsBlockedSent()).toBe(1);
    expect(l.shouldSendStreamsBlocked()).toBe(false);
    l.onStreamsBlockedLost(1);
    expect(l.shouldSendStreamsBlocked()).toBe(true);
    l.onStreamsBlockedSent();
    l.onMaxStreams(2);
    expect(l.shouldSendStreamsBlocked()).toBe(false);
    l.open();
    expect(l.shouldSendStreamsBlocked()).toBe(true);
    l.onStreamsBlockedSent();
    l.onStreamsBlockedLost(1); // an older one: no effect
    expect(l.shouldSendStreamsBlocked()).toBe(false);
  });
});

describe("RemoteStreamIds", () => {
  it("opens lower streams implicitly and errors at exactly the limit (§4.6)", () => {
    const r = new RemoteStreamIds(StreamType.CLIENT_BIDI, 3);
    expect(r.onPeerStream(4)).toBe(2); // opens 0 and 4
    expect(r.opened).toBe(2);
    expect(r.onPeerStream(0)).toBe(0);
    expect(r.isOpened(4)).toBe(true);
    expect(r.isOpened(8)).toBe(false);
    expect(r.onPeerStream(8)).toBe(1); // index 2 < limit 3
    expect(codeOf(() => r.onPeerStream(12))).toBe(TransportErrorCode.STREAM_LIMIT_ERROR); // index 3
  });

  it("advertises more streams as they close", () => {
    const r = new RemoteStreamIds(StreamType.SERVER_UNI, 8);
    r.onPeerStream(streamIdOf(StreamType.SERVER_UNI, 7));
    expect(r.takeMaxStreamsUpdate()).toBe(-1);
    r.onStreamClosed();
    expect(r.takeMaxStreamsUpdate()).toBe(-1); // 1 < 8/4
    r.onStreamClosed();
    expect(r.takeMaxStreamsUpdate()).toBe(10);
    expect(r.limit).toBe(10);
    expect(r.takeMaxStreamsUpdate()).toBe(-1);
    expect(r.onPeerStream(streamIdOf(StreamType.SERVER_UNI, 9))).toBe(2);
    expect(() => {
      for (let i = 0; i < 20; i++) r.onStreamClosed();
    }).toThrow(QuicUsageError);
  });
});
