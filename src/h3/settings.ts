/**
 * HTTP/3 SETTINGS (RFC 9114 §7.2.4): identifiers, validation of a received SETTINGS payload, and
 * a typed view with defaults.
 *
 * Two levels:
 * - {@link SettingEntry}: one (identifier, value) pair exactly as on the wire, both bigint
 *   (identifiers and values use the whole 62-bit range, e.g. GREASE). The SETTINGS frame
 *   (`frames.ts`) carries a list of these; its decoder calls {@link validateSettingEntries}.
 * - {@link H3Settings}: the settings this project understands, with their defaults applied
 *   (numbers saturate above 2^53 − 1, see src/quic/bytes.ts), plus every other entry in `unknown`.
 *
 * Validation (peer input → {@link H3Error} H3_SETTINGS_ERROR):
 * - a repeated identifier (§7.2.4: "MUST NOT occur more than once"; the receiver MAY treat it as
 *   H3_SETTINGS_ERROR, which we do);
 * - the HTTP/2 identifiers 0x02–0x05 (§7.2.4.1, §A.3: receipt MUST be treated as
 *   H3_SETTINGS_ERROR);
 * - a boolean setting with a value other than 0 or 1: ENABLE_CONNECT_PROTOCOL (RFC 9220 §3 via
 *   RFC 8441 §3), H3_DATAGRAM (RFC 9297 §2.1.1 "MUST be either 0 or 1"), and the draft
 *   WebTransport / datagram flags, which Chromium/quiche also reject with H3_SETTINGS_ERROR.
 * Unknown identifiers, including reserved ones, are ignored (§7.2.4 "MUST ignore") and kept.
 */
import { MAX_VARINT } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { H3Error, H3ErrorCode, isGreaseValue, randomGreaseValue } from "./error-codes.ts";

/** Setting identifiers. */
export const SettingId = {
  /** RFC 9204 §5. Default 0. */
  QPACK_MAX_TABLE_CAPACITY: 0x01,
  /** RFC 9114 §7.2.4.1. Default unlimited. */
  MAX_FIELD_SECTION_SIZE: 0x06,
  /** RFC 9204 §5. Default 0. */
  QPACK_BLOCKED_STREAMS: 0x07,
  /** RFC 9220 §3 (extended CONNECT). Boolean, default 0. */
  ENABLE_CONNECT_PROTOCOL: 0x08,
  /** RFC 9297 §2.1.1. Boolean, default 0. */
  H3_DATAGRAM: 0x33,
  /** draft-ietf-webtrans-http3 (current): SETTINGS_WT_INITIAL_MAX_DATA. */
  WT_INITIAL_MAX_DATA: 0x2b61,
  /** draft-ietf-webtrans-http3 (current): SETTINGS_WT_INITIAL_MAX_STREAMS_UNI. */
  WT_INITIAL_MAX_STREAMS_UNI: 0x2b64,
  /** draft-ietf-webtrans-http3 (current): SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI. */
  WT_INITIAL_MAX_STREAMS_BIDI: 0x2b65,
  /** draft-ietf-masque-h3-datagram-04 SETTINGS_H3_DATAGRAM (Chromium still sends it). Boolean. */
  H3_DATAGRAM_DRAFT04: 0xffd277,
  /** draft-ietf-webtrans-http3-13/-14 SETTINGS_WT_MAX_SESSIONS. */
  WT_MAX_SESSIONS: 0x14e9cd29,
  /** draft-ietf-webtrans-http3-00/-02 SETTINGS_ENABLE_WEBTRANSPORT (Chromium's default). Boolean. */
  ENABLE_WEBTRANSPORT_DRAFT02: 0x2b603742,
  /** draft-ietf-webtrans-http3 (-15 and later) SETTINGS_WT_ENABLED. Boolean. */
  WT_ENABLED: 0x2c7cf000,
  /** draft-ietf-webtrans-http3-07 … -12 SETTINGS_WEBTRANSPORT_MAX_SESSIONS. */
  WEBTRANSPORT_MAX_SESSIONS_DRAFT07: 0xc671706a,
} as const;

