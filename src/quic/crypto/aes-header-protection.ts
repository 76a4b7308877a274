/**
 * AES header protection (RFC 9001 §5.4.3): mask = AES-ECB(hp_key, sample)[0..5), one block
 * encryption per packet in each direction. Shared by both providers.
 *
 * A JavaScript block function on a key schedule expanded once beats node:crypto here: a 16-byte
 * `Cipher.update` crosses into C++ and allocates a Buffer per call (≈620 ns vs ≈100 ns per mask,
 * CPU time, Node 20) — the fixed cost of the call, not the AES rounds, dominates a single block.
 *
 * The block function is FIPS 197's cipher with the classic four 256-entry T-tables (4 KiB, built
 * once at load): during a transfer the tables must stay in the L1/L2 cache between packets, which
 * AES-GCM over each packet and the rest of the send path keep evicting. @noble/ciphers' block
 * function (used here before) indexes merged 2 × 256 KiB tables: with a node:crypto AES-GCM seal
 * of 1400 bytes between masks it took ≈665 ns per mask against ≈170 ns for these (≈310 / 150 ns
 * in a tight loop; hrtime-inclusive, Node 20). Like any table-driven AES, lookups depend on the key and data (no
 * constant-time claim; the header protection key only hides packet numbers, RFC 9001 §5.4).
 */
import { QuicUsageError } from "../errors.ts";
import type { HeaderProtection } from "./provider.ts";

/** FIPS 197 §5.1.1 S-box, and the round tables T0..T3 (SubBytes + MixColumns per byte lane). */
const SBOX = new Uint8Array(256);
const T0 = new Uint32Array(256);
const T1 = new Uint32Array(256);
const T2 = new Uint32Array(256);
const T3 = new Uint32Array(256);

/** Multiplication by x in GF(2^8) mod x^8 + x^4 + x^3 + x + 1 (FIPS 197 §4.2.1, xtime). */
const xtime = (b: number) => ((b << 1) ^ (b & 0x80 ? 0x1b : 0)) & 0xff;

{
  // S-box: the multiplicative inverse (walking the powers of the generator 3 and its inverse
  // together), then the affine transformation (FIPS 197 §5.1.1).
  const rotl8 = (x: number, n: number) => ((x << n) | (x >>> (8 - n))) & 0xff;
  let p = 1;
  let q = 1;
  do {
    p = p ^ xtime(p); // p × 3
    q ^= q << 1; // q ÷ 3: q × 0xf6, the inverse of 3
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    SBOX[p] = q ^ rotl8(q, 1) ^ rotl8(q, 2) ^ rotl8(q, 3) ^ rotl8(q, 4) ^ 0x63;
  } while (p !== 1);
  SBOX[0] = 0x63;
  for (let x = 0; x < 256; x++) {
    const s = SBOX[x];
    const s2 = xtime(s);
    // Column [2s, s, s, 3s] as a big-endian word; T1..T3 are its byte rotations.
    const t = ((s2 << 24) | (s << 16) | (s << 8) | (s2 ^ s)) >>> 0;
    T0[x] = t;
    T1[x] = ((t >>> 8) | (t << 24)) >>> 0;
    T2[x] = ((t >>> 16) | (t << 16)) >>> 0;
    T3[x] = ((t >>> 24) | (t << 8)) >>> 0;
  }
}

const subWord = (w: number) =>
  ((SBOX[w >>> 24] << 24) |
    (SBOX[(w >>> 16) & 0xff] << 16) |
    (SBOX[(w >>> 8) & 0xff] << 8) |
    SBOX[w & 0xff]) >>>
  0;

/** FIPS 197 §5.2 KeyExpansion: 4 × (Nr + 1) big-endian round-key words. */
function expandKey(key: Uint8Array): Uint32Array {
  const nk = key.length / 4;
  const nr = nk + 6;
  const w = new Uint32Array(4 * (nr + 1));
  for (let i = 0; i < nk; i++)
    w[i] = ((key[4 * i] << 24) | (key[4 * i + 1] << 16) | (key[4 * i + 2] << 8) | key[4 * i + 3]) >>> 0;
  let rcon = 1;
  for (let i = nk; i < w.length; i++) {
    let t = w[i - 1];
    if (i % nk === 0) {
      t = (subWord(((t << 8) | (t >>> 24)) >>> 0) ^ (rcon << 24)) >>> 0;
      rcon = xtime(rcon);
    } else if (nk > 6 && i % nk === 4) t = subWord(t);
    w[i] = (w[i - nk] ^ t) >>> 0;
  }
  return w;
}

const be32 = (d: Uint8Array, i: number) => (d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3];

export class AesHeaderProtection implements HeaderProtection {
  private readonly w: Uint32Array;
  private readonly rounds: number;
  constructor(hpKey: Uint8Array) {
    if (hpKey.length !== 16 && hpKey.length !== 32)
      throw new QuicUsageError(`AES hp key must be 16 or 32 bytes, got ${hpKey.length}`);
    this.w = expandKey(hpKey);
    this.rounds = hpKey.length / 4 + 6;
  }

  mask(sample: Uint8Array, out: Uint8Array): void {
    // RFC 9001 §5.4.2: the sample is 16 bytes; a shorter one is a caller bug, not peer input.
    if (sample.length < 16) throw new QuicUsageError("header protection sample must be 16 bytes");
    const w = this.w;
    // FIPS 197 §5.1: AddRoundKey, Nr − 1 full rounds, a last round without MixColumns.
    let s0 = be32(sample, 0) ^ w[0];
    let s1 = be32(sample, 4) ^ w[1];
    let s2 = be32(sample, 8) ^ w[2];
    let s3 = be32(sample, 12) ^ w[3];
    let k = 4;
    for (let r = 1; r < this.rounds; r++, k += 4) {
      const t0 = T0[s0 >>> 24] ^ T1[(s1 >>> 16) & 0xff] ^ T2[(s2 >>> 8) & 0xff] ^ T3[s3 & 0xff] ^ w[k];
      const t1 = T0[s1 >>> 24] ^ T1[(s2 >>> 16) & 0xff] ^ T2[(s3 >>> 8) & 0xff] ^ T3[s0 & 0xff] ^ w[k + 1];
      const t2 = T0[s2 >>> 24] ^ T1[(s3 >>> 16) & 0xff] ^ T2[(s0 >>> 8) & 0xff] ^ T3[s1 & 0xff] ^ w[k + 2];
      const t3 = T0[s3 >>> 24] ^ T1[(s0 >>> 16) & 0xff] ^ T2[(s1 >>> 8) & 0xff] ^ T3[s2 & 0xff] ^ w[k + 3];
      s0 = t0;
      s1 = t1;
      s2 = t2;
      s3 = t3;
    }
    // Last round: only the first five output bytes (column 0 and the first byte of column 1).
    const c0 =
      ((SBOX[s0 >>> 24] << 24) |
        (SBOX[(s1 >>> 16) & 0xff] << 16) |
        (SBOX[(s2 >>> 8) & 0xff] << 8) |
        SBOX[s3 & 0xff]) ^
      w[k];
    out[0] = c0 >>> 24;
    out[1] = c0 >>> 16;
    out[2] = c0 >>> 8;
    out[3] = c0;
    out[4] = SBOX[s1 >>> 24] ^ (w[k + 1] >>> 24);
  }
}
