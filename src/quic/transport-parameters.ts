/**
 * QUIC transport parameters (RFC 9000 §7.4, §18): the codec for the quic_transport_parameters
 * TLS extension body, its validation, and the pure checks the connection runs on the decoded
 * values (§7.3 connection ID authentication, §7.4.1 0-RTT, RFC 9368 §4 version negotiation).
 *
 * Besides the RFC 9000 §18.2 parameters this knows max_datagram_frame_size (RFC 9221 §3),
 * grease_quic_bit (RFC 9287 §3), version_information (RFC 9368 §3) and min_ack_delay
 * (draft-ietf-quic-ack-frequency §3). Any other parameter, including the reserved GREASE
 * identifiers 31·N+27 (§18.1), is kept verbatim in {@link TransportParameters.unknown} (§7.4.2:
 * an endpoint MUST ignore parameters it does not support, but may remember them for 0-RTT).
 *
 * Integers follow the bytes.ts rule: integer-valued parameters are numbers, exact up to 2^53−1;
 * a larger value on the wire saturates to `Number.MAX_SAFE_INTEGER` (8 Pi-units: no idle timeout,
 * flow-control limit, stream count or delay of a live connection can tell the difference). The
 * range checks that matter above 2^53 (initial_max_streams_* ≤ 2^60, §4.6) are made on the exact
 * bigint before saturating, and saturating never turns an invalid value into a valid one for the
 * upper-bounded parameters (ack_delay_exponent, max_ack_delay, min_ack_delay). Parameter
 * identifiers of unknown parameters are bigint: GREASE identifiers go up to 2^62−1.
 *
 * Decoded byte fields (connection IDs, tokens, addresses, unknown values) are copies, never views
 * into the input: the TLS layer may reuse its buffer, and the copies are a few dozen bytes.
 *
 * Decoding throws only {@link QuicError} with TRANSPORT_PARAMETER_ERROR. The checks that need
 * connection context ({@link checkConnectionIdParameters}, {@link checkZeroRttParameters},
 * {@link checkVersionInformation}) are separate pure functions the connection calls.
 */
import {
  ByteReader,
  type ByteWriter,
  MAX_VARINT,
  TruncatedError,
  varintLength,
  varintLengthBig,
} from "./bytes.ts";
import { QuicError, QuicUsageError, TransportErrorCode, transportParameterError } from "./errors.ts";

/** Transport parameter identifiers (IANA "QUIC Transport Parameters" registry). */
export const TransportParameterId = {
  ORIGINAL_DESTINATION_CONNECTION_ID: 0x00,
  MAX_IDLE_TIMEOUT: 0x01,
  STATELESS_RESET_TOKEN: 0x02,
  MAX_UDP_PAYLOAD_SIZE: 0x03,
  INITIAL_MAX_DATA: 0x04,
  INITIAL_MAX_STREAM_DATA_BIDI_LOCAL: 0x05,
  INITIAL_MAX_STREAM_DATA_BIDI_REMOTE: 0x06,
  INITIAL_MAX_STREAM_DATA_UNI: 0x07,
  INITIAL_MAX_STREAMS_BIDI: 0x08,
  INITIAL_MAX_STREAMS_UNI: 0x09,
  ACK_DELAY_EXPONENT: 0x0a,
  MAX_ACK_DELAY: 0x0b,
  DISABLE_ACTIVE_MIGRATION: 0x0c,
  PREFERRED_ADDRESS: 0x0d,
  ACTIVE_CONNECTION_ID_LIMIT: 0x0e,
  INITIAL_SOURCE_CONNECTION_ID: 0x0f,
  RETRY_SOURCE_CONNECTION_ID: 0x10,
  /** RFC 9368 §3. */
  VERSION_INFORMATION: 0x11,
  /** draft-ietf-quic-reliable-stream-reset §3. */
  RESET_STREAM_AT: 0x1d,
  /** RFC 9221 §3. */
  MAX_DATAGRAM_FRAME_SIZE: 0x20,
  /** RFC 9287 §3. */
  GREASE_QUIC_BIT: 0x2ab2,
  /** draft-ietf-quic-ack-frequency §3 (the identifier in our copy of the draft). */
  MIN_ACK_DELAY: 0xff04de1b,
} as const;

export type TransportParameterId = (typeof TransportParameterId)[keyof typeof TransportParameterId];

/** Who sent a transport parameter block. */
export type TransportParameterSender = "client" | "server";

/** RFC 9000 §18.2 preferred_address. */
export interface PreferredAddress {
  /** 4 bytes, network order; all zero (with port 0) when the server offers no IPv4 address. */
  ipv4Address: Uint8Array;
  ipv4Port: number;
  /** 16 bytes, network order; all zero (with port 0) when the server offers no IPv6 address. */
  ipv6Address: Uint8Array;
  ipv6Port: number;
  /** 1–20 bytes; sequence number 1. */
  connectionId: Uint8Array;
  /** 16 bytes. */
  statelessResetToken: Uint8Array;
}

/** RFC 9368 §3 Version Information. */
export interface VersionInformation {
  chosenVersion: number;
  availableVersions: number[];
}

/** A parameter this codec does not interpret (unsupported extension or GREASE), kept verbatim. */
export interface UnknownTransportParameter {
  /** Identifier, up to 2^62−1. */
  id: bigint;
  value: Uint8Array;
}

/**
 * Transport parameters as sent on the wire. A field that is `undefined` is absent from the
 * encoding; its meaning is then the RFC default, which {@link withDefaults} fills in. Integer
 * fields are numbers in [0, 2^53−1] (see the module comment on saturation).
 */
