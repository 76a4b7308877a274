/**
 * Path validation and connection migration over the simulated network (RFC 9000 §8.2, §9):
 * NAT rebinding seen by the server, client active migration, the server's preferred address.
 */
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import type { Frame } from "../frames.ts";
import type { QlogPacketInfo, QlogSink } from "../qlog.ts";
import { Connection, type ConnectionEvent, type PathAddress } from "./connection.ts";
import { type Addressing, clientConfig, type Link, prng, runPair, serverConfig, T0 } from "./test-harness.ts";

const SERVER: PathAddress = { address: "192.0.2.1", port: 443 };
const PREFERRED: PathAddress = { address: "192.0.2.2", port: 8443 };

function payload(n: number): Uint8Array {
  const r = prng(3);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

/** A qlog sink that keeps the packets sent (frames and sizes). */
function packetLog(): { sink: QlogSink; sent: QlogPacketInfo[] } {
  const sent: QlogPacketInfo[] = [];
  const sink = new Proxy({} as QlogSink, {
    get: (_t, name) => (name === "packetSent" ? (info: QlogPacketInfo) => sent.push(info) : () => undefined),
  });
  return { sink, sent };
}

const hasFrame = (p: QlogPacketInfo, kind: Frame["kind"]) =>
  (p.frames as Frame[] | undefined)?.some((f) => f.kind === kind) ?? false;

interface Upload {
  client: Connection;
  server: Connection;
  clientEvents: ConnectionEvent[];
  serverEvents: ConnectionEvent[];
  received: number;
  done: boolean;
  end: number;
}

/**
 * `conn`'s events once the grace period of the connection IDs its peer retired is over: they stay
 * routed for 3 PTO (packets still in flight with them reach the connection), then go.
 */
function afterRetiredCidGrace(conn: Connection, events: ConnectionEvent[], now: number): ConnectionEvent[] {
  conn.handleTimeout(now + 2_000);
  for (let e = conn.pollEvent(); e; e = conn.pollEvent()) events.push(e);
  return events;
}

/**
 * The client uploads `size` bytes on one stream while `step` runs after every simulator step (it
 * may change addresses or migrate). Ends when the server has read everything and the FIN.
 */
function upload(
  size: number,
  addressing: Addressing,
  step: (u: Upload, now: number) => void,
  options: {
    client?: Parameters<typeof clientConfig>[0];
    server?: Parameters<typeof serverConfig>[0];
    link?: Link;
    limitMs?: number;
  } = {},
): Upload {
  const data = payload(size);
  const client = Connection.connect(clientConfig(options.client), T0);
  const ref: { server?: Connection } = {};
  const u: Upload = {
    client,
    server: undefined as unknown as Connection,
    clientEvents: [],
    serverEvents: [],
    received: 0,
    done: false,
    end: T0,
  };
  let stream: number | undefined;
  let written = 0;
  u.end = runPair(
    client,
    serverConfig(options.server),
    (server, now) => {
      for (let e = client.pollEvent(); e; e = client.pollEvent()) u.clientEvents.push(e);
      if (server) {
        u.server = server;
        for (let e = server.pollEvent(); e; e = server.pollEvent()) u.serverEvents.push(e);
      }
      if (client.isClosed || server?.isClosed) return true;
      if (client.isHandshakeConfirmed && stream === undefined) stream = client.openStream(true);
      if (stream !== undefined) {
        while (written < size && client.bufferedAmount(stream) < 256 * 1024) {
          const n = Math.min(32 * 1024, size - written);
          client.write(stream, data.subarray(written, written + n), written + n === size);
          written += n;
        }
        if (server) {
          for (let r = u.done ? null : server.read(stream); r; r = u.done ? null : server.read(stream)) {
            for (let i = 0; i < r.data.length; i++)
              if (r.data[i] !== data[u.received + i]) throw new Error(`corrupt byte at ${u.received + i}`);
            u.received += r.data.length;
            if (r.fin) u.done = true;
          }
        }
      }
      step(u, now);
      return u.done;
    },
    { delay: 10, addressing, ...options.link },
    T0,
    options.limitMs ?? 60_000,
    undefined,
    ref,
  );
  if (ref.server) u.server = ref.server;
  return u;
}

describe("NAT rebinding at the server (RFC 9000 §9.3)", () => {
  it("a new client port: the server validates it, follows, keeps congestion state (§9.4)", () => {
    let client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    const u = upload(600_000, addressing, (up) => {
      if (up.received > 150_000 && client.port === 5000) client = { address: client.address, port: 5001 };
    });
    expect(u.done).toBe(true);
    expect(u.server.remoteAddress).toEqual({ address: "198.51.100.7", port: 5001 });
    const migrated = u.serverEvents.filter((e) => e.type === "path-migrated");
    expect(migrated).toEqual([{ type: "path-migrated", remote: client, reason: "peer" }]);
    expect(u.serverEvents.some((e) => e.type === "path-validated" && e.remote?.port === 5001)).toBe(true);
    const stats = u.server.pathStats();
    expect(stats.validated).toBe(true);
    expect(stats.congestionResets).toBe(0);
    // Replies in flight to the old port were lost in the NAT.
    expect(addressing.misdelivered!.client).toBeGreaterThan(0);
    // The client saw nothing of it: NAT rebinding is invisible to it.
    expect(u.clientEvents.some((e) => e.type === "path-migrated")).toBe(false);
  });

  it("a new client address: congestion control and RTT restart once it is validated (§9.4)", () => {
    let client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    const u = upload(400_000, addressing, (up) => {
      if (up.received > 100_000 && client.port === 5000) client = { address: "203.0.113.9", port: 6000 };
    });
    expect(u.done).toBe(true);
    expect(u.server.remoteAddress).toEqual({ address: "203.0.113.9", port: 6000 });
    expect(u.server.pathStats().congestionResets).toBe(1);
    expect(u.server.pathStats().validations).toBeGreaterThanOrEqual(1);
  });

  it("sends PATH_CHALLENGE in a datagram of at least 1200 bytes and the client answers in one too", () => {
    let client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    const serverLog = packetLog();
    const clientLog = packetLog();
    const u = upload(
      300_000,
      addressing,
      (up) => {
        if (up.received > 50_000 && client.port === 5000) client = { address: client.address, port: 5002 };
      },
      { server: { qlog: serverLog.sink }, client: { qlog: clientLog.sink } },
    );
    expect(u.done).toBe(true);
    const challenges = serverLog.sent.filter((p) => hasFrame(p, "path_challenge"));
    const responses = clientLog.sent.filter((p) => hasFrame(p, "path_response"));
    expect(challenges.length).toBeGreaterThan(0);
    expect(responses.length).toBeGreaterThan(0);
    for (const p of [...challenges, ...responses]) {
      expect(p.size).toBeGreaterThanOrEqual(1200);
      // Probing packets only (§9.1): nothing that would make the peer migrate.
      for (const f of p.frames as Frame[])
        expect(["path_challenge", "path_response", "padding"]).toContain(f.kind);
    }
  });

  it("a challenge squeezed by the 3× limit is followed by a full-size one once validated (§8.2.1)", () => {
    // A download: from its new port the client only sends small packets, so the server's first
    // PATH_CHALLENGE datagram cannot be padded to 1200 bytes.
    let client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    const log = packetLog();
    const c = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    const data = payload(400_000);
    let stream: number | undefined;
    let got = 0;
    let fin = false;
    runPair(
      c,
      serverConfig({ qlog: log.sink }),
      (server) => {
        if (server?.isHandshakeConfirmed && stream === undefined) {
          stream = server.openStream(false);
          server.write(stream!, data, true);
        }
        for (
          let r = stream === undefined || fin ? null : c.read(stream);
          r;
          r = fin ? null : c.read(stream!)
        ) {
          got += r.data.length;
          if (r.fin) fin = true;
        }
        if (got > 100_000 && client.port === 5000) {
          client = { address: client.address, port: 5004 };
          // What was in flight to the old port is lost: a small datagram (an application
          // heartbeat) is what tells the server about the new port.
          c.sendDatagram(new Uint8Array(1));
        }
        return fin;
      },
      { delay: 10, addressing },
      T0,
      60_000,
      undefined,
      ref,
    );
    expect(fin).toBe(true);
    expect(got).toBe(data.length);
    const challenges = log.sent.filter((p) => hasFrame(p, "path_challenge")).map((p) => p.size);
    expect(challenges.length).toBeGreaterThanOrEqual(2);
    expect(challenges[0]).toBeLessThan(1200);
    expect(challenges.slice(1).some((size) => size >= 1200)).toBe(true);
    expect(ref.server!.remoteAddress?.port).toBe(5004);
  });

  it("an apparent migration to an address that never answers: 3× limit there, then back (§9.3, §9.3.2)", () => {
    const client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    const u = upload(50_000, addressing, () => {});
    expect(u.done).toBe(true);
    // An attacker forwards a copy of a client packet from its own address, ahead of the original.
    u.client.sendDatagram(new Uint8Array(40));
    const copy = u.client.pollTransmit(u.end + 1)!;
    const fake: PathAddress = { address: "203.0.113.66", port: 4444 };
    u.server.receive(copy.slice(), u.end + 2, fake);
    expect(u.server.remoteAddress).toEqual(fake);
    expect(u.server.pathStats().validated).toBe(false);
    // Nothing else gets through for a while: the server's challenge (and data) go to the attacker.
    let maxSent = 0;
    let received = 0;
    let blocked = true;
    runPair(
      u.client,
      serverConfig(),
      (server) => {
        for (let e = server!.pollEvent(); e; e = server!.pollEvent()) u.serverEvents.push(e);
        const s = server!.pathStats();
        if (s.remote?.address === fake.address) {
          maxSent = Math.max(maxSent, s.bytesSent);
          received = s.bytesReceived;
        }
        return !blocked;
      },
      { delay: 10, addressing, drop: () => blocked },
      u.end + 3,
      10_000,
      undefined,
      { server: u.server },
    );
    expect(received).toBe(copy.length);
    expect(maxSent).toBeGreaterThan(0);
    expect(maxSent).toBeLessThanOrEqual(3 * received);
    const reasons = u.serverEvents.flatMap((e) => (e.type === "path-migrated" ? [e.reason] : []));
    expect(reasons).toEqual(["peer", "revert"]);
    expect(u.serverEvents).toContainEqual({ type: "path-validation-failed", remote: fake });
    expect(u.server.remoteAddress).toEqual(client);
    expect(u.server.isClosed).toBe(false);
    // The connection works on the original path again.
    blocked = false;
    u.client.sendDatagram(new Uint8Array([7]));
    let got = false;
    runPair(
      u.client,
      serverConfig(),
      (server) => {
        for (let e = server!.pollEvent(); e; e = server!.pollEvent())
          if (e.type === "datagram" && e.data[0] === 7) got = true;
        return got;
      },
      { delay: 10, addressing },
      u.end + 10_000,
      5_000,
      undefined,
      { server: u.server },
    );
    expect(got).toBe(true);
  });

  it("an unvalidated path is never the fallback: two forwarded copies, then back to the original", () => {
    const client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    const u = upload(20_000, addressing, () => {});
    u.client.sendDatagram(new Uint8Array(40));
    const first = u.client.pollTransmit(u.end + 1)!;
    u.client.sendDatagram(new Uint8Array(41));
    const second = u.client.pollTransmit(u.end + 1)!;
    // Two forwarded copies from two attacker addresses in a row: the first unvalidated path is
    // not a fallback, the original one is.
    u.server.receive(first.slice(), u.end + 2, { address: "203.0.113.66", port: 1 });
    u.server.receive(second.slice(), u.end + 3, { address: "203.0.113.67", port: 2 });
    runPair(
      u.client,
      serverConfig(),
      () => false,
      { delay: 10, addressing, drop: () => true },
      u.end + 4,
      10_000,
      undefined,
      {
        server: u.server,
      },
    );
    // The original (validated) path was kept as the fallback: the server went back to it.
    const reasons: string[] = [];
    for (let e = u.server.pollEvent(); e; e = u.server.pollEvent())
      if (e.type === "path-migrated") reasons.push(e.reason);
    expect(reasons).toEqual(["peer", "peer", "revert"]);
    expect(u.server.remoteAddress).toEqual(client);
    expect(u.server.isClosed).toBe(false);
  });

  it("packets from many new addresses keep the path state bounded (hostile input)", () => {
    const client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const u = upload(20_000, { client: () => client, server: [SERVER] }, () => {});
    expect(u.done).toBe(true);
    // One datagram replayed from 50 addresses (duplicates: they move nothing), then 50 fresh
    // non-probing ones from 50 more addresses (each a new path to validate).
    u.client.sendDatagram(new Uint8Array(10));
    const d = u.client.pollTransmit(u.end + 1)!;
    for (let i = 0; i < 50; i++)
      u.server.receive(d.slice(), u.end + 2, { address: "203.0.113.1", port: 1000 + i });
    for (let i = 0; i < 50; i++) {
      u.client.sendDatagram(new Uint8Array(10));
      const fresh = u.client.pollTransmit(u.end + 3)!;
      u.server.receive(fresh, u.end + 3, { address: "203.0.113.2", port: 2000 + i });
    }
    const s = u.server.pathStats();
    expect(s.probing).toBeLessThanOrEqual(4);
    expect(u.server.isClosed).toBe(false);
    // Whatever it sends goes to the last address only within its 3× limit.
    for (let out = u.server.pollTransmit(u.end + 4); out; out = u.server.pollTransmit(u.end + 4)) {}
    const after = u.server.pathStats();
    expect(after.bytesSent).toBeLessThanOrEqual(3 * after.bytesReceived);
  });

  it("does not move on a reordered (older) non-probing packet from the old address", () => {
    let client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    const u = upload(
      500_000,
      addressing,
      (up) => {
        if (up.received > 100_000 && client.port === 5000) client = { address: client.address, port: 5003 };
      },
      // Heavy jitter reorders datagrams across the rebinding.
      { link: { jitter: 15, seed: 11 } },
    );
    expect(u.done).toBe(true);
    expect(u.server.remoteAddress?.port).toBe(5003);
    // Every switch was a forward one: never back to 5000 because of a late packet.
    const ports = u.serverEvents.flatMap((e) => (e.type === "path-migrated" ? [e.remote?.port] : []));
    expect(ports).toEqual([5003]);
  });
});

describe("client active migration (RFC 9000 §9.2, §9.5)", () => {
  it("moves to a new local address with a fresh connection ID; both sides retire the old ones", () => {
    let client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    let migratedAt = -1;
    let dcidBefore: Uint8Array | undefined;
    const u = upload(500_000, addressing, (up, now) => {
      if (up.received > 100_000 && migratedAt < 0) {
        migratedAt = now;
        client = { address: "203.0.113.50", port: 7000 };
        dcidBefore = up.server.localConnectionIds[0];
        up.client.migrate(now);
      }
    });
    expect(u.done).toBe(true);
    expect(migratedAt).toBeGreaterThan(0);
    expect(u.clientEvents).toContainEqual({ type: "path-migrated", remote: SERVER, reason: "local" });
    expect(u.clientEvents.some((e) => e.type === "path-validated")).toBe(true);
    expect(u.client.pathStats().congestionResets).toBe(1);
    // The client retired the server's connection ID it used before (RETIRE_CONNECTION_ID); the
    // server stops routing it once packets in flight with it are gone (3 PTO).
    const retiredBefore = u.serverEvents.filter((e) => e.type === "connection-id" && e.retired).length;
    const serverEvents = afterRetiredCidGrace(u.server, u.serverEvents, u.end);
    expect(serverEvents.filter((e) => e.type === "connection-id" && e.retired).length).toBeGreaterThan(
      retiredBefore,
    );
    expect(dcidBefore).toBeDefined();
    // The server saw a new connection ID with the new address and answers with a new one too.
    const clientEvents = afterRetiredCidGrace(u.client, u.clientEvents, u.end);
    expect(clientEvents.some((e) => e.type === "connection-id" && e.retired)).toBe(true);
    expect(u.server.remoteAddress).toEqual(client);
    expect(u.server.pathStats().validated).toBe(true);
  });

  it("refuses before the handshake is confirmed, and when the server disabled migration", () => {
    const c = Connection.connect(clientConfig(), T0);
    expect(() => c.migrate(T0)).toThrow(QuicUsageError);
    let client: PathAddress = { address: "198.51.100.7", port: 5000 };
    let threw: unknown;
    upload(
      10_000,
      { client: () => client, server: [SERVER] },
      (up, now) => {
        if (up.client.isHandshakeConfirmed && threw === undefined) {
          try {
            up.client.migrate(now);
            threw = false;
          } catch (err) {
            threw = err;
          }
          client = { ...client };
        }
      },
      { server: { transport: { disableActiveMigration: true } } },
    );
    expect(threw).toBeInstanceOf(QuicUsageError);
    expect((threw as Error).message).toMatch(/disable_active_migration/);
    expect(() =>
      Connection.accept(
        serverConfig(),
        { version: 1, dcid: new Uint8Array(8), scid: new Uint8Array(8) },
        T0,
      ).migrate(T0),
    ).toThrow(/only a client/);
  });
});

describe("server preferred address (RFC 9000 §9.6)", () => {
  it("the client validates the preferred address, then moves there with its connection ID", () => {
    const client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER, PREFERRED] };
    const u = upload(300_000, addressing, () => {}, {
      server: { preferredAddress: { ipv4: { address: PREFERRED.address, port: PREFERRED.port } } },
    });
    expect(u.done).toBe(true);
    expect(u.client.peerTransportParameters?.preferredAddress?.ipv4Port).toBe(8443);
    expect(u.clientEvents).toContainEqual({
      type: "path-migrated",
      remote: PREFERRED,
      reason: "preferred-address",
    });
    expect(u.client.remoteAddress).toEqual(PREFERRED);
    // The server now sends from its preferred address (local socket 1) to the same client address.
    expect(u.server.remoteAddress).toEqual({ ...client, local: 1 });
    expect(u.serverEvents.some((e) => e.type === "path-migrated" && e.reason === "peer")).toBe(true);
    // The client retired the handshake connection ID (sequence 0) of the server: it is still
    // routed right after (packets in flight on the old path), and no longer 3 PTO later.
    expect(u.serverEvents.some((e) => e.type === "connection-id" && e.retired)).toBe(false);
    const serverEvents = afterRetiredCidGrace(u.server, u.serverEvents, u.end);
    expect(serverEvents.some((e) => e.type === "connection-id" && e.retired)).toBe(true);
  });

  it("stays on the original address when the preferred one does not answer (§9.6.1)", () => {
    const client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] }; // nothing listens there
    const u = upload(300_000, addressing, () => {}, {
      server: { preferredAddress: { ipv4: { address: PREFERRED.address, port: PREFERRED.port } } },
    });
    expect(u.done).toBe(true);
    // Validation is abandoned after 3 PTOs (§8.2.4), usually after the upload is over.
    runPair(
      u.client,
      serverConfig(),
      () => {
        for (let e = u.client.pollEvent(); e; e = u.client.pollEvent()) u.clientEvents.push(e);
        return u.clientEvents.some((e) => e.type === "path-validation-failed");
      },
      { delay: 10, addressing },
      u.end,
      10_000,
      undefined,
      { server: u.server },
    );
    expect(u.clientEvents).toContainEqual({ type: "path-validation-failed", remote: PREFERRED });
    expect(u.client.remoteAddress).toEqual(SERVER);
    expect(addressing.misdelivered!.server).toBeGreaterThan(0);
  });

  it("migrateToPreferredAddress: false keeps the original address", () => {
    const client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER, PREFERRED] };
    const u = upload(50_000, addressing, () => {}, {
      client: { migrateToPreferredAddress: false },
      server: { preferredAddress: { ipv4: { address: PREFERRED.address, port: PREFERRED.port } } },
    });
    expect(u.done).toBe(true);
    expect(u.client.remoteAddress).toEqual(SERVER);
    expect(addressing.misdelivered!.server).toBe(0);
  });

  it("a client ignores datagrams from a server address it did not choose (§9)", () => {
    const client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const u = upload(20_000, { client: () => client, server: [SERVER] }, () => {});
    expect(u.done).toBe(true);
    const before = u.client.stats().packetsReceived;
    u.server.sendDatagram(new Uint8Array([1, 2, 3]));
    const d = u.server.pollTransmit(u.end + 1)!;
    expect(d).not.toBeNull();
    // A genuine server datagram, arriving from an address the client never chose: dropped unread.
    u.client.receive(d.slice(), u.end + 2, { address: "192.0.2.99", port: 443 });
    expect(u.client.stats().packetsReceived).toBe(before);
    // The same datagram from the server's address is read.
    u.client.receive(d.slice(), u.end + 3, SERVER);
    expect(u.client.stats().packetsReceived).toBe(before + 1);
    expect(u.client.isClosed).toBe(false);
  });
});
