/** QUIC version names on the command line: v1, v2 or a hex number (0x6b3343cf). */
import { greaseVersion, isReservedVersion, isSupportedVersion, QUIC_V1, QUIC_V2 } from "../quic/version.ts";

/** The version a name stands for; a TypeError for an unknown or unsupported one. */
export function parseVersion(name: string): number {
  const n = name.trim().toLowerCase();
  const v =
    n === "v1" || n === "1" ? QUIC_V1 : n === "v2" ? QUIC_V2 : /^0x[0-9a-f]{1,8}$/.test(n) ? Number(n) : NaN;
  if (!isSupportedVersion(v))
    throw new TypeError(`unknown or unsupported QUIC version "${name}" (use v1, v2 or 0x6b3343cf)`);
  return v;
}

/**
 * The version of the first Initial (`get --version`): a supported one, or a reserved version
 * 0x?a?a?a?a (RFC 9000 §15) — given in hex, or `reserved` for a random one — to probe which
 * versions a server speaks: it answers with Version Negotiation and the client gives up.
 */
export function parseInitialVersion(name: string, random: () => Uint8Array): number {
  const n = name.trim().toLowerCase();
  if (n === "reserved") return greaseVersion(random());
  if (/^0x[0-9a-f]{1,8}$/.test(n) && isReservedVersion(Number(n))) return Number(n);
  try {
    return parseVersion(name);
  } catch {
    throw new TypeError(
      `unknown or unsupported QUIC version "${name}" (use v1, v2, 0x6b3343cf, or a reserved version 0x?a?a?a?a or "reserved" to probe)`,
    );
  }
}

/** A comma-separated list of versions, in order. */
export function parseVersionList(list: string): number[] {
  const out = list
    .split(",")
    .filter((s) => s.trim() !== "")
    .map(parseVersion);
  if (out.length === 0) throw new TypeError("empty QUIC version list");
  return out;
}

/** "v1", "v2" or the hex value (8 digits). */
export function versionName(v: number): string {
  return v === QUIC_V1 ? "v1" : v === QUIC_V2 ? "v2" : `0x${(v >>> 0).toString(16).padStart(8, "0")}`;
}