export interface TransportParameters {
  /** 0x00, server only. */
  originalDestinationConnectionId?: Uint8Array;
  /** 0x01, milliseconds; absent or 0 disables the idle timeout. */
  maxIdleTimeout?: number;
  /** 0x02, 16 bytes, server only. */
  statelessResetToken?: Uint8Array;
  /** 0x03, default 65527, ≥ 1200. */
  maxUdpPayloadSize?: number;
  /** 0x04, default 0. */
  initialMaxData?: number;
  /** 0x05, default 0. */
  initialMaxStreamDataBidiLocal?: number;
  /** 0x06, default 0. */
  initialMaxStreamDataBidiRemote?: number;
  /** 0x07, default 0. */
  initialMaxStreamDataUni?: number;
  /** 0x08, default 0, ≤ 2^60. */
  initialMaxStreamsBidi?: number;
  /** 0x09, default 0, ≤ 2^60. */
  initialMaxStreamsUni?: number;
  /** 0x0a, default 3, ≤ 20. */
  ackDelayExponent?: number;
  /** 0x0b, milliseconds, default 25, < 2^14. */
  maxAckDelay?: number;
  /** 0x0c, zero-length; `true` when present. `false` is encoded as absence. */
  disableActiveMigration?: boolean;
  /** 0x0d, server only. */
  preferredAddress?: PreferredAddress;
  /** 0x0e, default 2, ≥ 2. */
  activeConnectionIdLimit?: number;
  /** 0x0f, 0–20 bytes; mandatory from both endpoints (checked by {@link checkConnectionIdParameters}). */
  initialSourceConnectionId?: Uint8Array;
  /** 0x10, 0–20 bytes, server only, present iff the server sent a Retry. */
  retrySourceConnectionId?: Uint8Array;
  /** 0x11 (RFC 9368). */
  versionInformation?: VersionInformation;
  /** 0x20 (RFC 9221), default 0 = DATAGRAM frames not supported. */
  maxDatagramFrameSize?: number;
  /** 0x2ab2 (RFC 9287), zero-length; `true` when present. `false` is encoded as absence. */
  greaseQuicBit?: boolean;
  /**
   * 0x1d (draft-ietf-quic-reliable-stream-reset §3), zero-length: the sender accepts
   * RESET_STREAM_AT frames. `false` is encoded as absence.
   */
  resetStreamAt?: boolean;
  /** 0xff04de1b (ack-frequency draft), microseconds; absent = extension not supported. */
  minAckDelay?: number;
  /**
   * Parameters not interpreted here, in wire order. Always set (possibly empty) by the decoder;
   * optional so that callers building their own parameters need not mention it.
   */
  unknown?: UnknownTransportParameter[];
}

/** The parameters that have a default value (RFC 9000 §18.2, RFC 9221 §3, RFC 9287 §3). */
type DefaultedKey =
  | "maxIdleTimeout"
  | "maxUdpPayloadSize"
  | "initialMaxData"
  | "initialMaxStreamDataBidiLocal"
  | "initialMaxStreamDataBidiRemote"
  | "initialMaxStreamDataUni"
  | "initialMaxStreamsBidi"
  | "initialMaxStreamsUni"
  | "ackDelayExponent"
  | "maxAckDelay"
  | "disableActiveMigration"
  | "activeConnectionIdLimit"
  | "maxDatagramFrameSize"
  | "greaseQuicBit";

/** Transport parameters with every defaulted field filled in and `unknown` always present. */
export type ResolvedTransportParameters = TransportParameters &
  Required<Pick<TransportParameters, DefaultedKey | "unknown">>;

/** The value each parameter takes when absent (RFC 9000 §18.2: 0 unless stated otherwise). */
export const DEFAULT_TRANSPORT_PARAMETERS: Readonly<Required<Pick<TransportParameters, DefaultedKey>>> =
  Object.freeze({
    maxIdleTimeout: 0,
    maxUdpPayloadSize: 65527,
    initialMaxData: 0,
    initialMaxStreamDataBidiLocal: 0,
    initialMaxStreamDataBidiRemote: 0,
    initialMaxStreamDataUni: 0,
    initialMaxStreamsBidi: 0,
    initialMaxStreamsUni: 0,
    ackDelayExponent: 3,
    maxAckDelay: 25,
    disableActiveMigration: false,
    activeConnectionIdLimit: 2,
    maxDatagramFrameSize: 0,
    greaseQuicBit: false,
  });

/**
 * `p` with every absent defaulted parameter set to its default. Connection IDs, the token, the
 * preferred address, version information and min_ack_delay have no default and stay as they are.
 */
export function withDefaults(p: TransportParameters): ResolvedTransportParameters {
  const d = DEFAULT_TRANSPORT_PARAMETERS;
  return {
    ...p,
    maxIdleTimeout: p.maxIdleTimeout ?? d.maxIdleTimeout,
    maxUdpPayloadSize: p.maxUdpPayloadSize ?? d.maxUdpPayloadSize,
    initialMaxData: p.initialMaxData ?? d.initialMaxData,
    initialMaxStreamDataBidiLocal: p.initialMaxStreamDataBidiLocal ?? d.initialMaxStreamDataBidiLocal,
    initialMaxStreamDataBidiRemote: p.initialMaxStreamDataBidiRemote ?? d.initialMaxStreamDataBidiRemote,
    initialMaxStreamDataUni: p.initialMaxStreamDataUni ?? d.initialMaxStreamDataUni,
    initialMaxStreamsBidi: p.initialMaxStreamsBidi ?? d.initialMaxStreamsBidi,
    initialMaxStreamsUni: p.initialMaxStreamsUni ?? d.initialMaxStreamsUni,
    ackDelayExponent: p.ackDelayExponent ?? d.ackDelayExponent,
    maxAckDelay: p.maxAckDelay ?? d.maxAckDelay,
    disableActiveMigration: p.disableActiveMigration ?? d.disableActiveMigration,
    activeConnectionIdLimit: p.activeConnectionIdLimit ?? d.activeConnectionIdLimit,
    maxDatagramFrameSize: p.maxDatagramFrameSize ?? d.maxDatagramFrameSize,
    greaseQuicBit: p.greaseQuicBit ?? d.greaseQuicBit,
    unknown: p.unknown ?? [],
  };
}

