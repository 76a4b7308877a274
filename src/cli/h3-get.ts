/**
 * `purequic get` over HTTP/3: one GET per URL on an established "h3" connection, each body saved
 * as DIR/<basename>. Kept apart from get.ts (which handles hq-interop and the command line).
 */
import { H3Client } from "../h3/client.ts";
import { H3Connection } from "../h3/connection.ts";
import type { QuicConnection } from "../quic/api.ts";
import { type DownloadResult, download } from "./download.ts";

/** Outcome of one download (the same record as hq-interop's). */
export type H3GetResult = DownloadResult;

/** The HTTP/3 client for a connection that negotiated "h3". */
export function h3ClientFor(conn: QuicConnection): H3Client {
  return new H3Client(new H3Connection(conn));
}

/** GETs `url` and writes a 200 response's body to DIR/<basename>; any other status fails. */
export function h3FetchOne(
  client: H3Client,
  url: URL,
  dir: string,
  onBytes: (n: number) => void,
): Promise<H3GetResult> {
  return download(url, dir, onBytes, async (result) => {
    const res = await client.fetch(url);
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`HTTP status ${res.status}`);
    }
    return checkedBody(res, result);
  });
}

/** The response body, failing at its end when it is shorter or longer than content-length. */
async function* checkedBody(res: Response, result: DownloadResult): AsyncIterable<Uint8Array> {
  if (res.body) yield* res.body as unknown as AsyncIterable<Uint8Array>;
  const expected = res.headers.get("content-length");
  if (expected !== null && Number(expected) !== result.bytes) {
    throw new Error(`got ${result.bytes} bytes, content-length ${expected}`);
  }
}
