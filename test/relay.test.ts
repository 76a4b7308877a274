import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  amplificationReport,
  type CaptureRecord,
  packetKinds,
  parseDuration,
  parseRate,
  parseRelayArgs,
  type Relay,
  type RelayOptions,
  startRelay,
} from "../interop/relay.ts";

interface Received {
  data: Buffer;
  address: string;
  port: number;
  at: number;
}

interface Peer {
  sock: dgram.Socket;
  port: number;
  received: Received[];
  close(): Promise<void>;
}

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

/** A UDP socket on 127.0.0.1 that records what it receives and, with echo, sends it back. */
async function peer(echo = false): Promise<Peer> {
  const sock = dgram.createSocket("udp4");
  const received: Received[] = [];
  sock.on("message", (data, rinfo) => {
    received.push({ data, address: rinfo.address, port: rinfo.port, at: performance.now() });
    if (echo) sock.send(data, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", () => resolve()));
  try {
    sock.setRecvBufferSize(4 << 20);
  } catch {
    // capped by the system; the tests pace their sends anyway
  }
  const p: Peer = {
    sock,
    port: sock.address().port,
    received,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
  open.push(p);
  return p;
}

async function relayTo(server: Peer, options: Omit<RelayOptions, "server"> = {}): Promise<Relay> {
  const relay = await startRelay({ server: { host: "127.0.0.1", port: server.port }, ...options });
  open.push(relay);
  return relay;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(5);
  }
  return true;
}

/** Datagram i: a 4-byte big-endian index, then filler up to size bytes. */
function numbered(i: number, size = 64): Buffer {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

/** Sends n numbered datagrams in small paced batches, so no socket buffer overflows on the way. */
async function sendMany(from: Peer, port: number, n: number, size = 64): Promise<void> {
  for (let i = 1; i <= n; i++) {
    from.sock.send(numbered(i, size), port, "127.0.0.1");
    if (i % 25 === 0) await sleep(2);
  }
}

/** Sends one datagram and waits for the next datagram to arrive at `from` (or gives up). */
async function ping(from: Peer, port: number, data: Buffer, timeoutMs = 2000): Promise<Received | undefined> {
  const before = from.received.length;
  const t0 = performance.now();
  from.sock.send(data, port, "127.0.0.1");
  const ok = await waitFor(() => from.received.length > before, timeoutMs);
  if (!ok) return undefined;
  const r = from.received[before];
  return { ...r, at: r.at - t0 };
}

const indices = (rs: Received[]) => rs.map((r) => r.data.readUInt32BE(0));
const fates = (log: CaptureRecord[], dir: CaptureRecord["dir"]) =>
  log.filter((r) => r.dir === dir).map((r) => r.fate);

describe("relay: pass-through", () => {
  it("forwards both ways unchanged, from its own upstream port", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server);
    for (let i = 1; i <= 50; i++) {
      const sent = numbered(i, 100 + i);
      const reply = await ping(client, relay.port, sent);
      expect(reply?.data.equals(sent)).toBe(true);
      expect(reply?.port).toBe(relay.port);
    }
    expect(server.received).toHaveLength(50);
    expect(new Set(server.received.map((r) => r.port)).size).toBe(1);
    expect(server.received[0].port).not.toBe(client.port);
    expect(server.received[0].port).not.toBe(relay.port);
    expect(relay.stats.toServer).toMatchObject({ received: 50, forwarded: 50, corrupted: 0 });
    expect(relay.stats.toClient).toMatchObject({ received: 50, forwarded: 50, corrupted: 0 });
    expect(relay.stats.log).toHaveLength(100);
    expect(relay.stats.log.every((r) => r.fate === "forwarded")).toBe(true);
    expect(relay.stats.flows).toBe(1);
  });

  it("keeps one upstream socket per client address", async () => {
    const server = await peer(true);
    const a = await peer();
    const b = await peer();
    const relay = await relayTo(server);
    expect(await ping(a, relay.port, numbered(1))).toBeDefined();
    expect(await ping(b, relay.port, numbered(2))).toBeDefined();
    expect(await ping(a, relay.port, numbered(3))).toBeDefined();
    expect(a.received.map((r) => r.data.readUInt32BE(0))).toEqual([1, 3]);
    expect(b.received.map((r) => r.data.readUInt32BE(0))).toEqual([2]);
    const ports = server.received.map((r) => r.port);
    expect(ports[0]).toBe(ports[2]);
    expect(ports[1]).not.toBe(ports[0]);
    expect(relay.stats.flows).toBe(2);
  });
});

describe("relay: drops", () => {
  async function randomDropRun(seed: number) {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server, { seed, toServer: { drop: 0.2 }, toClient: { drop: 0.1 } });
    await sendMany(client, relay.port, 2000);
    expect(await waitFor(() => relay.stats.toServer.received === 2000)).toBe(true);
    const forwarded = relay.stats.toServer.forwarded;
    expect(await waitFor(() => client.received.length === relay.stats.toClient.forwarded)).toBe(true);
    await sleep(50);
    return { relay, server, client, forwarded };
  }

  it("drops about the given fraction, and the same seed gives the same pattern", async () => {
    const a = await randomDropRun(7);
    const droppedA = a.relay.stats.toServer.dropped.random;
    expect(droppedA / 2000).toBeGreaterThan(0.16);
    expect(droppedA / 2000).toBeLessThan(0.24);
    expect(a.server.received).toHaveLength(a.forwarded);
    expect(a.forwarded + droppedA).toBe(2000);
    // The server got exactly the datagrams the relay did not drop.
    const keptA = a.relay.stats.log
      .filter((r) => r.dir === "toServer" && r.fate === "forwarded")
      .map((r) => r.index);
    expect(indices(a.server.received).sort((x, y) => x - y)).toEqual(keptA);
    // The reverse direction applies its own rate to what the server echoed.
    const back = a.relay.stats.toClient;
    expect(back.received).toBe(a.forwarded);
    expect(back.dropped.random / back.received).toBeGreaterThan(0.06);
    expect(back.dropped.random / back.received).toBeLessThan(0.14);
    expect(a.client.received).toHaveLength(back.forwarded);

    const b = await randomDropRun(7);
    expect(fates(b.relay.stats.log, "toServer")).toEqual(fates(a.relay.stats.log, "toServer"));
    expect(indices(b.server.received)).toEqual(indices(a.server.received));

    const c = await randomDropRun(8);
    expect(fates(c.relay.stats.log, "toServer")).not.toEqual(fates(a.relay.stats.log, "toServer"));
  }, 60_000);

  it("caps random drops in a row at the burst limit", async () => {
    const server = await peer();
    const client = await peer();
    const relay = await relayTo(server, { seed: 3, toServer: { drop: 0.8, dropBurst: 2 } });
    await sendMany(client, relay.port, 600);
    expect(await waitFor(() => relay.stats.toServer.received === 600)).toBe(true);
    let run = 0;
    let longest = 0;
    let runsOfTwo = 0;
    for (const f of fates(relay.stats.log, "toServer")) {
      if (f === "random") {
        run++;
        longest = Math.max(longest, run);
        if (run === 2) runsOfTwo++;
      } else run = 0;
    }
    expect(longest).toBe(2);
    expect(runsOfTwo).toBeGreaterThan(10);
    // With at most 2 drops in every 3 datagrams, the rate stays at or below 2/3.
    expect(relay.stats.toServer.dropped.random).toBeLessThanOrEqual(400);
    expect(relay.stats.toServer.dropped.random).toBeGreaterThan(300);
  });

  it("drops scripted indices per direction (dropList with ranges, dropFirst)", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server, {
      toServer: { dropList: [2, [3, 6], 7] }, // the runner's amplificationlimit: 2,3,4,5,6,7
      toClient: { dropFirst: 2 },
    });
    for (let i = 1; i <= 12; i++) {
      client.sock.send(numbered(i), relay.port, "127.0.0.1");
      await sleep(3);
    }
    expect(await waitFor(() => server.received.length === 6 && client.received.length === 4)).toBe(true);
    await sleep(100);
    expect(indices(server.received)).toEqual([1, 8, 9, 10, 11, 12]);
    // The server's first two echoes (of 1 and 8) are the first two datagrams towards the client.
    expect(indices(client.received)).toEqual([9, 10, 11, 12]);
    expect(relay.stats.toServer.dropped.scripted).toBe(6);
    expect(relay.stats.toClient.dropped.scripted).toBe(2);
  });

  it("drops datagrams larger than the link's mtu, both ways", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server, { mtu: 1472 });
    client.sock.send(numbered(1, 1472), relay.port, "127.0.0.1");
    client.sock.send(numbered(2, 1473), relay.port, "127.0.0.1");
    client.sock.send(numbered(3, 9000), relay.port, "127.0.0.1");
    client.sock.send(numbered(4, 100), relay.port, "127.0.0.1");
    expect(await waitFor(() => server.received.length === 2 && client.received.length === 2)).toBe(true);
    await sleep(100);
    expect(indices(server.received)).toEqual([1, 4]);
    expect(relay.stats.toServer.dropped.mtu).toBe(2);
  });

  it("drops by predicate", async () => {
    const server = await peer();
    const client = await peer();
    const relay = await relayTo(server, { toServer: { dropWhen: ({ data }) => data[4] === 0xee } });
    for (let i = 1; i <= 10; i++) {
      const d = numbered(i);
      if (i % 3 === 0) d[4] = 0xee;
      client.sock.send(d, relay.port, "127.0.0.1");
    }
    expect(await waitFor(() => relay.stats.toServer.received === 10 && server.received.length === 7)).toBe(
      true,
    );
    expect(indices(server.received)).toEqual([1, 2, 4, 5, 7, 8, 10]);
  });
});

