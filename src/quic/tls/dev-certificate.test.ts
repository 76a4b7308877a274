import { createHash, createPublicKey, X509Certificate as NodeX509 } from "node:crypto";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { verifyServerCertificateChain } from "./certificate-verifier.ts";
import { generateDevCertificate } from "./dev-certificate.ts";
import {
  buildCertificateVerifyContent,
  SignatureScheme,
  signCertificateVerify,
  verifyCertificateVerify,
} from "./signature.ts";
import { DAY, NOW, x509 } from "./test-pki.ts";

describe("generateDevCertificate", () => {
  const dev = generateDevCertificate({ now: NOW });
  const parsed = new x509.X509Certificate(dev.certificateDer);

  it("is a self-signed v3 ECDSA P-256 / SHA-256 certificate", async () => {
    expect(parsed.subject).toBe(parsed.issuer);
    expect(await parsed.isSelfSigned()).toBe(true);
    expect(parsed.signatureAlgorithm).toMatchObject({ name: "ECDSA", hash: { name: "SHA-256" } });
    expect(parsed.publicKey.algorithm).toMatchObject({ name: "ECDSA", namedCurve: "P-256" });
    expect(dev.privateKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    // node:crypto (OpenSSL) agrees that it verifies with its own key.
    const node = new NodeX509(Buffer.from(dev.certificateDer));
    expect(node.verify(node.publicKey)).toBe(true);
    expect(node.checkPrivateKey(dev.privateKey)).toBe(true);
  });

  it("has critical CA:FALSE, critical keyUsage digitalSignature only, EKU serverAuth", () => {
    const bc = parsed.getExtension(x509.BasicConstraintsExtension);
    expect(bc).not.toBeNull();
    expect(bc!.ca).toBe(false);
    expect(bc!.critical).toBe(true);
    const ku = parsed.getExtension(x509.KeyUsagesExtension);
    expect(ku!.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(ku!.critical).toBe(true);
    const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension);
    expect(eku!.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    expect(new NodeX509(Buffer.from(dev.certificateDer)).ca).toBe(false);
  });

  it("lists the default hosts as DNS and IP SANs", () => {
    const san = parsed.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san!.names.toJSON()).toEqual([
      { type: "dns", value: "localhost" },
      { type: "ip", value: "127.0.0.1" },
      { type: "ip", value: "::1" },
    ]);
  });

  it("lists custom hosts, converting IDNs and keeping wildcards", () => {
    const d = generateDevCertificate({
      hosts: ["Bücher.example", "*.dev.test", "10.1.2.3", "fe80::1"],
      now: NOW,
    });
    const san = new x509.X509Certificate(d.certificateDer).getExtension(x509.SubjectAlternativeNameExtension);
    expect(san!.names.toJSON().map((n) => n.value)).toEqual([
      "xn--bcher-kva.example",
      "*.dev.test",
      "10.1.2.3",
      "fe80::1",
    ]);
    expect(() => generateDevCertificate({ hosts: ["bad host"] })).toThrow(QuicUsageError);
    expect(() => generateDevCertificate({ hosts: [] })).toThrow(QuicUsageError);
  });

  it("is valid for `days` (default 10, at most 14) starting one hour before `now`", () => {
    expect(dev.notBefore.getTime()).toBe(NOW.getTime() - 3600 * 1000);
    expect(dev.notAfter.getTime() - dev.notBefore.getTime()).toBe(10 * DAY);
    expect(parsed.notBefore.getTime()).toBe(dev.notBefore.getTime());
    expect(parsed.notAfter.getTime()).toBe(dev.notAfter.getTime());
    const d14 = generateDevCertificate({ days: 14, now: NOW });
    expect(d14.notAfter.getTime() - d14.notBefore.getTime()).toBeLessThanOrEqual(14 * DAY);
    expect(() => generateDevCertificate({ days: 15 })).toThrow(QuicUsageError);
    expect(() => generateDevCertificate({ days: 0 })).toThrow(QuicUsageError);
    // Encodes years ≥ 2050 as GeneralizedTime, parsed back identically.
    const far = generateDevCertificate({ now: new Date("2051-03-04T05:06:07Z") });
    expect(new x509.X509Certificate(far.certificateDer).notBefore.toISOString()).toBe(
      "2051-03-04T04:06:07.000Z",
    );
  });

  it("has a random positive serial number", () => {
    const other = generateDevCertificate({ now: NOW });
    const s1 = parsed.serialNumber;
    const s2 = new x509.X509Certificate(other.certificateDer).serialNumber;
    expect(s1).not.toBe(s2);
    expect(Number.parseInt(s1.slice(0, 2), 16)).toBeLessThan(0x80);
  });

  it("reports hashes computed independently", () => {
    const spki = createPublicKey(dev.privateKey).export({ type: "spki", format: "der" });
    expect(dev.spkiSha256Base64).toBe(createHash("sha256").update(spki).digest("base64"));
    const certHash = createHash("sha256").update(dev.certificateDer).digest();
    expect(Buffer.from(dev.certificateSha256).equals(certHash)).toBe(true);
    expect(dev.certificateSha256Hex).toBe(certHash.toString("hex"));
    expect(new NodeX509(dev.certificatePem).fingerprint256.replaceAll(":", "").toLowerCase()).toBe(
      dev.certificateSha256Hex,
    );
  });

  it("round-trips its PEM encodings", () => {
    expect(
      Buffer.from(new x509.X509Certificate(dev.certificatePem).rawData).equals(
        Buffer.from(dev.certificateDer),
      ),
    ).toBe(true);
    expect(dev.privateKeyPem).toContain("-----BEGIN PRIVATE KEY-----");
  });

  it("is accepted by our verifier in serverCertificateHashes mode and as its own root", () => {
    const v = verifyServerCertificateChain([dev.certificateDer], {
      mode: { serverCertificateHashes: [dev.certificateSha256] },
      now: new Date(NOW.getTime() + 5 * DAY),
    });
    // The returned key checks a CertificateVerify made with the dev private key.
    const content = buildCertificateVerifyContent("server", new Uint8Array(32));
    const sig = signCertificateVerify(dev.privateKey, SignatureScheme.ecdsa_secp256r1_sha256, content);
    expect(() =>
      verifyCertificateVerify(v.publicKey, SignatureScheme.ecdsa_secp256r1_sha256, content, sig),
    ).not.toThrow();

    for (const serverName of ["localhost", "127.0.0.1", "::1"]) {
      expect(() =>
        verifyServerCertificateChain([dev.certificateDer], {
          serverName,
          roots: [dev.certificatePem],
          now: NOW,
        }),
      ).not.toThrow();
    }
    expect(() =>
      verifyServerCertificateChain([dev.certificateDer], {
        serverName: "example.com",
        roots: [dev.certificatePem],
        now: NOW,
      }),
    ).toThrow(/not valid for example.com/);
  });
});
