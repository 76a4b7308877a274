import { describe, expect, it } from "vitest";
import { Connection, type ConnectionEvent } from "./connection.ts";
import { clientConfig, runPair, serverConfig, T0 } from "./test-harness.ts";

function events(c: Connection): ConnectionEvent[] {
  const out: ConnectionEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

describe("datagrams at the advertised maximum size", () => {
  it("a datagram of exactly maxDatagramSize is delivered", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    let sent = 0;
    const got: number[] = [];
    runPair(
      client,
      serverConfig(),
      (s) => {
        if (s) for (const e of events(s)) if (e.type === "datagram") got.push(e.data.length);
        events(client);
        // Once PMTU discovery has raised the packet size, as well as before.
        if (sent === 0 && client.isHandshakeConfirmed) sent = client.maxDatagramSize;
        else if (sent > 0 && sent < 1300 && client.maxDatagramSize > 1300) sent = client.maxDatagramSize;
        else return got.length >= 2;
        client.sendDatagram(new Uint8Array(sent));
        return false;
      },
      {},
      T0,
      5_000,
      undefined,
      ref,
    );
    expect(client.maxDatagramSize).toBeGreaterThan(1300);
    expect(got).toEqual([expect.any(Number), client.maxDatagramSize]);
  });
});

describe("an idle connection's memory", () => {
  it("keeps no CRYPTO staging blocks once the handshake and the session ticket are acknowledged", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    let before = -1;
    runPair(
      client,
      serverConfig(),
      (s, now) => {
        if (s && before < 0) before = s.resourceCounts().cryptoSendStaging;
        return !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed && now > T0 + 2_000;
      },
      {},
      T0,
      5_000,
      undefined,
      ref,
    );
    expect(before).toBeGreaterThan(0); // the handshake used them
    expect(ref.server!.resourceCounts().cryptoSendStaging).toBe(0);
    expect(client.resourceCounts().cryptoSendStaging).toBe(0);
  });
});
