/**
 * HTTP/3 interop against real peers (built by interop/peers/install.sh), every download checked
 * by size and SHA-256:
 *   purequic get (h3)               ← ngtcp2 gtlsserver                 (h3 only)
 *   ngtcp2 gtlsclient               → purequic server                   (it exits 0 even on failure)
 *   purequic get (h3)               ← quic-go 0.29 interop server       (TESTCASE=http3)
 *   quic-go 0.29 interop client     → purequic server                   (TESTCASE=http3)
 *   Chromium (headless)             → serveH3                           (page, fetch(), uploads)
 * plus a missing file (purequic get must fail with exit 1 on the 404). purequic offers and accepts
 * only ALPN "h3" here, so every transfer really is HTTP/3. The quic-go interop
 * endpoints need the runner's layout (/certs, /www, /downloads, /logs, port 443): as in
 * interop/peers/selftest.sh they run in chroot jails inside a private network + PID namespace
 * (`unshare`, root only; skipped otherwise). Prints a table and "N passed, M failed"; exits
 * non-zero on any failure. Writes the table into docs/INTEROP.md (its h3 section) unless
 * --no-write.
 *
 *   npx tsx interop/h3.ts [--size BYTES] [--files N] [--keep] [--no-write]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { makeTestCertificate, peersEnv, purequicBin as purequic, repo, startUntil } from "./lib.ts";

const { values } = parseArgs({
  options: {
    size: { type: "string" },
    files: { type: "string" },
    keep: { type: "boolean" },
    "no-write": { type: "boolean" },
  },
});
const size = Number(values.size ?? 5 * 1024 * 1024);
const smallFiles = Number(values.files ?? 5);

const peers = peersEnv();
const work = mkdtempSync(join(tmpdir(), "purequic-h3-interop-"));
const www = join(work, "www");
mkdirSync(www);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const expected = new Map<string, { size: number; sha: string }>();
const addFile = (name: string, data: Uint8Array) => {
  writeFileSync(join(www, name), data);
  expected.set(name, { size: data.length, sha: sha(data) });
};
addFile("big.bin", randomBytes(size));
for (let i = 0; i < smallFiles; i++)
  addFile(`small-${i}.txt`, new TextEncoder().encode(`small file ${i}\n`.repeat(i + 1)));
const names = [...expected.keys()];
const { cert, key } = makeTestCertificate(work);

interface Row {
  peer: string;
  direction: string;
  ok: boolean;
  detail: string;
}
const rows: Row[] = [];
const children: ChildProcess[] = [];

function run(cmd: string, args: string[], timeoutMs = 60_000, env?: NodeJS.ProcessEnv) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
    children.push(child);
    let output = "";
    child.stdout?.on("data", (d) => (output += d));
    child.stderr?.on("data", (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n[h3 interop] killed after ${timeoutMs} ms`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Undefined when every expected file (or `only`) is in `dir` with the right size and hash. */
function checkDownloads(dir: string, only: string[] = names): string | undefined {
  for (const name of only) {
    const path = join(dir, name);
    if (!existsSync(path)) return `${name} missing`;
    const data = readFileSync(path);
    const want = expected.get(name)!;
    if (data.length !== want.size) return `${name}: ${data.length} bytes, expected ${want.size}`;
    if (sha(data) !== want.sha) return `${name}: sha-256 mismatch`;
  }
  return undefined;
}

async function case_(peer: string, direction: string, fn: () => Promise<string>): Promise<void> {
  const t0 = performance.now();
  try {
    const detail = await fn();
    const secs = (performance.now() - t0) / 1000;
    rows.push({
      peer,
      direction,
      ok: true,
      detail: secs >= 0.05 ? `${detail} (${secs.toFixed(1)} s)` : detail,
    });
  } catch (err) {
    rows.push({ peer, direction, ok: false, detail: (err as Error).message.split("\n")[0].slice(0, 240) });
  } finally {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  }
}

const freePort = () => 20000 + Math.floor(Math.random() * 20000);
const urls = (port: number, host = "localhost") => names.map((n) => `https://${host}:${port}/${n}`);

// ---------------------------------------------------------------------------------------------
// ngtcp2

