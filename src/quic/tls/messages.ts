/**
 * TLS 1.3 handshake messages (RFC 9846 §4, Appendix B.3) as carried in QUIC CRYPTO frames
 * (RFC 9001 §4: no record layer; each message is `HandshakeType msg_type; uint24 length; body`).
 *
 * This is a codec only. It checks what the presentation-language structures demand (vector
 * bounds, exact lengths, no trailing bytes, the extension rules listed in extensions.ts) and
 * leaves protocol policy to the state machine: legacy_version, legacy_session_id (RFC 9001 §8.4),
 * compression values, cipher-suite choice, KeyUpdate / EndOfEarlyData being forbidden in QUIC
 * (RFC 9001 §6, §8.3; they decode so the state machine can answer unexpected_message), etc.
 *
 * Every decoding failure is a {@link TlsError} (decode_error unless the RFC names another alert);
 * encoding a structurally invalid message is a caller bug (QuicUsageError).
 *
 * Decoded byte fields are views into the input (no copies).
 */
import { ByteReader, ByteWriter } from "../bytes.ts";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, decodeError, TlsError } from "./alert.ts";
import {
  type CertificateEntryExtension,
  type CertificateRequestExtension,
  type ClientHelloExtension,
  checkFixed,
  checkUint,
  type EncryptedExtension,
  ExtensionType,
  expectEnd,
  type HelloRetryRequestExtension,
  isRawExtension,
  type NewSessionTicketExtension,
  type PreSharedKeyClientHelloExtension,
  pskBindersSize,
  readExtensions,
  readFixed,
  readUint16List,
  readVector,
  type ServerHelloExtension,
  type Sink,
  SizeCounter,
  tlsDecode,
  writeBinders,
  writeExtensions,
  writeOpaque,
  writeUint16List,
  writeVector,
} from "./extensions.ts";

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/** HandshakeType (RFC 9846 §4). */
export const HandshakeType = {
  client_hello: 1,
  server_hello: 2,
  new_session_ticket: 4,
  end_of_early_data: 5,
  encrypted_extensions: 8,
  certificate: 11,
  certificate_request: 13,
  certificate_verify: 15,
  finished: 20,
  key_update: 24,
  /** Synthetic, never on the wire (§4.4.1): see {@link messageHash}. */
  message_hash: 254,
} as const;
export type HandshakeType = (typeof HandshakeType)[keyof typeof HandshakeType];

/** CipherSuite (RFC 9846 Appendix B.4). */
export const CipherSuite = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
  TLS_AES_128_CCM_SHA256: 0x1304,
  TLS_AES_128_CCM_8_SHA256: 0x1305,
} as const;
export type CipherSuite = (typeof CipherSuite)[keyof typeof CipherSuite];

/** KeyUpdateRequest (§4.6.3). */
export const KeyUpdateRequest = { update_not_requested: 0, update_requested: 1 } as const;

/** ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (§4.1.3). */
export const HELLO_RETRY_REQUEST_RANDOM: Uint8Array = Uint8Array.from([
  0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2,
  0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
]);

/** Last 8 bytes of ServerHello.random of a TLS 1.3 server negotiating TLS 1.2 (§4.1.3). */
export const DOWNGRADE_TLS12: Uint8Array = Uint8Array.from([0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x01]);
/** Last 8 bytes of ServerHello.random of a TLS 1.3 server negotiating TLS 1.1 or below (§4.1.3). */
export const DOWNGRADE_TLS11: Uint8Array = Uint8Array.from([0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44, 0x00]);

/** Size of the handshake message header: msg_type (1) + uint24 length (3). */
export const HANDSHAKE_HEADER_SIZE = 4;
/** Largest body a handshake message can carry (uint24 length). */
export const MAX_HANDSHAKE_BODY = 0xff_ffff;

const U16 = 0xffff;
const U24 = 0xff_ffff;
const U32 = 0xffff_ffff;

// ---------------------------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------------------------

