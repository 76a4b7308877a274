/** quic-reverse SessionClient over real purequic connections on loopback UDP. */
import { afterEach, describe, expect, it } from "vitest";
import { connect, listen, type QuicConnection, type QuicServer } from "../src/quic/api.ts";
import { Features, FrameReader, ReverseSessionError, SessionClient } from "../src/reverse/index.ts";
import { hex, toHex, vectors } from "../src/reverse/testdata/vectors.ts";

let server: QuicServer | undefined;
const conns: QuicConnection[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) if (!c.closeReason) await c.close(0, "test over");
  await server?.close();
  server = undefined;
});

/** A connected pair: `edge` is the QUIC client (session client role), `relay` the server. */
async function pair(
  relayOptions: Parameters<typeof SessionClient.establish>[1] = {},
  edgeOptions: Parameters<typeof SessionClient.establish>[1] = {},
) {
  server = await listen({ host: "127.0.0.1", port: 0, alpn: ["quic-reverse"] });
  const accepted = server.accept();
  const edgeConn = await connect({
    host: "127.0.0.1",
    port: server.address.port,
    alpn: ["quic-reverse"],
    insecure: true,
  });
  const relayConn = (await accepted)!;
  conns.push(edgeConn, relayConn);
  const [relay, edge] = await Promise.all([
    SessionClient.establish(relayConn, {
      features: Features.PING_PONG | Features.STRUCTURED_METADATA,
      ...relayOptions,
    }),
    SessionClient.establish(edgeConn, { features: Features.PING_PONG, agent: "edge/1", ...edgeOptions }),
  ]);
  return { relay, edge, relayConn, edgeConn };
}

const text = (s: string) => new TextEncoder().encode(s);