export type SettingId = (typeof SettingId)[keyof typeof SettingId];

/** HTTP/2 setting identifiers without an HTTP/3 equivalent: receipt is H3_SETTINGS_ERROR (§7.2.4.1). */
export const HTTP2_RESERVED_SETTING_IDS: readonly number[] = [0x02, 0x03, 0x04, 0x05];

/** Settings whose value MUST be 0 or 1. */
const BOOLEAN_SETTING_IDS: ReadonlySet<bigint> = new Set([
  BigInt(SettingId.ENABLE_CONNECT_PROTOCOL),
  BigInt(SettingId.H3_DATAGRAM),
  BigInt(SettingId.H3_DATAGRAM_DRAFT04),
  BigInt(SettingId.ENABLE_WEBTRANSPORT_DRAFT02),
  BigInt(SettingId.WT_ENABLED),
]);

const names = new Map<bigint, string>(Object.entries(SettingId).map(([k, v]) => [BigInt(v), k]));

/** One setting as on the wire (RFC 9114 §7.2.4: Identifier (i), Value (i)). */
export interface SettingEntry {
  id: bigint;
  value: bigint;
}

/** True for the reserved identifiers `0x1f * N + 0x21` (§7.2.4.1). */
export function isReservedSettingId(id: number | bigint): boolean {
  return isGreaseValue(id);
}

/** True for the HTTP/2-only identifiers 0x02–0x05 (§7.2.4.1). */
export function isHttp2ReservedSettingId(id: number | bigint): boolean {
  return id >= 2 && id <= 5;
}

/** Name of a setting identifier, e.g. `H3_DATAGRAM`, `GREASE(0x21)`, `0x1234`. */
export function settingName(id: number | bigint): string {
  const big = typeof id === "bigint" ? id : BigInt(id);
  return names.get(big) ?? (isGreaseValue(big) ? `GREASE(0x${big.toString(16)})` : `0x${big.toString(16)}`);
}

/**
 * The first problem with `entries` (see the module comment), or undefined. Shared by the
 * decoder (peer → H3_SETTINGS_ERROR) and the encoder (local → QuicUsageError).
 */
function entriesProblem(entries: readonly SettingEntry[]): string | undefined {
  const seen = new Set<bigint>();
  for (const { id, value } of entries) {
    if (id < 0n || id > MAX_VARINT || value < 0n || value > MAX_VARINT) {
      return `setting ${settingName(id)} out of varint range`;
    }
    // RFC 9114 §7.2.4: "The same setting identifier MUST NOT occur more than once".
    if (seen.has(id)) return `duplicate setting ${settingName(id)}`;
    seen.add(id);
    // RFC 9114 §7.2.4.1: HTTP/2 settings "MUST NOT be sent, and their receipt MUST be treated as a
    // connection error of type H3_SETTINGS_ERROR".
    if (isHttp2ReservedSettingId(id)) return `HTTP/2 setting ${settingName(id)} in HTTP/3 SETTINGS`;
    // RFC 9297 §2.1.1 (H3_DATAGRAM "MUST be either 0 or 1"), RFC 8441 §3 / RFC 9220 §3
    // (ENABLE_CONNECT_PROTOCOL), draft WebTransport flags.
    if (value > 1n && BOOLEAN_SETTING_IDS.has(id)) {
      return `setting ${settingName(id)} must be 0 or 1, got ${value}`;
    }
  }
  return undefined;
}

/**
 * Validates the settings of a received SETTINGS frame; throws {@link H3Error}
 * H3_SETTINGS_ERROR on a duplicate identifier, an HTTP/2-only identifier or a bad boolean value.
 */
