/**
 * HTTP/3 interop against real peers (built by interop/peers/install.sh), every transfer checked
 * by size and SHA-256. Cases (issue 7 item 6), per peer and role:
 *
 *   ngtcp2 0.12 (gtlsserver / gtlsclient, nghttp3):
 *     purequic get → gtlsserver       GET of several files + a large one, concurrently; 404 → exit 1
 *     purequic fetch → gtlsserver     POST upload with request trailers; ngtcp2's response trailers
 *     gtlsclient → purequic server    GET of several files + a large one (the CLI server)
 *     gtlsclient → serveH3            concurrent POST uploads echoed; our response trailers
 *   quic-go 0.29 (its interop-runner endpoints, TESTCASE=http3, in netns jails):
 *     purequic get → interop server   GET of several files + a large one, concurrently
 *     interop client → purequic       the same, other direction (the CLI server)
 *   quic-go 0.29 http3 (our peer on its http3 package, interop/h3-quicgo/main.go, built here):
 *     purequic fetch → peer server    concurrent POST uploads echoed (+ request trailers); GETs
 *     peer client → serveH3           concurrent POST uploads echoed
 *   Chromium (headless, playwright-core) → serveH3:
 *     page, 50 MiB download, uploads (buffered and streamed), 30 concurrent requests, 404, bodies
 *     whose FIN comes 300 ms late; every resource's nextHopProtocol is "h3". Responses whose
 *     trailers come 300 ms late are counted, not checked: Chromium's bug (below)
 *
 * What the peers' tools cannot do is said in the table's notes (docs/INTEROP.md): gtlsserver
 * answers any method with the file at the path and does not print request trailers; quic-go's
 * interop endpoints only GET (http.FileServer); quic-go 0.29's http3 has no trailers; Chromium's
 * fetch() sends no request trailers and does not expose response trailers, and Chromium 156 fails
 * a response whose trailers arrive while its read of the (fully delivered) body is pending: a
 * Chromium bug, the evidence is in the notes (issue 7).
 *
 * purequic offers and accepts only ALPN "h3" here. The quic-go interop endpoints need the runner's
 * layout (/certs, /www, /downloads, /logs, port 443): as in interop/peers/selftest.sh they run in
 * chroot jails inside a private network + PID namespace (`unshare`, root only; skipped
 * otherwise). Prints a table and "N passed, M failed"; exits non-zero on any failure. Writes the
 * table into docs/INTEROP.md (its h3 section) unless --no-write.
 *
 *   npx tsx interop/h3.ts [--size BYTES] [--files N] [--upload BYTES] [--only ngtcp2,quic-go,chromium]
 *                         [--keep] [--no-write]
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CHROMIUM_HEADLESS_ARGS } from "./impls/chromium.ts";
import { makeTestCertificate, peersEnv, purequicBin as purequic, repo, startUntil } from "./lib.ts";

const { values } = parseArgs({
  options: {
    size: { type: "string" },
    files: { type: "string" },
    upload: { type: "string" },
    only: { type: "string" },
    keep: { type: "boolean" },
    "no-write": { type: "boolean" },
  },
});
const size = Number(values.size ?? 50 * 1024 * 1024);
const smallFiles = Number(values.files ?? 10);
const uploadSize = Number(values.upload ?? 5 * 1024 * 1024);
const only = values.only?.split(",");
const wanted = (peer: string) => only === undefined || only.includes(peer);
const MiB = (n: number) => `${+(n / 1048576).toFixed(1)} MiB`;

const peers = peersEnv();
const work = mkdtempSync(join(tmpdir(), "purequic-h3-interop-"));
const www = join(work, "www");
mkdirSync(www);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const expected = new Map<string, { size: number; sha: string }>();
const contents = new Map<string, Uint8Array>();
const addFile = (name: string, data: Uint8Array) => {
  writeFileSync(join(www, name), data);
  expected.set(name, { size: data.length, sha: sha(data) });
  contents.set(name, data);
};
addFile("big.bin", randomBytes(size));
for (let i = 0; i < smallFiles; i++)
  addFile(`small-${i}.txt`, new TextEncoder().encode(`small file ${i}\n`.repeat(50 * (i + 1))));
const names = [...expected.keys()];
const upload = randomBytes(uploadSize);
const uploadSha = sha(upload);
writeFileSync(join(work, "upload.bin"), upload);
const { cert, key } = makeTestCertificate(work);
const certPem = readFileSync(cert, "utf8");
const spkiSha256Base64 = createHash("sha256")
  .update(new X509Certificate(certPem).publicKey.export({ type: "spki", format: "der" }))
  .digest("base64");
const filesLabel = `${names.length} files (${MiB(size)} + ${smallFiles} small)`;

interface Row {
  peer: string;
  roles: string;
  name: string;
  ok: boolean;
  detail: string;
  secs: number | undefined;
}
const rows: Row[] = [];
const children: ChildProcess[] = [];

function run(cmd: string, args: string[], timeoutMs = 90_000, logFile?: string) {
  return new Promise<{ code: number | null; output: string }>((resolve) => {
    const fd = logFile === undefined ? undefined : openSync(logFile, "w");
    const child = spawn(cmd, args, {
      stdio: fd === undefined ? ["ignore", "pipe", "pipe"] : ["ignore", fd, fd],
    });
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
      if (fd !== undefined) closeSync(fd);
      resolve({ code, output: logFile === undefined ? output : readFileSync(logFile, "utf8") });
    });
  });
}

/** Undefined when every expected file (or `only`) is in `dir` with the right size and hash. */
function checkDownloads(dir: string, list: string[] = names): string | undefined {
  for (const name of list) {
    const path = join(dir, name);
    if (!existsSync(path)) return `${name} missing`;
    const data = readFileSync(path);
    const want = expected.get(name)!;
    if (data.length !== want.size) return `${name}: ${data.length} bytes, expected ${want.size}`;
    if (sha(data) !== want.sha) return `${name}: sha-256 mismatch`;
  }
  return undefined;
}

