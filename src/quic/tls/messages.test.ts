/**
 * Handshake message codec tests: RFC 8448 traces (exact bytes in, same bytes out), round-trip
 * properties for every message kind, hostile-input properties and negative cases.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import {
  type CertificateRequestExtension,
  type ClientHelloExtension,
  type EncryptedExtension,
  ExtensionType,
  findExtension,
  findRawExtension,
  type HelloRetryRequestExtension,
  type KeyShareEntry,
  NamedGroup,
  type NewSessionTicketExtension,
  PskKeyExchangeMode,
  type RawExtension,
  type ServerHelloExtension,
  SignatureScheme,
  sniHostName,
  TLS13_VERSION,
  TYPED_EXTENSIONS,
} from "./extensions.ts";
import { HandshakeBuffer } from "./handshake-buffer.ts";
import {
  type Certificate,
  type CertificateRequest,
  type CertificateVerify,
  CipherSuite,
  type ClientHello,
  clientHelloBindersOffset,
  decodeHandshake,
  decodeHandshakeMessage,
  type EncryptedExtensions,
  encodeClientHello,
  encodeHandshakeMessage,
  type Finished,
  type HandshakeMessage,
  HandshakeType,
  HELLO_RETRY_REQUEST_RANDOM,
  type HelloRetryRequest,
  handshakeMessageSize,
  messageHash,
  type NewSessionTicket,
  patchBinders,
  type ServerHello,
} from "./messages.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Handshake messages from RFC 8448 (/work/shared/specs/rfc8448-tls13-traces.txt), header included. */
const V = {
  // ClientHello (196 octets), RFC 8448 line 175
  CH: hex(
    "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece700000613011303130201" +
      "0000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400" +
      "230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b00" +
      "03020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c" +
      "00024001",
  ),
  // ServerHello (90 octets), RFC 8448 line 239
  SH: hex(
    "020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024" +
      "001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304",
  ),
  // EncryptedExtensions (40 octets), RFC 8448 line 374
  EE: hex("080000240022000a00140012001d00170018001901000101010201030104001c0002400100000000"),
  // Certificate (445 octets), RFC 8448 line 380
  CERT: hex(
    "0b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a" +
      "06035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a" +
      "0603550403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d98" +
      "0836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced4312" +
      "0998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d0" +
      "3e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b060355" +
      "1d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f" +
      "8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102" +
      "702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8" +
      "f8961229ac9187b42b4de10000",
  ),
  // CertificateVerify (136 octets), RFC 8448 line 413
  CV: hex(
    "0f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc90db78e2d3" +
      "3a5c141a078653fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671459e46445c" +
      "9ea58c181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3",
  ),
  // Finished (36 octets), RFC 8448 line 439
  FIN: hex("140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718"),
  // NewSessionTicket (205 octets), RFC 8448 line 762
  NST: hex(
    "040000c90000001efad6aac502000000b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf" +
      "1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827" +
      "db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228" +
      "bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934a" +
      "e4d3570008002a000400000400",
  ),
  // ClientHello (477 octets), RFC 8448 line 884
  CH_PREFIX_0RTT: hex(
    "010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d9500000613011303130201" +
      "0001cd0000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400" +
      "3300260024001d0020e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b002a0000002b00" +
      "03020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c" +
      "000240010015005700000000000000000000000000000000000000000000000000000000000000000000000000000000" +
      "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
      "2900dd00b800b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c936" +
      "7c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3" +
      "664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf2" +
      "97b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d357fad6aacb",
  ),
  // ClientHello with binders (512 octets), RFC 8448 line 970
  CH_0RTT: hex(
    "010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d9500000613011303130201" +
      "0001cd0000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400" +
      "3300260024001d0020e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b002a0000002b00" +
      "03020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c" +
      "000240010015005700000000000000000000000000000000000000000000000000000000000000000000000000000000" +
      "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
      "2900dd00b800b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c936" +
      "7c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3" +
      "664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf2" +
      "97b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d357fad6aacb002120" +
      "3add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d",
  ),
  // ServerHello (96 octets), RFC 8448 line 1108
  SH_0RTT: hex(
    "0200005c03033ccfd2dec890222763472ae8136777c9d7358777bb66e91ea5122495f559ea2d00130100003400290002" +
      "000000330024001d0020121761ee42c333e1b9e77b60dd57c2053cd94512ab47f115e86eff50942cea31002b00020304",
  ),
  // EncryptedExtensions (44 octets), RFC 8448 line 1253
  EE_0RTT: hex("080000280026000a00140012001d00170018001901000101010201030104001c0002400100000000002a0000"),
  // Finished (36 octets), RFC 8448 line 1275
  FIN_0RTT: hex("1400002048d3e0e1b3d907c6acff145e16090388c77b05c050b634ab1a88bbd0dd1a34b2"),
  // EndOfEarlyData (4 octets), RFC 8448 line 1429
  EOED: hex("05000000"),
  // ServerHello (176 octets), RFC 8448 line 1654
  HRR: hex(
    "020000ac0303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c00130100008400330002" +
      "0017002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf6256" +
      "36e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16" +
      "aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002b00020304",
  ),
  // CertificateRequest (43 octets), RFC 8448 line 2589
  CR: hex("0d000027000024000d0020001e040305030603020308040805080604010501060102010402050206020202"),
  // Certificate (451 octets), RFC 8448 line 2850
  CLIENT_CERT: hex(
    "0b0001bf000001bb0001b6308201b23082011ba003020102020101300d06092a864886f70d01010b05003011310f300d" +
      "06035504031306636c69656e74301e170d3136303733303031323335395a170d3236303733303031323335395a301131" +
      "0f300d06035504031306636c69656e7430819f300d06092a864886f70d010101050003818d0030818902818100c38175" +
      "e004a68d093f823b9c379d201fbc0bb7a1c791905e3fbf76847e44e751ebbcd360bd945c81e5222bcc8846d3a8a0f93e" +
      "9bf5bebabd92edf1de1ff19021703e7ab6c0901513f97e39b111f09c9348971c7b211984a754cd45fe095af0ea423682" +
      "9bccf7a7fe9b2888e78ab477690a5b9e1ccbe91c6a4a0f97a7e02842010203010001a31a301830090603551d13040230" +
      "00300b0603551d0f040403020780300d06092a864886f70d01010b0500038181001a7a5a018532b022af0767d486160c" +
      "ff2d167a1915d23835b54594916dc680be5d2e626076c5d52722ebcc775d7d99f980be2fc94d34acf6cc00ba90cbcfb0" +
      "608aa1e7e3971ef0c07a41d47ad8345d1f81fe418a1cf41054429fd217bd777dc1cf08f05df90799c659361e0f1a8ee4" +
      "ac0f7897420bdbc823da80a2f2ba23081c0000",
  ),
  // CertificateVerify (136 octets), RFC 8448 line 2883
  CLIENT_CV: hex(
    "0f00008408040080186b2223b503a759c35dba0e9721b4b579138d5f0f5e6ec7feaaf27f3ad7f386c2c7bd7cb2be52fb" +
      "f5ed8393f406ee79369692ec7ac695651d858219e672a8eb7b2a677b640b46ab630edc5f3f2f8272b9c0d906f81f84dd" +
      "c5b8c7bcf955c78a3cf99e5016f73e04eb7dfcb28833f13e8f75ec2ff3581e2f098ad4157fd6d6ad",
  ),
  // ClientHello (180 octets), RFC 8448 line 1607
  CH1_HRR: hex(
    "010000b00303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f00000613011303130201" +
      "0000810000000b0009000006736572766572ff01000100000a00080006001d00170018003300260024001d0020e8e8e3" +
      "f3b93a25ed97a14a7dcacb8a272c6288e585c6484d05262fcad062ad1f002b0003020304000d0020001e040305030603" +
      "020308040805080604010501060102010402050206020202002d00020101001c00024001",
  ),
  // ClientHello (512 octets), RFC 8448 line 1708
  CH2_HRR: hex(
    "010001fc0303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f00000613011303130201" +
      "0001cd0000000b0009000006736572766572ff01000100000a00080006001d001700180033004700450017004104a6da" +
      "7392ec591e17abfd535964b99894d13befb221b3def2ebe3830eac8f0151812677c4d6d2237e85cf01d6910cfb83954e" +
      "76ba7352830534159897e8065780002b0003020304000d0020001e040305030603020308040805080604010501060102" +
      "010402050206020202002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd00" +
      "30953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b" +
      "0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002d00020101001c00024001001500" +
      "af0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
      "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
      "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000" +
      "0000000000000000000000000000000000000000000000000000000000000000",
  ),
};

