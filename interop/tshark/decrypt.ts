/**
 * tshark (Debian's Wireshark) decrypts purequic's QUIC traffic with our SSLKEYLOGFILE key log and
 * reads the frames. Needs tshark/dumpcap (interop/tshark/install.sh) and root (or CAP_NET_RAW on
 * dumpcap) to capture on the loopback interface.
 *
 *   npx tsx interop/tshark/decrypt.ts [--size BYTES] [--keep]
 *
 * 1. writes a random file (200 KB) into a temporary root and starts `purequic server` on
 *    127.0.0.1 with an ephemeral port (--listen 127.0.0.1:0, the port is read from its banner),
 *    with SSLKEYLOGFILE=server.keys;
 * 2. captures UDP on that port on `lo` with dumpcap (what `tshark -i lo -w` runs) into a pcapng;
 * 3. runs `purequic get --insecure` for the file with SSLKEYLOGFILE=client.keys, then stops the
 *    capture and the server;
 * 4. dissects the capture with `tshark -o tls.keylog_file:client.keys -T json --no-duplicate-keys`
 *    and checks that Handshake and 1-RTT packets were decrypted, that the hq-interop request is
 *    readable in stream 0's data, that the response's STREAM data is the file; the same with the
 *    server's key log; and, as a negative control, that without a key log no 1-RTT frame is read.
 *
 * Prints one line per check and ends with "N passed, M failed"; exits non-zero on any failure.
 * Everything runs on 127.0.0.1 and is bounded in time (a global deadline kills what is left).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const purequic = join(repo, "bin/purequic");
const { values } = parseArgs({ options: { size: { type: "string" }, keep: { type: "boolean" } } });
const size = Number(values.size ?? 200 * 1024);
const fileName = `${Math.round(size / 1024)}KB.bin`;
/** Whole run, including tshark's dissection; past it everything we started is killed. */
const DEADLINE_MS = 150_000;

// ------------------------------------------------------------------ results

let passed = 0;
let failed = 0;
function check(name: string, ok: boolean, detail: string): boolean {
  if (ok) passed++;
  else failed++;
  process.stdout.write(`${ok ? "PASS" : "FAIL"}  ${name}: ${detail}\n`);
  return ok;
}

// ------------------------------------------------------------------ processes

const children = new Set<ChildProcess>();

function start(cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  }
}

/** Resolves with the first match of `re` in the child's stdout+stderr; rejects on exit or timeout. */
function waitFor(child: ChildProcess, re: RegExp, ms: number, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(
      () => finish(new Error(`${what}: timed out after ${ms} ms; output:\n${text}`)),
      ms,
    );
    const onData = (d: Buffer) => {
      text += d.toString();
      const m = re.exec(text);
      if (m) finish(m);
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`${what}: exited (${code ?? signal}) before ready; output:\n${text}`));
    function finish(r: RegExpExecArray | Error): void {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
      if (r instanceof Error) reject(r);
      else resolve(r);
    }
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", onExit);
  });
}

/** Sends `signal`, waits up to `ms` for the exit, then SIGKILLs. Resolves with the exit code. */
function stop(child: ChildProcess, signal: NodeJS.Signals, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill(signal);
  });
}

/** Runs a command to completion; output is collected (tshark's JSON can be a few MB). */
function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs: number },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      {
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs,
        killSignal: "SIGKILL",
        maxBuffer: 512 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    children.add(child);
    child.once("exit", () => children.delete(child));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ tshark's JSON

/** A JSON object of tshark's `-T json --no-duplicate-keys` output; repeated keys become arrays. */
type Node = { [key: string]: Json };
type Json = string | Node | Json[];

function asList(v: Json | undefined): Json[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}
function asNode(v: Json | undefined): Node | undefined {
  return v !== undefined && typeof v === "object" && !Array.isArray(v) ? v : undefined;
}
function asString(v: Json | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}
/** Every string value under `key`, at any depth. */
function deepStrings(v: Json, key: string, out: string[] = []): string[] {
  if (Array.isArray(v)) {
    for (const x of v) deepStrings(x, key, out);
  } else if (typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (k === key) for (const s of asList(x)) if (typeof s === "string") out.push(s);
      deepStrings(x, key, out);
    }
  }
  return out;
}
/** tshark prints bytes as "47:45:54" (one byte: "47"; none: ""). */
function hexBytes(s: string): Buffer {
  return Buffer.from(s.replaceAll(":", ""), "hex");
}

