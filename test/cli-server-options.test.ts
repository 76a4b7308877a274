/**
 * `purequic server` options that shape the endpoint, checked by behaviour over UDP on 127.0.0.1:
 * --max-handshakes caps the handshakes in progress (RFC 9000 §5.2.2: beyond it a client Initial is
 * refused with CONNECTION_REFUSED), and a bad value is a usage error.
 */
import { type ChildProcess, execFile } from "node:child_process";
import dgram from "node:dgram";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { purequicBin, startUntil } from "../interop/lib.ts";
import { parsePositiveInteger } from "../src/cli/server.ts";
import { Connection } from "../src/quic/connection/connection.ts";
import { clientConfig } from "../src/quic/connection/test-harness.ts";
import { QuicUsageError, TransportErrorCode } from "../src/quic/errors.ts";
import { until } from "./udp-helpers.ts";

const run = promisify(execFile);
const bin = new URL("../bin/purequic", import.meta.url).pathname;
const LISTENING = /listening on udp [\d.]+:(\d+)/;

let server: ChildProcess | undefined;
const sockets: dgram.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  server?.kill("SIGKILL");
  server = undefined;
});

async function startServer(extra: string[]): Promise<number> {
  const args = ["server", "--listen", "127.0.0.1:0", "--alpn", "hq-interop", ...extra];
  const started = await startUntil(purequicBin, args, LISTENING);
  server = started.child;
  return Number(started.match[1]);
}

/** A sans-IO client whose first Initial goes out over its own UDP socket; it reads every answer. */
async function startHandshake(port: number): Promise<Connection> {
  // The server's development certificate is generated at start: skip verification.
  const tls = { serverName: "localhost", alpnProtocols: ["hq-interop"], verifyMode: "insecure" as const };
  const conn = Connection.connect(clientConfig({ tls }), Date.now());
  const s = dgram.createSocket("udp4");
  sockets.push(s);
  s.on("message", (m) => conn.receive(new Uint8Array(m), Date.now()));
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  const first = conn.pollTransmit(Date.now());
  if (!first) throw new Error("no client Initial");
  s.send(first, port, "127.0.0.1");
  return conn;
}

describe("purequic server --max-handshakes", () => {
  it("parses a positive integer and refuses anything else with a QuicUsageError", () => {
    expect(parsePositiveInteger("max-handshakes", "1")).toBe(1);
    expect(parsePositiveInteger("max-handshakes", "2048")).toBe(2048);
    for (const bad of ["0", "-1", "1.5", "abc", "", "1e3", "99999999999999999999"]) {
      expect(() => parsePositiveInteger("max-handshakes", bad)).toThrow(QuicUsageError);
    }
    expect(() => parsePositiveInteger("max-handshakes", "0")).toThrow(
      '--max-handshakes needs a positive integer, got "0"',
    );
  });

  it("exits 2 with the message on a bad value", async () => {
    const err = await run(bin, ["server", "--listen", "127.0.0.1:0", "--max-handshakes", "0"]).catch(
      (e) => e,
    );
    expect(err).toMatchObject({ code: 2 });
    expect(err.stderr).toContain("--max-handshakes needs a positive integer");
  });

  it("with --max-handshakes 1 a second concurrent handshake is refused (CONNECTION_REFUSED)", async () => {
    const port = await startServer(["--max-handshakes", "1"]);
    // The first client never answers: its handshake stays in progress on the server.
    const first = await startHandshake(port);
    await until(() => first.stats().packetsReceived > 0);
    const second = await startHandshake(port);
    await until(() => second.reason !== undefined);
    expect(second.reason).toMatchObject({
      kind: "transport",
      code: TransportErrorCode.CONNECTION_REFUSED,
      remote: true,
    });
    expect(first.reason).toBeUndefined();
  }, 30_000);

  it("without it the same second handshake proceeds", async () => {
    const port = await startServer([]);
    const first = await startHandshake(port);
    await until(() => first.stats().packetsReceived > 0);
    const second = await startHandshake(port);
    await until(() => second.stats().packetsReceived > 0);
    expect(second.reason).toBeUndefined();
  }, 30_000);
});
