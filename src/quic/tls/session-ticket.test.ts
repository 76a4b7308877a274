import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CryptoProvider } from "../crypto/provider.ts";
import { cryptoProviders } from "../crypto/providers.ts";
import { QuicUsageError } from "../errors.ts";
import { type TransportParameters, withDefaults } from "../transport-parameters.ts";
import { ExtensionType } from "./extensions.ts";
import { KeySchedule } from "./key-schedule.ts";
import { CipherSuite, decodeHandshake, encodeHandshakeMessage, HandshakeType } from "./messages.ts";
import {
  DEFAULT_TICKET_ROTATION_MS,
  MAX_TICKET_LIFETIME_S,
  newSessionTicketParams,
  QUIC_MAX_EARLY_DATA_SIZE,
  rememberedTransportParameters,
  TICKET_FORMAT_VERSION,
  TICKET_KEY_ID_LENGTH,
  TICKET_OVERHEAD,
  TicketKeyRing,
  type TicketState,
  validateTicketAge,
} from "./session-ticket.ts";

const latin1 = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, "latin1"));
const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v);
const T0 = 1_700_000_000_000; // a plausible Date.now()
const HOUR = 3_600_000;

/** Server transport parameters with remembered and not-remembered fields (RFC 9000 §7.4.1). */
const SERVER_TP: TransportParameters = {
  originalDestinationConnectionId: fill(8, 1),
  initialSourceConnectionId: fill(8, 2),
  statelessResetToken: fill(16, 3),
  maxIdleTimeout: 30_000,
  initialMaxData: 1_000_000,
  initialMaxStreamDataBidiLocal: 100_000,
  initialMaxStreamDataBidiRemote: 100_000,
  initialMaxStreamDataUni: 100_000,
  initialMaxStreamsBidi: 100,
  initialMaxStreamsUni: 3,
  ackDelayExponent: 5,
  maxAckDelay: 40,
  activeConnectionIdLimit: 8,
  maxDatagramFrameSize: 1200,
  unknown: [
    { id: 27n, value: fill(3, 9) }, // GREASE 31·0+27
    { id: 0x4242n, value: fill(2, 7) },
  ],
};

function fullState(issuedAt = T0): TicketState {
  return {
    quicVersion: 1,
    cipherSuite: CipherSuite.TLS_AES_256_GCM_SHA384,
    resumptionPsk: Uint8Array.from({ length: 48 }, (_, i) => i),
    alpn: "h3",
    sni: "example.com",
    issuedAt,
    estimatedRttMs: 42,
    lifetime: 86_400,
    ticketAgeAdd: 0xdead_beef,
    maxEarlyDataSize: QUIC_MAX_EARLY_DATA_SIZE,
    transportParameters: SERVER_TP,
    appData: Uint8Array.from([0x01, 0x40, 0x64, 0x07, 0x40, 0x64]),
    clientCertificateHash: fill(32, 0xcc),
  };
}

function minimalState(issuedAt = T0): TicketState {
  return {
    quicVersion: 0x6b33_43cf,
    cipherSuite: CipherSuite.TLS_AES_128_GCM_SHA256,
    resumptionPsk: fill(32, 0x55),
    alpn: "",
    issuedAt,
    lifetime: 3600,
    ticketAgeAdd: 0,
    maxEarlyDataSize: 0,
  };
}

/** What the opened state should be: TP reduced to the remembered subset, as decoded. */
function expectedOpened(s: TicketState): TicketState {
  if (s.transportParameters === undefined) return s;
  const tp = rememberedTransportParameters(s.transportParameters);
  return { ...s, transportParameters: { ...tp, unknown: tp.unknown ?? [] } };
}

/**
 * Test-side view of the documented ticket format: key id and AEAD key derived with HKDF-SHA256 from
 * the injected key, ticket = key_id ‖ nonce ‖ AEAD(plaintext) with AAD = key_id. Lets the tests
 * put arbitrary plaintexts under a valid key, to exercise the inner decoder.
 */
