/**
 * Interop smoke test against real peers (built by interop/peers/install.sh):
 *   purequic get  ← quinn 0.9 server, quic-go 0.29 server        (hq-interop, 10 MB + small file)
 *   quinn client, quic-go client → purequic server               (hq-interop)
 *   purequic ↔ ngtcp2 gtlsserver / gtlsclient                     (QUIC+TLS handshake, ALPN h3)
 * Every transfer is checked by SHA-256. Prints a table, writes docs/INTEROP.md's smoke section,
 * and ends with "N passed, M failed"; exits non-zero on any failure.
 *
 *   npx tsx interop/smoke.ts [--size BYTES] [--no-write]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { makeTestCertificate, peersEnv, purequicBin as purequic, repo, startUntil } from "./lib.ts";

const { values } = parseArgs({ options: { size: { type: "string" }, "no-write": { type: "boolean" } } });
const size = Number(values.size ?? 10 * 1024 * 1024);

const peers = peersEnv();
if (!peers.QUINN_PEER) throw new Error("peers not built: run interop/peers/install.sh first");
const work = mkdtempSync(join(tmpdir(), "purequic-interop-"));
const www = join(work, "www");
mkdirSync(www);
const big = randomBytes(size);
writeFileSync(join(www, "big.bin"), big);
writeFileSync(join(www, "small.txt"), "hello from the interop smoke test\n");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const expected: Record<string, string> = {
  "big.bin": sha(big),
  "small.txt": sha(readFileSync(join(www, "small.txt"))),
};
const { cert, key } = makeTestCertificate(work);

interface Row {
  peer: string;
  direction: string;
  ok: boolean;
  detail: string;
}
const rows: Row[] = [];
const children: ChildProcess[] = [];

const start = (cmd: string, args: string[], ready: RegExp) =>
  startUntil(cmd, args, ready).then((r) => {
    children.push(r.child);
    return r;
  });

function run(
  cmd: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let output = "";
    child.stdout?.on("data", (d) => (output += d));
    child.stderr?.on("data", (d) => (output += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function checkDownloads(dir: string): string | undefined {
  for (const [name, hash] of Object.entries(expected)) {
    const f = join(dir, name);
    if (!existsSync(f)) return `${name} missing`;
    if (sha(readFileSync(f)) !== hash) return `${name} differs (sha-256)`;
  }
  return undefined;
}

function mbit(output: string): string {
  const m = /([\d.]+) Mbit\/s/.exec(output) ?? /mbit_s=([\d.]+)/.exec(output);
  return m ? `${Number(m[1]).toFixed(0)} Mbit/s` : "";
}

async function case_(peer: string, direction: string, fn: () => Promise<string>): Promise<void> {
  try {
    const detail = await fn();
    rows.push({ peer, direction, ok: true, detail });
  } catch (err) {
    rows.push({ peer, direction, ok: false, detail: (err as Error).message.split("\n")[0].slice(0, 200) });
  } finally {
    for (const c of children.splice(0)) c.kill("SIGKILL");
  }
}

const urls = (port: number) => [`https://localhost:${port}/big.bin`, `https://localhost:${port}/small.txt`];

for (const [name, bin] of [
  ["quinn 0.9", peers.QUINN_PEER],
  ["quic-go 0.29", peers.QUICGO_PEER],
] as const) {
  await case_(name, "purequic client → peer server", async () => {
    const srv = await start(
      bin,
      ["server", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--root", www],
      /listening on [\d.]+:(\d+)/,
    );
    const dl = mkdtempSync(join(work, "dl-"));
    const r = await run(purequic, ["get", "-q", "--ca", cert, "--output", dl, ...urls(Number(srv.match[1]))]);
    if (r.code !== 0) throw new Error(`purequic get exited ${r.code}: ${r.output.trim()}`);
    const bad = checkDownloads(dl);
    if (bad) throw new Error(bad);
    const t = await run(purequic, ["get", "--ca", cert, "--output", dl, urls(Number(srv.match[1]))[0]]);
    return `sha-256 ok ${mbit(t.output)}`.trim();
  });
  await case_(name, "peer client → purequic server", async () => {
    const srv = await start(
      purequic,
      ["server", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--root", www],
      /listening on udp [\d.]+:(\d+)/,
    );
    const dl = mkdtempSync(join(work, "dl-"));
    const port = Number(srv.match[1]);
    const r = await run(bin, [
      "client",
      "--ca",
      cert,
      "--server-name",
      "localhost",
      "--output",
      dl,
      ...urls(port).map((u) => u.replace("localhost", "127.0.0.1")),
    ]);
    if (r.code !== 0) throw new Error(`peer client exited ${r.code}: ${r.output.trim().slice(-200)}`);
    const bad = checkDownloads(dl);
    if (bad) throw new Error(bad);
    return `sha-256 ok ${mbit(r.output)}`.trim();
  });
}

await case_("ngtcp2 0.12", "purequic client → gtlsserver (h3 handshake)", async () => {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const srv = spawn(peers.NGTCP2_SERVER, ["-q", "-d", www, "127.0.0.1", String(port), key, cert], {
    stdio: "ignore",
  });
  children.push(srv);
  await new Promise((r) => setTimeout(r, 500));
  const r = await run("npx", [
    "tsx",
    join(repo, "interop/handshake-client.ts"),
    "127.0.0.1",
    String(port),
    cert,
    "h3",
  ]);
  if (r.code !== 0 || !/handshake ok alpn=h3/.test(r.output))
    throw new Error(`handshake failed: ${r.output.trim().slice(-300)}`);
  return /handshake ok .*/.exec(r.output)?.[0] ?? "handshake ok";
});