export function validateSettingEntries(entries: readonly SettingEntry[]): void {
  const problem = entriesProblem(entries);
  if (problem !== undefined) throw new H3Error(H3ErrorCode.H3_SETTINGS_ERROR, problem, 0x04);
}

/** The settings this implementation understands, with defaults applied. */
export interface H3Settings {
  /** QPACK_MAX_TABLE_CAPACITY (RFC 9204 §5), default 0. */
  qpackMaxTableCapacity: number;
  /** MAX_FIELD_SECTION_SIZE (§7.2.4.1), default unlimited (`Infinity`). */
  maxFieldSectionSize: number;
  /** QPACK_BLOCKED_STREAMS (RFC 9204 §5), default 0. */
  qpackBlockedStreams: number;
  /** ENABLE_CONNECT_PROTOCOL (RFC 9220), default false. */
  enableConnectProtocol: boolean;
  /** H3_DATAGRAM (RFC 9297), default false. */
  h3Datagram: boolean;
  /** H3_DATAGRAM draft-04 (0xffd277), default false. */
  h3DatagramDraft04: boolean;
  /** ENABLE_WEBTRANSPORT draft-02 (0x2b603742), default false. */
  enableWebTransportDraft02: boolean;
  /** WEBTRANSPORT_MAX_SESSIONS draft-07 (0xc671706a), default 0. */
  webTransportMaxSessionsDraft07: number;
  /** WT_MAX_SESSIONS draft-13/-14 (0x14e9cd29), default 0. */
  wtMaxSessions: number;
  /** WT_ENABLED (0x2c7cf000), default false. */
  wtEnabled: boolean;
  /** WT_INITIAL_MAX_DATA (0x2b61), default 0. */
  wtInitialMaxData: number;
  /** WT_INITIAL_MAX_STREAMS_UNI (0x2b64), default 0. */
  wtInitialMaxStreamsUni: number;
  /** WT_INITIAL_MAX_STREAMS_BIDI (0x2b65), default 0. */
  wtInitialMaxStreamsBidi: number;
  /** Every other setting, in wire order: unknown and reserved (GREASE) identifiers. */
  unknown: SettingEntry[];
}

type NumberKey = {
  [K in keyof H3Settings]: H3Settings[K] extends number ? K : never;
}[keyof H3Settings];
type BooleanKey = {
  [K in keyof H3Settings]: H3Settings[K] extends boolean ? K : never;
}[keyof H3Settings];

/** Known settings in encoding order: [identifier, field, boolean?]. */
const KNOWN: readonly (readonly [number, NumberKey, false] | readonly [number, BooleanKey, true])[] = [
  [SettingId.QPACK_MAX_TABLE_CAPACITY, "qpackMaxTableCapacity", false],
  [SettingId.MAX_FIELD_SECTION_SIZE, "maxFieldSectionSize", false],
  [SettingId.QPACK_BLOCKED_STREAMS, "qpackBlockedStreams", false],
  [SettingId.ENABLE_CONNECT_PROTOCOL, "enableConnectProtocol", true],
  [SettingId.H3_DATAGRAM, "h3Datagram", true],
  [SettingId.H3_DATAGRAM_DRAFT04, "h3DatagramDraft04", true],
  [SettingId.ENABLE_WEBTRANSPORT_DRAFT02, "enableWebTransportDraft02", true],
  [SettingId.WEBTRANSPORT_MAX_SESSIONS_DRAFT07, "webTransportMaxSessionsDraft07", false],
  [SettingId.WT_MAX_SESSIONS, "wtMaxSessions", false],
  [SettingId.WT_ENABLED, "wtEnabled", true],
  [SettingId.WT_INITIAL_MAX_DATA, "wtInitialMaxData", false],
  [SettingId.WT_INITIAL_MAX_STREAMS_UNI, "wtInitialMaxStreamsUni", false],
  [SettingId.WT_INITIAL_MAX_STREAMS_BIDI, "wtInitialMaxStreamsBidi", false],
];

