import { createHash, createPublicKey, webcrypto } from "node:crypto";
import { rootCertificates } from "node:tls";
import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import {
  createTrustStore,
  defaultTrustStore,
  dnsNameMatches,
  MAX_CHAIN_LENGTH,
  parseCertificate,
  parseIpAddress,
  type ServerCertificateVerifyOptions,
  verifyClientCertificateChain,
  verifyServerCertificateChain,
} from "./certificate-verifier.ts";
import { generateDevCertificate } from "./dev-certificate.ts";
import {
  buildPki,
  DAY,
  EKU,
  issue,
  makeKey,
  NOW,
  nameConstraintsExtension,
  type Pki,
  type TestCert,
  x509,
} from "./test-pki.ts";

const A = AlertDescription;

function alertOf(fn: () => unknown): number | "ok" {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (e instanceof TlsError) return e.alert;
    throw e;
  }
}

function verifyServer(
  chain: readonly TestCert[],
  roots: readonly TestCert[],
  serverName = "example.com",
  extra: Partial<ServerCertificateVerifyOptions> = {},
) {
  return verifyServerCertificateChain(
    chain.map((c) => c.der),
    { serverName, roots: roots.map((r) => r.pem), now: NOW, ...extra },
  );
}

const sigAlgName = (der: Uint8Array) =>
  (new x509.X509Certificate(der).signatureAlgorithm as unknown as { name: string }).name;

const spkiOf = (c: TestCert) => c.key.publicKey.export({ type: "spki", format: "der" });

let pki: Pki;
beforeAll(async () => {
  pki = await buildPki();
});

