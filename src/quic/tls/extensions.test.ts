/**
 * Extension codec tests: per-extension vector bounds and trailing data, the RFC 9846 §4.2
 * message table, duplicates, helpers, and random extension_data for every (message, type) pair.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import {
  alpnExtension,
  type ExtensionContext,
  ExtensionType,
  extensionAllowedIn,
  findExtension,
  findRawExtension,
  serverNameExtension,
  sniHostName,
  TYPED_EXTENSIONS,
} from "./extensions.ts";
import {
  type ClientHello,
  decodeHandshakeMessage,
  type EncryptedExtensions,
  encodeHandshakeMessage,
  type HandshakeMessage,
  HandshakeType,
  HELLO_RETRY_REQUEST_RANDOM,
} from "./messages.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const len16 = (h: string): string => (h.length / 2).toString(16).padStart(4, "0");

/** One extension: type, uint16 length, data. */
const ext = (type: number, data: string): string => type.toString(16).padStart(4, "0") + len16(data) + data;

/** A raw (GREASE-typed) extension of 7 bytes that wrap() puts first in hello messages. */
const PAD = ext(0x5a5a, "000000");

const CONTEXTS: ExtensionContext[] = [
  "client_hello",
  "server_hello",
  "hello_retry_request",
  "encrypted_extensions",
  "certificate_request",
  "certificate",
  "new_session_ticket",
];

/** A message of the given context whose (only) extension block is `exts`, as [type, body]. */
function wrap(ctx: ExtensionContext, exts: string): [number, Uint8Array] {
  const block = len16(exts) + exts;
  const random = "11".repeat(32);
  switch (ctx) {
    case "client_hello":
      // A raw 7-byte extension first, so that the block always meets its <7..> floor.
      return [1, hex(`0303${random}00000213010100${len16(PAD + exts)}${PAD}${exts}`)];
    case "server_hello":
      return [2, hex(`0303${random}00130100${len16(PAD + exts)}${PAD}${exts}`)];
    case "hello_retry_request":
      return [2, hex(`0303${toHex(HELLO_RETRY_REQUEST_RANDOM)}00130100${len16(PAD + exts)}${PAD}${exts}`)];
    case "encrypted_extensions":
      return [8, hex(block)];
    case "certificate_request":
      return [13, hex(`00${block}`)];
    case "certificate": {
      const entry = `000001aa${block}`;
      return [11, hex(`00${(entry.length / 2).toString(16).padStart(6, "0")}${entry}`)];
    }
    case "new_session_ticket":
      return [4, hex(`0000000100000002000001aa${block}`)];
  }
}

function extensionsOf(msg: HandshakeMessage): { type: number }[] {
  if (msg.type === HandshakeType.certificate) return msg.certificateList[0].extensions;
  if ("extensions" in msg) return msg.extensions;
  throw new Error("no extensions");
}

/** Decodes `exts` in `ctx`; returns the extensions after the padding one wrap() adds, or the alert. */
function decodeIn(ctx: ExtensionContext, exts: string): { type: number }[] | number {
  const [type, body] = wrap(ctx, exts);
  try {
    const msg = decodeHandshakeMessage(type, body);
    // Canonical: re-encoding reproduces the input.
    expect(toHex(encodeHandshakeMessage(msg).subarray(4))).toBe(toHex(body));
    const all = extensionsOf(msg);
    return ctx === "client_hello" || ctx === "server_hello" || ctx === "hello_retry_request"
      ? all.slice(1)
      : all;
  } catch (e) {
    if (e instanceof TlsError) return e.alert;
    throw e;
  }
}

const DE = AlertDescription.decode_error;
const IP = AlertDescription.illegal_parameter;
const T = ExtensionType;

