/**
 * The reverse TCP tunnel (relay + edge) over real UDP with purequic: HTTP through the tunnel, many
 * concurrent TCP connections with bytes intact both ways, an edge that drops and reconnects, and
 * edges refused for a wrong token or a missing client certificate.
 *
 * The bulk case moves REVERSE_TUNNEL_BYTES per connection each way (default 256 KiB; set
 * REVERSE_TUNNEL_FULL=1 for the full 50 MB × 100 connections: 110–234 s measured on 2 shared cores).
 */
import { createHash, webcrypto } from "node:crypto";
import { createServer as createHttpServer, type Server as HttpServer, get as httpGet } from "node:http";
import { createServer, type Server, connect as tcpConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { generateDevCertificate } from "../src/quic/tls/dev-certificate.ts";
import { EKU, issue, makeKey, x509 } from "../src/quic/tls/test-pki.ts";
import { EdgeRefusedError, TunnelEdge } from "../src/reverse/tunnel-edge.ts";
import { TunnelRelay } from "../src/reverse/tunnel-relay.ts";

const FULL = process.env.REVERSE_TUNNEL_FULL === "1";
const CONNECTIONS = 100;
const BYTES_EACH_WAY = FULL ? 50 * 1024 * 1024 : Number(process.env.REVERSE_TUNNEL_BYTES ?? 256 * 1024);

const cleanups: (() => Promise<void> | void)[] = [];
// Closing waits for QUIC's draining period (3 PTO), which grows on a loaded machine.
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
}, 60_000);

async function httpService(): Promise<{ port: number; hits: () => number }> {
  let hits = 0;
  const server: HttpServer = createHttpServer((req, res) => {
    hits++;
    res.setHeader("content-type", "text/plain");
    res.end(`hello from behind the NAT: ${req.method} ${req.url}\n`);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  return { port, hits: () => hits };
}

function httpText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    }).on("error", reject);
  });
}

async function startRelay(options: Partial<Parameters<typeof TunnelRelay.start>[0]> = {}) {
  const dev = generateDevCertificate();
  const relay = await TunnelRelay.start({
    host: "127.0.0.1",
    port: 0,
    expose: [{ name: "web", port: 0 }],
    certificatePem: dev.certificatePem,
    privateKeyPem: dev.privateKeyPem,
    ...options,
  });
  cleanups.push(() => relay.close());
  return { relay, ca: dev.certificatePem };
}

function startEdge(
  relay: TunnelRelay,
  ca: string,
  options: Partial<ConstructorParameters<typeof TunnelEdge>[0]>,
) {
  const edge = new TunnelEdge({
    relayHost: "127.0.0.1",
    relayPort: relay.udpAddress.port,
    serverName: "localhost",
    ca,
    services: [],
    minBackoffMs: 50,
    maxBackoffMs: 200,
    ...options,
  });
  cleanups.push(() => edge.close());
  return edge;
}

