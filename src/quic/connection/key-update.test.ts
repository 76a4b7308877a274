import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { defaultCryptoProvider } from "../crypto/node-provider.ts";
import { QuicError, TransportErrorCode } from "../errors.ts";
import { derivePacketKeys } from "../packet-protection.ts";
import { QUIC_V1 } from "../version.ts";
import { Connection, type ConnectionEvent } from "./connection.ts";
import { OneRttKeys } from "./key-update.ts";
import { clientConfig, type Link, prng, runPair, serverConfig, T0 } from "./test-harness.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function drain(c: Connection): ConnectionEvent[] {
  const out: ConnectionEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

function payloadOf(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

interface Upload {
  client: Connection;
  server: Connection | undefined;
  received: Uint8Array;
  payload: Uint8Array;
  fin: boolean;
}

/**
 * The client uploads `size` bytes on one stream; `step` runs on every simulator step once the
 * stream is open (with how many bytes the server has read). Stops at the server's FIN or a close.
 */
function upload(
  size: number,
  link: Link,
  opts: {
    client?: Parameters<typeof clientConfig>[0];
    server?: Parameters<typeof serverConfig>[0];
    step?: (c: Connection, s: Connection | undefined, got: number) => void;
    limitMs?: number;
  } = {},
): Upload {
  const payload = payloadOf(size, 11);
  const client = Connection.connect(clientConfig(opts.client), T0);
  const ref: { server?: Connection } = {};
  let id: number | undefined;
  let written = 0;
  const chunks: Uint8Array[] = [];
  let got = 0;
  let fin = false;
  runPair(
    client,
    serverConfig(opts.server),
    (server) => {
      if (client.isClosed || server?.isClosed) return true;
      if (client.isEstablished && id === undefined) id = client.openStream(true);
      if (id === undefined) return false;
      while (written < size && client.bufferedAmount(id) < 256 * 1024) {
        const n = Math.min(32 * 1024, size - written);
        client.write(id, payload.subarray(written, written + n), written + n === size);
        written += n;
      }
      if (server) {
        drain(server);
        for (let r = fin ? null : server.read(id); r; r = fin ? null : server.read(id)) {
          chunks.push(r.data.slice());
          got += r.data.length;
          if (r.fin) fin = true;
        }
      }
      opts.step?.(client, server, got);
      return fin;
    },
    link,
    T0,
    opts.limitMs ?? 600_000,
    undefined,
    ref,
  );
  return { client, server: ref.server, received: Uint8Array.from(Buffer.concat(chunks)), payload, fin };
}

/** Two 1-RTT key sets from fixed secrets, as both ends of a connection would hold them. */
function keyPair(): { a: OneRttKeys; b: OneRttKeys } {
  const p = defaultCryptoProvider;
  const s1 = new Uint8Array(32).fill(1);
  const s2 = new Uint8Array(32).fill(2);
  const keys = (s: Uint8Array) => derivePacketKeys(p, "aes-128-gcm", "sha256", s, QUIC_V1);
  const make = (r: Uint8Array, w: Uint8Array) =>
    new OneRttKeys({
      provider: p,
      hash: "sha256",
      version: QUIC_V1,
      readSecret: r,
      read: keys(r),
      writeSecret: w,
      write: keys(w),
      firstSentPn: 0,
    });
  return { a: make(s1, s2), b: make(s2, s1) };
}

describe("OneRttKeys (RFC 9001 §6)", () => {
  it("follows the peer's update: the next read keys are the peer's updated write keys", () => {
    const { a, b } = keyPair();
    b.initiate(10);
    expect(b.phase).toBe(1);
    // a picks its next keys for the flipped bit; they are b's new write keys (same AEAD key).
    expect(a.select(1, 10)).not.toBe(a.read);
    expect(a.selected).toBe("next");
    expect(a.onOpened(10, 0, 100, 5)).toBe(true);
    expect(a.phase).toBe(1);
    expect(a.remoteUpdates).toBe(1);
    // Same derivation on both sides: a's read IV equals b's write IV, and vice versa.
    expect(Buffer.from(a.read.iv).equals(Buffer.from(b.write.iv))).toBe(true);
    expect(Buffer.from(b.read.iv).equals(Buffer.from(a.write.iv))).toBe(true);
  });

  it("opens a delayed packet of the old phase with the previous keys, until they are discarded", () => {
    const { a, b } = keyPair();
    b.initiate(10);
    a.select(1, 10);
    a.onOpened(10, 1000, 100, 5);
    // pn 9 with the old bit: previous keys; pn 11 with the old bit would be a new update.
    a.select(0, 9);
    expect(a.selected).toBe("previous");
    a.select(0, 11);
    expect(a.selected).toBe("next");
    expect(a.discardDeadline).toBe(1000 + 300);
    expect(a.onTimeout(1299)).toBe(false);
    expect(a.onTimeout(1300)).toBe(true);
    expect(a.hasPreviousKeys).toBe(false);
    a.select(0, 9);
    expect(a.selected).toBe("next");
  });

  it("KEY_UPDATE_ERROR when the peer updates twice before we acknowledged the first (§6.2)", () => {
    const { a } = keyPair();
    a.select(1, 10);
    a.onOpened(10, 0, 100, 5);
    a.select(0, 20); // generation 2 arrives before any ACK of pn 10 went out
    expect(() => a.onOpened(20, 1, 100, 6)).toThrowError(
      expect.objectContaining({ code: TransportErrorCode.KEY_UPDATE_ERROR }),
    );
  });

  it("no KEY_UPDATE_ERROR once the trigger was acknowledged under the new keys", () => {
    const { a } = keyPair();
    a.select(1, 10);
    a.onOpened(10, 0, 100, 5);
    a.onSealed(10); // our packet 5 (new keys) acknowledges pn 10
    a.onTimeout(300);
    a.select(0, 20);
    expect(a.onOpened(20, 400, 100, 6)).toBe(true);
    expect(a.generation).toBe(2);
  });

  it("KEY_UPDATE_ERROR for newer keys on a lower packet number (§6.4)", () => {
    const { a } = keyPair();
    a.select(1, 10);
    a.onOpened(10, 0, 100, 5);
    a.onSealed(10);
    a.onTimeout(300); // previous keys gone
    a.select(0, 8);
    expect(a.selected).toBe("next");
    expect(() => a.onOpened(8, 400, 100, 6)).toThrow(QuicError);
  });

  it("allows a new update once a packet of the current phase was acknowledged, 3 PTO later after an update (§6.5)", () => {
    const { a } = keyPair();
    expect(a.canInitiate(0, 100)).toBe(false);
    a.onAckReceived(0, 1000);
    // The first update follows no other: no wait.
    expect(a.canInitiate(1000, 100)).toBe(true);
    a.initiate(50);
    expect(a.canInitiate(5000, 100)).toBe(false);
    a.onAckReceived(49, 5000); // an old-phase packet does not count
    expect(a.canInitiate(9000, 100)).toBe(false);
    a.onAckReceived(50, 9000);
    expect(a.canInitiate(9299, 100)).toBe(false);
    expect(a.canInitiate(9300, 100)).toBe(true);
  });
});

describe("key update between two Connections (simulator)", () => {
  it("the client's forced update mid-transfer is followed by the server; data intact", () => {
    let forced = false;
    const r = upload(
      1 << 20,
      { delay: 10 },
      {
        step: (c, _s, got) => {
          if (!forced && got > 100_000) {
            c.forceKeyUpdate();
            forced = true;
          }
        },
      },
    );
    expect(r.fin).toBe(true);
    expect(sha(r.received)).toBe(sha(r.payload));
    const cs = r.client.stats();
    const ss = r.server!.stats();
    expect(cs.keyUpdatesLocal).toBe(1);
    expect(cs.keyUpdatesRemote).toBe(0);
    expect(ss.keyUpdatesRemote).toBe(1);
    expect(ss.keyUpdatesLocal).toBe(0);
    expect(cs.keyPhase).toBe(1);
    expect(ss.keyPhase).toBe(1);
  });

  it("the server's forced update is followed by the client", () => {
    let forced = false;
    const r = upload(
      512 * 1024,
      { delay: 10 },
      {
        step: (_c, s, got) => {
          if (s && !forced && got > 50_000) {
            s.forceKeyUpdate();
            forced = true;
          }
        },
      },
    );
    expect(r.fin).toBe(true);
    expect(sha(r.received)).toBe(sha(r.payload));
    expect(r.server!.stats().keyUpdatesLocal).toBe(1);
    expect(r.client.stats().keyUpdatesRemote).toBe(1);
  });

  it("updates every 200 packets from both sides through loss, reordering and duplication", () => {
    const transport = { keyUpdateInterval: 200 };
    const r = upload(
      4 << 20,
      { delay: 10, loss: 0.03, jitter: 6, duplicate: 0.02, seed: 5 },
      { client: { transport }, server: { transport } },
    );
    expect(r.fin).toBe(true);
    expect(sha(r.received)).toBe(sha(r.payload));
    const cs = r.client.stats();
    const ss = r.server!.stats();
    // ~3000+ packets from the client: many updates, each followed by the peer.
    expect(cs.keyUpdatesLocal).toBeGreaterThan(5);
    expect(cs.keyPhase).toBe(ss.keyPhase);
    expect(cs.keyUpdatesLocal + cs.keyUpdatesRemote).toBe(cs.keyPhase);
    expect(cs.keyUpdatesLocal).toBe(ss.keyUpdatesRemote);
  });

  it("a second forceKeyUpdate waits until the first one is acknowledged (§6.5)", () => {
    let calls = 0;
    let serverPhaseWhenClientReached2 = -1;
    const r = upload(
      3 << 20,
      { delay: 20, rate: 1000 },
      {
        step: (c, s, got) => {
          if (calls === 0 && got > 50_000) {
            c.forceKeyUpdate();
            calls++;
          } else if (calls === 1 && c.stats().keyPhase === 1) {
            // Right after the update, before the server could acknowledge a packet of phase 1.
            c.forceKeyUpdate();
            expect(c.stats().keyPhase).toBe(1);
            calls++;
          }
          if (serverPhaseWhenClientReached2 < 0 && c.stats().keyPhase === 2)
            serverPhaseWhenClientReached2 = s?.stats().keyPhase ?? -1;
        },
      },
    );
    expect(r.fin).toBe(true);
    expect(sha(r.received)).toBe(sha(r.payload));
    // The second request went through later, once the server had followed the first.
    expect(r.client.stats().keyUpdatesLocal).toBe(2);
    expect(serverPhaseWhenClientReached2).toBe(1);
    expect(r.server!.stats().keyPhase).toBe(2);
  });

  it("automatic updates before a (lowered) confidentiality limit keep the connection going", () => {
    const aeadLimits = { confidentiality: 1000 };
    const r = upload(1 << 20, { delay: 5, rate: 500 }, { client: { aeadLimits }, server: { aeadLimits } });
    expect(r.fin).toBe(true);
    expect(sha(r.received)).toBe(sha(r.payload));
    // ~900 packets of 1200 bytes: at least one update at 750 packets, none forced.
    expect(r.client.stats().keyUpdatesLocal).toBeGreaterThan(0);
    expect(r.client.isClosed).toBe(false);
  });

  it("AEAD_LIMIT_REACHED when the confidentiality limit comes and no update is possible", () => {
    // Nothing from the server reaches the client after the handshake: no ACK, so no update.
    let cut = false;
    const r = upload(
      1 << 20,
      { delay: 5, drop: (to) => cut && to === "client" },
      {
        client: { aeadLimits: { confidentiality: 14 } },
        step: (c) => {
          if (c.isHandshakeConfirmed) cut = true;
        },
        limitMs: 60_000,
      },
    );
    expect(r.fin).toBe(false);
    const reason = r.client.reason;
    expect(reason?.kind === "transport" && reason.code).toBe(TransportErrorCode.AEAD_LIMIT_REACHED);
  });

  it("AEAD_LIMIT_REACHED past the integrity limit of packets failing authentication", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    const now = runPair(
      client,
      serverConfig({ aeadLimits: { integrity: 5 } }),
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      { delay: 5 },
      T0,
      10_000,
      undefined,
      ref,
    );
    const server = ref.server!;
    const rnd = prng(3);
    const forged = () => {
      // A short header to the server's connection ID and 40 bytes that fail authentication.
      const d = new Uint8Array(1 + 8 + 40);
      for (let i = 0; i < d.length; i++) d[i] = (rnd() * 256) | 0;
      d[0] = 0x40 | (d[0] & 0x07);
      d.set(server.sourceConnectionId, 1);
      return d;
    };
    for (let i = 0; i < 5; i++) server.receive(forged(), now + i);
    expect(server.isClosed || server.reason !== undefined).toBe(false);
    server.receive(forged(), now + 6);
    const reason = server.reason;
    expect(reason?.kind === "transport" && reason.code).toBe(TransportErrorCode.AEAD_LIMIT_REACHED);
  });

  it("KEY_UPDATE_ERROR when the peer updates twice without waiting for the acknowledgment", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    const now = runPair(
      client,
      serverConfig(),
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      { delay: 5 },
      T0,
      10_000,
      undefined,
      ref,
    );
    const server = ref.server!;
    // Bypass the client's own §6.5 check: two updates back to back, one packet in each phase.
    const keys = (client as unknown as { appKeys: OneRttKeys }).appKeys;
    const id = client.openStream(true);
    const sendOne = () => {
      const next = (client as unknown as { spaces: { nextPn: number }[] }).spaces[2].nextPn;
      keys.initiate(next);
      (client as unknown as { onKeyPhaseChanged(t: string): void }).onKeyPhaseChanged("local_update");
      client.write(id!, new Uint8Array(100), false);
      return client.pollTransmit(now)!;
    };
    const d1 = sendOne();
    const d2 = sendOne();
    server.receive(d1, now + 5);
    expect(server.stats().keyPhase).toBe(1);
    server.receive(d2, now + 6); // before the server sent anything acknowledging d1
    const reason = server.reason;
    expect(reason?.kind === "transport" && reason.code).toBe(TransportErrorCode.KEY_UPDATE_ERROR);
  });
});