function rawTicketCodec(provider: CryptoProvider, key: Uint8Array) {
  const prk = provider.hkdfExtract("sha256", latin1("purequic session ticket key v1"), key);
  const id = provider.hkdfExpand("sha256", prk, latin1("key id"), 8);
  const aead = provider.createAead("aes-256-gcm", provider.hkdfExpand("sha256", prk, latin1("aead key"), 32));
  return {
    id,
    seal(plaintext: Uint8Array): Uint8Array {
      const nonce = provider.randomBytes(12);
      const out = new Uint8Array(TICKET_OVERHEAD + plaintext.length);
      out.set(id, 0);
      out.set(nonce, 8);
      aead.seal(nonce, id, plaintext, out, 20);
      return out;
    },
    open(ticket: Uint8Array): Uint8Array {
      const out = new Uint8Array(ticket.length - TICKET_OVERHEAD);
      const n = aead.open(ticket.subarray(8, 20), ticket.subarray(0, 8), ticket.subarray(20), out, 0);
      if (n !== out.length) throw new Error("test codec: open failed");
      return out;
    },
  };
}

/** `provider` with a scripted randomBytes (other methods delegate). */
function withRandom(provider: CryptoProvider, next: (n: number) => Uint8Array): CryptoProvider {
  const p: CryptoProvider = Object.create(provider);
  p.randomBytes = next;
  return p;
}

