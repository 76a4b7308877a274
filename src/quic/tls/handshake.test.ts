import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { cryptoProviders } from "../crypto/providers.ts";
import { QuicError, TransportErrorCode } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import { AntiReplay } from "./anti-replay.ts";
import { TlsClient, type TlsClientConfig } from "./client.ts";
import { type DevCertificate, generateDevCertificate } from "./dev-certificate.ts";
import { NamedGroup } from "./extensions.ts";
import type { ResumableSession, TlsEndpoint, TlsEvent } from "./handshake.ts";
import { CipherSuite } from "./messages.ts";
import { TlsServer, type TlsServerConfig } from "./server.ts";
import { TicketKeyRing } from "./session-ticket.ts";

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const clientTp = Uint8Array.of(0x01, 0x02, 0x42, 0x10); // opaque to TLS
const serverTp = Uint8Array.of(0x03, 0x02, 0x45, 0xc0);
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

interface Side {
  tls: TlsEndpoint;
  events: TlsEvent[];
}

/** Delivers every "send" event of one side to the other until both are quiet. */
function pump(client: Side, server: Side, now = NOW): void {
  for (let round = 0; round < 20; round++) {
    let moved = false;
    for (const [from, to] of [
      [client, server],
      [server, client],
    ] as const) {
      const evs = from.tls.takeEvents();
      from.events.push(...evs);
      for (const e of evs) {
        if (e.type === "send") {
          to.tls.receive(e.level, e.data, now);
          moved = true;
        }
      }
    }
    if (!moved) return;
  }
  throw new Error("handshake did not settle");
}

function secrets(events: TlsEvent[], direction: "read" | "write"): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events)
    if (e.type === "secret" && e.direction === direction) out[e.level] = toHex(e.secret);
  return out;
}

let cert: DevCertificate;
beforeAll(() => {
  cert = generateDevCertificate({ now: new Date(NOW) });
});

function clientConfig(over: Partial<TlsClientConfig> = {}): TlsClientConfig {
  return {
    serverName: "localhost",
    alpnProtocols: ["h3", "hq-interop"],
    transportParameters: clientTp,
    roots: [cert.certificatePem],
    ...over,
  };
}

function serverConfig(over: Partial<TlsServerConfig> = {}): TlsServerConfig {
  return {
    credentials: { chainDer: [cert.certificateDer], privateKey: cert.privateKey },
    alpnProtocols: ["hq-interop", "h3"],
    transportParameters: serverTp,
    ...over,
  };
}

function handshake(c: TlsClientConfig, s: TlsServerConfig, now = NOW) {
  const client = { tls: new TlsClient(c), events: [] as TlsEvent[] };
  const server = { tls: new TlsServer(s), events: [] as TlsEvent[] };
  (client.tls as TlsClient).start(now);
  pump(client, server, now);
  return { client, server, c: client.tls as TlsClient, s: server.tls as TlsServer };
}

function expectMatchingKeys(client: Side, server: Side): void {
  const cw = secrets(client.events, "write");
  const sr = secrets(server.events, "read");
  const sw = secrets(server.events, "write");
  const cr = secrets(client.events, "read");
  expect(cw.handshake).toBeDefined();
  expect(cw.application).toBeDefined();
  for (const level of ["handshake", "application"]) {
    expect(cw[level]).toBe(sr[level]);
    expect(sw[level]).toBe(cr[level]);
  }
  expect(cw.application).not.toBe(sw.application);
}

