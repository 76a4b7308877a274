/**
 * serveH3's `request.signal` is made only when the handler reads it (a Request built with a
 * signal costs more than the rest of it); it must still say what the client did: abort when the
 * client cancels, also when first read after the cancellation.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createH3Fetch, type H3Fetch } from "../src/h3/client.ts";
import { type H3Server, serveH3 } from "../src/h3/server.ts";
import { listen, type QuicServer } from "../src/quic/api.ts";

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

function gate<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("serveH3 request.signal", () => {
  it("is aborted when first read after the client cancelled, and stays quiet otherwise", async () => {
    const arrived = gate<void>();
    const cancelled = gate<void>();
    const seen = gate<{ aborted: boolean; name: string; isSignal: boolean }>();
    const plain = gate<{ aborted: boolean; isSignal: boolean; same: boolean }>();
    quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
    h3server = serveH3(quic, async (req) => {
      if (new URL(req.url).pathname === "/plain") {
        const s = req.signal;
        plain.resolve({ aborted: s.aborted, isSignal: s instanceof AbortSignal, same: s === req.signal });
        return new Response("ok");
      }
      arrived.resolve();
      await cancelled.promise;
      // Let the client's STOP_SENDING / RESET_STREAM arrive (loopback), without touching the signal.
      await new Promise((r) => setTimeout(r, 300));
      const s = req.signal;
      seen.resolve({
        aborted: s.aborted,
        name: (s.reason as DOMException | undefined)?.name ?? "",
        isSignal: s instanceof AbortSignal,
      });
      return new Response("late");
    });
    h3fetch = createH3Fetch({ serverCertificateHashes: [quic.devCertificate!.certificateSha256] });
    const base = `https://localhost:${quic.address.port}`;

    const res = await h3fetch(`${base}/plain`);
    expect(await res.text()).toBe("ok");
    expect(await plain.promise).toEqual({ aborted: false, isSignal: true, same: true });

    const ac = new AbortController();
    const pending = h3fetch(`${base}/wait`, { signal: ac.signal });
    pending.catch(() => {});
    await arrived.promise;
    ac.abort();
    await expect(pending).rejects.toBeDefined();
    cancelled.resolve();
    expect(await seen.promise).toEqual({ aborted: true, name: "AbortError", isSignal: true });
  }, 30_000);
});
