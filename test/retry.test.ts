import { afterEach, describe, expect, it } from "vitest";
import { connect, listen, type QuicConnection, type QuicServer } from "../src/quic/api.ts";

let server: QuicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function echoServer(options: { retry?: "always" | "never" } = {}): Promise<QuicServer> {
  const s = await listen({ host: "127.0.0.1", port: 0, alpn: ["echo"], ...options });
  void (async () => {
    for await (const conn of s) {
      void (async () => {
        for (let bi = await conn.acceptBi(); bi; bi = await conn.acceptBi()) {
          const { send, recv } = bi;
          void (async () => {
            await send.write(await recv.readAll());
            await send.finish();
          })().catch(() => {});
        }
      })();
    }
  })();
  return s;
}

async function echo(c: QuicConnection, text: string): Promise<string> {
  const { send, recv } = await c.openBi();
  const reading = recv.readAll();
  await send.write(new TextEncoder().encode(text));
  await send.finish();
  return new TextDecoder().decode(await reading);
}

function nextToken(c: QuicConnection): Promise<Uint8Array> {
  return new Promise((resolve) => c.onNewToken(resolve));
}

describe("address validation over UDP (RFC 9000 §8.1)", () => {
  it("listen({ retry: 'always' }): one Retry, then the handshake completes", async () => {
    server = await echoServer({ retry: "always" });
    const c = await connect({ host: "127.0.0.1", port: server.address.port, alpn: ["echo"], insecure: true });
    expect(await echo(c, "after a retry")).toBe("after a retry");
    const stats = server.stats();
    expect(stats.retriesSent).toBe(1);
    expect(stats.retryTokensAccepted).toBe(1);
    expect(stats.invalidRetryTokens).toBe(0);
    // The server authenticated the Retry in its transport parameters (RFC 9000 §7.3).
    expect(c.conn.peerTransportParameters?.retrySourceConnectionId).toBeDefined();
    await c.close();
  });

  it("a NEW_TOKEN token from the first connection lets the second skip the Retry", async () => {
    server = await echoServer({ retry: "always" });
    const port = server.address.port;
    const c1 = await connect({ host: "127.0.0.1", port, alpn: ["echo"], insecure: true });
    const token = await nextToken(c1);
    expect(token.length).toBeGreaterThan(0);
    await c1.close();
    expect(server.stats().retriesSent).toBe(1);

    const c2 = await connect({ host: "127.0.0.1", port, alpn: ["echo"], insecure: true, token });
    expect(await echo(c2, "no retry this time")).toBe("no retry this time");
    const stats = server.stats();
    expect(stats.retriesSent).toBe(1);
    expect(stats.newTokensAccepted).toBe(1);
    expect(c2.conn.peerTransportParameters?.retrySourceConnectionId).toBeUndefined();
    await c2.close();
  });

  it("without Retry, clients still get tokens, and a used token is simply ignored", async () => {
    server = await echoServer();
    const port = server.address.port;
    const c1 = await connect({ host: "127.0.0.1", port, alpn: ["echo"], insecure: true });
    const token = await nextToken(c1);
    await c1.close();
    for (const expected of [1, 1]) {
      const c = await connect({ host: "127.0.0.1", port, alpn: ["echo"], insecure: true, token });
      expect(await echo(c, "x")).toBe("x");
      expect(server.stats().newTokensAccepted).toBe(expected);
      await c.close();
    }
    expect(server.stats()).toMatchObject({ retriesSent: 0, invalidNewTokens: 1 });
  });
});
