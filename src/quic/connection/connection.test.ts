import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Connection, type ConnectionEvent } from "./connection.ts";
import { clientConfig, type Link, prng, runPair, serverConfig, T0 } from "./test-harness.ts";

function drain(c: Connection): ConnectionEvent[] {
  const out: ConnectionEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (r() * 256) | 0;
  return b;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * The client uploads `size` bytes on one bidi stream; the server reads everything and answers
 * with the same bytes (echo). Returns both directions' received data and the virtual duration.
 */
function echoTransfer(size: number, link: Link, limitMs = 120_000) {
  const payload = randomBytes(size, 7);
  const client = Connection.connect(clientConfig(), T0);
  const ref: Parameters<typeof runPair>[7] & object = {};
  let streamId: number | undefined;
  let written = 0;
  const serverChunks: Uint8Array[] = [];
  let serverGot = 0;
  let serverEchoed = 0;
  let serverFin = false;
  let echoFinished = false;
  const clientChunks: Uint8Array[] = [];
  let clientFin = false;
  const end = runPair(
    client,
    serverConfig(),
    (server) => {
      for (const e of drain(client))
        if (e.type === "closed")
          throw new Error(
            `client closed: ${JSON.stringify(e.reason, (_, v) => (typeof v === "bigint" ? String(v) : v))}`,
          );
      if (client.isEstablished && streamId === undefined) streamId = client.openStream(true);
      if (streamId !== undefined) {
        // Keep at most 256 KiB buffered, as a well-behaved writer would.
        while (written < size && client.bufferedAmount(streamId) < 256 * 1024) {
          const n = Math.min(64 * 1024, size - written);
          client.write(streamId, payload.subarray(written, written + n), written + n === size);
          written += n;
        }
        for (
          let r = clientFin ? null : client.read(streamId);
          r;
          r = clientFin ? null : client.read(streamId)
        ) {
          clientChunks.push(r.data.slice());
          if (r.fin) clientFin = true;
        }
      }
      if (server) {
        for (const e of drain(server))
          if (e.type === "closed")
            throw new Error(
              `server closed: ${JSON.stringify(e.reason, (_, v) => (typeof v === "bigint" ? String(v) : v))}`,
            );
        if (streamId !== undefined) {
          for (
            let r = serverFin ? null : server.read(streamId);
            r;
            r = serverFin ? null : server.read(streamId)
          ) {
            serverChunks.push(r.data.slice());
            serverGot += r.data.length;
            if (r.fin) serverFin = true;
          }
          if (serverFin && serverEchoed === serverGot && !echoFinished) {
            echoFinished = true;
            server.finish(streamId);
          }
          while (serverEchoed < serverGot && server.bufferedAmount(streamId) < 256 * 1024) {
            const all = serverChunks;
            // Echo what was received so far, in order.
            let offset = 0;
            for (const c of all) {
              if (offset + c.length > serverEchoed) {
                const from = serverEchoed - offset;
                const piece = c.subarray(from);
                serverEchoed += piece.length;
                server.write(streamId, piece, false);
                break;
              }
              offset += c.length;
            }
          }
          if (
            serverFin &&
            serverEchoed === serverGot &&
            serverGot === size &&
            server.bufferedAmount(streamId) === 0
          ) {
            // FIN went out with the last write.
          }
        }
      }
      return clientFin;
    },
    link,
    T0,
    limitMs,
    undefined,
    ref,
  );
  const concat = (chunks: Uint8Array[]) => Uint8Array.from(Buffer.concat(chunks));
  return {
    client,
    server: ref.server!,
    upload: concat(serverChunks),
    download: concat(clientChunks),
    payload,
    ms: end - T0,
    link: ref.linkStats!,
    clientFin,
    serverFin,
  };
}

describe("Connection over a perfect in-memory link", () => {
  it("completes the handshake on both sides", () => {
    const client = Connection.connect(clientConfig(), T0);
    const ref: { server?: Connection } = {};
    runPair(
      client,
      serverConfig(),
      (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
      {},
      T0,
      10_000,
      undefined,
      ref,
    );
    expect(client.isEstablished).toBe(true);
    expect(ref.server?.isEstablished).toBe(true);
    expect(client.alpn).toBe("hq-interop");
    const ce = drain(client).map((e) => e.type);
    expect(ce).toContain("handshake-complete");
    expect(ce).toContain("handshake-confirmed");
    expect(drain(ref.server!).map((e) => e.type)).toContain("handshake-confirmed");
  });

  it("echoes 1 MB over one bidirectional stream, byte for byte", () => {
    const r = echoTransfer(1 << 20, {});
    expect(r.serverFin).toBe(true);
    expect(r.clientFin).toBe(true);
    expect(sha(r.upload)).toBe(sha(r.payload));
    expect(sha(r.download)).toBe(sha(r.payload));
  });
});

describe("Connection over a lossy simulated link", () => {
  const cases: [string, Link][] = [
    ["5% loss", { loss: 0.05, delay: 10, seed: 42 }],
    ["20% loss", { loss: 0.2, delay: 10, seed: 43 }],
    [
      "5% loss, 3% corruption, 2% duplication, 8 ms jitter",
      { loss: 0.05, corrupt: 0.03, duplicate: 0.02, jitter: 8, delay: 10, seed: 44 },
    ],
  ];
  for (const [name, link] of cases) {
    it(`echoes 10 MB with ${name}, byte for byte`, () => {
      const r = echoTransfer(10 << 20, link, 1_200_000);
      expect(r.clientFin).toBe(true);
      expect(sha(r.upload)).toBe(sha(r.payload));
      expect(sha(r.download)).toBe(sha(r.payload));
      expect(r.link.dropped).toBeGreaterThan(0);
      if (link.corrupt) expect(r.link.corrupted).toBeGreaterThan(0);
      expect(r.client.stats().packetsLost + r.server.stats().packetsLost).toBeGreaterThan(0);
      console.log(`${name}: ${(r.ms / 1000).toFixed(1)} s virtual, link ${JSON.stringify(r.link)}`);
    }, 120_000);
  }
});
