/**
 * QUIC versions and the per-version constants of the packet layer.
 *
 * QUIC v1 (RFC 9000/9001) and QUIC v2 (RFC 9369) differ only in a few constants: the Version
 * field, the Initial salt, the Retry integrity key and nonce, the HKDF labels and the mapping of
 * the two Long Packet Type bits. Everything version-specific that the packet layer needs is in a
 * {@link VersionParams} record looked up with {@link versionParams}.
 *
 * Long packet types are handled as *logical* types ({@link LongPacketType}, numbered as QUIC v1
 * numbers them on the wire); {@link longTypeToWireBits} / {@link longTypeFromWireBits} convert
 * to and from the two wire bits of a given version.
 */
import { QuicUsageError } from "./errors.ts";

/** QUIC version 1 (RFC 9000 §15). */
export const QUIC_V1 = 0x00000001;
/** QUIC version 2 (RFC 9369 §3.1): first four bytes of sha256("QUICv2 version number"). */
export const QUIC_V2 = 0x6b3343cf;
/** The Version field value of a Version Negotiation packet (RFC 9000 §17.2.1, RFC 8999 §6). */
export const VERSION_NEGOTIATION = 0x00000000;

/** Versions this stack speaks, in order of preference (first = preferred when we choose). */
export const SUPPORTED_VERSIONS: readonly number[] = Object.freeze([QUIC_V1, QUIC_V2]);

/**
 * Logical long-header packet types, version independent. The numeric values are the QUIC v1 wire
 * values (RFC 9000 Table 5); other versions permute them (RFC 9369 §3.2).
 */
export const LongPacketType = {
  Initial: 0,
  ZeroRtt: 1,
  Handshake: 2,
  Retry: 3,
} as const;
export type LongPacketType = (typeof LongPacketType)[keyof typeof LongPacketType];

/** HKDF-Expand-Label labels for packet protection (RFC 9001 §5.1, §6.1; RFC 9369 §3.3.2). */
export interface VersionLabels {
  readonly key: string;
  readonly iv: string;
  readonly hp: string;
  readonly ku: string;
}

/** Everything version-specific the packet layer needs. */
export interface VersionParams {
  readonly version: number;
  /** Salt for HKDF-Extract of the Initial secret (RFC 9001 §5.2, RFC 9369 §3.3.1). */
  readonly initialSalt: Uint8Array;
  /** AEAD_AES_128_GCM key of the Retry Integrity Tag (RFC 9001 §5.8, RFC 9369 §3.3.3). */
  readonly retryKey: Uint8Array;
  /** AEAD nonce of the Retry Integrity Tag. */
  readonly retryNonce: Uint8Array;
  /** The secret `retryKey`/`retryNonce` are derived from (kept for verification in tests). */
  readonly retrySecret: Uint8Array;
  readonly labels: VersionLabels;
  /** Wire bits (0..3) of each logical {@link LongPacketType}, indexed by the logical type. */
  readonly typeToWire: readonly [number, number, number, number];
  /** Logical {@link LongPacketType} of each wire value (0..3), indexed by the wire bits. */
  readonly wireToType: readonly [LongPacketType, LongPacketType, LongPacketType, LongPacketType];
}

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const V1: VersionParams = Object.freeze({
  version: QUIC_V1,
  // RFC 9001 §5.2
  initialSalt: hex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
  // RFC 9001 §5.8
  retryKey: hex("be0c690b9f66575a1d766b54e368c84e"),
  retryNonce: hex("461599d35d632bf2239825bb"),
  retrySecret: hex("d9c9943e6101fd200021506bcc02814c73030f25c79d71ce876eca876e6fca8e"),
  labels: Object.freeze({ key: "quic key", iv: "quic iv", hp: "quic hp", ku: "quic ku" }),
  // RFC 9000 §17.2, Table 5: Initial 0x00, 0-RTT 0x01, Handshake 0x02, Retry 0x03.
  typeToWire: [0, 1, 2, 3] as const,
  wireToType: [
    LongPacketType.Initial,
    LongPacketType.ZeroRtt,
    LongPacketType.Handshake,
    LongPacketType.Retry,
  ] as const,
});

const V2: VersionParams = Object.freeze({
  version: QUIC_V2,
  // RFC 9369 §3.3.1
  initialSalt: hex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
  // RFC 9369 §3.3.3
  retryKey: hex("8fb4b01b56ac48e260fbcbcead7ccc92"),
  retryNonce: hex("d86969bc2d7c6d9990efb04a"),
  retrySecret: hex("c4dd2484d681aefa4ff4d69c2c20299984a765a5d3c31982f38fc74162155e9f"),
  // RFC 9369 §3.3.2
  labels: Object.freeze({ key: "quicv2 key", iv: "quicv2 iv", hp: "quicv2 hp", ku: "quicv2 ku" }),
  // RFC 9369 §3.2: Initial 0b01, 0-RTT 0b10, Handshake 0b11, Retry 0b00.
  typeToWire: [1, 2, 3, 0] as const,
  wireToType: [
    LongPacketType.Retry,
    LongPacketType.Initial,
    LongPacketType.ZeroRtt,
    LongPacketType.Handshake,
  ] as const,
});

