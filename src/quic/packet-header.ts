/**
 * QUIC packet headers (RFC 9000 §17, RFC 8999, RFC 9369 §3.2): parsing in two phases, encoding,
 * Version Negotiation and Retry packets, and splitting coalesced packets (RFC 9000 §12.2).
 *
 * Phase (a), {@link parsePacketHeader}, reads what is not header-protected: first byte (as
 * received), version, connection IDs, token, Length; it returns the offset where the protected
 * Packet Number begins and the end of the packet, so a datagram can be split into its coalesced
 * packets before any key is available. Phase (b), {@link readProtectedFields}, runs after header
 * protection has been removed (packet-protection.ts) and reads the reserved bits, packet number
 * length, key phase and packet number.
 *
 * Drop policy. A packet that is malformed in any way a peer or an attacker can cause — truncated,
 * a connection ID longer than 20 bytes in v1/v2, a Length past the end of the datagram, too short
 * for the header protection sample, the fixed bit cleared, an empty or truncated Version
 * Negotiation list, a Retry without a token — throws {@link PacketDropError}. RFC 9000 treats
 * these as packets to *discard* (e.g. §5.2, §12.2, §17.2, §17.2.1, §17.2.5.2, §17.3.1; RFC 9001
 * §5.4.2; RFC 8999 §6), never as connection errors, because a header carries no integrity
 * protection before decryption: an endpoint that catches a `PacketDropError` drops the packet
 * (and, since the packet's end is then unknown, the rest of the datagram) and keeps the
 * connection. `PacketDropError` is a {@link QuicError} (code PROTOCOL_VIOLATION, used only if an
 * endpoint chose to close anyway) with `drop === true`; any other `QuicError` from the packet
 * layer is a connection error (today only non-zero reserved bits after decryption,
 * packet-protection.ts). No other exception escapes the parsers, and they never read past the
 * end of the datagram. Encoders throw {@link QuicUsageError} for caller bugs.
 *
 * Parsed connection IDs, tokens and tags are `subarray` views into the datagram, not copies.
 */
import { ByteReader, ByteWriter, varintLength } from "./bytes.ts";
import type { CryptoProvider } from "./crypto/provider.ts";
import { QuicError, QuicUsageError, TransportErrorCode } from "./errors.ts";
import {
  decodePacketNumber,
  type PacketNumberLength,
  readPacketNumber,
  truncatePacketNumber,
  writePacketNumber,
} from "./packet-number.ts";
import {
  computeRetryIntegrityTag,
  MIN_PROTECTED_LENGTH,
  RETRY_INTEGRITY_TAG_LENGTH,
  verifyRetryIntegrityTag,
} from "./packet-protection.ts";
import {
  LongPacketType,
  requireVersionParams,
  SUPPORTED_VERSIONS,
  VERSION_NEGOTIATION,
  versionParams,
} from "./version.ts";

/** Maximum connection ID length in QUIC v1 and v2 (RFC 9000 §17.2). */
export const MAX_CID_LENGTH = 20;
/** Maximum connection ID length any QUIC version can carry in a long header (RFC 8999 §5.1). */
export const MAX_INVARIANT_CID_LENGTH = 255;

/** Header form bit (RFC 9000 §17.2, §17.3). */
export const HEADER_FORM_LONG = 0x80;
/** Fixed bit, a.k.a. the QUIC bit (RFC 9000 §17.2, RFC 9287). */
export const FIXED_BIT = 0x40;
/** Spin bit of short headers (RFC 9000 §17.3.1, §17.4). Not header-protected. */
export const SPIN_BIT = 0x20;
/** Key phase bit of short headers (RFC 9000 §17.3.1). Header-protected. */
export const KEY_PHASE_BIT = 0x04;

