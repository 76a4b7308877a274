/**
 * HTTP semantics of HTTP/3 messages (RFC 9114 §4.1.2, §4.2, §4.3): validation of decoded field
 * sections into request heads, response heads and trailers, and the helpers to build outgoing
 * field sections.
 *
 * Everything a peer can get wrong here makes the message malformed, which RFC 9114 §4.1.2 says
 * "MUST be treated as a stream error of type H3_MESSAGE_ERROR": the functions throw
 * {@link H3MessageError} (an {@link H3StreamError}), never anything else for peer input.
 *
 * Names and values are byte strings (char codes ≤ 0xff), as QPACK decodes them.
 */
import { H3ErrorCode, H3StreamError } from "./error-codes.ts";

/** A field line: lowercase name, value (byte strings). */
export type HeaderField = readonly [name: string, value: string];

/** A malformed request or response (RFC 9114 §4.1.2): a stream error of type H3_MESSAGE_ERROR. */
export class H3MessageError extends H3StreamError {
  override readonly name: string = "H3MessageError";
  constructor(reason: string) {
    super(H3ErrorCode.H3_MESSAGE_ERROR, reason);
  }
}

/** The control data and fields of a request header section. */
export interface RequestHead {
  method: string;
  /** Absent only for CONNECT (RFC 9114 §4.4). */
  scheme: string | undefined;
  authority: string | undefined;
  /** Absent only for CONNECT (RFC 9114 §4.4). */
  path: string | undefined;
  /** Extended CONNECT (RFC 9220): the :protocol pseudo-header. */
  protocol: string | undefined;
  /** Regular fields, in order. */
  fields: HeaderField[];
  /** The Content-Length value, when present. */
  contentLength: number | undefined;
}

/** The control data and fields of a response header section. */
export interface ResponseHead {
  status: number;
  fields: HeaderField[];
  contentLength: number | undefined;
}

// tchar (RFC 9110 §5.6.2) without uppercase letters: RFC 9114 §4.2 "A request or response
// containing uppercase characters in field names MUST be treated as malformed".
const NAME_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHAR[c.charCodeAt(0)] = 1;

/**
 * Connection-specific fields (RFC 9114 §4.2: "any message containing connection-specific fields
 * MUST be treated as malformed"; RFC 9110 §7.6.1).
 */
const CONNECTION_SPECIFIC = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/** True for a field an HTTP/3 sender MUST NOT generate (RFC 9114 §4.2); `te` is allowed as "trailers". */
export function isConnectionSpecificField(name: string, value = ""): boolean {
  if (CONNECTION_SPECIFIC.has(name)) return true;
  return name === "te" && value.trim().toLowerCase() !== "trailers";
}

function checkName(name: string): void {
  if (name.length === 0) throw new H3MessageError("empty field name");
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff || NAME_CHAR[c] === 0) {
      if (c >= 0x41 && c <= 0x5a) throw new H3MessageError(`uppercase field name ${JSON.stringify(name)}`);
      throw new H3MessageError(`invalid character in field name ${JSON.stringify(name)}`);
    }
  }
}

function checkValue(name: string, value: string): void {
  // RFC 9110 §5.5: "Field values containing CR, LF, or NUL characters are invalid and dangerous";
  // RFC 9114 §4.1.2: invalid characters in values make the message malformed.
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) {
      throw new H3MessageError(`invalid character in the value of ${JSON.stringify(name)}`);
    }
  }
}

/**
 * Checks a regular field line (name charset, value charset, connection-specific fields) and
 * accumulates Content-Length.
 */
function checkRegular(name: string, value: string, state: { contentLength: number | undefined }): void {
  checkName(name);
  checkValue(name, value);
  if (isConnectionSpecificField(name, value)) {
    throw new H3MessageError(`connection-specific field ${name}`);
  }
  if (name === "content-length") {
    // RFC 9110 §8.6: a list of identical values may be collapsed; anything else is invalid.
    for (const part of value.split(",")) {
      const v = part.trim();
      if (!/^\d{1,15}$/.test(v)) throw new H3MessageError(`invalid content-length ${JSON.stringify(value)}`);
      const n = Number(v);
      if (state.contentLength !== undefined && state.contentLength !== n) {
        throw new H3MessageError("conflicting content-length values");
      }
      state.contentLength = n;
    }
  }
}

const REQUEST_PSEUDO = new Set([":method", ":scheme", ":authority", ":path", ":protocol"]);

/** Options of {@link parseRequestHead}. */
export interface ParseRequestOptions {
  /** We sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 9220 §3): :protocol is allowed. */
  extendedConnect?: boolean | undefined;
}

/**
 * Validates a request header section (RFC 9114 §4.3.1, §4.4) and splits it into control data and
 * fields. Throws {@link H3MessageError} when the request is malformed.
 */
