/**
 * Address validation tokens (RFC 9000 §8.1.1–§8.1.4): what a server puts in a Retry packet or a
 * NEW_TOKEN frame, and checks when a client echoes it in the Token field of an Initial.
 *
 * Tokens are opaque to everyone but the server that issued them (§8.1.4: only the server needs
 * the key), so the format is ours:
 *
 *   type (1) ‖ nonce (12) ‖ AEAD_AES_256_GCM(key, nonce, aad, plaintext) (… + 16)
 *
 *   Retry token:     plaintext = expiry (8, ms) ‖ ODCID length (1) ‖ ODCID
 *                    aad       = type ‖ port (2) ‖ Retry SCID length (1) ‖ Retry SCID ‖ client IP
 *   NEW_TOKEN token: plaintext = expiry (8, ms)
 *                    aad       = type ‖ client IP
 *
 * The type byte is in clear: §8.1.3 requires that a server can tell how a token was provided
 * and allows that this be visible to others. Binding the address (and for a Retry token the
 * Retry's Source Connection ID, which the client's next Initial carries as its Destination
 * Connection ID) through the AAD means a token presented from elsewhere simply fails to
 * authenticate. The random nonce makes every token unique (§8.1.3: "every NEW_TOKEN frame it
 * sends is unique across all clients") and unguessable (§8.1.4: 96 random bits plus a 128-bit
 * tag under a key only the server has). Nothing in a NEW_TOKEN token links it to the connection
 * it was issued on except through the encryption (§8.1.3).
 *
 * Validation never throws for peer input: anything malformed, forged, expired or presented from
 * another address is "invalid".
 */

import type { Aead, CryptoProvider } from "./crypto/provider.ts";
import { defaultCryptoProvider } from "./crypto/providers.ts";

/** The clear-text first byte of a token: how it was provided to the client (RFC 9000 §8.1.3). */
export const AddressTokenType = {
  Retry: 0x01,
  NewToken: 0x02,
} as const;
export type AddressTokenType = (typeof AddressTokenType)[keyof typeof AddressTokenType];

/** What a token in a client Initial says about the client's address. */
export type AddressTokenCheck =
  /** No token at all. */
  | { readonly kind: "none" }
  /** A Retry token we issued to this address and port for this Retry SCID, still fresh. */
  | { readonly kind: "retry"; readonly originalDcid: Uint8Array }
  /** A NEW_TOKEN token we issued to this IP address, still fresh and not used before. */
  | { readonly kind: "new-token" }
  /**
   * Not a token we accept. `claimed` is what its type byte says it is: an invalid Retry token
   * gets an INVALID_TOKEN close (§8.1.2); anything else is treated as no token (§8.1.3).
   */
  | { readonly kind: "invalid"; readonly claimed: "retry" | "new-token" | "unknown" };

export interface AddressTokenOptions {
  /** 32-byte AEAD key; default random (tokens then only survive as long as this object). */
  readonly key?: Uint8Array;
  readonly provider?: CryptoProvider;
  /** How long a Retry token is accepted (ms); default 10 s (§8.1.4: "only for a short time"). */
  readonly retryLifetime?: number;
  /** How long a NEW_TOKEN token is accepted (ms); default 24 h. */
  readonly newTokenLifetime?: number;
  /**
   * NEW_TOKEN tokens remembered as used, so that each is accepted once (§8.1.4: "SHOULD NOT be
   * accepted multiple times"); the oldest are forgotten beyond this many. Default 65536.
   */
  readonly replayCacheSize?: number;
}

export const ADDRESS_TOKEN_KEY_LENGTH = 32;
const NONCE = 12;
const TAG = 16;
const EXPIRY = 8;
const HEADER = 1 + NONCE;
const MAX_CID = 20;
/** The longest token we issue: a Retry token with a 20-byte ODCID. */
export const MAX_ADDRESS_TOKEN_LENGTH = HEADER + EXPIRY + 1 + MAX_CID + TAG;
const NEW_TOKEN_LENGTH = HEADER + EXPIRY + TAG;