await case_("ngtcp2 0.12", "gtlsclient → purequic server (h3 handshake)", async () => {
  const srv = await start(
    purequic,
    ["server", "--listen", "127.0.0.1:0", "--cert", cert, "--key", key, "--root", www, "--alpn", "h3"],
    /listening on udp [\d.]+:(\d+)/,
  );
  const port = srv.match[1];
  const r = await run(
    peers.NGTCP2_CLIENT,
    ["--exit-on-all-streams-close", "127.0.0.1", port, `https://localhost:${port}/small.txt`],
    20_000,
  );
  // gtlsclient exits 0 even on failure: read what it logged.
  if (!/QUIC handshake has completed/.test(r.output) || !/Negotiated ALPN is h3/.test(r.output)) {
    throw new Error(`no completed handshake in gtlsclient output: ${r.output.slice(-300)}`);
  }
  return "handshake completed, ALPN h3";
});

if (existsSync("/usr/lib/chromium/chromium")) {
  const { runChromiumCertHashChecks } = await import("./chromium/cert-hash.ts");
  for (const r of await runChromiumCertHashChecks()) {
    await case_(
      "Chromium 156",
      `WebTransport serverCertificateHashes with the dev certificate: ${r.name}`,
      async () => {
        if (!r.ok) throw new Error(r.detail);
        return r.detail;
      },
    );
  }
} else {
  rows.push({
    peer: "Chromium",
    direction: "dev certificate via serverCertificateHashes",
    ok: false,
    detail: "chromium not installed: run interop/chromium/install.sh",
  });
}

rmSync(work, { recursive: true, force: true });

const passed = rows.filter((r) => r.ok).length;
const table = [
  "| peer | case | result |",
  "|---|---|---|",
  ...rows.map((r) => `| ${r.peer} | ${r.direction} | ${r.ok ? "✓" : "✗"} ${r.detail} |`),
].join("\n");
process.stdout.write(`${table}\n\n`);

if (!values["no-write"]) {
  const doc = join(repo, "docs/INTEROP.md");
  const section = [
    "<!-- interop:smoke:start -->",
    `Written by \`npx tsx interop/smoke.ts\` on ${new Date().toISOString().slice(0, 10)} (Node ${process.version}, ${size} byte transfer, loopback).`,
    "",
    table,
    "<!-- interop:smoke:end -->",
  ].join("\n");
  let text = existsSync(doc) ? readFileSync(doc, "utf8") : "# Interoperability\n\n";
  if (text.includes("<!-- interop:smoke:start -->")) {
    text = text.replace(/<!-- interop:smoke:start -->[\s\S]*<!-- interop:smoke:end -->/, section);
  } else text += `\n## Smoke test against real peers\n\n${section}\n`;
  writeFileSync(doc, text);
}

process.stdout.write(`interop smoke: ${passed} passed, ${rows.length - passed} failed\n`);
process.exit(passed === rows.length ? 0 : 1);
