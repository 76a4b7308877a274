import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { connect, listen, type QuicConnection, type QuicServer } from "../src/quic/api.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let server: QuicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function echoServer(): Promise<QuicServer> {
  const s = await listen({ host: "127.0.0.1", port: 0, alpn: ["echo"] });
  void (async () => {
    for await (const conn of s) {
      void (async () => {
        for (let bi = await conn.acceptBi(); bi; bi = await conn.acceptBi()) {
          const { send, recv } = bi;
          void (async () => {
            for await (const chunk of recv) await send.write(chunk);
            await send.finish();
          })().catch(() => {});
        }
      })();
      void (async () => {
        for (let d = await conn.readDatagram(); d; d = await conn.readDatagram()) conn.sendDatagram(d);
      })().catch(() => {});
    }
  })();
  return s;
}

async function client(s: QuicServer): Promise<QuicConnection> {
  return connect({
    host: "127.0.0.1",
    port: s.address.port,
    serverName: "localhost",
    alpn: ["echo"],
    serverCertificateHashes: [s.devCertificate!.certificateSha256],
  });
}

describe("QUIC over UDP on 127.0.0.1", () => {
  it("handshakes and echoes 5 MB on a bidirectional stream", async () => {
    server = await echoServer();
    const c = await client(server);
    expect(c.handshakeData.alpn).toBe("echo");
    const payload = randomBytes(5 << 20);
    const { send, recv } = await c.openBi();
    const reading = recv.readAll();
    for (let i = 0; i < payload.length; i += 100_000) await send.write(payload.subarray(i, i + 100_000));
    await send.finish();
    const echoed = await reading;
    expect(echoed.length).toBe(payload.length);
    expect(sha(echoed)).toBe(sha(payload));
    await c.close(0n, "done");
  }, 60_000);

  it("releases every write made without awaiting the previous one, past the high-water mark", async () => {
    server = await echoServer();
    const c = await client(server);
    const payload = randomBytes(4 << 20);
    const { send, recv } = await c.openBi();
    const reading = recv.readAll();
    // Four 1 MiB writes at once: the second and later start while the first waits for room.
    const writes: Promise<void>[] = [];
    for (let i = 0; i < payload.length; i += 1 << 20)
      writes.push(send.write(payload.subarray(i, i + (1 << 20))));
    await Promise.all(writes);
    await send.finish();
    const echoed = await reading;
    expect(sha(echoed)).toBe(sha(payload));
    await c.close(0n, "done");
  }, 30_000);

  it("runs 50 concurrent streams on one connection", async () => {
    server = await echoServer();
    const c = await client(server);
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const { send, recv } = await c.openBi();
        const msg = new TextEncoder().encode(`stream ${i} `.repeat(100 + i));
        const reading = recv.readAll();
        await send.write(msg);
        await send.finish();
        return sha(await reading) === sha(msg);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    await c.close();
  }, 60_000);

  it("echoes datagrams", async () => {
    server = await echoServer();
    const c = await client(server);
    expect(c.maxDatagramSize).toBeGreaterThan(1000);
    const got = c.readDatagram();
    c.sendDatagram(new TextEncoder().encode("ping"));
    expect(new TextDecoder().decode((await got)!)).toBe("ping");
    await c.close();
  });

  it("a client closing its own socket early still delivers its CONNECTION_CLOSE (RFC 9000 §10.2)", async () => {
    // The server's 10 s max_ack_delay makes the client's PTO ≥ 10 s once the handshake is
    // confirmed: waiting out the closing state (3 PTO) would exceed this test's timeout.
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["x"], transport: { maxAckDelay: 10_000 } });
    const s = server;
    const serverSide = (async () => {
      const conn = (await s.accept())!;
      const bi = (await conn.acceptBi())!;
      await bi.send.write(await bi.recv.readAll());
      // Resolves on the client's acknowledgement, or rejects when its close comes first.
      bi.send.finish().catch(() => {});
      return conn.closed;
    })();
    const c = await connect({ host: "127.0.0.1", port: s.address.port, alpn: ["x"], insecure: true });
    // A round trip first, so the handshake is confirmed (HANDSHAKE_DONE) and the PTO includes the
    // peer's max_ack_delay (RFC 9002 §6.2.1).
    const bi = await c.openBi();
    await bi.send.write(Uint8Array.of(1));
    void bi.send.finish();
    expect(await bi.recv.readAll()).toEqual(Uint8Array.of(1));
    const local = await c.close(7n, "done early");
    // The client's closing state ended at once: its reason is its own close, not a timeout.
    expect(local).toMatchObject({ kind: "application", code: 7n, remote: false });
    expect(await serverSide).toMatchObject({
      kind: "application",
      code: 7n,
      reason: "done early",
      remote: true,
    });
  }, 8_000);

  it("reports the peer's application close code and reason", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["x"] });
    const s = server;
    const accepted = (async () => {
      const conn = await s.accept();
      await conn!.handshakeComplete;
      await conn!.close(42n, "bye");
    })();
    const c = await connect({ host: "127.0.0.1", port: s.address.port, alpn: ["x"], insecure: true });
    const reason = await c.closed;
    await accepted;
    expect(reason).toMatchObject({ kind: "application", code: 42n, reason: "bye", remote: true });
  });

  it("fails the handshake with a wrong certificate hash", async () => {
    server = await echoServer();
    await expect(
      connect({
        host: "127.0.0.1",
        port: server.address.port,
        alpn: ["echo"],
        serverCertificateHashes: [new Uint8Array(32)],
      }),
    ).rejects.toThrow(/closed/);
  });
});

