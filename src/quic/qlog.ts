/**
 * qlog writer: structured connection traces in the JSON-SEQ serialization of
 * draft-ietf-quic-qlog-main-schema-14 (QlogFileSeq, `urn:ietf:params:qlog:file:sequential`) with the
 * QUIC events of draft-ietf-quic-qlog-quic-events-13.
 *
 * Format, per those drafts (not the older qlog 0.3 that some tools still read):
 * - Every record is RFC 7464: 0x1E (RS), one JSON text, "\n". The first record is the file header
 *   (`file_schema`, `serialization_format`, `title`, `trace`); there is no `qlog_version` field any
 *   more. The trace carries `vantage_point`, `event_schemas` and `common_fields` (`group_id` = ODCID
 *   in hex, `time_format` "relative_to_epoch", `reference_time` on a monotonic clock with an
 *   "unknown" epoch and an approximate `wall_clock_time`).
 * - Every other record is an event `{time, name, data}`: `time` in ms since the reference time (the
 *   first event's `now` unless given), `name` is `quic:<event>` — the drafts merged the former
 *   `transport:`, `recovery:`, `security:` and `connectivity:` categories into the `quic` namespace
 *   (`quic:recovery_metrics_updated`, `quic:key_updated`, ...).
 * - The event schema URI is `urn:ietf:params:qlog:events:quic-13`: quic-events §2.1 requires draft
 *   implementations to append the draft number (our copy is the one after -12).
 * - uint64 values that may exceed 2^53−1 (error codes, unknown parameter identifiers) are JSON
 *   numbers when safe, decimal strings otherwise (main-schema §11.3 allows strings for I-JSON).
 * - All field names are lowercase (main-schema §11.2), so the ODCID is logged as `group_id` only.
 *
 * Cost: the connection holds a `QlogSink | undefined` and guards every call, so nothing here runs
 * when qlog is off. When on, each call serializes synchronously (frames may be views into a buffer
 * the caller reuses — they are not retained) and hands one string to `write`. The file writer
 * batches those strings and writes them through an async `fs.WriteStream`; no sync I/O per event.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import type { Frame, FramePacketType } from "./frames.ts";
import type { PreferredAddress, TransportParameters } from "./transport-parameters.ts";

/** QlogFileSeq schema URI (main-schema §5). */
export const QLOG_FILE_SCHEMA = "urn:ietf:params:qlog:file:sequential";
/** Media type of JSON-SEQ qlog (main-schema §11.2). */
export const QLOG_SERIALIZATION_FORMAT = "application/qlog+json-seq";
/** QUIC event schema URI of the draft we follow (quic-events §2.1: draft number appended). */
export const QLOG_QUIC_EVENT_SCHEMA = "urn:ietf:params:qlog:events:quic-13";
/** RFC 7464 record separator. */
const RS = "\x1e";

// ---------------------------------------------------------------------------------------------
// Types of the sink interface
// ---------------------------------------------------------------------------------------------

export type QlogVantage = "client" | "server";

/** quic-events §8.6 PacketType. */
export type QlogPacketType =
  | "initial"
  | "handshake"
  | "0RTT"
  | "1RTT"
  | "retry"
  | "version_negotiation"
  | "stateless_reset"
  | "unknown";

/** A UDP endpoint, shaped like Node's `dgram` RemoteInfo / AddressInfo. */
export interface QlogAddress {
  address: string;
  port: number;
}

export interface QlogConnectionStartedInfo {
  side: QlogVantage;
  /** The version of our first Initial (client) or of the client's Initial (server). */
  version: number;
  /** Our connection ID. */
  srcCid: Uint8Array;
  /** The peer's connection ID (the ODCID for a client). */
  dstCid: Uint8Array;
  localAddress?: QlogAddress | undefined;
  remoteAddress?: QlogAddress | undefined;
  /** Versions this endpoint supports, logged as client_versions / server_versions. */
  supportedVersions?: readonly number[] | undefined;
}

export interface QlogPacketInfo {
  /** Either spelling: frames.ts's "0rtt"/"1rtt" are mapped to qlog's "0RTT"/"1RTT". */
  type: QlogPacketType | FramePacketType;
  /** Packet number; logged only for initial, handshake, 0RTT and 1RTT packets. */
  pn?: number | undefined;
  /** Full packet size in bytes, header and AEAD tag included (raw.length). */
  size: number;
  frames?: readonly Frame[] | undefined;
  scid?: Uint8Array | undefined;
  dcid?: Uint8Array | undefined;
  /** Versions listed by a Version Negotiation packet. */
  supportedVersions?: readonly number[] | undefined;
  /** Long headers: the Version field (header.version). */
  version?: number | undefined;
  /** 1-RTT packets: the Key Phase bit (header.key_phase_bit, RFC 9001 §6). */
  keyPhase?: 0 | 1 | undefined;
}

