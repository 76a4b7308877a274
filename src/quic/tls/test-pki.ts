/**
 * Test utility (not shipped code): builds keys and certificates at test time with node:crypto and
 * @peculiar/x509 (WebCrypto-based certificate generation, independent of our verifier's code).
 *
 * @peculiar/x509 2.2.0 needs a global Reflect-metadata polyfill before it is imported (tsyringe
 * throws otherwise) and the project ships none, so this module installs a minimal one (only when
 * absent) and imports the library dynamically after it.
 */
import { generateKeyPairSync, type KeyObject, webcrypto } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  GeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  Name,
  NameConstraints,
} from "@peculiar/asn1-x509";

type Algorithm = webcrypto.Algorithm;

import type * as X509 from "@peculiar/x509";

function installReflectMetadataShim(): void {
  const R = Reflect as unknown as Record<string, unknown>;
  if (typeof R.getMetadata === "function") return;
  const store = new WeakMap<object, Map<unknown, unknown>>();
  const define = (key: unknown, value: unknown, target: object) => {
    let m = store.get(target);
    if (!m) {
      m = new Map();
      store.set(target, m);
    }
    m.set(key, value);
  };
  const get = (key: unknown, target: object): unknown => {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
      const m = store.get(t);
      if (m?.has(key)) return m.get(key);
    }
    return undefined;
  };
  R.defineMetadata = define;
  R.getMetadata = get;
  R.getOwnMetadata = (key: unknown, target: object) => store.get(target)?.get(key);
  R.hasMetadata = (key: unknown, target: object) => get(key, target) !== undefined;
  R.metadata = (key: unknown, value: unknown) => (target: object) => define(key, value, target);
}

installReflectMetadataShim();
export const x509: typeof X509 = await import("@peculiar/x509");
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** A fixed reference time for tests: certificates default to being valid around it. */
export const NOW = new Date("2026-06-01T12:00:00Z");
export const DAY = 24 * 3600 * 1000;

export type KeyKind = "p256" | "p384" | "p521" | "ed25519" | "rsa2048" | "rsa1024" | "rsa-pss";

