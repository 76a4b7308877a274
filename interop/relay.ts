/**
 * A seeded UDP relay that impairs the path between a QUIC client and server, modelled on the QUIC
 * Interop Runner's network simulator (see /work/shared/specs/interop-runner-testcases.md §4).
 *
 * The client sends to the relay's port; the relay forwards each datagram to the server from an
 * "upstream" socket of its own (one per client address, like a NAT) and relays the server's replies
 * back to the client from the listening socket. Each direction has its own impairments:
 *
 * - drop: a probability with an optional burst cap (the runner's `drop-rate`), a scripted list of
 *   1-based datagram indices or ranges (`droplist`), "the first N", a predicate, and blackhole
 *   periods (`blackhole --on --off --repeat`) or explicit windows;
 * - corrupt: as the runner's `corrupt-rate`: one byte among the first 51 bytes of the UDP payload
 *   (positions 0..50) is replaced by a different random value; Version Negotiation packets are
 *   never corrupted; the length never changes;
 * - delay (one-way), jitter, reordering, and a bandwidth limit with a bounded tail-drop queue (the
 *   runner's point-to-point link: `--delay --bandwidth --queue`);
 * - rebind: at given times the relay moves each flow to a new upstream socket (new source port,
 *   optionally a new source address in 127.0.0.0/8), and drops server packets that still arrive on
 *   the old one, as the runner's `rebind` NAT does.
 *
 * Every random decision for datagram k of a direction comes from a PRNG seeded with
 * (seed, direction, k, purpose), so the same seed and the same datagram sequence give the same
 * drops and corruptions, whatever the timing. Time-based impairments (blackhole, queue overflow,
 * rebind times) depend on the clock and cannot be fully reproducible.
 *
 * Library: `const relay = await startRelay({ server: { host, port }, seed, toServer, toClient })`.
 * CLI:     `npx tsx interop/relay.ts --server 127.0.0.1:4433 --drop 0.05 --delay 10 ...`
 *          (prints "relay listening on 127.0.0.1:PORT"; --help lists the options).
 */
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { realpathSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

export type Direction = "toServer" | "toClient";

/** Why a datagram was not forwarded. */
export type DropReason =
  | "scripted" // dropFirst, dropList or dropWhen
  | "blackhole" // inside a blackhole period or window
  | "random" // the drop probability
  | "queue" // the bandwidth-limited link's queue was full
  | "overflow" // the delay line hit maxPending / maxPendingBytes
  | "stale" // a server packet to an upstream socket that a rebind retired
  | "mtu"; // larger than the link's mtu

export type PacketKind = "initial" | "0rtt" | "handshake" | "retry" | "vn" | "1rtt" | "unknown";

/** What the capture hook sees for each datagram reaching the relay. */
export interface CaptureRecord {
  /** Order of arrival at the relay, both directions together (from 1). */
  seq: number;
  dir: Direction;
  /** 1-based index among datagrams of this direction (the runner's droplist index); 0 for "stale". */
  index: number;
  /** Flow number (one per client address, from 1). */
  flow: number;
  /** Arrival time in ms since the relay's clock started. */
  t: number;
  /** When it was actually sent on (ms since the clock started); absent while pending or if dropped. */
  deliveredAt?: number;
  size: number;
  /** The payload's first byte (-1 for an empty datagram). */
  firstByte: number;
  /** QUIC packets found by walking the (unprotected) long headers of coalesced packets. */
  kinds: PacketKind[];
  fate: "forwarded" | DropReason;
  corrupted: boolean;
}

export interface DirectionImpairments {
  /** Probability (0..1) of dropping each datagram. */
  drop?: number;
  /** At most this many random drops in a row (the runner's --burst_*; default unlimited). */
  dropBurst?: number;
  /** Drop the first N datagrams of this direction. */
  dropFirst?: number;
  /** Drop these 1-based datagram indices; [from, to] is an inclusive range (the runner's droplist). */
  dropList?: ReadonlyArray<number | readonly [number, number]>;
  /** Drop when this returns true (index is 1-based, t in ms since the clock started). */
  dropWhen?: (d: { index: number; t: number; data: Uint8Array; kinds: PacketKind[] }) => boolean;
  /**
   * The runner's blackhole: pass for onMs, drop everything for offMs, `repeat` times (default 1,
   * Infinity allowed), then pass for good. Times are from the relay's clock start.
   */
  blackhole?: { onMs: number; offMs: number; repeat?: number };
  /** Drop everything in these [fromMs, toMs) windows of the relay's clock. */
  blackholeWindows?: ReadonlyArray<readonly [number, number]>;
  /** Probability (0..1) of corrupting each datagram (Version Negotiation packets never are). */
  corrupt?: number;
  /** At most this many corruptions in a row (default unlimited). */
  corruptBurst?: number;
  /** Corrupt within the first N bytes of the payload (default 51, as the runner: positions 0..50); Infinity for anywhere. */
  corruptSpan?: number;
  /** How many bytes to replace in a corrupted datagram (default 1, as the runner). */
  corruptBytes?: number;
  /** One-way delay in ms. */
  delayMs?: number;
  /** Extra uniform random delay in [0, jitterMs] ms per datagram (reorders when larger than the spacing). */
  jitterMs?: number;
  /** Probability (0..1) of holding a datagram back by reorderMs so that later ones overtake it. */
  reorder?: number;
  /** How long a reordered datagram is held back (default 20 ms). */
  reorderMs?: number;
  /** Link rate in bytes per second (payload + overheadBytes per datagram); unlimited by default. */
  bandwidth?: number;
  /** Datagrams that may wait for the link besides the one being sent (default 25, as the runner); tail drop. */
  queue?: number;
  /** Bytes charged per datagram on top of the UDP payload (default 28: IPv4 + UDP headers). */
  overheadBytes?: number;
}

export interface RebindOptions {
  /** First rebind, in ms of the relay's clock. */
  firstMs?: number;
  /** Then rebind every everyMs (needs firstMs). */
  everyMs?: number;
  /** Explicit rebind times (ms), in addition to firstMs/everyMs. */
  atMs?: readonly number[];
  /** Stop after this many scheduled rebinds. */
  count?: number;
  /**
   * Also change the source address: true picks a random 127.0.0.x (x in 2..254, never the current
   * one); a list is used in turn. IPv4 only.
   */
  addr?: boolean | readonly string[];
  /** Retired upstream sockets kept open (their packets are dropped as "stale"; default 4). */
  keepOld?: number;
}

export interface RelayOptions {
  server: { host: string; port: number };
  /** Where to listen for the client (default 127.0.0.1:0). */
  listen?: { host?: string; port?: number };
  /** Seed for every random decision (default 1). */
  seed?: number;
  toServer?: DirectionImpairments;
  toClient?: DirectionImpairments;
  rebind?: RebindOptions;
  /** Source address of the first upstream sockets (default 127.0.0.1, or ::1 for an IPv6 server). */
  upstreamHost?: string;
  /** "start" (default): times count from startRelay; "first-datagram": from the first datagram. */
  clock?: "start" | "first-datagram";
  /** Keep at most this many capture records (default 10000). */
  captureLimit?: number;
  /**
   * Called for every datagram once its fate is decided (deliveredAt is filled in later on the same
   * object), with its payload as forwarded (after corruption). Copy the payload to keep it.
   */
  onDatagram?: (record: CaptureRecord, payload: Uint8Array) => void;
  /** Called after each flow's rebind, once the new socket is bound. */
  onRebind?: (event: RebindEvent) => void;
  /** Most client flows (default 256; the least recently used is evicted). */
  maxFlows?: number;
  /** Most datagrams waiting in a direction's delay line (default 4096); more are dropped as "overflow". */
  maxPending?: number;
  /** Most bytes waiting in a direction's delay line (default 16 MiB). */
  maxPendingBytes?: number;
  /**
   * Largest UDP payload the link carries, both directions (default: no limit). Larger datagrams
   * are dropped as "mtu", as a router drops what exceeds its link MTU: the interop runner's
   * simulated links have a 1500-byte MTU (1472 bytes of UDP payload over IPv4, 1452 over IPv6),
   * while loopback carries 65,507 — without a limit, a stack's PMTU discovery would find sizes
   * no real path has.
   */
  mtu?: number;
}

export interface DirectionStats {
  received: number;
  receivedBytes: number;
  /** Counted when actually sent on. */
  forwarded: number;
  forwardedBytes: number;
  corrupted: number;
  dropped: Record<DropReason, number>;
}

export interface RebindEvent {
  t: number;
  flow: number;
  from: string;
  to: string;
}

export interface RelayStats {
  toServer: DirectionStats;
  toClient: DirectionStats;
  rebinds: RebindEvent[];
  /** Flows created so far. */
  flows: number;
  /** Socket errors (send or bind failures) seen. */
  errors: number;
  /** The first captureLimit datagrams, in arrival order. */
  log: CaptureRecord[];
}

export interface Relay {
  /** The port the client should send to. */
  readonly port: number;
  readonly host: string;
  readonly stats: RelayStats;
  /** ms since the relay's clock started (0 before it starts with clock "first-datagram"). */
  elapsed(): number;
  /** Rebinds every flow now (addr: true = random new address, a string = that address). */
  rebind(options?: { addr?: boolean | string }): Promise<void>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness

/** mulberry32: a small 32-bit PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes a 32-bit value into a hash (murmur3-style). */
function mix(h: number, x: number): number {
  h = Math.imul(h ^ (x >>> 0), 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  h = Math.imul(h, 0x1b873593);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const PURPOSE = { drop: 1, corrupt: 2, corruptWhere: 3, jitter: 4, reorder: 5, rebind: 6 } as const;

// ---------------------------------------------------------------------------------------------
// QUIC header peeking (no decryption: the packet type bits of long headers are not protected)

const V1 = 0x00000001;
const V2 = 0x6b3343cf;

function readVarint(b: Uint8Array, off: number): [value: number, next: number] | undefined {
  if (off >= b.length) return undefined;
  const len = 1 << (b[off] >> 6);
  if (off + len > b.length) return undefined;
  let v = b[off] & 0x3f;
  for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
  return [v, off + len];
}

/** The QUIC packets in a datagram, by walking coalesced long headers. */
export function packetKinds(b: Uint8Array): PacketKind[] {
  const kinds: PacketKind[] = [];
  let off = 0;
  while (off < b.length) {
    const first = b[off];
    if ((first & 0x80) === 0) {
      kinds.push((first & 0x40) !== 0 ? "1rtt" : "unknown");
      break;
    }
    if (off + 5 > b.length) {
      kinds.push("unknown");
      break;
    }
    const version = ((b[off + 1] << 24) | (b[off + 2] << 16) | (b[off + 3] << 8) | b[off + 4]) >>> 0;
    if (version === 0) {
      kinds.push("vn");
      break;
    }
    const type = (first >> 4) & 3;
    let kind: PacketKind;
    if (version === V1) kind = (["initial", "0rtt", "handshake", "retry"] as const)[type];
    else if (version === V2) kind = (["retry", "initial", "0rtt", "handshake"] as const)[type];
    else {
      kinds.push("unknown");
      break;
    }
    kinds.push(kind);
    if (kind === "retry") break;
    let p = off + 5;
    const dcidLen = b[p];
    if (dcidLen === undefined || dcidLen > 20) break;
    p += 1 + dcidLen;
    const scidLen = b[p];
    if (scidLen === undefined || scidLen > 20) break;
    p += 1 + scidLen;
    if (kind === "initial") {
      const token = readVarint(b, p);
      if (!token) break;
      p = token[1] + token[0];
    }
    const length = readVarint(b, p);
    if (!length) break;
    off = length[1] + length[0];
  }
  return kinds;
}

const isVersionNegotiation = (b: Uint8Array) =>
  b.length >= 5 && (b[0] & 0x80) !== 0 && b[1] === 0 && b[2] === 0 && b[3] === 0 && b[4] === 0;

// ---------------------------------------------------------------------------------------------
// Per-direction machinery

interface Pending {
  due: number;
  data: Buffer;
  send: (data: Buffer) => void;
}

/** Datagrams waiting to be sent, ordered by due time (ties keep arrival order), behind one timer. */
class DelayLine {
  /** Slots before `head` are already sent (undefined); the rest are sorted by due time. */
  private items: Array<Pending | undefined> = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;
  bytes = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  add(p: Pending): void {
    const items = this.items;
    if (this.size === 0 || items[items.length - 1]!.due <= p.due) items.push(p);
    else {
      let lo = this.head;
      let hi = items.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (items[mid]!.due <= p.due) lo = mid + 1;
        else hi = mid;
      }
      items.splice(lo, 0, p);
    }
    this.bytes += p.data.length;
    this.arm();
  }

  private arm(): void {
    if (this.size === 0) return;
    const due = this.items[this.head]!.due;
    if (this.timer && this.armedFor <= due) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = due;
    this.timer = setTimeout(() => this.run(), Math.max(1, Math.ceil(due - performance.now())));
  }

  private run(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = performance.now();
    // Never early: a timer may fire a fraction of a millisecond before the due time.
    while (this.size > 0 && this.items[this.head]!.due <= now) {
      const p = this.items[this.head]!;
      this.items[this.head++] = undefined;
      this.bytes -= p.data.length;
      p.send(p.data);
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.arm();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.items = [];
    this.head = 0;
    this.bytes = 0;
  }
}

interface DirState {
  dir: Direction;
  dirId: number;
  cfg: DirectionImpairments;
  dropList: Array<readonly [number, number]>;
  count: number;
  dropsInARow: number;
  corruptsInARow: number;
  linkFreeAt: number;
  /** Times at which datagrams on the link finish serialization (the link's queue, oldest first). */
  departures: number[];
  line: DelayLine;
  stats: DirectionStats;
}

function newDirStats(): DirectionStats {
  return {
    received: 0,
    receivedBytes: 0,
    forwarded: 0,
    forwardedBytes: 0,
    corrupted: 0,
    dropped: { scripted: 0, blackhole: 0, random: 0, queue: 0, overflow: 0, stale: 0, mtu: 0 },
  };
}

function inBlackhole(cfg: DirectionImpairments, t: number): boolean {
  const bh = cfg.blackhole;
  if (bh) {
    const u = t - bh.onMs;
    const period = bh.onMs + bh.offMs;
    if (u >= 0 && period > 0) {
      const k = Math.floor(u / period);
      if (k < (bh.repeat ?? 1) && u - k * period < bh.offMs) return true;
    }
  }
  for (const [from, to] of cfg.blackholeWindows ?? []) if (t >= from && t < to) return true;
  return false;
}

function validateImpairments(name: string, c: DirectionImpairments): void {
  const prob = (k: "drop" | "corrupt" | "reorder") => {
    const v = c[k];
    if (v !== undefined && !(v >= 0 && v <= 1)) throw new RangeError(`${name}.${k} must be in [0, 1]`);
  };
  prob("drop");
  prob("corrupt");
  prob("reorder");
  const nonNeg = (k: keyof DirectionImpairments) => {
    const v = c[k];
    if (v !== undefined && !(typeof v === "number" && v >= 0))
      throw new RangeError(`${name}.${k} must be >= 0`);
  };
  for (const k of [
    "dropBurst",
    "dropFirst",
    "corruptBurst",
    "delayMs",
    "jitterMs",
    "reorderMs",
    "queue",
  ] as const)
    nonNeg(k);
  if (c.bandwidth !== undefined && !(c.bandwidth > 0)) throw new RangeError(`${name}.bandwidth must be > 0`);
  if (c.corruptSpan !== undefined && !(c.corruptSpan >= 1))
    throw new RangeError(`${name}.corruptSpan must be >= 1`);
  if (c.corruptBytes !== undefined && !(c.corruptBytes >= 1))
    throw new RangeError(`${name}.corruptBytes must be >= 1`);
}

// ---------------------------------------------------------------------------------------------
// Sockets

function bindSocket(sock: dgram.Socket, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    sock.once("error", onError);
    sock.bind(port, host, () => {
      sock.off("error", onError);
      resolve();
    });
  });
}

function closeSocket(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // not running (never bound, or already closed)
    }
  });
}

