/**
 * TLS 1.3 extensions (RFC 9846 §4.2, Appendix B.3.1): code points, typed representations and the
 * codec for extension blocks, plus the presentation-language vector helpers shared with
 * messages.ts.
 *
 * Representation. An extension block is an ordered array (order is kept so that a decoded message
 * re-encodes to the exact bytes the transcript hash saw). Each element is either a typed
 * extension (no `data` field) or a {@link RawExtension} (`{ type, data }`) for everything this
 * module does not interpret (padding, renegotiation_info, GREASE, ...). Which typed shape an
 * extension has depends on the message it is in (key_share is a list in ClientHello, one entry in
 * ServerHello, a group in HelloRetryRequest), so each message has its own union, e.g.
 * {@link ClientHelloExtension}; {@link findExtension} returns the right shape for the message.
 *
 * Decoding rules (all failures are {@link TlsError}):
 * - vector lengths outside their declared `<floor..ceiling>`, lengths running past their parent,
 *   odd lengths for uint16 lists, and data left over after an extension's structure → decode_error
 *   (RFC 9846 §4.2: "MUST abort the handshake with a decode_error alert if there is data left
 *   over after parsing the structure");
 * - two extensions of the same type in one block → illegal_parameter (§4.2);
 * - an extension this module types (see {@link TYPED_EXTENSIONS}) appearing in a message the §4.2
 *   table does not allow it in → illegal_parameter (§4.2: "If an implementation receives an
 *   extension which it recognizes and which is not specified for the message in which it appears,
 *   it MUST abort the handshake with an illegal_parameter alert"). Extensions this module does not
 *   type are never "recognized" here and are kept raw wherever they appear;
 * - pre_shared_key not last in a ClientHello → illegal_parameter (§4.2.11), binder count differing
 *   from identity count → illegal_parameter (one binder per identity; the alert BoringSSL uses).
 *
 * Not checked here (state-machine policy): which extensions are required, whether a response was
 * solicited (unsupported_extension), ALPN "exactly one protocol" in EncryptedExtensions, duplicate
 * groups, key share / supported_groups consistency, the SNI host name syntax.
 *
 * Decoded byte fields are views into the decoded buffer (no copies).
 */
import { ByteReader, ByteWriter, TruncatedError } from "../bytes.ts";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, decodeError, TlsError } from "./alert.ts";

// ---------------------------------------------------------------------------------------------
// Code points
// ---------------------------------------------------------------------------------------------

/** ExtensionType (RFC 9846 §4.2, Appendix B.3.1). */
export const ExtensionType = {
  server_name: 0,
  status_request: 5,
  supported_groups: 10,
  signature_algorithms: 13,
  use_srtp: 14,
  heartbeat: 15,
  application_layer_protocol_negotiation: 16,
  client_certificate_type: 19,
  server_certificate_type: 20,
  padding: 21,
  compress_certificate: 27,
  record_size_limit: 28,
  delegated_credential: 34,
  supported_ekt_ciphers: 39,
  pre_shared_key: 41,
  early_data: 42,
  supported_versions: 43,
  cookie: 44,
  psk_key_exchange_modes: 45,
  certificate_authorities: 47,
  oid_filters: 48,
  post_handshake_auth: 49,
  signature_algorithms_cert: 50,
  key_share: 51,
  transparency_info: 52,
  external_id_hash: 55,
  external_session_id: 56,
  /** RFC 9001 §8.2. */
  quic_transport_parameters: 0x39,
  ticket_request: 58,
  ech_outer_extensions: 64768,
  encrypted_client_hello: 65037,
} as const;
export type ExtensionType = (typeof ExtensionType)[keyof typeof ExtensionType];

/** NamedGroup (RFC 9846 §4.2.7). */
export const NamedGroup = {
  secp256r1: 0x0017,
  secp384r1: 0x0018,
  secp521r1: 0x0019,
  x25519: 0x001d,
  x448: 0x001e,
  ffdhe2048: 0x0100,
  ffdhe3072: 0x0101,
  ffdhe4096: 0x0102,
  ffdhe6144: 0x0103,
  ffdhe8192: 0x0104,
} as const;
export type NamedGroup = (typeof NamedGroup)[keyof typeof NamedGroup];

