import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { verifyServerCertificateChain } from "./certificate-verifier.ts";
import { loadCredentials } from "./credentials.ts";
import { generateDevCertificate } from "./dev-certificate.ts";
import {
  buildCertificateVerifyContent,
  SignatureScheme,
  selectSignatureScheme,
  signCertificateVerify,
  verifyCertificateVerify,
} from "./signature.ts";
import { buildPki, issue, type KeyKind, makeKey, NOW, type Pki } from "./test-pki.ts";

let pki: Pki;
beforeAll(async () => {
  pki = await buildPki({ tag: "cred" });
});

describe("loadCredentials", () => {
  it("loads a PEM chain and PKCS#8 PEM key; the result signs a verifiable CertificateVerify", () => {
    const pem = pki.leaf.pem + pki.intermediate.pem;
    const keyPem = pki.leaf.key.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const cred = loadCredentials({ certificatePem: pem, privateKeyPem: keyPem });
    expect(cred.chainDer.map((d) => Buffer.from(d).toString("hex"))).toEqual(
      [pki.leaf.der, pki.intermediate.der].map((d) => Buffer.from(d).toString("hex")),
    );
    expect(cred.schemes).toEqual([SignatureScheme.ecdsa_secp256r1_sha256]);

    const verified = verifyServerCertificateChain(cred.chainDer, {
      serverName: "example.com",
      roots: [pki.root.pem],
      now: NOW,
    });
    const scheme = selectSignatureScheme(cred.privateKey, [SignatureScheme.ecdsa_secp256r1_sha256])!;
    const content = buildCertificateVerifyContent("server", new Uint8Array(32).fill(9));
    const sig = signCertificateVerify(cred.privateKey, scheme, content);
    expect(() => verifyCertificateVerify(verified.publicKey, scheme, content, sig)).not.toThrow();
  });

  it("accepts DER certificates with a KeyObject, and SEC1 / encrypted PEM keys", () => {
    const dev = generateDevCertificate({ now: NOW });
    expect(
      loadCredentials({ certificateDer: [dev.certificateDer], privateKey: dev.privateKey }).chainDer.length,
    ).toBe(1);
    const sec1 = dev.privateKey.export({ type: "sec1", format: "pem" }).toString();
    expect(loadCredentials({ certificatePem: dev.certificatePem, privateKeyPem: sec1 }).schemes).toEqual([
      SignatureScheme.ecdsa_secp256r1_sha256,
    ]);
    const encrypted = dev.privateKey
      .export({ type: "pkcs8", format: "pem", cipher: "aes-128-cbc", passphrase: "secret" })
      .toString();
    expect(() =>
      loadCredentials({ certificatePem: dev.certificatePem, privateKeyPem: encrypted, passphrase: "secret" }),
    ).not.toThrow();
    expect(() =>
      loadCredentials({ certificatePem: dev.certificatePem, privateKeyPem: encrypted, passphrase: "wrong" }),
    ).toThrow(QuicUsageError);
  });

  const kinds: [KeyKind, number[]][] = [
    ["p256", [SignatureScheme.ecdsa_secp256r1_sha256]],
    ["p384", [SignatureScheme.ecdsa_secp384r1_sha384]],
    ["ed25519", [SignatureScheme.ed25519]],
    [
      "rsa2048",
      [
        SignatureScheme.rsa_pss_rsae_sha256,
        SignatureScheme.rsa_pss_rsae_sha384,
        SignatureScheme.rsa_pss_rsae_sha512,
      ],
    ],
    ["rsa-pss", [SignatureScheme.rsa_pss_pss_sha256]],
  ];
  for (const [kind, schemes] of kinds) {
    it(`supports ${kind} keys`, async () => {
      const key = makeKey(kind);
      const cert = await issue({
        subject: `CN=${kind}`,
        key,
        issuer: pki.intermediate,
        dns: ["example.com"],
      });
      const rsaPkcs1Pem =
        kind === "rsa2048" ? key.privateKey.export({ type: "pkcs1", format: "pem" }).toString() : undefined;
      const cred = loadCredentials({
        certificateDer: [cert.der],
        ...(rsaPkcs1Pem ? { privateKeyPem: rsaPkcs1Pem } : { privateKey: key.privateKey }),
      });
      expect(cred.schemes).toEqual(schemes);
      expect(createPublicKey(cred.privateKey).equals(key.publicKey)).toBe(true);
    });
  }

  it("rejects a key that does not match the leaf, naming both keys", () => {
    expect(() =>
      loadCredentials({ certificateDer: [pki.leaf.der], privateKey: makeKey("p256", true).privateKey }),
    ).toThrow(/does not match the leaf certificate/);
    expect(() =>
      loadCredentials({ certificateDer: [pki.leaf.der], privateKey: makeKey("rsa2048").privateKey }),
    ).toThrow(/rsa 2048-bit.*ec prime256v1/);
    // The intermediate's key does not match the leaf either (order matters: leaf first).
    expect(() =>
      loadCredentials({
        certificateDer: [pki.intermediate.der, pki.leaf.der],
        privateKey: pki.leaf.key.privateKey,
      }),
    ).toThrow(QuicUsageError);
  });

  it("rejects bad inputs with QuicUsageError", () => {
    const key = pki.leaf.key.privateKey;
    expect(() => loadCredentials({ certificatePem: "no pem here", privateKey: key })).toThrow(
      /no certificate found/,
    );
    expect(() => loadCredentials({ certificateDer: [Uint8Array.of(1, 2, 3)], privateKey: key })).toThrow(
      QuicUsageError,
    );
    expect(() => loadCredentials({ certificateDer: [pki.leaf.der], privateKeyPem: "garbage" })).toThrow(
      /cannot read the private key/,
    );
    expect(() =>
      loadCredentials({ certificateDer: [pki.leaf.der], privateKey: pki.leaf.key.publicKey }),
    ).toThrow(/private key/);
    expect(() => loadCredentials({ certificateDer: [pki.leaf.der] })).toThrow(QuicUsageError);
    expect(() => loadCredentials({ privateKey: key })).toThrow(QuicUsageError);
    expect(() => loadCredentials({ certificateDer: [], privateKey: key })).toThrow(QuicUsageError);
  });

  it("rejects a key type TLS 1.3 cannot sign with", async () => {
    const pair = generateKeyPairSync("ed448");
    // Certified by the (P-384) intermediate; `kind` only matters for keys that sign certificates.
    const cert = await issue({
      subject: "CN=ed448",
      key: { kind: "ed25519", ...pair },
      issuer: pki.intermediate,
    });
    expect(() => loadCredentials({ certificateDer: [cert.der], privateKey: pair.privateKey })).toThrow(
      /cannot sign a TLS 1.3 CertificateVerify/,
    );
  });
});