const KNOWN_BY_ID = new Map(KNOWN.map((k) => [BigInt(k[0]), k]));

/** The initial value of every setting (RFC 9114 §7.2.4.2: "All settings begin at an initial value"). */
export const DEFAULT_SETTINGS: Readonly<H3Settings> = Object.freeze({
  qpackMaxTableCapacity: 0,
  maxFieldSectionSize: Number.POSITIVE_INFINITY,
  qpackBlockedStreams: 0,
  enableConnectProtocol: false,
  h3Datagram: false,
  h3DatagramDraft04: false,
  enableWebTransportDraft02: false,
  webTransportMaxSessionsDraft07: 0,
  wtMaxSessions: 0,
  wtEnabled: false,
  wtInitialMaxData: 0,
  wtInitialMaxStreamsUni: 0,
  wtInitialMaxStreamsBidi: 0,
  unknown: Object.freeze([]) as unknown as SettingEntry[],
});

const toSafeNumber = (v: bigint): number =>
  v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);

/**
 * The typed view of a received SETTINGS frame's entries: validates them
 * ({@link validateSettingEntries}) and applies the defaults for absent settings.
 */
export function settingsFromEntries(entries: readonly SettingEntry[]): H3Settings {
  validateSettingEntries(entries);
  const s: H3Settings = { ...DEFAULT_SETTINGS, unknown: [] };
  for (const e of entries) {
    const known = KNOWN_BY_ID.get(e.id);
    if (known === undefined) {
      s.unknown.push({ id: e.id, value: e.value });
    } else if (known[2]) {
      s[known[1]] = e.value === 1n;
    } else {
      s[known[1]] = toSafeNumber(e.value);
    }
  }
  return s;
}

/** Options of {@link settingsToEntries}. */
export interface EncodeSettingsOptions {
  /**
   * Add one reserved setting (§7.2.4.1: endpoints SHOULD include at least one) with a random
   * identifier and value; `randomBytes(n)` returns n random bytes (e.g. `crypto.randomBytes`).
   */
  grease?: ((n: number) => Uint8Array) | undefined;
}

/**
 * The entries to send for `settings`: every known field present in `settings` (an explicit
 * default included, except an infinite MAX_FIELD_SECTION_SIZE, which is omitted), in a fixed
 * order, then `settings.unknown`, then a GREASE setting when asked. Throws QuicUsageError for
 * values that are not valid (non-integer, out of range, duplicate or HTTP/2 identifiers).
 */
export function settingsToEntries(
  settings: Partial<H3Settings>,
  opts: EncodeSettingsOptions = {},
): SettingEntry[] {
  const out: SettingEntry[] = [];
  for (const [id, key, isBool] of KNOWN) {
    const v = settings[key];
    if (v === undefined) continue;
    if (isBool) {
      if (typeof v !== "boolean") throw new QuicUsageError(`setting ${key} must be a boolean`);
      out.push({ id: BigInt(id), value: v ? 1n : 0n });
    } else {
      if (typeof v !== "number") throw new QuicUsageError(`setting ${key} must be a number`);
      if (key === "maxFieldSectionSize" && v === Number.POSITIVE_INFINITY) continue;
      if (!Number.isSafeInteger(v) || v < 0) throw new QuicUsageError(`setting ${key} out of range: ${v}`);
      out.push({ id: BigInt(id), value: BigInt(v) });
    }
  }
  for (const e of settings.unknown ?? []) out.push({ id: e.id, value: e.value });
  if (opts.grease !== undefined) {
    let id = randomGreaseValue(opts.grease);
    while (out.some((e) => e.id === id)) id = randomGreaseValue(opts.grease);
    const r = opts.grease(4);
    const value = BigInt(((r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3]) >>> 2);
    out.push({ id, value });
  }
  const problem = entriesProblem(out);
  if (problem !== undefined) throw new QuicUsageError(problem);
  return out;
}