describe("TLS 1.3 handshake, client ↔ server in memory", () => {
  it("completes a full handshake: same keys, ALPN, transport parameters, exporter", () => {
    const { client, server, c, s } = handshake(clientConfig(), serverConfig());
    expect(c.handshakeComplete).toBe(true);
    expect(s.handshakeComplete).toBe(true);
    expectMatchingKeys(client, server);
    expect(c.alpn).toBe("hq-interop"); // the server's order wins among what the client offered
    expect(s.alpn).toBe("hq-interop");
    expect(toHex(c.peerTransportParameters!)).toBe(toHex(serverTp));
    expect(toHex(s.peerTransportParameters!)).toBe(toHex(clientTp));
    expect(client.events.some((e) => e.type === "handshake-complete")).toBe(true);
    expect(server.events.some((e) => e.type === "handshake-complete")).toBe(true);
    const a = c.exportKeyingMaterial("EXPORTER-test", new Uint8Array(0), 32);
    expect(toHex(a)).toBe(toHex(s.exportKeyingMaterial("EXPORTER-test", new Uint8Array(0), 32)));
    expect(s.serverName).toBe("localhost");
  });

  const suites = [
    CipherSuite.TLS_AES_128_GCM_SHA256,
    CipherSuite.TLS_AES_256_GCM_SHA384,
    CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
  ];
  const groups = [NamedGroup.x25519, NamedGroup.secp256r1, NamedGroup.secp384r1];
  for (const provider of cryptoProviders) {
    for (const suite of suites) {
      for (const group of groups) {
        it(`suite 0x${suite.toString(16)} × group 0x${group.toString(16)} (${provider.name})`, () => {
          const { client, server, c } = handshake(
            clientConfig({ cipherSuites: [suite], groups: [group], provider }),
            serverConfig({ groups: [group], provider }),
          );
          expect(c.cipherSuite?.id).toBe(suite);
          expectMatchingKeys(client, server);
        });
      }
    }
  }

  it("sends HelloRetryRequest when the server wants the group the client did not key", () => {
    const { client, server, c, s } = handshake(
      clientConfig({ groups: [NamedGroup.x25519, NamedGroup.secp256r1] }),
      serverConfig({ groups: [NamedGroup.secp256r1, NamedGroup.x25519] }),
    );
    const initialSends = client.events.filter((e) => e.type === "send" && e.level === "initial");
    expect(initialSends).toHaveLength(2); // ClientHello, then ClientHello after the HRR
    expect(c.handshakeComplete && s.handshakeComplete).toBe(true);
    expectMatchingKeys(client, server);
  });

  it("fails with no_application_protocol when no ALPN is in common", () => {
    expect(() => handshake(clientConfig({ alpnProtocols: ["smtp"] }), serverConfig())).toThrow(
      expect.objectContaining({ alert: AlertDescription.no_application_protocol }),
    );
  });

  it("fails with handshake_failure when no cipher suite or group is in common", () => {
    expect(() =>
      handshake(
        clientConfig({ cipherSuites: [CipherSuite.TLS_AES_256_GCM_SHA384] }),
        serverConfig({ cipherSuites: [CipherSuite.TLS_AES_128_GCM_SHA256] }),
      ),
    ).toThrow(expect.objectContaining({ alert: AlertDescription.handshake_failure }));
    expect(() =>
      handshake(
        clientConfig({ groups: [NamedGroup.x25519] }),
        serverConfig({ groups: [NamedGroup.secp256r1] }),
      ),
    ).toThrow(expect.objectContaining({ alert: AlertDescription.handshake_failure }));
  });

  it("rejects a certificate for another host, from an unknown CA, or expired", () => {
    expect(() => handshake(clientConfig({ serverName: "example.com" }), serverConfig())).toThrow(TlsError);
    expect(() => handshake(clientConfig({ roots: [] }), serverConfig())).toThrow(
      expect.objectContaining({ alert: AlertDescription.unknown_ca }),
    );
    expect(() => handshake(clientConfig(), serverConfig(), NOW + 30 * 86400_000)).toThrow(
      expect.objectContaining({ alert: AlertDescription.certificate_expired }),
    );
  });

  it("accepts the dev certificate by serverCertificateHashes and in insecure mode", () => {
    const byHash = handshake(
      clientConfig({ roots: [], verifyMode: { serverCertificateHashes: [cert.certificateSha256] } }),
      serverConfig(),
    );
    expect(byHash.c.handshakeComplete).toBe(true);
    const wrong = new Uint8Array(32);
    expect(() =>
      handshake(
        clientConfig({ roots: [], verifyMode: { serverCertificateHashes: [wrong] } }),
        serverConfig(),
      ),
    ).toThrow(TlsError);
    expect(
      handshake(clientConfig({ roots: [], verifyMode: "insecure" }), serverConfig()).c.handshakeComplete,
    ).toBe(true);
  });

  it("does mutual TLS when the server requires a client certificate", () => {
    const clientCert = generateDevCertificate({ hosts: ["client.test"], now: new Date(NOW) });
    // The dev certificate's EKU is serverAuth only, so the server verifies it by hash here.
    const { client, server, s } = handshake(
      clientConfig({
        clientCredentials: { chainDer: [clientCert.certificateDer], privateKey: clientCert.privateKey },
      }),
      serverConfig({
        clientAuth: {
          mode: "require",
          verifyMode: { serverCertificateHashes: [clientCert.certificateSha256] },
        },
      }),
    );
    expectMatchingKeys(client, server);
    expect(toHex(s.peerCertificates[0])).toBe(toHex(clientCert.certificateDer));
    expect(() =>
      handshake(clientConfig(), serverConfig({ clientAuth: { mode: "require", verifyMode: "insecure" } })),
    ).toThrow(expect.objectContaining({ alert: AlertDescription.certificate_required }));
    // "request" without a client certificate still completes.
    expect(
      handshake(clientConfig(), serverConfig({ clientAuth: { mode: "request" } })).s.handshakeComplete,
    ).toBe(true);
  });

  it("logs NSS key log lines for every secret", () => {
    const lines: string[] = [];
    handshake(clientConfig({ keyLog: (l) => lines.push(l) }), serverConfig());
    const labels = lines.map((l) => l.split(" ")[0]);
    for (const label of [
      "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
      "SERVER_HANDSHAKE_TRAFFIC_SECRET",
      "CLIENT_TRAFFIC_SECRET_0",
      "SERVER_TRAFFIC_SECRET_0",
    ]) {
      expect(labels).toContain(label);
    }
    expect(lines[0]).toMatch(/^[A-Z_0-9]+ [0-9a-f]{64} [0-9a-f]{64}$/);
  });
});

