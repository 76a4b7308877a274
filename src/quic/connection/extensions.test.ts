/**
 * Simulator tests of issue 6 items 7–8: PMTU discovery (RFC 8899, RFC 9000 §14.3), the greased
 * QUIC bit (RFC 9287), ACK frequency (draft-ietf-quic-ack-frequency) and RESET_STREAM_AT
 * (draft-ietf-quic-reliable-stream-reset), over the virtual-time link of test-harness.ts.
 */
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import type { TransportConfig } from "./config.ts";
import { Connection, type ConnectionEvent } from "./connection.ts";
import { clientConfig, type Link, runPair, serverConfig, T0 } from "./test-harness.ts";

interface Wire {
  /** Datagram sizes per direction. */
  sizes: { client: number[]; server: number[] };
  /** Short-header datagrams with the fixed bit cleared, per direction. */
  greased: { client: number; server: number };
  shortHeaders: { client: number; server: number };
}

interface Upload {
  client: Connection;
  server: Connection;
  received: Uint8Array;
  events: ConnectionEvent[];
  wire: Wire;
  end: number;
}

/** Byte equality without vitest's element-by-element diffing of megabyte arrays. */
function expectBytes(got: Uint8Array, want: Uint8Array): void {
  expect(got.length).toBe(want.length);
  expect(Buffer.compare(got, want)).toBe(0);
}

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

/**
 * Handshake, then the client uploads `data` on one stream (FIN after it) while `link` applies;
 * the server reads everything. `drop` sees every datagram (return true to drop it).
 */
function upload(
  data: Uint8Array,
  options: {
    client?: Partial<TransportConfig>;
    server?: Partial<TransportConfig>;
    link?: Link;
    drop?: (to: "client" | "server", d: Uint8Array, now: number) => boolean;
    /** Called on every step once the stream is open (e.g. to reset it). */
    step?: (client: Connection, id: number, now: number) => void;
    limitMs?: number;
  } = {},
): Upload {
  const client = Connection.connect(clientConfig({ transport: options.client ?? {} }), T0);
  const ref: { server?: Connection } = {};
  const wire: Wire = {
    sizes: { client: [], server: [] },
    greased: { client: 0, server: 0 },
    shortHeaders: { client: 0, server: 0 },
  };
  const chunks: Uint8Array[] = [];
  const events: ConnectionEvent[] = [];
  let id: number | undefined;
  let fin = false;
  let reset = false;
  let now = T0;
  const end = runPair(
    client,
    serverConfig({ transport: options.server ?? {} }),
    (s) => {
      if (id === undefined && client.isHandshakeConfirmed) {
        id = client.openStream(true)!;
        client.write(id, data, true);
      }
      if (id !== undefined) options.step?.(client, id, now);
      if (s) {
        for (let e = s.pollEvent(); e; e = s.pollEvent()) {
          if (e.type === "stream-readable") continue;
          if (e.type === "stream-reset") reset = true;
          events.push(e);
        }
        if (id !== undefined && s.hasStream(id)) {
          for (let r = s.read(id); r && !fin; r = s.read(id)) {
            if (r.data.length > 0) chunks.push(r.data.slice());
            if (r.fin) fin = true;
          }
        }
      }
      return fin || reset || client.isClosed || !!s?.isClosed;
    },
    {
      ...options.link,
      drop: (to, d, n) => {
        // The sender of a datagram "to" the server is the client.
        const from = to === "server" ? "client" : "server";
        if ((d[0] & 0x80) === 0) {
          wire.shortHeaders[from]++;
          if ((d[0] & 0x40) === 0) wire.greased[from]++;
        }
        wire.sizes[from].push(d.length);
        now = T0 + n; // only for the callback's information
        return (options.drop?.(to, d, n) ?? false) || (options.link?.drop?.(to, d, n) ?? false);
      },
    },
    T0,
    options.limitMs ?? 120_000,
    undefined,
    ref,
  );
  const received = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    received.set(c, o);
    o += c.length;
  }
  return { client, server: ref.server!, received, events, wire, end };
}

