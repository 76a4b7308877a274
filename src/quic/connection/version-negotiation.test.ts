import { describe, expect, it } from "vitest";
import { ByteWriter } from "../bytes.ts";
import { defaultCryptoProvider } from "../crypto/node-provider.ts";
import { QuicUsageError, TransportErrorCode } from "../errors.ts";
import { encodeVersionNegotiation, PacketType, splitCoalescedPackets } from "../packet-header.ts";
import { createUnprotectedPacket, deriveInitialKeys, unprotectPacket } from "../packet-protection.ts";
import type { QlogSink } from "../qlog.ts";
import { encodeTransportParameters, transportParametersSize } from "../transport-parameters.ts";
import { QUIC_V1, QUIC_V2 } from "../version.ts";
import type { ClientConnectionConfig, ServerConnectionConfig } from "./connection.ts";
import { Connection } from "./connection.ts";
import { acceptFirst, clientConfig, drainEvents, runPair, serverConfig, T0 } from "./test-harness.ts";

interface SeenPacket {
  to: "client" | "server";
  type: number;
  version: number;
  /** The packet carries CRYPTO frames (only known for packets we can read: see below). */
}

/** Every long-header packet on the wire, by direction: type and Version field. */
function wiretap(): { seen: SeenPacket[]; drop: (to: "client" | "server", d: Uint8Array) => boolean } {
  const seen: SeenPacket[] = [];
  return {
    seen,
    drop: (to, d) => {
      try {
        for (const h of splitCoalescedPackets(d, { localCidLength: 8 }))
          if ("version" in h) seen.push({ to, type: h.type, version: h.version });
      } catch {
        // not ours to judge
      }
      return false;
    },
  };
}

function versionRecorder(): { sink: QlogSink; chosen: number[] } {
  const chosen: number[] = [];
  const nop = () => {};
  const sink: QlogSink = {
    connectionStarted: (info) => chosen.push(info.version),
    parametersSet: nop,
    packetSent: nop,
    packetReceived: nop,
    packetDropped: nop,
    packetLost: nop,
    metricsUpdated: nop,
    keyUpdated: nop,
    keyDiscarded: nop,
    versionChosen: (info) => chosen.push(info.version),
    connectionStateUpdated: nop,
    connectionClosed: nop,
    close: () => Promise.resolve(),
  };
  return { sink, chosen };
}

function handshake(client: Partial<ClientConnectionConfig>, server: Partial<ServerConnectionConfig>) {
  const c = Connection.connect(clientConfig(client), T0);
  const ref: { server?: Connection } = {};
  const tap = wiretap();
  runPair(
    c,
    serverConfig(server),
    (s) => (!!s?.isHandshakeConfirmed && c.isHandshakeConfirmed) || c.isClosed || !!s?.isClosed,
    { delay: 5, drop: tap.drop },
    T0,
    10_000,
    undefined,
    ref,
  );
  return { client: c, server: ref.server!, seen: tap.seen };
}

