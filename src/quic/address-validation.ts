/**
 * The server's address validation before any connection state exists (RFC 9000 §8.1): for a
 * client Initial that no connection owns, decide — from its token, the Retry policy and the
 * load — whether to accept it (and with what {@link ServerHandshakeInfo}), answer with a
 * stateless Retry (§8.1.2, §17.2.5), refuse it with a stateless INVALID_TOKEN close (§8.1.2), or
 * drop it. Sans-IO: the endpoint calls it with the parsed header and sends what it returns; the
 * in-memory tests do the same.
 */
import { type AddressTokenOptions, AddressTokens } from "./address-token.ts";
import { ByteWriter } from "./bytes.ts";
import type { ServerHandshakeInfo } from "./connection/connection.ts";
import type { CryptoProvider } from "./crypto/provider.ts";
import { defaultCryptoProvider } from "./crypto/providers.ts";
import { TransportErrorCode } from "./errors.ts";
import { encodeFrame } from "./frames.ts";
import { buildRetryPacket, type LongHeader, PacketType, writeLongHeader } from "./packet-header.ts";
import { deriveInitialKeys, protectPacket } from "./packet-protection.ts";

/**
 * When a server answers a client Initial without a valid token with a Retry: always, never
 * (default), or while more than `whenLoadAbove` connections are in their handshake.
 */
export type RetryPolicy = "always" | "never" | { readonly whenLoadAbove: number };

export type InitialDecision =
  /** Create the connection with `info`, then feed it the datagram. */
  | { readonly action: "accept"; readonly info: ServerHandshakeInfo }
  /** Send `packet` (a Retry) back and keep no state. */
  | { readonly action: "retry"; readonly packet: Uint8Array }
  /** Send `packet` (an Initial with CONNECTION_CLOSE INVALID_TOKEN) back and keep no state. */
  | { readonly action: "close"; readonly packet: Uint8Array };

export interface AddressValidationOptions extends AddressTokenOptions {
  readonly retry?: RetryPolicy;
  /** Length of the Retry's Source Connection ID (the endpoint's connection ID length); default 8. */
  readonly connectionIdLength?: number;
}

/** Counters of what {@link ServerAddressValidation} decided. */
export interface AddressValidationStats {
  /** Retry packets sent. */
  retriesSent: number;
  /** Initials accepted with a valid Retry token. */
  retryTokensAccepted: number;
  /** Initials accepted with a valid NEW_TOKEN token. */
  newTokensAccepted: number;
  /** Initials refused with INVALID_TOKEN (an invalid Retry token). */
  invalidRetryTokens: number;
  /** Initials whose NEW_TOKEN (or unknown) token did not validate, handled as without a token. */
  invalidNewTokens: number;
}

export class ServerAddressValidation {
  readonly tokens: AddressTokens;
  readonly policy: RetryPolicy;
  private readonly provider: CryptoProvider;
  private readonly cidLength: number;
  readonly stats: AddressValidationStats = {
    retriesSent: 0,
    retryTokensAccepted: 0,
    newTokensAccepted: 0,
    invalidRetryTokens: 0,
    invalidNewTokens: 0,
  };

  constructor(options: AddressValidationOptions = {}) {
    this.provider = options.provider ?? defaultCryptoProvider;
    this.tokens = new AddressTokens(options);
    this.policy = options.retry ?? "never";
    // RFC 9000 §7.2: the client's next Initial carries the Retry SCID as its DCID, which must be
    // at least 8 bytes for the endpoint to accept it.
    this.cidLength = Math.max(8, Math.min(20, options.connectionIdLength ?? 8));
  }

  /** Whether a client Initial without a valid token gets a Retry at this load. */
  wantsRetry(handshakesInProgress: number): boolean {
    const p = this.policy;
    if (p === "always") return true;
    if (p === "never") return false;
    return handshakesInProgress > p.whenLoadAbove;
  }

