/**
 * Connection configuration: transport settings with their defaults, and what a closed
 * connection reports.
 */
import type { CryptoProvider } from "../crypto/provider.ts";
import { QUIC_V1 } from "../version.ts";

export interface TransportConfig {
  /** Idle timeout we advertise (ms); the effective one is the smaller of both sides' (RFC 9000 §10.1). 0 = none. */
  maxIdleTimeout: number;
  /** Largest UDP payload we accept (max_udp_payload_size, §18.2). */
  maxUdpPayloadSize: number;
  /** Initial connection-level receive window (initial_max_data). */
  connectionReceiveWindow: number;
  /** Auto-tuning may grow the connection window up to this. */
  maxConnectionReceiveWindow: number;
  /** Initial per-stream receive window (initial_max_stream_data_*). */
  streamReceiveWindow: number;
  /** Auto-tuning may grow a stream window up to this. */
  maxStreamReceiveWindow: number;
  /** Concurrent peer-initiated bidirectional / unidirectional streams (initial_max_streams_*). */
  maxConcurrentBidiStreams: number;
  maxConcurrentUniStreams: number;
  /** DATAGRAM frames we accept (max_datagram_frame_size, RFC 9221); 0 disables datagrams. */
  maxDatagramFrameSize: number;
  /** Datagrams kept in each direction before the oldest is dropped. */
  datagramQueueLength: number;
  /** active_connection_id_limit we advertise (≥ 2). */
  activeConnectionIdLimit: number;
  ackDelayExponent: number;
  /** max_ack_delay we advertise (ms). */
  maxAckDelay: number;
  /** "cubic" (default) or "newreno". */
  congestionControl: "cubic" | "newreno";
  /** Send a PING when idle this long (ms); 0 = never. */
  keepAliveInterval: number;
  /** Initial RTT estimate (ms), RFC 9002 §6.2.2. */
  initialRtt: number;
  /**
   * UDP payload size we start with (the PMTU discovery base, RFC 8899 BASE_PLPMTU). 1200 is always
   * safe (RFC 9000 §14).
   */
  sendUdpPayloadSize: number;
  disableActiveMigration: boolean;
  /**
   * PMTU discovery (RFC 8899 DPLPMTUD, RFC 9000 §14.3): probe for larger packets once the
   * handshake is confirmed. Default true.
   */
  pmtuDiscovery: boolean;
  /**
   * The largest UDP payload PMTU discovery probes for (also capped by the peer's
   * max_udp_payload_size). Default 1452 (a 1500-byte Ethernet MTU minus IPv6 and UDP headers, as
   * quinn's default): node:dgram cannot set the Don't Fragment bit, so a larger probe could pass
   * fragmented on the local host; raise it for paths known to carry more. Unset, the endpoint
   * uses the loopback limit for connections to 127.0.0.0/8 and ::1 (65507 / 65488).
   */
  pmtuUpperBound: number;
  /** PMTU_RAISE_TIMER (RFC 8899 §5.1.1): ms between searches and after a black hole. Default 600 s. */
  pmtuRaiseInterval: number;
  /** Advertise grease_quic_bit and grease the fixed bit when the peer does (RFC 9287). Default true. */
  greaseQuicBit: boolean;
  /**
   * min_ack_delay we advertise in microseconds (draft-ietf-quic-ack-frequency §3): we then honour
   * ACK_FREQUENCY and IMMEDIATE_ACK frames. 0 = do not advertise. Default 1000 (timers are ms).
   */
  minAckDelay: number;
  /**
   * Advertise reset_stream_at (draft-ietf-quic-reliable-stream-reset §3): accept RESET_STREAM_AT
   * frames. Default true.
   */
  resetStreamAt: boolean;
  /**
   * Start a 1-RTT key update (RFC 9001 §6) after this many packets sent in one key phase; 0 =
   * only ahead of the AEAD confidentiality limit (RFC 9001 §6.6), which always applies.
   */
  keyUpdateInterval: number;
}

export const DEFAULT_TRANSPORT_CONFIG: Readonly<TransportConfig> = Object.freeze({
  maxIdleTimeout: 30_000,
  maxUdpPayloadSize: 65527,
  connectionReceiveWindow: 1536 * 1024,
  maxConnectionReceiveWindow: 24 * 1024 * 1024,
  streamReceiveWindow: 1024 * 1024,
  maxStreamReceiveWindow: 16 * 1024 * 1024,
  maxConcurrentBidiStreams: 100,
  maxConcurrentUniStreams: 100,
  maxDatagramFrameSize: 65535,
  datagramQueueLength: 1024,
  activeConnectionIdLimit: 4,
  ackDelayExponent: 3,
  maxAckDelay: 25,
  congestionControl: "cubic",
  keepAliveInterval: 0,
  initialRtt: 333,
  sendUdpPayloadSize: 1200,
  disableActiveMigration: false,
  pmtuDiscovery: true,
  pmtuUpperBound: 1452,
  pmtuRaiseInterval: 600_000,
  greaseQuicBit: true,
  minAckDelay: 1000,
  resetStreamAt: true,
  keyUpdateInterval: 0,
});

export interface ConnectionCommonConfig {
  transport?: Partial<TransportConfig>;
  provider?: CryptoProvider;
  /** QUIC version of the client's first Initial — v1 by default (v1 also when `versions` lists it). */
  version?: number;
  /**
   * Versions for version negotiation (RFC 9368), in preference order. Client: the Available
   * Versions it offers (default: `version`, then the other supported one); a server may switch
   * the connection to any of them (compatible negotiation, v1 ⇄ v2). Server: the versions it picks
   * from, in its order of preference (default: v1 and v2, in the client's order of preference).
   */
  versions?: readonly number[];
  /** Length of the connection IDs we issue (the endpoint routes by them); default 8. */
  connectionIdLength?: number;
  /** Stateless reset token for one of our connection IDs (RFC 9000 §10.3.2); default random. */
  statelessResetToken?: (cid: Uint8Array) => Uint8Array;
  /** SSLKEYLOGFILE lines. */
  keyLog?: (line: string) => void;
  /** qlog events (default: a file in $QLOGDIR when that is set, else none). */
  qlog?: import("../qlog.ts").QlogSink;
  /** Lower AEAD limits than RFC 9001 §6.6's (tests: reach them with few packets). */
  aeadLimits?: Partial<import("./key-update.ts").AeadLimits>;
}

export const DEFAULT_VERSION = QUIC_V1;

/** Why a connection ended. */
export type ConnectionCloseReason =
  /** We or the peer closed with a transport error code (0 = NO_ERROR). */
  | {
      readonly kind: "transport";
      readonly code: number;
      readonly frameType: number;
      readonly reason: string;
      readonly remote: boolean;
    }
  /** We or the peer closed with an application error code. */
  | { readonly kind: "application"; readonly code: bigint; readonly reason: string; readonly remote: boolean }
  /** No packet for the idle timeout. */
  | { readonly kind: "idle-timeout" }
  /** The peer sent a stateless reset (RFC 9000 §10.3). */
  | { readonly kind: "stateless-reset" }
  /** Version negotiation found no version both sides speak. */
  | { readonly kind: "version-mismatch"; readonly offered: readonly number[] };
