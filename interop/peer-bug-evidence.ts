/**
 * The signatures of diagnosed peer bugs in a cell's results folder: what the matrix must find in
 * a failed run's own logs before it calls the failure the peer's (`KnownBug.seen` of an Impl).
 * Read-only; a log that is missing or unreadable shows no signature.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface RelayRecord {
  dir?: string;
  kinds?: string[];
  fate?: string;
}

/** The relay's capture (relay-log.jsonl, one JSON record a line) of the cell in `dir`. */
function relayRecords(dir: string): RelayRecord[] {
  const file = join(dir, "relay-log.jsonl");
  if (!existsSync(file)) return [];
  const out: RelayRecord[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as RelayRecord);
    } catch {
      // a torn last line: not evidence
    }
  }
  return out;
}

/** The relay forwarded a Version Negotiation packet to the client (relay-log.jsonl kind "vn"). */
export function versionNegotiationReachedClient(dir: string): boolean {
  return relayRecords(dir).some(
    (r) => r.dir === "toClient" && r.fate === "forwarded" && (r.kinds ?? []).includes("vn"),
  );
}

interface QlogFrame {
  frame_type?: string;
  stream_id?: number;
  offset?: number;
  fin?: boolean;
  raw?: { length?: number };
  acked_ranges?: number[][];
}

interface QlogEvent {
  name?: string;
  data?: {
    initiator?: string;
    header?: { packet_type?: string; packet_number?: number };
    frames?: QlogFrame[];
  };
}

/** The events of one JSON-SEQ qlog file (records split by RS or newline; torn records skipped). */
function qlogEvents(file: string): QlogEvent[] {
  const out: QlogEvent[] = [];
  // JSON-SEQ: records start with RS (U+001E); one record per line as well.
  for (const rec of readFileSync(file, "utf8").replaceAll("\u001e", "\n").split("\n")) {
    if (!rec.trim()) continue;
    try {
      out.push(JSON.parse(rec) as QlogEvent);
    } catch {
      // a torn record (process killed mid-write)
    }
  }
  return out;
}

interface StreamChunk {
  readonly stream: number;
  readonly start: number;
  readonly end: number;
  readonly fin: boolean;
}

/** Whether [start, end) lies inside the union of `ranges`. */
function covered(start: number, end: number, ranges: [number, number][]): boolean {
  let at = start;
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    if (a > at) break;
    if (b > at) at = b;
    if (at >= end) return true;
  }
  return at >= end;
}

/**
 * One purequic qlog shows quiche 0.18's lost FIN (RecvBuf::write drops a FIN that comes with bytes
 * it already has): the peer acknowledged a 1-RTT packet carrying a client bidirectional stream's
 * FIN together with data, every byte of which it had already acknowledged in a packet with a lower
 * number — and the connection never ended by the peer's CONNECTION_CLOSE (the client idled out).
 */
export function lostFinPatternInQlog(file: string): boolean {
  const sent = new Map<number, StreamChunk[]>();
  const acked: number[] = [];
  const isAcked = new Set<number>();
  let remoteClose = false;
  for (const e of qlogEvents(file)) {
    if (e.name === "quic:connection_closed" && e.data?.initiator === "remote") remoteClose = true;
    const h = e.data?.header;
    if (h?.packet_type !== "1RTT" || h.packet_number === undefined) continue;
    const frames = e.data?.frames ?? [];
    if (e.name === "quic:packet_sent") {
      const chunks: StreamChunk[] = [];
      for (const f of frames) {
        // Client-initiated bidirectional streams: the requests (RFC 9000 §2.1).
        if (f.frame_type !== "stream" || f.stream_id === undefined || f.stream_id % 4 !== 0) continue;
        const start = f.offset ?? 0;
        chunks.push({ stream: f.stream_id, start, end: start + (f.raw?.length ?? 0), fin: f.fin === true });
      }
      sent.set(h.packet_number, chunks);
    } else if (e.name === "quic:packet_received") {
      for (const f of frames) {
        if (f.frame_type !== "ack") continue;
        for (const r of f.acked_ranges ?? []) {
          const [lo, hi = lo] = r;
          for (let pn = lo; pn <= hi; pn++) {
            if (sent.has(pn) && !isAcked.has(pn)) {
              isAcked.add(pn);
              acked.push(pn);
            }
          }
        }
      }
    }
  }
  if (remoteClose) return false;
  for (const pn of acked) {
    for (const c of sent.get(pn) ?? []) {
      if (!c.fin || c.end <= c.start) continue;
      const before: [number, number][] = [];
      for (const other of acked) {
        if (other >= pn) continue;
        for (const o of sent.get(other) ?? []) if (o.stream === c.stream) before.push([o.start, o.end]);
      }
      if (covered(c.start, c.end, before)) return true;
    }
  }
  return false;
}

/**
 * The cell in `dir` failed through quiche's lost FIN: its client (matrixai-peer.ts on
 * @matrixai/quic) reports an idle timeout, and one of purequic's server qlog files shows the
 * pattern of {@link lostFinPatternInQlog}.
 */
export function quicheLostFinSeen(dir: string): boolean {
  const log = join(dir, "client.log");
  if (!existsSync(log) || !readFileSync(log, "utf8").includes("ErrorQUICConnectionIdleTimeout")) return false;
  const qlogDir = join(dir, "qlog");
  if (!existsSync(qlogDir)) return false;
  return readdirSync(qlogDir)
    .filter((f) => f.endsWith("_server.sqlog"))
    .some((f) => lostFinPatternInQlog(join(qlogDir, f)));
}
