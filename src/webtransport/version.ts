/**
 * WebTransport over HTTP/3 versions and their negotiation.
 *
 * - "draft02": draft-ietf-webtrans-http3-02, Chromium's default. SETTINGS_ENABLE_WEBTRANSPORT
 *   (0x2b603742) = 1 on both sides, `:protocol = webtransport`, the request carries
 *   `sec-webtransport-http3-draft02: 1` and the response `sec-webtransport-http3-draft: draft02`.
 * - "latest": the current draft (draft-ietf-webtrans-http3.md). SETTINGS_WT_ENABLED (0x2c7cf000)
 *   = 1 on both sides, `:protocol = webtransport-h3`. Without WebTransport flow control (not
 *   implemented) at most one session per connection (§5.1 "Negotiating the Use of Flow Control").
 *   It also requires the RESET_STREAM_AT transport parameter, which is not checked here.
 *
 * Streams (0x54, 0x41), capsules (0x2843, 0x78ae) and error codes are the same in both. Both
 * versions need SETTINGS_H3_DATAGRAM = 1 from both sides. "Negotiating the Draft Version": "The
 * highest version supported by both endpoints is selected."
 */
import type { H3Settings } from "../h3/settings.ts";

export type WebTransportVersion = "draft02" | "latest";

/** Highest first. */
export const WEBTRANSPORT_VERSIONS: readonly WebTransportVersion[] = ["latest", "draft02"];

/** The `:protocol` (HTTP upgrade token) of each version. */
export const UPGRADE_TOKEN: Readonly<Record<WebTransportVersion, string>> = {
  draft02: "webtransport",
  latest: "webtransport-h3",
};

/** The version whose upgrade token is `protocol`, if any. */
export function versionOfToken(protocol: string): WebTransportVersion | undefined {
  if (protocol === UPGRADE_TOKEN.latest) return "latest";
  if (protocol === UPGRADE_TOKEN.draft02) return "draft02";
  return undefined;
}

/** Whether the peer's SETTINGS announce `version` (and HTTP/3 datagrams, which every version needs). */
export function peerSupports(version: WebTransportVersion, peer: H3Settings, peerIsServer: boolean): boolean {
  if (!peer.h3Datagram) return false;
  if (version === "latest") return peer.wtEnabled && (!peerIsServer || peer.enableConnectProtocol);
  // draft-02: Chromium also takes ENABLE_WEBTRANSPORT = 1 as permission for extended CONNECT.
  return peer.enableWebTransportDraft02;
}

/** The highest of `local` that the peer announced, or undefined. */
export function negotiateVersion(
  local: readonly WebTransportVersion[],
  peer: H3Settings,
  peerIsServer: boolean,
): WebTransportVersion | undefined {
  for (const v of WEBTRANSPORT_VERSIONS)
    if (local.includes(v) && peerSupports(v, peer, peerIsServer)) return v;
  return undefined;
}
