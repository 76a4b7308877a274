/**
 * NEW_TOKEN tokens follow the client's address (RFC 9000 §8.1.3, §9): a server whose client
 * migrated to another IP address, once that address is validated, sends a fresh token bound to
 * it — the one the client will use next. Over the simulated network, with the tokens of a real
 * {@link ServerAddressValidation}.
 */
import { describe, expect, it } from "vitest";
import { ServerAddressValidation } from "./address-validation.ts";
import { Connection, type PathAddress } from "./connection/connection.ts";
import { type Addressing, clientConfig, runPair, serverConfig, T0 } from "./connection/test-harness.ts";

const SERVER: PathAddress = { address: "192.0.2.1", port: 443 };
const OLD: PathAddress = { address: "198.51.100.7", port: 5000 };
const DCID = new Uint8Array(8).fill(1);

/**
 * The client uploads 200 kB; `move` runs once the handshake is confirmed on both sides and some
 * data arrived, to change the client's address. Returns the NEW_TOKEN tokens the client got, in
 * order, and the virtual time at the end.
 */
function migrateWithTokens(
  v: ServerAddressValidation,
  move: (client: Connection, now: number) => PathAddress,
): { tokens: Uint8Array[]; issuedFor: string[]; end: number; server: Connection } {
  let where: PathAddress = OLD;
  const addressing: Addressing = { client: () => where, server: [SERVER] };
  const issuedFor: string[] = [];
  const sc = serverConfig({
    newToken: (now, remote) => {
      issuedFor.push(remote?.address ?? "?");
      return v.newToken(remote?.address ?? "?", now);
    },
  });
  const client = Connection.connect(clientConfig(), T0);
  const tokens: Uint8Array[] = [];
  const ref: { server?: Connection } = {};
  const size = 200_000;
  const data = new Uint8Array(size);
  let id: number | undefined;
  let written = 0;
  let received = 0;
  let fin = false;
  let moved = false;
  const end = runPair(
    client,
    sc,
    (server, now) => {
      for (let e = client.pollEvent(); e; e = client.pollEvent())
        if (e.type === "new-token") tokens.push(e.token);
      if (id === undefined && client.isHandshakeConfirmed) id = client.openStream(true);
      if (id !== undefined) {
        while (written < size && client.bufferedAmount(id) < 64 * 1024) {
          const n = Math.min(16 * 1024, size - written);
          client.write(id, data.subarray(written, written + n), written + n === size);
          written += n;
        }
        for (let r = server?.read(id); r; r = fin ? null : server?.read(id)) {
          received += r.data.length;
          if (r.fin) fin = true;
        }
      }
      if (!moved && received > 50_000) {
        moved = true;
        where = move(client, now);
      }
      // Done once the data is in and the server has no NEW_TOKEN left to deliver.
      return fin && tokens.length === issuedFor.length;
    },
    { delay: 10, addressing },
    T0,
    30_000,
    undefined,
    ref,
  );
  expect(moved).toBe(true);
  expect(fin).toBe(true);
  return { tokens, issuedFor, end, server: ref.server! };
}

describe("NEW_TOKEN after migration (RFC 9000 §8.1.3, §9)", () => {
  it("after a client migration the client holds a token that validates from the new address only", () => {
    const v = new ServerAddressValidation();
    const NEW: PathAddress = { address: "203.0.113.50", port: 7000 };
    const r = migrateWithTokens(v, (client, now) => {
      client.migrate(now);
      return NEW;
    });
    expect(r.server.remoteAddress).toEqual(NEW);
    // One token after the handshake (old address), one once the new address was validated.
    expect(r.issuedFor).toEqual([OLD.address, NEW.address]);
    expect(r.tokens).toHaveLength(2);
    const [first, latest] = r.tokens;
    // The first token does not validate a connection from the new address …
    expect(v.tokens.validate(first, NEW, DCID, r.end)).toEqual({ kind: "invalid", claimed: "new-token" });
    // … the latest does (once: §8.1.4), and not from the old one.
    expect(v.tokens.validate(latest, OLD, DCID, r.end)).toEqual({ kind: "invalid", claimed: "new-token" });
    expect(v.tokens.validate(latest, { address: NEW.address, port: 7777 }, DCID, r.end)).toEqual({
      kind: "new-token",
    });
    // The first is still good for the old address.
    expect(v.tokens.validate(first, OLD, DCID, r.end)).toEqual({ kind: "new-token" });
  });

  it("a NAT rebinding to another IP address gets a token for it too", () => {
    const v = new ServerAddressValidation();
    const NAT: PathAddress = { address: "198.51.100.99", port: 40000 };
    const r = migrateWithTokens(v, () => NAT); // the client does not know: no migrate()
    expect(r.server.remoteAddress).toEqual(NAT);
    expect(r.issuedFor).toEqual([OLD.address, NAT.address]);
    expect(v.tokens.validate(r.tokens[1], NAT, DCID, r.end)).toEqual({ kind: "new-token" });
  });

  it("a port-only rebinding keeps the token valid: no second one", () => {
    const v = new ServerAddressValidation();
    const PORT: PathAddress = { address: OLD.address, port: 5001 };
    const r = migrateWithTokens(v, () => PORT);
    expect(r.server.remoteAddress).toEqual(PORT);
    expect(r.issuedFor).toEqual([OLD.address]);
    expect(r.tokens).toHaveLength(1);
    expect(v.tokens.validate(r.tokens[0], PORT, DCID, r.end)).toEqual({ kind: "new-token" });
  });
});
