/**
 * quic-reverse (v1, byte-compatible with the Rust crate quic-reverse 0.1.2): reverse-opened
 * streams over a QUIC connection. A codec (frames, bincode messages, StreamBind), a sans-IO
 * session, an async SessionClient over any {@link ReverseConnection} (purequic's QuicConnection
 * satisfies it), and a TCP tunnel (relay and edge) built on them.
 */
export { BoundRecvStream } from "./bound-recv-stream.ts";
export type {
  ReverseBiStream,
  ReverseConnection,
  ReverseRecvStream,
  ReverseSendStream,
} from "./connection.ts";
export {
  ReverseDecodeError,
  type ReverseDecodeErrorCategory,
  ReverseSessionError,
  type ReverseSessionErrorKind,
} from "./errors.ts";
export { decodeFrame, encodeFrame, FrameReader, FrameTooLargeError, MAX_FRAME_SIZE } from "./frame.ts";
export {
  CLOSE_CODES,
  type CloseCode,
  decodeMessage,
  encodeMessage,
  Features,
  type Metadata,
  type MetadataValue,
  OpenFlags,
  type OpenStatus,
  PROTOCOL_VERSION,
  type ProtocolMessage,
  REJECT_CODES,
  type RejectCode,
} from "./messages.ts";
export {
  type BindDecision,
  ReverseSession,
  type SessionConfig,
  type SessionEvent,
  type SessionRole,
  type SessionState,
} from "./session.ts";
export {
  type OpenRequest,
  type ReverseDataStream,
  SessionClient,
  type SessionClientOptions,
} from "./session-client.ts";
export { decodeStreamBind, encodeStreamBind, STREAM_BIND_SIZE } from "./stream-bind.ts";
export { pipeSocketToStream } from "./tcp-pipe.ts";
export { type EdgeOptions, EdgeRefusedError, type EdgeService, TunnelEdge } from "./tunnel-edge.ts";
export { type ExposedService, type RelayOptions, TUNNEL_ALPN, TunnelRelay } from "./tunnel-relay.ts";