describe("resumption and 0-RTT", () => {
  const provider = cryptoProviders[0];

  function ticketedServer(
    over: Partial<TlsServerConfig> = {},
    antiReplay = new AntiReplay(provider, NOW - 1000),
  ) {
    const keyRing = new TicketKeyRing(provider, { key: new Uint8Array(32).fill(7) });
    return (extra: Partial<TlsServerConfig> = {}) =>
      serverConfig({
        tickets: {
          keyRing,
          earlyData: true,
          antiReplay,
          quicVersion: 1,
          transportParameters: { initialMaxData: 100_000 },
        },
        ...over,
        ...extra,
      });
  }

  function firstSession(serverCfg: TlsServerConfig): ResumableSession {
    const { client } = handshake(clientConfig(), serverCfg);
    const ticket = client.events.find((e) => e.type === "session-ticket");
    expect(ticket).toBeDefined();
    return (ticket as { session: ResumableSession }).session;
  }

  it("resumes with a ticket (no certificate) and accepts 0-RTT once", () => {
    const make = ticketedServer();
    const session = firstSession(make());
    expect(session.maxEarlyDataSize).toBe(0xffffffff);
    const later = NOW + 5000;
    const r = handshake(
      clientConfig({ resumption: { ...session, receivedAt: NOW }, enableEarlyData: true }),
      make(),
      later,
    );
    expect(r.s.resumed).toBe(true);
    expect(r.c.earlyDataAccepted).toBe(true);
    expect(r.s.earlyDataAccepted).toBe(true);
    expectMatchingKeys(r.client, r.server);
    expect(secrets(r.client.events, "write").early).toBe(secrets(r.server.events, "read").early);
    expect(
      r.server.events.some((e) => e.type === "send" && e.level === "handshake" && e.data[0] === 11),
    ).toBe(false);

    // The same ticket again: resumption still works, but its early data is refused (anti-replay).
    const again = handshake(clientConfig({ resumption: session, enableEarlyData: true }), make(), later + 10);
    expect(again.s.resumed).toBe(true);
    expect(again.c.earlyDataAccepted).toBe(false);
    expect(again.client.events).toContainEqual({ type: "early-data", accepted: false });
  });

  it("rejects 0-RTT but resumes when the server does not allow early data now", () => {
    const make = ticketedServer();
    const session = firstSession(make());
    const r = handshake(
      clientConfig({ resumption: session, enableEarlyData: true }),
      make({
        tickets: {
          keyRing: (make().tickets as { keyRing: TicketKeyRing }).keyRing,
          quicVersion: 1,
          transportParameters: {},
        },
      }),
      NOW + 1000,
    );
    expect(r.s.resumed).toBe(true);
    expect(r.c.earlyDataAccepted).toBe(false);
    expectMatchingKeys(r.client, r.server);
  });

  it("falls back to a full handshake for a ticket the server cannot open", () => {
    const session = firstSession(ticketedServer()());
    const otherServer = serverConfig({
      tickets: {
        keyRing: new TicketKeyRing(provider, { key: new Uint8Array(32).fill(9) }),
        quicVersion: 1,
        transportParameters: {},
      },
    });
    const r = handshake(
      clientConfig({ resumption: session, enableEarlyData: true }),
      otherServer,
      NOW + 1000,
    );
    expect(r.s.resumed).toBe(false);
    expect(r.c.handshakeComplete).toBe(true);
    expect(r.c.earlyDataAccepted).toBe(false);
  });

  it("rejects a resumption whose binder does not verify (decrypt_error)", () => {
    const make = ticketedServer();
    const session = firstSession(make());
    const bad = { ...session, psk: new Uint8Array(session.psk.length) };
    expect(() => handshake(clientConfig({ resumption: bad }), make(), NOW + 1000)).toThrow(
      expect.objectContaining({ alert: AlertDescription.decrypt_error }),
    );
  });
});