/** SignatureScheme (RFC 9846 §4.2.3). */
export const SignatureScheme = {
  rsa_pkcs1_sha256: 0x0401,
  rsa_pkcs1_sha384: 0x0501,
  rsa_pkcs1_sha512: 0x0601,
  ecdsa_secp256r1_sha256: 0x0403,
  ecdsa_secp384r1_sha384: 0x0503,
  ecdsa_secp521r1_sha512: 0x0603,
  rsa_pss_rsae_sha256: 0x0804,
  rsa_pss_rsae_sha384: 0x0805,
  rsa_pss_rsae_sha512: 0x0806,
  ed25519: 0x0807,
  ed448: 0x0808,
  rsa_pss_pss_sha256: 0x0809,
  rsa_pss_pss_sha384: 0x080a,
  rsa_pss_pss_sha512: 0x080b,
  rsa_pkcs1_sha1: 0x0201,
  ecdsa_sha1: 0x0203,
} as const;
export type SignatureScheme = (typeof SignatureScheme)[keyof typeof SignatureScheme];

/** PskKeyExchangeMode (RFC 9846 §4.2.9). */
export const PskKeyExchangeMode = { psk_ke: 0, psk_dhe_ke: 1 } as const;
export type PskKeyExchangeMode = (typeof PskKeyExchangeMode)[keyof typeof PskKeyExchangeMode];

/** NameType of the server_name extension (RFC 6066 §3). */
export const ServerNameType = { host_name: 0 } as const;

/** ProtocolVersion of TLS 1.3 (supported_versions, RFC 9846 §4.2.1). */
export const TLS13_VERSION = 0x0304;
/** legacy_version of every TLS 1.3 ClientHello/ServerHello (RFC 9846 §4.1.2): TLS 1.2. */
export const LEGACY_VERSION = 0x0303;

// ---------------------------------------------------------------------------------------------
// Typed extensions
// ---------------------------------------------------------------------------------------------

/** Any extension this module does not interpret in the message it appears in: type + raw bytes. */
export interface RawExtension {
  type: number;
  data: Uint8Array;
}

/** One ServerName entry. `name` is the HostName bytes for `nameType` 0 (host_name). */
export interface ServerName {
  nameType: number;
  name: Uint8Array;
}

/**
 * server_name (RFC 6066 §3). In ClientHello: ServerNameList `server_name_list<1..2^16-1>`, each
 * entry `NameType name_type; opaque HostName<1..2^16-1>` (unknown name types are read as
 * `opaque<0..2^16-1>`, RFC 6066: future types "MUST begin with a 16-bit length field"). In
 * EncryptedExtensions the extension_data is empty: `serverNames` is `[]`.
 */
export interface ServerNameExtension {
  type: typeof ExtensionType.server_name;
  serverNames: ServerName[];
}

/** supported_groups: `NamedGroup named_group_list<2..2^16-1>` (§4.2.7). */
export interface SupportedGroupsExtension {
  type: typeof ExtensionType.supported_groups;
  groups: number[];
}

/** signature_algorithms: `SignatureScheme supported_signature_algorithms<2..2^16-2>` (§4.2.3). */
export interface SignatureAlgorithmsExtension {
  type: typeof ExtensionType.signature_algorithms;
  schemes: number[];
}

/** signature_algorithms_cert, same structure as signature_algorithms (§4.2.3). */
export interface SignatureAlgorithmsCertExtension {
  type: typeof ExtensionType.signature_algorithms_cert;
  schemes: number[];
}

/**
 * application_layer_protocol_negotiation (RFC 7301 §3.1): `ProtocolName protocol_name_list<2..2^16-1>`,
 * `opaque ProtocolName<1..2^8-1>`. The server's list must hold exactly one name (RFC 7301 §3.1):
 * that is for the state machine to check.
 */
export interface AlpnExtension {
  type: typeof ExtensionType.application_layer_protocol_negotiation;
  protocols: Uint8Array[];
}

/** supported_versions in ClientHello: `ProtocolVersion versions<2..254>` (§4.2.1). */
export interface SupportedVersionsClientExtension {
  type: typeof ExtensionType.supported_versions;
  versions: number[];
}

/** supported_versions in ServerHello and HelloRetryRequest: `ProtocolVersion selected_version`. */
export interface SupportedVersionsServerExtension {
  type: typeof ExtensionType.supported_versions;
  selectedVersion: number;
}

/** KeyShareEntry: `NamedGroup group; opaque key_exchange<1..2^16-1>` (§4.2.8). */
export interface KeyShareEntry {
  group: number;
  keyExchange: Uint8Array;
}

/** key_share in ClientHello: `KeyShareEntry client_shares<0..2^16-1>`. */
export interface KeyShareClientHelloExtension {
  type: typeof ExtensionType.key_share;
  clientShares: KeyShareEntry[];
}

/** key_share in ServerHello: `KeyShareEntry server_share`. */
export interface KeyShareServerHelloExtension {
  type: typeof ExtensionType.key_share;
  serverShare: KeyShareEntry;
}

