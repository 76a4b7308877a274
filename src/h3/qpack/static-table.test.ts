import { describe, expect, it } from "vitest";
import { STATIC_TABLE, STATIC_TABLE_SIZE, staticFindExact, staticFindName } from "./static-table.ts";

describe("QPACK static table (RFC 9204 Appendix A)", () => {
  it("has 99 entries with the RFC's values", () => {
    expect(STATIC_TABLE_SIZE).toBe(99);
    expect(STATIC_TABLE[0]).toEqual([":authority", ""]);
    expect(STATIC_TABLE[1]).toEqual([":path", "/"]);
    expect(STATIC_TABLE[17]).toEqual([":method", "GET"]);
    expect(STATIC_TABLE[25]).toEqual([":status", "200"]);
    expect(STATIC_TABLE[29]).toEqual(["accept", "*/*"]);
    expect(STATIC_TABLE[31]).toEqual(["accept-encoding", "gzip, deflate, br"]);
    expect(STATIC_TABLE[85]).toEqual([
      "content-security-policy",
      "script-src 'none'; object-src 'none'; base-uri 'none'",
    ]);
    expect(STATIC_TABLE[98]).toEqual(["x-frame-options", "sameorigin"]);
  });

  it("finds exact matches and name matches", () => {
    expect(staticFindExact(":method", "GET")).toBe(17);
    expect(staticFindExact(":method", "PATCH")).toBe(-1);
    expect(staticFindExact("x-frame-options", "sameorigin")).toBe(98);
    expect(staticFindExact(":authority", "")).toBe(0);
    expect(staticFindExact("nope", "")).toBe(-1);
    expect(staticFindName(":method")).toBe(15);
    expect(staticFindName(":status")).toBe(24);
    expect(staticFindName("content-type")).toBe(44);
    expect(staticFindName("x-unknown")).toBe(-1);
    for (let i = 0; i < STATIC_TABLE_SIZE; i++) {
      const [name, value] = STATIC_TABLE[i];
      expect(staticFindExact(name, value)).toBe(i);
      expect(staticFindName(name)).toBeLessThanOrEqual(i);
    }
  });
});