/**
 * Packet types. 0..3 are the logical long header types of {@link LongPacketType} (v1 numbering;
 * the wire bits differ in v2). `UnsupportedVersion` is a long header of a version this stack does
 * not implement, parsed only as far as the invariants allow (RFC 8999 §5.1) so that a server can
 * answer with Version Negotiation.
 */
export const PacketType = {
  Initial: LongPacketType.Initial,
  ZeroRtt: LongPacketType.ZeroRtt,
  Handshake: LongPacketType.Handshake,
  Retry: LongPacketType.Retry,
  OneRtt: 4,
  VersionNegotiation: 5,
  UnsupportedVersion: 6,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/**
 * A packet that MUST (or, lacking integrity protection, may only sensibly) be discarded: the
 * endpoint drops it silently and does not close the connection. See the module comment.
 */
export class PacketDropError extends QuicError {
  /** Always true: discard the packet, keep the connection. */
  readonly drop = true;
  constructor(reason: string) {
    super(TransportErrorCode.PROTOCOL_VIOLATION, reason);
  }
}

function drop(reason: string): never {
  throw new PacketDropError(reason);
}

interface HeaderBase {
  /** Offset of the packet's first byte in the datagram. */
  readonly packetStart: number;
  /** Offset just past the packet: the start of the next coalesced packet, or the datagram end. */
  readonly packetEnd: number;
  /** The first byte as received (header-protected bits still masked, where there are any). */
  readonly firstByte: number;
  readonly dcid: Uint8Array;
}

/** Initial, 0-RTT or Handshake packet (RFC 9000 §17.2.2–§17.2.4). */
export interface LongHeader extends HeaderBase {
  readonly type: typeof PacketType.Initial | typeof PacketType.ZeroRtt | typeof PacketType.Handshake;
  readonly version: number;
  readonly scid: Uint8Array;
  /** Token of an Initial packet (empty when absent); always empty for 0-RTT and Handshake. */
  readonly token: Uint8Array;
  /** Value of the Length field: packet number + protected payload (incl. the AEAD tag). */
  readonly length: number;
  /** Offset of the (protected) Packet Number field; `packetEnd = pnOffset + length`. */
  readonly pnOffset: number;
}

/** 1-RTT packet (RFC 9000 §17.3.1). Extends to the end of the datagram. */
export interface ShortHeader extends HeaderBase {
  readonly type: typeof PacketType.OneRtt;
  readonly pnOffset: number;
}

/** Retry packet (RFC 9000 §17.2.5). Its integrity tag is not verified by the parser. */
export interface RetryHeader extends HeaderBase {
  readonly type: typeof PacketType.Retry;
  readonly version: number;
  readonly scid: Uint8Array;
  /** Retry Token, never empty (a Retry with an empty token is dropped, §17.2.5.2). */
  readonly token: Uint8Array;
  readonly integrityTag: Uint8Array;
}

/** Version Negotiation packet (RFC 9000 §17.2.1, RFC 8999 §6). */
export interface VersionNegotiationHeader extends HeaderBase {
  readonly type: typeof PacketType.VersionNegotiation;
  readonly version: typeof VERSION_NEGOTIATION;
  readonly scid: Uint8Array;
  /** The Supported Version fields, in order (at least one). */
  readonly versions: number[];
}

/** Long header of a version we do not support: only the invariant fields (RFC 8999 §5.1). */
export interface UnsupportedVersionHeader extends HeaderBase {
  readonly type: typeof PacketType.UnsupportedVersion;
  readonly version: number;
  /** Up to 255 bytes (RFC 8999 §5.1). */
  readonly scid: Uint8Array;
}

export type PacketHeader =
  | LongHeader
  | ShortHeader
  | RetryHeader
  | VersionNegotiationHeader
  | UnsupportedVersionHeader;

/** Receiver configuration for {@link parsePacketHeader}. */
export interface ParseOptions {
  /**
   * Length of the connection IDs this endpoint issues: short headers do not encode the
   * Destination Connection ID length (RFC 8999 §5.2), so the receiver must know it.
   */
  readonly localCidLength: number;
  /**
   * True once this endpoint has advertised grease_quic_bit (RFC 9287 §3): packets with the fixed
   * bit cleared are then accepted. Otherwise they MUST be discarded (RFC 9000 §17.2, §17.3.1).
   */
  readonly allowGreasedQuicBit?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Phase (a): the unprotected part

/**
 * Parses the header of the packet starting at `datagram[offset]`, up to the protected Packet
 * Number field (phase (a)). The returned `packetEnd` is where the next coalesced packet starts
 * (RFC 9000 §12.2); for packets without a Length field (1-RTT, Retry, Version Negotiation,
 * unsupported versions) it is the end of the datagram.
 *
 * Throws {@link PacketDropError} for anything malformed; see the module comment. The caller
 * still checks what depends on its state: the version it expects (RFC 9000 §5.2), a non-empty
 * token in a server's Initial (§17.2.2), a server dropping client Initials in datagrams under
 * 1200 bytes (§14.1), whether a datagram carrying an unsupported version is large enough to
 * deserve Version Negotiation (§5.2.2, §14.1), and stateless resets (§10.3.1), which can be
 * shorter than the minimum short header packet this parser accepts.
 */
export function parsePacketHeader(datagram: Uint8Array, offset: number, options: ParseOptions): PacketHeader {
  const end = datagram.length;
  if (!Number.isInteger(offset) || offset < 0 || offset > end) {
    throw new QuicUsageError(`parsePacketHeader: offset ${offset} outside the datagram`);
  }
  if (offset === end) drop("empty packet");
  try {
    const first = datagram[offset];
    return (first & HEADER_FORM_LONG) !== 0
      ? parseLong(datagram, offset, first, options)
      : parseShort(datagram, offset, first, options);
  } catch (e) {
    if (e instanceof PacketDropError) throw e;
    // ByteReader's TruncatedError (a QuicError): the packet ends early, so it is dropped too.
    if (e instanceof QuicError) throw new PacketDropError(e.reason);
    throw e;
  }
}

function checkFixedBit(first: number, options: ParseOptions): void {
  // RFC 9000 §17.2 / §17.3.1: packets containing a zero value for this bit are not valid packets
  // in this version and MUST be discarded — unless we advertised grease_quic_bit (RFC 9287 §3).
  if ((first & FIXED_BIT) === 0 && options.allowGreasedQuicBit !== true) drop("fixed bit is 0");
}

function parseShort(buf: Uint8Array, offset: number, first: number, options: ParseOptions): ShortHeader {
  checkFixedBit(first, options);
  const cidLength = options.localCidLength;
  if (!Number.isInteger(cidLength) || cidLength < 0 || cidLength > MAX_INVARIANT_CID_LENGTH) {
    throw new QuicUsageError(`bad local connection ID length ${cidLength}`);
  }
  const pnOffset = offset + 1 + cidLength;
  // RFC 9001 §5.4.2: an endpoint MUST discard packets that are not long enough to contain a
  // complete header protection sample.
  if (pnOffset + MIN_PROTECTED_LENGTH > buf.length) drop("short header packet too short");
  return {
    type: PacketType.OneRtt,
    packetStart: offset,
    packetEnd: buf.length,
    firstByte: first,
    dcid: buf.subarray(offset + 1, pnOffset),
    pnOffset,
  };
}

function parseLong(buf: Uint8Array, offset: number, first: number, options: ParseOptions): PacketHeader {
  const r = new ByteReader(buf, offset + 1);
  const version = r.readUint32();
  const params = versionParams(version);
  // RFC 9000 §17.2: a v1 DCID/SCID length above 20 MUST be dropped; other versions may carry up
  // to 255 bytes (RFC 8999 §5.1) and must still be readable for Version Negotiation.
  const maxCid = params !== undefined ? MAX_CID_LENGTH : MAX_INVARIANT_CID_LENGTH;
  const dcidLength = r.readUint8();
  if (dcidLength > maxCid) drop(`destination connection ID length ${dcidLength} > ${maxCid}`);
  const dcid = r.readBytes(dcidLength, "destination connection ID");
  const scidLength = r.readUint8();
  if (scidLength > maxCid) drop(`source connection ID length ${scidLength} > ${maxCid}`);
  const scid = r.readBytes(scidLength, "source connection ID");
  const end = buf.length;

  if (version === VERSION_NEGOTIATION) {
    // RFC 9000 §17.2.1 / RFC 8999 §6: the Unused bits (fixed bit included) MUST be ignored; a
    // packet with no Supported Version field or a truncated one MUST be ignored.
    const rest = r.remaining;
    if (rest === 0 || rest % 4 !== 0) drop("version negotiation packet without a whole version list");
    const versions: number[] = [];
    while (!r.done) versions.push(r.readUint32());
    return {
      type: PacketType.VersionNegotiation,
      packetStart: offset,
      packetEnd: end,
      firstByte: first,
      version: VERSION_NEGOTIATION,
      dcid,
      scid,
      versions,
    };
  }

  if (params === undefined) {
    return {
      type: PacketType.UnsupportedVersion,
      packetStart: offset,
      packetEnd: end,
      firstByte: first,
      version,
      dcid,
      scid,
    };
  }

  checkFixedBit(first, options);
  const type = params.wireToType[(first >> 4) & 0x03];

  if (type === LongPacketType.Retry) {
    const tokenLength = r.remaining - RETRY_INTEGRITY_TAG_LENGTH;
    if (tokenLength < 0) drop("retry packet too short for the integrity tag");
    // RFC 9000 §17.2.5.2: a client MUST discard a Retry packet with a zero-length Retry Token.
    if (tokenLength === 0) drop("retry packet with an empty token");
    const token = r.readBytes(tokenLength, "retry token");
    return {
      type: PacketType.Retry,
      packetStart: offset,
      packetEnd: end,
      firstByte: first,
      version,
      dcid,
      scid,
      token,
      integrityTag: r.readBytes(RETRY_INTEGRITY_TAG_LENGTH, "retry integrity tag"),
    };
  }

  let token: Uint8Array = EMPTY;
  if (type === LongPacketType.Initial) {
    const tokenLength = r.readVarint();
    token = r.readBytes(tokenLength, "token");
  }
  const length = r.readVarint();
  const pnOffset = r.pos;
  // RFC 9000 §12.2: Length delimits the packet inside the datagram; a Length running past the
  // datagram cannot be a valid packet.
  if (length > end - pnOffset) drop(`Length ${length} exceeds the datagram`);
  // RFC 9001 §5.4.2: packets too short for the header protection sample MUST be discarded.
  if (length < MIN_PROTECTED_LENGTH) drop(`Length ${length} too short for the header protection sample`);
  return {
    type,
    packetStart: offset,
    packetEnd: pnOffset + length,
    firstByte: first,
    version,
    dcid,
    scid,
    token,
    length,
    pnOffset,
  };
}

const EMPTY = new Uint8Array(0);

/**
 * Splits a datagram into its coalesced packets (RFC 9000 §12.2) by parsing each header (phase
 * (a)). Parsing stops at the first malformed packet: its end, and so everything after it, is
 * unknown and dropped, while the packets before it stay valid. Packets after the first whose
 * Destination Connection ID differs from the first packet's are skipped ("Receivers SHOULD
 * ignore" them, §12.2). Returns the headers in datagram order (possibly none).
 */
export function splitCoalescedPackets(datagram: Uint8Array, options: ParseOptions): PacketHeader[] {
  const headers: PacketHeader[] = [];
  let offset = 0;
  while (offset < datagram.length) {
    let h: PacketHeader;
    try {
      h = parsePacketHeader(datagram, offset, options);
    } catch (e) {
      if (e instanceof PacketDropError) break;
      throw e;
    }
    if (headers.length === 0 || equalBytes(h.dcid, headers[0].dcid)) headers.push(h);
    offset = h.packetEnd;
  }
  return headers;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Phase (b): after header protection removal

/** The header-protected fields, read once header protection has been removed. */
export interface ProtectedFields {
  /** The unprotected first byte. */
  firstByte: number;
  pnLength: PacketNumberLength;
  /** The Packet Number field as sent. */
  truncatedPn: number;
  /** The full packet number recovered with {@link decodePacketNumber}. */
  packetNumber: number;
  /**
   * The reserved bits (long 0x0c, short 0x18) as found in the first byte. Non-zero is a
   * PROTOCOL_VIOLATION, but only once the payload has been decrypted successfully (RFC 9000
   * §17.2, §17.3.1; RFC 9001 §9.5) — see `checkReservedBits` in packet-protection.ts.
   */
  reservedBits: number;
  /** Key phase bit of a short header (RFC 9000 §17.3.1); 0 for long headers. */
  keyPhase: 0 | 1;
  /** Offset of the protected payload: `pnOffset + pnLength`. */
  payloadOffset: number;
}

/**
 * Phase (b): reads the fields that header protection covered, from the *unprotected* first byte
 * at `packetStart` and Packet Number field at `pnOffset`, and decodes the packet number against
 * `largestPn` (largest packet number processed in this space, −1 if none). Fills and returns
 * `out` when given (to avoid an allocation per packet).
 */
export function readProtectedFields(
  buf: Uint8Array,
  packetStart: number,
  pnOffset: number,
  largestPn: number,
  out?: ProtectedFields,
): ProtectedFields {
  const first = buf[packetStart];
  const pnLength = ((first & 0x03) + 1) as PacketNumberLength;
  if (packetStart < 0 || pnOffset <= packetStart || pnOffset + pnLength > buf.length) {
    drop("packet number field past the end of the packet");
  }
  const long = (first & HEADER_FORM_LONG) !== 0;
  const truncatedPn = readPacketNumber(buf, pnOffset, pnLength);
  const o: ProtectedFields = out ?? {
    firstByte: 0,
    pnLength: 1,
    truncatedPn: 0,
    packetNumber: 0,
    reservedBits: 0,
    keyPhase: 0,
    payloadOffset: 0,
  };
  o.firstByte = first;
  o.pnLength = pnLength;
  o.truncatedPn = truncatedPn;
  o.packetNumber = decodePacketNumber(largestPn, truncatedPn, pnLength);
  o.reservedBits = first & (long ? 0x0c : 0x18);
  o.keyPhase = !long && (first & KEY_PHASE_BIT) !== 0 ? 1 : 0;
  o.payloadOffset = pnOffset + pnLength;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Encoding

function checkCid(cid: Uint8Array, max: number, what: string): void {
  if (cid.length > max) throw new QuicUsageError(`${what} longer than ${max} bytes`);
}

function checkPacketNumber(packetNumber: number, pnLength: number): void {
  if (!Number.isSafeInteger(packetNumber) || packetNumber < 0) {
    throw new QuicUsageError(`bad packet number ${packetNumber}`);
  }
  if (pnLength !== 1 && pnLength !== 2 && pnLength !== 3 && pnLength !== 4) {
    throw new QuicUsageError(`bad packet number length ${pnLength}`);
  }
}

/** Fields of an Initial, 0-RTT or Handshake header to encode. */
export interface LongHeaderFields {
  readonly type: typeof PacketType.Initial | typeof PacketType.ZeroRtt | typeof PacketType.Handshake;
  /** QUIC v1 or v2. */
  readonly version: number;
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  /** Initial packets only (a server's Initial MUST have none, RFC 9000 §17.2.2). */
  readonly token?: Uint8Array;
  readonly packetNumber: number;
  readonly pnLength: PacketNumberLength;
  /**
   * The Length field: packet number length + payload + 16 (AEAD tag) (RFC 9000 §17.2). If the
   * payload size is not yet known, write a placeholder and fix it with {@link patchLongHeaderLength}.
   */
  readonly length: number;
  /** Bytes for the Length varint (non-minimal allowed, RFC 9000 §16); default max(2, minimal). */
  readonly lengthSize?: 1 | 2 | 4 | 8;
  /** False clears the QUIC bit; only once the peer advertised grease_quic_bit (RFC 9287 §3.1). */
  readonly fixedBit?: boolean;
}

/**
 * Writes an unprotected Initial, 0-RTT or Handshake header, Packet Number included, with reserved
 * bits 0 (RFC 9000 §17.2: MUST be 0 before protection). Returns the offset of the Packet Number
 * field (for packet protection); the payload starts at `pnOffset + pnLength`.
 */
export function writeLongHeader(w: ByteWriter, h: LongHeaderFields): number {
  const params = requireVersionParams(h.version);
  if (h.type !== PacketType.Initial && h.type !== PacketType.ZeroRtt && h.type !== PacketType.Handshake) {
    throw new QuicUsageError(`writeLongHeader: bad type ${String(h.type)}`);
  }
  checkCid(h.dcid, MAX_CID_LENGTH, "destination connection ID");
  checkCid(h.scid, MAX_CID_LENGTH, "source connection ID");
  checkPacketNumber(h.packetNumber, h.pnLength);
  const token = h.token ?? EMPTY;
  if (token.length > 0 && h.type !== PacketType.Initial) {
    throw new QuicUsageError("only Initial packets carry a token");
  }
  const lengthSize = h.lengthSize ?? (h.length < 0x4000 ? 2 : varintLength(h.length));
  if (h.length < h.pnLength) throw new QuicUsageError(`Length ${h.length} shorter than the packet number`);
  const first =
    HEADER_FORM_LONG |
    (h.fixedBit === false ? 0 : FIXED_BIT) |
    (params.typeToWire[h.type] << 4) |
    (h.pnLength - 1);
  w.writeUint8(first);
  w.writeUint32(h.version);
  w.writeUint8(h.dcid.length);
  w.writeBytes(h.dcid);
  w.writeUint8(h.scid.length);
  w.writeBytes(h.scid);
  if (h.type === PacketType.Initial) {
    w.writeVarint(token.length);
    w.writeBytes(token);
  }
  w.writeVarintFixed(h.length, lengthSize);
  const pnOffset = w.pos;
  w.writeZeros(h.pnLength); // bounds-checked reservation, then filled in
  writePacketNumber(w.buf, pnOffset, truncatePacketNumber(h.packetNumber, h.pnLength), h.pnLength);
  return pnOffset;
}

/**
 * Rewrites the Length field of a long header written by {@link writeLongHeader}, in the same
 * `lengthSize` bytes just before the Packet Number field.
 */
export function patchLongHeaderLength(
  buf: Uint8Array,
  pnOffset: number,
  lengthSize: 1 | 2 | 4 | 8,
  length: number,
): void {
  const p = pnOffset - lengthSize;
  if (p < 0) throw new QuicUsageError("patchLongHeaderLength: bad offset");
  new ByteWriter(buf, p, pnOffset).writeVarintFixed(length, lengthSize);
}

/** Fields of a 1-RTT short header to encode (RFC 9000 §17.3.1). */
export interface ShortHeaderFields {
  readonly dcid: Uint8Array;
  readonly packetNumber: number;
  readonly pnLength: PacketNumberLength;
  readonly keyPhase: 0 | 1;
  /** Latency spin bit (RFC 9000 §17.4); default 0. */
  readonly spinBit?: 0 | 1;
  /** False clears the QUIC bit; only once the peer advertised grease_quic_bit (RFC 9287 §3.1). */
  readonly fixedBit?: boolean;
}

/**
 * Writes an unprotected 1-RTT header, Packet Number included, reserved bits 0 (RFC 9000
 * §17.3.1: MUST be 0 before protection). Returns the offset of the Packet Number field.
 */
export function writeShortHeader(w: ByteWriter, h: ShortHeaderFields): number {
  checkCid(h.dcid, MAX_CID_LENGTH, "destination connection ID");
  checkPacketNumber(h.packetNumber, h.pnLength);
  const first =
    (h.fixedBit === false ? 0 : FIXED_BIT) |
    (h.spinBit === 1 ? SPIN_BIT : 0) |
    (h.keyPhase === 1 ? KEY_PHASE_BIT : 0) |
    (h.pnLength - 1);
  w.writeUint8(first);
  w.writeBytes(h.dcid);
  const pnOffset = w.pos;
  w.writeZeros(h.pnLength); // bounds-checked reservation, then filled in
  writePacketNumber(w.buf, pnOffset, truncatePacketNumber(h.packetNumber, h.pnLength), h.pnLength);
  return pnOffset;
}

// ---------------------------------------------------------------------------------------------
// Version Negotiation (RFC 9000 §6, §17.2.1; RFC 8999 §6)

/**
 * Encodes a Version Negotiation packet. `dcid`/`scid` are the values to put on the wire; when
 * answering a packet use {@link versionNegotiationResponse}, which echoes them as required.
 * `unusedBits` fills the 6 low bits of the first byte (arbitrary, ideally random); the 0x40 bit is
 * always set, as servers SHOULD do (RFC 9000 §17.2.1).
 */
export function encodeVersionNegotiation(
  dcid: Uint8Array,
  scid: Uint8Array,
  versions: readonly number[],
  unusedBits = 0,
): Uint8Array {
  checkCid(dcid, MAX_INVARIANT_CID_LENGTH, "destination connection ID");
  checkCid(scid, MAX_INVARIANT_CID_LENGTH, "source connection ID");
  // RFC 8999 §6: a Version Negotiation packet without Supported Version fields is ignored.
  if (versions.length === 0) throw new QuicUsageError("version negotiation needs at least one version");
  const out = new Uint8Array(1 + 4 + 1 + dcid.length + 1 + scid.length + 4 * versions.length);
  out[0] = HEADER_FORM_LONG | FIXED_BIT | (unusedBits & 0x3f);
  // Version = 0x00000000 (RFC 9000 §17.2.1 MUST): bytes 1..4 are already zero.
  let p = 5;
  out[p++] = dcid.length;
  out.set(dcid, p);
  p += dcid.length;
  out[p++] = scid.length;
  out.set(scid, p);
  p += scid.length;
  for (const v of versions) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new QuicUsageError(`bad version ${v}`);
    out[p++] = v >>> 24;
    out[p++] = v >>> 16;
    out[p++] = v >>> 8;
    out[p++] = v;
  }
  return out;
}

/**
 * The Version Negotiation packet answering a long header packet of an unsupported version: its
 * DCID is the received SCID and its SCID the received DCID (RFC 9000 §17.2.1, RFC 8999 §6 MUST).
 * Only an {@link UnsupportedVersionHeader} is accepted, so a Version Negotiation packet is never
 * answered with one (RFC 9000 §6.1 MUST NOT) and short headers never trigger one (RFC 8999 §6).
 * Sending it only for datagrams of at least 1200 bytes is the caller's decision (§5.2.2, §14.1).
 */
export function versionNegotiationResponse(
  received: UnsupportedVersionHeader,
  versions: readonly number[] = SUPPORTED_VERSIONS,
  unusedBits = 0,
): Uint8Array {
  if (received.type !== PacketType.UnsupportedVersion) {
    throw new QuicUsageError("version negotiation answers only packets of unsupported versions");
  }
  return encodeVersionNegotiation(received.scid, received.dcid, versions, unusedBits);
}

// ---------------------------------------------------------------------------------------------
// Retry (RFC 9000 §17.2.5, RFC 9001 §5.8)

/** Fields of a Retry packet to build. */
export interface RetryFields {
  readonly version: number;
  /** The client's Source Connection ID (RFC 9000 §17.2.5.1). */
  readonly dcid: Uint8Array;
  /** The server's new connection ID; MUST differ from the client's original DCID. */
  readonly scid: Uint8Array;
  /** The Retry Token; non-empty (clients discard an empty one). */
  readonly token: Uint8Array;
  /** Low 4 bits of the first byte (Unused, arbitrary). Default 0. */
  readonly unusedBits?: number;
  /** False clears the QUIC bit (RFC 9287); default true. */
  readonly fixedBit?: boolean;
}

/**
 * Builds a complete Retry packet with its Retry Integrity Tag (RFC 9001 §5.8), computed over the
 * pseudo-packet that starts with `odcid`, the Destination Connection ID of the client Initial
 * being answered.
 */
export function buildRetryPacket(
  provider: CryptoProvider,
  fields: RetryFields,
  odcid: Uint8Array,
): Uint8Array {
  const params = requireVersionParams(fields.version);
  checkCid(fields.dcid, MAX_CID_LENGTH, "destination connection ID");
  checkCid(fields.scid, MAX_CID_LENGTH, "source connection ID");
  checkCid(odcid, MAX_CID_LENGTH, "original destination connection ID");
  if (fields.token.length === 0)
    throw new QuicUsageError("a Retry token must not be empty (RFC 9000 §17.2.5.2)");
  // RFC 9000 §17.2.5.1: the server's SCID MUST NOT be equal to the client's DCID.
  if (equalBytes(fields.scid, odcid))
    throw new QuicUsageError("Retry SCID must differ from the client's DCID");
  const headerLength = 1 + 4 + 1 + fields.dcid.length + 1 + fields.scid.length;
  const out = new Uint8Array(headerLength + fields.token.length + RETRY_INTEGRITY_TAG_LENGTH);
  out[0] =
    HEADER_FORM_LONG |
    (fields.fixedBit === false ? 0 : FIXED_BIT) |
    (params.typeToWire[LongPacketType.Retry] << 4) |
    ((fields.unusedBits ?? 0) & 0x0f);
  const v = fields.version;
  out[1] = v >>> 24;
  out[2] = v >>> 16;
  out[3] = v >>> 8;
  out[4] = v;
  let p = 5;
  out[p++] = fields.dcid.length;
  out.set(fields.dcid, p);
  p += fields.dcid.length;
  out[p++] = fields.scid.length;
  out.set(fields.scid, p);
  p += fields.scid.length;
  out.set(fields.token, p);
  p += fields.token.length;
  out.set(computeRetryIntegrityTag(provider, v, odcid, out.subarray(0, p)), p);
  return out;
}

/**
 * Client-side validation of a parsed Retry packet against `odcid`, the Destination Connection ID
 * of the Initial it sent: false means the Retry MUST be discarded — its integrity tag does not
 * verify (RFC 9000 §17.2.5.2, RFC 9001 §5.8), or its SCID equals `odcid` (§17.2.5.1). Whether a
 * Retry is acceptable at all (first one, no Initial received yet) is connection state.
 */
export function validateRetryPacket(
  provider: CryptoProvider,
  datagram: Uint8Array,
  header: RetryHeader,
  odcid: Uint8Array,
): boolean {
  if (equalBytes(header.scid, odcid)) return false;
  return verifyRetryIntegrityTag(
    provider,
    header.version,
    odcid,
    datagram.subarray(header.packetStart, header.packetEnd),
  );
}
