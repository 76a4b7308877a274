import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { H3ErrorCode } from "./error-codes.ts";
import { FrameReader } from "./frame-reader.ts";
import { FrameType } from "./frames.ts";
import { GOAWAY_MAX_STREAM_ID, type H3Event, type H3Session } from "./session.ts";
import { concat, frame, headersFrame, SessionPair } from "./test-pair.ts";

const te = new TextEncoder();
const td = new TextDecoder();

const GET: [string, string][] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":authority", "example.com"],
  [":path", "/index.html"],
];

function ofType<T extends H3Event["type"]>(events: H3Event[], type: T): Extract<H3Event, { type: T }>[] {
  return events.filter((e): e is Extract<H3Event, { type: T }> => e.type === type);
}

function body(events: H3Event[], streamId: number): string {
  return ofType(events, "data")
    .filter((e) => e.streamId === streamId)
    .map((e) => td.decode(e.data))
    .join("");
}

function closeCode(p: SessionPair, side: "client" | "server"): number | undefined {
  const s = side === "client" ? p.client : p.server;
  return s.closeReason?.remote === false ? s.closeReason.code : undefined;
}

/** A pair after the SETTINGS exchange. */
function ready(client = {}, server = {}): SessionPair {
  const p = new SessionPair(client, server);
  p.run();
  return p;
}

describe("H3Session: setup", () => {
  it("exchanges SETTINGS first on the control streams, with GREASE", () => {
    const p = ready({}, { enableConnectProtocol: true });
    const cs = ofType(p.clientEvents, "settings")[0].settings;
    const ss = ofType(p.serverEvents, "settings")[0].settings;
    expect(cs.qpackMaxTableCapacity).toBe(4096);
    expect(cs.qpackBlockedStreams).toBe(16);
    expect(cs.maxFieldSectionSize).toBe(65536);
    expect(cs.enableConnectProtocol).toBe(true);
    expect(cs.unknown.length).toBe(1); // the reserved setting
    expect(ss.enableConnectProtocol).toBe(false);
    expect(p.client.peerSettings).toBe(cs);
    // The control stream starts with type 0x00 then a SETTINGS frame (type 0x04).
    const first = p.clientActions[0];
    expect(first.type === "uni-write" && first.stream === "control").toBe(true);
    if (first.type === "uni-write") expect([...first.data.subarray(0, 2)]).toEqual([0x00, 0x04]);
    expect(p.uniId(p.client, "control")).toBe(2);
    expect(p.uniId(p.server, "qpack-decoder")).toBe(11);
    expect(p.client.isClosed || p.server.isClosed).toBe(false);
  });

  it("greases the control stream: a reserved setting and a reserved frame type after SETTINGS", () => {
    const p = ready();
    const first = p.clientActions[0];
    if (first.type !== "uni-write") throw new Error("no control stream write");
    // RFC 9114 §7.2.4.1 and §7.2.8: reserved identifiers are 0x1f * N + 0x21.
    const reserved = (v: bigint) => v >= 0x21n && (v - 0x21n) % 0x1fn === 0n;
    const reader = new FrameReader({ stream: "control", role: "server" });
    reader.push(first.data.subarray(1)); // after the stream type
    const frames = reader.pullAll().flatMap((e) => (e.kind === "frame" ? [e.frame] : []));
    expect(frames.map((f) => f.kind)).toEqual(["settings", "unknown"]);
    const settings = frames[0];
    if (settings.kind !== "settings") throw new Error("not SETTINGS");
    expect(settings.entries.filter((e) => reserved(e.id)).length).toBe(1);
    const grease = frames[1];
    if (grease.kind !== "unknown") throw new Error("not a reserved frame");
    expect(reserved(grease.type)).toBe(true);
    // The peer ignored both: it is up and the reserved setting landed in `unknown`.
    expect(p.server.isClosed).toBe(false);
    expect(p.server.peerSettings?.unknown.map((e) => reserved(e.id))).toEqual([true]);
  });

  it("works without GREASE and without a dynamic table", () => {
    const p = ready({ grease: false, qpackMaxTableCapacity: 0 }, { grease: false });
    expect(ofType(p.serverEvents, "settings")[0].settings.unknown).toEqual([]);
    p.client.sendRequest(0, GET, true);
    p.run();
    expect(ofType(p.serverEvents, "request")[0].head.path).toBe("/index.html");
  });
});

