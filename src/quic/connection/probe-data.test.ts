import { describe, expect, it } from "vitest";
import { PacketType, splitCoalescedPackets } from "../packet-header.ts";
import { Connection } from "./connection.ts";
import { clientConfig, handshakePair, runPair, serverConfig, T0 } from "./test-harness.ts";

describe("PTO probes carry the data in flight (RFC 9002 §6.2.4)", () => {
  it("a request whose packet and every ACK are lost still reaches the server in the probes", () => {
    const { client, sc, t, ref } = handshakePair();
    const server = ref.server!;
    expect(client.isHandshakeConfirmed).toBe(true);
    while (client.pollTransmit(t)) {
      // whatever the client still had to say is lost
    }
    const request = new TextEncoder().encode("GET /index.html\r\n");
    const id = client.openStream(true)!;
    client.write(id, request, true);
    // The packet with the request is lost...
    expect(client.pollTransmit(t)).not.toBeNull();
    // ...and so is everything the server sends: no ACK ever tells the client what was lost, so
    // only PTO probes that resend the request can deliver it.
    let received = new Uint8Array(0);
    let fin = false;
    runPair(
      client,
      sc,
      () => {
        let r: { data: Uint8Array; fin: boolean } | null = null;
        try {
          r = server.read(id);
        } catch {
          r = null; // the stream does not exist yet on the server
        }
        if (r) {
          const next = new Uint8Array(received.length + r.data.length);
          next.set(received);
          next.set(r.data, received.length);
          received = next;
          fin ||= r.fin;
        }
        return fin;
      },
      { drop: (to) => to === "client" },
      t,
      5_000,
      undefined,
      ref,
    );
    expect(fin).toBe(true);
    expect(new TextDecoder().decode(received)).toBe("GET /index.html\r\n");
  });

  it("a server's Initial probe also carries its Handshake flight when both were lost", () => {
    const client = Connection.connect(clientConfig(), T0);
    const serverDatagrams: number[][] = [];
    runPair(
      client,
      serverConfig(),
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      {
        drop: (to, data, n) => {
          if (to === "client")
            serverDatagrams.push(
              splitCoalescedPackets(data.slice(), { localCidLength: 8 }).map((h) => h.type),
            );
          return to === "client" && n === 0; // the server's whole first flight
        },
      },
      T0,
      10_000,
    );
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(serverDatagrams[0]).toEqual([PacketType.Initial, PacketType.Handshake]);
    // The first datagram after the loss: the Initial probe with the Handshake packet coalesced.
    expect(serverDatagrams[1]).toEqual([PacketType.Initial, PacketType.Handshake]);
  });
});