describe("compatible version negotiation v1 → v2 (RFC 9368 §2.3, RFC 9369 §4)", () => {
  it("a v1 client preferring v2 is switched to v2 by the server; Handshake packets are all v2", () => {
    const cq = versionRecorder();
    const sq = versionRecorder();
    const { client, server, seen } = handshake(
      { versions: [QUIC_V2, QUIC_V1], qlog: cq.sink },
      { qlog: sq.sink },
    );
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(client.negotiatedVersion).toBe(QUIC_V2);
    expect(server.negotiatedVersion).toBe(QUIC_V2);
    // The client's first Initial is v1; every server packet is v2 (it chose before replying).
    const first = seen.find((p) => p.to === "server");
    expect(first?.version).toBe(QUIC_V1);
    expect(first?.type).toBe(PacketType.Initial);
    const fromServer = seen.filter((p) => p.to === "client");
    expect(fromServer.length).toBeGreaterThan(0);
    expect(fromServer.every((p) => p.version === QUIC_V2)).toBe(true);
    const handshakes = seen.filter((p) => p.type === PacketType.Handshake);
    expect(handshakes.length).toBeGreaterThan(1);
    expect(handshakes.every((p) => p.version === QUIC_V2)).toBe(true);
    // Both sides' version_information authenticated the choice.
    expect(client.peerTransportParameters?.versionInformation?.chosenVersion).toBe(QUIC_V2);
    expect(server.peerTransportParameters?.versionInformation).toEqual({
      chosenVersion: QUIC_V1,
      availableVersions: [QUIC_V2, QUIC_V1],
    });
    // qlog: started in v1, then v2 on each side.
    expect(cq.chosen).toEqual([QUIC_V1, QUIC_V2]);
    expect(sq.chosen).toEqual([QUIC_V1, QUIC_V2]);
  });

  it("a server configured to prefer v2 upgrades a default client (which offers v1, v2)", () => {
    const { client, server } = handshake({}, { versions: [QUIC_V2, QUIC_V1] });
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(client.negotiatedVersion).toBe(QUIC_V2);
    expect(server.negotiatedVersion).toBe(QUIC_V2);
  });

  it("stays in v1 by default, with version_information sent both ways", () => {
    const { client, server, seen } = handshake({}, {});
    expect(client.negotiatedVersion).toBe(QUIC_V1);
    expect(seen.every((p) => p.version === QUIC_V1)).toBe(true);
    expect(server.peerTransportParameters?.versionInformation).toEqual({
      chosenVersion: QUIC_V1,
      availableVersions: [QUIC_V1, QUIC_V2],
    });
    expect(client.peerTransportParameters?.versionInformation?.chosenVersion).toBe(QUIC_V1);
  });

  it("a client that offers only v1 is not switched", () => {
    const { client, seen } = handshake({ versions: [QUIC_V1] }, { versions: [QUIC_V2, QUIC_V1] });
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(client.negotiatedVersion).toBe(QUIC_V1);
    expect(seen.every((p) => p.version === QUIC_V1)).toBe(true);
  });

  it("v2 end to end from the first Initial, and v2 → v1 when the server prefers v1", () => {
    const a = handshake({ version: QUIC_V2, versions: [QUIC_V2] }, {});
    expect(a.client.isHandshakeConfirmed).toBe(true);
    expect(a.seen.every((p) => p.version === QUIC_V2)).toBe(true);
    const b = handshake({ version: QUIC_V2 }, { versions: [QUIC_V1, QUIC_V2] });
    expect(b.client.isHandshakeConfirmed).toBe(true);
    expect(b.client.negotiatedVersion).toBe(QUIC_V1);
    expect(b.server.negotiatedVersion).toBe(QUIC_V1);
  });

  it("survives loss of the first server flight (the client retransmits its v1 Initial)", () => {
    const c = Connection.connect(clientConfig({ versions: [QUIC_V2, QUIC_V1] }), T0);
    const ref: { server?: Connection } = {};
    runPair(
      c,
      serverConfig(),
      (s) => !!s?.isHandshakeConfirmed && c.isHandshakeConfirmed,
      { delay: 5, drop: (to, _d, n) => to === "client" && n < 2 },
      T0,
      10_000,
      undefined,
      ref,
    );
    expect(c.isHandshakeConfirmed).toBe(true);
    expect(c.negotiatedVersion).toBe(QUIC_V2);
  });

  it("a forged Version field does not switch the client (the Initial must decrypt)", () => {
    const client = Connection.connect(clientConfig({ versions: [QUIC_V2, QUIC_V1] }), T0);
    const first = client.pollTransmit(T0)!;
    const server = acceptFirst(first, serverConfig({ versions: [QUIC_V1] }), T0 + 5);
    server.receive(first, T0 + 5);
    const reply = server.pollTransmit(T0 + 5)!;
    const forged = reply.slice();
    new DataView(forged.buffer).setUint32(1, QUIC_V2);
    client.receive(forged, T0 + 10);
    expect(client.negotiatedVersion).toBe(QUIC_V1);
    expect(client.isClosed).toBe(false);
    client.receive(reply, T0 + 11);
    const ref = { server };
    runPair(
      client,
      serverConfig(),
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      {},
      T0 + 11,
      10_000,
      undefined,
      ref,
    );
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(client.negotiatedVersion).toBe(QUIC_V1);
  });
});