async function case_(
  peer: string,
  roles: string,
  name: string,
  fn: () => Promise<string>,
  secsOf?: () => number | undefined,
): Promise<void> {
  const t0 = performance.now();
  try {
    const detail = await fn();
    rows.push({ peer, roles, name, ok: true, detail, secs: secsOf?.() ?? (performance.now() - t0) / 1000 });
  } catch (err) {
    rows.push({
      peer,
      roles,
      name,
      ok: false,
      detail: (err as Error).message.split("\n")[0].slice(0, 240),
      secs: undefined,
    });
  } finally {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  }
}

const freePort = () => 20000 + Math.floor(Math.random() * 20000);
const urls = (port: number, host = "localhost") => names.map((n) => `https://${host}:${port}/${n}`);

// ---------------------------------------------------------------------------------------------
// purequic's library server (serveH3) for the cases the CLI server cannot serve: uploads echoed
// with their SHA-256 (headers and trailers), request trailers reported back, a page for Chromium.

const { listen } = await import("../src/quic/api.ts");
const { serveH3 } = await import("../src/h3/server.ts");
const { createH3Fetch } = await import("../src/h3/client.ts");
const serverStats = { active: 0, maxActive: 0, uploads: 0 };
const PAGE = "<!doctype html><title>h3</title><p id=p>hello from purequic</p>";
const LATE_BODY = new Uint8Array(65536).fill(0x61);
const LATE_MS = 300;
const quicServer = await listen({
  host: "127.0.0.1",
  port: 0,
  alpn: ["h3"],
  certificatePem: certPem,
  privateKeyPem: readFileSync(key, "utf8"),
});
const libServer = serveH3(
  quicServer,
  async (req, info) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST" || req.method === "PUT") {
      serverStats.active++;
      serverStats.maxActive = Math.max(serverStats.maxActive, serverStats.active);
      try {
        const body = new Uint8Array(await req.arrayBuffer());
        const requestTrailers = await info.trailers;
        serverStats.uploads++;
        const digest = sha(body);
        const headers: Record<string, string> = {
          "x-upload-sha256": digest,
          "x-upload-bytes": String(body.length),
        };
        for (const [n, v] of requestTrailers) headers[`x-request-trailer-${n}`] = v;
        // Trailers only under /echo-trailers/: Chromium fails on them (see the notes).
        if (!path.startsWith("/echo-trailers/")) return new Response(body, { headers });
        return Object.assign(new Response(body, { headers }), { trailers: { "x-body-sha256": digest } });
      } finally {
        serverStats.active--;
      }
    }
    if (path === "/") return new Response(PAGE, { headers: { "content-type": "text/html" } });
    // For Chromium's trailers bug (see the notes): the body, then after LATE_MS either trailers
    // with the FIN or a bare FIN (the control).
    if (path.startsWith("/late-trailers/"))
      return Object.assign(new Response(LATE_BODY), {
        trailers: async () => {
          await new Promise((r) => setTimeout(r, LATE_MS));
          return { "x-late": path };
        },
      });
    if (path.startsWith("/late-fin/"))
      return new Response(
        new ReadableStream<Uint8Array>({
          async pull(c) {
            c.enqueue(LATE_BODY);
            await new Promise((r) => setTimeout(r, LATE_MS));
            c.close();
          },
        }),
      );
    const data = contents.get(path.slice(1));
    if (data === undefined) return null;
    return new Response(data, {
      headers: { "content-length": String(data.length), "content-type": "application/octet-stream" },
    });
  },
  { onError: () => {} },
);
const libPort = quicServer.address.port;

