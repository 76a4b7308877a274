/**
 * Test helpers: a client and a server Connection wired back to back in memory, with virtual time
 * and an optional lossy link. Used by the connection and simulator tests.
 */
import { PacketType, splitCoalescedPackets } from "../packet-header.ts";
import { generateDevCertificate } from "../tls/dev-certificate.ts";
import type {
  ClientConnectionConfig,
  ConnectionEvent,
  PathAddress,
  ServerConnectionConfig,
} from "./connection.ts";
import { Connection } from "./connection.ts";

export const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const cert = generateDevCertificate({ now: new Date(T0) });

export function clientConfig(over: Partial<ClientConnectionConfig> = {}): ClientConnectionConfig {
  return {
    tls: { serverName: "localhost", alpnProtocols: ["hq-interop"], roots: [cert.certificatePem] },
    ...over,
  };
}

export function serverConfig(over: Partial<ServerConnectionConfig> = {}): ServerConnectionConfig {
  return {
    tls: {
      credentials: { chainDer: [cert.certificateDer], privateKey: cert.privateKey },
      alpnProtocols: ["hq-interop"],
    },
    ...over,
  };
}

/** Builds the server Connection for the client's first datagram, as an endpoint would. */
export function acceptFirst(datagram: Uint8Array, config: ServerConnectionConfig, now: number): Connection {
  const [h] = splitCoalescedPackets(datagram, { localCidLength: 8 });
  if (!h || h.type !== PacketType.Initial) throw new Error("first datagram is not an Initial");
  return Connection.accept(config, { version: h.version, dcid: h.dcid.slice(), scid: h.scid.slice() }, now);
}

export interface Link {
  /** Fraction of datagrams dropped (deterministic PRNG). */
  loss?: number;
  /** One-way delay in ms. */
  delay?: number;
  seed?: number;
  /** Bottleneck rate in bytes/ms (0 = unlimited). */
  rate?: number;
  /** Fraction of datagrams with one byte flipped. */
  corrupt?: number;
  /** Fraction of datagrams delivered twice. */
  duplicate?: number;
  /** Extra random delay up to this many ms (reorders datagrams). */
  jitter?: number;
  /** Drop a datagram when this returns true (`n` counts datagrams in that direction). */
  drop?: (to: "client" | "server", data: Uint8Array, n: number) => boolean;
  /** Model addresses: the connections learn where datagrams come from and say where they go. */
  addressing?: Addressing;
}

/**
 * Addresses for path validation and migration tests (RFC 9000 §9). Datagrams carry the sender's
 * address at the time they were sent; the server's datagrams reach the client only when they are
 * sent to its address of the moment (a NAT drops what goes to a binding it retired), the client's
 * reach the server only at one of its addresses.
 */
export interface Addressing {
  /** The client's current address; it may change between calls (NAT rebinding, migration). */
  client: () => PathAddress;
  /** The server's addresses, by local socket index: [0] is where the client connects. */
  server: readonly PathAddress[];
  /** Datagrams that reached no one (sent to a stale or unknown address), by direction. */
  misdelivered?: { client: number; server: number };
}

/** A deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface InFlight {
  at: number;
  to: "client" | "server";
  data: Uint8Array;
  /** With addressing: the sender's address (the server's carries its socket as `local`). */
  from?: PathAddress;
  /** With addressing, to the client: the address the server sent to (a stale one loses it). */
  dest?: PathAddress;
}

/**
 * Runs client and server until `done()` or the virtual deadline. Datagrams travel with `delay`
 * and are dropped with probability `loss`. Returns the virtual time reached.
 */
