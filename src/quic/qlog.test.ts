import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Frame, FrameKind } from "./frames.ts";
import {
  QLOG_FILE_SCHEMA,
  QLOG_QUIC_EVENT_SCHEMA,
  QLOG_SERIALIZATION_FORMAT,
  type QlogVantage,
  QlogWriter,
  qlogAckRanges,
  qlogFileName,
  qlogFrame,
  qlogFromEnv,
  qlogUint64,
} from "./qlog.ts";

type Rec = Record<string, unknown> & {
  time: number;
  name: string;
  data: Record<string, unknown>;
};

const ODCID = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04]);
const bytes = (...b: number[]) => Uint8Array.from(b);
const ascii = (s: string) => new TextEncoder().encode(s);

/** Splits JSON-SEQ text into parsed records, checking the RFC 7464 framing of every record. */
function parseSeq(text: string): Record<string, unknown>[] {
  expect(text.startsWith("\x1e")).toBe(true);
  const parts = text.split("\x1e").slice(1);
  return parts.map((p) => {
    expect(p.endsWith("\n")).toBe(true);
    return JSON.parse(p) as Record<string, unknown>;
  });
}

function memoryWriter(side: QlogVantage = "client", referenceTime?: number) {
  const chunks: string[] = [];
  const w = new QlogWriter({ side, odcid: ODCID, write: (c) => chunks.push(c), referenceTime });
  return {
    w,
    chunks,
    header: () => parseSeq(chunks.join(""))[0],
    events: () => parseSeq(chunks.join("")).slice(1) as Rec[],
  };
}

describe("QlogWriter: JSON-SEQ file header", () => {
  it("writes the QlogFileSeq header first, with vantage point, group_id and time format", () => {
    const { header, chunks } = memoryWriter("server");
    expect(chunks).toHaveLength(1);
    const h = header() as {
      file_schema: string;
      serialization_format: string;
      title: string;
      trace: {
        vantage_point: { type: string; name: string };
        event_schemas: string[];
        common_fields: {
          group_id: string;
          time_format: string;
          reference_time: { clock_type: string; epoch: string; wall_clock_time: string };
        };
      };
    };
    expect(h.file_schema).toBe("urn:ietf:params:qlog:file:sequential");
    expect(h.file_schema).toBe(QLOG_FILE_SCHEMA);
    expect(h.serialization_format).toBe("application/qlog+json-seq");
    expect(h.serialization_format).toBe(QLOG_SERIALIZATION_FORMAT);
    expect(h.title).toContain("deadbeef01020304");
    expect(h.trace.vantage_point).toEqual({ name: "purequic", type: "server" });
    expect(h.trace.event_schemas).toEqual([QLOG_QUIC_EVENT_SCHEMA]);
    expect(QLOG_QUIC_EVENT_SCHEMA).toBe("urn:ietf:params:qlog:events:quic-13");
    expect(h.trace.common_fields.group_id).toBe("deadbeef01020304");
    expect(h.trace.common_fields.time_format).toBe("relative_to_epoch");
    expect(h.trace.common_fields.reference_time.clock_type).toBe("monotonic");
    expect(h.trace.common_fields.reference_time.epoch).toBe("unknown");
    expect(Number.isNaN(Date.parse(h.trace.common_fields.reference_time.wall_clock_time))).toBe(false);
    // main-schema §4: file_schema and serialization_format within the first 256 bytes.
    const first256 = chunks[0].slice(0, 256);
    expect(first256).toContain('"file_schema"');
    expect(first256).toContain('"serialization_format"');
    // No uppercase field names anywhere (main-schema §11.2).
    const keys = JSON.stringify(h).match(/"([^"]+)":/g) ?? [];
    for (const k of keys) expect(k).toBe(k.toLowerCase());
  });

  it("uses the client vantage point for a client writer", () => {
    const { header } = memoryWriter("client");
    expect((header().trace as { vantage_point: { type: string } }).vantage_point.type).toBe("client");
  });
});

