import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteWriter } from "./bytes.ts";
import { encodeHkdfLabel, hkdfExpandLabel } from "./crypto/hkdf-label.ts";
import { type AeadName, type CryptoProvider, HASH_LENGTH, type HashName } from "./crypto/provider.ts";
import { cryptoProviders } from "./crypto/providers.ts";
import { QuicError, TransportErrorCode } from "./errors.ts";
import {
  buildRetryPacket,
  type LongHeader,
  PacketDropError,
  PacketType,
  parsePacketHeader,
  type RetryHeader,
  readProtectedFields,
  type ShortHeader,
  validateRetryPacket,
  writeLongHeader,
  writeShortHeader,
} from "./packet-header.ts";
import type { PacketNumberLength } from "./packet-number.ts";
import {
  computeRetryIntegrityTag,
  createUnprotectedPacket,
  decryptPayload,
  deriveInitialKeys,
  deriveInitialSecrets,
  derivePacketKeyMaterial,
  derivePacketKeys,
  nextTrafficSecret,
  protectPacket,
  removeHeaderProtection,
  unprotectPacket,
  updatePacketKeys,
  verifyRetryIntegrityTag,
} from "./packet-protection.ts";
import { QUIC_V1, QUIC_V2, versionParams } from "./version.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

// -----------------------------------------------------------------------------------------------
// Test vectors, typed in from RFC 9001 Appendix A and RFC 9369 Appendix A.

/** Client-chosen Destination Connection ID of all the Initial/Retry examples. */
const CLIENT_DCID = hex("8394c8f03e515708");
const SERVER_SCID = hex("f067a5502a4262b5");

/** The client's CRYPTO frame (RFC 9001 A.2 = RFC 9369 A.2), padded with PADDING to 1162 bytes. */
const CLIENT_CRYPTO_FRAME = hex(
  "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868" +
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578" +
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005" +
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba" +
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400" +
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100" +
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000" +
    "75300901100f088394c8f03e51570806048000ffff",
);
const CLIENT_PAYLOAD_LENGTH = 1162;
function clientPayload(): Uint8Array {
  const p = new Uint8Array(CLIENT_PAYLOAD_LENGTH); // PADDING frames are zero bytes
  p.set(CLIENT_CRYPTO_FRAME);
  return p;
}

/** The server's ACK + CRYPTO payload (RFC 9001 A.3 = RFC 9369 A.3), no padding. */
const SERVER_PAYLOAD = hex(
  "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739" +
    "88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94" +
    "0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00" +
    "020304",
);

interface DirectionVector {
  secret: string;
  key: string;
  iv: string;
  hp: string;
}

interface VersionVector {
  name: string;
  version: number;
  initialSecret: string;
  client: DirectionVector;
  server: DirectionVector;
  clientHeader: string;
  clientSample: string;
  clientMask: string;
  clientProtectedHeader: string;
  clientPacket: string;
  serverHeader: string;
  serverSample: string;
  serverMask: string;
  serverProtectedHeader: string;
  serverPacket: string;
  retry: string;
  chacha: {
    key: string;
    iv: string;
    hp: string;
    ku: string;
    nonce: string;
    ciphertext: string;
    sample: string;
    mask: string;
    header: string;
    packet: string;
  };
}

/** RFC 9001 A.5 / RFC 9369 A.5: common inputs of the ChaCha20-Poly1305 short header example. */
const CHACHA_SECRET = hex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b");
const CHACHA_PN = 654360564;
const CHACHA_UNPROTECTED_HEADER = "4200bff4";
const CHACHA_PLAINTEXT = "01";