describe("extension vector bounds, truncation and trailing data", () => {
  // [context, type, extension_data hex, expected: decoded fields (partial) or an alert]
  const cases: [ExtensionContext, number, string, Record<string, unknown> | number][] = [
    ["client_hello", T.supported_groups, "0002001d", { groups: [0x1d] }],
    ["client_hello", T.supported_groups, "0000", DE], // <2..>
    ["client_hello", T.supported_groups, "0003001d00", DE], // odd length
    ["client_hello", T.supported_groups, "0004001d", DE], // runs past its parent
    ["client_hello", T.supported_groups, "0002001d00", DE], // trailing byte
    ["client_hello", T.supported_groups, "00", DE], // truncated length
    ["encrypted_extensions", T.supported_groups, "00040017001d", { groups: [0x17, 0x1d] }],
    ["client_hello", T.signature_algorithms, "000404030804", { schemes: [0x0403, 0x0804] }],
    ["client_hello", T.signature_algorithms, "0000", DE],
    ["client_hello", T.signature_algorithms, "00010403", DE],
    ["certificate_request", T.signature_algorithms_cert, "00020807", { schemes: [0x0807] }],
    ["certificate_request", T.signature_algorithms_cert, "000308070b", DE],
    ["client_hello", T.application_layer_protocol_negotiation, "0003026833", { protocols: [hex("6833")] }],
    ["client_hello", T.application_layer_protocol_negotiation, "0000", DE], // <2..>
    ["client_hello", T.application_layer_protocol_negotiation, "00020001", DE], // empty ProtocolName
    ["client_hello", T.application_layer_protocol_negotiation, "0003036833", DE], // name runs past list
    [
      "encrypted_extensions",
      T.application_layer_protocol_negotiation,
      "0003026833",
      { protocols: [hex("6833")] },
    ],
    ["client_hello", T.supported_versions, "0403040303", { versions: [0x0304, 0x0303] }],
    ["client_hello", T.supported_versions, "00", DE], // <2..254>
    ["client_hello", T.supported_versions, "030304ff", DE], // odd
    ["client_hello", T.supported_versions, `ff${"0304".repeat(127)}00`, DE], // 255 > 254
    ["client_hello", T.supported_versions, `fe${"0304".repeat(127)}`, { versions: Array(127).fill(0x0304) }],
    ["server_hello", T.supported_versions, "0304", { selectedVersion: 0x0304 }],
    ["server_hello", T.supported_versions, "03", DE],
    ["server_hello", T.supported_versions, "030400", DE],
    ["hello_retry_request", T.supported_versions, "0304", { selectedVersion: 0x0304 }],
    ["client_hello", T.key_share, "0000", { clientShares: [] }],
    [
      "client_hello",
      T.key_share,
      "0006001d0002aabb",
      { clientShares: [{ group: 0x1d, keyExchange: hex("aabb") }] },
    ],
    ["client_hello", T.key_share, "0004001d0000", DE], // key_exchange <1..>
    ["client_hello", T.key_share, "0005001d0002aa", DE], // key_exchange runs past the list
    ["server_hello", T.key_share, "001d0002aabb", { serverShare: { group: 0x1d, keyExchange: hex("aabb") } }],
    ["server_hello", T.key_share, "001d0000", DE],
    ["server_hello", T.key_share, "001d0001aabb", DE], // trailing
    ["hello_retry_request", T.key_share, "0017", { selectedGroup: 0x17 }],
    ["hello_retry_request", T.key_share, "001700", DE],
    ["server_hello", T.pre_shared_key, "0001", { selectedIdentity: 1 }],
    ["server_hello", T.pre_shared_key, "00", DE],
    [
      "client_hello",
      T.pre_shared_key,
      `0007000101000000050021${"20".concat("ab".repeat(32))}`,
      { binders: [hex("ab".repeat(32))] },
    ],
    ["client_hello", T.pre_shared_key, `0006000001000000000021${"20".concat("ab".repeat(32))}`, DE], // empty identity
    [
      "client_hello",
      T.pre_shared_key,
      `000e00010100000005000102000000060041${"20".concat("ab".repeat(32))}${"1f".concat("cd".repeat(31))}`,
      DE,
    ], // 2nd binder < 32
    [
      "client_hello",
      T.pre_shared_key,
      `000e00010100000005000102000000060042${"20".concat("ab".repeat(32))}${"20".concat("cd".repeat(32))}`,
      { binders: [hex("ab".repeat(32)), hex("cd".repeat(32))] },
    ],
    ["client_hello", T.pre_shared_key, `0007000101000000050020${"1f".concat("ab".repeat(31))}`, DE], // list < 33
    ["client_hello", T.pre_shared_key, "000700010100000005", DE], // no binders
    ["client_hello", T.psk_key_exchange_modes, "020001", { modes: [0, 1] }],
    ["client_hello", T.psk_key_exchange_modes, "00", DE], // <1..255>
    ["client_hello", T.psk_key_exchange_modes, "0201", DE],
    ["client_hello", T.early_data, "", { type: T.early_data }],
    ["client_hello", T.early_data, "00", DE],
    ["encrypted_extensions", T.early_data, "", { type: T.early_data }],
    ["new_session_ticket", T.early_data, "00004000", { maxEarlyDataSize: 0x4000 }],
    ["new_session_ticket", T.early_data, "000040", DE],
    ["new_session_ticket", T.early_data, "0000400000", DE],
    ["client_hello", T.cookie, "0001ff", { cookie: hex("ff") }],
    ["hello_retry_request", T.cookie, "0000", DE], // <1..>
    ["client_hello", T.certificate_authorities, "00030001aa", { authorities: [hex("aa")] }],
    ["certificate_request", T.certificate_authorities, "0000", DE], // <3..>
    ["certificate_request", T.certificate_authorities, "000400000000", DE], // empty DN
    ["client_hello", T.server_name, "000400000161", { serverNames: [{ nameType: 0, name: hex("61") }] }],
    ["client_hello", T.server_name, "0000", DE], // <1..>
    ["client_hello", T.server_name, "0003000000", DE], // empty HostName
    ["client_hello", T.server_name, "0003070000", { serverNames: [{ nameType: 7, name: new Uint8Array() }] }],
    ["encrypted_extensions", T.server_name, "", { serverNames: [] }],
    ["encrypted_extensions", T.server_name, "000400000161", DE], // must be empty in EE
    ["client_hello", T.quic_transport_parameters, "0102aabb", { parameters: hex("0102aabb") }],
    ["encrypted_extensions", T.quic_transport_parameters, "", { parameters: new Uint8Array() }],
  ];
  for (const [ctx, type, data, expected] of cases) {
    const label = `${ctx} ${type} ${data.slice(0, 24)}${data.length > 24 ? "…" : ""}`;
    it(label, () => {
      const r = decodeIn(ctx, ext(type, data));
      if (typeof expected === "number") {
        expect(r).toBe(expected);
      } else {
        expect(Array.isArray(r)).toBe(true);
        expect((r as { type: number }[])[0]).toMatchObject({ type, ...expected });
      }
    });
  }
});