describe("normal mode: path building", () => {
  it("accepts a good chain and returns the leaf key and the path", () => {
    const v = verifyServer([pki.leaf, pki.intermediate], [pki.root]);
    expect(v.publicKey.export({ type: "spki", format: "der" }).equals(spkiOf(pki.leaf))).toBe(true);
    expect(v.path.map((d) => Buffer.from(d).toString("hex"))).toEqual(
      [pki.leaf, pki.intermediate, pki.root].map((c) => Buffer.from(c.der).toString("hex")),
    );
  });

  it("accepts roots as DER and as a prebuilt trust store, and a root included in the chain", () => {
    const der = [pki.leaf.der, pki.intermediate.der];
    expect(() =>
      verifyServerCertificateChain(der, { serverName: "example.com", roots: [pki.root.der], now: NOW }),
    ).not.toThrow();
    const store = createTrustStore([pki.root.pem]);
    expect(store.size).toBe(1);
    expect(() =>
      verifyServerCertificateChain(der, { serverName: "example.com", roots: store, now: NOW }),
    ).not.toThrow();
    expect(alertOf(() => verifyServer([pki.leaf, pki.intermediate, pki.root], [pki.root]))).toBe("ok");
  });

  it("finds intermediates in any order and ignores unrelated extra certificates", async () => {
    const root = pki.root;
    const int1 = await issue({
      subject: "CN=int1",
      key: makeKey("p256", true),
      issuer: root,
      ca: { pathLength: 1 },
      keyUsage: x509.KeyUsageFlags.keyCertSign,
    });
    const int2 = await issue({
      subject: "CN=int2",
      key: makeKey("ed25519", true),
      issuer: int1,
      ca: { pathLength: 0 },
    });
    const leaf = await issue({
      subject: "CN=leaf2",
      key: makeKey("p256", true),
      issuer: int2,
      ca: false,
      dns: ["example.com"],
    });
    const unrelated = (await buildPki({ tag: "other" })).intermediate;
    const v = verifyServer([leaf, unrelated, int1, int2], [root]);
    expect(v.path.length).toBe(4);
    expect(Buffer.from(v.path[1]).equals(Buffer.from(int2.der))).toBe(true);
    expect(Buffer.from(v.path[2]).equals(Buffer.from(int1.der))).toBe(true);
  });

  it("unknown CA → unknown_ca (wrong root, missing intermediate, default root store)", async () => {
    const other = await buildPki({ tag: "other" });
    expect(alertOf(() => verifyServer([pki.leaf, pki.intermediate], [other.root]))).toBe(A.unknown_ca);
    expect(alertOf(() => verifyServer([pki.leaf], [pki.root]))).toBe(A.unknown_ca);
    expect(
      alertOf(() =>
        verifyServerCertificateChain([pki.leaf.der, pki.intermediate.der], {
          serverName: "example.com",
          now: NOW,
        }),
      ),
    ).toBe(A.unknown_ca);
  });

  it("skips a same-named trust anchor whose key did not sign (unknown_ca if no anchor did)", () => {
    // Two self-signed CA:FALSE development certificates (SAN localhost) with the same subject name.
    const mine = generateDevCertificate({ now: NOW });
    const other = generateDevCertificate({ now: NOW });
    const subjectOf = (der: Uint8Array) => Buffer.from(parseCertificate(der).subject);
    expect(subjectOf(mine.certificateDer).equals(subjectOf(other.certificateDer))).toBe(true);
    const run = (roots: string[]) =>
      alertOf(() =>
        verifyServerCertificateChain([mine.certificateDer], { serverName: "localhost", roots, now: NOW }),
      );
    expect(run([other.certificatePem])).toBe(A.unknown_ca);
    expect(run([mine.certificatePem])).toBe("ok");
    expect(run([other.certificatePem, mine.certificatePem])).toBe("ok");
  });

  it("tries every same-named trust anchor until one whose key signed", async () => {
    const impostor = await issue({ subject: pki.root.subject, key: makeKey("p384", true), ca: true });
    expect(alertOf(() => verifyServer([pki.leaf, pki.intermediate], [impostor, pki.root]))).toBe("ok");
    expect(alertOf(() => verifyServer([pki.leaf, pki.intermediate], [pki.root, impostor]))).toBe("ok");
    expect(alertOf(() => verifyServer([pki.leaf, pki.intermediate], [impostor]))).toBe(A.unknown_ca);
  });

  it("rejects a chain longer than MAX_CHAIN_LENGTH (bad_certificate) and an empty one (decode_error)", () => {
    const chain = new Array(MAX_CHAIN_LENGTH + 1).fill(pki.intermediate);
    chain[0] = pki.leaf;
    expect(alertOf(() => verifyServer(chain, [pki.root]))).toBe(A.bad_certificate);
    expect(alertOf(() => verifyServerCertificateChain([], { serverName: "example.com" }))).toBe(
      A.decode_error,
    );
    expect(alertOf(() => verifyClientCertificateChain([], {}))).toBe(A.certificate_required);
  });

  it("requires serverName in normal mode", () => {
    expect(() => verifyServerCertificateChain([pki.leaf.der], { roots: [pki.root.pem], now: NOW })).toThrow(
      QuicUsageError,
    );
  });

  it("uses `now` and never the clock when it is given", () => {
    vi.useFakeTimers({ now: new Date("2099-01-01T00:00:00Z") });
    try {
      expect(alertOf(() => verifyServer([pki.leaf, pki.intermediate], [pki.root]))).toBe("ok");
      expect(
        alertOf(() =>
          verifyServerCertificateChain([pki.leaf.der, pki.intermediate.der], {
            serverName: "example.com",
            roots: [pki.root.pem],
          }),
        ),
      ).toBe(A.certificate_expired);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("normal mode: validity", () => {
  it("expired / not yet valid leaf → certificate_expired", () => {
    const leafNotAfter = parseCertificate(pki.leaf.der).notAfter.getTime();
    const leafNotBefore = parseCertificate(pki.leaf.der).notBefore.getTime();
    const at = (t: number) =>
      alertOf(() =>
        verifyServer([pki.leaf, pki.intermediate], [pki.root], "example.com", { now: new Date(t) }),
      );
    expect(at(leafNotAfter)).toBe("ok"); // notAfter is inclusive (RFC 5280 §4.1.2.5)
    expect(at(leafNotAfter + 1000)).toBe(A.certificate_expired);
    expect(at(leafNotBefore)).toBe("ok");
    expect(at(leafNotBefore - 1000)).toBe(A.certificate_expired);
  });

  it("expired intermediate or root → certificate_expired", async () => {
    const intermediate = await issue({
      subject: pki.intermediate.subject,
      key: pki.intermediate.key,
      issuer: pki.root,
      ca: true,
      notBefore: new Date(NOW.getTime() - 100 * DAY),
      notAfter: new Date(NOW.getTime() - DAY),
    });
    expect(alertOf(() => verifyServer([pki.leaf, intermediate], [pki.root]))).toBe(A.certificate_expired);
    const root = await issue({
      subject: pki.root.subject,
      key: pki.root.key,
      ca: true,
      notBefore: new Date(NOW.getTime() + DAY),
      notAfter: new Date(NOW.getTime() + 100 * DAY),
    });
    expect(alertOf(() => verifyServer([pki.leaf, pki.intermediate], [root]))).toBe(A.certificate_expired);
  });
});

describe("normal mode: server names", () => {
  const check = (name: string) => alertOf(() => verifyServer([pki.leaf, pki.intermediate], [pki.root], name));

  it("matches DNS names case-insensitively, with or without a trailing dot", () => {
    expect(check("example.com")).toBe("ok");
    expect(check("EXAMPLE.Com")).toBe("ok");
    expect(check("example.com.")).toBe("ok");
    expect(check("example.net")).toBe(A.bad_certificate);
    expect(check("www.example.com")).toBe(A.bad_certificate);
  });

  it("applies the wildcard only to exactly one left-most label", () => {
    expect(check("a.example.org")).toBe("ok");
    expect(check("A.EXAMPLE.ORG")).toBe("ok");
    expect(check("example.org")).toBe(A.bad_certificate);
    expect(check("a.b.example.org")).toBe(A.bad_certificate);
  });

  it("does not treat partial-label or too-short wildcards as wildcards", async () => {
    expect(dnsNameMatches("f*.example.com", "foo.example.com")).toBe(false);
    expect(dnsNameMatches("f*.example.com", "f*.example.com")).toBe(true); // literal comparison only
    expect(dnsNameMatches("*.com", "example.com")).toBe(false);
    expect(dnsNameMatches("*.*.example.com", "a.b.example.com")).toBe(false);
    expect(dnsNameMatches("a.*.example.com", "a.b.example.com")).toBe(false);
    const p = await buildPki({ tag: "wild", dns: ["f*.example.com", "*.com"], ip: [] });
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root], "foo.example.com"))).toBe(
      A.bad_certificate,
    );
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root], "example.com"))).toBe(
      A.bad_certificate,
    );
  });

  it("converts IDNs to A-labels before matching", async () => {
    const p = await buildPki({ tag: "idn", dns: ["xn--bcher-kva.example"], ip: [] });
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root], "bücher.example"))).toBe("ok");
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root], "bucher.example"))).toBe(
      A.bad_certificate,
    );
  });

  it("matches IPv4 and IPv6 literals against iPAddress SANs only, normalised", () => {
    expect(check("192.0.2.1")).toBe("ok");
    expect(check("192.0.2.2")).toBe(A.bad_certificate);
    expect(check("2001:db8::1")).toBe("ok");
    expect(check("2001:0DB8:0:0:0:0:0:1")).toBe("ok");
    expect(check("[2001:db8::1]")).toBe("ok");
    expect(check("2001:db8::2")).toBe(A.bad_certificate);
    // An IPv4-mapped IPv6 address is a different identity from the IPv4 SAN.
    expect(check("::ffff:192.0.2.1")).toBe(A.bad_certificate);
  });

  it("never matches an IP literal against a dNSName SAN, nor uses the common name", async () => {
    const p = await buildPki({ tag: "ipdns", dns: ["192.0.2.7"], ip: [] });
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root], "192.0.2.7"))).toBe(
      A.bad_certificate,
    );
    const noSan = await issue({
      subject: "CN=example.com",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      ca: false,
    });
    expect(alertOf(() => verifyServer([noSan, pki.intermediate], [pki.root], "example.com"))).toBe(
      A.bad_certificate,
    );
  });

  it("rejects a server name that is neither a DNS name nor an IP literal (local misuse)", () => {
    expect(() => verifyServer([pki.leaf, pki.intermediate], [pki.root], "a b")).toThrow(QuicUsageError);
    expect(() => verifyServer([pki.leaf, pki.intermediate], [pki.root], "a..b")).toThrow(QuicUsageError);
    expect(() => verifyServer([pki.leaf, pki.intermediate], [pki.root], "*.example.org")).toThrow(
      QuicUsageError,
    );
  });

  it("parses IP literals strictly", () => {
    expect(parseIpAddress("10.0.0.1")).toEqual(Uint8Array.of(10, 0, 0, 1));
    expect(parseIpAddress("010.0.0.1")).toBeNull();
    expect(parseIpAddress("256.0.0.1")).toBeNull();
    expect(parseIpAddress("1.2.3")).toBeNull();
    expect(parseIpAddress("::")).toEqual(new Uint8Array(16));
    expect(parseIpAddress("::ffff:1.2.3.4")).toEqual(
      Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4),
    );
    expect(parseIpAddress("1:2:3:4:5:6:7:8")?.[15]).toBe(8);
    expect(parseIpAddress("1:2:3:4:5:6:7:8:9")).toBeNull();
    expect(parseIpAddress("1::2::3")).toBeNull();
    expect(parseIpAddress("12345::")).toBeNull();
    expect(parseIpAddress("example.com")).toBeNull();
  });
});

