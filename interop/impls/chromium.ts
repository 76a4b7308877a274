/**
 * Chromium (Debian's, Google QUICHE inside) as an HTTP/3 client in the interop matrix, driven by
 * playwright-core: a page of the server's origin fetch()es the case's files and hands their bytes
 * back, which are written to the downloads folder for the matrix's byte-for-byte check. Every
 * response must have come over h3 (Resource Timing's nextHopProtocol). Client only: a browser
 * has no server role. Chromium trusts the self-signed test certificate only through its SPKI hash
 * (`--ignore-certificate-errors-spki-list`); `localhost` is mapped to the case's address.
 * Chromium 156 follows a server's preferred_address with no flag or connection option
 * (connectionmigration: it validates the address, retires the handshake connection ID, moves).
 */
import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Impl } from "../matrix.ts";
import { versionNegotiationReachedClient } from "../peer-bug-evidence.ts";

export const CHROMIUM_BIN = "/usr/lib/chromium/chromium";

/** Launch flags every headless Chromium run here shares (no background traffic, GPU or sandbox). */
export const CHROMIUM_HEADLESS_ARGS: readonly string[] = [
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--no-sandbox",
];

/** A path that no case serves: navigating to it gives a 404 page of the server's origin. */
const PROBE = "/.chromium-probe";

interface PageResult {
  files: { path: string; status: number; base64: string }[];
  protocols: string[];
  entries: number;
  error?: string;
}

/**
 * Requests in flight at once: Chromium fails a page's fetch()es with ERR_INSUFFICIENT_RESOURCES
 * beyond a few hundred outstanding requests (multiplexing has 1999).
 */
const MAX_PARALLEL = 100;

/**
 * The page's script (a string: tsx's helpers do not exist in the page and there is no DOM lib):
 * fetches every path (at most MAX_PARALLEL at once) and returns status, body (base64) and the protocols used.
 */
function fetchScript(paths: string[]): string {
  return `(async () => {
  performance.setResourceTimingBufferSize(100000);
  const b64 = (buf) => {
    const u = new Uint8Array(buf);
    let s = "";
    for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const out = { files: [], protocols: [], entries: 0 };
  try {
    const paths = ${JSON.stringify(paths)};
    let next = 0;
    const worker = async () => {
      while (next < paths.length) {
        const path = paths[next++];
        const res = await fetch(path, { cache: "no-store" });
        out.files.push({ path, status: res.status, base64: b64(await res.arrayBuffer()) });
      }
    };
    await Promise.all(Array.from({ length: Math.min(${MAX_PARALLEL}, paths.length) }, worker));
    const entries = performance.getEntriesByType("resource").concat(performance.getEntriesByType("navigation"));
    out.entries = entries.length;
    out.protocols = [...new Set(entries.map((e) => e.nextHopProtocol))];
  } catch (e) {
    out.error = String(e);
  }
  return out;
})()`;
}