const V1_VECTORS: VersionVector = {
  name: "QUIC v1 (RFC 9001 Appendix A)",
  version: QUIC_V1,
  initialSecret: "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44",
  client: {
    secret: "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea",
    key: "1f369613dd76d5467730efcbe3b1a22d",
    iv: "fa044b2f42a3fd3b46fb255c",
    hp: "9f50449e04a0e810283a1e9933adedd2",
  },
  server: {
    secret: "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b",
    key: "cf3a5331653c364c88f0f379b6067e37",
    iv: "0ac1493ca1905853b0bba03e",
    hp: "c206b8d9b9f0f37644430b490eeaa314",
  },
  clientHeader: "c300000001088394c8f03e5157080000449e00000002",
  clientSample: "d1b1c98dd7689fb8ec11d242b123dc9b",
  clientMask: "437b9aec36",
  clientProtectedHeader: "c000000001088394c8f03e5157080000449e7b9aec34",
  clientPacket:
    "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11" +
    "d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399" +
    "1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c" +
    "8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212" +
    "30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5" +
    "457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208" +
    "4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec" +
    "4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3" +
    "485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db" +
    "059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c" +
    "7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8" +
    "9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556" +
    "be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74" +
    "68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a" +
    "c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00" +
    "f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632" +
    "291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964" +
    "25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd" +
    "14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff" +
    "ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198" +
    "e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd" +
    "c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73" +
    "203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f" +
    "cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e" +
    "fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade" +
    "a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047" +
    "90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2" +
    "162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4" +
    "40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0" +
    "6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e" +
    "8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0" +
    "be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400" +
    "54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab" +
    "760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9" +
    "f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4" +
    "056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064" +
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241" +
    "e221af44860018ab0856972e194cd934",
  serverHeader: "c1000000010008f067a5502a4262b50040750001",
  serverSample: "2cd0991cd25b0aac406a5816b6394100",
  serverMask: "2ec0d8356a",
  serverProtectedHeader: "cf000000010008f067a5502a4262b5004075c0d9",
  serverPacket:
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a" +
    "5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3" +
    "dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84" +
    "022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4" +
    "2158407dd074ee",
  retry: "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba",
  chacha: {
    key: "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8",
    iv: "e0459b3474bdd0e44a41c144",
    hp: "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4",
    ku: "1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9",
    nonce: "e0459b3474bdd0e46d417eb0",
    ciphertext: "655e5cd55c41f69080575d7999c25a5bfb",
    sample: "5e5cd55c41f69080575d7999c25a5bfb",
    mask: "aefefe7d03",
    header: "4cfe4189",
    packet: "4cfe4189655e5cd55c41f69080575d7999c25a5bfb",
  },
};

const V2_VECTORS: VersionVector = {
  name: "QUIC v2 (RFC 9369 Appendix A)",
  version: QUIC_V2,
  initialSecret: "2062e8b3cd8d52092614b8071d0aa1fb7c2e3ac193f78b280e72d8f5751f6aba",
  client: {
    secret: "14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b",
    key: "8b1a0bc121284290a29e0971b5cd045d",
    iv: "91f73e2351d8fa91660e909f",
    hp: "45b95e15235d6f45a6b19cbcb0294ba9",
  },
  server: {
    secret: "0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1",
    key: "82db637861d55e1d011f19ea71d5d2a7",
    iv: "dd13c276499c0249d3310652",
    hp: "edf6d05c83121201b436e16877593c3a",
  },
  clientHeader: "d36b3343cf088394c8f03e5157080000449e00000002",
  clientSample: "ffe67b6abcdb4298b485dd04de806071",
  clientMask: "94a0c95e80",
  clientProtectedHeader: "d76b3343cf088394c8f03e5157080000449ea0c95e82",
  clientPacket:
    "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485" +
    "dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04" +
    "9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d" +
    "250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a" +
    "12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500" +
    "cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68" +
    "18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33" +
    "12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3" +
    "d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd" +
    "6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520" +
    "bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045" +
    "636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f" +
    "ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12" +
    "16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5" +
    "4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4" +
    "fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b" +
    "8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7" +
    "14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9" +
    "9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91" +
    "abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd" +
    "80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db" +
    "848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18" +
    "d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15" +
    "c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc" +
    "7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61" +
    "f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710" +
    "10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b" +
    "3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e" +
    "06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce" +
    "8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1" +
    "34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1" +
    "e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd" +
    "5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3" +
    "8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89" +
    "d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53" +
    "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19" +
    "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b" +
    "a18b2faa745b6fe189cf772a9f84cbfc",
  serverHeader: "d16b3343cf0008f067a5502a4262b50040750001",
  serverSample: "6f05d8a4398c47089698baeea26b91eb",
  serverMask: "4dd92e91ea",
  serverProtectedHeader: "dc6b3343cf0008f067a5502a4262b5004075d92f",
  serverPacket:
    "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698" +
    "baeea26b91eb761d9b89237bbf87263017915358230035f7fd3945d88965cf17" +
    "f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2" +
    "c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca8" +
    "4bed8521e2e140",
  retry: "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6",
  chacha: {
    key: "3bfcddd72bcf02541d7fa0dd1f5f9eeea817e09a6963a0e6c7df0f9a1bab90f2",
    iv: "a6b5bc6ab7dafce30ffff5dd",
    hp: "d659760d2ba434a226fd37b35c69e2da8211d10c4f12538787d65645d5d1b8e2",
    ku: "c69374c49e3d2a9466fa689e49d476db5d0dfbc87d32ceeaa6343fd0ae4c7d88",
    nonce: "a6b5bc6ab7dafce328ff4a29",
    ciphertext: "0ae7b6b932bc27d786f4bc2bb20f2162ba",
    sample: "e7b6b932bc27d786f4bc2bb20f2162ba",
    mask: "97580e32bf",
    header: "5558b1c6",
    packet: "5558b1c60ae7b6b932bc27d786f4bc2bb20f2162ba",
  },
};

// -----------------------------------------------------------------------------------------------