/** Longest connection ID QUIC version 1 allows (RFC 9000 §17.2). */
const MAX_CID_LENGTH = 20;
const RESET_TOKEN_LENGTH = 16;
/** initial_max_streams_* upper bound (RFC 9000 §4.6). */
const MAX_STREAMS_LIMIT = 1n << 60n;
/** Fixed part of preferred_address: 4 + 2 + 16 + 2 + 1 + 16 (RFC 9000 §18.2, Figure 22). */
const PREFERRED_ADDRESS_FIXED = 41;

/** The integer-valued parameters: id, field, name. */
const INTEGER_PARAMS = [
  [TransportParameterId.MAX_IDLE_TIMEOUT, "maxIdleTimeout", "max_idle_timeout"],
  [TransportParameterId.MAX_UDP_PAYLOAD_SIZE, "maxUdpPayloadSize", "max_udp_payload_size"],
  [TransportParameterId.INITIAL_MAX_DATA, "initialMaxData", "initial_max_data"],
  [
    TransportParameterId.INITIAL_MAX_STREAM_DATA_BIDI_LOCAL,
    "initialMaxStreamDataBidiLocal",
    "initial_max_stream_data_bidi_local",
  ],
  [
    TransportParameterId.INITIAL_MAX_STREAM_DATA_BIDI_REMOTE,
    "initialMaxStreamDataBidiRemote",
    "initial_max_stream_data_bidi_remote",
  ],
  [
    TransportParameterId.INITIAL_MAX_STREAM_DATA_UNI,
    "initialMaxStreamDataUni",
    "initial_max_stream_data_uni",
  ],
  [TransportParameterId.INITIAL_MAX_STREAMS_BIDI, "initialMaxStreamsBidi", "initial_max_streams_bidi"],
  [TransportParameterId.INITIAL_MAX_STREAMS_UNI, "initialMaxStreamsUni", "initial_max_streams_uni"],
  [TransportParameterId.ACK_DELAY_EXPONENT, "ackDelayExponent", "ack_delay_exponent"],
  [TransportParameterId.MAX_ACK_DELAY, "maxAckDelay", "max_ack_delay"],
  [TransportParameterId.ACTIVE_CONNECTION_ID_LIMIT, "activeConnectionIdLimit", "active_connection_id_limit"],
  [TransportParameterId.MAX_DATAGRAM_FRAME_SIZE, "maxDatagramFrameSize", "max_datagram_frame_size"],
  [TransportParameterId.MIN_ACK_DELAY, "minAckDelay", "min_ack_delay"],
] as const;

type IntegerKey = (typeof INTEGER_PARAMS)[number][1];

const INTEGER_BY_ID = new Map<number, { key: IntegerKey; name: string }>(
  INTEGER_PARAMS.map(([id, key, name]) => [id, { key, name }]),
);

/** The connection-ID-valued parameters: id, field, name. */
const CID_PARAMS = [
  [
    TransportParameterId.ORIGINAL_DESTINATION_CONNECTION_ID,
    "originalDestinationConnectionId",
    "original_destination_connection_id",
  ],
  [
    TransportParameterId.INITIAL_SOURCE_CONNECTION_ID,
    "initialSourceConnectionId",
    "initial_source_connection_id",
  ],
  [TransportParameterId.RETRY_SOURCE_CONNECTION_ID, "retrySourceConnectionId", "retry_source_connection_id"],
] as const;

type CidKey = (typeof CID_PARAMS)[number][1];

const CID_BY_ID = new Map<number, { key: CidKey; name: string }>(
  CID_PARAMS.map(([id, key, name]) => [id, { key, name }]),
);

/** Identifiers this codec interprets; anything else goes to `unknown`. */
const KNOWN_IDS: ReadonlySet<bigint> = new Set(Object.values(TransportParameterId).map((v) => BigInt(v)));

/** RFC 9000 §18.2: parameters a client MUST NOT send. */
const SERVER_ONLY_IDS: ReadonlySet<number> = new Set<number>([
  TransportParameterId.ORIGINAL_DESTINATION_CONNECTION_ID,
  TransportParameterId.PREFERRED_ADDRESS,
  TransportParameterId.RETRY_SOURCE_CONNECTION_ID,
  TransportParameterId.STATELESS_RESET_TOKEN,
]);

const SERVER_ONLY_NAMES: Record<number, string> = {
  [TransportParameterId.ORIGINAL_DESTINATION_CONNECTION_ID]: "original_destination_connection_id",
  [TransportParameterId.PREFERRED_ADDRESS]: "preferred_address",
  [TransportParameterId.RETRY_SOURCE_CONNECTION_ID]: "retry_source_connection_id",
  [TransportParameterId.STATELESS_RESET_TOKEN]: "stateless_reset_token",
};

/** True for the reserved identifiers 31·N+27 (RFC 9000 §18.1). */
export function isReservedTransportParameterId(id: bigint): boolean {
  return id >= 27n && (id - 27n) % 31n === 0n;
}

// ---------------------------------------------------------------------------------------------
// Validation shared by the encoder (local bug → QuicUsageError) and decoder (peer → QuicError).

const isSafeUint = (v: number): boolean => Number.isSafeInteger(v) && v >= 0;
const isUint16 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffff;
const isUint32 = (v: number): boolean => Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;

/**
 * The first problem with the values in `p`, independent of who sent them, or undefined. Every
 * condition here is a MUST in the section cited; a peer's violation is TRANSPORT_PARAMETER_ERROR
 * (RFC 9000 §7.4: "invalid value").
 */