export interface TestKey {
  readonly kind: KeyKind;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

const keyCache = new Map<KeyKind, TestKey>();

/** A fresh key pair (`fresh`), or one cached per kind (RSA generation is slow). */
export function makeKey(kind: KeyKind, fresh = false): TestKey {
  const cached = keyCache.get(kind);
  if (cached && !fresh) return cached;
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  switch (kind) {
    case "p256":
      pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
      break;
    case "p384":
      pair = generateKeyPairSync("ec", { namedCurve: "P-384" });
      break;
    case "p521":
      pair = generateKeyPairSync("ec", { namedCurve: "P-521" });
      break;
    case "ed25519":
      pair = generateKeyPairSync("ed25519");
      break;
    case "rsa2048":
      pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
      break;
    case "rsa1024":
      pair = generateKeyPairSync("rsa", { modulusLength: 1024 });
      break;
    case "rsa-pss":
      pair = generateKeyPairSync("rsa-pss", {
        modulusLength: 2048,
        hashAlgorithm: "sha256",
        mgf1HashAlgorithm: "sha256",
        // @types/node declares saltLength as a string; Node wants a number.
        ...({ saltLength: 32 } as object),
      });
      break;
  }
  const key = { kind, ...pair };
  if (!fresh) keyCache.set(kind, key);
  return key;
}

export type RsaSignatureKind = "pkcs1" | "pss";

/** WebCrypto algorithm to import `key` with and to sign certificates with. */
function algorithms(key: TestKey, rsa: RsaSignatureKind): { importAlg: Algorithm; signAlg: Algorithm } {
  switch (key.kind) {
    case "p256":
      return {
        importAlg: { name: "ECDSA", namedCurve: "P-256" } as Algorithm,
        signAlg: { name: "ECDSA", hash: "SHA-256" } as Algorithm,
      };
    case "p384":
      return {
        importAlg: { name: "ECDSA", namedCurve: "P-384" } as Algorithm,
        signAlg: { name: "ECDSA", hash: "SHA-384" } as Algorithm,
      };
    case "p521":
      return {
        importAlg: { name: "ECDSA", namedCurve: "P-521" } as Algorithm,
        signAlg: { name: "ECDSA", hash: "SHA-512" } as Algorithm,
      };
    case "ed25519":
      return { importAlg: { name: "Ed25519" }, signAlg: { name: "Ed25519" } };
    case "rsa-pss":
      throw new Error("WebCrypto cannot import id-RSASSA-PSS keys; use them as leaf keys only");
    default:
      return rsa === "pss"
        ? {
            importAlg: { name: "RSA-PSS", hash: "SHA-256" } as Algorithm,
            signAlg: { name: "RSA-PSS", hash: "SHA-256", saltLength: 32 } as Algorithm,
          }
        : {
            importAlg: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as Algorithm,
            signAlg: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as Algorithm,
          };
  }
}

export interface IssueOptions {
  /** Distinguished name, e.g. "CN=leaf". */
  readonly subject: string;
  readonly key: TestKey;
  /** Issuer name and key; default: self-signed. */
  readonly issuer?: { readonly subject: string; readonly key: TestKey };
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** basicConstraints: omitted when undefined; `false` = critical CA:FALSE; `true`/object = CA:TRUE. */
  readonly ca?: boolean | { readonly pathLength: number };
  /** KeyUsage flags (x509.KeyUsageFlags); omitted when undefined. */
  readonly keyUsage?: number;
  /** ExtendedKeyUsage OIDs; omitted when undefined. */
  readonly eku?: readonly string[];
  readonly dns?: readonly string[];
  readonly ip?: readonly string[];
  /** How an RSA issuer signs; default pkcs1. */
  readonly rsaSignature?: RsaSignatureKind;
  readonly extensions?: readonly X509.Extension[];
}

export interface TestCert {
  readonly der: Uint8Array;
  readonly pem: string;
  readonly subject: string;
  readonly key: TestKey;
}

export const EKU = { serverAuth: "1.3.6.1.5.5.7.3.1", clientAuth: "1.3.6.1.5.5.7.3.2" } as const;

/** Issues one certificate with @peculiar/x509. */
export async function issue(o: IssueOptions): Promise<TestCert> {
  const issuer = o.issuer ?? { subject: o.subject, key: o.key };
  const { importAlg, signAlg } = algorithms(issuer.key, o.rsaSignature ?? "pkcs1");
  const signingKey = await webcrypto.subtle.importKey(
    "pkcs8",
    issuer.key.privateKey.export({ type: "pkcs8", format: "der" }),
    importAlg,
    false,
    ["sign"],
  );
  const extensions: X509.Extension[] = [];
  if (o.ca !== undefined) {
    const ca = o.ca !== false;
    const pathLength = typeof o.ca === "object" ? o.ca.pathLength : undefined;
    extensions.push(new x509.BasicConstraintsExtension(ca, pathLength, true));
  }
  if (o.keyUsage !== undefined) extensions.push(new x509.KeyUsagesExtension(o.keyUsage, true));
  if (o.eku) extensions.push(new x509.ExtendedKeyUsageExtension([...o.eku], false));
  if (o.dns || o.ip) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        ...(o.dns ?? []).map((value) => ({ type: "dns" as const, value })),
        ...(o.ip ?? []).map((value) => ({ type: "ip" as const, value })),
      ]),
    );
  }
  extensions.push(...(o.extensions ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    subject: o.subject,
    issuer: issuer.subject,
    notBefore: o.notBefore ?? new Date(NOW.getTime() - 30 * DAY),
    notAfter: o.notAfter ?? new Date(NOW.getTime() + 60 * DAY),
    publicKey: new Uint8Array(o.key.publicKey.export({ type: "spki", format: "der" })),
    signingKey,
    signingAlgorithm: signAlg,
    extensions,
  });
  return { der: new Uint8Array(cert.rawData), pem: cert.toString("pem"), subject: o.subject, key: o.key };
}

export interface Pki {
  readonly root: TestCert;
  readonly intermediate: TestCert;
  readonly leaf: TestCert;
}