describe("relay: blackhole", () => {
  it("drops everything inside the windows and nothing outside", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server, {
      toServer: { blackhole: { onMs: 200, offMs: 150, repeat: 2 } }, // drop [200,350) and [550,700)
      toClient: { blackholeWindows: [[750, 850]] },
    });
    const inServerWindow = (t: number) => (t >= 200 && t < 350) || (t >= 550 && t < 700);
    const inClientWindow = (t: number) => t >= 750 && t < 850;
    let i = 0;
    while (relay.elapsed() < 1000) {
      client.sock.send(numbered(++i), relay.port, "127.0.0.1");
      await sleep(5);
    }
    await sleep(100);
    const log = relay.stats.log;
    const toServer = log.filter((r) => r.dir === "toServer");
    const toClient = log.filter((r) => r.dir === "toClient");
    for (const r of toServer) expect(r.fate).toBe(inServerWindow(r.t) ? "blackhole" : "forwarded");
    for (const r of toClient) expect(r.fate).toBe(inClientWindow(r.t) ? "blackhole" : "forwarded");
    // Not vacuous: both fates occur in each direction.
    expect(toServer.filter((r) => r.fate === "blackhole").length).toBeGreaterThan(5);
    expect(toServer.filter((r) => r.fate === "forwarded").length).toBeGreaterThan(5);
    expect(toClient.filter((r) => r.fate === "blackhole").length).toBeGreaterThan(3);
    // What the endpoints saw agrees with the relay's log.
    expect(server.received).toHaveLength(relay.stats.toServer.forwarded);
    expect(client.received).toHaveLength(relay.stats.toClient.forwarded);
    const blackholed = new Set(toServer.filter((r) => r.fate === "blackhole").map((r) => r.index));
    expect(indices(server.received).some((x) => blackholed.has(x))).toBe(false);
  });

  it("can start its clock at the first datagram", async () => {
    const server = await peer();
    const client = await peer();
    const relay = await relayTo(server, {
      clock: "first-datagram",
      toServer: { blackholeWindows: [[0, 150]] },
    });
    await sleep(250); // longer than the window: with clock "start" nothing would be dropped
    expect(relay.elapsed()).toBe(0);
    client.sock.send(numbered(1), relay.port, "127.0.0.1");
    await waitFor(() => relay.stats.toServer.received === 1);
    await sleep(250);
    client.sock.send(numbered(2), relay.port, "127.0.0.1");
    expect(await waitFor(() => server.received.length === 1)).toBe(true);
    expect(indices(server.received)).toEqual([2]);
    expect(relay.stats.toServer.dropped.blackhole).toBe(1);
  });
});

