import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { CapsuleType, capsuleBytes } from "../src/h3/capsules.ts";
import { H3Connection } from "../src/h3/connection.ts";
import { H3ErrorCode } from "../src/h3/error-codes.ts";
import type { H3Server } from "../src/h3/server.ts";
import { connect, listen, type QuicServer } from "../src/quic/api.ts";
import { QuicUsageError } from "../src/quic/errors.ts";
import {
  connectWebTransport,
  openWebTransportSession,
  WebTransportConnectError,
} from "../src/webtransport/client.ts";
import { echoSession } from "../src/webtransport/echo.ts";
import { serveWebTransport, type WebTransportRequest } from "../src/webtransport/server.ts";
import { MAX_CLOSE_REASON_BYTES, type WebTransportSession } from "../src/webtransport/session.ts";
import type { WebTransportStreamError } from "../src/webtransport/streams.ts";

const te = new TextEncoder();
const td = new TextDecoder();
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let quic: QuicServer | undefined;
let server: H3Server | undefined;
const clients: WebTransportSession[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.close();
  quic = undefined;
  server = undefined;
});

interface Harness {
  url: string;
  hash: Uint8Array;
  requests: WebTransportRequest[];
  sessions: WebTransportSession[];
  nextSession: () => Promise<WebTransportSession>;
}

async function start(onSession?: (s: WebTransportSession) => void): Promise<Harness> {
  quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
  const requests: WebTransportRequest[] = [];
  const sessions: WebTransportSession[] = [];
  const waiters: ((s: WebTransportSession) => void)[] = [];
  server = serveWebTransport(
    quic,
    {
      accept: (req) => {
        requests.push(req);
        if (req.url.pathname === "/forbidden") return 403;
        if (req.url.pathname === "/missing") return false;
        return true;
      },
      onSession: (s) => {
        sessions.push(s);
        const w = waiters.shift();
        if (w) w(s);
        if (onSession) onSession(s);
        else if (s.request.url.pathname === "/echo") void echoSession(s);
      },
    },
    () => new Response("a page\n"),
  );
  const port = quic.address.port;
  return {
    url: `https://127.0.0.1:${port}`,
    hash: Uint8Array.from(quic.devCertificate!.certificateSha256),
    requests,
    sessions,
    nextSession: () =>
      new Promise((r) => {
        const have = sessions[requests.length - 1];
        if (have && !waiters.length && sessions.length === requests.length) r(have);
        else waiters.push(r);
      }),
  };
}

async function client(
  h: Harness,
  path: string,
  origin = "https://example.test",
): Promise<WebTransportSession> {
  const s = await connectWebTransport(`${h.url}${path}`, { serverCertificateHashes: [h.hash], origin });
  clients.push(s);
  return s;
}

