import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const bin = new URL("../bin/purequic", import.meta.url).pathname;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let dir: string;
let server: ChildProcess;
let port: number;
const data = randomBytes(700_000);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "purequic-cli-h3-"));
  writeFileSync(join(dir, "data.bin"), data);
  writeFileSync(join(dir, "page.html"), "<p>hi</p>\n");
  server = spawn(bin, ["server", "--listen", "127.0.0.1:0", "--root", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  port = await new Promise<number>((resolve, reject) => {
    let out = "";
    server.stdout?.on("data", (d) => {
      out += d;
      const m = /listening on udp [\d.]+:(\d+), ALPN h3,hq-interop/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.on("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
}, 30_000);

afterAll(() => {
  server?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("purequic server / get over HTTP/3", () => {
  it("downloads over h3 by default, over hq-interop on request", async () => {
    for (const [alpn, proto] of [
      [[], "h3"],
      [["--alpn", "hq-interop"], "hq-interop"],
    ] as const) {
      const out = mkdtempSync(join(dir, "dl-"));
      const urls = ["data.bin", "page.html"].map((f) => `https://localhost:${port}/${f}`);
      const r = await run(bin, ["get", "--insecure", ...alpn, "--output", out, ...urls]);
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(new RegExp(`^2/2 files, 700010 bytes .* over ${proto}$`, "m"));
      expect(sha(readFileSync(join(out, "data.bin")))).toBe(sha(data));
      expect(readFileSync(join(out, "page.html"), "utf8")).toBe("<p>hi</p>\n");
    }
  }, 30_000);

  it("exits 1 on a 404", async () => {
    const out = mkdtempSync(join(dir, "dl-"));
    await expect(
      run(bin, [
        "get",
        "-q",
        "--insecure",
        "--alpn",
        "h3",
        "--output",
        out,
        `https://localhost:${port}/missing`,
      ]),
    ).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining("404") });
  }, 30_000);

  it("exits 1 on a missing file over hq-interop (stream reset) and leaves no file behind", async () => {
    const out = mkdtempSync(join(dir, "dl-"));
    await expect(
      run(bin, [
        "get",
        "-q",
        "--insecure",
        "--alpn",
        "hq-interop",
        "--output",
        out,
        `https://localhost:${port}/missing`,
      ]),
    ).rejects.toMatchObject({ code: 1 });
    expect(readdirSync(out)).toEqual([]);
  }, 30_000);
});
