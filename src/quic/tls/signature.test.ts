import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  verify,
} from "node:crypto";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import { parseCertificate } from "./certificate-verifier.ts";
import {
  buildCertificateVerifyContent,
  isCertificateVerifyScheme,
  SignatureScheme,
  schemesForKey,
  selectSignatureScheme,
  signatureSchemeName,
  signCertificateVerify,
  verifyCertificateVerify,
} from "./signature.ts";
import { makeKey } from "./test-pki.ts";
import * as trace from "./testdata/rfc8448-simple-1rtt.ts";

function alertOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof TlsError) return e.alert;
    throw e;
  }
  return undefined;
}

const hexBytes = (h: string) => new Uint8Array(Buffer.from(h, "hex"));
const transcript = new Uint8Array(createHash("sha256").update("some handshake").digest());

describe("buildCertificateVerifyContent", () => {
  it("matches the RFC 9846 §4.4.3 example (server, transcript hash of 32 × 0x01)", () => {
    const content = buildCertificateVerifyContent("server", new Uint8Array(32).fill(1));
    const expected =
      "20".repeat(64) +
      "544c5320312e332c207365727665722043657274696669636174655665726966" +
      "79" +
      "00" +
      "01".repeat(32);
    expect(Buffer.from(content).toString("hex")).toBe(expected);
  });

  it("uses the client context string for the client", () => {
    const content = buildCertificateVerifyContent("client", new Uint8Array(48));
    expect(content.length).toBe(64 + 33 + 1 + 48);
    expect(Buffer.from(content.subarray(64, 97)).toString()).toBe("TLS 1.3, client CertificateVerify");
    expect(content[97]).toBe(0);
  });
});

const roundTrips: [string, () => KeyObject, number][] = [
  ["P-256", () => makeKey("p256").privateKey, SignatureScheme.ecdsa_secp256r1_sha256],
  ["P-384", () => makeKey("p384").privateKey, SignatureScheme.ecdsa_secp384r1_sha384],
  ["P-521", () => makeKey("p521").privateKey, SignatureScheme.ecdsa_secp521r1_sha512],
  ["Ed25519", () => makeKey("ed25519").privateKey, SignatureScheme.ed25519],
  ["RSA", () => makeKey("rsa2048").privateKey, SignatureScheme.rsa_pss_rsae_sha256],
  ["RSA", () => makeKey("rsa2048").privateKey, SignatureScheme.rsa_pss_rsae_sha384],
  ["RSA", () => makeKey("rsa2048").privateKey, SignatureScheme.rsa_pss_rsae_sha512],
  ["RSA-PSS (sha256)", () => makeKey("rsa-pss").privateKey, SignatureScheme.rsa_pss_pss_sha256],
];