describe("SessionClient over QUIC", () => {
  it("negotiates by role: the QUIC client opens the control stream and speaks first", async () => {
    const { relay, edge } = await pair();
    expect(edge.session.role).toBe("client");
    expect(relay.session.role).toBe("server");
    expect(relay.state).toBe("Ready");
    expect(edge.session.negotiatedFeatures).toBe(Features.PING_PONG);
    expect(relay.session.peerAgent).toBe("edge/1");
  });

  it("opens streams the peer accepts, binds them and carries data both ways, concurrently", async () => {
    const { relay, edge } = await pair();
    void (async () => {
      for await (const req of edge.requests()) {
        if (req.service !== "echo") {
          await edge.rejectOpen(req.requestId, "UnsupportedService", `no ${req.service}`);
          continue;
        }
        const s = await edge.accept(req);
        void (async () => {
          for await (const chunk of s.recv) await s.send.write(chunk.slice());
          await s.send.finish();
        })();
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const s = await relay.open("echo", {
          type: "Structured",
          entries: new Map([["i", { type: "Integer", value: BigInt(i) }]]),
        });
        await s.send.write(text(`hello ${i}`));
        await s.send.finish();
        const chunks: Uint8Array[] = [];
        for await (const c of s.recv) chunks.push(c.slice());
        return { id: s.logicalStreamId, body: Buffer.concat(chunks).toString() };
      }),
    );
    expect(results.map((r) => r.body)).toEqual(Array.from({ length: 20 }, (_, i) => `hello ${i}`));
    expect(new Set(results.map((r) => r.id)).size).toBe(20);
    await expect(relay.open("ftp")).rejects.toMatchObject({
      kind: "stream-rejected",
      message: "stream rejected: unsupported service: no ftp",
      rejection: { code: "UnsupportedService", reason: "no ftp" },
    });
    expect(relay.session.pendingOpens).toBe(0);
  });

  it("pings in both directions and reports a round-trip time", async () => {
    const { relay, edge } = await pair();
    const rtt1 = await relay.ping();
    const rtt2 = await edge.ping();
    expect(rtt1).toBeGreaterThanOrEqual(0);
    expect(rtt2).toBeGreaterThanOrEqual(0);
    expect(relay.session.pendingPings).toBe(0);
  });

  it("times out an open the peer never answers, and limits opens in flight", async () => {
    const { relay } = await pair({ openTimeoutMs: 200, maxConcurrentRequests: 2 });
    const a = relay.open("x");
    const b = relay.open("x");
    await expect(relay.open("x")).rejects.toMatchObject({ kind: "limit-exceeded" });
    await expect(a).rejects.toMatchObject({ kind: "timeout", message: "timeout: open request" });
    await expect(b).rejects.toThrow(ReverseSessionError);
    expect(relay.session.pendingOpens).toBe(0);
    expect(relay.session.nextTimeout()).toBeUndefined();
  });

  it("closes gracefully: the peer sees Closing and pending operations fail", async () => {
    const { relay, edge } = await pair();
    const pending = edge.open("never-answered");
    const closes: bigint[] = [];
    relay.onStreamClose((id) => closes.push(id));
    await edge.closeStream(9n, "Reset", "gone");
    await edge.close("Normal", "bye");
    await expect(pending).rejects.toMatchObject({ kind: "session-closed" });
    expect(await relay.closed).toBe("Closing");
    expect(closes).toEqual([9n]);
    expect(edge.state).toBe("Closing");
    await expect(edge.ping()).rejects.toThrow("session closed");
    await expect(relay.ping()).rejects.toThrow("session closed");
  });

  it("a peer that garbles the control stream disconnects the session without closing the connection", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["quic-reverse"] });
    const accepted = server.accept();
    const edgeConn = await connect({
      host: "127.0.0.1",
      port: server.address.port,
      alpn: ["quic-reverse"],
      insecure: true,
    });
    const relayConn = (await accepted)!;
    conns.push(edgeConn, relayConn);
    const relayP = SessionClient.establish(relayConn);
    const raw = await edgeConn.openBi();
    await raw.send.write(Uint8Array.from([0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff]));
    await expect(relayP).rejects.toMatchObject({ kind: "negotiation-failed" });
    expect(relayConn.closeReason).toBeUndefined();
  });

  it("negotiation times out when the peer never speaks", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["quic-reverse"] });
    const accepted = server.accept();
    const edgeConn = await connect({
      host: "127.0.0.1",
      port: server.address.port,
      alpn: ["quic-reverse"],
      insecure: true,
    });
    const relayConn = (await accepted)!;
    conns.push(edgeConn, relayConn);
    const relayP = SessionClient.establish(relayConn, { negotiationTimeoutMs: 150 });
    const raw = await edgeConn.openBi();
    await raw.send.write(new Uint8Array(0));
    await expect(relayP).rejects.toMatchObject({ kind: "timeout", message: "timeout: negotiation" });
  });

  it("speaks byte for byte with the recorded Rust server (rust_server_peer_client) over QUIC", async () => {
    const t = vectors.session_transcripts.find((x: { name: string }) => x.name === "rust_server_peer_client");
    const frame = (i: number): string => t.frames[i].frame_hex;
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["quic-reverse"] });
    const accepted = server.accept();
    const conn = await connect({
      host: "127.0.0.1",
      port: server.address.port,
      alpn: ["quic-reverse"],
      insecure: true,
    });
    const rust = (await accepted)!;
    conns.push(conn, rust);
    // The "Rust" side: reads our frames and answers with the recorded bytes.
    const ours = (async () => (await rust.acceptBi())!)();
    const clientP = SessionClient.establish(conn, { agent: "ts-client/0.1", features: 6 });
    const control = await ours;
    const reader = new FrameReader();
    const nextFrame = async (): Promise<string> => {
      for (;;) {
        const p = reader.next();
        if (p) {
          const len = Buffer.alloc(4);
          len.writeUInt32BE(p.length);
          return toHex(len) + toHex(p);
        }
        const chunk = await control.recv.read();
        if (!chunk) throw new Error("control stream ended");
        reader.push(chunk);
      }
    };
    expect(await nextFrame()).toBe(frame(0)); // our Hello
    await control.send.write(hex(frame(1)));
    expect(await nextFrame()).toBe(frame(2)); // our HelloAck: features 6 ∧ 3
    await control.send.write(hex(frame(3)));
    const client = await clientP;
    expect(client.session.negotiatedFeatures).toBe(t.negotiated.features);

    const opened = client.open("echo", {
      type: "Structured",
      entries: new Map([["user", { type: "String", value: "alice" }]]),
    });
    expect(await nextFrame()).toBe(frame(4));
    await control.send.write(hex(frame(5)));
    const data = await rust.openBi();
    await data.send.write(hex(t.frames[6].bytes_hex)); // StreamBind(7) + "hi"
    await data.send.finish();
    const stream = await opened;
    expect(stream.logicalStreamId).toBe(7n);
    expect(Buffer.from((await stream.recv.read())!).toString()).toBe("hi");

    const rejected = client.open("ftp");
    expect(await nextFrame()).toBe(frame(7));
    await control.send.write(hex(frame(8)));
    await expect(rejected).rejects.toThrow("stream rejected: unsupported service: no such service");

    await control.send.write(hex(frame(11))); // Rust pings; we answer at once
    expect(await nextFrame()).toBe(frame(12));
    await client.closeStream(7n, "Normal");
    expect(await nextFrame()).toBe(frame(13));
    await client.close("Normal", "bye");
    expect(await nextFrame()).toBe(frame(15));
    expect(client.state).toBe("Closing");
  });

  it("speaks byte for byte with the recorded Rust client (rust_client_peer_server) over QUIC", async () => {
    const t = vectors.session_transcripts.find((x: { name: string }) => x.name === "rust_client_peer_server");
    const frame = (i: number): string => t.frames[i].frame_hex;
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["quic-reverse"] });
    const accepted = server.accept();
    const rust = await connect({
      host: "127.0.0.1",
      port: server.address.port,
      alpn: ["quic-reverse"],
      insecure: true,
    });
    const conn = (await accepted)!;
    conns.push(conn, rust);
    const serverP = SessionClient.establish(conn, { features: 7 });
    // The "Rust" client opens the control stream and speaks first.
    const control = await rust.openBi();
    await control.send.write(hex(frame(0)));
    const reader = new FrameReader();
    const nextFrame = async (): Promise<string> => {
      for (;;) {
        const p = reader.next();
        if (p) {
          const len = Buffer.alloc(4);
          len.writeUInt32BE(p.length);
          return toHex(len) + toHex(p);
        }
        const chunk = await control.recv.read();
        if (!chunk) throw new Error("control stream ended");
        reader.push(chunk);
      }
    };
    expect(await nextFrame()).toBe(frame(1)); // our Hello, only after theirs
    await control.send.write(hex(frame(2)));
    expect(await nextFrame()).toBe(frame(3));
    const ours = await serverP;
    expect(ours.session.negotiatedFeatures).toBe(t.negotiated.features);
    const requests = ours.requests();

    await control.send.write(hex(frame(4)));
    const req = (await requests.next()).value!;
    expect(req).toMatchObject({ requestId: 1n, service: "svc", metadata: { type: "Bytes" } });
    const dataIn = rust.acceptBi();
    const stream = await ours.accept(req, 42n);
    expect(await nextFrame()).toBe(frame(5));
    await stream.send.write(Buffer.from("hi"));
    await stream.send.finish();
    const bytes = await (await dataIn)!.recv.readAll();
    expect(toHex(bytes)).toBe(t.frames[6].bytes_hex);

    await control.send.write(hex(frame(7)));
    const admin = (await requests.next()).value!;
    expect(admin.service).toBe("admin");
    await ours.rejectOpen(admin.requestId, "Unauthorized", "denied");
    expect(await nextFrame()).toBe(frame(8));
    await control.send.write(hex(frame(9)));
    expect(await nextFrame()).toBe(frame(10));
    await control.send.write(hex(frame(11)));
    expect(await ours.closed).toBe(t.final_state);
    expect((await requests.next()).done).toBe(true);
  });
});
