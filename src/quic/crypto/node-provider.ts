/**
 * node:crypto implementation of {@link CryptoProvider}: the default on Node, and the fastest
 * (OpenSSL's AES-NI / CLMUL code paths) for the AEADs. AES header protection is the shared
 * JavaScript {@link AesHeaderProtection}: for one 16-byte block the node:crypto call costs more
 * than the AES itself.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomFillSync,
} from "node:crypto";
import { QuicUsageError } from "../errors.ts";
import { AesHeaderProtection } from "./aes-header-protection.ts";
import {
  AEAD_KEY_LENGTH,
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  type Aead,
  type AeadName,
  type CryptoProvider,
  HASH_LENGTH,
  type HashName,
  type HeaderProtection,
} from "./provider.ts";

function checkKey(name: AeadName, key: Uint8Array): void {
  if (!Object.hasOwn(AEAD_KEY_LENGTH, name)) throw new QuicUsageError(`unknown AEAD ${String(name)}`);
  if (key.length !== AEAD_KEY_LENGTH[name]) {
    throw new QuicUsageError(`${name} key must be ${AEAD_KEY_LENGTH[name]} bytes, got ${key.length}`);
  }
}

/** OpenSSL's GCM accepts any IV length, so a wrong-sized nonce would silently change the output. */
function checkNonce(nonce: Uint8Array): void {
  if (nonce.length !== AEAD_NONCE_LENGTH) {
    throw new QuicUsageError(`AEAD nonce must be ${AEAD_NONCE_LENGTH} bytes, got ${nonce.length}`);
  }
}

function checkOut(out: Uint8Array, outOffset: number, length: number): void {
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset + length > out.length) {
    throw new QuicUsageError(`output buffer too small: need ${length} bytes at offset ${outOffset}`);
  }
}

/** RFC 9001 §5.4.2: the header protection sample is 16 bytes. */
function checkSample(sample: Uint8Array): void {
  if (sample.length < 16) throw new QuicUsageError("header protection sample must be 16 bytes");
}

