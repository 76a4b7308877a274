import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cryptoProviders } from "../crypto/providers.ts";
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import { findZeroRttReduction, type TransportParameters } from "../transport-parameters.ts";
import { ExtensionType } from "./extensions.ts";
import { KeySchedule } from "./key-schedule.ts";
import { CipherSuite, HandshakeType, type NewSessionTicket } from "./messages.ts";
import {
  isTicketExpired,
  obfuscatedTicketAge,
  SessionCache,
  type SessionTicketEntry,
  sessionCacheKey,
  sessionEntryFromTicket,
  ticketExpiresAt,
  ticketMaxEarlyDataSize,
} from "./session-cache.ts";
import {
  newSessionTicketParams,
  QUIC_MAX_EARLY_DATA_SIZE,
  TicketKeyRing,
  validateTicketAge,
} from "./session-ticket.ts";

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;

function entry(id: number, receivedAt = T0, lifetime = 3600): SessionTicketEntry {
  return {
    ticket: Uint8Array.from([id]),
    psk: new Uint8Array(32).fill(id),
    cipherSuite: CipherSuite.TLS_AES_128_GCM_SHA256,
    quicVersion: 1,
    alpn: "h3",
    receivedAt,
    lifetime,
    ticketAgeAdd: 0,
    maxEarlyDataSize: QUIC_MAX_EARLY_DATA_SIZE,
  };
}

const ids = (c: SessionCache, server: string, now = T0): number[] => {
  const out: number[] = [];
  for (let e = c.take(server, now); e !== undefined; e = c.take(server, now)) out.push(e.ticket[0]);
  return out;
};

