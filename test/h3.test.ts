import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createH3Fetch, type H3Fetch } from "../src/h3/client.ts";
import type { H3Connection } from "../src/h3/connection.ts";
import { type H3Handler, type H3Server, serveH3 } from "../src/h3/server.ts";
import { listen, type QuicServer } from "../src/quic/api.ts";

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

const handler: H3Handler = async (req, info) => {
  lastServerConnection = info.connection;
  const url = new URL(req.url);
  switch (url.pathname) {
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