describe.each(cryptoProviders.map((p) => [p.name, p] as const))("session tickets (%s)", (_, provider) => {
  describe("seal / open", () => {
    it("round-trips a full state, keeping only the remembered transport parameters", () => {
      const ring = new TicketKeyRing(provider);
      const state = fullState();
      const ticket = ring.sealTicket(state, T0);
      const opened = ring.openTicket(ticket, T0 + 1000);
      expect(opened).toEqual(expectedOpened(state));
      const tp = opened?.transportParameters;
      // RFC 9000 §7.4.1: the client must not use remembered values of these.
      expect(tp?.ackDelayExponent).toBeUndefined();
      expect(tp?.maxAckDelay).toBeUndefined();
      expect(tp?.statelessResetToken).toBeUndefined();
      expect(tp?.originalDestinationConnectionId).toBeUndefined();
      expect(tp?.initialSourceConnectionId).toBeUndefined();
      expect(tp?.initialMaxData).toBe(1_000_000);
      expect(tp?.unknown).toEqual([{ id: 0x4242n, value: fill(2, 7) }]);
    });

    it("round-trips a minimal state without inventing optional fields", () => {
      const ring = new TicketKeyRing(provider);
      const opened = ring.openTicket(ring.sealTicket(minimalState(), T0), T0);
      expect(opened).toEqual(minimalState());
      expect(opened && Object.keys(opened).sort()).toEqual(Object.keys(minimalState()).sort());
    });

    it("round-trips under ChaCha20-Poly1305", () => {
      const ring = new TicketKeyRing(provider, { aead: "chacha20-poly1305" });
      expect(ring.openTicket(ring.sealTicket(fullState(), T0), T0)).toEqual(expectedOpened(fullState()));
    });

    it("lays out key id ‖ nonce ‖ ciphertext ‖ tag with a fresh nonce per ticket", () => {
      const ring = new TicketKeyRing(provider);
      const a = ring.sealTicket(minimalState(), T0);
      const b = ring.sealTicket(minimalState(), T0);
      expect(a.subarray(0, TICKET_KEY_ID_LENGTH)).toEqual(ring.currentKeyId(T0));
      expect(b.subarray(0, TICKET_KEY_ID_LENGTH)).toEqual(ring.currentKeyId(T0));
      expect(Buffer.from(a.subarray(8, 20)).equals(Buffer.from(b.subarray(8, 20)))).toBe(false);
      expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
      // The PSK never appears in clear.
      const psk = Buffer.from(fullState().resumptionPsk.subarray(0, 16));
      expect(Buffer.from(ring.sealTicket(fullState(), T0)).includes(psk)).toBe(false);
    });

    it("returns null for every single-bit flip and every truncation or extension", () => {
      const ring = new TicketKeyRing(provider);
      const ticket = ring.sealTicket(fullState(), T0);
      expect(ring.openTicket(ticket, T0)).not.toBeNull();
      for (let i = 0; i < ticket.length; i++) {
        const t = ticket.slice();
        t[i] ^= 1 << (i % 8);
        expect(ring.openTicket(t, T0)).toBeNull();
      }
      for (let n = 0; n < ticket.length; n++) expect(ring.openTicket(ticket.subarray(0, n), T0)).toBeNull();
      const longer = new Uint8Array(ticket.length + 1);
      longer.set(ticket);
      expect(ring.openTicket(longer, T0)).toBeNull();
    });

    it("never throws on arbitrary bytes, with or without a valid key id (property)", () => {
      const ring = new TicketKeyRing(provider);
      const id = ring.currentKeyId(T0);
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (bytes, withId) => {
          const t = withId ? Uint8Array.from([...id, ...bytes]) : bytes;
          expect(ring.openTicket(t, T0)).toBeNull();
        }),
        { numRuns: 300 },
      );
    });

    it("never throws on arbitrary authenticated plaintexts (property)", () => {
      const key = fill(32, 0x11);
      const ring = new TicketKeyRing(provider, { key });
      const codec = rawTicketCodec(provider, key);
      const valid = codec.open(ring.sealTicket(fullState(), T0));
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 300 }),
            // Mutations of a valid plaintext reach deeper into the decoder.
            fc
              .tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 }))
              .map(([i, v]) => Uint8Array.from(valid, (b, j) => (j === i ? v : b))),
            fc.nat(valid.length - 1).map((n) => valid.slice(0, n)),
          ),
          (plaintext) => {
            const opened = ring.openTicket(codec.seal(plaintext), T0);
            if (opened !== null)
              expect(opened.resumptionPsk.length === 32 || opened.resumptionPsk.length === 48).toBe(true);
          },
        ),
        { numRuns: 500 },
      );
    });

    it("rejects malformed inner encodings that authenticate", () => {
      const key = fill(32, 0x22);
      const ring = new TicketKeyRing(provider, { key });
      const codec = rawTicketCodec(provider, key);
      const valid = codec.open(ring.sealTicket(minimalState(), T0));
      // Sanity: the codec reproduces the ring's format.
      expect(ring.openTicket(codec.seal(valid), T0)).toEqual(minimalState());
      expect(valid[0]).toBe(TICKET_FORMAT_VERSION);
      const mutate = (f: (b: Uint8Array) => void): Uint8Array => {
        const b = valid.slice();
        f(b);
        return b;
      };
      // Layout of minimalState: ver, flags, quic_version[4], suite[2], psk_len, psk[32], alpn_len(0),
      // issued_at varint[8], lifetime[4], age_add[4], max_early[4].
      const lifetimeAt = 1 + 1 + 4 + 2 + 1 + 32 + 1 + 8;
      const cases: [string, Uint8Array][] = [
        ["other format version", mutate((b) => (b[0] = 2))],
        ["unknown flag", mutate((b) => (b[1] = 0x80))],
        ["flag announcing a missing field", mutate((b) => (b[1] = 0x10))],
        ["PSK length 20", mutate((b) => (b[8] = 20))],
        ["lifetime above 7 days", mutate((b) => b.set([0x00, 0x09, 0x3a, 0x81], lifetimeAt))],
        ["max_early_data_size 16384", mutate((b) => b.set([0, 0, 0x40, 0], lifetimeAt + 8))],
        ["trailing byte", Uint8Array.from([...valid, 0])],
        ["empty", new Uint8Array(0)],
      ];
      for (const [what, plaintext] of cases) {
        expect(ring.openTicket(codec.seal(plaintext), T0), what).toBeNull();
      }
      // Lifetime exactly 7 days is fine.
      const week = mutate((b) => b.set([0x00, 0x09, 0x3a, 0x80], lifetimeAt));
      expect(ring.openTicket(codec.seal(week), T0)?.lifetime).toBe(MAX_TICKET_LIFETIME_S);
    });

    it("returns null for an expired ticket and for lifetime 0", () => {
      const ring = new TicketKeyRing(provider, { key: fill(32, 3) });
      const ticket = ring.sealTicket({ ...minimalState(), lifetime: 10 }, T0);
      expect(ring.openTicket(ticket, T0 + 9_999)).not.toBeNull();
      expect(ring.openTicket(ticket, T0 + 10_000)).toBeNull();
      const zero = ring.sealTicket({ ...minimalState(), lifetime: 0 }, T0);
      expect(ring.openTicket(zero, T0)).toBeNull();
    });

    it("rejects local misuse with QuicUsageError", () => {
      const ring = new TicketKeyRing(provider);
      const bad: Partial<TicketState>[] = [
        { maxEarlyDataSize: 16384 as 0 },
        { lifetime: MAX_TICKET_LIFETIME_S + 1 },
        { resumptionPsk: fill(20, 1) },
        { appData: new Uint8Array(1025) },
        { alpn: "h\u0100" },
        { sni: "x".repeat(256) },
        { issuedAt: 1.5 },
        { cipherSuite: 0x10000 },
        { clientCertificateHash: new Uint8Array(0) },
        { transportParameters: { maxUdpPayloadSize: 1000 } },
      ];
      for (const b of bad)
        expect(() => ring.sealTicket({ ...minimalState(), ...b }, T0)).toThrow(QuicUsageError);
      expect(
        ring.sealTicket({ ...minimalState(), appData: new Uint8Array(1024) }, T0).length,
      ).toBeGreaterThan(1024);
      expect(() => new TicketKeyRing(provider, { key: fill(31, 1) })).toThrow(QuicUsageError);
      expect(() => new TicketKeyRing(provider, { rotationMs: 0 })).toThrow(QuicUsageError);
    });
  });

  describe("key rotation", () => {
    it("rotates every 12 h by default", () => {
      const ring = new TicketKeyRing(provider);
      const id0 = ring.currentKeyId(T0);
      expect(ring.currentKeyId(T0 + DEFAULT_TICKET_ROTATION_MS - 1)).toEqual(id0);
      expect(ring.currentKeyId(T0 + DEFAULT_TICKET_ROTATION_MS)).not.toEqual(id0);
      expect(DEFAULT_TICKET_ROTATION_MS).toBe(12 * HOUR);
    });

    it("opens tickets of the previous key but not of the key from 2 rotations ago", () => {
      const R = 1000;
      const ring = new TicketKeyRing(provider, { rotationMs: R });
      const a = ring.sealTicket(minimalState(0), 0); // key A, current in [0, R)
      const a2 = ring.sealTicket(minimalState(0), R - 1);
      const b = ring.sealTicket(minimalState(0), R); // key B, current in [R, 2R)
      expect(a.subarray(0, 8)).toEqual(a2.subarray(0, 8));
      expect(b.subarray(0, 8)).not.toEqual(a.subarray(0, 8));
      expect(ring.openTicket(a, R + 500)).not.toBeNull();
      expect(ring.openTicket(a2, 2 * R - 1)).not.toBeNull();
      expect(ring.keyCount).toBe(2);
      // At 2R, C is current and B previous: A is 2 rotations old.
      expect(ring.openTicket(a, 2 * R)).toBeNull();
      expect(ring.openTicket(a2, 2 * R)).toBeNull();
      expect(ring.openTicket(b, 2 * R)).not.toBeNull();
      expect(ring.openTicket(b, 3 * R)).toBeNull();
      expect(ring.keyCount).toBe(2);
    });

    it("forgets every old key after a gap of several periods", () => {
      const R = 1000;
      const ring = new TicketKeyRing(provider, { rotationMs: R });
      const a = ring.sealTicket(minimalState(0), 0);
      expect(ring.openTicket(a, 2 * R + 1)).toBeNull();
      expect(ring.keyCount).toBe(1);
      // The schedule stays aligned: the key current at 2R+1 rotates at 3R.
      const id = ring.currentKeyId(2 * R + 1);
      expect(ring.currentKeyId(3 * R - 1)).toEqual(id);
      expect(ring.currentKeyId(3 * R)).not.toEqual(id);
    });

    it("keeps retainedKeys previous keys", () => {
      const R = 1000;
      const ring = new TicketKeyRing(provider, { rotationMs: R, retainedKeys: 2 });
      const a = ring.sealTicket(minimalState(0), 0);
      ring.advance(R); // B
      ring.advance(2 * R); // C
      expect(ring.openTicket(a, 2 * R + 999)).not.toBeNull();
      expect(ring.keyCount).toBe(3);
      expect(ring.openTicket(a, 3 * R)).toBeNull();
      expect(ring.minTicketValidityMs).toBe(2 * R);
    });

    it("shares an injected key between two rings, which never rotate it", () => {
      const key = fill(32, 0x5a);
      const r1 = new TicketKeyRing(provider, { key });
      const r2 = new TicketKeyRing(provider, { key });
      const other = new TicketKeyRing(provider, { key: fill(32, 0x5b) });
      const later = T0 + 30 * 24 * HOUR;
      expect(r1.currentKeyId(T0)).toEqual(r2.currentKeyId(later));
      const t = r1.sealTicket(minimalState(later), later);
      expect(r2.openTicket(t, later + 1)).toEqual(minimalState(later));
      expect(other.openTicket(t, later + 1)).toBeNull();
      // Forged key id: right id, wrong key.
      const forged = other.sealTicket(minimalState(later), later);
      forged.set(t.subarray(0, 8), 0);
      expect(r2.openTicket(forged, later)).toBeNull();
    });

    it("setKey installs the next shared key and retains the replaced one for one period", () => {
      const R = 10_000;
      const k1 = fill(32, 1);
      const k2 = fill(32, 2);
      const r1 = new TicketKeyRing(provider, { key: k1, rotationMs: R });
      const r2 = new TicketKeyRing(provider, { key: k1, rotationMs: R });
      const old = r1.sealTicket(minimalState(T0), T0);
      r1.setKey(k2, T0 + 100);
      r2.setKey(k2, T0 + 100);
      r2.setKey(k2, T0 + 200); // no-op: already current
      const fresh = r1.sealTicket(minimalState(T0), T0 + 100);
      expect(fresh.subarray(0, 8)).not.toEqual(old.subarray(0, 8));
      expect(r2.openTicket(fresh, T0 + 150)).not.toBeNull();
      expect(r2.openTicket(old, T0 + 100 + R - 1)).not.toBeNull();
      expect(r2.openTicket(old, T0 + 100 + R)).toBeNull();
      expect(r2.openTicket(fresh, T0 + 100 + R)).not.toBeNull();
    });

    it("rotate() replaces the key at once", () => {
      const ring = new TicketKeyRing(provider, { key: fill(32, 9), rotationMs: 1000 });
      const t = ring.sealTicket(minimalState(0), 0);
      ring.rotate(10);
      expect(ring.sealTicket(minimalState(0), 10).subarray(0, 8)).not.toEqual(t.subarray(0, 8));
      expect(ring.openTicket(t, 500)).not.toBeNull();
      expect(ring.openTicket(t, 1010)).toBeNull();
    });
  });

  describe("newSessionTicketParams", () => {
    const ks = new KeySchedule(provider, "sha256");
    const resumptionSecret = fill(32, 0x77);
    const input = {
      keySchedule: ks,
      resumptionSecret,
      ticketIndex: 0,
      quicVersion: 1,
      cipherSuite: CipherSuite.TLS_AES_128_GCM_SHA256,
      alpn: "h3",
      sni: "example.com",
      earlyData: true,
      transportParameters: SERVER_TP,
      appData: fill(4, 4),
      estimatedRttMs: 30.4,
    };

    it("builds a NewSessionTicket with early_data = 0xffffffff and a ticket that opens to its state", () => {
      const ring = new TicketKeyRing(provider);
      const { message, state } = newSessionTicketParams(ring, input, T0 + 0.7);
      expect(message.type).toBe(HandshakeType.new_session_ticket);
      expect(message.ticketNonce).toEqual(Uint8Array.from([0, 0, 0, 0]));
      expect(state.resumptionPsk).toEqual(ks.resumptionPsk(resumptionSecret, message.ticketNonce));
      expect(message.extensions).toEqual([{ type: ExtensionType.early_data, maxEarlyDataSize: 0xffff_ffff }]);
      expect(state.maxEarlyDataSize).toBe(QUIC_MAX_EARLY_DATA_SIZE);
      expect(state.issuedAt).toBe(T0);
      expect(state.estimatedRttMs).toBe(30);
      expect(message.ticketAgeAdd).toBe(state.ticketAgeAdd);
      // Default lifetime: what the ring guarantees (12 h), below the 7-day cap.
      expect(message.ticketLifetime).toBe(12 * 3600);
      expect(ring.openTicket(message.ticket, T0 + 1)).toEqual(expectedOpened(state));
      // The message encodes and decodes (max_early_data_size on the wire).
      const bytes = encodeHandshakeMessage(message);
      expect(decodeHandshake(bytes)).toEqual(message);
      expect(Buffer.from(bytes).includes(Buffer.from([0x00, 0x2a, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff]))).toBe(
        true,
      );
    });

    it("omits early_data when 0-RTT is not offered", () => {
      const ring = new TicketKeyRing(provider);
      const { message, state } = newSessionTicketParams(
        ring,
        { ...input, earlyData: false, transportParameters: undefined },
        T0,
      );
      expect(message.extensions).toEqual([]);
      expect(state.maxEarlyDataSize).toBe(0);
      expect(ring.openTicket(message.ticket, T0)?.maxEarlyDataSize).toBe(0);
    });

    it("uses a distinct nonce and PSK per ticket index and a random age_add", () => {
      let counter = 0;
      const scripted = withRandom(provider, (n) => fill(n, ++counter));
      const ring = new TicketKeyRing(scripted);
      const p0 = newSessionTicketParams(ring, { ...input, ticketIndex: 0 }, T0);
      const p1 = newSessionTicketParams(ring, { ...input, ticketIndex: 0x0102_0304 }, T0);
      expect(p1.message.ticketNonce).toEqual(Uint8Array.from([1, 2, 3, 4]));
      expect(p0.state.resumptionPsk).not.toEqual(p1.state.resumptionPsk);
      // age_add comes from randomBytes(4): all bytes the same counter value.
      for (const p of [p0, p1]) {
        const b = p.message.ticketAgeAdd & 0xff;
        expect(p.message.ticketAgeAdd).toBe((b * 0x0101_0101) >>> 0);
      }
      expect(p0.message.ticketAgeAdd).not.toBe(p1.message.ticketAgeAdd);
    });

    it("clamps the lifetime to 7 days and to the key ring's guarantee", () => {
      const longRing = new TicketKeyRing(provider, { key: fill(32, 1), rotationMs: 30 * 24 * HOUR });
      expect(
        newSessionTicketParams(longRing, { ...input, lifetimeS: 0xffff_ffff }, T0).message.ticketLifetime,
      ).toBe(MAX_TICKET_LIFETIME_S);
      expect(newSessionTicketParams(longRing, input, T0).message.ticketLifetime).toBe(MAX_TICKET_LIFETIME_S);
      expect(newSessionTicketParams(longRing, { ...input, lifetimeS: 600 }, T0).message.ticketLifetime).toBe(
        600,
      );
      const shortRing = new TicketKeyRing(provider, { rotationMs: HOUR });
      expect(
        newSessionTicketParams(shortRing, { ...input, lifetimeS: 86_400 }, T0).message.ticketLifetime,
      ).toBe(3600);
    });

    it("refuses a 0-RTT ticket without transport parameters and a bad index", () => {
      const ring = new TicketKeyRing(provider);
      expect(() => newSessionTicketParams(ring, { ...input, transportParameters: undefined }, T0)).toThrow(
        QuicUsageError,
      );
      expect(() => newSessionTicketParams(ring, { ...input, ticketIndex: -1 }, T0)).toThrow(QuicUsageError);
    });
  });
});

