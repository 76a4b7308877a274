import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { StaticFiles } from "./static-files.ts";

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function workDir(): string {
  dir = mkdtempSync(join(tmpdir(), "purequic-static-files-"));
  return dir;
}

describe("StaticFiles", () => {
  it("remembers found paths for ttlMs, never missing ones", async () => {
    const calls: string[] = [];
    const files = new StaticFiles(
      async (p) => {
        calls.push(p);
        return p === "/a" ? "/root/a" : undefined;
      },
      { ttlMs: 1000 },
    );
    expect(await files.resolve("/a", 0)).toBe("/root/a");
    expect(await files.resolve("/a", 999)).toBe("/root/a");
    expect(calls).toEqual(["/a"]);
    expect(await files.resolve("/a", 1000)).toBe("/root/a");
    expect(calls).toEqual(["/a", "/a"]);
    expect(await files.resolve("/missing", 0)).toBeUndefined();
    expect(await files.resolve("/missing", 1)).toBeUndefined();
    expect(calls).toEqual(["/a", "/a", "/missing", "/missing"]);
  });

  it("bounds the path table", async () => {
    let n = 0;
    const files = new StaticFiles(
      async (p) => {
        n++;
        return p;
      },
      { maxPaths: 2 },
    );
    for (const p of ["/1", "/2", "/3", "/1"]) await files.resolve(p, 0);
    // The table was emptied when /3 came: /1 was looked up again.
    expect(n).toBe(4);
  });

  it("serves small files from memory while unchanged, re-reads changed ones, streams large ones", async () => {
    const d = workDir();
    const small = join(d, "small.bin");
    const large = join(d, "large.bin");
    writeFileSync(small, new Uint8Array([1, 2, 3]));
    writeFileSync(large, new Uint8Array(200));
    const files = new StaticFiles(async (p) => p, { maxFileSize: 100 });

    const first = await files.open(small, 0);
    expect(first.size).toBe(3);
    expect([...first.bytes!]).toEqual([1, 2, 3]);
    expect((await files.open(small, 50)).bytes).toBe(first.bytes); // the same bytes, from memory
    expect((await files.open(small, 500)).bytes).toBe(first.bytes); // stat checked again: unchanged
    expect(files.memoryBytes).toBe(3);

    writeFileSync(small, new Uint8Array([4, 5, 6, 7]));
    // Within statTtlMs (100) of the last check the stat is trusted; after it the change is seen.
    expect((await files.open(small, 599)).bytes).toBe(first.bytes);
    const changed = await files.open(small, 600);
    expect([...changed.bytes!]).toEqual([4, 5, 6, 7]);
    expect(files.memoryBytes).toBe(4);

    const big = await files.open(large, 600);
    expect(big).toEqual({ size: 200, bytes: undefined });
    expect(files.memoryBytes).toBe(4);

    unlinkSync(small);
    await expect(files.open(small, 1000)).rejects.toThrow();
    expect(files.memoryBytes).toBe(0); // forgotten with the file
    await expect(files.open(d, 1000)).rejects.toThrow(); // a directory
  });

  it("keeps at most maxCacheBytes, dropping the oldest", async () => {
    const d = workDir();
    const names = ["a", "b", "c"].map((n) => join(d, n));
    for (const f of names) writeFileSync(f, new Uint8Array(40).fill(7));
    const files = new StaticFiles(async (p) => p, { maxFileSize: 64, maxCacheBytes: 100 });
    const a0 = (await files.open(names[0])).bytes;
    const b0 = (await files.open(names[1])).bytes;
    expect((await files.open(names[0])).bytes).toBe(a0);
    expect((await files.open(names[2])).bytes?.length).toBe(40);
    expect(files.memoryBytes).toBe(80);
    // "a" was dropped for "c": it is read again (new bytes), and "b" makes room for it.
    const a1 = (await files.open(names[0])).bytes;
    expect(a1).not.toBe(a0);
    expect([...a1!]).toEqual([...a0!]);
    expect((await files.open(names[1])).bytes).not.toBe(b0);
    expect(files.memoryBytes).toBe(80);
  });
});