describe("normal mode: key usage and constraints", () => {
  it("leaf EKU without serverAuth → unsupported_certificate; no EKU at all is fine", async () => {
    const clientOnly = await issue({
      subject: "CN=c",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      ca: false,
      eku: [EKU.clientAuth],
      dns: ["example.com"],
    });
    expect(alertOf(() => verifyServer([clientOnly, pki.intermediate], [pki.root]))).toBe(
      A.unsupported_certificate,
    );
    expect(
      alertOf(() =>
        verifyClientCertificateChain([clientOnly.der, pki.intermediate.der], {
          roots: [pki.root.pem],
          now: NOW,
        }),
      ),
    ).toBe("ok");
    const noEku = await issue({
      subject: "CN=n",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      dns: ["example.com"],
    });
    expect(alertOf(() => verifyServer([noEku, pki.intermediate], [pki.root]))).toBe("ok");
    const serverOnly = await issue({
      subject: "CN=s",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      eku: [EKU.serverAuth],
    });
    expect(
      alertOf(() =>
        verifyClientCertificateChain([serverOnly.der, pki.intermediate.der], {
          roots: [pki.root.pem],
          now: NOW,
        }),
      ),
    ).toBe(A.unsupported_certificate);
  });

  it("leaf keyUsage without digitalSignature → unsupported_certificate", async () => {
    const leaf = await issue({
      subject: "CN=ku",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      keyUsage: x509.KeyUsageFlags.keyEncipherment,
      dns: ["example.com"],
    });
    expect(alertOf(() => verifyServer([leaf, pki.intermediate], [pki.root]))).toBe(A.unsupported_certificate);
  });

  it("issuer without CA:TRUE, or with keyUsage lacking keyCertSign → bad_certificate", async () => {
    const leafKey = makeKey("p256", true);
    for (const intermediateOverrides of [
      { ca: false },
      { ca: undefined },
      { keyUsage: x509.KeyUsageFlags.digitalSignature },
    ]) {
      const intermediate = await issue({
        subject: "CN=not a CA",
        key: makeKey("p384"),
        issuer: pki.root,
        ca: true,
        ...intermediateOverrides,
      });
      const leaf = await issue({ subject: "CN=l", key: leafKey, issuer: intermediate, dns: ["example.com"] });
      expect(alertOf(() => verifyServer([leaf, intermediate], [pki.root]))).toBe(A.bad_certificate);
    }
  });

  it("enforces pathLenConstraint", async () => {
    // pki.intermediate has pathLength 0: it cannot issue another CA that issues the leaf.
    const sub = await issue({ subject: "CN=sub", key: makeKey("p256"), issuer: pki.intermediate, ca: true });
    const leaf = await issue({
      subject: "CN=l",
      key: makeKey("p256", true),
      issuer: sub,
      dns: ["example.com"],
    });
    expect(alertOf(() => verifyServer([leaf, sub, pki.intermediate], [pki.root]))).toBe(A.bad_certificate);
  });

  it("an intermediate whose EKU excludes serverAuth → unsupported_certificate", async () => {
    const p = await buildPki({ tag: "eku", intermediate: { eku: [EKU.clientAuth] } });
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root]))).toBe(A.unsupported_certificate);
  });

  it("rejects a CA:TRUE end-entity certificate unless that exact certificate is a trust anchor", async () => {
    const caLeaf = await issue({
      subject: "CN=ca leaf",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      ca: true,
      dns: ["example.com"],
    });
    expect(alertOf(() => verifyServer([caLeaf, pki.intermediate], [pki.root]))).toBe(A.bad_certificate);
    // `openssl req -x509` style self-signed CA:TRUE certificate, pinned as a root.
    const selfSigned = await issue({
      subject: "CN=self",
      key: makeKey("p256", true),
      ca: true,
      dns: ["example.com"],
    });
    expect(alertOf(() => verifyServer([selfSigned], [selfSigned]))).toBe("ok");
    expect(alertOf(() => verifyServer([selfSigned], [selfSigned], "other.example"))).toBe(A.bad_certificate);
  });

  it("accepts a self-signed CA:FALSE certificate configured as its own root", async () => {
    const selfSigned = await issue({
      subject: "CN=self2",
      key: makeKey("ed25519", true),
      ca: false,
      dns: ["localhost"],
    });
    const v = verifyServer([selfSigned], [selfSigned], "localhost");
    expect(v.publicKey.asymmetricKeyType).toBe("ed25519");
  });

  it("rejects unknown critical extensions and weak leaf keys", async () => {
    const critical = await issue({
      subject: "CN=crit",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      dns: ["example.com"],
      extensions: [new x509.Extension("1.2.3.4.5", true, Uint8Array.of(0x05, 0x00))],
    });
    expect(alertOf(() => verifyServer([critical, pki.intermediate], [pki.root]))).toBe(A.bad_certificate);
    const nonCritical = await issue({
      subject: "CN=noncrit",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      dns: ["example.com"],
      extensions: [new x509.Extension("1.2.3.4.5", false, Uint8Array.of(0x05, 0x00))],
    });
    expect(alertOf(() => verifyServer([nonCritical, pki.intermediate], [pki.root]))).toBe("ok");
    const weak = await issue({
      subject: "CN=weak",
      key: makeKey("rsa1024"),
      issuer: pki.intermediate,
      dns: ["example.com"],
    });
    expect(alertOf(() => verifyServer([weak, pki.intermediate], [pki.root]))).toBe(A.unsupported_certificate);
  });

  it("enforces DNS and IP name constraints, and refuses critical constraints it cannot enforce", async () => {
    const constrained = (c: Parameters<typeof nameConstraintsExtension>[0], critical = true) =>
      buildPki({
        tag: `nc${Math.random()}`,
        dns: ["www.example.com"],
        ip: ["192.0.2.1"],
        intermediate: { extensions: [nameConstraintsExtension(c, critical)] },
      });
    const run = (p: Pki, name = "www.example.com") =>
      alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root], name));
    expect(
      run(
        await constrained({ permitted: [{ dns: "example.com" }, { ip: [192, 0, 2, 0, 255, 255, 255, 0] }] }),
      ),
    ).toBe("ok");
    expect(run(await constrained({ permitted: [{ dns: "example.net" }] }))).toBe(A.bad_certificate);
    expect(run(await constrained({ permitted: [{ dns: ".example.com" }] }))).toBe("ok");
    expect(run(await constrained({ excluded: [{ dns: "www.example.com" }] }))).toBe(A.bad_certificate);
    expect(run(await constrained({ permitted: [{ ip: [198, 51, 100, 0, 255, 255, 255, 0] }] }))).toBe(
      A.bad_certificate,
    );
    expect(run(await constrained({ excluded: [{ ip: [192, 0, 2, 0, 255, 255, 255, 0] }] }))).toBe(
      A.bad_certificate,
    );
    expect(run(await constrained({ permitted: [{ dn: true }] }, true))).toBe(A.bad_certificate);
    expect(run(await constrained({ permitted: [{ dn: true }] }, false))).toBe("ok");
  });
});