// ---------------------------------------------------------------------------------------------
// ngtcp2

const NGTCP2 = "ngtcp2 0.12";
if (!wanted("ngtcp2")) {
  // not selected
} else if (peers.NGTCP2_SERVER && existsSync(peers.NGTCP2_SERVER)) {
  await case_(
    NGTCP2,
    "purequic get → gtlsserver",
    "GET: several files + a large one, concurrently",
    async () => {
      const port = freePort();
      children.push(
        spawn(peers.NGTCP2_SERVER, ["-q", "-d", www, "127.0.0.1", String(port), key, cert], {
          stdio: "ignore",
        }),
      );
      await new Promise((r) => setTimeout(r, 500));
      const dl = mkdtempSync(join(work, "dl-"));
      const r = await run(purequic, [
        "get",
        "-q",
        "--alpn",
        "h3",
        "--ca",
        cert,
        "--output",
        dl,
        ...urls(port),
      ]);
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
      return `${filesLabel} on one connection, sha-256 ok; 404 → exit 1`;
    },
  );

  await case_(
    NGTCP2,
    "purequic fetch → gtlsserver",
    "POST upload with request trailers; response trailers",
    async () => {
      const port = freePort();
      const log = join(work, "gtlsserver-post.log");
      // Not quiet: its frame log shows how much of the request stream it received.
      void run(
        peers.NGTCP2_SERVER,
        [
          "--send-trailers",
          "--no-quic-dump",
          "--no-http-dump",
          "-d",
          www,
          "127.0.0.1",
          String(port),
          key,
          cert,
        ],
        90_000,
        log,
      );
      await new Promise((r) => setTimeout(r, 500));
      const h3fetch = createH3Fetch({ ca: certPem });
      try {
        const res = await h3fetch(`https://localhost:${port}/small-1.txt`, {
          method: "POST",
          body: upload,
          trailers: { "x-upload-sha256": uploadSha },
        });
        const body = new Uint8Array(await res.arrayBuffer());
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        // gtlsserver answers any method with the file at the path.
        if (sha(body) !== expected.get("small-1.txt")!.sha) throw new Error("response body sha-256 mismatch");
        const trailers = await res.trailers;
        if (trailers.get("x-ngtcp2-stream-id") === null)
          throw new Error(`no ngtcp2 trailer: ${[...trailers].join(";")}`);
        // gtlsserver's log: the request stream's FIN and how far the data went.
        let end = 0;
        for (const m of readFileSync(log, "utf8").matchAll(
          / rx \d+ 1RTT STREAM\(0x[0-9a-f]+\) id=0x0 fin=1 offset=(\d+) len=(\d+)/g,
        ))
          end = Math.max(end, Number(m[1]) + Number(m[2]));
        if (end < uploadSize)
          throw new Error(`gtlsserver saw the request FIN at byte ${end}, before the upload's end`);
        return `${MiB(uploadSize)} upload received to FIN by gtlsserver (byte ${end}), request trailers accepted; response body sha-256 ok, ngtcp2's trailer x-ngtcp2-stream-id received`;
      } finally {
        await h3fetch.close();
      }
    },
  );
} else
  rows.push({
    peer: NGTCP2,
    roles: "→ gtlsserver",
    name: "",
    ok: false,
    detail: "not installed",
    secs: undefined,
  });

