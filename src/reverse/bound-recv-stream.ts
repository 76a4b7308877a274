/**
 * The receiving half of a quic-reverse data stream after its StreamBind header: the bytes that
 * came in the same read as the header are delivered first, then the stream's own reads.
 */
import type { ReverseRecvStream } from "./connection.ts";

export class BoundRecvStream implements ReverseRecvStream, AsyncIterable<Uint8Array> {
  constructor(
    private readonly inner: ReverseRecvStream,
    private prefix: Uint8Array | undefined,
  ) {
    if (prefix?.length === 0) this.prefix = undefined;
  }

  async read(maxBytes?: number): Promise<Uint8Array | null> {
    const p = this.prefix;
    if (p) {
      if (maxBytes !== undefined && maxBytes < p.length) {
        this.prefix = p.subarray(maxBytes);
        return p.subarray(0, maxBytes);
      }
      this.prefix = undefined;
      return p;
    }
    return this.inner.read(maxBytes);
  }

  stop(code: bigint | number): void {
    this.prefix = undefined;
    this.inner.stop(code);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (let c = await this.read(); c; c = await this.read()) yield c;
  }
}
