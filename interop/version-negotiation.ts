/**
 * The interop case `versionnegotiation` (../shared/specs/interop-runner-testcases.md): the client
 * starts in a version the server does not speak and must give up when the Version Negotiation
 * packet arrives. The runner's check on the wire: a VN packet whose SCID equals the DCID of the
 * client's first Initial. We also check that its DCID is the client's SCID (RFC 9000 §17.2.1) and
 * that it does not list the version the client started in (the client would have to discard it,
 * §6.2). `VersionNegotiationWatch` reads every datagram the relay forwards (interop/relay.ts
 * `onDatagram`), reading only the version-independent header (RFC 8999 §5.1).
 */

/** The version the clients start in: reserved for exercising version negotiation (RFC 9000 §15). */
export const PROBE_VERSION = 0x1a2a3a4a;

export interface InvariantLongHeader {
  readonly version: number;
  readonly dcid: Uint8Array;
  readonly scid: Uint8Array;
  /** A Version Negotiation packet's Supported Version fields. */
  readonly versions?: readonly number[];
}

/** The invariant fields of a long header (RFC 8999 §5.1), or undefined (short header, truncated). */
export function invariantLongHeader(d: Uint8Array): InvariantLongHeader | undefined {
  if (d.length < 7 || (d[0] & 0x80) === 0) return undefined;
  const version = ((d[1] << 24) | (d[2] << 16) | (d[3] << 8) | d[4]) >>> 0;
  const dcidLength = d[5];
  const scidAt = 6 + dcidLength;
  if (scidAt >= d.length) return undefined;
  const scidLength = d[scidAt];
  const end = scidAt + 1 + scidLength;
  if (end > d.length) return undefined;
  const dcid = d.slice(6, scidAt);
  const scid = d.slice(scidAt + 1, end);
  if (version !== 0) return { version, dcid, scid };
  const versions: number[] = [];
  for (let i = end; i + 4 <= d.length; i += 4)
    versions.push(((d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3]) >>> 0);
  return { version, dcid, scid, versions };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
export const versionHex = (v: number) => `0x${v.toString(16).padStart(8, "0")}`;

/** What the wire of one `versionnegotiation` run showed. */
export class VersionNegotiationWatch {
  /** The client's first long-header datagram (its first Initial). */
  private first: InvariantLongHeader | undefined;
  /** Version Negotiation packets from the server, with the relay time they arrived. */
  readonly negotiations: { t: number; header: InvariantLongHeader }[] = [];
  /** Client datagrams after the first VN arrived (a client that gave up sends none). */
  clientDatagramsAfterVn = 0;

  onDatagram(dir: "toServer" | "toClient", payload: Uint8Array, t: number): void {
    const h = invariantLongHeader(payload);
    if (dir === "toServer") {
      if (this.negotiations.length > 0) this.clientDatagramsAfterVn++;
      if (!this.first && h && h.version !== 0) this.first = h;
      return;
    }
    if (h?.version === 0) this.negotiations.push({ t, header: h });
  }

  /** Why the wire does not show a valid answer to the client's first Initial; undefined if it does. */
  problem(): string | undefined {
    const first = this.first;
    if (!first) return "no long-header datagram from the client";
    if (first.version !== PROBE_VERSION)
      return `the client's first Initial is in ${versionHex(first.version)}, not ${versionHex(PROBE_VERSION)}`;
    if (this.negotiations.length === 0) return "no Version Negotiation packet from the server";
    const match = this.negotiations.find(
      (n) => hex(n.header.scid) === hex(first.dcid) && hex(n.header.dcid) === hex(first.scid),
    );
    if (!match) {
      const n = this.negotiations[0].header;
      return `no VN echoes the first Initial's connection IDs (Initial DCID ${hex(first.dcid)} SCID ${hex(first.scid)}; VN SCID ${hex(n.scid)} DCID ${hex(n.dcid)})`;
    }
    if (match.header.versions?.includes(PROBE_VERSION))
      return `the VN lists ${versionHex(PROBE_VERSION)}, the version the client started in`;
    return undefined;
  }

  /** The server's offer as seen on the wire, e.g. "0x00000001, 0x6b3343cf". */
  offered(): string {
    return (this.negotiations[0]?.header.versions ?? []).map(versionHex).join(", ");
  }
}
