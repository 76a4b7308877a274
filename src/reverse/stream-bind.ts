/**
 * The 13-byte StreamBind header that starts every quic-reverse data stream: magic "QRBV",
 * version 1, the logical stream id as a u64 big-endian. Not bincode.
 */
import { QuicUsageError } from "../quic/errors.ts";
import { ReverseDecodeError } from "./errors.ts";

export const STREAM_BIND_SIZE = 13;
export const STREAM_BIND_VERSION = 1;
const MAGIC = [0x51, 0x52, 0x42, 0x56];
const U64_MAX = (1n << 64n) - 1n;

export function encodeStreamBind(logicalStreamId: bigint): Uint8Array {
  if (logicalStreamId < 0n || logicalStreamId > U64_MAX) {
    throw new QuicUsageError(`logical stream id out of range: ${logicalStreamId}`);
  }
  const out = new Uint8Array(STREAM_BIND_SIZE);
  out.set(MAGIC, 0);
  out[4] = STREAM_BIND_VERSION;
  new DataView(out.buffer).setBigUint64(5, logicalStreamId, false);
  return out;
}

/**
 * Parses the header at the start of `bytes` (bytes after the 13 are application data). Checks the
 * magic, then the version, then — when `expected` is given — the id.
 */
export function decodeStreamBind(bytes: Uint8Array, expected?: bigint): bigint {
  if (bytes.length < STREAM_BIND_SIZE) {
    throw new ReverseDecodeError(
      "unexpected_eof",
      `stream bind header needs ${STREAM_BIND_SIZE} bytes, got ${bytes.length}`,
    );
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i]) throw new ReverseDecodeError("invalid_magic", "invalid stream bind frame");
  }
  if (bytes[4] !== STREAM_BIND_VERSION) {
    throw new ReverseDecodeError("unsupported_version", `unsupported stream bind version ${bytes[4]}`);
  }
  const id = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(5, false);
  if (expected !== undefined && id !== expected) {
    throw new ReverseDecodeError("id_mismatch", `stream bind ID mismatch: expected ${expected}, got ${id}`);
  }
  return id;
}
