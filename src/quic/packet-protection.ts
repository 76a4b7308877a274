/**
 * QUIC packet protection (RFC 9001 §5; RFC 9369 §3.3 for version 2): key derivation, Initial
 * secrets, key update, header protection, AEAD payload protection and the Retry Integrity Tag.
 *
 * In-place buffer layout. A packet is assembled in one caller-owned buffer:
 *
 *     packetStart                pnOffset        payloadOffset          payloadEnd     +16
 *     | header (long or short) … | Packet Number | plaintext payload …  | room for tag |
 *
 * {@link protectPacket} seals the payload where it lies (ciphertext ‖ tag overwrite the plaintext
 * and the 16 bytes after it), then applies header protection to the first byte and the Packet
 * Number field. {@link unprotectPacket} reverses that in place: the header comes back unmasked
 * and the plaintext lands at `payloadOffset`. The only per-packet allocations are the two
 * `subarray` views the {@link Aead} interface takes (AAD and payload) and whatever the provider
 * allocates; the 12-byte nonce, the 16-byte sample copy and the 5-byte mask are scratch buffers
 * preallocated in each {@link PacketKeys}. A `PacketKeys` is therefore not re-entrant, which is
 * fine for single-threaded use.
 *
 * Drop policy. Everything a peer can make fail here fails silently: a packet too short for the
 * header protection sample (§5.4.2) or whose AEAD open fails (§5.5; failure "does not necessarily
 * indicate … a protocol error") yields −1, and the caller discards the packet. The one connection
 * error is non-zero reserved bits *after* successful decryption (RFC 9000 §17.2, §17.3.1), thrown
 * as a `QuicError` with PROTOCOL_VIOLATION. Calling these functions with a buffer that is too
 * small on the sending side is a caller bug ({@link QuicUsageError}).
 *
 * Packet numbers are JS numbers, exact below 2^53 (see packet-number.ts).
 */
import { hkdfExpandLabel } from "./crypto/hkdf-label.ts";
import {
  AEAD_KEY_LENGTH,
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  type Aead,
  type AeadName,
  type CryptoProvider,
  HASH_LENGTH,
  type HashName,
  type HeaderProtection,
} from "./crypto/provider.ts";
import { protocolViolation, QuicUsageError } from "./errors.ts";
import { decodePacketNumber, type PacketNumberLength, readPacketNumber } from "./packet-number.ts";
import { requireVersionParams } from "./version.ts";

/** Bytes of ciphertext sampled for header protection, for every QUIC v1/v2 AEAD (§5.4.2). */
export const HP_SAMPLE_LENGTH = 16;
/** The sample starts 4 bytes after the start of the Packet Number field (§5.4.2). */
export const HP_SAMPLE_OFFSET = 4;
/**
 * Minimum bytes from the start of the Packet Number field to the end of the packet: the sample
 * must fit (§5.4.2), so packet number + payload + tag ≥ 4 + 16.
 */
export const MIN_PROTECTED_LENGTH = HP_SAMPLE_OFFSET + HP_SAMPLE_LENGTH;
/** Length of the Retry Integrity Tag (RFC 9001 §5.8). */
export const RETRY_INTEGRITY_TAG_LENGTH = 16;

/** First-byte bits covered by header protection: 4 for long headers, 5 for short (§5.4.1). */
const LONG_HP_MASK = 0x0f;
const SHORT_HP_MASK = 0x1f;
/** Reserved bits (RFC 9000 §17.2: 0x0c in long headers, §17.3.1: 0x18 in short headers). */
const LONG_RESERVED_BITS = 0x0c;
const SHORT_RESERVED_BITS = 0x18;

const TWO_32 = 0x1_0000_0000;