describe("hostile handshake input", () => {
  it("fails bad Finished with decrypt_error", () => {
    const client = { tls: new TlsClient(clientConfig()), events: [] as TlsEvent[] };
    const server = { tls: new TlsServer(serverConfig()), events: [] as TlsEvent[] };
    (client.tls as TlsClient).start(NOW);
    const ch = client.tls.takeEvents().filter((e) => e.type === "send");
    for (const e of ch) if (e.type === "send") server.tls.receive(e.level, e.data, NOW);
    const flight = server.tls.takeEvents().filter((e) => e.type === "send");
    const last = flight[flight.length - 1];
    if (last.type !== "send") throw new Error("unreachable");
    const tampered = last.data.slice();
    tampered[tampered.length - 1] ^= 1; // the server Finished is the last message
    for (const e of flight) {
      if (e.type !== "send") continue;
      const data = e === last ? tampered : e.data;
      if (e === last) {
        expect(() => client.tls.receive(e.level, data, NOW)).toThrow(
          expect.objectContaining({ alert: AlertDescription.decrypt_error }),
        );
      } else client.tls.receive(e.level, data, NOW);
    }
  });

  it("fails a bad CertificateVerify with decrypt_error", () => {
    const client = new TlsClient(clientConfig());
    const server = new TlsServer(serverConfig());
    client.start(NOW);
    for (const e of client.takeEvents()) if (e.type === "send") server.receive(e.level, e.data, NOW);
    const flight = server.takeEvents().filter((e) => e.type === "send");
    let err: unknown;
    for (const e of flight) {
      if (e.type !== "send") continue;
      const data = e.data.slice();
      if (data[0] === 15) data[data.length - 5] ^= 0x55; // CertificateVerify signature
      try {
        client.receive(e.level, data, NOW);
      } catch (x) {
        err = x;
        break;
      }
    }
    expect(err).toBeInstanceOf(TlsError);
    expect((err as TlsError).alert).toBe(AlertDescription.decrypt_error);
  });

  it("requires quic_transport_parameters (missing_extension)", () => {
    // A ClientHello without the extension: rewrite the client's ClientHello by dropping it.
    const client = new TlsClient(clientConfig());
    client.start(NOW);
    const chEvent = client.takeEvents().find((e) => e.type === "send");
    if (chEvent?.type !== "send") throw new Error("no ClientHello");
    const server = new TlsServer(serverConfig());
    const ch = chEvent.data;
    // Find extension 0x0039 and remove it, fixing the lengths.
    const idx = Buffer.from(ch).indexOf(Buffer.from([0x00, 0x39, 0x00, clientTp.length]));
    expect(idx).toBeGreaterThan(0);
    const extLen = 4 + clientTp.length;
    const out = new Uint8Array(ch.length - extLen);
    out.set(ch.subarray(0, idx), 0);
    out.set(ch.subarray(idx + extLen), idx);
    const bodyLen = out.length - 4;
    out[1] = bodyLen >> 16;
    out[2] = bodyLen >> 8;
    out[3] = bodyLen;
    // extensions block length sits right after compression methods: locate it from the start.
    let p = 4 + 2 + 32;
    p += 1 + out[p]; // session id
    p += 2 + ((out[p] << 8) | out[p + 1]); // cipher suites
    p += 1 + out[p]; // compression
    const extTotal = ((out[p] << 8) | out[p + 1]) - extLen;
    out[p] = extTotal >> 8;
    out[p + 1] = extTotal;
    expect(() => server.receive("initial", out, NOW)).toThrow(
      expect.objectContaining({ alert: AlertDescription.missing_extension }),
    );
  });

  it("rejects handshake messages at the wrong encryption level and KeyUpdate after the handshake", () => {
    const { c } = handshake(clientConfig(), serverConfig());
    // KeyUpdate (type 24) is forbidden in QUIC (RFC 9001 §6).
    expect(() => c.receive("application", Uint8Array.of(24, 0, 0, 1, 0), NOW)).toThrow(
      expect.objectContaining({ alert: AlertDescription.unexpected_message }),
    );
    const server = new TlsServer(serverConfig());
    expect(() => server.receive("handshake", Uint8Array.of(1, 0, 0, 0), NOW)).toThrow(TlsError);
    const s2 = new TlsServer(serverConfig());
    expect(() => s2.receive("early", Uint8Array.of(1), NOW)).toThrow(
      expect.objectContaining({ code: TransportErrorCode.PROTOCOL_VIOLATION }),
    );
  });

  it("only ever fails with a QuicError on random or mutated server input", () => {
    const client = new TlsClient(clientConfig());
    const server = new TlsServer(serverConfig());
    client.start(NOW);
    const ch = client.takeEvents().find((e) => e.type === "send");
    if (ch?.type !== "send") throw new Error("no ClientHello");
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 300 }),
          fc.tuple(fc.nat(ch.data.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => {
            const m = ch.data.slice();
            m[i] ^= x;
            return m;
          }),
        ),
        (bytes) => {
          const s = new TlsServer(serverConfig());
          try {
            s.receive("initial", bytes, NOW);
          } catch (e) {
            expect(e).toBeInstanceOf(QuicError);
          }
        },
      ),
      { numRuns: 300 },
    );
    expect(server).toBeDefined();
  });
});