/** key_share in HelloRetryRequest: `NamedGroup selected_group`. */
export interface KeyShareHelloRetryRequestExtension {
  type: typeof ExtensionType.key_share;
  selectedGroup: number;
}

/** PskIdentity: `opaque identity<1..2^16-1>; uint32 obfuscated_ticket_age` (§4.2.11). */
export interface PskIdentity {
  identity: Uint8Array;
  obfuscatedTicketAge: number;
}

/**
 * pre_shared_key in ClientHello (OfferedPsks, §4.2.11): `PskIdentity identities<7..2^16-1>;
 * PskBinderEntry binders<33..2^16-1>`, `opaque PskBinderEntry<32..255>`. Always the last
 * extension of the ClientHello.
 */
export interface PreSharedKeyClientHelloExtension {
  type: typeof ExtensionType.pre_shared_key;
  identities: PskIdentity[];
  binders: Uint8Array[];
}

/** pre_shared_key in ServerHello: `uint16 selected_identity`. */
export interface PreSharedKeyServerHelloExtension {
  type: typeof ExtensionType.pre_shared_key;
  selectedIdentity: number;
}

/** psk_key_exchange_modes: `PskKeyExchangeMode ke_modes<1..255>` (§4.2.9). */
export interface PskKeyExchangeModesExtension {
  type: typeof ExtensionType.psk_key_exchange_modes;
  modes: number[];
}

/** early_data in ClientHello and EncryptedExtensions: empty (§4.2.10). */
export interface EarlyDataExtension {
  type: typeof ExtensionType.early_data;
}

/** early_data in NewSessionTicket: `uint32 max_early_data_size` (§4.2.10). */
export interface EarlyDataTicketExtension {
  type: typeof ExtensionType.early_data;
  maxEarlyDataSize: number;
}

/** cookie: `opaque cookie<1..2^16-1>` (§4.2.2). */
export interface CookieExtension {
  type: typeof ExtensionType.cookie;
  cookie: Uint8Array;
}

/**
 * certificate_authorities: `DistinguishedName authorities<3..2^16-1>`, `opaque
 * DistinguishedName<1..2^16-1>` (§4.2.4). Each DN is kept as its DER bytes.
 */
export interface CertificateAuthoritiesExtension {
  type: typeof ExtensionType.certificate_authorities;
  authorities: Uint8Array[];
}

/** quic_transport_parameters (RFC 9001 §8.2): opaque here, decoded by transport-parameters.ts. */
export interface QuicTransportParametersExtension {
  type: typeof ExtensionType.quic_transport_parameters;
  parameters: Uint8Array;
}

export type ClientHelloExtension =
  | ServerNameExtension
  | SupportedGroupsExtension
  | SignatureAlgorithmsExtension
  | SignatureAlgorithmsCertExtension
  | AlpnExtension
  | SupportedVersionsClientExtension
  | KeyShareClientHelloExtension
  | PreSharedKeyClientHelloExtension
  | PskKeyExchangeModesExtension
  | EarlyDataExtension
  | CookieExtension
  | CertificateAuthoritiesExtension
  | QuicTransportParametersExtension
  | RawExtension;

export type ServerHelloExtension =
  | SupportedVersionsServerExtension
  | KeyShareServerHelloExtension
  | PreSharedKeyServerHelloExtension
  | RawExtension;

export type HelloRetryRequestExtension =
  | SupportedVersionsServerExtension
  | KeyShareHelloRetryRequestExtension
  | CookieExtension
  | RawExtension;

export type EncryptedExtension =
  | ServerNameExtension
  | SupportedGroupsExtension
  | AlpnExtension
  | EarlyDataExtension
  | QuicTransportParametersExtension
  | RawExtension;

export type CertificateRequestExtension =
  | SignatureAlgorithmsExtension
  | SignatureAlgorithmsCertExtension
  | CertificateAuthoritiesExtension
  | RawExtension;

/** No extension allowed in a CertificateEntry is typed here (status_request, SCT, ...). */
export type CertificateEntryExtension = RawExtension;

export type NewSessionTicketExtension = EarlyDataTicketExtension | RawExtension;

/** Every extension shape. */
export type Extension =
  | ClientHelloExtension
  | ServerHelloExtension
  | HelloRetryRequestExtension
  | EncryptedExtension
  | CertificateRequestExtension
  | NewSessionTicketExtension;

/** The message an extension block belongs to: selects the typed shapes and the §4.2 table row. */
export type ExtensionContext =
  | "client_hello"
  | "server_hello"
  | "hello_retry_request"
  | "encrypted_extensions"
  | "certificate_request"
  | "certificate"
  | "new_session_ticket";

