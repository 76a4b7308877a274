/**
 * A ClientHello that spans two Initial datagrams (Chromium's, with its ML-KEM key share) at a
 * server endpoint over UDP on 127.0.0.1 (issue 5, handshakeloss): when the first datagram is lost,
 * the second alone still decrypts (RFC 9001 §5.2: the Initial keys come from its DCID), so the
 * server keeps state for it and buffers its CRYPTO data, which starts past offset 0 (RFC 9000
 * §19.6); the handshake completes once the first part arrives.
 */
import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { listen, type QuicServer } from "../src/quic/api.ts";
import { Connection } from "../src/quic/connection/connection.ts";
import { clientConfig } from "../src/quic/connection/test-harness.ts";
import { until } from "./udp-helpers.ts";

let server: QuicServer | undefined;
let socket: dgram.Socket | undefined;
afterEach(async () => {
  socket?.close();
  socket = undefined;
  await server?.close();
  server = undefined;
});

describe("a ClientHello split over two Initial datagrams", () => {
  it("completes when the second datagram reaches the server first and the first one later", async () => {
    // Many long ALPN names (the server's is last) make a ClientHello of about 2.5 KB: 2 or 3 Initials.
    const filler = Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(97 + i)}`.repeat(250));
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["hq-interop"] });
    const port = server.address.port;
    const config = clientConfig();
    const client = Connection.connect(
      {
        ...config,
        tls: {
          ...config.tls,
          alpnProtocols: [...filler, "hq-interop"],
          roots: [server.devCertificate!.certificatePem],
        },
      },
      Date.now(),
    );
    const first: Uint8Array[] = [];
    for (let d = client.pollTransmit(Date.now()); d; d = client.pollTransmit(Date.now()))
      first.push(d.slice());
    expect(first.length).toBeGreaterThanOrEqual(2);
    let answers = 0;
    const s = dgram.createSocket("udp4");
    socket = s;
    const send = () => {
      const now = Date.now();
      for (let d = client.pollTransmit(now); d; d = client.pollTransmit(now)) s.send(d, port, "127.0.0.1");
    };
    s.on("message", (m) => {
      answers++;
      client.receive(new Uint8Array(m), Date.now());
      send();
    });
    await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
    // Every datagram but the first (CRYPTO from a non-zero offset): the server keeps state and
    // acknowledges them, but cannot answer the ClientHello yet.
    for (const d of first.slice(1)) s.send(d, port, "127.0.0.1");
    await until(() => server!.stats().connections === 1 && answers > 0);
    expect(client.isHandshakeConfirmed).toBe(false);
    // Then the first datagram, as a late arrival (or the client's retransmission of it).
    s.send(first[0], port, "127.0.0.1");
    await until(() => client.isHandshakeConfirmed || client.reason !== undefined);
    expect(client.reason).toBeUndefined();
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(server.stats().connections).toBe(1);
  });
});