/** quic-events §5.7 packet_dropped triggers. */
export type QlogPacketDroppedTrigger =
  | "internal_error"
  | "rejected"
  | "unsupported"
  | "invalid"
  | "duplicate"
  | "connection_unknown"
  | "decryption_failure"
  | "key_unavailable"
  | "general";

export interface QlogPacketDroppedInfo {
  type?: QlogPacketType | FramePacketType | undefined;
  size: number;
  /**
   * Why. A {@link QlogPacketDroppedTrigger} value is logged as `trigger`; any other text is logged
   * as `details.reason` with `trigger` "general" (unless `trigger` is given).
   */
  reason: string;
  trigger?: QlogPacketDroppedTrigger | undefined;
}

export interface QlogPacketLostInfo {
  type: QlogPacketType | FramePacketType;
  pn: number;
  trigger: "reordering_threshold" | "time_threshold" | "pto_expired";
  frames?: readonly Frame[] | undefined;
}

/**
 * Recovery metrics (RTTs in ms, sizes in bytes). A field that is undefined or not finite (e.g. an
 * initial ssthresh of Infinity) is not logged.
 */
export interface QlogMetrics {
  cwnd: number;
  bytesInFlight: number;
  smoothedRtt: number;
  minRtt: number;
  latestRtt: number;
  rttVariance: number;
  ssthresh?: number | undefined;
  ptoCount?: number | undefined;
  packetsInFlight?: number | undefined;
  /** Bits per second. */
  pacingRate?: number | undefined;
}

/** quic-events §8.10 KeyType. */
export type QlogKeyType =
  | "server_initial_secret"
  | "client_initial_secret"
  | "server_handshake_secret"
  | "client_handshake_secret"
  | "server_0rtt_secret"
  | "client_0rtt_secret"
  | "server_1rtt_secret"
  | "client_1rtt_secret";

export type QlogKeyTrigger = "tls" | "remote_update" | "local_update";

export interface QlogKeyInfo {
  keyType: QlogKeyType;
  /** 1-RTT key phase (full value, not just the bit); logged as key_phase. */
  generation?: number | undefined;
  trigger: QlogKeyTrigger;
}

export interface QlogKeyDiscardedInfo {
  keyType: QlogKeyType;
  generation?: number | undefined;
  trigger?: QlogKeyTrigger | undefined;
}

/**
 * quic-events §4.7 tuple_assigned: a network tuple (a path, RFC 9000 §9) and what is known of it.
 * `tupleId` "" is the handshake's tuple. Neither address nor connection ID given: the tuple was
 * abandoned.
 */
export interface QlogTupleInfo {
  tupleId: string;
  /** Where traffic to the peer goes, and the connection ID it carries there. */
  remote?: QlogAddress | undefined;
  remoteCid?: Uint8Array | undefined;
  /** Where traffic from the peer comes in. */
  local?: QlogAddress | undefined;
}

/** quic-events §5.20 MigrationState. */
export type QlogMigrationState =
  | "probing_started"
  | "probing_abandoned"
  | "probing_successful"
  | "migration_started"
  | "migration_abandoned"
  | "migration_complete";

export interface QlogMigrationInfo extends QlogTupleInfo {
  state: QlogMigrationState;
}

/** quic-events §4.8 mtu_updated: the PLPMTU changed, or the search ended (`done`). */
export interface QlogMtuInfo {
  old?: number | undefined;
  new: number;
  done?: boolean | undefined;
}

/** quic-events §4.3 connection_closed triggers. */
export type QlogConnectionClosedTrigger =
  | "idle_timeout"
  | "application"
  | "error"
  | "version_mismatch"
  | "stateless_reset"
  | "aborted"
  | "unspecified";

export interface QlogConnectionClosedInfo {
  owner: "local" | "remote";
  /** Transport error code (mapped to its qlog name), or a qlog error name as is. */
  connectionCode?: number | bigint | string | undefined;
  applicationCode?: bigint | number | undefined;
  reason?: string | undefined;
  trigger?: QlogConnectionClosedTrigger | undefined;
}

/**
 * What the connection calls. Every method is fire-and-forget; `now` is the connection's clock in
 * milliseconds (the same clock for every call).
 */
