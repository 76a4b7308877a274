import { type ChildProcess, spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectWebTransport } from "../src/webtransport/client.ts";
import type { WebTransportSession } from "../src/webtransport/session.ts";

const bin = new URL("../bin/purequic", import.meta.url).pathname;
const te = new TextEncoder();
const td = new TextDecoder();

let server: ChildProcess;
let port: number;
let hash: Uint8Array;
let out = "";
const sessions: WebTransportSession[] = [];

beforeAll(async () => {
  server = spawn(bin, ["server", "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    server.stdout?.on("data", (d) => {
      out += d;
      const p = /listening on udp [\d.]+:(\d+)/.exec(out);
      const h = /certificate sha-256: ([0-9a-f]{64})/.exec(out);
      if (p && h && out.includes("from any page:")) {
        port = Number(p[1]);
        hash = Uint8Array.from(Buffer.from(h[1], "hex"));
        resolve();
      }
    });
    server.on("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
}, 30_000);

afterAll(() => {
  for (const s of sessions) s.close();
  server?.kill("SIGKILL");
});

async function open(path: string): Promise<WebTransportSession> {
  const s = await connectWebTransport(`https://127.0.0.1:${port}${path}`, {
    serverCertificateHashes: [hash],
  });
  sessions.push(s);
  return s;
}

describe("purequic server: WebTransport endpoints", () => {
  it("prints how to open the demo page, with the certificate hash", () => {
    expect(out).toContain(`WebTransport echo: https://127.0.0.1:${port}/webtransport/echo`);
    expect(out).toMatch(
      /chromium --origin-to-force-quic-on=127\.0\.0\.1:\d+ --ignore-certificate-errors-spki-list=\S+ https:\/\/127\.0\.0\.1:\d+\/webtransport\.html/,
    );
    expect(out).toContain(`<bytes of ${Buffer.from(hash).toString("hex")}>`);
  });

  it("/webtransport/echo echoes a bidi stream on itself and a uni stream on a new one", async () => {
    const s = await open("/webtransport/echo");
    const bi = await s.openBi();
    await bi.send.write(te.encode("cli echo"));
    void bi.send.finish();
    expect(td.decode(await bi.recv.readAll())).toBe("cli echo");
    const uni = await s.openUni();
    await uni.write(te.encode("cli uni"));
    void uni.finish();
    expect(td.decode(await (await s.acceptUni())!.readAll())).toBe("cli uni");
  });

  it("/webtransport/chat broadcasts a message to every member", async () => {
    const a = await open("/webtransport/chat");
    const b = await open("/webtransport/chat");
    // Wait until b is surely a member: its own message comes back to it.
    const hello = await b.openUni();
    await hello.write(te.encode("b joined"));
    void hello.finish();
    expect(td.decode(await (await b.acceptUni())!.readAll())).toBe("b joined");
    expect(td.decode(await (await a.acceptUni())!.readAll())).toBe("b joined");
    const m = await a.openUni();
    await m.write(te.encode("a: hi"));
    void m.finish();
    expect(td.decode(await (await b.acceptUni())!.readAll())).toBe("a: hi");
  });

  it("other paths are refused with 404", async () => {
    await expect(open("/webtransport/nope")).rejects.toMatchObject({ status: 404 });
  });
});
