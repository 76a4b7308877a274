/**
 * X.509 certificate parsing and path validation for the TLS 1.3 handshake (RFC 9846 §4.4.2.4,
 * RFC 5280 §6, WebPKI practice), plus the two non-PKI modes: "insecure" and WebTransport's
 * `serverCertificateHashes` (as Chromium enforces it).
 *
 * Design:
 * - Certificates are decoded with the ASN.1 layer of the @peculiar family (@peculiar/asn1-schema
 *   and the @peculiar/asn1-x509 / asn1-rsa / asn1-ecc schemas), which is synchronous and needs no
 *   global polyfill. Its parser is BER-lenient, so every decoded structure must re-encode to the
 *   exact input bytes (its serializer writes DER): that is our DER-strictness check. Every failure
 *   on peer-supplied bytes is a {@link TlsError}(bad_certificate) and nothing else, and the whole
 *   verification is synchronous (the handshake is sans-IO and cannot await).
 * - Signatures are checked with node:crypto (`crypto.verify` over the TBSCertificate bytes exactly
 *   as received, with keys from `createPublicKey(spki)`): OpenSSL covers RSASSA-PKCS1-v1_5,
 *   RSASSA-PSS (with the parameters from the AlgorithmIdentifier), ECDSA and Ed25519, synchronously.
 * - @peculiar/x509 itself is not used at run time: its API is asynchronous (WebCrypto), and
 *   importing it throws unless a global Reflect-metadata polyfill is installed first (tsyringe),
 *   which a library must not do to its host. The tests use it as an independent implementation to
 *   build the certificates we verify.
 * - Time is never read when `now` is given.
 */
import {
  createHash,
  createPublicKey,
  constants as cryptoConstants,
  type KeyObject,
  verify,
} from "node:crypto";
import { rootCertificates } from "node:tls";
import { domainToASCII } from "node:url";
import {
  id_ecdsaWithSHA1,
  id_ecdsaWithSHA256,
  id_ecdsaWithSHA384,
  id_ecdsaWithSHA512,
} from "@peculiar/asn1-ecc";
import {
  id_md2WithRSAEncryption,
  id_md5WithRSAEncryption,
  id_mgf1,
  id_RSASSA_PSS,
  id_sha1WithRSAEncryption,
  id_sha256,
  id_sha256WithRSAEncryption,
  id_sha384,
  id_sha384WithRSAEncryption,
  id_sha512,
  id_sha512WithRSAEncryption,
  RsaSaPssParams,
} from "@peculiar/asn1-rsa";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AsnIpConverter,
  anyExtendedKeyUsage,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  type GeneralName,
  type GeneralSubtrees,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_nameConstraints,
  id_ce_subjectAltName,
  id_kp_clientAuth,
  id_kp_serverAuth,
  KeyUsage,
  NameConstraints as NameConstraintsSyntax,
  SubjectAlternativeName,
} from "@peculiar/asn1-x509";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import { describeKey } from "./signature.ts";

// ---------------------------------------------------------------------------------------------
// Errors

function badCertificate(reason: string): TlsError {
  return new TlsError(AlertDescription.bad_certificate, reason);
}
function unsupportedCertificate(reason: string): TlsError {
  return new TlsError(AlertDescription.unsupported_certificate, reason);
}

// ---------------------------------------------------------------------------------------------
// Strict DER decoding on top of @peculiar/asn1-schema

/** A Uint8Array over `b` (the library types raw fields as ArrayBuffer but sometimes hands out views). */
function toBytes(b: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (b instanceof Uint8Array) return b;
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return new Uint8Array(b);
}

/** DER encoding of a schema object. */
function encode(value: unknown): Uint8Array {
  return new Uint8Array(AsnConvert.serialize(value));
}

/**
 * Decodes `der` as `type` and requires that it be exactly the DER encoding of the result. The
 * parser accepts BER (indefinite and non-minimal lengths, explicitly encoded DEFAULT values,
 * constructed strings, trailing data, malformed times …) while the serializer writes DER, so
 * re-encoding and comparing rejects all of that for every field the schema decodes (opaque fields
 * — OCTET STRING contents, ANY — are decoded separately where we use them). asn1js bounds the
 * nesting depth and node count of what it parses. Any failure → bad_certificate.
 */
