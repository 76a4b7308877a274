/**
 * A self-signed development certificate usable with WebTransport's `serverCertificateHashes`
 * (Chromium: SHA-256 of the leaf, validity ≤ 14 days, currently valid, ECDSA/Ed25519 key — see
 * webtransport-chromium-notes.md §7) and with WebPKI-style verifiers that are told to trust it
 * (rustls-webpki rejects a CA:TRUE end-entity certificate, hence critical CA:FALSE).
 *
 * The certificate is encoded by a small DER writer here and signed with node:crypto, so generation
 * is synchronous and needs no WebCrypto or polyfill.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { domainToASCII } from "node:url";
import { QuicUsageError } from "../errors.ts";
import { parseIpAddress } from "./certificate-verifier.ts";

// ---------------------------------------------------------------------------------------------
// Minimal DER writer

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = concat(content);
  return concat([Uint8Array.of(tag), derLength(body.length), body]);
}

const seq = (...content: Uint8Array[]) => tlv(0x30, ...content);
const set = (...content: Uint8Array[]) => tlv(0x31, ...content);
const octetString = (b: Uint8Array) => tlv(0x04, b);
const bitString = (b: Uint8Array, unusedBits = 0) => tlv(0x03, Uint8Array.of(unusedBits), b);
const explicit = (n: number, ...content: Uint8Array[]) => tlv(0xa0 | n, ...content);
const TRUE = Uint8Array.of(0x01, 0x01, 0xff);

function oid(dotted: string): Uint8Array {
  const parts = dotted.split(".").map(Number);
  const bytes: number[] = [40 * parts[0] + parts[1]];
  for (const part of parts.slice(2)) {
    const groups: number[] = [];
    let v = part;
    do {
      groups.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < groups.length - 1; i++) groups[i] |= 0x80;
    bytes.push(...groups);
  }
  return tlv(0x06, Uint8Array.from(bytes));
}

/** UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). Seconds precision. */
function time(d: Date): Uint8Array {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  if (y >= 1950 && y < 2050) return tlv(0x17, ascii(`${p(y % 100)}${rest}`));
  return tlv(0x18, ascii(`${p(y, 4)}${rest}`));
}

// ---------------------------------------------------------------------------------------------

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

const OIDS = {
  commonName: "2.5.4.3",
  ecPublicKey: "1.2.840.10045.2.1",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

function sanEntry(host: string): Uint8Array {
  const ip = parseIpAddress(host);
  if (ip) return tlv(0x87, ip);
  const wildcard = host.startsWith("*.");
  const ascii = domainToASCII(wildcard ? host.slice(2) : host).toLowerCase();
  if (ascii === "" || ascii.length > 253 || ascii.split(".").some((l) => l.length === 0 || l.length > 63)) {
    throw new QuicUsageError(`invalid host ${JSON.stringify(host)} for a development certificate`);
  }
  const name = wildcard ? `*.${ascii}` : ascii;
  return tlv(
    0x82,
    Uint8Array.from(name, (c) => c.charCodeAt(0)),
  );
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

  const name = seq(
    set(seq(oid(OIDS.commonName), tlv(0x0c, new TextEncoder().encode("purequic development certificate")))),
  );
  const sigAlg = seq(oid(OIDS.ecdsaWithSha256));
  const extensions = seq(
    seq(oid(OIDS.basicConstraints), TRUE, octetString(seq())),
    seq(oid(OIDS.keyUsage), TRUE, octetString(bitString(Uint8Array.of(0x80), 7))),
    seq(oid(OIDS.extKeyUsage), octetString(seq(oid(OIDS.serverAuth)))),
    seq(oid(OIDS.subjectAltName), octetString(seq(...hosts.map(sanEntry)))),
  );
  const tbs = seq(
    explicit(0, tlv(0x02, Uint8Array.of(2))), // v3
    tlv(0x02, serial),
    sigAlg,
    name,
    seq(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(3, extensions),
  );
  const signature = new Uint8Array(sign("sha256", tbs, { key: privateKey, dsaEncoding: "der" }));
  const certificateDer = seq(tbs, sigAlg, bitString(signature));
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
