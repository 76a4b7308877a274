/**
 * purequic/h3 — HTTP/3 (RFC 9114) with QPACK (RFC 9204) over purequic.
 *
 * High level: `createH3Fetch()` / `H3Client` (WHATWG fetch), `serveH3()` / `createH3Server()`
 * (WHATWG Request → Response handlers). Middle: `H3Connection` binds the sans-IO `H3Session` to a
 * `QuicConnection`. Low level: the session, the message rules, the frame and QPACK codecs.
 */

export {
  createH3Fetch,
  H3Client,
  type H3ClientOptions,
  type H3Fetch,
  type H3RequestInit,
  type H3Response,
} from "./client.ts";
export {
  H3Connection,
  H3ConnectionClosedError,
  type H3ConnectionOptions,
  H3Stream,
  H3StreamAbortedError,
} from "./connection.ts";
export { H3Error, H3ErrorCode, H3StreamError, h3ErrorName } from "./error-codes.ts";
export {
  H3MessageError,
  type HeaderField,
  isConnectionSpecificField,
  parseRequestHead,
  parseResponseHead,
  parseTrailers,
  type RequestHead,
  type ResponseHead,
} from "./message.ts";
export { DEFAULT_PRIORITY, type Priority, parsePriority, serializePriority } from "./priority.ts";
export {
  createH3Server,
  type H3Handler,
  type H3HandlerResponse,
  type H3RequestInfo,
  type H3Server,
  type ServeH3Options,
  serveH3,
} from "./server.ts";
export {
  GOAWAY_MAX_STREAM_ID,
  type H3Action,
  type H3Event,
  type H3RequestHead,
  H3Session,
  type H3SessionOptions,
  type LocalUniStream,
} from "./session.ts";
export { DEFAULT_SETTINGS, type H3Settings } from "./settings.ts";