if (!wanted("ngtcp2")) {
  // not selected
} else if (peers.NGTCP2_CLIENT && existsSync(peers.NGTCP2_CLIENT)) {
  await case_(NGTCP2, "gtlsclient → purequic server", "GET: several files + a large one", async () => {
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
    return `${filesLabel} on one connection, sha-256 ok`;
  });

  await case_(
    NGTCP2,
    "gtlsclient → serveH3",
    "POST uploads, concurrently, echoed; response trailers",
    async () => {
      const dl = mkdtempSync(join(work, "dl-"));
      const n = 4;
      serverStats.maxActive = 0;
      serverStats.uploads = 0;
      const r = await run(
        peers.NGTCP2_CLIENT,
        [
          "--no-quic-dump",
          "--no-http-dump",
          "--exit-on-all-streams-close",
          "-m",
          "POST",
          "-d",
          join(work, "upload.bin"),
          "--download",
          dl,
          "127.0.0.1",
          String(libPort),
          ...Array.from({ length: n }, (_, i) => `https://localhost:${libPort}/echo-trailers/${i}`),
        ],
        90_000,
        join(work, "gtlsclient-post.log"),
      );
      for (let i = 0; i < n; i++) {
        const path = join(dl, String(i));
        if (!existsSync(path)) throw new Error(`echo ${i} missing (gtlsclient exit ${r.code})`);
        const got = readFileSync(path);
        if (got.length !== uploadSize || sha(got) !== uploadSha) throw new Error(`echo ${i}: wrong body`);
      }
      // gtlsclient prints the trailer section it received.
      const trailerLines = r.output.match(new RegExp(`\\[x-body-sha256: ${uploadSha}\\]`, "g"))?.length ?? 0;
      if (trailerLines !== n)
        throw new Error(`gtlsclient printed ${trailerLines} x-body-sha256 trailers, expected ${n}`);
      if (serverStats.uploads !== n) throw new Error(`server saw ${serverStats.uploads} uploads`);
      return `${n} × ${MiB(uploadSize)} POSTs echoed, sha-256 ok, ${serverStats.maxActive} in progress at once on the server; gtlsclient printed our x-body-sha256 trailer ${n}×`;
    },
  );
} else
  rows.push({
    peer: NGTCP2,
    roles: "gtlsclient →",
    name: "",
    ok: false,
    detail: "not installed",
    secs: undefined,
  });

// ---------------------------------------------------------------------------------------------
// quic-go's interop endpoints (TESTCASE=http3) in jails

const QUICGO = "quic-go 0.29";
const canJail =
  process.getuid?.() === 0 &&
  ["unshare", "chroot", "ip"].every((c) =>
    ["/usr/bin", "/usr/sbin", "/bin", "/sbin"].some((d) => existsSync(join(d, c))),
  ) &&
  !!peers.QUICGO_INTEROP_SERVER &&
  existsSync(peers.QUICGO_INTEROP_SERVER) &&
  !!peers.QUICGO_INTEROP_CLIENT &&
  existsSync(peers.QUICGO_INTEROP_CLIENT);

