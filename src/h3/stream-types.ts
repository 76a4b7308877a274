/**
 * HTTP/3 unidirectional stream types (RFC 9114 §6.2) and the stream header ("preamble") that
 * opens each unidirectional stream, plus QUIC stream-ID helpers the HTTP/3 layer needs.
 *
 * A unidirectional stream starts with its Stream Type varint (§6.2); a push stream follows it with
 * the Push ID (§4.6, §6.2.2), a WebTransport stream (draft-ietf-webtrans-http3-02 §4.1) with the
 * Session ID. {@link UniStreamHeaderReader} parses that header from chunks of any size, buffering
 * at most 16 bytes.
 *
 * Unknown stream types are never an error here: RFC 9114 §6.2 says the recipient MUST NOT consider
 * them a connection error of any kind; it MUST abort reading (SHOULD use H3_STREAM_CREATION_ERROR
 * or a reserved code) or discard the data. Which types a receiver accepts (e.g. a push stream is
 * only valid from a server, §6.2.2; only one control stream per peer, §6.2.1) is up to the caller.
 */
import { ByteWriter, MAX_VARINT, varintLength } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { isGreaseValue } from "./error-codes.ts";

/** Stream Type values of unidirectional streams. */
export const UniStreamType = {
  /** RFC 9114 §6.2.1. */
  CONTROL: 0x00,
  /** RFC 9114 §6.2.2; followed by a Push ID. */
  PUSH: 0x01,
  /** RFC 9204 §4.2. */
  QPACK_ENCODER: 0x02,
  /** RFC 9204 §4.2. */
  QPACK_DECODER: 0x03,
  /** WebTransport unidirectional stream (draft-ietf-webtrans-http3-02 §4.1); followed by a Session ID. */
  WEBTRANSPORT: 0x54,
} as const;

export type UniStreamType = (typeof UniStreamType)[keyof typeof UniStreamType];

const names = new Map<number, string>(Object.entries(UniStreamType).map(([k, v]) => [v, k]));

/** True for the reserved stream types `0x1f * N + 0x21` (RFC 9114 §6.2.3). */
export function isReservedStreamType(type: number | bigint): boolean {
  return isGreaseValue(type);
}

/** True for a stream type whose header carries a second varint (Push ID or Session ID). */
export function uniStreamTypeHasId(type: number | bigint): boolean {
  return type === UniStreamType.PUSH || type === UniStreamType.WEBTRANSPORT || type === 1n || type === 0x54n;
}

/** Name of a stream type, e.g. `CONTROL`, `GREASE(0x21)`, `0x99`. */
export function uniStreamTypeName(type: number | bigint): string {
  const n = typeof type === "bigint" && type <= 0xffffn ? Number(type) : type;
  const name = typeof n === "number" ? names.get(n) : undefined;
  if (name !== undefined) return name;
  return isReservedStreamType(type) ? `GREASE(0x${type.toString(16)})` : `0x${type.toString(16)}`;
}

/** A parsed unidirectional stream header. */
export interface UniStreamHeader {
  /** Stream Type; exact over the 62-bit range. */
  type: bigint;
  /**
   * Push ID (type 0x01) or Session ID (type 0x54); undefined for other types. Values above
   * 2^53 − 1 saturate to `Number.MAX_SAFE_INTEGER` (see src/quic/bytes.ts).
   */
  id?: number | undefined;
}

/** Encoded size of a unidirectional stream header. */
export function uniStreamHeaderSize(type: number | bigint, id?: number): number {
  if (typeof type === "number" && (!Number.isSafeInteger(type) || type < 0)) {
    throw new QuicUsageError(`stream type out of range: ${type}`);
  }
  const t = typeof type === "bigint" ? type : BigInt(type);
  if (t < 0n || t > MAX_VARINT) throw new QuicUsageError(`stream type out of range: ${type}`);
  let n = t <= BigInt(Number.MAX_SAFE_INTEGER) ? varintLength(Number(t)) : 8;
  if (uniStreamTypeHasId(type)) {
    if (id === undefined || !Number.isSafeInteger(id) || id < 0) {
      throw new QuicUsageError(`stream type ${uniStreamTypeName(type)} needs an id`);
    }
    n += varintLength(id);
  } else if (id !== undefined) {
    throw new QuicUsageError(`stream type ${uniStreamTypeName(type)} has no id`);
  }
  return n;
}

