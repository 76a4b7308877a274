/**
 * A self-signed development certificate usable with WebTransport's `serverCertificateHashes`
 * (Chromium: SHA-256 of the leaf, validity ≤ 14 days, currently valid, ECDSA/Ed25519 key — see
 * webtransport-chromium-notes.md §7) and with WebPKI-style verifiers that are told to trust it
 * (rustls-webpki rejects a CA:TRUE end-entity certificate, hence critical CA:FALSE).
 *
 * The certificate is built with the @peculiar/asn1-x509 schemas, encoded by @peculiar/asn1-schema
 * and signed with node:crypto, so generation is synchronous and needs no WebCrypto or polyfill.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { domainToASCII } from "node:url";
import { id_ecdsaWithSHA256 } from "@peculiar/asn1-ecc";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_kp_serverAuth,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Time,
  Validity,
  Version,
} from "@peculiar/asn1-x509";
import { QuicUsageError } from "../errors.ts";
import { parseIpAddress } from "./certificate-verifier.ts";

export interface DevCertificateOptions {
  /** DNS names and IP literals for the subjectAltName. Default `["localhost", "127.0.0.1", "::1"]`. */
  readonly hosts?: readonly string[];
  /** Validity period in days, (0, 14]. Default 10. Chromium refuses more than 14 for hash pinning. */
  readonly days?: number;
  /** Generation time (default: the clock). The certificate is valid from one hour before it. */
  readonly now?: Date;
}

export interface DevCertificate {
  readonly certificateDer: Uint8Array;
  readonly certificatePem: string;
  /** ECDSA P-256 private key. */
  readonly privateKey: KeyObject;
  /** PKCS#8 PEM of the private key. */
  readonly privateKeyPem: string;
  /** base64(SHA-256(SubjectPublicKeyInfo DER)), as Chromium's `--ignore-certificate-errors-spki-list` wants. */
  readonly spkiSha256Base64: string;
  /** SHA-256 of the certificate DER: the value for WebTransport `serverCertificateHashes`. */
  readonly certificateSha256: Uint8Array;
  readonly certificateSha256Hex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const DAY_MS = 24 * 3600 * 1000;
/** How far notBefore is backdated, to tolerate clients whose clocks are a little behind. */
const BACKDATE_MS = 3600 * 1000;

function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function sanEntry(host: string): GeneralName {
  const ip = parseIpAddress(host);
  // The library takes addresses as text (it re-parses them): dotted quad or eight hex groups.
  if (ip) return new GeneralName({ iPAddress: ip.length === 4 ? ip.join(".") : ipv6Text(ip) });
  const wildcard = host.startsWith("*.");
  const ascii = domainToASCII(wildcard ? host.slice(2) : host).toLowerCase();
  if (ascii === "" || ascii.length > 253 || ascii.split(".").some((l) => l.length === 0 || l.length > 63)) {
    throw new QuicUsageError(`invalid host ${JSON.stringify(host)} for a development certificate`);
  }
  return new GeneralName({ dNSName: wildcard ? `*.${ascii}` : ascii });
}

function ipv6Text(ip: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i] << 8) | ip[i + 1]).toString(16));
  return groups.join(":");
}

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). */
function time(d: Date): Time {
  const y = d.getUTCFullYear();
  return new Time(y >= 1950 && y < 2050 ? { utcTime: d } : { generalTime: d });
}

function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/**
 * Generates a fresh self-signed ECDSA P-256 certificate: v3, random 128-bit serial, SHA-256
 * signature, critical basicConstraints CA:FALSE, critical keyUsage digitalSignature, EKU
 * serverAuth, subjectAltName with every host (DNS names and IP addresses), validity `days` days
 * starting one hour before `now`.
 */
export function generateDevCertificate(options: DevCertificateOptions = {}): DevCertificate {
  const hosts = options.hosts ?? ["localhost", "127.0.0.1", "::1"];
  const days = options.days ?? 10;
  if (!(days > 0 && days <= 14)) throw new QuicUsageError("days must be in (0, 14]");
  if (hosts.length === 0) throw new QuicUsageError("a development certificate needs at least one host");
  const now = options.now ?? new Date();
  if (Number.isNaN(now.getTime())) throw new QuicUsageError("invalid now");

  const notBefore = new Date(Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
  const notAfter = new Date(notBefore.getTime() + Math.floor((days * DAY_MS) / 1000) * 1000);

  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = new Uint8Array(publicKey.export({ type: "spki", format: "der" }));

  const serial = new Uint8Array(randomBytes(16));
  serial[0] &= 0x7f; // positive
  if (serial[0] === 0) serial[0] = 0x01; // minimal encoding, non-zero

  const name = new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({
        type: "2.5.4.3", // commonName
        value: new AttributeValue({ utf8String: "purequic development certificate" }),
      }),
    ]),
  ]);
  const signatureAlgorithm = new AlgorithmIdentifier({ algorithm: id_ecdsaWithSHA256 });
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serial.buffer,
    signature: signatureAlgorithm,
    issuer: name,
    validity: new Validity({ notBefore, notAfter }),
    subject: name,
    subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
    extensions: new Extensions([
      extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: false })),
      extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature)),
      extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage([id_kp_serverAuth])),
      extension(id_ce_subjectAltName, false, new SubjectAlternativeName(hosts.map(sanEntry))),
    ]),
  });
  // The library picks UTCTime for every year before 2050; RFC 5280 wants it for 1950–2049 only.
  tbs.validity.notBefore = time(notBefore);
  tbs.validity.notAfter = time(notAfter);
  const tbsDer = new Uint8Array(AsnConvert.serialize(tbs));
  const signatureValue = new Uint8Array(sign("sha256", tbsDer, { key: privateKey, dsaEncoding: "der" }))
    .buffer;
  const certificateDer = new Uint8Array(
    AsnConvert.serialize(new Certificate({ tbsCertificate: tbs, signatureAlgorithm, signatureValue })),
  );
  const certificateSha256 = new Uint8Array(createHash("sha256").update(certificateDer).digest());

  return {
    certificateDer,
    certificatePem: toPem("CERTIFICATE", certificateDer),
    privateKey,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    spkiSha256Base64: createHash("sha256").update(spki).digest("base64"),
    certificateSha256,
    certificateSha256Hex: Buffer.from(certificateSha256).toString("hex"),
    notBefore,
    notAfter,
  };
}
