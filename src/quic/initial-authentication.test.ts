import { describe, expect, it } from "vitest";
import { Connection } from "./connection/connection.ts";
import { clientConfig, T0 } from "./connection/test-harness.ts";
import { defaultCryptoProvider } from "./crypto/providers.ts";
import { clientInitialDecrypts } from "./initial-authentication.ts";
import { type LongHeader, PacketType, parsePacketHeader } from "./packet-header.ts";
import {
  createUnprotectedPacket,
  deriveInitialKeys,
  protectPacket,
  unprotectPacket,
} from "./packet-protection.ts";
import { QUIC_V1, QUIC_V2 } from "./version.ts";

const PARSE = { localCidLength: 8, allowGreasedQuicBit: true };

function firstInitial(version: number): Uint8Array {
  const client = Connection.connect(clientConfig({ versions: [version] }), T0);
  return client.pollTransmit(T0)!.slice();
}

function initialHeader(datagram: Uint8Array): LongHeader | undefined {
  try {
    const h = parsePacketHeader(datagram, 0, PARSE);
    return h.type === PacketType.Initial ? h : undefined;
  } catch {
    return undefined;
  }
}

describe("clientInitialDecrypts (RFC 9001 §5.2, §5.3)", () => {
  for (const version of [QUIC_V1, QUIC_V2]) {
    it(`a client's first Initial decrypts (version ${version.toString(16)}), and the datagram stays intact`, () => {
      const d = firstInitial(version);
      const before = d.slice();
      const h = initialHeader(d)!;
      expect(h.version).toBe(version);
      expect(clientInitialDecrypts(defaultCryptoProvider, d, h)).toBe(true);
      expect(d).toEqual(before);
      // The connection can still open it afterwards (nothing was decrypted in place).
      expect(clientInitialDecrypts(defaultCryptoProvider, d, h)).toBe(true);
    });
  }

  it("any changed byte among the first 51 (the interop relay's corruption span) fails it", () => {
    const d = firstInitial(QUIC_V1);
    let checked = 0;
    for (let at = 0; at < 51; at++) {
      for (const flip of [0x01, 0x40, 0x80, 0xff]) {
        const bad = d.slice();
        bad[at] ^= flip;
        const h = initialHeader(bad);
        if (!h) continue; // not an Initial any more (form, version, lengths): never reaches the check
        checked++;
        expect(
          clientInitialDecrypts(defaultCryptoProvider, bad, h),
          `byte ${at} ^ 0x${flip.toString(16)}`,
        ).toBe(false);
      }
    }
    // Most changes (DCID, SCID, token, packet number, payload) still parse as an Initial.
    expect(checked).toBeGreaterThan(120);
  });

  it("an authentic Initial with reserved bits set counts as decrypting (the connection then closes it)", () => {
    const d = firstInitial(QUIC_V1);
    const h = initialHeader(d)!;
    const keys = deriveInitialKeys(defaultCryptoProvider, h.version, h.dcid).client;
    const out = createUnprotectedPacket();
    const n = unprotectPacket(keys, d, h.packetStart, h.pnOffset, h.packetEnd, -1, out);
    expect(n).toBeGreaterThan(0);
    d[h.packetStart] |= 0x0c;
    protectPacket(keys, d, h.packetStart, h.pnOffset, out.payloadOffset + n, out.packetNumber);
    expect(clientInitialDecrypts(defaultCryptoProvider, d, initialHeader(d)!)).toBe(true);
  });
});
