/**
 * Resumption and 0-RTT over UDP on 127.0.0.1 through the public API: listen({ earlyData }) and
 * connect({ session, earlyData }).
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  connect,
  type ListenOptions,
  listen,
  type QuicConnection,
  type QuicServer,
} from "../src/quic/api.ts";
import type { TlsServer } from "../src/quic/tls/server.ts";
import type { SessionTicketEntry } from "../src/quic/tls/session-cache.ts";

let server: QuicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** A server answering each bidirectional stream with "re: <request>"; records its connections. */
async function answerServer(opts: Partial<ListenOptions> = {}) {
  const conns: QuicConnection[] = [];
  const s = await listen({ host: "127.0.0.1", port: 0, alpn: ["test"], ...opts });
  void (async () => {
    for await (const conn of s) {
      conns.push(conn);
      void (async () => {
        for (let bi = await conn.acceptBi(); bi; bi = await conn.acceptBi()) {
          const { send, recv } = bi;
          void (async () => {
            const req = await recv.readAll();
            await send.write(text(`re: ${str(req)}`));
            await send.finish();
          })().catch(() => {});
        }
      })();
    }
  })();
  return { s, conns };
}

function dial(s: QuicServer, extra: { session?: SessionTicketEntry; earlyData?: boolean } = {}) {
  return connect({
    host: "127.0.0.1",
    port: s.address.port,
    serverName: "localhost",
    alpn: ["test"],
    serverCertificateHashes: [s.devCertificate!.certificateSha256],
    ...extra,
  });
}

async function request(c: QuicConnection, body: string): Promise<string> {
  const { send, recv } = await c.openBi();
  const reading = recv.readAll();
  await send.write(text(body));
  await send.finish();
  return str(await reading);
}

/** A first connection; resolves with the ticket it received. */
async function ticketFrom(s: QuicServer): Promise<SessionTicketEntry> {
  const c = await dial(s);
  const ticket = new Promise<SessionTicketEntry>((resolve) => c.onSessionTicket(resolve));
  expect(await request(c, "one")).toBe("re: one");
  const t = await ticket;
  await c.close(0n, "done");
  return t;
}

describe("resumption and 0-RTT over UDP", () => {
  it("resumes a session (tickets are on by default) without 0-RTT", async () => {
    const { s, conns } = await answerServer();
    server = s;
    const ticket = await ticketFrom(s);
    expect(ticket.maxEarlyDataSize).toBe(0);
    const c = await dial(s, { session: ticket, earlyData: true });
    // The ticket allows no 0-RTT: connect() waited for the handshake.
    expect(c.earlyDataState).toBe("none");
    expect(await request(c, "two")).toBe("re: two");
    expect(await c.earlyDataAccepted).toBe(false);
    expect((conns[1].conn.tlsSession as TlsServer).resumed).toBe(true);
    await c.close(0n, "done");
  }, 20_000);

  it("sends the second connection's request in 0-RTT and gets the answer", async () => {
    const { s, conns } = await answerServer({ earlyData: true });
    server = s;
    const ticket = await ticketFrom(s);
    expect(ticket.maxEarlyDataSize).toBe(0xffffffff);
    const c = await dial(s, { session: ticket, earlyData: true });
    // connect() returned before the handshake: the request goes out in 0-RTT.
    expect(c.earlyDataState).toBe("pending");
    const answer = request(c, "two");
    expect(await c.earlyDataAccepted).toBe(true);
    expect(await answer).toBe("re: two");
    await c.handshakeComplete;
    expect(c.stats().zeroRttPacketsSent).toBeGreaterThan(0);
    expect(conns[1].stats().zeroRttPacketsReceived).toBeGreaterThan(0);
    expect(await conns[1].earlyDataAccepted).toBe(true);
    await c.close(0n, "done");

    // The same ticket again: resumed, but its 0-RTT is refused (RFC 9846 §8); the request still
    // gets its answer (sent again in 1-RTT).
    const again = await dial(s, { session: ticket, earlyData: true });
    expect(again.earlyDataState).toBe("pending");
    const answer2 = request(again, "three");
    expect(await again.earlyDataAccepted).toBe(false);
    expect(await answer2).toBe("re: three");
    await again.close(0n, "done");
  }, 20_000);

  it("a server without earlyData rejects 0-RTT: the request is answered in 1-RTT", async () => {
    const first = await answerServer({ earlyData: true, tickets: { key: new Uint8Array(32).fill(5) } });
    server = first.s;
    const ticket = await ticketFrom(first.s);
    await first.s.close();
    const { s } = await answerServer({ tickets: { key: new Uint8Array(32).fill(5) } });
    server = s;
    const c = await dial(s, { session: ticket, earlyData: true });
    expect(c.earlyDataState).toBe("pending");
    expect(await request(c, "four")).toBe("re: four");
    expect(await c.earlyDataAccepted).toBe(false);
    expect(c.earlyDataState).toBe("rejected");
    await c.close(0n, "done");
  }, 20_000);
});