describe("WebTransport over HTTP/3 (purequic ↔ purequic, UDP)", () => {
  it("establishes a session: the server sees path, query and origin", async () => {
    const h = await start();
    const s = await client(h, "/echo?room=1", "https://app.example");
    expect(h.requests).toHaveLength(1);
    expect(h.requests[0].url.pathname).toBe("/echo");
    expect(h.requests[0].url.search).toBe("?room=1");
    expect(h.requests[0].origin).toBe("https://app.example");
    expect(h.requests[0].version).toBe("latest");
    expect(h.requests[0].headers.get("sec-webtransport-http3-draft02")).toBeNull(); // draft-02 only
    expect(s.id).toBe(0);
    expect(s.closeReason).toBeUndefined();
    expect(s.maxDatagramSize).toBeGreaterThan(1000);
  });

  it("negotiates the current draft when both sides speak it, draft-02 otherwise", async () => {
    const h = await start();
    const latest = await client(h, "/echo");
    expect(latest.version).toBe("latest");
    expect(h.requests[0].version).toBe("latest");
    const old = await connectWebTransport(`${h.url}/echo`, {
      serverCertificateHashes: [h.hash],
      versions: ["draft02"],
    });
    clients.push(old);
    expect(old.version).toBe("draft02");
    expect(h.requests[1].version).toBe("draft02");
    const bi = await old.openBi();
    await bi.send.write(te.encode("draft-02 echo"));
    void bi.send.finish();
    expect(td.decode(await bi.recv.readAll())).toBe("draft-02 echo");
  });

  it("a draft-02-only server gets draft-02 from a client offering both", async () => {
    quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
    const seen: string[] = [];
    server = serveWebTransport(quic, {
      versions: ["draft02"],
      onSession: (s, req) => {
        seen.push(req.headers.get("sec-webtransport-http3-draft02") ?? "");
        void echoSession(s);
      },
    });
    const url = `https://127.0.0.1:${quic.address.port}/x`;
    const hash = [Uint8Array.from(quic.devCertificate!.certificateSha256)];
    // Its SETTINGS announce draft-02 only (no WT_ENABLED).
    await expect(
      connectWebTransport(url, { serverCertificateHashes: hash, versions: ["latest"] }),
    ).rejects.toThrow(/does not support WebTransport/);
    const s = await connectWebTransport(url, { serverCertificateHashes: hash });
    clients.push(s);
    expect(s.version).toBe("draft02");
    expect(seen).toEqual(["1"]); // the draft-02 request header
  });

  it("the accept hook can refuse with an HTTP status", async () => {
    const h = await start();
    await expect(client(h, "/forbidden")).rejects.toMatchObject({ status: 403 });
    await expect(client(h, "/missing")).rejects.toBeInstanceOf(WebTransportConnectError);
    expect(h.sessions).toHaveLength(0);
  });

  it("echoes a bidi stream, a uni stream (back on a new uni stream) and datagrams", async () => {
    const h = await start();
    const s = await client(h, "/echo");
    const bi = await s.openBi();
    await bi.send.write(te.encode("hello "));
    await bi.send.write(te.encode("bidi"));
    void bi.send.finish();
    expect(td.decode(await bi.recv.readAll())).toBe("hello bidi");

    const uni = await s.openUni();
    await uni.write(te.encode("hello uni"));
    void uni.finish();
    const back = await s.acceptUni();
    expect(back).not.toBeNull();
    expect(td.decode(await back!.readAll())).toBe("hello uni");

    // Datagrams are unreliable: resend until one comes back (loopback loses none in practice).
    let echoed: Uint8Array | null = null;
    for (let i = 0; i < 20 && echoed === null; i++) {
      s.sendDatagram(te.encode(`dgram ${i}`));
      echoed = await Promise.race([
        s.readDatagram(),
        new Promise<null>((r) => setTimeout(() => r(null), 200)),
      ]);
    }
    expect(echoed && td.decode(echoed)).toMatch(/^dgram \d+$/);
  });

  it("carries 4 MB over one stream intact and 50 concurrent streams", async () => {
    const h = await start();
    const s = await client(h, "/echo");
    const data = randomBytes(4 << 20);
    const bi = await s.openBi();
    const reading = bi.recv.readAll();
    for (let o = 0; o < data.length; o += 64 * 1024) await bi.send.write(data.subarray(o, o + 64 * 1024));
    void bi.send.finish();
    expect(sha(await reading)).toBe(sha(data));

    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const b = await s.openBi();
        void b.send.write(te.encode(`stream ${i}`)).then(() => b.send.finish());
        return td.decode(await b.recv.readAll());
      }),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => `stream ${i}`));
  });

  it("a server-initiated bidi stream reaches the client", async () => {
    const h = await start((s) => {
      void s.openBi().then(async (b) => {
        await b.send.write(te.encode("from the server"));
        await b.send.finish();
      });
    });
    const s = await client(h, "/push");
    const bi = await s.acceptBi();
    expect(td.decode(await bi!.recv.readAll())).toBe("from the server");
  });

  it("server close(code, reason) reaches the client and resets its streams", async () => {
    const h = await start((s) => {
      void s.acceptBi().then(() => s.close(4242, "bye from the server"));
    });
    const s = await client(h, "/close");
    const bi = await s.openBi();
    await bi.send.write(te.encode("x"));
    const info = await s.closed;
    expect(info).toEqual({ code: 4242, reason: "bye from the server", remote: true, clean: true });
    expect(s.closeReason).toEqual(info);
    await expect(bi.recv.read()).resolves.toBeNull(); // abandoned locally on close
    expect(() => s.sendDatagram(te.encode("late"))).toThrow(QuicUsageError);
    await expect(s.openBi()).rejects.toBeInstanceOf(QuicUsageError);
    expect(await s.acceptBi()).toBeNull();
    const server = h.sessions[0];
    expect(await server.closed).toEqual({
      code: 4242,
      reason: "bye from the server",
      remote: false,
      clean: true,
    });
  });

  it("client close(code, reason) reaches the server", async () => {
    const h = await start(() => {});
    const s = await client(h, "/x");
    const [server] = await Promise.all([h.nextSession(), Promise.resolve()]);
    s.close(7, "bye from the client");
    expect(await server.closed).toEqual({
      code: 7,
      reason: "bye from the client",
      remote: true,
      clean: true,
    });
    expect(await s.closed).toEqual({ code: 7, reason: "bye from the client", remote: false, clean: true });
  });

  it("maps stream reset codes end to end (32-bit WebTransport codes)", async () => {
    const say = async (s: WebTransportSession, text: string) => {
      const u = await s.openUni();
      await u.write(te.encode(text));
      await u.finish();
    };
    const h = await start((s) => {
      void (async () => {
        const bi = await s.acceptBi();
        if (!bi) return;
        await bi.recv.read(); // the stream is associated with the session once its preamble arrived
        await say(s, "ready");
        try {
          await bi.recv.readAll();
          await say(s, "no reset");
        } catch (err) {
          await say(s, String((err as WebTransportStreamError).code));
        }
      })();
    });
    const s = await client(h, "/codes");
    const bi = await s.openBi();
    await bi.send.write(te.encode("data"));
    expect(td.decode(await (await s.acceptUni())!.readAll())).toBe("ready");
    bi.send.reset(0xdeadbeef);
    expect(td.decode(await (await s.acceptUni())!.readAll())).toBe(String(0xdeadbeef));
  });

  it("the peer's STOP_SENDING arrives with its WebTransport code", async () => {
    const h = await start((s) => {
      void s.acceptBi().then((bi) => bi?.recv.stop(1234));
    });
    const s = await client(h, "/stop");
    const bi = await s.openBi();
    await bi.send.write(te.encode("x"));
    expect(await bi.send.stopped).toBe(1234);
  });

  it("DRAIN_WEBTRANSPORT_SESSION resolves the peer's draining promise", async () => {
    const h = await start((s) => s.drain());
    const s = await client(h, "/drain");
    await expect(s.draining).resolves.toBeUndefined();
    expect(s.closeReason).toBeUndefined();
  });

  it("runs several sessions on one HTTP/3 connection, each with its own streams and datagrams", async () => {
    const h = await start();
    const q = await connect({
      host: "127.0.0.1",
      port: quic!.address.port,
      alpn: ["h3"],
      serverCertificateHashes: [h.hash],
    });
    const h3 = new H3Connection(q, { webTransport: true });
    try {
      // draft-02 allows several sessions per connection; the current draft only with flow control.
      const a = await openWebTransportSession(h3, `${h.url}/echo?a`, { versions: ["draft02"] });
      const b = await openWebTransportSession(h3, `${h.url}/echo?b`, { versions: ["draft02"] });
      expect([a.version, b.version]).toEqual(["draft02", "draft02"]);
      await expect(openWebTransportSession(h3, `${h.url}/echo?c`)).rejects.toThrow(
        /one session per connection/,
      );
      expect(a.id).not.toBe(b.id);
      const [ra, rb] = await Promise.all(
        [a, b].map(async (s, i) => {
          const bi = await s.openBi();
          await bi.send.write(te.encode(`session ${i}`));
          void bi.send.finish();
          return td.decode(await bi.recv.readAll());
        }),
      );
      expect([ra, rb]).toEqual(["session 0", "session 1"]);
      a.close(1, "a done");
      expect((await h.sessions[0].closed).code).toBe(1);
      // b still works after a closed.
      const bi = await b.openBi();
      await bi.send.write(te.encode("still here"));
      void bi.send.finish();
      expect(td.decode(await bi.recv.readAll())).toBe("still here");
      expect(b.closeReason).toBeUndefined();
    } finally {
      h3.close();
    }
  });

  it("ordinary HTTP/3 requests still work on a WebTransport server", async () => {
    const h = await start();
    const q = await connect({ host: "127.0.0.1", port: quic!.address.port, alpn: ["h3"], insecure: true });
    const h3 = new H3Connection(q, { webTransport: true });
    try {
      const st = await h3.openRequest(
        [
          [":method", "GET"],
          [":scheme", "https"],
          [":authority", "127.0.0.1"],
          [":path", "/"],
        ],
        true,
      );
      const head = await st.nextEvent();
      expect(head?.type === "response" && head.head.status).toBe(200);
      const body = await st.nextEvent();
      expect(body?.type === "data" && td.decode(body.data)).toBe("a page\n");
      expect(h.url).toContain("127.0.0.1");
    } finally {
      h3.close();
    }
  });
});

