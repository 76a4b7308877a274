/**
 * WebTransport interop with a real Chromium (headless, playwright-core, Debian's
 * /usr/lib/chromium/chromium; interop/chromium/install.sh installs both) against purequic's
 * WebTransport server (src/webtransport/server.ts) with its generated development certificate:
 *
 *   certificate hashes  the page comes from a plain-HTTP loopback server (a secure context); the
 *                       session uses `serverCertificateHashes` with the SHA-256 of purequic's dev
 *                       certificate. No certificate flags.
 *   SPKI flag           the page itself is served by purequic over HTTP/3 (--origin-to-force-quic-on,
 *                       --ignore-certificate-errors-spki-list); the session has no hashes.
 *
 * In each mode the page (interop/chromium/webtransport-page.ts) checks: session established,
 * bidi echo, uni streams both ways, datagram echo, 10 MB over one stream (SHA-256), 100
 * concurrent streams, the page's close (the server must see code 7 and its reason) and a
 * server-initiated close (the page must see code 4000 and "closed by purequic").
 *
 *   demo                `bin/purequic server` (the CLI, as `npm start` runs it): Chromium is started
 *                       with the flags the server prints, opens its /webtransport.html demo page and
 *                       uses its echo (bidi, uni, datagram) and chat endpoints.
 *
 * Prints a table and "N passed, M failed"; exits non-zero on any failure. Writes the table into
 * docs/INTEROP.md between <!-- interop:webtransport:start/end --> unless --no-write.
 *
 *   npx tsx interop/webtransport.ts [--mode hashes|spki|demo]... [--chromium PATH] [--no-write] [--verbose]
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { listen } from "../src/quic/api.ts";
import { echoSession } from "../src/webtransport/echo.ts";
import { serveWebTransport } from "../src/webtransport/server.ts";
import type { WebTransportCloseInfo } from "../src/webtransport/session-interface.ts";
import { DEFAULT_CHROMIUM } from "./chromium/cert-hash.ts";
import { WEBTRANSPORT_PAGE_SCRIPT } from "./chromium/webtransport-page.ts";
import { CHROMIUM_HEADLESS_ARGS } from "./impls/chromium.ts";
import { purequicBin, repo, startUntil } from "./lib.ts";

const { values } = parseArgs({
  options: {
    mode: { type: "string", multiple: true },
    chromium: { type: "string" },
    "no-write": { type: "boolean" },
    verbose: { type: "boolean" },
  },
});
type Mode = "hashes" | "spki" | "demo";
const modes = (values.mode ?? ["hashes", "spki", "demo"]) as Mode[];
for (const m of modes)
  if (m !== "hashes" && m !== "spki" && m !== "demo") throw new Error(`--mode hashes|spki|demo, not ${m}`);
const chromiumPath = values.chromium ?? DEFAULT_CHROMIUM;
const log = (l: string) => {
  if (values.verbose) process.stderr.write(`${l}\n`);
};

interface Row {
  mode: string;
  check: string;
  ok: boolean;
  detail: string;
}
const rows: Row[] = [];
const MODE_NAME: Record<Mode, string> = {
  hashes: "serverCertificateHashes",
  spki: "SPKI flag, page over h3",
  demo: "purequic server demo page",
};

const PAGE = `<!doctype html><meta charset=utf-8><title>purequic WebTransport interop</title><p id=p>purequic</p><script>${WEBTRANSPORT_PAGE_SCRIPT}</script>`;

function startHttp(): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer((_, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(PAGE);
    });
    s.listen(0, "127.0.0.1", () => resolve(s));
  });
}

/** The CLI server's demo page, with the Chromium flags the server prints. */
async function runDemo(): Promise<void> {
  const name = MODE_NAME.demo;
  const { child, output } = await startUntil(
    purequicBin,
    ["server", "--listen", "127.0.0.1:0"],
    /open it in Chromium with\n\s+chromium (.*) (https:\S+)\n/,
  );
  const m = /open it in Chromium with\n\s+chromium (.*) (https:\S+)\n/.exec(output())!;
  const flags = m[1].split(" ");
  const pageUrl = m[2];
  log(`[demo] chromium ${flags.join(" ")} ${pageUrl}`);
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      ...flags,
      "--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebTransport",
      "--no-sandbox",
    ],
  });
  try {
    const page = await browser.newPage();
    page.on("console", (c) => log(`[console] ${c.type()}: ${c.text()}`));
    const nav = await page.goto(pageUrl, { timeout: 20_000 });
    await page.waitForFunction("window.demo && (window.demo.ready || window.demo.error)", undefined, {
      timeout: 20_000,
    });
    const error = await page.evaluate("window.demo.error");
    if (error) throw new Error(`demo page: ${error}`);
    rows.push({
      mode: name,
      check: "page load + sessions",
      ok: nav?.status() === 200,
      detail: `${pageUrl} (flags as printed by the server): echo and chat sessions ready`,
    });
    await page.fill("#msg", "demo message");
    for (const b of ["#bidi", "#uni", "#dgram"]) await page.click(b);
    // The datagram may be lost: click again until it came back (loopback: first time).
    for (let i = 0; i < 10; i++) {
      const done = await page.evaluate("window.demo.echoed.some((e) => e.startsWith('datagram:'))");
      if (done) break;
      await page.click("#dgram");
      await new Promise((r) => setTimeout(r, 300));
    }
    await page.waitForFunction(
      "['bidi', 'uni', 'datagram'].every((k) => window.demo.echoed.includes(k + ':demo message'))",
      undefined,
      { timeout: 10_000 },
    );
    rows.push({
      mode: name,
      check: "echo",
      ok: true,
      detail: String(await page.evaluate("window.demo.echoed.join(', ')")),
    });
    await page.fill("#name", "chromium");
    await page.fill("#say", "hi room");
    await page.click("#send");
    await page.waitForFunction("window.demo.chat.includes('chromium: hi room')", undefined, {
      timeout: 10_000,
    });
    rows.push({
      mode: name,
      check: "chat",
      ok: true,
      detail: "message broadcast back to the page: chromium: hi room",
    });
  } catch (err) {
    rows.push({ mode: name, check: "run", ok: false, detail: String(err).split("\n")[0] });
  } finally {
    await browser.close().catch(() => {});
    child.kill("SIGTERM");
  }
}