/** Constants of a supported version, or `undefined` for any other version. */
export function versionParams(version: number): VersionParams | undefined {
  if (version === QUIC_V1) return V1;
  if (version === QUIC_V2) return V2;
  return undefined;
}

/**
 * Constants to build and protect packets sent in `version`: a supported version's own, and for a
 * reserved version 0x?a?a?a?a (RFC 9000 §15) those of v1 with that Version field (see
 * {@link reservedVersionParams}). A {@link QuicUsageError} for any other version (a caller bug).
 * Received packets are only read in supported versions ({@link versionParams}).
 */
export function requireVersionParams(version: number): VersionParams {
  const p =
    versionParams(version) ?? (isReservedVersion(version) ? reservedVersionParams(version) : undefined);
  if (p === undefined) throw new QuicUsageError(`unsupported QUIC version 0x${(version >>> 0).toString(16)}`);
  return p;
}

const reservedParams = new Map<number, VersionParams>();

/**
 * A client probing a server's versions (the interop runner's `versionnegotiation`, `purequic get
 * --version 0x1a2a3a4a`) sends its first Initial in a reserved version. A reserved version has no
 * constants of its own, yet the Initial must still be sealed with something: we use v1's (Initial
 * salt, HKDF labels, long-header type bits). Why v1: a server reads nothing past the invariant
 * header (RFC 8999 §5.1) before answering an unknown version with Version Negotiation (RFC 9000
 * §6.1), so any protection would do; v1's keeps the probe a real first flight (a v1 ClientHello,
 * padded to 1200 bytes, from the same code path as any v1 attempt) that whoever tries v1's keys on
 * it can open (ngtcp2's client also frames unknown versions as v1; quic-go 0.29 uses the draft-29
 * salt). Only Initials are ever sent like this: no server replies in a reserved version, so no
 * other keys come from these.
 */
function reservedVersionParams(version: number): VersionParams {
  let p = reservedParams.get(version);
  if (p === undefined) {
    p = Object.freeze({ ...V1, version: version >>> 0 });
    // Bounded: one record per reserved version a process probes with (2^16 at most).
    reservedParams.set(version, p);
  }
  return p;
}

/** True for the versions this stack implements (v1 and v2). */
export function isSupportedVersion(version: number): boolean {
  return version === QUIC_V1 || version === QUIC_V2;
}

/**
 * True for the versions reserved to exercise version negotiation: the pattern 0x?a?a?a?a, i.e.
 * the low four bits of every byte are 1010 (RFC 9000 §15). They never denote a real protocol.
 */
export function isReservedVersion(version: number): boolean {
  return (version & 0x0f0f0f0f) >>> 0 === 0x0a0a0a0a;
}

/**
 * A reserved (greasing) version 0x?a?a?a?a built from random bits (RFC 9000 §6.3, §15): the high
 * nibble of each byte comes from `random`, either a 32-bit number or (the first four of) random
 * bytes, e.g. `provider.randomBytes(4)`.
 */
export function greaseVersion(random: number | Uint8Array): number {
  let r: number;
  if (typeof random === "number") {
    r = random >>> 0;
  } else {
    if (random.length < 4) throw new QuicUsageError("greaseVersion needs 4 random bytes");
    r = ((random[0] << 24) | (random[1] << 16) | (random[2] << 8) | random[3]) >>> 0;
  }
  return ((r & 0xf0f0f0f0) | 0x0a0a0a0a) >>> 0;
}

/** Constants of a supported version; a {@link QuicUsageError} for any other, reserved ones included. */
function supportedVersionParams(version: number): VersionParams {
  const p = versionParams(version);
  if (p === undefined) throw new QuicUsageError(`unsupported QUIC version 0x${(version >>> 0).toString(16)}`);
  return p;
}

/** The two Long Packet Type wire bits (0..3) for a logical type in a supported version. */
export function longTypeToWireBits(version: number, type: LongPacketType): number {
  return supportedVersionParams(version).typeToWire[type];
}

/** The logical type of the two Long Packet Type wire bits (0..3) in a supported version. */
export function longTypeFromWireBits(version: number, bits: number): LongPacketType {
  return supportedVersionParams(version).wireToType[bits & 3];
}