/** ClientHello (§4.1.2). */
export interface ClientHello {
  type: typeof HandshakeType.client_hello;
  /** Must be 0x0303 in TLS 1.3; not checked here (protocol_version is the state machine's). */
  legacyVersion: number;
  /** 32 bytes. */
  random: Uint8Array;
  /** `<0..32>`; QUIC requires it empty (RFC 9001 §8.4) — a state-machine check. */
  legacySessionId: Uint8Array;
  /** `CipherSuite cipher_suites<2..2^16-2>`. */
  cipherSuites: number[];
  /** `<1..2^8-1>`; TLS 1.3 requires exactly [0] — a state-machine check (illegal_parameter). */
  legacyCompressionMethods: Uint8Array;
  /** `<7..2^16-1>`; pre_shared_key, if any, is last. */
  extensions: ClientHelloExtension[];
}

/** ServerHello (§4.1.3) whose random is not the HelloRetryRequest value. */
export interface ServerHello {
  type: typeof HandshakeType.server_hello;
  isHelloRetryRequest: false;
  legacyVersion: number;
  /** 32 bytes, never equal to {@link HELLO_RETRY_REQUEST_RANDOM}. */
  random: Uint8Array;
  legacySessionIdEcho: Uint8Array;
  cipherSuite: number;
  legacyCompressionMethod: number;
  /** `<6..2^16-1>`. */
  extensions: ServerHelloExtension[];
}

/**
 * HelloRetryRequest (§4.1.4): a ServerHello (same wire type 2) whose random is
 * {@link HELLO_RETRY_REQUEST_RANDOM}; the random is implied and not stored.
 */
export interface HelloRetryRequest {
  type: typeof HandshakeType.server_hello;
  isHelloRetryRequest: true;
  legacyVersion: number;
  legacySessionIdEcho: Uint8Array;
  cipherSuite: number;
  legacyCompressionMethod: number;
  /** `<6..2^16-1>`. */
  extensions: HelloRetryRequestExtension[];
}

/** EncryptedExtensions (§4.3.1). */
export interface EncryptedExtensions {
  type: typeof HandshakeType.encrypted_extensions;
  extensions: EncryptedExtension[];
}

/** CertificateRequest (§4.3.2). */
export interface CertificateRequest {
  type: typeof HandshakeType.certificate_request;
  /** `<0..2^8-1>`. */
  certificateRequestContext: Uint8Array;
  extensions: CertificateRequestExtension[];
}

/** CertificateEntry (§4.4.2): cert_data (X.509 DER, or a SubjectPublicKeyInfo for RawPublicKey). */
export interface CertificateEntry {
  /** `<1..2^24-1>`. */
  certData: Uint8Array;
  extensions: CertificateEntryExtension[];
}

/** Certificate (§4.4.2). */
export interface Certificate {
  type: typeof HandshakeType.certificate;
  /** `<0..2^8-1>`. */
  certificateRequestContext: Uint8Array;
  /** `<0..2^24-1>` bytes; may be empty (a client declining to authenticate). */
  certificateList: CertificateEntry[];
}

/** CertificateVerify (§4.4.3). */
export interface CertificateVerify {
  type: typeof HandshakeType.certificate_verify;
  /** SignatureScheme. */
  algorithm: number;
  /** `<0..2^16-1>`. */
  signature: Uint8Array;
}

/**
 * Finished (§4.4.4): `opaque verify_data[Hash.length]`. The length depends on the negotiated hash,
 * so the decoder keeps the whole body unless told the length ({@link DecodeOptions}).
 */
export interface Finished {
  type: typeof HandshakeType.finished;
  verifyData: Uint8Array;
}

/** NewSessionTicket (§4.6.1). */
export interface NewSessionTicket {
  type: typeof HandshakeType.new_session_ticket;
  /** Seconds (uint32). */
  ticketLifetime: number;
  /** uint32. */
  ticketAgeAdd: number;
  /** `<0..255>`. */
  ticketNonce: Uint8Array;
  /** `<1..2^16-1>`. */
  ticket: Uint8Array;
  extensions: NewSessionTicketExtension[];
}

/** EndOfEarlyData (§4.5): empty. Never sent in QUIC (RFC 9001 §8.3). */
export interface EndOfEarlyData {
  type: typeof HandshakeType.end_of_early_data;
}

/**
 * KeyUpdate (§4.6.3). Forbidden in QUIC (RFC 9001 §6: unexpected_message). `requestUpdate` is
 * decoded as-is, not range-checked, so that the state machine's unexpected_message is not masked
 * by an illegal_parameter from here.
 */
export interface KeyUpdate {
  type: typeof HandshakeType.key_update;
  requestUpdate: number;
}