const INVALID_RETRY: AddressTokenCheck = Object.freeze({ kind: "invalid", claimed: "retry" });
const INVALID_NEW_TOKEN: AddressTokenCheck = Object.freeze({ kind: "invalid", claimed: "new-token" });
const INVALID_UNKNOWN: AddressTokenCheck = Object.freeze({ kind: "invalid", claimed: "unknown" });
const NONE: AddressTokenCheck = Object.freeze({ kind: "none" });
const NEW_TOKEN_OK: AddressTokenCheck = Object.freeze({ kind: "new-token" });

const encoder = new TextEncoder();

/**
 * The bytes an IP address is bound by. IPv4-mapped IPv6 addresses (what a dual-stack socket
 * reports for IPv4 peers) count as the IPv4 address, so a token survives either socket family.
 */
function addressBytes(address: string): Uint8Array {
  let a = address.toLowerCase();
  if (a.startsWith("::ffff:") && a.includes(".")) a = a.slice(7);
  return encoder.encode(a);
}

function writeExpiry(out: Uint8Array, pos: number, expiry: number): void {
  const hi = Math.floor(expiry / 0x1_0000_0000);
  const lo = expiry >>> 0;
  out[pos] = hi >>> 24;
  out[pos + 1] = hi >>> 16;
  out[pos + 2] = hi >>> 8;
  out[pos + 3] = hi;
  out[pos + 4] = lo >>> 24;
  out[pos + 5] = lo >>> 16;
  out[pos + 6] = lo >>> 8;
  out[pos + 7] = lo;
}

function readExpiry(b: Uint8Array, pos: number): number {
  const hi = ((b[pos] << 24) | (b[pos + 1] << 16) | (b[pos + 2] << 8) | b[pos + 3]) >>> 0;
  const lo = ((b[pos + 4] << 24) | (b[pos + 5] << 16) | (b[pos + 6] << 8) | b[pos + 7]) >>> 0;
  return hi * 0x1_0000_0000 + lo;
}

/** Issues and validates the address validation tokens of one server endpoint. */
export class AddressTokens {
  private readonly aead: Aead;
  private readonly provider: CryptoProvider;
  readonly retryLifetime: number;
  readonly newTokenLifetime: number;
  private readonly replayCacheSize: number;
  /** Nonces (hex) of NEW_TOKEN tokens already accepted, to their expiry; insertion ordered. */
  private readonly used = new Map<string, number>();

  constructor(options: AddressTokenOptions = {}) {
    this.provider = options.provider ?? defaultCryptoProvider;
    const key = options.key ?? this.provider.randomBytes(ADDRESS_TOKEN_KEY_LENGTH);
    this.aead = this.provider.createAead("aes-256-gcm", key);
    this.retryLifetime = options.retryLifetime ?? 10_000;
    this.newTokenLifetime = options.newTokenLifetime ?? 24 * 3600_000;
    this.replayCacheSize = options.replayCacheSize ?? 65536;
  }

  /**
   * A token for a Retry answering an Initial from `remote` whose Destination Connection ID was
   * `originalDcid`, the Retry's Source Connection ID being `retryScid` (RFC 9000 §8.1.2).
   */
  issueRetryToken(
    remote: { readonly address: string; readonly port: number },
    originalDcid: Uint8Array,
    retryScid: Uint8Array,
    now: number,
  ): Uint8Array {
    const plain = new Uint8Array(EXPIRY + 1 + originalDcid.length);
    writeExpiry(plain, 0, now + this.retryLifetime);
    plain[EXPIRY] = originalDcid.length;
    plain.set(originalDcid, EXPIRY + 1);
    return this.seal(AddressTokenType.Retry, plain, this.retryAad(remote, retryScid));
  }

  /** A token for a NEW_TOKEN frame to a client at IP `address` (RFC 9000 §8.1.3). */
  issueNewToken(address: string, now: number): Uint8Array {
    const plain = new Uint8Array(EXPIRY);
    writeExpiry(plain, 0, now + this.newTokenLifetime);
    return this.seal(AddressTokenType.NewToken, plain, this.newTokenAad(address));
  }

