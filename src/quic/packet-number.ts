/**
 * Packet number truncation and recovery (RFC 9000 §17.1, Appendix A.2 and A.3).
 *
 * Packet numbers are integers in 0..2^62−1 (RFC 9000 §12.3) but are handled here as JS numbers,
 * exact up to 2^53−1. A connection sending a million packets a second would need 285 years to get
 * there, so no live connection reaches the limit; the arithmetic below is exact for every
 * `largestPn`/`fullPn` ≤ 2^53 − 2^32 (the widest window is 2^32). The 2^62 bound of the RFC's
 * decoding algorithm is kept for fidelity. "No packet number yet" is written as −1 throughout.
 *
 * On the wire the packet number is 1 to 4 bytes, big-endian, holding the least significant bits.
 */

/** Largest packet number the protocol allows: 2^62 − 1 (RFC 9000 §12.3), as a bigint. */
export const MAX_PACKET_NUMBER = (1n << 62n) - 1n;

/** Encoded size of a packet number field in bytes. */
export type PacketNumberLength = 1 | 2 | 3 | 4;

const TWO_62 = 2 ** 62;

/**
 * The number of bytes to encode `fullPn` with, given the largest packet number the peer has
 * acknowledged in this packet number space (−1 if none yet).
 *
 * RFC 9000 §17.1: the sender MUST use a packet number size able to represent more than twice as
 * large a range as the difference between the largest acknowledged packet number and the packet
 * number being sent; before any acknowledgment, the full packet number MUST be included (the
 * "difference" then counts from −1, i.e. `fullPn + 1` packets, as in Appendix A.2). So the length
 * is the smallest n with 2^(8n) > 2 × (fullPn − largestAcked).
 *
 * Beyond 2^31 unacknowledged packets no encoding suffices; 4 is returned (congestion control
 * makes that state unreachable).
 */
export function packetNumberLength(fullPn: number, largestAcked: number): PacketNumberLength {
  const twiceUnacked = 2 * (fullPn - largestAcked);
  if (twiceUnacked < 0x100) return 1;
  if (twiceUnacked < 0x1_0000) return 2;
  if (twiceUnacked < 0x100_0000) return 3;
  return 4;
}

/** The `pnLength` least significant bytes of `fullPn`, as the value of the Packet Number field. */
export function truncatePacketNumber(fullPn: number, pnLength: PacketNumberLength): number {
  return fullPn % 2 ** (8 * pnLength);
}

/**
 * Recovers a full packet number from its truncated encoding (RFC 9000 §17.1, Appendix A.3): the
 * value closest to `largestPn + 1` whose low `8 × pnLength` bits equal `truncatedPn`.
 *
 * @param largestPn the largest packet number successfully processed in this space, −1 if none.
 * @param truncatedPn the Packet Number field, in [0, 2^(8 × pnLength)).
 */
export function decodePacketNumber(
  largestPn: number,
  truncatedPn: number,
  pnLength: PacketNumberLength,
): number {
  const expected = largestPn + 1;
  const win = 2 ** (8 * pnLength);
  const hwin = win / 2;
  // (expected & ~mask) | truncated, without 32-bit bitwise operators.
  const candidate = expected - (expected % win) + truncatedPn;
  if (candidate <= expected - hwin && candidate < TWO_62 - win) return candidate + win;
  if (candidate > expected + hwin && candidate >= win) return candidate - win;
  return candidate;
}

/** Writes `truncatedPn` big-endian into `buf[offset, offset + pnLength)`. */
export function writePacketNumber(
  buf: Uint8Array,
  offset: number,
  truncatedPn: number,
  pnLength: PacketNumberLength,
): void {
  for (let i = pnLength - 1; i >= 0; i--) {
    buf[offset + i] = truncatedPn & 0xff;
    truncatedPn = Math.floor(truncatedPn / 256);
  }
}

/** Reads a big-endian `pnLength`-byte Packet Number field at `buf[offset]`. The caller checks bounds. */
export function readPacketNumber(buf: Uint8Array, offset: number, pnLength: PacketNumberLength): number {
  let v = 0;
  for (let i = 0; i < pnLength; i++) v = v * 256 + buf[offset + i];
  return v;
}
