/**
 * Limits against abuse (RFC 9000 §21, issue 6 item 9): a hostile peer, played by hand-built
 * packets sealed with the keys from the key log, pushes each limit; the connection answers with
 * the error the RFC names and its structures (counted by resourceCounts()) stay bounded.
 */
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter } from "../bytes.ts";
import { defaultCryptoProvider } from "../crypto/node-provider.ts";
import { TransportErrorCode } from "../errors.ts";
import { decodeFrame, encodeFrame, type Frame, FrameType } from "../frames.ts";
import {
  buildRetryPacket,
  PacketType,
  splitCoalescedPackets,
  writeLongHeader,
  writeShortHeader,
} from "../packet-header.ts";
import {
  createUnprotectedPacket,
  deriveInitialKeys,
  derivePacketKeys,
  type PacketKeys,
  protectPacket,
  unprotectPacket,
} from "../packet-protection.ts";
import { AntiReplay } from "../tls/anti-replay.ts";
import type { SessionTicketEntry } from "../tls/session-cache.ts";
import { rememberedTransportParameters, TicketKeyRing } from "../tls/session-ticket.ts";
import { checkZeroRttParameters, findZeroRttReduction } from "../transport-parameters.ts";
import { QUIC_V1 } from "../version.ts";
import { DEFAULT_TRANSPORT_CONFIG, type TransportConfig } from "./config.ts";
import {
  Connection,
  type ConnectionEvent,
  type ServerConnectionConfig,
  type ServerTicketConfig,
} from "./connection.ts";
import { clientConfig, runPair, serverConfig, T0 } from "./test-harness.ts";

const provider = defaultCryptoProvider;
const TAG = 16;

