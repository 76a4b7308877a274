/**
 * Corrupted client Initials at a server endpoint over UDP on 127.0.0.1 (issue 5, the
 * handshakecorruption interop case): a server keeps state only for an Initial that decrypts. A
 * damaged first Initial — its DCID, its SCID or its payload — costs no connection, no handshake
 * slot and no answer, and does not poison the connection its intact retransmission creates.
 */
import type dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { listen, type QuicServer } from "../src/quic/api.ts";
import { Connection } from "../src/quic/connection/connection.ts";
import { clientConfig } from "../src/quic/connection/test-harness.ts";
import { PacketType, parsePacketHeader } from "../src/quic/packet-header.ts";
import { rawSocket, until } from "./udp-helpers.ts";

let server: QuicServer | undefined;
let socket: dgram.Socket | undefined;
afterEach(async () => {
  socket?.close();
  socket = undefined;
  await server?.close();
  server = undefined;
});

/** Where the fields of a client's first Initial are (RFC 9000 §17.2.2). */
function initialLayout(datagram: Uint8Array) {
  const h = parsePacketHeader(datagram, 0, { localCidLength: 8 });
  if (h.type !== PacketType.Initial) throw new Error("not an Initial");
  const dcidAt = 6;
  const scidAt = dcidAt + h.dcid.length + 1;
  return { scid: h.scid.slice(), dcidAt, scidAt, payloadAt: h.pnOffset + 8 };
}

/** A copy of `datagram` with the byte at `at` changed, as the interop relay corrupts. */
function corrupt(datagram: Uint8Array, at: number): Uint8Array {
  const bad = datagram.slice();
  bad[at] ^= 0x5a;
  return bad;
}

/** The DCID of a datagram the server sent (a client's SCID: 8 bytes here). */
function dcidOf(datagram: Uint8Array): string {
  const h = parsePacketHeader(datagram, 0, { localCidLength: 8 });
  return Buffer.from(h.dcid).toString("hex");
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("a server keeps state only for a client Initial that decrypts (RFC 9001 §5.2)", () => {
  it("Initials corrupted in the DCID, the SCID or the payload get no connection, handshake slot or answer", async () => {
    // One handshake slot: garbage must not take it from the real client (RFC 9000 §5.2.2, §21).
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["hq-interop"], maxHandshakes: 1 });
    const port = server.address.port;
    const answeredTo: string[] = [];
    socket = await rawSocket((msg) => answeredTo.push(dcidOf(msg)));
    const damagedScids: string[] = [];
    for (const where of ["dcid", "scid", "payload"] as const) {
      const c = Connection.connect(clientConfig(), Date.now());
      const d = c.pollTransmit(Date.now())!.slice();
      const layout = initialLayout(d);
      const at =
        where === "dcid" ? layout.dcidAt + 3 : where === "scid" ? layout.scidAt + 3 : layout.payloadAt;
      damagedScids.push(hex(layout.scid));
      socket.send(corrupt(d, at), port, "127.0.0.1");
    }
    // Then an intact Initial from the same socket, behind the damaged ones.
    const good = Connection.connect(clientConfig(), Date.now());
    const first = good.pollTransmit(Date.now())!.slice();
    const goodScid = hex(initialLayout(first).scid);
    socket.send(first, port, "127.0.0.1");
    await until(() => answeredTo.includes(goodScid));
    const stats = server.stats();
    expect(stats.connections).toBe(1);
    expect(stats.handshakesInProgress).toBe(1);
    expect(stats.connectionsRefused).toBe(0);
    for (const scid of damagedScids) expect(answeredTo).not.toContain(scid);
  });

  it("a first Initial with a corrupted SCID does not poison the handshake its retransmission starts", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["hq-interop"] });
    const port = server.address.port;
    const config = clientConfig();
    const client = Connection.connect(
      { ...config, tls: { ...config.tls, roots: [server.devCertificate!.certificatePem] } },
      Date.now(),
    );
    const send = () => {
      const now = Date.now();
      for (let d = client.pollTransmit(now); d; d = client.pollTransmit(now))
        socket!.send(d, port, "127.0.0.1");
    };
    socket = await rawSocket((msg) => {
      client.receive(msg, Date.now());
      send();
    });
    const first = client.pollTransmit(Date.now())!.slice();
    // The damaged copy arrives first (the relay corrupted the client's first datagram), then the
    // client's retransmission of the same bytes.
    socket.send(corrupt(first, initialLayout(first).scidAt + 1), port, "127.0.0.1");
    socket.send(first, port, "127.0.0.1");
    await until(() => client.isHandshakeConfirmed || client.reason !== undefined);
    // Before the fix: TRANSPORT_PARAMETER_ERROR, initial_source_connection_id does not match.
    expect(client.reason).toBeUndefined();
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(server.stats().connections).toBe(1);
  });
});