describe("QlogWriter: events", () => {
  it("one RS-framed record per event, names in the quic namespace, times relative to the first event", () => {
    const { w, chunks, events } = memoryWriter("client");
    w.connectionStateUpdated("handshake", 10_000);
    w.packetSent({ type: "initial", pn: 0, size: 1200, frames: [{ kind: "ping" }] }, 10_012.5);
    w.connectionStateUpdated("established", 10_100.0004);
    expect(chunks).toHaveLength(4);
    for (const c of chunks) {
      expect(c[0]).toBe("\x1e");
      expect(c.endsWith("\n")).toBe(true);
      expect(c.slice(1).includes("\x1e")).toBe(false);
    }
    const ev = events();
    expect(ev.map((e) => e.name)).toEqual([
      "quic:connection_state_updated",
      "quic:packet_sent",
      "quic:connection_state_updated",
    ]);
    expect(ev.map((e) => e.time)).toEqual([0, 12.5, 100]);
  });

  it("measures time from the given reference time", () => {
    const { w, events } = memoryWriter("server", 500);
    w.connectionStateUpdated("handshake", 750);
    expect(events()[0].time).toBe(250);
  });

  it("connection_started logs both tuple halves and version_information the version", () => {
    const { w, events } = memoryWriter("client");
    w.connectionStarted(
      {
        side: "client",
        version: 1,
        srcCid: bytes(1, 2),
        dstCid: ODCID,
        localAddress: { address: "192.0.2.1", port: 4433 },
        remoteAddress: { address: "2001:db8::1", port: 443 },
        supportedVersions: [1, 0x6b3343cf],
      },
      0,
    );
    const [started, version] = events();
    expect(started.name).toBe("quic:connection_started");
    expect(started.data).toEqual({
      local: { ip_v4: "192.0.2.1", port_v4: 4433, connection_ids: ["0102"] },
      remote: { ip_v6: "2001:db8::1", port_v6: 443, connection_ids: ["deadbeef01020304"] },
    });
    expect(version.name).toBe("quic:version_information");
    expect(version.data).toEqual({ chosen_version: "00000001", client_versions: ["00000001", "6b3343cf"] });
  });

  it("packet_sent: header, raw.length and frames with the draft's field names", () => {
    const { w, events } = memoryWriter("client");
    const frames: Frame[] = [
      { kind: "stream", streamId: 4, offset: 1000, data: new Uint8Array(300), fin: true },
      { kind: "ack", largest: 10, ackDelay: 125, ranges: [10, 8, 5, 5, 3, 1] },
      { kind: "padding", length: 17 },
    ];
    w.packetSent({ type: "1rtt", pn: 42, size: 1252, frames }, 3);
    const [e] = events();
    expect(e.name).toBe("quic:packet_sent");
    expect(e.data.header).toEqual({ packet_type: "1RTT", packet_number: 42 });
    expect(e.data.raw).toEqual({ length: 1252 });
    expect(e.data.frames).toEqual([
      { frame_type: "stream", stream_id: 4, offset: 1000, fin: true, raw: { length: 300 } },
      // ack_delay: 125 << 3 µs = 1 ms (default ack_delay_exponent 3).
      { frame_type: "ack", ack_delay: 1, acked_ranges: [[1, 3], [5], [8, 10]] },
      { frame_type: "padding", raw: { length: 17, payload_length: 17 } },
    ]);
  });

  it("packet_received scales ack_delay with the peer's ack_delay_exponent, packet_sent with ours", () => {
    const { w, events } = memoryWriter("server");
    w.parametersSet("remote", { ackDelayExponent: 10 }, 0);
    w.parametersSet("local", { ackDelayExponent: 0 }, 0);
    const ack: Frame = {
      kind: "ack",
      largest: 7,
      ackDelay: 3,
      ranges: [7, 7],
      ecn: { ect0: 5, ect1: 1, ce: 2 },
    };
    w.packetReceived({ type: "handshake", pn: 9, size: 60, frames: [ack] }, 1);
    w.packetSent({ type: "handshake", pn: 3, size: 60, frames: [ack] }, 2);
    const [, , received, sent] = events();
    expect(received.name).toBe("quic:packet_received");
    expect(received.data.header).toEqual({ packet_type: "handshake", packet_number: 9 });
    expect(received.data.frames).toEqual([
      { frame_type: "ack", ack_delay: 3.072, acked_ranges: [[7]], ect1: 1, ect0: 5, ce: 2 },
    ]);
    expect((sent.data.frames as { ack_delay: number }[])[0].ack_delay).toBe(0.003);
  });

  it("logs connection IDs and omits packet_number for packets that have none", () => {
    const { w, events } = memoryWriter("client");
    w.packetReceived(
      { type: "version_negotiation", pn: 0, size: 43, supportedVersions: [0x6b3343cf, 0x1a2a3a4a] },
      0,
    );
    w.packetSent(
      { type: "0rtt", pn: 1, size: 100, scid: bytes(0xaa), dcid: bytes(0xbb, 0xcc), frames: [] },
      0,
    );
    const [vn, zeroRtt] = events();
    expect(vn.data.header).toEqual({ packet_type: "version_negotiation" });
    expect(vn.data.supported_versions).toEqual(["6b3343cf", "1a2a3a4a"]);
    expect(vn.data.frames).toBeUndefined();
    expect(zeroRtt.data.header).toEqual({ packet_type: "0RTT", packet_number: 1, scid: "aa", dcid: "bbcc" });
    expect(zeroRtt.data.frames).toEqual([]);
  });

  it("packet_dropped: a known trigger as is, free text as details.reason with trigger general", () => {
    const { w, events } = memoryWriter("server");
    w.packetDropped({ type: "initial", size: 1200, reason: "decryption_failure" }, 0);
    w.packetDropped({ size: 80, reason: "no keys for space" }, 0);
    w.packetDropped({ type: "1rtt", size: 50, reason: "stale key phase", trigger: "key_unavailable" }, 0);
    const [a, b, c] = events();
    expect(a.name).toBe("quic:packet_dropped");
    expect(a.data).toEqual({
      header: { packet_type: "initial" },
      raw: { length: 1200 },
      trigger: "decryption_failure",
    });
    expect(b.data).toEqual({
      raw: { length: 80 },
      details: { reason: "no keys for space" },
      trigger: "general",
    });
    expect(c.data).toEqual({
      header: { packet_type: "1RTT" },
      raw: { length: 50 },
      details: { reason: "stale key phase" },
      trigger: "key_unavailable",
    });
  });

  it("packet_lost carries the header, trigger and optional frames", () => {
    const { w, events } = memoryWriter("client");
    w.packetLost({ type: "1rtt", pn: 77, trigger: "time_threshold" }, 0);
    w.packetLost({ type: "initial", pn: 1, trigger: "pto_expired", frames: [{ kind: "ping" }] }, 0);
    const [a, b] = events();
    expect(a.name).toBe("quic:packet_lost");
    expect(a.data).toEqual({ header: { packet_type: "1RTT", packet_number: 77 }, trigger: "time_threshold" });
    expect(b.data).toEqual({
      header: { packet_type: "initial", packet_number: 1 },
      frames: [{ frame_type: "ping" }],
      trigger: "pto_expired",
    });
  });

  it("recovery_metrics_updated logs only the metrics that changed", () => {
    const { w, events } = memoryWriter("client");
    const m = {
      cwnd: 12000,
      bytesInFlight: 0,
      smoothedRtt: 333,
      minRtt: 0,
      latestRtt: 0,
      rttVariance: 166.5,
      ssthresh: Number.POSITIVE_INFINITY,
    };
    w.metricsUpdated(m, 0);
    w.metricsUpdated({ ...m, bytesInFlight: 1200 }, 1);
    w.metricsUpdated({ ...m, bytesInFlight: 1200 }, 2); // nothing changed: no event
    w.metricsUpdated(
      { ...m, bytesInFlight: 0, smoothedRtt: 50, minRtt: 50, latestRtt: 50, ssthresh: 6000 },
      3,
    );
    const ev = events();
    expect(ev.map((e) => e.name)).toEqual([
      "quic:recovery_metrics_updated",
      "quic:recovery_metrics_updated",
      "quic:recovery_metrics_updated",
    ]);
    // Infinity ssthresh is not logged (JSON has no Infinity).
    expect(ev[0].data).toEqual({
      min_rtt: 0,
      smoothed_rtt: 333,
      latest_rtt: 0,
      rtt_variance: 166.5,
      congestion_window: 12000,
      bytes_in_flight: 0,
    });
    expect(ev[1].data).toEqual({ bytes_in_flight: 1200 });
    expect(ev[1].time).toBe(1);
    expect(ev[2].data).toEqual({
      min_rtt: 50,
      smoothed_rtt: 50,
      latest_rtt: 50,
      bytes_in_flight: 0,
      ssthresh: 6000,
    });
  });

  it("key_updated / key_discarded", () => {
    const { w, events } = memoryWriter("server");
    w.keyUpdated({ keyType: "server_handshake_secret", trigger: "tls" }, 0);
    w.keyUpdated({ keyType: "client_1rtt_secret", generation: 1, trigger: "remote_update" }, 1);
    w.keyDiscarded({ keyType: "client_initial_secret", trigger: "tls" }, 2);
    w.keyDiscarded({ keyType: "server_1rtt_secret", generation: 0 }, 3);
    const ev = events();
    expect(ev.map((e) => e.name)).toEqual([
      "quic:key_updated",
      "quic:key_updated",
      "quic:key_discarded",
      "quic:key_discarded",
    ]);
    expect(ev[0].data).toEqual({ key_type: "server_handshake_secret", trigger: "tls" });
    expect(ev[1].data).toEqual({ key_type: "client_1rtt_secret", key_phase: 1, trigger: "remote_update" });
    expect(ev[2].data).toEqual({ key_type: "client_initial_secret", trigger: "tls" });
    expect(ev[3].data).toEqual({ key_type: "server_1rtt_secret", key_phase: 0 });
  });

  it("connection_state_updated tracks the old state and skips repeats", () => {
    const { w, events } = memoryWriter("client");
    w.connectionStateUpdated("attempted", 0);
    w.connectionStateUpdated("handshake_complete", 1);
    w.connectionStateUpdated("handshake_complete", 2);
    w.connectionStateUpdated("closed", 3);
    const ev = events();
    expect(ev.map((e) => e.data)).toEqual([
      { new: "attempted" },
      { old: "attempted", new: "handshake_complete" },
      { old: "handshake_complete", new: "closed" },
    ]);
    expect(ev.every((e) => e.name === "quic:connection_state_updated")).toBe(true);
  });

  it("tuple_assigned: both tuple halves, IPv4/IPv6, and abandonment with no endpoint (§4.7)", () => {
    const { w, events } = memoryWriter("server");
    w.tupleAssigned({ tupleId: "", remote: { address: "192.0.2.7", port: 5000 }, remoteCid: bytes(1, 2) }, 0);
    w.tupleAssigned(
      {
        tupleId: "1",
        remote: { address: "2001:db8::1", port: 443 },
        local: { address: "192.0.2.1", port: 4433 },
      },
      1,
    );
    w.tupleAssigned({ tupleId: "1" }, 2);
    const ev = events();
    expect(ev.every((e) => e.name === "quic:tuple_assigned")).toBe(true);
    expect(ev.map((e) => e.data)).toEqual([
      { tuple_id: "", tuple_remote: { ip_v4: "192.0.2.7", port_v4: 5000, connection_ids: ["0102"] } },
      {
        tuple_id: "1",
        tuple_remote: { ip_v6: "2001:db8::1", port_v6: 443 },
        tuple_local: { ip_v4: "192.0.2.1", port_v4: 4433 },
      },
      { tuple_id: "1" },
    ]);
  });

  it("migration_state_updated: old/new per tuple, a reused tuple ID starts afresh (§5.20)", () => {
    const { w, events } = memoryWriter("client");
    const remote = { address: "192.0.2.2", port: 8443 };
    w.migrationStateUpdated({ state: "probing_started", tupleId: "1", remote }, 0);
    w.migrationStateUpdated({ state: "migration_started", tupleId: "2" }, 1);
    w.migrationStateUpdated({ state: "probing_successful", tupleId: "1", remote }, 2);
    w.tupleAssigned({ tupleId: "1" }, 3);
    w.migrationStateUpdated({ state: "probing_started", tupleId: "1" }, 4);
    const ev = events().filter((e) => e.name === "quic:migration_state_updated");
    expect(ev.map((e) => e.data)).toEqual([
      { new: "probing_started", tuple_id: "1", tuple_remote: { ip_v4: "192.0.2.2", port_v4: 8443 } },
      { new: "migration_started", tuple_id: "2" },
      {
        old: "probing_started",
        new: "probing_successful",
        tuple_id: "1",
        tuple_remote: { ip_v4: "192.0.2.2", port_v4: 8443 },
      },
      { new: "probing_started", tuple_id: "1" },
    ]);
  });

  it("mtu_updated: old and new, done only when the search ended (§4.8)", () => {
    const { w, events } = memoryWriter("client");
    w.mtuUpdated({ old: 1200, new: 1326 }, 0);
    w.mtuUpdated({ new: 1326, done: true }, 1);
    w.mtuUpdated({ old: 1326, new: 1200, done: false }, 2);
    const ev = events();
    expect(ev.every((e) => e.name === "quic:mtu_updated")).toBe(true);
    expect(ev.map((e) => e.data)).toEqual([
      { old: 1200, new: 1326 },
      { new: 1326, done: true },
      { old: 1326, new: 1200 },
    ]);
  });

  it("connection_closed maps transport codes to names, crypto errors, unknown codes and bigint app codes", () => {
    const { w, events } = memoryWriter("client");
    w.connectionClosed({ owner: "local", connectionCode: 0x0a, reason: "bad frame", trigger: "error" }, 0);
    w.connectionClosed({ owner: "remote", connectionCode: 0x12a }, 0);
    w.connectionClosed({ owner: "remote", connectionCode: 0x11n }, 0);
    w.connectionClosed({ owner: "local", applicationCode: (1n << 62n) - 1n, trigger: "application" }, 0);
    w.connectionClosed({ owner: "local", applicationCode: 0x100n }, 0);
    w.connectionClosed({ owner: "local", connectionCode: "no_error", trigger: "idle_timeout" }, 0);
    const ev = events();
    expect(ev.every((e) => e.name === "quic:connection_closed")).toBe(true);
    expect(ev.map((e) => e.data)).toEqual([
      { initiator: "local", connection_error: "protocol_violation", reason: "bad frame", trigger: "error" },
      { initiator: "remote", connection_error: "crypto_error_0x12a" },
      { initiator: "remote", connection_error: "unknown", error_code: 17 },
      {
        initiator: "local",
        application_error: "unknown",
        error_code: "4611686018427387903",
        trigger: "application",
      },
      { initiator: "local", application_error: "unknown", error_code: 256 },
      { initiator: "local", connection_error: "no_error", trigger: "idle_timeout" },
    ]);
  });

  it("parameters_set: initiator, snake_case names, hex connection IDs, unknown parameters", () => {
    const { w, events } = memoryWriter("server");
    w.parametersSet(
      "local",
      {
        originalDestinationConnectionId: ODCID,
        initialSourceConnectionId: bytes(9, 9),
        statelessResetToken: new Uint8Array(16).fill(0xab),
        maxIdleTimeout: 30000,
        initialMaxData: 1 << 20,
        initialMaxStreamsBidi: 100,
        disableActiveMigration: true,
        maxDatagramFrameSize: 65535,
        greaseQuicBit: true,
        preferredAddress: {
          ipv4Address: bytes(198, 51, 100, 7),
          ipv4Port: 4433,
          ipv6Address: new Uint8Array(16),
          ipv6Port: 0,
          connectionId: bytes(1, 2, 3),
          statelessResetToken: new Uint8Array(16),
        },
        unknown: [
          { id: 27n, value: bytes(0xff) },
          { id: (1n << 62n) - 1n, value: bytes() },
        ],
      },
      0,
    );
    w.parametersSet("remote", { initialSourceConnectionId: bytes(1), ackDelayExponent: 8 }, 1);
    const [local, remote] = events();
    expect(local.name).toBe("quic:parameters_set");
    expect(local.data).toEqual({
      initiator: "local",
      original_destination_connection_id: "deadbeef01020304",
      initial_source_connection_id: "0909",
      stateless_reset_token: "ab".repeat(16),
      disable_active_migration: true,
      max_idle_timeout: 30000,
      initial_max_data: 1048576,
      initial_max_streams_bidi: 100,
      preferred_address: {
        ip_v4: "198.51.100.7",
        port_v4: 4433,
        connection_id: "010203",
        stateless_reset_token: "00".repeat(16),
      },
      unknown_parameters: [
        { id: 27, value: "ff" },
        { id: "4611686018427387903", value: "" },
      ],
      max_datagram_frame_size: 65535,
      grease_quic_bit: true,
    });
    expect(remote.data).toEqual({
      initiator: "remote",
      initial_source_connection_id: "01",
      ack_delay_exponent: 8,
    });
  });

  it("ignores events after close(), and close() is idempotent", async () => {
    const { w, chunks } = memoryWriter("client");
    w.connectionStateUpdated("attempted", 0);
    expect(w.closed).toBe(false);
    const p = w.close();
    expect(w.close()).toBe(p);
    await p;
    expect(w.closed).toBe(true);
    w.connectionStateUpdated("closed", 1);
    expect(chunks).toHaveLength(2);
  });

  it("close() resolves even when the close callback fails", async () => {
    const w = new QlogWriter({
      side: "client",
      odcid: ODCID,
      write: () => {},
      onClose: () => Promise.reject(new Error("disk gone")),
    });
    await expect(w.close()).resolves.toBeUndefined();
  });
});