const body = (raw: Uint8Array): Uint8Array => raw.subarray(4);

/** The alert of the TlsError `fn` throws, undefined if it returns; any other exception fails. */
function alertOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof TlsError) return e.alert;
    throw e;
  }
  return undefined;
}

/** Header + body as the wire carries it. */
function frame(type: number, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + b.length);
  out[0] = type;
  out[1] = b.length >>> 16;
  out[2] = b.length >>> 8;
  out[3] = b.length;
  out.set(b, 4);
  return out;
}

/**
 * Decodes, and if that succeeds, checks the codec is canonical: re-encoding gives back exactly the
 * input. Throws anything but TlsError.
 */
function decodeCanonical(type: number, b: Uint8Array): HandshakeMessage | TlsError {
  let msg: HandshakeMessage;
  try {
    msg = decodeHandshakeMessage(type, b);
  } catch (e) {
    if (e instanceof TlsError) return e;
    throw e;
  }
  expect(toHex(encodeHandshakeMessage(msg))).toBe(toHex(frame(type, b)));
  return msg;
}

function reencodes(raw: Uint8Array): HandshakeMessage {
  const msg = decodeHandshake(raw);
  expect(toHex(encodeHandshakeMessage(msg))).toBe(toHex(raw));
  expect(handshakeMessageSize(msg)).toBe(raw.length);
  return msg;
}

function asType<T extends HandshakeMessage["type"]>(
  msg: HandshakeMessage,
  type: T,
): Extract<HandshakeMessage, { type: T }> {
  expect(msg.type).toBe(type);
  return msg as Extract<HandshakeMessage, { type: T }>;
}

const SIG_ALGS_8448 = [
  0x0403, 0x0503, 0x0603, 0x0203, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0201, 0x0402, 0x0502,
  0x0602, 0x0202,
];
const GROUPS_8448 = [0x001d, 0x0017, 0x0018, 0x0019, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104];