/**
 * The extensions this module recognizes, with the messages RFC 9846 §4.2 allows each in. Any of
 * these in another message is illegal_parameter. (server_name is allowed in CertificateRequest
 * for RFC 9261 but kept raw there.)
 */
export const TYPED_EXTENSIONS: ReadonlyMap<number, readonly ExtensionContext[]> = new Map<
  number,
  readonly ExtensionContext[]
>([
  [ExtensionType.server_name, ["client_hello", "encrypted_extensions", "certificate_request"]],
  [ExtensionType.supported_groups, ["client_hello", "encrypted_extensions"]],
  [ExtensionType.signature_algorithms, ["client_hello", "certificate_request"]],
  [ExtensionType.application_layer_protocol_negotiation, ["client_hello", "encrypted_extensions"]],
  [ExtensionType.pre_shared_key, ["client_hello", "server_hello"]],
  [ExtensionType.early_data, ["client_hello", "encrypted_extensions", "new_session_ticket"]],
  [ExtensionType.supported_versions, ["client_hello", "server_hello", "hello_retry_request"]],
  [ExtensionType.cookie, ["client_hello", "hello_retry_request"]],
  [ExtensionType.psk_key_exchange_modes, ["client_hello"]],
  [ExtensionType.certificate_authorities, ["client_hello", "certificate_request"]],
  [ExtensionType.signature_algorithms_cert, ["client_hello", "certificate_request"]],
  [ExtensionType.key_share, ["client_hello", "server_hello", "hello_retry_request"]],
  [ExtensionType.quic_transport_parameters, ["client_hello", "encrypted_extensions"]],
]);

/** Whether RFC 9846 §4.2 allows a recognized extension type in a message. */
export function extensionAllowedIn(type: number, context: ExtensionContext): boolean {
  const allowed = TYPED_EXTENSIONS.get(type);
  return allowed === undefined || allowed.includes(context);
}

/** True for the {@link RawExtension} shape. */
export function isRawExtension(ext: { type: number }): ext is RawExtension {
  return "data" in ext;
}

/**
 * The typed extension of `type` in a decoded block, with the shape of that message, e.g.
 * `findExtension(ch.extensions, ExtensionType.key_share)?.clientShares`. Raw extensions are
 * never returned (use {@link findRawExtension}).
 */
export function findExtension<E extends { type: number }, T extends E["type"]>(
  extensions: readonly E[],
  type: T,
): Extract<E, { type: T }> | undefined {
  for (const e of extensions) {
    if (e.type === type && !isRawExtension(e)) return e as Extract<E, { type: T }>;
  }
  return undefined;
}

/** The raw extension of `type` (one this module does not interpret in that message). */
export function findRawExtension(
  extensions: readonly { type: number }[],
  type: number,
): RawExtension | undefined {
  for (const e of extensions) if (e.type === type && isRawExtension(e)) return e;
  return undefined;
}

/** The first host_name of a server_name extension, as a string (bytes taken as Latin-1). */
export function sniHostName(ext: ServerNameExtension): string | undefined {
  const entry = ext.serverNames.find((n) => n.nameType === ServerNameType.host_name);
  return entry === undefined ? undefined : latin1(entry.name);
}

/** A ClientHello server_name extension naming one host (ASCII; RFC 6066 §3). */
export function serverNameExtension(host: string): ServerNameExtension {
  return { type: ExtensionType.server_name, serverNames: [{ nameType: 0, name: ascii(host, "host name") }] };
}

/** An ALPN extension from protocol names such as "h3" (ASCII). */
export function alpnExtension(protocols: readonly string[]): AlpnExtension {
  return {
    type: ExtensionType.application_layer_protocol_negotiation,
    protocols: protocols.map((p) => ascii(p, "ALPN protocol")),
  };
}

function ascii(s: string, what: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) throw new QuicUsageError(`${what} is not ASCII: ${JSON.stringify(s)}`);
    out[i] = c;
  }
  return out;
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Presentation-language helpers (shared with messages.ts)
// ---------------------------------------------------------------------------------------------

/**
 * @internal What the encoders write to: a {@link ByteWriter}, or a {@link SizeCounter} that only
 * advances `pos` (so a message can be sized exactly before it is written).
 */
export interface Sink {
  pos: number;
  writeUint8(v: number): void;
  writeUint16(v: number): void;
  writeUint24(v: number): void;
  writeUint32(v: number): void;
  writeBytes(src: Uint8Array): void;
}

