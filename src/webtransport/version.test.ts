import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, type H3Settings } from "../h3/settings.ts";
import { negotiateVersion, versionOfToken } from "./version.ts";

const settings = (s: Partial<H3Settings>): H3Settings => ({ ...DEFAULT_SETTINGS, unknown: [], ...s });

describe("WebTransport version negotiation", () => {
  it("picks the highest version both sides announced", () => {
    const both = settings({
      h3Datagram: true,
      enableWebTransportDraft02: true,
      wtEnabled: true,
      enableConnectProtocol: true,
    });
    expect(negotiateVersion(["draft02", "latest"], both, true)).toBe("latest");
    expect(negotiateVersion(["draft02"], both, true)).toBe("draft02");
    // What Chromium's server SETTINGS expectations look like: draft-02 only.
    const chromium = settings({ h3Datagram: true, enableWebTransportDraft02: true });
    expect(negotiateVersion(["draft02", "latest"], chromium, false)).toBe("draft02");
  });

  it("needs HTTP/3 datagrams, and extended CONNECT from a latest-draft server", () => {
    expect(
      negotiateVersion(
        ["latest", "draft02"],
        settings({ enableWebTransportDraft02: true, wtEnabled: true }),
        true,
      ),
    ).toBeUndefined();
    expect(
      negotiateVersion(["latest"], settings({ h3Datagram: true, wtEnabled: true }), true),
    ).toBeUndefined();
    expect(negotiateVersion(["latest"], settings({ h3Datagram: true, wtEnabled: true }), false)).toBe(
      "latest",
    );
  });

  it("maps upgrade tokens to versions", () => {
    expect(versionOfToken("webtransport")).toBe("draft02");
    expect(versionOfToken("webtransport-h3")).toBe("latest");
    expect(versionOfToken("websocket")).toBeUndefined();
  });
});