describe("normal mode: signatures", () => {
  it("bad signature in the chain → bad_certificate", async () => {
    // An impostor intermediate: same name as the real one, different key.
    const impostor = await issue({
      subject: pki.intermediate.subject,
      key: makeKey("p384", true),
      issuer: pki.root,
      ca: true,
    });
    expect(alertOf(() => verifyServer([pki.leaf, impostor], [pki.root]))).toBe(A.bad_certificate);
    expect(() => verifyServer([pki.leaf, impostor], [pki.root])).toThrow(/signature does not verify/);
    // A flipped bit in the leaf's signature value.
    const tampered = pki.leaf.der.slice();
    tampered[tampered.length - 3] ^= 0x01;
    expect(
      alertOf(() =>
        verifyServerCertificateChain([tampered, pki.intermediate.der], {
          serverName: "example.com",
          roots: [pki.root.pem],
          now: NOW,
        }),
      ),
    ).toBe(A.bad_certificate);
    // A flipped bit in the signed part (a SAN byte) also breaks the signature.
    const tbsTampered = pki.leaf.der.slice();
    const at = Buffer.from(tbsTampered).indexOf("example.com");
    tbsTampered[at] ^= 0x20; // "Example.com"
    expect(
      alertOf(() =>
        verifyServerCertificateChain([tbsTampered, pki.intermediate.der], {
          serverName: "example.com",
          roots: [pki.root.pem],
          now: NOW,
        }),
      ),
    ).toBe(A.bad_certificate);
  });

  it("accepts RSASSA-PKCS1-v1_5-signed chains (RSA root and intermediate)", async () => {
    const p = await buildPki({
      tag: "rsa",
      rootKey: makeKey("rsa2048"),
      intermediateKey: makeKey("rsa2048"),
      rsaSignature: "pkcs1",
    });
    expect(sigAlgName(p.leaf.der)).toBe("RSASSA-PKCS1-v1_5");
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root]))).toBe("ok");
  });

  it("accepts RSASSA-PSS-signed chains", async () => {
    const p = await buildPki({
      tag: "pss",
      rootKey: makeKey("rsa2048"),
      intermediateKey: makeKey("rsa2048"),
      rsaSignature: "pss",
    });
    expect(sigAlgName(p.leaf.der)).toBe("RSA-PSS");
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root]))).toBe("ok");
  });

  it("accepts Ed25519 and P-521 issuers", async () => {
    const p = await buildPki({ tag: "ed", rootKey: makeKey("p521"), intermediateKey: makeKey("ed25519") });
    expect(alertOf(() => verifyServer([p.leaf, p.intermediate], [p.root]))).toBe("ok");
  });

  it("rejects SHA-1-signed certificates → bad_certificate", async () => {
    const cert = await x509.X509CertificateGenerator.create({
      subject: "CN=sha1",
      issuer: pki.intermediate.subject,
      notBefore: new Date(NOW.getTime() - DAY),
      notAfter: new Date(NOW.getTime() + DAY),
      publicKey: new Uint8Array(makeKey("p256", true).publicKey.export({ type: "spki", format: "der" })),
      signingKey: await webcrypto.subtle.importKey(
        "pkcs8",
        pki.intermediate.key.privateKey.export({ type: "pkcs8", format: "der" }),
        { name: "ECDSA", namedCurve: "P-384" },
        false,
        ["sign"],
      ),
      signingAlgorithm: { name: "ECDSA", hash: "SHA-1" } as webcrypto.Algorithm,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "example.com" }])],
    });
    const der = new Uint8Array(cert.rawData);
    expect(sigAlgName(der)).toBe("ECDSA");
    expect(
      alertOf(() =>
        verifyServerCertificateChain([der, pki.intermediate.der], {
          serverName: "example.com",
          roots: [pki.root.pem],
          now: NOW,
        }),
      ),
    ).toBe(A.bad_certificate);
    expect(() =>
      verifyServerCertificateChain([der, pki.intermediate.der], {
        serverName: "example.com",
        roots: [pki.root.pem],
        now: NOW,
      }),
    ).toThrow(/weak \(MD5\/SHA-1\)/);
  });
});