export function runPair(
  client: Connection,
  serverConfig: ServerConnectionConfig,
  done: (server: Connection | undefined, now: number) => boolean,
  link: Link = {},
  start = T0,
  limitMs = 60_000,
  onServer?: (server: Connection) => void,
  serverRef: {
    server?: Connection;
    linkStats?: { sent: number; dropped: number; corrupted: number; duplicated: number };
  } = {},
): number {
  const rnd = prng(link.seed ?? 1);
  const delay = link.delay ?? 5;
  const queue: InFlight[] = [];
  let now = start;
  let linkFreeAt = start;
  const stats = { sent: 0, dropped: 0, corrupted: 0, duplicated: 0 };
  const counts = { client: 0, server: 0 };
  const addressing = link.addressing;
  if (addressing && !addressing.misdelivered) addressing.misdelivered = { client: 0, server: 0 };
  /** Where a datagram from `sender` is going, and from which address (undefined: nowhere). */
  const route = (sender: Connection, to: "client" | "server"): PathAddress | undefined => {
    if (!addressing) return undefined;
    const dest = sender.transmitAddress;
    if (to === "server") {
      const target = dest ?? addressing.server[0];
      const local = addressing.server.findIndex(
        (a) => a.address === target.address && a.port === target.port,
      );
      if (local < 0) return undefined;
      const c = addressing.client();
      return local === 0 ? { address: c.address, port: c.port } : { address: c.address, port: c.port, local };
    }
    const s = addressing.server[dest?.local ?? 0];
    return s ? { address: s.address, port: s.port } : undefined;
  };
  const send = (to: "client" | "server", data: Uint8Array, sender?: Connection) => {
    let from: PathAddress | undefined;
    let dest: PathAddress | undefined;
    if (addressing && sender) {
      from = route(sender, to);
      if (!from) {
        addressing.misdelivered![to]++;
        return;
      }
      // The client's address is checked on arrival: a binding retired meanwhile loses it.
      if (to === "client") dest = sender.transmitAddress;
    }
    stats.sent++;
    if (link.drop?.(to, data, counts[to]++)) {
      stats.dropped++;
      return;
    }
    if (link.loss && rnd() < link.loss) {
      stats.dropped++;
      return;
    }
    let at = now + delay + (link.jitter ? rnd() * link.jitter : 0);
    if (link.rate) {
      linkFreeAt = Math.max(linkFreeAt, now) + data.length / link.rate;
      at = linkFreeAt + delay;
    }
    if (link.corrupt && rnd() < link.corrupt) {
      data = data.slice();
      data[Math.floor(rnd() * data.length)] ^= 1 + Math.floor(rnd() * 255);
      stats.corrupted++;
    }
    queue.push({ at, to, data, from, dest });
    if (link.duplicate && rnd() < link.duplicate) {
      queue.push({ at: at + 1, to, data: data.slice(), from, dest });
      stats.duplicated++;
    }
  };
  serverRef.linkStats = stats;
  let stuck = 0;
  for (let steps = 0; steps < 2_000_000; steps++) {
    // Flush everything both sides want to send now.
    for (let d = client.pollTransmit(now); d; d = client.pollTransmit(now)) send("server", d, client);
    const server = serverRef.server;
    if (server)
      for (let d = server.pollTransmit(now); d; d = server.pollTransmit(now)) send("client", d, server);
    if (done(serverRef.server, now)) return now;
    // Next event: a delivery or a timer.
    queue.sort((a, b) => a.at - b.at);
    let next = queue.length > 0 ? queue[0].at : Number.POSITIVE_INFINITY;
    const ct = client.nextTimeout();
    if (ct !== undefined) next = Math.min(next, ct);
    const st = serverRef.server?.nextTimeout();
    if (st !== undefined) next = Math.min(next, st);
    if (!Number.isFinite(next)) return now;
    if (next <= now) {
      // A timer due now that handleTimeout did not move is a livelock: fail loudly.
      if (++stuck > 1000) throw new Error(`timer livelock at t=${now - start} ms`);
    } else stuck = 0;
    now = Math.max(now, next);
    if (now - start > limitMs) return now;
    while (queue.length > 0 && queue[0].at <= now) {
      const item = queue.shift()!;
      if (item.to === "server") {
        if (!serverRef.server) {
          serverRef.server = acceptFirst(item.data, serverConfig, now);
          onServer?.(serverRef.server);
        }
        serverRef.server.receive(item.data.slice(), now, item.from);
      } else if (item.from && addressing) {
        const c = addressing.client();
        const dest = item.dest;
        if (dest && (dest.address !== c.address || dest.port !== c.port)) {
          addressing.misdelivered!.client++;
          continue;
        }
        client.receive(item.data.slice(), now, item.from);
      } else client.receive(item.data.slice(), now);
    }
    if ((client.nextTimeout() ?? Number.POSITIVE_INFINITY) <= now) client.handleTimeout(now);
    const s2 = serverRef.server;
    if (s2 && (s2.nextTimeout() ?? Number.POSITIVE_INFINITY) <= now) s2.handleTimeout(now);
  }
  return now;
}

/**
 * A client and a server run until both have confirmed the handshake (no impairments), for tests
 * that start from an established connection. `t` is the virtual time then; `sc` the server's
 * configuration and `ref` its holder, to keep running the pair with {@link runPair}.
 */
export function handshakePair(
  clientOver: Partial<ClientConnectionConfig> = {},
  serverOver: Partial<ServerConnectionConfig> = {},
): {
  client: Connection;
  server: Connection;
  sc: ServerConnectionConfig;
  t: number;
  ref: { server?: Connection };
} {
  const client = Connection.connect(clientConfig(clientOver), T0);
  const ref: { server?: Connection } = {};
  const sc = serverConfig(serverOver);
  const t = runPair(
    client,
    sc,
    (s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed,
    {},
    T0,
    10_000,
    undefined,
    ref,
  );
  if (!client.isHandshakeConfirmed || !ref.server) throw new Error("handshake did not complete");
  return { client, server: ref.server, sc, t, ref };
}

/** Every event a connection has queued. */
export function drainEvents(c: Connection): ConnectionEvent[] {
  const out: ConnectionEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}