export interface PkiOptions {
  readonly rootKey?: TestKey;
  readonly intermediateKey?: TestKey;
  readonly leafKey?: TestKey;
  readonly dns?: readonly string[];
  readonly ip?: readonly string[];
  /** Overrides for the leaf certificate. */
  readonly leaf?: Partial<IssueOptions>;
  /** Overrides for the intermediate certificate. */
  readonly intermediate?: Partial<IssueOptions>;
  readonly rsaSignature?: RsaSignatureKind;
  /** Distinguishes the names of several PKIs in one test. */
  readonly tag?: string;
}

/** root (self-signed CA) → intermediate CA → leaf (serverAuth + clientAuth, given SANs). */
export async function buildPki(o: PkiOptions = {}): Promise<Pki> {
  const tag = o.tag ?? "test";
  const caUsage = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
  const root = await issue({
    subject: `CN=${tag} root CA`,
    key: o.rootKey ?? makeKey("p256"),
    ca: true,
    keyUsage: caUsage,
    notBefore: new Date(NOW.getTime() - 365 * DAY),
    notAfter: new Date(NOW.getTime() + 3650 * DAY),
  });
  const intermediate = await issue({
    subject: `CN=${tag} intermediate CA`,
    key: o.intermediateKey ?? makeKey("p384"),
    issuer: root,
    ca: { pathLength: 0 },
    keyUsage: caUsage,
    rsaSignature: o.rsaSignature,
    notBefore: new Date(NOW.getTime() - 100 * DAY),
    notAfter: new Date(NOW.getTime() + 1000 * DAY),
    ...o.intermediate,
  });
  const leaf = await issue({
    subject: `CN=${tag} leaf`,
    key: o.leafKey ?? makeKey("p256", true),
    issuer: intermediate,
    ca: false,
    keyUsage: x509.KeyUsageFlags.digitalSignature,
    eku: [EKU.serverAuth, EKU.clientAuth],
    dns: o.dns ?? ["example.com", "*.example.org"],
    ip: o.ip ?? ["192.0.2.1", "2001:db8::1"],
    rsaSignature: o.rsaSignature,
    ...o.leaf,
  });
  return { root, intermediate, leaf };
}

export type ConstraintName =
  | { readonly dns: string }
  | { readonly ip: readonly number[] }
  | { readonly dn: true };

/** GeneralName for a constraint; an `ip` is address bytes then (contiguous) mask bytes. */
function constraintBase(n: ConstraintName): GeneralName {
  if ("dns" in n) return new GeneralName({ dNSName: n.dns });
  if ("ip" in n) {
    // The library takes address ranges as CIDR text.
    const half = n.ip.length / 2;
    const addr = n.ip.slice(0, half);
    const prefix = n.ip.slice(half).reduce((bits, b) => bits + b.toString(2).replaceAll("0", "").length, 0);
    const text =
      half === 4
        ? addr.join(".")
        : Array.from({ length: 8 }, (_, i) => ((addr[2 * i] << 8) | addr[2 * i + 1]).toString(16)).join(":");
    return new GeneralName({ iPAddress: `${text}/${prefix}` });
  }
  // directoryName (an empty Name): a constraint type our verifier does not enforce
  return new GeneralName({ directoryName: new Name() });
}

/** nameConstraints extension (2.5.29.30). `ip` entries are address bytes followed by mask bytes. */
export function nameConstraintsExtension(
  c: { permitted?: readonly ConstraintName[]; excluded?: readonly ConstraintName[] },
  critical = true,
): X509.Extension {
  const subtrees = (list: readonly ConstraintName[] | undefined) =>
    list && new GeneralSubtrees(list.map((n) => new GeneralSubtree({ base: constraintBase(n) })));
  const value = new NameConstraints({
    permittedSubtrees: subtrees(c.permitted),
    excludedSubtrees: subtrees(c.excluded),
  });
  return new x509.Extension(id_ce_nameConstraints, critical, AsnConvert.serialize(value));
}

/** SHA-256 of bytes. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await webcrypto.subtle.digest("SHA-256", data));
}
