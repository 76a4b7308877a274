import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReverseSessionError } from "./errors.ts";
import { encodeFrame, FrameReader, MAX_FRAME_SIZE } from "./frame.ts";
import { decodeMessage, encodeMessage, type ProtocolMessage } from "./messages.ts";
import { ReverseSession, type SessionConfig, type SessionEvent } from "./session.ts";
import { decodeStreamBind, encodeStreamBind } from "./stream-bind.ts";
import { hex, messageFromJson, toHex, vectors } from "./testdata/vectors.ts";

// biome-ignore lint/suspicious/noExplicitAny: vector JSON
type Json = any;

/** Our session standing where the Rust one stood in a recording; `out` collects what it sent. */
class Replay {
  out = "";
  readonly events: SessionEvent[] = [];
  now = 1000;
  constructor(readonly session: ReverseSession) {}
  pump(): void {
    for (let b = this.session.pollSend(); b; b = this.session.pollSend()) this.out += toHex(b);
    for (let e = this.session.pollEvent(); e; e = this.session.pollEvent()) this.events.push(e);
  }
  feed(bytes: Uint8Array): void {
    this.session.receive(bytes, this.now);
    this.pump();
  }
  /** Expects `frameHex` to be the next thing we sent. */
  expectSent(frameHex: string): void {
    this.pump();
    expect(this.out.slice(0, frameHex.length)).toBe(frameHex);
    this.out = this.out.slice(frameHex.length);
  }
  expectSilent(): void {
    this.pump();
    expect(this.out).toBe("");
  }
  take<T extends SessionEvent["type"]>(type: T): Extract<SessionEvent, { type: T }> {
    const i = this.events.findIndex((e) => e.type === type);
    expect(i, `event ${type} in ${JSON.stringify(this.events.map((e) => e.type))}`).toBeGreaterThanOrEqual(0);
    return this.events.splice(i, 1)[0] as Extract<SessionEvent, { type: T }>;
  }
}

function peerBytes(f: Json): Uint8Array {
  if (f.frame_hex !== undefined) return hex(f.frame_hex);
  if (f.bytes_hex !== undefined) return hex(f.bytes_hex);
  // max_size_frame_accepted: OpenRequest{77, "x", Bytes 65502 × 0xab, flags 0} in a 65536-byte payload.
  const payload = encodeMessage({
    type: "OpenRequest",
    requestId: 77n,
    service: "x",
    metadata: { type: "Bytes", value: new Uint8Array(65502).fill(0xab) },
    flags: 0,
  });
  expect(payload.length).toBe(MAX_FRAME_SIZE);
  const frame = encodeFrame(payload);
  expect(frame.length).toBe(f.bytes_len);
  return frame;
}

/** What the Rust application did to make the Rust session send `m` (ids must come out the same). */
function appAction(r: Replay, m: ProtocolMessage): void {
  const s = r.session;
  switch (m.type) {
    case "OpenResponse":
      if (m.status.type === "Accepted") s.acceptOpen(m.requestId, m.logicalStreamId!);
      else s.rejectOpen(m.requestId, m.status.code, m.reason);
      return;
    case "OpenRequest":
      expect(s.open(m.service, m.metadata, m.flags, r.now)).toBe(m.requestId);
      return;
    case "Ping":
      expect(s.ping(r.now)).toBe(m.sequence);
      return;
    case "StreamClose":
      if (m.logicalStreamId === 0n) s.close(m.code, m.reason);
      else s.closeStream(m.logicalStreamId, m.code, m.reason);
      return;
    default:
      throw new Error(`the Rust session sent ${m.type} on its own, and we did not`);
  }
}