describe("SessionCache", () => {
  it("take() returns the most recent ticket and removes it (single use)", () => {
    const c = new SessionCache();
    c.put("a:443", entry(1));
    c.put("a:443", entry(2));
    expect(c.count("a:443")).toBe(2);
    expect(c.take("a:443", T0)?.ticket).toEqual(Uint8Array.from([2]));
    expect(c.count("a:443")).toBe(1);
    expect(c.take("a:443", T0)?.ticket).toEqual(Uint8Array.from([1]));
    expect(c.take("a:443", T0)).toBeUndefined();
    expect(c.size).toBe(0);
    expect(c.take("b:443", T0)).toBeUndefined();
  });

  it("honours ticket_lifetime and the 7-day cap, dropping expired tickets", () => {
    const c = new SessionCache();
    c.put("s", entry(1, T0, 10));
    c.put("s", entry(2, T0, 20));
    expect(isTicketExpired(entry(1, T0, 10), T0 + 9_999)).toBe(false);
    expect(isTicketExpired(entry(1, T0, 10), T0 + 10_000)).toBe(true);
    // At T0+15 s the newer (20 s) ticket is live and the older one is expired.
    expect(c.take("s", T0 + 15_000)?.ticket[0]).toBe(2);
    expect(c.count("s")).toBe(0);
    expect(c.size).toBe(0);
    c.put("s", entry(3, T0, 10));
    expect(c.take("s", T0 + 10_000)).toBeUndefined();
    expect(c.size).toBe(0);
    // A server announcing more than 7 days gets 7 days (RFC 9846 §4.6.1).
    const long = entry(4, T0, 0xffff_ffff);
    expect(ticketExpiresAt(long)).toBe(T0 + 7 * DAY);
    c.put("s", long);
    expect(c.take("s", T0 + 7 * DAY)).toBeUndefined();
    c.put("s", entry(5, T0, 0xffff_ffff));
    expect(c.take("s", T0 + 7 * DAY - 1)?.ticket[0]).toBe(5);
  });

  it("ignores lifetime-0 tickets", () => {
    const c = new SessionCache();
    c.put("s", entry(1, T0, 0));
    expect(c.size).toBe(0);
    expect(c.take("s", T0)).toBeUndefined();
  });

  it("keeps at most maxPerServer tickets per server, dropping the oldest", () => {
    const c = new SessionCache();
    for (let i = 1; i <= 6; i++) c.put("s", entry(i));
    expect(c.count("s")).toBe(4);
    expect(c.size).toBe(4);
    expect(ids(c, "s")).toEqual([6, 5, 4, 3]);
    const two = new SessionCache({ maxPerServer: 2 });
    for (let i = 1; i <= 3; i++) two.put("s", entry(i));
    expect(ids(two, "s")).toEqual([3, 2]);
  });

  it("evicts from the least recently used server beyond the global cap", () => {
    const c = new SessionCache({ maxPerServer: 2, maxTickets: 3 });
    c.put("a", entry(1));
    c.put("b", entry(2));
    c.put("c", entry(3));
    c.put("a", entry(4)); // LRU order now b, c, a → b's ticket goes
    expect(c.size).toBe(3);
    expect(c.count("b")).toBe(0);
    expect(c.count("a")).toBe(2);
    // Using c (even without taking anything) makes a the least recently used.
    expect(c.take("c", T0, () => false)).toBeUndefined();
    c.put("d", entry(5)); // evicts a's oldest (1)
    expect(c.size).toBe(3);
    expect(ids(c, "a")).toEqual([4]);
    expect(ids(c, "c")).toEqual([3]);
    expect(ids(c, "d")).toEqual([5]);
    expect(c.size).toBe(0);
  });

  it("take() with a filter skips and keeps tickets it does not accept", () => {
    const c = new SessionCache();
    c.put("s", { ...entry(1), alpn: "h3" });
    c.put("s", { ...entry(2), alpn: "hq-interop" });
    c.put("s", { ...entry(3), alpn: "hq-interop", maxEarlyDataSize: 0 });
    const e = c.take("s", T0, (x) => x.alpn === "h3");
    expect(e?.ticket[0]).toBe(1);
    expect(c.take("s", T0, (x) => x.maxEarlyDataSize === QUIC_MAX_EARLY_DATA_SIZE)?.ticket[0]).toBe(2);
    expect(c.count("s")).toBe(1);
    expect(c.size).toBe(1);
  });

  it("delete() and clear() keep the total right", () => {
    const c = new SessionCache();
    c.put("a", entry(1));
    c.put("a", entry(2));
    c.put("b", entry(3));
    c.delete("a");
    c.delete("zzz");
    expect(c.size).toBe(1);
    c.clear();
    expect(c.size).toBe(0);
    expect(c.take("b", T0)).toBeUndefined();
    expect(() => new SessionCache({ maxPerServer: 0 })).toThrow(QuicUsageError);
  });

  it("keeps the total consistent under random operations (property)", () => {
    const op = fc.oneof(
      fc.record({ put: fc.integer({ min: 0, max: 4 }), life: fc.integer({ min: 0, max: 5 }) }),
      fc.record({ take: fc.integer({ min: 0, max: 4 }), dt: fc.integer({ min: 0, max: 3000 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const c = new SessionCache({ maxPerServer: 3, maxTickets: 7 });
        let now = T0;
        let n = 0;
        for (const o of ops) {
          if ("put" in o) c.put(`s${o.put}`, entry(n++ & 0xff, now, o.life));
          else {
            now += o.dt;
            const e = c.take(`s${o.take}`, now);
            if (e !== undefined) expect(isTicketExpired(e, now)).toBe(false);
          }
          let sum = 0;
          for (let s = 0; s <= 4; s++) {
            expect(c.count(`s${s}`)).toBeLessThanOrEqual(3);
            sum += c.count(`s${s}`);
          }
          expect(c.size).toBe(sum);
          expect(c.size).toBeLessThanOrEqual(7);
        }
      }),
    );
  });

  it("builds cache keys from name and port", () => {
    expect(sessionCacheKey("Example.COM", 443)).toBe("example.com:443");
    expect(sessionCacheKey("::1", 4433)).toBe("[::1]:4433");
    expect(sessionCacheKey("[::1]", 4433)).toBe("[::1]:4433");
  });
});

describe("obfuscatedTicketAge", () => {
  it("is (age + ticket_age_add) mod 2^32 (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 7 * DAY }),
        (ageAdd, age) => {
          const e = { ...entry(1), ticketAgeAdd: ageAdd };
          const got = obfuscatedTicketAge(e, T0 + age);
          expect(got).toBe((age + ageAdd) % 2 ** 32);
          expect(got).toBeGreaterThanOrEqual(0);
          expect(got).toBeLessThan(2 ** 32);
        },
      ),
    );
  });

  it("wraps, floors fractional ms, and treats a clock going backwards as age 0", () => {
    const e = { ...entry(1), ticketAgeAdd: 0xffff_ff00 };
    expect(obfuscatedTicketAge(e, T0 + 0x100)).toBe(0);
    expect(obfuscatedTicketAge(e, T0 + 0x105)).toBe(5);
    expect(obfuscatedTicketAge(e, T0 + 10.9)).toBe(0xffff_ff0a);
    expect(obfuscatedTicketAge(e, T0 - 5000)).toBe(0xffff_ff00);
  });
});