export function chromiumClient(bin = CHROMIUM_BIN): Impl {
  return {
    name: "chromium",
    version: chromiumVersion(bin),
    isPurequic: false,
    unsupported: {
      resumption: "a page cannot make Chromium close a connection and open a new one that resumes",
      zerortt: "a page cannot make Chromium close a connection and open a new one in 0-RTT",
      keyupdate: "Chromium cannot be told to initiate a key update",
      versionnegotiation: "Chromium cannot be told to start with an unknown QUIC version",
      // Seen in its net-log: the ClientHello goes out as CRYPTO [0,55)+[1026,1938) and [55,1026),
      // the drop list removes the second datagram and every retransmission of it (PTOs at 0.5,
      // 1.5, 3.4 s), and Chromium closes at its 4 s handshake idle timeout ("No recent network
      // activity after 4000605us"): the server never has a whole ClientHello to answer.
      amplificationlimit:
        "Chromium's ClientHello (ML-KEM key share) spans 2 datagrams: the scenario drops the second and all its retransmissions until Chromium's 4 s handshake timeout",
      // Seen in purequic's qlog: with --quic-version=RFCv1,RFCv2 Chromium's version_information
      // lists only v1 and a GREASE version; started with RFCv2 alone it speaks v2 from its first
      // Initial (which works with purequic) — neither is the runner's upgrade from v1.
      v2: "Chromium 156 does not offer v2 in a v1 Initial's version_information, so there is no compatible upgrade to test",
    },
    // Seen 2026-12-07 in Chromium's net-log (CHROMIUM_NETLOG=1): the relay corrupted the version
    // field of its first Initial, purequic answered with Version Negotiation (RFC 9000 §6.1), and
    // Chromium closed with QUIC_INVALID_VERSION_NEGOTIATION_PACKET ("Server already supports
    // client's version RFCv1 and should have accepted the connection") instead of discarding the
    // VN packet as RFC 9000 §6.2 requires of a VN that lists the client's version.
    // Signature in a run: the relay forwarded a Version Negotiation packet toward Chromium.
    knownBugsAsClient: {
      handshakecorruption: {
        reason:
          "Chromium abandons the connection on a Version Negotiation that lists its own version (sent for an Initial whose version field the relay corrupted) instead of discarding it (RFC 9000 §6.2)",
        seen: versionNegotiationReachedClient,
      },
    },
    unsupportedAsServer: { "*": "a browser is only a client" },
    async server() {
      throw new Error("chromium has no server role");
    },
    async client(ctx, port, urls) {
      const { chromium } = await import("playwright-core");
      const certPem = readFileSync(ctx.cert, "utf8");
      const spki = createHash("sha256")
        .update(new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" }))
        .digest("base64");
      const address = ctx.host.includes(":") ? `[${ctx.host}]` : ctx.host;
      const origin = `https://localhost:${port}`;
      let output = "";
      const browser = await chromium.launch({
        executablePath: bin,
        args: [
          "--enable-quic",
          `--origin-to-force-quic-on=localhost:${port}`,
          `--ignore-certificate-errors-spki-list=${spki}`,
          `--host-resolver-rules=MAP localhost ${address}, MAP * ~NOTFOUND, EXCLUDE ${address}`,
          ...CHROMIUM_HEADLESS_ARGS,
          // Debugging: CHROMIUM_NETLOG=1 writes Chromium's net-log (QUIC events) into the run's folder.
          ...(process.env.CHROMIUM_NETLOG ? [`--log-net-log=${join(ctx.dir, "chromium-netlog.json")}`] : []),
        ],
      });
      const fetchIn = async (paths: string[]): Promise<string | undefined> => {
        // A new browser context has its own network session: a new QUIC connection.
        const context = await browser.newContext();
        try {
          const page = await context.newPage();
          page.on("console", (m) => (output += `[console] ${m.text()}\n`));
          const nav = await page.goto(`${origin}${PROBE}`);
          output += `navigation ${origin}${PROBE}: ${nav?.status()}\n`;
          const r = (await page.evaluate(fetchScript(paths.map((p) => `/${p}`)))) as PageResult;
          if (r.error) return `fetch failed in the page: ${r.error}`;
          for (const f of r.files) {
            if (f.status !== 200) return `${f.path}: status ${f.status}`;
            writeFileSync(join(ctx.downloads, basename(f.path)), Buffer.from(f.base64, "base64"));
          }
          output += `${r.files.length} files; ${r.entries} timing entries, protocols ${r.protocols.join(",")}\n`;
          if (r.protocols.join() !== "h3") return `protocols used: ${r.protocols.join(",")} (want only h3)`;
          return undefined;
        } finally {
          await context.close();
        }
      };
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((resolve) => {
        timer = setTimeout(
          () => resolve(`timed out after ${ctx.testCase.timeoutMs} ms`),
          ctx.testCase.timeoutMs,
        );
      });
      try {
        const work = async () => {
          if (ctx.testCase.connections !== "each") return fetchIn(urls);
          for (const u of urls) {
            const problem = await fetchIn([u]);
            if (problem) return problem;
          }
          return undefined;
        };
        const problem = await Promise.race([work(), timeout]);
        if (problem) return { code: 1, output: `${output}${problem}\n` };
        return { code: 0, output };
      } catch (err) {
        return { code: 1, output: `${output}${(err as Error).message}\n` };
      } finally {
        clearTimeout(timer);
        await browser.close();
      }
    },
  };
}

/** The version of Debian's chromium package (e.g. 156.0.7779.96), or "?". */
function chromiumVersion(bin: string): string {
  if (!existsSync(bin)) return "?";
  try {
    const v = execFileSync("dpkg-query", ["-W", `-f=${"$"}{Version}`, "chromium"], { encoding: "utf8" });
    return /^(?:\d+:)?([\d.]+)/.exec(v)?.[1] ?? "?";
  } catch {
    return "?";
  }
}