  /**
   * Checks the Token field of a client Initial from `remote` whose Destination Connection ID is
   * `dcid`. A NEW_TOKEN token that validates is remembered and refused the next time.
   */
  validate(
    token: Uint8Array,
    remote: { readonly address: string; readonly port: number },
    dcid: Uint8Array,
    now: number,
  ): AddressTokenCheck {
    if (token.length === 0) return NONE;
    const type = token[0];
    if (type === AddressTokenType.Retry) {
      if (token.length < HEADER + EXPIRY + 1 + TAG || token.length > MAX_ADDRESS_TOKEN_LENGTH)
        return INVALID_RETRY;
      if (dcid.length > MAX_CID) return INVALID_RETRY;
      const plain = this.open(token, this.retryAad(remote, dcid));
      if (!plain) return INVALID_RETRY;
      const expiry = readExpiry(plain, 0);
      // Issued in the future (by more than a lifetime) cannot be ours: a clock jump, or a key reuse.
      if (now > expiry || expiry - now > this.retryLifetime) return INVALID_RETRY;
      const len = plain[EXPIRY];
      if (len > MAX_CID || plain.length !== EXPIRY + 1 + len) return INVALID_RETRY;
      return { kind: "retry", originalDcid: plain.slice(EXPIRY + 1) };
    }
    if (type === AddressTokenType.NewToken) {
      if (token.length !== NEW_TOKEN_LENGTH) return INVALID_NEW_TOKEN;
      const plain = this.open(token, this.newTokenAad(remote.address));
      if (!plain || plain.length !== EXPIRY) return INVALID_NEW_TOKEN;
      const expiry = readExpiry(plain, 0);
      if (now > expiry || expiry - now > this.newTokenLifetime) return INVALID_NEW_TOKEN;
      // RFC 9000 §8.1.4: servers MUST prevent or limit replay; NEW_TOKEN tokens SHOULD NOT be
      // accepted multiple times. Each token's nonce is unique, so it names the token.
      const id = Buffer.from(token.buffer, token.byteOffset + 1, NONCE).toString("hex");
      if (this.used.has(id)) return INVALID_NEW_TOKEN;
      this.remember(id, expiry, now);
      return NEW_TOKEN_OK;
    }
    return INVALID_UNKNOWN;
  }

  private remember(id: string, expiry: number, now: number): void {
    // Expired entries need no memory: the expiry check refuses them anyway.
    for (const [k, e] of this.used) {
      if (this.used.size < this.replayCacheSize && e >= now) break;
      this.used.delete(k);
    }
    this.used.set(id, expiry);
  }

  private retryAad(remote: { readonly address: string; readonly port: number }, retryScid: Uint8Array) {
    const ip = addressBytes(remote.address);
    const aad = new Uint8Array(1 + 2 + 1 + retryScid.length + ip.length);
    aad[0] = AddressTokenType.Retry;
    aad[1] = remote.port >>> 8;
    aad[2] = remote.port;
    aad[3] = retryScid.length;
    aad.set(retryScid, 4);
    aad.set(ip, 4 + retryScid.length);
    return aad;
  }

  private newTokenAad(address: string): Uint8Array {
    const ip = addressBytes(address);
    const aad = new Uint8Array(1 + ip.length);
    aad[0] = AddressTokenType.NewToken;
    aad.set(ip, 1);
    return aad;
  }

  private seal(type: AddressTokenType, plain: Uint8Array, aad: Uint8Array): Uint8Array {
    const out = new Uint8Array(HEADER + plain.length + TAG);
    out[0] = type;
    const nonce = this.provider.randomBytes(NONCE);
    out.set(nonce, 1);
    this.aead.seal(nonce, aad, plain, out, HEADER);
    return out;
  }

  private open(token: Uint8Array, aad: Uint8Array): Uint8Array | undefined {
    const nonce = token.subarray(1, HEADER);
    const sealed = token.subarray(HEADER);
    const out = new Uint8Array(sealed.length - TAG);
    try {
      return this.aead.open(nonce, aad, sealed, out, 0) === out.length ? out : undefined;
    } catch {
      return undefined;
    }
  }
}