/** Raw key material of one direction at one encryption level (RFC 9001 §5.1). */
export interface PacketKeyMaterial {
  /** AEAD key ("quic key" / "quicv2 key"). */
  readonly key: Uint8Array;
  /** AEAD IV ("quic iv" / "quicv2 iv"), 12 bytes. */
  readonly iv: Uint8Array;
  /** Header protection key ("quic hp" / "quicv2 hp"). */
  readonly hpKey: Uint8Array;
}

/**
 * Packet protection state of one direction at one encryption level (or one 1-RTT key phase): the
 * AEAD and header protection objects plus preallocated scratch space.
 */
export interface PacketKeys {
  readonly aead: Aead;
  /** AEAD IV, 12 bytes; the per-packet nonce is `iv XOR packet number` (§5.3). */
  readonly iv: Uint8Array;
  readonly hp: HeaderProtection;
  /** Scratch: the per-packet nonce. */
  readonly nonce: Uint8Array;
  /** Scratch: a copy of the header protection sample. */
  readonly sample: Uint8Array;
  /** Scratch: the header protection mask. */
  readonly mask: Uint8Array;
}

/** Result of {@link unprotectPacket} / {@link removeHeaderProtection}, reusable across packets. */
export interface UnprotectedPacket {
  /** The first byte with header protection removed. */
  firstByte: number;
  pnLength: PacketNumberLength;
  /** The recovered full packet number. */
  packetNumber: number;
  /** Where the payload (plaintext after a successful open) starts. */
  payloadOffset: number;
  /** Plaintext payload length (0 until decrypted). */
  payloadLength: number;
}

/** A fresh {@link UnprotectedPacket} to pass to {@link unprotectPacket} (reuse it). */
export function createUnprotectedPacket(): UnprotectedPacket {
  return { firstByte: 0, pnLength: 1, packetNumber: 0, payloadOffset: 0, payloadLength: 0 };
}

// ---------------------------------------------------------------------------------------------
// Key derivation

/**
 * Derives key, IV and header protection key from a traffic secret (RFC 9001 §5.1) with the
 * labels of `version` (RFC 9369 §3.3.2). Key and hp key lengths are the AEAD's key length; the IV
 * is the 12-byte AEAD nonce length.
 */
export function derivePacketKeyMaterial(
  provider: CryptoProvider,
  aead: AeadName,
  hash: HashName,
  secret: Uint8Array,
  version: number,
): PacketKeyMaterial {
  const labels = requireVersionParams(version).labels;
  const empty = new Uint8Array(0);
  const keyLength = AEAD_KEY_LENGTH[aead];
  return {
    key: hkdfExpandLabel(provider, hash, secret, labels.key, empty, keyLength),
    iv: hkdfExpandLabel(provider, hash, secret, labels.iv, empty, AEAD_NONCE_LENGTH),
    hpKey: hkdfExpandLabel(provider, hash, secret, labels.hp, empty, keyLength),
  };
}

function makeKeys(aead: Aead, iv: Uint8Array, hp: HeaderProtection): PacketKeys {
  return {
    aead,
    iv,
    hp,
    nonce: new Uint8Array(AEAD_NONCE_LENGTH),
    sample: new Uint8Array(HP_SAMPLE_LENGTH),
    mask: new Uint8Array(5),
  };
}

/** Packet protection keys from a traffic secret (RFC 9001 §5.1). */
export function derivePacketKeys(
  provider: CryptoProvider,
  aead: AeadName,
  hash: HashName,
  secret: Uint8Array,
  version: number,
): PacketKeys {
  const m = derivePacketKeyMaterial(provider, aead, hash, secret, version);
  return makeKeys(provider.createAead(aead, m.key), m.iv, provider.createHeaderProtection(aead, m.hpKey));
}

/**
 * The next 1-RTT traffic secret for a key update (RFC 9001 §6.1):
 * secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku", "", Hash.length), "quicv2 ku" in v2
 * (RFC 9369 §3.3.2).
 */