describe("relay: corruption", () => {
  it("replaces one byte among the first 51, keeps the length, spares Version Negotiation", async () => {
    const server = await peer();
    const client = await peer();
    const relay = await relayTo(server, { seed: 5, toServer: { corrupt: 1 } });
    const sent: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const d = Buffer.from(Array.from({ length: i % 10 === 0 ? 20 : 300 }, (_, k) => (k * 7 + i) & 0xff));
      sent.push(d);
      client.sock.send(d, relay.port, "127.0.0.1");
      expect(await waitFor(() => server.received.length === i + 1)).toBe(true);
    }
    const positions = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const got = server.received[i].data;
      expect(got.length).toBe(sent[i].length);
      const diff = [...got.keys()].filter((k) => got[k] !== sent[i][k]);
      expect(diff).toHaveLength(1);
      expect(diff[0]).toBeLessThan(Math.min(51, sent[i].length));
      positions.add(diff[0]);
    }
    expect(positions.size).toBeGreaterThan(10); // spread over the span, not one fixed byte
    expect(relay.stats.toServer.corrupted).toBe(100);
    expect(relay.stats.log.every((r) => r.corrupted)).toBe(true);

    // A Version Negotiation packet (long header, version 0) goes through untouched.
    const vn = Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    client.sock.send(vn, relay.port, "127.0.0.1");
    expect(await waitFor(() => server.received.length === 101)).toBe(true);
    expect(server.received[100].data.equals(vn)).toBe(true);
    expect(relay.stats.toServer.corrupted).toBe(100);
  });

  it("corrupts about the given fraction, reproducibly", async () => {
    const run = async (seed: number) => {
      const server = await peer();
      const client = await peer();
      const relay = await relayTo(server, { seed, toClient: { corrupt: 0.3 }, toServer: {} });
      // Traffic towards the client: once the client's first datagram made the flow, the server
      // sends to the relay's upstream address for it.
      client.sock.send(numbered(0), relay.port, "127.0.0.1");
      expect(await waitFor(() => server.received.length === 1)).toBe(true);
      const upstream = server.received[0];
      for (let i = 1; i <= 1000; i++) {
        server.sock.send(numbered(i, 120), upstream.port, upstream.address);
        if (i % 25 === 0) await sleep(2);
      }
      expect(await waitFor(() => client.received.length === 1000)).toBe(true);
      const changed = client.received.filter((r, k) => !r.data.equals(numbered(k + 1, 120)));
      return { relay, client, changed: changed.length };
    };
    const a = await run(11);
    expect(a.changed).toBe(a.relay.stats.toClient.corrupted);
    expect(a.changed).toBeGreaterThan(250);
    expect(a.changed).toBeLessThan(350);
    expect(a.client.received.every((r) => r.data.length === 120)).toBe(true);
    const b = await run(11);
    expect(b.client.received.map((r) => r.data.toString("hex"))).toEqual(
      a.client.received.map((r) => r.data.toString("hex")),
    );
  }, 30_000);
});

