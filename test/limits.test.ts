/**
 * Endpoint limits over UDP on 127.0.0.1 (issue 6 item 9): a cap on handshakes in progress and on
 * the accept queue, beyond which client Initials get CONNECTION_REFUSED (RFC 9000 §5.2.2) and no
 * state is kept; and the API's queue of unread datagrams, bounded with the oldest dropped.
 */
import type dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { connect, listen, type QuicConnection, type QuicServer } from "../src/quic/api.ts";
import { Connection } from "../src/quic/connection/connection.ts";
import { clientConfig } from "../src/quic/connection/test-harness.ts";
import { TransportErrorCode } from "../src/quic/errors.ts";
import { rawSocket, until } from "./udp-helpers.ts";

let server: QuicServer | undefined;
let socket: dgram.Socket | undefined;
afterEach(async () => {
  socket?.close();
  socket = undefined;
  await server?.close();
  server = undefined;
});

describe("handshakes in progress (RFC 9000 §5.2.2)", () => {
  it("beyond maxHandshakes a client Initial gets CONNECTION_REFUSED and no state", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["hq-interop"], maxHandshakes: 2 });
    const port = server.address.port;
    // Three clients whose handshakes never go past their first Initial (they read nothing but the
    // answer to the third).
    const clients = [0, 1, 2].map(() => Connection.connect(clientConfig(), Date.now()));
    const third = clients[2];
    socket = await rawSocket((msg) => third.receive(msg, Date.now()));
    for (let i = 0; i < 2; i++) socket.send(clients[i].pollTransmit(Date.now())!, port, "127.0.0.1");
    await until(() => server!.stats().handshakesInProgress === 2);
    socket.send(third.pollTransmit(Date.now())!, port, "127.0.0.1");
    // The close puts it in the draining state (RFC 9000 §10.2.2), its reason known at once.
    await until(() => third.reason !== undefined);
    expect(third.reason).toMatchObject({
      kind: "transport",
      code: TransportErrorCode.CONNECTION_REFUSED,
      remote: true,
    });
    const stats = server.stats();
    expect(stats.connectionsRefused).toBe(1);
    expect(stats.handshakesInProgress).toBe(2);
    expect(stats.connections).toBe(2);
  });

  it("a full accept queue refuses new clients; a real client sees the connection fail", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["echo"], acceptQueueLength: 1 });
    const port = server.address.port;
    // Nobody calls accept(): the first connection fills the queue.
    const first = await connect({ host: "127.0.0.1", port, alpn: ["echo"], insecure: true });
    expect(server.stats().acceptQueueSize).toBe(1);
    await expect(connect({ host: "127.0.0.1", port, alpn: ["echo"], insecure: true })).rejects.toThrow();
    const stats = server.stats();
    expect(stats.connectionsRefused).toBeGreaterThanOrEqual(1);
    expect(stats.acceptQueueSize).toBe(1);
    expect(stats.connections).toBe(1);
    await first.close();
  });
});

describe("unread datagrams in the API (RFC 9221)", () => {
  it("a server that does not read keeps the newest datagramQueueLength datagrams", async () => {
    let accepted: QuicConnection | undefined;
    server = await listen({
      host: "127.0.0.1",
      port: 0,
      alpn: ["echo"],
      transport: { datagramQueueLength: 4 },
    });
    const s = server;
    void (async () => {
      for await (const conn of s) {
        accepted = conn;
        for (let bi = await conn.acceptBi(); bi; bi = await conn.acceptBi()) {
          await bi.send.write(await bi.recv.readAll());
          await bi.send.finish();
        }
      }
    })().catch(() => {}); // the client's close ends the loop
    const c = await connect({ host: "127.0.0.1", port: s.address.port, alpn: ["echo"], insecure: true });
    for (let i = 0; i < 20; i++) c.sendDatagram(new Uint8Array([i]));
    // A stream round trip after them: the server has handled every datagram by its answer.
    const { send, recv } = await c.openBi();
    const reply = recv.readAll();
    await send.write(new Uint8Array([1]));
    await send.finish();
    await reply;
    expect(accepted).toBeDefined();
    const got: number[] = [];
    for (let i = 0; i < 4; i++) got.push((await accepted!.readDatagram())![0]);
    expect(got).toEqual([16, 17, 18, 19]);
    await c.close();
  });
});