describe("signature schemes with a CA-issued chain", () => {
  const kinds = [
    ["p256", 0x0403],
    ["p384", 0x0503],
    ["ed25519", 0x0807],
    ["rsa2048", 0x0804],
  ] as const;
  for (const [kind, scheme] of kinds) {
    it(`server key ${kind} signs CertificateVerify with 0x${scheme.toString(16)}, chain verified to the root`, async () => {
      const { buildPki, makeKey, NOW: PKI_NOW } = await import("./test-pki.ts");
      const pki = await buildPki({ leafKey: makeKey(kind), dns: ["quic.test"], tag: kind });
      const now = PKI_NOW.getTime();
      const { client, server, c } = handshake(
        clientConfig({ serverName: "quic.test", roots: [pki.root.pem] }),
        serverConfig({
          credentials: {
            chainDer: [pki.leaf.der, pki.intermediate.der],
            privateKey: pki.leaf.key.privateKey,
          },
        }),
        now,
      );
      expectMatchingKeys(client, server);
      const cv = server.events.find((e) => e.type === "send" && e.level === "handshake" && e.data[0] === 15);
      if (cv?.type !== "send") throw new Error("no CertificateVerify");
      expect((cv.data[4] << 8) | cv.data[5]).toBe(scheme);
      expect(c.peerCertificates).toHaveLength(2);
    });
  }

  it("mutual TLS with a CA-issued client certificate verified against the server's client roots", async () => {
    const { buildPki, makeKey, NOW: PKI_NOW } = await import("./test-pki.ts");
    const serverPki = await buildPki({ dns: ["quic.test"], tag: "srv" });
    const clientPki = await buildPki({ leafKey: makeKey("p384"), dns: ["client.test"], tag: "cli" });
    const now = PKI_NOW.getTime();
    const { s } = handshake(
      clientConfig({
        serverName: "quic.test",
        roots: [serverPki.root.pem],
        clientCredentials: {
          chainDer: [clientPki.leaf.der, clientPki.intermediate.der],
          privateKey: clientPki.leaf.key.privateKey,
        },
      }),
      serverConfig({
        credentials: {
          chainDer: [serverPki.leaf.der, serverPki.intermediate.der],
          privateKey: serverPki.leaf.key.privateKey,
        },
        clientAuth: { mode: "require", roots: [clientPki.root.pem] },
      }),
      now,
    );
    expect(s.handshakeComplete).toBe(true);
    expect(toHex(s.peerCertificates[0])).toBe(toHex(clientPki.leaf.der));
    // A client certificate from a CA the server does not trust → unknown_ca.
    expect(() =>
      handshake(
        clientConfig({
          serverName: "quic.test",
          roots: [serverPki.root.pem],
          clientCredentials: { chainDer: [clientPki.leaf.der], privateKey: clientPki.leaf.key.privateKey },
        }),
        serverConfig({
          credentials: {
            chainDer: [serverPki.leaf.der, serverPki.intermediate.der],
            privateKey: serverPki.leaf.key.privateKey,
          },
          clientAuth: { mode: "require", roots: [serverPki.root.pem] },
        }),
        now,
      ),
    ).toThrow(expect.objectContaining({ alert: AlertDescription.unknown_ca }));
  });
});