export type HandshakeMessage =
  | ClientHello
  | ServerHello
  | HelloRetryRequest
  | EncryptedExtensions
  | CertificateRequest
  | Certificate
  | CertificateVerify
  | Finished
  | NewSessionTicket
  | EndOfEarlyData
  | KeyUpdate;

/** Options for decoding. */
export interface DecodeOptions {
  /**
   * Hash.length of the negotiated cipher suite. When set, a Finished whose verify_data has another
   * length is decode_error; when unset, Finished keeps the whole body.
   */
  finishedLength?: number;
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

function writeBody(s: Sink, msg: HandshakeMessage): void {
  switch (msg.type) {
    case HandshakeType.client_hello:
      s.writeUint16(checkUint(msg.legacyVersion, U16, "legacy_version"));
      s.writeBytes(checkFixed(msg.random, 32, "random"));
      writeOpaque(s, 1, 0, 32, "legacy_session_id", msg.legacySessionId);
      writeUint16List(s, 2, 2, U16 - 1, "cipher_suites", msg.cipherSuites);
      writeOpaque(s, 1, 1, 0xff, "legacy_compression_methods", msg.legacyCompressionMethods);
      writeExtensions(s, 7, "client_hello", msg.extensions);
      return;
    case HandshakeType.server_hello: {
      s.writeUint16(checkUint(msg.legacyVersion, U16, "legacy_version"));
      if (msg.isHelloRetryRequest) {
        s.writeBytes(HELLO_RETRY_REQUEST_RANDOM);
      } else {
        checkFixed(msg.random, 32, "random");
        if (isHrrRandom(msg.random)) {
          throw new QuicUsageError("a ServerHello random equal to the HelloRetryRequest value");
        }
        s.writeBytes(msg.random);
      }
      writeOpaque(s, 1, 0, 32, "legacy_session_id_echo", msg.legacySessionIdEcho);
      s.writeUint16(checkUint(msg.cipherSuite, U16, "cipher_suite"));
      s.writeUint8(checkUint(msg.legacyCompressionMethod, 0xff, "legacy_compression_method"));
      if (msg.isHelloRetryRequest) writeExtensions(s, 6, "hello_retry_request", msg.extensions);
      else writeExtensions(s, 6, "server_hello", msg.extensions);
      return;
    }
    case HandshakeType.encrypted_extensions:
      writeExtensions(s, 0, "encrypted_extensions", msg.extensions);
      return;
    case HandshakeType.certificate_request:
      writeOpaque(s, 1, 0, 0xff, "certificate_request_context", msg.certificateRequestContext);
      writeExtensions(s, 0, "certificate_request", msg.extensions);
      return;
    case HandshakeType.certificate:
      writeOpaque(s, 1, 0, 0xff, "certificate_request_context", msg.certificateRequestContext);
      writeVector(s, 3, 0, U24, "certificate_list", () => {
        for (const e of msg.certificateList) {
          writeOpaque(s, 3, 1, U24, "cert_data", e.certData);
          writeExtensions(s, 0, "certificate", e.extensions);
        }
      });
      return;
    case HandshakeType.certificate_verify:
      s.writeUint16(checkUint(msg.algorithm, U16, "algorithm"));
      writeOpaque(s, 2, 0, U16, "signature", msg.signature);
      return;
    case HandshakeType.finished:
      s.writeBytes(msg.verifyData);
      return;
    case HandshakeType.new_session_ticket:
      s.writeUint32(checkUint(msg.ticketLifetime, U32, "ticket_lifetime"));
      s.writeUint32(checkUint(msg.ticketAgeAdd, U32, "ticket_age_add"));
      writeOpaque(s, 1, 0, 0xff, "ticket_nonce", msg.ticketNonce);
      writeOpaque(s, 2, 1, U16, "ticket", msg.ticket);
      writeExtensions(s, 0, "new_session_ticket", msg.extensions);
      return;
    case HandshakeType.end_of_early_data:
      return;
    case HandshakeType.key_update:
      s.writeUint8(checkUint(msg.requestUpdate, 0xff, "request_update"));
      return;
    default: {
      const never: never = msg;
      throw new QuicUsageError(`unknown handshake message type ${(never as { type: number }).type}`);
    }
  }
}

function writeMessage(s: Sink, msg: HandshakeMessage): void {
  s.writeUint8(msg.type);
  writeVector(s, 3, 0, U24, "handshake message body", () => writeBody(s, msg));
}

/** Encoded size of a message, header included. */
export function handshakeMessageSize(msg: HandshakeMessage): number {
  const c = new SizeCounter();
  writeMessage(c, msg);
  return c.pos;
}

/**
 * Writes a message with its 4-byte header (type + uint24 length) into `w`. The writer must have
 * {@link handshakeMessageSize} bytes left (BufferOverflowError otherwise).
 */
export function writeHandshakeMessage(w: ByteWriter, msg: HandshakeMessage): void {
  writeMessage(w, msg);
}

/** The exact bytes of a message, header included (what the transcript hash takes). */
export function encodeHandshakeMessage(msg: HandshakeMessage): Uint8Array {
  const out = new Uint8Array(handshakeMessageSize(msg));
  const w = new ByteWriter(out);
  writeMessage(w, msg);
  if (w.pos !== out.length) throw new QuicUsageError("handshake message size changed while encoding");
  return out;
}

/**
 * Encodes a ClientHello. When it carries a pre_shared_key extension (always last, §4.2.11),
 * `bindersOffset` is where the binders list (its uint16 length) starts: `bytes.subarray(0,
 * bindersOffset)` is the partial ClientHello the binders are computed over (§4.2.11.2: all length
 * fields already count binders of the given sizes). Encode with placeholder binders of the right
 * lengths (e.g. zeros of Hash.length), compute, then {@link patchBinders}.
 */
export function encodeClientHello(ch: ClientHello): { bytes: Uint8Array; bindersOffset: number | undefined } {
  const bytes = encodeHandshakeMessage(ch);
  const psk = lastPsk(ch);
  return { bytes, bindersOffset: psk === undefined ? undefined : bytes.length - pskBindersSize(psk.binders) };
}

/**
 * Offset of the binders list in an encoded ClientHello `raw` (header included) that decoded to
 * `ch`, e.g. on the server to verify a binder: Transcript-Hash(Truncate(ClientHello)) hashes
 * `raw.subarray(0, offset)`. QuicUsageError if `ch` has no pre_shared_key.
 */
export function clientHelloBindersOffset(raw: Uint8Array, ch: ClientHello): number {
  const psk = lastPsk(ch);
  if (psk === undefined) throw new QuicUsageError("ClientHello has no pre_shared_key extension");
  const offset = raw.length - pskBindersSize(psk.binders);
  if (offset < HANDSHAKE_HEADER_SIZE) throw new QuicUsageError("raw is not the encoding of this ClientHello");
  return offset;
}

function lastPsk(ch: ClientHello): PreSharedKeyClientHelloExtension | undefined {
  const last = ch.extensions[ch.extensions.length - 1];
  if (last === undefined || last.type !== ExtensionType.pre_shared_key || isRawExtension(last))
    return undefined;
  return last as PreSharedKeyClientHelloExtension;
}

/**
 * Writes `binders` over the binders list of an encoded ClientHello in place. The list at
 * `bindersOffset` must run to the end of `bytes` and hold as many entries, of the same lengths,
 * as `binders` (the placeholders it was encoded with); otherwise QuicUsageError and `bytes` is
 * left unchanged.
 */
export function patchBinders(bytes: Uint8Array, bindersOffset: number, binders: readonly Uint8Array[]): void {
  if (!Number.isInteger(bindersOffset) || bindersOffset < 0 || bindersOffset > bytes.length) {
    throw new QuicUsageError("patchBinders: offset out of range");
  }
  const size = pskBindersSize(binders);
  if (bytes.length - bindersOffset !== size) {
    throw new QuicUsageError(
      `patchBinders: ${bytes.length - bindersOffset} bytes at offset, binders need ${size}`,
    );
  }
  const listLen = (bytes[bindersOffset] << 8) | bytes[bindersOffset + 1];
  if (listLen !== size - 2) throw new QuicUsageError("patchBinders: binders list length differs");
  let p = bindersOffset + 2;
  for (const b of binders) {
    if (bytes[p] !== b.length)
      throw new QuicUsageError("patchBinders: binder length differs from placeholder");
    p += 1 + b.length;
  }
  const w = new ByteWriter(bytes, bindersOffset);
  writeBinders(w, binders);
}

/**
 * The synthetic message_hash message that replaces ClientHello1 in the transcript after a
 * HelloRetryRequest (§4.4.1): `254, 00 00 Hash.length, Hash(ClientHello1)`.
 */
export function messageHash(clientHello1Hash: Uint8Array): Uint8Array {
  const out = new Uint8Array(HANDSHAKE_HEADER_SIZE + clientHello1Hash.length);
  const w = new ByteWriter(out);
  w.writeUint8(HandshakeType.message_hash);
  w.writeUint24(checkUint(clientHello1Hash.length, U24, "hash length"));
  w.writeBytes(clientHello1Hash);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

function isHrrRandom(random: Uint8Array): boolean {
  return bytesEqual(random, HELLO_RETRY_REQUEST_RANDOM);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function decodeClientHello(r: ByteReader): ClientHello {
  const legacyVersion = readFixed(r, 2, "legacy_version");
  const random = readFixed(r, 32, "random");
  const legacySessionId = readVector(r, 1, 0, 32, "legacy_session_id");
  const cipherSuites = readUint16List(r, 2, 2, U16 - 1, "cipher_suites");
  const legacyCompressionMethods = readVector(r, 1, 1, 0xff, "legacy_compression_methods");
  if (r.done) {
    // A pre-TLS 1.3 ClientHello (§4.1.2: TLS 1.3 ClientHellos always carry extensions). A TLS
    // 1.3-only endpoint answers protocol_version.
    throw new TlsError(AlertDescription.protocol_version, "ClientHello without extensions (pre-TLS 1.3)");
  }
  const extensions = readExtensions(r, 7, "client_hello") as ClientHelloExtension[];
  expectEnd(r, "ClientHello");
  return {
    type: HandshakeType.client_hello,
    legacyVersion: (legacyVersion[0] << 8) | legacyVersion[1],
    random,
    legacySessionId,
    cipherSuites,
    legacyCompressionMethods,
    extensions,
  };
}

function decodeServerHello(r: ByteReader): ServerHello | HelloRetryRequest {
  const v = readFixed(r, 2, "legacy_version");
  const legacyVersion = (v[0] << 8) | v[1];
  const random = readFixed(r, 32, "random");
  const legacySessionIdEcho = readVector(r, 1, 0, 32, "legacy_session_id_echo");
  const cs = readFixed(r, 2, "cipher_suite");
  const cipherSuite = (cs[0] << 8) | cs[1];
  const legacyCompressionMethod = readFixed(r, 1, "legacy_compression_method")[0];
  const hrr = isHrrRandom(random);
  if (r.done) {
    // No extensions: a TLS 1.2-or-older ServerHello. §4.1.3: a downgrade sentinel in the random
    // is illegal_parameter; otherwise the version is unacceptable (protocol_version).
    const tail = random.subarray(24);
    if (bytesEqual(tail, DOWNGRADE_TLS12) || bytesEqual(tail, DOWNGRADE_TLS11)) {
      throw new TlsError(AlertDescription.illegal_parameter, "ServerHello carries a downgrade sentinel");
    }
    throw new TlsError(AlertDescription.protocol_version, "ServerHello without extensions (pre-TLS 1.3)");
  }
  if (hrr) {
    const extensions = readExtensions(r, 6, "hello_retry_request") as HelloRetryRequestExtension[];
    expectEnd(r, "HelloRetryRequest");
    return {
      type: HandshakeType.server_hello,
      isHelloRetryRequest: true,
      legacyVersion,
      legacySessionIdEcho,
      cipherSuite,
      legacyCompressionMethod,
      extensions,
    };
  }
  const extensions = readExtensions(r, 6, "server_hello") as ServerHelloExtension[];
  expectEnd(r, "ServerHello");
  return {
    type: HandshakeType.server_hello,
    isHelloRetryRequest: false,
    legacyVersion,
    random,
    legacySessionIdEcho,
    cipherSuite,
    legacyCompressionMethod,
    extensions,
  };
}

function decodeBody(type: number, r: ByteReader, opts: DecodeOptions): HandshakeMessage {
  switch (type) {
    case HandshakeType.client_hello:
      return decodeClientHello(r);
    case HandshakeType.server_hello:
      return decodeServerHello(r);
    case HandshakeType.encrypted_extensions: {
      const extensions = readExtensions(r, 0, "encrypted_extensions") as EncryptedExtension[];
      expectEnd(r, "EncryptedExtensions");
      return { type, extensions };
    }
    case HandshakeType.certificate_request: {
      const certificateRequestContext = readVector(r, 1, 0, 0xff, "certificate_request_context");
      const extensions = readExtensions(r, 0, "certificate_request") as CertificateRequestExtension[];
      expectEnd(r, "CertificateRequest");
      return { type, certificateRequestContext, extensions };
    }
    case HandshakeType.certificate: {
      const certificateRequestContext = readVector(r, 1, 0, 0xff, "certificate_request_context");
      const list = new ByteReader(readVector(r, 3, 0, U24, "certificate_list"));
      const certificateList: CertificateEntry[] = [];
      while (!list.done) {
        const certData = readVector(list, 3, 1, U24, "cert_data");
        const extensions = readExtensions(list, 0, "certificate") as CertificateEntryExtension[];
        certificateList.push({ certData, extensions });
      }
      expectEnd(r, "Certificate");
      return { type, certificateRequestContext, certificateList };
    }
    case HandshakeType.certificate_verify: {
      const a = readFixed(r, 2, "algorithm");
      const signature = readVector(r, 2, 0, U16, "signature");
      expectEnd(r, "CertificateVerify");
      return { type, algorithm: (a[0] << 8) | a[1], signature };
    }
    case HandshakeType.finished: {
      const verifyData = r.readBytes(r.remaining);
      if (opts.finishedLength !== undefined && verifyData.length !== opts.finishedLength) {
        throw decodeError(
          `Finished: verify_data is ${verifyData.length} bytes, expected ${opts.finishedLength}`,
        );
      }
      return { type, verifyData };
    }
    case HandshakeType.new_session_ticket: {
      const head = readFixed(r, 8, "ticket_lifetime/ticket_age_add");
      const ticketLifetime = ((head[0] << 24) | (head[1] << 16) | (head[2] << 8) | head[3]) >>> 0;
      const ticketAgeAdd = ((head[4] << 24) | (head[5] << 16) | (head[6] << 8) | head[7]) >>> 0;
      const ticketNonce = readVector(r, 1, 0, 0xff, "ticket_nonce");
      const ticket = readVector(r, 2, 1, U16, "ticket");
      const extensions = readExtensions(r, 0, "new_session_ticket") as NewSessionTicketExtension[];
      expectEnd(r, "NewSessionTicket");
      return { type, ticketLifetime, ticketAgeAdd, ticketNonce, ticket, extensions };
    }
    case HandshakeType.end_of_early_data:
      expectEnd(r, "EndOfEarlyData");
      return { type };
    case HandshakeType.key_update: {
      const requestUpdate = readFixed(r, 1, "request_update")[0];
      expectEnd(r, "KeyUpdate");
      return { type, requestUpdate };
    }
    default:
      // Unknown, reserved (TLS 1.2-only) or synthetic (message_hash) types are never valid on the
      // wire in TLS 1.3: an inappropriate message (RFC 9846 §6.2).
      throw new TlsError(AlertDescription.unexpected_message, `unexpected handshake message type ${type}`);
  }
}

/**
 * Decodes a handshake message body (without its 4-byte header) of type `type`. Throws
 * {@link TlsError} only: decode_error for malformed input, illegal_parameter / protocol_version
 * where RFC 9846 names them, unexpected_message for a type that is not a TLS 1.3 message.
 */
export function decodeHandshakeMessage(
  type: number,
  body: Uint8Array,
  opts: DecodeOptions = {},
): HandshakeMessage {
  return tlsDecode(`handshake message ${type}`, () => decodeBody(type, new ByteReader(body), opts));
}

/** Decodes one complete message with its header; the header length must match exactly. */
export function decodeHandshake(raw: Uint8Array, opts: DecodeOptions = {}): HandshakeMessage {
  if (raw.length < HANDSHAKE_HEADER_SIZE) throw decodeError("handshake message: truncated header");
  const len = (raw[1] << 16) | (raw[2] << 8) | raw[3];
  if (len !== raw.length - HANDSHAKE_HEADER_SIZE) {
    throw decodeError(
      `handshake message: length ${len} but ${raw.length - HANDSHAKE_HEADER_SIZE} body bytes`,
    );
  }
  return decodeHandshakeMessage(raw[0], raw.subarray(HANDSHAKE_HEADER_SIZE), opts);
}