function decodeDer<T>(der: Uint8Array, type: new () => T, what: string): T {
  let value: T;
  let again: Uint8Array;
  try {
    value = AsnConvert.parse(der, type);
    again = encode(value);
  } catch (e) {
    throw badCertificate(`malformed ${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!equalBytes(again, der)) throw badCertificate(`${what} is not DER-encoded`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Certificate model

const OID = {
  anyExtendedKeyUsage,
  serverAuth: id_kp_serverAuth,
  clientAuth: id_kp_clientAuth,
} as const;

/** A NameConstraints subtree we enforce: a DNS name suffix or an IP range. */
export type Subtree = { readonly dns: string } | { readonly ip: Uint8Array; readonly mask: Uint8Array };

export interface NameConstraints {
  readonly permitted: readonly Subtree[];
  readonly excluded: readonly Subtree[];
  /** Whether the permitted list restricts DNS / IP names (a type is unconstrained when absent). */
  readonly permitsDns: boolean;
  readonly permitsIp: boolean;
}

/**
 * The parts of a certificate this verifier uses. Byte fields hold the exact DER of those parts as
 * they appear in `der` (`tbs` is the span of `der` the signature covers).
 */
export interface ParsedCertificate {
  readonly der: Uint8Array;
  readonly version: number;
  readonly tbs: Uint8Array;
  /** AlgorithmIdentifier (full DER) of the signature; the TBS copy was checked to be identical. */
  readonly signatureAlgorithm: Uint8Array;
  readonly signature: Uint8Array;
  readonly issuer: Uint8Array;
  readonly subject: Uint8Array;
  readonly spki: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** basicConstraints: undefined when the extension is absent. */
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLength?: number };
  /** KeyUsage bits as a number (bit 0 = digitalSignature … bit 8 = decipherOnly), if present. */
  readonly keyUsage?: number;
  /** ExtendedKeyUsage OIDs, if present. */
  readonly extKeyUsage?: readonly string[];
  /** SAN dNSName entries (lower-cased) and iPAddress entries (4 or 16 bytes), if SAN is present. */
  readonly subjectAltName?: { readonly dns: readonly string[]; readonly ip: readonly Uint8Array[] };
  readonly nameConstraints?: NameConstraints;
}

export const KeyUsageBit = {
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8,
} as const;

function parseBasicConstraints(value: Uint8Array): { ca: boolean; pathLength?: number } {
  const bc = decodeDer(value, BasicConstraints, "basicConstraints");
  const pathLength = bc.pathLenConstraint;
  if (pathLength === undefined) return { ca: bc.cA };
  if (!Number.isSafeInteger(pathLength) || pathLength < 0) throw badCertificate("bad pathLenConstraint");
  return { ca: bc.cA, pathLength };
}

function parseKeyUsage(value: Uint8Array): number {
  const ku = decodeDer(value, KeyUsage, "keyUsage");
  const bytes = toBytes(ku.value);
  if (ku.unusedBits > 7 || (bytes.length === 0 && ku.unusedBits !== 0)) throw badCertificate("bad keyUsage");
  // Named bits: bit i is the (i % 8)-th most significant bit of byte i / 8 (X.680 §22).
  let bits = 0;
  for (let i = 0; i < Math.min(bytes.length, 2) * 8; i++) {
    if (bytes[i >> 3] & (0x80 >> (i & 7))) bits |= 1 << i;
  }
  return bits;
}

function parseExtKeyUsage(value: Uint8Array): string[] {
  const oids = [...decodeDer(value, ExtendedKeyUsage, "extKeyUsage")];
  if (oids.length === 0) throw badCertificate("empty extKeyUsage");
  return oids;
}

/** A dNSName: IA5String, restricted to printable ASCII. */
function dnsName(name: string): string {
  if (!/^[\x20-\x7e]*$/.test(name)) throw badCertificate("non-printable IA5String in name");
  return name.toLowerCase();
}

/**
 * The octets of an iPAddress GeneralName. The library presents them as text ("192.0.2.1",
 * "2001:db8::1", "192.0.2.0/24"); its own converter maps the text back to the octets it encodes,
 * which {@link decodeDer} has checked to be the octets received.
 */
function ipOctets(text: string): Uint8Array {
  return toBytes(AsnConvert.parse(AsnConvert.serialize(AsnIpConverter.toASN(text)), OctetString).buffer);
}

function parseSubjectAltName(value: Uint8Array): { dns: string[]; ip: Uint8Array[] } {
  const dns: string[] = [];
  const ip: Uint8Array[] = [];
  for (const gn of decodeDer(value, SubjectAlternativeName, "subjectAltName")) {
    if (gn.dNSName !== undefined) dns.push(dnsName(gn.dNSName));
    else if (gn.iPAddress !== undefined) {
      const octets = ipOctets(gn.iPAddress);
      if (octets.length !== 4 && octets.length !== 16) {
        throw badCertificate("bad iPAddress length in subjectAltName");
      }
      ip.push(octets);
    }
    // otherName, rfc822Name, URI, directoryName, … are irrelevant to TLS server identity.
  }
  return { dns, ip };
}

/** Parses NameConstraints; `handled` is false if it constrains name types we do not enforce. */
function parseNameConstraints(value: Uint8Array): { nc: NameConstraints; handled: boolean } {
  const syntax = decodeDer(value, NameConstraintsSyntax, "nameConstraints");
  let handled = true;
  const subtrees = (list: GeneralSubtrees | undefined): Subtree[] => {
    if (!list) return [];
    if (list.length === 0) throw badCertificate("empty GeneralSubtrees");
    const out: Subtree[] = [];
    for (const subtree of list) {
      // minimum MUST be 0 (absent) and maximum MUST be absent (RFC 5280 §4.2.1.10).
      if (subtree.minimum !== 0 || subtree.maximum !== undefined) {
        throw badCertificate("GeneralSubtree minimum/maximum are not allowed");
      }
      const base: GeneralName = subtree.base;
      if (base.dNSName !== undefined) {
        out.push({ dns: dnsName(base.dNSName) });
      } else if (base.iPAddress !== undefined) {
        const octets = ipOctets(base.iPAddress);
        if (octets.length !== 8 && octets.length !== 32)
          throw badCertificate("bad iPAddress constraint length");
        const half = octets.length / 2;
        out.push({ ip: octets.subarray(0, half), mask: octets.subarray(half) });
      } else {
        handled = false; // directoryName, rfc822Name, URI, …: not enforced
      }
    }
    return out;
  };
  const permitted = subtrees(syntax.permittedSubtrees);
  const excluded = subtrees(syntax.excludedSubtrees);
  const nc: NameConstraints = {
    permitted,
    excluded,
    permitsDns: permitted.some((s) => "dns" in s),
    permitsIp: permitted.some((s) => "ip" in s),
  };
  return { nc, handled };
}

/**
 * Parses a DER X.509 certificate. Any malformation → TlsError(bad_certificate). Unknown critical
 * extensions are rejected (RFC 5280 §4.2), as are duplicate extensions.
 */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  try {
    return parseCertificateInner(der);
  } catch (e) {
    if (e instanceof TlsError) throw e;
    throw badCertificate(`unparseable certificate: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** Parsed certificates kept for reuse, at most (a peer sending new ones only evicts old ones). */
const PARSED_CACHE_ENTRIES = 64;
/** Certificates larger than this are parsed every time rather than kept. */
const PARSED_CACHE_MAX_DER = 16 * 1024;
const parsedCache = new Map<string, ParsedCertificate>();

/**
 * {@link parseCertificate} with a bounded cache keyed by the exact DER bytes: a client that
 * connects to the same server again (and a server verifying the same client certificate) skips
 * the ASN.1 decoding and DER re-encoding checks, which cost more than the rest of a handshake.
 * The result depends on the bytes only; a cached entry owns a private copy of them, so a caller
 * reusing its buffer cannot change it. Failures are not cached.
 */
function parseCertificateCached(der: Uint8Array): ParsedCertificate {
  if (der.length > PARSED_CACHE_MAX_DER) return parseCertificate(der);
  const key = Buffer.from(der.buffer, der.byteOffset, der.length).toString("latin1");
  const hit = parsedCache.get(key);
  if (hit) {
    // Most recently used last: Map iteration order is insertion order.
    parsedCache.delete(key);
    parsedCache.set(key, hit);
    return hit;
  }
  const parsed = parseCertificate(der.slice());
  if (parsedCache.size >= PARSED_CACHE_ENTRIES) parsedCache.delete(parsedCache.keys().next().value!);
  parsedCache.set(key, parsed);
  return parsed;
}

function parseCertificateInner(der: Uint8Array): ParsedCertificate {
  const cert = decodeDer(der, Certificate, "certificate");
  const tbs = cert.tbsCertificate;
  // The TBSCertificate exactly as received (it is what the signature covers); the parser keeps it.
  if (!cert.tbsCertificateRaw) throw badCertificate("TBSCertificate bytes unavailable");
  const tbsBytes = toBytes(cert.tbsCertificateRaw);

  const version = tbs.version + 1;
  if (version < 1 || version > 3) throw badCertificate(`unsupported certificate version ${version}`);
  const serialLength = tbs.serialNumber.byteLength;
  if (serialLength === 0 || serialLength > 21) throw badCertificate("bad serial number length");

  const signatureAlgorithm = encode(cert.signatureAlgorithm);
  if (!equalBytes(signatureAlgorithm, encode(tbs.signature))) {
    throw badCertificate("signatureAlgorithm differs from TBSCertificate.signature");
  }

  const result: {
    -readonly [K in keyof ParsedCertificate]: ParsedCertificate[K];
  } = {
    der,
    version,
    tbs: tbsBytes,
    signatureAlgorithm,
    signature: toBytes(cert.signatureValue),
    issuer: encode(tbs.issuer),
    subject: encode(tbs.subject),
    spki: encode(tbs.subjectPublicKeyInfo),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
  };
  for (const t of [result.notBefore, result.notAfter]) {
    // RFC 5280 §4.1.2.5.2: no fractional seconds (the DER re-encoding check cannot see them).
    if (Number.isNaN(t.getTime()) || t.getUTCMilliseconds() !== 0) {
      throw badCertificate("invalid validity time");
    }
  }

  if (tbs.extensions) {
    if (version !== 3) throw badCertificate("extensions in a non-v3 certificate");
    // RFC 5280 wants at least one extension here, but common generators (e.g. @peculiar/x509) emit
    // an empty list; it is harmless, so it is accepted.
    const seen = new Set<string>();
    for (const ext of tbs.extensions) {
      const oid = ext.extnID;
      const critical = ext.critical;
      const value = toBytes(ext.extnValue.buffer);
      if (seen.has(oid)) throw badCertificate(`duplicate extension ${oid}`);
      seen.add(oid);
      switch (oid) {
        case id_ce_basicConstraints:
          result.basicConstraints = parseBasicConstraints(value);
          break;
        case id_ce_keyUsage:
          result.keyUsage = parseKeyUsage(value);
          break;
        case id_ce_extKeyUsage:
          result.extKeyUsage = parseExtKeyUsage(value);
          break;
        case id_ce_subjectAltName:
          result.subjectAltName = parseSubjectAltName(value);
          break;
        case id_ce_nameConstraints: {
          const { nc, handled } = parseNameConstraints(value);
          if (!handled && critical) {
            throw badCertificate("critical nameConstraints on name types that are not supported");
          }
          result.nameConstraints = nc;
          break;
        }
        default:
          if (critical) throw badCertificate(`unsupported critical extension ${oid}`);
      }
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Keys and signatures

const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

/**
 * Keys of certificates that passed the key policy, across verifications: with parsed certificates
 * reused ({@link parseCertificateCached}), a server's key is imported from DER once, not per
 * handshake. Weak, so it holds nothing the parse cache dropped.
 */
const keyCache = new WeakMap<ParsedCertificate, KeyObject>();

/** Public key of a certificate, checked against our key policy (→ unsupported_certificate). */
function certificateKey(cert: ParsedCertificate, cache: Map<ParsedCertificate, KeyObject>): KeyObject {
  const cached = cache.get(cert) ?? keyCache.get(cert);
  if (cached) {
    cache.set(cert, cached);
    return cached;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(cert.spki), format: "der", type: "spki" });
  } catch {
    throw badCertificate("unparseable subjectPublicKeyInfo");
  }
  const type = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (type === "rsa" || type === "rsa-pss") {
    const bits = d.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) {
      throw unsupportedCertificate(`RSA key size ${bits} is outside ${MIN_RSA_BITS}..${MAX_RSA_BITS}`);
    }
    if (d.publicExponent === undefined || d.publicExponent > 0xffffffffn) {
      throw unsupportedCertificate("RSA public exponent too large");
    }
  } else if (type === "ec") {
    if (d.namedCurve !== "prime256v1" && d.namedCurve !== "secp384r1" && d.namedCurve !== "secp521r1") {
      throw unsupportedCertificate(`unsupported EC curve ${d.namedCurve}`);
    }
  } else if (type !== "ed25519") {
    throw unsupportedCertificate(`unsupported public key type ${type}`);
  }
  cache.set(cert, key);
  keyCache.set(cert, key);
  return key;
}

type HashName = "sha256" | "sha384" | "sha512";

const HASH_OIDS: Record<string, HashName> = {
  [id_sha256]: "sha256",
  [id_sha384]: "sha384",
  [id_sha512]: "sha512",
};

const SIG_OIDS: Record<string, { kind: "pkcs1" | "ecdsa"; hash: HashName }> = {
  [id_sha256WithRSAEncryption]: { kind: "pkcs1", hash: "sha256" },
  [id_sha384WithRSAEncryption]: { kind: "pkcs1", hash: "sha384" },
  [id_sha512WithRSAEncryption]: { kind: "pkcs1", hash: "sha512" },
  [id_ecdsaWithSHA256]: { kind: "ecdsa", hash: "sha256" },
  [id_ecdsaWithSHA384]: { kind: "ecdsa", hash: "sha384" },
  [id_ecdsaWithSHA512]: { kind: "ecdsa", hash: "sha512" },
};
const OID_ED25519 = "1.3.101.112";
/** MD2/MD5/SHA-1 signatures: RFC 9846 §4.4.2.4 says abort with bad_certificate. */
const WEAK_SIG_OIDS = new Set([
  id_md2WithRSAEncryption,
  id_md5WithRSAEncryption,
  id_sha1WithRSAEncryption,
  id_ecdsaWithSHA1,
  "1.2.840.10040.4.3", // dsa-with-sha1
  "1.3.14.3.2.29", // sha1WithRSASignature (OIW)
]);

/** AlgorithmIdentifier parameters that must be absent, or absent or NULL. */
function checkNoParameters(alg: AlgorithmIdentifier, nullAllowed: boolean): void {
  if (alg.parameters === undefined || (nullAllowed && alg.parameters === null)) return;
  throw badCertificate(`unexpected parameters in AlgorithmIdentifier ${alg.algorithm}`);
}

/** A hash AlgorithmIdentifier: a SHA-2 OID with absent or NULL parameters. */
function hashOf(alg: AlgorithmIdentifier): HashName {
  const h = HASH_OIDS[alg.algorithm];
  if (!h) throw unsupportedCertificate(`unsupported RSASSA-PSS hash ${alg.algorithm}`);
  checkNoParameters(alg, true);
  return h;
}

/** RSASSA-PSS-params (RFC 4055 §3.1), restricted to SHA-2 with MGF1 using the same hash. */
function pssParams(alg: AlgorithmIdentifier): { hash: HashName; saltLength: number } {
  if (alg.parameters === undefined)
    throw unsupportedCertificate("RSASSA-PSS with default (SHA-1) parameters");
  if (alg.parameters === null) throw badCertificate("RSASSA-PSS parameters are NULL");
  const params = decodeDer(toBytes(alg.parameters), RsaSaPssParams, "RSASSA-PSS parameters");
  // Absent fields take their (SHA-1) defaults, which hashOf refuses.
  const hash = hashOf(params.hashAlgorithm);
  const mgf = params.maskGenAlgorithm;
  if (mgf.algorithm !== id_mgf1) throw unsupportedCertificate("RSASSA-PSS mask generation is not MGF1");
  if (!mgf.parameters) throw badCertificate("MGF1 without a hash");
  const mgfHash = hashOf(decodeDer(toBytes(mgf.parameters), AlgorithmIdentifier, "MGF1 parameters"));
  if (mgfHash !== hash) throw unsupportedCertificate("RSASSA-PSS MGF1 hash differs from the hash");
  if (!Number.isSafeInteger(params.saltLength) || params.saltLength < 0) {
    throw badCertificate("bad RSASSA-PSS saltLength");
  }
  if (params.trailerField !== 1) throw badCertificate("RSASSA-PSS trailerField must be 1");
  return { hash, saltLength: params.saltLength };
}

/**
 * Checks whether `issuerKey` signed `cert`. Returns undefined if the signature verifies, or the
 * error (bad_certificate) if it does not — a wrong key, or a key of another type than the
 * algorithm. Throws when the signature cannot be checked with any key: weak hash → bad_certificate
 * (RFC 9846 §4.4.2.4); unknown algorithm → unsupported_certificate; malformed parameters →
 * bad_certificate.
 */
function checkSignature(cert: ParsedCertificate, issuerKey: KeyObject): TlsError | undefined {
  const alg = decodeDer(cert.signatureAlgorithm, AlgorithmIdentifier, "signatureAlgorithm");
  const oid = alg.algorithm;
  const keyType = issuerKey.asymmetricKeyType;
  const data = cert.tbs;
  const sig = cert.signature;
  const mismatch = () =>
    badCertificate(`signature algorithm ${oid} does not match the issuer's ${describeKey(issuerKey)} key`);
  if (WEAK_SIG_OIDS.has(oid))
    throw badCertificate(`certificate signed with a weak (MD5/SHA-1) algorithm ${oid}`);
  let ok: boolean;
  try {
    const simple = SIG_OIDS[oid];
    if (simple) {
      if (simple.kind === "pkcs1") {
        checkNoParameters(alg, true);
        if (keyType !== "rsa") return mismatch();
        ok = verify(simple.hash, data, { key: issuerKey, padding: cryptoConstants.RSA_PKCS1_PADDING }, sig);
      } else {
        checkNoParameters(alg, false); // ECDSA: parameters MUST be absent (RFC 5758 §3.2)
        if (keyType !== "ec") return mismatch();
        ok = verify(simple.hash, data, { key: issuerKey, dsaEncoding: "der" }, sig);
      }
    } else if (oid === id_RSASSA_PSS) {
      const { hash, saltLength } = pssParams(alg);
      if (keyType !== "rsa" && keyType !== "rsa-pss") return mismatch();
      ok = verify(
        hash,
        data,
        { key: issuerKey, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength },
        sig,
      );
    } else if (oid === OID_ED25519) {
      checkNoParameters(alg, false);
      if (keyType !== "ed25519") return mismatch();
      ok = verify(null, data, issuerKey, sig);
    } else {
      throw unsupportedCertificate(`unsupported certificate signature algorithm ${oid}`);
    }
  } catch (e) {
    if (e instanceof TlsError) throw e;
    ok = false; // OpenSSL rejected the encoding or the key/parameter combination
  }
  return ok ? undefined : badCertificate("certificate signature does not verify");
}

// ---------------------------------------------------------------------------------------------
// Names

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/** Parses a dotted-quad IPv4 address strictly (no leading zeros, no shorthand). */
function parseIPv4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const v = Number(p);
    if (v > 255) return null;
    out[i] = v;
  }
  return out;
}

/** Parses an IPv6 address (RFC 4291 §2.2 text forms, incl. `::` and an embedded IPv4 tail). */
function parseIPv6(s: string): Uint8Array | null {
  if (s.length === 0 || s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseIPv4(item);
        if (!v4) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return null;
        out.push(Number.parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return null;
  // An embedded IPv4 address is only allowed at the very end.
  if (halves.length === 2 && halves[0].includes(".")) return null;
  const total = head.length + tail.length;
  if (halves.length === 2 ? total > 7 : total !== 8) return null;
  const all = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i] >> 8;
    out[2 * i + 1] = all[i] & 0xff;
  }
  return out;
}

/** IP literal → 4 or 16 bytes, or null if `s` is not an IP literal. Accepts `[v6]`. */
export function parseIpAddress(s: string): Uint8Array | null {
  const v6 = s.startsWith("[") && s.endsWith("]") ? s.slice(1, -1) : s;
  if (v6.includes(":")) return parseIPv6(v6);
  return parseIPv4(s);
}

type ReferenceName = { readonly dns: string } | { readonly ip: Uint8Array };

/** Normalises the name the client intends to reach: an IP literal, or a DNS name as an A-label. */
function referenceName(serverName: string): ReferenceName {
  const ip = parseIpAddress(serverName);
  if (ip) return { ip };
  let name = serverName.endsWith(".") ? serverName.slice(0, -1) : serverName;
  name = domainToASCII(name).toLowerCase();
  if (name === "" || name.length > 253 || name.split(".").some((l) => !/^[a-z0-9_-]{1,63}$/.test(l))) {
    throw new QuicUsageError(
      `invalid server name ${JSON.stringify(serverName)}: not a DNS name or IP literal`,
    );
  }
  return { dns: name };
}

/**
 * RFC 6125 §6.4 matching of a DNS reference name against one SAN dNSName: case-insensitive, the
 * wildcard `*` only as the entire left-most label, matching exactly one label, and only over at
 * least two further labels (`*.com` never matches). `f*.example.com` is not a wildcard.
 */
export function dnsNameMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase();
  if (!p.startsWith("*.")) return p === n;
  const suffix = p.slice(2);
  if (suffix.includes("*") || suffix.split(".").length < 2) return false;
  const dot = n.indexOf(".");
  if (dot <= 0) return false;
  return n.slice(dot + 1) === suffix;
}

