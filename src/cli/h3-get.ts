/**
 * `purequic get` over HTTP/3: one GET per URL on an established "h3" connection, each body saved
 * as DIR/<basename>. Kept apart from get.ts (which handles hq-interop and the command line).
 */
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { H3Client } from "../h3/client.ts";
import { H3Connection } from "../h3/connection.ts";
import type { QuicConnection } from "../quic/api.ts";

/** Outcome of one download (same shape as get.ts's hq-interop results). */
export interface H3GetResult {
  url: string;
  file: string;
  bytes: number;
  ok: boolean;
  error?: string;
}

/** The HTTP/3 client for a connection that negotiated "h3". */
export function h3ClientFor(conn: QuicConnection): H3Client {
  return new H3Client(new H3Connection(conn));
}

/** GETs `url` and writes a 200 response's body to DIR/<basename>; any other status fails. */
export async function h3FetchOne(
  client: H3Client,
  url: URL,
  dir: string,
  onBytes: (n: number) => void,
): Promise<H3GetResult> {
  const file = join(dir, basename(url.pathname) || "index.html");
  const result: H3GetResult = { url: url.href, file, bytes: 0, ok: false };
  try {
    const res = await client.fetch(url);
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`HTTP status ${res.status}`);
    }
    const expected = res.headers.get("content-length");
    const out = createWriteStream(file);
    // Gather packet-sized chunks into larger writes (fewer syscalls).
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const block = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      if (!out.write(block)) await new Promise<void>((r) => out.once("drain", () => r()));
    };
    try {
      if (res.body) {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          result.bytes += chunk.length;
          onBytes(chunk.length);
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= 256 * 1024) await flush();
        }
      }
      await flush();
    } finally {
      await new Promise<void>((resolve, reject) =>
        out.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
    }
    if (expected !== null && Number(expected) !== result.bytes) {
      throw new Error(`got ${result.bytes} bytes, content-length ${expected}`);
    }
    result.ok = true;
  } catch (err) {
    const e = err as Error & { cause?: Error };
    result.error = e.cause ? `${e.message}: ${e.cause.message}` : e.message;
  }
  // A failed download leaves no file behind (no empty or truncated file mistaken for the real one).
  if (!result.ok) await rm(file, { force: true }).catch(() => {});
  return result;
}
