/**
 * X.509 certificate parsing and path validation for the TLS 1.3 handshake (RFC 9846 §4.4.2.4,
 * RFC 5280 §6, WebPKI practice), plus the two non-PKI modes: "insecure" and WebTransport's
 * `serverCertificateHashes` (as Chromium enforces it).
 *
 * Design:
 * - Certificates are parsed by a small strict DER reader in this file, so that every failure on
 *   peer-supplied bytes is a {@link TlsError}(bad_certificate) and nothing else, and so the whole
 *   verification is synchronous (the handshake is sans-IO and cannot await).
 * - Signatures are checked with node:crypto (`crypto.verify` over the raw TBSCertificate, with
 *   keys from `createPublicKey(spki)`): OpenSSL covers RSASSA-PKCS1-v1_5, RSASSA-PSS (with the
 *   parameters from the AlgorithmIdentifier), ECDSA and Ed25519, synchronously.
 * - @peculiar/x509 is not used at run time: its API is asynchronous (WebCrypto), its parser is
 *   BER-lenient, and importing it throws unless a global Reflect-metadata polyfill is installed
 *   first (tsyringe), which a library must not do to its host. The tests use it as an
 *   independent implementation to build the certificates we verify.
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
// Minimal strict DER reader

/** A decoded TLV: tag byte, and offsets of the whole element and of its contents. */
interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
}

class DerReader {
  constructor(
    readonly buf: Uint8Array,
    private pos: number,
    private readonly end: number,
  ) {}

  static of(buf: Uint8Array, tlv?: Tlv): DerReader {
    return tlv ? new DerReader(buf, tlv.contentStart, tlv.end) : new DerReader(buf, 0, buf.length);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  peekTag(): number | undefined {
    return this.pos < this.end ? this.buf[this.pos] : undefined;
  }

  /** Reads one element; with `tag`, requires that tag. */
  read(tag?: number): Tlv {
    const { buf, end } = this;
    const start = this.pos;
    if (start + 2 > end) throw badCertificate("truncated DER element");
    const t = buf[start];
    if ((t & 0x1f) === 0x1f) throw badCertificate("high-tag-number DER form is not supported");
    if (tag !== undefined && t !== tag) {
      throw badCertificate(`unexpected DER tag 0x${t.toString(16)} (expected 0x${tag.toString(16)})`);
    }
    let p = start + 1;
    let len = buf[p++];
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) throw badCertificate("indefinite DER length");
      if (n > 4) throw badCertificate("DER length too large");
      if (p + n > end) throw badCertificate("truncated DER length");
      if (buf[p] === 0) throw badCertificate("non-minimal DER length");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
      if (len < 0x80) throw badCertificate("non-minimal DER length");
    }
    if (len > end - p) throw badCertificate("DER element overruns its container");
    this.pos = p + len;
    return { tag: t, start, contentStart: p, end: p + len };
  }

  /** Reads an element if the next tag is `tag`, else returns undefined. */
  optional(tag: number): Tlv | undefined {
    return this.peekTag() === tag ? this.read(tag) : undefined;
  }

  finish(what: string): void {
    if (this.pos !== this.end) throw badCertificate(`trailing data in ${what}`);
  }
}

const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
} as const;

function bytesOf(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.contentStart, tlv.end);
}
function rawOf(buf: Uint8Array, tlv: Tlv): Uint8Array {
  return buf.subarray(tlv.start, tlv.end);
}

function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0 || bytes.length > 64) throw badCertificate("bad OID length");
  const parts: number[] = [];
  let value = 0;
  let started = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (!started && b === 0x80) throw badCertificate("non-minimal OID component");
    started = true;
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw badCertificate("OID component too large");
    if ((b & 0x80) === 0) {
      parts.push(value);
      value = 0;
      started = false;
    } else if (i === bytes.length - 1) {
      throw badCertificate("truncated OID");
    }
  }
  const first = parts[0];
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...parts.slice(1)].join(".");
}