function valueProblem(p: TransportParameters): string | undefined {
  for (const [, key, name] of INTEGER_PARAMS) {
    const v = p[key];
    if (v !== undefined && !isSafeUint(v)) return `${name} is not an integer in [0, 2^53-1]`;
  }
  // RFC 9000 §18.2: values below 1200 are invalid.
  if (p.maxUdpPayloadSize !== undefined && p.maxUdpPayloadSize < 1200)
    return "max_udp_payload_size below 1200";
  // RFC 9000 §18.2: values above 20 are invalid.
  if (p.ackDelayExponent !== undefined && p.ackDelayExponent > 20) return "ack_delay_exponent above 20";
  // RFC 9000 §18.2: values of 2^14 or greater are invalid.
  if (p.maxAckDelay !== undefined && p.maxAckDelay >= 1 << 14) return "max_ack_delay of 2^14 or more";
  // RFC 9000 §18.2: MUST be at least 2.
  if (p.activeConnectionIdLimit !== undefined && p.activeConnectionIdLimit < 2) {
    return "active_connection_id_limit below 2";
  }
  // RFC 9000 §4.6. (A number cannot exceed 2^60 without exceeding 2^53 first; the decoder checks
  // the exact wire value, this only matters for locally built parameters.)
  if (p.initialMaxStreamsBidi !== undefined && p.initialMaxStreamsBidi > 2 ** 60) {
    return "initial_max_streams_bidi above 2^60";
  }
  if (p.initialMaxStreamsUni !== undefined && p.initialMaxStreamsUni > 2 ** 60) {
    return "initial_max_streams_uni above 2^60";
  }
  // RFC 9000 §17.2: a version 1 connection ID is at most 20 bytes.
  for (const [, key, name] of CID_PARAMS) {
    const cid = p[key];
    if (cid !== undefined && cid.length > MAX_CID_LENGTH) return `${name} longer than 20 bytes`;
  }
  // RFC 9000 §18.2: a sequence of 16 bytes.
  if (p.statelessResetToken !== undefined && p.statelessResetToken.length !== RESET_TOKEN_LENGTH) {
    return "stateless_reset_token is not 16 bytes";
  }
  const pa = p.preferredAddress;
  if (pa !== undefined) {
    if (pa.ipv4Address.length !== 4 || pa.ipv6Address.length !== 16)
      return "preferred_address: bad address length";
    if (!isUint16(pa.ipv4Port) || !isUint16(pa.ipv6Port)) return "preferred_address: bad port";
    // RFC 9000 §18.2: a server MUST NOT include a zero-length connection ID; §19.15 syntax: 1–20.
    if (pa.connectionId.length === 0) return "preferred_address with a zero-length connection ID";
    if (pa.connectionId.length > MAX_CID_LENGTH)
      return "preferred_address connection ID longer than 20 bytes";
    if (pa.statelessResetToken.length !== RESET_TOKEN_LENGTH) {
      return "preferred_address stateless reset token is not 16 bytes";
    }
    // RFC 9000 §18.2: a server that chooses a zero-length connection ID MUST NOT provide a
    // preferred address.
    if (p.initialSourceConnectionId !== undefined && p.initialSourceConnectionId.length === 0) {
      return "preferred_address sent with a zero-length connection ID";
    }
  }
  const vi = p.versionInformation;
  if (vi !== undefined) {
    // RFC 9368 §4: a Chosen Version or Available Version of 0 is a parsing failure.
    if (!isUint32(vi.chosenVersion) || vi.chosenVersion === 0)
      return "version_information: bad chosen version";
    for (const v of vi.availableVersions) {
      if (!isUint32(v) || v === 0) return "version_information: bad available version";
    }
  }
  // draft-ietf-quic-ack-frequency §3: min_ack_delay (µs) MUST NOT exceed max_ack_delay (ms).
  if (p.minAckDelay !== undefined) {
    const maxAckDelayUs = (p.maxAckDelay ?? DEFAULT_TRANSPORT_PARAMETERS.maxAckDelay) * 1000;
    if (p.minAckDelay > maxAckDelayUs) return "min_ack_delay greater than max_ack_delay";
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** What the encoder writes to: a ByteWriter, or a counter for the size. */
interface Sink {
  varint(v: number): void;
  varintBig(v: bigint): void;
  uint8(v: number): void;
  uint16(v: number): void;
  uint32(v: number): void;
  bytes(b: Uint8Array): void;
}

class CountingSink implements Sink {
  n = 0;
  varint(v: number): void {
    this.n += varintLength(v);
  }
  varintBig(v: bigint): void {
    this.n += varintLengthBig(v);
  }
  uint8(): void {
    this.n += 1;
  }
  uint16(): void {
    this.n += 2;
  }
  uint32(): void {
    this.n += 4;
  }
  bytes(b: Uint8Array): void {
    this.n += b.length;
  }
}

function writerSink(w: ByteWriter): Sink {
  return {
    varint: (v) => w.writeVarint(v),
    varintBig: (v) => w.writeVarintBig(v),
    uint8: (v) => w.writeUint8(v),
    uint16: (v) => w.writeUint16(v),
    uint32: (v) => w.writeUint32(v),
    bytes: (b) => w.writeBytes(b),
  };
}

/** Throws QuicUsageError when `p` could not be sent: a local bug, never peer input. */
function checkEncodable(p: TransportParameters): void {
  const problem = valueProblem(p);
  if (problem !== undefined) throw new QuicUsageError(`transport parameters: ${problem}`);
  if (p.unknown === undefined) return;
  const seen = new Set<bigint>();
  for (const u of p.unknown) {
    if (u.id < 0n || u.id > MAX_VARINT)
      throw new QuicUsageError(`transport parameter id out of range: ${u.id}`);
    // §7.4: an endpoint MUST NOT send a parameter more than once.
    if (KNOWN_IDS.has(u.id) || seen.has(u.id)) {
      throw new QuicUsageError(`transport parameter 0x${u.id.toString(16)} would be sent twice`);
    }
    seen.add(u.id);
  }
}

function emit(p: TransportParameters, s: Sink): void {
  const int = (id: number, v: number | undefined): void => {
    if (v === undefined) return;
    s.varint(id);
    s.varint(varintLength(v));
    s.varint(v);
  };
  const bytes = (id: number, v: Uint8Array | undefined): void => {
    if (v === undefined) return;
    s.varint(id);
    s.varint(v.length);
    s.bytes(v);
  };
  const flag = (id: number, v: boolean | undefined): void => {
    if (v !== true) return;
    s.varint(id);
    s.varint(0);
  };
  const Id = TransportParameterId;
  bytes(Id.ORIGINAL_DESTINATION_CONNECTION_ID, p.originalDestinationConnectionId);
  int(Id.MAX_IDLE_TIMEOUT, p.maxIdleTimeout);
  bytes(Id.STATELESS_RESET_TOKEN, p.statelessResetToken);
  int(Id.MAX_UDP_PAYLOAD_SIZE, p.maxUdpPayloadSize);
  int(Id.INITIAL_MAX_DATA, p.initialMaxData);
  int(Id.INITIAL_MAX_STREAM_DATA_BIDI_LOCAL, p.initialMaxStreamDataBidiLocal);
  int(Id.INITIAL_MAX_STREAM_DATA_BIDI_REMOTE, p.initialMaxStreamDataBidiRemote);
  int(Id.INITIAL_MAX_STREAM_DATA_UNI, p.initialMaxStreamDataUni);
  int(Id.INITIAL_MAX_STREAMS_BIDI, p.initialMaxStreamsBidi);
  int(Id.INITIAL_MAX_STREAMS_UNI, p.initialMaxStreamsUni);
  int(Id.ACK_DELAY_EXPONENT, p.ackDelayExponent);
  int(Id.MAX_ACK_DELAY, p.maxAckDelay);
  flag(Id.DISABLE_ACTIVE_MIGRATION, p.disableActiveMigration);
  const pa = p.preferredAddress;
  if (pa !== undefined) {
    s.varint(Id.PREFERRED_ADDRESS);
    s.varint(PREFERRED_ADDRESS_FIXED + pa.connectionId.length);
    s.bytes(pa.ipv4Address);
    s.uint16(pa.ipv4Port);
    s.bytes(pa.ipv6Address);
    s.uint16(pa.ipv6Port);
    s.uint8(pa.connectionId.length);
    s.bytes(pa.connectionId);
    s.bytes(pa.statelessResetToken);
  }
  int(Id.ACTIVE_CONNECTION_ID_LIMIT, p.activeConnectionIdLimit);
  bytes(Id.INITIAL_SOURCE_CONNECTION_ID, p.initialSourceConnectionId);
  bytes(Id.RETRY_SOURCE_CONNECTION_ID, p.retrySourceConnectionId);
  const vi = p.versionInformation;
  if (vi !== undefined) {
    s.varint(Id.VERSION_INFORMATION);
    s.varint(4 * (1 + vi.availableVersions.length));
    s.uint32(vi.chosenVersion);
    for (const v of vi.availableVersions) s.uint32(v);
  }
  flag(Id.RESET_STREAM_AT, p.resetStreamAt);
  int(Id.MAX_DATAGRAM_FRAME_SIZE, p.maxDatagramFrameSize);
  flag(Id.GREASE_QUIC_BIT, p.greaseQuicBit);
  int(Id.MIN_ACK_DELAY, p.minAckDelay);
  if (p.unknown !== undefined) {
    for (const u of p.unknown) {
      s.varintBig(u.id);
      s.varint(u.value.length);
      s.bytes(u.value);
    }
  }
}

/** Exact number of bytes {@link encodeTransportParameters} writes for `p`. */
export function transportParametersSize(p: TransportParameters): number {
  checkEncodable(p);
  const c = new CountingSink();
  emit(p, c);
  return c.n;
}

/**
 * Writes the parameters present in `p` (a field that is `undefined`, or a `false` flag, is not
 * written; a default value is written if it is set explicitly), known ones in identifier order,
 * then `unknown` in its order, every integer in its shortest encoding.
 *
 * Throws QuicUsageError if a value is out of range (the same rules the decoder enforces, except the
 * sender-specific ones: do not put server-only parameters in a client's block) or an unknown entry
 * repeats an identifier; BufferOverflowError if `w` is too small (size it with
 * {@link transportParametersSize}). Nothing is written when the values are rejected.
 */
export function encodeTransportParameters(p: TransportParameters, w: ByteWriter): void {
  checkEncodable(p);
  emit(p, writerSink(w));
}

/**
 * A reserved (GREASE) parameter, RFC 9000 §18.1: identifier 31·N+27 with a random N over the whole
 * varint range and a random value of 0–15 bytes. `randomBytes(n)` must return `n` random bytes
 * (e.g. `crypto.randomBytes`). Append the result to `unknown` before encoding.
 */
export function greaseParameter(randomBytes: (n: number) => Uint8Array): UnknownTransportParameter {
  const r = randomBytes(9);
  if (r.length < 9) throw new QuicUsageError("greaseParameter: randomBytes returned too few bytes");
  let n = 0n;
  for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(r[i]);
  const maxN = (MAX_VARINT - 27n) / 31n;
  const id = 31n * (n % (maxN + 1n)) + 27n;
  const len = r[8] & 0x0f;
  const value = len === 0 ? new Uint8Array(0) : Uint8Array.from(randomBytes(len).subarray(0, len));
  if (value.length !== len) throw new QuicUsageError("greaseParameter: randomBytes returned too few bytes");
  return { id, value };
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Decodes a quic_transport_parameters extension body sent by `sender` and validates it.
 *
 * Throws QuicError(TRANSPORT_PARAMETER_ERROR) for: a parameter running past the end (RFC 9000 §18);
 * an integer parameter whose value is not exactly one varint, a flag parameter with a non-empty
 * value, or a fixed-layout parameter of the wrong length (§18.2, RFC 9287 §3, RFC 9368 §4); a
 * repeated identifier (§7.4); a client sending a server-only parameter (§18.2); any value the
 * RFCs call invalid (§7.4, §18.2, §4.6, RFC 9368 §4, ack-frequency §3). RFC 9368 §4 makes every
 * version_information parsing failure — too short, length not a multiple of 4, a zero version, or
 * a client's Chosen Version missing from its Available Versions — a TRANSPORT_PARAMETER_ERROR in
 * QUIC version 1 (version 2 inherits that, RFC 9369 §3); the version negotiation checks that yield
 * VERSION_NEGOTIATION_ERROR need connection state and are in {@link checkVersionInformation}.
 *
 * Does not check the presence of mandatory parameters or connection ID values: that is
 * {@link checkConnectionIdParameters}. Returned byte arrays are copies (see the module comment).
 */
export function decodeTransportParameters(
  bytes: Uint8Array,
  sender: TransportParameterSender,
): TransportParameters {
  try {
    return decode(bytes, sender);
  } catch (e) {
    // Every read below is length-checked first; this is a safety net so that a missed case
    // still surfaces with the right code.
    if (e instanceof TruncatedError)
      throw transportParameterError(`malformed transport parameters: ${e.reason}`);
    throw e;
  }
}

function decode(bytes: Uint8Array, sender: TransportParameterSender): TransportParameters {
  const r = new ByteReader(bytes);
  const unknown: UnknownTransportParameter[] = [];
  const p: TransportParameters = { unknown };
  const seen = new Set<bigint>();
  while (!r.done) {
    const id = readVarintBigChecked(r, "transport parameter id");
    const length = readVarintBigChecked(r, "transport parameter length");
    // RFC 9000 §18: the value lies within the extension.
    if (length > BigInt(r.remaining))
      throw transportParameterError("transport parameter value runs past the end");
    const value = r.readBytes(Number(length));
    // RFC 9000 §7.4: duplicates SHOULD be a TRANSPORT_PARAMETER_ERROR; we do so for every id.
    if (seen.has(id)) throw transportParameterError(`duplicate transport parameter 0x${id.toString(16)}`);
    seen.add(id);
    if (!KNOWN_IDS.has(id)) {
      // RFC 9000 §7.4.2: ignore (but keep) what we do not support, including GREASE (§18.1).
      unknown.push({ id, value: value.slice() });
      continue;
    }
    const n = Number(id);
    // RFC 9000 §18.2: a server MUST treat a server-only parameter from a client as an error.
    if (sender === "client" && SERVER_ONLY_IDS.has(n)) {
      throw transportParameterError(`client sent server-only parameter ${SERVER_ONLY_NAMES[n]}`);
    }
    const int = INTEGER_BY_ID.get(n);
    if (int !== undefined) {
      p[int.key] = integerValue(value, int.name, n);
      continue;
    }
    const cid = CID_BY_ID.get(n);
    if (cid !== undefined) {
      // RFC 9000 §17.2: at most 20 bytes (checked before copying).
      if (value.length > MAX_CID_LENGTH) throw transportParameterError(`${cid.name} longer than 20 bytes`);
      p[cid.key] = value.slice();
      continue;
    }
    switch (n) {
      case TransportParameterId.STATELESS_RESET_TOKEN:
        // RFC 9000 §18.2: a sequence of 16 bytes.
        if (value.length !== RESET_TOKEN_LENGTH)
          throw transportParameterError("stateless_reset_token is not 16 bytes");
        p.statelessResetToken = value.slice();
        break;
      case TransportParameterId.DISABLE_ACTIVE_MIGRATION:
        // RFC 9000 §18.2: a zero-length value.
        if (value.length !== 0)
          throw transportParameterError("disable_active_migration with a non-empty value");
        p.disableActiveMigration = true;
        break;
      case TransportParameterId.GREASE_QUIC_BIT:
        // RFC 9287 §3: a non-empty value MUST be a TRANSPORT_PARAMETER_ERROR.
        if (value.length !== 0) throw transportParameterError("grease_quic_bit with a non-empty value");
        p.greaseQuicBit = true;
        break;
      case TransportParameterId.RESET_STREAM_AT:
        // reliable-stream-reset §3: a non-empty value MUST be a TRANSPORT_PARAMETER_ERROR.
        if (value.length !== 0) throw transportParameterError("reset_stream_at with a non-empty value");
        p.resetStreamAt = true;
        break;
      case TransportParameterId.PREFERRED_ADDRESS:
        p.preferredAddress = decodePreferredAddress(value);
        break;
      case TransportParameterId.VERSION_INFORMATION:
        p.versionInformation = decodeVersionInformation(value, sender);
        break;
      default:
        // Unreachable: every KNOWN_IDS member is handled above.
        throw transportParameterError(`unhandled transport parameter 0x${n.toString(16)}`);
    }
  }
  const problem = valueProblem(p);
  if (problem !== undefined) throw transportParameterError(problem);
  return p;
}

function readVarintBigChecked(r: ByteReader, what: string): bigint {
  if (r.done || r.remaining < 1 << (r.buf[r.pos] >> 6)) throw transportParameterError(`truncated ${what}`);
  return r.readVarintBig();
}

/** An integer parameter's value: exactly one varint (RFC 9000 §18.2), saturated to a number. */
function integerValue(value: Uint8Array, name: string, id: number): number {
  if (value.length === 0 || value.length !== 1 << (value[0] >> 6)) {
    throw transportParameterError(`${name} is not a single varint`);
  }
  const v = new ByteReader(value).readVarintBig();
  // RFC 9000 §4.6: initial_max_streams_* above 2^60 MUST be a TRANSPORT_PARAMETER_ERROR. Checked on
  // the exact value: saturation would map it into range.
  if (
    (id === TransportParameterId.INITIAL_MAX_STREAMS_BIDI ||
      id === TransportParameterId.INITIAL_MAX_STREAMS_UNI) &&
    v > MAX_STREAMS_LIMIT
  ) {
    throw transportParameterError(`${name} above 2^60`);
  }
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** RFC 9000 §18.2, Figure 22. */
function decodePreferredAddress(value: Uint8Array): PreferredAddress {
  if (value.length < PREFERRED_ADDRESS_FIXED) throw transportParameterError("preferred_address too short");
  const r = new ByteReader(value);
  const ipv4Address = r.readBytes(4).slice();
  const ipv4Port = r.readUint16();
  const ipv6Address = r.readBytes(16).slice();
  const ipv6Port = r.readUint16();
  const cidLength = r.readUint8();
  // RFC 9000 §18.2: a server MUST NOT include a zero-length connection ID; a client MUST treat that
  // as a TRANSPORT_PARAMETER_ERROR. §19.15 syntax: at most 20 bytes.
  if (cidLength === 0) throw transportParameterError("preferred_address with a zero-length connection ID");
  if (cidLength > MAX_CID_LENGTH)
    throw transportParameterError("preferred_address connection ID longer than 20 bytes");
  if (value.length !== PREFERRED_ADDRESS_FIXED + cidLength) {
    throw transportParameterError("preferred_address length does not match its connection ID length");
  }
  const connectionId = r.readBytes(cidLength).slice();
  const statelessResetToken = r.readBytes(RESET_TOKEN_LENGTH).slice();
  return { ipv4Address, ipv4Port, ipv6Address, ipv6Port, connectionId, statelessResetToken };
}

/** RFC 9368 §3 and the parsing failures of §4 (TRANSPORT_PARAMETER_ERROR in QUIC version 1). */
function decodeVersionInformation(value: Uint8Array, sender: TransportParameterSender): VersionInformation {
  if (value.length < 4) throw transportParameterError("version_information too short");
  if (value.length % 4 !== 0) throw transportParameterError("version_information length not a multiple of 4");
  const r = new ByteReader(value);
  const chosenVersion = r.readUint32();
  if (chosenVersion === 0) throw transportParameterError("version_information chosen version 0");
  const availableVersions: number[] = [];
  while (!r.done) {
    const v = r.readUint32();
    if (v === 0) throw transportParameterError("version_information available version 0");
    availableVersions.push(v);
  }
  // RFC 9368 §4: a server receiving a Chosen Version not in Available Versions treats it as a
  // parsing failure (§3: the client MUST include it).
  if (sender === "client" && !availableVersions.includes(chosenVersion)) {
    throw transportParameterError("version_information chosen version not among available versions");
  }
  return { chosenVersion, availableVersions };
}

// ---------------------------------------------------------------------------------------------
// Checks that need connection state

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");

/** What the receiving endpoint saw on the wire, to authenticate the peer's connection IDs. */
export interface ExpectedConnectionIds {
  /** Source Connection ID of the first Initial packet received from the peer. */
  initialSourceConnectionId: Uint8Array;
  /**
   * Client only (checking a server's parameters): Destination Connection ID of the client's first
   * Initial packet, the one before any Retry. Required when `sender` is "server".
   */
  originalDestinationConnectionId?: Uint8Array;
  /** Client only: Source Connection ID of the Retry packet, when the client received one. */
  retrySourceConnectionId?: Uint8Array;
}

/**
 * RFC 9000 §7.3: authenticates the connection IDs in the peer's parameters `p` (sent by
 * `sender`) against the values the receiver used and saw in Initial and Retry packets.
 *
 * Throws QuicError(TRANSPORT_PARAMETER_ERROR) when initial_source_connection_id is absent (either
 * sender) or original_destination_connection_id is absent (server) — the code §7.3 mandates — and
 * also for a missing/unexpected retry_source_connection_id or any mismatch, where §7.3 allows
 * TRANSPORT_PARAMETER_ERROR or PROTOCOL_VIOLATION (we use the former throughout), and for a client
 * carrying server-only connection IDs (§18.2). QuicUsageError if `sender` is "server" and
 * `expected.originalDestinationConnectionId` is missing.
 */
export function checkConnectionIdParameters(
  p: TransportParameters,
  expected: ExpectedConnectionIds,
  sender: TransportParameterSender,
): void {
  // §7.3: absence of initial_source_connection_id from either endpoint.
  if (p.initialSourceConnectionId === undefined) {
    throw transportParameterError("missing initial_source_connection_id");
  }
  // §7.3: values MUST match the Source Connection ID of the peer's Initial packets.
  if (!bytesEqual(p.initialSourceConnectionId, expected.initialSourceConnectionId)) {
    throw transportParameterError(
      `initial_source_connection_id ${hexOf(p.initialSourceConnectionId)} does not match ${hexOf(expected.initialSourceConnectionId)}`,
    );
  }
  if (sender === "client") {
    // §18.2: server-only parameters (the decoder already rejects them on the wire).
    if (p.originalDestinationConnectionId !== undefined || p.retrySourceConnectionId !== undefined) {
      throw transportParameterError("client sent a server-only connection ID parameter");
    }
    return;
  }
  const odcid = expected.originalDestinationConnectionId;
  if (odcid === undefined) {
    throw new QuicUsageError(
      "checkConnectionIdParameters: originalDestinationConnectionId required for a server",
    );
  }
  // §7.3: absence of original_destination_connection_id from the server.
  if (p.originalDestinationConnectionId === undefined) {
    throw transportParameterError("missing original_destination_connection_id");
  }
  if (!bytesEqual(p.originalDestinationConnectionId, odcid)) {
    throw transportParameterError(
      `original_destination_connection_id ${hexOf(p.originalDestinationConnectionId)} does not match ${hexOf(odcid)}`,
    );
  }
  const retry = expected.retrySourceConnectionId;
  if (retry === undefined) {
    // §7.3: presence of retry_source_connection_id when no Retry packet was received.
    if (p.retrySourceConnectionId !== undefined) {
      throw transportParameterError("retry_source_connection_id without a Retry");
    }
    return;
  }
  // §7.3: absence of retry_source_connection_id after a Retry, or a mismatch.
  if (p.retrySourceConnectionId === undefined) {
    throw transportParameterError("missing retry_source_connection_id after a Retry");
  }
  if (!bytesEqual(p.retrySourceConnectionId, retry)) {
    throw transportParameterError(
      `retry_source_connection_id ${hexOf(p.retrySourceConnectionId)} does not match ${hexOf(retry)}`,
    );
  }
}

/**
 * The limits a server that accepts 0-RTT MUST NOT reduce: RFC 9000 §7.4.1's list, plus
 * max_datagram_frame_size (RFC 9221 §3); reset_stream_at is checked besides (it must stay on).
 */
const ZERO_RTT_LIMITS = [
  ["activeConnectionIdLimit", "active_connection_id_limit"],
  ["initialMaxData", "initial_max_data"],
  ["initialMaxStreamDataBidiLocal", "initial_max_stream_data_bidi_local"],
  ["initialMaxStreamDataBidiRemote", "initial_max_stream_data_bidi_remote"],
  ["initialMaxStreamDataUni", "initial_max_stream_data_uni"],
  ["initialMaxStreamsBidi", "initial_max_streams_bidi"],
  ["initialMaxStreamsUni", "initial_max_streams_uni"],
  ["maxDatagramFrameSize", "max_datagram_frame_size"],
] as const;

/**
 * The name of the first 0-RTT limit that `current` sets below `remembered` (absent parameters take
 * their defaults), or undefined if none does. A server uses this to decide whether it may accept
 * 0-RTT with its current parameters (§7.4.1: otherwise it rejects 0-RTT).
 */
export function findZeroRttReduction(
  remembered: TransportParameters,
  current: TransportParameters,
): string | undefined {
  const r = withDefaults(remembered);
  const c = withDefaults(current);
  for (const [key, name] of ZERO_RTT_LIMITS) if (c[key] < r[key]) return name;
  // draft-ietf-quic-reliable-stream-reset §3: a server accepting 0-RTT MUST NOT disable the
  // extension it advertised on the connection the ticket came from.
  if (remembered.resetStreamAt === true && current.resetStreamAt !== true) return "reset_stream_at";
  return undefined;
}

/**
 * RFC 9000 §7.4.1 (and RFC 9221 §3): a client whose 0-RTT was accepted checks that the server's
 * new parameters `current` do not reduce the `remembered` limits. Throws QuicError
 * PROTOCOL_VIOLATION if one does. §7.4.1 itself names no error code for this; RFC 9221 §3 mandates
 * PROTOCOL_VIOLATION for the same violation on max_datagram_frame_size, and we use it for all.
 */
export function checkZeroRttParameters(remembered: TransportParameters, current: TransportParameters): void {
  const reduced = findZeroRttReduction(remembered, current);
  if (reduced !== undefined) {
    throw new QuicError(
      TransportErrorCode.PROTOCOL_VIOLATION,
      `server reduced ${reduced} after accepting 0-RTT`,
    );
  }
}

/** QUIC version 1 (RFC 9000 §15). */
const QUIC_V1 = 0x0000_0001;

/** What the receiving endpoint knows about version negotiation (RFC 9368 §4). */
export interface VersionNegotiationContext {
  /** The version in use for the connection (the Negotiated Version, from the long header). */
  version: number;
  /**
   * Client only: the version of its first Initial, when the server switched the connection from it
   * by compatible negotiation (RFC 9368 §2.3): the server's version_information is then required.
   */
  originalVersion?: number;
  /** Client only: the Available Versions the client sent in its own version_information. */
  clientAvailableVersions?: readonly number[];
  /** Client only: this connection attempt was made in response to a Version Negotiation packet. */
  reactedToVersionNegotiation?: boolean;
  /**
   * Client only, required when `reactedToVersionNegotiation`: the client's version selection —
   * which version it would attempt given a Version Negotiation packet listing `offered`.
   */
  selectVersion?: (offered: readonly number[]) => number | undefined;
}

function versionNegotiationError(reason: string): QuicError {
  return new QuicError(TransportErrorCode.VERSION_NEGOTIATION_ERROR, reason);
}

/**
 * RFC 9368 §4 (downgrade prevention) and §8 (version 1 special case): validates the peer's
 * version_information against the connection. Parsing failures were already rejected by the
 * decoder with TRANSPORT_PARAMETER_ERROR; every failure here is VERSION_NEGOTIATION_ERROR.
 *
 * - Peer is a client (we are the server): its Chosen Version MUST equal the version in use. A
 *   missing version_information is allowed (servers MAY complete the handshake).
 * - Peer is a server (we are the client): the server's Chosen Version MUST be one the client
 *   offered in `clientAvailableVersions`. After reacting to a Version Negotiation packet, the
 *   version_information MUST be present (for version 1, its absence means {1, [1]}, §8), its
 *   Available Versions non-empty, and `selectVersion(available ∪ {version})` MUST give `version`.
 */
export function checkVersionInformation(
  p: TransportParameters,
  ctx: VersionNegotiationContext,
  sender: TransportParameterSender,
): void {
  let vi = p.versionInformation;
  if (sender === "client") {
    if (vi !== undefined && vi.chosenVersion !== ctx.version) {
      throw versionNegotiationError("client's chosen version differs from the connection's version");
    }
    return;
  }
  const reacted = ctx.reactedToVersionNegotiation === true;
  const switched = ctx.originalVersion !== undefined && ctx.originalVersion !== ctx.version;
  if (vi === undefined) {
    if (switched) throw versionNegotiationError("version_information missing after a version switch");
    if (!reacted) return;
    if (ctx.version !== QUIC_V1)
      throw versionNegotiationError("version_information missing after Version Negotiation");
    vi = { chosenVersion: QUIC_V1, availableVersions: [QUIC_V1] };
  }
  if (ctx.clientAvailableVersions !== undefined && !ctx.clientAvailableVersions.includes(vi.chosenVersion)) {
    throw versionNegotiationError("server's chosen version was not offered by the client");
  }
  // RFC 9368 §4: the server's Chosen Version MUST equal the Negotiated Version (the one in use,
  // learned from the long header Version field).
  if (vi.chosenVersion !== ctx.version) {
    throw versionNegotiationError("server's chosen version differs from the negotiated version");
  }
  if (!reacted) return;
  if (vi.availableVersions.length === 0) {
    throw versionNegotiationError("server's available versions empty after Version Negotiation");
  }
  if (ctx.selectVersion === undefined) {
    throw new QuicUsageError("checkVersionInformation: selectVersion required after Version Negotiation");
  }
  const offered = vi.availableVersions.includes(ctx.version)
    ? vi.availableVersions
    : [...vi.availableVersions, ctx.version];
  if (ctx.selectVersion(offered) !== ctx.version) {
    throw versionNegotiationError("server's available versions would have led to a different version");
  }
}