type Space = "Initial" | "0-RTT" | "Handshake" | "Retry" | "1-RTT" | "VN";

interface StreamChunk {
  readonly streamId: bigint;
  readonly offset: number;
  readonly data: Buffer;
  readonly fin: boolean;
}

interface QuicPacket {
  readonly frameNo: number;
  readonly fromServer: boolean;
  readonly space: Space;
  /** Frame types in order; empty when tshark could not decrypt the packet. */
  readonly frames: number[];
  readonly decryptFailed: boolean;
  readonly streams: StreamChunk[];
  /** TLS handshake message types tshark decoded from this packet's CRYPTO frames. */
  readonly tlsHandshakeTypes: number[];
}

const LONG_TYPES: Space[] = ["Initial", "0-RTT", "Handshake", "Retry"];

function parsePackets(json: string, serverPort: number): QuicPacket[] {
  const packets: QuicPacket[] = [];
  const docs = JSON.parse(json) as Json[];
  let frameNo = 0;
  for (const doc of docs) {
    frameNo++;
    const layers = asNode(asNode(asNode(doc)?._source)?.layers);
    if (!layers) continue;
    const fromServer = asString(asNode(layers.udp)?.["udp.srcport"]) === String(serverPort);
    for (const q of asList(layers.quic)) {
      const quic = asNode(q);
      if (!quic) continue;
      let space: Space;
      if (quic["quic.short"] !== undefined) space = "1-RTT";
      else if (quic["quic.version"] === "0x00000000") space = "VN";
      else space = LONG_TYPES[Number(asString(quic["quic.long.packet_type"]) ?? -1)] ?? "VN";
      const frames: number[] = [];
      const streams: StreamChunk[] = [];
      for (const f of asList(quic["quic.frame"])) {
        const frame = asNode(f);
        if (!frame) continue;
        const type = Number(asString(frame["quic.frame_type"]));
        frames.push(type);
        if (type >= 0x08 && type <= 0x0f) {
          const data = hexBytes(asString(frame["quic.stream_data"]) ?? "");
          const declared = asString(frame["quic.stream.length"]);
          if (declared !== undefined && Number(declared) !== data.length) {
            throw new Error(`frame ${frameNo}: STREAM length ${declared} but ${data.length} data bytes`);
          }
          streams.push({
            streamId: BigInt(asString(frame["quic.stream.stream_id"]) ?? "-1"),
            offset: Number(asString(frame["quic.stream.offset"]) ?? "0"),
            data,
            fin: (type & 0x01) !== 0,
          });
        }
      }
      packets.push({
        frameNo,
        fromServer,
        space,
        frames,
        decryptFailed:
          deepStrings(quic, "quic.decryption_failed").length > 0 ||
          quic["quic.remaining_payload"] !== undefined,
        streams,
        tlsHandshakeTypes: deepStrings(quic, "tls.handshake.type").map(Number),
      });
    }
  }
  return packets;
}

async function dissect(pcap: string, keylog: string, port: number): Promise<QuicPacket[]> {
  const r = await run(
    "tshark",
    [
      "-n",
      "-r",
      pcap,
      "-o",
      `tls.keylog_file:${keylog}`,
      "-d",
      `udp.port==${port},quic`,
      "-Y",
      "quic",
      "-T",
      "json",
      "--no-duplicate-keys",
      "-J",
      "udp quic",
    ],
    { timeoutMs: 60_000 },
  );
  if (r.code !== 0) throw new Error(`tshark -r exited ${r.code}: ${r.stderr.trim()}`);
  return parsePackets(r.stdout, port);
}

/** Reassembles one direction of a stream; reports gaps, total bytes seen (retransmissions too). */
function reassemble(
  packets: QuicPacket[],
  fromServer: boolean,
  streamId: bigint,
): { data: Buffer; finalSize: number | undefined; wireBytes: number; frames: number; holes: number } {
  const chunks = packets
    .filter((p) => p.fromServer === fromServer)
    .flatMap((p) => p.streams)
    .filter((s) => s.streamId === streamId);
  let finalSize: number | undefined;
  let end = 0;
  for (const c of chunks) {
    end = Math.max(end, c.offset + c.data.length);
    if (c.fin) finalSize = c.offset + c.data.length;
  }
  const data = Buffer.alloc(end);
  const have = new Uint8Array(end);
  for (const c of chunks) {
    c.data.copy(data, c.offset);
    have.fill(1, c.offset, c.offset + c.data.length);
  }
  return {
    data,
    finalSize,
    wireBytes: chunks.reduce((n, c) => n + c.data.length, 0),
    frames: chunks.length,
    holes: have.filter((b) => b === 0).length,
  };
}