if (!wanted("quic-go")) {
  // not selected
} else if (canJail) {
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
  timeout -k 5 90 ${q(purequic)} get -q --alpn h3 --ca ${q(cert)} --output ${q(dlA)} ${names.map((n) => q(`https://localhost:443/${n}`)).join(" ")} >${q(join(work, "A.log"))} 2>&1
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
  TESTCASE=http3 QLOGDIR=/logs/qlog timeout -k 5 90 chroot ${q(join(work, "jail-client"))} /bin/client ${names.map((n) => q(`https://127.0.0.1:443/${n}`)).join(" ")} >${q(join(work, "B.log"))} 2>&1
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
  const out = await run("unshare", ["--net", "--pid", "--fork", "--kill-child", "bash", script], 240_000);
  const rc = (k: string) => new RegExp(`^${k} rc=(\\S+)`, "m").exec(out.output)?.[1];
  const secs = (k: string) => {
    const s = new RegExp(`^${k} rc=\\S+ secs=(\\S+)`, "m").exec(out.output)?.[1];
    return s === undefined ? undefined : Number(s);
  };
  const tail = (f: string) =>
    existsSync(join(work, f)) ? readFileSync(join(work, f), "utf8").trim().slice(-200) : "";
  await case_(
    QUICGO,
    "purequic get → interop server",
    "GET: several files + a large one, concurrently",
    async () => {
      if (rc("A") !== "0")
        throw new Error(`purequic get exit ${rc("A") ?? "?"}: ${tail("A.log") || out.output.slice(-200)}`);
      const bad = checkDownloads(dlA);
      if (bad) throw new Error(bad);
      return `${filesLabel} on one connection, sha-256 ok (netns jail)`;
    },
    () => secs("A"),
  );
  await case_(
    QUICGO,
    "interop client → purequic server",
    "GET: several files + a large one, concurrently",
    async () => {
      if (rc("B") !== "0")
        throw new Error(`client exit ${rc("B") ?? "?"}: ${tail("B.log") || out.output.slice(-200)}`);
      const bad = checkDownloads(join(work, "jail-client/downloads"));
      if (bad) throw new Error(bad);
      return `${filesLabel} (one goroutine each), sha-256 ok (netns jail)`;
    },
    () => secs("B"),
  );
} else {
  rows.push({
    peer: QUICGO,
    roles: "interop endpoints",
    name: "",
    ok: false,
    detail: "skipped: needs root, unshare/chroot/ip and interop/peers/install.sh quic-go",
    secs: undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// quic-go 0.29's http3 package through our own small peer (interop/h3-quicgo/main.go): uploads,
// which its interop endpoints cannot do. Built here on first use into the peers' cache.

/** Builds (or reuses) quicgo-h3-peer; undefined when Go or Debian's quic-go sources are missing. */
function quicgoH3Peer(): { bin: string; note: string } | undefined {
  const gocode = "/usr/share/gocode/src/github.com/lucas-clemente/quic-go/http3";
  if (!existsSync(gocode)) return undefined;
  let goVersion: string;
  try {
    goVersion = execFileSync("go", ["version"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
  const cache = join(process.env.PURQUIC_CACHE ?? join(repo, ".cache"), "interop");
  const bin = join(cache, "bin/quicgo-h3-peer");
  const source = join(repo, "interop/h3-quicgo/main.go");
  const stamp = sha(new TextEncoder().encode(`${readFileSync(source, "utf8")}\n${goVersion}`));
  const stampFile = join(cache, "stamps/quicgo-h3-peer");
  if (existsSync(bin) && existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp)
    return { bin, note: "cached build" };
  mkdirSync(join(cache, "bin"), { recursive: true });
  mkdirSync(join(cache, "stamps"), { recursive: true });
  const t0 = performance.now();
  execFileSync("go", ["build", "-o", bin, source], {
    stdio: "inherit",
    env: {
      ...process.env,
      GO111MODULE: "off",
      GOPATH: `${join(cache, "gopath-h3")}:/usr/share/gocode`,
      GOCACHE: join(cache, "gocache"),
    },
  });
  writeFileSync(stampFile, stamp);
  return { bin, note: `built in ${((performance.now() - t0) / 1000).toFixed(1)} s` };
}

const QUICGO_H3 = "quic-go 0.29 http3";
const qgPeer = wanted("quic-go") ? quicgoH3Peer() : undefined;
if (!wanted("quic-go")) {
  // not selected
} else if (qgPeer !== undefined) {
  process.stdout.write(`quicgo-h3-peer: ${qgPeer.note}\n`);
  await case_(
    QUICGO_H3,
    "purequic fetch → quicgo-h3-peer",
    "POST uploads, concurrently, echoed; GET of several files + a large one",
    async () => {
      const port = freePort();
      const srv = await startUntil(
        qgPeer.bin,
        ["server", "--listen", `127.0.0.1:${port}`, "--cert", cert, "--key", key, "--root", www],
        /listening on/,
      );
      children.push(srv.child);
      const h3fetch = createH3Fetch({ ca: certPem });
      try {
        const n = 4;
        // Request trailers too: quic-go 0.29 skips HEADERS frames after the body (no trailer support).
        const posts = await Promise.all(
          Array.from({ length: n }, async (_, i) => {
            const res = await h3fetch(`https://localhost:${port}/echo/${i}`, {
              method: "POST",
              body: upload,
              trailers: { "x-upload-sha256": uploadSha },
            });
            const body = new Uint8Array(await res.arrayBuffer());
            if (res.status !== 200) throw new Error(`POST ${i}: status ${res.status}`);
            if (res.headers.get("x-upload-sha256") !== uploadSha)
              throw new Error(`POST ${i}: server saw another body`);
            if (sha(body) !== uploadSha) throw new Error(`POST ${i}: echo sha-256 mismatch`);
            return body.length;
          }),
        );
        await Promise.all(
          names.map(async (name) => {
            const res = await h3fetch(`https://localhost:${port}/${name}`);
            const body = new Uint8Array(await res.arrayBuffer());
            if (res.status !== 200 || sha(body) !== expected.get(name)!.sha)
              throw new Error(`GET ${name}: wrong body`);
          }),
        );
        if (h3fetch.connections !== 1) throw new Error(`${h3fetch.connections} connections`);
        return `${posts.length} × ${MiB(uploadSize)} POSTs (with request trailers) echoed, sha-256 ok; ${filesLabel} GET, sha-256 ok; one connection`;
      } finally {
        await h3fetch.close();
      }
    },
  );
  await case_(QUICGO_H3, "quicgo-h3-peer → serveH3", "POST uploads, concurrently, echoed", async () => {
    const n = 4;
    serverStats.maxActive = 0;
    serverStats.uploads = 0;
    const r = await run(qgPeer.bin, [
      "client",
      "--ca",
      cert,
      "--upload",
      join(work, "upload.bin"),
      ...Array.from({ length: n }, (_, i) => `https://localhost:${libPort}/echo/${i}`),
    ]);
    if (r.code !== 0) throw new Error(`client exit ${r.code}: ${r.output.trim().slice(-200)}`);
    const ok = r.output
      .split("\n")
      .filter(
        (l) => l === `${l.split(" ").slice(0, 2).join(" ")} 200 ${uploadSize} ${uploadSha} ${uploadSha}`,
      );
    if (ok.length !== n) throw new Error(`${ok.length} of ${n} echoes right: ${r.output.trim().slice(-200)}`);
    if (serverStats.uploads !== n) throw new Error(`server saw ${serverStats.uploads} uploads`);
    return `${n} × ${MiB(uploadSize)} POSTs echoed, sha-256 ok both ways, ${serverStats.maxActive} in progress at once on the server`;
  });
} else {
  rows.push({
    peer: QUICGO_H3,
    roles: "quicgo-h3-peer",
    name: "",
    ok: false,
    detail: "skipped: needs go and Debian's quic-go sources (interop/peers/install.sh quic-go)",
    secs: undefined,
  });
}

// ---------------------------------------------------------------------------------------------
// Chromium (headless, playwright-core) → serveH3

const CHROMIUM = "/usr/lib/chromium/chromium";
const PAGE_SCRIPT = `(async () => {
  const hex = async (b) => Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b)),
    (x) => x.toString(16).padStart(2, "0")).join("");
  const out = {};
  let step = "download";
  try {
  const big = await (await fetch("/big.bin")).arrayBuffer();
  out.bigBytes = big.byteLength;
  out.bigSha = await hex(big);
  const upload = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
  const uploadSha = await hex(upload.buffer);
  step = "POST";
  const posted = await fetch("/echo", { method: "POST", body: upload });
  out.postOk = posted.headers.get("x-upload-sha256") === uploadSha &&
    (await hex(await posted.arrayBuffer())) === uploadSha;
  step = "streamed POST";
  try {
    let sent = 0;
    const body = new ReadableStream({
      pull(c) {
        if (sent >= upload.length) return c.close();
        c.enqueue(upload.slice(sent, sent + 65536));
        sent += 65536;
      },
    });
    const streamed = await fetch("/echo", { method: "POST", body, duplex: "half" });
    out.streamedOk = streamed.headers.get("x-upload-sha256") === uploadSha &&
      (await hex(await streamed.arrayBuffer())) === uploadSha;
  } catch (e) {
    out.streamedOk = "error: " + e;
  }
  step = "30 concurrent POSTs";
  const many = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    fetch("/echo", { method: "POST", body: "x".repeat(i * 1000) })
      .then((res) => res.text()).then((t) => t.length === i * 1000)));
  out.many = many.every(Boolean);
  step = "404";
  out.missing = (await fetch("/missing")).status;
  step = "late FIN / late trailers";
  const late = (kind) => Promise.all(Array.from({ length: 3 }, (_, i) =>
    fetch("/" + kind + "/" + i).then((res) => res.arrayBuffer())
      .then((b) => b.byteLength === 65536 ? "ok" : "body of " + b.byteLength, (e) => String(e))));
  out.lateFin = await late("late-fin");
  out.lateTrailers = await late("late-trailers");
  out.text = document.getElementById("p")?.textContent ?? null;
  out.protocols = [...new Set(performance.getEntriesByType("resource")
    .concat(performance.getEntriesByType("navigation")).map((e) => e.nextHopProtocol))];
  out.resources = performance.getEntriesByType("resource").length;
  } catch (e) {
    out.error = step + ": " + e;
  }
  return out;
})()`;

if (!wanted("chromium")) {
  // not selected
} else if (existsSync(CHROMIUM)) {
  await case_(
    "Chromium",
    "page + fetch() → serveH3",
    "navigation, large download, uploads, concurrency",
    async () => {
      const { chromium } = await import("playwright-core");
      serverStats.maxActive = 0;
      // Chromium only trusts a self-signed certificate for QUIC through its SPKI hash.
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          "--enable-quic",
          `--origin-to-force-quic-on=localhost:${libPort}`,
          `--ignore-certificate-errors-spki-list=${spkiSha256Base64}`,
          "--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
          ...CHROMIUM_HEADLESS_ARGS,
        ],
      });
      try {
        const page = await browser.newPage();
        const nav = await page.goto(`https://localhost:${libPort}/`);
        if (nav?.status() !== 200) throw new Error(`navigation status ${nav?.status()}`);
        // A string, not a function: tsx's helpers do not exist in the page, and there is no DOM lib.
        const r = (await page.evaluate(PAGE_SCRIPT)) as {
          text: string | null;
          bigBytes: number;
          bigSha: string;
          postOk: boolean;
          streamedOk: boolean | string;
          many: boolean;
          missing: number;
          lateFin: string[];
          lateTrailers: string[];
          protocols: string[];
          resources: number;
          error?: string;
        };
        if (r.error !== undefined) throw new Error(r.error);
        if (r.text !== "hello from purequic") throw new Error(`page text ${r.text}`);
        if (r.bigSha !== expected.get("big.bin")!.sha)
          throw new Error(`big.bin: ${r.bigBytes} bytes, sha-256 mismatch`);
        if (!r.postOk) throw new Error("1 MiB POST echo mismatch");
        if (r.streamedOk !== true) throw new Error(`streamed POST: ${r.streamedOk}`);
        if (!r.many) throw new Error("30 concurrent POSTs: wrong bodies");
        if (r.missing !== 404) throw new Error(`missing file gave ${r.missing}`);
        // The control: a body whose FIN comes LATE_MS later is read to the end.
        if (r.lateFin.some((x) => x !== "ok")) throw new Error(`late FIN: ${r.lateFin.join(", ")}`);
        // Chromium's bug (see the notes): recorded, not failed on; a body read short would be ours.
        const lateBad = r.lateTrailers.filter((x) => x !== "ok");
        if (lateBad.some((x) => x.startsWith("body of")))
          throw new Error(`late trailers: ${lateBad.join(", ")}`);
        const lateNote = `${r.lateTrailers.length - lateBad.length} of ${r.lateTrailers.length} read${lateBad.length > 0 ? `, ${lateBad.length} × ${[...new Set(lateBad)].join(" / ")} (Chromium's bug, see the notes)` : ""}`;
        if (r.protocols.join() !== "h3") throw new Error(`protocols used: ${r.protocols.join()}`);
        return `page; ${MiB(r.bigBytes)} download sha-256 ok; 1 MiB POST echo, buffered and streamed (duplex: "half"); 30 concurrent POSTs (${serverStats.maxActive} at once on the server); 404; 64 KiB body with its FIN ${LATE_MS} ms late: 3 of 3 read; with trailers ${LATE_MS} ms late: ${lateNote}; nextHopProtocol h3 for all ${r.resources + 1} entries`;
      } finally {
        await browser.close();
      }
    },
  );
} else
  rows.push({
    peer: "Chromium",
    roles: "fetch over h3",
    name: "",
    ok: false,
    detail: "not installed",
    secs: undefined,
  });

await libServer.close();
await quicServer.close();

if (!values.keep) rmSync(work, { recursive: true, force: true });
else process.stdout.write(`kept ${work}: ${readdirSync(work).join(" ")}\n`);

const passed = rows.filter((r) => r.ok).length;
const table = [
  "| peer | client → server | case | result | time |",
  "|---|---|---|---|---|",
  ...rows.map(
    (r) =>
      `| ${r.peer} | ${r.roles} | ${r.name} | ${r.ok ? "✓" : "✗"} ${r.detail} | ${r.secs === undefined ? "" : `${r.secs.toFixed(1)} s`} |`,
  ),
].join("\n");
process.stdout.write(table);
if (!values["no-write"] && only === undefined) {
  const doc = join(repo, "docs/INTEROP.md");
  const section = [
    "<!-- interop:h3:start -->",
    `Written by \`npx tsx interop/h3.ts\` on ${new Date().toISOString().slice(0, 10)} (Node ${process.version}, loopback, 2 shared cores; ${filesLabel}, ${MiB(uploadSize)} uploads; times include process start).`,
    "",
    table,
    "",
    "What the peers' tools cannot check, and so is not in the table: gtlsserver answers every method with the",
    "file at the path and does not print the request trailers it receives (their acceptance is all that is",
    "checked); quic-go 0.29's interop endpoints only GET (http.FileServer and a GET-only client), so uploads go",
    "through our quicgo-h3-peer on its http3 package, which has no trailers (it skips request trailers, sends none);",
    "Chromium's fetch() sends no request trailers and does not expose response trailers.",
    "",
    "Chromium 156 fails a response with trailers (`TypeError: Failed to fetch`, net error -100 ERR_CONNECTION_CLOSED)",
    "when the trailers arrive while its read of the body is pending. This is Chromium's bug, not purequic's.",
    "Checked with purequic's qlog, a tshark capture decrypted with SSLKEYLOGFILE, and Chromium's `--log-net-log`.",
    "The response follows RFC 9114 §4.1: HEADERS, one DATA frame with the whole body, then the trailing HEADERS",
    "frame (e.g. `01 04 05 81 10 11`) with the FIN. There is no RESET_STREAM, STOP_SENDING or CONNECTION_CLOSE.",
    "The trailer section's QPACK references are two post-base dynamic entries. Their inserts on our encoder stream",
    "go in the same packet, and our table capacity (4096) is below the 65536 Chromium advertises.",
    "Chromium decodes the section (`HTTP3_HEADERS_DECODED`, then `QUIC_CHROMIUM_CLIENT_STREAM_READ_RESPONSE_TRAILERS`",
    "with fin) after its URL request has been given every body byte (`URL_REQUEST_JOB_FILTERED_BYTES_READ` adds up",
    "to 100000 of 100000).",
    "The failing requests are exactly those whose URL request had already read the whole body and had a further",
    "`HTTP_TRANSACTION_READ_BODY` pending when the trailers were delivered. That read ends with net_error -100.",
    "Chromium's net/quic source (read in a copy of an older version) explains it:",
    "`QuicHttpStream::OnReadTrailingHeadersComplete` sees `IsDoneReading()` and calls `OnFinRead()`. That closes the",
    "stream, whose sending side is already finished. `QuicChromiumClientStream::Handle::OnClose` then turns a clean",
    "close into ERR_CONNECTION_CLOSED and runs the pending read callback with it instead of end-of-body.",
    "Measured on GETs of 100 kB (fetch() and the page's favicon request). With the trailers sent right after the",
    "body, 5 of 13 failed: all five with that signature, and none of the other eight had it. With the trailers",
    "300 ms after the body, 7 of 7 failed. Without trailers, 0 of 13 failed. With a bare FIN 300 ms after the",
    "body, 0 of 7 failed.",
    "The Chromium case above checks the late-FIN control and only counts the late-trailers fetches.",
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