async function runMode(mode: Mode): Promise<void> {
  if (mode === "demo") return runDemo();
  const quic = await listen({ host: "127.0.0.1", port: 0, alpn: ["h3"] });
  const dev = quic.devCertificate!;
  const pageCloses: WebTransportCloseInfo[] = [];
  const origins: (string | undefined)[] = [];
  const server = serveWebTransport(
    quic,
    {
      accept: (req) => {
        origins.push(`${req.origin} (${req.version === "draft02" ? "draft-02" : "current draft"})`);
        log(`[server] CONNECT ${req.url} origin=${req.origin}`);
        return req.url.pathname === "/webtransport/echo" || req.url.pathname === "/webtransport/close-me"
          ? true
          : 404;
      },
      onSession: (session, req) => {
        if (req.url.pathname === "/webtransport/close-me") {
          setTimeout(() => session.close(4000, "closed by purequic"), 200);
        } else {
          void echoSession(session);
          void session.closed.then((info) => {
            log(`[server] echo session closed ${JSON.stringify(info)}`);
            pageCloses.push(info);
          });
        }
      },
      onError: (e) => log(`[server] error ${String(e)}`),
    },
    () =>
      new Response(PAGE, {
        headers: { "content-type": "text/html; charset=utf-8" },
      }),
  );
  const port = quic.address.port;
  let http: Server | undefined;
  const args = [
    "--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebTransport",
    ...CHROMIUM_HEADLESS_ARGS,
  ];
  let pageUrl: string;
  let base: string;
  let hashHex = "";
  if (mode === "hashes") {
    http = await startHttp();
    pageUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    base = `https://127.0.0.1:${port}`;
    hashHex = dev.certificateSha256Hex;
    args.push("--host-resolver-rules=MAP localhost 127.0.0.1");
  } else {
    pageUrl = `https://localhost:${port}/`;
    base = `https://localhost:${port}`;
    args.push(
      "--enable-quic",
      `--origin-to-force-quic-on=localhost:${port}`,
      `--ignore-certificate-errors-spki-list=${dev.spkiSha256Base64}`,
      "--host-resolver-rules=MAP localhost 127.0.0.1",
    );
  }
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args });
  const name = MODE_NAME[mode];
  try {
    const page = await browser.newPage();
    page.on("console", (m) => log(`[console] ${m.type()}: ${m.text()}`));
    const nav = await page.goto(pageUrl, { timeout: 20_000 });
    const proto = String(
      await page.evaluate(`performance.getEntriesByType("navigation").map((e) => e.nextHopProtocol).join()`),
    );
    rows.push({
      mode: name,
      check: "page load",
      ok: nav?.status() === 200,
      detail: `${pageUrl} status ${nav?.status()} over ${proto}, Chromium ${browser.version()}`,
    });
    const results = (await page.evaluate(
      `runWebTransportChecks(${JSON.stringify(base)}, ${JSON.stringify(hashHex)})`,
    )) as Record<string, { ok: boolean; detail: string; ms: number }>;
    for (const [check, r] of Object.entries(results)) {
      let { ok, detail } = r;
      if (check === "session established" && ok) detail = `ready; the server saw origin ${origins[0]}`;
      if (check === "page close" && ok) {
        // What matters is what the server saw.
        for (let i = 0; i < 50 && pageCloses.length === 0; i++)
          await new Promise((res) => setTimeout(res, 100));
        const seen = pageCloses[0];
        ok = seen !== undefined && seen.code === 7 && seen.reason === "bye from the page" && seen.remote;
        detail = `page got ${detail}; server saw ${JSON.stringify(seen)}`;
      }
      rows.push({ mode: name, check, ok, detail: `${detail} (${r.ms} ms)` });
    }
  } catch (err) {
    rows.push({ mode: name, check: "run", ok: false, detail: String(err) });
  } finally {
    await browser.close().catch(() => {});
    await server.close().catch(() => {});
    http?.close();
  }
}

