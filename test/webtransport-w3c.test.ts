import { runInThisContext } from "node:vm";
import { afterEach, describe, expect, it } from "vitest";
import { WEBTRANSPORT_PAGE_SCRIPT } from "../interop/chromium/webtransport-page.ts";
import type { H3Server } from "../src/h3/server.ts";
import { listen, type QuicServer } from "../src/quic/api.ts";
import { echoSession } from "../src/webtransport/echo.ts";
import { serveWebTransport } from "../src/webtransport/server.ts";
import type { WebTransportSession } from "../src/webtransport/session.ts";
import type { WebTransportCloseInfo } from "../src/webtransport/session-interface.ts";
import { WebTransport, WebTransportError } from "../src/webtransport/w3c.ts";

let quic: QuicServer | undefined;
let server: H3Server | undefined;
afterEach(async () => {
  await server?.close();
  quic = undefined;
  server = undefined;
});

async function start(): Promise<{
  base: string;
  hashHex: string;
  closes: WebTransportCloseInfo[];
  sessions: WebTransportSession[];
}> {
  quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
  const closes: WebTransportCloseInfo[] = [];
  const sessions: WebTransportSession[] = [];
  server = serveWebTransport(quic, {
    onSession: (s, req) => {
      sessions.push(s);
      if (req.url.pathname === "/webtransport/close-me")
        setTimeout(() => s.close(4000, "closed by purequic"), 50);
      else {
        void echoSession(s);
        void s.closed.then((i) => closes.push(i));
      }
    },
  });
  return {
    base: `https://127.0.0.1:${quic.address.port}`,
    hashHex: quic.devCertificate!.certificateSha256Hex,
    closes,
    sessions,
  };
}

describe("W3C WebTransport in Node", () => {
  it("runs the Chromium interop page script unchanged against a purequic server", async () => {
    const { base, hashHex, closes } = await start();
    const g = globalThis as unknown as Record<string, unknown>;
    g.window = globalThis;
    g.WebTransport = WebTransport;
    g.WebTransportError = WebTransportError;
    try {
      runInThisContext(WEBTRANSPORT_PAGE_SCRIPT);
      const run = g.runWebTransportChecks as (
        b: string,
        h: string,
      ) => Promise<Record<string, { ok: boolean; detail: string }>>;
      const results = await run(base, hashHex);
      expect(Object.keys(results)).toEqual([
        "session established",
        "bidi stream echo",
        "uni streams both ways",
        "datagram echo",
        "10 MB over one stream",
        "100 concurrent streams",
        "stream reset codes",
        "page close",
        "server close seen by the page",
      ]);
      for (const [name, r] of Object.entries(results))
        expect({ name, ...r }).toMatchObject({ name, ok: true });
      for (let i = 0; i < 100 && closes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(closes[0]).toEqual({ code: 7, reason: "bye from the page", remote: true, clean: true });
    } finally {
      delete g.runWebTransportChecks;
      delete g.WebTransport;
      delete g.WebTransportError;
      delete g.window;
    }
  }, 60_000);

  it("WebTransportError takes the W3C (message, options) form and Chromium's single-object form", () => {
    const w3c = new WebTransportError("m", { streamErrorCode: 5 });
    const chromium = new WebTransportError({ message: "m", streamErrorCode: 5, source: "session" });
    expect([w3c.message, w3c.streamErrorCode, w3c.source, w3c.name]).toEqual([
      "m",
      5,
      "stream",
      "WebTransportError",
    ]);
    expect([chromium.message, chromium.streamErrorCode, chromium.source]).toEqual(["m", 5, "session"]);
    expect(new WebTransportError().streamErrorCode).toBeNull();
  });

  it("rejects ready for a wrong certificate hash", async () => {
    const { base, hashHex } = await start();
    const wrong = hashHex.replace(/^../, (b) => (b === "00" ? "01" : "00"));
    const wt = new WebTransport(`${base}/webtransport/echo`, {
      serverCertificateHashes: [{ algorithm: "sha-256", value: Buffer.from(wrong, "hex") }],
    });
    await expect(wt.ready).rejects.toBeInstanceOf(WebTransportError);
    await expect(wt.closed).rejects.toBeInstanceOf(WebTransportError);
  });

  it("closed rejects with a session WebTransportError when the connection is lost", async () => {
    const { base, hashHex, sessions } = await start();
    const wt = new WebTransport(`${base}/x`, {
      serverCertificateHashes: [{ algorithm: "sha-256", value: Buffer.from(hashHex, "hex") }],
    });
    await wt.ready;
    await sessions[0].connection.quic.close(0x100, "gone");
    const err = await wt.closed.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WebTransportError);
    expect((err as WebTransportError).source).toBe("session");
  });

  it("a reset stream errors the readable with its streamErrorCode", async () => {
    const { base, hashHex, sessions } = await start();
    const wt = new WebTransport(`${base}/x`, {
      serverCertificateHashes: [{ algorithm: "sha-256", value: Buffer.from(hashHex, "hex") }],
    });
    await wt.ready;
    const send = await sessions[0].openUni();
    await send.write(new Uint8Array([1, 2, 3]));
    const reader = wt.incomingUnidirectionalStreams.getReader();
    const { value } = await reader.read();
    const r = value!.getReader();
    expect([...(await r.read()).value!]).toEqual([1, 2, 3]);
    send.reset(77);
    const err = await r.read().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WebTransportError);
    expect((err as WebTransportError).streamErrorCode).toBe(77);
    wt.close({ closeCode: 1, reason: "done" });
    expect(await wt.closed).toEqual({ closeCode: 1, reason: "done" });
  });
});