describe("RFC 9846 §4.2 message table and duplicates", () => {
  it("a recognized extension outside the messages the table allows is illegal_parameter", () => {
    const cases: [ExtensionContext, number, string][] = [
      ["encrypted_extensions", T.key_share, "0017"],
      ["encrypted_extensions", T.supported_versions, "0304"],
      ["encrypted_extensions", T.pre_shared_key, "0000"],
      ["encrypted_extensions", T.signature_algorithms, "00020403"],
      ["server_hello", T.quic_transport_parameters, ""],
      ["server_hello", T.cookie, "0001ff"],
      ["server_hello", T.early_data, ""],
      ["hello_retry_request", T.psk_key_exchange_modes, "0101"],
      ["hello_retry_request", T.pre_shared_key, "0000"],
      ["certificate", T.early_data, ""],
      ["certificate", T.server_name, ""],
      ["new_session_ticket", T.quic_transport_parameters, ""],
      ["certificate_request", T.key_share, "0017"],
    ];
    for (const [ctx, type, data] of cases)
      expect([ctx, type, decodeIn(ctx, ext(type, data))]).toEqual([ctx, type, IP]);
  });

  it("the table rows match RFC 9846 §4.2 for the typed extensions", () => {
    const rows = Object.fromEntries(
      [...TYPED_EXTENSIONS.keys()].map((t) => [t, CONTEXTS.filter((c) => extensionAllowedIn(t, c))]),
    );
    expect(rows[T.key_share]).toEqual(["client_hello", "server_hello", "hello_retry_request"]);
    expect(rows[T.early_data]).toEqual(["client_hello", "encrypted_extensions", "new_session_ticket"]);
    expect(rows[T.cookie]).toEqual(["client_hello", "hello_retry_request"]);
    expect(rows[T.quic_transport_parameters]).toEqual(["client_hello", "encrypted_extensions"]);
    expect(rows[T.psk_key_exchange_modes]).toEqual(["client_hello"]);
    // Not recognized here → allowed (kept raw) anywhere.
    expect(CONTEXTS.every((c) => extensionAllowedIn(T.status_request, c))).toBe(true);
  });

  it("extensions not typed in a message are kept raw there (server_name in CR, status_request in CT)", () => {
    expect(decodeIn("certificate_request", ext(T.server_name, "000400000161"))).toEqual([
      { type: T.server_name, data: hex("000400000161") },
    ]);
    expect(decodeIn("certificate", ext(T.status_request, "0100"))).toEqual([
      { type: T.status_request, data: hex("0100") },
    ]);
    expect(decodeIn("encrypted_extensions", ext(0xfe0d, "abcd"))).toEqual([
      { type: 0xfe0d, data: hex("abcd") },
    ]);
  });

  it("duplicates are illegal_parameter in every context, typed or raw", () => {
    for (const ctx of CONTEXTS) {
      const raw = ext(0x7a7a, "");
      expect(decodeIn(ctx, raw + raw)).toBe(IP);
      expect(decodeIn(ctx, raw + ext(0x8a8a, ""))).toEqual([
        { type: 0x7a7a, data: new Uint8Array() },
        { type: 0x8a8a, data: new Uint8Array() },
      ]);
    }
    expect(decodeIn("encrypted_extensions", ext(T.early_data, "") + ext(T.early_data, ""))).toBe(IP);
    expect(decodeIn("client_hello", ext(T.cookie, "0001aa") + ext(T.cookie, "0001bb"))).toBe(IP);
  });

  it("a truncated extension header or data length is decode_error", () => {
    expect(decodeIn("encrypted_extensions", "000a00")).toBe(DE);
    expect(decodeIn("encrypted_extensions", "000a0004001d")).toBe(DE);
  });
});