describe("insecure mode", () => {
  it("accepts any parseable leaf and returns its key", async () => {
    const stranger = await issue({
      subject: "CN=stranger",
      key: makeKey("p384", true),
      notBefore: new Date(2000, 0, 1),
      notAfter: new Date(2001, 0, 1),
    });
    const v = verifyServerCertificateChain([stranger.der], {
      mode: "insecure",
      serverName: "nothing.example",
    });
    expect(v.publicKey.export({ type: "spki", format: "der" }).equals(spkiOf(stranger))).toBe(true);
  });

  it("still rejects garbage → bad_certificate", () => {
    expect(alertOf(() => verifyServerCertificateChain([Uint8Array.of(1, 2, 3)], { mode: "insecure" }))).toBe(
      A.bad_certificate,
    );
    const truncated = pki.leaf.der.subarray(0, pki.leaf.der.length - 1);
    expect(alertOf(() => verifyServerCertificateChain([truncated], { mode: "insecure" }))).toBe(
      A.bad_certificate,
    );
  });
});

describe("serverCertificateHashes mode", () => {
  const hashOf = (der: Uint8Array) => new Uint8Array(createHash("sha256").update(der).digest());

  it("accepts a short-lived ECDSA certificate whose hash is listed", () => {
    const dev = generateDevCertificate({ now: NOW });
    const other = new Uint8Array(32).fill(7);
    const v = verifyServerCertificateChain([dev.certificateDer], {
      mode: { serverCertificateHashes: [other, dev.certificateSha256] },
      now: NOW,
    });
    expect(v.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    // No name or PKI checks in this mode.
    expect(
      alertOf(() =>
        verifyServerCertificateChain([dev.certificateDer], {
          mode: { serverCertificateHashes: [dev.certificateSha256] },
          now: NOW,
          serverName: "elsewhere.example",
        }),
      ),
    ).toBe("ok");
  });

  it("wrong hash → unknown_ca", () => {
    const dev = generateDevCertificate({ now: NOW });
    const wrong = dev.certificateSha256.slice();
    wrong[0] ^= 1;
    expect(
      alertOf(() =>
        verifyServerCertificateChain([dev.certificateDer], {
          mode: { serverCertificateHashes: [wrong] },
          now: NOW,
        }),
      ),
    ).toBe(A.unknown_ca);
  });

  it("validity period over 14 days → unsupported_certificate; exactly 14 days is fine", async () => {
    const key = makeKey("p256", true);
    const mk = (ms: number) =>
      issue({
        subject: "CN=h",
        key,
        notBefore: new Date(NOW.getTime() - DAY),
        notAfter: new Date(NOW.getTime() - DAY + ms),
      });
    const ok = await mk(14 * DAY);
    const tooLong = await mk(14 * DAY + 2000);
    const run = (c: TestCert) =>
      alertOf(() =>
        verifyServerCertificateChain([c.der], {
          mode: { serverCertificateHashes: [hashOf(c.der)] },
          now: NOW,
        }),
      );
    expect(run(ok)).toBe("ok");
    expect(run(tooLong)).toBe(A.unsupported_certificate);
  });

  it("not currently valid → certificate_expired", () => {
    const dev = generateDevCertificate({ now: NOW, days: 3 });
    const opts = (now: Date) => ({ mode: { serverCertificateHashes: [dev.certificateSha256] }, now });
    expect(
      alertOf(() =>
        verifyServerCertificateChain([dev.certificateDer], opts(new Date(NOW.getTime() + 4 * DAY))),
      ),
    ).toBe(A.certificate_expired);
    expect(
      alertOf(() =>
        verifyServerCertificateChain([dev.certificateDer], opts(new Date(NOW.getTime() - 2 * 3600 * 1000))),
      ),
    ).toBe(A.certificate_expired);
  });

  it("RSA key → unsupported_certificate; P-384 and Ed25519 are allowed", async () => {
    for (const [kind, expected] of [
      ["rsa2048", A.unsupported_certificate],
      ["p384", "ok"],
      ["ed25519", "ok"],
      ["p521", A.unsupported_certificate],
    ] as const) {
      const c = await issue({
        subject: "CN=k",
        key: makeKey(kind),
        notBefore: new Date(NOW.getTime() - DAY),
        notAfter: new Date(NOW.getTime() + 5 * DAY),
      });
      expect(
        alertOf(() =>
          verifyServerCertificateChain([c.der], {
            mode: { serverCertificateHashes: [hashOf(c.der)] },
            now: NOW,
          }),
        ),
        kind,
      ).toBe(expected);
    }
  });

  it("a hash that is not 32 bytes is local misuse", () => {
    const dev = generateDevCertificate({ now: NOW });
    expect(() =>
      verifyServerCertificateChain([dev.certificateDer], {
        mode: { serverCertificateHashes: [new Uint8Array(20)] },
        now: NOW,
      }),
    ).toThrow(QuicUsageError);
  });
});

describe("client certificates", () => {
  it("verifies a client chain (clientAuth) without a name", () => {
    const v = verifyClientCertificateChain([pki.leaf.der, pki.intermediate.der], {
      roots: [pki.root.pem],
      now: NOW,
    });
    expect(v.path.length).toBe(3);
  });
});

describe("trust stores", () => {
  it("parses (nearly) all of Node's bundled roots", () => {
    const store = defaultTrustStore();
    expect(store.size).toBeGreaterThan(rootCertificates.length * 0.95);
  });

  it("reuses the store built for a roots array only while the array is unchanged", async () => {
    const other = await buildPki({ tag: "cache" });
    const roots: string[] = [other.root.pem];
    const run = () =>
      alertOf(() =>
        verifyServerCertificateChain([pki.leaf.der, pki.intermediate.der], {
          serverName: "example.com",
          roots,
          now: NOW,
        }),
      );
    expect(run()).toBe(A.unknown_ca);
    roots.push(pki.root.pem);
    expect(run()).toBe("ok");
    roots.splice(1, 1);
    expect(run()).toBe(A.unknown_ca);
  });

  it("rejects an unparseable configured root as local misuse", () => {
    expect(() => createTrustStore([Uint8Array.of(0x30, 0x00)])).toThrow(QuicUsageError);
    expect(() => createTrustStore(["not a pem"])).toThrow(QuicUsageError);
  });
});

describe("robustness: peer-supplied DER only ever causes TlsError", () => {
  afterEach(() => vi.useRealTimers());

  const modes = () =>
    [
      { serverName: "example.com", roots: store, now: NOW },
      { mode: "insecure" as const },
      { mode: { serverCertificateHashes: [new Uint8Array(32)] }, now: NOW },
    ] as const;
  let store: ReturnType<typeof createTrustStore>;
  beforeAll(() => {
    store = createTrustStore([pki.root.pem]);
  });

  const onlyTlsError = (chain: Uint8Array[]) => {
    for (const options of modes()) {
      try {
        verifyServerCertificateChain(chain, options);
      } catch (e) {
        if (!(e instanceof TlsError)) throw e;
      }
      try {
        verifyClientCertificateChain(chain, { roots: store, now: NOW });
      } catch (e) {
        if (!(e instanceof TlsError)) throw e;
      }
    }
  };

  it("garbage → bad_certificate", () => {
    for (const g of [
      new Uint8Array(0),
      Uint8Array.of(0x30),
      Uint8Array.of(0x30, 0x80, 0, 0),
      Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff),
    ]) {
      expect(
        alertOf(() =>
          verifyServerCertificateChain([g], { serverName: "example.com", roots: store, now: NOW }),
        ),
      ).toBe(A.bad_certificate);
    }
  });

  it("BER that is not DER → bad_certificate; a DER view into a larger buffer parses", async () => {
    const der = pki.leaf.der;
    expect(der[0]).toBe(0x30);
    expect(der[1]).toBe(0x82); // two length octets
    const body = der.subarray(4);
    const variants = [
      Uint8Array.of(...der, 0x00), // trailing data
      Uint8Array.of(0x30, 0x83, 0x00, der[2], der[3], ...body), // non-minimal length
      Uint8Array.of(0x30, 0x80, ...body, 0x00, 0x00), // indefinite length
    ];
    for (const v of variants) {
      expect(alertOf(() => verifyServerCertificateChain([v], { mode: "insecure" }))).toBe(A.bad_certificate);
    }
    const padded = new Uint8Array(der.length + 7);
    padded.set(der, 3);
    const parsed = parseCertificate(padded.subarray(3, 3 + der.length));
    expect(Buffer.from(parsed.tbs).equals(Buffer.from(parseCertificate(der).tbs))).toBe(true);
    // Inside a (signed) extension value: basicConstraints with cA FALSE encoded explicitly (DEFAULT).
    const explicitDefault = await issue({
      subject: "CN=ber",
      key: makeKey("p256", true),
      issuer: pki.intermediate,
      dns: ["example.com"],
      extensions: [new x509.Extension("2.5.29.19", true, Uint8Array.of(0x30, 0x03, 0x01, 0x01, 0x00))],
    });
    expect(() => parseCertificate(explicitDefault.der)).toThrow(/basicConstraints is not DER-encoded/);
  });

  it("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 100 }), (a, b) => {
        onlyTlsError([a]);
        onlyTlsError([pki.leaf.der, b]);
      }),
      { numRuns: 300 },
    );
  });

  it("mutated valid certificates", () => {
    const bases = [pki.leaf.der, pki.intermediate.der];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 }),
        fc.array(
          fc.tuple(
            fc.nat(),
            fc.integer({ min: 0, max: 255 }),
            fc.constantFrom("set", "insert", "delete", "truncate"),
          ),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (which, edits) => {
          let bytes = Array.from(bases[which]);
          for (const [pos, value, op] of edits) {
            const i = pos % Math.max(bytes.length, 1);
            if (op === "set") bytes[i] = value;
            else if (op === "insert") bytes.splice(i, 0, value);
            else if (op === "delete") bytes.splice(i, 1);
            else bytes = bytes.slice(0, i);
          }
          const mutated = Uint8Array.from(bytes);
          const chain = which === 0 ? [mutated, pki.intermediate.der] : [pki.leaf.der, mutated];
          onlyTlsError(chain);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("parseCertificate agrees with @peculiar/x509 and node:crypto on valid certificates", () => {
    for (const c of [pki.root, pki.intermediate, pki.leaf]) {
      const ours = parseCertificate(c.der);
      const theirs = new x509.X509Certificate(c.der);
      expect(ours.notBefore.getTime()).toBe(theirs.notBefore.getTime());
      expect(ours.notAfter.getTime()).toBe(theirs.notAfter.getTime());
      expect(Buffer.from(ours.subject).equals(Buffer.from(theirs.subjectName.toArrayBuffer()))).toBe(true);
      expect(
        createPublicKey({ key: Buffer.from(ours.spki), format: "der", type: "spki" }).equals(c.key.publicKey),
      ).toBe(true);
      const bc = theirs.getExtension(x509.BasicConstraintsExtension);
      expect(ours.basicConstraints?.ca).toBe(bc?.ca);
    }
  });
});

