/**
 * Saving one download of `purequic get` (hq-interop or HTTP/3): the output path, the result
 * record, and writing a body to disk in large blocks.
 */
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { basename, join } from "node:path";

/** Outcome of one download. */
export interface DownloadResult {
  url: string;
  file: string;
  bytes: number;
  ok: boolean;
  error?: string;
}

/** Gathers packet-sized chunks into writes of this size (fewer syscalls). */
const WRITE_BLOCK = 256 * 1024;

/**
 * Downloads `url` into DIR/<basename> (index.html for a directory): `body` resolves to the
 * chunks, or throws to fail the download. A failed download leaves no file behind (no empty or
 * truncated file mistaken for the real one). `copyChunks` copies chunks that are views of memory
 * the source reuses.
 */
export async function download(
  url: URL,
  dir: string,
  onBytes: (n: number) => void,
  body: (result: DownloadResult) => Promise<AsyncIterable<Uint8Array>>,
  copyChunks = false,
): Promise<DownloadResult> {
  const file = join(dir, basename(url.pathname) || "index.html");
  const result: DownloadResult = { url: url.href, file, bytes: 0, ok: false };
  try {
    const chunks = await body(result);
    const out = createWriteStream(file);
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
      for await (const chunk of chunks) {
        result.bytes += chunk.length;
        onBytes(chunk.length);
        pending.push(copyChunks ? chunk.slice() : chunk);
        pendingBytes += chunk.length;
        if (pendingBytes >= WRITE_BLOCK) await flush();
      }
      await flush();
    } finally {
      await new Promise<void>((resolve, reject) =>
        out.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
    }
    result.ok = true;
  } catch (err) {
    const e = err as Error & { cause?: Error };
    result.error = e.cause ? `${e.message}: ${e.cause.message}` : e.message;
  }
  if (!result.ok) await rm(file, { force: true }).catch(() => {});
  return result;
}