function matchesReference(
  san: NonNullable<ParsedCertificate["subjectAltName"]>,
  ref: ReferenceName,
): boolean {
  if ("ip" in ref) return san.ip.some((ip) => equalBytes(ip, ref.ip));
  return san.dns.some((pattern) => dnsNameMatches(pattern, ref.dns));
}

/** RFC 5280 §4.2.1.10 dNSName constraint: `example.com` covers itself and subdomains, `.example.com` only subdomains. */
function dnsWithin(name: string, base: string): boolean {
  if (base === "") return true;
  const b = base.startsWith(".") ? base.slice(1) : base;
  if (!base.startsWith(".") && name === b) return true;
  return name.endsWith(`.${b}`);
}

/** Could the (possibly wildcard) SAN `name` cover some name inside the excluded subtree `base`? */
function dnsOverlaps(name: string, base: string): boolean {
  if (dnsWithin(name, base)) return true;
  if (!name.startsWith("*.")) return false;
  const b = base.startsWith(".") ? base.slice(1) : base;
  // "*.example.com" covers x.example.com: it overlaps an exclusion of "x.example.com".
  return dnsWithin(b, `.${name.slice(2)}`) && b.split(".").length === name.split(".").length;
}

function ipWithin(ip: Uint8Array, subtree: { ip: Uint8Array; mask: Uint8Array }): boolean {
  if (ip.length !== subtree.ip.length) return false;
  for (let i = 0; i < ip.length; i++) {
    if ((ip[i] & subtree.mask[i]) !== (subtree.ip[i] & subtree.mask[i])) return false;
  }
  return true;
}