describe("qlogFrame: every frame kind of frames.ts", () => {
  const cases: [Frame, Record<string, unknown>][] = [
    [
      { kind: "padding", length: 3 },
      { frame_type: "padding", raw: { length: 3, payload_length: 3 } },
    ],
    [{ kind: "ping" }, { frame_type: "ping" }],
    [
      { kind: "ack", largest: 100, ackDelay: 0, ranges: [100, 90] },
      { frame_type: "ack", ack_delay: 0, acked_ranges: [[90, 100]] },
    ],
    [
      { kind: "reset_stream", streamId: 8, errorCode: 0x10cn, finalSize: 5000 },
      { frame_type: "reset_stream", stream_id: 8, error: "unknown", error_code: 268, final_size: 5000 },
    ],
    [
      { kind: "stop_sending", streamId: 3, errorCode: 1n << 60n },
      { frame_type: "stop_sending", stream_id: 3, error: "unknown", error_code: "1152921504606846976" },
    ],
    [
      { kind: "crypto", offset: 1234, data: new Uint8Array(56) },
      { frame_type: "crypto", offset: 1234, raw: { length: 56 } },
    ],
    [
      { kind: "new_token", token: bytes(0xca, 0xfe) },
      { frame_type: "new_token", token: { type: "resumption", raw: { length: 2, data: "cafe" } } },
    ],
    [
      { kind: "stream", streamId: 0, offset: 0, data: new Uint8Array(0), fin: false, noLength: true },
      { frame_type: "stream", stream_id: 0, offset: 0, fin: false, raw: { length: 0 } },
    ],
    [
      { kind: "max_data", maximum: 99 },
      { frame_type: "max_data", maximum: 99 },
    ],
    [
      { kind: "max_stream_data", streamId: 4, maximum: 7 },
      { frame_type: "max_stream_data", stream_id: 4, maximum: 7 },
    ],
    [
      { kind: "max_streams", bidi: true, maximum: 10 },
      { frame_type: "max_streams", stream_type: "bidirectional", maximum: 10 },
    ],
    [
      { kind: "data_blocked", limit: 5 },
      { frame_type: "data_blocked", limit: 5 },
    ],
    [
      { kind: "stream_data_blocked", streamId: 2, limit: 6 },
      { frame_type: "stream_data_blocked", stream_id: 2, limit: 6 },
    ],
    [
      { kind: "streams_blocked", bidi: false, limit: 3 },
      { frame_type: "streams_blocked", stream_type: "unidirectional", limit: 3 },
    ],
    [
      {
        kind: "new_connection_id",
        sequence: 2,
        retirePriorTo: 1,
        connectionId: bytes(1, 2, 3, 4),
        statelessResetToken: new Uint8Array(16).fill(0x11),
      },
      {
        frame_type: "new_connection_id",
        sequence_number: 2,
        retire_prior_to: 1,
        connection_id_length: 4,
        connection_id: "01020304",
        stateless_reset_token: "11".repeat(16),
      },
    ],
    [
      { kind: "retire_connection_id", sequence: 5 },
      { frame_type: "retire_connection_id", sequence_number: 5 },
    ],
    [
      { kind: "path_challenge", data: bytes(1, 2, 3, 4, 5, 6, 7, 8) },
      { frame_type: "path_challenge", data: "0102030405060708" },
    ],
    [
      { kind: "path_response", data: bytes(8, 7, 6, 5, 4, 3, 2, 1) },
      { frame_type: "path_response", data: "0807060504030201" },
    ],
    [
      {
        kind: "connection_close",
        application: false,
        errorCode: 0x7n,
        frameType: 0x08,
        reason: ascii("bad"),
      },
      {
        frame_type: "connection_close",
        error_space: "transport",
        error: "frame_encoding_error",
        reason: "bad",
        trigger_frame_type: 8,
      },
    ],
    [{ kind: "handshake_done" }, { frame_type: "handshake_done" }],
    [
      { kind: "datagram", data: new Uint8Array(33) },
      { frame_type: "datagram", raw: { length: 33 } },
    ],
  ];

  it("covers all 21 frame kinds", () => {
    const kinds = new Set<FrameKind>(cases.map(([f]) => f.kind));
    expect(kinds.size).toBe(21);
  });

  for (const [frame, expected] of cases) {
    it(`maps ${frame.kind}`, () => {
      // Through JSON, as the writer emits it: no bigint may survive, undefined members vanish.
      expect(JSON.parse(JSON.stringify(qlogFrame(frame)))).toEqual(expected);
    });
  }

  it("connection_close: application space, crypto errors, non-UTF-8 reasons, unknown trigger frame", () => {
    expect(
      qlogFrame({
        kind: "connection_close",
        application: true,
        errorCode: 0x101n,
        frameType: 0,
        reason: ascii(""),
      }),
    ).toEqual({
      frame_type: "connection_close",
      error_space: "application",
      error: "unknown",
      error_code: 257,
    });
    const crypto = qlogFrame({
      kind: "connection_close",
      application: false,
      errorCode: 0x178n,
      frameType: 0,
      reason: bytes(0xff, 0xfe),
    });
    expect(crypto).toEqual({
      frame_type: "connection_close",
      error_space: "transport",
      error: "crypto_error_0x178",
      error_code: undefined,
      reason_bytes: "fffe",
    });
    const unknown = qlogFrame({
      kind: "connection_close",
      application: false,
      errorCode: (1n << 62n) - 1n,
      frameType: 0x1e,
      reason: ascii("é"),
    });
    expect(JSON.parse(JSON.stringify(unknown))).toEqual({
      frame_type: "connection_close",
      error_space: "transport",
      error: "unknown",
      error_code: "4611686018427387903",
      reason: "é",
      trigger_frame_type: 30,
    });
  });

  it("ack: ranges ascending as [low, high], [n] for single packets; ECN counts; delay scaled", () => {
    expect(qlogAckRanges([20, 20, 15, 12, 9, 9, 4, 0])).toEqual([[0, 4], [9], [12, 15], [20]]);
    expect(qlogAckRanges([5, 5])).toEqual([[5]]);
    const f = qlogFrame(
      { kind: "ack", largest: 3, ackDelay: 1000, ranges: [3, 0], ecn: { ect0: 1, ect1: 0, ce: 0 } },
      3,
    );
    expect(f).toEqual({ frame_type: "ack", ack_delay: 8, acked_ranges: [[0, 3]], ect1: 0, ect0: 1, ce: 0 });
  });

  it("qlogUint64: numbers when exact, decimal strings beyond 2^53-1", () => {
    expect(qlogUint64(0n)).toBe(0);
    expect(qlogUint64(BigInt(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
    expect(qlogUint64(BigInt(Number.MAX_SAFE_INTEGER) + 1n)).toBe("9007199254740992");
    expect(qlogUint64(12)).toBe(12);
  });
});

describe("QlogWriter.toFile / qlogFromEnv", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "purequic-qlog-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes <odcid hex>_<vantage>.sqlog and flushes everything on close", async () => {
    expect(qlogFileName("server", ODCID)).toBe("deadbeef01020304_server.sqlog");
    const w = QlogWriter.toFile(dir, "server", ODCID);
    expect(w.path).toBe(join(dir, "deadbeef01020304_server.sqlog"));
    // Enough records to pass the batching threshold several times, plus a tail under it.
    const n = 3000;
    for (let i = 0; i < n; i++) {
      w.packetSent(
        {
          type: "1rtt",
          pn: i,
          size: 1200,
          frames: [{ kind: "stream", streamId: 0, offset: i * 1000, data: new Uint8Array(1000), fin: false }],
        },
        i,
      );
    }
    await w.close();
    expect(w.error).toBeUndefined();
    expect(w.droppedRecords).toBe(0);
    expect(await readdir(dir)).toEqual(["deadbeef01020304_server.sqlog"]);
    const records = parseSeq(await readFile(join(dir, "deadbeef01020304_server.sqlog"), "utf8"));
    expect(records).toHaveLength(n + 1);
    expect((records[0].trace as { vantage_point: { type: string } }).vantage_point.type).toBe("server");
    const last = records[n] as Rec;
    expect(last.name).toBe("quic:packet_sent");
    expect(last.time).toBe(n - 1);
    expect(last.data.header).toEqual({ packet_type: "1RTT", packet_number: n - 1 });
  });

  it("a short trace (below the batching threshold) reaches the file on close", async () => {
    const w = QlogWriter.toFile(dir, "client", ODCID, { fileName: "custom.sqlog" });
    w.connectionStateUpdated("attempted", 0);
    await w.close();
    const records = parseSeq(await readFile(join(dir, "custom.sqlog"), "utf8"));
    expect(records.map((r) => r.name)).toEqual([undefined, "quic:connection_state_updated"]);
  });

  it("an unwritable directory is reported in .error, not thrown", async () => {
    const w = QlogWriter.toFile(join(dir, "missing", "deeper"), "client", ODCID);
    w.connectionStateUpdated("attempted", 0);
    await w.close();
    expect(w.error).toBeInstanceOf(Error);
    expect((w.error as NodeJS.ErrnoException).code).toBe("ENOENT");
  });

  it("qlogFromEnv: undefined without QLOGDIR, a file writer under QLOGDIR (created if missing)", async () => {
    expect(qlogFromEnv("client", ODCID, {})).toBeUndefined();
    expect(qlogFromEnv("client", ODCID, { QLOGDIR: "" })).toBeUndefined();
    const qlogDir = `${join(dir, "logs", "qlog")}/`;
    const w = qlogFromEnv("client", ODCID, { QLOGDIR: qlogDir });
    expect(w).toBeInstanceOf(QlogWriter);
    w?.connectionStateUpdated("attempted", 0);
    await w?.close();
    expect(w?.error).toBeUndefined();
    const text = await readFile(join(dir, "logs", "qlog", "deadbeef01020304_client.sqlog"), "utf8");
    expect(parseSeq(text)).toHaveLength(2);
  });
});
