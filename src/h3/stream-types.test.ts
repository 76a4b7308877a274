import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteWriter, MAX_VARINT } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { greaseValue, MAX_GREASE_N } from "./error-codes.ts";
import {
  encodeUniStreamHeader,
  isClientBidiStreamId,
  isReservedStreamType,
  isServerInitiatedStreamId,
  isUniStreamId,
  parseUniStreamHeader,
  UniStreamHeaderReader,
  UniStreamType,
  uniStreamHeaderBytes,
  uniStreamHeaderSize,
  uniStreamTypeHasId,
  uniStreamTypeName,
} from "./stream-types.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("unidirectional stream types", () => {
  it("has the registered values", () => {
    expect(UniStreamType).toEqual({
      CONTROL: 0x00,
      PUSH: 0x01,
      QPACK_ENCODER: 0x02,
      QPACK_DECODER: 0x03,
      WEBTRANSPORT: 0x54,
    });
  });

  it("recognises reserved types (§6.2.3)", () => {
    expect(isReservedStreamType(0x21)).toBe(true);
    expect(isReservedStreamType(0x40n)).toBe(true);
    expect(isReservedStreamType(0x54)).toBe(false);
    expect(isReservedStreamType(0)).toBe(false);
    expect(uniStreamTypeName(0x21)).toBe("GREASE(0x21)");
    expect(uniStreamTypeName(0)).toBe("CONTROL");
    expect(uniStreamTypeName(0x54n)).toBe("WEBTRANSPORT");
    expect(uniStreamTypeName(0x99)).toBe("0x99");
  });

  it("knows which headers carry an id", () => {
    expect(uniStreamTypeHasId(UniStreamType.PUSH)).toBe(true);
    expect(uniStreamTypeHasId(UniStreamType.WEBTRANSPORT)).toBe(true);
    expect(uniStreamTypeHasId(0x54n)).toBe(true);
    expect(uniStreamTypeHasId(UniStreamType.CONTROL)).toBe(false);
    expect(uniStreamTypeHasId(UniStreamType.QPACK_DECODER)).toBe(false);
  });

  it("encodes known headers", () => {
    expect(hex(uniStreamHeaderBytes(UniStreamType.CONTROL))).toBe("00");
    expect(hex(uniStreamHeaderBytes(UniStreamType.PUSH, 5))).toBe("0105");
    expect(hex(uniStreamHeaderBytes(UniStreamType.WEBTRANSPORT, 0))).toBe("405400");
    expect(hex(uniStreamHeaderBytes(greaseValue(MAX_GREASE_N)))).toBe("fffffffffffffffe");
  });

  it("rejects a missing or extra id and leaves the writer alone when too small", () => {
    expect(() => uniStreamHeaderSize(UniStreamType.PUSH)).toThrow(QuicUsageError);
    expect(() => uniStreamHeaderSize(UniStreamType.CONTROL, 3)).toThrow(QuicUsageError);
    expect(() => uniStreamHeaderSize(-1)).toThrow(QuicUsageError);
    expect(() => uniStreamHeaderSize(MAX_VARINT + 1n)).toThrow(QuicUsageError);
    const w = new ByteWriter(new Uint8Array(1));
    expect(() => encodeUniStreamHeader(w, UniStreamType.PUSH, 1)).toThrow(QuicUsageError);
    expect(w.pos).toBe(0);
  });

  it("parses headers from any chunking", () => {
    const arbHeader = fc.oneof(
      fc.record({ type: fc.constant(1n), id: fc.maxSafeNat() as fc.Arbitrary<number | undefined> }),
      fc.record({ type: fc.constant(0x54n), id: fc.maxSafeNat() as fc.Arbitrary<number | undefined> }),
      fc.record({
        type: fc.bigInt({ min: 0n, max: MAX_VARINT }).filter((t) => t !== 1n && t !== 0x54n),
        id: fc.constant(undefined),
      }),
    );
    fc.assert(
      fc.property(
        arbHeader,
        fc.uint8Array({ maxLength: 20 }),
        fc.integer({ min: 1, max: 9 }),
        (h, body, step) => {
          const head = uniStreamHeaderBytes(h.type, h.id);
          expect(head.length).toBe(uniStreamHeaderSize(h.type, h.id));
          const all = new Uint8Array([...head, ...body]);
          const parsed = parseUniStreamHeader(all);
          expect(parsed?.length).toBe(head.length);
          expect(parsed?.header).toEqual({ type: h.type, ...(h.id !== undefined ? { id: h.id } : {}) });
          for (let n = 0; n < head.length; n++)
            expect(parseUniStreamHeader(all.subarray(0, n))).toBeUndefined();

          const reader = new UniStreamHeaderReader();
          let result: ReturnType<UniStreamHeaderReader["push"]>;
          let pos = 0;
          while (result === undefined && pos < all.length) {
            result = reader.push(all.subarray(pos, pos + step));
            pos += step;
          }
          expect(result?.header).toEqual(parsed?.header);
          expect(reader.header).toEqual(parsed?.header);
          const rest = new Uint8Array([...(result?.rest ?? []), ...all.subarray(pos)]);
          expect(hex(rest)).toBe(hex(body));
          expect(() => reader.push(new Uint8Array(1))).toThrow(QuicUsageError);
        },
      ),
    );
  });
});

describe("stream IDs", () => {
  it("classifies QUIC stream IDs (RFC 9000 §2.1)", () => {
    expect(isClientBidiStreamId(0)).toBe(true);
    expect(isClientBidiStreamId(4)).toBe(true);
    expect(isClientBidiStreamId(1)).toBe(false);
    expect(isClientBidiStreamId(2)).toBe(false);
    expect(isClientBidiStreamId((1n << 62n) - 4n)).toBe(true);
    expect(isClientBidiStreamId((1n << 62n) - 1n)).toBe(false);
    expect(isUniStreamId(2)).toBe(true);
    expect(isUniStreamId(3)).toBe(true);
    expect(isUniStreamId(4)).toBe(false);
    expect(isServerInitiatedStreamId(3)).toBe(true);
    expect(isServerInitiatedStreamId(2)).toBe(false);
  });
});
