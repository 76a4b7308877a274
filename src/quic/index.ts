/**
 * purequic/quic — QUIC v1/v2 in pure TypeScript.
 *
 * High level: connect(), listen(), QuicConnection with streams and datagrams.
 * Low level (sans-IO): Connection, Endpoint, the TLS state machines, and the wire codec.
 */

export { AddressTokens } from "./address-token.ts";
export { type RetryPolicy, ServerAddressValidation } from "./address-validation.ts";
export {
  type BiStream,
  ConnectionClosedError,
  type ConnectOptions,
  connect,
  describeReason,
  type ListenOptions,
  type ListenTicketOptions,
  listen,
  QuicConnection,
  QuicServer,
  RecvStream,
  SendStream,
  StreamResetError,
} from "./api.ts";
export { ByteReader, ByteWriter, MAX_VARINT } from "./bytes.ts";
export {
  type ConnectionCloseReason,
  DEFAULT_TRANSPORT_CONFIG,
  type TransportConfig,
} from "./connection/config.ts";
export {
  type ClientConnectionConfig,
  Connection,
  type ConnectionEvent,
  type EarlyDataState,
  type ServerConnectionConfig,
  type ServerHandshakeInfo,
  type ServerTicketConfig,
} from "./connection/connection.ts";
export type { AeadName, CryptoProvider, HashName } from "./crypto/provider.ts";
export {
  cryptoProviders,
  defaultCryptoProvider,
  NobleCryptoProvider,
  NodeCryptoProvider,
} from "./crypto/providers.ts";
export { Endpoint, type EndpointOptions, type SocketAddress } from "./endpoint.ts";
export { QuicError, QuicUsageError, TransportErrorCode, transportErrorName } from "./errors.ts";
export { decodeFrame, encodeFrame, type Frame, frameSize } from "./frames.ts";
export { type QlogSink, QlogWriter, qlogFromEnv } from "./qlog.ts";
export { AlertDescription, TlsError } from "./tls/alert.ts";
export { type DevCertificate, generateDevCertificate } from "./tls/dev-certificate.ts";
export { SessionCache, type SessionTicketEntry } from "./tls/session-cache.ts";
export {
  decodeTransportParameters,
  encodeTransportParameters,
  type TransportParameters,
} from "./transport-parameters.ts";
export { QUIC_V1, QUIC_V2 } from "./version.ts";