describe("HKDF-Expand-Label (RFC 8446 §7.1)", () => {
  it("builds the HkdfLabel structures listed in RFC 9001 A.1 and RFC 9369 A.1", () => {
    const empty = new Uint8Array(0);
    expect(toHex(encodeHkdfLabel("client in", empty, 32))).toBe("00200f746c73313320636c69656e7420696e00");
    expect(toHex(encodeHkdfLabel("server in", empty, 32))).toBe("00200f746c7331332073657276657220696e00");
    expect(toHex(encodeHkdfLabel("quic key", empty, 16))).toBe("00100e746c7331332071756963206b657900");
    expect(toHex(encodeHkdfLabel("quic iv", empty, 12))).toBe("000c0d746c733133207175696320697600");
    expect(toHex(encodeHkdfLabel("quic hp", empty, 16))).toBe("00100d746c733133207175696320687000");
    expect(toHex(encodeHkdfLabel("quicv2 key", empty, 16))).toBe("001010746c73313320717569637632206b657900");
    expect(toHex(encodeHkdfLabel("quicv2 iv", empty, 12))).toBe("000c0f746c7331332071756963763220697600");
    expect(toHex(encodeHkdfLabel("quicv2 hp", empty, 16))).toBe("00100f746c7331332071756963763220687000");
  });

  it("encodes a context and rejects oversize inputs", () => {
    expect(toHex(encodeHkdfLabel("x", hex("aabb"), 1))).toBe("000107746c7331332078" + "02aabb");
    expect(() => encodeHkdfLabel("x".repeat(250), new Uint8Array(0), 1)).toThrow();
    expect(() => encodeHkdfLabel("x", new Uint8Array(256), 1)).toThrow();
    expect(() => encodeHkdfLabel("x", new Uint8Array(0), 0x10000)).toThrow();
  });
});

