import { describe, expect, it } from "vitest";
import { H3ErrorCode } from "./error-codes.ts";
import {
  H3MessageError,
  isConnectionSpecificField,
  parseRequestHead,
  parseResponseHead,
  parseTrailers,
  responseHasNoContent,
} from "./message.ts";

const base: [string, string][] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":authority", "example.com"],
  [":path", "/"],
];

describe("HTTP/3 message validation (RFC 9114 §4.1.2, §4.2, §4.3)", () => {
  it("splits a request into control data and fields", () => {
    const h = parseRequestHead([...base, ["accept", "text/html"], ["content-length", "5, 5"]]);
    expect(h).toMatchObject({ method: "GET", scheme: "https", authority: "example.com", path: "/" });
    expect(h.fields).toEqual([
      ["accept", "text/html"],
      ["content-length", "5, 5"],
    ]);
    expect(h.contentLength).toBe(5);
  });

  it("accepts OPTIONS *, a Host instead of :authority, te: trailers, other schemes", () => {
    expect(parseRequestHead([[":method", "OPTIONS"], base[1], base[2], [":path", "*"]]).path).toBe("*");
    expect(parseRequestHead([base[0], base[1], base[3], ["host", "example.com"]]).authority).toBeUndefined();
    expect(parseRequestHead([...base, ["te", "trailers"]]).fields).toEqual([["te", "trailers"]]);
    expect(parseRequestHead([base[0], [":scheme", "foo"], [":path", "bar"]]).scheme).toBe("foo");
  });

  it("throws H3MessageError (H3_MESSAGE_ERROR stream error) for malformed messages", () => {
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(H3MessageError);
        expect((e as H3MessageError).code).toBe(H3ErrorCode.H3_MESSAGE_ERROR);
        expect((e as H3MessageError).isStreamError).toBe(true);
        return;
      }
      throw new Error("expected H3MessageError");
    };
    bad(() => parseRequestHead([[":method", "GET"]]));
    bad(() => parseRequestHead([...base, ["content-length", "1"], ["content-length", "2"]]));
    bad(() => parseRequestHead([[":method", "GET"], base[1], [":path", "*"], base[2]]));
    bad(() => parseRequestHead([[":method", "G T"], ...base.slice(1)]));
    bad(() => parseRequestHead([base[0], base[1], [":authority", "u@example.com"], base[3]]));
    bad(() => parseRequestHead([...base, ["bad name", "x"]]));
    bad(() => parseResponseHead([[":status", "20x"]]));
    bad(() =>
      parseResponseHead([
        [":status", "200"],
        [":status", "200"],
      ]),
    );
    bad(() =>
      parseResponseHead([
        ["x", "1"],
        [":status", "200"],
      ]),
    );
    bad(() => parseTrailers([[":status", "200"]]));
    bad(() => parseTrailers([["keep-alive", "1"]]));
  });

  it("knows connection-specific fields and responses without content", () => {
    expect(isConnectionSpecificField("connection")).toBe(true);
    expect(isConnectionSpecificField("te", "trailers")).toBe(false);
    expect(isConnectionSpecificField("te", "gzip")).toBe(true);
    expect(isConnectionSpecificField("content-type")).toBe(false);
    expect(responseHasNoContent("HEAD", 200)).toBe(true);
    expect(responseHasNoContent("GET", 304)).toBe(true);
    expect(responseHasNoContent("GET", 200)).toBe(false);
  });
});
