/**
 * Pure-JavaScript implementation of {@link CryptoProvider} on @noble/ciphers and @noble/hashes:
 * portable (no node:crypto), byte-identical to NodeCryptoProvider, several times slower.
 *
 * noble's public `gcm(key, nonce, aad)` expands the AES key and rebuilds the GHASH tables for
 * every message, which costs more than encrypting a 1200-byte packet. AES-GCM is therefore
 * composed here from noble's exported building blocks so the per-key work happens once per key:
 * the AES key schedule (`unsafe.expandKeyLE`), the block function (`unsafe.encrypt`) and the
 * GHASH multiplication tables (a subclass of noble's `GHASH` that can be reset and that absorbs
 * bytes straight from the caller's buffers). ChaCha20-Poly1305 has no per-key precomputation, so
 * noble's `chacha20poly1305` is used as is.
 *
 * All 32-bit words are read and written as little-endian numbers from bytes, which is the word
 * convention noble's AES and GHASH internals use, so nothing here depends on buffer alignment or
 * host byte order.
 */
import { GHASH } from "@noble/ciphers/_polyval.js";
import { unsafe as aes } from "@noble/ciphers/aes.js";
import { chacha20poly1305, hchacha } from "@noble/ciphers/chacha.js";
import { expand as hkdfExpand, extract as hkdfExtract } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256, sha384 } from "@noble/hashes/sha2.js";
import { randomBytes } from "@noble/hashes/utils.js";
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

const HASHES = { sha256, sha384 } as const;

function checkKey(name: AeadName, key: Uint8Array): void {
  if (!Object.hasOwn(AEAD_KEY_LENGTH, name)) throw new QuicUsageError(`unknown AEAD ${String(name)}`);
  if (key.length !== AEAD_KEY_LENGTH[name]) {
    throw new QuicUsageError(`${name} key must be ${AEAD_KEY_LENGTH[name]} bytes, got ${key.length}`);
  }
}

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

function checkSample(sample: Uint8Array): void {
  if (sample.length < 16) throw new QuicUsageError(`header protection sample must be 16 bytes`);
}

/** Little-endian 32-bit word at `data[i..i+4)`. */
function le32(data: Uint8Array, i: number): number {
  return data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
}

/** Little-endian word of `data[i..end)` zero-padded to 4 bytes (bytes at or past `end` read as 0). */
function le32Tail(data: Uint8Array, i: number, end: number): number {
  let w = 0;
  for (let k = 0; k < 4 && i + k < end; k++) w |= data[i + k] << (8 * k);
  return w;
}

function bswap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

function putLe32(out: Uint8Array, i: number, w: number): void {
  out[i] = w;
  out[i + 1] = w >>> 8;
  out[i + 2] = w >>> 16;
  out[i + 3] = w >>> 24;
}

/**
 * If `input` and the output range `out[outOffset..+length)` share memory at different positions,
 * returns a copy of `input` (a forward streaming pass would overwrite bytes before reading them).
 * Exact aliasing (in-place operation) is safe and returns `input` itself.
 */
function unaliased(input: Uint8Array, out: Uint8Array, outOffset: number): Uint8Array {
  if (input.buffer !== out.buffer) return input;
  const inStart = input.byteOffset;
  const outStart = out.byteOffset + outOffset;
  if (inStart === outStart) return input;
  const overlaps = inStart < outStart + input.length && outStart < inStart + input.length;
  return overlaps ? input.slice() : input;
}

/** `input` itself, or a copy of it when it shares bytes with `out[outOffset..+length)`. */
function outsideOf(input: Uint8Array, out: Uint8Array, outOffset: number, length: number): Uint8Array {
  if (input.buffer !== out.buffer || input.length === 0) return input;
  const inStart = input.byteOffset;
  const outStart = out.byteOffset + outOffset;
  const overlaps = inStart < outStart + length && outStart < inStart + input.length;
  return overlaps ? input.slice() : input;
}

/**
 * noble's GHASH with the per-key multiplication table kept across messages: `reset` clears the
 * accumulator, `absorb` feeds bytes zero-padded to a block boundary (one GCM segment) without
 * copying them. Relies on GHASH's protected `_updateBlock` and accumulator words, whose word
 * convention is the little-endian reading of each 4-byte group.
 */
class ReusableGhash extends GHASH {
  reset(): void {
    this.s0 = 0;
    this.s1 = 0;
    this.s2 = 0;
    this.s3 = 0;
  }