describe("session_transcripts replay against our session", () => {
  for (const t of vectors.session_transcripts) {
    it(t.name, () => {
      const first = t.frames.find((f: Json) => f.dir === "rust->peer" && f.message?.type === "Hello").message;
      const role = t.name.startsWith("rust_server") ? "server" : "client";
      const r = new Replay(new ReverseSession({ role, features: first.features, agent: first.agent }));
      r.session.start(r.now);
      let lastAccepted: bigint | undefined;
      for (const f of t.frames) {
        r.now += 5;
        if (f.stream !== undefined) {
          // A data stream: its first bytes are the StreamBind header, then application data.
          const bytes = hex(f.bytes_hex);
          if (f.dir === "rust->peer") {
            expect(toHex(encodeStreamBind(lastAccepted!))).toBe(f.bytes_hex.slice(0, 26));
          } else {
            const id = decodeStreamBind(bytes, lastAccepted);
            expect(r.session.dataStreamBound(id, r.now)).toBe("claimed");
            r.pump();
            expect(r.take("open-ready").logicalStreamId).toBe(id);
          }
          continue;
        }
        if (f.dir === "peer->rust") {
          const m = messageFromJson(f.message);
          r.feed(hex(f.frame_hex));
          if (m.type === "OpenResponse" && m.status.type === "Accepted") lastAccepted = m.logicalStreamId!;
          if (m.type === "OpenResponse" && m.status.type === "Rejected") {
            expect(r.take("open-failed").error.message).toBe(t.rejected_open_error);
          }
          if (m.type === "OpenRequest") {
            const e = r.take("open-request");
            expect(e).toMatchObject({ requestId: m.requestId, service: m.service, metadata: m.metadata });
          }
          if (m.type === "Pong") expect(r.take("pong").sequence).toBe(m.sequence);
          continue;
        }
        if (f.event !== undefined) {
          r.expectSilent();
          continue;
        }
        const m = messageFromJson(f.message);
        r.pump();
        if (r.out === "") appAction(r, m);
        if (m.type === "OpenResponse" && m.status.type === "Accepted") lastAccepted = m.logicalStreamId!;
        r.expectSent(f.frame_hex);
      }
      r.expectSilent();
      expect(r.session.state).toBe(t.final_state);
      expect(r.session.negotiatedVersion).toBe(t.negotiated.version);
      expect(r.session.negotiatedFeatures).toBe(t.negotiated.features);
    });
  }
});

describe("session_behavior.negotiation replays against our session", () => {
  for (const c of vectors.session_behavior.negotiation) {
    it(c.name, () => {
      const config: SessionConfig = {
        role: c.rust_role,
        features: c.rust_role === "server" ? 0x3 : 0x2,
        supportedVersions: /supported_versions \[1, 2\]/.test(c.situation) ? [1, 2] : [1],
        negotiationTimeoutMs: 1000,
      };
      const r = new Replay(new ReverseSession(config));
      r.session.start(r.now);
      if (c.seconds === 1.0) {
        // The peer stays silent for 1.5 s: the whole-handshake timeout fires first.
        r.now += 1500;
        expect(r.session.nextTimeout()).toBe(1000 + 1000);
        r.session.handleTimeout(r.now);
        r.pump();
      } else {
        for (const f of c.frames) {
          if (f.dir === "peer->rust") {
            if (f.event !== undefined) {
              r.session.receiveEnd();
              r.pump();
            } else r.feed(peerBytes(f));
          } else if (f.event !== undefined) r.expectSilent();
          else r.expectSent(f.frame_hex);
        }
      }
      r.expectSilent();
      expect(r.session.state).toBe(c.state_after);
      if (c.result === "ok") {
        expect(r.take("ready")).toMatchObject({
          version: c.negotiated.version,
          features: c.negotiated.features,
        });
      } else {
        expect(r.take("negotiation-failed").error.message).toBe(c.result.error);
        expect(r.session.stoppedReading).toBe(true);
      }
    });
  }
});

/** Our session (server role, features 0) negotiated with a peer that offers `features`. */
function readySession(features = 0): Replay {
  const r = new Replay(new ReverseSession({ role: "server", features, pingTimeoutMs: 10_000 }));
  r.session.start(r.now);
  r.feed(encodeFrame(encodeMessage({ type: "Hello", protocolVersion: 1, features: 0, agent: null })));
  r.feed(encodeFrame(encodeMessage({ type: "HelloAck", selectedVersion: 1, selectedFeatures: 0 })));
  r.take("ready");
  r.out = "";
  return r;
}