export function nextTrafficSecret(
  provider: CryptoProvider,
  hash: HashName,
  secret: Uint8Array,
  version: number,
): Uint8Array {
  const label = requireVersionParams(version).labels.ku;
  return hkdfExpandLabel(provider, hash, secret, label, new Uint8Array(0), HASH_LENGTH[hash]);
}

/**
 * Keys of the next key phase from its secret (see {@link nextTrafficSecret}): new AEAD key and
 * IV, the *same* header protection — "The header protection key is not updated" (RFC 9001 §6.1,
 * §5.4). The returned keys share `current.hp`.
 */
export function updatePacketKeys(
  provider: CryptoProvider,
  current: PacketKeys,
  hash: HashName,
  nextSecret: Uint8Array,
  version: number,
): PacketKeys {
  const name = current.aead.name;
  const labels = requireVersionParams(version).labels;
  const empty = new Uint8Array(0);
  const key = hkdfExpandLabel(provider, hash, nextSecret, labels.key, empty, AEAD_KEY_LENGTH[name]);
  const iv = hkdfExpandLabel(provider, hash, nextSecret, labels.iv, empty, AEAD_NONCE_LENGTH);
  return makeKeys(provider.createAead(name, key), iv, current.hp);
}

/** The Initial secrets of a connection (RFC 9001 §5.2). */
export interface InitialSecrets {
  /** HKDF-Extract(initial_salt, client_dst_connection_id). */
  readonly initialSecret: Uint8Array;
  /** Protects packets the client sends. */
  readonly client: Uint8Array;
  /** Protects packets the server sends. */
  readonly server: Uint8Array;
}

/**
 * Initial secrets from the Destination Connection ID of the client's first Initial packet (or of
 * the Initial sent after a Retry), with the salt of `version` (RFC 9001 §5.2, RFC 9369 §3.3.1).
 * Always SHA-256 and the TLS 1.3 HKDF-Expand-Label (§5.2: MUST, even without TLS 1.3).
 */
export function deriveInitialSecrets(
  provider: CryptoProvider,
  version: number,
  clientDcid: Uint8Array,
): InitialSecrets {
  const salt = requireVersionParams(version).initialSalt;
  const initialSecret = provider.hkdfExtract("sha256", salt, clientDcid);
  const empty = new Uint8Array(0);
  return {
    initialSecret,
    client: hkdfExpandLabel(provider, "sha256", initialSecret, "client in", empty, 32),
    server: hkdfExpandLabel(provider, "sha256", initialSecret, "server in", empty, 32),
  };
}

/** Initial packet protection keys of both directions (AEAD_AES_128_GCM, RFC 9001 §5). */
export interface InitialKeys {
  readonly client: PacketKeys;
  readonly server: PacketKeys;
}

/** Initial packet protection keys of both directions (see {@link deriveInitialSecrets}). */
export function deriveInitialKeys(
  provider: CryptoProvider,
  version: number,
  clientDcid: Uint8Array,
): InitialKeys {
  const s = deriveInitialSecrets(provider, version, clientDcid);
  return {
    client: derivePacketKeys(provider, "aes-128-gcm", "sha256", s.client, version),
    server: derivePacketKeys(provider, "aes-128-gcm", "sha256", s.server, version),
  };
}

// ---------------------------------------------------------------------------------------------
// Header protection (RFC 9001 §5.4)

/** Computes `keys.mask` from the sample at `pnOffset + 4` (§5.4.2). The caller checks bounds. */
function computeMask(keys: PacketKeys, buf: Uint8Array, pnOffset: number): void {
  const sample = keys.sample;
  const s = pnOffset + HP_SAMPLE_OFFSET;
  for (let i = 0; i < HP_SAMPLE_LENGTH; i++) sample[i] = buf[s + i];
  keys.hp.mask(sample, keys.mask);
}

/**
 * Applies header protection (§5.4.1) to a packet whose payload is already sealed: masks the low
 * 4 (long header) or 5 (short header) bits of the first byte and the Packet Number field. The
 * packet number length is read from the still unprotected first byte. The 16-byte sample at
 * `pnOffset + 4` must lie inside the packet (the caller pads, §5.4.2).
 */
