import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AddressTokens, AddressTokenType, MAX_ADDRESS_TOKEN_LENGTH } from "./address-token.ts";
import { cryptoProviders } from "./crypto/providers.ts";

const NOW = Date.UTC(2026, 0, 1);
const client = { address: "192.0.2.7", port: 40000 };
const odcid = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
const rscid = Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]);

describe("address validation tokens (RFC 9000 §8.1)", () => {
  for (const provider of cryptoProviders) {
    it(`a Retry token validates for the same address, port and Retry SCID (${provider.name})`, () => {
      const t = new AddressTokens({ provider });
      const token = t.issueRetryToken(client, odcid, rscid, NOW);
      expect(token[0]).toBe(AddressTokenType.Retry);
      expect(token.length).toBeLessThanOrEqual(MAX_ADDRESS_TOKEN_LENGTH);
      const r = t.validate(token, client, rscid, NOW + 1000);
      expect(r).toEqual({ kind: "retry", originalDcid: odcid });
      // Retry tokens may be presented again (a retransmitted Initial) within their lifetime.
      expect(t.validate(token, client, rscid, NOW + 2000).kind).toBe("retry");
    });
  }

  it("a Retry token is bound to the IP, the port and the Retry SCID", () => {
    const t = new AddressTokens();
    const token = t.issueRetryToken(client, odcid, rscid, NOW);
    const invalid = { kind: "invalid", claimed: "retry" };
    expect(t.validate(token, { ...client, port: 40001 }, rscid, NOW)).toEqual(invalid);
    expect(t.validate(token, { ...client, address: "192.0.2.8" }, rscid, NOW)).toEqual(invalid);
    expect(t.validate(token, client, odcid, NOW)).toEqual(invalid);
    // The same IPv4 address seen through a dual-stack socket is the same address.
    expect(t.validate(token, { ...client, address: "::ffff:192.0.2.7" }, rscid, NOW).kind).toBe("retry");
  });

  it("a Retry token expires after its short lifetime", () => {
    const t = new AddressTokens({ retryLifetime: 10_000 });
    const token = t.issueRetryToken(client, odcid, rscid, NOW);
    expect(t.validate(token, client, rscid, NOW + 10_000).kind).toBe("retry");
    expect(t.validate(token, client, rscid, NOW + 10_001)).toEqual({ kind: "invalid", claimed: "retry" });
    // A token from the future (clock jump back, or another key's lifetime) is not accepted either.
    expect(t.validate(token, client, rscid, NOW - 60_000)).toEqual({ kind: "invalid", claimed: "retry" });
  });

  it("a NEW_TOKEN token is bound to the IP only, lasts long, and is accepted once", () => {
    const t = new AddressTokens();
    const token = t.issueNewToken(client.address, NOW);
    expect(token[0]).toBe(AddressTokenType.NewToken);
    const other = t.issueNewToken(client.address, NOW);
    expect(Buffer.from(other).equals(Buffer.from(token))).toBe(false); // §8.1.3: unique
    expect(t.validate(token, { ...client, address: "192.0.2.99" }, rscid, NOW)).toEqual({
      kind: "invalid",
      claimed: "new-token",
    });
    // Another port, any DCID, hours later: still valid — once.
    expect(t.validate(token, { ...client, port: 1234 }, odcid, NOW + 3600_000)).toEqual({
      kind: "new-token",
    });
    expect(t.validate(token, client, odcid, NOW + 3600_001)).toEqual({
      kind: "invalid",
      claimed: "new-token",
    });
    expect(t.validate(other, client, odcid, NOW + 25 * 3600_000)).toEqual({
      kind: "invalid",
      claimed: "new-token",
    });
  });

  it("the replay cache stays bounded and forgets expired tokens", () => {
    const t = new AddressTokens({ replayCacheSize: 4, newTokenLifetime: 1000 });
    const tokens = Array.from({ length: 6 }, () => t.issueNewToken(client.address, NOW));
    for (const tok of tokens) expect(t.validate(tok, client, odcid, NOW).kind).toBe("new-token");
    const used = (t as unknown as { used: Map<string, number> }).used;
    expect(used.size).toBeLessThanOrEqual(4);
    // The most recent ones are still refused.
    expect(t.validate(tokens[5], client, odcid, NOW).kind).toBe("invalid");
    const later = t.issueNewToken(client.address, NOW + 5000);
    expect(t.validate(later, client, odcid, NOW + 5000).kind).toBe("new-token");
    expect(used.size).toBe(1); // the expired ones are gone
  });

  it("kinds are not interchangeable, and another key's tokens are invalid", () => {
    const a = new AddressTokens();
    const b = new AddressTokens();
    const retry = a.issueRetryToken(client, odcid, rscid, NOW);
    const newToken = a.issueNewToken(client.address, NOW);
    expect(b.validate(retry, client, rscid, NOW)).toEqual({ kind: "invalid", claimed: "retry" });
    expect(b.validate(newToken, client, rscid, NOW)).toEqual({ kind: "invalid", claimed: "new-token" });
    // Relabelling the type byte does not turn one kind into the other.
    const relabelled = retry.slice();
    relabelled[0] = AddressTokenType.NewToken;
    expect(a.validate(relabelled, client, rscid, NOW).kind).toBe("invalid");
    const relabelled2 = newToken.slice();
    relabelled2[0] = AddressTokenType.Retry;
    expect(a.validate(relabelled2, client, rscid, NOW).kind).toBe("invalid");
    // A shared key accepts across instances (an endpoint restarted with the same key).
    const key = new Uint8Array(32).fill(7);
    const c1 = new AddressTokens({ key });
    const c2 = new AddressTokens({ key });
    expect(c2.validate(c1.issueNewToken(client.address, NOW), client, odcid, NOW).kind).toBe("new-token");
  });

  it("no token is 'none'; an unknown type byte is 'invalid' of unknown kind", () => {
    const t = new AddressTokens();
    expect(t.validate(new Uint8Array(0), client, rscid, NOW)).toEqual({ kind: "none" });
    expect(t.validate(Uint8Array.from([0x77, 1, 2, 3]), client, rscid, NOW)).toEqual({
      kind: "invalid",
      claimed: "unknown",
    });
  });

  it("never throws and never accepts for arbitrary or bit-flipped tokens", () => {
    const t = new AddressTokens();
    const good = [t.issueRetryToken(client, odcid, rscid, NOW), t.issueNewToken(client.address, NOW)];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.uint8Array({ maxLength: 21 }), (token, dcid) => {
        const r = t.validate(token, client, dcid, NOW);
        expect(r.kind === "invalid" || r.kind === "none").toBe(true);
      }),
    );
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (pos, flip, which) => {
        const tok = good[which ? 1 : 0].slice();
        tok[pos % tok.length] ^= flip;
        expect(t.validate(tok, client, rscid, NOW).kind).toBe("invalid");
      }),
    );
    // Truncated and extended tokens.
    for (const g of good) {
      for (let n = 0; n < g.length; n++)
        expect(t.validate(g.subarray(0, n), client, rscid, NOW).kind).not.toMatch(/retry|new-token/);
      const longer = new Uint8Array(g.length + 1);
      longer.set(g);
      expect(t.validate(longer, client, rscid, NOW).kind).toBe("invalid");
    }
  });
});