/** Applies an issuer's name constraints to the leaf's SAN names (→ bad_certificate). */
function checkNameConstraints(nc: NameConstraints, leaf: ParsedCertificate): void {
  const san = leaf.subjectAltName;
  if (!san) {
    if (nc.permitsDns || nc.permitsIp)
      throw badCertificate("name-constrained issuer but leaf has no subjectAltName");
    return;
  }
  let budget = 100_000;
  const spend = (n: number) => {
    budget -= n;
    if (budget < 0) throw badCertificate("name constraint check too expensive");
  };
  for (const name of san.dns) {
    spend(nc.permitted.length + nc.excluded.length);
    if (nc.excluded.some((s) => "dns" in s && dnsOverlaps(name, s.dns))) {
      throw badCertificate(`name ${name} is excluded by the issuer's name constraints`);
    }
    if (nc.permitsDns && !nc.permitted.some((s) => "dns" in s && dnsWithin(name, s.dns))) {
      throw badCertificate(`name ${name} is not permitted by the issuer's name constraints`);
    }
  }
  for (const ip of san.ip) {
    spend(nc.permitted.length + nc.excluded.length);
    if (nc.excluded.some((s) => "ip" in s && ipWithin(ip, s))) {
      throw badCertificate("IP address excluded by the issuer's name constraints");
    }
    if (nc.permitsIp && !nc.permitted.some((s) => "ip" in s && ipWithin(ip, s))) {
      throw badCertificate("IP address not permitted by the issuer's name constraints");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Trust store

/** A parsed, indexed set of trust anchors. Build once with {@link createTrustStore} and reuse. */
export class TrustStore {
  private readonly bySubject = new Map<string, ParsedCertificate[]>();
  private readonly byDer = new Set<string>();
  /** Number of anchors. */
  readonly size: number;

  /** @param anchors parsed anchor certificates */
  constructor(anchors: readonly ParsedCertificate[]) {
    for (const a of anchors) {
      const k = hex(a.subject);
      const list = this.bySubject.get(k);
      if (list) list.push(a);
      else this.bySubject.set(k, [a]);
      this.byDer.add(hex(a.der));
    }
    this.size = anchors.length;
  }

  /** Anchors whose subject is exactly (byte-equal) `issuer`. */
  issuersOf(issuer: Uint8Array): readonly ParsedCertificate[] {
    return this.bySubject.get(hex(issuer)) ?? [];
  }

  /** Whether `der` is itself one of the anchors. */
  containsCertificate(der: Uint8Array): boolean {
    return this.byDer.has(hex(der));
  }
}

const PEM_RE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;

/** Extracts the DER of every `CERTIFICATE` block in a PEM text (other blocks are ignored). */
export function pemToDerList(pem: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const m of pem.matchAll(PEM_RE)) {
    out.push(new Uint8Array(Buffer.from(m[1].replace(/\s+/g, ""), "base64")));
  }
  return out;
}

/**
 * Builds a trust store from PEM texts (each may hold several certificates) or DER certificates.
 * A root that does not parse is a configuration error: QuicUsageError (unless `skipInvalid`).
 */
export function createTrustStore(roots: readonly (string | Uint8Array)[], skipInvalid = false): TrustStore {
  const anchors: ParsedCertificate[] = [];
  for (const root of roots) {
    const ders = typeof root === "string" ? pemToDerList(root) : [root];
    if (typeof root === "string" && ders.length === 0 && !skipInvalid) {
      throw new QuicUsageError("root PEM contains no CERTIFICATE block");
    }
    for (const der of ders) {
      try {
        anchors.push(parseCertificate(der));
      } catch (e) {
        if (skipInvalid) continue;
        throw new QuicUsageError(`invalid root certificate: ${(e as Error).message}`);
      }
    }
  }
  return new TrustStore(anchors);
}

let defaultStore: TrustStore | undefined;
const storeCache = new WeakMap<object, { snapshot: readonly (string | Uint8Array)[]; store: TrustStore }>();
/** Trust stores by the content of their roots, at most this many (oldest dropped). */
const STORE_CACHE_ENTRIES = 16;
const storeByContent = new Map<string, TrustStore>();

/**
 * The trust store for `roots`. A store built from an array is cached per array object, and reused
 * only while the array still holds the same elements (so a configuration array is not re-parsed on
 * every handshake, and changing it takes effect).
 */
function resolveTrustStore(roots: CertificateVerifyOptions["roots"]): TrustStore {
  if (roots === undefined) return defaultTrustStore();
  if (roots instanceof TrustStore) return roots;
  const list = roots as readonly (string | Uint8Array)[];
  const cached = storeCache.get(list);
  if (cached && cached.snapshot.length === list.length && cached.snapshot.every((r, i) => r === list[i])) {
    return cached.store;
  }
  // A new array with the same roots (e.g. `[options.ca]` built per connection) finds the store by
  // content, so the roots are not parsed again for every handshake.
  const key = list
    .map((r) =>
      typeof r === "string"
        ? `p${r.length}:${r}`
        : `d${r.length}:${Buffer.from(r.buffer, r.byteOffset, r.length).toString("latin1")}`,
    )
    .join("");
  let store = storeByContent.get(key);
  if (!store) {
    store = createTrustStore(list);
    if (storeByContent.size >= STORE_CACHE_ENTRIES)
      storeByContent.delete(storeByContent.keys().next().value!);
    storeByContent.set(key, store);
  }
  storeCache.set(list, { snapshot: [...list], store });
  return store;
}

/** Node's bundled Mozilla roots (`tls.rootCertificates`), parsed once. */
export function defaultTrustStore(): TrustStore {
  defaultStore ??= createTrustStore(rootCertificates, true);
  return defaultStore;
}

// ---------------------------------------------------------------------------------------------
// Verification

/** Certificates in a peer's chain we will look at, at most (bounds the work a peer can cause). */
export const MAX_CHAIN_LENGTH = 10;
/** Signature verifications per chain, at most. */
const MAX_SIGNATURE_CHECKS = 32;
/** serverCertificateHashes: maximum validity period (14 days) plus quiche's one second of slack. */
export const MAX_HASH_PINNED_VALIDITY_MS = 14 * 24 * 3600 * 1000 + 1000;

export type CertificateVerificationMode =
  | "normal"
  | "insecure"
  | { readonly serverCertificateHashes: readonly Uint8Array[] };

export interface CertificateVerifyOptions {
  /** Trust anchors: PEM texts or DER certificates, or a prebuilt store. Default: Node's root store. */
  readonly roots?: readonly string[] | readonly Uint8Array[] | TrustStore;
  /** Verification time. When given, the clock is never read. */
  readonly now?: Date;
  /** Default "normal". */
  readonly mode?: CertificateVerificationMode;
}

export interface ServerCertificateVerifyOptions extends CertificateVerifyOptions {
  /**
   * The name the client meant to reach: a DNS name (IDNs are converted to A-labels) or an IPv4/IPv6
   * literal. Required in "normal" mode; ignored in the other modes.
   */
  readonly serverName?: string;
}

export interface VerifiedCertificate {
  /** The leaf's public key, to check CertificateVerify with. */
  readonly publicKey: KeyObject;
  /** The leaf certificate, parsed. */
  readonly leaf: ParsedCertificate;
  /** The validated path, leaf first, ending with the trust anchor (just the leaf in the other modes). */
  readonly path: readonly Uint8Array[];
}

/**
 * Verifies the certificate chain a server sent (leaf first). Throws TlsError with the alert to
 * send (RFC 9846 §4.4.2.4, §6.2):
 * - empty chain → decode_error (RFC 9846 §4.4.2.4);
 * - malformed DER, bad signature in the path, issuer not a CA, unknown critical extension, name
 *   mismatch, name constraints, MD5/SHA-1 signatures, chain too long → bad_certificate;
 * - a certificate outside its validity period → certificate_expired;
 * - leaf not usable for TLS server authentication (EKU without serverAuth, keyUsage without
 *   digitalSignature), unsupported key or signature algorithm → unsupported_certificate;
 * - no path to a trust anchor → unknown_ca.
 */
export function verifyServerCertificateChain(
  chainDer: readonly Uint8Array[],
  options: ServerCertificateVerifyOptions = {},
): VerifiedCertificate {
  if (chainDer.length === 0) throw new TlsError(AlertDescription.decode_error, "empty server Certificate");
  const mode = options.mode ?? "normal";
  let ref: ReferenceName | undefined;
  if (mode === "normal") {
    if (options.serverName === undefined) {
      throw new QuicUsageError(
        "serverName is required to verify a server certificate (DNS name or IP literal)",
      );
    }
    ref = referenceName(options.serverName);
  }
  return verifyChain(chainDer, options, OID.serverAuth, ref);
}

/**
 * Verifies the certificate chain a client sent (leaf first). Same rules as
 * {@link verifyServerCertificateChain}, with extendedKeyUsage clientAuth and no name check. An
 * empty chain → certificate_required (for a server that requires client authentication).
 */
export function verifyClientCertificateChain(
  chainDer: readonly Uint8Array[],
  options: CertificateVerifyOptions = {},
): VerifiedCertificate {
  if (chainDer.length === 0) {
    throw new TlsError(AlertDescription.certificate_required, "client sent no certificate");
  }
  return verifyChain(chainDer, options, OID.clientAuth, undefined);
}

function checkValidity(cert: ParsedCertificate, now: number, what: string): void {
  if (now < cert.notBefore.getTime()) {
    throw new TlsError(
      AlertDescription.certificate_expired,
      `${what} is not valid before ${cert.notBefore.toISOString()}`,
    );
  }
  if (now > cert.notAfter.getTime()) {
    throw new TlsError(
      AlertDescription.certificate_expired,
      `${what} expired at ${cert.notAfter.toISOString()}`,
    );
  }
}

function verifyChain(
  chainDer: readonly Uint8Array[],
  options: CertificateVerifyOptions,
  purpose: string,
  ref: ReferenceName | undefined,
): VerifiedCertificate {
  const mode = options.mode ?? "normal";
  const keys = new Map<ParsedCertificate, KeyObject>();
  if (chainDer.length > MAX_CHAIN_LENGTH) {
    throw badCertificate(`certificate chain longer than ${MAX_CHAIN_LENGTH}`);
  }

  if (mode === "insecure") {
    const leaf = parseCertificate(chainDer[0]);
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: Buffer.from(leaf.spki), format: "der", type: "spki" });
    } catch {
      throw badCertificate("unparseable subjectPublicKeyInfo");
    }
    return { publicKey, leaf, path: [leaf.der] };
  }

  const now = (options.now ?? new Date()).getTime();

  if (typeof mode === "object") return verifyPinned(chainDer[0], mode.serverCertificateHashes, now, keys);

  const certs = chainDer.map((d) => parseCertificateCached(d));
  const leaf = certs[0];
  const store = resolveTrustStore(options.roots);

  checkValidity(leaf, now, "certificate");
  const publicKey = certificateKey(leaf, keys);
  checkLeafPurpose(leaf, purpose);

  let path: ParsedCertificate[];
  if (store.containsCertificate(leaf.der)) {
    // The exact certificate is trusted (e.g. a pinned self-signed certificate): nothing to build.
    path = [leaf];
  } else {
    if (leaf.basicConstraints?.ca) {
      throw badCertificate("a CA certificate (basicConstraints CA:TRUE) cannot be an end-entity certificate");
    }
    path = buildPath(leaf, certs.slice(1), store, now, purpose, keys);
  }

  if (ref && !leaf.subjectAltName) {
    throw badCertificate("certificate has no subjectAltName (the common name is not used)");
  }
  if (ref && !matchesReference(leaf.subjectAltName!, ref)) {
    const shown = "dns" in ref ? ref.dns : formatIp(ref.ip);
    throw badCertificate(`certificate is not valid for ${shown}`);
  }
  return { publicKey, leaf, path: path.map((c) => c.der) };
}