describe("relay: delay, reordering and bandwidth", () => {
  it("adds at least the one-way delay in each direction", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server, { toServer: { delayMs: 150 }, toClient: { delayMs: 100 } });
    for (let i = 1; i <= 5; i++) {
      const reply = await ping(client, relay.port, numbered(i));
      expect(reply).toBeDefined();
      expect(reply!.at).toBeGreaterThanOrEqual(250);
      expect(reply!.at).toBeLessThan(10_000);
    }
    for (const r of relay.stats.log) {
      expect(r.deliveredAt).toBeDefined();
      expect(r.deliveredAt! - r.t).toBeGreaterThanOrEqual(r.dir === "toServer" ? 150 : 100);
    }
  });

  it("reorders with jitter and reorder, losing nothing", async () => {
    const server = await peer();
    const client = await peer();
    const relay = await relayTo(server, { seed: 2, toServer: { jitterMs: 5, reorder: 0.4, reorderMs: 40 } });
    for (let i = 1; i <= 60; i++) client.sock.send(numbered(i), relay.port, "127.0.0.1");
    expect(await waitFor(() => server.received.length === 60)).toBe(true);
    const got = indices(server.received);
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 60 }, (_, k) => k + 1));
    const inversions = got.filter((x, k) => k > 0 && x < got[k - 1]).length;
    expect(inversions).toBeGreaterThan(3);
  });

  it("spaces datagrams by the bandwidth limit", async () => {
    const server = await peer();
    const client = await peer();
    // 972 + 28 bytes of overhead = 1000 bytes at 100 kB/s: 10 ms per datagram.
    const relay = await relayTo(server, { toServer: { bandwidth: 100_000 } });
    const t0 = performance.now();
    for (let i = 1; i <= 20; i++) client.sock.send(numbered(i, 972), relay.port, "127.0.0.1");
    expect(await waitFor(() => server.received.length === 20)).toBe(true);
    expect(server.received[19].at - t0).toBeGreaterThanOrEqual(199);
    const log = relay.stats.log;
    for (let k = 0; k < 20; k++)
      expect(log[k].deliveredAt! - log[0].t).toBeGreaterThanOrEqual(10 * (k + 1) - 0.01);
    expect(indices(server.received)).toEqual(Array.from({ length: 20 }, (_, k) => k + 1));
  });

  it("tail-drops when the link queue is full", async () => {
    const server = await peer();
    const client = await peer();
    const relay = await relayTo(server, { toServer: { bandwidth: 100_000, queue: 5 } });
    for (let i = 1; i <= 30; i++) client.sock.send(numbered(i, 972), relay.port, "127.0.0.1");
    expect(await waitFor(() => relay.stats.toServer.received === 30)).toBe(true);
    await sleep(400);
    const s = relay.stats.toServer;
    expect(s.dropped.queue).toBeGreaterThanOrEqual(10);
    expect(server.received.length + s.dropped.queue).toBe(30);
    expect(server.received.length).toBeGreaterThanOrEqual(6); // 1 on the wire + 5 queued
    // Tail drop: the first six always get through.
    expect(indices(server.received).slice(0, 6)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe("relay: rebinding", () => {
  it("moves to a new source port at the rebind times; replies still reach the client", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server, { rebind: { firstMs: 250, everyMs: 250, count: 2 } });
    let answered = 0;
    let sent = 0;
    while (relay.elapsed() < 900) {
      const reply = await ping(client, relay.port, numbered(++sent), 300);
      if (reply) {
        answered++;
        expect(reply.port).toBe(relay.port);
      }
      await sleep(10);
    }
    // A reply racing a rebind lands on the retired port and is dropped, as the runner's NAT does.
    expect(answered).toBeGreaterThanOrEqual(sent - 2);
    const ports = server.received.map((r) => r.port);
    const distinct = ports.filter((p, k) => k === 0 || p !== ports[k - 1]);
    expect(distinct).toHaveLength(3); // one port, then a second, then a third: never back
    expect(new Set(distinct).size).toBe(3);
    expect(relay.stats.rebinds).toHaveLength(2);
    expect(relay.stats.rebinds[0].t).toBeGreaterThanOrEqual(250);
    expect(relay.stats.rebinds[1].t).toBeGreaterThanOrEqual(500);
    expect(relay.stats.rebinds.map((e) => e.to)).toEqual(distinct.slice(1).map((p) => `127.0.0.1:${p}`));
    const last = await ping(client, relay.port, numbered(9999));
    expect(last?.data.readUInt32BE(0)).toBe(9999);
  });

  it("drops server packets sent to a retired port", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server);
    expect(await ping(client, relay.port, numbered(1))).toBeDefined();
    const oldPort = server.received[0].port;
    await relay.rebind();
    expect(await ping(client, relay.port, numbered(2))).toBeDefined();
    expect(server.received[1].port).not.toBe(oldPort);
    server.sock.send(numbered(3), oldPort, "127.0.0.1");
    expect(await waitFor(() => relay.stats.toClient.dropped.stale === 1)).toBe(true);
    await sleep(50);
    expect(indices(client.received)).toEqual([1, 2]);
  });

  it("rebind-addr: the server sees 127.0.0.2 after a rebind, and replies still arrive", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server);
    expect(await ping(client, relay.port, numbered(1))).toBeDefined();
    await relay.rebind({ addr: "127.0.0.2" });
    const reply = await ping(client, relay.port, numbered(2));
    expect(reply?.data.readUInt32BE(0)).toBe(2);
    expect(server.received.map((r) => r.address)).toEqual(["127.0.0.1", "127.0.0.2"]);
    expect(relay.stats.rebinds[0].to).toMatch(/^127\.0\.0\.2:\d+$/);
  });

  it("rebind-addr on a schedule picks a random other loopback address", async () => {
    const server = await peer(true);
    const client = await peer();
    const relay = await relayTo(server, { seed: 9, rebind: { atMs: [150], addr: true } });
    expect(await ping(client, relay.port, numbered(1))).toBeDefined();
    expect(await waitFor(() => relay.stats.rebinds.length === 1)).toBe(true);
    expect(await ping(client, relay.port, numbered(2))).toBeDefined();
    const [before, after] = server.received.map((r) => r.address);
    expect(before).toBe("127.0.0.1");
    expect(after).toMatch(/^127\.0\.0\.\d+$/);
    expect(after).not.toBe("127.0.0.1");
  });
});