if (peers.NGTCP2_SERVER && existsSync(peers.NGTCP2_SERVER)) {
  await case_("ngtcp2 0.12", "purequic get (h3) ← gtlsserver", async () => {
    const port = freePort();
    const srv = spawn(peers.NGTCP2_SERVER, ["-q", "-d", www, "127.0.0.1", String(port), key, cert], {
      stdio: "ignore",
    });
    children.push(srv);
    await new Promise((r) => setTimeout(r, 500));
    const dl = mkdtempSync(join(work, "dl-"));
    const r = await run(purequic, ["get", "-q", "--alpn", "h3", "--ca", cert, "--output", dl, ...urls(port)]);
    if (r.code !== 0) throw new Error(`purequic get exited ${r.code}: ${r.output.trim().slice(-300)}`);
    const bad = checkDownloads(dl);
    if (bad) throw new Error(bad);
    const missing = await run(purequic, [
      "get",
      "-q",
      "--alpn",
      "h3",
      "--ca",
      cert,
      "--output",
      dl,
      `https://localhost:${port}/nope`,
    ]);
    if (missing.code !== 1) throw new Error(`a missing file gave exit ${missing.code}, expected 1`);
    return `${names.length} files, sha-256 ok; 404 → exit 1`;
  });
} else rows.push({ peer: "ngtcp2", direction: "gtlsserver", ok: false, detail: "not installed" });

if (peers.NGTCP2_CLIENT && existsSync(peers.NGTCP2_CLIENT)) {
  await case_("ngtcp2 0.12", "gtlsclient → purequic server (h3)", async () => {
    const srv = await startUntil(
      purequic,
      ["server", "--listen", "127.0.0.1:0", "--alpn", "h3", "--cert", cert, "--key", key, "--root", www],
      /listening on udp [\d.]+:(\d+)/,
    );
    children.push(srv.child);
    const port = Number(srv.match[1]);
    const dl = mkdtempSync(join(work, "dl-"));
    const r = await run(peers.NGTCP2_CLIENT, [
      "-q",
      "--exit-on-all-streams-close",
      "--download",
      dl,
      "127.0.0.1",
      String(port),
      ...urls(port),
    ]);
    // gtlsclient exits 0 even on failure: the files decide.
    const bad = checkDownloads(dl);
    if (bad) throw new Error(`${bad} (gtlsclient exit ${r.code}: ${r.output.trim().slice(-200)})`);
    return `${names.length} files, sha-256 ok`;
  });
} else rows.push({ peer: "ngtcp2", direction: "gtlsclient", ok: false, detail: "not installed" });

// ---------------------------------------------------------------------------------------------
// quic-go's interop endpoints (TESTCASE=http3) in jails

const canJail =
  process.getuid?.() === 0 &&
  ["unshare", "chroot", "ip"].every((c) =>
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].some((d) => existsSync(join(d, c))),
  ) &&
  !!peers.QUICGO_INTEROP_SERVER &&
  existsSync(peers.QUICGO_INTEROP_SERVER) &&
  !!peers.QUICGO_INTEROP_CLIENT &&
  existsSync(peers.QUICGO_INTEROP_CLIENT);