describe("validateTicketAge", () => {
  const base: TicketState = {
    ...minimalState(T0),
    lifetime: 3600,
    maxEarlyDataSize: QUIC_MAX_EARLY_DATA_SIZE,
  };

  it("recovers the client age across the uint32 wrap-around", () => {
    const state = { ...base, ticketAgeAdd: 0xffff_fff0 };
    const obfuscated = (5000 + 0xffff_fff0) % 2 ** 32; // = 4984: wrapped
    expect(obfuscated).toBe(4984);
    const check = validateTicketAge(state, obfuscated, T0 + 5000, 1000);
    expect(check).toEqual({ clientAgeMs: 5000, deltaMs: 0, fresh: true, acceptZeroRtt: true });
  });

  it("accepts within the tolerance and rejects just outside it, in both directions", () => {
    const state = { ...base, ticketAgeAdd: 123_456, estimatedRttMs: 100 };
    const obf = (60_000 + 123_456) >>> 0;
    const arrival = T0 + 100 + 60_000; // adjusted creation time + client age
    expect(validateTicketAge(state, obf, arrival + 2000, 2000).fresh).toBe(true);
    expect(validateTicketAge(state, obf, arrival - 2000, 2000).fresh).toBe(true);
    const late = validateTicketAge(state, obf, arrival + 2001, 2000);
    expect(late).toEqual({ clientAgeMs: 60_000, deltaMs: 2001, fresh: false, acceptZeroRtt: false });
    expect(validateTicketAge(state, obf, arrival - 2001, 2000).deltaMs).toBe(-2001);
    expect(validateTicketAge(state, obf, arrival - 2001, 2000).acceptZeroRtt).toBe(false);
  });

  it("treats an age_add mismatch (obfuscated below age_add) as a huge age, not a negative one", () => {
    const state = { ...base, ticketAgeAdd: 1000 };
    const check = validateTicketAge(state, 999, T0 + 1, 10_000);
    expect(check.clientAgeMs).toBe(0xffff_ffff);
    expect(check.fresh).toBe(false);
  });

  it("is not fresh beyond the lifetime, and never accepts 0-RTT for a ticket without early data", () => {
    const state = { ...base, lifetime: 10 };
    expect(validateTicketAge(state, 10_000, T0 + 10_000, 60_000).fresh).toBe(false);
    expect(validateTicketAge(state, 9_999, T0 + 9_999, 60_000).fresh).toBe(true);
    const noEarly = validateTicketAge({ ...base, maxEarlyDataSize: 0 }, 500, T0 + 500, 1000);
    expect(noEarly.fresh).toBe(true);
    expect(noEarly.acceptZeroRtt).toBe(false);
  });

  it("inverts the client's obfuscation for every age_add (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 3_599_999 }),
        (ageAdd, age) => {
          const state = { ...base, ticketAgeAdd: ageAdd };
          const check = validateTicketAge(state, (age + ageAdd) % 2 ** 32, T0 + age, 0);
          expect(check.clientAgeMs).toBe(age);
          expect(check.acceptZeroRtt).toBe(true);
        },
      ),
    );
  });
});

