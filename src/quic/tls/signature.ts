/**
 * TLS 1.3 signature schemes (RFC 9846 §4.2.3) and the CertificateVerify signature
 * (RFC 9846 §4.4.3): which scheme a key can sign with, building the signed content, signing and
 * verifying. Everything is synchronous and uses node:crypto KeyObjects.
 */
import { constants as cryptoConstants, type KeyObject, sign, verify } from "node:crypto";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";

import { SignatureScheme } from "./extensions.ts";

export { SignatureScheme };

const schemeNames = new Map<number, string>(Object.entries(SignatureScheme).map(([k, v]) => [v, k]));

/** Human-readable name of a scheme, e.g. `ecdsa_secp256r1_sha256` or `0x1234`. */
export function signatureSchemeName(scheme: number): string {
  return schemeNames.get(scheme) ?? `0x${scheme.toString(16).padStart(4, "0")}`;
}

type KeyKind = "ec" | "rsa" | "rsa-pss" | "ed25519";

interface SchemeSpec {
  /** Digest name for node:crypto, or null for PureEdDSA. */
  readonly hash: "sha256" | "sha384" | "sha512" | null;
  /** Digest length in bytes (PSS salt length = digest length, RFC 9846 §4.2.3). */
  readonly hashLength: number;
  readonly keyKind: KeyKind;
  /** For ECDSA: the curve bound to the scheme in TLS 1.3 (node:crypto's name). */
  readonly curve?: "prime256v1" | "secp384r1" | "secp521r1";
  readonly pss: boolean;
}

/**
 * The schemes we can produce and check in a TLS 1.3 CertificateVerify. RSASSA-PKCS1-v1_5 and
 * SHA-1 schemes are absent on purpose: RFC 9846 §4.2.3/§4.4.3 forbid them in CertificateVerify.
 */
const cvSchemes = new Map<number, SchemeSpec>([
  [
    SignatureScheme.ecdsa_secp256r1_sha256,
    { hash: "sha256", hashLength: 32, keyKind: "ec", curve: "prime256v1", pss: false },
  ],
  [
    SignatureScheme.ecdsa_secp384r1_sha384,
    { hash: "sha384", hashLength: 48, keyKind: "ec", curve: "secp384r1", pss: false },
  ],
  [
    SignatureScheme.ecdsa_secp521r1_sha512,
    { hash: "sha512", hashLength: 64, keyKind: "ec", curve: "secp521r1", pss: false },
  ],
  [SignatureScheme.rsa_pss_rsae_sha256, { hash: "sha256", hashLength: 32, keyKind: "rsa", pss: true }],
  [SignatureScheme.rsa_pss_rsae_sha384, { hash: "sha384", hashLength: 48, keyKind: "rsa", pss: true }],
  [SignatureScheme.rsa_pss_rsae_sha512, { hash: "sha512", hashLength: 64, keyKind: "rsa", pss: true }],
  [SignatureScheme.rsa_pss_pss_sha256, { hash: "sha256", hashLength: 32, keyKind: "rsa-pss", pss: true }],
  [SignatureScheme.rsa_pss_pss_sha384, { hash: "sha384", hashLength: 48, keyKind: "rsa-pss", pss: true }],
  [SignatureScheme.rsa_pss_pss_sha512, { hash: "sha512", hashLength: 64, keyKind: "rsa-pss", pss: true }],
  [SignatureScheme.ed25519, { hash: null, hashLength: 0, keyKind: "ed25519", pss: false }],
]);

/**
 * Our default preference among the schemes a key supports: for RSA, SHA-256 first (smallest and
 * universally supported); every other key type has exactly one scheme.
 */
const defaultOrder: readonly number[] = [
  SignatureScheme.ecdsa_secp256r1_sha256,
  SignatureScheme.ecdsa_secp384r1_sha384,
  SignatureScheme.ecdsa_secp521r1_sha512,
  SignatureScheme.ed25519,
  SignatureScheme.rsa_pss_rsae_sha256,
  SignatureScheme.rsa_pss_rsae_sha384,
  SignatureScheme.rsa_pss_rsae_sha512,
  SignatureScheme.rsa_pss_pss_sha256,
  SignatureScheme.rsa_pss_pss_sha384,
  SignatureScheme.rsa_pss_pss_sha512,
];

/** True if `scheme` may appear in a TLS 1.3 CertificateVerify and we implement it. */
export function isCertificateVerifyScheme(scheme: number): boolean {
  return cvSchemes.has(scheme);
}

/**
 * Whether `key` (public or private) can produce/verify `scheme`. Checks the key type, the ECDSA
 * curve (bound to the scheme in TLS 1.3), an RSA-PSS key's own hash restriction, and that the RSA
 * modulus is large enough for PSS with salt length = digest length (emLen ≥ 2·hLen + 2).
 */
function keyFitsScheme(key: KeyObject, spec: SchemeSpec): boolean {
  const type = key.asymmetricKeyType;
  if (type !== spec.keyKind) return false;
  const details = key.asymmetricKeyDetails ?? {};
  if (spec.keyKind === "ec") return details.namedCurve === spec.curve;
  if (spec.keyKind === "rsa" || spec.keyKind === "rsa-pss") {
    const bits = details.modulusLength ?? 0;
    if (Math.ceil((bits - 1) / 8) < 2 * spec.hashLength + 2) return false;
    if (spec.keyKind === "rsa-pss") {
      // An RSASSA-PSS key may carry parameters restricting it to one hash (RFC 4055 §3.1).
      if (details.hashAlgorithm !== undefined && details.hashAlgorithm !== spec.hash) return false;
      if (details.mgf1HashAlgorithm !== undefined && details.mgf1HashAlgorithm !== spec.hash) return false;
      if (details.saltLength !== undefined && details.saltLength > spec.hashLength) return false;
    }
  }
  return true;
}

