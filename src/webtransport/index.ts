/**
 * WebTransport over HTTP/3 (draft-ietf-webtrans-http3-02, as Chromium speaks it) and over raw
 * QUIC: server, client, sessions, and a W3C-shaped `WebTransport` class for Node.
 */
export {
  type ConnectWebTransportOptions,
  connectWebTransport,
  type OpenWebTransportOptions,
  openWebTransportSession,
  WebTransportConnectError,
} from "./client.ts";
export { echoSession } from "./echo.ts";
export {
  H3_CONNECT_ERROR,
  http3CodeToWebTransport,
  WT_BUFFERED_STREAM_REJECTED,
  WT_SESSION_GONE,
  webTransportCodeToHttp3,
} from "./error-codes.ts";
export { RawQuicSession } from "./raw-quic-session.ts";
export {
  createWebTransportServer,
  serveWebTransport,
  type WebTransportAcceptResult,
  type WebTransportRequest,
  type WebTransportServerOptions,
} from "./server.ts";
export {
  MAX_CLOSE_REASON_BYTES,
  type WebTransportRequestInfo,
  WebTransportSession,
  type WebTransportSessionOptions,
} from "./session.ts";
export type { WebTransportCloseInfo, WebTransportSessionApi } from "./session-interface.ts";
export { MAX_UNASSOCIATED_STREAMS, sessionsOf, WebTransportSessions } from "./session-registry.ts";
export {
  type WebTransportBiStream,
  WebTransportRecvStream,
  WebTransportSendStream,
  WebTransportStreamError,
} from "./streams.ts";
export {
  WebTransport,
  type WebTransportBidirectionalStream,
  type WebTransportCloseInfo as W3CWebTransportCloseInfo,
  WebTransportError,
  type WebTransportOptions,
} from "./w3c.ts";