describe("session_behavior.after_negotiation replays against our session", () => {
  for (const c of vectors.session_behavior.after_negotiation) {
    it(c.name, () => {
      const r = readySession();
      for (const f of c.frames) {
        if (f.dir === "peer->rust") {
          if (f.event !== undefined) {
            r.session.receiveEnd();
            r.pump();
          } else r.feed(peerBytes(f));
        } else if (f.event !== undefined) r.expectSilent();
        else r.expectSent(f.frame_hex);
      }
      r.expectSilent();
      expect(r.session.state).toBe(c.state_after);
      if (c.delivered_to_application) expect(r.take("open-request").service).toBeTypeOf("string");
      if (c.closing_event) expect(r.take("closing").remote).toBe(true);
      if (c.rust_error && c.state_after === "Disconnected") {
        expect(r.take("disconnected").error.message).toBe(c.rust_error);
      }
      if (c.state_after === "Disconnected" && !c.rust_error) r.take("disconnected");
      if (c.local_ping_after === "session closed") {
        expect(() => r.session.ping(r.now)).toThrow(ReverseSessionError);
        expect(() => r.session.ping(r.now)).toThrow("session closed");
      }
      if (c.state_after === "Closed") r.take("closed");
    });
  }
});

describe("session", () => {
  /** Two of our sessions wired back to back. */
  function pair(configA: Partial<SessionConfig> = {}, configB: Partial<SessionConfig> = {}) {
    const a = new Replay(new ReverseSession({ role: "client", features: 3, agent: "a", ...configA }));
    const b = new Replay(new ReverseSession({ role: "server", features: 6, ...configB }));
    const flush = () => {
      for (let i = 0; i < 10; i++) {
        a.pump();
        b.pump();
        if (a.out === "" && b.out === "") return;
        const ab = a.out;
        const ba = b.out;
        a.out = "";
        b.out = "";
        if (ab) b.feed(hex(ab));
        if (ba) a.feed(hex(ba));
      }
    };
    a.session.start(a.now);
    b.session.start(b.now);
    flush();
    return { a, b, flush };
  }

  it("negotiates the feature intersection on both sides", () => {
    const { a, b } = pair();
    expect(a.session.state).toBe("Ready");
    expect(b.session.state).toBe("Ready");
    expect(a.take("ready")).toMatchObject({ version: 1, features: 2, peerAgent: null });
    expect(b.take("ready")).toMatchObject({ version: 1, features: 2, peerAgent: "a" });
  });

  it("opens, accepts and pairs the data stream whichever arrives first", () => {
    const { a, b, flush } = pair();
    const id1 = a.session.open("svc", { type: "Empty" }, 0, a.now);
    const id2 = a.session.open("svc", { type: "Empty" }, 0, a.now);
    flush();
    expect(b.take("open-request").requestId).toBe(id1);
    expect(b.take("open-request").requestId).toBe(id2);
    // Stream for request 2 arrives before its response.
    expect(a.session.dataStreamBound(20n, a.now)).toBe("parked");
    b.session.acceptOpen(id1, 10n);
    b.session.acceptOpen(id2, 20n);
    flush();
    expect(a.take("open-ready")).toMatchObject({ requestId: id2, logicalStreamId: 20n });
    expect(a.session.dataStreamBound(10n, a.now)).toBe("claimed");
    a.pump();
    expect(a.take("open-ready")).toMatchObject({ requestId: id1, logicalStreamId: 10n });
    expect(a.session.pendingOpens).toBe(0);
    expect(a.session.nextTimeout()).toBeUndefined();
  });

  it("times out an open, a missing data stream, an unclaimed stream and a ping", () => {
    const { a, b, flush } = pair({ openTimeoutMs: 100, streamBindTimeoutMs: 50, pingTimeoutMs: 30 });
    const lost = a.session.open("svc", { type: "Empty" }, 0, a.now);
    const accepted = a.session.open("svc", { type: "Empty" }, 0, a.now);
    flush();
    b.take("open-request");
    b.take("open-request");
    b.session.acceptOpen(accepted, 5n);
    flush();
    expect(a.session.dataStreamBound(99n, a.now)).toBe("parked");
    a.session.ping(a.now); // b answers; this one completes
    const seq = a.session.ping(a.now);
    expect(seq).toBe(2n);
    a.pump();
    a.out = ""; // the second ping is lost
    a.now += 50;
    expect(a.session.nextTimeout()).toBe(1000 + 30);
    a.session.handleTimeout(a.now);
    a.pump();
    expect(a.take("ping-failed")).toMatchObject({ sequence: 1n });
    expect(a.take("open-failed")).toMatchObject({ requestId: accepted, error: { kind: "timeout" } });
    expect(a.take("bind-expired").logicalStreamId).toBe(99n);
    a.now += 50;
    a.session.handleTimeout(a.now);
    a.pump();
    expect(a.take("open-failed")).toMatchObject({
      requestId: lost,
      error: { message: "timeout: open request" },
    });
    expect(a.session.pendingOpens).toBe(0);
    expect(a.session.nextTimeout()).toBeUndefined();
  });

  it("limits open requests in flight and fails them all when the session closes", () => {
    const { a, b, flush } = pair({ maxConcurrentRequests: 2 });
    a.session.open("x", { type: "Empty" }, 0, a.now);
    a.session.open("x", { type: "Empty" }, 0, a.now);
    expect(() => a.session.open("x", { type: "Empty" }, 0, a.now)).toThrow(/limit 2/);
    b.session.close("Normal", "bye");
    flush();
    expect(a.session.state).toBe("Closing");
    expect(a.events.filter((e) => e.type === "open-failed")).toHaveLength(2);
    expect(() => a.session.open("x", { type: "Empty" }, 0, a.now)).toThrow("session closed");
    expect(a.session.pendingOpens).toBe(0);
  });

  it("answers a flood of unanswered peer requests with LimitExceeded beyond the bound", () => {
    const { a, b, flush } = pair({}, { maxPendingIncoming: 3 });
    for (let i = 0; i < 5; i++) a.session.open("x", { type: "Empty" }, 0, a.now);
    flush();
    expect(b.events.filter((e) => e.type === "open-request")).toHaveLength(3);
    const failed = a.events.filter((e) => e.type === "open-failed");
    expect(failed.map((e) => (e as { error: ReverseSessionError }).error.rejection?.code)).toEqual([
      "LimitExceeded",
      "LimitExceeded",
    ]);
  });

  it("rejects API misuse with typed errors", () => {
    const r = new Replay(new ReverseSession({ role: "client" }));
    expect(() => r.session.ping(0)).toThrow("session not ready");
    r.session.start(0);
    expect(() => r.session.start(0)).toThrow(/already started/);
    expect(() => r.session.open("x", { type: "Empty" }, 0, 0)).toThrow(ReverseSessionError);
    const ready = readySession();
    expect(() => ready.session.acceptOpen(5n, 1n)).toThrow(/no pending open request 5/);
    expect(() => ready.session.closeStream(0n, "Normal", null)).toThrow(/use close/);
    expect(() => ready.session.acceptOpen(1n, 0n)).toThrow(/reserved/);
  });

  it("keeps sending frames that decode back to what was asked", () => {
    const r = readySession();
    r.session.closeStream(3n, "Timeout", "slow");
    r.pump();
    const bytes = hex(r.out);
    expect(decodeMessage(bytes.subarray(4))).toEqual({
      type: "StreamClose",
      logicalStreamId: 3n,
      code: "Timeout",
      reason: "slow",
    });
  });

  it("hostile control-stream bytes never throw, and whatever we send back is well-formed", () => {
    const validFrame = fc
      .constantFrom(...vectors.valid.slice(0, 52).map((v: { frame_hex: string }) => v.frame_hex))
      .map((h: string) => hex(h));
    const chunk = fc.oneof(validFrame, fc.uint8Array({ maxLength: 40 }));
    fc.assert(
      fc.property(fc.boolean(), fc.array(chunk, { maxLength: 12 }), (ready, chunks) => {
        const r = ready ? readySession() : new Replay(new ReverseSession({ role: "server" }));
        if (!ready) r.session.start(r.now);
        for (const c of chunks) r.feed(c);
        r.session.receiveEnd();
        r.session.handleTimeout(r.now + 60_000);
        r.pump();
        expect(["Negotiating", "Ready", "Closing", "Closed", "Disconnected"]).toContain(r.session.state);
        const out = new FrameReader();
        out.push(hex(r.out));
        for (let p = out.next(); p; p = out.next()) expect(() => decodeMessage(p)).not.toThrow();
        expect(out.buffered).toBe(0);
        expect(r.session.pendingOpens + r.session.pendingPings).toBe(0);
      }),
    );
  });
});
