import { describe, expect, it } from "vitest";
import { QUIC_V1, QUIC_V2 } from "../quic/version.ts";
import { parseVersion, parseVersionList, versionName } from "./versions.ts";

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
});