describe("RawQuicSession (WebTransport session interface over raw QUIC)", () => {
  it("echoes streams and datagrams with the same echo code, and passes close codes through", async () => {
    const { RawQuicSession } = await import("../src/webtransport/raw-quic-session.ts");
    quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["moq-test"] });
    const serverSessions: InstanceType<typeof RawQuicSession>[] = [];
    const q = quic;
    void (async () => {
      for await (const conn of q) {
        const s = new RawQuicSession(conn);
        serverSessions.push(s);
        void echoSession(s);
      }
    })();
    const c = new RawQuicSession(
      await connect({ host: "127.0.0.1", port: q.address.port, alpn: ["moq-test"], insecure: true }),
    );
    const bi = await c.openBi();
    await bi.send.write(te.encode("raw bidi"));
    void bi.send.finish();
    expect(td.decode(await bi.recv.readAll())).toBe("raw bidi");
    const uni = await c.openUni();
    await uni.write(te.encode("raw uni"));
    void uni.finish();
    expect(td.decode(await (await c.acceptUni())!.readAll())).toBe("raw uni");
    let echoed: Uint8Array | null = null;
    for (let i = 0; i < 20 && echoed === null; i++) {
      c.sendDatagram(te.encode("raw dgram"));
      echoed = await Promise.race([
        c.readDatagram(),
        new Promise<null>((r) => setTimeout(() => r(null), 200)),
      ]);
    }
    expect(echoed && td.decode(echoed)).toBe("raw dgram");
    c.close(99, "raw bye");
    expect(c.closeReason).toEqual({ code: 99, reason: "raw bye", remote: false, clean: true });
    expect(await serverSessions[0].closed).toEqual({
      code: 99,
      reason: "raw bye",
      remote: true,
      clean: true,
    });
    await q.close();
  });
});