describe("H3Session: requests and responses", () => {
  it("GET with a response body and trailers", () => {
    const p = ready();
    p.client.sendRequest(0, [...GET, ["accept", "*/*"]], true);
    p.run();
    const req = ofType(p.serverEvents, "request")[0];
    expect(req.streamId).toBe(0);
    expect(req.head.method).toBe("GET");
    expect(req.head.authority).toBe("example.com");
    expect(req.head.fields).toEqual([["accept", "*/*"]]);
    expect(req.head.priority).toEqual({ urgency: 3, incremental: false });
    expect(ofType(p.serverEvents, "end").map((e) => e.streamId)).toEqual([0]);

    p.server.sendResponse(0, [
      [":status", "200"],
      ["content-type", "text/plain"],
    ]);
    p.server.sendData(0, te.encode("hello "));
    p.server.sendData(0, te.encode("world"));
    p.server.sendTrailers(0, [["x-checksum", "abc"]]);
    p.run();
    const res = ofType(p.clientEvents, "response")[0];
    expect(res.head.status).toBe(200);
    expect(res.head.fields).toEqual([["content-type", "text/plain"]]);
    expect(body(p.clientEvents, 0)).toBe("hello world");
    expect(ofType(p.clientEvents, "trailers")[0].fields).toEqual([["x-checksum", "abc"]]);
    expect(ofType(p.clientEvents, "end").map((e) => e.streamId)).toEqual([0]);
    expect(p.client.activeRequests).toBe(0);
    expect(p.server.activeRequests).toBe(0);
  });

  it("a response with trailers is HEADERS, DATA, trailing HEADERS and the FIN with it (issue 7)", () => {
    // What Chromium received when it failed such responses (its bug, docs/INTEROP.md): RFC 9114
    // §4.1 framing, the FIN on the trailers' write, no reset or STOP_SENDING; the trailer
    // section's dynamic references within the table capacity the peer allows.
    const p = ready({ qpackMaxTableCapacity: 65536, qpackBlockedStreams: 100 });
    p.client.sendRequest(0, GET, true);
    p.run();
    p.server.sendResponse(0, [
      [":status", "200"],
      ["content-type", "application/octet-stream"],
    ]);
    p.server.sendData(0, new Uint8Array(100_000));
    p.server.sendTrailers(0, [
      ["x-path", "/f0"],
      ["x-sum", "abc"],
    ]);
    p.run();
    const onStream = p.serverActions.filter((a) => a.type !== "uni-write" && a.type !== "datagram");
    expect(onStream.every((a) => a.type === "write" && a.streamId === 0)).toBe(true);
    const writes = onStream.filter((a) => a.type === "write");
    expect(writes.map((w) => w.fin)).toEqual([...writes.slice(1).map(() => false), true]);
    const reader = new FrameReader({ stream: "request", role: "client", maxFrameSize: 1 << 20 });
    const kinds: string[] = [];
    for (const w of writes) {
      reader.push(w.data);
      for (const e of reader.pullAll()) {
        if (e.kind === "frame") kinds.push(e.frame.kind);
        else if (e.kind === "data" && e.start) kinds.push("data");
      }
    }
    expect(kinds).toEqual(["headers", "data", "headers"]);
    // The encoder stream opens with Set Dynamic Table Capacity (RFC 9204 §4.3.1, 001 + 5-bit
    // prefix integer): min(our 4096, the peer's 65536).
    const b = concat(
      ...p.serverActions.flatMap((a) =>
        a.type === "uni-write" && a.stream === "qpack-encoder" ? [a.data] : [],
      ),
    );
    expect([b[0], b[1] & 0xe0]).toEqual([0x02, 0x20]);
    let capacity = b[1] & 0x1f;
    for (let i = 2, shift = 0; capacity >= 31 && i < b.length; i++, shift += 7) {
      capacity += (b[i] & 0x7f) * 2 ** shift;
      if ((b[i] & 0x80) === 0) break;
    }
    expect(capacity).toBe(4096);
    expect(ofType(p.clientEvents, "trailers")[0].fields).toEqual([
      ["x-path", "/f0"],
      ["x-sum", "abc"],
    ]);
    expect(ofType(p.clientEvents, "end").map((e) => e.streamId)).toEqual([0]);
    expect(p.client.isClosed || p.server.isClosed).toBe(false);
  });

  it("POST upload with content-length, streamed in chunks", () => {
    const p = ready();
    const payload = "x".repeat(10_000);
    p.client.sendRequest(0, [
      [":method", "POST"],
      [":scheme", "https"],
      [":authority", "example.com"],
      [":path", "/upload"],
      ["content-length", String(payload.length)],
    ]);
    for (let i = 0; i < payload.length; i += 3000)
      p.client.sendData(0, te.encode(payload.slice(i, i + 3000)));
    p.client.finish(0);
    p.run();
    expect(ofType(p.serverEvents, "request")[0].head.contentLength).toBe(10_000);
    expect(body(p.serverEvents, 0)).toBe(payload);
    expect(ofType(p.serverEvents, "end").length).toBe(1);
    p.server.sendResponse(0, [[":status", "204"]], true);
    p.run();
    expect(ofType(p.clientEvents, "response")[0].head.status).toBe(204);
    expect(ofType(p.clientEvents, "end").length).toBe(1);
  });

  it("delivers interim responses before the final one", () => {
    const p = ready();
    p.client.sendRequest(0, GET, true);
    p.run();
    p.server.sendResponse(0, [
      [":status", "103"],
      ["link", "</s.css>; rel=preload"],
    ]);
    p.server.sendResponse(0, [[":status", "200"]], true);
    p.run();
    expect(ofType(p.clientEvents, "informational")[0].head.status).toBe(103);
    expect(ofType(p.clientEvents, "response")[0].head.status).toBe(200);
  });

  it("runs many requests concurrently", () => {
    const p = ready();
    for (let i = 0; i < 40; i++) p.client.sendRequest(i * 4, [...GET.slice(0, 3), [":path", `/f${i}`]], true);
    p.run();
    const reqs = ofType(p.serverEvents, "request");
    expect(reqs.length).toBe(40);
    for (const r of reqs) {
      p.server.sendResponse(r.streamId, [[":status", "200"]]);
      p.server.sendData(r.streamId, te.encode(r.head.path ?? ""), true);
    }
    p.run();
    for (let i = 0; i < 40; i++) expect(body(p.clientEvents, i * 4)).toBe(`/f${i}`);
  });

  it("uses the QPACK dynamic table across requests: the second HEADERS frame is smaller", () => {
    const p = ready();
    const fields: [string, string][] = [
      ...GET,
      ["user-agent", "purequic-test/1.0 (a fairly long user agent string)"],
      ["x-custom-header", "some value that repeats on every request"],
    ];
    // Bytes a request costs: its HEADERS frame plus the encoder-stream instructions it caused.
    const cost = (send: () => void): number => {
      const before = p.clientActions.length;
      send();
      p.run();
      return p.clientActions
        .slice(before)
        .filter((a) => (a.type === "uni-write" ? a.stream === "qpack-encoder" : a.type === "write"))
        .reduce((n, a) => n + (a.type === "write" || a.type === "uni-write" ? a.data.length : 0), 0);
    };
    const first = cost(() => p.client.sendRequest(0, fields, true));
    const second = cost(() => p.client.sendRequest(4, fields, true));
    expect(p.client.qpackInsertCount).toBeGreaterThan(0);
    expect(second).toBeLessThan(first / 3);
    const reqs = ofType(p.serverEvents, "request");
    expect(reqs[1].head.fields).toEqual(reqs[0].head.fields);
  });

  it("holds a QPACK-blocked request until the encoder stream catches up", () => {
    const p = ready();
    const encoderId = p.uniId(p.client, "qpack-encoder");
    p.hold = (d) => d.to === p.server && d.streamId === encoderId;
    p.client.sendRequest(0, [...GET, ["x-blocked", "value in the dynamic table"]], true);
    p.run();
    expect(p.held.length).toBeGreaterThan(0);
    expect(p.server.isBlocked(0)).toBe(true);
    expect(ofType(p.serverEvents, "request")).toEqual([]);
    p.hold = undefined;
    p.release();
    expect(p.server.isBlocked(0)).toBe(false);
    const req = ofType(p.serverEvents, "request")[0];
    expect(req.head.fields).toEqual([["x-blocked", "value in the dynamic table"]]);
    expect(ofType(p.serverEvents, "end").length).toBe(1);
  });

  it("reports the priority header and PRIORITY_UPDATE frames", () => {
    const p = ready();
    p.client.sendRequest(0, [...GET, ["priority", "u=1, i"]], true);
    p.run();
    expect(ofType(p.serverEvents, "request")[0].head.priority).toEqual({ urgency: 1, incremental: true });
    p.client.sendPriorityUpdate(0, { urgency: 6 });
    // An update for a stream not opened yet is kept for it.
    p.client.sendPriorityUpdate(4, { urgency: 0 });
    p.run();
    expect(ofType(p.serverEvents, "priority")[0]).toMatchObject({ streamId: 0, priority: { urgency: 6 } });
    p.client.sendRequest(4, GET, true);
    p.run();
    expect(ofType(p.serverEvents, "request")[1].head.priority.urgency).toBe(0);
  });

  it("cancels a request with H3_REQUEST_CANCELLED in both directions", () => {
    const p = ready();
    p.client.sendRequest(0, GET);
    p.run();
    p.client.cancel(0);
    p.run();
    expect(p.clientActions.filter((a) => a.type === "reset" || a.type === "stop")).toEqual([
      { type: "reset", streamId: 0, code: H3ErrorCode.H3_REQUEST_CANCELLED },
      { type: "stop", streamId: 0, code: H3ErrorCode.H3_REQUEST_CANCELLED },
    ]);
    expect(ofType(p.serverEvents, "stream-error")[0]).toMatchObject({
      streamId: 0,
      code: H3ErrorCode.H3_REQUEST_CANCELLED,
      remote: true,
    });
    expect(ofType(p.serverEvents, "stopped")[0].code).toBe(H3ErrorCode.H3_REQUEST_CANCELLED);
    expect(p.server.activeRequests).toBe(0);
    expect(p.client.activeRequests).toBe(0);
  });

  it("lets a server answer early and stop reading with H3_NO_ERROR", () => {
    const p = ready();
    p.client.sendRequest(0, [[":method", "POST"], ...GET.slice(1)]);
    p.client.sendData(0, te.encode("part"));
    p.run();
    p.server.stopReading(0);
    p.server.sendResponse(0, [[":status", "413"]], true);
    p.run();
    expect(ofType(p.clientEvents, "stopped")[0].code).toBe(H3ErrorCode.H3_NO_ERROR);
    expect(ofType(p.clientEvents, "response")[0].head.status).toBe(413);
    expect(ofType(p.clientEvents, "end").length).toBe(1);
    expect(p.client.sendData(0, te.encode("more"))).toBe(false);
  });
});