export interface QlogSink {
  connectionStarted(info: QlogConnectionStartedInfo, now: number): void;
  parametersSet(owner: "local" | "remote", params: TransportParameters, now: number): void;
  packetSent(info: QlogPacketInfo, now: number): void;
  packetReceived(info: QlogPacketInfo, now: number): void;
  packetDropped(info: QlogPacketDroppedInfo, now: number): void;
  packetLost(info: QlogPacketLostInfo, now: number): void;
  /** Logs only the metrics that changed since the previous call; nothing if none did. */
  metricsUpdated(m: QlogMetrics, now: number): void;
  keyUpdated(info: QlogKeyInfo, now: number): void;
  keyDiscarded(info: QlogKeyDiscardedInfo, now: number): void;
  /**
   * The version in use changed after connection_started: compatible version negotiation
   * (RFC 9368 §2.3) or a new attempt after Version Negotiation; logged as version_information.
   */
  versionChosen?(
    info: { version: number; side: QlogVantage; versions?: readonly number[] },
    now: number,
  ): void;
  /** Logs `{old, new}`; a repeat of the current state is not logged. */
  connectionStateUpdated(newState: string, now: number): void;
  /** A path's tuple was created, updated or abandoned (quic-events tuple_assigned). */
  tupleAssigned?(info: QlogTupleInfo, now: number): void;
  /** A step of probing or migrating to a path (quic-events migration_state_updated). */
  migrationStateUpdated?(info: QlogMigrationInfo, now: number): void;
  /** PMTU discovery changed the packet size or finished a search (quic-events mtu_updated). */
  mtuUpdated?(info: QlogMtuInfo, now: number): void;
  connectionClosed(info: QlogConnectionClosedInfo, now: number): void;
  /** Flushes and releases the output; later calls are ignored. Never rejects. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

/** What we hand to JSON.stringify: no bigint, no NaN/Infinity; undefined members are omitted. */
export type QlogJson = string | number | boolean | null | QlogJson[] | QlogObject;
export interface QlogObject {
  [key: string]: QlogJson | undefined;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** A uint64: a JSON number when exact, else a decimal string (main-schema §11.3). */
export function qlogUint64(v: bigint | number): number | string {
  if (typeof v === "number") return v;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n ? Number(v) : v.toString();
}

/** QuicVersion is a hexstring (quic-events §8.1): 8 hex digits. */
function versionHex(v: number): string {
  return (v >>> 0).toString(16).padStart(8, "0");
}

/** ms with at most µs resolution, to keep the output short. */
function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function normalizePacketType(t: QlogPacketType | FramePacketType): QlogPacketType {
  return t === "0rtt" ? "0RTT" : t === "1rtt" ? "1RTT" : t;
}

function hasPacketNumber(t: QlogPacketType): boolean {
  return t === "initial" || t === "handshake" || t === "0RTT" || t === "1RTT";
}

/** quic-events §8.13.24 TransportError names, indexed by code (RFC 9000 §20.1). */
const TRANSPORT_ERROR_NAMES = [
  "no_error",
  "internal_error",
  "connection_refused",
  "flow_control_error",
  "stream_limit_error",
  "stream_state_error",
  "final_size_error",
  "frame_encoding_error",
  "transport_parameter_error",
  "connection_id_limit_error",
  "protocol_violation",
  "invalid_token",
  "application_error",
  "crypto_buffer_exceeded",
  "key_update_error",
  "aead_limit_reached",
  "no_viable_path",
] as const;

/**
 * The qlog name of a transport error code: a $TransportError, "crypto_error_0x1XX" for the
 * CRYPTO_ERROR range (§8.13.26), or "unknown" — then `code` carries the raw value.
 */
export function qlogTransportError(code: bigint | number): { error: string; code?: number | string } {
  const n = typeof code === "bigint" ? (code >= 0n && code <= 0x1ffn ? Number(code) : -1) : code;
  if (n >= 0 && n < TRANSPORT_ERROR_NAMES.length) return { error: TRANSPORT_ERROR_NAMES[n] };
  if (n >= 0x100 && n <= 0x1ff) return { error: `crypto_error_0x${n.toString(16)}` };
  return { error: "unknown", code: qlogUint64(code) };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** IPAddress (quic-events §8.4) in human-readable form. */
function ipv4Text(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16).padStart(4, "0"));
  return groups.join(":");
}

function endpointInfo(addr: QlogAddress | undefined, cid: Uint8Array | undefined): QlogObject {
  const o: QlogObject = {};
  if (addr) {
    if (addr.address.includes(":")) {
      o.ip_v6 = addr.address;
      o.port_v6 = addr.port;
    } else {
      o.ip_v4 = addr.address;
      o.port_v4 = addr.port;
    }
  }
  if (cid) o.connection_ids = [hex(cid)];
  return o;
}

/** The tuple fields of tuple_assigned and migration_state_updated (quic-events §4.7, §5.20). */
function tupleFields(o: QlogObject, info: QlogTupleInfo): QlogObject {
  o.tuple_id = info.tupleId;
  if (info.remote || info.remoteCid) o.tuple_remote = endpointInfo(info.remote, info.remoteCid);
  if (info.local) o.tuple_local = endpointInfo(info.local, undefined);
  return o;
}

function preferredAddress(p: PreferredAddress): QlogObject {
  const o: QlogObject = {};
  if (p.ipv4Port !== 0 || p.ipv4Address.some((x) => x !== 0)) {
    o.ip_v4 = ipv4Text(p.ipv4Address);
    o.port_v4 = p.ipv4Port;
  }
  if (p.ipv6Port !== 0 || p.ipv6Address.some((x) => x !== 0)) {
    o.ip_v6 = ipv6Text(p.ipv6Address);
    o.port_v6 = p.ipv6Port;
  }
  o.connection_id = hex(p.connectionId);
  o.stateless_reset_token = hex(p.statelessResetToken);
  return o;
}

/**
 * frames.ts's flat descending [high, low, high, low, ...] ACK ranges as qlog AckRanges
 * (quic-events §8.13.3): ascending `[low, high]` pairs, `[n]` for a single packet (the SHOULD).
 */
export function qlogAckRanges(ranges: readonly number[]): number[][] {
  const out: number[][] = [];
  for (let i = ranges.length - 2; i >= 0; i -= 2) {
    const high = ranges[i];
    const low = ranges[i + 1];
    out.push(low === high ? [low] : [low, high]);
  }
  return out;
}

/**
 * One frame in the quic-events §8.13 representation. `ackDelayExponent` is the exponent of the
 * ACK's sender (RFC 9000 §19.3), used to log ack_delay in ms.
 */
export function qlogFrame(f: Frame, ackDelayExponent = 3): QlogObject {
  switch (f.kind) {
    case "padding":
      // §8.13.1: one frame for the run, its size in raw.payload_length.
      return { frame_type: "padding", raw: { length: f.length, payload_length: f.length } };
    case "ping":
      return { frame_type: "ping" };
    case "ack": {
      const o: QlogObject = {
        frame_type: "ack",
        ack_delay: round3((f.ackDelay * 2 ** ackDelayExponent) / 1000),
        acked_ranges: qlogAckRanges(f.ranges),
      };
      if (f.ecn) {
        o.ect1 = f.ecn.ect1;
        o.ect0 = f.ecn.ect0;
        o.ce = f.ecn.ce;
      }
      return o;
    }
    case "reset_stream":
      return {
        frame_type: "reset_stream",
        stream_id: f.streamId,
        error: "unknown",
        error_code: qlogUint64(f.errorCode),
        final_size: f.finalSize,
      };
    case "stop_sending":
      return {
        frame_type: "stop_sending",
        stream_id: f.streamId,
        error: "unknown",
        error_code: qlogUint64(f.errorCode),
      };
    case "crypto":
      // §8.13.7: the Length field MUST be logged in raw.length.
      return { frame_type: "crypto", offset: f.offset, raw: { length: f.data.length } };
    case "new_token":
      return {
        frame_type: "new_token",
        token: { type: "resumption", raw: { length: f.token.length, data: hex(f.token) } },
      };
    case "stream":
      // §8.13.9: the Length field MUST be logged in raw.length.
      return {
        frame_type: "stream",
        stream_id: f.streamId,
        offset: f.offset,
        fin: f.fin,
        raw: { length: f.data.length },
      };
    case "max_data":
      return { frame_type: "max_data", maximum: f.maximum };
    case "max_stream_data":
      return { frame_type: "max_stream_data", stream_id: f.streamId, maximum: f.maximum };
    case "max_streams":
      return {
        frame_type: "max_streams",
        stream_type: f.bidi ? "bidirectional" : "unidirectional",
        maximum: f.maximum,
      };
    case "data_blocked":
      return { frame_type: "data_blocked", limit: f.limit };
    case "stream_data_blocked":
      return { frame_type: "stream_data_blocked", stream_id: f.streamId, limit: f.limit };
    case "streams_blocked":
      return {
        frame_type: "streams_blocked",
        stream_type: f.bidi ? "bidirectional" : "unidirectional",
        limit: f.limit,
      };
    case "new_connection_id":
      return {
        frame_type: "new_connection_id",
        sequence_number: f.sequence,
        retire_prior_to: f.retirePriorTo,
        connection_id_length: f.connectionId.length,
        connection_id: hex(f.connectionId),
        stateless_reset_token: hex(f.statelessResetToken),
      };
    case "retire_connection_id":
      return { frame_type: "retire_connection_id", sequence_number: f.sequence };
    case "path_challenge":
      return { frame_type: "path_challenge", data: hex(f.data) };
    case "path_response":
      return { frame_type: "path_response", data: hex(f.data) };
    case "connection_close": {
      const o: QlogObject = { frame_type: "connection_close" };
      if (f.application) {
        o.error_space = "application";
        o.error = "unknown";
        o.error_code = qlogUint64(f.errorCode);
      } else {
        o.error_space = "transport";
        const e = qlogTransportError(f.errorCode);
        o.error = e.error;
        o.error_code = e.code;
      }
      if (f.reason.length > 0) {
        // §8.13.20: `reason` when the phrase is UTF-8, else the raw bytes.
        try {
          o.reason = utf8.decode(f.reason);
        } catch {
          o.reason_bytes = hex(f.reason);
        }
      }
      // RFC 9000 §19.19: frame type 0 means "unknown", so it is not logged.
      if (!f.application && f.frameType !== 0) o.trigger_frame_type = f.frameType;
      return o;
    }
    case "handshake_done":
      return { frame_type: "handshake_done" };
    case "datagram":
      return { frame_type: "datagram", raw: { length: f.data.length } };
    // Extension frames (quic-events draft names: reset_stream_at, ack_frequency, immediate_ack).
    case "reset_stream_at":
      return {
        frame_type: "reset_stream_at",
        stream_id: f.streamId,
        error: "unknown",
        error_code: qlogUint64(f.errorCode),
        final_size: f.finalSize,
        reliable_size: f.reliableSize,
      };
    case "ack_frequency":
      return {
        frame_type: "ack_frequency",
        sequence_number: f.sequence,
        ack_eliciting_threshold: f.ackElicitingThreshold,
        request_max_ack_delay: f.requestedMaxAckDelay / 1000,
        reordering_threshold: f.reorderingThreshold,
      };
    case "immediate_ack":
      return { frame_type: "immediate_ack" };
    default: {
      const unreachable: never = f;
      return unreachable;
    }
  }
}

/** quic-events §5.3 parameters_set data for one side's transport parameters. */
export function qlogParameters(owner: "local" | "remote", p: TransportParameters): QlogObject {
  const o: QlogObject = { initiator: owner };
  if (p.originalDestinationConnectionId)
    o.original_destination_connection_id = hex(p.originalDestinationConnectionId);
  if (p.initialSourceConnectionId) o.initial_source_connection_id = hex(p.initialSourceConnectionId);
  if (p.retrySourceConnectionId) o.retry_source_connection_id = hex(p.retrySourceConnectionId);
  if (p.statelessResetToken) o.stateless_reset_token = hex(p.statelessResetToken);
  o.disable_active_migration = p.disableActiveMigration;
  o.max_idle_timeout = p.maxIdleTimeout;
  o.max_udp_payload_size = p.maxUdpPayloadSize;
  o.ack_delay_exponent = p.ackDelayExponent;
  o.max_ack_delay = p.maxAckDelay;
  o.active_connection_id_limit = p.activeConnectionIdLimit;
  o.initial_max_data = p.initialMaxData;
  o.initial_max_stream_data_bidi_local = p.initialMaxStreamDataBidiLocal;
  o.initial_max_stream_data_bidi_remote = p.initialMaxStreamDataBidiRemote;
  o.initial_max_stream_data_uni = p.initialMaxStreamDataUni;
  o.initial_max_streams_bidi = p.initialMaxStreamsBidi;
  o.initial_max_streams_uni = p.initialMaxStreamsUni;
  if (p.preferredAddress) o.preferred_address = preferredAddress(p.preferredAddress);
  if (p.unknown && p.unknown.length > 0)
    o.unknown_parameters = p.unknown.map((u) => ({ id: qlogUint64(u.id), value: hex(u.value) }));
  o.max_datagram_frame_size = p.maxDatagramFrameSize;
  o.grease_quic_bit = p.greaseQuicBit;
  // Not in quic-events (allowed by the $$quic-parametersset-extension socket): ack-frequency's
  // min_ack_delay (µs).
  o.min_ack_delay = p.minAckDelay;
  return o;
}

const DROP_TRIGGERS: ReadonlySet<string> = new Set<QlogPacketDroppedTrigger>([
  "internal_error",
  "rejected",
  "unsupported",
  "invalid",
  "duplicate",
  "connection_unknown",
  "decryption_failure",
  "key_unavailable",
  "general",
]);

/** [qlog field, QlogMetrics field] of recovery_metrics_updated (quic-events §7.2). */
const METRICS: readonly (readonly [string, keyof QlogMetrics])[] = [
  ["min_rtt", "minRtt"],
  ["smoothed_rtt", "smoothedRtt"],
  ["latest_rtt", "latestRtt"],
  ["rtt_variance", "rttVariance"],
  ["pto_count", "ptoCount"],
  ["congestion_window", "cwnd"],
  ["bytes_in_flight", "bytesInFlight"],
  ["ssthresh", "ssthresh"],
  ["packets_in_flight", "packetsInFlight"],
  ["pacing_rate", "pacingRate"],
];

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

export interface QlogWriterOptions {
  side: QlogVantage;
  /** Original Destination Connection ID: the trace's group_id. */
  odcid: Uint8Array;
  /** Receives each record (RS + JSON + "\n"), the header first, synchronously. */
  write: (chunk: string) => void;
  /** Called once by {@link QlogWriter.close} after the last write. */
  onClose?: (() => Promise<void> | void) | undefined;
  title?: string | undefined;
  /** vantage_point.name; default "purequic". */
  name?: string | undefined;
  /** Origin of `time` on the callers' clock (ms); default: the first event's `now`. */
  referenceTime?: number | undefined;
}

export interface QlogFileOptions {
  /** File name inside the directory; default {@link qlogFileName}. */
  fileName?: string | undefined;
  title?: string | undefined;
  name?: string | undefined;
  referenceTime?: number | undefined;
}

/** `<odcid hex>_<vantage>.sqlog`, the naming of quic-events §1.1 and quic-go under QLOGDIR. */
export function qlogFileName(side: QlogVantage, odcid: Uint8Array): string {
  return `${hex(odcid)}_${side}.sqlog`;
}

export class QlogWriter implements QlogSink {
  readonly side: QlogVantage;
  /** group_id: the ODCID in hex. */
  readonly groupId: string;
  private readonly out: (chunk: string) => void;
  private readonly onClose: (() => Promise<void> | void) | undefined;
  /** Set by {@link QlogWriter.toFile}. */
  private fileSink: FileSink | undefined;
  private reference: number | undefined;
  private closing: Promise<void> | undefined;
  /** ack_delay_exponent of our ACKs and of the peer's (RFC 9000 §18.2 default 3). */
  private localAckDelayExponent = 3;
  private remoteAckDelayExponent = 3;
  private readonly lastMetrics = new Map<string, number>();
  private state: string | undefined;
  /** The last migration state logged per tuple (the `old` of migration_state_updated). */
  private readonly migrationStates = new Map<string, QlogMigrationState>();

