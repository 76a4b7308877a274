/**
 * The one small interface all cryptography goes through. Two implementations produce identical
 * bytes: {@link NodeCryptoProvider} (node:crypto, the default, fastest on Node) and
 * NobleCryptoProvider (@noble/ciphers + @noble/hashes, portable). Packet protection, the TLS key
 * schedule and Retry integrity depend only on this interface.
 */

export type HashName = "sha256" | "sha384";

/** The AEADs QUIC uses (RFC 9001 §5.3), named as TLS cipher suites use them. */
export type AeadName = "aes-128-gcm" | "aes-256-gcm" | "chacha20-poly1305";

/** Key length in bytes for each AEAD. */
export const AEAD_KEY_LENGTH: Record<AeadName, number> = {
  "aes-128-gcm": 16,
  "aes-256-gcm": 32,
  "chacha20-poly1305": 32,
};

/** Every AEAD QUIC uses has a 16-byte tag and a 12-byte nonce. */
export const AEAD_TAG_LENGTH = 16;
export const AEAD_NONCE_LENGTH = 12;

/** Digest length in bytes for each hash. */
export const HASH_LENGTH: Record<HashName, number> = { sha256: 32, sha384: 48 };

/** An AEAD bound to one key. Implementations may keep per-key state; they are not thread-shared. */
export interface Aead {
  readonly name: AeadName;
  /**
   * Encrypts `plaintext` with `aad` and writes ciphertext ‖ tag into `out` at `outOffset`.
   * Returns the number of bytes written (`plaintext.length + 16`). `plaintext` may alias
   * `out` at `outOffset` (in-place sealing).
   */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, outOffset: number): number;
  /**
   * Authenticates and decrypts `ciphertext` (ciphertext ‖ tag) into `out` at `outOffset`.
   * Returns the plaintext length, or -1 when authentication fails (never throws for bad input).
   * `ciphertext` may alias `out` at `outOffset`.
   */
  open(
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number;
}

/** Header protection (RFC 9001 §5.4) bound to one hp key. */
export interface HeaderProtection {
  /** Writes the 5-byte mask for a 16-byte `sample` into `out[0..5)`. */
  mask(sample: Uint8Array, out: Uint8Array): void;
}

export interface CryptoProvider {
  readonly name: string;
  createAead(name: AeadName, key: Uint8Array): Aead;
  /** Header protection for the cipher suite of `name`: AES-ECB for the GCM suites, ChaCha20 otherwise. */
  createHeaderProtection(name: AeadName, hpKey: Uint8Array): HeaderProtection;
  /** HKDF-Extract (RFC 5869 §2.2). */
  hkdfExtract(hash: HashName, salt: Uint8Array, ikm: Uint8Array): Uint8Array;
  /** HKDF-Expand (RFC 5869 §2.3); `length` ≤ 255 × hash length. */
  hkdfExpand(hash: HashName, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array;
  hmac(hash: HashName, key: Uint8Array, data: Uint8Array): Uint8Array;
  hash(hash: HashName, data: Uint8Array): Uint8Array;
  randomBytes(length: number): Uint8Array;
}