describe("PMTU discovery (RFC 8899, RFC 9000 §14.3)", () => {
  it("grows from 1200 to the 1452-byte upper bound on a path that carries it", () => {
    const data = pattern(1_000_000);
    const u = upload(data);
    expectBytes(u.received, data);
    expect(u.client.pathMtu).toBe(1452);
    expect(u.server.pathMtu).toBe(1452);
    expect(Math.max(...u.wire.sizes.client)).toBe(1452);
    // Most of the upload went in (nearly: the STREAM frame header is estimated) full-size datagrams.
    const full = u.wire.sizes.client.filter((n) => n > 1440).length;
    expect(full).toBeGreaterThan(data.length / 1452 / 2);
  });

  it("stays at 1200 when disabled, and the peer's max_udp_payload_size caps the search", () => {
    const off = upload(pattern(100_000), { client: { pmtuDiscovery: false } });
    expect(off.client.pathMtu).toBe(1200);
    expect(Math.max(...off.wire.sizes.client)).toBe(1200);
    const capped = upload(pattern(300_000), { server: { maxUdpPayloadSize: 1350 } });
    expect(capped.client.pathMtu).toBe(1350);
    expect(Math.max(...capped.wire.sizes.client)).toBe(1350);
  });

  it("finds a 1300-byte path MTU; lost probes cause no congestion event (RFC 9000 §14.4)", () => {
    const data = pattern(1_000_000);
    const drop = (_to: string, d: Uint8Array) => d.length > 1300;
    const u = upload(data, { drop });
    expectBytes(u.received, data);
    // Let the search finish (three lost probes per size) on the idle connection.
    runPair(u.client, serverConfig(), () => false, { drop }, u.end, 10_000, undefined, { server: u.server });
    expect(u.client.pathMtu).toBeLessThanOrEqual(1300);
    expect(u.client.pathMtu).toBeGreaterThan(1300 - 20);
    expect(u.client.stats().congestionEvents).toBe(0);
    // Probes above 1300 were sent, and lost.
    expect(Math.max(...u.wire.sizes.client)).toBeGreaterThan(1300);
  });

  it("falls back to 1200 on a black hole (the path stops carrying large datagrams) and completes", () => {
    const data = pattern(1_000_000);
    let blackHole = false;
    let sawFull = 0;
    const u = upload(data, {
      drop: (_to, d) => {
        if (d.length > 1440 && ++sawFull === 300) blackHole = true;
        return blackHole && d.length > 1200;
      },
    });
    expect(blackHole).toBe(true);
    expectBytes(u.received, data);
    expect(u.client.pathMtu).toBe(1200);
  });
});

describe("greased QUIC bit (RFC 9287)", () => {
  it("both sides advertise grease_quic_bit and clear the fixed bit on some short-header packets", () => {
    const data = pattern(200_000);
    const u = upload(data);
    expectBytes(u.received, data);
    expect(u.client.peerTransportParameters?.greaseQuicBit).toBe(true);
    expect(u.server.peerTransportParameters?.greaseQuicBit).toBe(true);
    for (const side of ["client", "server"] as const) {
      expect(u.wire.greased[side]).toBeGreaterThan(u.wire.shortHeaders[side] / 4);
      expect(u.wire.greased[side]).toBeLessThan((u.wire.shortHeaders[side] * 3) / 4);
    }
  });

  it("never clears the bit toward a peer that did not advertise it", () => {
    const data = pattern(100_000);
    const u = upload(data, { server: { greaseQuicBit: false } });
    expectBytes(u.received, data);
    expect(u.client.peerTransportParameters?.greaseQuicBit).toBeUndefined();
    expect(u.wire.greased.client).toBe(0);
    expect(u.wire.shortHeaders.client).toBeGreaterThan(10);
    // The option covers both: the server, which does not advertise it, does not grease either.
    expect(u.wire.greased.server).toBe(0);
  });
});

