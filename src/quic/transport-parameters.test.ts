import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BufferOverflowError, ByteWriter, MAX_VARINT } from "./bytes.ts";
import { QuicError, QuicUsageError, TransportErrorCode } from "./errors.ts";
import {
  checkConnectionIdParameters,
  checkVersionInformation,
  checkZeroRttParameters,
  DEFAULT_TRANSPORT_PARAMETERS,
  decodeTransportParameters,
  encodeTransportParameters,
  findZeroRttReduction,
  greaseParameter,
  TransportParameterId as Id,
  isReservedTransportParameterId,
  type TransportParameterSender,
  type TransportParameters,
  transportParametersSize,
  withDefaults,
} from "./transport-parameters.ts";

const TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR;
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function varint(v: number | bigint): Uint8Array {
  const w = new ByteWriter(new Uint8Array(8));
  w.writeVarintBig(BigInt(v));
  return w.written().slice();
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One raw (id, length, value) tuple. */
function param(id: number | bigint, value: Uint8Array | number[]): Uint8Array {
  const v = value instanceof Uint8Array ? value : Uint8Array.from(value);
  return concat(varint(id), varint(v.length), v);
}

/** An integer parameter with its value in the shortest varint. */
const intParam = (id: number, v: number | bigint): Uint8Array => param(id, varint(v));

function encode(p: TransportParameters): Uint8Array {
  const size = transportParametersSize(p);
  const w = new ByteWriter(new Uint8Array(size));
  encodeTransportParameters(p, w);
  expect(w.pos).toBe(size);
  return w.written();
}

/** Runs `f`, which must throw a QuicError; returns it. */
function quicErrorOf(f: () => unknown): QuicError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(QuicError);
    return e as QuicError;
  }
  throw new Error("expected a QuicError, nothing was thrown");
}

function expectTpe(bytes: Uint8Array, sender: TransportParameterSender, reason?: RegExp): void {
  const e = quicErrorOf(() => decodeTransportParameters(bytes, sender));
  expect(e.code).toBe(TPE);
  if (reason !== undefined) expect(e.reason).toMatch(reason);
}

const bytesOf = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);

describe("known bytes (RFC 9000 §18 layout)", () => {
  // Hand-assembled server parameters, in the encoder's order (known ids ascending, then unknown).
  const block = hex(`
    00 08 8394c8f03e515708
    01 04 80007530
    02 10 00112233445566778899aabbccddeeff
    03 02 45c0
    04 04 80100000
    05 02 4400
    06 02 4800
    07 01 00
    08 01 10
    09 01 03
    0a 01 04
    0b 01 0a
    0c 00
    0d 2d c0000201 1234 20010db8000000000000000000000001 abcd 04 01020304 ffeeddccbbaa99887766554433221100
    0e 01 04
    0f 04 aabbccdd
    10 01 77
    11 0c 00000001 6b3343cf 00000001
    20 04 8000ffff
    6ab2 00
    c0000000ff04de1b 02 43e8
    1b 02 dead
    c000000049e8e61b 00
  `);
  const expected: TransportParameters = {
    originalDestinationConnectionId: hex("8394c8f03e515708"),
    maxIdleTimeout: 30000,
    statelessResetToken: hex("00112233445566778899aabbccddeeff"),
    maxUdpPayloadSize: 1472,
    initialMaxData: 1048576,
    initialMaxStreamDataBidiLocal: 1024,
    initialMaxStreamDataBidiRemote: 2048,
    initialMaxStreamDataUni: 0,
    initialMaxStreamsBidi: 16,
    initialMaxStreamsUni: 3,
    ackDelayExponent: 4,
    maxAckDelay: 10,
    disableActiveMigration: true,
    preferredAddress: {
      ipv4Address: hex("c0000201"),
      ipv4Port: 0x1234,
      ipv6Address: hex("20010db8000000000000000000000001"),
      ipv6Port: 0xabcd,
      connectionId: hex("01020304"),
      statelessResetToken: hex("ffeeddccbbaa99887766554433221100"),
    },
    activeConnectionIdLimit: 4,
    initialSourceConnectionId: hex("aabbccdd"),
    retrySourceConnectionId: hex("77"),
    versionInformation: { chosenVersion: 1, availableVersions: [0x6b3343cf, 1] },
    maxDatagramFrameSize: 65535,
    greaseQuicBit: true,
    minAckDelay: 1000,
    unknown: [
      { id: 27n, value: hex("dead") },
      { id: 31n * 40000000n + 27n, value: new Uint8Array(0) },
    ],
  };

  it("decodes every field", () => {
    expect(31n * 40000000n + 27n).toBe(0x49e8e61bn);
    expect(decodeTransportParameters(block, "server")).toEqual(expected);
  });

  it("encodes to the same bytes, and the size function agrees", () => {
    expect(transportParametersSize(expected)).toBe(block.length);
    expect(toHex(encode(expected))).toBe(toHex(block));
  });

  it("decodes an empty block to no parameters", () => {
    expect(decodeTransportParameters(new Uint8Array(0), "client")).toEqual({ unknown: [] });
    expect(transportParametersSize({})).toBe(0);
  });

  it("accepts non-minimal varint encodings (RFC 9000 §16) for ids, lengths and values", () => {
    // id 0x01 as 0x4001, length 4 as 0x4004, value 30000 in 8 bytes.
    const p = decodeTransportParameters(hex("4001 4008 c000000000007530 0f 00"), "client");
    expect(p.maxIdleTimeout).toBe(30000);
    expect(p.initialSourceConnectionId).toEqual(new Uint8Array(0));
  });

  it("copies byte fields out of the input buffer", () => {
    const input = block.slice();
    const p = decodeTransportParameters(input, "server");
    input.fill(0);
    expect(toHex(p.originalDestinationConnectionId!)).toBe("8394c8f03e515708");
    expect(toHex(p.preferredAddress!.connectionId)).toBe("01020304");
    expect(toHex(p.unknown![0].value)).toBe("dead");
  });

  it("saturates integer values above 2^53-1 (bytes.ts rule)", () => {
    const p = decodeTransportParameters(intParam(Id.INITIAL_MAX_DATA, MAX_VARINT), "client");
    expect(p.initialMaxData).toBe(Number.MAX_SAFE_INTEGER);
    const q = decodeTransportParameters(intParam(Id.INITIAL_MAX_STREAMS_UNI, 1n << 60n), "client");
    expect(q.initialMaxStreamsUni).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("writes explicitly set defaults and omits absent fields and false flags", () => {
    expect(toHex(encode({ ackDelayExponent: 3 }))).toBe("0a0103");
    expect(
      toHex(encode({ activeConnectionIdLimit: 2, disableActiveMigration: false, greaseQuicBit: false })),
    ).toBe("0e0102");
  });
});

// ---------------------------------------------------------------------------------------------
// Generators

const cid = (min = 0) => fc.uint8Array({ minLength: min, maxLength: 20, size: "max" });
const token = fc.uint8Array({ minLength: 16, maxLength: 16 });
const safe = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
/** Values spread over all four varint sizes. */
const uint = fc.oneof(
  fc.integer({ min: 0, max: 63 }),
  fc.integer({ min: 0, max: 16383 }),
  fc.integer({ min: 0, max: 2 ** 30 - 1 }),
  safe,
);
const version = fc.integer({ min: 1, max: 0xffff_ffff });
const KNOWN = new Set<bigint>(Object.values(Id).map((v) => BigInt(v)));
const unknownId = fc
  .oneof(
    fc.bigInt({ min: 0n, max: (MAX_VARINT - 27n) / 31n }).map((n) => 31n * n + 27n),
    fc.bigInt({ min: 0n, max: 0x3fffn }),
    fc.bigInt({ min: 0n, max: MAX_VARINT }),
  )
  .filter((id) => !KNOWN.has(id));
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });

