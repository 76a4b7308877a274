import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cryptoProviders } from "../crypto/providers.ts";
import { QuicUsageError } from "../errors.ts";
import { AntiReplay, DEFAULT_ANTI_REPLAY_MAX_ENTRIES } from "./anti-replay.ts";
import {
  QUIC_MAX_EARLY_DATA_SIZE,
  TicketKeyRing,
  type TicketState,
  validateTicketAge,
} from "./session-ticket.ts";

const key = (...b: number[]): Uint8Array => Uint8Array.from(b);

describe.each(cryptoProviders.map((p) => [p.name, p] as const))("AntiReplay (%s)", (_, provider) => {
  it("accepts a ticket's 0-RTT at most once while its record lives", () => {
    const ar = new AntiReplay(provider, 0);
    expect(ar.tryAccept(key(1, 2, 3), 100, 1000)).toBe(true);
    expect(ar.tryAccept(key(1, 2, 3), 100, 1000)).toBe(false);
    expect(ar.tryAccept(key(1, 2, 3), 999, 5000)).toBe(false);
    // A copy with the same bytes is the same ticket; a different ticket is independent.
    expect(ar.tryAccept(Uint8Array.from([1, 2, 3]), 500, 1000)).toBe(false);
    expect(ar.tryAccept(key(1, 2, 4), 500, 1000)).toBe(true);
    expect(ar.size).toBe(2);
  });

  it("refuses an already expired ticket without recording it", () => {
    const ar = new AntiReplay(provider, 0);
    expect(ar.tryAccept(key(1), 1000, 1000)).toBe(false);
    expect(ar.tryAccept(key(1), 1000, 999)).toBe(false);
    expect(ar.tryAccept(key(1), 1000, Number.NaN)).toBe(false);
    expect(ar.size).toBe(0);
    expect(ar.tryAccept(key(1), 1000, 1001)).toBe(true);
  });

  it("frees records once they expire", () => {
    const ar = new AntiReplay(provider, 0);
    for (let i = 0; i < 50; i++) expect(ar.tryAccept(key(i), 0, 100 + (i % 5) * 10)).toBe(true);
    expect(ar.size).toBe(50);
    ar.prune(119); // expiries 100 and 110 gone
    expect(ar.size).toBe(30);
    expect(ar.tryAccept(key(200), 140, 1000)).toBe(true); // prunes 120, 130, 140
    expect(ar.size).toBe(1);
    // A freed record no longer blocks its key (were the ticket still valid, e.g. a longer expiry).
    expect(ar.tryAccept(key(0), 150, 2000)).toBe(true);
    expect(ar.size).toBe(2);
  });

  it("fails closed when full, and recovers once records expire", () => {
    const ar = new AntiReplay(provider, 0, { maxEntries: 3 });
    expect(ar.tryAccept(key(1), 0, 100)).toBe(true);
    expect(ar.tryAccept(key(2), 0, 200)).toBe(true);
    expect(ar.tryAccept(key(3), 0, 300)).toBe(true);
    expect(ar.tryAccept(key(4), 50, 300)).toBe(false);
    expect(ar.tryAccept(key(4), 60, 300)).toBe(false);
    expect(ar.size).toBe(3);
    expect(ar.refusedBecauseFull).toBe(2);
    // Still at most once for recorded keys, full or not.
    expect(ar.tryAccept(key(1), 60, 100)).toBe(false);
    expect(ar.tryAccept(key(4), 100, 300)).toBe(true); // key(1) expired at 100
    expect(ar.size).toBe(3);
    expect(new AntiReplay(provider, 0, { maxEntries: 0 }).tryAccept(key(1), 0, 10)).toBe(false);
    expect(DEFAULT_ANTI_REPLAY_MAX_ENTRIES).toBeGreaterThan(0);
    expect(() => new AntiReplay(provider, 0, { maxEntries: -1 })).toThrow(QuicUsageError);
  });

  it("refuses tickets issued before the instance started (RFC 9846 §8.2)", () => {
    const ar = new AntiReplay(provider, 10_000);
    expect(ar.tryAccept(key(1), 10_500, 20_000, 9_999)).toBe(false);
    expect(ar.size).toBe(0);
    expect(ar.tryAccept(key(1), 10_500, 20_000, 10_000)).toBe(true);
    expect(ar.tryAccept(key(2), 10_500, 20_000)).toBe(true); // no issue time given: no check
  });

  it("matches a model: each key accepted at most once per live record (property)", () => {
    const step = fc.record({
      k: fc.integer({ min: 0, max: 7 }),
      dt: fc.integer({ min: 0, max: 30 }),
      ttl: fc.integer({ min: -5, max: 100 }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), fc.integer({ min: 1, max: 6 }), (steps, cap) => {
        const ar = new AntiReplay(provider, 0, { maxEntries: cap });
        const model = new Map<number, number>();
        let now = 0;
        for (const { k, dt, ttl } of steps) {
          now += dt;
          for (const [mk, exp] of model) if (exp <= now) model.delete(mk);
          const expiresAt = now + ttl;
          const want = expiresAt > now && !model.has(k) && model.size < cap;
          if (want) model.set(k, expiresAt);
          expect(ar.tryAccept(key(k), now, expiresAt)).toBe(want);
          expect(ar.size).toBe(model.size);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("with a key ring: a replayed ClientHello's 0-RTT is accepted once", () => {
    const ring = new TicketKeyRing(provider);
    const t0 = 1_700_000_000_000;
    const state: TicketState = {
      quicVersion: 1,
      cipherSuite: 0x1301,
      resumptionPsk: new Uint8Array(32).fill(1),
      alpn: "h3",
      issuedAt: t0,
      lifetime: 3600,
      ticketAgeAdd: 77,
      maxEarlyDataSize: QUIC_MAX_EARLY_DATA_SIZE,
    };
    const ticket = ring.sealTicket(state, t0);
    const ar = new AntiReplay(provider, t0 - 1);
    const serve = (now: number): boolean => {
      const s = ring.openTicket(ticket, now);
      if (s === null) return false;
      const age = validateTicketAge(s, (now - t0 + s.ticketAgeAdd) >>> 0, now, 1000);
      return age.acceptZeroRtt && ar.tryAccept(ticket, now, s.issuedAt + s.lifetime * 1000, s.issuedAt);
    };
    expect(serve(t0 + 5000)).toBe(true);
    expect(serve(t0 + 5001)).toBe(false);
    expect(serve(t0 + 3_000_000)).toBe(false);
  });
});