describe("reverse tunnel over UDP", () => {
  it("serves an HTTP server behind the edge through the relay's TCP port", async () => {
    const web = await httpService();
    const { relay, ca } = await startRelay({ token: "s3cret" });
    const edge = startEdge(relay, ca, {
      token: "s3cret",
      services: [{ name: "web", host: "127.0.0.1", port: web.port }],
    });
    await edge.waitForSession();
    await relay.waitForEdges(1);
    const port = relay.tcpAddress("web").port;
    const res = await httpText(port, "/status?x=1");
    expect(res.status).toBe(200);
    expect(res.body).toBe("hello from behind the NAT: GET /status?x=1\n");
    const many = await Promise.all(Array.from({ length: 10 }, (_, i) => httpText(port, `/${i}`)));
    expect(many.map((r) => r.body)).toEqual(
      Array.from({ length: 10 }, (_, i) => `hello from behind the NAT: GET /${i}\n`),
    );
    expect(web.hits()).toBe(11);
  });

  it(
    `moves ${BYTES_EACH_WAY} bytes each way on ${CONNECTIONS} concurrent TCP connections, intact`,
    async () => {
      // The service hashes what it receives and sends back a deterministic stream of the same size.
      const serviceSide: { got: number; ok: boolean }[] = [];
      const echo: Server = createServer({ allowHalfOpen: true }, (socket) => {
        const h = createHash("sha256");
        let got = 0;
        let seed = -1;
        socket.on("data", (c: Buffer) => {
          if (seed < 0) {
            seed = c[0];
            void sendPattern(socket, seed ^ 0x5a, BYTES_EACH_WAY).then(() => socket.end());
          }
          got += c.length;
          h.update(c);
        });
        socket.on("end", () => {
          serviceSide.push({ got, ok: h.digest("hex") === patternHash(seed, BYTES_EACH_WAY) });
        });
        socket.on("error", () => {});
      });
      await new Promise<void>((r) => echo.listen(0, "127.0.0.1", () => r()));
      cleanups.push(() => new Promise<void>((r) => echo.close(() => r())));
      const servicePort = (echo.address() as { port: number }).port;
      const { relay, ca } = await startRelay({ expose: [{ name: "bulk", port: 0 }] });
      const edge = startEdge(relay, ca, {
        services: [{ name: "bulk", host: "127.0.0.1", port: servicePort }],
      });
      await edge.waitForSession();
      await relay.waitForEdges(1);
      const port = relay.tcpAddress("bulk").port;
      const results = await Promise.all(
        Array.from({ length: CONNECTIONS }, (_, i) => transfer(port, i & 0xff, BYTES_EACH_WAY)),
      );
      for (const [i, r] of results.entries()) {
        expect(r.received).toBe(BYTES_EACH_WAY);
        expect(r.hash).toBe(patternHash((i & 0xff) ^ 0x5a, BYTES_EACH_WAY));
      }
      // The service saw every upload whole (its end event may come just after the client's).
      while (serviceSide.length < CONNECTIONS) await new Promise((r) => setTimeout(r, 20));
      expect(serviceSide.filter((r) => r.got === BYTES_EACH_WAY && r.ok)).toHaveLength(CONNECTIONS);
    },
    FULL ? 3_600_000 : 300_000,
  );

  it("serves again after the edge's connection drops and it reconnects", async () => {
    const web = await httpService();
    const { relay, ca } = await startRelay();
    const edge = startEdge(relay, ca, { services: [{ name: "web", host: "127.0.0.1", port: web.port }] });
    await edge.waitForSession(1);
    await relay.waitForEdges(1);
    const port = relay.tcpAddress("web").port;
    expect((await httpText(port, "/before")).body).toContain("GET /before");
    await edge.dropConnection();
    await edge.waitForSession(2);
    await relay.waitForEdges(1);
    expect(edge.sessions).toBe(2);
    expect((await httpText(port, "/after")).body).toContain("GET /after");
  });

  it("with several edges, a service only an older edge offers still reaches it", async () => {
    const web = await httpService();
    const other = await httpService();
    const { relay, ca } = await startRelay({
      expose: [
        { name: "web", port: 0 },
        { name: "other", port: 0 },
      ],
    });
    const older = startEdge(relay, ca, { services: [{ name: "web", host: "127.0.0.1", port: web.port }] });
    await older.waitForSession();
    await relay.waitForEdges(1);
    const newer = startEdge(relay, ca, {
      services: [{ name: "other", host: "127.0.0.1", port: other.port }],
    });
    await newer.waitForSession();
    await relay.waitForEdges(2);
    expect((await httpText(relay.tcpAddress("web").port, "/w")).body).toContain("GET /w");
    expect((await httpText(relay.tcpAddress("other").port, "/o")).body).toContain("GET /o");
    expect([web.hits(), other.hits()]).toEqual([1, 1]);
  });

  it("refuses an edge with a wrong token, and one with none", async () => {
    const web = await httpService();
    const { relay, ca } = await startRelay({ token: "right", authTimeoutMs: 500 });
    const services = [{ name: "web", host: "127.0.0.1", port: web.port }];
    const wrong = startEdge(relay, ca, { token: "wrong", services });
    await expect(wrong.done).rejects.toBeInstanceOf(EdgeRefusedError);
    await expect(wrong.done).rejects.toThrow(/unauthorized/);
    const none = startEdge(relay, ca, { services });
    await expect(none.done).rejects.toBeInstanceOf(EdgeRefusedError);
    expect(relay.refusedEdges).toBe(2);
    expect(relay.edgeCount).toBe(0);
    expect(web.hits()).toBe(0);
    // With no edge, a TCP client is dropped rather than left hanging.
    await expect(httpText(relay.tcpAddress("web").port, "/")).rejects.toThrow();
  });

  it("with mutual TLS, refuses an edge without a client certificate and serves one with it", async () => {
    const now = Date.now();
    const day = 24 * 3600 * 1000;
    const caKey = makeKey("p256");
    const root = await issue({
      subject: "CN=edge CA",
      key: caKey,
      ca: true,
      keyUsage: x509.KeyUsageFlags.keyCertSign,
      notBefore: new Date(now - day),
      notAfter: new Date(now + 30 * day),
    });
    const leafKey = makeKey("p256", true);
    const leaf = await issue({
      subject: "CN=edge-1",
      key: leafKey,
      issuer: root,
      ca: false,
      keyUsage: x509.KeyUsageFlags.digitalSignature,
      eku: [EKU.clientAuth],
      notBefore: new Date(now - day),
      notAfter: new Date(now + 30 * day),
    });
    void webcrypto;
    const web = await httpService();
    const { relay, ca } = await startRelay({ clientCaPem: root.pem });
    const services = [{ name: "web", host: "127.0.0.1", port: web.port }];
    const anonymous = startEdge(relay, ca, { services });
    await expect(anonymous.done).rejects.toBeInstanceOf(EdgeRefusedError);
    const edge = startEdge(relay, ca, {
      services,
      certificate: {
        certificatePem: leaf.pem,
        privateKeyPem: leafKey.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
      },
    });
    await edge.waitForSession();
    await relay.waitForEdges(1);
    expect((await httpText(relay.tcpAddress("web").port, "/mtls")).body).toContain("GET /mtls");
  });
});