/** Reference ChaCha20 block function (RFC 8439 §2.3), for checking header protection masks. */
function chacha20Block(key: Uint8Array, counter: number, nonce: Uint8Array): Uint8Array {
  const le = (b: Uint8Array, i: number) =>
    (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
  const s = new Uint32Array(16);
  s.set([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);
  for (let i = 0; i < 8; i++) s[4 + i] = le(key, 4 * i);
  s[12] = counter;
  for (let i = 0; i < 3; i++) s[13 + i] = le(nonce, 4 * i);
  const x = s.slice();
  const rotl = (v: number, n: number) => (v << n) | (v >>> (32 - n));
  const qr = (a: number, b: number, c: number, d: number) => {
    x[a] += x[b];
    x[d] = rotl(x[d] ^ x[a], 16);
    x[c] += x[d];
    x[b] = rotl(x[b] ^ x[c], 12);
    x[a] += x[b];
    x[d] = rotl(x[d] ^ x[a], 8);
    x[c] += x[d];
    x[b] = rotl(x[b] ^ x[c], 7);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12);
    qr(1, 5, 9, 13);
    qr(2, 6, 10, 14);
    qr(3, 7, 11, 15);
    qr(0, 5, 10, 15);
    qr(1, 6, 11, 12);
    qr(2, 7, 8, 13);
    qr(3, 4, 9, 14);
  }
  const out = new Uint8Array(64);
  for (let i = 0; i < 16; i++) {
    const w = (x[i] + s[i]) >>> 0;
    out[4 * i] = w;
    out[4 * i + 1] = w >>> 8;
    out[4 * i + 2] = w >>> 16;
    out[4 * i + 3] = w >>> 24;
  }
  return out;
}

for (const provider of cryptoProviders) {
  describe(`packet protection [${provider.name}]`, () => {
    for (const v of [V1_VECTORS, V2_VECTORS]) {
      describe(v.name, () => {
        it("derives the Initial secrets and keys (A.1)", () => {
          const s = deriveInitialSecrets(provider, v.version, CLIENT_DCID);
          expect(toHex(s.initialSecret)).toBe(v.initialSecret);
          expect(toHex(s.client)).toBe(v.client.secret);
          expect(toHex(s.server)).toBe(v.server.secret);
          for (const [secret, d] of [
            [s.client, v.client],
            [s.server, v.server],
          ] as const) {
            const m = derivePacketKeyMaterial(provider, "aes-128-gcm", "sha256", secret, v.version);
            expect(toHex(m.key)).toBe(d.key);
            expect(toHex(m.iv)).toBe(d.iv);
            expect(toHex(m.hpKey)).toBe(d.hp);
          }
        });

        it("derives the Retry integrity key and nonce from the Retry secret (RFC 9001 §5.8, RFC 9369 §3.3.3)", () => {
          const p = versionParams(v.version)!;
          const empty = new Uint8Array(0);
          expect(toHex(hkdfExpandLabel(provider, "sha256", p.retrySecret, p.labels.key, empty, 16))).toBe(
            toHex(p.retryKey),
          );
          expect(toHex(hkdfExpandLabel(provider, "sha256", p.retrySecret, p.labels.iv, empty, 12))).toBe(
            toHex(p.retryNonce),
          );
        });

        it("computes the header protection masks of the examples (AES-ECB, §5.4.3)", () => {
          const keys = deriveInitialKeys(provider, v.version, CLIENT_DCID);
          const mask = new Uint8Array(5);
          keys.client.hp.mask(hex(v.clientSample), mask);
          expect(toHex(mask)).toBe(v.clientMask);
          keys.server.hp.mask(hex(v.serverSample), mask);
          expect(toHex(mask)).toBe(v.serverMask);
        });

        it("protects the client Initial to the exact bytes (A.2)", () => {
          const keys = deriveInitialKeys(provider, v.version, CLIENT_DCID);
          // One 1200-byte buffer: header (22) ‖ payload (1162) ‖ room for the tag (16).
          const buf = new Uint8Array(1200);
          const w = new ByteWriter(buf);
          const pnOffset = writeLongHeader(w, {
            type: PacketType.Initial,
            version: v.version,
            dcid: CLIENT_DCID,
            scid: new Uint8Array(0),
            packetNumber: 2,
            pnLength: 4,
            length: 4 + CLIENT_PAYLOAD_LENGTH + 16, // 1182, "the 4-byte packet number, 1162 bytes of frames, and the 16-byte authentication tag"
          });
          expect(toHex(w.written())).toBe(v.clientHeader);
          expect(pnOffset).toBe(18);
          buf.set(clientPayload(), w.pos);
          const end = protectPacket(keys.client, buf, 0, pnOffset, w.pos + CLIENT_PAYLOAD_LENGTH, 2);
          expect(end).toBe(1200);
          expect(toHex(buf.subarray(22, 38))).toBe(v.clientSample);
          expect(toHex(keys.client.mask)).toBe(v.clientMask);
          expect(toHex(buf.subarray(0, 22))).toBe(v.clientProtectedHeader);
          expect(toHex(buf)).toBe(v.clientPacket);
        });

        it("unprotects the client Initial to the exact header, payload and packet number (A.2)", () => {
          const keys = deriveInitialKeys(provider, v.version, CLIENT_DCID);
          const buf = hex(v.clientPacket);
          const h = parsePacketHeader(buf, 0, { localCidLength: 8 }) as LongHeader;
          expect(h.type).toBe(PacketType.Initial);
          expect(h.version).toBe(v.version);
          expect(toHex(h.dcid)).toBe(toHex(CLIENT_DCID));
          expect(h.scid.length).toBe(0);
          expect(h.token.length).toBe(0);
          expect(h.length).toBe(1182);
          expect(h.pnOffset).toBe(18);
          expect(h.packetEnd).toBe(1200);
          const out = createUnprotectedPacket();
          const n = unprotectPacket(keys.client, buf, h.packetStart, h.pnOffset, h.packetEnd, -1, out);
          expect(n).toBe(CLIENT_PAYLOAD_LENGTH);
          expect(out.packetNumber).toBe(2);
          expect(out.pnLength).toBe(4);
          expect(out.payloadOffset).toBe(22);
          expect(out.payloadLength).toBe(CLIENT_PAYLOAD_LENGTH);
          expect(toHex(buf.subarray(0, 22))).toBe(v.clientHeader);
          expect(toHex(buf.subarray(22, 22 + n))).toBe(toHex(clientPayload()));
        });

        it("protects the server Initial to the exact bytes (A.3)", () => {
          const keys = deriveInitialKeys(provider, v.version, CLIENT_DCID);
          const buf = new Uint8Array(20 + SERVER_PAYLOAD.length + 16);
          const w = new ByteWriter(buf);
          const pnOffset = writeLongHeader(w, {
            type: PacketType.Initial,
            version: v.version,
            dcid: new Uint8Array(0),
            scid: SERVER_SCID,
            packetNumber: 1,
            pnLength: 2,
            length: 2 + SERVER_PAYLOAD.length + 16,
          });
          expect(toHex(w.written())).toBe(v.serverHeader);
          buf.set(SERVER_PAYLOAD, w.pos);
          const end = protectPacket(keys.server, buf, 0, pnOffset, w.pos + SERVER_PAYLOAD.length, 1);
          expect(end).toBe(buf.length);
          expect(toHex(buf.subarray(pnOffset + 4, pnOffset + 20))).toBe(v.serverSample);
          expect(toHex(buf.subarray(0, 20))).toBe(v.serverProtectedHeader);
          expect(toHex(buf)).toBe(v.serverPacket);
        });

        it("unprotects the server Initial to the exact header, payload and packet number (A.3)", () => {
          const keys = deriveInitialKeys(provider, v.version, CLIENT_DCID);
          const buf = hex(v.serverPacket);
          const h = parsePacketHeader(buf, 0, { localCidLength: 0 }) as LongHeader;
          expect(h.type).toBe(PacketType.Initial);
          expect(toHex(h.scid)).toBe(toHex(SERVER_SCID));
          expect(h.dcid.length).toBe(0);
          const out = createUnprotectedPacket();
          const n = unprotectPacket(keys.server, buf, h.packetStart, h.pnOffset, h.packetEnd, -1, out);
          expect(n).toBe(SERVER_PAYLOAD.length);
          expect(out.packetNumber).toBe(1);
          expect(out.pnLength).toBe(2);
          expect(toHex(buf.subarray(0, 20))).toBe(v.serverHeader);
          expect(toHex(buf.subarray(out.payloadOffset, out.payloadOffset + n))).toBe(toHex(SERVER_PAYLOAD));
        });

        it("does not open the server Initial with the client's keys", () => {
          const keys = deriveInitialKeys(provider, v.version, CLIENT_DCID);
          const buf = hex(v.serverPacket);
          const h = parsePacketHeader(buf, 0, { localCidLength: 0 }) as LongHeader;
          const out = createUnprotectedPacket();
          expect(unprotectPacket(keys.client, buf, h.packetStart, h.pnOffset, h.packetEnd, -1, out)).toBe(-1);
        });

        it("builds and validates the Retry packet (A.4)", () => {
          const retry = buildRetryPacket(
            provider,
            {
              version: v.version,
              dcid: new Uint8Array(0),
              scid: SERVER_SCID,
              token: new TextEncoder().encode("token"),
              unusedBits: 0x0f,
            },
            CLIENT_DCID,
          );
          expect(toHex(retry)).toBe(v.retry);
          const buf = hex(v.retry);
          const h = parsePacketHeader(buf, 0, { localCidLength: 0 }) as RetryHeader;
          expect(h.type).toBe(PacketType.Retry);
          expect(new TextDecoder().decode(h.token)).toBe("token");
          expect(toHex(h.integrityTag)).toBe(v.retry.slice(-32));
          expect(validateRetryPacket(provider, buf, h, CLIENT_DCID)).toBe(true);
          expect(verifyRetryIntegrityTag(provider, v.version, CLIENT_DCID, buf)).toBe(true);
          expect(
            toHex(
              computeRetryIntegrityTag(provider, v.version, CLIENT_DCID, buf.subarray(0, buf.length - 16)),
            ),
          ).toBe(v.retry.slice(-32));
          // A different ODCID, a corrupted byte, or the other version's keys: tag does not verify.
          expect(validateRetryPacket(provider, buf, h, hex("8394c8f03e515709"))).toBe(false);
          const other = v.version === QUIC_V1 ? QUIC_V2 : QUIC_V1;
          expect(verifyRetryIntegrityTag(provider, other, CLIENT_DCID, buf)).toBe(false);
          for (let i = 0; i < buf.length; i++) {
            const bad = buf.slice();
            bad[i] ^= 0x01;
            expect(verifyRetryIntegrityTag(provider, v.version, CLIENT_DCID, bad)).toBe(false);
          }
          // RFC 9000 §17.2.5.1: a Retry whose SCID equals the client's DCID is discarded.
          const echo = buildRetryPacket(
            provider,
            { version: v.version, dcid: new Uint8Array(0), scid: hex("01"), token: hex("aa") },
            hex("02"),
          );
          const eh = parsePacketHeader(echo, 0, { localCidLength: 0 }) as RetryHeader;
          expect(validateRetryPacket(provider, echo, eh, hex("02"))).toBe(true);
          expect(validateRetryPacket(provider, echo, eh, hex("01"))).toBe(false);
        });

        describe("ChaCha20-Poly1305 short header packet (A.5)", () => {
          it("derives key, iv, hp and the key update secret", () => {
            const m = derivePacketKeyMaterial(
              provider,
              "chacha20-poly1305",
              "sha256",
              CHACHA_SECRET,
              v.version,
            );
            expect(toHex(m.key)).toBe(v.chacha.key);
            expect(toHex(m.iv)).toBe(v.chacha.iv);
            expect(toHex(m.hpKey)).toBe(v.chacha.hp);
            expect(toHex(nextTrafficSecret(provider, "sha256", CHACHA_SECRET, v.version))).toBe(v.chacha.ku);
          });

          it("protects to the exact 21 bytes", () => {
            const keys = derivePacketKeys(provider, "chacha20-poly1305", "sha256", CHACHA_SECRET, v.version);
            const buf = new Uint8Array(21);
            const w = new ByteWriter(buf);
            const pnOffset = writeShortHeader(w, {
              dcid: new Uint8Array(0),
              packetNumber: CHACHA_PN,
              pnLength: 3,
              keyPhase: 0,
            });
            expect(toHex(w.written())).toBe(CHACHA_UNPROTECTED_HEADER);
            buf.set(hex(CHACHA_PLAINTEXT), w.pos);
            expect(protectPacket(keys, buf, 0, pnOffset, w.pos + 1, CHACHA_PN)).toBe(21);
            expect(toHex(keys.nonce)).toBe(v.chacha.nonce);
            expect(toHex(buf.subarray(4))).toBe(v.chacha.ciphertext);
            expect(toHex(keys.sample)).toBe(v.chacha.sample);
            expect(toHex(keys.mask)).toBe(v.chacha.mask);
            expect(toHex(buf.subarray(0, 4))).toBe(v.chacha.header);
            expect(toHex(buf)).toBe(v.chacha.packet);
          });

          it("unprotects to the exact header, payload and packet number", () => {
            const keys = derivePacketKeys(provider, "chacha20-poly1305", "sha256", CHACHA_SECRET, v.version);
            const buf = hex(v.chacha.packet);
            const h = parsePacketHeader(buf, 0, { localCidLength: 0 }) as ShortHeader;
            expect(h.type).toBe(PacketType.OneRtt);
            expect(h.pnOffset).toBe(1);
            const out = createUnprotectedPacket();
            const n = unprotectPacket(keys, buf, 0, h.pnOffset, h.packetEnd, CHACHA_PN - 1, out);
            expect(n).toBe(1);
            expect(out.packetNumber).toBe(CHACHA_PN);
            expect(out.pnLength).toBe(3);
            expect(toHex(buf.subarray(0, 4))).toBe(CHACHA_UNPROTECTED_HEADER);
            expect(toHex(buf.subarray(4, 5))).toBe(CHACHA_PLAINTEXT);
            const f = readProtectedFields(buf, 0, h.pnOffset, CHACHA_PN - 1);
            expect(f.truncatedPn).toBe(49140);
            expect(f.packetNumber).toBe(CHACHA_PN);
            expect(f.keyPhase).toBe(0);
            expect(f.reservedBits).toBe(0);
          });

          it("recovers the packet number from any largest_pn within the 24-bit window", () => {
            const keys = derivePacketKeys(provider, "chacha20-poly1305", "sha256", CHACHA_SECRET, v.version);
            for (const largest of [CHACHA_PN - 0x7fffff, CHACHA_PN - 1000, CHACHA_PN + 0x7ffffe]) {
              const buf = hex(v.chacha.packet);
              const out = createUnprotectedPacket();
              expect(unprotectPacket(keys, buf, 0, 1, buf.length, largest, out)).toBe(1);
              expect(out.packetNumber).toBe(CHACHA_PN);
            }
          });

          it("computes the ChaCha20 mask with the sample's first 4 bytes as little-endian counter (§5.4.4)", () => {
            const keys = derivePacketKeys(provider, "chacha20-poly1305", "sha256", CHACHA_SECRET, v.version);
            const hpKey = hex(v.chacha.hp);
            const sample = hex(v.chacha.sample);
            const counter = (sample[0] | (sample[1] << 8) | (sample[2] << 16) | (sample[3] << 24)) >>> 0;
            expect(toHex(chacha20Block(hpKey, counter, sample.subarray(4)).subarray(0, 5))).toBe(
              v.chacha.mask,
            );
            const mask = new Uint8Array(5);
            // Edge counters, including 0xffffffff (a single block: no wrap-around involved).
            for (const c of [0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]) {
              const s = sample.slice();
              s[0] = c;
              s[1] = c >>> 8;
              s[2] = c >>> 16;
              s[3] = c >>> 24;
              keys.hp.mask(s, mask);
              expect(toHex(mask)).toBe(toHex(chacha20Block(hpKey, c, s.subarray(4)).subarray(0, 5)));
            }
          });
        });

        it("key update: next secret, new key and IV, same header protection (RFC 9001 §6.1)", () => {
          const hash: HashName = "sha256";
          const keys = derivePacketKeys(provider, "chacha20-poly1305", hash, CHACHA_SECRET, v.version);
          const ku = nextTrafficSecret(provider, hash, CHACHA_SECRET, v.version);
          expect(toHex(ku)).toBe(v.chacha.ku);
          const next = updatePacketKeys(provider, keys, hash, ku, v.version);
          expect(next.hp).toBe(keys.hp);
          const m0 = derivePacketKeyMaterial(provider, "chacha20-poly1305", hash, CHACHA_SECRET, v.version);
          const m1 = derivePacketKeyMaterial(provider, "chacha20-poly1305", hash, ku, v.version);
          expect(toHex(m1.key)).not.toBe(toHex(m0.key));
          expect(toHex(next.iv)).toBe(toHex(m1.iv));
          expect(toHex(next.iv)).not.toBe(toHex(keys.iv));
          // The secret after that differs again.
          const ku2 = nextTrafficSecret(provider, hash, ku, v.version);
          expect(toHex(ku2)).not.toBe(toHex(ku));
          expect(ku2.length).toBe(32);

          // A packet in key phase 1: header protection comes off with the old keys' hp (it is the
          // same), the key phase bit selects the new keys, which alone open it.
          const buf = new Uint8Array(64);
          const w = new ByteWriter(buf);
          const dcid = hex("0102030405060708");
          const pn = 1000;
          const pnOffset = writeShortHeader(w, { dcid, packetNumber: pn, pnLength: 2, keyPhase: 1 });
          buf.fill(0x01, w.pos, w.pos + 20);
          const end = protectPacket(next, buf, 0, pnOffset, w.pos + 20, pn);
          const packet = buf.slice(0, end);

          const rx = packet.slice();
          const h = parsePacketHeader(rx, 0, { localCidLength: 8 }) as ShortHeader;
          expect(removeHeaderProtection(keys, rx, 0, h.pnOffset, h.packetEnd)).toBe(2);
          const f = readProtectedFields(rx, 0, h.pnOffset, 999);
          expect(f.keyPhase).toBe(1);
          expect(f.packetNumber).toBe(pn);
          const attempt = rx.slice();
          expect(decryptPayload(keys, attempt, 0, f.payloadOffset, h.packetEnd, pn)).toBe(-1);
          expect(decryptPayload(next, rx, 0, f.payloadOffset, h.packetEnd, pn)).toBe(20);
          expect([...rx.subarray(f.payloadOffset, f.payloadOffset + 20)].every((b) => b === 1)).toBe(true);
        });
      });
    }

    it("drops tampered packets silently (-1), never throwing", () => {
      const buf0 = hex(V1_VECTORS.serverPacket);
      const out = createUnprotectedPacket();
      for (let i = 0; i < buf0.length; i++) {
        const keys = deriveInitialKeys(provider, QUIC_V1, CLIENT_DCID);
        const buf = buf0.slice();
        buf[i] ^= 0x40;
        let h: LongHeader;
        try {
          h = parsePacketHeader(buf, 0, { localCidLength: 0 }) as LongHeader;
        } catch (e) {
          expect(e).toBeInstanceOf(PacketDropError);
          continue;
        }
        if (h.type !== PacketType.Initial) continue;
        expect(unprotectPacket(keys.server, buf, h.packetStart, h.pnOffset, h.packetEnd, -1, out)).toBe(-1);
      }
    });

    it("drops packets too short for the header protection sample (§5.4.2)", () => {
      const keys = derivePacketKeys(provider, "chacha20-poly1305", "sha256", CHACHA_SECRET, QUIC_V1);
      const buf = hex(V1_VECTORS.chacha.packet);
      const out = createUnprotectedPacket();
      expect(unprotectPacket(keys, buf, 0, 1, 20, CHACHA_PN - 1, out)).toBe(-1);
      expect(removeHeaderProtection(keys, buf, 0, 1, 20)).toBe(-1);
      expect(toHex(buf)).toBe(V1_VECTORS.chacha.packet); // untouched
    });

    it("refuses to protect a packet whose sample would not fit (caller must pad)", () => {
      const keys = derivePacketKeys(provider, "chacha20-poly1305", "sha256", CHACHA_SECRET, QUIC_V1);
      const buf = new Uint8Array(64);
      const w = new ByteWriter(buf);
      const pnOffset = writeShortHeader(w, {
        dcid: new Uint8Array(0),
        packetNumber: 5,
        pnLength: 1,
        keyPhase: 0,
      });
      buf[w.pos] = 0x01; // 1-byte pn + 1-byte payload < 4
      expect(() => protectPacket(keys, buf, 0, pnOffset, w.pos + 1, 5)).toThrow(/sample/);
      expect(() => protectPacket(keys, new Uint8Array(10), 0, 1, 8, 5)).toThrow();
    });

    it("treats set reserved bits after successful decryption as PROTOCOL_VIOLATION (RFC 9000 §17.2, §17.3.1)", () => {
      for (const long of [false, true]) {
        const keys = deriveInitialKeys(provider, QUIC_V1, CLIENT_DCID).client;
        const buf = new Uint8Array(100);
        const w = new ByteWriter(buf);
        const pnOffset = long
          ? writeLongHeader(w, {
              type: PacketType.Handshake,
              version: QUIC_V1,
              dcid: CLIENT_DCID,
              scid: CLIENT_DCID,
              packetNumber: 7,
              pnLength: 1,
              length: 1 + 30 + 16,
            })
          : writeShortHeader(w, { dcid: CLIENT_DCID, packetNumber: 7, pnLength: 1, keyPhase: 0 });
        buf[0] |= long ? 0x04 : 0x08; // a reserved bit
        const end = protectPacket(keys, buf, 0, pnOffset, w.pos + 30, 7);
        const h = parsePacketHeader(buf.subarray(0, end), 0, { localCidLength: 8 });
        if (h.type !== PacketType.Handshake && h.type !== PacketType.OneRtt)
          throw new Error("unexpected type");
        const out = createUnprotectedPacket();
        let err: unknown;
        try {
          unprotectPacket(keys, buf, 0, h.pnOffset, h.packetEnd, -1, out);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(QuicError);
        expect(err).not.toBeInstanceOf(PacketDropError);
        expect((err as QuicError).code).toBe(TransportErrorCode.PROTOCOL_VIOLATION);
        expect(out.payloadLength).toBe(30);
      }
    });

    it("round-trips random packets for every AEAD, version and header form", () => {
      const suites: [AeadName, HashName][] = [
        ["aes-128-gcm", "sha256"],
        ["aes-256-gcm", "sha384"],
        ["chacha20-poly1305", "sha256"],
      ];
      fc.assert(
        fc.property(
          fc.constantFrom(...suites),
          fc.constantFrom(QUIC_V1, QUIC_V2),
          fc.constantFrom<0 | 1 | 2 | 3>(0, 1, 2, 3),
          fc.uint8Array({ minLength: 48, maxLength: 48 }),
          fc.uint8Array({ minLength: 0, maxLength: 20 }),
          fc.integer({ min: 0, max: 2 ** 40 }),
          fc.integer({ min: 1, max: 4 }),
          fc.uint8Array({ minLength: 3, maxLength: 300 }),
          ([aead, hash], version, kind, secret, cid, pn, pnLen, payload) => {
            const pnLength = pnLen as PacketNumberLength;
            const keys = derivePacketKeys(
              provider,
              aead,
              hash,
              secret.subarray(0, HASH_LENGTH[hash]),
              version,
            );
            const buf = new Uint8Array(128 + payload.length);
            const w = new ByteWriter(buf);
            const length = pnLength + payload.length + 16;
            const pnOffset =
              kind === 3
                ? writeShortHeader(w, { dcid: cid, packetNumber: pn, pnLength, keyPhase: (pn & 1) as 0 | 1 })
                : writeLongHeader(w, {
                    type: kind,
                    version,
                    dcid: cid,
                    scid: cid,
                    token: kind === PacketType.Initial ? payload.subarray(0, 2) : undefined,
                    packetNumber: pn,
                    pnLength,
                    length,
                  });
            const headerBytes = buf.slice(0, w.pos);
            buf.set(payload, w.pos);
            const end = protectPacket(keys, buf, 0, pnOffset, w.pos + payload.length, pn);
            const h = parsePacketHeader(buf.subarray(0, end), 0, { localCidLength: cid.length });
            expect(h.type).toBe(kind === 3 ? PacketType.OneRtt : kind);
            if (h.type === PacketType.Retry || h.type === PacketType.VersionNegotiation)
              throw new Error("bad type");
            if (h.type === PacketType.UnsupportedVersion) throw new Error("bad type");
            expect(h.pnOffset).toBe(pnOffset);
            expect(h.packetEnd).toBe(end);
            // The largest received packet number is anywhere in the decodable window.
            const largest = Math.max(-1, pn - 1 - Math.floor(2 ** (8 * pnLength - 2)));
            const out = createUnprotectedPacket();
            const n = unprotectPacket(keys, buf, 0, pnOffset, end, largest, out);
            expect(n).toBe(payload.length);
            expect(out.packetNumber).toBe(pn);
            expect(toHex(buf.subarray(0, out.payloadOffset))).toBe(toHex(headerBytes));
            expect(toHex(buf.subarray(out.payloadOffset, out.payloadOffset + n))).toBe(toHex(payload));
          },
        ),
        { numRuns: 150 },
      );
    });
  });
}

describe("packet protection across providers", () => {
  it("a packet protected by one provider is unprotected by the other", () => {
    const [a, b] = cryptoProviders as [CryptoProvider, CryptoProvider];
    if (b === undefined) return;
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      for (const aead of ["aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"] as const) {
        const secret = new Uint8Array(32).fill(7);
        const tx = derivePacketKeys(from, aead, "sha256", secret, QUIC_V2);
        const rx = derivePacketKeys(to, aead, "sha256", secret, QUIC_V2);
        const buf = new Uint8Array(200);
        const w = new ByteWriter(buf);
        const pnOffset = writeShortHeader(w, {
          dcid: hex("aabbccdd"),
          packetNumber: 0x1234567,
          pnLength: 4,
          keyPhase: 1,
        });
        buf.fill(0x5a, w.pos, w.pos + 100);
        const end = protectPacket(tx, buf, 0, pnOffset, w.pos + 100, 0x1234567);
        const out = createUnprotectedPacket();
        expect(unprotectPacket(rx, buf, 0, pnOffset, end, 0x1234566, out)).toBe(100);
        expect(out.packetNumber).toBe(0x1234567);
      }
    }
  });
});
