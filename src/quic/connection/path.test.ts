import { describe, expect, it } from "vitest";
import { NetworkPath, onlyPortChanged, samePathAddress } from "./path.ts";

const A = { address: "192.0.2.1", port: 1000 };

describe("NetworkPath (RFC 9000 §8.2)", () => {
  it("compares addresses with their local socket", () => {
    expect(samePathAddress(A, { ...A })).toBe(true);
    expect(samePathAddress(A, { ...A, local: 0 })).toBe(true);
    expect(samePathAddress(A, { ...A, local: 1 })).toBe(false);
    expect(samePathAddress(A, { ...A, port: 1001 })).toBe(false);
    expect(samePathAddress(A, undefined)).toBe(false);
    expect(onlyPortChanged(A, { ...A, port: 2 })).toBe(true);
    expect(onlyPortChanged(A, { address: "192.0.2.2", port: 1000 })).toBe(false);
  });

  it("an unvalidated path may send 3× what it received (§8.1); validated, without limit", () => {
    const p = new NetworkPath(A, false);
    expect(p.amplificationBudget()).toBe(0);
    p.bytesReceived = 100;
    p.bytesSent = 250;
    expect(p.amplificationBudget()).toBe(50);
    p.startValidation(0, 100, 1000);
    const data = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
    p.onChallengeSent(data, 0);
    expect(p.onResponse(new Uint8Array(8))).toBeUndefined();
    expect(p.validated).toBe(false);
    expect(p.onResponse(data)).toBe("validated");
    expect(p.amplificationBudget()).toBe(Number.POSITIVE_INFINITY);
    expect(p.isValidating).toBe(false);
  });

  it("a response to any earlier challenge counts (§8.2.3)", () => {
    const p = new NetworkPath(A, false);
    p.startValidation(0, 100, 1000);
    const first = new Uint8Array(8).fill(1);
    p.onChallengeSent(first, 0);
    p.onTimeout(100);
    expect(p.challengePending).toBe(true);
    p.onChallengeSent(new Uint8Array(8).fill(2), 100);
    expect(p.onResponse(first)).toBe("validated");
  });

  it("resends challenges with backoff, then abandons at the deadline (§8.2.4)", () => {
    const p = new NetworkPath(A, false);
    p.startValidation(0, 100, 1000);
    expect(p.challengePending).toBe(true);
    p.onChallengeSent(new Uint8Array(8), 0);
    expect(p.nextTimeout()).toBe(100);
    expect(p.onTimeout(100)).toBeUndefined();
    expect(p.challengePending).toBe(true);
    p.onChallengeSent(new Uint8Array(8), 100);
    expect(p.nextTimeout()).toBe(300); // doubled
    expect(p.onTimeout(1000)).toBe("failed");
    expect(p.isValidating).toBe(false);
    expect(p.nextTimeout()).toBe(Number.POSITIVE_INFINITY);
  });

  it("a probe of a validated path does not change it, and its failure is no failure", () => {
    const p = new NetworkPath(A, true);
    p.startValidation(0, 100, 1000, true);
    const d = new Uint8Array(8).fill(9);
    p.onChallengeSent(d, 0);
    expect(p.onResponse(d)).toBe("probed");
    p.startValidation(0, 100, 1000, true);
    expect(p.onTimeout(1000)).toBe("abandoned");
    expect(p.validated).toBe(true);
  });

  it("queues at most 4 PATH_RESPONSEs (a challenge flood stays bounded)", () => {
    const p = new NetworkPath(A, true);
    for (let i = 0; i < 100; i++) p.queueResponse(new Uint8Array(8).fill(i));
    expect(p.responses.length).toBe(4);
    expect(p.hasProbeToSend).toBe(true);
  });
});