function readOid(r: DerReader): string {
  const t = r.read(TAG.OID);
  return decodeOid(bytesOf(r.buf, t));
}

function readBoolean(r: DerReader): boolean {
  const t = r.read(TAG.BOOLEAN);
  if (t.end - t.contentStart !== 1) throw badCertificate("bad BOOLEAN");
  const v = r.buf[t.contentStart];
  if (v !== 0 && v !== 0xff) throw badCertificate("non-DER BOOLEAN");
  return v === 0xff;
}

/** Small non-negative INTEGER (path lengths, versions). */
function readSmallUint(r: DerReader, tag: number = TAG.INTEGER): number {
  const t = r.read(tag);
  const b = bytesOf(r.buf, t);
  if (b.length === 0 || b.length > 4) throw badCertificate("bad or oversized INTEGER");
  if (b[0] & 0x80) throw badCertificate("negative INTEGER");
  if (b.length > 1 && b[0] === 0 && (b[1] & 0x80) === 0) throw badCertificate("non-minimal INTEGER");
  let v = 0;
  for (const x of b) v = v * 256 + x;
  return v;
}

function readBitString(r: DerReader): { bytes: Uint8Array; unusedBits: number } {
  const t = r.read(TAG.BIT_STRING);
  const b = bytesOf(r.buf, t);
  if (b.length === 0) throw badCertificate("empty BIT STRING");
  const unusedBits = b[0];
  if (unusedBits > 7 || (b.length === 1 && unusedBits !== 0)) throw badCertificate("bad BIT STRING");
  return { bytes: b.subarray(1), unusedBits };
}

