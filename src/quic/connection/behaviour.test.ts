import { describe, expect, it } from "vitest";
import { ByteReader } from "../bytes.ts";
import { QuicUsageError } from "../errors.ts";
import { encodeVersionNegotiation, splitCoalescedPackets } from "../packet-header.ts";
import { QUIC_V1, QUIC_V2 } from "../version.ts";
import { Connection, type ConnectionEvent } from "./connection.ts";
import {
  acceptFirst,
  clientConfig,
  drainEvents,
  handshakePair,
  runPair,
  serverConfig,
  T0,
} from "./test-harness.ts";

const events = drainEvents;

const handshake = handshakePair;

describe("version negotiation (RFC 9000 §6)", () => {
  it("a client retries with a version the server lists, and completes the handshake in it", () => {
    const client = Connection.connect(clientConfig({ version: QUIC_V1 }), T0);
    const first = client.pollTransmit(T0)!;
    const [h] = splitCoalescedPackets(first, { localCidLength: 8 });
    const vn = encodeVersionNegotiation("scid" in h ? h.scid : new Uint8Array(0), h.dcid, [
      QUIC_V2,
      0x0a0a0a0a,
    ]);
    client.receive(vn, T0 + 5);
    const retry = client.pollTransmit(T0 + 5)!;
    const version = new ByteReader(retry, 1).readUint32();
    expect(version).toBe(QUIC_V2);
    expect(retry.length).toBeGreaterThanOrEqual(1200);
    // A server that speaks only v2 (as its VN said): it keeps v2 (RFC 9368 §4: the client checks
    // that the server's Available Versions would have led it to v2 too).
    const sc = serverConfig({ versions: [QUIC_V2] });
    const server = acceptFirst(retry, sc, T0 + 10);
    const ref = { server };
    server.receive(retry, T0 + 10);
    runPair(
      client,
      sc,
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      {},
      T0 + 10,
      10_000,
      undefined,
      ref,
    );
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(client.negotiatedVersion).toBe(QUIC_V2);
    expect(server.negotiatedVersion).toBe(QUIC_V2);
  });

  it("a client ignores a VN that lists its own version, and gives up when nothing is common", () => {
    const client = Connection.connect(clientConfig(), T0);
    const first = client.pollTransmit(T0)!;
    const [h] = splitCoalescedPackets(first, { localCidLength: 8 });
    const scid = "scid" in h ? h.scid : new Uint8Array(0);
    client.receive(encodeVersionNegotiation(scid, h.dcid, [QUIC_V1, QUIC_V2]), T0 + 1);
    expect(client.isClosed).toBe(false);
    client.receive(encodeVersionNegotiation(scid, h.dcid, [0x1a2a3a4a]), T0 + 2);
    expect(client.isClosed).toBe(true);
    expect(client.reason).toEqual({ kind: "version-mismatch", offered: [0x1a2a3a4a] });
  });
});

describe("anti-amplification (RFC 9000 §8.1)", () => {
  it("a server sends at most 3× what it received before the client's address is validated", () => {
    // Everything from the client after its first datagram is lost: the server can only probe.
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    let serverBytes = 0;
    runPair(
      client,
      serverConfig(),
      () => false,
      {
        drop: (to, data, n) => {
          if (to === "client") serverBytes += data.length;
          return to === "server" && n > 0;
        },
      },
      T0,
      5_000,
      undefined,
      ref,
    );
    expect(serverBytes).toBeGreaterThan(1200);
    expect(serverBytes).toBeLessThanOrEqual(3 * 1200);
  });
});

describe("idle timeout and keep-alive (RFC 9000 §10.1)", () => {
  it("closes silently after the idle timeout (at least 3 PTOs)", () => {
    const { client, server } = handshake({ transport: { maxIdleTimeout: 2000 } });
    events(client);
    const start = T0;
    const end = runPair(client, serverConfig(), () => client.isClosed, {}, start + 100, 60_000, undefined, {
      server,
    });
    expect(client.isClosed).toBe(true);
    expect(client.reason).toEqual({ kind: "idle-timeout" });
    expect(end - start).toBeGreaterThanOrEqual(2000);
    expect(end - start).toBeLessThan(5000);
  });

  it("keep-alive PINGs hold an idle connection open", () => {
    const { client, server } = handshake({ transport: { maxIdleTimeout: 2000, keepAliveInterval: 500 } });
    runPair(client, serverConfig(), () => false, {}, T0 + 100, 10_000, undefined, { server });
    expect(client.isClosed).toBe(false);
    expect(server.isClosed).toBe(false);
  });
});

describe("stream limits (RFC 9000 §4.6)", () => {
  it("stops at the peer's MAX_STREAMS and resumes when the peer raises it", () => {
    const { client, server } = handshake({}, { transport: { maxConcurrentBidiStreams: 2 } });
    const a = client.openStream(true)!;
    const b = client.openStream(true)!;
    expect(client.openStream(true)).toBeUndefined();
    client.write(a, new Uint8Array([1]), true);
    client.write(b, new Uint8Array([2]), true);
    // The server finishes both streams (reads them, answers with FIN): they close and free slots.
    let opened = false;
    const finished = new Set<number>();
    runPair(
      client,
      serverConfig(),
      () => {
        for (const id of [a, b]) {
          const r = server.hasStream(id) && !finished.has(id) ? server.read(id) : null;
          if (r?.fin) {
            finished.add(id);
            server.finish(id);
          }
        }
        for (const id of [a, b]) if (client.hasStream(id)) client.read(id);
        if (events(client).some((e) => e.type === "streams-available" && e.bidi)) opened = true;
        return opened;
      },
      {},
      T0 + 100,
      10_000,
      undefined,
      { server },
    );
    expect(opened).toBe(true);
    expect(client.openStream(true)).toBeDefined();
  });

  it("refuses to open beyond the peer's unidirectional limit; the peer sees the stream it allowed", () => {
    const { client, server } = handshake({}, { transport: { maxConcurrentUniStreams: 1 } });
    const u = client.openStream(false)!;
    expect(client.openStream(false)).toBeUndefined();
    client.write(u, new Uint8Array([9]), true);
    runPair(client, serverConfig(), () => server.hasStream(u), {}, T0 + 100, 5_000, undefined, { server });
    expect(events(server).some((e) => e.type === "stream-opened" && e.streamId === u && !e.bidi)).toBe(true);
  });
});

