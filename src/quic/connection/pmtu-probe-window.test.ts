/**
 * A PMTU probe is congestion controlled (RFC 9000 §14.4, RFC 8899 §3 item 7) and must fit the
 * window on its own: the one packet a sender may send on entering recovery (RFC 9002 §7.3.2) is
 * there to speed up loss recovery, not for a probe far larger than the window — which would hold
 * HANDSHAKE_DONE and the first response back for a PTO (seen with a 65507-byte loopback probe in
 * the handshakecorruption interop case, issue 5).
 */
import { describe, expect, it } from "vitest";
import { Connection } from "./connection.ts";
import { clientConfig, runPair, serverConfig, T0 } from "./test-harness.ts";

describe("PMTU probes and the congestion window", () => {
  it("after a loss in the handshake, no probe larger than the window goes out (RFC 9002 §7.3.2)", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    const toClient: number[] = [];
    let confirmedAt: number | undefined;
    runPair(
      client,
      // A path as large as loopback's (the endpoint's bound for 127.0.0.1).
      serverConfig({ transport: { pmtuUpperBound: 65507 } }),
      (_s, now) => {
        if (confirmedAt === undefined && client.isHandshakeConfirmed) confirmedAt = now;
        return confirmedAt !== undefined && now > confirmedAt + 1_000;
      },
      {
        delay: 15,
        // The server's first flight is lost: its retransmission's ACK declares it lost (a
        // congestion event, and a recovery period starts).
        drop: (to, data, n) => {
          if (to === "client") toClient.push(data.length);
          return to === "client" && n === 0;
        },
      },
      T0,
      10_000,
      undefined,
      ref,
    );
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(ref.server!.stats().congestionEvents).toBeGreaterThanOrEqual(1);
    // Never more than the initial window (RFC 9002 §7.2: 14720 bytes at most) in one datagram.
    expect(Math.max(...toClient)).toBeLessThanOrEqual(14_720);
  });
});