function drain(c: Connection): ConnectionEvent[] {
  const out: ConnectionEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

/** A 1-RTT packet carrying `frames` (padded to `size` bytes when given), sealed with `keys`. */
function oneRtt(
  keys: PacketKeys,
  dcid: Uint8Array,
  pn: number,
  frames: readonly Frame[],
  size = 0,
): Uint8Array {
  const buf = new Uint8Array(Math.max(size, 1400));
  const w = new ByteWriter(buf, 0, buf.length - TAG);
  const pnOffset = writeShortHeader(w, { dcid, packetNumber: pn, pnLength: 4, keyPhase: 0 });
  for (const f of frames) encodeFrame(f, w);
  const target = Math.max(size - TAG, pnOffset + 4 + 4);
  if (w.pos < target) w.writeZeros(target - w.pos);
  return buf.slice(0, protectPacket(keys, buf, 0, pnOffset, w.pos, pn));
}

/** A client Initial of 1200 bytes carrying `frames`, under the Initial keys of `dcid`. */
function clientInitial(dcid: Uint8Array, scid: Uint8Array, pn: number, frames: readonly Frame[]): Uint8Array {
  const keys = deriveInitialKeys(provider, QUIC_V1, dcid).client;
  const buf = new Uint8Array(1200);
  const w = new ByteWriter(buf, 0, buf.length - TAG);
  const pnOffset = writeLongHeader(w, {
    type: PacketType.Initial,
    version: QUIC_V1,
    dcid,
    scid,
    packetNumber: pn,
    pnLength: 4,
    length: 1200, // patched below
    lengthSize: 2,
  });
  for (const f of frames) encodeFrame(f, w);
  w.writeZeros(buf.length - TAG - w.pos);
  const length = buf.length - pnOffset;
  buf[pnOffset - 2] = 0x40 | (length >> 8);
  buf[pnOffset - 1] = length & 0xff;
  protectPacket(keys, buf, 0, pnOffset, buf.length - TAG, pn);
  return buf;
}

/** The frames of the 1-RTT packets in `datagram`, opened with `keys`. */
function openOneRtt(keys: PacketKeys, datagram: Uint8Array): Frame[] {
  const out: Frame[] = [];
  const copy = datagram.slice();
  for (const h of splitCoalescedPackets(copy, { localCidLength: 8, allowGreasedQuicBit: true })) {
    if (h.type !== PacketType.OneRtt) continue;
    const u = createUnprotectedPacket();
    const n = unprotectPacket(keys, copy, h.packetStart, h.pnOffset, h.packetEnd, 0, u);
    if (n < 0) continue;
    const r = new ByteReader(copy, u.payloadOffset, u.payloadOffset + n);
    while (!r.done) out.push(decodeFrame(r));
  }
  return out;
}

interface Established {
  client: Connection;
  server: Connection;
  /** Seals packets as the client (client → server 1-RTT keys). */
  asClient: (frames: readonly Frame[], size?: number) => Uint8Array;
  /** The same, to a given connection ID of the server. */
  asClientTo: (dcid: Uint8Array, frames: readonly Frame[]) => Uint8Array;
  /** Seals packets as the server (server → client 1-RTT keys). */
  asServer: (frames: readonly Frame[], size?: number) => Uint8Array;
  /** Opens what the server sends. */
  serverKeys: PacketKeys;
}

/** A confirmed client–server pair, plus the 1-RTT keys of both directions (from the key log). */
function established(
  clientTransport: Partial<TransportConfig> = {},
  serverTransport: Partial<TransportConfig> = {},
): Established {
  const log: string[] = [];
  const client = Connection.connect(
    clientConfig({
      transport: clientTransport,
      keyLog: (line) => log.push(line),
      tls: {
        serverName: "localhost",
        alpnProtocols: ["hq-interop"],
        roots: clientConfig().tls.roots,
        cipherSuites: [0x1301], // TLS_AES_128_GCM_SHA256
      },
    }),
    T0,
  );
  const ref: { server?: Connection } = {};
  runPair(
    client,
    serverConfig({ transport: serverTransport }),
    (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
    {},
    T0,
    10_000,
    undefined,
    ref,
  );
  const server = ref.server!;
  expect(client.isHandshakeConfirmed && server.isHandshakeConfirmed).toBe(true);
  drain(client);
  drain(server);
  const secret = (label: string) => {
    const line = log.find((l) => l.startsWith(`${label} `))!;
    return new Uint8Array(Buffer.from(line.split(" ")[2], "hex"));
  };
  const keys = (label: string) => derivePacketKeys(provider, "aes-128-gcm", "sha256", secret(label), QUIC_V1);
  const c2s = keys("CLIENT_TRAFFIC_SECRET_0");
  const s2c = keys("SERVER_TRAFFIC_SECRET_0");
  // Packet numbers well above what either side used, so that they decode as new.
  let clientPn = 10_000;
  let serverPn = 10_000;
  return {
    client,
    server,
    // To the server's newest connection ID (never the one a test retires first).
    asClient: (frames, size) => oneRtt(c2s, server.localConnectionIds.at(-1)!, clientPn++, frames, size),
    asClientTo: (dcid, frames) => oneRtt(c2s, dcid, clientPn++, frames),
    asServer: (frames, size) => oneRtt(s2c, client.localConnectionIds[0], serverPn++, frames, size),
    serverKeys: s2c,
  };
}

function closedWith(c: Connection, code: number, frameType?: number): void {
  const r = c.reason;
  expect(r?.kind).toBe("transport");
  if (r?.kind !== "transport") return;
  expect({ code: r.code, remote: r.remote }).toEqual({ code, remote: false });
  if (frameType !== undefined) expect(r.frameType).toBe(frameType);
}

const T = T0 + 1_000;

/** A server issuing tickets (0-RTT allowed) under one ticket key. */
function ticketServer(key: Uint8Array, transport: Partial<TransportConfig>): ServerConnectionConfig {
  const base = serverConfig();
  const tickets: ServerTicketConfig = {
    keyRing: new TicketKeyRing(provider, { key }),
    earlyData: true,
    antiReplay: new AntiReplay(provider, T0 - 1),
  };
  return { ...base, transport, tls: { ...base.tls, tickets } };
}

/** A full connection to `server`; returns the client and the first ticket it got. */
function firstConnection(server: ServerConnectionConfig): { client: Connection; ticket: SessionTicketEntry } {
  const client = Connection.connect(clientConfig(), T0);
  let ticket: SessionTicketEntry | undefined;
  runPair(client, server, () => {
    for (const ev of drain(client)) if (ev.type === "session-ticket") ticket ??= ev.ticket;
    return ticket !== undefined && client.isHandshakeConfirmed;
  });
  expect(ticket).toBeDefined();
  return { client, ticket: ticket! };
}

describe("CRYPTO buffering (RFC 9000 §7.5)", () => {
  it("out-of-order CRYPTO data past the cap closes with CRYPTO_BUFFER_EXCEEDED, bounded", () => {
    const dcid = provider.randomBytes(8);
    const scid = provider.randomBytes(8);
    const server = Connection.accept(serverConfig(), { version: QUIC_V1, dcid, scid }, T);
    let maxBuffered = 0;
    // CRYPTO data far ahead of offset 0 (the ClientHello never comes): 1000 bytes per Initial.
    for (let i = 0; i < 40 && !server.reason; i++) {
      const data = new Uint8Array(1000).fill(i);
      server.receive(clientInitial(dcid, scid, i, [{ kind: "crypto", offset: 5000 + i * 1000, data }]), T);
      maxBuffered = Math.max(maxBuffered, server.resourceCounts().cryptoBuffered[0]);
    }
    closedWith(server, TransportErrorCode.CRYPTO_BUFFER_EXCEEDED, FrameType.CRYPTO);
    expect(maxBuffered).toBeGreaterThanOrEqual(4096); // §7.5: at least 4096 bytes MUST be accepted
    expect(maxBuffered).toBeLessThanOrEqual(16 * 1024 + 1000);
  });
});

describe("frames not allowed in a packet type (RFC 9000 §12.4)", () => {
  const cases: [string, Frame, number][] = [
    ["STREAM", { kind: "stream", streamId: 0, offset: 0, data: new Uint8Array(4), fin: false }, 0x0a],
    ["HANDSHAKE_DONE", { kind: "handshake_done" }, FrameType.HANDSHAKE_DONE],
    ["MAX_DATA", { kind: "max_data", maximum: 1 << 20 }, FrameType.MAX_DATA],
    ["NEW_TOKEN", { kind: "new_token", token: new Uint8Array(8) }, FrameType.NEW_TOKEN],
  ];
  for (const [name, frame, type] of cases) {
    it(`${name} in an Initial → PROTOCOL_VIOLATION`, () => {
      const dcid = provider.randomBytes(8);
      const scid = provider.randomBytes(8);
      const server = Connection.accept(serverConfig(), { version: QUIC_V1, dcid, scid }, T);
      server.receive(clientInitial(dcid, scid, 0, [{ kind: "ping" }, frame]), T);
      closedWith(server, TransportErrorCode.PROTOCOL_VIOLATION);
      const r = server.reason;
      expect(r?.kind === "transport" && (r.frameType & ~0x07) === (type & ~0x07)).toBe(true);
      // The close goes out in an Initial, as §10.2.3 asks during the handshake.
      const close = server.pollTransmit(T);
      expect(close).not.toBeNull();
      expect(splitCoalescedPackets(close!, { localCidLength: 8 })[0].type).toBe(PacketType.Initial);
    });
  }
});

describe("frames a peer of that role must not send", () => {
  it("HANDSHAKE_DONE from a client → PROTOCOL_VIOLATION (RFC 9000 §19.20)", () => {
    const e = established();
    e.server.receive(e.asClient([{ kind: "handshake_done" }]), T);
    closedWith(e.server, TransportErrorCode.PROTOCOL_VIOLATION, FrameType.HANDSHAKE_DONE);
  });

  it("NEW_TOKEN from a client → PROTOCOL_VIOLATION (RFC 9000 §19.7)", () => {
    const e = established();
    e.server.receive(e.asClient([{ kind: "new_token", token: new Uint8Array(16) }]), T);
    closedWith(e.server, TransportErrorCode.PROTOCOL_VIOLATION, FrameType.NEW_TOKEN);
  });
});

describe("NEW_TOKEN size", () => {
  it("a client keeps a normal token and ignores one too large for a later Initial", () => {
    const e = established();
    e.client.receive(e.asServer([{ kind: "new_token", token: new Uint8Array(4000).fill(7) }], 4200), T);
    e.client.receive(e.asServer([{ kind: "new_token", token: new Uint8Array(64).fill(9) }]), T);
    expect(e.client.isClosed).toBe(false);
    const tokens = drain(e.client).filter((x) => x.type === "new-token");
    expect(tokens.map((t) => (t.type === "new-token" ? t.token.length : 0))).toEqual([64]);
  });

  it("a Retry whose token leaves no room for the ClientHello is ignored, not a stall", () => {
    for (const [size, followed] of [
      [100, true],
      [1150, false],
    ] as const) {
      const client = Connection.connect(clientConfig(), T0);
      const first = client.pollTransmit(T0)!;
      const [h] = splitCoalescedPackets(first, { localCidLength: 8 });
      const scid = h.type === PacketType.Initial ? h.scid : new Uint8Array(0);
      const token = new Uint8Array(size).fill(1);
      const fields = { version: QUIC_V1, dcid: scid, scid: new Uint8Array(8).fill(5), token };
      client.receive(buildRetryPacket(provider, fields, h.dcid), T0 + 1);
      let next = client.pollTransmit(T0 + 2);
      if (!next) {
        // Ignored: nothing new to say until the PTO sends the ClientHello again.
        const at = client.nextTimeout()!;
        client.handleTimeout(at);
        next = client.pollTransmit(at);
      }
      const [h2] = splitCoalescedPackets(next!, { localCidLength: 8 });
      // Followed: the next Initial carries the token; ignored: the ClientHello goes again unchanged.
      expect(h2.type === PacketType.Initial && h2.token.length).toBe(followed ? size : 0);
      expect(client.isClosed).toBe(false);
    }
  });

  it("an oversized token given to connect() is a usage error", () => {
    expect(() => Connection.connect(clientConfig({ token: new Uint8Array(2000) }), T0)).toThrow(/token/);
  });
});

describe("stream limits (RFC 9000 §4.6, §4.1)", () => {
  it("a stream beyond initial_max_streams_bidi → STREAM_LIMIT_ERROR; streams stay bounded", () => {
    const e = established({}, { maxConcurrentBidiStreams: 10 });
    const data = new Uint8Array(1);
    // Stream 36 (index 9) opens ten streams at once; index 10 is over the limit.
    e.server.receive(e.asClient([{ kind: "stream", streamId: 36, offset: 0, data, fin: false }]), T);
    expect(e.server.isClosed || e.server.reason !== undefined).toBe(false);
    expect(e.server.resourceCounts().streams).toBe(10);
    e.server.receive(e.asClient([{ kind: "stream", streamId: 40, offset: 0, data, fin: false }]), T);
    closedWith(e.server, TransportErrorCode.STREAM_LIMIT_ERROR, 0x08);
    expect(e.server.resourceCounts().streams).toBe(10);
  });

  it("data beyond the stream window → FLOW_CONTROL_ERROR, nothing stored past it", () => {
    const e = established({}, { streamReceiveWindow: 64 * 1024 });
    const data = new Uint8Array(100);
    e.server.receive(
      e.asClient([{ kind: "stream", streamId: 0, offset: 64 * 1024 - 50, data, fin: false }]),
      T,
    );
    closedWith(e.server, TransportErrorCode.FLOW_CONTROL_ERROR);
    expect(e.server.resourceCounts().streamBytesBuffered).toBe(0);
  });
});

describe("stream fragmentation (RFC 9000 §21.7)", () => {
  it("many tiny out-of-order fragments within flow control close the connection, bounded", () => {
    const e = established();
    const one = new Uint8Array([1]);
    let maxPieces = 0;
    let packets = 0;
    // One byte at every other offset, 100 fragments per packet: well within the 1 MiB window.
    for (let p = 0; p < 40 && !e.server.reason; p++) {
      const frames: Frame[] = [];
      for (let i = 0; i < 100; i++)
        frames.push({ kind: "stream", streamId: 0, offset: 2 + 2 * (p * 100 + i), data: one, fin: false });
      e.server.receive(e.asClient(frames), T);
      packets++;
      maxPieces = Math.max(maxPieces, e.server.resourceCounts().maxStreamPieces);
    }
    closedWith(e.server, TransportErrorCode.INTERNAL_ERROR, FrameType.STREAM);
    expect(packets).toBeLessThan(40);
    expect(maxPieces).toBeLessThanOrEqual(1025);
    expect(maxPieces).toBeGreaterThan(1000);
  });

  it("tiny fragments spread over many streams hit the connection-wide cap", () => {
    const e = established();
    const one = new Uint8Array([1]);
    let maxTotal = 0;
    let maxOne = 0;
    // 40 streams, 200 one-byte fragments each: every stream is under its own cap of 1024.
    for (let p = 0; p < 80 && !e.server.reason; p++) {
      const frames: Frame[] = [];
      for (let i = 0; i < 100; i++) {
        const n = p * 100 + i;
        frames.push({
          kind: "stream",
          streamId: 4 * (n % 40),
          offset: 2 + 2 * Math.floor(n / 40),
          data: one,
          fin: false,
        });
      }
      e.server.receive(e.asClient(frames), T);
      const c = e.server.resourceCounts();
      maxTotal = Math.max(maxTotal, c.streamPieces);
      maxOne = Math.max(maxOne, c.maxStreamPieces);
    }
    closedWith(e.server, TransportErrorCode.INTERNAL_ERROR, FrameType.STREAM);
    expect(maxOne).toBeLessThan(1024);
    expect(maxTotal).toBeLessThanOrEqual(4096 + 1);
    expect(maxTotal).toBeGreaterThan(4000);
  });

  it("many full-size out-of-order pieces (loss recovery) are fine", () => {
    const e = established({}, { streamReceiveWindow: 4 << 20, connectionReceiveWindow: 8 << 20 });
    const chunk = new Uint8Array(1000).fill(3);
    // 1500 pieces of 1000 bytes with a hole before each: what heavy loss looks like.
    for (let i = 0; i < 1500; i++)
      e.server.receive(
        e.asClient([{ kind: "stream", streamId: 0, offset: 1000 + 2000 * i, data: chunk, fin: false }]),
        T,
      );
    expect(e.server.isClosed).toBe(false);
    expect(e.server.reason).toBeUndefined();
    const c = e.server.resourceCounts();
    expect(c.maxStreamPieces).toBe(1500);
    expect(c.streamBytesBuffered).toBe(1500 * 1000);
  });

  it("a small fragment is copied, not kept as a view pinning its datagram", () => {
    const e = established();
    // A padded 1200-byte datagram with a 10-byte fragment, then the application reads it.
    const dgram = e.asClient(
      [{ kind: "stream", streamId: 0, offset: 0, data: new Uint8Array(10), fin: false }],
      1200,
    );
    e.server.receive(dgram, T);
    const got = e.server.read(0);
    expect(got?.data.length).toBe(10);
    expect(got!.data.buffer.byteLength).toBeLessThan(100);
  });
});

describe("ACK ranges (RFC 9000 §13.2.3)", () => {
  it("every other packet number: the ranges tracked and the ranges sent stay capped", () => {
    const e = established();
    for (let i = 0; i < 800; i++) {
      const packet = e.asClient([{ kind: "ping" }]);
      e.asClient([{ kind: "ping" }]); // sealed and never delivered: a gap before the next one
      e.server.receive(packet, T);
    }
    expect(e.server.isClosed).toBe(false);
    const tracked = e.server.resourceCounts().ackRanges[2];
    expect(tracked).toBeGreaterThan(64);
    expect(tracked).toBeLessThanOrEqual(256);
    let ack: Extract<Frame, { kind: "ack" }> | undefined;
    for (let d = e.server.pollTransmit(T + 1000); d && !ack; d = e.server.pollTransmit(T + 1000))
      ack = openOneRtt(e.serverKeys, d).find((f) => f.kind === "ack") as typeof ack;
    expect(ack).toBeDefined();
    expect(ack!.ranges.length / 2).toBeLessThanOrEqual(64);
    expect(ack!.ranges.length / 2).toBeGreaterThan(10);
  });
});

describe("connection IDs (RFC 9000 §5.1)", () => {
  const cid = (n: number) => new Uint8Array(8).fill(n);
  const token = (n: number) => new Uint8Array(16).fill(n);

  it("more than active_connection_id_limit → CONNECTION_ID_LIMIT_ERROR", () => {
    const e = established({}, { activeConnectionIdLimit: 3 });
    const frames: Frame[] = [];
    for (let s = 1; s <= 3; s++)
      frames.push({
        kind: "new_connection_id",
        sequence: 50 + s,
        retirePriorTo: 0,
        connectionId: cid(s),
        statelessResetToken: token(s),
      });
    e.server.receive(e.asClient(frames), T);
    closedWith(e.server, TransportErrorCode.CONNECTION_ID_LIMIT_ERROR, FrameType.NEW_CONNECTION_ID);
    expect(e.server.resourceCounts().remoteCids).toBeLessThanOrEqual(4);
  });

  it("Retire Prior To raised faster than retirements are acknowledged → CONNECTION_ID_LIMIT_ERROR", () => {
    const e = established({}, { activeConnectionIdLimit: 4 });
    let maxRetiring = 0;
    // Each frame retires everything before it; the server's RETIRE_CONNECTION_ID frames are
    // never acknowledged.
    for (let s = 10; s < 40 && !e.server.reason; s++) {
      e.server.receive(
        e.asClient([
          {
            kind: "new_connection_id",
            sequence: s,
            retirePriorTo: s,
            connectionId: cid(s),
            statelessResetToken: token(s),
          },
        ]),
        T + s,
      );
      for (let d = e.server.pollTransmit(T + s); d; d = e.server.pollTransmit(T + s)) {}
      maxRetiring = Math.max(maxRetiring, e.server.resourceCounts().retiringCids);
      expect(e.server.resourceCounts().remoteCids).toBeLessThanOrEqual(4);
    }
    closedWith(e.server, TransportErrorCode.CONNECTION_ID_LIMIT_ERROR, FrameType.NEW_CONNECTION_ID);
    expect(maxRetiring).toBe(9); // one more than 2 × active_connection_id_limit: the error
  });

  it("old sequence numbers sent again are retired once, not once per copy", () => {
    const e = established({}, { activeConnectionIdLimit: 4 });
    e.server.receive(
      e.asClient([
        {
          kind: "new_connection_id",
          sequence: 5,
          retirePriorTo: 5,
          connectionId: cid(5),
          statelessResetToken: token(5),
        },
      ]),
      T,
    );
    for (let i = 0; i < 50; i++)
      e.server.receive(
        e.asClient([
          {
            kind: "new_connection_id",
            sequence: 2,
            retirePriorTo: 0,
            connectionId: cid(2),
            statelessResetToken: token(2),
          },
        ]),
        T,
      );
    expect(e.server.isClosed).toBe(false);
    expect(e.server.resourceCounts().retiringCids).toBeLessThanOrEqual(2);
  });

  it("a RETIRE_CONNECTION_ID flood keeps our connection IDs at the limit; an unissued one → PROTOCOL_VIOLATION", () => {
    const e = established();
    const issued = e.server.resourceCounts().localCids;
    expect(issued).toBeGreaterThanOrEqual(2);
    let seq = 0;
    for (let i = 0; i < 200; i++) {
      e.server.receive(e.asClient([{ kind: "retire_connection_id", sequence: seq++ }]), T);
      expect(e.server.resourceCounts().localCids).toBe(issued);
    }
    expect(e.server.isClosed).toBe(false);
    e.server.receive(e.asClient([{ kind: "retire_connection_id", sequence: 100_000 }]), T);
    closedWith(e.server, TransportErrorCode.PROTOCOL_VIOLATION, FrameType.RETIRE_CONNECTION_ID);
  });
});

describe("RETIRE_CONNECTION_ID (RFC 9000 §19.16)", () => {
  it("retiring the connection ID the packet was sent to → PROTOCOL_VIOLATION", () => {
    const e = established();
    const first = e.server.localConnectionIds[0];
    e.server.receive(e.asClientTo(first, [{ kind: "retire_connection_id", sequence: 0 }]), T);
    closedWith(e.server, TransportErrorCode.PROTOCOL_VIOLATION, FrameType.RETIRE_CONNECTION_ID);
  });

  it("a retired connection ID stays routed for 3 PTO (§5.1.2: packets in flight with it), then goes", () => {
    const e = established();
    const first = e.server.localConnectionIds[0];
    e.server.receive(e.asClient([{ kind: "retire_connection_id", sequence: 0 }]), T);
    const unrouted = (events: ConnectionEvent[]) =>
      events
        .filter((ev) => ev.type === "connection-id" && ev.retired)
        .map((ev) => (ev as { cid: Uint8Array }).cid);
    // Not announced as retired yet: the endpoint keeps routing it (no stateless reset for a late packet).
    expect(unrouted(drain(e.server))).toEqual([]);
    expect(e.server.localConnectionIds.some((c) => Buffer.from(c).equals(Buffer.from(first)))).toBe(false);
    // A late packet to it still reaches the connection.
    e.server.receive(e.asClientTo(first, [{ kind: "ping" }]), T + 1);
    expect(e.server.isClosed).toBe(false);
    e.server.handleTimeout(T + 5_000);
    expect(unrouted(drain(e.server)).map((c) => Buffer.from(c).toString("hex"))).toEqual([
      Buffer.from(first).toString("hex"),
    ]);
  });

  it("a RETIRE_CONNECTION_ID flood keeps the routes waiting to go bounded", () => {
    const e = established();
    let seq = 0;
    let unrouted = 0;
    for (let i = 0; i < 200; i++) {
      e.server.receive(e.asClient([{ kind: "retire_connection_id", sequence: seq++ }]), T);
      unrouted += drain(e.server).filter((ev) => ev.type === "connection-id" && ev.retired).length;
    }
    expect(e.server.isClosed).toBe(false);
    // Beyond 2 × active_connection_id_limit waiting, the oldest route goes at once.
    const limit = 2 * DEFAULT_TRANSPORT_CONFIG.activeConnectionIdLimit;
    expect(unrouted).toBeGreaterThanOrEqual(200 - limit);
    e.server.handleTimeout(T + 5_000);
    unrouted += drain(e.server).filter((ev) => ev.type === "connection-id" && ev.retired).length;
    expect(unrouted).toBe(200);
  });
});

describe("datagrams (RFC 9221)", () => {
  it("unread received datagrams: the oldest are dropped beyond datagramQueueLength", () => {
    const e = established({}, { datagramQueueLength: 8 });
    for (let i = 0; i < 30; i++)
      e.server.receive(e.asClient([{ kind: "datagram", data: new Uint8Array([i]) }]), T);
    const c = e.server.resourceCounts();
    expect(c.incomingDatagrams).toBe(8);
    expect(e.server.stats().datagramsDropped).toBe(22);
    const kept = drain(e.server).flatMap((x) => (x.type === "datagram" ? [x.data[0]] : []));
    expect(kept).toEqual([22, 23, 24, 25, 26, 27, 28, 29]);
    expect(e.server.resourceCounts().incomingDatagrams).toBe(0);
  });

  it("datagrams queued to send are bounded too (oldest dropped)", () => {
    const e = established({ datagramQueueLength: 4 });
    for (let i = 0; i < 20; i++) e.client.sendDatagram(new Uint8Array([i]));
    expect(e.client.resourceCounts().outgoingDatagrams).toBe(4);
    expect(e.client.stats().datagramsDropped).toBe(16);
  });

  it("a DATAGRAM larger than max_datagram_frame_size → PROTOCOL_VIOLATION", () => {
    const e = established({}, { maxDatagramFrameSize: 100 });
    e.server.receive(e.asClient([{ kind: "datagram", data: new Uint8Array(200) }]), T);
    closedWith(e.server, TransportErrorCode.PROTOCOL_VIOLATION, FrameType.DATAGRAM);
  });
});

describe("path frames (RFC 9000 §8.2)", () => {
  it("a PATH_CHALLENGE flood queues a bounded number of PATH_RESPONSEs", () => {
    const e = established();
    for (let p = 0; p < 20; p++) {
      const frames: Frame[] = [];
      for (let i = 0; i < 50; i++) frames.push({ kind: "path_challenge", data: new Uint8Array(8).fill(i) });
      e.server.receive(e.asClient(frames), T);
    }
    expect(e.server.isClosed).toBe(false);
    expect(e.server.resourceCounts().pathResponses).toBeLessThanOrEqual(4);
    expect(e.server.resourceCounts().pathResponses).toBeGreaterThan(0);
  });

  it("unsolicited PATH_RESPONSEs are ignored and keep nothing", () => {
    const e = established();
    for (let p = 0; p < 20; p++) {
      const frames: Frame[] = [];
      for (let i = 0; i < 50; i++) frames.push({ kind: "path_response", data: new Uint8Array(8).fill(i) });
      e.server.receive(e.asClient(frames), T);
    }
    expect(e.server.isClosed).toBe(false);
    const c = e.server.resourceCounts();
    expect(c.pathResponses).toBe(0);
    expect(c.probePaths).toBe(0);
  });
});

describe("transport parameters remembered with tickets", () => {
  it("min_ack_delay is not remembered (ack-frequency §3: MUST NOT remember)", () => {
    const { client, ticket } = firstConnection(ticketServer(new Uint8Array(32).fill(1), {}));
    expect(client.peerTransportParameters?.minAckDelay).toBeGreaterThan(0);
    expect(ticket?.transportParameters).toBeDefined();
    expect(ticket!.transportParameters!.minAckDelay).toBeUndefined();
    expect(ticket!.transportParameters!.initialMaxData).toBe(client.peerTransportParameters?.initialMaxData);
    expect(rememberedTransportParameters({ minAckDelay: 1000, initialMaxData: 5 })).toEqual({
      initialMaxData: 5,
    });
  });

  it("reset_stream_at must stay on when 0-RTT is accepted (reliable-stream-reset §3)", () => {
    expect(findZeroRttReduction({ resetStreamAt: true }, {})).toBe("reset_stream_at");
    expect(findZeroRttReduction({ resetStreamAt: true }, { resetStreamAt: true })).toBeUndefined();
    expect(findZeroRttReduction({}, {})).toBeUndefined();
    expect(() => checkZeroRttParameters({ resetStreamAt: true }, {})).toThrow(/reset_stream_at/);
  });

  it("a server that turned reset_stream_at off rejects 0-RTT on a ticket remembering it", () => {
    const key = new Uint8Array(32).fill(2);
    const { ticket } = firstConnection(ticketServer(key, {}));
    expect(ticket.transportParameters?.resetStreamAt).toBe(true);
    const server = ticketServer(key, { resetStreamAt: false });
    const client = Connection.connect(clientConfig({ session: ticket, earlyData: true }), T0 + 5_000);
    runPair(client, server, () => client.isHandshakeConfirmed, {}, T0 + 5_000, 5_000);
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(client.earlyDataState).toBe("rejected");
  });

  it("a client whose 0-RTT was accepted without reset_stream_at it remembered → PROTOCOL_VIOLATION", () => {
    const key = new Uint8Array(32).fill(3);
    const server = ticketServer(key, { resetStreamAt: false });
    const { ticket } = firstConnection(server);
    expect(ticket.transportParameters?.resetStreamAt).toBeUndefined();
    // The client remembers the extension (the server's sealed copy says it was off: it accepts).
    const inflated: SessionTicketEntry = {
      ...ticket,
      transportParameters: { ...ticket.transportParameters, resetStreamAt: true },
    };
    const client = Connection.connect(clientConfig({ session: inflated, earlyData: true }), T0 + 5_000);
    runPair(client, server, () => client.isClosed, {}, T0 + 5_000, 5_000);
    closedWith(client, TransportErrorCode.PROTOCOL_VIOLATION);
  });
});

describe("the harness itself", () => {
  it("a packet sealed by the test is accepted as the peer's", () => {
    const e = established();
    e.server.receive(
      e.asClient([{ kind: "stream", streamId: 0, offset: 0, data: new Uint8Array([42]), fin: true }]),
      T,
    );
    expect(e.server.read(0)).toEqual({ data: new Uint8Array([42]), fin: true });
  });
});
