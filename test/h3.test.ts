import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createH3Fetch, H3Client, type H3Fetch } from "../src/h3/client.ts";
import { CRITICAL_STREAM_URGENCY, type H3Connection, schedulerUrgency } from "../src/h3/connection.ts";
import { type H3Handler, type H3RequestInfo, type H3Server, serveH3 } from "../src/h3/server.ts";
import { listen, type QuicConnection, type QuicServer } from "../src/quic/api.ts";
import type { StreamScheduler } from "../src/quic/streams/scheduler.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let quic: QuicServer | undefined;
let h3server: H3Server | undefined;
let h3fetch: H3Fetch | undefined;
afterEach(async () => {
  await h3fetch?.close();
  await h3server?.close();
  await quic?.close();
  quic = undefined;
  h3server = undefined;
  h3fetch = undefined;
});

const big = randomBytes(1 << 20);

let lastServerConnection: H3Connection | undefined;
const slowAborted: { promise: Promise<void>; resolve: () => void } = (() => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
})();

/** /held requests: the handler's info, and the gate that lets its response body end. */
const held: { info: H3RequestInfo; release: () => void }[] = [];

/** The RFC 9218 priority the QUIC stream scheduler holds for one of the connection's streams. */
function schedulerPriority(
  quic: QuicConnection,
  streamId: number,
): { urgency: number; incremental: boolean } {
  return (quic.conn as unknown as { scheduler: StreamScheduler }).scheduler.priorityOf(streamId);
}

const uploadAborted: { promise: Promise<string>; resolve: (s: string) => void } = (() => {
  let resolve!: (s: string) => void;
  const promise = new Promise<string>((r) => {
    resolve = r;
  });
  return { promise, resolve };
})();

const handler: H3Handler = async (req, info) => {
  lastServerConnection = info.connection;
  const url = new URL(req.url);
  switch (url.pathname) {
    case "/held": {
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      held.push({ info, release });
      let sent = false;
      const stream = new ReadableStream<Uint8Array>({
        async pull(c) {
          if (sent) {
            await gate;
            return c.close();
          }
          sent = true;
          c.enqueue(new TextEncoder().encode("first"));
        },
      });
      return new Response(stream);
    }
    case "/hello":
      return new Response("hello over h3", {
        headers: {
          "content-type": "text/plain",
          "x-method": req.method,
          "x-prio": String(info.priority.urgency),
        },
      });
    case "/echo": {
      const body = new Uint8Array(await req.arrayBuffer());
      const trailers = await info.trailers;
      return new Response(body, {
        headers: { "x-sha": sha(body), "x-req-trailer": trailers.get("x-client-trailer") ?? "" },
      });
    }
    case "/big":
      return new Response(big, { headers: { "content-length": String(big.length) } });
    case "/unique":
      // A header value never seen before: the QPACK encoder inserts it and references the new
      // entry right away, so the client cannot decode the response until the instruction arrives.
      return new Response(big, { headers: { "x-unique": randomBytes(16).toString("hex") } });
    case "/trailers": {
      const chunks = ["a", "b", "c"];
      const stream = new ReadableStream<Uint8Array>({
        pull(c) {
          const next = chunks.shift();
          if (next === undefined) c.close();
          else c.enqueue(new TextEncoder().encode(next));
        },
      });
      return Object.assign(new Response(stream), { trailers: Promise.resolve({ "x-checksum": "abc123" }) });
    }
    case "/slow": {
      // Never ends on its own: the client aborts.
      req.signal.addEventListener("abort", () => slowAborted.resolve());
      let n = 0;
      const stream = new ReadableStream<Uint8Array>({
        async pull(c) {
          await new Promise((r) => setTimeout(r, 5));
          if (req.signal.aborted) return;
          c.enqueue(new Uint8Array(1000).fill(n++ & 0xff));
        },
      });
      return new Response(stream);
    }
    case "/drip": {
      // 20 chunks over ~200 ms.
      let n = 0;
      const stream = new ReadableStream<Uint8Array>({
        async pull(c) {
          await new Promise((r) => setTimeout(r, 10));
          if (n++ === 20) c.close();
          else c.enqueue(new Uint8Array(100).fill(n));
        },
      });
      return new Response(stream);
    }
    case "/upload-abort": {
      // Reads the upload until the client gives up on it.
      try {
        await req.arrayBuffer();
        uploadAborted.resolve("completed");
      } catch (err) {
        uploadAborted.resolve(req.signal.aborted ? "aborted" : `failed: ${err}`);
      }
      return new Response("unreachable");
    }
    case "/throw":
      throw new Error("boom");
    case "/headers":
      return Response.json(Object.fromEntries(req.headers));
    default:
      return null;
  }
};

