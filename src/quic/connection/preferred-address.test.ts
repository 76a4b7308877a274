import { describe, expect, it } from "vitest";
import { QuicUsageError } from "../errors.ts";
import { encodePreferredAddress, preferredPathAddress } from "./preferred-address.ts";

const extra = { connectionId: new Uint8Array([1]), statelessResetToken: new Uint8Array(16) };

describe("preferred_address fields (RFC 9000 §18.2)", () => {
  it("encodes IPv4 and IPv6 addresses and reads back the one of the current family", () => {
    const f = encodePreferredAddress({
      ipv4: { address: "192.0.2.7", port: 4433 },
      ipv6: { address: "2001:db8::1:2", port: 8443 },
    });
    expect([...f.ipv4Address]).toEqual([192, 0, 2, 7]);
    expect([...f.ipv6Address]).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
    const pa = { ...f, ...extra };
    expect(preferredPathAddress(pa, { address: "198.51.100.1", port: 1 })).toEqual({
      address: "192.0.2.7",
      port: 4433,
    });
    expect(preferredPathAddress(pa, { address: "2001:db8::9", port: 1 })).toEqual({
      address: "2001:db8:0:0:0:0:1:2",
      port: 8443,
    });
  });

  it("an absent family (all zero) gives no address", () => {
    const pa = { ...encodePreferredAddress({ ipv4: { address: "192.0.2.7", port: 4433 } }), ...extra };
    expect(pa.ipv6Port).toBe(0);
    expect(preferredPathAddress(pa, { address: "::1", port: 1 })).toBeUndefined();
  });

  it("parses IPv4-mapped and fully written IPv6 addresses", () => {
    expect([
      ...encodePreferredAddress({ ipv6: { address: "::ffff:192.0.2.1", port: 1 } }).ipv6Address,
    ]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
    expect(encodePreferredAddress({ ipv6: { address: "1:2:3:4:5:6:7:8", port: 1 } }).ipv6Address[15]).toBe(8);
  });

  it("rejects what is not an address or a port", () => {
    for (const bad of ["192.0.2", "256.0.0.1", "localhost", "1.2.3.4.5"])
      expect(() => encodePreferredAddress({ ipv4: { address: bad, port: 1 } })).toThrow(QuicUsageError);
    for (const bad of ["1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "g::1"])
      expect(() => encodePreferredAddress({ ipv6: { address: bad, port: 1 } })).toThrow(QuicUsageError);
    expect(() => encodePreferredAddress({ ipv4: { address: "192.0.2.1", port: 70000 } })).toThrow(
      QuicUsageError,
    );
    expect(() => encodePreferredAddress({})).toThrow(QuicUsageError);
  });
});