describe("H3Session: GOAWAY", () => {
  it("drains: in-flight requests finish, later ones are rejected as retryable", () => {
    const p = ready();
    p.client.sendRequest(0, GET, true);
    p.run();
    const control = p.uniId(p.server, "control");
    p.hold = (d) => d.to === p.client && d.streamId === control;
    p.server.goaway(GOAWAY_MAX_STREAM_ID);
    p.server.goaway(); // the real limit: stream 4
    expect(p.server.goawaySent).toBe(4n);
    p.client.sendRequest(4, GET, true); // crosses the GOAWAY
    p.run();
    expect(p.serverActions.filter((a) => a.type === "reset" && a.streamId === 4)).toEqual([
      { type: "reset", streamId: 4, code: H3ErrorCode.H3_REQUEST_REJECTED },
    ]);
    expect(ofType(p.clientEvents, "stream-error")[0]).toMatchObject({
      streamId: 4,
      code: H3ErrorCode.H3_REQUEST_REJECTED,
      retryable: true,
    });
    p.hold = undefined;
    p.release();
    expect(ofType(p.clientEvents, "goaway").map((e) => e.id)).toEqual([GOAWAY_MAX_STREAM_ID, 4n]);
    expect(p.client.canRequest).toBe(false);
    expect(() => p.client.sendRequest(8, GET, true)).toThrow(/GOAWAY/);
    // Request 0 still completes.
    p.server.sendResponse(0, [[":status", "200"]]);
    p.server.sendData(0, te.encode("ok"), true);
    p.run();
    expect(body(p.clientEvents, 0)).toBe("ok");
    expect(p.server.activeRequests).toBe(0);
    p.server.close();
    p.run();
    expect(ofType(p.clientEvents, "closed")[0]).toMatchObject({
      code: H3ErrorCode.H3_NO_ERROR,
      remote: true,
    });
  });

  it("marks in-flight client requests above a received GOAWAY as retryable", () => {
    const p = ready();
    p.client.sendRequest(0, GET, true);
    p.client.sendRequest(4, GET, true);
    p.client.sendRequest(8, GET, true);
    p.run();
    p.server.goaway(4n); // explicit: 4 and 8 are cancelled by the server...
    p.run();
    const errs = ofType(p.clientEvents, "stream-error");
    expect(errs.map((e) => e.streamId).sort()).toEqual([4, 8]);
    expect(errs.every((e) => e.retryable)).toBe(true);
    expect(p.client.hasStream(0)).toBe(true);
  });

  it("refuses a GOAWAY whose identifier increases (H3_ID_ERROR)", () => {
    const p = ready();
    const id = p.uniId(p.server, "control")!;
    p.client.receive(id, frame({ kind: "goaway", id: 8n }));
    p.client.receive(id, frame({ kind: "goaway", id: 12n }));
    expect(closeCode(p, "client")).toBe(H3ErrorCode.H3_ID_ERROR);
  });

  it("refuses a GOAWAY with a non-request stream ID from the server (H3_ID_ERROR)", () => {
    const p = ready();
    p.client.receive(p.uniId(p.server, "control")!, frame({ kind: "goaway", id: 3n }));
    expect(closeCode(p, "client")).toBe(H3ErrorCode.H3_ID_ERROR);
  });

  it("a client GOAWAY stops its own new requests", () => {
    const p = ready();
    p.client.goaway();
    p.run();
    expect(ofType(p.serverEvents, "goaway")[0].id).toBe(0n);
    expect(p.client.canRequest).toBe(false);
  });
});