  absorb(data: Uint8Array, start: number, end: number): void {
    let i = start;
    for (const full = end - 16; i <= full; i += 16) {
      this._updateBlock(le32(data, i), le32(data, i + 4), le32(data, i + 8), le32(data, i + 12));
    }
    if (i < end) {
      this._updateBlock(
        le32Tail(data, i, end),
        le32Tail(data, i + 4, end),
        le32Tail(data, i + 8, end),
        le32Tail(data, i + 12, end),
      );
    }
  }

  /** Absorbs the final block: len(A) ‖ len(C) in bits, each a 64-bit big-endian integer. */
  absorbLengths(aadBytes: number, ctBytes: number): void {
    const aadBits = aadBytes * 8;
    const ctBits = ctBytes * 8;
    this._updateBlock(
      bswap32(Math.floor(aadBits / 0x1_0000_0000)),
      bswap32(aadBits >>> 0),
      bswap32(Math.floor(ctBits / 0x1_0000_0000)),
      bswap32(ctBits >>> 0),
    );
  }

  /** Writes GHASH ⊕ (m0..m3) as 16 tag bytes. */
  writeTag(m0: number, m1: number, m2: number, m3: number, out: Uint8Array, offset: number): void {
    putLe32(out, offset, this.s0 ^ m0);
    putLe32(out, offset + 4, this.s1 ^ m1);
    putLe32(out, offset + 8, this.s2 ^ m2);
    putLe32(out, offset + 12, this.s3 ^ m3);
  }

  /** Constant-time comparison of GHASH ⊕ (m0..m3) with the 16 tag bytes at `data[offset..)`. */
  tagMatches(m0: number, m1: number, m2: number, m3: number, data: Uint8Array, offset: number): boolean {
    const diff =
      (this.s0 ^ m0 ^ le32(data, offset)) |
      (this.s1 ^ m1 ^ le32(data, offset + 4)) |
      (this.s2 ^ m2 ^ le32(data, offset + 8)) |
      (this.s3 ^ m3 ^ le32(data, offset + 12));
    return diff === 0;
  }
}

/**
 * GHASH table window: noble picks 2, 4 or 8 bits from an expected message length. A hint in
 * (1 KiB, 64 KiB] selects 4-bit windows: ~34 KB of tables per key. 8-bit windows seal 1200-byte
 * packets ~18% faster but take ~265 KB per key; 2-bit windows are ~15% slower (measured on
 * Node 20, x64).
 */
const GHASH_LENGTH_HINT = 1500;

/** AES-GCM (NIST SP 800-38D) with a 96-bit nonce and 128-bit tag, per-key state precomputed. */
class NobleAesGcm implements Aead {
  private readonly xk: Uint32Array;
  private readonly ghash: ReusableGhash;

  constructor(
    readonly name: AeadName,
    key: Uint8Array,
  ) {
    checkKey(name, key);
    this.xk = aes.expandKeyLE(key);
    // H = E_K(0^128)
    const h = aes.encrypt(this.xk, 0, 0, 0, 0);
    const hBytes = new Uint8Array(16);
    putLe32(hBytes, 0, h.s0);
    putLe32(hBytes, 4, h.s1);
    putLe32(hBytes, 8, h.s2);
    putLe32(hBytes, 12, h.s3);
    this.ghash = new ReusableGhash(hBytes, GHASH_LENGTH_HINT);
    hBytes.fill(0);
  }

  /**
   * GCTR from counter block inc32(J0) = nonce ‖ 2 (RFC: J0 = nonce ‖ 1), XORing `src[srcStart..
   * +len)` into `dst[dstStart..)`. Reads each byte before writing the same position, so `src`
   * may be `dst` at the same offset.
   */
  private ctr(
    n0: number,
    n1: number,
    n2: number,
    src: Uint8Array,
    srcStart: number,
    len: number,
    dst: Uint8Array,
    dstStart: number,
  ): void {
    const xk = this.xk;
    let counter = 2;
    let p = 0;
    for (const full = len - 16; p <= full; p += 16, counter = (counter + 1) >>> 0) {
      const k = aes.encrypt(xk, n0, n1, n2, bswap32(counter));
      const s = srcStart + p;
      const d = dstStart + p;
      putLe32(dst, d, le32(src, s) ^ k.s0);
      putLe32(dst, d + 4, le32(src, s + 4) ^ k.s1);
      putLe32(dst, d + 8, le32(src, s + 8) ^ k.s2);
      putLe32(dst, d + 12, le32(src, s + 12) ^ k.s3);
    }
    if (p < len) {
      const k = aes.encrypt(xk, n0, n1, n2, bswap32(counter));
      const words = [k.s0, k.s1, k.s2, k.s3];
      for (let j = 0; p < len; p++, j++) {
        dst[dstStart + p] = src[srcStart + p] ^ (words[j >>> 2] >>> (8 * (j & 3)));
      }
    }
  }

