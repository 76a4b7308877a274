/**
 * TLS alerts (RFC 9846 §6) and the typed error our TLS stack raises. In QUIC there are no alert
 * records: a fatal alert becomes a CONNECTION_CLOSE with CRYPTO_ERROR 0x0100 + alert
 * (RFC 9001 §4.8).
 */
import { QuicError, TransportErrorCode } from "../errors.ts";

export const AlertDescription = {
  close_notify: 0,
  unexpected_message: 10,
  bad_record_mac: 20,
  record_overflow: 22,
  handshake_failure: 40,
  bad_certificate: 42,
  unsupported_certificate: 43,
  certificate_revoked: 44,
  certificate_expired: 45,
  certificate_unknown: 46,
  illegal_parameter: 47,
  unknown_ca: 48,
  access_denied: 49,
  decode_error: 50,
  decrypt_error: 51,
  protocol_version: 70,
  insufficient_security: 71,
  internal_error: 80,
  inappropriate_fallback: 86,
  user_canceled: 90,
  missing_extension: 109,
  unsupported_extension: 110,
  unrecognized_name: 112,
  bad_certificate_status_response: 113,
  unknown_psk_identity: 115,
  certificate_required: 116,
  general_error: 117,
  no_application_protocol: 120,
} as const;

export type AlertDescription = (typeof AlertDescription)[keyof typeof AlertDescription];

const alertNames = new Map<number, string>(Object.entries(AlertDescription).map(([k, v]) => [v, k]));

export function alertName(alert: number): string {
  return alertNames.get(alert) ?? `alert(${alert})`;
}

/**
 * A fatal TLS condition. It is a {@link QuicError} whose code is CRYPTO_ERROR + alert, so the
 * connection closes with the right code without translating (RFC 9001 §4.8).
 */
export class TlsError extends QuicError {
  constructor(
    readonly alert: AlertDescription,
    reason: string,
  ) {
    super(TransportErrorCode.CRYPTO_ERROR + alert, `TLS ${alertName(alert)}: ${reason}`);
  }
}

/** Shorthand for the most common alert on malformed input (RFC 9846 §6.2: decode_error). */
export function decodeError(reason: string): TlsError {
  return new TlsError(AlertDescription.decode_error, reason);
}
