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
  /** UDP payload size we send. 1200 is always safe (RFC 9000 §14). */
  sendUdpPayloadSize: number;
  disableActiveMigration: boolean;
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
});

export interface ConnectionCommonConfig {
  transport?: Partial<TransportConfig>;
  provider?: CryptoProvider;
  /** QUIC version to use (client) — v1 by default. */
  version?: number;
  /** Length of the connection IDs we issue (the endpoint routes by them); default 8. */
  connectionIdLength?: number;
  /** Stateless reset token for one of our connection IDs (RFC 9000 §10.3.2); default random. */
  statelessResetToken?: (cid: Uint8Array) => Uint8Array;
  /** SSLKEYLOGFILE lines. */
  keyLog?: (line: string) => void;
  /** qlog events (default: a file in $QLOGDIR when that is set, else none). */
  qlog?: import("../qlog.ts").QlogSink;
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