function digits(s: string, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) throw badCertificate("bad digit in time");
    v = v * 10 + c;
  }
  return v;
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 §4.1.2.5 profiles them. */
function readTime(r: DerReader): Date {
  const t = r.read();
  const raw = bytesOf(r.buf, t);
  if (raw.length > 15) throw badCertificate("bad time length");
  const s = String.fromCharCode(...raw);
  let year: number;
  let rest: number;
  if (t.tag === TAG.UTC_TIME) {
    if (s.length !== 13) throw badCertificate("bad UTCTime");
    const yy = digits(s, 0, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = 2;
  } else if (t.tag === TAG.GENERALIZED_TIME) {
    if (s.length !== 15) throw badCertificate("bad GeneralizedTime");
    year = digits(s, 0, 4);
    rest = 4;
  } else {
    throw badCertificate("bad time type");
  }
  if (s[s.length - 1] !== "Z") throw badCertificate("time is not in UTC (Z)");
  const month = digits(s, rest, 2);
  const day = digits(s, rest + 2, 2);
  const hour = digits(s, rest + 4, 2);
  const minute = digits(s, rest + 6, 2);
  const second = digits(s, rest + 8, 2);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    throw badCertificate("time out of range");
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (new Date(ms).getUTCDate() !== day) throw badCertificate("invalid calendar date");
  return new Date(ms);
}

// ---------------------------------------------------------------------------------------------
// Certificate model

const OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  nameConstraints: "2.5.29.30",
  anyExtendedKeyUsage: "2.5.29.37.0",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
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

/** The parts of a certificate this verifier uses. All byte fields are views into `der`. */
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

function parseBasicConstraints(buf: Uint8Array): { ca: boolean; pathLength?: number } {
  const outer = DerReader.of(buf);
  const seq = outer.read(TAG.SEQUENCE);
  outer.finish("basicConstraints");
  const r = DerReader.of(buf, seq);
  const ca = r.peekTag() === TAG.BOOLEAN ? readBoolean(r) : false;
  const pathLength = r.peekTag() === TAG.INTEGER ? readSmallUint(r) : undefined;
  r.finish("basicConstraints");
  return pathLength === undefined ? { ca } : { ca, pathLength };
}

function parseKeyUsage(buf: Uint8Array): number {
  const r = DerReader.of(buf);
  const { bytes } = readBitString(r);
  r.finish("keyUsage");
  let bits = 0;
  for (let i = 0; i < Math.min(bytes.length, 2) * 8; i++) {
    if (bytes[i >> 3] & (0x80 >> (i & 7))) bits |= 1 << i;
  }
  return bits;
}

function parseExtKeyUsage(buf: Uint8Array): string[] {
  const outer = DerReader.of(buf);
  const seq = outer.read(TAG.SEQUENCE);
  outer.finish("extKeyUsage");
  const r = DerReader.of(buf, seq);
  const oids: string[] = [];
  while (!r.done) oids.push(readOid(r));
  if (oids.length === 0) throw badCertificate("empty extKeyUsage");
  return oids;
}

const GN = { dNSName: 0x82, iPAddress: 0x87 } as const;

function ia5(bytes: Uint8Array): string {
  for (const b of bytes) if (b > 0x7e || b < 0x20) throw badCertificate("non-printable IA5String in name");
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

function parseSubjectAltName(buf: Uint8Array): { dns: string[]; ip: Uint8Array[] } {
  const outer = DerReader.of(buf);
  const seq = outer.read(TAG.SEQUENCE);
  outer.finish("subjectAltName");
  const r = DerReader.of(buf, seq);
  const dns: string[] = [];
  const ip: Uint8Array[] = [];
  while (!r.done) {
    const gn = r.read();
    const v = bytesOf(buf, gn);
    if (gn.tag === GN.dNSName) dns.push(ia5(v).toLowerCase());
    else if (gn.tag === GN.iPAddress) {
      if (v.length !== 4 && v.length !== 16) throw badCertificate("bad iPAddress length in subjectAltName");
      ip.push(v);
    }
    // otherName, rfc822Name, URI, directoryName, … are irrelevant to TLS server identity.
  }
  return { dns, ip };
}

/** Parses NameConstraints; `handled` is false if it constrains name types we do not enforce. */
function parseNameConstraints(buf: Uint8Array): { nc: NameConstraints; handled: boolean } {
  const outer = DerReader.of(buf);
  const seq = outer.read(TAG.SEQUENCE);
  outer.finish("nameConstraints");
  const r = DerReader.of(buf, seq);
  let handled = true;
  const lists: { permitted: Subtree[]; excluded: Subtree[] } = { permitted: [], excluded: [] };
  let permitsDns = false;
  let permitsIp = false;
  for (const [tag, key] of [
    [0xa0, "permitted"],
    [0xa1, "excluded"],
  ] as const) {
    const list = r.optional(tag);
    if (!list) continue;
    const lr = DerReader.of(buf, list);
    if (lr.done) throw badCertificate("empty GeneralSubtrees");
    while (!lr.done) {
      const subtree = lr.read(TAG.SEQUENCE);
      const sr = DerReader.of(buf, subtree);
      const base = sr.read();
      // minimum MUST be 0 (absent) and maximum MUST be absent (RFC 5280 §4.2.1.10).
      if (!sr.done) throw badCertificate("GeneralSubtree minimum/maximum are not allowed");
      const v = bytesOf(buf, base);
      if (base.tag === GN.dNSName) {
        lists[key].push({ dns: ia5(v).toLowerCase() });
        if (key === "permitted") permitsDns = true;
      } else if (base.tag === GN.iPAddress) {
        if (v.length !== 8 && v.length !== 32) throw badCertificate("bad iPAddress constraint length");
        const half = v.length / 2;
        lists[key].push({ ip: v.subarray(0, half), mask: v.subarray(half) });
        if (key === "permitted") permitsIp = true;
      } else {
        handled = false; // directoryName, rfc822Name, URI, …: not enforced
      }
    }
  }
  r.finish("nameConstraints");
  return { nc: { ...lists, permitsDns, permitsIp }, handled };
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

function parseCertificateInner(der: Uint8Array): ParsedCertificate {
  const top = DerReader.of(der);
  const certTlv = top.read(TAG.SEQUENCE);
  top.finish("certificate");
  const cert = DerReader.of(der, certTlv);
  const tbsTlv = cert.read(TAG.SEQUENCE);
  const sigAlgTlv = cert.read(TAG.SEQUENCE);
  const sigBits = readBitString(cert);
  if (sigBits.unusedBits !== 0) throw badCertificate("signature BIT STRING has unused bits");
  cert.finish("certificate");

  const tbs = DerReader.of(der, tbsTlv);
  let version = 1;
  const versionTlv = tbs.optional(0xa0);
  if (versionTlv) {
    const vr = DerReader.of(der, versionTlv);
    version = readSmallUint(vr) + 1;
    vr.finish("version");
    if (version !== 2 && version !== 3) throw badCertificate(`unsupported certificate version ${version}`);
  }
  const serial = tbs.read(TAG.INTEGER);
  if (serial.end === serial.contentStart || serial.end - serial.contentStart > 21) {
    throw badCertificate("bad serial number length");
  }
  const innerSigAlg = tbs.read(TAG.SEQUENCE);
  const issuer = tbs.read(TAG.SEQUENCE);
  const validity = tbs.read(TAG.SEQUENCE);
  const vr = DerReader.of(der, validity);
  const notBefore = readTime(vr);
  const notAfter = readTime(vr);
  vr.finish("validity");
  const subject = tbs.read(TAG.SEQUENCE);
  const spki = tbs.read(TAG.SEQUENCE);
  tbs.optional(0x81); // issuerUniqueID
  tbs.optional(0x82); // subjectUniqueID
  const extsTlv = tbs.optional(0xa3);
  tbs.finish("TBSCertificate");

  const signatureAlgorithm = rawOf(der, sigAlgTlv);
  if (!equalBytes(signatureAlgorithm, rawOf(der, innerSigAlg))) {
    throw badCertificate("signatureAlgorithm differs from TBSCertificate.signature");
  }

  const result: {
    -readonly [K in keyof ParsedCertificate]: ParsedCertificate[K];
  } = {
    der,
    version,
    tbs: rawOf(der, tbsTlv),
    signatureAlgorithm,
    signature: sigBits.bytes,
    issuer: rawOf(der, issuer),
    subject: rawOf(der, subject),
    spki: rawOf(der, spki),
    notBefore,
    notAfter,
  };

  if (extsTlv) {
    if (version !== 3) throw badCertificate("extensions in a non-v3 certificate");
    const wrapper = DerReader.of(der, extsTlv);
    const extSeq = wrapper.read(TAG.SEQUENCE);
    wrapper.finish("extensions");
    // RFC 5280 wants at least one extension here, but common generators (e.g. @peculiar/x509) emit
    // an empty list; it is harmless, so it is accepted.
    const er = DerReader.of(der, extSeq);
    const seen = new Set<string>();
    while (!er.done) {
      const ext = DerReader.of(der, er.read(TAG.SEQUENCE));
      const oid = readOid(ext);
      const critical = ext.peekTag() === TAG.BOOLEAN ? readBoolean(ext) : false;
      const value = bytesOf(der, ext.read(TAG.OCTET_STRING));
      ext.finish("extension");
      if (seen.has(oid)) throw badCertificate(`duplicate extension ${oid}`);
      seen.add(oid);
      switch (oid) {
        case OID.basicConstraints:
          result.basicConstraints = parseBasicConstraints(value);
          break;
        case OID.keyUsage:
          result.keyUsage = parseKeyUsage(value);
          break;
        case OID.extKeyUsage:
          result.extKeyUsage = parseExtKeyUsage(value);
          break;
        case OID.subjectAltName:
          result.subjectAltName = parseSubjectAltName(value);
          break;
        case OID.nameConstraints: {
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

/** Public key of a certificate, checked against our key policy (→ unsupported_certificate). */
function certificateKey(cert: ParsedCertificate, cache: Map<ParsedCertificate, KeyObject>): KeyObject {
  const cached = cache.get(cert);
  if (cached) return cached;
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
  return key;
}

const HASH_OIDS: Record<string, { name: "sha256" | "sha384" | "sha512"; length: number }> = {
  "2.16.840.1.101.3.4.2.1": { name: "sha256", length: 32 },
  "2.16.840.1.101.3.4.2.2": { name: "sha384", length: 48 },
  "2.16.840.1.101.3.4.2.3": { name: "sha512", length: 64 },
};

const SIG_OIDS: Record<string, { kind: "pkcs1" | "ecdsa"; hash: "sha256" | "sha384" | "sha512" }> = {
  "1.2.840.113549.1.1.11": { kind: "pkcs1", hash: "sha256" },
  "1.2.840.113549.1.1.12": { kind: "pkcs1", hash: "sha384" },
  "1.2.840.113549.1.1.13": { kind: "pkcs1", hash: "sha512" },
  "1.2.840.10045.4.3.2": { kind: "ecdsa", hash: "sha256" },
  "1.2.840.10045.4.3.3": { kind: "ecdsa", hash: "sha384" },
  "1.2.840.10045.4.3.4": { kind: "ecdsa", hash: "sha512" },
};
const OID_RSASSA_PSS = "1.2.840.113549.1.1.10";
const OID_MGF1 = "1.2.840.113549.1.1.8";
const OID_ED25519 = "1.3.101.112";
/** MD2/MD5/SHA-1 signatures: RFC 9846 §4.4.2.4 says abort with bad_certificate. */
const WEAK_SIG_OIDS = new Set([
  "1.2.840.113549.1.1.2", // md2WithRSAEncryption
  "1.2.840.113549.1.1.4", // md5WithRSAEncryption
  "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
  "1.2.840.10045.4.1", // ecdsa-with-SHA1
  "1.2.840.10040.4.3", // dsa-with-sha1
  "1.3.14.3.2.29", // sha1WithRSASignature (OIW)
]);

/** AlgorithmIdentifier of a hash: OID with absent or NULL parameters. */
function readHashAlgorithm(r: DerReader): { name: "sha256" | "sha384" | "sha512"; length: number } {
  const ar = DerReader.of(r.buf, r.read(TAG.SEQUENCE));
  const oid = readOid(ar);
  if (!ar.done) ar.read(TAG.NULL);
  ar.finish("hash AlgorithmIdentifier");
  const h = HASH_OIDS[oid];
  if (!h) throw unsupportedCertificate(`unsupported RSASSA-PSS hash ${oid}`);
  return h;
}

/** RSASSA-PSS-params (RFC 4055 §3.1), restricted to SHA-2 with MGF1 using the same hash. */
function parsePssParams(r: DerReader): { hash: "sha256" | "sha384" | "sha512"; saltLength: number } {
  if (r.done) throw unsupportedCertificate("RSASSA-PSS with default (SHA-1) parameters");
  const pr = DerReader.of(r.buf, r.read(TAG.SEQUENCE));
  const hashTlv = pr.optional(0xa0);
  if (!hashTlv) throw unsupportedCertificate("RSASSA-PSS with SHA-1");
  const hash = readHashAlgorithm(DerReader.of(r.buf, hashTlv));
  const mgfTlv = pr.optional(0xa1);
  if (!mgfTlv) throw unsupportedCertificate("RSASSA-PSS with MGF1-SHA-1");
  const mr = DerReader.of(r.buf, DerReader.of(r.buf, mgfTlv).read(TAG.SEQUENCE));
  if (readOid(mr) !== OID_MGF1) throw unsupportedCertificate("RSASSA-PSS mask generation is not MGF1");
  const mgfHash = readHashAlgorithm(mr);
  mr.finish("MGF1 parameters");
  if (mgfHash.name !== hash.name) throw unsupportedCertificate("RSASSA-PSS MGF1 hash differs from the hash");
  let saltLength = 20;
  const saltTlv = pr.optional(0xa2);
  if (saltTlv) saltLength = readSmallUint(DerReader.of(r.buf, saltTlv));
  const trailerTlv = pr.optional(0xa3);
  if (trailerTlv && readSmallUint(DerReader.of(r.buf, trailerTlv)) !== 1) {
    throw badCertificate("RSASSA-PSS trailerField must be 1");
  }
  pr.finish("RSASSA-PSS-params");
  return { hash: hash.name, saltLength };
}

/**
 * Checks that `issuerKey` signed `cert`. Weak hash → bad_certificate (RFC 9846 §4.4.2.4); unknown
 * algorithm → unsupported_certificate; wrong signature or key/algorithm mismatch → bad_certificate.
 */
function checkSignature(cert: ParsedCertificate, issuerKey: KeyObject): void {
  const r = DerReader.of(cert.signatureAlgorithm);
  const ar = DerReader.of(cert.signatureAlgorithm, r.read(TAG.SEQUENCE));
  const oid = readOid(ar);
  const keyType = issuerKey.asymmetricKeyType;
  let ok: boolean;
  const data = cert.tbs;
  const sig = cert.signature;
  const mismatch = () =>
    badCertificate(`signature algorithm ${oid} does not match the issuer's ${describeKey(issuerKey)} key`);
  try {
    if (WEAK_SIG_OIDS.has(oid))
      throw badCertificate(`certificate signed with a weak (MD5/SHA-1) algorithm ${oid}`);
    const simple = SIG_OIDS[oid];
    if (simple) {
      if (simple.kind === "pkcs1") {
        if (!ar.done) ar.read(TAG.NULL);
        ar.finish("AlgorithmIdentifier");
        if (keyType !== "rsa") throw mismatch();
        ok = verify(simple.hash, data, { key: issuerKey, padding: cryptoConstants.RSA_PKCS1_PADDING }, sig);
      } else {
        ar.finish("AlgorithmIdentifier"); // ECDSA: parameters MUST be absent (RFC 5758 §3.2)
        if (keyType !== "ec") throw mismatch();
        ok = verify(simple.hash, data, { key: issuerKey, dsaEncoding: "der" }, sig);
      }
    } else if (oid === OID_RSASSA_PSS) {
      const { hash, saltLength } = parsePssParams(ar);
      ar.finish("AlgorithmIdentifier");
      if (keyType !== "rsa" && keyType !== "rsa-pss") throw mismatch();
      ok = verify(
        hash,
        data,
        { key: issuerKey, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength },
        sig,
      );
    } else if (oid === OID_ED25519) {
      ar.finish("AlgorithmIdentifier");
      if (keyType !== "ed25519") throw mismatch();
      ok = verify(null, data, issuerKey, sig);
    } else {
      throw unsupportedCertificate(`unsupported certificate signature algorithm ${oid}`);
    }
  } catch (e) {
    if (e instanceof TlsError) throw e;
    ok = false; // OpenSSL rejected the encoding or the key/parameter combination
  }
  if (!ok) throw badCertificate("certificate signature does not verify");
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
  const store = createTrustStore(list);
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

  const certs = chainDer.map((d) => parseCertificate(d));
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
 * On failure, throws the error met deepest in the search (the most progress), or unknown_ca if no
 * candidate issuer was ever found.
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
  const sigCache = new Map<string, TlsError | null>();

  const record = (depth: number, error: unknown) => {
    if (!(error instanceof TlsError)) throw error;
    if (!best || depth > best.depth) best = { depth, error };
  };

  const signedBy = (
    child: ParsedCertificate,
    childId: string,
    issuer: ParsedCertificate,
    issuerId: string,
  ) => {
    const id = `${childId}<${issuerId}`;
    const cached = sigCache.get(id);
    if (cached !== undefined) {
      if (cached) throw cached;
      return;
    }
    if (++signatureChecks > MAX_SIGNATURE_CHECKS) {
      throw badCertificate("certificate path search exceeded its budget");
    }
    try {
      checkSignature(child, certificateKey(issuer, keys));
      sigCache.set(id, null);
    } catch (e) {
      if (e instanceof TlsError) sigCache.set(id, e);
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
        checkIssuer(anchor, path, true);
        signedBy(child, childId, anchor, `a${i}`);
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
        checkIssuer(candidate, path, false);
        signedBy(child, childId, candidate, `i${i}`);
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
