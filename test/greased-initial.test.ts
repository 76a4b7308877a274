import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { listen, type QuicServer } from "../src/quic/api.ts";
import { Connection } from "../src/quic/connection/connection.ts";
import { clientConfig, T0 } from "../src/quic/connection/test-harness.ts";
import { defaultCryptoProvider } from "../src/quic/crypto/node-provider.ts";
import { PacketType, splitCoalescedPackets } from "../src/quic/packet-header.ts";
import {
  createUnprotectedPacket,
  deriveInitialKeys,
  protectPacket,
  unprotectPacket,
} from "../src/quic/packet-protection.ts";

let server: QuicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A client's first Initial, protected again with the QUIC bit cleared (RFC 9287 §3.1). */
function greasedFirstInitial(): Uint8Array {
  const client = Connection.connect(clientConfig(), T0); // ALPN hq-interop, as the server below
  const buf = client.pollTransmit(T0)!.slice();
  const [h] = splitCoalescedPackets(buf.slice(), { localCidLength: 8 });
  if (h.type !== PacketType.Initial) throw new Error("not an Initial");
  const keys = deriveInitialKeys(defaultCryptoProvider, h.version, h.dcid).client;
  const out = createUnprotectedPacket();
  const n = unprotectPacket(keys, buf, h.packetStart, h.pnOffset, h.packetEnd, -1, out);
  expect(n).toBeGreaterThan(0);
  buf[h.packetStart] &= ~0x40;
  protectPacket(keys, buf, h.packetStart, h.pnOffset, out.payloadOffset + n, out.packetNumber);
  expect(buf[h.packetStart] & 0x40).toBe(0);
  return buf;
}

describe("grease_quic_bit at the endpoint (RFC 9287 §3)", () => {
  it("a server that advertises grease_quic_bit answers an Initial whose QUIC bit is 0", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["hq-interop"] });
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    const reply = new Promise<Buffer>((resolve) => sock.once("message", (m) => resolve(m)));
    sock.send(greasedFirstInitial(), server.address.port, "127.0.0.1");
    const answer = await Promise.race([reply, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    sock.close();
    expect(answer).not.toBeNull();
    const [first] = splitCoalescedPackets(new Uint8Array(answer!), { localCidLength: 8 });
    expect(first.type).toBe(PacketType.Initial);
  });
});
