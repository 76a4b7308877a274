/**
 * Resumption and 0-RTT wired into the connection (RFC 9001 §4.5, §4.6, §4.9.3, §5.6; RFC 9000
 * §7.4.1, §12.3, §12.4, §17.2.3), in memory with virtual time.
 */
import { describe, expect, it } from "vitest";
import { ServerAddressValidation } from "../address-validation.ts";
import { defaultCryptoProvider } from "../crypto/node-provider.ts";
import { TransportErrorCode } from "../errors.ts";
import type { Frame } from "../frames.ts";
import { PacketType, parsePacketHeader, splitCoalescedPackets } from "../packet-header.ts";
import type { QlogPacketInfo, QlogSink } from "../qlog.ts";
import { AntiReplay } from "../tls/anti-replay.ts";
import { NamedGroup } from "../tls/extensions.ts";
import type { TlsServer } from "../tls/server.ts";
import type { SessionTicketEntry } from "../tls/session-cache.ts";
import { TicketKeyRing } from "../tls/session-ticket.ts";
import {
  type ClientConnectionConfig,
  Connection,
  type ConnectionEvent,
  type ServerConnectionConfig,
  type ServerTicketConfig,
} from "./connection.ts";
import { clientConfig, runPair, serverConfig, T0 } from "./test-harness.ts";

const provider = defaultCryptoProvider;

