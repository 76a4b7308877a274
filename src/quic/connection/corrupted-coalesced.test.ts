/**
 * A datagram of coalesced packets with one damaged packet (issue 5, handshakecorruption): the
 * damaged one fails authentication and is dropped alone (RFC 9001 §5.5); the others in the
 * datagram are still processed (RFC 9000 §12.2).
 */
import { describe, expect, it } from "vitest";
import { PacketType, splitCoalescedPackets } from "../packet-header.ts";
import { Connection } from "./connection.ts";
import { acceptFirst, clientConfig, serverConfig, T0 } from "./test-harness.ts";

function drain(c: Connection, now: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let d = c.pollTransmit(now); d; d = c.pollTransmit(now)) out.push(d.slice());
  return out;
}

describe("a coalesced datagram with a damaged packet", () => {
  it("a client datagram whose Initial is damaged still delivers its Handshake packet (the Finished)", () => {
    const client = Connection.connect(clientConfig(), T0);
    const first = drain(client, T0);
    const server = acceptFirst(first[0], serverConfig(), T0);
    for (const d of first) server.receive(d, T0 + 1);
    for (const d of drain(server, T0 + 1)) client.receive(d, T0 + 2);
    expect(client.isEstablished).toBe(true);
    // The client's next flight: Initial (ACK) coalesced with Handshake (ACK, Finished).
    const flight = drain(client, T0 + 2);
    let damaged = 0;
    for (const d of flight) {
      const packets = splitCoalescedPackets(d, { localCidLength: 8 });
      const initial = packets.find((h) => h.type === PacketType.Initial);
      if (initial && packets.some((h) => h.type === PacketType.Handshake)) {
        d[initial.packetEnd - 1] ^= 0x01; // a byte of the Initial's AEAD tag
        damaged++;
      }
      server.receive(d, T0 + 3);
    }
    expect(damaged).toBe(1);
    expect(server.isClosed).toBe(false);
    // The Finished in the Handshake packet was read: the server's handshake is confirmed.
    expect(server.isHandshakeConfirmed).toBe(true);
  });
});