describe("relay: capture", () => {
  it("finds coalesced QUIC packets by their long headers", () => {
    const initial = [0xc3, 0, 0, 0, 1, 8, ...Array(8).fill(0xaa), 0, 0, 0x40, 16, ...Array(16).fill(1)];
    const handshake = [0xe1, 0, 0, 0, 1, 8, ...Array(8).fill(0xaa), 0, 5, ...Array(5).fill(2)];
    const short = [0x41, 0xaa, 3, 3, 3];
    expect(packetKinds(Uint8Array.from([...initial, ...handshake, ...short]))).toEqual([
      "initial",
      "handshake",
      "1rtt",
    ]);
    expect(packetKinds(Uint8Array.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]))).toEqual(["vn"]);
    // QUIC v2 renumbers the long header types: 0b11 is Handshake.
    expect(packetKinds(Uint8Array.from([0xf0, 0x6b, 0x33, 0x43, 0xcf, 0, 0, 1, 9]))).toEqual(["handshake"]);
  });

  it("checks the 3x amplification limit from the log", () => {
    const rec = (seq: number, dir: CaptureRecord["dir"], size: number, kinds: CaptureRecord["kinds"]) =>
      ({
        seq,
        dir,
        index: seq,
        flow: 1,
        t: seq,
        deliveredAt: seq,
        size,
        firstByte: 0xc0,
        kinds,
        fate: "forwarded",
        corrupted: false,
      }) satisfies CaptureRecord;
    const ok = [
      rec(1, "toServer", 1200, ["initial"]),
      rec(2, "toClient", 1200, ["initial", "handshake"]),
      rec(3, "toClient", 1200, ["handshake"]),
      rec(4, "toClient", 1200, ["handshake"]),
      rec(5, "toServer", 1200, ["initial", "handshake"]),
      rec(6, "toClient", 1200, ["1rtt"]),
    ];
    expect(amplificationReport(ok)).toMatchObject({
      clientBytes: 1200,
      serverBytes: 3600,
      exceeded: false,
      clientHandshakeSeen: true,
    });
    const bad = [...ok.slice(0, 4), rec(7, "toClient", 100, ["handshake"])];
    expect(amplificationReport(bad).exceeded).toBe(true);
  });

  it("bounds the capture log and reports each datagram to the hook", async () => {
    const server = await peer();
    const client = await peer();
    const seen: number[] = [];
    const relay = await relayTo(server, { captureLimit: 10, onDatagram: (r) => seen.push(r.index) });
    await sendMany(client, relay.port, 30, 40);
    expect(await waitFor(() => server.received.length === 30)).toBe(true);
    expect(relay.stats.log).toHaveLength(10);
    expect(seen).toEqual(Array.from({ length: 30 }, (_, k) => k + 1));
    expect(relay.stats.log[0]).toMatchObject({ dir: "toServer", index: 1, size: 40, firstByte: 0 });
  });
});