function events(c: Connection): ConnectionEvent[] {
  const out: ConnectionEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

/** A server whose connections share one ticket key ring (and replay store, for 0-RTT). */
function ticketServer(
  opts: {
    earlyData?: boolean;
    keyRing?: TicketKeyRing;
    antiReplay?: AntiReplay;
    transport?: ServerConnectionConfig["transport"];
    groups?: readonly number[];
  } = {},
): ServerConnectionConfig {
  const base = serverConfig();
  const tickets: ServerTicketConfig = {
    keyRing: opts.keyRing ?? new TicketKeyRing(provider, { key: new Uint8Array(32).fill(7) }),
    earlyData: opts.earlyData ?? false,
    antiReplay: opts.antiReplay ?? (opts.earlyData ? new AntiReplay(provider, T0 - 1) : undefined),
  };
  return { ...base, transport: opts.transport, tls: { ...base.tls, groups: opts.groups, tickets } };
}

/** First connection: completes and returns the ticket the server issued. */
function firstConnection(server: ServerConnectionConfig, clientOver: Partial<ClientConnectionConfig> = {}) {
  const client = Connection.connect(clientConfig(clientOver), T0);
  let ticket: SessionTicketEntry | undefined;
  const ref: { server?: Connection } = {};
  const t = runPair(
    client,
    server,
    () => {
      for (const e of events(client)) if (e.type === "session-ticket") ticket ??= e.ticket;
      return ticket !== undefined && client.isHandshakeConfirmed;
    },
    {},
    T0,
    10_000,
    undefined,
    ref,
  );
  expect(ticket).toBeDefined();
  expect((ref.server!.tlsSession as TlsServer).resumed).toBe(false);
  return { ticket: ticket!, t };
}

/** A qlog sink recording the packets a connection sends. */
function packetLog(): { sink: QlogSink; sent: QlogPacketInfo[] } {
  const sent: QlogPacketInfo[] = [];
  const noop = () => {};
  const sink: QlogSink = {
    connectionStarted: noop,
    parametersSet: noop,
    packetSent: (info) => sent.push({ ...info, frames: info.frames?.slice() }),
    packetReceived: noop,
    packetDropped: noop,
    packetLost: noop,
    metricsUpdated: noop,
    keyUpdated: noop,
    keyDiscarded: noop,
    connectionStateUpdated: noop,
    connectionClosed: noop,
    close: async () => {},
  };
  return { sink, sent };
}

interface Requests {
  /** Stream → bytes the client writes (with FIN). */
  readonly streams: Map<number, Uint8Array>;
}

function payload(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

/**
 * Second connection: resumes with `ticket` (0-RTT when `earlyData`), writes `sizes` bytes on that
 * many client streams right away (before any packet is sent), and runs until the server has read
 * them all and the handshake is confirmed on both sides.
 */
function resumedConnection(
  server: ServerConnectionConfig,
  ticket: SessionTicketEntry,
  opts: {
    earlyData?: boolean;
    sizes?: number[];
    bidi?: boolean;
    start?: number;
    link?: Parameters<typeof runPair>[3];
  } = {},
) {
  const log = packetLog();
  const start = opts.start ?? T0 + 5_000;
  const client = Connection.connect(
    clientConfig({ session: ticket, earlyData: opts.earlyData, qlog: log.sink }),
    start,
  );
  const req: Requests = { streams: new Map() };
  const bidi = opts.bidi ?? true;
  const sizes = opts.sizes ?? [];
  let i = 0;
  for (const size of sizes) {
    const id = client.openStream(bidi);
    if (id === undefined) break;
    const data = payload(size, i++);
    client.write(id, data, true);
    req.streams.set(id, data);
  }
  const counts = { zeroRttToServer: 0, zeroRttToClient: 0, firstDatagramTypes: [] as number[] };
  const received = new Map<number, Uint8Array[]>();
  const done = new Set<number>();
  /** Streams the server read completely before its handshake completed. */
  const readEarly = new Set<number>();
  const serverEvents: ConnectionEvent[] = [];
  const clientEvents: ConnectionEvent[] = [];
  const ref: { server?: Connection } = {};
  const userDrop = opts.link?.drop;
  const end = runPair(
    client,
    server,
    (srv) => {
      clientEvents.push(...events(client));
      if (!srv) return false;
      serverEvents.push(...events(srv));
      for (const id of req.streams.keys()) {
        if (done.has(id) || !srv.hasStream(id)) continue;
        for (let r = srv.read(id); r; r = srv.read(id)) {
          if (r.data.length > 0) {
            const list = received.get(id) ?? [];
            list.push(r.data.slice());
            received.set(id, list);
          }
          if (r.fin) {
            done.add(id);
            if (!srv.isEstablished) readEarly.add(id);
            break;
          }
        }
      }
      return done.size === req.streams.size && client.isHandshakeConfirmed && srv.isHandshakeConfirmed;
    },
    {
      ...opts.link,
      drop: (to, data, n) => {
        for (const h of splitCoalescedPackets(data, { localCidLength: 8 })) {
          if (h.type === PacketType.ZeroRtt) {
            if (to === "server") counts.zeroRttToServer++;
            else counts.zeroRttToClient++;
          }
          if (to === "server" && n === 0) counts.firstDatagramTypes.push(h.type);
        }
        return userDrop?.(to, data, n) ?? false;
      },
    },
    start,
    20_000,
    undefined,
    ref,
  );
  const srv = ref.server!;
  serverEvents.push(...events(srv));
  clientEvents.push(...events(client));
  const intact = [...req.streams].every(([id, data]) => {
    const got = Buffer.concat(received.get(id) ?? []);
    return done.has(id) && Buffer.compare(got, Buffer.from(data)) === 0;
  });
  return {
    client,
    server: srv,
    counts,
    intact,
    readEarly,
    serverEvents,
    clientEvents,
    sent: log.sent,
    end,
    req,
  };
}

describe("resumption (RFC 9001 §4.5)", () => {
  it("a second connection resumes with the first one's ticket: no certificate", () => {
    const server = ticketServer();
    const { ticket } = firstConnection(server);
    expect(ticket.quicVersion).toBe(1);
    expect(ticket.transportParameters?.initialMaxData).toBeGreaterThan(0);
    expect(ticket.maxEarlyDataSize).toBe(0); // the server does not offer 0-RTT
    const r = resumedConnection(server, ticket, { earlyData: true, sizes: [100] });
    expect((r.server.tlsSession as TlsServer).resumed).toBe(true);
    expect(r.intact).toBe(true);
    // The ticket allows no 0-RTT: none attempted.
    expect(r.client.earlyDataState).toBe("none");
    expect(r.counts.zeroRttToServer).toBe(0);
  });

  it("a ticket from another QUIC version is not used (RFC 9369 §5)", () => {
    const server = ticketServer();
    const { ticket } = firstConnection(server);
    const r = resumedConnection(server, { ...ticket, quicVersion: 0x6b3343cf }, { sizes: [10] });
    expect((r.server.tlsSession as TlsServer).resumed).toBe(false);
    expect(r.intact).toBe(true);
  });
});

describe("0-RTT accepted (RFC 9001 §4.6)", () => {
  it("sends the requests in 0-RTT packets that the server reads before its handshake completes", () => {
    const server = ticketServer({ earlyData: true });
    const { ticket } = firstConnection(server);
    expect(ticket.maxEarlyDataSize).toBe(0xffffffff);
    const r = resumedConnection(server, ticket, { earlyData: true, sizes: [40, 60, 500] });
    expect(r.intact).toBe(true);
    // The ClientHello's datagram carries 0-RTT after the Initial (RFC 9000 §12.2).
    expect(r.counts.firstDatagramTypes).toEqual([PacketType.Initial, PacketType.ZeroRtt]);
    expect(r.counts.zeroRttToServer).toBeGreaterThan(0);
    // RFC 9001 §5.6: a server never sends 0-RTT packets.
    expect(r.counts.zeroRttToClient).toBe(0);
    expect(r.readEarly.size).toBe(3);
    expect(r.client.earlyDataState).toBe("accepted");
    expect(r.server.earlyDataState).toBe("accepted");
    expect(r.clientEvents).toContainEqual({ type: "early-data", accepted: true });
    expect(r.serverEvents).toContainEqual({ type: "early-data", accepted: true });
    expect(r.server.stats().zeroRttPacketsReceived).toBeGreaterThan(0);
    expect(r.client.stats().zeroRttPacketsSent).toBe(r.counts.zeroRttToServer);
    expect((r.server.tlsSession as TlsServer).resumed).toBe(true);
    // RFC 9000 §12.4/§12.5: no ACK, CRYPTO, NEW_TOKEN... in 0-RTT; stream data uses the
    // application packet number space shared with 1-RTT (§12.3).
    const zeroRtt = r.sent.filter((p) => p.type === "0RTT");
    expect(zeroRtt.length).toBe(r.counts.zeroRttToServer);
    const kinds = new Set(zeroRtt.flatMap((p) => (p.frames ?? []).map((f: Frame) => f.kind)));
    expect(kinds.has("stream")).toBe(true);
    for (const k of ["ack", "crypto", "new_token", "handshake_done", "path_response", "retire_connection_id"])
      expect(kinds.has(k as Frame["kind"])).toBe(false);
    const oneRtt = r.sent.filter((p) => p.type === "1RTT");
    const zeroPns = zeroRtt.map((p) => p.pn!);
    expect(Math.min(...oneRtt.map((p) => p.pn!))).toBeGreaterThan(Math.max(...zeroPns));
  });

  it("0-RTT data lost on the way is sent again in 1-RTT", () => {
    const server = ticketServer({ earlyData: true });
    const { ticket } = firstConnection(server);
    // Drop every datagram holding only 0-RTT packets after the first.
    const r = resumedConnection(server, ticket, {
      earlyData: true,
      sizes: [3000, 2000],
      link: {
        drop: (to, data, n) =>
          to === "server" &&
          n > 0 &&
          splitCoalescedPackets(data, { localCidLength: 8 }).every((h) => h.type === PacketType.ZeroRtt),
      },
    });
    expect(r.intact).toBe(true);
    expect(r.client.earlyDataState).toBe("accepted");
  });

  it("a ticket's 0-RTT is accepted only once (RFC 9846 §8)", () => {
    const server = ticketServer({ earlyData: true });
    const { ticket } = firstConnection(server);
    const a = resumedConnection(server, ticket, { earlyData: true, sizes: [100] });
    expect(a.client.earlyDataState).toBe("accepted");
    const b = resumedConnection(server, ticket, { earlyData: true, sizes: [100], start: T0 + 6_000 });
    expect(b.client.earlyDataState).toBe("rejected");
    expect((b.server.tlsSession as TlsServer).resumed).toBe(true);
    expect(b.server.stats().zeroRttPacketsReceived).toBe(0);
    expect(b.intact).toBe(true);
  });

  it("the server discards 0-RTT keys 3 PTO after the first 1-RTT packet (RFC 9001 §4.9.3)", () => {
    const server = ticketServer({ earlyData: true });
    const { ticket } = firstConnection(server);
    const zeroRttDatagrams: Uint8Array[] = [];
    const r = resumedConnection(server, ticket, {
      earlyData: true,
      sizes: [100],
      link: {
        drop: (to, data) => {
          if (
            to === "server" &&
            splitCoalescedPackets(data, { localCidLength: 8 }).some((h) => h.type === PacketType.ZeroRtt)
          )
            zeroRttDatagrams.push(data.slice());
          return false;
        },
      },
    });
    expect(r.intact).toBe(true);
    const before = r.server.stats().zeroRttPacketsReceived;
    // Let the discard timer run, then replay the client's 0-RTT datagram: it is not read.
    runPair(r.client, server, () => false, {}, r.end, 3_000, undefined, { server: r.server });
    expect(r.server.isClosed).toBe(false);
    r.server.receive(zeroRttDatagrams[0], r.end + 3_000);
    expect(r.server.stats().zeroRttPacketsReceived).toBe(before);
    expect(r.server.isClosed).toBe(false);
  });
});

describe("0-RTT rejected (RFC 9001 §4.6.2)", () => {
  it("by a server that does not take early data: the data still arrives, in 1-RTT", () => {
    const keyRing = new TicketKeyRing(provider, { key: new Uint8Array(32).fill(9) });
    const { ticket } = firstConnection(ticketServer({ earlyData: true, keyRing }));
    const server = ticketServer({ earlyData: false, keyRing });
    const r = resumedConnection(server, ticket, { earlyData: true, sizes: [2000, 5000, 10] });
    expect(r.counts.zeroRttToServer).toBeGreaterThan(0);
    expect(r.server.stats().zeroRttPacketsReceived).toBe(0);
    expect(r.client.earlyDataState).toBe("rejected");
    expect(r.server.earlyDataState).toBe("rejected");
    expect(r.clientEvents).toContainEqual({ type: "early-data", accepted: false });
    expect(r.readEarly.size).toBe(0);
    expect(r.intact).toBe(true);
    expect(r.client.isClosed).toBe(false);
    expect((r.server.tlsSession as TlsServer).resumed).toBe(true);
  });

  it("by a server with other ticket keys: full handshake, data intact", () => {
    const { ticket } = firstConnection(ticketServer({ earlyData: true }));
    const other = new TicketKeyRing(provider, { key: new Uint8Array(32).fill(1) });
    const r = resumedConnection(ticketServer({ earlyData: true, keyRing: other }), ticket, {
      earlyData: true,
      sizes: [700, 1500],
    });
    expect((r.server.tlsSession as TlsServer).resumed).toBe(false);
    expect(r.client.earlyDataState).toBe("rejected");
    expect(r.intact).toBe(true);
  });

  it("when the server would reduce remembered limits (RFC 9000 §7.4.1); streams past the new limit wait", () => {
    const keyRing = new TicketKeyRing(provider, { key: new Uint8Array(32).fill(3) });
    const { ticket } = firstConnection(ticketServer({ earlyData: true, keyRing }));
    expect(ticket.transportParameters?.initialMaxStreamsUni).toBeGreaterThan(2);
    const server = ticketServer({ earlyData: true, keyRing, transport: { maxConcurrentUniStreams: 2 } });
    const r = resumedConnection(server, ticket, {
      earlyData: true,
      sizes: [300, 300, 300, 300, 300],
      bidi: false,
    });
    expect(r.req.streams.size).toBe(5); // opened in 0-RTT under the remembered limit
    expect(r.client.earlyDataState).toBe("rejected");
    expect(r.server.stats().zeroRttPacketsReceived).toBe(0);
    expect(r.server.isClosed).toBe(false);
    expect(r.intact).toBe(true);
  });

  it("by a HelloRetryRequest, before the server's transport parameters are known", () => {
    const keyRing = new TicketKeyRing(provider, { key: new Uint8Array(32).fill(4) });
    const { ticket } = firstConnection(ticketServer({ earlyData: true, keyRing }));
    const server = ticketServer({ earlyData: true, keyRing, groups: [NamedGroup.secp256r1] });
    const r = resumedConnection(server, ticket, { earlyData: true, sizes: [1000, 4000] });
    expect(r.client.earlyDataState).toBe("rejected");
    expect(r.intact).toBe(true);
  });
});

describe("0-RTT limits (RFC 9000 §7.4.1)", () => {
  it("a client whose 0-RTT was accepted closes with PROTOCOL_VIOLATION when the server reduced a limit", () => {
    const server = ticketServer({ earlyData: true });
    const { ticket } = firstConnection(server);
    // The client remembers more than the server gave (the server's sealed copy is honest).
    const inflated: SessionTicketEntry = {
      ...ticket,
      transportParameters: { ...ticket.transportParameters, initialMaxStreamsBidi: 1000 },
    };
    const client = Connection.connect(clientConfig({ session: inflated, earlyData: true }), T0 + 5_000);
    runPair(client, server, () => client.isClosed, {}, T0 + 5_000, 5_000);
    expect(client.reason).toMatchObject({
      kind: "transport",
      code: TransportErrorCode.PROTOCOL_VIOLATION,
      remote: false,
    });
  });

  it("0-RTT writes are bounded by the remembered flow-control limits", () => {
    const server = ticketServer({ earlyData: true, transport: { connectionReceiveWindow: 4000 } });
    const { ticket } = firstConnection(server);
    expect(ticket.transportParameters?.initialMaxData).toBe(4000);
    const r = resumedConnection(server, ticket, { earlyData: true, sizes: [20_000] });
    const zeroRttStreamBytes = r.sent
      .filter((p) => p.type === "0RTT")
      .flatMap((p) => p.frames ?? [])
      .reduce((n, f) => n + (f.kind === "stream" ? f.data.length : 0), 0);
    expect(zeroRttStreamBytes).toBeGreaterThan(0);
    expect(zeroRttStreamBytes).toBeLessThanOrEqual(4000);
    expect(r.intact).toBe(true);
  });
});

describe("0-RTT and Retry (RFC 9001 §4.6.2: a Retry does not reject 0-RTT)", () => {
  it("0-RTT data sent before a Retry goes again in 0-RTT, and the server accepts it", () => {
    const server = ticketServer({ earlyData: true });
    const { ticket } = firstConnection(server);
    const start = T0 + 5_000;
    const client = Connection.connect(clientConfig({ session: ticket, earlyData: true }), start);
    const id = client.openStream(true)!;
    const data = payload(1500, 3);
    client.write(id, data, true);
    const v = new ServerAddressValidation({ retry: "always" });
    const remote = { address: "192.0.2.1", port: 50000 };
    const first = client.pollTransmit(start)!;
    expect(splitCoalescedPackets(first, { localCidLength: 8 }).map((h) => h.type)).toContain(
      PacketType.ZeroRtt,
    );
    while (client.pollTransmit(start)) {} // more 0-RTT, lost with the first flight
    const h = parsePacketHeader(first, 0, { localCidLength: 8 });
    if (h.type !== PacketType.Initial) throw new Error("not an Initial");
    const retry = v.onInitial(h, remote, start + 5, 0);
    if (retry.action === "accept") throw new Error("no Retry");
    client.receive(retry.packet, start + 10);
    expect(client.earlyDataState).toBe("pending");
    const second = client.pollTransmit(start + 10)!;
    const types = splitCoalescedPackets(second, { localCidLength: 8 }).map((p) => p.type);
    expect(types).toEqual([PacketType.Initial, PacketType.ZeroRtt]);
    const h2 = parsePacketHeader(second, 0, { localCidLength: 8 });
    if (h2.type !== PacketType.Initial) throw new Error("not an Initial");
    const accepted = v.onInitial(h2, remote, start + 15, 0);
    if (accepted.action !== "accept") throw new Error("token refused");
    const srv = Connection.accept(server, accepted.info, start + 15);
    srv.receive(second, start + 15);
    const got: Uint8Array[] = [];
    let fin = false;
    runPair(
      client,
      server,
      (s) => {
        for (let r = fin ? null : s?.read(id); r; r = fin ? null : s?.read(id)) {
          got.push(r.data.slice());
          fin = r.fin;
        }
        return fin && client.isHandshakeConfirmed;
      },
      {},
      start + 15,
      10_000,
      undefined,
      { server: srv },
    );
    expect(Buffer.compare(Buffer.concat(got), Buffer.from(data))).toBe(0);
    expect(client.earlyDataState).toBe("accepted");
    expect(srv.stats().zeroRttPacketsReceived).toBeGreaterThan(0);
  });
});