describe("reuse across handshakes (parsed certificates, keys, trust stores)", () => {
  it("a verified chain whose buffer the caller then overwrites does not change the next verification", () => {
    const leaf = pki.leaf.der.slice();
    const chain = [leaf, pki.intermediate.der];
    const opts = { serverName: "example.com", roots: [pki.root.pem], now: NOW };
    const first = verifyServerCertificateChain(chain, opts);
    leaf.fill(0); // e.g. a receive buffer reused for the next packet
    expect(alertOf(() => verifyServerCertificateChain(chain, opts))).toBe(A.bad_certificate);
    const again = verifyServerCertificateChain([pki.leaf.der, pki.intermediate.der], opts);
    expect(Buffer.from(again.path[0]).equals(Buffer.from(pki.leaf.der))).toBe(true);
    expect(again.publicKey.equals(first.publicKey)).toBe(true);
  });

  it("a one-byte change of a certificate seen before is parsed (and rejected) anew", () => {
    const opts = { serverName: "example.com", roots: [pki.root.pem], now: NOW };
    expect(alertOf(() => verifyServerCertificateChain([pki.leaf.der, pki.intermediate.der], opts))).toBe(
      "ok",
    );
    const tampered = pki.leaf.der.slice();
    tampered[tampered.length - 5] ^= 1; // inside the signature: parses, but the issuer did not sign it
    expect(alertOf(() => verifyServerCertificateChain([tampered, pki.intermediate.der], opts))).toBe(
      A.bad_certificate,
    );
  });

  it("new root arrays with the same content find the same roots; other content is not mixed up", async () => {
    const chain = [pki.leaf.der, pki.intermediate.der];
    for (let i = 0; i < 3; i++) {
      const roots = [`${pki.root.pem}`]; // a new array (and string) per connection, as connect() builds
      expect(
        alertOf(() => verifyServerCertificateChain(chain, { serverName: "example.com", roots, now: NOW })),
      ).toBe("ok");
    }
    const other = await buildPki({ tag: "other", rootKey: makeKey("p256", true) });
    expect(
      alertOf(() =>
        verifyServerCertificateChain(chain, { serverName: "example.com", roots: [other.root.pem], now: NOW }),
      ),
    ).toBe(A.unknown_ca);
    expect(
      alertOf(() =>
        verifyServerCertificateChain(chain, { serverName: "example.com", roots: [other.root.der], now: NOW }),
      ),
    ).toBe(A.unknown_ca);
    expect(
      alertOf(() =>
        verifyServerCertificateChain(chain, { serverName: "example.com", roots: [pki.root.der], now: NOW }),
      ),
    ).toBe("ok");
  });
});
