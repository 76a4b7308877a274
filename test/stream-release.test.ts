/**
 * Streams are forgotten once done: the sans-IO core releases a stream when both halves are closed,
 * and the API (src/quic/api.ts) must then drop its SendStream / RecvStream objects too, else a
 * long-lived connection (an HTTP/3 client, a server) grows with every request it ever carried.
 */
import { afterEach, describe, expect, it } from "vitest";
import { connect, listen, type QuicConnection, type QuicServer } from "../src/quic/api.ts";

let server: QuicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A server that answers every bidirectional stream with `reply` + FIN, without reading it. */
async function replyServer(
  reply: Uint8Array,
): Promise<{ server: QuicServer; conns: QuicConnection[]; acked: Promise<void>[] }> {
  const s = await listen({ host: "127.0.0.1", port: 0, alpn: ["release"] });
  const conns: QuicConnection[] = [];
  /** Per stream: resolves once the client acknowledged the whole reply and its FIN. */
  const acked: Promise<void>[] = [];
  void (async () => {
    for await (const conn of s) {
      conns.push(conn);
      void (async () => {
        for (let bi = await conn.acceptBi(); bi; bi = await conn.acceptBi()) {
          const { send, recv } = bi;
          void (async () => {
            await recv.readAll();
            await send.write(reply);
            const done = send.finish();
            acked.push(done);
            await done;
          })().catch(() => {});
        }
      })();
    }
  })();
  return { server: s, conns, acked };
}

async function client(s: QuicServer): Promise<QuicConnection> {
  return connect({
    host: "127.0.0.1",
    port: s.address.port,
    serverName: "localhost",
    alpn: ["release"],
    serverCertificateHashes: [s.devCertificate!.certificateSha256],
  });
}

/** Waits (bounded) until `done()` holds; the assertion after it says what failed. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
}

describe("QUIC API: finished streams are released", () => {
  it("RecvStream.stop on a stream whose data all arrived unread releases it", async () => {
    const r = await replyServer(new Uint8Array(5000).fill(1));
    server = r.server;
    const c = await client(server);
    const { send, recv } = await c.openBi();
    await send.finish();
    // Wait until the whole reply (and its FIN) arrived, without reading it.
    await until(() => r.acked.length > 0);
    await r.acked[0];
    expect(c.conn.hasStream(recv.id)).toBe(true);
    recv.stop(0);
    await until(() => !c.conn.hasStream(recv.id));
    expect(c.conn.hasStream(recv.id)).toBe(false);
    expect(await recv.read()).toBeNull();
    expect(c.trackedStreams).toBe(0);
    await c.close(0n);
  }, 30_000);

  it("the stream maps do not grow with the number of streams a connection carried", async () => {
    const r = await replyServer(new Uint8Array(100).fill(2));
    server = r.server;
    const c = await client(server);
    for (let i = 0; i < 300; i++) {
      const { send, recv } = await c.openBi();
      await send.write(new Uint8Array(10).fill(i & 0xff));
      const finished = send.finish();
      expect((await recv.readAll()).length).toBe(100);
      await finished;
      // Every fifth stream is abandoned after its reply: stopped (and reset) instead of read.
      if (i % 5 === 4) {
        const bi = await c.openBi();
        bi.send.reset(1);
        bi.recv.stop(1);
      }
    }
    // 360 streams were opened; what is still tracked is bounded by the sweep, not by that count.
    expect(c.trackedStreams).toBeLessThan(130);
    await until(() => r.conns.length > 0 && r.conns[0].trackedStreams < 130);
    expect(r.conns[0].trackedStreams).toBeLessThan(130);
    await c.close(0n);
  }, 60_000);
});