/** @internal A {@link Sink} that counts bytes instead of writing them. */
export class SizeCounter implements Sink {
  pos = 0;
  writeUint8(_v: number): void {
    this.pos += 1;
  }
  writeUint16(_v: number): void {
    this.pos += 2;
  }
  writeUint24(_v: number): void {
    this.pos += 3;
  }
  writeUint32(_v: number): void {
    this.pos += 4;
  }
  writeBytes(src: Uint8Array): void {
    this.pos += src.length;
  }
}

/** Width in bytes of a vector length field. */
export type LengthWidth = 1 | 2 | 3;

function writeUintN(s: Sink, width: LengthWidth, v: number): void {
  if (width === 1) s.writeUint8(v);
  else if (width === 2) s.writeUint16(v);
  else s.writeUint24(v);
}

/**
 * @internal Writes a variable-length vector `<min..max>`: a `width`-byte length, then whatever
 * `body` writes. The length is back-patched; out of bounds is a caller bug (QuicUsageError).
 */
export function writeVector(
  s: Sink,
  width: LengthWidth,
  min: number,
  max: number,
  what: string,
  body: () => void,
): void {
  const start = s.pos;
  writeUintN(s, width, 0);
  body();
  const len = s.pos - start - width;
  if (len < min || len > max) throw new QuicUsageError(`${what}: length ${len} outside <${min}..${max}>`);
  if (s instanceof ByteWriter) {
    const b = s.buf;
    for (let i = width - 1, v = len; i >= 0; i--, v >>>= 8) b[start + i] = v & 0xff;
  }
}

/** @internal An opaque vector `<min..max>`. */
export function writeOpaque(
  s: Sink,
  width: LengthWidth,
  min: number,
  max: number,
  what: string,
  data: Uint8Array,
): void {
  writeVector(s, width, min, max, what, () => s.writeBytes(data));
}

/** @internal A vector of uint16 values `<min..max>` (bounds in bytes). */
export function writeUint16List(
  s: Sink,
  width: LengthWidth,
  min: number,
  max: number,
  what: string,
  values: readonly number[],
): void {
  writeVector(s, width, min, max, what, () => {
    for (const v of values) s.writeUint16(checkUint(v, 0xffff, what));
  });
}

/** @internal Checks an integer field fits before it is written. */
export function checkUint(v: number, max: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new QuicUsageError(`${what}: ${v} out of range`);
  return v;
}

/** @internal Checks a fixed-length opaque field. */
export function checkFixed(b: Uint8Array, n: number, what: string): Uint8Array {
  if (b.length !== n) throw new QuicUsageError(`${what}: must be ${n} bytes, got ${b.length}`);
  return b;
}

/**
 * @internal Reads a variable-length opaque vector `<min..max>` whose length field is `width`
 * bytes; a view into the reader's buffer. Never reads past the reader's end.
 */
export function readVector(
  r: ByteReader,
  width: LengthWidth,
  min: number,
  max: number,
  what: string,
): Uint8Array {
  if (r.remaining < width) throw decodeError(`${what}: truncated length`);
  const len = width === 1 ? r.readUint8() : width === 2 ? r.readUint16() : r.readUint24();
  if (len < min || len > max) throw decodeError(`${what}: length ${len} outside <${min}..${max}>`);
  if (len > r.remaining)
    throw decodeError(`${what}: length ${len} runs past its parent (${r.remaining} left)`);
  return r.readBytes(len, what);
}

/** @internal Reads a uint16 vector `<min..max>` (bounds in bytes); odd lengths are decode_error. */
export function readUint16List(
  r: ByteReader,
  width: LengthWidth,
  min: number,
  max: number,
  what: string,
): number[] {
  const b = readVector(r, width, min, max, what);
  if (b.length % 2 !== 0) throw decodeError(`${what}: odd length ${b.length} for a uint16 list`);
  const out = new Array<number>(b.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = (b[2 * i] << 8) | b[2 * i + 1];
  return out;
}

/** @internal Reads `n` fixed bytes. */
export function readFixed(r: ByteReader, n: number, what: string): Uint8Array {
  if (r.remaining < n) throw decodeError(`${what}: truncated`);
  return r.readBytes(n, what);
}

/** @internal decode_error unless the reader is exhausted. */
export function expectEnd(r: ByteReader, what: string): void {
  if (!r.done) throw decodeError(`${what}: ${r.remaining} trailing bytes`);
}

/**
 * @internal Runs a decoder, turning a {@link TruncatedError} from bytes.ts (a QUIC
 * FRAME_ENCODING_ERROR) into TLS decode_error. Other errors pass through unchanged.
 */
export function tlsDecode<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TruncatedError) throw decodeError(`${what}: ${e.reason}`);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Extension block codec
// ---------------------------------------------------------------------------------------------