describe("downgrade prevention (RFC 9368 §4)", () => {
  it("VERSION_NEGOTIATION_ERROR when a forged VN pushed the client off the version it would pick", () => {
    // The client prefers v2 and starts in it; an attacker's VN claims the server speaks only v1.
    const client = Connection.connect(clientConfig({ version: QUIC_V2, versions: [QUIC_V2, QUIC_V1] }), T0);
    const first = client.pollTransmit(T0)!;
    const [h] = splitCoalescedPackets(first, { localCidLength: 8 });
    const scid = "scid" in h ? h.scid : new Uint8Array(0);
    client.receive(encodeVersionNegotiation(scid, h.dcid, [QUIC_V1]), T0 + 1);
    const second = client.pollTransmit(T0 + 1)!;
    expect(new DataView(second.buffer, second.byteOffset).getUint32(1)).toBe(QUIC_V1);
    // The real server supports both but, preferring v1, keeps v1: its version_information lists
    // v2, which the client would have chosen — the VN was forged.
    const sc = serverConfig({ versions: [QUIC_V1, QUIC_V2] });
    const server = acceptFirst(second, sc, T0 + 2);
    server.receive(second, T0 + 2);
    const ref = { server };
    runPair(client, sc, () => client.isClosed, {}, T0 + 2, 10_000, undefined, ref);
    const r = client.reason;
    expect(r?.kind === "transport" && r.code).toBe(TransportErrorCode.VERSION_NEGOTIATION_ERROR);
  });

  it("a server refuses a client whose Chosen Version is not the version of its Initials", () => {
    const client = Connection.connect(clientConfig(), T0);
    const first = client.pollTransmit(T0)!;
    const server = acceptFirst(first, serverConfig(), T0 + 1);
    // The client's transport parameters as an attacker would rewrite them: chosen v2 in a v1 Initial.
    const p = {
      initialSourceConnectionId: new Uint8Array(8),
      versionInformation: { chosenVersion: QUIC_V2, availableVersions: [QUIC_V2] },
    };
    const bytes = new Uint8Array(transportParametersSize(p));
    encodeTransportParameters(p, new ByteWriter(bytes));
    const choose = (server as unknown as { chooseVersion(b: Uint8Array): Uint8Array }).chooseVersion.bind(
      server,
    );
    expect(() => choose(bytes)).toThrowError(
      expect.objectContaining({ code: TransportErrorCode.VERSION_NEGOTIATION_ERROR }),
    );
    expect(server.negotiatedVersion).toBe(QUIC_V1);
  });

  it("a client that followed a VN ignores a second one (RFC 9368 §4)", () => {
    const client = Connection.connect(clientConfig({ version: QUIC_V2, versions: [QUIC_V2, QUIC_V1] }), T0);
    const first = client.pollTransmit(T0)!;
    const [h] = splitCoalescedPackets(first, { localCidLength: 8 });
    const scid = "scid" in h ? h.scid : new Uint8Array(0);
    client.receive(encodeVersionNegotiation(scid, h.dcid, [QUIC_V1]), T0 + 1);
    expect(client.negotiatedVersion).toBe(QUIC_V1);
    client.receive(encodeVersionNegotiation(scid, h.dcid, [0x1a2a3a4a]), T0 + 2);
    expect(client.isClosed).toBe(false);
    expect(client.negotiatedVersion).toBe(QUIC_V1);
  });
});

