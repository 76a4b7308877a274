import { describe, expect, it } from "vitest";
import { handshakePair, runPair } from "./test-harness.ts";

describe("idle timeout while probing a silent peer (RFC 9000 §10.1)", () => {
  it("PTO probes do not push the idle deadline: only the first ack-eliciting send after a receipt does", () => {
    const { client, sc, t, ref } = handshakePair(
      { transport: { maxIdleTimeout: 2000 } },
      { transport: { maxIdleTimeout: 2000 } },
    );
    expect(client.isHandshakeConfirmed).toBe(true);
    // From now on the server hears nothing and says nothing; the client keeps probing.
    const id = client.openStream(true)!;
    client.write(id, new Uint8Array(100), true);
    const end = runPair(client, sc, () => client.isClosed, { drop: () => true }, t, 60_000, undefined, ref);
    expect(client.isClosed).toBe(true);
    expect(client.reason).toEqual({ kind: "idle-timeout" });
    // The deadline is 2 s (at least 3 PTOs, a few tens of ms here) after the last packet received
    // or the first probe after it; probes every 2^n PTOs would otherwise keep renewing it.
    expect(end - t).toBeGreaterThanOrEqual(2000);
    expect(end - t).toBeLessThan(2100);
  });
});