export function applyHeaderProtection(
  keys: PacketKeys,
  buf: Uint8Array,
  packetStart: number,
  pnOffset: number,
): void {
  if (pnOffset + MIN_PROTECTED_LENGTH > buf.length) {
    throw new QuicUsageError("packet too short for the header protection sample (RFC 9001 §5.4.2)");
  }
  computeMask(keys, buf, pnOffset);
  const mask = keys.mask;
  const first = buf[packetStart];
  const pnLength = (first & 0x03) + 1;
  buf[packetStart] = first ^ (mask[0] & ((first & 0x80) !== 0 ? LONG_HP_MASK : SHORT_HP_MASK));
  for (let i = 0; i < pnLength; i++) buf[pnOffset + i] ^= mask[1 + i];
}

/**
 * Removes header protection in place (§5.4.1): unmasks the first byte, then the Packet Number
 * field whose length that byte reveals. Returns the packet number length, or −1 when the packet
 * ending at `packetEnd` is too short to contain the sample — such packets MUST be discarded
 * (§5.4.2).
 */
export function removeHeaderProtection(
  keys: PacketKeys,
  buf: Uint8Array,
  packetStart: number,
  pnOffset: number,
  packetEnd: number,
): PacketNumberLength | -1 {
  // RFC 9001 §5.4.2: an endpoint MUST discard packets that are not long enough to contain a
  // complete sample.
  if (
    pnOffset + MIN_PROTECTED_LENGTH > packetEnd ||
    packetEnd > buf.length ||
    packetStart < 0 ||
    packetStart >= pnOffset
  ) {
    return -1;
  }
  computeMask(keys, buf, pnOffset);
  const mask = keys.mask;
  const protectedFirst = buf[packetStart];
  const first = protectedFirst ^ (mask[0] & ((protectedFirst & 0x80) !== 0 ? LONG_HP_MASK : SHORT_HP_MASK));
  buf[packetStart] = first;
  const pnLength = ((first & 0x03) + 1) as PacketNumberLength;
  for (let i = 0; i < pnLength; i++) buf[pnOffset + i] ^= mask[1 + i];
  return pnLength;
}

// ---------------------------------------------------------------------------------------------
// Payload protection (RFC 9001 §5.3)

/** keys.nonce = iv XOR (packet number left-padded to 12 bytes) (§5.3). */
function computeNonce(keys: PacketKeys, packetNumber: number): Uint8Array {
  const n = keys.nonce;
  const iv = keys.iv;
  for (let i = 0; i < AEAD_NONCE_LENGTH; i++) n[i] = iv[i];
  const lo = packetNumber >>> 0;
  const hi = Math.floor(packetNumber / TWO_32);
  n[11] ^= lo;
  n[10] ^= lo >>> 8;
  n[9] ^= lo >>> 16;
  n[8] ^= lo >>> 24;
  n[7] ^= hi;
  n[6] ^= hi >>> 8;
  n[5] ^= hi >>> 16;
  n[4] ^= hi >>> 24;
  return n;
}

/**
 * Protects a packet in place: seals `buf[payloadOffset, payloadEnd)` (payloadOffset = pnOffset +
 * packet number length, read from the first byte) with the header `buf[packetStart,
 * payloadOffset)` as associated data, writing the tag at `payloadEnd`, then applies header
 * protection. The header (first byte, Length for long headers, truncated packet number) must
 * already be written unprotected, with reserved bits 0. Returns the end of the packet
 * (`payloadEnd + 16`).
 *
 * The caller must have padded the payload so that packet number + payload ≥ 4 bytes (the sample
 * must fit, RFC 9001 §5.4.2) and left 16 bytes after `payloadEnd`.
 */