describe("ticketMaxEarlyDataSize", () => {
  const nst = (extensions: NewSessionTicket["extensions"]): NewSessionTicket => ({
    type: HandshakeType.new_session_ticket,
    ticketLifetime: 3600,
    ticketAgeAdd: 1,
    ticketNonce: new Uint8Array(1),
    ticket: new Uint8Array(1),
    extensions,
  });

  it("accepts only 0xffffffff (RFC 9001 §4.6.1), 0 when absent", () => {
    expect(ticketMaxEarlyDataSize(nst([]))).toBe(0);
    expect(
      ticketMaxEarlyDataSize(nst([{ type: ExtensionType.early_data, maxEarlyDataSize: 0xffff_ffff }])),
    ).toBe(QUIC_MAX_EARLY_DATA_SIZE);
    for (const v of [0, 16_384, 0xffff_fffe]) {
      let err: unknown;
      try {
        ticketMaxEarlyDataSize(nst([{ type: ExtensionType.early_data, maxEarlyDataSize: v }]));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(QuicError);
      expect((err as QuicError).code).toBe(TransportErrorCode.PROTOCOL_VIOLATION);
    }
  });
});

describe.each(cryptoProviders.map((p) => [p.name, p] as const))(
  "client and server together (%s)",
  (_, provider) => {
    const ks = new KeySchedule(provider, "sha256");
    const resumptionSecret = new Uint8Array(32).fill(0x42);
    const serverTp: TransportParameters = {
      initialMaxData: 1 << 20,
      initialMaxStreamsBidi: 100,
      initialMaxStreamDataBidiRemote: 1 << 16,
      maxAckDelay: 30,
      statelessResetToken: new Uint8Array(16).fill(1),
      initialSourceConnectionId: new Uint8Array(8).fill(2),
    };

    it("the client's entry matches the server's sealed state, and its age passes the server's check", () => {
      const ring = new TicketKeyRing(provider);
      const { message, state } = newSessionTicketParams(
        ring,
        {
          keySchedule: ks,
          resumptionSecret,
          ticketIndex: 3,
          quicVersion: 1,
          cipherSuite: CipherSuite.TLS_AES_128_GCM_SHA256,
          alpn: "h3",
          sni: "example.com",
          earlyData: true,
          transportParameters: serverTp,
          estimatedRttMs: 50,
        },
        T0,
      );
      // The client receives the ticket half an RTT later.
      const e = sessionEntryFromTicket(
        message,
        {
          keySchedule: ks,
          resumptionSecret,
          cipherSuite: CipherSuite.TLS_AES_128_GCM_SHA256,
          quicVersion: 1,
          alpn: "h3",
          sni: "example.com",
          transportParameters: serverTp,
        },
        T0 + 25,
      );
      expect(e).toBeDefined();
      if (e === undefined) return;
      expect(e.psk).toEqual(state.resumptionPsk);
      expect(e.ticket).toEqual(message.ticket);
      expect(e.ticket).not.toBe(message.ticket); // copied
      expect(e.maxEarlyDataSize).toBe(QUIC_MAX_EARLY_DATA_SIZE);
      expect(e.lifetime).toBe(message.ticketLifetime);
      expect(e.transportParameters?.maxAckDelay).toBeUndefined();
      expect(e.transportParameters?.statelessResetToken).toBeUndefined();
      expect(e.transportParameters?.initialMaxData).toBe(1 << 20);

      const cache = new SessionCache();
      const server = sessionCacheKey("example.com", 443);
      cache.put(server, e);
      const sendAt = T0 + 60_000;
      const used = cache.take(server, sendAt);
      expect(used).toBe(e);
      // The ClientHello arrives half an RTT after it was sent.
      const arrival = sendAt + 25;
      const opened = ring.openTicket(e.ticket, arrival);
      expect(opened).not.toBeNull();
      if (opened === null) return;
      const check = validateTicketAge(opened, obfuscatedTicketAge(e, sendAt), arrival, 10);
      expect(check.clientAgeMs).toBe(60_000 - 25);
      expect(check.deltaMs).toBe(0);
      expect(check.acceptZeroRtt).toBe(true);
      // Both sides remember the same 0-RTT limits.
      expect(opened.transportParameters?.initialMaxStreamDataBidiRemote).toBe(1 << 16);
      expect(
        findZeroRttReduction(opened.transportParameters ?? {}, e.transportParameters ?? {}),
      ).toBeUndefined();
      expect(findZeroRttReduction(opened.transportParameters ?? {}, { initialMaxData: 1 })).toBe(
        "initial_max_data",
      );
    });

    it("discards lifetime-0 tickets and rejects a bad max_early_data_size", () => {
      const msg: NewSessionTicket = {
        type: HandshakeType.new_session_ticket,
        ticketLifetime: 0,
        ticketAgeAdd: 0,
        ticketNonce: new Uint8Array(0),
        ticket: new Uint8Array(4),
        extensions: [],
      };
      const ctx = {
        keySchedule: ks,
        resumptionSecret,
        cipherSuite: CipherSuite.TLS_AES_128_GCM_SHA256,
        quicVersion: 1,
        alpn: "h3",
      };
      expect(sessionEntryFromTicket(msg, ctx, T0)).toBeUndefined();
      const live = sessionEntryFromTicket({ ...msg, ticketLifetime: 1 }, ctx, T0);
      expect(live?.psk).toEqual(ks.resumptionPsk(resumptionSecret, new Uint8Array(0)));
      expect(live?.maxEarlyDataSize).toBe(0);
      expect(() =>
        sessionEntryFromTicket(
          {
            ...msg,
            ticketLifetime: 1,
            extensions: [{ type: ExtensionType.early_data, maxEarlyDataSize: 1 }],
          },
          ctx,
          T0,
        ),
      ).toThrow(QuicError);
    });
  },
);