describe('key update in QUIC v2 ("quicv2 ku", RFC 9369 §3.3.2)', () => {
  it("a forced update after a compatible switch to v2 is followed by the peer", () => {
    const { client, server } = handshake({ versions: [QUIC_V2, QUIC_V1] }, {});
    expect(client.negotiatedVersion).toBe(QUIC_V2);
    client.forceKeyUpdate();
    const id = client.openStream(true)!;
    client.write(id, new Uint8Array(50_000).fill(7), true);
    const ref = { server };
    let got = 0;
    let fin = false;
    runPair(
      client,
      serverConfig(),
      (s) => {
        for (let r = fin ? null : s?.read(id); r; r = fin ? null : s?.read(id)) {
          got += r.data.length;
          if (r.fin) fin = true;
        }
        return fin;
      },
      {},
      T0 + 100,
      10_000,
      undefined,
      ref,
    );
    expect(got).toBe(50_000);
    expect(client.stats().keyUpdatesLocal).toBe(1);
    expect(server.stats().keyUpdatesRemote).toBe(1);
  });
});

/** The client's first datagram, its header fields, and whether v1's Initial keys open it. */
function probeInitial(client: Connection) {
  const first = client.pollTransmit(T0)!;
  const [h] = splitCoalescedPackets(first, { localCidLength: 8 });
  if (h.type !== PacketType.UnsupportedVersion)
    throw new Error(`expected an unsupported version, got ${h.type}`);
  // The same bytes with v1 in the Version field parse as a v1 Initial: where its packet number is.
  const asV1 = first.slice();
  new DataView(asV1.buffer).setUint32(1, QUIC_V1);
  const [v1] = splitCoalescedPackets(asV1, { localCidLength: 8 });
  if (v1.type !== PacketType.Initial) throw new Error("not an Initial under v1's type bits");
  // Unprotect the datagram as sent (the Version field is authenticated as part of the header).
  const keys = deriveInitialKeys(defaultCryptoProvider, QUIC_V1, h.dcid).client;
  const sealed = first.slice(v1.packetStart, v1.packetEnd);
  const n = unprotectPacket(
    keys,
    sealed,
    0,
    v1.pnOffset - v1.packetStart,
    sealed.length,
    -1,
    createUnprotectedPacket(),
  );
  return {
    datagram: first,
    version: h.version,
    dcid: h.dcid.slice(),
    scid: h.scid.slice(),
    openedWithV1: n > 0,
  };
}