describe("relay: command line", () => {
  it("parses units and per-direction options", () => {
    expect(parseRate("10Mbps")).toBe(1_250_000);
    expect(parseRate("2MB/s")).toBe(2_000_000);
    expect(parseRate("125000")).toBe(125_000);
    expect(parseDuration("750ms")).toBe(750);
    expect(parseDuration("1.5s")).toBe(1500);
    const { options } = parseRelayArgs([
      "--server",
      "127.0.0.1:4433",
      "--drop",
      "5%",
      "--drop-to-client",
      "0.1",
      "--drop-list-to-server",
      "2,3-7",
      "--blackhole",
      "5s:2s",
      "--rebind-first",
      "1s",
      "--rebind-every",
      "5s",
      "--rebind-addr",
    ]);
    expect(options.server).toEqual({ host: "127.0.0.1", port: 4433 });
    expect(options.toServer).toMatchObject({ drop: 0.05, dropList: [2, [3, 7]] });
    expect(options.toServer?.blackhole).toEqual({ onMs: 5000, offMs: 2000, repeat: 1 });
    expect(options.toClient).toMatchObject({ drop: 0.1 });
    expect(options.toClient?.dropList).toBeUndefined();
    expect(options.rebind).toMatchObject({ firstMs: 1000, everyMs: 5000, addr: true });
    expect(() => parseRelayArgs(["--drop", "0.1"])).toThrow(/--server/);
    expect(() => parseRelayArgs(["--server", "127.0.0.1:1", "--drop", "150%"])).toThrow(/probability/);
  });

  it("runs as a CLI and prints its port", async () => {
    const server = await peer(true);
    const client = await peer();
    const script = fileURLToPath(new URL("../interop/relay.ts", import.meta.url));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", script, "--server", `127.0.0.1:${server.port}`, "--seed", "1", "--delay", "20"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      expect(await waitFor(() => /relay listening on 127\.0\.0\.1:(\d+)\n/.test(out), 20_000)).toBe(true);
      const port = Number(/relay listening on 127\.0\.0\.1:(\d+)/.exec(out)![1]);
      const reply = await ping(client, port, numbered(42));
      expect(reply?.data.readUInt32BE(0)).toBe(42);
      expect(reply!.at).toBeGreaterThanOrEqual(40);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(err).toContain("to server: 1 in");
  }, 30_000);
});