if (!existsSync(chromiumPath)) {
  rows.push({
    mode: "-",
    check: "Chromium",
    ok: false,
    detail: `${chromiumPath} missing: run interop/chromium/install.sh`,
  });
} else {
  for (const m of modes) await runMode(m);
}

const passed = rows.filter((r) => r.ok).length;
const table = [
  "| mode | check | result |",
  "|---|---|---|",
  ...rows.map((r) => `| ${r.mode} | ${r.check} | ${r.ok ? "✓" : "✗"} ${r.detail.replaceAll("|", "\\|")} |`),
].join("\n");
process.stdout.write(`${table}\n`);
if (!values["no-write"]) {
  const doc = join(repo, "docs/INTEROP.md");
  const section = [
    "<!-- interop:webtransport:start -->",
    `Written by \`npx tsx interop/webtransport.ts\` on ${new Date().toISOString().slice(0, 10)} (Node ${process.version}, loopback, headless Chromium, WebTransport draft-02).`,
    "",
    table,
    "<!-- interop:webtransport:end -->",
  ].join("\n");
  let text = existsSync(doc) ? readFileSync(doc, "utf8") : "# Interoperability\n\n";
  if (text.includes("<!-- interop:webtransport:start -->")) {
    text = text.replace(
      /<!-- interop:webtransport:start -->[\s\S]*<!-- interop:webtransport:end -->/,
      section,
    );
  } else text += `\n## WebTransport with Chromium\n\n${section}\n`;
  writeFileSync(doc, text);
}
process.stdout.write(`\n${passed} passed, ${rows.length - passed} failed\n`);
process.exit(passed === rows.length ? 0 : 1);
