import { describe, expect, it } from "vitest";
import { BoundRecvStream } from "./bound-recv-stream.ts";
import type { ReverseRecvStream } from "./connection.ts";

function source(chunks: Uint8Array[]): ReverseRecvStream & { stopped?: bigint | number } {
  const s: ReverseRecvStream & { stopped?: bigint | number } = {
    read: async () => chunks.shift() ?? null,
    stop: (code) => {
      s.stopped = code;
    },
  };
  return s;
}

describe("BoundRecvStream", () => {
  it("delivers the bytes that followed the header first, honouring maxBytes, then the stream", async () => {
    const s = new BoundRecvStream(source([Uint8Array.of(4, 5)]), Uint8Array.of(1, 2, 3));
    expect(await s.read(2)).toEqual(Uint8Array.of(1, 2));
    expect(await s.read()).toEqual(Uint8Array.of(3));
    expect(await s.read()).toEqual(Uint8Array.of(4, 5));
    expect(await s.read()).toBeNull();
  });

  it("treats an empty prefix as none and iterates to the end", async () => {
    const s = new BoundRecvStream(source([Uint8Array.of(9)]), new Uint8Array(0));
    const all: number[] = [];
    for await (const c of s) all.push(...c);
    expect(all).toEqual([9]);
  });

  it("stop() drops the prefix and stops the stream", async () => {
    const inner = source([]);
    const s = new BoundRecvStream(inner, Uint8Array.of(1));
    s.stop(7);
    expect(inner.stopped).toBe(7);
    expect(await s.read()).toBeNull();
  });
});