function formatIp(ip: Uint8Array): string {
  if (ip.length === 4) return ip.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] << 8) | ip[i + 1]).toString(16));
  return groups.join(":");
}

function checkLeafPurpose(leaf: ParsedCertificate, purpose: string): void {
  // RFC 9846 §4.4.2.2: "the digitalSignature bit MUST be set if the Key Usage extension is present".
  if (leaf.keyUsage !== undefined && !(leaf.keyUsage & KeyUsageBit.digitalSignature)) {
    throw unsupportedCertificate("certificate keyUsage does not allow digitalSignature");
  }
  // WebPKI (CA/B BR 7.1.2.7.10, rustls-webpki): the leaf's EKU must name the purpose; anyExtendedKeyUsage is not enough.
  if (leaf.extKeyUsage && !leaf.extKeyUsage.includes(purpose)) {
    const what = purpose === OID.serverAuth ? "serverAuth" : "clientAuth";
    throw unsupportedCertificate(`certificate extendedKeyUsage does not include ${what}`);
  }
}

function isSelfIssued(c: ParsedCertificate): boolean {
  return equalBytes(c.issuer, c.subject);
}

/**
 * Depth-first search from the leaf through the supplied intermediates (any order) to an anchor.
 * Every certificate whose subject is the child's issuer name is a candidate, tried in turn; its
 * signature on the child is checked before its constraints. A trust anchor whose key did not sign
 * the child is skipped silently (another CA with the same name); a peer-supplied intermediate whose
 * key did not is an error (bad_certificate), like any constraint it fails. On failure, throws the
 * error met deepest in the search (the most progress), or unknown_ca if no candidate issuer was
 * ever found.
 */