describe("a client probing with a reserved version (RFC 9000 §6, §15; interop runner versionnegotiation)", () => {
  const RESERVED = 0x1a2a3a4a;

  it("sends a full-size Initial whose Version field is the reserved version, sealed with v1's Initial keys", () => {
    const client = Connection.connect(clientConfig({ version: RESERVED }), T0);
    const p = probeInitial(client);
    expect(p.version).toBe(RESERVED);
    expect(p.datagram.length).toBeGreaterThanOrEqual(1200);
    expect(p.dcid.length).toBeGreaterThanOrEqual(8);
    expect(p.openedWithV1).toBe(true);
    // It offers nothing else: version_information names only the probe.
    expect(client.negotiatedVersion).toBe(RESERVED);
  });

  it("gives up on the VN, naming the server's versions, and sends nothing more", () => {
    const q = versionRecorder();
    const received: string[] = [];
    const sink: QlogSink = {
      ...q.sink,
      packetReceived: (info) => {
        received.push(`${info.type} ${info.supportedVersions?.join(",")}`);
      },
    };
    const client = Connection.connect(clientConfig({ version: RESERVED, qlog: sink }), T0);
    const p = probeInitial(client);
    client.receive(encodeVersionNegotiation(p.scid, p.dcid, [QUIC_V1, QUIC_V2, 0x3a3a3a3a]), T0 + 5);
    expect(client.isClosed).toBe(true);
    expect(client.reason).toEqual({ kind: "version-mismatch", offered: [QUIC_V1, QUIC_V2, 0x3a3a3a3a] });
    const events = drainEvents(client);
    expect(events.some((e) => e.type === "closed")).toBe(true);
    expect(client.pollTransmit(T0 + 6)).toBeNull();
    expect(client.nextTimeout()).toBeUndefined();
    expect(q.chosen).toEqual([RESERVED]);
    expect(received).toEqual([`version_negotiation ${[QUIC_V1, QUIC_V2, 0x3a3a3a3a].join(",")}`]);
  });

  it("ignores a VN that does not echo its connection IDs, or that lists the reserved version (RFC 9000 §6.2)", () => {
    const client = Connection.connect(clientConfig({ version: RESERVED }), T0);
    const p = probeInitial(client);
    const other = new Uint8Array(8).fill(9);
    client.receive(encodeVersionNegotiation(p.scid, other, [QUIC_V1]), T0 + 1);
    client.receive(encodeVersionNegotiation(other, p.dcid, [QUIC_V1]), T0 + 2);
    client.receive(encodeVersionNegotiation(p.scid, p.dcid, [RESERVED, QUIC_V1]), T0 + 3);
    expect(client.isClosed).toBe(false);
    // Still probing: the Initial goes again when its PTO fires.
    const t = client.nextTimeout()!;
    client.handleTimeout(t);
    const again = client.pollTransmit(t)!;
    expect(new DataView(again.buffer, again.byteOffset).getUint32(1)).toBe(RESERVED);
    client.receive(encodeVersionNegotiation(p.scid, p.dcid, [QUIC_V1]), t + 1);
    expect(client.reason).toEqual({ kind: "version-mismatch", offered: [QUIC_V1] });
  });

  it("with versions: [v1] it follows the VN to v1 and completes the handshake (RFC 9368 §2.1)", () => {
    const client = Connection.connect(clientConfig({ version: RESERVED, versions: [QUIC_V1] }), T0);
    const p = probeInitial(client);
    // A reserved version in the VN is never chosen (RFC 9368 §3).
    client.receive(encodeVersionNegotiation(p.scid, p.dcid, [0x3a3a3a3a, QUIC_V1]), T0 + 5);
    expect(client.isClosed).toBe(false);
    const second = client.pollTransmit(T0 + 5)!;
    expect(new DataView(second.buffer, second.byteOffset).getUint32(1)).toBe(QUIC_V1);
    const sc = serverConfig();
    const server = acceptFirst(second, sc, T0 + 10);
    server.receive(second, T0 + 10);
    const ref = { server };
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
    expect(client.negotiatedVersion).toBe(QUIC_V1);
    // Downgrade prevention passed: the server's Available Versions lead to v1 as well.
    expect(client.reason).toBeUndefined();
    expect(server.peerTransportParameters?.versionInformation).toEqual({
      chosenVersion: QUIC_V1,
      availableVersions: [QUIC_V1, RESERVED],
    });
  });

  it("a VN with no version it offers ends the probe even when `versions` is set", () => {
    const client = Connection.connect(clientConfig({ version: RESERVED, versions: [QUIC_V2] }), T0);
    const p = probeInitial(client);
    client.receive(encodeVersionNegotiation(p.scid, p.dcid, [QUIC_V1, 0x3a3a3a3a]), T0 + 5);
    expect(client.reason).toEqual({ kind: "version-mismatch", offered: [QUIC_V1, 0x3a3a3a3a] });
  });

  it("refuses an unsupported version that is not reserved (a QuicUsageError)", () => {
    expect(() => Connection.connect(clientConfig({ version: 0xff00001d }), T0)).toThrow(QuicUsageError);
    expect(() => Connection.connect(clientConfig({ version: 0xff00001d }), T0)).toThrow(/reserved version/);
    expect(() => Connection.connect(clientConfig({ versions: [RESERVED] }), T0)).toThrow(QuicUsageError);
    expect(() =>
      Connection.accept(
        serverConfig(),
        { version: RESERVED, dcid: new Uint8Array(8), scid: new Uint8Array(8) },
        T0,
      ),
    ).toThrow(QuicUsageError);
  });
});