const paramsArb = (sender: TransportParameterSender): fc.Arbitrary<TransportParameters> =>
  fc
    .record({
      originalDestinationConnectionId: opt(cid()),
      maxIdleTimeout: opt(uint),
      statelessResetToken: opt(token),
      maxUdpPayloadSize: opt(fc.integer({ min: 1200, max: Number.MAX_SAFE_INTEGER })),
      initialMaxData: opt(uint),
      initialMaxStreamDataBidiLocal: opt(uint),
      initialMaxStreamDataBidiRemote: opt(uint),
      initialMaxStreamDataUni: opt(uint),
      initialMaxStreamsBidi: opt(uint),
      initialMaxStreamsUni: opt(uint),
      ackDelayExponent: opt(fc.integer({ min: 0, max: 20 })),
      maxAckDelay: opt(fc.integer({ min: 0, max: 16383 })),
      disableActiveMigration: opt(fc.constant(true)),
      preferredAddress: opt(
        fc.record({
          ipv4Address: fc.uint8Array({ minLength: 4, maxLength: 4 }),
          ipv4Port: fc.integer({ min: 0, max: 0xffff }),
          ipv6Address: fc.uint8Array({ minLength: 16, maxLength: 16 }),
          ipv6Port: fc.integer({ min: 0, max: 0xffff }),
          connectionId: cid(1),
          statelessResetToken: token,
        }),
      ),
      activeConnectionIdLimit: opt(fc.integer({ min: 2, max: Number.MAX_SAFE_INTEGER })),
      initialSourceConnectionId: opt(cid()),
      retrySourceConnectionId: opt(cid()),
      versionInformation: opt(
        fc.record({ chosenVersion: version, availableVersions: fc.array(version, { maxLength: 6 }) }),
      ),
      maxDatagramFrameSize: opt(uint),
      greaseQuicBit: opt(fc.constant(true)),
      resetStreamAt: opt(fc.constant(true)),
      minAckDelay: opt(fc.integer({ min: 0, max: 16383 * 1000 })),
      unknown: opt(
        fc.uniqueArray(fc.record({ id: unknownId, value: fc.uint8Array({ maxLength: 24, size: "max" }) }), {
          selector: (u) => u.id,
          maxLength: 5,
        }),
      ),
    })
    .map((p) => {
      // Make the combination valid for `sender`.
      const q: TransportParameters = { ...p };
      const maxAckDelayUs = (q.maxAckDelay ?? 25) * 1000;
      if (q.minAckDelay !== undefined && q.minAckDelay > maxAckDelayUs) q.minAckDelay = maxAckDelayUs;
      if (q.initialSourceConnectionId?.length === 0) q.preferredAddress = undefined;
      if (sender === "client") {
        q.originalDestinationConnectionId = undefined;
        q.statelessResetToken = undefined;
        q.preferredAddress = undefined;
        q.retrySourceConnectionId = undefined;
        const vi = q.versionInformation;
        if (vi !== undefined && !vi.availableVersions.includes(vi.chosenVersion)) {
          q.versionInformation = { ...vi, availableVersions: [...vi.availableVersions, vi.chosenVersion] };
        }
      }
      return q;
    });

