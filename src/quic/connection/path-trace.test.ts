/**
 * qlog of paths and packet size over the simulated network: a client migration, the server's
 * preferred address (found and not found) and PMTU searches produce the events of
 * draft-ietf-quic-qlog-quic-events — tuple_assigned (§4.7), migration_state_updated (§5.20) and
 * mtu_updated (§4.8) — written by the real QlogWriter and read back as JSON.
 */
import { describe, expect, it } from "vitest";
import { type QlogVantage, QlogWriter } from "../qlog.ts";
import { Connection, type PathAddress } from "./connection.ts";
import { type Addressing, clientConfig, type Link, runPair, serverConfig, T0 } from "./test-harness.ts";

const SERVER: PathAddress = { address: "192.0.2.1", port: 443 };
const PREFERRED: PathAddress = { address: "192.0.2.2", port: 8443 };

interface Rec {
  name: string;
  data: Record<string, unknown>;
}

/** A QlogWriter into memory; `events(prefix)` parses what it wrote. */
function trace(side: QlogVantage) {
  const chunks: string[] = [];
  const writer = new QlogWriter({ side, odcid: new Uint8Array(8), write: (c) => chunks.push(c) });
  const events = (...names: string[]): Rec[] =>
    chunks
      .join("")
      .split("\x1e")
      .slice(2) // "" before the first RS, then the header
      .map((r) => JSON.parse(r) as Rec)
      .filter((e) => names.includes(e.name));
  return { writer, events };
}

const PATH_EVENTS = ["quic:tuple_assigned", "quic:migration_state_updated"];

/**
 * The client uploads `size` bytes while `step` runs after each simulator step; then the pair
 * keeps running idle until `settleMs` of virtual time passed (path and PMTU timers).
 */
function run(
  size: number,
  link: Link,
  step: (client: Connection, server: Connection | undefined, now: number) => void,
  over: { client?: Parameters<typeof clientConfig>[0]; server?: Parameters<typeof serverConfig>[0] } = {},
  settleMs = 0,
) {
  const ct = trace("client");
  const st = trace("server");
  const client = Connection.connect(clientConfig({ ...over.client, qlog: ct.writer }), T0);
  const sc = serverConfig({ ...over.server, qlog: st.writer });
  const ref: { server?: Connection } = {};
  const data = new Uint8Array(size).fill(7);
  let id: number | undefined;
  let written = 0;
  let received = 0;
  let fin = false;
  let end = runPair(
    client,
    sc,
    (server, now) => {
      if (client.isClosed || server?.isClosed) return true;
      if (id === undefined && client.isHandshakeConfirmed) id = client.openStream(true);
      if (id !== undefined) {
        while (written < size && client.bufferedAmount(id) < 128 * 1024) {
          const n = Math.min(16 * 1024, size - written);
          client.write(id, data.subarray(written, written + n), written + n === size);
          written += n;
        }
        for (let r = server?.read(id); r; r = fin ? null : server?.read(id)) {
          received += r.data.length;
          if (r.fin) fin = true;
        }
      }
      step(client, server, now);
      return fin;
    },
    { delay: 10, ...link },
    T0,
    60_000,
    undefined,
    ref,
  );
  expect(received).toBe(size);
  if (settleMs > 0)
    end = runPair(client, sc, () => false, { delay: 10, ...link }, end, settleMs, undefined, ref);
  return { client, server: ref.server!, sc, end, clientTrace: ct, serverTrace: st };
}

