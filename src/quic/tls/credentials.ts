/**
 * Loading a certificate chain and its private key into a credential the TLS handshake can use
 * (server certificate, or client certificate for mutual TLS).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { QuicUsageError } from "../errors.ts";
import { parseCertificate, pemToDerList } from "./certificate-verifier.ts";
import { describeKey, schemesForKey } from "./signature.ts";

export interface CredentialsInput {
  /** PEM text with the leaf certificate first, then intermediates (give this or `certificateDer`). */
  readonly certificatePem?: string;
  /** DER certificates, leaf first (give this or `certificatePem`). */
  readonly certificateDer?: readonly Uint8Array[];
  /** PEM private key: PKCS#8, SEC1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). */
  readonly privateKeyPem?: string;
  /** Passphrase for an encrypted PEM private key. */
  readonly passphrase?: string;
  /** The private key as a KeyObject (instead of `privateKeyPem`). */
  readonly privateKey?: KeyObject;
}

export interface Credentials {
  /** Certificate chain in DER, leaf first, as sent in the Certificate message. */
  readonly chainDer: readonly Uint8Array[];
  readonly privateKey: KeyObject;
  /** The CertificateVerify signature schemes this key can sign with, in our preference order. */
  readonly schemes: readonly number[];
}

/** Largest chain we send; longer chains are refused by verifiers (ours stops at 10). */
const MAX_CHAIN = 10;

/**
 * Validates and loads a credential. Every problem is local misconfiguration, reported as a
 * {@link QuicUsageError} with a clear message: no or unparseable certificate, unreadable key,
 * a key that does not match the leaf certificate, a key type TLS 1.3 cannot sign with.
 * Supported keys: ECDSA P-256/P-384/P-521, Ed25519, RSA (≥ 2048 bits recommended), RSA-PSS.
 */
export function loadCredentials(input: CredentialsInput): Credentials {
  if ((input.certificatePem === undefined) === (input.certificateDer === undefined)) {
    throw new QuicUsageError("give exactly one of certificatePem and certificateDer");
  }
  if ((input.privateKeyPem === undefined) === (input.privateKey === undefined)) {
    throw new QuicUsageError("give exactly one of privateKeyPem and privateKey");
  }

  const chainDer =
    input.certificatePem !== undefined ? pemToDerList(input.certificatePem) : [...input.certificateDer!];
  if (chainDer.length === 0)
    throw new QuicUsageError("no certificate found (expected PEM CERTIFICATE blocks)");
  if (chainDer.length > MAX_CHAIN) throw new QuicUsageError(`certificate chain longer than ${MAX_CHAIN}`);
  const parsed = chainDer.map((der, i) => {
    try {
      return parseCertificate(der);
    } catch (e) {
      throw new QuicUsageError(`certificate #${i} in the chain is invalid: ${(e as Error).message}`);
    }
  });

  let privateKey: KeyObject;
  if (input.privateKey !== undefined) {
    privateKey = input.privateKey;
  } else {
    try {
      privateKey = createPrivateKey(
        input.passphrase === undefined
          ? { key: input.privateKeyPem!, format: "pem" }
          : { key: input.privateKeyPem!, format: "pem", passphrase: input.passphrase },
      );
    } catch (e) {
      throw new QuicUsageError(`cannot read the private key: ${(e as Error).message}`);
    }
  }
  if (privateKey.type !== "private") throw new QuicUsageError("privateKey must be a private key");

  let leafKey: KeyObject;
  try {
    leafKey = createPublicKey({ key: Buffer.from(parsed[0].spki), format: "der", type: "spki" });
  } catch (e) {
    throw new QuicUsageError(`cannot read the leaf certificate's public key: ${(e as Error).message}`);
  }
  // Compare canonical SPKI encodings (re-exported, so e.g. compressed EC points do not matter).
  const fromKey = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  const fromCert = leafKey.export({ type: "spki", format: "der" });
  if (!fromKey.equals(fromCert)) {
    throw new QuicUsageError(
      `the private key (${describeKey(privateKey)}) does not match the leaf certificate's public key (${describeKey(leafKey)})`,
    );
  }

  const schemes = schemesForKey(privateKey);
  if (schemes.length === 0) {
    throw new QuicUsageError(`a ${describeKey(privateKey)} key cannot sign a TLS 1.3 CertificateVerify`);
  }
  return { chainDer, privateKey, schemes };
}