export function protectPacket(
  keys: PacketKeys,
  buf: Uint8Array,
  packetStart: number,
  pnOffset: number,
  payloadEnd: number,
  packetNumber: number,
): number {
  const pnLength = (buf[packetStart] & 0x03) + 1;
  const payloadOffset = pnOffset + pnLength;
  const packetEnd = payloadEnd + AEAD_TAG_LENGTH;
  if (packetStart < 0 || pnOffset <= packetStart || payloadEnd < payloadOffset || packetEnd > buf.length) {
    throw new QuicUsageError("protectPacket: bad offsets or no room for the AEAD tag");
  }
  if (pnOffset + MIN_PROTECTED_LENGTH > packetEnd) {
    throw new QuicUsageError(
      "protectPacket: payload too short for the header protection sample (RFC 9001 §5.4.2)",
    );
  }
  const nonce = computeNonce(keys, packetNumber);
  keys.aead.seal(
    nonce,
    buf.subarray(packetStart, payloadOffset),
    buf.subarray(payloadOffset, payloadEnd),
    buf,
    payloadOffset,
  );
  applyHeaderProtection(keys, buf, packetStart, pnOffset);
  return packetEnd;
}

/**
 * Decrypts `buf[payloadOffset, packetEnd)` (ciphertext ‖ tag) in place, with the unprotected
 * header `buf[packetStart, payloadOffset)` as associated data. Returns the plaintext length, or
 * −1 when authentication fails (a silent drop, RFC 9001 §5.5). Reserved bits are not checked
 * here: call {@link checkReservedBits} after success. Both providers authenticate before writing,
 * so after a failure the ciphertext is still intact and another key set may be tried (the
 * `Aead` interface does not promise this for other providers).
 */
export function decryptPayload(
  keys: PacketKeys,
  buf: Uint8Array,
  packetStart: number,
  payloadOffset: number,
  packetEnd: number,
  packetNumber: number,
): number {
  if (payloadOffset <= packetStart || packetEnd - payloadOffset < AEAD_TAG_LENGTH || packetEnd > buf.length) {
    return -1;
  }
  const nonce = computeNonce(keys, packetNumber);
  return keys.aead.open(
    nonce,
    buf.subarray(packetStart, payloadOffset),
    buf.subarray(payloadOffset, packetEnd),
    buf,
    payloadOffset,
  );
}

/**
 * Unprotects a packet in place (RFC 9001 §5): removes header protection, recovers the packet
 * number from `largestPn` (the largest packet number successfully processed in this packet
 * number space, −1 if none; RFC 9000 §17.1), and opens the payload. Fills `out` and returns the
 * plaintext length, or −1 to drop the packet silently (too short for the sample, or AEAD failure).
 *
 * Throws a `QuicError` with PROTOCOL_VIOLATION when the packet authenticates but its reserved bits
 * are not zero: RFC 9000 §17.2 / §17.3.1 make that a connection error, and it is checked only
 * after decryption as those sections and RFC 9001 §9.5 require.
 *
 * For 1-RTT packets the key phase bit selects the keys, so use {@link removeHeaderProtection},
 * read the first byte, then {@link decryptPayload} with the chosen keys (the hp key is the same
 * for every key phase).
 */
export function unprotectPacket(
  keys: PacketKeys,
  buf: Uint8Array,
  packetStart: number,
  pnOffset: number,
  packetEnd: number,
  largestPn: number,
  out: UnprotectedPacket,
): number {
  const pnLength = removeHeaderProtection(keys, buf, packetStart, pnOffset, packetEnd);
  if (pnLength === -1) return -1;
  const first = buf[packetStart];
  const packetNumber = decodePacketNumber(largestPn, readPacketNumber(buf, pnOffset, pnLength), pnLength);
  const payloadOffset = pnOffset + pnLength;
  out.firstByte = first;
  out.pnLength = pnLength;
  out.packetNumber = packetNumber;
  out.payloadOffset = payloadOffset;
  out.payloadLength = 0;
  const n = decryptPayload(keys, buf, packetStart, payloadOffset, packetEnd, packetNumber);
  if (n < 0) return -1;
  out.payloadLength = n;
  checkReservedBits(first);
  return n;
}

