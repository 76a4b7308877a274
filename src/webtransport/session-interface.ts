/**
 * What every WebTransport session offers, whatever carries it (HTTP/3 per
 * draft-ietf-webtrans-http3, or a raw QUIC connection as web-transport-quinn offers for MoQ).
 * Shaped like web-transport-quinn's `Session`.
 */
import type { WebTransportBiStream, WebTransportRecvStream, WebTransportSendStream } from "./streams.ts";

/** Why a session ended. */
export interface WebTransportCloseInfo {
  /** The application's 32-bit code (0 for a clean close without one, or a transport failure). */
  readonly code: number;
  /** The application's reason, or a description of the failure. */
  readonly reason: string;
  /** True when the peer closed it (CLOSE_WEBTRANSPORT_SESSION, FIN, or its connection close). */
  readonly remote: boolean;
  /**
   * True for a session close (CLOSE_WEBTRANSPORT_SESSION either way, or a FIN); false when the
   * session broke (stream reset, malformed capsule, connection lost).
   */
  readonly clean: boolean;
}

export interface WebTransportSessionApi {
  /** The next bidirectional stream the peer opened, or null once the session is closed. */
  acceptBi(): Promise<WebTransportBiStream | null>;
  /** The next unidirectional stream the peer opened, or null once the session is closed. */
  acceptUni(): Promise<WebTransportRecvStream | null>;
  openBi(): Promise<WebTransportBiStream>;
  openUni(): Promise<WebTransportSendStream>;
  /** Sends an unreliable datagram (at most {@link maxDatagramSize} bytes). */
  sendDatagram(data: Uint8Array): void;
  /** The next datagram, or null once the session is closed. */
  readDatagram(): Promise<Uint8Array | null>;
  /** The largest datagram {@link sendDatagram} takes now (0: none). */
  readonly maxDatagramSize: number;
  /** Closes the session with an application code (32-bit) and reason. */
  close(code?: number, reason?: string): void;
  /** Resolves once the session is closed (never rejects). */
  readonly closed: Promise<WebTransportCloseInfo>;
  /** Why the session closed, or undefined while it is open. */
  readonly closeReason: WebTransportCloseInfo | undefined;
}