describe("RFC 8448 §3 Simple 1-RTT Handshake", () => {
  it("ClientHello: decodes every field and re-encodes to the same 196 bytes", () => {
    const ch = asType(reencodes(V.CH), HandshakeType.client_hello);
    expect(ch.legacyVersion).toBe(0x0303);
    expect(toHex(ch.random)).toBe("cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7");
    expect(ch.legacySessionId.length).toBe(0);
    expect(ch.cipherSuites).toEqual([
      CipherSuite.TLS_AES_128_GCM_SHA256,
      CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
      CipherSuite.TLS_AES_256_GCM_SHA384,
    ]);
    expect(Array.from(ch.legacyCompressionMethods)).toEqual([0]);
    expect(ch.extensions.map((e) => e.type)).toEqual([0, 0xff01, 10, 35, 51, 43, 13, 45, 28]);
    const sni = findExtension(ch.extensions, ExtensionType.server_name);
    expect(sni && sniHostName(sni)).toBe("server");
    expect(findExtension(ch.extensions, ExtensionType.supported_groups)?.groups).toEqual(GROUPS_8448);
    const ks = findExtension(ch.extensions, ExtensionType.key_share);
    expect(ks?.clientShares.length).toBe(1);
    expect(ks?.clientShares[0].group).toBe(NamedGroup.x25519);
    expect(toHex(ks?.clientShares[0].keyExchange ?? new Uint8Array())).toBe(
      "99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c",
    );
    expect(findExtension(ch.extensions, ExtensionType.supported_versions)?.versions).toEqual([TLS13_VERSION]);
    expect(findExtension(ch.extensions, ExtensionType.signature_algorithms)?.schemes).toEqual(SIG_ALGS_8448);
    expect(findExtension(ch.extensions, ExtensionType.psk_key_exchange_modes)?.modes).toEqual([
      PskKeyExchangeMode.psk_dhe_ke,
    ]);
    // Extensions this codec does not interpret stay raw, bytes intact.
    expect(toHex(findRawExtension(ch.extensions, 0xff01)?.data ?? new Uint8Array([9]))).toBe("00");
    expect(findRawExtension(ch.extensions, 35)?.data.length).toBe(0);
    expect(toHex(findRawExtension(ch.extensions, ExtensionType.record_size_limit)?.data ?? hex("ff"))).toBe(
      "4001",
    );
    expect(findExtension(ch.extensions, ExtensionType.pre_shared_key)).toBeUndefined();
    expect(encodeClientHello(ch).bindersOffset).toBeUndefined();
  });

  it("ServerHello: not a HelloRetryRequest; cipher suite, key_share, supported_versions", () => {
    const sh = asType(reencodes(V.SH), HandshakeType.server_hello);
    expect(sh.isHelloRetryRequest).toBe(false);
    if (sh.isHelloRetryRequest) return;
    expect(toHex(sh.random)).toBe("a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e26928");
    expect(sh.legacySessionIdEcho.length).toBe(0);
    expect(sh.cipherSuite).toBe(CipherSuite.TLS_AES_128_GCM_SHA256);
    expect(sh.legacyCompressionMethod).toBe(0);
    const ks = findExtension(sh.extensions, ExtensionType.key_share);
    expect(ks?.serverShare.group).toBe(NamedGroup.x25519);
    expect(toHex(ks?.serverShare.keyExchange ?? new Uint8Array())).toBe(
      "c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f",
    );
    expect(findExtension(sh.extensions, ExtensionType.supported_versions)?.selectedVersion).toBe(
      TLS13_VERSION,
    );
  });

  it("EncryptedExtensions: supported_groups, raw record_size_limit, empty server_name", () => {
    const ee = asType(reencodes(V.EE), HandshakeType.encrypted_extensions);
    expect(ee.extensions.map((e) => e.type)).toEqual([10, 28, 0]);
    expect(findExtension(ee.extensions, ExtensionType.supported_groups)?.groups).toEqual(GROUPS_8448);
    expect(findExtension(ee.extensions, ExtensionType.server_name)?.serverNames).toEqual([]);
    expect(
      findExtension(ee.extensions, ExtensionType.application_layer_protocol_negotiation),
    ).toBeUndefined();
  });

  it("Certificate: empty context, one 432-byte X.509 entry without extensions", () => {
    const cert = asType(reencodes(V.CERT), HandshakeType.certificate);
    expect(cert.certificateRequestContext.length).toBe(0);
    expect(cert.certificateList.length).toBe(1);
    const der = cert.certificateList[0].certData;
    expect(der.length).toBe(0x1b0);
    expect(toHex(der.subarray(0, 4))).toBe("308201ac"); // DER SEQUENCE of 0x1ac bytes
    expect(cert.certificateList[0].extensions).toEqual([]);
  });

  it("CertificateVerify: rsa_pss_rsae_sha256 with a 128-byte signature", () => {
    const cv = asType(reencodes(V.CV), HandshakeType.certificate_verify);
    expect(cv.algorithm).toBe(SignatureScheme.rsa_pss_rsae_sha256);
    expect(cv.signature.length).toBe(128);
    expect(toHex(cv.signature.subarray(0, 4))).toBe("5a747c5d");
  });

  it("Finished: verify_data is the 32-byte HMAC of the trace", () => {
    const fin = asType(reencodes(V.FIN), HandshakeType.finished);
    expect(toHex(fin.verifyData)).toBe("9b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718");
    const checked = decodeHandshake(V.FIN, { finishedLength: 32 }) as Finished;
    expect(checked.verifyData.length).toBe(32);
    expect(alertOf(() => decodeHandshake(V.FIN, { finishedLength: 48 }))).toBe(AlertDescription.decode_error);
  });

  it("NewSessionTicket: lifetime, age_add, nonce, ticket, early_data max size", () => {
    const nst = asType(reencodes(V.NST), HandshakeType.new_session_ticket);
    expect(nst.ticketLifetime).toBe(30);
    expect(nst.ticketAgeAdd).toBe(0xfad6aac5);
    expect(toHex(nst.ticketNonce)).toBe("0000");
    expect(nst.ticket.length).toBe(0xb2);
    expect(toHex(nst.ticket.subarray(0, 4))).toBe("2c035d82");
    expect(findExtension(nst.extensions, ExtensionType.early_data)?.maxEarlyDataSize).toBe(0x400);
  });
});

describe("RFC 8448 §4 Resumed 0-RTT Handshake", () => {
  const binderHex = "3add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d";

  it("ClientHello with pre_shared_key: decodes, re-encodes identically, binder offset = 477", () => {
    const ch = asType(reencodes(V.CH_0RTT), HandshakeType.client_hello);
    const last = ch.extensions[ch.extensions.length - 1];
    expect(last.type).toBe(ExtensionType.pre_shared_key);
    const psk = findExtension(ch.extensions, ExtensionType.pre_shared_key);
    expect(psk?.identities.length).toBe(1);
    expect(psk?.identities[0].identity.length).toBe(0xb2);
    // The identity is the ticket the server issued in §3.
    const nst = decodeHandshake(V.NST) as NewSessionTicket;
    expect(toHex(psk?.identities[0].identity ?? new Uint8Array())).toBe(toHex(nst.ticket));
    expect(psk?.identities[0].obfuscatedTicketAge).toBe(0xfad6aacb);
    expect(psk?.binders.map(toHex)).toEqual([binderHex]);
    expect(findExtension(ch.extensions, ExtensionType.early_data)).toEqual({
      type: ExtensionType.early_data,
    });
    expect(findRawExtension(ch.extensions, ExtensionType.padding)?.data.length).toBe(0x57);

    const { bytes, bindersOffset } = encodeClientHello(ch);
    expect(toHex(bytes)).toBe(toHex(V.CH_0RTT));
    expect(bindersOffset).toBe(477);
    expect(clientHelloBindersOffset(V.CH_0RTT, ch)).toBe(477);
    // The partial ClientHello is the trace's "ClientHello prefix (477 octets)"...
    expect(toHex(bytes.subarray(0, 477))).toBe(toHex(V.CH_PREFIX_0RTT));
    // ...and its SHA-256 is the trace's "binder hash".
    expect(createHash("sha256").update(bytes.subarray(0, 477)).digest("hex")).toBe(
      "63224b2e4573f2d3454ca84b9d009a04f6be9e05711a8396473aefa01e924a14",
    );
  });

  it("client flow: encode with zero placeholder binders, then patch the real binder in place", () => {
    const ch = decodeHandshake(V.CH_0RTT) as ClientHello;
    const psk = findExtension(ch.extensions, ExtensionType.pre_shared_key);
    if (!psk) throw new Error("no psk");
    const placeholder: ClientHello = {
      ...ch,
      extensions: ch.extensions.map((e) =>
        e.type === ExtensionType.pre_shared_key ? { ...psk, binders: [new Uint8Array(32)] } : e,
      ),
    };
    const { bytes, bindersOffset } = encodeClientHello(placeholder);
    expect(bindersOffset).toBe(477);
    if (bindersOffset === undefined) return;
    // Everything the binder covers is already final.
    expect(toHex(bytes.subarray(0, bindersOffset))).toBe(toHex(V.CH_PREFIX_0RTT));
    expect(toHex(bytes)).not.toBe(toHex(V.CH_0RTT));
    patchBinders(bytes, bindersOffset, [hex(binderHex)]);
    expect(toHex(bytes)).toBe(toHex(V.CH_0RTT));
    // Mismatched placeholders are refused, leaving the bytes unchanged.
    expect(() => patchBinders(bytes, bindersOffset, [new Uint8Array(48)])).toThrow(QuicUsageError);
    expect(() => patchBinders(bytes, bindersOffset, [new Uint8Array(32), new Uint8Array(32)])).toThrow(
      QuicUsageError,
    );
    expect(() => patchBinders(bytes, bindersOffset + 1, [new Uint8Array(31)])).toThrow(QuicUsageError);
    expect(toHex(bytes)).toBe(toHex(V.CH_0RTT));
  });

  it("ServerHello selects PSK identity 0; EncryptedExtensions accepts early_data; EndOfEarlyData", () => {
    const sh = asType(reencodes(V.SH_0RTT), HandshakeType.server_hello);
    if (sh.isHelloRetryRequest) throw new Error("HRR");
    expect(findExtension(sh.extensions, ExtensionType.pre_shared_key)?.selectedIdentity).toBe(0);
    const ee = asType(reencodes(V.EE_0RTT), HandshakeType.encrypted_extensions);
    expect(findExtension(ee.extensions, ExtensionType.early_data)).toEqual({
      type: ExtensionType.early_data,
    });
    asType(reencodes(V.FIN_0RTT), HandshakeType.finished);
    expect(reencodes(V.EOED)).toEqual({ type: HandshakeType.end_of_early_data });
  });
});

