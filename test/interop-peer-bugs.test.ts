import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { blameCell, type Cell, type KnownBug } from "../interop/matrix.ts";
import {
  lostFinPatternInQlog,
  quicheLostFinSeen,
  versionNegotiationReachedClient,
} from "../interop/peer-bug-evidence.ts";

const dirs: string[] = [];
function cellDir(): string {
  const d = mkdtempSync(join(tmpdir(), "purequic-peer-bug-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const relayLine = (dir: string, kinds: string[], fate = "forwarded") =>
  JSON.stringify({
    seq: 1,
    dir,
    index: 1,
    flow: 1,
    t: 1,
    size: 23,
    firstByte: 0xc0,
    kinds,
    fate,
    corrupted: false,
  });

const failed: Cell = { status: "fail", detail: "client exited 1" };

describe("interop matrix: a failure is the peer's only with its bug's signature in the logs", () => {
  const bug: KnownBug = { reason: "the peer's diagnosed bug", seen: versionNegotiationReachedClient };

  it("blames the peer when the relay log shows a Version Negotiation sent toward the client", () => {
    const dir = cellDir();
    writeFileSync(
      join(dir, "relay-log.jsonl"),
      [relayLine("toServer", ["initial"]), relayLine("toClient", ["vn"])].join("\n"),
    );
    const cell = blameCell(failed, bug, dir);
    expect(cell.status).toBe("peer");
    expect(cell.detail).toContain("the peer's diagnosed bug");
  });

  it("keeps the failure ours without that signature: no VN, a VN toward the server, or a dropped VN", () => {
    for (const lines of [
      [relayLine("toServer", ["initial"]), relayLine("toClient", ["initial", "handshake"])],
      [relayLine("toServer", ["vn"])],
      [relayLine("toClient", ["vn"], "random")],
      [],
    ]) {
      const dir = cellDir();
      writeFileSync(join(dir, "relay-log.jsonl"), lines.join("\n"));
      const cell = blameCell(failed, bug, dir);
      expect(cell.status).toBe("fail");
      expect(cell.detail).toContain("signature is not in the logs");
    }
    // No relay log at all, or a check that throws: no evidence.
    expect(blameCell(failed, bug, cellDir()).status).toBe("fail");
    const throwing: KnownBug = {
      reason: "x",
      seen: () => {
        throw new Error("unreadable");
      },
    };
    expect(blameCell(failed, throwing, cellDir()).status).toBe("fail");
  });

  it("leaves passing cells and cells without a known bug alone", () => {
    const dir = cellDir();
    writeFileSync(join(dir, "relay-log.jsonl"), relayLine("toClient", ["vn"]));
    const pass: Cell = { status: "pass", detail: "" };
    expect(blameCell(pass, bug, dir)).toBe(pass);
    expect(blameCell(failed, undefined, dir)).toBe(failed);
  });
});

/** A purequic server qlog (JSON-SEQ) with these events. */
function qlog(events: object[]): string {
  return events.map((e) => `\u001e${JSON.stringify(e)}\n`).join("");
}
const sent = (pn: number, frames: object[]) => ({
  time: pn,
  name: "quic:packet_sent",
  data: { header: { packet_type: "1RTT", packet_number: pn }, frames },
});
const ackOf = (pn: number, ranges: number[][]) => ({
  time: 100 + pn,
  name: "quic:packet_received",
  data: {
    header: { packet_type: "1RTT", packet_number: pn },
    frames: [{ frame_type: "ack", acked_ranges: ranges }],
  },
});
const stream = (offset: number, length: number, fin: boolean) => ({
  frame_type: "stream",
  stream_id: 0,
  offset,
  fin,
  raw: { length },
});
const remoteClose = {
  time: 500,
  name: "quic:connection_closed",
  data: { initiator: "remote", error_code: 0 },
};

describe("quiche's lost FIN: its signature in purequic's qlog and the client's log", () => {
  // Seen 2026-12-07: bytes 0..1024 acknowledged (PN 4), the FIN alone lost (PN 5), the probe with
  // 0..1024 and the FIN acknowledged (PN 6), and the client never closes.
  const lostFin = [
    sent(4, [stream(0, 1024, false)]),
    sent(5, [stream(1024, 0, true)]),
    ackOf(1, [[4]]),
    sent(6, [stream(0, 1024, true)]),
    ackOf(2, [[4], [6]]),
  ];

  it("finds an acknowledged FIN that came with bytes already acknowledged, on a connection not closed by the client", () => {
    const dir = cellDir();
    writeFileSync(join(dir, "a_server.sqlog"), qlog(lostFin));
    expect(lostFinPatternInQlog(join(dir, "a_server.sqlog"))).toBe(true);
  });

  it("does not find it when the client closed, or when the FIN came with new bytes", () => {
    const dir = cellDir();
    writeFileSync(join(dir, "closed_server.sqlog"), qlog([...lostFin, remoteClose]));
    expect(lostFinPatternInQlog(join(dir, "closed_server.sqlog"))).toBe(false);
    writeFileSync(
      join(dir, "new_server.sqlog"),
      qlog([
        sent(4, [stream(0, 512, false)]),
        ackOf(1, [[4]]),
        sent(5, [stream(0, 1024, true)]),
        ackOf(2, [[4, 5]]),
      ]),
    );
    expect(lostFinPatternInQlog(join(dir, "new_server.sqlog"))).toBe(false);
  });

  it("needs both the client's idle timeout and the qlog pattern", () => {
    const withBoth = cellDir();
    mkdirSync(join(withBoth, "qlog"));
    writeFileSync(join(withBoth, "qlog", "a_server.sqlog"), qlog(lostFin));
    writeFileSync(
      join(withBoth, "client.log"),
      "INFO:QUICClient:ErrorQUICConnectionIdleTimeout: QUIC Connection max idle timeout exhausted\n",
    );
    expect(quicheLostFinSeen(withBoth)).toBe(true);

    const noTimeout = cellDir();
    mkdirSync(join(noTimeout, "qlog"));
    writeFileSync(join(noTimeout, "qlog", "a_server.sqlog"), qlog(lostFin));
    writeFileSync(join(noTimeout, "client.log"), "RESULT peer=matrixai ok=0 files=9/10\n");
    expect(quicheLostFinSeen(noTimeout)).toBe(false);

    const noPattern = cellDir();
    mkdirSync(join(noPattern, "qlog"));
    writeFileSync(join(noPattern, "qlog", "a_server.sqlog"), qlog([...lostFin, remoteClose]));
    writeFileSync(join(noPattern, "client.log"), "ErrorQUICConnectionIdleTimeout\n");
    expect(quicheLostFinSeen(noPattern)).toBe(false);
  });
});