const U16 = 0xffff;

function illegal(reason: string): TlsError {
  return new TlsError(AlertDescription.illegal_parameter, reason);
}

function readKeyShareEntry(r: ByteReader): KeyShareEntry {
  const group = readFixedUint16(r, "KeyShareEntry.group");
  const keyExchange = readVector(r, 2, 1, U16, "KeyShareEntry.key_exchange");
  return { group, keyExchange };
}

function readFixedUint16(r: ByteReader, what: string): number {
  if (r.remaining < 2) throw decodeError(`${what}: truncated`);
  return r.readUint16();
}

function readList<T>(bytes: Uint8Array, item: (r: ByteReader) => T): T[] {
  const r = new ByteReader(bytes);
  const out: T[] = [];
  while (!r.done) out.push(item(r));
  return out;
}

/**
 * Decodes the extension_data of a recognized extension in `context`; undefined when the extension
 * is kept raw in this context. Leaves trailing-data checking to the caller.
 */
function decodeTyped(context: ExtensionContext, type: number, r: ByteReader): Extension | undefined {
  switch (type) {
    case ExtensionType.server_name: {
      if (context === "encrypted_extensions") return { type, serverNames: [] };
      if (context !== "client_hello") return undefined;
      const list = readVector(r, 2, 1, U16, "ServerNameList");
      const serverNames = readList(list, (lr) => {
        if (lr.remaining < 1) throw decodeError("ServerName: truncated");
        const nameType = lr.readUint8();
        const min = nameType === ServerNameType.host_name ? 1 : 0;
        return { nameType, name: readVector(lr, 2, min, U16, "HostName") };
      });
      return { type, serverNames };
    }
    case ExtensionType.supported_groups:
      return { type, groups: readUint16List(r, 2, 2, U16, "NamedGroupList") };
    case ExtensionType.signature_algorithms:
      return { type, schemes: readUint16List(r, 2, 2, U16 - 1, "SignatureSchemeList") };
    case ExtensionType.signature_algorithms_cert:
      return { type, schemes: readUint16List(r, 2, 2, U16 - 1, "SignatureSchemeList") };
    case ExtensionType.application_layer_protocol_negotiation: {
      const list = readVector(r, 2, 2, U16, "ProtocolNameList");
      return { type, protocols: readList(list, (lr) => readVector(lr, 1, 1, 0xff, "ProtocolName")) };
    }
    case ExtensionType.supported_versions:
      if (context === "client_hello") return { type, versions: readUint16List(r, 1, 2, 254, "versions") };
      return { type, selectedVersion: readFixedUint16(r, "selected_version") };
    case ExtensionType.key_share:
      if (context === "client_hello") {
        const list = readVector(r, 2, 0, U16, "client_shares");
        return { type, clientShares: readList(list, readKeyShareEntry) };
      }
      if (context === "server_hello") return { type, serverShare: readKeyShareEntry(r) };
      return { type, selectedGroup: readFixedUint16(r, "selected_group") };
    case ExtensionType.pre_shared_key: {
      if (context === "server_hello")
        return { type, selectedIdentity: readFixedUint16(r, "selected_identity") };
      const idList = readVector(r, 2, 7, U16, "identities");
      const identities = readList(idList, (lr) => {
        const identity = readVector(lr, 2, 1, U16, "PskIdentity.identity");
        if (lr.remaining < 4) throw decodeError("PskIdentity.obfuscated_ticket_age: truncated");
        return { identity, obfuscatedTicketAge: lr.readUint32() };
      });
      const binderList = readVector(r, 2, 33, U16, "binders");
      const binders = readList(binderList, (lr) => readVector(lr, 1, 32, 0xff, "PskBinderEntry"));
      if (binders.length !== identities.length) {
        throw illegal(`pre_shared_key: ${identities.length} identities but ${binders.length} binders`);
      }
      return { type, identities, binders };
    }
    case ExtensionType.psk_key_exchange_modes:
      return { type, modes: Array.from(readVector(r, 1, 1, 0xff, "ke_modes")) };
    case ExtensionType.early_data:
      if (context === "new_session_ticket") {
        if (r.remaining < 4) throw decodeError("max_early_data_size: truncated");
        return { type, maxEarlyDataSize: r.readUint32() };
      }
      return { type };
    case ExtensionType.cookie:
      return { type, cookie: readVector(r, 2, 1, U16, "cookie") };
    case ExtensionType.certificate_authorities: {
      const list = readVector(r, 2, 3, U16, "authorities");
      return { type, authorities: readList(list, (lr) => readVector(lr, 2, 1, U16, "DistinguishedName")) };
    }
    case ExtensionType.quic_transport_parameters:
      return { type, parameters: r.readBytes(r.remaining) };
    default:
      return undefined;
  }
}

