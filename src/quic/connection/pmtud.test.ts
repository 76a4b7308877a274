import { describe, expect, it } from "vitest";
import { BASE_PLPMTU, MAX_PROBES, PmtuDiscovery, type PmtuUpdate } from "./pmtud.ts";

/** Runs a search against a path that carries datagrams up to `pathMtu`; returns the probe sizes. */
function search(d: PmtuDiscovery, pathMtu: number, now = 0): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < 100; i++) {
    const size = d.probeDue(now);
    if (size === 0) break;
    sizes.push(size);
    d.onProbeSent(size);
    if (size <= pathMtu) d.onProbeAcked(size, now);
    else d.onProbeLost(size, now);
  }
  return sizes;
}

describe("PmtuDiscovery (RFC 8899)", () => {
  it("reports each growth, the end of a search and a black hole to onUpdate", () => {
    const updates: [PmtuUpdate, number][] = [];
    const onUpdate = (u: PmtuUpdate, now: number) => updates.push([u, now]);
    const one = new PmtuDiscovery({ upperBound: 1452, onUpdate }, 0);
    search(one, 65527, 5);
    expect(updates).toEqual([[{ old: 1200, new: 1452, done: true }, 5]]);
    updates.length = 0;
    const d = new PmtuDiscovery({ upperBound: 1500, onUpdate, blackHoleThreshold: 1 }, 0);
    search(d, 1300, 7);
    const sizes = updates.map(([u]) => u);
    // Growth events carry the old size and are not done; the last one ends the search (a growth
    // or, after MAX_PROBES lost probes, the size reached with no `old`).
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes.slice(0, -1).every((u) => u.old !== undefined && u.new > u.old && !u.done)).toBe(true);
    const last = sizes[sizes.length - 1];
    expect(last).toMatchObject({ new: d.current, done: true });
    expect(updates.every(([, now]) => now === 7)).toBe(true);
    expect(d.current).toBeGreaterThan(1280);
    expect(d.current).toBeLessThanOrEqual(1300);
    // A black hole (threshold 1 here): back to the base.
    const before = d.current;
    updates.length = 0;
    expect(d.onPacketsLost(100, 100)).toBe(true);
    expect(updates).toEqual([[{ old: before, new: 1200, done: false }, 100]]);
  });

  it("starts at the base and reaches the upper bound with one probe when the path carries it", () => {
    const d = new PmtuDiscovery({ upperBound: 1452 }, 0);
    expect(d.current).toBe(BASE_PLPMTU);
    expect(search(d, 65527)).toEqual([1452]);
    expect(d.current).toBe(1452);
    expect(d.state).toBe("complete");
    expect(d.probeDue(1)).toBe(0);
  });

  it("gives up on a size after MAX_PROBES losses and halves toward the path MTU", () => {
    const d = new PmtuDiscovery({ upperBound: 1500 }, 0);
    const sizes = search(d, 1300);
    // The upper bound three times, then a binary search between 1200 and 1500.
    expect(sizes.slice(0, MAX_PROBES)).toEqual([1500, 1500, 1500]);
    expect(sizes[MAX_PROBES]).toBe(1350);
    expect(d.current).toBeLessThanOrEqual(1300);
    expect(d.current).toBeGreaterThan(1300 - 20);
    expect(d.state).toBe("complete");
  });

  it("one probe at a time: nothing is due while a probe is in flight", () => {
    const d = new PmtuDiscovery({ upperBound: 1452 }, 0);
    d.onProbeSent(d.probeDue(0));
    expect(d.probing).toBe(true);
    expect(d.probeDue(0)).toBe(0);
  });

  it("never probes when the upper bound is the base", () => {
    const d = new PmtuDiscovery({ upperBound: 1200 }, 0);
    expect(d.probeDue(0)).toBe(0);
    expect(d.current).toBe(1200);
  });

  it("a black hole (three loss events of large packets, none acked since) falls back to the base", () => {
    const d = new PmtuDiscovery({ upperBound: 1452, raiseInterval: 1000 }, 0);
    search(d, 1452);
    expect(d.current).toBe(1452);
    d.onPacketAcked(1452, 10);
    // Losses of packets sent before the last acknowledged large one are congestion, not a black hole.
    for (let i = 0; i < 5; i++) expect(d.onPacketsLost(5, 20)).toBe(false);
    expect(d.current).toBe(1452);
    expect(d.onPacketsLost(11, 20)).toBe(false);
    expect(d.onPacketsLost(12, 21)).toBe(false);
    expect(d.onPacketsLost(13, 22)).toBe(true);
    expect(d.current).toBe(BASE_PLPMTU);
    expect(d.blackHoles).toBe(1);
    // The search resumes after the raise interval.
    expect(d.probeDue(500)).toBe(0);
    expect(d.probeDue(1022)).toBe(1452);
  });

  it("an acknowledged large packet resets the black-hole count", () => {
    const d = new PmtuDiscovery({ upperBound: 1452 }, 0);
    search(d, 1452);
    expect(d.onPacketsLost(1, 1)).toBe(false);
    expect(d.onProbeTimeout(2, 2)).toBe(false);
    d.onPacketAcked(1452, 3);
    expect(d.onPacketsLost(4, 4)).toBe(false);
    expect(d.onProbeTimeout(5, 5)).toBe(false);
    expect(d.current).toBe(1452);
    expect(d.onProbeTimeout(6, 6)).toBe(true);
    expect(d.current).toBe(1200);
  });

  it("probe timeouts count only while a large packet is unacknowledged (a sender of small packets)", () => {
    const d = new PmtuDiscovery({ upperBound: 1452 }, 0);
    search(d, 1452);
    d.onPacketAcked(1452, 10);
    // Only small packets sent since: PTOs are no sign of a black hole.
    for (let i = 0; i < 10; i++) expect(d.onProbeTimeout(10, 20 + i)).toBe(false);
    expect(d.current).toBe(1452);
  });
});