const fmtAddr = (a: { address: string; port: number }) =>
  isIP(a.address) === 6 ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;

interface Flow {
  id: number;
  key: string;
  client: { address: string; port: number };
  upstream: dgram.Socket;
  retired: dgram.Socket[];
  lastSeen: number;
}

// ---------------------------------------------------------------------------------------------

export async function startRelay(options: RelayOptions): Promise<Relay> {
  const toServerCfg = options.toServer ?? {};
  const toClientCfg = options.toClient ?? {};
  validateImpairments("toServer", toServerCfg);
  validateImpairments("toClient", toClientCfg);
  const seed = mix(0x5eed, Math.trunc(options.seed ?? 1));
  const captureLimit = options.captureLimit ?? 10_000;
  const maxFlows = Math.max(1, options.maxFlows ?? 256);
  const maxPending = options.maxPending ?? 4096;
  const maxPendingBytes = options.maxPendingBytes ?? 16 << 20;
  const rebindCfg = options.rebind;
  const keepOld = rebindCfg?.keepOld ?? 4;

  const serverHost = isIP(options.server.host)
    ? options.server.host
    : (await lookup(options.server.host)).address;
  const serverPort = options.server.port;
  const serverV6 = isIP(serverHost) === 6;
  let upstreamHost = options.upstreamHost ?? (serverV6 ? "::1" : "127.0.0.1");
  if (rebindCfg?.addr && serverV6) throw new Error("rebind.addr needs an IPv4 server");

  const listenHost = options.listen?.host ?? "127.0.0.1";
  const listenSock = dgram.createSocket(isIP(listenHost) === 6 ? "udp6" : "udp4");
  await bindSocket(listenSock, options.listen?.port ?? 0, listenHost);

  const stats: RelayStats = {
    toServer: newDirStats(),
    toClient: newDirStats(),
    rebinds: [],
    flows: 0,
    errors: 0,
    log: [],
  };
  const makeDir = (dir: Direction, dirId: number, cfg: DirectionImpairments): DirState => ({
    dir,
    dirId,
    cfg,
    dropList: (cfg.dropList ?? []).map((e) => (typeof e === "number" ? ([e, e] as const) : e)),
    count: 0,
    dropsInARow: 0,
    corruptsInARow: 0,
    linkFreeAt: 0,
    departures: [],
    line: new DelayLine(),
    stats: dir === "toServer" ? stats.toServer : stats.toClient,
  });
  const dirs: Record<Direction, DirState> = {
    toServer: makeDir("toServer", 1, toServerCfg),
    toClient: makeDir("toClient", 2, toClientCfg),
  };

  let closed = false;
  let epoch: number | undefined;
  let seq = 0;
  let flowIds = 0;
  const flows = new Map<string, Flow>();
  const timers = new Set<NodeJS.Timeout>();
  const rebindRng = mulberry32(mix(seed, PURPOSE.rebind));
  let addrTurn = 0;

  const elapsed = () => (epoch === undefined ? 0 : performance.now() - epoch);

  const onSocketError = () => {
    stats.errors++;
  };
  listenSock.on("error", onSocketError);

  // --- rebinding -------------------------------------------------------------------------------

  const pickAddress = (want: boolean | string | readonly string[] | undefined): string => {
    if (typeof want === "string") return want;
    if (Array.isArray(want) && want.length > 0) {
      for (let i = 0; i < want.length; i++) {
        const a = want[addrTurn++ % want.length];
        if (a !== upstreamHost) return a;
      }
      return want[0];
    }
    if (want === true) {
      for (;;) {
        const a = `127.0.0.${2 + Math.floor(rebindRng() * 253)}`;
        if (a !== upstreamHost) return a;
      }
    }
    return upstreamHost;
  };

  const newUpstreamSocket = () => dgram.createSocket(serverV6 ? "udp6" : "udp4");

  /** Binds a flow's upstream socket to host:0 and relays what the server sends to it. */
  const watchUpstream = (flow: Flow, sock: dgram.Socket, host: string): Promise<void> => {
    sock.on("message", (msg, rinfo) => {
      if (rinfo.port !== serverPort || rinfo.address !== serverHost) return; // a NAT filters others
      onDatagram("toClient", flow, msg, sock !== flow.upstream);
    });
    sock.on("error", onSocketError);
    return bindSocket(sock, 0, host).catch(() => {
      stats.errors++;
    });
  };

  const rebindAll = async (addr: boolean | string | readonly string[] | undefined): Promise<void> => {
    if (closed) return;
    upstreamHost = pickAddress(addr);
    const t = elapsed();
    const waits: Promise<void>[] = [];
    for (const flow of flows.values()) {
      const old = flow.upstream;
      const fresh = newUpstreamSocket();
      flow.upstream = fresh;
      const ready = watchUpstream(flow, fresh, upstreamHost);
      flow.retired.push(old);
      while (flow.retired.length > keepOld) void closeSocket(flow.retired.shift()!);
      waits.push(
        ready.then(() => {
          let from = "?";
          let to = "?";
          try {
            from = fmtAddr(old.address());
            to = fmtAddr(fresh.address());
          } catch {
            // a socket already closed by close()
          }
          const event: RebindEvent = { t, flow: flow.id, from, to };
          if (stats.rebinds.length < captureLimit) stats.rebinds.push(event);
          options.onRebind?.(event);
        }),
      );
    }
    await Promise.all(waits);
  };

  const scheduleRebinds = () => {
    if (!rebindCfg) return;
    const times = [...(rebindCfg.atMs ?? [])].sort((a, b) => a - b);
    let nextAt = 0;
    let periodic = rebindCfg.firstMs;
    let done = 0;
    const next = (): number | undefined => {
      const explicit = nextAt < times.length ? times[nextAt] : undefined;
      if (explicit !== undefined && (periodic === undefined || explicit <= periodic)) {
        nextAt++;
        return explicit;
      }
      if (periodic === undefined) return undefined;
      const t = periodic;
      periodic = rebindCfg.everyMs && rebindCfg.everyMs > 0 ? periodic + rebindCfg.everyMs : undefined;
      return t;
    };
    const arm = () => {
      if (closed || (rebindCfg.count !== undefined && done >= rebindCfg.count)) return;
      const at = next();
      if (at === undefined) return;
      const wait = () => {
        const timer = setTimeout(
          () => {
            timers.delete(timer);
            if (closed) return;
            if (elapsed() < at) return wait(); // timers may fire a fraction of a ms early
            done++;
            void rebindAll(rebindCfg.addr).finally(arm);
          },
          Math.max(0, Math.ceil(at - elapsed())),
        );
        timers.add(timer);
      };
      wait();
    };
    arm();
  };

  const startClock = (now: number) => {
    epoch = now;
    scheduleRebinds();
  };

  // --- the datagram path ---------------------------------------------------------------------

  const getFlow = (address: string, port: number): Flow => {
    const key = `${address}|${port}`;
    let flow = flows.get(key);
    if (flow) return flow;
    if (flows.size >= maxFlows) {
      let oldest: Flow | undefined;
      for (const f of flows.values()) if (!oldest || f.lastSeen < oldest.lastSeen) oldest = f;
      if (oldest) {
        flows.delete(oldest.key);
        void closeSocket(oldest.upstream);
        for (const s of oldest.retired) void closeSocket(s);
      }
    }
    flow = {
      id: ++flowIds,
      key,
      client: { address, port },
      upstream: newUpstreamSocket(),
      retired: [],
      lastSeen: 0,
    };
    // Sends made while the socket is still binding are queued by node:dgram.
    void watchUpstream(flow, flow.upstream, upstreamHost);
    flows.set(key, flow);
    stats.flows++;
    return flow;
  };

  const deliver = (d: DirState, flow: Flow, record: CaptureRecord) => (data: Buffer) => {
    if (closed) return;
    const done = (err: Error | null) => {
      if (err) stats.errors++;
    };
    d.stats.forwarded++;
    d.stats.forwardedBytes += data.length;
    record.deliveredAt = elapsed();
    try {
      // A socket still binding queues the send until it is bound.
      if (d.dir === "toServer") flow.upstream.send(data, serverPort, serverHost, done);
      else listenSock.send(data, flow.client.port, flow.client.address, done);
    } catch {
      stats.errors++; // the socket was closed meanwhile (flow evicted)
    }
  };

  function onDatagram(dir: Direction, flow: Flow, data: Buffer, stale: boolean): void {
    if (closed) return;
    const now = performance.now();
    if (epoch === undefined) startClock(now);
    const t = now - (epoch ?? now);
    const d = dirs[dir];
    const cfg = d.cfg;
    flow.lastSeen = now;
    d.stats.received++;
    d.stats.receivedBytes += data.length;
    const index = stale ? 0 : ++d.count;
    const record: CaptureRecord = {
      seq: ++seq,
      dir,
      index,
      flow: flow.id,
      t,
      size: data.length,
      firstByte: data.length > 0 ? data[0] : -1,
      kinds: packetKinds(data),
      fate: "forwarded",
      corrupted: false,
    };
    if (stats.log.length < captureLimit) stats.log.push(record);
    const finish = (fate: CaptureRecord["fate"]) => {
      record.fate = fate;
      if (fate !== "forwarded") d.stats.dropped[fate]++;
      options.onDatagram?.(record, data);
    };
    if (stale) {
      finish("stale");
      return;
    }

    // Random models run for every datagram, so their decisions depend only on (seed, dir, index).
    const base = mix(mix(seed, d.dirId), index);
    const rng = (purpose: number) => mulberry32(mix(base, purpose));
    let randomDrop = false;
    if (cfg.drop) {
      const r = rng(PURPOSE.drop)();
      if (d.dropsInARow >= (cfg.dropBurst ?? Number.POSITIVE_INFINITY)) d.dropsInARow = 0;
      else if (r < cfg.drop) {
        d.dropsInARow++;
        randomDrop = true;
      } else d.dropsInARow = 0;
    }
    let corrupt = false;
    if (cfg.corrupt) {
      const r = rng(PURPOSE.corrupt)();
      if (isVersionNegotiation(data) || data.length === 0) d.corruptsInARow = 0;
      else if (d.corruptsInARow >= (cfg.corruptBurst ?? Number.POSITIVE_INFINITY)) d.corruptsInARow = 0;
      else if (r < cfg.corrupt) {
        d.corruptsInARow++;
        corrupt = true;
      } else d.corruptsInARow = 0;
    }

    if (
      index <= (cfg.dropFirst ?? 0) ||
      d.dropList.some(([a, b]) => index >= a && index <= b) ||
      cfg.dropWhen?.({ index, t, data, kinds: record.kinds })
    ) {
      finish("scripted");
      return;
    }
    if (options.mtu !== undefined && data.length > options.mtu) {
      finish("mtu");
      return;
    }
    if (inBlackhole(cfg, t)) {
      finish("blackhole");
      return;
    }
    if (randomDrop) {
      finish("random");
      return;
    }

    let sendAt = now;
    if (cfg.bandwidth) {
      while (d.departures.length > 0 && d.departures[0] <= now) d.departures.shift();
      if (d.departures.length >= (cfg.queue ?? 25) + 1) {
        finish("queue");
        return;
      }
      const start = Math.max(now, d.linkFreeAt);
      sendAt = start + ((data.length + (cfg.overheadBytes ?? 28)) / cfg.bandwidth) * 1000;
      d.linkFreeAt = sendAt;
      d.departures.push(sendAt);
    }
    let due = sendAt + (cfg.delayMs ?? 0);
    if (cfg.jitterMs) due += rng(PURPOSE.jitter)() * cfg.jitterMs;
    if (cfg.reorder && rng(PURPOSE.reorder)() < cfg.reorder) due += cfg.reorderMs ?? 20;

    if (due > now && (d.line.size >= maxPending || d.line.bytes + data.length > maxPendingBytes)) {
      if (cfg.bandwidth) {
        // Give the link time back: this datagram never uses it.
        d.departures.pop();
        d.linkFreeAt = d.departures.length > 0 ? d.departures[d.departures.length - 1] : now;
      }
      finish("overflow");
      return;
    }

    if (corrupt) {
      const where = rng(PURPOSE.corruptWhere);
      const span = Math.min(cfg.corruptSpan ?? 51, data.length);
      const n = Math.min(cfg.corruptBytes ?? 1, span);
      const used = new Set<number>();
      while (used.size < n) used.add(Math.floor(where() * span));
      for (const pos of used) {
        const old = data[pos];
        // A different value: old + 1..255 (mod 256).
        data[pos] = (old + 1 + Math.floor(where() * 255)) & 0xff;
      }
      record.corrupted = true;
      d.stats.corrupted++;
    }
    finish("forwarded");
    const send = deliver(d, flow, record);
    if (due <= now) send(data);
    else d.line.add({ due, data, send });
  }

  listenSock.on("message", (msg, rinfo) => {
    if (closed) return;
    onDatagram("toServer", getFlow(rinfo.address, rinfo.port), msg, false);
  });

  if ((options.clock ?? "start") === "start") startClock(performance.now());

  const address = listenSock.address();
  return {
    port: address.port,
    host: address.address,
    stats,
    elapsed,
    rebind: (o) => rebindAll(o?.addr ?? false),
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      dirs.toServer.line.clear();
      dirs.toClient.line.clear();
      const socks: dgram.Socket[] = [listenSock];
      for (const f of flows.values()) socks.push(f.upstream, ...f.retired);
      flows.clear();
      await Promise.all(socks.map(closeSocket));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Amplification check (as the runner's amplificationlimit test, from the relay's point of view)

export interface AmplificationReport {
  /** UDP payload bytes of client datagrams that reached the server before its first Handshake packet. */
  clientBytes: number;
  /** UDP payload bytes the server sent before that point. */
  serverBytes: number;
  /** Largest serverBytes / clientBytes seen at any server datagram (Infinity if the server spoke first). */
  maxRatio: number;
  /** Whether a server datagram ever took the total above 3 × the client bytes received. */
  exceeded: boolean;
  /** Whether a client Handshake packet reached the server (the check ends there). */
  clientHandshakeSeen: boolean;
}

/**
 * Replays the capture log as the server saw it (client datagrams at delivery, server datagrams at
 * arrival at the relay) and checks the 3× anti-amplification limit until the first client
 * Handshake packet. Pass a flow number to look at one client only.
 */
export function amplificationReport(log: readonly CaptureRecord[], flow?: number): AmplificationReport {
  const events = log
    .filter((r) => flow === undefined || r.flow === flow)
    .filter((r) => (r.dir === "toServer" ? r.deliveredAt !== undefined : true))
    .map((r) => ({ r, at: r.dir === "toServer" ? (r.deliveredAt ?? r.t) : r.t }))
    .sort((a, b) => a.at - b.at || a.r.seq - b.r.seq);
  const report: AmplificationReport = {
    clientBytes: 0,
    serverBytes: 0,
    maxRatio: 0,
    exceeded: false,
    clientHandshakeSeen: false,
  };
  for (const { r } of events) {
    if (r.dir === "toServer") {
      if (r.kinds.includes("handshake")) {
        report.clientHandshakeSeen = true;
        break;
      }
      report.clientBytes += r.size;
    } else {
      report.serverBytes += r.size;
      const ratio =
        report.clientBytes === 0 ? Number.POSITIVE_INFINITY : report.serverBytes / report.clientBytes;
      report.maxRatio = Math.max(report.maxRatio, ratio);
      if (report.serverBytes > 3 * report.clientBytes) report.exceeded = true;
    }
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// Command line

const HELP = `Usage: npx tsx interop/relay.ts --server HOST:PORT [options]

A seeded UDP relay with impairments between a QUIC client and server. Prints
"relay listening on HOST:PORT"; send the client there. On SIGINT/SIGTERM prints stats.

Options:
  --server HOST:PORT    the server (required)
  --listen HOST:PORT    where to listen (default 127.0.0.1:0)
  --seed N              PRNG seed (default 1)
  --clock start|first   times count from the start (default) or from the first datagram
  --stats-every DUR     print stats to stderr periodically
  --log FILE            write the capture log (JSON lines) on exit
  -q, --quiet           only the listening line
  -h, --help            show this help

Impairments (both directions; add -to-server or -to-client to set one direction only,
e.g. --drop-to-server 0.3; a direction-specific value wins):
  --drop P              drop probability (0.05 or 5%)
  --drop-burst N        at most N random drops in a row
  --drop-first N        drop the first N datagrams
  --drop-list LIST      drop these 1-based datagram indices, e.g. 2,3,4-7
  --blackhole ON:OFF[:REPEAT]  pass ON, drop all for OFF, REPEAT times (default 1; "inf")
  --blackhole-window FROM-TO[,FROM-TO]  drop all inside these windows
  --corrupt P           corrupt probability (one byte among the first 51 replaced)
  --corrupt-burst N     at most N corruptions in a row
  --corrupt-span N|all  corrupt within the first N bytes (default 51)
  --corrupt-bytes N     bytes replaced per corrupted datagram (default 1)
  --delay DUR           one-way delay
  --jitter DUR          extra uniform random delay in [0, DUR]
  --reorder P           probability of holding a datagram back by --reorder-delay
  --reorder-delay DUR   default 20ms
  --bandwidth RATE      bytes/s, or with a unit: 10Mbps, 500kbps, 2MB/s
  --queue N             link queue in datagrams (default 25)

Rebinding (NAT rebinding of the client's traffic towards the server):
  --rebind-first DUR    first rebind
  --rebind-every DUR    then every DUR
  --rebind-at LIST      explicit times, e.g. 1s,3s
  --rebind-addr         also change the source address (random 127.0.0.x)
  --rebind-addrs LIST   ... using these addresses in turn

DUR is ms, or with a unit: 750ms, 5s. Probabilities may be given as 0.05 or 5%.
`;

const DIRECTION_OPTIONS = [
  "drop",
  "drop-burst",
  "drop-first",
  "drop-list",
  "blackhole",
  "blackhole-window",
  "corrupt",
  "corrupt-burst",
  "corrupt-span",
  "corrupt-bytes",
  "delay",
  "jitter",
  "reorder",
  "reorder-delay",
  "bandwidth",
  "queue",
] as const;

export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(s.trim());
  if (!m) throw new Error(`bad duration "${s}"`);
  return Number(m[1]) * (m[2] === "s" ? 1000 : 1);
}

export function parseProbability(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(%)?$/.exec(s.trim());
  if (!m) throw new Error(`bad probability "${s}"`);
  const p = Number(m[1]) / (m[2] ? 100 : 1);
  if (p > 1) throw new Error(`probability above 1: "${s}"`);
  return p;
}

/** Bytes per second from "125000", "10Mbps", "500kbps", "2MB/s", "64KB/s" (k/M/G are powers of 1000). */
export function parseRate(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([kKmMgG]?)(bps|bit\/s|B\/s|Bps))?$/.exec(s.trim());
  if (!m) throw new Error(`bad rate "${s}"`);
  const mult = { "": 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 }[m[2] ?? ""] ?? 1;
  const bits = m[3] === "bps" || m[3] === "bit/s";
  return (Number(m[1]) * mult) / (bits ? 8 : 1);
}

function parseIndexList(s: string): Array<number | [number, number]> {
  return s
    .split(",")
    .filter(Boolean)
    .map((part) => {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
      if (!m) throw new Error(`bad index list "${s}"`);
      return m[2] ? ([Number(m[1]), Number(m[2])] as [number, number]) : Number(m[1]);
    });
}

function parseHostPortArg(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
  if (!m || Number(m[3]) > 65535) throw new Error(`expected HOST:PORT, got "${s}"`);
  return { host: m[1] ?? (m[2] || "127.0.0.1"), port: Number(m[3]) };
}

function parseInt10(s: string): number {
  if (!/^\d+$/.test(s.trim())) throw new Error(`expected a whole number, got "${s}"`);
  return Number(s);
}

function impairmentsFrom(get: (name: string) => string | undefined): DirectionImpairments {
  const c: DirectionImpairments = {};
  const v = (name: string, f: (s: string) => void) => {
    const s = get(name);
    if (s !== undefined) f(s);
  };
  v("drop", (s) => (c.drop = parseProbability(s)));
  v("drop-burst", (s) => (c.dropBurst = parseInt10(s)));
  v("drop-first", (s) => (c.dropFirst = parseInt10(s)));
  v("drop-list", (s) => (c.dropList = parseIndexList(s)));
  v("blackhole", (s) => {
    const [on, off, repeat] = s.split(":");
    if (on === undefined || off === undefined)
      throw new Error(`--blackhole wants ON:OFF[:REPEAT], got "${s}"`);
    c.blackhole = {
      onMs: parseDuration(on),
      offMs: parseDuration(off),
      repeat: repeat === undefined ? 1 : repeat === "inf" ? Number.POSITIVE_INFINITY : parseInt10(repeat),
    };
  });
  v("blackhole-window", (s) => {
    c.blackholeWindows = s
      .split(",")
      .filter(Boolean)
      .map((w) => {
        const [from, to] = w.split("-");
        if (from === undefined || to === undefined) throw new Error(`bad blackhole window "${w}"`);
        return [parseDuration(from), parseDuration(to)] as const;
      });
  });
  v("corrupt", (s) => (c.corrupt = parseProbability(s)));
  v("corrupt-burst", (s) => (c.corruptBurst = parseInt10(s)));
  v("corrupt-span", (s) => (c.corruptSpan = s === "all" ? Number.POSITIVE_INFINITY : parseInt10(s)));
  v("corrupt-bytes", (s) => (c.corruptBytes = parseInt10(s)));
  v("delay", (s) => (c.delayMs = parseDuration(s)));
  v("jitter", (s) => (c.jitterMs = parseDuration(s)));
  v("reorder", (s) => (c.reorder = parseProbability(s)));
  v("reorder-delay", (s) => (c.reorderMs = parseDuration(s)));
  v("bandwidth", (s) => (c.bandwidth = parseRate(s)));
  v("queue", (s) => (c.queue = parseInt10(s)));
  return c;
}

/** Parses the CLI arguments into relay options (exported for tests). */
export function parseRelayArgs(args: string[]): {
  options: RelayOptions;
  statsEveryMs?: number;
  logFile?: string;
  quiet: boolean;
  help: boolean;
} {
  const optionSpec: Record<string, { type: "string" | "boolean"; short?: string }> = {
    server: { type: "string" },
    listen: { type: "string" },
    seed: { type: "string" },
    clock: { type: "string" },
    "stats-every": { type: "string" },
    log: { type: "string" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
    "rebind-first": { type: "string" },
    "rebind-every": { type: "string" },
    "rebind-at": { type: "string" },
    "rebind-addr": { type: "boolean" },
    "rebind-addrs": { type: "string" },
  };
  for (const name of DIRECTION_OPTIONS) {
    optionSpec[name] = { type: "string" };
    optionSpec[`${name}-to-server`] = { type: "string" };
    optionSpec[`${name}-to-client`] = { type: "string" };
  }
  const { values } = parseArgs({ args, options: optionSpec, strict: true });
  const str = (k: string): string | undefined => {
    const x = values[k];
    return typeof x === "string" ? x : undefined;
  };
  const help = values.help === true;
  const quiet = values.quiet === true;
  if (help) return { options: { server: { host: "", port: 0 } }, quiet, help };
  const server = str("server");
  if (!server) throw new Error("--server HOST:PORT is required");
  const listen = parseHostPortArg(str("listen") ?? "127.0.0.1:0");
  const clock = str("clock") ?? "start";
  if (clock !== "start" && clock !== "first") throw new Error(`--clock wants start or first, got "${clock}"`);
  const options: RelayOptions = {
    server: parseHostPortArg(server),
    listen,
    seed: str("seed") === undefined ? 1 : parseInt10(str("seed")!),
    clock: clock === "first" ? "first-datagram" : "start",
    toServer: impairmentsFrom((n) => str(`${n}-to-server`) ?? str(n)),
    toClient: impairmentsFrom((n) => str(`${n}-to-client`) ?? str(n)),
  };
  const first = str("rebind-first");
  const at = str("rebind-at");
  if (first !== undefined || at !== undefined) {
    const every = str("rebind-every");
    const addrs = str("rebind-addrs");
    options.rebind = {
      firstMs: first === undefined ? undefined : parseDuration(first),
      everyMs: every === undefined ? undefined : parseDuration(every),
      atMs: at === undefined ? undefined : at.split(",").filter(Boolean).map(parseDuration),
      addr: addrs ? addrs.split(",").filter(Boolean) : values["rebind-addr"] === true,
    };
  } else if (
    str("rebind-every") !== undefined ||
    values["rebind-addr"] ||
    str("rebind-addrs") !== undefined
  ) {
    throw new Error("--rebind-every/--rebind-addr need --rebind-first or --rebind-at");
  }
  const statsEvery = str("stats-every");
  return {
    options,
    statsEveryMs: statsEvery === undefined ? undefined : parseDuration(statsEvery),
    logFile: str("log"),
    quiet,
    help,
  };
}

function summary(stats: RelayStats): string {
  const dir = (name: string, s: DirectionStats) => {
    const dropped = Object.entries(s.dropped)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(", ");
    return `${name}: ${s.received} in (${s.receivedBytes} B), ${s.forwarded} out (${s.forwardedBytes} B), corrupted ${s.corrupted}, dropped ${dropped || "0"}`;
  };
  return [
    dir("to server", stats.toServer),
    dir("to client", stats.toClient),
    `flows ${stats.flows}, rebinds ${stats.rebinds.length}, socket errors ${stats.errors}`,
  ].join("\n");
}

async function cli(args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseRelayArgs>;
  try {
    parsed = parseRelayArgs(args);
  } catch (err) {
    process.stderr.write(`relay: ${(err as Error).message} (see --help)\n`);
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const relay = await startRelay({
    ...parsed.options,
    onRebind: parsed.quiet
      ? undefined
      : (e) =>
          process.stderr.write(`${(e.t / 1000).toFixed(3)}s: flow ${e.flow} rebound ${e.from} -> ${e.to}\n`),
  });
  const shown = isIP(relay.host) === 6 ? `[${relay.host}]` : relay.host;
  process.stdout.write(`relay listening on ${shown}:${relay.port}\n`);
  const ticker =
    parsed.statsEveryMs && parsed.statsEveryMs > 0
      ? setInterval(() => process.stderr.write(`${summary(relay.stats)}\n`), parsed.statsEveryMs)
      : undefined;
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  if (ticker) clearInterval(ticker);
  await relay.close();
  if (!parsed.quiet) process.stderr.write(`${summary(relay.stats)}\n`);
  if (parsed.logFile) {
    writeFileSync(parsed.logFile, `${relay.stats.log.map((r) => JSON.stringify(r)).join("\n")}\n`);
  }
  return 0;
}

const invokedDirectly = (() => {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
})();
if (invokedDirectly) process.exitCode = await cli(process.argv.slice(2));
