/**
 * HKDF-Expand-Label (RFC 8446 §7.1), the KDF of the TLS 1.3 key schedule and of QUIC packet
 * protection (RFC 9001 §5.1). Shared by the TLS layer and the packet layer; HKDF itself comes from
 * the {@link CryptoProvider}.
 */
import { QuicUsageError } from "../errors.ts";
import type { CryptoProvider, HashName } from "./provider.ts";

/** "tls13 " — every HkdfLabel.label starts with it (RFC 8446 §7.1). */
const TLS13_PREFIX = [0x74, 0x6c, 0x73, 0x31, 0x33, 0x20];

/**
 * The serialized HkdfLabel structure (RFC 8446 §7.1):
 *
 *     struct {
 *         uint16 length = Length;
 *         opaque label<7..255> = "tls13 " + Label;
 *         opaque context<0..255> = Context;
 *     } HkdfLabel;
 *
 * `label` is ASCII without the "tls13 " prefix (RFC 9001 §5.1: no quotes, no trailing NUL).
 */
export function encodeHkdfLabel(label: string, context: Uint8Array, length: number): Uint8Array {
  const fullLabelLength = TLS13_PREFIX.length + label.length;
  if (fullLabelLength > 255) throw new QuicUsageError(`HKDF label too long: ${label}`);
  if (context.length > 255) throw new QuicUsageError("HKDF-Expand-Label context longer than 255 bytes");
  if (!Number.isInteger(length) || length < 0 || length > 0xffff) {
    throw new QuicUsageError(`HKDF-Expand-Label length ${length} out of range`);
  }
  const out = new Uint8Array(2 + 1 + fullLabelLength + 1 + context.length);
  out[0] = length >>> 8;
  out[1] = length;
  out[2] = fullLabelLength;
  let p = 3;
  for (const b of TLS13_PREFIX) out[p++] = b;
  for (let i = 0; i < label.length; i++) {
    const c = label.charCodeAt(i);
    if (c > 0x7f) throw new QuicUsageError(`HKDF label must be ASCII: ${label}`);
    out[p++] = c;
  }
  out[p++] = context.length;
  out.set(context, p);
  return out;
}

/**
 * HKDF-Expand-Label(Secret, Label, Context, Length) = HKDF-Expand(Secret, HkdfLabel, Length)
 * (RFC 8446 §7.1). QUIC uses it with an empty context (RFC 9001 §5.1).
 */
export function hkdfExpandLabel(
  provider: CryptoProvider,
  hash: HashName,
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  return provider.hkdfExpand(hash, secret, encodeHkdfLabel(label, context, length), length);
}
