/**
 * `purequic server` answering hq-interop (HTTP/0.9 over QUIC, the interop runner's protocol): a
 * small file's bytes and its FIN leave in one STREAM frame, read from the server's qlog — a FIN on
 * its own costs a packet per file (and quiche 0.18 loses a FIN that a retransmission merges with
 * bytes it already has, a failure seen in the interop matrix).
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { purequicBin, startUntil } from "../interop/lib.ts";
import { connect } from "../src/quic/api.ts";

const LISTENING = /listening on udp [\d.]+:(\d+)/;

let server: ChildProcess | undefined;
afterEach(() => {
  server?.kill("SIGKILL");
  server = undefined;
});

async function startServer(root: string, qlogDir: string): Promise<number> {
  const args = ["server", "--listen", "127.0.0.1:0", "--alpn", "hq-interop", "--root", root];
  const started = await startUntil(purequicBin, args, LISTENING, 20_000, {
    ...process.env,
    QLOGDIR: qlogDir,
  });
  server = started.child;
  return Number(started.match[1]);
}

interface StreamFrame {
  frame_type: string;
  stream_id: number;
  fin?: boolean;
  raw?: { length: number };
}

/** STREAM frames of every packet_sent event in the qlog files under dir. */
function sentStreamFrames(dir: string): StreamFrame[] {
  const frames: StreamFrame[] = [];
  for (const name of readdirSync(dir)) {
    for (const record of readFileSync(join(dir, name), "utf8").split("\u001e")) {
      if (!record.trim()) continue;
      const ev = JSON.parse(record) as { name?: string; data?: { frames?: StreamFrame[] } };
      if (!ev.name?.endsWith("packet_sent")) continue;
      for (const f of ev.data?.frames ?? []) if (f.frame_type === "stream") frames.push(f);
    }
  }
  return frames;
}

describe("purequic server, hq-interop", () => {
  it("sends a small file's bytes and FIN in one STREAM frame", async () => {
    const root = mkdtempSync(join(tmpdir(), "purequic-hq-root-"));
    const qlogDir = mkdtempSync(join(tmpdir(), "purequic-hq-qlog-"));
    const body = Buffer.alloc(700, "x");
    writeFileSync(join(root, "small.txt"), body);
    const port = await startServer(root, qlogDir);
    const conn = await connect({ host: "127.0.0.1", port, alpn: ["hq-interop"], insecure: true });
    try {
      const { send, recv } = await conn.openBi();
      await send.write(new TextEncoder().encode("GET /small.txt\r\n"));
      void send.finish();
      const got = await recv.readAll(1 << 20);
      expect(Buffer.from(got).equals(body)).toBe(true);
    } finally {
      await conn.close();
    }
    // The qlog file sink flushes every 200 ms.
    let frames: StreamFrame[] = [];
    for (let i = 0; i < 50 && !frames.some((f) => f.fin); i++) {
      await new Promise((r) => setTimeout(r, 100));
      frames = sentStreamFrames(qlogDir).filter((f) => f.stream_id === 0);
    }
    const fins = frames.filter((f) => f.fin);
    expect(fins.length).toBeGreaterThan(0);
    // Every FIN the server sent on the stream carried the file's bytes with it.
    for (const f of fins) expect(f.raw?.length).toBe(body.length);
  });
});