if (canJail) {
  for (const j of ["jail-server", "jail-client"]) {
    for (const d of ["bin", "certs", "www", "downloads", "logs"])
      mkdirSync(join(work, j, d), { recursive: true });
    copyFileSync(cert, join(work, j, "certs/cert.pem"));
    copyFileSync(key, join(work, j, "certs/priv.key"));
  }
  copyFileSync(peers.QUICGO_INTEROP_SERVER, join(work, "jail-server/bin/server"));
  copyFileSync(peers.QUICGO_INTEROP_CLIENT, join(work, "jail-client/bin/client"));
  for (const n of names) copyFileSync(join(www, n), join(work, "jail-server/www", n));
  const dlA = join(work, "dl-quicgo-server");
  mkdirSync(dlA);
  const script = join(work, "netns.sh");
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  writeFileSync(
    script,
    `set -u
ip link set lo up || exit 99
wait_udp443() {
  for i in $(seq 1 100); do
    ss -Huln 'sport = :443' 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  return 1
}
# A: purequic get (h3) <- quic-go interop server
( cd / && TESTCASE=http3 QLOGDIR=/logs/qlog exec chroot ${q(join(work, "jail-server"))} /bin/server ) >${q(join(work, "quicgo-server.log"))} 2>&1 &
SP=$!
if wait_udp443; then
  t0=$EPOCHREALTIME
  timeout -k 5 60 ${q(purequic)} get -q --alpn h3 --ca ${q(cert)} --output ${q(dlA)} ${names.map((n) => q(`https://localhost:443/${n}`)).join(" ")} >${q(join(work, "A.log"))} 2>&1
  rc=$?
  echo "A rc=$rc secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
else
  echo "A rc=server-did-not-start"
fi
kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null
# B: quic-go interop client -> purequic server on :443
${q(purequic)} server --listen 127.0.0.1:443 --alpn h3 --cert ${q(cert)} --key ${q(key)} --root ${q(www)} >${q(join(work, "purequic-server.log"))} 2>&1 &
SP=$!
if wait_udp443; then
  t0=$EPOCHREALTIME
  TESTCASE=http3 QLOGDIR=/logs/qlog timeout -k 5 60 chroot ${q(join(work, "jail-client"))} /bin/client ${names.map((n) => q(`https://127.0.0.1:443/${n}`)).join(" ")} >${q(join(work, "B.log"))} 2>&1
  rc=$?
  echo "B rc=$rc secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
else
  echo "B rc=server-did-not-start"
fi
kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null
exit 0
`,
  );
  chmodSync(script, 0o755);
  const out = await run("unshare", ["--net", "--pid", "--fork", "--kill-child", "bash", script], 200_000);
  const rc = (k: string) => new RegExp(`^${k} rc=(\\S+)`, "m").exec(out.output)?.[1];
  const secs = (k: string) => new RegExp(`^${k} rc=\\S+ secs=(\\S+)`, "m").exec(out.output)?.[1] ?? "?";
  const tail = (f: string) =>
    existsSync(join(work, f)) ? readFileSync(join(work, f), "utf8").trim().slice(-200) : "";
  await case_("quic-go 0.29", "purequic get (h3) ← interop server (TESTCASE=http3)", async () => {
    if (rc("A") !== "0")
      throw new Error(`purequic get exit ${rc("A") ?? "?"}: ${tail("A.log") || out.output.slice(-200)}`);
    const bad = checkDownloads(dlA);
    if (bad) throw new Error(bad);
    return `${names.length} files, sha-256 ok in ${secs("A")} s, in a netns`;
  });
  await case_("quic-go 0.29", "interop client (TESTCASE=http3) → purequic server", async () => {
    if (rc("B") !== "0")
      throw new Error(`client exit ${rc("B") ?? "?"}: ${tail("B.log") || out.output.slice(-200)}`);
    const bad = checkDownloads(join(work, "jail-client/downloads"));
    if (bad) throw new Error(bad);
    return `${names.length} files, sha-256 ok in ${secs("B")} s, in a netns`;
  });
} else {
  rows.push({
    peer: "quic-go 0.29",
    direction: "interop endpoints (TESTCASE=http3)",
    ok: false,
    detail: "skipped: needs root, unshare/chroot/ip and interop/peers/install.sh quic-go",
  });
}

// ---------------------------------------------------------------------------------------------
// Chromium (headless, playwright-core) → serveH3: navigation, download, uploads, concurrency

const CHROMIUM = "/usr/lib/chromium/chromium";
const PAGE_SCRIPT = `(async () => {
  const hex = async (b) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b)),
    (x) => x.toString(16).padStart(2, "0")).join("");
  const big = await (await fetch("/big.bin")).arrayBuffer();
  const upload = new Uint8Array(1 << 20).map((_, i) => i * 7);
  const echoed = await (await fetch("/echo", { method: "POST", body: upload })).arrayBuffer();
  const many = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    fetch("/echo", { method: "POST", body: "x".repeat(i * 1000) })
      .then((res) => res.text()).then((t) => t.length === i * 1000)));
  const missing = (await fetch("/missing")).status;
  const protocols = performance.getEntriesByType("resource")
    .concat(performance.getEntriesByType("navigation")).map((e) => e.nextHopProtocol);
  return {
    text: document.getElementById("p")?.textContent ?? null,
    bigSha: await hex(big),
    echoOk: (await hex(echoed)) === (await hex(upload.buffer)),
    many: many.every(Boolean),
    missing,
    protocols: [...new Set(protocols)],
  };
})()`;
if (existsSync(CHROMIUM)) {
  await case_("Chromium", "page + fetch() over h3 → serveH3 (library)", async () => {
    const { chromium } = await import("playwright-core");
    const { listen } = await import("../src/quic/api.ts");
    const { serveH3 } = await import("../src/h3/server.ts");
    const big = readFileSync(join(www, "big.bin"));
    const quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
    const server = serveH3(quic, async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/") {
        return new Response("<!doctype html><title>h3</title><p id=p>hello from purequic</p>", {
          headers: { "content-type": "text/html" },
        });
      }
      if (path === "/big.bin")
        return new Response(big, { headers: { "content-length": String(big.length) } });
      if (path === "/echo") return new Response(new Uint8Array(await req.arrayBuffer()));
      return null;
    });
    const port = quic.address.port;
    // Chromium only trusts a self-signed certificate for QUIC through its SPKI hash.
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--enable-quic",
        `--origin-to-force-quic-on=localhost:${port}`,
        `--ignore-certificate-errors-spki-list=${quic.devCertificate!.spkiSha256Base64}`,
        "--host-resolver-rules=MAP localhost 127.0.0.1",
        "--no-sandbox",
      ],
    });
    try {
      const page = await browser.newPage();
      const nav = await page.goto(`https://localhost:${port}/`);
      if (nav?.status() !== 200) throw new Error(`navigation status ${nav?.status()}`);
      // A string, not a function: tsx's helpers do not exist in the page, and there is no DOM lib.
      const r = (await page.evaluate(PAGE_SCRIPT)) as {
        text: string | null;
        bigSha: string;
        echoOk: boolean;
        many: boolean;
        missing: number;
        protocols: string[];
      };
      if (r.text !== "hello from purequic") throw new Error(`page text ${r.text}`);
      if (r.bigSha !== expected.get("big.bin")!.sha) throw new Error("big.bin sha-256 mismatch");
      if (!r.echoOk) throw new Error("1 MB POST echo mismatch");
      if (!r.many) throw new Error("30 concurrent POSTs: wrong bodies");
      if (r.missing !== 404) throw new Error(`missing file gave ${r.missing}`);
      if (r.protocols.join() !== "h3") throw new Error(`protocols used: ${r.protocols.join()}`);
      return "navigation, big.bin sha-256 ok, 1 MB POST echo, 30 concurrent POSTs, 404; nextHopProtocol h3";
    } finally {
      await browser.close();
      await server.close();
    }
  });
} else rows.push({ peer: "Chromium", direction: "fetch over h3", ok: false, detail: "not installed" });

