/** `purequic reverse relay` and `purequic reverse edge` as processes, tunnelling HTTP. */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, get as httpGet } from "node:http";
import { afterEach, describe, expect, it } from "vitest";

const bin = new URL("../bin/purequic", import.meta.url).pathname;
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGTERM");
});

/** Starts the CLI; resolves with the process and its output so far once `until` matches stdout. */
function start(
  args: string[],
  until: RegExp,
): Promise<{ child: ChildProcess; out: () => string; err: () => string }> {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      if (until.test(out)) resolve({ child, out: () => out, err: () => err });
    });
    child.once("exit", (code) => reject(new Error(`exited ${code} before ${until}: ${out} ${err}`)));
  });
}

function httpText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString()));
    }).on("error", reject);
  });
}

describe("purequic reverse", () => {
  it("relay --token and edge --token --ca tunnel HTTP; a wrong token exits 1", async () => {
    const web = createServer((req, res) => res.end(`via tunnel ${req.url}`));
    await new Promise<void>((r) => web.listen(0, "127.0.0.1", () => r()));
    try {
      const webPort = (web.address() as { port: number }).port;
      const relay = await start(
        ["reverse", "relay", "--listen", "127.0.0.1:0", "--expose", "web=0", "--token", "t0k3n"],
        /--ca: (\S+)\n/,
      );
      const udpPort = Number(/listening on udp [\d.]+:(\d+)/.exec(relay.out())![1]);
      const tcpPort = Number(/web: tcp [\d.]+:(\d+)/.exec(relay.out())![1]);
      const caFile = /--ca: (\S+)\n/.exec(relay.out())![1];
      expect(relay.err()).not.toContain("warning");
      const edgeArgs = (token: string) => [
        "reverse",
        "edge",
        "--relay",
        `127.0.0.1:${udpPort}`,
        "--server-name",
        "localhost",
        "--ca",
        caFile,
        "--token",
        token,
        "--service",
        `web=127.0.0.1:${webPort}`,
      ];
      await start(edgeArgs("t0k3n"), /connected to relay/);
      // A second edge trusting the relay by certificate hash instead of a CA file.
      const hash = /--cert-hash\): ([0-9a-f]{64})/.exec(relay.out())![1];
      const byHash = edgeArgs("t0k3n").map((a) => (a === "--ca" ? "--cert-hash" : a === caFile ? hash : a));
      await start(byHash, /connected to relay/);
      // The relay logs the edge once its session is ready.
      while (!/edge .* connected/.test(relay.out())) await new Promise((r) => setTimeout(r, 50));
      expect(await httpText(tcpPort, "/x")).toBe("via tunnel /x");

      const wrong = spawn(bin, edgeArgs("nope"), { stdio: ["ignore", "pipe", "pipe"] });
      children.push(wrong);
      let wrongErr = "";
      wrong.stderr!.on("data", (d: Buffer) => {
        wrongErr += d;
      });
      const code = await new Promise<number | null>((r) => wrong.once("exit", r));
      expect(code).toBe(1);
      expect(wrongErr).toContain("unauthorized");
    } finally {
      web.close();
    }
  });

  it("warns when the relay has neither a token nor a client CA, and checks its arguments", async () => {
    const relay = await start(["reverse", "relay", "--listen", "127.0.0.1:0", "--expose", "a=0"], /--ca: /);
    while (!relay.err().includes("warning")) await new Promise((r) => setTimeout(r, 50));
    expect(relay.err()).toContain("anyone who can reach this relay can register services");
    const noCa = spawn(bin, ["reverse", "edge", "--relay", "127.0.0.1:1", "--service", "a=127.0.0.1:1"]);
    children.push(noCa);
    expect(await new Promise((r) => noCa.once("exit", r))).toBe(2);
  });
});