/**
 * Writes a unidirectional stream header: the Stream Type, then for PUSH the Push ID (§6.2.2) and
 * for WEBTRANSPORT the Session ID. Throws QuicUsageError (writer unchanged) on a missing or extra
 * id, or when the writer is too small.
 */
export function encodeUniStreamHeader(w: ByteWriter, type: number | bigint, id?: number): void {
  const size = uniStreamHeaderSize(type, id);
  if (w.remaining < size) throw new QuicUsageError("encodeUniStreamHeader: buffer too small");
  w.writeVarintBig(typeof type === "bigint" ? type : BigInt(type));
  if (id !== undefined) w.writeVarint(id);
}

/** The header as a fresh byte array. */
export function uniStreamHeaderBytes(type: number | bigint, id?: number): Uint8Array {
  const w = new ByteWriter(new Uint8Array(uniStreamHeaderSize(type, id)));
  encodeUniStreamHeader(w, type, id);
  return w.buf;
}

/** Length (1, 2, 4, 8) of the varint whose first byte is `b`. */
function varintLengthOfFirstByte(b: number): number {
  return 1 << (b >> 6);
}

function readVarintAt(buf: Uint8Array, pos: number, len: number): bigint {
  let v = BigInt(buf[pos] & 0x3f);
  for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(buf[pos + i]);
  return v;
}

/**
 * Parses the unidirectional stream header at the start of `buf`. Returns the header and the
 * number of bytes it took, or undefined when `buf` does not hold the whole header yet.
 */
export function parseUniStreamHeader(
  buf: Uint8Array,
): { header: UniStreamHeader; length: number } | undefined {
  if (buf.length < 1) return undefined;
  const tl = varintLengthOfFirstByte(buf[0]);
  if (buf.length < tl) return undefined;
  const type = readVarintAt(buf, 0, tl);
  if (!uniStreamTypeHasId(type)) return { header: { type }, length: tl };
  if (buf.length < tl + 1) return undefined;
  const il = varintLengthOfFirstByte(buf[tl]);
  if (buf.length < tl + il) return undefined;
  const big = readVarintAt(buf, tl, il);
  const id = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
  return { header: { type, id }, length: tl + il };
}

/**
 * Incremental parser of a unidirectional stream header. Feed it the first chunks of the stream;
 * once the header is complete, {@link push} returns it with the rest of the chunk (the first
 * bytes of the stream body, a view into the chunk). Buffers at most 16 bytes.
 */
export class UniStreamHeaderReader {
  private readonly buf = new Uint8Array(16);
  private len = 0;
  private result: UniStreamHeader | undefined;

  /** The header, once complete. */
  get header(): UniStreamHeader | undefined {
    return this.result;
  }

  /**
   * Adds bytes; returns the header and the remaining body bytes of `chunk` once complete
   * (only once; afterwards every byte belongs to the body and must not be pushed here).
   */
  push(chunk: Uint8Array): { header: UniStreamHeader; rest: Uint8Array } | undefined {
    if (this.result !== undefined) throw new QuicUsageError("UniStreamHeaderReader: header already complete");
    const take = Math.min(chunk.length, this.buf.length - this.len);
    this.buf.set(chunk.subarray(0, take), this.len);
    const before = this.len;
    this.len += take;
    const parsed = parseUniStreamHeader(this.buf.subarray(0, this.len));
    if (parsed === undefined) return undefined;
    this.result = parsed.header;
    return { header: parsed.header, rest: chunk.subarray(parsed.length - before) };
  }
}

// ---------------------------------------------------------------------------------------------
// QUIC stream IDs (RFC 9000 §2.1): the two low bits are initiator (0x1: server) and
// directionality (0x2: unidirectional).

/** True for a client-initiated bidirectional stream ID (a request stream, RFC 9114 §6.1). */
export function isClientBidiStreamId(id: number | bigint): boolean {
  if (typeof id === "bigint") return id >= 0n && (id & 3n) === 0n;
  return Number.isSafeInteger(id) && id >= 0 && id % 4 === 0;
}

/** True for a unidirectional stream ID. */
export function isUniStreamId(id: number): boolean {
  return Math.floor(id / 2) % 2 === 1;
}

/** True for a stream ID initiated by the server. */
export function isServerInitiatedStreamId(id: number): boolean {
  return id % 2 === 1;
}