/**
 * @internal Reads an extension block `Extension extensions<min..2^16-1>` for `context`.
 * Throws TlsError (decode_error / illegal_parameter, see the module comment).
 */
export function readExtensions(r: ByteReader, min: number, context: ExtensionContext): Extension[] {
  const block = readVector(r, 2, min, U16, `${context} extensions`);
  const br = new ByteReader(block);
  const seen = new Set<number>();
  const out: Extension[] = [];
  while (!br.done) {
    if (br.remaining < 4) throw decodeError(`${context} extensions: truncated extension header`);
    const type = br.readUint16();
    const data = readVector(br, 2, 0, U16, `extension ${type} extension_data`);
    if (seen.has(type)) throw illegal(`${context}: duplicate extension ${type}`);
    seen.add(type);
    if (!extensionAllowedIn(type, context)) {
      throw illegal(`extension ${type} is not allowed in ${context}`);
    }
    const er = new ByteReader(data);
    const typed = decodeTyped(context, type, er);
    if (typed === undefined) {
      out.push({ type, data });
    } else {
      expectEnd(er, `extension ${type} in ${context}`);
      out.push(typed);
    }
  }
  if (context === "client_hello") {
    const i = out.findIndex((e) => e.type === ExtensionType.pre_shared_key);
    if (i !== -1 && i !== out.length - 1)
      throw illegal("pre_shared_key is not the last ClientHello extension");
  }
  return out;
}

function wrongContext(type: number, context: ExtensionContext): QuicUsageError {
  return new QuicUsageError(`extension ${type} of this shape cannot be encoded in ${context}`);
}

function requireContext(type: number, context: ExtensionContext, ...allowed: ExtensionContext[]): void {
  if (!allowed.includes(context)) throw wrongContext(type, context);
}

function writeKeyShareEntry(s: Sink, e: KeyShareEntry): void {
  s.writeUint16(checkUint(e.group, U16, "KeyShareEntry.group"));
  writeOpaque(s, 2, 1, U16, "KeyShareEntry.key_exchange", e.keyExchange);
}