describe("sign / verify round trip", () => {
  for (const [keyName, getKey, scheme] of roundTrips) {
    it(`${keyName} with ${signatureSchemeName(scheme)}`, () => {
      const priv = getKey();
      const pub = makePublic(priv);
      const content = buildCertificateVerifyContent("server", transcript);
      const sig = signCertificateVerify(priv, scheme, content);
      expect(() => verifyCertificateVerify(pub, scheme, content, sig, [scheme])).not.toThrow();

      // Tampered content: decrypt_error.
      const tampered = content.slice();
      tampered[tampered.length - 1] ^= 1;
      expect(alertOf(() => verifyCertificateVerify(pub, scheme, tampered, sig))).toBe(
        AlertDescription.decrypt_error,
      );
      // Same transcript, other role's context string: decrypt_error.
      const asClient = buildCertificateVerifyContent("client", transcript);
      expect(alertOf(() => verifyCertificateVerify(pub, scheme, asClient, sig))).toBe(
        AlertDescription.decrypt_error,
      );
      // Tampered signature: decrypt_error (never another exception).
      const badSig = sig.slice();
      badSig[Math.floor(badSig.length / 2)] ^= 0x40;
      expect(alertOf(() => verifyCertificateVerify(pub, scheme, content, badSig))).toBe(
        AlertDescription.decrypt_error,
      );
    });
  }

  it("rejects a signature made by another key of the same type (decrypt_error)", () => {
    const content = buildCertificateVerifyContent("server", transcript);
    const sig = signCertificateVerify(
      makeKey("p256").privateKey,
      SignatureScheme.ecdsa_secp256r1_sha256,
      content,
    );
    const other = makeKey("p256", true).publicKey;
    expect(
      alertOf(() => verifyCertificateVerify(other, SignatureScheme.ecdsa_secp256r1_sha256, content, sig)),
    ).toBe(AlertDescription.decrypt_error);
  });

  it("treats garbage signature bytes as decrypt_error for every key type", () => {
    const content = buildCertificateVerifyContent("client", transcript);
    for (const [, getKey, scheme] of roundTrips) {
      const pub = makePublic(getKey());
      for (const garbage of [
        new Uint8Array(0),
        new Uint8Array(7).fill(0x30),
        new Uint8Array(600).fill(0xff),
      ]) {
        expect(alertOf(() => verifyCertificateVerify(pub, scheme, content, garbage))).toBe(
          AlertDescription.decrypt_error,
        );
      }
    }
  });

  it("produces PSS signatures with salt length = hash length", () => {
    const priv = makeKey("rsa2048").privateKey;
    const content = buildCertificateVerifyContent("server", transcript);
    const sig = signCertificateVerify(priv, SignatureScheme.rsa_pss_rsae_sha384, content);
    const pub = makePublic(priv);
    const opts = (saltLength: number) => ({ key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
    expect(verify("sha384", content, opts(48), sig)).toBe(true);
    expect(verify("sha384", content, opts(32), sig)).toBe(false);
  });
});

describe("scheme / key compatibility", () => {
  const content = buildCertificateVerifyContent("server", transcript);

  it("refuses to sign with a scheme the key cannot produce (local misuse)", () => {
    const rsa = makeKey("rsa2048").privateKey;
    expect(() => signCertificateVerify(rsa, SignatureScheme.ecdsa_secp256r1_sha256, content)).toThrow(
      QuicUsageError,
    );
    const p256 = makeKey("p256").privateKey;
    expect(() => signCertificateVerify(p256, SignatureScheme.ecdsa_secp384r1_sha384, content)).toThrow(
      QuicUsageError,
    );
    expect(() => signCertificateVerify(rsa, SignatureScheme.rsa_pkcs1_sha256, content)).toThrow(
      QuicUsageError,
    );
    expect(() =>
      signCertificateVerify(makeKey("p256").publicKey, SignatureScheme.ecdsa_secp256r1_sha256, content),
    ).toThrow(QuicUsageError);
  });

  it("answers illegal_parameter for a scheme that does not fit the certificate key", () => {
    const rsaPub = makeKey("rsa2048").publicKey;
    const sig = new Uint8Array(256);
    expect(
      alertOf(() => verifyCertificateVerify(rsaPub, SignatureScheme.ecdsa_secp256r1_sha256, content, sig)),
    ).toBe(AlertDescription.illegal_parameter);
    // TLS 1.3 binds the curve: a P-256 key cannot be used with ecdsa_secp384r1_sha384.
    const p256 = makeKey("p256");
    const p256sig = signCertificateVerify(p256.privateKey, SignatureScheme.ecdsa_secp256r1_sha256, content);
    expect(
      alertOf(() =>
        verifyCertificateVerify(p256.publicKey, SignatureScheme.ecdsa_secp384r1_sha384, content, p256sig),
      ),
    ).toBe(AlertDescription.illegal_parameter);
    // rsa_pss_pss_* needs an id-RSASSA-PSS key, rsa_pss_rsae_* an rsaEncryption key.
    expect(
      alertOf(() => verifyCertificateVerify(rsaPub, SignatureScheme.rsa_pss_pss_sha256, content, sig)),
    ).toBe(AlertDescription.illegal_parameter);
    expect(
      alertOf(() =>
        verifyCertificateVerify(
          makeKey("rsa-pss").publicKey,
          SignatureScheme.rsa_pss_rsae_sha256,
          content,
          sig,
        ),
      ),
    ).toBe(AlertDescription.illegal_parameter);
  });

  it("answers illegal_parameter for PKCS#1, SHA-1 and unknown schemes, and for schemes we did not offer", () => {
    const priv = makeKey("rsa2048").privateKey;
    const pub = makePublic(priv);
    for (const scheme of [
      SignatureScheme.rsa_pkcs1_sha256,
      SignatureScheme.rsa_pkcs1_sha1,
      SignatureScheme.ecdsa_sha1,
      0xfe00,
    ]) {
      expect(isCertificateVerifyScheme(scheme)).toBe(false);
      expect(alertOf(() => verifyCertificateVerify(pub, scheme, content, new Uint8Array(256)))).toBe(
        AlertDescription.illegal_parameter,
      );
    }
    const sig = signCertificateVerify(priv, SignatureScheme.rsa_pss_rsae_sha256, content);
    expect(
      alertOf(() =>
        verifyCertificateVerify(pub, SignatureScheme.rsa_pss_rsae_sha256, content, sig, [
          SignatureScheme.ecdsa_secp256r1_sha256,
        ]),
      ),
    ).toBe(AlertDescription.illegal_parameter);
  });

  it("schemesForKey lists exactly the usable schemes", () => {
    expect(schemesForKey(makeKey("p256").privateKey)).toEqual([SignatureScheme.ecdsa_secp256r1_sha256]);
    expect(schemesForKey(makeKey("p384").publicKey)).toEqual([SignatureScheme.ecdsa_secp384r1_sha384]);
    expect(schemesForKey(makeKey("ed25519").privateKey)).toEqual([SignatureScheme.ed25519]);
    expect(schemesForKey(makeKey("rsa2048").privateKey)).toEqual([
      SignatureScheme.rsa_pss_rsae_sha256,
      SignatureScheme.rsa_pss_rsae_sha384,
      SignatureScheme.rsa_pss_rsae_sha512,
    ]);
    // A PSS key restricted to SHA-256 only signs rsa_pss_pss_sha256.
    expect(schemesForKey(makeKey("rsa-pss").privateKey)).toEqual([SignatureScheme.rsa_pss_pss_sha256]);
    // 1024-bit RSA is too small for PSS-SHA-512 with a 64-byte salt (needs ≥ 130-byte encoding).
    expect(schemesForKey(makeKey("rsa1024").privateKey)).toEqual([
      SignatureScheme.rsa_pss_rsae_sha256,
      SignatureScheme.rsa_pss_rsae_sha384,
    ]);
    expect(schemesForKey(generateKeyPairSync("x25519").privateKey)).toEqual([]);
    expect(schemesForKey(generateKeyPairSync("ed448").privateKey)).toEqual([]);
  });

  it("selectSignatureScheme honours the key, the peer's list and our preference", () => {
    const rsa = makeKey("rsa2048").privateKey;
    const offered = [
      SignatureScheme.ecdsa_secp256r1_sha256,
      SignatureScheme.rsa_pss_rsae_sha512,
      SignatureScheme.rsa_pss_rsae_sha384,
    ];
    expect(selectSignatureScheme(rsa, offered)).toBe(SignatureScheme.rsa_pss_rsae_sha384);
    expect(
      selectSignatureScheme(rsa, offered, [
        SignatureScheme.rsa_pss_rsae_sha512,
        SignatureScheme.rsa_pss_rsae_sha384,
      ]),
    ).toBe(SignatureScheme.rsa_pss_rsae_sha512);
    // A preference entry the key cannot use is skipped.
    expect(selectSignatureScheme(rsa, offered, [SignatureScheme.ecdsa_secp256r1_sha256])).toBeNull();
    expect(selectSignatureScheme(makeKey("p256").privateKey, offered)).toBe(
      SignatureScheme.ecdsa_secp256r1_sha256,
    );
    expect(selectSignatureScheme(makeKey("p384").privateKey, offered)).toBeNull();
    // PKCS#1 offered alone is not usable in TLS 1.3.
    expect(selectSignatureScheme(rsa, [SignatureScheme.rsa_pkcs1_sha256])).toBeNull();
  });
});

describe("RFC 8448 §3 CertificateVerify", () => {
  const ch = hexBytes(trace.clientHelloHex);
  const sh = hexBytes(trace.serverHelloHex);
  const ee = hexBytes(trace.encryptedExtensionsHex);
  const certMsg = hexBytes(trace.certificateHex);
  const cv = hexBytes(trace.certificateVerifyHex);

  // Certificate: type(1) len(3) context_len(1)=0 list_len(3) cert_len(3) cert ...
  const certLen = (certMsg[8] << 16) | (certMsg[9] << 8) | certMsg[10];
  const certDer = certMsg.subarray(11, 11 + certLen);
  const transcriptHash = new Uint8Array(
    createHash("sha256").update(ch).update(sh).update(ee).update(certMsg).digest(),
  );
  // CertificateVerify: type(1) len(3) scheme(2) sig_len(2) sig
  const scheme = (cv[4] << 8) | cv[5];
  const signature = cv.subarray(8, 8 + ((cv[6] << 8) | cv[7]));

  it("has the framing we expect", () => {
    expect(ch[0]).toBe(1);
    expect(certMsg[0]).toBe(11);
    expect(cv[0]).toBe(15);
    expect(scheme).toBe(SignatureScheme.rsa_pss_rsae_sha256);
    expect(signature.length).toBe(128);
  });

  it("the certificate carries the RFC 8448 §2 server RSA key", () => {
    const parsed = parseCertificate(certDer);
    const key = createPublicKey({ key: Buffer.from(parsed.spki), format: "der", type: "spki" });
    const jwk = key.export({ format: "jwk" });
    expect(Buffer.from(jwk.n!, "base64url").toString("hex")).toBe(trace.serverRsaModulusHex);
    expect(jwk.e).toBe("AQAB");
  });

  it("verifies the trace's server signature over the recomputed transcript hash", () => {
    const key = createPublicKey({
      key: Buffer.from(parseCertificate(certDer).spki),
      format: "der",
      type: "spki",
    });
    const content = buildCertificateVerifyContent("server", transcriptHash);
    expect(() => verifyCertificateVerify(key, scheme, content, signature, [scheme])).not.toThrow();

    // With the client context, or a transcript that omits a message, it must fail.
    expect(
      alertOf(() =>
        verifyCertificateVerify(
          key,
          scheme,
          buildCertificateVerifyContent("client", transcriptHash),
          signature,
        ),
      ),
    ).toBe(AlertDescription.decrypt_error);
    const shortTranscript = new Uint8Array(createHash("sha256").update(ch).update(sh).update(ee).digest());
    expect(
      alertOf(() =>
        verifyCertificateVerify(
          key,
          scheme,
          buildCertificateVerifyContent("server", shortTranscript),
          signature,
        ),
      ),
    ).toBe(AlertDescription.decrypt_error);
  });
});

function makePublic(priv: KeyObject): KeyObject {
  return createPublicKey(priv);
}
