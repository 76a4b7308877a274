/**
 * The server's preferred address (RFC 9000 §9.6, §18.2 Figure 22) between its textual form
 * ("192.0.2.1", "2001:db8::1" and a port) and the transport parameter's fixed-size fields.
 */
import { QuicUsageError } from "../errors.ts";
import type { PreferredAddress } from "../transport-parameters.ts";
import type { PathAddress } from "./path.ts";

export interface PreferredAddressConfig {
  readonly ipv4?: { readonly address: string; readonly port: number };
  readonly ipv6?: { readonly address: string; readonly port: number };
}

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return undefined;
    const v = Number(parts[i]);
    if (v > 255) return undefined;
    out[i] = v;
  }
  return out;
}

function parseIpv6(s: string): Uint8Array | undefined {
  let text = s;
  const out = new Uint8Array(16);
  // An embedded IPv4 tail (::ffff:192.0.2.1) fills the last 4 bytes.
  let tail: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    tail = parseIpv4(text.slice(lastColon + 1));
    if (!tail) return undefined;
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const rest = halves.length === 2 ? (halves[1] === "" ? [] : halves[1].split(":")) : [];
  const groups = head.length + rest.length;
  if ((halves.length === 1 && groups !== 8) || groups > 8) return undefined;
  const all = [...head, ...Array<string>(8 - groups).fill("0"), ...rest];
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i])) return undefined;
    const v = Number.parseInt(all[i], 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/** The preferred_address fields for `config` (without the connection ID and reset token). */
export function encodePreferredAddress(
  config: PreferredAddressConfig,
): Omit<PreferredAddress, "connectionId" | "statelessResetToken"> {
  const v4 = config.ipv4 ? parseIpv4(config.ipv4.address) : new Uint8Array(4);
  const v6 = config.ipv6 ? parseIpv6(config.ipv6.address) : new Uint8Array(16);
  if (!v4) throw new QuicUsageError(`preferred address: "${config.ipv4?.address}" is not an IPv4 address`);
  if (!v6) throw new QuicUsageError(`preferred address: "${config.ipv6?.address}" is not an IPv6 address`);
  const ipv4Port = config.ipv4?.port ?? 0;
  const ipv6Port = config.ipv6?.port ?? 0;
  for (const port of [ipv4Port, ipv6Port])
    if (!Number.isInteger(port) || port < 0 || port > 0xffff)
      throw new QuicUsageError(`preferred address: bad port ${port}`);
  if (!config.ipv4 && !config.ipv6) throw new QuicUsageError("preferred address: no address given");
  return { ipv4Address: v4, ipv4Port, ipv6Address: v6, ipv6Port };
}

/**
 * The address of the family of `current` that the server prefers, or undefined when it offers
 * none of that family (RFC 9000 §9.6.3: SHOULD use the same address family). An all-zero
 * address or port 0 means "none".
 */
export function preferredPathAddress(pa: PreferredAddress, current: PathAddress): PathAddress | undefined {
  const v6 = current.address.includes(":") && !current.address.startsWith("::ffff:");
  if (!v6) {
    if (pa.ipv4Port === 0 || pa.ipv4Address.every((b) => b === 0)) return undefined;
    return { address: pa.ipv4Address.join("."), port: pa.ipv4Port };
  }
  if (pa.ipv6Port === 0 || pa.ipv6Address.every((b) => b === 0)) return undefined;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push(((pa.ipv6Address[i] << 8) | pa.ipv6Address[i + 1]).toString(16));
  return { address: groups.join(":"), port: pa.ipv6Port };
}