describe("endpoint", () => {
  it("listens on a host name (the socket's synchronous literal lookup leaves names to DNS)", async () => {
    server = await echoServer();
    const byName = await listen({ host: "localhost", port: 0, alpn: ["echo"] });
    try {
      expect(["127.0.0.1", "::1"]).toContain(byName.address.address);
      // Sends to literal addresses still arrive (the lookup answers them without DNS).
      const c = await client(server);
      const { send, recv } = await c.openBi();
      const reading = recv.readAll();
      await send.write(new TextEncoder().encode("literal"));
      await send.finish();
      expect(new TextDecoder().decode(await reading)).toBe("literal");
      await c.close();
    } finally {
      await byName.close();
    }
  });

  it("works over IPv6 (::1)", async () => {
    server = await listen({ host: "::1", port: 0, alpn: ["v6"] });
    const s = server;
    void (async () => {
      const conn = await s.accept();
      const bi = await conn?.acceptBi();
      if (bi) {
        await bi.send.write(await bi.recv.readAll());
        await bi.send.finish();
      }
    })().catch(() => {}); // the client may close before it acknowledged the FIN
    const c = await connect({
      host: "::1",
      port: s.address.port,
      serverName: "localhost",
      alpn: ["v6"],
      insecure: true,
    });
    expect(c.remoteAddress.family).toBe("IPv6");
    const { send, recv } = await c.openBi();
    const reading = recv.readAll();
    await send.write(new TextEncoder().encode("over v6"));
    await send.finish();
    expect(new TextDecoder().decode(await reading)).toBe("over v6");
    await c.close();
  });

  it("a server that lost the connection's state answers with a stateless reset the client recognizes", async () => {
    const { Endpoint } = await import("../src/quic/endpoint.ts");
    const { generateDevCertificate } = await import("../src/quic/tls/dev-certificate.ts");
    const dev = generateDevCertificate();
    const key = new Uint8Array(32).fill(42);
    const serverConfig = {
      tls: {
        credentials: { chainDer: [dev.certificateDer], privateKey: dev.privateKey },
        alpnProtocols: ["sr"],
      },
    };
    const first = await Endpoint.bind({
      host: "127.0.0.1",
      port: 0,
      statelessResetKey: key,
      server: serverConfig,
    });
    const port = first.localAddress.port;
    void first.accept(() => ({ onEvent: () => {}, onProgress: () => {} }));
    const c = await connect({ host: "127.0.0.1", port, alpn: ["sr"], insecure: true });
    // The server "crashes": its socket goes away without a CONNECTION_CLOSE, and a new endpoint
    // with the same static reset key takes the port.
    (first as unknown as { socket: { close(): void } }).socket.close();
    const second = await Endpoint.bind({
      host: "127.0.0.1",
      port,
      statelessResetKey: key,
      server: serverConfig,
    });
    try {
      const { send } = await c.openBi();
      await send.write(new TextEncoder().encode("anyone there?")).catch(() => {});
      const reason = await c.closed;
      expect(reason).toEqual({ kind: "stateless-reset" });
    } finally {
      await second.close();
    }
  });
});