function buildPath(
  leaf: ParsedCertificate,
  intermediates: readonly ParsedCertificate[],
  store: TrustStore,
  now: number,
  purpose: string,
  keys: Map<ParsedCertificate, KeyObject>,
): ParsedCertificate[] {
  let best: { depth: number; error: TlsError } | undefined;
  let signatureChecks = 0;
  const sigCache = new Map<string, { readonly wrongKey?: TlsError; readonly thrown?: TlsError }>();

  const record = (depth: number, error: unknown) => {
    if (!(error instanceof TlsError)) throw error;
    if (!best || depth > best.depth) best = { depth, error };
  };

  /** {@link checkSignature} of `child` with `issuer`'s key, counted against the budget and cached. */
  const signedBy = (
    child: ParsedCertificate,
    childId: string,
    issuer: ParsedCertificate,
    issuerId: string,
  ): TlsError | undefined => {
    const id = `${childId}<${issuerId}`;
    const cached = sigCache.get(id);
    if (cached) {
      if (cached.thrown) throw cached.thrown;
      return cached.wrongKey;
    }
    if (++signatureChecks > MAX_SIGNATURE_CHECKS) {
      throw badCertificate("certificate path search exceeded its budget");
    }
    try {
      const wrongKey = checkSignature(child, certificateKey(issuer, keys));
      sigCache.set(id, { wrongKey });
      return wrongKey;
    } catch (e) {
      if (e instanceof TlsError) sigCache.set(id, { thrown: e });
      throw e;
    }
  };

  // Constraints on a prospective issuer at position `depth` of the path (leaf = 0).
  const checkIssuer = (issuer: ParsedCertificate, path: readonly ParsedCertificate[], anchor: boolean) => {
    const bc = issuer.basicConstraints;
    if (anchor) {
      // Trust anchors may be v1 certificates without extensions; one that says CA:FALSE cannot issue.
      if (bc && !bc.ca) throw badCertificate("trust anchor is not a CA (basicConstraints CA:FALSE)");
    } else if (!bc?.ca) {
      throw badCertificate("issuer is not a CA (basicConstraints CA:TRUE missing)");
    }
    if (issuer.keyUsage !== undefined && !(issuer.keyUsage & KeyUsageBit.keyCertSign)) {
      throw badCertificate("issuer keyUsage does not allow keyCertSign");
    }
    if (bc?.pathLength !== undefined) {
      const below = path.slice(1).filter((c) => !isSelfIssued(c)).length;
      if (below > bc.pathLength) throw badCertificate("issuer pathLenConstraint exceeded");
    }
    // EKU chaining (Mozilla/Chrome practice): an issuer's EKU, if present, must allow the purpose.
    if (
      issuer.extKeyUsage &&
      !issuer.extKeyUsage.includes(purpose) &&
      !issuer.extKeyUsage.includes(OID.anyExtendedKeyUsage)
    ) {
      throw unsupportedCertificate("issuer extendedKeyUsage does not allow this purpose");
    }
    checkValidity(issuer, now, anchor ? "trust anchor" : "intermediate certificate");
    if (issuer.nameConstraints) checkNameConstraints(issuer.nameConstraints, leaf);
  };

  const search = (
    path: ParsedCertificate[],
    used: Set<number>,
    childId: string,
  ): ParsedCertificate[] | null => {
    const child = path[path.length - 1];
    const depth = path.length;
    if (depth > MAX_CHAIN_LENGTH) return null;
    for (const [i, anchor] of store.issuersOf(child.issuer).entries()) {
      try {
        // An anchor whose key did not sign `child` is another CA that has the same name: skip it
        // (if none did, the issuer is unknown: unknown_ca). Its constraints matter once it did.
        if (signedBy(child, childId, anchor, `a${i}`)) continue;
        checkIssuer(anchor, path, true);
        return [...path, anchor];
      } catch (e) {
        record(depth, e);
      }
    }
    for (let i = 0; i < intermediates.length; i++) {
      const candidate = intermediates[i];
      if (used.has(i) || !equalBytes(candidate.subject, child.issuer)) continue;
      if (path.some((c) => equalBytes(c.der, candidate.der))) continue;
      try {
        // The signature first, so a same-named certificate with another key is reported as such.
        const wrongKey = signedBy(child, childId, candidate, `i${i}`);
        if (wrongKey) throw wrongKey;
        checkIssuer(candidate, path, false);
      } catch (e) {
        record(depth, e);
        continue;
      }
      used.add(i);
      const found = search([...path, candidate], used, `i${i}`);
      used.delete(i);
      if (found) return found;
    }
    return null;
  };

  const found = search([leaf], new Set(), "leaf");
  if (found) return found;
  throw best?.error ?? new TlsError(AlertDescription.unknown_ca, "certificate issuer is not trusted");
}