  /**
   * Decides about a client Initial (`header`, parsed from the first packet of its datagram) that
   * no connection owns, from `remote`.
   */
  onInitial(
    header: LongHeader,
    remote: { readonly address: string; readonly port: number },
    now: number,
    handshakesInProgress: number,
  ): InitialDecision {
    const base = { version: header.version, dcid: header.dcid.slice(), scid: header.scid.slice() };
    const check = this.tokens.validate(header.token, remote, header.dcid, now);
    switch (check.kind) {
      case "retry":
        this.stats.retryTokensAccepted++;
        // RFC 9000 §7.3: the server's transport parameters carry the first Initial's DCID (from
        // the token) as original_destination_connection_id and the Retry's SCID — the DCID of
        // this Initial — as retry_source_connection_id. RFC 9001 §5.2: this Initial's keys
        // derive from its own DCID (`base.dcid`).
        return {
          action: "accept",
          info: {
            ...base,
            originalDcid: check.originalDcid,
            retrySourceCid: base.dcid,
            addressValidated: true,
          },
        };
      case "new-token":
        this.stats.newTokensAccepted++;
        return { action: "accept", info: { ...base, addressValidated: true } };
      case "invalid":
        if (check.claimed === "retry") {
          // RFC 9000 §8.1.2: the client will not accept another Retry; the server SHOULD close
          // immediately with INVALID_TOKEN (no state, so no closing period).
          this.stats.invalidRetryTokens++;
          return {
            action: "close",
            packet: buildInitialClose(
              this.provider,
              header.version,
              header.dcid,
              header.scid,
              this.provider.randomBytes(this.cidLength),
              TransportErrorCode.INVALID_TOKEN,
              "invalid retry token",
            ),
          };
        }
        // RFC 9000 §8.1.3: an invalid NEW_TOKEN token → proceed as if the client had no
        // validated address, including potentially sending a Retry.
        this.stats.invalidNewTokens++;
        break;
      case "none":
        break;
    }
    if (!this.wantsRetry(handshakesInProgress)) {
      return { action: "accept", info: { ...base, addressValidated: false } };
    }
    // RFC 9000 §17.2.5.1: the Retry's SCID MUST differ from the client's DCID.
    let retryScid = this.provider.randomBytes(this.cidLength);
    while (equal(retryScid, header.dcid)) retryScid = this.provider.randomBytes(this.cidLength);
    const token = this.tokens.issueRetryToken(remote, header.dcid, retryScid, now);
    this.stats.retriesSent++;
    return {
      action: "retry",
      packet: buildRetryPacket(
        this.provider,
        // §17.2.5.1: the Retry's DCID is the client's SCID.
        { version: header.version, dcid: header.scid, scid: retryScid, token },
        header.dcid,
      ),
    };
  }

  /** A token for a NEW_TOKEN frame to a client at IP `address` (RFC 9000 §8.1.3). */
  newToken(address: string, now: number): Uint8Array {
    return this.tokens.issueNewToken(address, now);
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A stateless server Initial carrying only CONNECTION_CLOSE (type 0x1c) with `code`, answering a
 * client Initial whose DCID was `clientDcid` (its keys, RFC 9001 §5.2) and SCID `clientScid`
 * (this packet's DCID). RFC 9000 §10.2.3: during the handshake the close goes in an Initial.
 */
export function buildInitialClose(
  provider: CryptoProvider,
  version: number,
  clientDcid: Uint8Array,
  clientScid: Uint8Array,
  scid: Uint8Array,
  code: number,
  reason: string,
): Uint8Array {
  const keys = deriveInitialKeys(provider, version, clientDcid).server;
  const reasonBytes = new TextEncoder().encode(reason.slice(0, 100));
  const buf = new Uint8Array(1 + 4 + 1 + 20 + 1 + 20 + 1 + 2 + 4 + 16 + reasonBytes.length + 16 + 16);
  const w = new ByteWriter(buf);
  const pnOffset = writeLongHeader(w, {
    type: PacketType.Initial,
    version,
    dcid: clientScid,
    scid,
    // RFC 9000 §17.2.2: a server's Initial carries no token.
    token: undefined,
    packetNumber: 0,
    pnLength: 4,
    length: 4 + 16, // patched below
    lengthSize: 2,
  });
  encodeFrame(
    {
      kind: "connection_close",
      application: false,
      errorCode: BigInt(code),
      frameType: 0,
      reason: reasonBytes,
    },
    w,
  );
  // RFC 9001 §5.4.2: the header protection sample needs 4 bytes after the packet number start.
  if (w.pos < pnOffset + 4) w.writeZeros(pnOffset + 4 - w.pos);
  const length = w.pos - pnOffset + 16;
  buf[pnOffset - 2] = 0x40 | (length >> 8);
  buf[pnOffset - 1] = length & 0xff;
  const end = protectPacket(keys, buf, 0, pnOffset, w.pos, 0);
  return buf.subarray(0, end);
}