const senderArb = fc.constantFrom<TransportParameterSender>("client", "server");
const withSender = senderArb.chain((sender) => fc.tuple(fc.constant(sender), paramsArb(sender)));

/** What decoding `p`'s encoding gives back: no undefined fields, `unknown` always present. */
function normalized(p: TransportParameters): TransportParameters {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) if (v !== undefined) out[k] = v;
  return { ...out, unknown: p.unknown ?? [] };
}

describe("round trip (property)", () => {
  it("decode(encode(p)) equals p and the size is exact", () => {
    fc.assert(
      fc.property(withSender, ([sender, p]) => {
        const size = transportParametersSize(p);
        const w = new ByteWriter(new Uint8Array(size + 3), 0, size);
        encodeTransportParameters(p, w);
        expect(w.pos).toBe(size);
        const decoded = decodeTransportParameters(w.written(), sender);
        expect(decoded).toEqual(normalized(p));
        // unknown/GREASE parameters keep their ids (bigint) and order.
        expect(decoded.unknown!.map((u) => u.id)).toEqual((p.unknown ?? []).map((u) => u.id));
      }),
      { numRuns: 500 },
    );
  });

  it("an encoder buffer one byte short overflows (the size is not an over-estimate)", () => {
    fc.assert(
      fc.property(paramsArb("server"), (p) => {
        const size = transportParametersSize(p);
        fc.pre(size > 0);
        expect(() => encodeTransportParameters(p, new ByteWriter(new Uint8Array(size - 1)))).toThrow(
          BufferOverflowError,
        );
      }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile input

/** Decode must return or throw QuicError(TRANSPORT_PARAMETER_ERROR); what it returns re-encodes. */
function decodeOrTpe(bytes: Uint8Array, sender: TransportParameterSender): void {
  let p: TransportParameters;
  try {
    p = decodeTransportParameters(bytes, sender);
  } catch (e) {
    expect(e).toBeInstanceOf(QuicError);
    expect((e as QuicError).code).toBe(TPE);
    return;
  }
  // Whatever decodes is valid, so it encodes, and decodes again to the same values.
  expect(decodeTransportParameters(encode(p), sender)).toEqual(p);
}

/** Structurally plausible blocks: known and unknown ids with arbitrary values. */
const rawParam = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(...Object.values(Id)).map((v) => BigInt(v)),
      fc.bigInt({ min: 0n, max: MAX_VARINT }),
    ),
    fc.oneof(
      fc.uint8Array({ maxLength: 60 }),
      uint.map((v) => varint(v)),
    ),
  )
  .map(([id, v]) => param(id, v));
const rawBlock = fc.array(rawParam, { maxLength: 8 }).map((ps) => concat(...ps));

describe("hostile input (property)", () => {
  it("random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), senderArb, (b, sender) => decodeOrTpe(b, sender)),
      { numRuns: 2000 },
    );
  });

  it("random (id, length, value) sequences", () => {
    fc.assert(
      fc.property(rawBlock, senderArb, (b, sender) => decodeOrTpe(b, sender)),
      { numRuns: 2000 },
    );
  });

  it("every truncation of a valid encoding", () => {
    fc.assert(
      fc.property(withSender, ([sender, p]) => {
        const b = encode(p);
        for (let n = 0; n < b.length; n++) decodeOrTpe(b.subarray(0, n), sender);
      }),
      { numRuns: 200 },
    );
  });

  it("random byte mutations of a valid encoding", () => {
    fc.assert(
      fc.property(
        withSender,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        ([sender, p], edits) => {
          const b = encode(p).slice();
          fc.pre(b.length > 0);
          for (const [i, v] of edits) b[i % b.length] = v;
          decodeOrTpe(b, sender);
          decodeOrTpe(b, sender === "client" ? "server" : "client");
        },
      ),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// One negative test per rule

describe("decode rejects with TRANSPORT_PARAMETER_ERROR", () => {
  it("a value running past the end", () => {
    expectTpe(hex("0f 05 aabbccdd"), "client", /past the end/);
    expectTpe(hex("01 02 40"), "client");
  });

  it("a truncated id or length varint", () => {
    expectTpe(hex("40"), "client", /truncated/);
    expectTpe(hex("01 80 00"), "client", /truncated/);
  });

  it("a huge length (2^62-1) does not crash", () => {
    expectTpe(concat(hex("01"), varint(MAX_VARINT), hex("00")), "client", /past the end/);
  });

  it("an integer parameter that is not exactly one varint", () => {
    expectTpe(hex("01 00"), "client", /single varint/); // empty
    expectTpe(hex("01 02 05 00"), "client", /single varint/); // trailing byte
    expectTpe(hex("01 02 80 00"), "client", /single varint/); // 4-byte varint in 2 bytes
    expectTpe(hex("c0000000ff04de1b 01 40"), "client", /min_ack_delay/);
    expectTpe(hex("20 03 05 05 05"), "client", /max_datagram_frame_size/);
  });

  it("a duplicate parameter (§7.4), including via a non-minimal id and unknown ids", () => {
    expectTpe(
      concat(intParam(Id.INITIAL_MAX_DATA, 1), intParam(Id.INITIAL_MAX_DATA, 1)),
      "client",
      /duplicate/,
    );
    expectTpe(hex("01 01 05 4001 01 05"), "client", /duplicate/);
    expectTpe(concat(param(27, [1]), param(27, [])), "server", /duplicate/);
    expectTpe(hex("0c00 0c00"), "server", /duplicate/);
  });

  it.each([
    ["original_destination_connection_id", param(Id.ORIGINAL_DESTINATION_CONNECTION_ID, [1, 2])],
    ["preferred_address", param(Id.PREFERRED_ADDRESS, bytesOf(42, 1))],
    ["retry_source_connection_id", param(Id.RETRY_SOURCE_CONNECTION_ID, [])],
    ["stateless_reset_token", param(Id.STATELESS_RESET_TOKEN, bytesOf(16, 0))],
  ])("a client sending server-only %s (§18.2)", (name, bytes) => {
    expectTpe(bytes, "client", new RegExp(`server-only parameter ${name}`));
    expect(() => decodeTransportParameters(bytes, "server")).not.toThrow();
  });

  it("max_udp_payload_size below 1200", () => {
    expectTpe(intParam(Id.MAX_UDP_PAYLOAD_SIZE, 1199), "client", /max_udp_payload_size/);
    expectTpe(intParam(Id.MAX_UDP_PAYLOAD_SIZE, 0), "client");
    expect(
      decodeTransportParameters(intParam(Id.MAX_UDP_PAYLOAD_SIZE, 1200), "client").maxUdpPayloadSize,
    ).toBe(1200);
  });

  it("ack_delay_exponent above 20", () => {
    expectTpe(intParam(Id.ACK_DELAY_EXPONENT, 21), "client", /ack_delay_exponent/);
    expectTpe(intParam(Id.ACK_DELAY_EXPONENT, MAX_VARINT), "client", /ack_delay_exponent/);
    expect(decodeTransportParameters(intParam(Id.ACK_DELAY_EXPONENT, 20), "client").ackDelayExponent).toBe(
      20,
    );
  });

  it("max_ack_delay of 2^14 or more", () => {
    expectTpe(intParam(Id.MAX_ACK_DELAY, 16384), "client", /max_ack_delay/);
    expectTpe(intParam(Id.MAX_ACK_DELAY, MAX_VARINT), "client", /max_ack_delay/);
    expect(decodeTransportParameters(intParam(Id.MAX_ACK_DELAY, 16383), "client").maxAckDelay).toBe(16383);
  });

  it("active_connection_id_limit below 2", () => {
    expectTpe(intParam(Id.ACTIVE_CONNECTION_ID_LIMIT, 1), "client", /active_connection_id_limit/);
    expectTpe(intParam(Id.ACTIVE_CONNECTION_ID_LIMIT, 0), "server", /active_connection_id_limit/);
    expect(
      decodeTransportParameters(intParam(Id.ACTIVE_CONNECTION_ID_LIMIT, 2), "client").activeConnectionIdLimit,
    ).toBe(2);
  });

  it("initial_max_streams_* above 2^60 (§4.6), checked before saturation", () => {
    expectTpe(intParam(Id.INITIAL_MAX_STREAMS_BIDI, (1n << 60n) + 1n), "client", /initial_max_streams_bidi/);
    expectTpe(intParam(Id.INITIAL_MAX_STREAMS_UNI, MAX_VARINT), "client", /initial_max_streams_uni/);
    expect(() =>
      decodeTransportParameters(intParam(Id.INITIAL_MAX_STREAMS_BIDI, 1n << 60n), "client"),
    ).not.toThrow();
  });

  it.each([
    ["original_destination_connection_id", Id.ORIGINAL_DESTINATION_CONNECTION_ID],
    ["initial_source_connection_id", Id.INITIAL_SOURCE_CONNECTION_ID],
    ["retry_source_connection_id", Id.RETRY_SOURCE_CONNECTION_ID],
  ])("%s longer than 20 bytes", (name, id) => {
    expectTpe(param(id, bytesOf(21, 7)), "server", new RegExp(`${name} longer than 20`));
    expect(decodeTransportParameters(param(id, bytesOf(20, 7)), "server")).toBeDefined();
  });

  it("stateless_reset_token not 16 bytes", () => {
    expectTpe(param(Id.STATELESS_RESET_TOKEN, bytesOf(15, 1)), "server", /stateless_reset_token/);
    expectTpe(param(Id.STATELESS_RESET_TOKEN, bytesOf(17, 1)), "server", /stateless_reset_token/);
    expectTpe(param(Id.STATELESS_RESET_TOKEN, []), "server", /stateless_reset_token/);
  });

  describe("preferred_address", () => {
    const pa = (cidLen: number, extra = 0): Uint8Array =>
      concat(bytesOf(4 + 2 + 16 + 2, 9), Uint8Array.of(cidLen), bytesOf(cidLen, 5), bytesOf(16 + extra, 3));

    it("accepts a well-formed one", () => {
      const p = decodeTransportParameters(param(Id.PREFERRED_ADDRESS, pa(8)), "server");
      expect(p.preferredAddress!.connectionId).toEqual(bytesOf(8, 5));
      expect(p.preferredAddress!.ipv4Port).toBe(0x0909);
    });
    it("with a zero-length connection ID", () => {
      expectTpe(param(Id.PREFERRED_ADDRESS, pa(0)), "server", /zero-length connection ID/);
    });
    it("with a connection ID longer than 20 bytes", () => {
      expectTpe(param(Id.PREFERRED_ADDRESS, pa(21)), "server", /longer than 20/);
    });
    it("with a length that does not match the connection ID length", () => {
      expectTpe(param(Id.PREFERRED_ADDRESS, pa(4, 1)), "server", /length does not match/);
      expectTpe(param(Id.PREFERRED_ADDRESS, pa(4, -1)), "server", /length does not match/);
    });
    it("too short to hold the fixed fields", () => {
      expectTpe(param(Id.PREFERRED_ADDRESS, bytesOf(24, 0)), "server", /too short/);
      expectTpe(param(Id.PREFERRED_ADDRESS, []), "server", /too short/);
    });
    it("from a server that chose a zero-length connection ID", () => {
      expectTpe(
        concat(param(Id.PREFERRED_ADDRESS, pa(4)), param(Id.INITIAL_SOURCE_CONNECTION_ID, [])),
        "server",
        /zero-length connection ID/,
      );
    });
  });

  it("reset_stream_at with a non-empty value (reliable-stream-reset §3)", () => {
    expectTpe(param(Id.RESET_STREAM_AT, [0]), "server", /reset_stream_at/);
    expect(decodeTransportParameters(param(Id.RESET_STREAM_AT, []), "client").resetStreamAt).toBe(true);
    expect(toHex(encode({ resetStreamAt: true }))).toBe("1d00");
  });

  it("grease_quic_bit with a non-empty value (RFC 9287 §3)", () => {
    expectTpe(param(Id.GREASE_QUIC_BIT, [0]), "client", /grease_quic_bit/);
    expect(decodeTransportParameters(param(Id.GREASE_QUIC_BIT, []), "client").greaseQuicBit).toBe(true);
  });

  it("disable_active_migration with a non-empty value", () => {
    expectTpe(param(Id.DISABLE_ACTIVE_MIGRATION, [1]), "client", /disable_active_migration/);
  });

  it("min_ack_delay greater than max_ack_delay (ack-frequency §3)", () => {
    const both = (minUs: number, maxMs: number) =>
      concat(intParam(Id.MAX_ACK_DELAY, maxMs), intParam(Id.MIN_ACK_DELAY, minUs));
    expectTpe(both(10_001, 10), "client", /min_ack_delay/);
    expect(decodeTransportParameters(both(10_000, 10), "client").minAckDelay).toBe(10_000);
    // Against the default max_ack_delay of 25 ms.
    expectTpe(intParam(Id.MIN_ACK_DELAY, 25_001), "server", /min_ack_delay/);
    expect(decodeTransportParameters(intParam(Id.MIN_ACK_DELAY, 25_000), "server").minAckDelay).toBe(25_000);
    expectTpe(intParam(Id.MIN_ACK_DELAY, MAX_VARINT), "server", /min_ack_delay/);
  });

  describe("version_information (RFC 9368 §4 parsing failures are TRANSPORT_PARAMETER_ERROR)", () => {
    it("zero-length", () => expectTpe(param(Id.VERSION_INFORMATION, []), "server", /too short/));
    it("length not a multiple of 4", () => {
      expectTpe(param(Id.VERSION_INFORMATION, hex("00000001 0000")), "server", /multiple of 4/);
      expectTpe(param(Id.VERSION_INFORMATION, hex("000001")), "server", /too short/);
    });
    it("chosen version 0", () => {
      expectTpe(param(Id.VERSION_INFORMATION, hex("00000000 00000001")), "server", /chosen version 0/);
    });
    it("an available version 0", () => {
      expectTpe(
        param(Id.VERSION_INFORMATION, hex("00000001 00000001 00000000")),
        "client",
        /available version 0/,
      );
    });
    it("a client's chosen version missing from its available versions", () => {
      const b = param(Id.VERSION_INFORMATION, hex("00000001 6b3343cf"));
      expectTpe(b, "client", /not among available/);
      // A server's may legitimately be missing (RFC 9368 §3), and its list may be empty.
      expect(decodeTransportParameters(b, "server").versionInformation).toEqual({
        chosenVersion: 1,
        availableVersions: [0x6b3343cf],
      });
      expect(
        decodeTransportParameters(param(Id.VERSION_INFORMATION, hex("00000001")), "server")
          .versionInformation,
      ).toEqual({ chosenVersion: 1, availableVersions: [] });
    });
  });
});

describe("encoder rejects local mistakes with QuicUsageError", () => {
  it.each<[string, TransportParameters]>([
    ["max_udp_payload_size < 1200", { maxUdpPayloadSize: 1000 }],
    ["ack_delay_exponent > 20", { ackDelayExponent: 21 }],
    ["max_ack_delay >= 2^14", { maxAckDelay: 16384 }],
    ["active_connection_id_limit < 2", { activeConnectionIdLimit: 1 }],
    ["negative integer", { initialMaxData: -1 }],
    ["fractional integer", { maxIdleTimeout: 1.5 }],
    ["unsafe integer", { initialMaxData: 2 ** 53 }],
    ["21-byte CID", { initialSourceConnectionId: bytesOf(21, 0) }],
    ["15-byte token", { statelessResetToken: bytesOf(15, 0) }],
    ["version 0", { versionInformation: { chosenVersion: 0, availableVersions: [] } }],
    ["version > 2^32-1", { versionInformation: { chosenVersion: 1, availableVersions: [2 ** 32] } }],
    ["min_ack_delay > max_ack_delay", { minAckDelay: 25_001 }],
    ["unknown entry with a known id", { unknown: [{ id: 1n, value: new Uint8Array(1) }] }],
    [
      "duplicate unknown ids",
      {
        unknown: [
          { id: 27n, value: new Uint8Array(0) },
          { id: 27n, value: new Uint8Array(0) },
        ],
      },
    ],
    ["unknown id above 2^62-1", { unknown: [{ id: MAX_VARINT + 1n, value: new Uint8Array(0) }] }],
    [
      "preferred address with empty CID",
      {
        preferredAddress: {
          ipv4Address: bytesOf(4, 0),
          ipv4Port: 0,
          ipv6Address: bytesOf(16, 0),
          ipv6Port: 0,
          connectionId: new Uint8Array(0),
          statelessResetToken: bytesOf(16, 0),
        },
      },
    ],
  ])("%s", (_name, p) => {
    expect(() => transportParametersSize(p)).toThrow(QuicUsageError);
    const w = new ByteWriter(new Uint8Array(100));
    expect(() => encodeTransportParameters(p, w)).toThrow(QuicUsageError);
    expect(w.pos).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Defaults and GREASE

describe("defaults and GREASE", () => {
  it("withDefaults fills in the RFC defaults and keeps explicit values", () => {
    const d = withDefaults({});
    expect(d.maxUdpPayloadSize).toBe(65527);
    expect(d.ackDelayExponent).toBe(3);
    expect(d.maxAckDelay).toBe(25);
    expect(d.activeConnectionIdLimit).toBe(2);
    expect(d.initialMaxData).toBe(0);
    expect(d.maxDatagramFrameSize).toBe(0);
    expect(d.disableActiveMigration).toBe(false);
    expect(d.unknown).toEqual([]);
    expect(d.minAckDelay).toBeUndefined();
    const e = withDefaults({ ackDelayExponent: 0, maxAckDelay: 0, initialSourceConnectionId: hex("01") });
    expect(e.ackDelayExponent).toBe(0);
    expect(e.maxAckDelay).toBe(0);
    expect(e.initialSourceConnectionId).toEqual(hex("01"));
    expect(Object.isFrozen(DEFAULT_TRANSPORT_PARAMETERS)).toBe(true);
  });

  it("isReservedTransportParameterId recognises 31*N+27", () => {
    expect(isReservedTransportParameterId(27n)).toBe(true);
    expect(isReservedTransportParameterId(58n)).toBe(true);
    expect(isReservedTransportParameterId(59n)).toBe(false);
    expect(isReservedTransportParameterId(0n)).toBe(false);
  });

  it("greaseParameter gives a reserved id and a small value from the supplied randomness", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 9 + 15, maxLength: 9 + 15 }), (rand) => {
        let off = 0;
        const randomBytes = (n: number): Uint8Array => {
          const r = rand.subarray(off, off + n);
          off += n;
          return r;
        };
        const g = greaseParameter(randomBytes);
        expect(isReservedTransportParameterId(g.id)).toBe(true);
        expect(g.id <= MAX_VARINT).toBe(true);
        expect(g.value.length).toBe(rand[8] & 0x0f);
        expect(g.value).toEqual(rand.subarray(9, 9 + g.value.length));
        const p = decodeTransportParameters(encode({ unknown: [g] }), "client");
        expect(p.unknown).toEqual([g]);
      }),
    );
    expect(() => greaseParameter(() => new Uint8Array(2))).toThrow(QuicUsageError);
  });
});

// ---------------------------------------------------------------------------------------------
// Connection-level checks

describe("checkConnectionIdParameters (RFC 9000 §7.3)", () => {
  const C1 = hex("c1c1c1c1");
  const S1 = hex("5151515151515151");
  const S2 = hex("52525252");
  const S3 = hex("53535353");
  const code = (f: () => void) => quicErrorOf(f).code;

  it("accepts a client's parameters naming its SCID", () => {
    expect(() =>
      checkConnectionIdParameters(
        { initialSourceConnectionId: C1 },
        { initialSourceConnectionId: C1 },
        "client",
      ),
    ).not.toThrow();
  });

  it("accepts zero-length connection IDs that match", () => {
    const empty = new Uint8Array(0);
    expect(() =>
      checkConnectionIdParameters(
        { initialSourceConnectionId: empty },
        { initialSourceConnectionId: empty },
        "client",
      ),
    ).not.toThrow();
  });

  it("accepts a server's parameters without Retry (Figure 7)", () => {
    expect(() =>
      checkConnectionIdParameters(
        { initialSourceConnectionId: S3, originalDestinationConnectionId: S1 },
        { initialSourceConnectionId: S3, originalDestinationConnectionId: S1 },
        "server",
      ),
    ).not.toThrow();
  });

  it("accepts a server's parameters with Retry (Figure 8)", () => {
    expect(() =>
      checkConnectionIdParameters(
        { initialSourceConnectionId: S3, originalDestinationConnectionId: S1, retrySourceConnectionId: S2 },
        { initialSourceConnectionId: S3, originalDestinationConnectionId: S1, retrySourceConnectionId: S2 },
        "server",
      ),
    ).not.toThrow();
  });

  it("rejects a missing initial_source_connection_id from either side", () => {
    expect(code(() => checkConnectionIdParameters({}, { initialSourceConnectionId: C1 }, "client"))).toBe(
      TPE,
    );
    expect(
      code(() =>
        checkConnectionIdParameters(
          { originalDestinationConnectionId: S1 },
          { initialSourceConnectionId: S3, originalDestinationConnectionId: S1 },
          "server",
        ),
      ),
    ).toBe(TPE);
  });

  it("rejects a mismatched initial_source_connection_id", () => {
    expect(
      code(() =>
        checkConnectionIdParameters(
          { initialSourceConnectionId: S3 },
          { initialSourceConnectionId: C1 },
          "client",
        ),
      ),
    ).toBe(TPE);
    // Same prefix, different length.
    expect(
      code(() =>
        checkConnectionIdParameters(
          { initialSourceConnectionId: hex("c1c1c1") },
          { initialSourceConnectionId: C1 },
          "client",
        ),
      ),
    ).toBe(TPE);
  });

  it("rejects a server missing original_destination_connection_id", () => {
    expect(
      code(() =>
        checkConnectionIdParameters(
          { initialSourceConnectionId: S3 },
          { initialSourceConnectionId: S3, originalDestinationConnectionId: S1 },
          "server",
        ),
      ),
    ).toBe(TPE);
  });

  it("rejects a mismatched original_destination_connection_id", () => {
    expect(
      code(() =>
        checkConnectionIdParameters(
          { initialSourceConnectionId: S3, originalDestinationConnectionId: S2 },
          { initialSourceConnectionId: S3, originalDestinationConnectionId: S1 },
          "server",
        ),
      ),
    ).toBe(TPE);
  });

  it("rejects retry_source_connection_id without a Retry", () => {
    expect(
      code(() =>
        checkConnectionIdParameters(
          { initialSourceConnectionId: S3, originalDestinationConnectionId: S1, retrySourceConnectionId: S2 },
          { initialSourceConnectionId: S3, originalDestinationConnectionId: S1 },
          "server",
        ),
      ),
    ).toBe(TPE);
  });

  it("rejects a missing or mismatched retry_source_connection_id after a Retry", () => {
    const expected = {
      initialSourceConnectionId: S3,
      originalDestinationConnectionId: S1,
      retrySourceConnectionId: S2,
    };
    expect(
      code(() =>
        checkConnectionIdParameters(
          { initialSourceConnectionId: S3, originalDestinationConnectionId: S1 },
          expected,
          "server",
        ),
      ),
    ).toBe(TPE);
    expect(
      code(() =>
        checkConnectionIdParameters(
          { initialSourceConnectionId: S3, originalDestinationConnectionId: S1, retrySourceConnectionId: S3 },
          expected,
          "server",
        ),
      ),
    ).toBe(TPE);
  });

  it("rejects a client carrying server-only connection IDs", () => {
    expect(
      code(() =>
        checkConnectionIdParameters(
          { initialSourceConnectionId: C1, originalDestinationConnectionId: S1 },
          { initialSourceConnectionId: C1 },
          "client",
        ),
      ),
    ).toBe(TPE);
  });

  it("throws QuicUsageError when the caller omits the original DCID for a server", () => {
    expect(() =>
      checkConnectionIdParameters(
        { initialSourceConnectionId: S3, originalDestinationConnectionId: S1 },
        { initialSourceConnectionId: S3 },
        "server",
      ),
    ).toThrow(QuicUsageError);
  });
});

describe("checkZeroRttParameters (RFC 9000 §7.4.1, RFC 9221 §3)", () => {
  const remembered: TransportParameters = {
    activeConnectionIdLimit: 4,
    initialMaxData: 1000,
    initialMaxStreamDataBidiLocal: 100,
    initialMaxStreamDataBidiRemote: 200,
    initialMaxStreamDataUni: 300,
    initialMaxStreamsBidi: 10,
    initialMaxStreamsUni: 3,
    maxDatagramFrameSize: 1200,
  };

  it("accepts equal or larger limits, and changes to parameters that are not limits", () => {
    expect(() => checkZeroRttParameters(remembered, remembered)).not.toThrow();
    const larger: TransportParameters = {
      ...remembered,
      initialMaxData: 5000,
      maxIdleTimeout: 1,
      maxAckDelay: 1,
    };
    expect(() => checkZeroRttParameters(remembered, larger)).not.toThrow();
    expect(findZeroRttReduction(remembered, larger)).toBeUndefined();
  });

  it("compares absent parameters by their defaults", () => {
    expect(() => checkZeroRttParameters({ activeConnectionIdLimit: 2 }, {})).not.toThrow();
    expect(() => checkZeroRttParameters({}, { initialMaxData: 1 })).not.toThrow();
    expect(findZeroRttReduction({ initialMaxData: 1 }, {})).toBe("initial_max_data");
  });

  it.each([
    ["activeConnectionIdLimit", "active_connection_id_limit"],
    ["initialMaxData", "initial_max_data"],
    ["initialMaxStreamDataBidiLocal", "initial_max_stream_data_bidi_local"],
    ["initialMaxStreamDataBidiRemote", "initial_max_stream_data_bidi_remote"],
    ["initialMaxStreamDataUni", "initial_max_stream_data_uni"],
    ["initialMaxStreamsBidi", "initial_max_streams_bidi"],
    ["initialMaxStreamsUni", "initial_max_streams_uni"],
    ["maxDatagramFrameSize", "max_datagram_frame_size"],
  ] as const)("rejects a reduced %s with PROTOCOL_VIOLATION", (key, name) => {
    const current: TransportParameters = { ...remembered, [key]: (remembered[key] as number) - 1 };
    const e = quicErrorOf(() => checkZeroRttParameters(remembered, current));
    expect(e.code).toBe(TransportErrorCode.PROTOCOL_VIOLATION);
    expect(e.reason).toContain(name);
    expect(findZeroRttReduction(remembered, current)).toBe(name);
  });
});

describe("checkVersionInformation (RFC 9368 §4, §8)", () => {
  const V1 = 0x00000001;
  const V2 = 0x6b3343cf;
  const VNE = TransportErrorCode.VERSION_NEGOTIATION_ERROR;
  const vi = (chosenVersion: number, ...availableVersions: number[]): TransportParameters => ({
    versionInformation: { chosenVersion, availableVersions },
  });
  const preferHigher = (offered: readonly number[]) =>
    [V2, V1].find((v) => offered.includes(v)) satisfies number | undefined;

  it("server side: the client's chosen version must be the connection's version", () => {
    expect(() => checkVersionInformation(vi(V1, V1, V2), { version: V1 }, "client")).not.toThrow();
    expect(() => checkVersionInformation({}, { version: V1 }, "client")).not.toThrow();
    expect(quicErrorOf(() => checkVersionInformation(vi(V2, V2), { version: V1 }, "client")).code).toBe(VNE);
  });

  it("client side: the server's chosen version must be one the client offered", () => {
    const ctx = { version: V2, clientAvailableVersions: [V1, V2] };
    expect(() => checkVersionInformation(vi(V2, V1, V2), ctx, "server")).not.toThrow();
    expect(() => checkVersionInformation({}, ctx, "server")).not.toThrow();
    expect(
      quicErrorOf(() => checkVersionInformation(vi(0x0a0a0a0a), { ...ctx, version: 0x0a0a0a0a }, "server"))
        .code,
    ).toBe(VNE);
  });

  it("client side after Version Negotiation: present, non-empty, and leading to the same choice", () => {
    const ctx = {
      version: V2,
      clientAvailableVersions: [V2, V1],
      reactedToVersionNegotiation: true,
      selectVersion: preferHigher,
    };
    expect(() => checkVersionInformation(vi(V2, V1, V2), ctx, "server")).not.toThrow();
    expect(quicErrorOf(() => checkVersionInformation({}, ctx, "server")).code).toBe(VNE);
    expect(quicErrorOf(() => checkVersionInformation(vi(V2), ctx, "server")).code).toBe(VNE);
    // The client reacted to VN and chose V1, but the server fully supports V2, which it prefers.
    const v1ctx = { ...ctx, version: V1 };
    expect(quicErrorOf(() => checkVersionInformation(vi(V1, V1, V2), v1ctx, "server")).code).toBe(VNE);
  });

  it("client side: the server's chosen version must equal the negotiated version (§4)", () => {
    const ctx = { version: V1, clientAvailableVersions: [V1, V2] };
    // A forged long header made us use V1, but the server chose V2 (authenticated): abort.
    expect(quicErrorOf(() => checkVersionInformation(vi(V2, V1, V2), ctx, "server")).code).toBe(VNE);
  });

  it("client side after a compatible switch: version_information is required", () => {
    const ctx = { version: V2, originalVersion: V1, clientAvailableVersions: [V2, V1] };
    expect(() => checkVersionInformation(vi(V2, V1, V2), ctx, "server")).not.toThrow();
    expect(quicErrorOf(() => checkVersionInformation({}, ctx, "server")).code).toBe(VNE);
    // Without a switch, a server without version_information is accepted (§4: MAY complete).
    expect(() => checkVersionInformation({}, { ...ctx, version: V1 }, "server")).not.toThrow();
  });

  it("version 1 special case: missing version_information after VN counts as {1, [1]} (§8)", () => {
    const ctx = {
      version: V1,
      clientAvailableVersions: [V1],
      reactedToVersionNegotiation: true,
      selectVersion: preferHigher,
    };
    expect(() => checkVersionInformation({}, ctx, "server")).not.toThrow();
  });
});
