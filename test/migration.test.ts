/**
 * Connection migration over real UDP sockets on 127.0.0.1 (RFC 9000 §9): a client moving to a
 * new socket mid-transfer, NAT rebinding through the impairment relay (port and address), and
 * the server's preferred address.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { type Relay, startRelay } from "../interop/relay.ts";
import {
  connect,
  type ListenOptions,
  listen,
  type QuicConnection,
  type QuicServer,
} from "../src/quic/api.ts";
import { QuicUsageError } from "../src/quic/errors.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let server: QuicServer | undefined;
let relay: Relay | undefined;
const accepted: QuicConnection[] = [];
afterEach(async () => {
  await relay?.close();
  relay = undefined;
  await server?.close();
  server = undefined;
  accepted.length = 0;
});

async function echoServer(options: Partial<ListenOptions> = {}): Promise<QuicServer> {
  const s = await listen({ host: "127.0.0.1", port: 0, alpn: ["echo"], ...options });
  void (async () => {
    for await (const conn of s) {
      accepted.push(conn);
      void (async () => {
        for (let bi = await conn.acceptBi(); bi; bi = await conn.acceptBi()) {
          const { send, recv } = bi;
          void (async () => {
            for await (const chunk of recv) await send.write(chunk);
            await send.finish();
          })().catch(() => {});
        }
      })();
    }
  })();
  return s;
}

function client(s: QuicServer, port = s.address.port): Promise<QuicConnection> {
  return connect({
    host: "127.0.0.1",
    port,
    serverName: "localhost",
    alpn: ["echo"],
    serverCertificateHashes: [s.devCertificate!.certificateSha256],
  });
}

/** Echoes `size` bytes; `midway` runs once a third of them is written. */
async function echo(c: QuicConnection, size: number, midway: () => Promise<void>): Promise<void> {
  const payload = randomBytes(size);
  const { send, recv } = await c.openBi();
  const reading = recv.readAll();
  let ran = false;
  for (let i = 0; i < payload.length; i += 64_000) {
    if (!ran && i >= size / 3) {
      ran = true;
      await midway();
    }
    await send.write(payload.subarray(i, i + 64_000));
  }
  await send.finish();
  const echoed = await reading;
  expect(echoed.length).toBe(payload.length);
  expect(sha(echoed)).toBe(sha(payload));
}

describe("client migration over UDP (RFC 9000 §9.2)", () => {
  it("migrate() moves to a new local port mid-transfer; the server follows after validating it", async () => {
    server = await echoServer();
    const c = await client(server);
    const before = c.localAddress.port;
    let after = 0;
    await echo(c, 3 << 20, async () => {
      after = (await c.migrate()).port;
    });
    expect(after).not.toBe(before);
    expect(c.localAddress.port).toBe(after);
    const sc = accepted[0];
    expect(sc.remoteAddress.port).toBe(after);
    expect(sc.pathStats().migrations).toBe(1);
    expect(sc.pathStats().validated).toBe(true);
    expect(c.pathStats().migrations).toBe(1);
    expect(c.pathStats().validations).toBeGreaterThanOrEqual(1);
    await c.close(0n, "done");
  }, 60_000);

  it("migrate() is refused before touching the socket when the server disabled active migration", async () => {
    server = await echoServer({ transport: { disableActiveMigration: true } });
    const c = await client(server);
    // The server's HANDSHAKE_DONE confirms the handshake shortly after connect() resolves.
    await echo(c, 10_000, async () => {});
    const port = c.localAddress.port;
    await expect(c.migrate()).rejects.toBeInstanceOf(QuicUsageError);
    await expect(c.migrate()).rejects.toThrow(/disable_active_migration/);
    expect(c.localAddress.port).toBe(port);
    await c.close(0n, "done");
  }, 30_000);
});

describe("NAT rebinding through the relay (RFC 9000 §9.3)", () => {
  for (const addr of [false, true]) {
    it(`the server validates the client's new ${addr ? "address" : "port"} and the transfer completes`, async () => {
      server = await echoServer();
      relay = await startRelay({ server: { host: "127.0.0.1", port: server.address.port } });
      const c = await client(server, relay.port);
      const r = relay;
      await echo(c, 3 << 20, async () => {
        await r.rebind(addr ? { addr: "127.0.0.2" } : {});
      });
      expect(r.stats.rebinds.length).toBe(1);
      const sc = accepted[0];
      expect(sc.pathStats().migrations).toBeGreaterThanOrEqual(1);
      expect(sc.pathStats().validated).toBe(true);
      if (addr) {
        expect(sc.remoteAddress.address).toBe("127.0.0.2");
        expect(sc.pathStats().congestionResets).toBeGreaterThanOrEqual(1);
      } else expect(sc.pathStats().congestionResets).toBe(0);
      await c.close(0n, "done");
    }, 60_000);
  }
});

describe("server preferred address (RFC 9000 §9.6)", () => {
  it("the client validates the preferred address and moves there", async () => {
    server = await echoServer({ preferredAddress: { host: "127.0.0.1", port: 0 } });
    const preferred = server.preferredAddress!;
    expect(preferred.port).not.toBe(server.address.port);
    const c = await client(server);
    await echo(c, 1 << 20, async () => {});
    // Validation takes a round trip after the handshake is confirmed: wait for it.
    for (let i = 0; i < 100 && c.remoteAddress.port !== preferred.port; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(c.remoteAddress.port).toBe(preferred.port);
    await echo(c, 1 << 20, async () => {});
    expect(accepted[0].pathStats().migrations).toBe(1);
    await c.close(0n, "done");
  }, 30_000);
});