describe("random extension_data for every recognized type in every message", () => {
  it("decodes canonically or throws TlsError", () => {
    const types = [...TYPED_EXTENSIONS.keys()];
    fc.assert(
      fc.property(
        fc.constantFrom(...CONTEXTS),
        fc.constantFrom(...types),
        fc.uint8Array({ maxLength: 80 }),
        (ctx, type, data) => {
          const r = decodeIn(ctx, ext(type, toHex(data)));
          if (!extensionAllowedIn(type, ctx)) expect(r).toBe(IP);
          else if (typeof r === "number") expect([DE, IP]).toContain(r);
        },
      ),
      { numRuns: 4000 },
    );
  });
});

describe("helpers", () => {
  it("findExtension returns the typed shape, findRawExtension the raw one", () => {
    const ee: EncryptedExtensions = {
      type: HandshakeType.encrypted_extensions,
      extensions: [
        { type: 0x1234, data: hex("01") },
        alpnExtension(["h3"]),
        { type: T.quic_transport_parameters, parameters: hex("0001") },
      ],
    };
    expect(findExtension(ee.extensions, T.application_layer_protocol_negotiation)?.protocols).toEqual([
      hex("6833"),
    ]);
    expect(findExtension(ee.extensions, T.quic_transport_parameters)?.parameters).toEqual(hex("0001"));
    expect(findExtension(ee.extensions, T.early_data)).toBeUndefined();
    expect(findRawExtension(ee.extensions, 0x1234)?.data).toEqual(hex("01"));
    expect(findRawExtension(ee.extensions, T.quic_transport_parameters)).toBeUndefined();
    expect(decodeHandshakeMessage(8, encodeHandshakeMessage(ee).subarray(4))).toEqual(ee);
  });

  it("serverNameExtension / sniHostName round-trip through a ClientHello", () => {
    const ch: ClientHello = {
      type: HandshakeType.client_hello,
      legacyVersion: 0x0303,
      random: new Uint8Array(32),
      legacySessionId: new Uint8Array(),
      cipherSuites: [0x1301],
      legacyCompressionMethods: hex("00"),
      extensions: [serverNameExtension("example.com"), { type: T.supported_versions, versions: [0x0304] }],
    };
    const raw = encodeHandshakeMessage(ch);
    expect(toHex(raw)).toContain(`00000010000e00000b${Buffer.from("example.com").toString("hex")}`);
    const back = decodeHandshakeMessage(1, raw.subarray(4)) as ClientHello;
    const sni = findExtension(back.extensions, T.server_name);
    expect(sni && sniHostName(sni)).toBe("example.com");
    expect(
      sniHostName({ type: T.server_name, serverNames: [{ nameType: 9, name: hex("61") }] }),
    ).toBeUndefined();
    expect(() => serverNameExtension("exämple.com")).toThrow(QuicUsageError);
    expect(() => alpnExtension(["h\u00e9"])).toThrow(QuicUsageError);
  });
});