describe("WebTransport server shutdown", () => {
  it("closes its sessions, which the client sees as a clean close", async () => {
    const h = await start(() => {});
    const s = await client(h, "/x");
    const closing = server!.close();
    server = undefined;
    expect(await s.closed).toEqual({ code: 0, reason: "server shutting down", remote: true, clean: true });
    await closing;
  });
});

describe("WebTransport: hostile capsules", () => {
  async function rawSession(h: Harness) {
    const q = await connect({ host: "127.0.0.1", port: quic!.address.port, alpn: ["h3"], insecure: true });
    const h3 = new H3Connection(q, { webTransport: true });
    await h3.settings;
    const stream = await h3.openRequest(
      [
        [":method", "CONNECT"],
        [":protocol", "webtransport"],
        [":scheme", "https"],
        [":authority", "127.0.0.1"],
        [":path", "/x"],
        ["sec-webtransport-http3-draft02", "1"],
      ],
      false,
    );
    const head = await stream.nextEvent();
    expect(head?.type === "response" && head.head.status).toBe(200);
    return { h3, stream, server: await h.nextSession() };
  }

  it("a CLOSE capsule too short for its code ends the session with H3_MESSAGE_ERROR", async () => {
    const h = await start(() => {});
    const { h3, stream, server } = await rawSession(h);
    try {
      await stream.writeData(capsuleBytes(CapsuleType.CLOSE_WEBTRANSPORT_SESSION, Uint8Array.of(1, 2)));
      const info = await server.closed;
      expect(info.clean).toBe(false);
      expect(info.reason).toMatch(/malformed capsule/);
      // The server reset the CONNECT stream with H3_MESSAGE_ERROR.
      await expect(stream.nextEvent()).rejects.toMatchObject({ code: H3ErrorCode.H3_MESSAGE_ERROR });
      expect(h3.isClosed).toBe(false); // a stream error, not a connection error
    } finally {
      h3.close();
    }
  });

  it("a CLOSE capsule above 4 + 1024 bytes is refused without buffering it all", async () => {
    const h = await start(() => {});
    const { h3, stream, server } = await rawSession(h);
    try {
      await stream.writeData(
        capsuleBytes(CapsuleType.CLOSE_WEBTRANSPORT_SESSION, new Uint8Array(4 + MAX_CLOSE_REASON_BYTES + 1)),
      );
      expect((await server.closed).clean).toBe(false);
    } finally {
      h3.close();
    }
  });

  it("unknown capsules (GREASE) are skipped and the session goes on", async () => {
    const h = await start(() => {});
    const { h3, stream, server } = await rawSession(h);
    try {
      await stream.writeData(capsuleBytes(41 * 7 + 23, new Uint8Array(40)));
      const closeValue = Uint8Array.of(0, 0, 0, 5, ...te.encode("ok"));
      await stream.writeData(capsuleBytes(CapsuleType.CLOSE_WEBTRANSPORT_SESSION, closeValue), true);
      expect(await server.closed).toEqual({ code: 5, reason: "ok", remote: true, clean: true });
    } finally {
      h3.close();
    }
  });
});