describe("H3Session: malformed messages → H3_MESSAGE_ERROR stream errors", () => {
  const cases: [string, [string, string][]][] = [
    ["missing :method", GET.slice(1)],
    ["missing :path", GET.slice(0, 3)],
    ["missing :scheme", [GET[0], GET[2], GET[3]]],
    ["uppercase name", [...GET, ["X-Upper", "1"]]],
    ["pseudo after regular", [GET[0], GET[1], ["accept", "*"], GET[2], GET[3]]],
    ["unknown pseudo-header", [...GET, [":foo", "bar"]]],
    ["response pseudo in a request", [...GET, [":status", "200"]]],
    ["duplicate :path", [...GET, [":path", "/again"]]],
    ["connection-specific field", [...GET, ["connection", "keep-alive"]]],
    ["transfer-encoding", [...GET, ["transfer-encoding", "chunked"]]],
    ["te other than trailers", [...GET, ["te", "gzip"]]],
    ["empty :path", [GET[0], GET[1], GET[2], [":path", ""]]],
    ["relative :path", [GET[0], GET[1], GET[2], [":path", "index.html"]]],
    ["no authority nor host", [GET[0], GET[1], GET[3]]],
    ["authority and host differ", [...GET, ["host", "other.example"]]],
    [
      "CONNECT with :path",
      [
        [":method", "CONNECT"],
        [":authority", "a:443"],
        [":path", "/"],
      ],
    ],
    [
      ":protocol without extended CONNECT",
      [[":method", "CONNECT"], [":protocol", "websocket"], ...GET.slice(1)],
    ],
    ["bad content-length", [...GET, ["content-length", "12x"]]],
    ["newline in a value", [...GET, ["x-a", "b\nc"]]],
  ];
  for (const [name, fields] of cases) {
    it(`request: ${name}`, () => {
      const p = ready();
      p.server.receive(0, headersFrame(fields), true);
      p.run();
      expect(ofType(p.serverEvents, "request")).toEqual([]);
      expect(p.serverActions.filter((a) => a.type === "reset" || a.type === "stop")).toEqual([
        { type: "reset", streamId: 0, code: H3ErrorCode.H3_MESSAGE_ERROR },
        { type: "stop", streamId: 0, code: H3ErrorCode.H3_MESSAGE_ERROR },
      ]);
      expect(ofType(p.serverEvents, "stream-error")[0].code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
      expect(p.server.isClosed).toBe(false);
    });
  }

  it("accepts the CONNECT and extended CONNECT forms", () => {
    const p = ready({}, { enableConnectProtocol: true });
    p.server.receive(
      0,
      headersFrame([
        [":method", "CONNECT"],
        [":authority", "example.com:443"],
      ]),
    );
    p.server.receive(
      4,
      headersFrame([[":method", "CONNECT"], [":protocol", "webtransport"], ...GET.slice(1)]),
    );
    p.run();
    const reqs = ofType(p.serverEvents, "request");
    expect(reqs.map((r) => r.head.protocol)).toEqual([undefined, "webtransport"]);
    // Only DATA on a CONNECT stream once it is set up (§4.4): trailers are unexpected.
    p.server.receive(0, headersFrame([["x-a", "b"]]));
    expect(closeCode(p, "server")).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
  });

  it("content-length that does not match the DATA total", () => {
    const p = ready();
    p.server.receive(
      0,
      concat(
        headersFrame([[":method", "POST"], ...GET.slice(1), ["content-length", "10"]]),
        frame({ kind: "data", data: te.encode("12345") }),
      ),
      true,
    );
    p.run();
    expect(ofType(p.serverEvents, "request").length).toBe(1);
    expect(ofType(p.serverEvents, "stream-error")[0].code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
    expect(ofType(p.serverEvents, "end")).toEqual([]);
    // Too much content is caught as soon as it arrives.
    p.server.receive(
      4,
      concat(
        headersFrame([[":method", "POST"], ...GET.slice(1), ["content-length", "2"]]),
        frame({ kind: "data", data: te.encode("12345") }),
      ),
    );
    p.run();
    expect(ofType(p.serverEvents, "stream-error")[1]).toMatchObject({
      streamId: 4,
      code: H3ErrorCode.H3_MESSAGE_ERROR,
    });
    expect(body(p.serverEvents, 4)).toBe("");
  });

  it("pseudo-headers in trailers", () => {
    const p = ready();
    p.server.receive(0, concat(headersFrame(GET), headersFrame([[":path", "/x"]])), true);
    p.run();
    expect(ofType(p.serverEvents, "stream-error")[0].code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
  });

  it("responses: missing :status, request pseudo-headers, 101, content for HEAD", () => {
    for (const [fields, method] of [
      [[["content-type", "text/plain"]], "GET"],
      [
        [
          [":status", "200"],
          [":path", "/"],
        ],
        "GET",
      ],
      [[[":status", "101"]], "GET"],
      [[[":status", "2000"]], "GET"],
    ] as [[string, string][], string][]) {
      const p = ready();
      p.client.sendRequest(0, [[":method", method], ...GET.slice(1)], true);
      p.run();
      p.client.receive(0, headersFrame(fields), true);
      p.run();
      expect(ofType(p.clientEvents, "stream-error")[0].code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
    }
    const p = ready();
    p.client.sendRequest(0, [[":method", "HEAD"], ...GET.slice(1)], true);
    p.run();
    p.client.receive(
      0,
      concat(
        headersFrame([
          [":status", "200"],
          ["content-length", "1000"],
        ]),
      ),
      true,
    );
    p.run();
    expect(ofType(p.clientEvents, "end").length).toBe(1); // HEAD: content-length is not checked
  });

  it("a request stream that ends before its header section: H3_REQUEST_INCOMPLETE", () => {
    const p = ready();
    p.server.receive(0, frame({ kind: "unknown", type: 0x21n, payload: new Uint8Array(3) }), true);
    p.run();
    expect(ofType(p.serverEvents, "stream-error")[0].code).toBe(H3ErrorCode.H3_REQUEST_INCOMPLETE);
  });
});

describe("H3Session: frame order and stream rules (connection errors)", () => {
  const onRequest = (bytes: Uint8Array, expected: number) => {
    const p = ready();
    p.server.receive(0, bytes);
    p.run();
    expect(closeCode(p, "server")).toBe(expected);
    expect(ofType(p.clientEvents, "closed")[0]).toMatchObject({ code: expected, remote: true });
  };

  it("DATA before HEADERS", () =>
    onRequest(frame({ kind: "data", data: te.encode("x") }), H3ErrorCode.H3_FRAME_UNEXPECTED));
  it("DATA after trailers", () =>
    onRequest(
      concat(headersFrame(GET), headersFrame([["x", "y"]]), frame({ kind: "data", data: te.encode("x") })),
      H3ErrorCode.H3_FRAME_UNEXPECTED,
    ));
  it("HEADERS after trailers", () =>
    onRequest(
      concat(headersFrame(GET), headersFrame([["x", "y"]]), headersFrame([["x", "z"]])),
      H3ErrorCode.H3_FRAME_UNEXPECTED,
    ));
  it("SETTINGS on a request stream", () =>
    onRequest(frame({ kind: "settings", entries: [] }), H3ErrorCode.H3_FRAME_UNEXPECTED));
  it("GOAWAY on a request stream", () =>
    onRequest(frame({ kind: "goaway", id: 0n }), H3ErrorCode.H3_FRAME_UNEXPECTED));
  it("PUSH_PROMISE sent to a server", () =>
    onRequest(
      frame({ kind: "push_promise", pushId: 0, fieldSection: new Uint8Array(2) }),
      H3ErrorCode.H3_FRAME_UNEXPECTED,
    ));
  it("an HTTP/2 frame type", () =>
    onRequest(Uint8Array.of(0x06, 0x01, 0x00), H3ErrorCode.H3_FRAME_UNEXPECTED));
  it("a truncated frame at FIN", () => {
    const p = ready();
    p.server.receive(0, headersFrame(GET).subarray(0, 5), true);
    expect(closeCode(p, "server")).toBe(H3ErrorCode.H3_FRAME_ERROR);
  });

  it("PUSH_PROMISE to a client that never sent MAX_PUSH_ID: H3_ID_ERROR", () => {
    const p = ready();
    p.client.sendRequest(0, GET, true);
    p.run();
    p.client.receive(0, frame({ kind: "push_promise", pushId: 0, fieldSection: new Uint8Array(2) }));
    expect(closeCode(p, "client")).toBe(H3ErrorCode.H3_ID_ERROR);
  });

  it("skips unknown and reserved frames on request and control streams", () => {
    const p = ready();
    const grease = (t: bigint) => frame({ kind: "unknown", type: t, payload: te.encode("ignored") });
    p.server.receive(p.uniId(p.client, "control")!, concat(grease(0x21n), grease(0x1234n)));
    p.server.receive(
      0,
      concat(
        grease(0x40n),
        headersFrame(GET),
        grease(0x5fn),
        frame({ kind: "data", data: te.encode("ab") }),
        grease(0x21n),
      ),
      true,
    );
    p.run();
    expect(p.server.isClosed).toBe(false);
    expect(ofType(p.serverEvents, "request").length).toBe(1);
    expect(body(p.serverEvents, 0)).toBe("ab");
    expect(ofType(p.serverEvents, "end").length).toBe(1);
  });

  it("a server-initiated bidirectional stream is H3_STREAM_CREATION_ERROR for a client", () => {
    const p = ready();
    p.client.receive(1, headersFrame(GET));
    expect(closeCode(p, "client")).toBe(H3ErrorCode.H3_STREAM_CREATION_ERROR);
  });
});

describe("H3Session: control and QPACK stream rules", () => {
  const peerUni = (p: SessionPair, id: number, bytes: Uint8Array, fin = false) => {
    p.server.receive(id, bytes, fin);
    p.run();
  };
  const settings = frame({ kind: "settings", entries: [] });

  it("a second control stream: H3_STREAM_CREATION_ERROR", () => {
    const p = ready();
    peerUni(p, 14, concat(Uint8Array.of(0x00), settings));
    expect(closeCode(p, "server")).toBe(H3ErrorCode.H3_STREAM_CREATION_ERROR);
  });

  it("a second QPACK encoder or decoder stream: H3_STREAM_CREATION_ERROR", () => {
    for (const type of [0x02, 0x03]) {
      const p = ready();
      peerUni(p, 14, Uint8Array.of(type));
      expect(closeCode(p, "server")).toBe(H3ErrorCode.H3_STREAM_CREATION_ERROR);
    }
  });

  it("closing or resetting a critical stream: H3_CLOSED_CRITICAL_STREAM", () => {
    for (const name of ["control", "qpack-encoder", "qpack-decoder"] as const) {
      const p = ready();
      peerUni(p, p.uniId(p.client, name)!, new Uint8Array(0), true);
      expect(closeCode(p, "server")).toBe(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM);
      const q = ready();
      q.server.streamReset(q.uniId(q.client, name)!, 0);
      expect(closeCode(q, "server")).toBe(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM);
      const r = ready();
      r.client.localUniStopped(name);
      expect(closeCode(r, "client")).toBe(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM);
    }
  });

  it("a control stream that does not start with SETTINGS: H3_MISSING_SETTINGS", () => {
    const p = new SessionPair();
    // Deliver a fake client control stream before the real one.
    p.server.receive(2, concat(Uint8Array.of(0x00), frame({ kind: "goaway", id: 0n })));
    expect(closeCode(p, "server")).toBe(H3ErrorCode.H3_MISSING_SETTINGS);
  });

  it("a second SETTINGS frame: H3_FRAME_UNEXPECTED", () => {
    const p = ready();
    peerUni(p, p.uniId(p.client, "control")!, settings);
    expect(closeCode(p, "server")).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
  });

  it("invalid SETTINGS (HTTP/2 identifier): H3_SETTINGS_ERROR", () => {
    const p = new SessionPair();
    p.server.receive(
      2,
      concat(Uint8Array.of(0x00), frame({ kind: "settings", entries: [{ id: 0x02n, value: 1n }] })),
    );
    expect(closeCode(p, "server")).toBe(H3ErrorCode.H3_SETTINGS_ERROR);
  });

  it("push streams are refused: H3_ID_ERROR at a client, H3_STREAM_CREATION_ERROR at a server", () => {
    const p = ready();
    p.client.receive(15, Uint8Array.of(0x01, 0x00));
    expect(closeCode(p, "client")).toBe(H3ErrorCode.H3_ID_ERROR);
    const q = ready();
    peerUni(q, 14, Uint8Array.of(0x01, 0x00));
    expect(closeCode(q, "server")).toBe(H3ErrorCode.H3_STREAM_CREATION_ERROR);
  });

  it("MAX_PUSH_ID at a client, CANCEL_PUSH, PRIORITY_UPDATE for a push: errors", () => {
    const p = ready();
    p.client.receive(p.uniId(p.server, "control")!, frame({ kind: "max_push_id", pushId: 4 }));
    expect(closeCode(p, "client")).toBe(H3ErrorCode.H3_FRAME_UNEXPECTED);
    const q = ready();
    peerUni(q, q.uniId(q.client, "control")!, frame({ kind: "cancel_push", pushId: 0 }));
    expect(closeCode(q, "server")).toBe(H3ErrorCode.H3_ID_ERROR);
    const r = ready();
    peerUni(
      r,
      r.uniId(r.client, "control")!,
      frame({ kind: "priority_update", push: true, elementId: 0, value: "u=1" }),
    );
    expect(closeCode(r, "server")).toBe(H3ErrorCode.H3_ID_ERROR);
    const s = ready();
    peerUni(
      s,
      s.uniId(s.client, "control")!,
      frame({ kind: "priority_update", push: false, elementId: 2, value: "u=1" }),
    );
    expect(closeCode(s, "server")).toBe(H3ErrorCode.H3_ID_ERROR);
    const t = ready();
    peerUni(t, t.uniId(t.client, "control")!, frame({ kind: "max_push_id", pushId: 4 }));
    peerUni(t, t.uniId(t.client, "control")!, frame({ kind: "max_push_id", pushId: 2 }));
    expect(closeCode(t, "server")).toBe(H3ErrorCode.H3_ID_ERROR);
  });

  it("unknown and reserved stream types are stopped with H3_STREAM_CREATION_ERROR and ignored", () => {
    const p = ready();
    peerUni(p, 14, concat(Uint8Array.of(0x40, 0x21), te.encode("padding")));
    peerUni(p, 18, concat(Uint8Array.of(0x54, 0x00), te.encode("webtransport")));
    peerUni(p, 22, Uint8Array.of(0x7f, 0xff), true);
    expect(p.server.isClosed).toBe(false);
    expect(p.serverActions.filter((a) => a.type === "stop")).toEqual([
      { type: "stop", streamId: 14, code: H3ErrorCode.H3_STREAM_CREATION_ERROR },
      { type: "stop", streamId: 18, code: H3ErrorCode.H3_STREAM_CREATION_ERROR },
      { type: "stop", streamId: 22, code: H3ErrorCode.H3_STREAM_CREATION_ERROR },
    ]);
    // A stream closed before its type arrived is tolerated (§6.2).
    peerUni(p, 26, new Uint8Array(0), true);
    p.server.streamReset(30, 0);
    expect(p.server.isClosed).toBe(false);
  });

  it("a bad QPACK encoder instruction: QPACK_ENCODER_STREAM_ERROR", () => {
    const p = ready();
    // Set Dynamic Table Capacity above our maximum (4096).
    peerUni(p, p.uniId(p.client, "qpack-encoder")!, Uint8Array.of(0x3f, 0xe1, 0xff, 0x03));
    expect(closeCode(p, "server")).toBe(H3ErrorCode.QPACK_ENCODER_STREAM_ERROR);
  });
});

describe("H3Session: hostile input", () => {
  const h3Codes = new Set<number>(Object.values(H3ErrorCode));
  const expectOnlyH3Errors = (s: H3Session) => {
    if (s.closeReason) expect(h3Codes.has(s.closeReason.code)).toBe(true);
  };

  it("random bytes on request streams, control and unknown streams only ever produce H3 errors", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            stream: fc.constantFrom(0, 4, 8, 2, 6, 10, 14),
            bytes: fc.uint8Array({ maxLength: 64 }),
            fin: fc.boolean(),
          }),
          { maxLength: 12 },
        ),
        (inputs) => {
          const p = ready();
          for (const { stream, bytes, fin } of inputs) {
            p.server.receive(stream, bytes, fin);
            p.run();
          }
          expectOnlyH3Errors(p.server);
          for (const a of p.serverActions) {
            if (a.type === "reset" || a.type === "stop" || a.type === "close")
              expect(h3Codes.has(a.code)).toBe(true);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it("random well-framed sequences of frames on a request stream only produce H3 errors", () => {
    const anyFrame = fc.oneof(
      fc.uint8Array({ maxLength: 20 }).map((d) => frame({ kind: "data", data: d })),
      fc.constantFrom(
        headersFrame(GET),
        headersFrame([["x", "y"]]),
        headersFrame([[":status", "200"]]),
        frame({ kind: "settings", entries: [] }),
        frame({ kind: "goaway", id: 4n }),
        frame({ kind: "unknown", type: 0x21n, payload: new Uint8Array(4) }),
        Uint8Array.of(FrameType.HEADERS, 3, 0xff, 0xff, 0xff),
      ),
    );
    fc.assert(
      fc.property(fc.array(anyFrame, { maxLength: 8 }), fc.boolean(), (frames, fin) => {
        const p = ready();
        p.server.receive(0, concat(...frames), fin);
        p.run();
        expectOnlyH3Errors(p.server);
        const q = ready();
        q.client.sendRequest(0, GET, true);
        q.run();
        q.client.receive(0, concat(...frames), fin);
        q.run();
        expectOnlyH3Errors(q.client);
      }),
      { numRuns: 300 },
    );
  });
});
