/**
 * Both crypto providers: known answers (RFC 5869 Appendix A, RFC 9001 Appendix A), node ≡ noble
 * byte for byte on random inputs, tamper detection, in-place operation, and misuse errors.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { AEAD_KEY_LENGTH, type AeadName, type CryptoProvider, type HashName } from "./provider.ts";
import {
  cryptoProviders,
  defaultCryptoProvider,
  getCryptoProvider,
  NobleCryptoProvider,
  NodeCryptoProvider,
} from "./providers.ts";

const AEADS: readonly AeadName[] = ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"];
const HASHES: readonly HashName[] = ["sha256", "sha384"];

/** Hex (whitespace ignored) to bytes. */
function h(s: string): Uint8Array {
  const t = s.replace(/\s+/g, "");
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

const node = getCryptoProvider("node");
const noble = getCryptoProvider("noble");
const byProvider = cryptoProviders.map((p) => [p.name, p] as const);

function seal(
  p: CryptoProvider,
  name: AeadName,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  pt: Uint8Array,
) {
  const out = new Uint8Array(pt.length + 16);
  expect(p.createAead(name, key).seal(nonce, aad, pt, out, 0)).toBe(pt.length + 16);
  return out;
}

function open(
  p: CryptoProvider,
  name: AeadName,
  key: Uint8Array,
  nonce: Uint8Array,
  aad: Uint8Array,
  ct: Uint8Array,
) {
  const out = new Uint8Array(Math.max(0, ct.length - 16));
  const n = p.createAead(name, key).open(nonce, aad, ct, out, 0);
  return n < 0 ? null : out.subarray(0, n);
}

function mask(p: CryptoProvider, name: AeadName, hpKey: Uint8Array, sample: Uint8Array): Uint8Array {
  const out = new Uint8Array(5);
  p.createHeaderProtection(name, hpKey).mask(sample, out);
  return out;
}

/** The QUIC nonce: iv XOR the packet number, left-padded to 12 bytes (RFC 9001 §5.3). */
function nonceFor(iv: Uint8Array, pn: number): Uint8Array {
  const n = iv.slice();
  for (let i = 0; i < 6; i++) n[11 - i] ^= Math.floor(pn / 2 ** (8 * i)) & 0xff;
  return n;
}

// RFC 9001 Appendix A.2 (client Initial): CRYPTO frame padded with PADDING to 1162 bytes.
const CLIENT_INITIAL_CRYPTO = h(`
  060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
  04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
  616d706c652e636f6dff01000100000a00080006001d00170018001000070005
  04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
  baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
  0d0010000e0403050306030203080408050806002d00020101001c0002400100
  3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
  75300901100f088394c8f03e51570806048000ffff`);
const CLIENT_INITIAL_PAYLOAD = new Uint8Array(1162);
CLIENT_INITIAL_PAYLOAD.set(CLIENT_INITIAL_CRYPTO);
const CLIENT_INITIAL_PACKET = h(`
  c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11
  d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399
  1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c
  8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212
  30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5
  457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208
  4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec
  4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3
  485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db
  059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c
  7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8
  9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556
  be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74
  68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a
  c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00
  f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632
  291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964
  25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd
  14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff
  ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198
  e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
  c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73
  203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f
  cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e
  fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade
  a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047
  90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2
  162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4
  40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0
  6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e
  8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0
  be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400
  54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab
  760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9
  f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4
  056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064
  7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
  e221af44860018ab0856972e194cd934`);

const CLIENT = {
  key: h("1f369613dd76d5467730efcbe3b1a22d"),
  iv: h("fa044b2f42a3fd3b46fb255c"),
  hp: h("9f50449e04a0e810283a1e9933adedd2"),
  header: h("c300000001088394c8f03e5157080000449e00000002"),
  pn: 2,
};

// RFC 9001 Appendix A.3 (server Initial).
const SERVER = {
  key: h("cf3a5331653c364c88f0f379b6067e37"),
  iv: h("0ac1493ca1905853b0bba03e"),
  hp: h("c206b8d9b9f0f37644430b490eeaa314"),
  header: h("c1000000010008f067a5502a4262b50040750001"),
  pn: 1,
  payload: h(`
    02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf73988cfc79825df566dc5430b9a045a1200
    130100002e00330024001d00209d3c940d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00
    020304`),
  packet: h(`
    cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a5816b6394100f37a1c69797554780bb3
    8cc5a99f5ede4cf73c3ec2493a1839b3dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84
    022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc42158407dd074ee`),
};

// RFC 9001 Appendix A.5 (ChaCha20-Poly1305 short header packet).
const CHACHA = {
  key: h("c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8"),
  iv: h("e0459b3474bdd0e44a41c144"),
  hp: h("25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4"),
  pn: 654360564,
  nonce: h("e0459b3474bdd0e46d417eb0"),
  header: h("4200bff4"),
  plaintext: h("01"),
  ciphertext: h("655e5cd55c41f69080575d7999c25a5bfb"),
  sample: h("5e5cd55c41f69080575d7999c25a5bfb"),
  mask: h("aefefe7d03"),
  packet: h("4cfe4189655e5cd55c41f69080575d7999c25a5bfb"),
};

describe("provider registry", () => {
  it("exposes node (default) and noble", () => {
    expect(cryptoProviders.map((p) => p.name)).toEqual(["node", "noble"]);
    expect(defaultCryptoProvider).toBe(node);
    expect(node).toBeInstanceOf(NodeCryptoProvider);
    expect(noble).toBeInstanceOf(NobleCryptoProvider);
    expect(getCryptoProvider("noble").name).toBe("noble");
    expect(() => getCryptoProvider("webcrypto" as "node")).toThrow(QuicUsageError);
  });
});

describe.each(byProvider)("%s provider: known answers", (_name, p) => {
  describe("HKDF, RFC 5869 Appendix A (SHA-256)", () => {
    const cases = [
      {
        name: "A.1 basic",
        ikm: h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
        salt: h("000102030405060708090a0b0c"),
        info: h("f0f1f2f3f4f5f6f7f8f9"),
        length: 42,
        prk: h("077709362c2e32df0ddc3f0dc47bba63 90b6c73bb50f9c3122ec844ad7c2b3e5"),
        okm: h("3cb25f25faacd57a90434f64d0362f2a 2d2d0a90cf1a5a4c5db02d56ecc4c5bf 34007208d5b887185865"),
      },
      {
        name: "A.2 longer inputs/outputs",
        ikm: h(`000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f
                202122232425262728292a2b2c2d2e2f 303132333435363738393a3b3c3d3e3f
                404142434445464748494a4b4c4d4e4f`),
        salt: h(`606162636465666768696a6b6c6d6e6f 707172737475767778797a7b7c7d7e7f
                 808182838485868788898a8b8c8d8e8f 909192939495969798999a9b9c9d9e9f
                 a0a1a2a3a4a5a6a7a8a9aaabacadaeaf`),
        info: h(`b0b1b2b3b4b5b6b7b8b9babbbcbdbebf c0c1c2c3c4c5c6c7c8c9cacbcccdcecf
                 d0d1d2d3d4d5d6d7d8d9dadbdcdddedf e0e1e2e3e4e5e6e7e8e9eaebecedeeef
                 f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff`),
        length: 82,
        prk: h("06a6b88c5853361a06104c9ceb35b45c ef760014904671014a193f40c15fc244"),
        okm: h(`b11e398dc80327a1c8e7f78c596a4934 4f012eda2d4efad8a050cc4c19afa97c
                59045a99cac7827271cb41c65e590e09 da3275600c2f09b8367793a9aca3db71
                cc30c58179ec3e87c14c01d5c1f3434f 1d87`),
      },
      {
        name: "A.3 zero-length salt and info",
        ikm: h("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
        salt: new Uint8Array(0),
        info: new Uint8Array(0),
        length: 42,
        prk: h("19ef24a32c717b167f33a91d6f648bdf 96596776afdb6377ac434c1c293ccb04"),
        okm: h("8da4e775a563c18f715f802a063c5a31 b8a11f5c5ee1879ec3454e5f3c738d2d 9d201395faa4b61a96c8"),
      },
    ];
    it.each(cases)("$name", ({ ikm, salt, info, length, prk, okm }) => {
      expect(hex(p.hkdfExtract("sha256", salt, ikm))).toBe(hex(prk));
      expect(hex(p.hkdfExpand("sha256", prk, info, length))).toBe(hex(okm));
    });

    it("A.3: an empty salt equals HashLen zero bytes", () => {
      const ikm = cases[2].ikm;
      expect(hex(p.hkdfExtract("sha256", new Uint8Array(32), ikm))).toBe(hex(cases[2].prk));
    });

    it("expands to 0 bytes and to the 255 × HashLen maximum", () => {
      const prk = cases[0].prk;
      expect(p.hkdfExpand("sha256", prk, new Uint8Array(0), 0)).toHaveLength(0);
      const max = p.hkdfExpand("sha384", new Uint8Array(48).fill(7), new Uint8Array(3), 255 * 48);
      expect(max).toHaveLength(255 * 48);
    });
  });

  it("hashes 'abc' (FIPS 180-2 examples)", () => {
    const abc = new TextEncoder().encode("abc");
    expect(hex(p.hash("sha256", abc))).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
    expect(hex(p.hash("sha384", abc))).toBe(
      "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
    );
  });

  it("returns plain Uint8Arrays", () => {
    for (const b of [
      p.hash("sha256", new Uint8Array(1)),
      p.hmac("sha384", new Uint8Array(1), new Uint8Array(1)),
      p.hkdfExtract("sha256", new Uint8Array(0), new Uint8Array(1)),
      p.randomBytes(8),
    ]) {
      expect(Object.getPrototypeOf(b)).toBe(Uint8Array.prototype);
    }
  });

  describe("RFC 9001 Appendix A", () => {
    it("A.2 client Initial: AES-128-GCM payload protection and AES header protection mask", () => {
      const nonce = nonceFor(CLIENT.iv, CLIENT.pn);
      const protectedPayload = CLIENT_INITIAL_PACKET.subarray(CLIENT.header.length);
      expect(protectedPayload).toHaveLength(1162 + 16);
      const ct = seal(p, "aes-128-gcm", CLIENT.key, nonce, CLIENT.header, CLIENT_INITIAL_PAYLOAD);
      expect(hex(ct)).toBe(hex(protectedPayload));
      const pt = open(p, "aes-128-gcm", CLIENT.key, nonce, CLIENT.header, protectedPayload);
      expect(pt && hex(pt)).toBe(hex(CLIENT_INITIAL_PAYLOAD));
      // 4-byte packet number: the sample starts 4 bytes after the packet number offset (here 18).
      const sample = CLIENT_INITIAL_PACKET.subarray(22, 38);
      expect(hex(sample)).toBe("d1b1c98dd7689fb8ec11d242b123dc9b");
      expect(hex(mask(p, "aes-128-gcm", CLIENT.hp, sample))).toBe("437b9aec36");
    });

    it("A.3 server Initial: AES-128-GCM payload protection and AES header protection mask", () => {
      const nonce = nonceFor(SERVER.iv, SERVER.pn);
      expect(hex(nonce)).toBe("0ac1493ca1905853b0bba03f");
      const protectedPayload = SERVER.packet.subarray(SERVER.header.length);
      expect(hex(seal(p, "aes-128-gcm", SERVER.key, nonce, SERVER.header, SERVER.payload))).toBe(
        hex(protectedPayload),
      );
      const pt = open(p, "aes-128-gcm", SERVER.key, nonce, SERVER.header, protectedPayload);
      expect(pt && hex(pt)).toBe(hex(SERVER.payload));
      // 2-byte packet number at offset 18: the sample starts at 18 + 4 = 22.
      const sample = SERVER.packet.subarray(22, 38);
      expect(hex(sample)).toBe("2cd0991cd25b0aac406a5816b6394100");
      expect(hex(mask(p, "aes-128-gcm", SERVER.hp, sample))).toBe("2ec0d8356a");
    });

    it("A.5 ChaCha20-Poly1305 short header: AEAD output and ChaCha20 header protection mask", () => {
      expect(hex(nonceFor(CHACHA.iv, CHACHA.pn))).toBe(hex(CHACHA.nonce));
      const ct = seal(p, "chacha20-poly1305", CHACHA.key, CHACHA.nonce, CHACHA.header, CHACHA.plaintext);
      expect(hex(ct)).toBe(hex(CHACHA.ciphertext));
      expect(hex(CHACHA.packet.subarray(4))).toBe(hex(CHACHA.ciphertext));
      const pt = open(p, "chacha20-poly1305", CHACHA.key, CHACHA.nonce, CHACHA.header, CHACHA.ciphertext);
      expect(pt && hex(pt)).toBe("01");
      expect(hex(CHACHA.packet.subarray(5, 21))).toBe(hex(CHACHA.sample));
      expect(hex(mask(p, "chacha20-poly1305", CHACHA.hp, CHACHA.sample))).toBe(hex(CHACHA.mask));
    });

    it("header protection reads only the first 16 bytes of a longer sample", () => {
      const long = new Uint8Array(40);
      long.set(h("d1b1c98dd7689fb8ec11d242b123dc9b"));
      long.fill(0xaa, 16);
      expect(hex(mask(p, "aes-128-gcm", CLIENT.hp, long))).toBe("437b9aec36");
    });
  });

  it("an Aead seals and opens many packets with one key (no state leaks between packets)", () => {
    const aead = p.createAead("aes-128-gcm", SERVER.key);
    const nonce = nonceFor(SERVER.iv, SERVER.pn);
    const expected = hex(SERVER.packet.subarray(SERVER.header.length));
    const buf = new Uint8Array(SERVER.payload.length + 16);
    for (let i = 0; i < 3; i++) {
      aead.seal(nonce, SERVER.header, SERVER.payload, buf, 0);
      expect(hex(buf)).toBe(expected);
      expect(aead.open(nonce, new Uint8Array(3), buf, new Uint8Array(buf.length), 0)).toBe(-1);
      expect(aead.open(nonce, SERVER.header, buf, new Uint8Array(buf.length), 0)).toBe(SERVER.payload.length);
    }
  });

  it("open returns -1 for input shorter than the tag", () => {
    for (const name of AEADS) {
      const aead = p.createAead(name, new Uint8Array(AEAD_KEY_LENGTH[name]));
      for (const len of [0, 1, 15]) {
        expect(
          aead.open(new Uint8Array(12), new Uint8Array(0), new Uint8Array(len), new Uint8Array(16), 0),
        ).toBe(-1);
      }
    }
  });

  it("randomBytes returns the requested length, beyond getRandomValues' 64 KiB quota too", () => {
    expect(p.randomBytes(0)).toHaveLength(0);
    const big = p.randomBytes(70_000);
    expect(big).toHaveLength(70_000);
    expect(big.subarray(65_536).some((b) => b !== 0)).toBe(true);
    expect(hex(p.randomBytes(16))).not.toBe(hex(p.randomBytes(16)));
  });

  it("randomBytes hands out independent, non-repeating small pieces (across pool refills)", () => {
    const seen = new Set<string>();
    let zeroPieces = 0;
    for (let i = 0; i < 2000; i++) {
      const r = p.randomBytes(8 + (i % 9)); // 8..16 bytes: ~24 KiB in all, several 4 KiB refills
      expect(r).toHaveLength(8 + (i % 9));
      if (r.every((b) => b === 0)) zeroPieces++;
      const h = hex(r);
      expect(seen.has(h)).toBe(false);
      seen.add(h);
      r.fill(0xff); // a caller writing into its bytes changes no later result
    }
    expect(zeroPieces).toBe(0);
    expect(p.randomBytes(32).every((b) => b === 0xff)).toBe(false);
  });
});

describe.each(byProvider)("%s provider: misuse throws QuicUsageError", (_name, p) => {
  it.each(AEADS)("%s: wrong key length for the AEAD and for header protection", (name) => {
    const len = AEAD_KEY_LENGTH[name];
    for (const bad of [0, 15, len - 1, len + 1, 24, 64]) {
      if (bad === len) continue;
      expect(() => p.createAead(name, new Uint8Array(bad))).toThrow(QuicUsageError);
      expect(() => p.createHeaderProtection(name, new Uint8Array(bad))).toThrow(QuicUsageError);
    }
  });

  it("unknown AEAD name", () => {
    expect(() => p.createAead("aes-192-gcm" as AeadName, new Uint8Array(24))).toThrow(QuicUsageError);
    expect(() => p.createHeaderProtection("aes-192-gcm" as AeadName, new Uint8Array(24))).toThrow(
      QuicUsageError,
    );
  });

  it.each(AEADS)("%s: wrong nonce length, output too small", (name) => {
    const aead = p.createAead(name, new Uint8Array(AEAD_KEY_LENGTH[name]));
    const aad = new Uint8Array(4);
    const pt = new Uint8Array(10);
    for (const n of [0, 8, 11, 13, 16]) {
      expect(() => aead.seal(new Uint8Array(n), aad, pt, new Uint8Array(26), 0)).toThrow(QuicUsageError);
      expect(() => aead.open(new Uint8Array(n), aad, new Uint8Array(26), new Uint8Array(10), 0)).toThrow(
        QuicUsageError,
      );
    }
    const nonce = new Uint8Array(12);
    expect(() => aead.seal(nonce, aad, pt, new Uint8Array(25), 0)).toThrow(QuicUsageError);
    expect(() => aead.seal(nonce, aad, pt, new Uint8Array(30), 5)).toThrow(QuicUsageError);
    expect(() => aead.seal(nonce, aad, pt, new Uint8Array(30), -1)).toThrow(QuicUsageError);
    const ct = new Uint8Array(26);
    aead.seal(nonce, aad, pt, ct, 0);
    expect(() => aead.open(nonce, aad, ct, new Uint8Array(9), 0)).toThrow(QuicUsageError);
    expect(aead.open(nonce, aad, ct, new Uint8Array(10), 0)).toBe(10);
  });

  it.each(AEADS)("%s: a short header protection sample, without corrupting later masks", (name) => {
    const key = name === "aes-128-gcm" ? CLIENT.hp : new Uint8Array(32).fill(1);
    const hp = p.createHeaderProtection(name, key);
    const sample = h("d1b1c98dd7689fb8ec11d242b123dc9b");
    const before = new Uint8Array(5);
    hp.mask(sample, before);
    expect(() => hp.mask(sample.subarray(0, 15), new Uint8Array(5))).toThrow(QuicUsageError);
    const after = new Uint8Array(5);
    hp.mask(sample, after);
    expect(hex(after)).toBe(hex(before));
  });

  it("HKDF-Expand: length out of range, PRK shorter than HashLen", () => {
    for (const hash of HASHES) {
      const len = hash === "sha256" ? 32 : 48;
      const prk = new Uint8Array(len);
      expect(() => p.hkdfExpand(hash, prk, new Uint8Array(0), 255 * len + 1)).toThrow(QuicUsageError);
      expect(() => p.hkdfExpand(hash, prk, new Uint8Array(0), -1)).toThrow(QuicUsageError);
      expect(() => p.hkdfExpand(hash, prk, new Uint8Array(0), 1.5)).toThrow(QuicUsageError);
      expect(() => p.hkdfExpand(hash, prk.subarray(1), new Uint8Array(0), 16)).toThrow(QuicUsageError);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests: node ≡ noble.

/** Bytes placed at a random offset inside a larger buffer (exercises unaligned views). */
function bytesAt(minLength: number, maxLength: number): fc.Arbitrary<Uint8Array> {
  return fc.tuple(fc.uint8Array({ minLength, maxLength }), fc.nat(7)).map(([b, off]) => {
    const backing = new Uint8Array(off + b.length + 3);
    backing.set(b, off);
    return backing.subarray(off, off + b.length);
  });
}

const fixed = (n: number) => bytesAt(n, n);

function aeadCase(name: AeadName) {
  return fc.record({
    key: fixed(AEAD_KEY_LENGTH[name]),
    messages: fc.array(
      fc.record({
        nonce: fixed(12),
        aad: bytesAt(0, 64),
        plaintext: bytesAt(0, 1500),
        outOffset: fc.nat(9),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  });
}

describe.each(AEADS)("%s: node ≡ noble (property)", (name) => {
  it("seal output is identical byte for byte, and each provider opens the other's output", () => {
    fc.assert(
      fc.property(aeadCase(name), ({ key, messages }) => {
        const a = node.createAead(name, key);
        const b = noble.createAead(name, key);
        for (const { nonce, aad, plaintext, outOffset } of messages) {
          const n = plaintext.length + 16;
          const outA = new Uint8Array(outOffset + n + 2);
          const outB = new Uint8Array(outOffset + n + 2);
          expect(a.seal(nonce, aad, plaintext, outA, outOffset)).toBe(n);
          expect(b.seal(nonce, aad, plaintext, outB, outOffset)).toBe(n);
          expect(hex(outB)).toBe(hex(outA));
          const ct = outA.subarray(outOffset, outOffset + n);
          for (const [opener, other] of [
            [a, b],
            [b, a],
          ] as const) {
            const pt = new Uint8Array(outOffset + plaintext.length);
            expect(opener.open(nonce, aad, ct, pt, outOffset)).toBe(plaintext.length);
            expect(hex(pt.subarray(outOffset))).toBe(hex(plaintext));
            expect(other.open(nonce, aad, ct, pt, outOffset)).toBe(plaintext.length);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("seals and opens in place (plaintext aliasing out at outOffset)", () => {
    fc.assert(
      fc.property(aeadCase(name), ({ key, messages }) => {
        for (const p of cryptoProviders) {
          const aead = p.createAead(name, key);
          for (const { nonce, aad, plaintext, outOffset } of messages) {
            const expected = new Uint8Array(plaintext.length + 16);
            aead.seal(nonce, aad, plaintext, expected, 0);
            const buf = new Uint8Array(outOffset + plaintext.length + 16);
            buf.set(plaintext, outOffset);
            const view = buf.subarray(outOffset, outOffset + plaintext.length);
            expect(aead.seal(nonce, aad, view, buf, outOffset)).toBe(plaintext.length + 16);
            expect(hex(buf.subarray(outOffset))).toBe(hex(expected));
            const sealed = buf.subarray(outOffset);
            expect(aead.open(nonce, aad, sealed, buf, outOffset)).toBe(plaintext.length);
            expect(hex(buf.subarray(outOffset, outOffset + plaintext.length))).toBe(hex(plaintext));
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("seals and opens when input and output overlap at different offsets", () => {
    fc.assert(
      fc.property(aeadCase(name), fc.integer({ min: -20, max: 20 }), ({ key, messages }, shift) => {
        const { nonce, aad, plaintext } = messages[0];
        for (const p of cryptoProviders) {
          const aead = p.createAead(name, key);
          const expected = new Uint8Array(plaintext.length + 16);
          aead.seal(nonce, aad, plaintext, expected, 0);
          const base = 24;
          const buf = new Uint8Array(base * 2 + plaintext.length + 16);
          buf.set(plaintext, base);
          aead.seal(nonce, aad, buf.subarray(base, base + plaintext.length), buf, base + shift);
          const sealed = buf.slice(base + shift, base + shift + plaintext.length + 16);
          expect(hex(sealed)).toBe(hex(expected));
          buf.set(sealed, base);
          expect(aead.open(nonce, aad, buf.subarray(base, base + sealed.length), buf, base - shift)).toBe(
            plaintext.length,
          );
          expect(hex(buf.subarray(base - shift, base - shift + plaintext.length))).toBe(hex(plaintext));
        }
      }),
      { numRuns: 40 },
    );
  });

  it("seals the QUIC way: header (AAD) and payload in one buffer, payload sealed in place", () => {
    fc.assert(
      fc.property(aeadCase(name), fc.integer({ min: 1, max: 40 }), ({ key, messages }, shift) => {
        const { nonce, aad, plaintext } = messages[0];
        const expected = seal(node, name, key, nonce, aad, plaintext);
        for (const p of cryptoProviders) {
          const aead = p.createAead(name, key);
          const buf = new Uint8Array(aad.length + plaintext.length + 16);
          buf.set(aad);
          buf.set(plaintext, aad.length);
          const header = buf.subarray(0, aad.length);
          aead.seal(nonce, header, buf.subarray(aad.length, aad.length + plaintext.length), buf, aad.length);
          expect(hex(buf.subarray(aad.length))).toBe(hex(expected));
          expect(hex(header)).toBe(hex(aad));
          const sealed = buf.subarray(aad.length);
          expect(aead.open(nonce, header, sealed, buf, aad.length)).toBe(plaintext.length);
          expect(hex(buf.subarray(aad.length, aad.length + plaintext.length))).toBe(hex(plaintext));
          // Odd callers: an AAD that lies inside the output range is read before it is overwritten.
          const odd = new Uint8Array(plaintext.length + 16 + 40);
          odd.set(aad, shift);
          aead.seal(nonce, odd.subarray(shift, shift + aad.length), plaintext, odd, 0);
          expect(hex(odd.subarray(0, plaintext.length + 16))).toBe(hex(expected));
        }
      }),
      { numRuns: 60 },
    );
  });

  it("any single-bit flip in ciphertext, tag or AAD makes open return -1 and leaves out untouched", () => {
    fc.assert(
      fc.property(
        fixed(AEAD_KEY_LENGTH[name]),
        fixed(12),
        bytesAt(0, 40),
        bytesAt(0, 300),
        fc.nat(),
        fc.nat(7),
        (key, nonce, aad, plaintext, where, bit) => {
          const sealed = seal(node, name, key, nonce, aad, plaintext);
          const total = sealed.length + aad.length;
          const i = where % total;
          const ct = sealed.slice();
          const ad = aad.slice();
          if (i < sealed.length) ct[i] ^= 1 << bit;
          else ad[i - sealed.length] ^= 1 << bit;
          for (const p of cryptoProviders) {
            const out = new Uint8Array(plaintext.length).fill(0x5a);
            expect(p.createAead(name, key).open(nonce, ad, ct, out, 0)).toBe(-1);
            expect(out.every((x) => x === 0x5a)).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a wrong nonce or a truncated tag makes open return -1", () => {
    fc.assert(
      fc.property(
        fixed(AEAD_KEY_LENGTH[name]),
        fixed(12),
        bytesAt(0, 100),
        fc.nat(11),
        (key, nonce, pt, i) => {
          const sealed = seal(node, name, key, nonce, new Uint8Array(0), pt);
          const other = nonce.slice();
          other[i] ^= 0x80;
          for (const p of cryptoProviders) {
            expect(open(p, name, key, other, new Uint8Array(0), sealed)).toBeNull();
            expect(
              open(p, name, key, nonce, new Uint8Array(0), sealed.subarray(0, sealed.length - 1)),
            ).toBeNull();
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("header protection masks are identical", () => {
    const hpKeyLength = AEAD_KEY_LENGTH[name];
    // ChaCha20: counter 0xffffffff (sample[0..4) all ones) is a legal sample and must work.
    const sample = fc.oneof(
      bytesAt(16, 40),
      fixed(12).map((rest) => Uint8Array.from([0xff, 0xff, 0xff, 0xff, ...rest])),
    );
    fc.assert(
      fc.property(fixed(hpKeyLength), fc.array(sample, { minLength: 1, maxLength: 4 }), (key, samples) => {
        const a = node.createHeaderProtection(name, key);
        const b = noble.createHeaderProtection(name, key);
        for (const s of samples) {
          const ma = new Uint8Array(5);
          const mb = new Uint8Array(5);
          a.mask(s, ma);
          b.mask(s, mb);
          expect(hex(mb)).toBe(hex(ma));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe.each(HASHES)("%s: node ≡ noble (property)", (hash) => {
  it("hash and hmac (keys shorter and longer than the block size)", () => {
    fc.assert(
      fc.property(bytesAt(0, 300), bytesAt(0, 2000), (key, data) => {
        expect(hex(noble.hash(hash, data))).toBe(hex(node.hash(hash, data)));
        expect(hex(noble.hmac(hash, key, data))).toBe(hex(node.hmac(hash, key, data)));
      }),
      { numRuns: 200 },
    );
  });

  it("HKDF extract and expand", () => {
    const hashLen = hash === "sha256" ? 32 : 48;
    fc.assert(
      fc.property(
        bytesAt(0, 100),
        bytesAt(0, 100),
        bytesAt(0, 100),
        fc.integer({ min: 0, max: 255 * hashLen }),
        (salt, ikm, info, length) => {
          const prk = node.hkdfExtract(hash, salt, ikm);
          expect(prk).toHaveLength(hashLen);
          expect(hex(noble.hkdfExtract(hash, salt, ikm))).toBe(hex(prk));
          expect(hex(noble.hkdfExpand(hash, prk, info, length))).toBe(
            hex(node.hkdfExpand(hash, prk, info, length)),
          );
        },
      ),
      { numRuns: 100 },
    );
  });
});