describe("RFC 8448 §5 HelloRetryRequest and §6 client authentication", () => {
  it("recognises the HelloRetryRequest by its random: selected group and cookie", () => {
    const hrr = asType(reencodes(V.HRR), HandshakeType.server_hello);
    expect(hrr.isHelloRetryRequest).toBe(true);
    if (!hrr.isHelloRetryRequest) return;
    expect("random" in hrr).toBe(false);
    expect(hrr.cipherSuite).toBe(CipherSuite.TLS_AES_128_GCM_SHA256);
    expect(findExtension(hrr.extensions, ExtensionType.key_share)?.selectedGroup).toBe(NamedGroup.secp256r1);
    expect(findExtension(hrr.extensions, ExtensionType.cookie)?.cookie.length).toBe(0x72);
    expect(findExtension(hrr.extensions, ExtensionType.supported_versions)?.selectedVersion).toBe(
      TLS13_VERSION,
    );
  });

  it("ClientHello2 echoes the cookie and carries one secp256r1 share", () => {
    const ch1 = asType(reencodes(V.CH1_HRR), HandshakeType.client_hello);
    const ch2 = asType(reencodes(V.CH2_HRR), HandshakeType.client_hello);
    const hrr = decodeHandshake(V.HRR) as HelloRetryRequest;
    expect(toHex(findExtension(ch2.extensions, ExtensionType.cookie)?.cookie ?? new Uint8Array())).toBe(
      toHex(findExtension(hrr.extensions, ExtensionType.cookie)?.cookie ?? hex("00")),
    );
    expect(findExtension(ch1.extensions, ExtensionType.cookie)).toBeUndefined();
    const shares = findExtension(ch2.extensions, ExtensionType.key_share)?.clientShares ?? [];
    expect(shares.map((s: KeyShareEntry) => [s.group, s.keyExchange.length, s.keyExchange[0]])).toEqual([
      [NamedGroup.secp256r1, 65, 4],
    ]);
    expect(toHex(ch2.random)).toBe(toHex(ch1.random));
  });

  it("CertificateRequest, client Certificate and CertificateVerify", () => {
    const cr = asType(reencodes(V.CR), HandshakeType.certificate_request);
    expect(cr.certificateRequestContext.length).toBe(0);
    expect(findExtension(cr.extensions, ExtensionType.signature_algorithms)?.schemes).toEqual(SIG_ALGS_8448);
    const cert = asType(reencodes(V.CLIENT_CERT), HandshakeType.certificate);
    expect(cert.certificateList.length).toBe(1);
    expect(cert.certificateList[0].certData.length).toBe(0x1b6);
    const cv = asType(reencodes(V.CLIENT_CV), HandshakeType.certificate_verify);
    expect(cv.algorithm).toBe(SignatureScheme.rsa_pss_rsae_sha256);
  });

  it("messageHash builds the synthetic message_hash message (§4.4.1)", () => {
    const h = createHash("sha256").update(V.CH1_HRR).digest();
    const mh = messageHash(h);
    expect(toHex(mh)).toBe(`fe000020${h.toString("hex")}`);
    const h384 = createHash("sha384").update(V.CH1_HRR).digest();
    expect(toHex(messageHash(h384).subarray(0, 4))).toBe("fe000030");
    // message_hash never appears on the wire.
    expect(alertOf(() => decodeHandshake(mh))).toBe(AlertDescription.unexpected_message);
  });

  it("exports the HelloRetryRequest random of §4.1.3", () => {
    expect(toHex(HELLO_RETRY_REQUEST_RANDOM)).toBe(
      "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Arbitraries: structurally valid messages with every field within its declared bounds.
// ---------------------------------------------------------------------------------------------

const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const bytes = (minLength: number, maxLength: number) => fc.uint8Array({ minLength, maxLength });
const u16s = (minLength: number, maxLength: number) => fc.array(u16, { minLength, maxLength });

/** Extension types this codec never types, for raw extensions. */
const rawType = u16.filter((t) => !TYPED_EXTENSIONS.has(t));
const rawExts = fc.uniqueArray(
  fc.record({ type: rawType, data: bytes(0, 24) }).map((e): RawExtension => e),
  { selector: (e) => e.type, maxLength: 3 },
);
const keyShareEntry = fc.record({ group: u16, keyExchange: bytes(1, 40) });

/** Typed extensions (each present or not) plus raw ones, in a random order. */
function extensionBlock<E extends { type: number }>(
  typed: fc.Arbitrary<E>[],
  always: fc.Arbitrary<E>[] = [],
): fc.Arbitrary<E[]> {
  return fc
    .tuple(
      fc.tuple(...always.map((a) => a)),
      fc.tuple(...typed.map((a) => fc.option(a, { nil: undefined }))),
      rawExts,
    )
    .chain(([a, t, r]) => {
      const all: E[] = [
        ...(a as E[]),
        ...(t.filter((x) => x !== undefined) as E[]),
        ...(r as unknown as E[]),
      ];
      return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
    });
}

const T = ExtensionType;
const supportedGroups = u16s(1, 8).map((groups) => ({ type: T.supported_groups, groups }));
const alpn = fc
  .array(bytes(1, 12), { minLength: 1, maxLength: 4 })
  .map((protocols) => ({ type: T.application_layer_protocol_negotiation, protocols }));
const qtp = bytes(0, 40).map((parameters) => ({ type: T.quic_transport_parameters, parameters }));
const sigAlgs = u16s(1, 10).map((schemes) => ({ type: T.signature_algorithms, schemes }));
const sigAlgsCert = u16s(1, 10).map((schemes) => ({ type: T.signature_algorithms_cert, schemes }));
const cas = fc
  .array(bytes(1, 20), { minLength: 1, maxLength: 3 })
  .map((authorities) => ({ type: T.certificate_authorities, authorities }));
const cookie = bytes(1, 40).map((c) => ({ type: T.cookie, cookie: c }));
const earlyData = fc.constant({ type: T.early_data });
const serverVersion = u16.map((selectedVersion) => ({ type: T.supported_versions, selectedVersion }));

const psk = fc.integer({ min: 1, max: 3 }).chain((n) =>
  fc.record({
    type: fc.constant(T.pre_shared_key),
    identities: fc.array(fc.record({ identity: bytes(1, 30), obfuscatedTicketAge: u32 }), {
      minLength: n,
      maxLength: n,
    }),
    binders: fc.array(bytes(32, 48), { minLength: n, maxLength: n }),
  }),
);

const clientHelloExtensions: fc.Arbitrary<ClientHelloExtension[]> = fc
  .tuple(
    extensionBlock<ClientHelloExtension>(
      [
        fc
          .array(
            fc.oneof(
              fc.record({ nameType: fc.constant(0), name: bytes(1, 20) }),
              fc.record({ nameType: u8.filter((t) => t !== 0), name: bytes(0, 20) }),
            ),
            { minLength: 1, maxLength: 3 },
          )
          .map((serverNames) => ({ type: T.server_name, serverNames })),
        supportedGroups,
        sigAlgs,
        sigAlgsCert,
        alpn,
        fc
          .array(keyShareEntry, { maxLength: 3 })
          .map((clientShares) => ({ type: T.key_share, clientShares })),
        fc
          .array(u8, { minLength: 1, maxLength: 4 })
          .map((modes) => ({ type: T.psk_key_exchange_modes, modes })),
        earlyData,
        cookie,
        cas,
        qtp,
      ],
      // Always one, so the block meets its <7..2^16-1> floor.
      [u16s(1, 6).map((versions) => ({ type: T.supported_versions, versions }))],
    ),
    fc.option(psk, { nil: undefined }),
  )
  .map(([exts, p]) => (p ? [...exts, p] : exts));

const clientHello: fc.Arbitrary<ClientHello> = fc.record({
  type: fc.constant(HandshakeType.client_hello),
  legacyVersion: u16,
  random: bytes(32, 32),
  legacySessionId: bytes(0, 32),
  cipherSuites: u16s(1, 10),
  legacyCompressionMethods: bytes(1, 4),
  extensions: clientHelloExtensions,
});

const serverHello: fc.Arbitrary<ServerHello> = fc.record({
  type: fc.constant(HandshakeType.server_hello),
  isHelloRetryRequest: fc.constant(false as const),
  legacyVersion: u16,
  random: bytes(32, 32).filter((r) => toHex(r) !== toHex(HELLO_RETRY_REQUEST_RANDOM)),
  legacySessionIdEcho: bytes(0, 32),
  cipherSuite: u16,
  legacyCompressionMethod: u8,
  extensions: extensionBlock<ServerHelloExtension>(
    [
      keyShareEntry.map((serverShare) => ({ type: T.key_share, serverShare })),
      u16.map((selectedIdentity) => ({ type: T.pre_shared_key, selectedIdentity })),
    ],
    [serverVersion],
  ),
});

const helloRetryRequest: fc.Arbitrary<HelloRetryRequest> = fc.record({
  type: fc.constant(HandshakeType.server_hello),
  isHelloRetryRequest: fc.constant(true as const),
  legacyVersion: u16,
  legacySessionIdEcho: bytes(0, 32),
  cipherSuite: u16,
  legacyCompressionMethod: u8,
  extensions: extensionBlock<HelloRetryRequestExtension>(
    [u16.map((selectedGroup) => ({ type: T.key_share, selectedGroup })), cookie],
    [serverVersion],
  ),
});

const encryptedExtensions: fc.Arbitrary<EncryptedExtensions> = fc.record({
  type: fc.constant(HandshakeType.encrypted_extensions),
  extensions: extensionBlock<EncryptedExtension>([
    fc.constant({ type: T.server_name, serverNames: [] }),
    supportedGroups,
    alpn,
    earlyData,
    qtp,
  ]),
});

const certificateRequest: fc.Arbitrary<CertificateRequest> = fc.record({
  type: fc.constant(HandshakeType.certificate_request),
  certificateRequestContext: bytes(0, 20),
  extensions: extensionBlock<CertificateRequestExtension>([sigAlgs, sigAlgsCert, cas]),
});

const certificate: fc.Arbitrary<Certificate> = fc.record({
  type: fc.constant(HandshakeType.certificate),
  certificateRequestContext: bytes(0, 20),
  certificateList: fc.array(fc.record({ certData: bytes(1, 200), extensions: rawExts }), { maxLength: 3 }),
});

const certificateVerify: fc.Arbitrary<CertificateVerify> = fc.record({
  type: fc.constant(HandshakeType.certificate_verify),
  algorithm: u16,
  signature: bytes(0, 100),
});

const finished: fc.Arbitrary<Finished> = fc.record({
  type: fc.constant(HandshakeType.finished),
  verifyData: bytes(0, 64),
});

const newSessionTicket: fc.Arbitrary<NewSessionTicket> = fc.record({
  type: fc.constant(HandshakeType.new_session_ticket),
  ticketLifetime: u32,
  ticketAgeAdd: u32,
  ticketNonce: bytes(0, 255),
  ticket: bytes(1, 100),
  extensions: extensionBlock<NewSessionTicketExtension>([
    u32.map((maxEarlyDataSize) => ({ type: T.early_data, maxEarlyDataSize })),
  ]),
});

const anyMessage: fc.Arbitrary<HandshakeMessage> = fc.oneof(
  clientHello,
  serverHello,
  helloRetryRequest,
  encryptedExtensions,
  certificateRequest,
  certificate,
  certificateVerify,
  finished,
  newSessionTicket,
  fc.constant({ type: HandshakeType.end_of_early_data }),
  u8.map((requestUpdate) => ({ type: HandshakeType.key_update, requestUpdate })),
);

describe("round trip: decode(encode(m)) = m for every message kind", () => {
  it("a stream of random messages through HandshakeBuffer under random chunking", () => {
    fc.assert(
      fc.property(
        fc.array(anyMessage, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (msgs, cuts) => {
          const encoded = msgs.map(encodeHandshakeMessage);
          const stream = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
          let o = 0;
          for (const e of encoded) {
            stream.set(e, o);
            o += e.length;
          }
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const hb = new HandshakeBuffer();
          const out: HandshakeMessage[] = [];
          let prev = 0;
          for (const p of [...points, stream.length]) {
            for (const m of hb.pushAndDrain(stream.subarray(prev, p))) {
              out.push(decodeHandshakeMessage(m.type, m.body));
              expect(toHex(m.raw)).toBe(toHex(encoded[out.length - 1]));
            }
            prev = p;
          }
          expect(out).toEqual(msgs);
        },
      ),
      { numRuns: 300 },
    );
  });

  const kinds: [string, fc.Arbitrary<HandshakeMessage>][] = [
    ["ClientHello", clientHello],
    ["ServerHello", serverHello],
    ["HelloRetryRequest", helloRetryRequest],
    ["EncryptedExtensions", encryptedExtensions],
    ["CertificateRequest", certificateRequest],
    ["Certificate", certificate],
    ["CertificateVerify", certificateVerify],
    ["Finished", finished],
    ["NewSessionTicket", newSessionTicket],
    ["EndOfEarlyData", fc.constant({ type: HandshakeType.end_of_early_data })],
    ["KeyUpdate", u8.map((requestUpdate) => ({ type: HandshakeType.key_update, requestUpdate }))],
  ];
  for (const [name, arb] of kinds) {
    it(name, () => {
      fc.assert(
        fc.property(arb, (msg) => {
          const raw = encodeHandshakeMessage(msg);
          expect(raw.length).toBe(handshakeMessageSize(msg));
          expect(raw[0]).toBe(msg.type);
          expect((raw[1] << 16) | (raw[2] << 8) | raw[3]).toBe(raw.length - 4);
          const back = decodeHandshake(raw);
          expect(back).toEqual(msg);
          expect(toHex(encodeHandshakeMessage(back))).toBe(toHex(raw));
        }),
        { numRuns: 300 },
      );
    });
  }

  it("ClientHello with PSK: bindersOffset is where the binders list starts and patching is exact", () => {
    fc.assert(
      fc.property(clientHello, psk, (ch0, p) => {
        const ch: ClientHello = {
          ...ch0,
          extensions: [...ch0.extensions.filter((e) => e.type !== T.pre_shared_key), p],
        };
        const { bytes: raw, bindersOffset } = encodeClientHello(ch);
        expect(bindersOffset).toBeDefined();
        if (bindersOffset === undefined) return;
        const listLen = (raw[bindersOffset] << 8) | raw[bindersOffset + 1];
        expect(bindersOffset + 2 + listLen).toBe(raw.length);
        expect(clientHelloBindersOffset(raw, decodeHandshake(raw) as ClientHello)).toBe(bindersOffset);
        const fresh = p.binders.map((b) => b.map((x) => x ^ 0xa5));
        const patched = raw.slice();
        patchBinders(patched, bindersOffset, fresh);
        expect(toHex(patched.subarray(0, bindersOffset))).toBe(toHex(raw.subarray(0, bindersOffset)));
        const back = decodeHandshake(patched) as ClientHello;
        expect(findExtension(back.extensions, T.pre_shared_key)?.binders).toEqual(fresh);
        // Placeholders of other lengths (same total) are refused.
        if (p.binders.length >= 2 && p.binders[0].length !== p.binders[1].length) {
          const swapped = [fresh[1], fresh[0], ...fresh.slice(2)];
          expect(() => patchBinders(patched, bindersOffset, swapped)).toThrow(QuicUsageError);
        }
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile input
// ---------------------------------------------------------------------------------------------

const TRACE = Object.entries(V).filter(([name]) => name !== "CH_PREFIX_0RTT");
const TYPES = [1, 2, 4, 5, 8, 11, 13, 15, 20, 24];

describe("hostile input: TlsError or a canonical decode, nothing else", () => {
  it("random bodies of every message type", () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...TYPES), u8), bytes(0, 300), (type, b) => {
        const r = decodeCanonical(type, b);
        if (!TYPES.includes(type)) {
          expect(r).toBeInstanceOf(TlsError);
          expect((r as TlsError).alert).toBe(AlertDescription.unexpected_message);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("random bodies that start like real messages (valid prefix + random tail)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...TRACE), fc.nat(), bytes(0, 40), ([, raw], cut, tail) => {
        const b = body(raw);
        const at = cut % (b.length + 1);
        const mutated = new Uint8Array(at + tail.length);
        mutated.set(b.subarray(0, at));
        mutated.set(tail, at);
        decodeCanonical(raw[0], mutated);
      }),
      { numRuns: 2000 },
    );
  });

  it("every truncation of every RFC 8448 message is a TlsError", () => {
    let checked = 0;
    for (const [name, raw] of TRACE) {
      const type = raw[0];
      const b = body(raw);
      for (let n = 0; n < b.length; n++) {
        const opts = type === HandshakeType.finished ? { finishedLength: 32 } : {};
        const alert = alertOf(() => decodeHandshakeMessage(type, b.subarray(0, n), opts));
        if (alert === undefined) throw new Error(`${name} truncated to ${n} bytes decoded`);
        expect([AlertDescription.decode_error, AlertDescription.protocol_version]).toContain(alert);
        checked++;
      }
      // Header-level: a shorter frame than its length field says.
      for (let n = 0; n < raw.length; n++) {
        expect(alertOf(() => decodeHandshake(raw.subarray(0, n)))).toBe(AlertDescription.decode_error);
      }
    }
    expect(checked).toBeGreaterThan(3000);
  });

  it("random byte mutations of the RFC 8448 messages", () => {
    let decoded = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...TRACE),
        fc.array(fc.tuple(fc.nat(), u8, fc.constantFrom("set", "insert", "delete")), {
          minLength: 1,
          maxLength: 6,
        }),
        ([, raw], edits) => {
          const b = Array.from(body(raw));
          for (const [pos, value, op] of edits) {
            const i = pos % (b.length + 1);
            if (op === "set" && i < b.length) b[i] = value;
            else if (op === "insert") b.splice(i, 0, value);
            else if (op === "delete" && i < b.length) b.splice(i, 1);
          }
          if (!(decodeCanonical(raw[0], Uint8Array.from(b)) instanceof TlsError)) decoded++;
        },
      ),
      { numRuns: 3000 },
    );
    // Many mutations land in opaque fields and still decode: the canonical check did run.
    expect(decoded).toBeGreaterThan(300);
  });

  it("setting any byte of the 8448 0-RTT ClientHello to 00/01/7f/ff is rejected or canonical", () => {
    const b = body(V.CH_0RTT);
    for (let i = 0; i < b.length; i++) {
      for (const v of [0x00, 0x01, 0x7f, 0xff]) {
        const m = b.slice();
        m[i] = v;
        decodeCanonical(1, m);
      }
    }
  });

  it("huge inner length fields are rejected without reading or allocating them", () => {
    // Certificate claiming a 16 MiB certificate_list in a 10-byte body.
    expect(alertOf(() => decodeHandshakeMessage(11, hex("00ffffff0000010000")))).toBe(
      AlertDescription.decode_error,
    );
    // cert_data claiming 16 MiB inside a small list.
    expect(alertOf(() => decodeHandshakeMessage(11, hex("00000004ffffff00")))).toBe(
      AlertDescription.decode_error,
    );
    // A header claiming 16 MiB for a 4-byte body.
    expect(alertOf(() => decodeHandshake(hex("0bffffff00000000")))).toBe(AlertDescription.decode_error);
  });
});

// ---------------------------------------------------------------------------------------------
// Negative cases
// ---------------------------------------------------------------------------------------------

/** Replaces `from` (hex, must occur once) by `to` in a message and fixes the outer lengths. */
function edit(raw: Uint8Array, from: string, to: string): Uint8Array {
  const h = toHex(raw);
  const i = h.indexOf(from);
  if (i < 0 || h.indexOf(from, i + 1) >= 0) throw new Error(`pattern ${from} not unique`);
  return hex(h.slice(0, i) + to + h.slice(i + from.length));
}

describe("negative cases", () => {
  it("trailing bytes after a message's structure are decode_error", () => {
    for (const [name, raw] of TRACE) {
      if (raw[0] === HandshakeType.finished) continue; // Finished is all verify_data
      const b = new Uint8Array(raw.length - 3);
      b.set(body(raw));
      b[b.length - 1] = 0;
      const alert = alertOf(() => decodeHandshakeMessage(raw[0], b));
      if (alert !== AlertDescription.decode_error) throw new Error(`${name}: ${alert}`);
    }
    expect(alertOf(() => decodeHandshakeMessage(HandshakeType.end_of_early_data, hex("00")))).toBe(
      AlertDescription.decode_error,
    );
    expect(alertOf(() => decodeHandshakeMessage(HandshakeType.key_update, hex("0100")))).toBe(
      AlertDescription.decode_error,
    );
  });

  it("ClientHello vector bounds: session id ≤ 32, cipher suites even and ≥ 2, compression ≥ 1, extensions ≥ 7", () => {
    const b = body(V.CH);
    const random = toHex(b.subarray(2, 34));
    const tail = toHex(b.subarray(34 + 1 + 2 + 6 + 2)); // after session id, suites, compression
    const suites = "0006130113031302";
    const mk = (sid: string, cs: string, comp: string, rest = tail) =>
      hex(`0303${random}${sid}${cs}${comp}${rest}`);
    expect(decodeHandshakeMessage(1, mk("00", suites, "0100"))).toBeDefined();
    expect(decodeHandshakeMessage(1, mk(`20${"ab".repeat(32)}`, suites, "0100"))).toBeDefined();
    expect(alertOf(() => decodeHandshakeMessage(1, mk(`21${"ab".repeat(33)}`, suites, "0100")))).toBe(
      AlertDescription.decode_error,
    );
    expect(alertOf(() => decodeHandshakeMessage(1, mk("00", "0000", "0100")))).toBe(
      AlertDescription.decode_error,
    );
    expect(alertOf(() => decodeHandshakeMessage(1, mk("00", "00031301ff", "0100")))).toBe(
      AlertDescription.decode_error,
    );
    expect(alertOf(() => decodeHandshakeMessage(1, mk("00", suites, "00")))).toBe(
      AlertDescription.decode_error,
    );
    // An extension block of 6 bytes (below the <7..> floor) even though it is well formed.
    expect(alertOf(() => decodeHandshakeMessage(1, mk("00", suites, "0100", "00065a5a00020000")))).toBe(
      AlertDescription.decode_error,
    );
    expect(decodeHandshakeMessage(1, mk("00", suites, "0100", "00075a5a0003000000"))).toBeDefined();
    // No extensions at all: a pre-TLS 1.3 ClientHello.
    expect(alertOf(() => decodeHandshakeMessage(1, mk("00", suites, "0100", "")))).toBe(
      AlertDescription.protocol_version,
    );
  });

  it("ServerHello: session id echo ≤ 32, extensions ≥ 6, no extensions → protocol_version or downgrade", () => {
    const b = body(V.SH);
    const random = toHex(b.subarray(2, 34));
    const exts = toHex(b.subarray(34 + 1 + 3));
    const mk = (sid: string, rest: string, rnd = random) => hex(`0303${rnd}${sid}130100${rest}`);
    expect(decodeHandshakeMessage(2, mk("00", exts))).toBeDefined();
    expect(alertOf(() => decodeHandshakeMessage(2, mk(`21${"00".repeat(33)}`, exts)))).toBe(
      AlertDescription.decode_error,
    );
    expect(alertOf(() => decodeHandshakeMessage(2, mk("00", "0004ff010000")))).toBe(
      AlertDescription.decode_error,
    );
    expect(alertOf(() => decodeHandshakeMessage(2, mk("00", "")))).toBe(AlertDescription.protocol_version);
    const sentinel = `${random.slice(0, 48)}444f574e47524401`;
    expect(alertOf(() => decodeHandshakeMessage(2, mk("00", "", sentinel)))).toBe(
      AlertDescription.illegal_parameter,
    );
  });

  it("duplicate extensions are illegal_parameter in every block", () => {
    // ClientHello: a second supported_versions in front of the first.
    const ch = edit(V.CH, "002b0003020304", "002b0003020304002b0003020304");
    const fixed = fixLengths(ch, [
      [1, 3],
      [4 + 2 + 32 + 1 + 2 + 6 + 2, 2],
    ]);
    expect(alertOf(() => decodeHandshake(fixed))).toBe(AlertDescription.illegal_parameter);
    // Duplicate raw (uninterpreted) extensions too.
    expect(alertOf(() => decodeHandshakeMessage(8, hex("00080a0a00000a0a0000")))).toBe(
      AlertDescription.illegal_parameter,
    );
    expect(decodeHandshakeMessage(8, hex("00080a0a00001a1a0000"))).toEqual({
      type: HandshakeType.encrypted_extensions,
      extensions: [
        { type: 0x0a0a, data: new Uint8Array() },
        { type: 0x1a1a, data: new Uint8Array() },
      ],
    });
    // In a CertificateEntry.
    expect(alertOf(() => decodeHandshakeMessage(11, hex("0000000e000001aa00080005000000050000")))).toBe(
      AlertDescription.illegal_parameter,
    );
    expect(decodeHandshakeMessage(11, hex("0000000e000001aa00080005000000120000"))).toBeDefined();
    // In a NewSessionTicket.
    expect(
      alertOf(() =>
        decodeHandshakeMessage(4, hex("0000000100000002000001aa0010002a000400000001002a000400000002")),
      ),
    ).toBe(AlertDescription.illegal_parameter);
    expect(
      decodeHandshakeMessage(4, hex("0000000100000002000001aa0010002a0004000000013a3a000400000002")),
    ).toBeDefined();
  });

  it("pre_shared_key must be the last ClientHello extension; binders match identities", () => {
    // Move record_size_limit (raw, 6 bytes) after pre_shared_key: same lengths, wrong order.
    const h = toHex(V.CH_0RTT);
    const rsl = "001c00024001";
    const i = h.indexOf(rsl);
    const j = h.indexOf("0029", i);
    const swapped = hex(h.slice(0, i) + h.slice(i + rsl.length) + rsl);
    expect(j).toBeGreaterThan(i);
    expect(swapped.length).toBe(V.CH_0RTT.length);
    expect(alertOf(() => decodeHandshake(swapped))).toBe(AlertDescription.illegal_parameter);

    // Two binders for one identity.
    const ch = decodeHandshake(V.CH_0RTT) as ClientHello;
    const psk = findExtension(ch.extensions, T.pre_shared_key);
    if (!psk) throw new Error("no psk");
    const twoBinders = encodeHandshakeMessage({
      ...ch,
      extensions: ch.extensions.map((e) =>
        e.type === T.pre_shared_key ? { type: e.type, data: new Uint8Array() } : e,
      ),
    });
    // Build the body by hand: identities from the trace, two binders.
    const idHex = toHex(psk.identities[0].identity);
    const pskData = `00b800b2${idHex}fad6aacb0042${"20".concat("11".repeat(32))}${"20".concat("22".repeat(32))}`;
    const bad = replaceLastExtensionData(twoBinders, pskData);
    expect(alertOf(() => decodeHandshake(bad))).toBe(AlertDescription.illegal_parameter);
    // A single 31-byte binder (the list is then below its <33..> floor too).
    const short = replaceLastExtensionData(
      twoBinders,
      `00b800b2${idHex}fad6aacb0020${"1f".concat("11".repeat(31))}`,
    );
    expect(alertOf(() => decodeHandshake(short))).toBe(AlertDescription.decode_error);
    // The control: one 32-byte binder decodes.
    const good = replaceLastExtensionData(
      twoBinders,
      `00b800b2${idHex}fad6aacb0021${"20".concat("11".repeat(32))}`,
    );
    expect(
      findExtension((decodeHandshake(good) as ClientHello).extensions, T.pre_shared_key)?.binders.length,
    ).toBe(1);
  });

  it("unknown and TLS 1.2-only handshake types are unexpected_message; KeyUpdate values are not policed", () => {
    for (const t of [0, 3, 6, 12, 14, 16, 21, 22, 23, 254, 255]) {
      expect(alertOf(() => decodeHandshakeMessage(t, new Uint8Array()))).toBe(
        AlertDescription.unexpected_message,
      );
    }
    expect(decodeHandshakeMessage(HandshakeType.key_update, hex("07"))).toEqual({
      type: HandshakeType.key_update,
      requestUpdate: 7,
    });
    expect(alertOf(() => decodeHandshakeMessage(HandshakeType.key_update, new Uint8Array()))).toBe(
      AlertDescription.decode_error,
    );
  });

  it("a Certificate entry must have cert_data of at least one byte", () => {
    expect(alertOf(() => decodeHandshakeMessage(11, hex("00000005000000" + "0000")))).toBe(
      AlertDescription.decode_error,
    );
    const ok = decodeHandshakeMessage(11, hex("00000006000001aa0000")) as Certificate;
    expect(ok.certificateList.map((e) => toHex(e.certData))).toEqual(["aa"]);
  });

  it("encoding a structurally invalid message is a QuicUsageError, not a silent corruption", () => {
    const ch = decodeHandshake(V.CH) as ClientHello;
    expect(() => encodeHandshakeMessage({ ...ch, random: new Uint8Array(31) })).toThrow(QuicUsageError);
    expect(() => encodeHandshakeMessage({ ...ch, cipherSuites: [] })).toThrow(QuicUsageError);
    expect(() => encodeHandshakeMessage({ ...ch, legacySessionId: new Uint8Array(33) })).toThrow(
      QuicUsageError,
    );
    expect(() => encodeHandshakeMessage({ ...ch, extensions: [...ch.extensions, ch.extensions[0]] })).toThrow(
      QuicUsageError,
    );
    const ch0 = decodeHandshake(V.CH_0RTT) as ClientHello;
    const reordered = [ch0.extensions[ch0.extensions.length - 1], ...ch0.extensions.slice(0, -1)];
    expect(() => encodeHandshakeMessage({ ...ch0, extensions: reordered })).toThrow(QuicUsageError);
    // A ServerHello-shaped key_share in a ClientHello.
    const sh = decodeHandshake(V.SH) as ServerHello;
    const shKs = findExtension(sh.extensions, T.key_share);
    if (!shKs) throw new Error("no key_share");
    expect(() =>
      encodeHandshakeMessage({
        ...ch,
        // Deliberately ill-typed: the encoder must refuse the wrong shape at run time too.
        extensions: [
          ...ch.extensions.filter((e) => e.type !== T.key_share),
          shKs as unknown as ClientHelloExtension,
        ],
      }),
    ).toThrow(QuicUsageError);
    expect(() => encodeHandshakeMessage({ ...sh, random: HELLO_RETRY_REQUEST_RANDOM })).toThrow(
      QuicUsageError,
    );
    expect(() => encodeHandshakeMessage({ type: HandshakeType.key_update, requestUpdate: 256 })).toThrow(
      QuicUsageError,
    );
    const nst = decodeHandshake(V.NST) as NewSessionTicket;
    expect(() => encodeHandshakeMessage({ ...nst, ticket: new Uint8Array() })).toThrow(QuicUsageError);
    expect(() => encodeHandshakeMessage({ ...nst, ticketLifetime: 2 ** 32 })).toThrow(QuicUsageError);
  });
});

/** Rewrites big-endian length fields at [offset, width] to cover the rest of the buffer. */
function fixLengths(raw: Uint8Array, fields: [number, number][]): Uint8Array {
  const out = raw.slice();
  for (const [off, width] of fields) {
    const len = out.length - off - width;
    for (let i = width - 1, v = len; i >= 0; i--, v >>>= 8) out[off + i] = v & 0xff;
  }
  return out;
}

/** Replaces the data of the last extension of an encoded ClientHello, fixing every length. */
function replaceLastExtensionData(raw: Uint8Array, dataHex: string): Uint8Array {
  // The encoded ClientHello ends with its last extension (type, empty data): 29 00 00 00.
  expect(toHex(raw.subarray(raw.length - 4))).toBe("00290000");
  const data = hex(dataHex);
  const out = new Uint8Array(raw.length + data.length);
  out.set(raw);
  out.set(data, raw.length);
  const sidLen = out[4 + 34];
  const csLen = (out[4 + 35 + sidLen] << 8) | out[4 + 36 + sidLen];
  const compLen = out[4 + 37 + sidLen + csLen];
  const extOff = 4 + 38 + sidLen + csLen + compLen;
  return fixLengths(out, [
    [1, 3],
    [extOff, 2],
    [raw.length - 2, 2],
  ]);
}
