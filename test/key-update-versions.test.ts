import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { connect, listen, type QuicServer } from "../src/quic/api.ts";
import { QUIC_V1, QUIC_V2 } from "../src/quic/version.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let server: QuicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function echoServer(versions?: number[]): Promise<QuicServer> {
  const s = await listen({ host: "127.0.0.1", port: 0, alpn: ["echo"], versions });
  void (async () => {
    for await (const conn of s) {
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

describe("key update and QUIC v2 over UDP (API)", () => {
  it("a v1 client offering v2 is upgraded by a server preferring v2, then updates its keys", async () => {
    server = await echoServer([QUIC_V2, QUIC_V1]);
    const c = await connect({
      host: "127.0.0.1",
      port: server.address.port,
      serverName: "localhost",
      alpn: ["echo"],
      serverCertificateHashes: [server.devCertificate!.certificateSha256],
      versions: [QUIC_V2, QUIC_V1],
    });
    expect(c.version).toBe(QUIC_V2);
    c.forceKeyUpdate();
    const payload = randomBytes(2 << 20);
    const { send, recv } = await c.openBi();
    const reading = recv.readAll();
    for (let i = 0; i < payload.length; i += 100_000) await send.write(payload.subarray(i, i + 100_000));
    await send.finish();
    const echoed = await reading;
    expect(sha(echoed)).toBe(sha(payload));
    const st = c.stats();
    expect(st.keyUpdatesLocal).toBe(1);
    expect(st.keyPhase).toBe(1);
    await c.close(0n, "done");
  }, 60_000);
});