/**
 * Throws PROTOCOL_VIOLATION if the reserved bits of an unprotected first byte are set. Call only
 * after the packet has been successfully decrypted (RFC 9000 §17.2: long header 0x0c, §17.3.1:
 * short header 0x18 — MUST treat as a connection error of type PROTOCOL_VIOLATION; RFC 9001 §9.5).
 */
export function checkReservedBits(firstByte: number): void {
  const reserved = firstByte & ((firstByte & 0x80) !== 0 ? LONG_RESERVED_BITS : SHORT_RESERVED_BITS);
  if (reserved !== 0) throw protocolViolation("reserved header bits set");
}

// ---------------------------------------------------------------------------------------------
// Retry Integrity Tag (RFC 9001 §5.8, RFC 9369 §3.3.3)

const retryAeads = new WeakMap<CryptoProvider, Map<number, Aead>>();

function retryAead(provider: CryptoProvider, version: number): Aead {
  let perVersion = retryAeads.get(provider);
  if (perVersion === undefined) {
    perVersion = new Map();
    retryAeads.set(provider, perVersion);
  }
  let aead = perVersion.get(version);
  if (aead === undefined) {
    aead = provider.createAead("aes-128-gcm", requireVersionParams(version).retryKey);
    perVersion.set(version, aead);
  }
  return aead;
}

/** The Retry Pseudo-Packet: ODCID Length ‖ ODCID ‖ Retry packet without its tag (§5.8). */
function retryPseudoPacket(odcid: Uint8Array, retryWithoutTag: Uint8Array): Uint8Array {
  if (odcid.length > 255)
    throw new QuicUsageError("original destination connection ID longer than 255 bytes");
  const p = new Uint8Array(1 + odcid.length + retryWithoutTag.length);
  p[0] = odcid.length;
  p.set(odcid, 1);
  p.set(retryWithoutTag, 1 + odcid.length);
  return p;
}

/**
 * The Retry Integrity Tag (RFC 9001 §5.8): AEAD_AES_128_GCM with the version's fixed key and
 * nonce, empty plaintext, and the Retry Pseudo-Packet as associated data. `retryWithoutTag` is
 * the Retry packet from its first byte up to (excluding) the tag; `odcid` is the Destination
 * Connection ID of the client Initial the Retry answers.
 */
export function computeRetryIntegrityTag(
  provider: CryptoProvider,
  version: number,
  odcid: Uint8Array,
  retryWithoutTag: Uint8Array,
): Uint8Array {
  const nonce = requireVersionParams(version).retryNonce;
  const tag = new Uint8Array(RETRY_INTEGRITY_TAG_LENGTH);
  retryAead(provider, version).seal(
    nonce,
    retryPseudoPacket(odcid, retryWithoutTag),
    new Uint8Array(0),
    tag,
    0,
  );
  return tag;
}

/**
 * Verifies the Retry Integrity Tag that ends `retryPacket` (the whole Retry packet, tag
 * included) against `odcid`. False means the client MUST discard the Retry (RFC 9000 §17.2.5.2).
 */
export function verifyRetryIntegrityTag(
  provider: CryptoProvider,
  version: number,
  odcid: Uint8Array,
  retryPacket: Uint8Array,
): boolean {
  const tagStart = retryPacket.length - RETRY_INTEGRITY_TAG_LENGTH;
  if (tagStart < 0 || odcid.length > 255) return false;
  const nonce = requireVersionParams(version).retryNonce;
  const aad = retryPseudoPacket(odcid, retryPacket.subarray(0, tagStart));
  // Opening an empty ciphertext checks the tag in constant time (the provider's comparison).
  return (
    retryAead(provider, version).open(nonce, aad, retryPacket.subarray(tagStart), new Uint8Array(0), 0) === 0
  );
}