async function start(): Promise<{ base: string; fetch: H3Fetch }> {
  quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
  h3server = serveH3(quic, handler, { onError: () => {} });
  h3fetch = createH3Fetch({ serverCertificateHashes: [quic.devCertificate!.certificateSha256] });
  return { base: `https://localhost:${quic.address.port}`, fetch: h3fetch };
}

describe("HTTP/3 over UDP: serveH3 + createH3Fetch", () => {
  it("GET: status, headers, body, priority header", async () => {
    const { base, fetch } = await start();
    const res = await fetch(`${base}/hello`, { headers: { priority: "u=1" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(res.headers.get("x-method")).toBe("GET");
    expect(res.headers.get("x-prio")).toBe("1");
    expect(res.url).toBe(`${base}/hello`);
    expect(await res.text()).toBe("hello over h3");
    expect([...(await res.trailers)]).toEqual([]);
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    await missing.arrayBuffer();
    const failing = await fetch(`${base}/throw`);
    expect(failing.status).toBe(500);
    await failing.arrayBuffer();
    const head = await fetch(`${base}/big`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(big.length));
    expect(head.body).toBeNull();
    expect(fetch.connections).toBe(1);
  }, 30_000);

  it("sends request headers (lowercased, cookies joined) and gets 1 MB back", async () => {
    const { base, fetch } = await start();
    const res = await fetch(`${base}/headers`, { headers: { "X-Custom": "v", cookie: "a=1; b=2" } });
    const seen = (await res.json()) as Record<string, string>;
    expect(seen["x-custom"]).toBe("v");
    expect(seen.cookie).toBe("a=1; b=2");
    const r = await fetch(`${base}/big`);
    expect(sha(new Uint8Array(await r.arrayBuffer()))).toBe(sha(big));
  }, 30_000);

  it("POST echoes 1 MB (buffered body) and 1 MB streamed with request trailers absent", async () => {
    const { base, fetch } = await start();
    const body = randomBytes(1 << 20);
    const res = await fetch(`${base}/echo`, { method: "POST", body });
    const echoed = new Uint8Array(await res.arrayBuffer());
    expect(echoed.length).toBe(body.length);
    expect(sha(echoed)).toBe(sha(body));
    expect(res.headers.get("x-sha")).toBe(sha(body));

    let offset = 0;
    const streamed = new ReadableStream<Uint8Array>({
      pull(c) {
        if (offset >= body.length) return c.close();
        c.enqueue(body.subarray(offset, offset + 65536));
        offset += 65536;
      },
    });
    const res2 = await fetch(`${base}/echo`, {
      method: "PUT",
      body: streamed,
      duplex: "half",
    } as RequestInit);
    expect(sha(new Uint8Array(await res2.arrayBuffer()))).toBe(sha(body));
  }, 60_000);

  it("runs 50 concurrent requests on one connection", async () => {
    const { base, fetch } = await start();
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const payload = new TextEncoder().encode(`request ${i} `.repeat(200 + i));
        const res = await fetch(`${base}/echo`, { method: "POST", body: payload });
        return sha(new Uint8Array(await res.arrayBuffer())) === sha(payload);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    expect(fetch.connections).toBe(1);
  }, 60_000);

  it("pools one connection per origin, shared by concurrent requests", async () => {
    const { base } = await start();
    const other = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
    const otherServer = serveH3(other, handler, { onError: () => {} });
    const pooled = createH3Fetch({
      serverCertificateHashes: [
        quic!.devCertificate!.certificateSha256,
        other.devCertificate!.certificateSha256,
      ],
    });
    try {
      const otherBase = `https://localhost:${other.address.port}`;
      const texts = await Promise.all(
        Array.from({ length: 20 }, async (_, i) =>
          (await pooled(`${i % 2 ? base : otherBase}/hello`)).text(),
        ),
      );
      expect(texts).toEqual(Array(20).fill("hello over h3"));
      expect(pooled.connections).toBe(2);
      expect(await (await pooled(`${base}/hello`)).text()).toBe("hello over h3");
      expect(pooled.connections).toBe(2);
    } finally {
      await pooled.close();
      await otherServer.close();
      await other.close();
    }
    expect(pooled.connections).toBe(0);
  }, 30_000);

  it("keeps working past the stream limit (streams are released) and uses the QPACK table", async () => {
    const { base, fetch } = await start();
    for (let i = 0; i < 150; i++) {
      const res = await fetch(`${base}/hello`, {
        headers: { "x-repeat": "the same header value each time" },
      });
      expect(await res.text()).toBe("hello over h3");
    }
    expect(fetch.connections).toBe(1);
    // Finished streams are forgotten on both sides.
    await new Promise((r) => setTimeout(r, 50));
    expect(lastServerConnection!.trackedStreams).toBe(0);
    expect(lastServerConnection!.activeRequests).toBe(0);
  }, 60_000);

  it("delivers response trailers", async () => {
    const { base, fetch } = await start();
    const res = await fetch(`${base}/trailers`);
    expect(await res.text()).toBe("abc");
    const t = await res.trailers;
    expect(t.get("x-checksum")).toBe("abc123");
  }, 30_000);

  it("sends request trailers after a buffered, a streamed and an empty body", async () => {
    const { base, fetch } = await start();
    const body = randomBytes(200_000);
    const buffered = await fetch(`${base}/echo`, {
      method: "POST",
      body,
      trailers: { "x-client-trailer": "buffered", connection: "dropped" },
    });
    expect(sha(new Uint8Array(await buffered.arrayBuffer()))).toBe(sha(body));
    expect(buffered.headers.get("x-req-trailer")).toBe("buffered");

    // A trailer computed once the streamed body was sent (a checksum, the typical use).
    let offset = 0;
    const hash = createHash("sha256");
    const streamed = new ReadableStream<Uint8Array>({
      pull(c) {
        if (offset >= body.length) return c.close();
        const chunk = body.subarray(offset, offset + 30_000);
        hash.update(chunk);
        c.enqueue(chunk);
        offset += 30_000;
      },
    });
    const res = await fetch(`${base}/echo`, {
      method: "PUT",
      body: streamed,
      duplex: "half",
      trailers: () => ({ "x-client-trailer": hash.digest("hex") }),
    } as RequestInit);
    expect(sha(new Uint8Array(await res.arrayBuffer()))).toBe(sha(body));
    expect(res.headers.get("x-req-trailer")).toBe(sha(body));

    const empty = await fetch(`${base}/echo`, {
      method: "POST",
      trailers: Promise.resolve([["x-client-trailer", "no body"]]),
    });
    expect((await empty.arrayBuffer()).byteLength).toBe(0);
    expect(empty.headers.get("x-req-trailer")).toBe("no body");
  }, 30_000);

  it("feeds the priority header and PRIORITY_UPDATE frames into the QUIC stream scheduler", async () => {
    const { base } = await start();
    const port = Number(new URL(base).port);
    const client = await H3Client.connect("localhost", port, {
      serverCertificateHashes: [quic!.devCertificate!.certificateSha256],
    });
    try {
      held.length = 0;
      const res = await client.fetch(`${base}/held`, { headers: { priority: "u=5, i" } });
      const reader = res.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toBe("first");
      const { info } = held[0];
      const serverQuic = info.connection.quic;
      expect(info.priority).toEqual({ urgency: 5, incremental: true });
      // The request header's priority reached the server's scheduler for the response stream
      // (one level below HTTP's, the control and QPACK streams go first).
      expect(schedulerUrgency(5)).toBe(6);
      expect(schedulerPriority(serverQuic, info.streamId)).toEqual({ urgency: 6, incremental: true });

      // RFC 9218 §7.2: the client reprioritizes the request in flight.
      client.connection.sendPriorityUpdate(info.streamId, { urgency: 1, incremental: false });
      for (let i = 0; i < 200 && schedulerPriority(serverQuic, info.streamId).urgency !== 2; i++) {
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(schedulerPriority(serverQuic, info.streamId)).toEqual({ urgency: 2, incremental: false });

      // A request without the header gets the defaults (RFC 9218 §4: u=3, not incremental).
      const plain = await client.fetch(`${base}/held`);
      const plainReader = plain.body!.getReader();
      await plainReader.read();
      const second = held[1].info;
      expect(schedulerPriority(serverQuic, second.streamId)).toEqual({ urgency: 4, incremental: false });
      // The server's control stream (ID 3) is ahead of every request stream.
      expect(schedulerPriority(serverQuic, 3)).toEqual({
        urgency: CRITICAL_STREAM_URGENCY,
        incremental: false,
      });
      expect(schedulerUrgency(0)).toBeGreaterThan(CRITICAL_STREAM_URGENCY);
      for (const h of held) h.release();
      expect((await reader.read()).done).toBe(true);
      expect((await plainReader.read()).done).toBe(true);
    } finally {
      await client.close();
    }
  }, 30_000);

  it("no QPACK flow-control deadlock: encoder instructions go out before response DATA", async () => {
    // Small client windows: four responses blocked on encoder instructions could fill the
    // connection window with DATA (never released while blocked) if the QPACK encoder stream
    // waited behind them (RFC 9204 §2.1.3). Seen with ngtcp2's gtlsclient and 4 × 5 MiB echoes.
    const { base } = await start();
    const small = createH3Fetch({
      serverCertificateHashes: [quic!.devCertificate!.certificateSha256],
      transport: {
        connectionReceiveWindow: 256 * 1024,
        maxConnectionReceiveWindow: 256 * 1024,
        streamReceiveWindow: 128 * 1024,
        maxStreamReceiveWindow: 128 * 1024,
      },
    });
    try {
      let timer: NodeJS.Timeout | undefined;
      const stalled = new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("stalled"), 15_000);
      });
      const all = Promise.all(
        Array.from({ length: 4 }, async () => {
          const res = await small(`${base}/unique`);
          expect(res.headers.get("x-unique")).toMatch(/^[0-9a-f]{32}$/);
          return sha(new Uint8Array(await res.arrayBuffer()));
        }),
      );
      const result = await Promise.race([all, stalled]);
      clearTimeout(timer);
      expect(result).toEqual(Array(4).fill(sha(big)));
    } finally {
      await small.close();
    }
  }, 30_000);

  it("aborts a request with an AbortSignal (before and during the body)", async () => {
    const { base, fetch } = await start();
    const early = new AbortController();
    early.abort();
    await expect(fetch(`${base}/hello`, { signal: early.signal })).rejects.toThrow();

    const ac = new AbortController();
    const res = await fetch(`${base}/slow`, { signal: ac.signal });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.value?.length).toBeGreaterThan(0);
    ac.abort();
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return;
      })(),
    ).rejects.toThrow();
    await expect(res.trailers).rejects.toBeDefined();
    // The server saw the cancellation (STOP_SENDING / RESET_STREAM H3_REQUEST_CANCELLED).
    await slowAborted.promise;
    // The connection is still usable.
    const again = await fetch(`${base}/hello`);
    expect(await again.text()).toBe("hello over h3");
  }, 30_000);

  it("aborts a request during a streamed upload: both sides see the cancellation", async () => {
    const { base, fetch } = await start();
    const ac = new AbortController();
    let chunks = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        await new Promise((r) => setTimeout(r, 5));
        if (++chunks === 20) ac.abort(new Error("user gave up"));
        c.enqueue(new Uint8Array(10_000).fill(chunks & 0xff));
      },
    });
    await expect(
      fetch(`${base}/upload-abort`, {
        method: "POST",
        body,
        duplex: "half",
        signal: ac.signal,
      } as RequestInit),
    ).rejects.toThrow("user gave up");
    // The server's request body failed and its signal fired (RESET_STREAM / STOP_SENDING
    // H3_REQUEST_CANCELLED, RFC 9114 §4.1.1).
    expect(await uploadAborted.promise).toBe("aborted");
    expect(await (await fetch(`${base}/hello`)).text()).toBe("hello over h3");
  }, 30_000);

  it("graceful shutdown lets a request in flight finish", async () => {
    const { base, fetch } = await start();
    const res = await fetch(`${base}/drip`);
    const closing = h3server!.close();
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body.length).toBe(2000);
    await closing;
    h3server = undefined;
    quic = undefined;
    expect(fetch.connections).toBe(0);
  }, 30_000);

  it("shuts down with GOAWAY: a new fetch opens a new connection", async () => {
    const { base, fetch } = await start();
    expect(await (await fetch(`${base}/hello`)).text()).toBe("hello over h3");
    const first = fetch.connections;
    expect(first).toBe(1);
    await h3server!.close();
    h3server = undefined;
    quic = undefined;
    // The server is gone entirely: the pooled connection was closed with H3_NO_ERROR.
    expect(fetch.connections).toBe(0);
  }, 30_000);
});