  constructor(options: QlogWriterOptions) {
    this.side = options.side;
    this.groupId = hex(options.odcid);
    this.out = options.write;
    this.onClose = options.onClose;
    this.reference = options.referenceTime;
    const header = {
      // file_schema and serialization_format first: main-schema §4 wants them in the first 256 bytes.
      file_schema: QLOG_FILE_SCHEMA,
      serialization_format: QLOG_SERIALIZATION_FORMAT,
      title: options.title ?? `purequic ${options.side} ${this.groupId}`,
      trace: {
        vantage_point: { name: options.name ?? "purequic", type: options.side },
        event_schemas: [QLOG_QUIC_EVENT_SCHEMA],
        common_fields: {
          group_id: this.groupId,
          time_format: "relative_to_epoch",
          reference_time: {
            clock_type: "monotonic",
            epoch: "unknown",
            wall_clock_time: new Date().toISOString(),
          },
        },
      },
    };
    this.out(`${RS}${JSON.stringify(header)}\n`);
  }

  /**
   * A writer to `<dir>/<odcid hex>_<side>.sqlog` (or `options.fileName`) through a buffered async
   * WriteStream. The directory must exist; an I/O error is kept in {@link QlogWriter.error} and
   * stops the output, it is never thrown.
   */
  static toFile(
    dir: string,
    side: QlogVantage,
    odcid: Uint8Array,
    options: QlogFileOptions = {},
  ): QlogWriter {
    const path = join(dir, options.fileName ?? qlogFileName(side, odcid));
    const sink = new FileSink(path);
    const w = new QlogWriter({
      side,
      odcid,
      write: (chunk) => sink.write(chunk),
      onClose: () => sink.close(),
      title: options.title,
      name: options.name,
      referenceTime: options.referenceTime,
    });
    w.fileSink = sink;
    return w;
  }

