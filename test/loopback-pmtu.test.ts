import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { connect, listen, type QuicConnection, type QuicServer } from "../src/quic/api.ts";
import type { TransportConfig } from "../src/quic/connection/config.ts";
import { loopbackUdpPayloadLimit } from "../src/quic/endpoint.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let server: QuicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  accepted.length = 0;
});

/** The server side of the connections a bulk server accepted. */
const accepted: QuicConnection[] = [];

/** A server that sends `payload` on a unidirectional stream to each client. */
async function bulkServer(payload: Uint8Array, transport?: Partial<TransportConfig>): Promise<QuicServer> {
  const s = await listen({ host: "127.0.0.1", port: 0, alpn: ["bulk"], transport });
  void (async () => {
    for await (const conn of s) {
      accepted.push(conn);
      void (async () => {
        const send = await conn.openUni();
        for (let i = 0; i < payload.length; i += 256 * 1024)
          await send.write(payload.subarray(i, i + 256 * 1024));
        await send.finish();
      })().catch(() => {});
    }
  })();
  return s;
}

async function client(s: QuicServer, transport?: Partial<TransportConfig>): Promise<QuicConnection> {
  return connect({
    host: "127.0.0.1",
    port: s.address.port,
    serverName: "localhost",
    alpn: ["bulk"],
    serverCertificateHashes: [s.devCertificate!.certificateSha256],
    transport,
  });
}

/** The UDP payload size the server's (sending) side of the last connection uses. */
function serverPathMtu(): number {
  const conn = accepted.at(-1);
  if (!conn) throw new Error("no connection accepted");
  return conn.conn.pathMtu;
}

describe("loopback UDP payload limit", () => {
  it("is the IP limit for 127/8 and ::1, undefined elsewhere", () => {
    expect(loopbackUdpPayloadLimit("127.0.0.1")).toBe(65507);
    expect(loopbackUdpPayloadLimit("127.3.2.1")).toBe(65507);
    expect(loopbackUdpPayloadLimit("::ffff:127.0.0.1")).toBe(65507);
    expect(loopbackUdpPayloadLimit("::1")).toBe(65488);
    expect(loopbackUdpPayloadLimit("10.0.0.1")).toBeUndefined();
    expect(loopbackUdpPayloadLimit("::2")).toBeUndefined();
    expect(loopbackUdpPayloadLimit("1.127.0.0")).toBeUndefined();
  });
});

describe("PMTU discovery on 127.0.0.1", () => {
  it("grows packets past Ethernet size and delivers 16 MB intact", async () => {
    const payload = randomBytes(16 << 20);
    server = await bulkServer(payload);
    const c = await client(server);
    const recv = await c.acceptUni();
    const got = await recv!.readAll();
    expect(sha(got)).toBe(sha(payload));
    // The sender's packets grew beyond 1452 bytes (the default bound off loopback).
    expect(serverPathMtu()).toBeGreaterThan(1452);
    expect(serverPathMtu()).toBeLessThanOrEqual(65507);
    await c.close(0n, "done");
  }, 60_000);

  it("keeps an explicit pmtuUpperBound", async () => {
    const payload = randomBytes(4 << 20);
    server = await bulkServer(payload, { pmtuUpperBound: 1452 });
    const c = await client(server, { pmtuUpperBound: 1400 });
    const recv = await c.acceptUni();
    const got = await recv!.readAll();
    expect(sha(got)).toBe(sha(payload));
    expect(serverPathMtu()).toBeGreaterThan(1200);
    expect(serverPathMtu()).toBeLessThanOrEqual(1452);
    expect(c.conn.pathMtu).toBeLessThanOrEqual(1400);
    await c.close(0n, "done");
  }, 60_000);
});
