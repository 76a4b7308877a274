import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isGreaseValue } from "../h3/error-codes.ts";
import { QuicUsageError } from "../quic/errors.ts";
import {
  http3CodeToWebTransport,
  WT_APPLICATION_ERROR_FIRST,
  WT_APPLICATION_ERROR_LAST,
  webTransportCodeToHttp3,
} from "./error-codes.ts";

describe("WebTransport error codes (draft-02 §4.3)", () => {
  it("maps the ends of the 32-bit range to the ends of the HTTP/3 range", () => {
    expect(webTransportCodeToHttp3(0)).toBe(0x52e4a40fa8dbn);
    expect(webTransportCodeToHttp3(0xffffffff)).toBe(0x52e5ac983162n);
    expect(webTransportCodeToHttp3(0xff)).toBe(0x52e4a40fa8dbn + 0xffn + 8n);
    expect(http3CodeToWebTransport(WT_APPLICATION_ERROR_LAST)).toBe(0xffffffff);
  });

  it("round-trips every code and never lands on a reserved codepoint", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (e) => {
        const h = webTransportCodeToHttp3(e);
        expect(isGreaseValue(h)).toBe(false);
        expect(h >= WT_APPLICATION_ERROR_FIRST && h <= WT_APPLICATION_ERROR_LAST).toBe(true);
        expect(http3CodeToWebTransport(h)).toBe(e);
      }),
    );
  });

  it("treats codes outside the range and reserved ones inside it as not WebTransport codes", () => {
    expect(http3CodeToWebTransport(0x10c)).toBeUndefined();
    expect(http3CodeToWebTransport(WT_APPLICATION_ERROR_FIRST - 1n)).toBeUndefined();
    expect(http3CodeToWebTransport(WT_APPLICATION_ERROR_LAST + 1n)).toBeUndefined();
    // The first reserved value in the range: 0x1f·N + 0x21 ≥ first.
    const n = (WT_APPLICATION_ERROR_FIRST - 0x21n + 0x1en) / 0x1fn;
    const grease = 0x1fn * n + 0x21n;
    expect(isGreaseValue(grease)).toBe(true);
    expect(http3CodeToWebTransport(grease)).toBeUndefined();
  });

  it("refuses codes that are not 32-bit unsigned integers", () => {
    expect(() => webTransportCodeToHttp3(-1)).toThrow(QuicUsageError);
    expect(() => webTransportCodeToHttp3(2 ** 32)).toThrow(QuicUsageError);
    expect(() => webTransportCodeToHttp3(1.5)).toThrow(QuicUsageError);
  });
});