/** serverCertificateHashes (WebTransport), with Chromium's rules (webtransport-chromium-notes.md §7). */
function verifyPinned(
  leafDer: Uint8Array,
  hashes: readonly Uint8Array[],
  now: number,
  keys: Map<ParsedCertificate, KeyObject>,
): VerifiedCertificate {
  for (const h of hashes) {
    if (h.length !== 32)
      throw new QuicUsageError("serverCertificateHashes entries must be SHA-256 (32 bytes)");
  }
  const leaf = parseCertificate(leafDer);
  const digest = new Uint8Array(createHash("sha256").update(leafDer).digest());
  if (!hashes.some((h) => equalBytes(h, digest))) {
    // The hashes are this mode's trust anchors: "could not be matched with a known trust anchor".
    throw new TlsError(AlertDescription.unknown_ca, "certificate matches none of serverCertificateHashes");
  }
  if (leaf.notAfter.getTime() - leaf.notBefore.getTime() > MAX_HASH_PINNED_VALIDITY_MS) {
    throw unsupportedCertificate("certificate pinned by hash must have a validity period of at most 14 days");
  }
  checkValidity(leaf, now, "certificate");
  const publicKey = certificateKey(leaf, keys);
  const type = publicKey.asymmetricKeyType;
  const curve = publicKey.asymmetricKeyDetails?.namedCurve;
  const allowed = type === "ed25519" || (type === "ec" && (curve === "prime256v1" || curve === "secp384r1"));
  if (!allowed) {
    throw unsupportedCertificate(
      `certificate pinned by hash must use a P-256, P-384 or Ed25519 key, not ${describeKey(publicKey)}`,
    );
  }
  return { publicKey, leaf, path: [leaf.der] };
}