describe("hostile server flight", () => {
  it("the client only ever fails with a QuicError on mutated or truncated server messages", () => {
    const base = new TlsClient(clientConfig());
    base.start(NOW);
    const server = new TlsServer(serverConfig());
    for (const e of base.takeEvents()) if (e.type === "send") server.receive(e.level, e.data, NOW);
    const flight = server.takeEvents().filter((e) => e.type === "send");
    fc.assert(
      fc.property(
        fc.nat(flight.length - 1),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.boolean(),
        (which, pos, xor, truncate) => {
          // Replay the same ClientHello state into a fresh client: use a clone by re-running.
          const client = new TlsClient(clientConfig());
          client.start(NOW);
          // A fresh client has a different key share, so the server flight cannot verify past
          // ServerHello anyway; what matters is that every failure is a QuicError.
          try {
            flight.forEach((e, i) => {
              if (e.type !== "send") return;
              let data = e.data;
              if (i === which) {
                data = data.slice();
                if (truncate) data = data.subarray(0, pos % data.length);
                else data[pos % data.length] ^= xor;
              }
              client.receive(e.level, data, NOW);
            });
          } catch (err) {
            expect(err).toBeInstanceOf(QuicError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("logs CLIENT_EARLY_TRAFFIC_SECRET when 0-RTT is attempted", () => {
    const provider = cryptoProviders[0];
    const keyRing = new TicketKeyRing(provider, { key: new Uint8Array(32).fill(3) });
    const tickets = {
      keyRing,
      earlyData: true,
      antiReplay: new AntiReplay(provider, NOW - 1),
      quicVersion: 1,
      transportParameters: {},
    };
    const first = handshake(clientConfig(), serverConfig({ tickets }));
    const ev = first.client.events.find((e) => e.type === "session-ticket");
    if (ev?.type !== "session-ticket") throw new Error("no ticket");
    const lines: string[] = [];
    const r = handshake(
      clientConfig({ resumption: ev.session, enableEarlyData: true, keyLog: (l) => lines.push(l) }),
      serverConfig({ tickets }),
      NOW + 100,
    );
    expect(r.c.earlyDataAccepted).toBe(true);
    expect(lines.map((l) => l.split(" ")[0])).toContain("CLIENT_EARLY_TRAFFIC_SECRET");
  });
});

describe("key changes", () => {
  it("treats handshake bytes left over at a key change as PROTOCOL_VIOLATION (RFC 9001 §4.1.3)", () => {
    const client = new TlsClient(clientConfig());
    client.start(NOW);
    const ch = client.takeEvents().find((e) => e.type === "send");
    if (ch?.type !== "send") throw new Error("no ClientHello");
    const trailing = new Uint8Array(ch.data.length + 3);
    trailing.set(ch.data);
    trailing.set([20, 0, 0], ch.data.length); // the start of another message after the ClientHello
    const server = new TlsServer(serverConfig());
    expect(() => server.receive("initial", trailing, NOW)).toThrow(
      expect.objectContaining({ code: TransportErrorCode.PROTOCOL_VIOLATION }),
    );
    // The failure latches: later input gets the same error.
    expect(() => server.receive("handshake", new Uint8Array(1), NOW)).toThrow(
      expect.objectContaining({ code: TransportErrorCode.PROTOCOL_VIOLATION }),
    );
  });
});
