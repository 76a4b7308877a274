import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_VARINT } from "../quic/bytes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import {
  greaseErrorCode,
  greaseValue,
  H3Error,
  H3ErrorCode,
  H3StreamError,
  h3ErrorName,
  isGreaseCode,
  isGreaseValue,
  MAX_GREASE_N,
  normalizeReceivedErrorCode,
  randomGreaseValue,
} from "./error-codes.ts";

describe("H3ErrorCode", () => {
  it("has the RFC 9114 §8.1, RFC 9204 §6 and RFC 9297 values", () => {
    expect(H3ErrorCode.H3_NO_ERROR).toBe(0x100);
    expect(H3ErrorCode.H3_GENERAL_PROTOCOL_ERROR).toBe(0x101);
    expect(H3ErrorCode.H3_INTERNAL_ERROR).toBe(0x102);
    expect(H3ErrorCode.H3_STREAM_CREATION_ERROR).toBe(0x103);
    expect(H3ErrorCode.H3_CLOSED_CRITICAL_STREAM).toBe(0x104);
    expect(H3ErrorCode.H3_FRAME_UNEXPECTED).toBe(0x105);
    expect(H3ErrorCode.H3_FRAME_ERROR).toBe(0x106);
    expect(H3ErrorCode.H3_EXCESSIVE_LOAD).toBe(0x107);
    expect(H3ErrorCode.H3_ID_ERROR).toBe(0x108);
    expect(H3ErrorCode.H3_SETTINGS_ERROR).toBe(0x109);
    expect(H3ErrorCode.H3_MISSING_SETTINGS).toBe(0x10a);
    expect(H3ErrorCode.H3_REQUEST_REJECTED).toBe(0x10b);
    expect(H3ErrorCode.H3_REQUEST_CANCELLED).toBe(0x10c);
    expect(H3ErrorCode.H3_REQUEST_INCOMPLETE).toBe(0x10d);
    expect(H3ErrorCode.H3_MESSAGE_ERROR).toBe(0x10e);
    expect(H3ErrorCode.H3_CONNECT_ERROR).toBe(0x10f);
    expect(H3ErrorCode.H3_VERSION_FALLBACK).toBe(0x110);
    expect(H3ErrorCode.QPACK_DECOMPRESSION_FAILED).toBe(0x200);
    expect(H3ErrorCode.QPACK_ENCODER_STREAM_ERROR).toBe(0x201);
    expect(H3ErrorCode.QPACK_DECODER_STREAM_ERROR).toBe(0x202);
    expect(H3ErrorCode.H3_DATAGRAM_ERROR).toBe(0x33);
  });

  it("names codes", () => {
    expect(h3ErrorName(0x106)).toBe("H3_FRAME_ERROR");
    expect(h3ErrorName(0x106n)).toBe("H3_FRAME_ERROR");
    expect(h3ErrorName(0x21)).toBe("GREASE(0x21)");
    expect(h3ErrorName(0x3ffffffffffffffen)).toBe("GREASE(0x3ffffffffffffffe)");
    expect(h3ErrorName(0x1234)).toBe("0x1234");
  });

  it("maps unknown received codes to H3_NO_ERROR (§8)", () => {
    expect(normalizeReceivedErrorCode(0x10c)).toBe(H3ErrorCode.H3_REQUEST_CANCELLED);
    expect(normalizeReceivedErrorCode(0x10cn)).toBe(H3ErrorCode.H3_REQUEST_CANCELLED);
    expect(normalizeReceivedErrorCode(0x21)).toBe(H3ErrorCode.H3_NO_ERROR);
    expect(normalizeReceivedErrorCode(0x999)).toBe(H3ErrorCode.H3_NO_ERROR);
    expect(normalizeReceivedErrorCode(MAX_VARINT)).toBe(H3ErrorCode.H3_NO_ERROR);
  });
});

describe("GREASE values 0x1f * N + 0x21", () => {
  it("computes and recognises them", () => {
    expect(greaseErrorCode(0)).toBe(0x21n);
    expect(greaseErrorCode(1)).toBe(0x40n);
    expect(greaseValue(MAX_GREASE_N)).toBe(0x3ffffffffffffffen);
    expect(isGreaseCode(0x21)).toBe(true);
    expect(isGreaseCode(0x40)).toBe(true);
    expect(isGreaseCode(0x3ffffffffffffffen)).toBe(true);
    expect(isGreaseValue(0x20)).toBe(false);
    expect(isGreaseValue(0x22)).toBe(false);
    expect(isGreaseValue(0)).toBe(false);
    expect(isGreaseValue(-0x21)).toBe(false);
    expect(isGreaseValue(MAX_VARINT + 0x1fn)).toBe(false);
  });

  it("rejects indexes out of range", () => {
    expect(() => greaseValue(-1)).toThrow(QuicUsageError);
    expect(() => greaseValue(MAX_GREASE_N + 1n)).toThrow(QuicUsageError);
    expect(() => greaseValue(1.5)).toThrow(QuicUsageError);
  });

  it("round-trips N ↔ value", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_GREASE_N }), (n) => {
        const v = greaseValue(n);
        expect(v <= MAX_VARINT).toBe(true);
        expect(isGreaseValue(v)).toBe(true);
        expect(isGreaseValue(v + 1n)).toBe(false);
        if (v <= BigInt(Number.MAX_SAFE_INTEGER)) expect(isGreaseValue(Number(v))).toBe(true);
      }),
    );
  });

  it("draws random reserved values", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), (bytes) => {
        expect(isGreaseValue(randomGreaseValue(() => bytes))).toBe(true);
      }),
    );
    expect(() => randomGreaseValue(() => new Uint8Array(3))).toThrow(QuicUsageError);
  });
});

describe("H3Error", () => {
  it("carries code, reason and frame type", () => {
    const e = new H3Error(H3ErrorCode.H3_FRAME_ERROR, "bad", 0x04);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe(0x106);
    expect(e.reason).toBe("bad");
    expect(e.frameType).toBe(0x04);
    expect(e.message).toBe("H3_FRAME_ERROR: bad");
    expect(e.isStreamError).toBe(false);
    expect(e.name).toBe("H3Error");
  });

  it("has a stream-error subclass", () => {
    const e = new H3StreamError(H3ErrorCode.H3_MESSAGE_ERROR, "malformed");
    expect(e).toBeInstanceOf(H3Error);
    expect(e.isStreamError).toBe(true);
    expect(e.name).toBe("H3StreamError");
  });
});