/** A deterministic byte stream from a seed (xorshift32). */
function patternBlock(state: { x: number }, out: Buffer): void {
  for (let i = 0; i < out.length; i += 4) {
    let x = state.x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    state.x = x >>> 0;
    out.writeUInt32LE(state.x, i);
  }
}

const BLOCK = 64 * 1024;

function* pattern(seed: number, total: number): Generator<Buffer> {
  const state = { x: (seed + 1) * 2654435761 };
  state.x >>>= 0;
  let left = total;
  while (left > 0) {
    const b = Buffer.allocUnsafe(BLOCK);
    patternBlock(state, b);
    const n = Math.min(left, BLOCK);
    left -= n;
    // The first byte carries the seed so the far end knows which pattern to expect.
    yield b.subarray(0, n);
  }
}

const hashCache = new Map<string, string>();
function patternHash(seed: number, total: number): string {
  const key = `${seed}/${total}`;
  let h = hashCache.get(key);
  if (!h) {
    const hash = createHash("sha256");
    let first = true;
    for (const b of pattern(seed, total)) {
      if (first) {
        b[0] = seed;
        first = false;
      }
      hash.update(b);
    }
    h = hash.digest("hex");
    hashCache.set(key, h);
  }
  return h;
}

async function sendPattern(socket: import("node:net").Socket, seed: number, total: number): Promise<void> {
  let first = true;
  for (const b of pattern(seed, total)) {
    if (first) {
      b[0] = seed;
      first = false;
    }
    if (socket.destroyed) return;
    if (!socket.write(b)) await new Promise<void>((r) => socket.once("drain", () => r()));
  }
}

function transfer(port: number, seed: number, total: number): Promise<{ received: number; hash: string }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const h = createHash("sha256");
    let received = 0;
    socket.on("connect", () => {
      void sendPattern(socket, seed, total).then(() => socket.end());
    });
    socket.on("data", (c: Buffer) => {
      received += c.length;
      h.update(c);
    });
    socket.on("end", () => resolve({ received, hash: h.digest("hex") }));
    socket.on("error", reject);
  });
}