describe("ACK frequency (draft-ietf-quic-ack-frequency)", () => {
  it("the server acknowledges far less often after the client's ACK_FREQUENCY, data intact", () => {
    const data = pattern(500_000);
    const base = upload(data);
    expectBytes(base.received, data);
    let asked = false;
    const u = upload(data, {
      step: (client) => {
        if (!asked) {
          client.requestAckFrequency(20, 20, 0);
          asked = true;
        }
      },
    });
    expectBytes(u.received, data);
    expect(u.client.peerTransportParameters?.minAckDelay).toBe(1000);
    // The server's datagrams are almost all ACK-only: a threshold of 20 instead of 1 cuts them.
    expect(u.wire.sizes.server.length).toBeLessThan(base.wire.sizes.server.length / 4);
  });

  it("IMMEDIATE_ACK gets an ACK before the requested max_ack_delay runs out", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    const t = runPair(
      client,
      serverConfig(),
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      {},
      T0,
      10_000,
      undefined,
      ref,
    );
    client.requestAckFrequency(100, 1000, 0);
    const id = client.openStream(true)!;
    client.write(id, new Uint8Array(10));
    // Let the ACK_FREQUENCY arrive and be acknowledged (max_ack_delay 1 s from now on).
    const acked = () => client.stats().bytesInFlight === 0;
    let t2 = runPair(client, serverConfig(), () => acked(), {}, t, 5000, undefined, ref);
    expect(acked()).toBe(true);
    client.write(id, new Uint8Array(10));
    const before = t2;
    t2 = runPair(client, serverConfig(), () => acked(), {}, t2, 5000, undefined, ref);
    const slow = t2 - before;
    expect(slow).toBeGreaterThanOrEqual(1000); // the server waited for its new max_ack_delay
    client.write(id, new Uint8Array(10));
    client.requestImmediateAck();
    const start = t2;
    t2 = runPair(client, serverConfig(), () => acked(), {}, t2, 5000, undefined, ref);
    expect(t2 - start).toBeLessThan(100); // one round trip (10 ms) and a little
  });

  it("requestAckFrequency is a usage error when the peer did not advertise min_ack_delay", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    runPair(
      client,
      serverConfig({ transport: { minAckDelay: 0 } }),
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      {},
      T0,
      10_000,
      undefined,
      ref,
    );
    expect(client.peerTransportParameters?.minAckDelay).toBeUndefined();
    expect(() => client.requestAckFrequency(2, 25)).toThrow(QuicUsageError);
    expect(() => client.requestImmediateAck()).toThrow(QuicUsageError);
  });
});

describe("RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset)", () => {
  for (const loss of [0, 0.1]) {
    it(`delivers exactly the Reliable Size, then the reset (${loss * 100}% loss)`, () => {
      const data = pattern(200_000);
      let reset = false;
      const u = upload(data, {
        link: { loss, seed: 7 },
        step: (client, id) => {
          // Reset once some data is out: the first 50 000 bytes stay reliable.
          if (!reset && client.stats().bytesSent > 30_000) {
            client.resetStreamAt(id, 77n, 50_000);
            reset = true;
          }
        },
      });
      expect(reset).toBe(true);
      expect(u.received.length).toBe(50_000);
      expectBytes(u.received, data.subarray(0, 50_000));
      const e = u.events.find((x) => x.type === "stream-reset");
      expect(e).toEqual({ type: "stream-reset", streamId: 0, errorCode: 77n });
    });
  }

  it("the sender releases the stream once the frame and the reliable bytes are acknowledged", () => {
    const data = pattern(100_000);
    let reset = false;
    const u = upload(data, {
      step: (client, id) => {
        if (!reset && client.stats().bytesSent > 20_000) {
          client.resetStreamAt(id, 1n, 10_000);
          reset = true;
        }
      },
    });
    // Bytes past the Reliable Size that arrived before the reset may be delivered too (§5).
    expect(u.received.length).toBeGreaterThanOrEqual(10_000);
    expectBytes(u.received, data.subarray(0, u.received.length));
    // The stream is bidirectional: the server finishes its side, the client reads that FIN.
    u.server.finish(0);
    runPair(
      u.client,
      serverConfig(),
      () => {
        while (u.client.read(0)?.data.length) {}
        return !u.client.hasStream(0);
      },
      {},
      u.end,
      5000,
      undefined,
      { server: u.server },
    );
    expect(u.client.hasStream(0)).toBe(false);
  });

  it("is a usage error toward a peer without reset_stream_at, and past the data written", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    runPair(
      client,
      serverConfig({ transport: { resetStreamAt: false } }),
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      {},
      T0,
      10_000,
      undefined,
      ref,
    );
    const id = client.openStream(true)!;
    client.write(id, new Uint8Array(100));
    expect(() => client.resetStreamAt(id, 0n, 10)).toThrow(QuicUsageError);
    const other = Connection.connect(clientConfig(), T0);
    const ref2: { server?: Connection } = {};
    runPair(
      other,
      serverConfig(),
      (s) => !!s?.isHandshakeConfirmed && other.isHandshakeConfirmed,
      {},
      T0,
      10_000,
      undefined,
      ref2,
    );
    const id2 = other.openStream(true)!;
    other.write(id2, new Uint8Array(100));
    expect(() => other.resetStreamAt(id2, 0n, 101)).toThrow(QuicUsageError);
  });
});
