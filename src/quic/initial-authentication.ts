/**
 * Whether a client Initial that no connection owns is authentic enough to keep state for: its
 * first packet must decrypt with the Initial keys of its own Destination Connection ID (RFC 9001
 * §5.2). Initial keys are public, so this proves no identity — but the AEAD covers the whole
 * header (§5.3), so a packet that opens was not damaged on the way: its DCID, SCID, token and
 * version are what the client sent. A server that created state before this check would route
 * a corrupted DCID to an empty connection until the idle timeout, or answer the client's real
 * Initial at a corrupted SCID for ever (RFC 9000 §7.2: the server's Destination Connection ID is
 * the client's SCID; §7.3: its initial_source_connection_id then mismatches). RFC 9000 §21.3 / §10.3
 * spirit: unauthenticated input must not cost the server state.
 *
 * Sans-IO and pure: decrypts a copy, so the datagram stays intact for the connection.
 */
import type { CryptoProvider } from "./crypto/provider.ts";
import { QuicError } from "./errors.ts";
import type { LongHeader } from "./packet-header.ts";
import {
  createUnprotectedPacket,
  deriveInitialSecrets,
  derivePacketKeys,
  unprotectPacket,
} from "./packet-protection.ts";

/**
 * True when the Initial packet `header` (parsed from `datagram`) decrypts with the client Initial
 * keys of its DCID and version. A packet that decrypts but has reserved bits set counts as
 * authentic: the connection then closes it with PROTOCOL_VIOLATION (RFC 9000 §17.2).
 */
export function clientInitialDecrypts(
  provider: CryptoProvider,
  datagram: Uint8Array,
  header: LongHeader,
): boolean {
  const start = header.packetStart;
  const end = header.packetEnd;
  if (start < 0 || end > datagram.length || header.pnOffset <= start || header.pnOffset >= end) return false;
  const copy = datagram.slice(start, end);
  // Only the client's keys: the server's would be derived (HKDF, AEAD and header protection
  // setup) for nothing, on every Initial that creates no state yet.
  const secret = deriveInitialSecrets(provider, header.version, header.dcid).client;
  const keys = derivePacketKeys(provider, "aes-128-gcm", "sha256", secret, header.version);
  try {
    return (
      unprotectPacket(keys, copy, 0, header.pnOffset - start, copy.length, -1, createUnprotectedPacket()) >= 0
    );
  } catch (err) {
    // Reserved bits set: checkReservedBits throws only once the AEAD opened the packet.
    if (err instanceof QuicError) return true;
    throw err;
  }
}