  seal(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number {
    checkNonce(nonce);
    const len = plaintext.length;
    checkOut(out, outOffset, len + AEAD_TAG_LENGTH);
    plaintext = unaliased(plaintext, out, outOffset);
    const n0 = le32(nonce, 0);
    const n1 = le32(nonce, 4);
    const n2 = le32(nonce, 8);
    const g = this.ghash;
    g.reset();
    // The AAD is absorbed before any output is written, so it may even lie inside `out`.
    g.absorb(aad, 0, aad.length);
    this.ctr(n0, n1, n2, plaintext, 0, len, out, outOffset);
    g.absorb(out, outOffset, outOffset + len);
    g.absorbLengths(aad.length, len);
    // Tag = GHASH ⊕ E_K(J0), J0 = nonce ‖ 0x00000001.
    const m = aes.encrypt(this.xk, n0, n1, n2, 0x0100_0000);
    g.writeTag(m.s0, m.s1, m.s2, m.s3, out, outOffset + len);
    return len + AEAD_TAG_LENGTH;
  }

  open(
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number {
    checkNonce(nonce);
    const len = ciphertext.length - AEAD_TAG_LENGTH;
    if (len < 0) return -1;
    checkOut(out, outOffset, len);
    const n0 = le32(nonce, 0);
    const n1 = le32(nonce, 4);
    const n2 = le32(nonce, 8);
    const g = this.ghash;
    g.reset();
    g.absorb(aad, 0, aad.length);
    g.absorb(ciphertext, 0, len);
    g.absorbLengths(aad.length, len);
    const m = aes.encrypt(this.xk, n0, n1, n2, 0x0100_0000);
    // Authenticate before decrypting: no unauthenticated plaintext ever reaches `out`.
    if (!g.tagMatches(m.s0, m.s1, m.s2, m.s3, ciphertext, len)) return -1;
    ciphertext = unaliased(ciphertext, out, outOffset);
    this.ctr(n0, n1, n2, ciphertext, 0, len, out, outOffset);
    return len;
  }
}

/** ChaCha20-Poly1305 (RFC 8439) via noble; ChaCha20 has no key schedule to keep. */
class NobleChaCha20Poly1305 implements Aead {
  readonly name: AeadName = "chacha20-poly1305";
  private readonly key: Uint8Array;

  constructor(key: Uint8Array) {
    checkKey("chacha20-poly1305", key);
    this.key = key.slice();
  }

  seal(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number {
    checkNonce(nonce);
    const n = plaintext.length + AEAD_TAG_LENGTH;
    checkOut(out, outOffset, n);
    // noble copies `plaintext` into the output with TypedArray#set (overlap-safe), then
    // encrypts and authenticates in place there; the AAD is read last, so keep it out of the way.
    aad = outsideOf(aad, out, outOffset, n);
    chacha20poly1305(this.key, nonce, aad).encrypt(plaintext, out.subarray(outOffset, outOffset + n));
    return n;
  }

  open(
    nonce: Uint8Array,
    aad: Uint8Array,
    ciphertext: Uint8Array,
    out: Uint8Array,
    outOffset: number,
  ): number {
    checkNonce(nonce);
    const n = ciphertext.length - AEAD_TAG_LENGTH;
    if (n < 0) return -1;
    checkOut(out, outOffset, n);
    try {
      // Verifies the tag before writing anything to the output.
      chacha20poly1305(this.key, nonce, aad).decrypt(ciphertext, out.subarray(outOffset, outOffset + n));
    } catch {
      // Arguments were validated above; the only failure left is a tag mismatch.
      return -1;
    }
    return n;
  }
}

/** "expand 32-byte k" as the ChaCha20 state words 0..3 (RFC 8439 §2.3). */
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Host-order Uint32Array view of `bytes` (a fresh aligned copy), as noble's `hchacha` expects. */
function hostWords(bytes: Uint8Array, words: number): Uint32Array {
  const w = new Uint32Array(words);
  for (let i = 0; i < words; i++) w[i] = HOST_LE ? le32(bytes, 4 * i) : bswap32(le32(bytes, 4 * i));
  return w;
}

/**
 * RFC 9001 §5.4.4: mask = ChaCha20(hp_key, counter = sample[0..4) LE, nonce = sample[4..16),
 * {0,0,0,0,0}), i.e. the first 5 bytes of that keystream block.
 *
 * noble's `chacha20` refuses counter 0xffffffff (its no-wraparound policy), which a sample can
 * hold, so the keystream block is computed with noble's `hchacha` instead: HChaCha runs the same
 * 20 rounds on the same initial state (sigma ‖ key ‖ counter ‖ nonce, i.e. sigma ‖ key ‖ sample)
 * and returns words 0..3 and 12..15 *without* the final feed-forward addition. The ChaCha20
 * block's words 0 and 1 are therefore those outputs plus sigma[0] and sigma[1].
 */
class NobleChaChaHeaderProtection implements HeaderProtection {
  private readonly key32: Uint32Array;
  private readonly sigma32 = HOST_LE ? SIGMA : SIGMA.map(bswap32);
  private readonly input = new Uint32Array(4);
  private readonly output = new Uint32Array(8);

  constructor(hpKey: Uint8Array) {
    if (hpKey.length !== 32)
      throw new QuicUsageError(`chacha20 hp key must be 32 bytes, got ${hpKey.length}`);
    this.key32 = hostWords(hpKey, 8);
  }

  mask(sample: Uint8Array, out: Uint8Array): void {
    checkSample(sample);
    const input = this.input;
    for (let i = 0; i < 4; i++) {
      const w = le32(sample, 4 * i);
      input[i] = HOST_LE ? w : bswap32(w);
    }
    const o = this.output;
    hchacha(this.sigma32, this.key32, input, o);
    const w0 = ((HOST_LE ? o[0] : bswap32(o[0])) + SIGMA[0]) | 0;
    const w1 = ((HOST_LE ? o[1] : bswap32(o[1])) + SIGMA[1]) | 0;
    putLe32(out, 0, w0);
    out[4] = w1;
  }
}

/** getRandomValues' per-call quota (Web Crypto §10.1.1), which noble's randomBytes enforces. */
const RANDOM_CHUNK = 65536;

export class NobleCryptoProvider implements CryptoProvider {
  readonly name = "noble";

  createAead(name: AeadName, key: Uint8Array): Aead {
    checkKey(name, key);
    return name === "chacha20-poly1305" ? new NobleChaCha20Poly1305(key) : new NobleAesGcm(name, key);
  }

  createHeaderProtection(name: AeadName, hpKey: Uint8Array): HeaderProtection {
    checkKey(name, hpKey);
    return name === "chacha20-poly1305"
      ? new NobleChaChaHeaderProtection(hpKey)
      : new AesHeaderProtection(hpKey);
  }

  hkdfExtract(hash: HashName, salt: Uint8Array, ikm: Uint8Array): Uint8Array {
    // An empty salt is passed through: HMAC pads it to the same key as HashLen zeros (§2.2).
    return hkdfExtract(hashFn(hash), ikm, salt);
  }

  hkdfExpand(hash: HashName, prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
    const hashLen = HASH_LENGTH[hash];
    if (!Number.isInteger(length) || length < 0 || length > 255 * hashLen) {
      throw new QuicUsageError(`HKDF-Expand length ${length} out of range`);
    }
    if (prk.length < hashLen) throw new QuicUsageError(`HKDF-Expand PRK shorter than ${hashLen} bytes`);
    return hkdfExpand(hashFn(hash), prk, info, length);
  }

  hmac(hash: HashName, key: Uint8Array, data: Uint8Array): Uint8Array {
    return hmac(hashFn(hash), key, data);
  }

  hash(hash: HashName, data: Uint8Array): Uint8Array {
    return hashFn(hash)(data);
  }

  randomBytes(length: number): Uint8Array {
    if (length <= RANDOM_CHUNK) return randomBytes(length);
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i += RANDOM_CHUNK) {
      out.set(randomBytes(Math.min(RANDOM_CHUNK, length - i)), i);
    }
    return out;
  }
}

function hashFn(hash: HashName): (typeof HASHES)[HashName] {
  if (!Object.hasOwn(HASHES, hash)) throw new QuicUsageError(`unknown hash ${String(hash)}`);
  return HASHES[hash];
}