describe("RESET_STREAM and STOP_SENDING (RFC 9000 §3.5)", () => {
  it("delivers a reset with its code, and answers STOP_SENDING with RESET_STREAM", () => {
    const { client, server } = handshake();
    const id = client.openStream(true)!;
    client.write(id, new Uint8Array(1000));
    client.resetStream(id, 77n);
    let got: ConnectionEvent | undefined;
    runPair(
      client,
      serverConfig(),
      () => {
        got ??= events(server).find((e) => e.type === "stream-reset");
        return got !== undefined;
      },
      {},
      T0 + 100,
      5_000,
      undefined,
      { server },
    );
    expect(got).toEqual({ type: "stream-reset", streamId: id, errorCode: 77n });

    const id2 = client.openStream(true)!;
    client.write(id2, new Uint8Array(500));
    let stopped: ConnectionEvent | undefined;
    runPair(
      client,
      serverConfig(),
      () => {
        if (server.hasStream(id2) && server.streamResetCode(id2) === undefined) server.stopSending(id2, 5n);
        stopped ??= events(client).find((e) => e.type === "stream-stopped");
        return stopped !== undefined && events(server).length >= 0 && server.streamResetCode(id2) === 5n;
      },
      {},
      T0 + 200,
      5_000,
      undefined,
      { server },
    );
    expect(stopped).toEqual({ type: "stream-stopped", streamId: id2, errorCode: 5n });
    expect(server.streamResetCode(id2)).toBe(5n);
  });
});

describe("datagrams (RFC 9221)", () => {
  it("negotiates the size and refuses datagrams the peer did not allow", () => {
    const { client, server } = handshake({}, { transport: { maxDatagramFrameSize: 0 } });
    expect(client.maxDatagramSize).toBe(0);
    expect(() => client.sendDatagram(new Uint8Array(10))).toThrow(QuicUsageError);
    expect(server.maxDatagramSize).toBeGreaterThan(1000);
    expect(server.maxDatagramSize).toBeLessThan(1200);
    expect(() => server.sendDatagram(new Uint8Array(server.maxDatagramSize + 1))).toThrow(QuicUsageError);
  });

  it("delivers datagrams both ways", () => {
    const { client, server } = handshake();
    client.sendDatagram(new TextEncoder().encode("hi server"));
    server.sendDatagram(new TextEncoder().encode("hi client"));
    const got: string[] = [];
    runPair(
      client,
      serverConfig(),
      () => {
        for (const c of [client, server])
          for (const e of events(c)) if (e.type === "datagram") got.push(new TextDecoder().decode(e.data));
        return got.length === 2;
      },
      {},
      T0 + 100,
      5_000,
      undefined,
      { server },
    );
    expect(got.sort()).toEqual(["hi client", "hi server"]);
  });
});

describe("connection IDs (RFC 9000 §5.1)", () => {
  it("issues NEW_CONNECTION_IDs up to the peer's active_connection_id_limit after the handshake", () => {
    const { client, server } = handshake(
      { transport: { activeConnectionIdLimit: 3 } },
      { transport: { activeConnectionIdLimit: 5 } },
    );
    // Each side offers the other as many IDs as the other's limit allows (capped at 8).
    expect(server.localConnectionIds.length).toBe(3);
    expect(client.localConnectionIds.length).toBe(5);
    const cidEvents = events(server).filter((e) => e.type === "connection-id" && !e.retired);
    expect(cidEvents).toHaveLength(2);
  });
});

describe("closing (RFC 9000 §10.2)", () => {
  it("an application close reaches the peer with its code and reason; both sides end", () => {
    const { client, server } = handshake();
    client.close(0x1234n, "going away");
    runPair(
      client,
      serverConfig(),
      () => client.isClosed && server.isClosed,
      {},
      T0 + 100,
      10_000,
      undefined,
      { server },
    );
    expect(server.reason).toEqual({ kind: "application", code: 0x1234n, reason: "going away", remote: true });
    expect(client.reason).toMatchObject({ kind: "application", code: 0x1234n, remote: false });
  });
});

describe("qlog (draft-ietf-quic-qlog)", () => {
  it("records packets with frames, parameters, keys and metrics for a connection", async () => {
    const { QlogWriter } = await import("../qlog.ts");
    const chunks: string[] = [];
    const qlog = new QlogWriter({
      side: "client",
      odcid: new Uint8Array(8),
      write: (c: string) => chunks.push(c),
    });
    const { client } = handshake({ qlog });
    client.close(0n, "bye");
    const records = chunks
      .join("")
      .split("\u001e")
      .filter((r) => r.trim())
      .map((r) => JSON.parse(r) as { name?: string; data?: Record<string, unknown> });
    const names = records.map((r) => r.name);
    expect(names).toContain("quic:packet_sent");
    expect(names).toContain("quic:packet_received");
    expect(names).toContain("quic:parameters_set");
    expect(names).toContain("quic:key_updated");
    expect(names).toContain("quic:recovery_metrics_updated");
    const sentInitial = records.find((r) => r.name === "quic:packet_sent");
    expect(JSON.stringify(sentInitial?.data)).toContain("crypto");
  });
});