/**
 * The CertificateVerify schemes `key` (private or public) can sign/verify with, in our preference
 * order. Empty for unsupported key types (DSA, X25519, Ed448, RSA < 528 bits, …).
 */
export function schemesForKey(key: KeyObject): number[] {
  if (key.type === "secret") return [];
  return defaultOrder.filter((s) => keyFitsScheme(key, cvSchemes.get(s)!));
}

/**
 * Picks the scheme to sign a CertificateVerify with: the first scheme of `preference` (default:
 * {@link schemesForKey} order) that the key supports and the peer offered in its
 * "signature_algorithms" extension. Null when there is none (the caller then aborts with
 * handshake_failure, or falls back as RFC 9846 §4.4.2.2 allows).
 */
export function selectSignatureScheme(
  key: KeyObject,
  peerOffered: readonly number[],
  preference?: readonly number[],
): number | null {
  const supported = schemesForKey(key);
  const offered = new Set(peerOffered);
  for (const scheme of preference ?? supported) {
    if (supported.includes(scheme) && offered.has(scheme)) return scheme;
  }
  return null;
}

const padding = new Uint8Array(64).fill(0x20);
const serverContext = new TextEncoder().encode("TLS 1.3, server CertificateVerify");
const clientContext = new TextEncoder().encode("TLS 1.3, client CertificateVerify");

/**
 * The content covered by a CertificateVerify signature (RFC 9846 §4.4.3): 64 × 0x20, the context
 * string of the signer's role, a 0 byte, then Transcript-Hash(Handshake Context, Certificate).
 */
export function buildCertificateVerifyContent(
  role: "server" | "client",
  transcriptHash: Uint8Array,
): Uint8Array {
  const context = role === "server" ? serverContext : clientContext;
  const out = new Uint8Array(64 + context.length + 1 + transcriptHash.length);
  out.set(padding, 0);
  out.set(context, 64);
  out[64 + context.length] = 0;
  out.set(transcriptHash, 64 + context.length + 1);
  return out;
}

function signOptions(key: KeyObject, spec: SchemeSpec) {
  if (spec.pss) {
    return {
      key,
      padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
      saltLength: spec.hashLength,
    };
  }
  if (spec.keyKind === "ec") return { key, dsaEncoding: "der" as const };
  return { key };
}

/**
 * Signs the CertificateVerify `content` (see {@link buildCertificateVerifyContent}) with `scheme`.
 * A scheme the key cannot produce is a local bug: {@link QuicUsageError}.
 */
export function signCertificateVerify(
  privateKey: KeyObject,
  scheme: number,
  content: Uint8Array,
): Uint8Array {
  const spec = cvSchemes.get(scheme);
  if (!spec) {
    throw new QuicUsageError(`signature scheme ${signatureSchemeName(scheme)} is not usable in TLS 1.3`);
  }
  if (privateKey.type !== "private") throw new QuicUsageError("signCertificateVerify needs a private key");
  if (!keyFitsScheme(privateKey, spec)) {
    throw new QuicUsageError(
      `a ${describeKey(privateKey)} key cannot sign with ${signatureSchemeName(scheme)}`,
    );
  }
  return new Uint8Array(sign(spec.hash, content, signOptions(privateKey, spec)));
}

/**
 * Verifies a peer's CertificateVerify (RFC 9846 §4.4.3).
 *
 * - `scheme` not offered by us (when `offered` is given), not valid in TLS 1.3 CertificateVerify
 *   (RSASSA-PKCS1-v1_5, SHA-1, unknown), or incompatible with the certificate's key (wrong key type,
 *   wrong ECDSA curve) → TlsError(illegal_parameter): the field conforms to the syntax but is
 *   inconsistent with the rest of the handshake (RFC 9846 §6.2).
 * - signature does not verify → TlsError(decrypt_error) (RFC 9846 §4.4.3).
 */
export function verifyCertificateVerify(
  publicKey: KeyObject,
  scheme: number,
  content: Uint8Array,
  signature: Uint8Array,
  offered?: readonly number[],
): void {
  const name = signatureSchemeName(scheme);
  if (offered && !offered.includes(scheme)) {
    throw new TlsError(
      AlertDescription.illegal_parameter,
      `peer used signature scheme ${name} we did not offer`,
    );
  }
  const spec = cvSchemes.get(scheme);
  if (!spec) {
    throw new TlsError(
      AlertDescription.illegal_parameter,
      `signature scheme ${name} is not allowed in a TLS 1.3 CertificateVerify`,
    );
  }
  if (!keyFitsScheme(publicKey, spec)) {
    throw new TlsError(
      AlertDescription.illegal_parameter,
      `signature scheme ${name} does not match the certificate's ${describeKey(publicKey)} key`,
    );
  }
  let ok = false;
  try {
    ok = verify(spec.hash, content, signOptions(publicKey, spec), signature);
  } catch {
    ok = false; // malformed signature encoding (e.g. bad ECDSA DER): same as a wrong signature
  }
  if (!ok)
    throw new TlsError(AlertDescription.decrypt_error, `CertificateVerify signature (${name}) is invalid`);
}

/** Short description of a key for error messages, e.g. `ec secp384r1`, `rsa 2048-bit`. */
export function describeKey(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? key.type;
  const d = key.asymmetricKeyDetails ?? {};
  if (d.namedCurve) return `${type} ${d.namedCurve}`;
  if (d.modulusLength) return `${type} ${d.modulusLength}-bit`;
  return type;
}