describe("endpoint answers an unknown version", () => {
  it("with Version Negotiation, even for empty connection IDs (the interop runner's WAIT probe)", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["x"] });
    const dgram = await import("node:dgram");
    const sock = dgram.createSocket("udp4");
    const probe = new Uint8Array(1200 + 7);
    probe.set([0xc0, 0x57, 0x41, 0x49, 0x54, 0x00, 0x00]); // long header, version "WAIT", DCID/SCID empty
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no Version Negotiation within 2 s")), 2000);
      sock.once("message", (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      sock.send(probe, server!.address.port, "127.0.0.1");
    });
    sock.close();
    expect(reply[0] & 0x80).toBe(0x80);
    expect(reply.readUInt32BE(1)).toBe(0); // version 0: Version Negotiation
    expect(reply[5]).toBe(0); // DCID length (the probe's empty SCID)
    expect(reply[6]).toBe(0); // SCID length
    const versions = [];
    for (let i = 7; i + 4 <= reply.length; i += 4) versions.push(reply.readUInt32BE(i));
    expect(versions).toContain(0x00000001);
    expect(versions).toContain(0x6b3343cf);
  });
});

describe("backpressure", () => {
  it("a reader that does not read stops the writer after a bounded amount", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["bp"] });
    const s = server;
    let accepted: import("../src/quic/api.ts").BiStream | null = null;
    void (async () => {
      const conn = await s.accept();
      accepted = (await conn?.acceptBi()) ?? null; // never read
    })();
    const c = await connect({ host: "127.0.0.1", port: s.address.port, alpn: ["bp"], insecure: true });
    const { send } = await c.openBi();
    const chunk = new Uint8Array(64 * 1024);
    let written = 0;
    const writer = (async () => {
      for (;;) {
        await send.write(chunk);
        written += chunk.length;
      }
    })();
    writer.catch(() => {});
    await new Promise((r) => setTimeout(r, 1500));
    // Flow control (1 MiB stream window) plus the writer's high-water mark (1 MiB) bound it.
    expect(written).toBeGreaterThan(512 * 1024);
    expect(written).toBeLessThan(4 * 1024 * 1024);
    expect(c.conn.bufferedAmount(send.id)).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(accepted).not.toBeNull();
    await c.close();
  });

  it("WHATWG readable/writable adapters carry a stream end to end", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["w"] });
    const s = server;
    void (async () => {
      const conn = await s.accept();
      const bi = await conn?.acceptBi();
      if (bi) await bi.recv.readable.pipeTo(bi.send.writable);
    })().catch(() => {}); // the client may close before it acknowledged the FIN
    const c = await connect({ host: "127.0.0.1", port: s.address.port, alpn: ["w"], insecure: true });
    const { send, recv } = await c.openBi();
    const w = send.writable.getWriter();
    await w.write(new TextEncoder().encode("whatwg "));
    await w.write(new TextEncoder().encode("streams"));
    await w.close();
    let text = "";
    for await (const chunk of recv.readable) text += new TextDecoder().decode(chunk);
    expect(text).toBe("whatwg streams");
    await c.close();
  });
});