const FRAME_NAMES: Record<number, string> = {
  0: "PADDING",
  1: "PING",
  2: "ACK",
  3: "ACK_ECN",
  4: "RESET_STREAM",
  5: "STOP_SENDING",
  6: "CRYPTO",
  7: "NEW_TOKEN",
  16: "MAX_DATA",
  17: "MAX_STREAM_DATA",
  18: "MAX_STREAMS_BIDI",
  19: "MAX_STREAMS_UNI",
  20: "DATA_BLOCKED",
  21: "STREAM_DATA_BLOCKED",
  22: "STREAMS_BLOCKED_BIDI",
  23: "STREAMS_BLOCKED_UNI",
  24: "NEW_CONNECTION_ID",
  25: "RETIRE_CONNECTION_ID",
  26: "PATH_CHALLENGE",
  27: "PATH_RESPONSE",
  28: "CONNECTION_CLOSE",
  29: "CONNECTION_CLOSE_APP",
  30: "HANDSHAKE_DONE",
  48: "DATAGRAM",
  49: "DATAGRAM",
};
const frameName = (t: number) =>
  t >= 0x08 && t <= 0x0f ? "STREAM" : (FRAME_NAMES[t] ?? `0x${t.toString(16)}`);

function histogram(packets: QuicPacket[]): Map<string, number> {
  const h = new Map<string, number>();
  for (const p of packets) for (const t of p.frames) h.set(frameName(t), (h.get(frameName(t)) ?? 0) + 1);
  return h;
}
const showHistogram = (h: Map<string, number>) => [...h].map(([k, n]) => `${k}×${n}`).join(" ");

// ------------------------------------------------------------------ key logs

const REQUIRED_LABELS = [
  "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
  "SERVER_HANDSHAKE_TRAFFIC_SECRET",
  "CLIENT_TRAFFIC_SECRET_0",
  "SERVER_TRAFFIC_SECRET_0",
];

function readKeyLog(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}

