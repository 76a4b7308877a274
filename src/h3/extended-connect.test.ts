import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../quic/errors.ts";
import { CapsuleParser, CapsuleType, capsuleBytes } from "./capsules.ts";
import { H3ErrorCode } from "./error-codes.ts";
import type { H3Event } from "./session.ts";
import { SessionPair } from "./test-pair.ts";

const te = new TextEncoder();
const td = new TextDecoder();

function ofType<T extends H3Event["type"]>(events: H3Event[], type: T): Extract<H3Event, { type: T }>[] {
  return events.filter((e): e is Extract<H3Event, { type: T }> => e.type === type);
}

const CONNECT_WT: [string, string][] = [
  [":method", "CONNECT"],
  [":protocol", "webtransport"],
  [":scheme", "https"],
  [":authority", "example.com"],
  [":path", "/wt?x=1"],
  ["origin", "https://example.com"],
];

function wtPair(): SessionPair {
  const p = new SessionPair({ webTransport: true }, { webTransport: true });
  p.run();
  return p;
}

describe("H3Session: WebTransport settings (draft-02, RFC 9220, RFC 9297)", () => {
  it("a WebTransport server announces extended CONNECT, H3 datagrams and ENABLE_WEBTRANSPORT", () => {
    const p = wtPair();
    const fromServer = ofType(p.clientEvents, "settings")[0].settings;
    expect(fromServer.enableConnectProtocol).toBe(true);
    expect(fromServer.h3Datagram).toBe(true);
    expect(fromServer.enableWebTransportDraft02).toBe(true);
    expect(fromServer.wtEnabled).toBe(true); // the current draft's codepoint too
    const fromClient = ofType(p.serverEvents, "settings")[0].settings;
    expect(fromClient.h3Datagram).toBe(true);
    expect(fromClient.enableWebTransportDraft02).toBe(true);
    expect(fromClient.enableConnectProtocol).toBe(false); // a client has nothing to announce
  });

  it("a plain HTTP/3 server announces none of them", () => {
    const p = new SessionPair();
    p.run();
    const s = ofType(p.clientEvents, "settings")[0].settings;
    expect(s.enableConnectProtocol || s.h3Datagram || s.enableWebTransportDraft02 || s.wtEnabled).toBe(false);
  });
});