export function parseRequestHead(
  lines: readonly (readonly [string, string, boolean?])[],
  opts: ParseRequestOptions = {},
): RequestHead {
  const pseudo = new Map<string, string>();
  const fields: HeaderField[] = [];
  const state = { contentLength: undefined as number | undefined };
  let host: string | undefined;
  for (const line of lines) {
    const name = line[0];
    const value = line[1];
    if (name.charCodeAt(0) === 0x3a) {
      // RFC 9114 §4.3: "All pseudo-header fields MUST appear in the header section before regular
      // header fields"; undefined pseudo-headers make the request malformed.
      if (fields.length > 0) throw new H3MessageError(`pseudo-header ${name} after regular fields`);
      if (!REQUEST_PSEUDO.has(name)) throw new H3MessageError(`invalid pseudo-header ${name} in a request`);
      // RFC 9114 §4.3.1: "exactly one value for the :method, :scheme, and :path".
      if (pseudo.has(name)) throw new H3MessageError(`duplicate ${name}`);
      checkValue(name, value);
      pseudo.set(name, value);
      continue;
    }
    checkRegular(name, value, state);
    if (name === "host") {
      if (host !== undefined && host !== value) throw new H3MessageError("conflicting host fields");
      host = value;
    }
    fields.push([name, value]);
  }
  const method = pseudo.get(":method");
  if (method === undefined || method.length === 0) throw new H3MessageError("missing :method");
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method)) throw new H3MessageError("invalid :method");
  const scheme = pseudo.get(":scheme");
  const authority = pseudo.get(":authority");
  const path = pseudo.get(":path");
  const protocol = pseudo.get(":protocol");

  if (protocol !== undefined) {
    // RFC 9220 §3 (RFC 8441 §4): :protocol only when we enabled extended CONNECT, only with
    // CONNECT, and then :scheme and :path are required like for any other request.
    if (!opts.extendedConnect) throw new H3MessageError(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL");
    if (method !== "CONNECT") throw new H3MessageError(":protocol on a non-CONNECT request");
  } else if (method === "CONNECT") {
    // RFC 9114 §4.4: ":scheme and :path pseudo-header fields are omitted", ":authority" holds the
    // host and port.
    if (scheme !== undefined || path !== undefined) throw new H3MessageError("CONNECT with :scheme or :path");
    if (authority === undefined || authority.length === 0)
      throw new H3MessageError("CONNECT without :authority");
    return { method, scheme, authority, path, protocol, fields, contentLength: state.contentLength };
  }

  // RFC 9114 §4.3.1: ":method, :scheme, and :path" are mandatory.
  if (scheme === undefined || scheme.length === 0) throw new H3MessageError("missing :scheme");
  if (path === undefined) throw new H3MessageError("missing :path");
  const web = scheme === "http" || scheme === "https";
  if (web) {
    // ":path ... MUST NOT be empty for http or https URIs"; "*" only for OPTIONS (RFC 9110 §7.1).
    if (path.length === 0) throw new H3MessageError("empty :path");
    if (path === "*" ? method !== "OPTIONS" : path.charCodeAt(0) !== 0x2f) {
      throw new H3MessageError(`invalid :path ${JSON.stringify(path)}`);
    }
    // "the request MUST contain either an :authority pseudo-header field or a Host header field.
    // If these fields are present, they MUST NOT be empty. If both fields are present, they MUST
    // contain the same value."
    if (authority === undefined && host === undefined) throw new H3MessageError("no :authority nor host");
    if (authority !== undefined && authority.length === 0) throw new H3MessageError("empty :authority");
    if (host !== undefined && host.length === 0) throw new H3MessageError("empty host");
    if (authority !== undefined && host !== undefined && authority !== host) {
      throw new H3MessageError(":authority and host differ");
    }
    // "The authority MUST NOT include the deprecated userinfo subcomponent".
    if (authority?.includes("@")) throw new H3MessageError(":authority with userinfo");
  } else if (path.length === 0) {
    throw new H3MessageError("empty :path");
  }
  return { method, scheme, authority, path, protocol, fields, contentLength: state.contentLength };
}

/**
 * Validates a response header section (RFC 9114 §4.3.2): exactly one `:status`, three digits in
 * 100..599, and no 101 (§4.5: HTTP/3 does not support Switching Protocols). Throws
 * {@link H3MessageError}.
 */
export function parseResponseHead(lines: readonly (readonly [string, string, boolean?])[]): ResponseHead {
  let status: string | undefined;
  const fields: HeaderField[] = [];
  const state = { contentLength: undefined as number | undefined };
  for (const line of lines) {
    const name = line[0];
    const value = line[1];
    if (name.charCodeAt(0) === 0x3a) {
      if (fields.length > 0) throw new H3MessageError(`pseudo-header ${name} after regular fields`);
      // RFC 9114 §4.3: request pseudo-headers MUST NOT appear in responses.
      if (name !== ":status") throw new H3MessageError(`invalid pseudo-header ${name} in a response`);
      if (status !== undefined) throw new H3MessageError("duplicate :status");
      status = value;
      continue;
    }
    checkRegular(name, value, state);
    fields.push([name, value]);
  }
  // RFC 9114 §4.3.2: ":status ... MUST be included in all responses; otherwise, the response is
  // malformed".
  if (status === undefined) throw new H3MessageError("missing :status");
  if (!/^[1-5]\d\d$/.test(status)) throw new H3MessageError(`invalid :status ${JSON.stringify(status)}`);
  const code = Number(status);
  if (code === 101) throw new H3MessageError("101 Switching Protocols is not allowed in HTTP/3");
  return { status: code, fields, contentLength: state.contentLength };
}

/**
 * Validates a trailer section: regular fields only (RFC 9114 §4.3: "Pseudo-header fields MUST NOT
 * appear in trailer sections"). Throws {@link H3MessageError}.
 */
export function parseTrailers(lines: readonly (readonly [string, string, boolean?])[]): HeaderField[] {
  const fields: HeaderField[] = [];
  const state = { contentLength: undefined as number | undefined };
  for (const line of lines) {
    const name = line[0];
    if (name.charCodeAt(0) === 0x3a) throw new H3MessageError(`pseudo-header ${name} in trailers`);
    checkRegular(name, line[1], state);
    fields.push([name, line[1]]);
  }
  return fields;
}

/** True when a response to `method` with `status` has no content (RFC 9110 §6.4.1). */
export function responseHasNoContent(method: string | undefined, status: number): boolean {
  return method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);
}