/** Labels present per client random, and lines that are not NSS key log lines. */
function checkKeyLog(lines: string[]): { randoms: Map<string, Set<string>>; bad: string[] } {
  const randoms = new Map<string, Set<string>>();
  const bad: string[] = [];
  for (const line of lines) {
    const m = /^([A-Z_0-9]+) ([0-9a-f]{64}) ([0-9a-f]{64}|[0-9a-f]{96})$/.exec(line);
    if (!m) {
      bad.push(line);
      continue;
    }
    const labels = randoms.get(m[2]) ?? new Set<string>();
    labels.add(m[1]);
    randoms.set(m[2], labels);
  }
  return { randoms, bad };
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const version = await run("tshark", ["-v"], { timeoutMs: 20_000 });
  const dumpcapVersion = await run("dumpcap", ["-v"], { timeoutMs: 20_000 });
  if (
    !check(
      "tshark installed",
      version.code === 0 && dumpcapVersion.code === 0,
      version.code === 0
        ? version.stdout.split("\n")[0]
        : "tshark/dumpcap not runnable: run interop/tshark/install.sh",
    )
  ) {
    return;
  }

  const work = mkdtempSync(join(tmpdir(), "purequic-tshark-"));
  const root = join(work, "www");
  const out = join(work, "out");
  mkdirSync(root);
  mkdirSync(out);
  const body = randomBytes(size);
  writeFileSync(join(root, fileName), body);
  const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
  const pcap = join(work, "capture.pcapng");
  const clientKeys = join(work, "client.keys");
  const serverKeys = join(work, "server.keys");
  const emptyKeys = join(work, "empty.keys");
  writeFileSync(emptyKeys, "");
  process.stdout.write(`work dir ${work}\n`);

  try {
    // --- server on an ephemeral port
    const server = start(process.execPath, [purequic, "server", "--listen", "127.0.0.1:0", "--root", root], {
      SSLKEYLOGFILE: serverKeys,
    });
    const banner = await waitFor(server, /listening on udp 127\.0\.0\.1:(\d+)/, 30_000, "purequic server");
    const port = Number(banner[1]);
    process.stdout.write(`server on udp 127.0.0.1:${port}\n`);

    // --- capture (dumpcap is tshark's capture engine; it prints "File: ..." once capturing)
    const capture = start("dumpcap", [
      "-i",
      "lo",
      "-f",
      `udp port ${port}`,
      "-w",
      pcap,
      "-a",
      "duration:120",
    ]);
    await waitFor(capture, /^File: /m, 20_000, "dumpcap");
    await sleep(300);

    // --- transfer with the client's key log
    const url = `https://localhost:${port}/${fileName}`;
    const get = await run(
      process.execPath,
      // hq-interop: the request and the response body are the STREAM bytes themselves, which is
      // what checks (b) and (c) read (over h3 they would be HTTP/3 frames).
      [purequic, "get", "--insecure", "--quiet", "--alpn", "hq-interop", "--output", out, url],
      { env: { SSLKEYLOGFILE: clientKeys }, timeoutMs: 60_000 },
    );
    let got: Buffer | undefined;
    try {
      got = readFileSync(join(out, fileName));
    } catch {
      got = undefined;
    }
    check(
      "transfer",
      get.code === 0 && got !== undefined && sha(got) === sha(body),
      get.code === 0
        ? `purequic get ${url}: ${got?.length ?? 0} bytes, sha256 ${got && sha(got) === sha(body) ? "matches" : "DIFFERS"}`
        : `purequic get exited ${get.code}: ${get.stderr.trim()}`,
    );

    // let the last ACKs/CONNECTION_CLOSE reach the capture, then stop it and the server
    await sleep(500);
    const capCode = await stop(capture, "SIGINT", 5_000);
    await stop(server, "SIGTERM", 5_000);
    const pcapBytes = statSync(pcap, { throwIfNoEntry: false })?.size ?? 0;
    process.stdout.write(`capture ${pcap}: ${pcapBytes} bytes (dumpcap exit ${capCode})\n`);

    // --- key logs
    const cLines = readKeyLog(clientKeys);
    const sLines = readKeyLog(serverKeys);
    const c = checkKeyLog(cLines);
    const s = checkKeyLog(sLines);
    const [random, labels] = [...c.randoms][0] ?? ["", new Set<string>()];
    const missing = REQUIRED_LABELS.filter((l) => !labels.has(l));
    const sameLines =
      cLines.length === sLines.length && [...cLines].sort().join("\n") === [...sLines].sort().join("\n");
    check(
      "key logs",
      c.bad.length === 0 && s.bad.length === 0 && c.randoms.size === 1 && missing.length === 0 && sameLines,
      `client ${cLines.length} lines, server ${sLines.length} lines, ${c.randoms.size} client random(s)` +
        (random ? ` (${random.slice(0, 16)}…)` : "") +
        (missing.length ? `, missing ${missing.join(",")}` : ", all 4 traffic secrets") +
        (sameLines ? ", client and server logs hold the same lines" : ", client and server logs DIFFER") +
        (c.bad.length + s.bad.length ? `, ${c.bad.length + s.bad.length} malformed lines` : ""),
    );

    // --- (a) decryption with the client's key log
    const pk = await dissect(pcap, clientKeys, port);
    const oneRtt = pk.filter((p) => p.space === "1-RTT");
    const handshake = pk.filter((p) => p.space === "Handshake");
    const undecrypted = pk.filter((p) => p.decryptFailed || (p.space !== "VN" && p.frames.length === 0));
    const hsTls = new Set(handshake.flatMap((p) => p.tlsHandshakeTypes));
    // EncryptedExtensions 8, Certificate 11, CertificateVerify 15, Finished 20
    const hsWanted = [8, 11, 15, 20].filter((t) => !hsTls.has(t));
    check(
      "(a) Handshake packets decrypted",
      handshake.length > 0 &&
        handshake.every((p) => !p.decryptFailed && p.frames.includes(0x06)) &&
        hsWanted.length === 0,
      `${handshake.length} Handshake packets, all with CRYPTO frames; TLS messages read from them: ` +
        `${[...hsTls].sort((a, b) => a - b).join(",")}${hsWanted.length ? ` (missing ${hsWanted.join(",")})` : " (EncryptedExtensions, Certificate, CertificateVerify, Finished)"}`,
    );
    const h1 = histogram(oneRtt);
    const wanted = ["STREAM", "ACK", "HANDSHAKE_DONE", "NEW_CONNECTION_ID"];
    const absent = wanted.filter((n) => !h1.has(n) && !(n === "ACK" && h1.has("ACK_ECN")));
    const stream0 = oneRtt.some((p) => p.streams.some((x) => x.streamId === 0n));
    check(
      "(a) 1-RTT packets decrypted",
      oneRtt.length > 0 && undecrypted.length === 0 && absent.length === 0 && stream0,
      `${pk.length} QUIC packets, ${oneRtt.length} 1-RTT, ${undecrypted.length} not decrypted; ` +
        `1-RTT frames: ${showHistogram(h1)}` +
        (absent.length ? `; MISSING ${absent.join(",")}` : "") +
        (stream0 ? "" : "; no STREAM frame on stream 0"),
    );

    // --- (b) the hq-interop request in stream 0's client data
    const req = reassemble(pk, false, 0n);
    const reqText = req.data.toString("latin1");
    const wantReq = `GET /${fileName}\r\n`;
    check(
      "(b) request readable",
      reqText === wantReq && req.finalSize === wantReq.length && req.holes === 0,
      `client STREAM 0 data ${JSON.stringify(reqText)} in ${req.frames} frame(s), FIN at ${req.finalSize ?? "none"}`,
    );

    // --- (c) the response's STREAM bytes are the file
    const resp = reassemble(pk, true, 0n);
    const exact = resp.holes === 0 && resp.finalSize === size && sha(resp.data) === sha(body);
    check(
      "(c) response STREAM bytes",
      exact && resp.wireBytes >= size && resp.wireBytes <= size * 1.25,
      `server STREAM 0: ${resp.frames} frames, ${resp.wireBytes} data bytes on the wire ` +
        `(file ${size}; ${resp.wireBytes - size} retransmitted), FIN at ${resp.finalSize ?? "none"}, ` +
        `${resp.holes} missing bytes, reassembled sha256 ${sha(resp.data) === sha(body) ? "= file's" : "≠ file's"}`,
    );

    // --- the server's own key log decrypts the same
    const ps = await dissect(pcap, serverKeys, port);
    const oneRttS = ps.filter((p) => p.space === "1-RTT");
    const framesS = oneRttS.reduce((n, p) => n + p.frames.length, 0);
    const framesC = oneRtt.reduce((n, p) => n + p.frames.length, 0);
    const respS = reassemble(ps, true, 0n);
    check(
      "server key log decrypts",
      oneRttS.length === oneRtt.length && framesS === framesC && sha(respS.data) === sha(body),
      `${oneRttS.length} 1-RTT packets, ${framesS} frames (client key log: ${framesC}), response ${sha(respS.data) === sha(body) ? "=" : "≠"} file`,
    );

    // --- (d) negative control: no key log
    const pn = await dissect(pcap, emptyKeys, port);
    const oneRttN = pn.filter((p) => p.space === "1-RTT");
    const readN = oneRttN.filter((p) => p.frames.length > 0);
    const streamBytesN = pn.reduce((n, p) => n + p.streams.reduce((m, x) => m + x.data.length, 0), 0);
    const handshakeN = pn.filter((p) => p.space === "Handshake");
    const initialN = pn.filter((p) => p.space === "Initial" && p.frames.includes(0x06));
    check(
      "(d) no key log, no 1-RTT frames",
      oneRttN.length === oneRtt.length &&
        readN.length === 0 &&
        streamBytesN === 0 &&
        handshakeN.every((p) => p.frames.length === 0) &&
        initialN.length > 0,
      `${oneRttN.length} 1-RTT packets, ${readN.length} with frames, ${streamBytesN} STREAM bytes, ` +
        `${handshakeN.filter((p) => p.frames.length === 0).length}/${handshakeN.length} Handshake packets unreadable ` +
        `(Initial CRYPTO still read in ${initialN.length} packets: keys from the DCID)`,
    );
  } catch (err) {
    check("run", false, (err as Error).message);
  } finally {
    killAll();
    if (failed === 0 && !values.keep) rmSync(work, { recursive: true, force: true });
    else process.stdout.write(`kept ${work}\n`);
  }
}

const deadline = setTimeout(() => {
  process.stdout.write(`FAIL  deadline: not done after ${DEADLINE_MS / 1000} s\n`);
  killAll();
  process.stdout.write(`${passed} passed, ${failed + 1} failed\n`);
  process.exit(1);
}, DEADLINE_MS);
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

try {
  await main();
} catch (err) {
  check("run", false, (err as Error).message);
  killAll();
}
clearTimeout(deadline);
process.stdout.write(`${passed} passed, ${failed} failed\n`);
process.exitCode = failed === 0 ? 0 : 1;
