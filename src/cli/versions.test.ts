import { describe, expect, it } from "vitest";
import { isReservedVersion, QUIC_V1, QUIC_V2 } from "../quic/version.ts";
import { parseInitialVersion, parseVersion, parseVersionList, versionName } from "./versions.ts";

describe("CLI QUIC version names", () => {
  it("parses v1, v2 and hex, and names them back", () => {
    expect(parseVersion("v1")).toBe(QUIC_V1);
    expect(parseVersion("V2")).toBe(QUIC_V2);
    expect(parseVersion("0x6b3343cf")).toBe(QUIC_V2);
    expect(parseVersionList("v2,v1")).toEqual([QUIC_V2, QUIC_V1]);
    expect(versionName(QUIC_V2)).toBe("v2");
  });

  it("rejects drafts and unknown names", () => {
    expect(() => parseVersion("0x709a50c4")).toThrow(TypeError);
    expect(() => parseVersion("v3")).toThrow(/unsupported QUIC version/);
    expect(() => parseVersionList(",")).toThrow(TypeError);
  });

  it("--version also takes a reserved version to probe with, in hex or as `reserved`", () => {
    const random = () => Uint8Array.of(0x12, 0x34, 0x56, 0x78);
    expect(parseInitialVersion("0x1a2a3a4a", random)).toBe(0x1a2a3a4a);
    expect(parseInitialVersion("0xfAfAfAfA", random)).toBe(0xfafafafa);
    expect(parseInitialVersion("reserved", random)).toBe(0x1a3a5a7a);
    expect(isReservedVersion(parseInitialVersion("reserved", random))).toBe(true);
    expect(parseInitialVersion("v2", random)).toBe(QUIC_V2);
    expect(() => parseInitialVersion("0x709a50c4", random)).toThrow(/reserved version 0x\?a\?a\?a\?a/);
    expect(versionName(0x1a2a3a4a)).toBe("0x1a2a3a4a");
    expect(versionName(0x0a0a0a0a)).toBe("0x0a0a0a0a");
  });
});