/** Writes the extension_data (without type and length) of a typed extension. */
function writeTyped(s: Sink, context: ExtensionContext, ext: Exclude<Extension, RawExtension>): void {
  switch (ext.type) {
    case ExtensionType.server_name:
      if (context === "encrypted_extensions") {
        if (ext.serverNames.length !== 0) throw new QuicUsageError("server_name in EE must be empty");
        return;
      }
      requireContext(ext.type, context, "client_hello");
      writeVector(s, 2, 1, U16, "ServerNameList", () => {
        for (const n of ext.serverNames) {
          s.writeUint8(checkUint(n.nameType, 0xff, "NameType"));
          writeOpaque(s, 2, n.nameType === ServerNameType.host_name ? 1 : 0, U16, "HostName", n.name);
        }
      });
      return;
    case ExtensionType.supported_groups:
      requireContext(ext.type, context, "client_hello", "encrypted_extensions");
      writeUint16List(s, 2, 2, U16, "NamedGroupList", ext.groups);
      return;
    case ExtensionType.signature_algorithms:
    case ExtensionType.signature_algorithms_cert:
      requireContext(ext.type, context, "client_hello", "certificate_request");
      writeUint16List(s, 2, 2, U16 - 1, "SignatureSchemeList", ext.schemes);
      return;
    case ExtensionType.application_layer_protocol_negotiation:
      requireContext(ext.type, context, "client_hello", "encrypted_extensions");
      writeVector(s, 2, 2, U16, "ProtocolNameList", () => {
        for (const p of ext.protocols) writeOpaque(s, 1, 1, 0xff, "ProtocolName", p);
      });
      return;
    case ExtensionType.supported_versions:
      if ("versions" in ext) {
        requireContext(ext.type, context, "client_hello");
        writeUint16List(s, 1, 2, 254, "versions", ext.versions);
      } else {
        requireContext(ext.type, context, "server_hello", "hello_retry_request");
        s.writeUint16(checkUint(ext.selectedVersion, U16, "selected_version"));
      }
      return;
    case ExtensionType.key_share:
      if ("clientShares" in ext) {
        requireContext(ext.type, context, "client_hello");
        writeVector(s, 2, 0, U16, "client_shares", () => {
          for (const e of ext.clientShares) writeKeyShareEntry(s, e);
        });
      } else if ("serverShare" in ext) {
        requireContext(ext.type, context, "server_hello");
        writeKeyShareEntry(s, ext.serverShare);
      } else {
        requireContext(ext.type, context, "hello_retry_request");
        s.writeUint16(checkUint(ext.selectedGroup, U16, "selected_group"));
      }
      return;
    case ExtensionType.pre_shared_key:
      if ("identities" in ext) {
        requireContext(ext.type, context, "client_hello");
        if (ext.binders.length !== ext.identities.length) {
          throw new QuicUsageError("pre_shared_key: one binder per identity");
        }
        writeVector(s, 2, 7, U16, "identities", () => {
          for (const id of ext.identities) {
            writeOpaque(s, 2, 1, U16, "PskIdentity.identity", id.identity);
            s.writeUint32(checkUint(id.obfuscatedTicketAge, 0xffff_ffff, "obfuscated_ticket_age"));
          }
        });
        writeBinders(s, ext.binders);
      } else {
        requireContext(ext.type, context, "server_hello");
        s.writeUint16(checkUint(ext.selectedIdentity, U16, "selected_identity"));
      }
      return;
    case ExtensionType.psk_key_exchange_modes:
      requireContext(ext.type, context, "client_hello");
      writeVector(s, 1, 1, 0xff, "ke_modes", () => {
        for (const m of ext.modes) s.writeUint8(checkUint(m, 0xff, "PskKeyExchangeMode"));
      });
      return;
    case ExtensionType.early_data:
      if ("maxEarlyDataSize" in ext) {
        requireContext(ext.type, context, "new_session_ticket");
        s.writeUint32(checkUint(ext.maxEarlyDataSize, 0xffff_ffff, "max_early_data_size"));
      } else {
        requireContext(ext.type, context, "client_hello", "encrypted_extensions");
      }
      return;
    case ExtensionType.cookie:
      requireContext(ext.type, context, "client_hello", "hello_retry_request");
      writeOpaque(s, 2, 1, U16, "cookie", ext.cookie);
      return;
    case ExtensionType.certificate_authorities:
      requireContext(ext.type, context, "client_hello", "certificate_request");
      writeVector(s, 2, 3, U16, "authorities", () => {
        for (const dn of ext.authorities) writeOpaque(s, 2, 1, U16, "DistinguishedName", dn);
      });
      return;
    case ExtensionType.quic_transport_parameters:
      requireContext(ext.type, context, "client_hello", "encrypted_extensions");
      s.writeBytes(ext.parameters);
      return;
    default: {
      const never: never = ext;
      throw new QuicUsageError(`unknown typed extension ${(never as { type: number }).type}`);
    }
  }
}

/** @internal Writes the binders list `PskBinderEntry binders<33..2^16-1>`. */
export function writeBinders(s: Sink, binders: readonly Uint8Array[]): void {
  writeVector(s, 2, 33, U16, "binders", () => {
    for (const b of binders) writeOpaque(s, 1, 32, 0xff, "PskBinderEntry", b);
  });
}

/** Encoded size of a binders list (its uint16 length field included). */
export function pskBindersSize(binders: readonly Uint8Array[]): number {
  let n = 2;
  for (const b of binders) n += 1 + b.length;
  return n;
}

/**
 * @internal Writes an extension block `Extension extensions<min..2^16-1>` for `context`. Raw
 * extensions are written verbatim (their content is not validated). Duplicate types, a
 * ClientHello pre_shared_key that is not last, or a typed shape that does not belong in `context`
 * are caller bugs (QuicUsageError).
 */
export function writeExtensions(
  s: Sink,
  min: number,
  context: ExtensionContext,
  extensions: readonly Extension[],
): void {
  const seen = new Set<number>();
  writeVector(s, 2, min, U16, `${context} extensions`, () => {
    extensions.forEach((ext, i) => {
      const type = checkUint(ext.type, U16, "ExtensionType");
      if (seen.has(type)) throw new QuicUsageError(`${context}: duplicate extension ${type}`);
      seen.add(type);
      if (
        context === "client_hello" &&
        type === ExtensionType.pre_shared_key &&
        i !== extensions.length - 1
      ) {
        throw new QuicUsageError("pre_shared_key must be the last ClientHello extension");
      }
      s.writeUint16(type);
      writeVector(s, 2, 0, U16, `extension ${type} extension_data`, () => {
        if (isRawExtension(ext)) s.writeBytes(ext.data);
        else writeTyped(s, context, ext);
      });
    });
  });
}