  /** The file written by {@link QlogWriter.toFile}, if any. */
  get path(): string | undefined {
    return this.fileSink?.path;
  }

  /** The first I/O error of a file writer. */
  get error(): Error | undefined {
    return this.fileSink?.error;
  }

  /** Records a file writer dropped because the disk did not keep up. */
  get droppedRecords(): number {
    return this.fileSink?.dropped ?? 0;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.onClose?.();
      } catch {
        // close() never rejects: a trace must not take the connection down.
      }
    })();
    return this.closing;
  }

  private emit(name: string, data: QlogObject, now: number): void {
    if (this.closing) return;
    if (this.reference === undefined) this.reference = now;
    const record = { time: round3(now - this.reference), name: `quic:${name}`, data };
    this.out(`${RS}${JSON.stringify(record)}\n`);
  }

  connectionStarted(info: QlogConnectionStartedInfo, now: number): void {
    this.emit(
      "connection_started",
      {
        local: endpointInfo(info.localAddress, info.srcCid),
        remote: endpointInfo(info.remoteAddress, info.dstCid),
      },
      now,
    );
    // connection_started has no version field any more; version_information (§5.1) carries it.
    const v: QlogObject = { chosen_version: versionHex(info.version) };
    if (info.supportedVersions) v[`${info.side}_versions`] = info.supportedVersions.map(versionHex);
    this.emit("version_information", v, now);
  }

  parametersSet(owner: "local" | "remote", params: TransportParameters, now: number): void {
    const exponent = params.ackDelayExponent ?? 3;
    if (owner === "local") this.localAckDelayExponent = exponent;
    else this.remoteAckDelayExponent = exponent;
    this.emit("parameters_set", qlogParameters(owner, params), now);
  }

  packetSent(info: QlogPacketInfo, now: number): void {
    this.emit("packet_sent", this.packetData(info, this.localAckDelayExponent), now);
  }

  packetReceived(info: QlogPacketInfo, now: number): void {
    this.emit("packet_received", this.packetData(info, this.remoteAckDelayExponent), now);
  }

  packetDropped(info: QlogPacketDroppedInfo, now: number): void {
    const o: QlogObject = {};
    if (info.type !== undefined) o.header = { packet_type: normalizePacketType(info.type) };
    o.raw = { length: info.size };
    const known = DROP_TRIGGERS.has(info.reason);
    if (!known || (info.trigger !== undefined && info.trigger !== info.reason))
      o.details = { reason: info.reason };
    o.trigger = info.trigger ?? (known ? info.reason : "general");
    this.emit("packet_dropped", o, now);
  }

  packetLost(info: QlogPacketLostInfo, now: number): void {
    const o: QlogObject = { header: this.header(info.type, info.pn) };
    if (info.frames) o.frames = info.frames.map((f) => qlogFrame(f, this.localAckDelayExponent));
    o.trigger = info.trigger;
    this.emit("packet_lost", o, now);
  }

  metricsUpdated(m: QlogMetrics, now: number): void {
    let data: QlogObject | undefined;
    for (const [key, field] of METRICS) {
      const v = m[field];
      if (v === undefined || !Number.isFinite(v) || this.lastMetrics.get(key) === v) continue;
      this.lastMetrics.set(key, v);
      data ??= {};
      data[key] = v;
    }
    if (data) this.emit("recovery_metrics_updated", data, now);
  }

  keyUpdated(info: QlogKeyInfo, now: number): void {
    this.emit(
      "key_updated",
      { key_type: info.keyType, key_phase: info.generation, trigger: info.trigger },
      now,
    );
  }

  versionChosen(
    info: { version: number; side: QlogVantage; versions?: readonly number[] },
    now: number,
  ): void {
    const v: QlogObject = { chosen_version: versionHex(info.version) };
    if (info.versions) v[`${info.side}_versions`] = info.versions.map(versionHex);
    this.emit("version_information", v, now);
  }

  keyDiscarded(info: QlogKeyDiscardedInfo, now: number): void {
    this.emit(
      "key_discarded",
      { key_type: info.keyType, key_phase: info.generation, trigger: info.trigger },
      now,
    );
  }

  connectionStateUpdated(newState: string, now: number): void {
    if (newState === this.state) return;
    const old = this.state;
    this.state = newState;
    this.emit("connection_state_updated", { old, new: newState }, now);
  }

  tupleAssigned(info: QlogTupleInfo, now: number): void {
    if (!info.remote && !info.remoteCid && !info.local) this.migrationStates.delete(info.tupleId);
    this.emit("tuple_assigned", tupleFields({}, info), now);
  }

  migrationStateUpdated(info: QlogMigrationInfo, now: number): void {
    const old = this.migrationStates.get(info.tupleId);
    this.migrationStates.set(info.tupleId, info.state);
    this.emit("migration_state_updated", tupleFields({ old, new: info.state }, info), now);
  }

  mtuUpdated(info: QlogMtuInfo, now: number): void {
    const o: QlogObject = { old: info.old, new: info.new };
    if (info.done) o.done = true;
    this.emit("mtu_updated", o, now);
  }

  connectionClosed(info: QlogConnectionClosedInfo, now: number): void {
    const o: QlogObject = { initiator: info.owner };
    let errorCode: number | string | undefined;
    if (typeof info.connectionCode === "string") {
      o.connection_error = info.connectionCode;
    } else if (info.connectionCode !== undefined) {
      const e = qlogTransportError(info.connectionCode);
      o.connection_error = e.error;
      errorCode = e.code;
    }
    if (info.applicationCode !== undefined) {
      o.application_error = "unknown";
      errorCode = qlogUint64(info.applicationCode);
    }
    o.error_code = errorCode;
    o.reason = info.reason;
    o.trigger = info.trigger;
    this.emit("connection_closed", o, now);
  }

  private header(type: QlogPacketType | FramePacketType, pn: number | undefined): QlogObject {
    const t = normalizePacketType(type);
    const h: QlogObject = { packet_type: t };
    if (pn !== undefined && hasPacketNumber(t)) h.packet_number = pn;
    return h;
  }

  private packetData(info: QlogPacketInfo, ackDelayExponent: number): QlogObject {
    const header = this.header(info.type, info.pn);
    if (info.scid) header.scid = hex(info.scid);
    if (info.dcid) header.dcid = hex(info.dcid);
    if (info.version !== undefined) header.version = versionHex(info.version);
    if (info.keyPhase !== undefined) header.key_phase_bit = info.keyPhase;
    const o: QlogObject = { header };
    if (info.frames) o.frames = info.frames.map((f) => qlogFrame(f, ackDelayExponent));
    if (info.supportedVersions) o.supported_versions = info.supportedVersions.map(versionHex);
    o.raw = { length: info.size };
    return o;
  }
}