if (!values.keep) rmSync(work, { recursive: true, force: true });
else process.stdout.write(`kept ${work}\n`);

const passed = rows.filter((r) => r.ok).length;
const table = [
  "| peer | case | result |",
  "|---|---|---|",
  ...rows.map((r) => `| ${r.peer} | ${r.direction} | ${r.ok ? "✓" : "✗"} ${r.detail} |`),
].join("\n");
process.stdout.write(table);
if (!values["no-write"]) {
  const doc = join(repo, "docs/INTEROP.md");
  const section = [
    "<!-- interop:h3:start -->",
    `Written by \`npx tsx interop/h3.ts\` on ${new Date().toISOString().slice(0, 10)} (Node ${process.version}, ${size} byte file + ${smallFiles} small ones, loopback).`,
    "",
    table,
    "<!-- interop:h3:end -->",
  ].join("\n");
  let text = existsSync(doc) ? readFileSync(doc, "utf8") : "# Interoperability\n\n";
  if (text.includes("<!-- interop:h3:start -->")) {
    text = text.replace(/<!-- interop:h3:start -->[\s\S]*<!-- interop:h3:end -->/, section);
  } else text += `\n## HTTP/3 against real peers\n\n${section}\n`;
  writeFileSync(doc, text);
}
process.stdout.write(`\n\n${passed} passed, ${rows.length - passed} failed\n`);
process.exit(passed === rows.length ? 0 : 1);