describe("H3Session: extended CONNECT", () => {
  it("carries :protocol to the server, a 200 back, and capsules in DATA both ways", () => {
    const p = wtPair();
    p.client.sendRequest(0, CONNECT_WT);
    p.run();
    const req = ofType(p.serverEvents, "request")[0];
    expect(req.streamId).toBe(0);
    expect(req.head.method).toBe("CONNECT");
    expect(req.head.protocol).toBe("webtransport");
    expect(req.head.path).toBe("/wt?x=1");
    expect(req.head.fields).toContainEqual(["origin", "https://example.com"]);
    p.server.sendResponse(0, [[":status", "200"]]);
    p.run();
    expect(ofType(p.clientEvents, "response")[0].head.status).toBe(200);

    const close = new Uint8Array([0, 0, 1, 2, ...te.encode("bye")]);
    p.server.sendData(0, capsuleBytes(CapsuleType.CLOSE_WEBTRANSPORT_SESSION, close), true);
    p.run();
    const parser = new CapsuleParser();
    for (const e of ofType(p.clientEvents, "data")) parser.push(e.data);
    const ev = parser.pull();
    expect(ev?.kind).toBe("capsule");
    if (ev?.kind === "capsule") {
      expect(ev.capsule.type).toBe(CapsuleType.CLOSE_WEBTRANSPORT_SESSION);
      expect(td.decode(ev.capsule.value.subarray(4))).toBe("bye");
    }
    expect(ofType(p.clientEvents, "end").map((e) => e.streamId)).toEqual([0]);
  });

  it("refuses to send :protocol before the server enabled extended CONNECT", () => {
    const early = new SessionPair({ webTransport: true }, { webTransport: true });
    // Nothing delivered yet: the server's SETTINGS are unknown.
    expect(() => early.client.sendRequest(0, CONNECT_WT)).toThrow(QuicUsageError);
    const plain = new SessionPair({ webTransport: true }, {});
    plain.run();
    expect(() => plain.client.sendRequest(0, CONNECT_WT)).toThrow(/extended CONNECT/);
  });

  it("a server without extended CONNECT rejects :protocol as malformed (stream error)", () => {
    const p = new SessionPair({}, {});
    p.run();
    // Forge the permission on the client to get the request on the wire.
    p.client.peerSettings = { ...p.client.peerSettings!, enableConnectProtocol: true };
    p.client.sendRequest(0, CONNECT_WT);
    p.run();
    expect(ofType(p.serverEvents, "request")).toHaveLength(0);
    expect(ofType(p.clientEvents, "stream-error")[0].code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
    expect(p.server.isClosed).toBe(false);
  });
});

describe("H3Session: WebTransport streams (draft-02 §4)", () => {
  it("hands off a client bidi stream starting with 0x41 and the session ID, byte by byte", () => {
    const p = wtPair();
    const bytes = [0x40, 0x41, 0x40, 0x00, ...te.encode("hi")]; // 0x41 and session ID 0, 2-byte varints
    for (let i = 0; i < bytes.length; i++) p.server.receive(4, Uint8Array.of(bytes[i]), false);
    p.server.receive(4, new Uint8Array(0), true);
    const wt = ofType(p.server.takeEvents(), "webtransport-stream");
    expect(wt).toHaveLength(1);
    expect(wt[0]).toMatchObject({ streamId: 4, sessionId: 0, bidi: true, fin: false });
    // Everything after the preamble goes to the WebTransport layer, not to the session.
    expect(wt[0].data.length).toBe(0); // the preamble ended the completing chunk; later bytes are not the session's
    expect(p.server.hasStream(4)).toBe(false);
    expect(p.server.isClosed).toBe(false);
  });

  it("delivers the bytes after the preamble and keeps ordinary requests working", () => {
    const p = wtPair();
    p.server.receive(8, Uint8Array.of(0x40, 0x41, 0x00, ...te.encode("payload")), true);
    const wt = ofType(p.server.takeEvents(), "webtransport-stream")[0];
    expect(td.decode(wt.data)).toBe("payload");
    expect(wt.fin).toBe(true);
    p.client.sendRequest(12, [
      [":method", "GET"],
      [":scheme", "https"],
      [":authority", "example.com"],
      [":path", "/"],
    ]);
    p.run();
    expect(ofType(p.serverEvents, "request").map((e) => e.streamId)).toEqual([12]);
  });

  it("hands off a uni stream of type 0x54 with its session ID", () => {
    const p = wtPair();
    p.server.peerStreamOpened(14);
    p.server.receive(14, Uint8Array.of(0x40, 0x54), false);
    p.server.receive(14, Uint8Array.of(0x04, ...te.encode("u")), false);
    const wt = ofType(p.server.takeEvents(), "webtransport-stream")[0];
    expect(wt).toMatchObject({ streamId: 14, sessionId: 4, bidi: false, fin: false });
    expect(td.decode(wt.data)).toBe("u");
    // No STOP_SENDING for it: the stream is the application's now.
    expect(p.server.takeActions().filter((a) => a.type === "stop")).toHaveLength(0);
  });

  it("without WebTransport, a 0x54 uni stream is refused with STOP_SENDING", () => {
    const p = new SessionPair();
    p.run();
    p.server.receive(14, Uint8Array.of(0x40, 0x54, 0x00), false);
    const stops = p.server.takeActions().filter((a) => a.type === "stop");
    expect(stops).toEqual([{ type: "stop", streamId: 14, code: H3ErrorCode.H3_STREAM_CREATION_ERROR }]);
    expect(ofType(p.server.takeEvents(), "webtransport-stream")).toHaveLength(0);
  });

  it("a WebTransport client accepts server bidi streams with the signal, and nothing else", () => {
    const p = wtPair();
    p.client.receive(1, Uint8Array.of(0x40), false);
    p.client.receive(1, Uint8Array.of(0x41, 0x00, 0x61), false);
    const wt = ofType(p.client.takeEvents(), "webtransport-stream")[0];
    expect(wt).toMatchObject({ streamId: 1, sessionId: 0, bidi: true });
    expect(td.decode(wt.data)).toBe("a");
    p.client.receive(5, headersOf(), false);
    expect(p.client.closeReason?.code).toBe(H3ErrorCode.H3_STREAM_CREATION_ERROR);
  });

  it("a plain client still refuses server bidi streams", () => {
    const p = new SessionPair();
    p.run();
    p.client.receive(1, Uint8Array.of(0x40, 0x41, 0x00), false);
    expect(p.client.closeReason?.code).toBe(H3ErrorCode.H3_STREAM_CREATION_ERROR);
  });
});

function headersOf(): Uint8Array {
  return Uint8Array.of(0x01, 0x00); // an empty HEADERS frame
}

describe("H3Session: HTTP/3 datagrams (RFC 9297 §2.1)", () => {
  it("carries the quarter stream ID and the payload", () => {
    const p = wtPair();
    p.client.sendDatagram(8, te.encode("ping"));
    const a = p.client.takeActions().find((x) => x.type === "datagram");
    expect(a?.type === "datagram" && [...a.data]).toEqual([2, ...te.encode("ping")]);
    if (a?.type === "datagram") p.server.receiveDatagram(a.data);
    const d = ofType(p.server.takeEvents(), "datagram")[0];
    expect(d.streamId).toBe(8);
    expect(td.decode(d.payload)).toBe("ping");
  });

  it("a datagram too short for its quarter stream ID is H3_DATAGRAM_ERROR", () => {
    const p = wtPair();
    p.server.receiveDatagram(Uint8Array.of(0x40)); // a 2-byte varint cut short
    expect(p.server.closeReason?.code).toBe(H3ErrorCode.H3_DATAGRAM_ERROR);
  });

  it("may not send before SETTINGS_H3_DATAGRAM was sent and received", () => {
    const early = new SessionPair({ webTransport: true }, { webTransport: true });
    expect(() => early.client.sendDatagram(0, te.encode("x"))).toThrow(QuicUsageError);
    const p = new SessionPair({ webTransport: true }, {});
    p.run();
    expect(() => p.client.sendDatagram(0, te.encode("x"))).toThrow(/SETTINGS_H3_DATAGRAM/);
  });

  it("ignores datagrams when it did not enable them", () => {
    const p = new SessionPair();
    p.run();
    p.server.receiveDatagram(Uint8Array.of(0x00, 0x01));
    expect(ofType(p.server.takeEvents(), "datagram")).toHaveLength(0);
    expect(p.server.isClosed).toBe(false);
  });
});