describe("rememberedTransportParameters", () => {
  it("drops the parameters RFC 9000 §7.4.1 forbids remembering and GREASE, keeps the rest", () => {
    const r = rememberedTransportParameters({
      ...SERVER_TP,
      retrySourceConnectionId: fill(4, 1),
      preferredAddress: {
        ipv4Address: fill(4, 1),
        ipv4Port: 1,
        ipv6Address: fill(16, 1),
        ipv6Port: 1,
        connectionId: fill(4, 1),
        statelessResetToken: fill(16, 1),
      },
      disableActiveMigration: true,
    });
    expect(Object.keys(r).sort()).toEqual(
      [
        "activeConnectionIdLimit",
        "disableActiveMigration",
        "initialMaxData",
        "initialMaxStreamDataBidiLocal",
        "initialMaxStreamDataBidiRemote",
        "initialMaxStreamDataUni",
        "initialMaxStreamsBidi",
        "initialMaxStreamsUni",
        "maxDatagramFrameSize",
        "maxIdleTimeout",
        "unknown",
      ].sort(),
    );
    expect(r.unknown).toEqual([{ id: 0x4242n, value: fill(2, 7) }]);
    expect(withDefaults(r).ackDelayExponent).toBe(3);
    expect(rememberedTransportParameters({ unknown: [{ id: 27n, value: new Uint8Array(0) }] })).toEqual({});
  });
});