/** node:crypto returns Buffers; hand out plain Uint8Arrays (same bytes, no copy) like noble does. */
function plain(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

class NodeAead implements Aead {
  private readonly key: KeyObject;
  private readonly chacha: boolean;
  constructor(
    readonly name: AeadName,
    key: Uint8Array,
  ) {
    checkKey(name, key);
    this.key = createSecretKey(key);
    this.chacha = name === "chacha20-poly1305";
  }

  seal(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number {
    checkNonce(nonce);
    checkOut(out, outOffset, plaintext.length + AEAD_TAG_LENGTH);
    const c = createCipheriv(this.name as "aes-128-gcm", this.key, nonce, { authTagLength: AEAD_TAG_LENGTH });
    if (this.chacha) c.setAAD(aad, { plaintextLength: plaintext.length });
    else c.setAAD(aad);
    const ct = c.update(plaintext);
    c.final();
    out.set(ct, outOffset);
    out.set(c.getAuthTag(), outOffset + ct.length);
    return ct.length + AEAD_TAG_LENGTH;
  }

  open(
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number {
    checkNonce(nonce);
    const ctLen = ciphertext.length - AEAD_TAG_LENGTH;
    if (ctLen < 0) return -1;
    checkOut(out, outOffset, ctLen);
    const d = createDecipheriv(this.name as "aes-128-gcm", this.key, nonce, {
      authTagLength: AEAD_TAG_LENGTH,
    });
    d.setAuthTag(ciphertext.subarray(ctLen));
    if (this.chacha) d.setAAD(aad, { plaintextLength: ctLen });
    else d.setAAD(aad);
    const pt = d.update(ciphertext.subarray(0, ctLen));
    try {
      d.final();
    } catch {
      return -1;
    }
    out.set(pt, outOffset);
    return ctLen;
  }
}

const FIVE_ZEROS = new Uint8Array(5);

class NodeChaChaHeaderProtection implements HeaderProtection {
  private readonly key: KeyObject;
  constructor(key: Uint8Array) {
    if (key.length !== 32) throw new QuicUsageError("chacha20 hp key must be 32 bytes");
    this.key = createSecretKey(key);
  }
  mask(sample: Uint8Array, out: Uint8Array): void {
    // RFC 9001 §5.4.4: counter = sample[0..4) little-endian, nonce = sample[4..16). OpenSSL's
    // "chacha20" takes exactly that 16-byte IV (32-bit LE counter ‖ 96-bit nonce).
    checkSample(sample);
    const c = createCipheriv("chacha20", this.key, sample.subarray(0, 16));
    const block = c.update(FIVE_ZEROS);
    for (let i = 0; i < 5; i++) out[i] = block[i];
  }
}

export class NodeCryptoProvider implements CryptoProvider {
  readonly name = "node";

  createAead(name: AeadName, key: Uint8Array): Aead {
    return new NodeAead(name, key);
  }

  createHeaderProtection(name: AeadName, hpKey: Uint8Array): HeaderProtection {
    if (name === "chacha20-poly1305") return new NodeChaChaHeaderProtection(hpKey);
    checkKey(name, hpKey);
    return new AesHeaderProtection(hpKey);
  }

  hkdfExtract(hash: HashName, salt: Uint8Array, ikm: Uint8Array): Uint8Array {
    // RFC 5869 §2.2: a missing salt is HashLen zeros; HMAC pads an empty key to the same effect.
    return this.hmac(hash, salt, ikm);
  }

  hkdfExpand(hash: HashName, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    const hashLen = HASH_LENGTH[hash];
    if (!Number.isInteger(length) || length < 0 || length > 255 * hashLen) {
      throw new QuicUsageError(`HKDF-Expand length ${length} out of range`);
    }
    // RFC 5869 §2.3: "PRK: a pseudorandom key of at least HashLen octets" (noble enforces it too).
    if (prk.length < hashLen) throw new QuicUsageError(`HKDF-Expand PRK shorter than ${hashLen} bytes`);
    // RFC 5869 §2.3: T(i) = HMAC(PRK, T(i-1) ‖ info ‖ i).
    const out = new Uint8Array(length);
    // One input buffer T(i-1) ‖ info ‖ i per block, one update: TLS and QUIC labels need a single
    // block (length ≤ HashLen), which makes this one HMAC call.
    const input = new Uint8Array(hashLen + info.length + 1);
    input.set(info, hashLen);
    for (let i = 1, pos = 0; pos < length; i++) {
      input[input.length - 1] = i;
      const block = createHmac(hash, prk)
        .update(i === 1 ? input.subarray(hashLen) : input)
        .digest();
      out.set(block.subarray(0, Math.min(hashLen, length - pos)), pos);
      input.set(block, 0);
      pos += hashLen;
    }
    return out;
  }

  hmac(hash: HashName, key: Uint8Array, data: Uint8Array): Uint8Array {
    return plain(createHmac(hash, key).update(data).digest());
  }

  hash(hash: HashName, data: Uint8Array): Uint8Array {
    return plain(createHash(hash).update(data).digest());
  }

  /**
   * Random bytes from the CSPRNG. Small requests (connection IDs, reset tokens, TLS randoms,
   * nonces: a dozen per handshake) are cut from a pool refilled 4 KiB at a time: one
   * randomFillSync call costs ~2 µs, a copy from the pool ~0.1 µs. Every byte is handed out once
   * and zeroed in the pool as it goes; callers get their own copy.
   */
  randomBytes(length: number): Uint8Array {
    if (length > RANDOM_POOL_MAX_REQUEST) return randomFillSync(new Uint8Array(length));
    if (this.randomPos + length > this.randomPool.length) {
      randomFillSync(this.randomPool);
      this.randomPos = 0;
    }
    const start = this.randomPos;
    this.randomPos += length;
    const out = this.randomPool.slice(start, this.randomPos);
    this.randomPool.fill(0, start, this.randomPos);
    return out;
  }

  private readonly randomPool = new Uint8Array(4096);
  /** Bytes of the pool before this offset were handed out (the pool starts empty). */
  private randomPos = 4096;
}

/** Larger randomBytes requests bypass the pool. */
const RANDOM_POOL_MAX_REQUEST = 256;

/** The process-wide default provider. */
export const defaultCryptoProvider: CryptoProvider = new NodeCryptoProvider();