/**
 * A file writer under `$QLOGDIR` (main-schema §12.1; the interop runner sets `/logs/qlog/`), or
 * undefined when QLOGDIR is unset or empty. The directory is created once per process if needed.
 */
export function qlogFromEnv(
  side: QlogVantage,
  odcid: Uint8Array,
  env: NodeJS.ProcessEnv = process.env,
): QlogWriter | undefined {
  const dir = env.QLOGDIR;
  if (!dir) return undefined;
  if (!ensuredDirs.has(dir)) {
    ensuredDirs.add(dir);
    try {
      // Once per directory per process, not per event.
      mkdirSync(dir, { recursive: true });
    } catch {
      // The stream reports the failure (QlogWriter.error).
    }
  }
  return QlogWriter.toFile(dir, side, odcid);
}

const ensuredDirs = new Set<string>();

/** Pending output is handed to the stream at this size, or after FLUSH_DELAY_MS. */
const FLUSH_BYTES = 64 * 1024;
const FLUSH_DELAY_MS = 200;
/** Beyond this much unwritten data in the stream (slow disk), records are dropped. */
const MAX_BACKLOG_BYTES = 64 * 1024 * 1024;

/** Batches records into few async writes. */
class FileSink {
  error: Error | undefined;
  /** Records dropped because the disk did not keep up. */
  dropped = 0;
  private readonly stream: WriteStream;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly path: string) {
    this.stream = createWriteStream(path, { flags: "w" });
    this.stream.on("error", (err) => {
      this.error ??= err;
      this.pending = [];
      this.pendingBytes = 0;
    });
  }

  write(chunk: string): void {
    if (this.error) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= FLUSH_BYTES) {
      this.flush();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), FLUSH_DELAY_MS);
      // A pending flush must not keep the process alive.
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.pending.length === 0) return;
    if (this.error || this.stream.writableLength > MAX_BACKLOG_BYTES) {
      if (!this.error) this.dropped += this.pending.length;
    } else {
      this.stream.write(this.pending.join(""));
    }
    this.pending = [];
    this.pendingBytes = 0;
  }

  close(): Promise<void> {
    this.flush();
    return new Promise((resolve) => {
      if (this.stream.closed) {
        resolve();
        return;
      }
      this.stream.once("close", () => resolve());
      if (!this.stream.destroyed) this.stream.end();
    });
  }
}