describe("qlog of paths (tuple_assigned, migration_state_updated)", () => {
  it("a client migration: a new tuple on both sides, started then complete", () => {
    let clientAddr: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => clientAddr, server: [SERVER] };
    let migrated = false;
    const r = run(300_000, { addressing }, (client, server, now) => {
      if (!migrated && server && client.isHandshakeConfirmed && server.isHandshakeConfirmed) {
        migrated = true;
        clientAddr = { address: "203.0.113.50", port: 7000 };
        client.migrate(now);
      }
    });
    expect(migrated).toBe(true);
    const c = r.clientTrace.events(...PATH_EVENTS);
    // The handshake tuple "" learns the server's address; the migration abandons it for tuple "1"
    // (a new local address), which carries the fresh connection ID of the server (RFC 9000 §9.5).
    expect(c[0]).toMatchObject({
      name: "quic:tuple_assigned",
      data: { tuple_id: "", tuple_remote: { ip_v4: "192.0.2.1", port_v4: 443 } },
    });
    const cidOf = (e: Rec) => (e.data.tuple_remote as { connection_ids: string[] }).connection_ids[0];
    const dcidBefore = cidOf(c[0]);
    const dcidAfter = cidOf(c[2]);
    expect(dcidAfter).not.toBe(dcidBefore);
    const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
    expect(r.server.localConnectionIds.map(hex)).toContain(dcidAfter);
    expect(c.slice(1).map((e) => e.data)).toEqual([
      { tuple_id: "" },
      {
        tuple_id: "1",
        tuple_remote: { ip_v4: "192.0.2.1", port_v4: 443, connection_ids: [dcidAfter] },
      },
      { new: "migration_started", tuple_id: "1", tuple_remote: { ip_v4: "192.0.2.1", port_v4: 443 } },
      {
        old: "migration_started",
        new: "migration_complete",
        tuple_id: "1",
        tuple_remote: { ip_v4: "192.0.2.1", port_v4: 443 },
      },
    ]);
    // The server saw a new client address: probed, followed, validated; the old tuple is kept.
    const s = r.serverTrace.events(...PATH_EVENTS);
    expect(s[0].data).toMatchObject({ tuple_id: "", tuple_remote: { ip_v4: "198.51.100.7", port_v4: 5000 } });
    const states = s.filter((e) => e.name === "quic:migration_state_updated").map((e) => e.data);
    const at = { tuple_id: "1", tuple_remote: { ip_v4: "203.0.113.50", port_v4: 7000 } };
    expect(states).toEqual([
      { new: "probing_started", ...at },
      { old: "probing_started", new: "migration_started", ...at },
      { old: "migration_started", new: "migration_complete", ...at },
    ]);
    const tuples = s.filter((e) => e.name === "quic:tuple_assigned").map((e) => e.data);
    expect(tuples[1]).toMatchObject({
      ...at,
      tuple_remote: { ...at.tuple_remote, connection_ids: [expect.any(String)] },
    });
    expect(tuples.some((t) => t.tuple_id === "" && t.tuple_remote === undefined)).toBe(false);
  });

  it("an apparent migration to an address that never answers: abandoned, back to the old tuple", () => {
    const client: PathAddress = { address: "198.51.100.7", port: 5000 };
    const addressing: Addressing = { client: () => client, server: [SERVER] };
    const r = run(20_000, { addressing }, () => {});
    // A copy of a client packet forwarded from another address (RFC 9000 §9.3.2), then silence.
    r.client.sendDatagram(new Uint8Array(40));
    const now = r.end + 1;
    const copy = r.client.pollTransmit(now);
    expect(copy).toBeTruthy();
    r.server.receive(copy!.slice(), now + 1, { address: "203.0.113.66", port: 4444 });
    runPair(
      r.client,
      r.sc,
      () => false,
      { delay: 10, addressing, drop: () => true },
      now + 2,
      10_000,
      undefined,
      {
        server: r.server,
      },
    );
    expect(r.server.remoteAddress).toEqual(client);
    const s = r.serverTrace.events(...PATH_EVENTS).filter((e) => e.data.tuple_id === "1");
    const fake = { ip_v4: "203.0.113.66", port_v4: 4444 };
    expect(s.map((e) => e.data)).toEqual([
      { tuple_id: "1", tuple_remote: { ...fake, connection_ids: [expect.any(String)] } },
      { new: "probing_started", tuple_id: "1", tuple_remote: fake },
      { old: "probing_started", new: "migration_started", tuple_id: "1", tuple_remote: fake },
      { old: "migration_started", new: "migration_abandoned", tuple_id: "1", tuple_remote: fake },
      { tuple_id: "1" },
    ]);
  });

  it("the server's preferred address: probing started, successful, then the migration", () => {
    const addressing: Addressing = {
      client: () => ({ address: "198.51.100.7", port: 5000 }),
      server: [SERVER, PREFERRED],
    };
    const r = run(100_000, { addressing }, () => {}, {
      server: { preferredAddress: { ipv4: { address: PREFERRED.address, port: PREFERRED.port } } },
    });
    expect(r.client.remoteAddress).toEqual(PREFERRED);
    const states = r.clientTrace
      .events("quic:migration_state_updated")
      .map((e) => [e.data.tuple_id, e.data.new, (e.data.tuple_remote as { port_v4: number }).port_v4]);
    expect(states).toEqual([
      ["1", "probing_started", 8443],
      ["1", "probing_successful", 8443],
      ["1", "migration_started", 8443],
      ["1", "migration_complete", 8443],
    ]);
  });

  it("a preferred address that never answers: probing abandoned and the tuple with it", () => {
    const addressing: Addressing = {
      client: () => ({ address: "198.51.100.7", port: 5000 }),
      server: [SERVER],
    };
    const r = run(
      50_000,
      { addressing },
      () => {},
      { server: { preferredAddress: { ipv4: { address: PREFERRED.address, port: PREFERRED.port } } } },
      10_000,
    );
    expect(r.client.remoteAddress).toEqual(SERVER);
    const c = r.clientTrace.events(...PATH_EVENTS).filter((e) => e.data.tuple_id === "1");
    expect(c.map((e) => [e.name, e.data.new ?? (e.data.tuple_remote ? "assigned" : "abandoned")])).toEqual([
      ["quic:tuple_assigned", "assigned"],
      ["quic:migration_state_updated", "probing_started"],
      ["quic:migration_state_updated", "probing_abandoned"],
      ["quic:tuple_assigned", "abandoned"],
    ]);
    expect(c[3].data).toEqual({ tuple_id: "1" });
  });
});

describe("qlog of PMTU discovery (mtu_updated)", () => {
  it("one probe to the upper bound: 1200 → 1452, done", () => {
    const r = run(200_000, {}, () => {});
    expect(r.client.pathMtu).toBe(1452);
    expect(r.clientTrace.events("quic:mtu_updated").map((e) => e.data)).toEqual([
      { old: 1200, new: 1452, done: true },
    ]);
  });

  it("a 1300-byte path: steps up, then a search that ends below the lost sizes is reported done", () => {
    const drop = (_to: string, d: Uint8Array) => d.length > 1300;
    const r = run(300_000, { drop }, () => {}, {}, 20_000);
    const mtu = r.clientTrace.events("quic:mtu_updated").map((e) => e.data);
    expect(mtu.length).toBeGreaterThan(0);
    // Every growth is logged with its old size, sizes only grow, none above what the path carries.
    let size = 1200;
    for (const m of mtu.slice(0, -1)) {
      expect(m).toEqual({ old: size, new: expect.any(Number) });
      expect(m.new as number).toBeGreaterThan(size);
      size = m.new as number;
    }
    const last = mtu[mtu.length - 1];
    expect(last.done).toBe(true);
    expect(last.new).toBe(r.client.pathMtu);
    expect(r.client.pathMtu).toBeLessThanOrEqual(1300);
    expect(r.client.pathMtu).toBeGreaterThan(1280);
  });
});
