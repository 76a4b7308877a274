import { describe, expect, it } from "vitest";
import {
  invariantLongHeader,
  PROBE_VERSION,
  VersionNegotiationWatch,
} from "../interop/version-negotiation.ts";
import { encodeVersionNegotiation } from "../src/quic/packet-header.ts";

const DCID = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const SCID = Uint8Array.from([9, 9, 9]);

/** A 1200-byte long-header datagram in `version` with the given connection IDs. */
function initial(version: number, dcid = DCID, scid = SCID): Uint8Array {
  const b = new Uint8Array(1200);
  b[0] = 0xc0;
  new DataView(b.buffer).setUint32(1, version);
  b[5] = dcid.length;
  b.set(dcid, 6);
  b[6 + dcid.length] = scid.length;
  b.set(scid, 7 + dcid.length);
  return b;
}

describe("interop versionnegotiation: what the wire must show", () => {
  it("reads the invariant header of a long-header packet and of a VN", () => {
    const h = invariantLongHeader(initial(PROBE_VERSION));
    expect(h?.version).toBe(PROBE_VERSION);
    expect(h?.dcid).toEqual(DCID);
    expect(h?.scid).toEqual(SCID);
    const vn = invariantLongHeader(encodeVersionNegotiation(SCID, DCID, [1, 0x6b3343cf]));
    expect(vn?.version).toBe(0);
    expect(vn?.versions).toEqual([1, 0x6b3343cf]);
    expect(invariantLongHeader(Uint8Array.of(0x40, 1, 2, 3))).toBeUndefined();
    expect(invariantLongHeader(Uint8Array.of(0xc0, 0, 0, 0, 1, 20, 1))).toBeUndefined();
  });

  it("passes a VN echoing the first Initial's connection IDs, and says what was offered", () => {
    const w = new VersionNegotiationWatch();
    w.onDatagram("toServer", initial(PROBE_VERSION), 0);
    w.onDatagram("toClient", encodeVersionNegotiation(SCID, DCID, [1, 0x6b3343cf]), 1);
    expect(w.problem()).toBeUndefined();
    expect(w.offered()).toBe("0x00000001, 0x6b3343cf");
    expect(w.clientDatagramsAfterVn).toBe(0);
    w.onDatagram("toServer", initial(PROBE_VERSION), 2);
    expect(w.clientDatagramsAfterVn).toBe(1);
  });

  it("fails without a VN, with swapped or foreign connection IDs, or when the VN lists the probe", () => {
    const none = new VersionNegotiationWatch();
    none.onDatagram("toServer", initial(PROBE_VERSION), 0);
    expect(none.problem()).toMatch(/no Version Negotiation/);

    const unswapped = new VersionNegotiationWatch();
    unswapped.onDatagram("toServer", initial(PROBE_VERSION), 0);
    unswapped.onDatagram("toClient", encodeVersionNegotiation(DCID, SCID, [1]), 1);
    expect(unswapped.problem()).toMatch(/echoes the first Initial/);

    // A VN for a later Initial with another DCID does not answer the first one.
    const later = new VersionNegotiationWatch();
    later.onDatagram("toServer", initial(PROBE_VERSION), 0);
    later.onDatagram("toServer", initial(PROBE_VERSION, Uint8Array.of(7, 7, 7, 7, 7, 7, 7, 7)), 1);
    later.onDatagram(
      "toClient",
      encodeVersionNegotiation(SCID, Uint8Array.of(7, 7, 7, 7, 7, 7, 7, 7), [1]),
      2,
    );
    expect(later.problem()).toMatch(/echoes the first Initial/);

    const lists = new VersionNegotiationWatch();
    lists.onDatagram("toServer", initial(PROBE_VERSION), 0);
    lists.onDatagram("toClient", encodeVersionNegotiation(SCID, DCID, [1, PROBE_VERSION]), 1);
    expect(lists.problem()).toMatch(/lists 0x1a2a3a4a/);

    const v1 = new VersionNegotiationWatch();
    v1.onDatagram("toServer", initial(1), 0);
    expect(v1.problem()).toMatch(/first Initial is in 0x00000001/);
  });
});
