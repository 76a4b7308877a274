/**
 * The endpoint: one UDP socket (node:dgram) serving many connections, datagrams routed by
 * Destination Connection ID (the tokio-quiche / quinn model), one timer for all connections,
 * Version Negotiation and stateless resets for packets no connection owns. It drives the sans-IO
 * {@link Connection}s: feeds them datagrams and the time, sends what they produce, and hands their
 * events to the API layer.
 */
import { createHmac, randomBytes } from "node:crypto";
import dgram from "node:dgram";
import dns from "node:dns";
import { isIP } from "node:net";
import {
  type AddressValidationStats,
  buildInitialClose,
  type RetryPolicy,
  ServerAddressValidation,
} from "./address-validation.ts";
import type { TransportConfig } from "./connection/config.ts";
import type {
  ClientConnectionConfig,
  ConnectionEvent,
  PathAddress,
  ServerConnectionConfig,
} from "./connection/connection.ts";
import { Connection } from "./connection/connection.ts";
import { defaultCryptoProvider } from "./crypto/providers.ts";
import { QuicUsageError, TransportErrorCode } from "./errors.ts";
import { clientInitialDecrypts } from "./initial-authentication.ts";
import { encodeVersionNegotiation, PacketType, parsePacketHeader } from "./packet-header.ts";
import { isSupportedVersion, SUPPORTED_VERSIONS } from "./version.ts";

export interface SocketAddress {
  readonly address: string;
  readonly port: number;
  readonly family: "IPv4" | "IPv6";
}

/** What the endpoint tells the layer above about one connection. */
export interface ConnectionHandler {
  onEvent(event: ConnectionEvent): void;
  /** Called after every batch of events (a datagram or a timer), to wake writers and readers. */
  onProgress(): void;
}

export interface EndpointOptions {
  /** Local address to bind; default "0.0.0.0" (or "::" for udp6). */
  readonly host?: string;
  readonly port?: number;
  readonly ipv6?: boolean;
  /** Accept incoming connections with this config. */
  readonly server?: ServerConnectionConfig;
  /**
   * Incoming connections waiting for accept() before new ones are refused (CONNECTION_REFUSED,
   * RFC 9000 §5.2.2); default 1024.
   */
  readonly acceptQueueLength?: number;
  /**
   * (Server) Connections in their handshake at once (not yet confirmed) before new ones are
   * refused with CONNECTION_REFUSED (RFC 9000 §5.2.2), no state kept; default 1024. A Retry
   * policy (`retry: { whenLoadAbove }`) below it validates addresses first.
   */
  readonly maxHandshakes?: number;
  /** Datagrams sent per connection before yielding to the event loop; default 64. */
  readonly sendBurst?: number;
  /** Key for stateless reset tokens (RFC 9000 §10.3.2); default random per endpoint. */
  readonly statelessResetKey?: Uint8Array;
  /** Socket buffer sizes; default 8 MiB (large buffers avoid drops at high packet rates). */
  readonly socketBufferSize?: number;
  readonly keyLog?: (line: string) => void;
  /**
   * (Server) When to validate a client's address with a Retry before keeping any state for it
   * (RFC 9000 §8.1.2): "always", "never" (default), or `{ whenLoadAbove: n }` — while more than
   * n connections are in their handshake. A valid NEW_TOKEN token skips the Retry.
   */
  readonly retry?: RetryPolicy;
  /** (Server) 32-byte key sealing address validation tokens; default random per endpoint. */
  readonly addressTokenKey?: Uint8Array;
  /** (Server) Give each client a NEW_TOKEN token for its next connection (RFC 9000 §8.1.3); default true. */
  readonly sendNewTokens?: boolean;
  /**
   * (Server) A second address to listen on and advertise as preferred_address (RFC 9000 §9.6):
   * clients validate it after the handshake and move their connections there. `host` must be a
   * concrete IP address (not a wildcard); port 0 picks a free port.
   */
  readonly preferredAddress?: { readonly host: string; readonly port?: number };
}

export const CONNECTION_ID_LENGTH = 8;

interface Entry {
  readonly conn: Connection;
  readonly remote: SocketAddress;
  handler: ConnectionHandler | undefined;
  /** Connection IDs this entry is routed by (hex). */
  readonly cids: Set<string>;
  /** The peer's stateless reset tokens for this connection (hex). */
  readonly tokens: Set<string>;
  deadline: number;
  flushing: boolean;
  /** (Server) Counted in the endpoint's handshakes in progress (the Retry policy's load). */
  handshaking: boolean;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/**
 * The largest UDP payload a loopback path carries: Linux's `lo` has a 65536-byte MTU, so the
 * IP limits apply — 65535 − 20 − 8 for IPv4, 65536 − 40 − 8 for IPv6. Undefined for any other
 * address.
 */
export function loopbackUdpPayloadLimit(address: string): number | undefined {
  if (address === "::1") return 65488;
  if (address.startsWith("127.") || address.startsWith("::ffff:127.")) return 65507;
  return undefined;
}

/**
 * The transport settings for a connection to `address`: on a loopback path, PMTU discovery
 * (RFC 9000 §14.3, RFC 8899) may search up to the loopback limit unless the application chose
 * `pmtuUpperBound` — a path known to carry more than Ethernet, where the per-datagram cost
 * (one send, one AEAD per packet) bounds throughput. On other hosts' loopback MTUs (macOS: 16384)
 * larger probes are lost and the search settles below, as it does anywhere.
 */
function transportForPath(
  transport: Partial<TransportConfig> | undefined,
  address: string,
): Partial<TransportConfig> | undefined {
  if (transport?.pmtuUpperBound !== undefined) return transport;
  const limit = loopbackUdpPayloadLimit(address);
  return limit === undefined ? transport : { ...transport, pmtuUpperBound: limit };
}

/** The socket index of the preferred address (RFC 9000 §9.6) in PathAddress.local. */
const PREFERRED_SOCKET = 1;

/**
 * dgram resolves the address of every send() through `lookup` — by default dns.lookup, which for
 * an IP literal still answers on the next tick: a queued callback per datagram. Every address the
 * endpoint sends to is a literal (from recvfrom, or resolved by connect()), so answer those
 * synchronously and leave names to dns.lookup (measured ≈1 µs of CPU less per send, Node 20).
 */
function literalLookup(
  hostname: string,
  options: dns.LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dns.lookup(hostname, options, callback);
}

async function openSocket(
  host: string,
  port: number,
  ipv6: boolean,
  bufferSize: number,
): Promise<dgram.Socket> {
  const type = ipv6 || isIP(host) === 6 ? "udp6" : "udp4";
  const socket = dgram.createSocket({ type, ipv6Only: false, lookup: literalLookup });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(port, host, () => {
      socket.off("error", reject);
      resolve();
    });
  });
  try {
    socket.setRecvBufferSize(bufferSize);
    socket.setSendBufferSize(bufferSize);
  } catch {
    // The OS may cap buffer sizes; smaller buffers only cost throughput.
  }
  return socket;
}

export class Endpoint {
  /** Replaced by rebind(). */
  private socket: dgram.Socket;
  /** (Server) The socket of the preferred address (RFC 9000 §9.6). */
  private readonly preferredSocket: dgram.Socket | undefined;
  private readonly routes = new Map<string, Entry>();
  /**
   * The last connection ID routed and its entry: a bulk transfer's datagrams all carry the same
   * DCID, so most datagrams skip the hex key (a string per datagram). Cleared on any route change.
   */
  private lastRouteCid: Uint8Array | undefined;
  private lastRouteEntry: Entry | undefined;
  /** Stateless reset tokens our peers gave us (RFC 9000 §10.3.1), by hex, to their connection. */
  private readonly resetTokens = new Map<string, Entry>();
  private readonly entries = new Map<Connection, Entry>();
  private readonly acceptQueue: Entry[] = [];
  private acceptWaiters: ((e: Entry | undefined) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly resetKey: Uint8Array;
  private closed = false;
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;
  readonly server: ServerConnectionConfig | undefined;
  /** (Server) Tokens, Retry and the Retry policy (RFC 9000 §8.1). */
  private readonly validation: ServerAddressValidation | undefined;
  /** Server connections whose handshake is not confirmed yet. */
  private handshakes = 0;
  /** (Server) Initials refused with CONNECTION_REFUSED (handshake cap or accept queue full). */
  private refused = 0;

  private constructor(
    socket: dgram.Socket,
    private readonly options: EndpointOptions,
    preferredSocket?: dgram.Socket,
  ) {
    this.socket = socket;
    this.preferredSocket = preferredSocket;
    this.server = options.server;
    this.resetKey = options.statelessResetKey ?? randomBytes(32);
    this.validation = options.server
      ? new ServerAddressValidation({
          retry: options.retry,
          key: options.addressTokenKey,
          provider: options.server.provider,
          connectionIdLength: CONNECTION_ID_LENGTH,
        })
      : undefined;
    this.closedPromise = new Promise((r) => {
      this.resolveClosed = r;
    });
    this.attach(socket, 0);
    if (preferredSocket) this.attach(preferredSocket, PREFERRED_SOCKET);
  }

  private attach(socket: dgram.Socket, local: number): void {
    socket.on("message", (msg, rinfo) => this.onMessage(msg, rinfo, local));
    socket.on("error", () => {
      // Socket errors (e.g. ICMP unreachable on connected sockets) are not fatal for UDP.
    });
  }

  /** Binds a UDP socket (and, for a server with a preferred address, a second one). */
  static async bind(options: EndpointOptions = {}): Promise<Endpoint> {
    const host = options.host ?? (options.ipv6 ? "::" : "0.0.0.0");
    const size = options.socketBufferSize ?? 8 * 1024 * 1024;
    const pa = options.preferredAddress;
    if (pa && (!options.server || isIP(pa.host) === 0 || pa.host === "0.0.0.0" || pa.host === "::"))
      throw new QuicUsageError("preferredAddress needs a server and a concrete IP address");
    const socket = await openSocket(host, options.port ?? 0, options.ipv6 === true, size);
    if (!pa || !options.server) return new Endpoint(socket, options);
    let preferred: dgram.Socket;
    try {
      preferred = await openSocket(pa.host, pa.port ?? 0, false, size);
    } catch (err) {
      socket.close();
      throw err;
    }
    const port = preferred.address().port;
    const family = isIP(pa.host) === 6 ? "ipv6" : "ipv4";
    const server: ServerConnectionConfig = {
      ...options.server,
      preferredAddress: { [family]: { address: pa.host, port } },
    };
    return new Endpoint(socket, { ...options, server }, preferred);
  }

  /** (Server) The preferred address the endpoint listens on and advertises (RFC 9000 §9.6). */
  get preferredAddress(): SocketAddress | undefined {
    const a = this.preferredSocket?.address();
    return a
      ? { address: a.address, port: a.port, family: a.family === "IPv6" ? "IPv6" : "IPv4" }
      : undefined;
  }

  /**
   * Moves the endpoint to a new UDP socket, as quinn's `Endpoint::rebind`: the old socket is
   * closed, and every client connection that can migrates to the new local address (RFC 9000
   * §9.2): a fresh connection ID of the server (§9.5), path validation (§8.2), congestion state
   * and RTT reset unless only the port changed (§9.4). A connection that cannot migrate
   * (disable_active_migration, no spare connection ID) just sends from the new socket, which the
   * server sees as a NAT rebinding. Resolves with the new local address.
   */
  async rebind(options: { readonly host?: string; readonly port?: number } = {}): Promise<SocketAddress> {
    if (this.closed) throw new QuicUsageError("endpoint is closed");
    const before = this.localAddress;
    const host = options.host ?? before.address;
    const size = this.options.socketBufferSize ?? 8 * 1024 * 1024;
    const socket = await openSocket(host, options.port ?? 0, before.family === "IPv6", size);
    const old = this.socket;
    this.socket = socket;
    this.attach(socket, 0);
    try {
      old.close();
    } catch {
      // already closed
    }
    const after = this.localAddress;
    const now = Date.now();
    for (const e of [...this.entries.values()]) {
      const conn = e.conn;
      if (!conn.isServer && conn.migrationBlocker() === undefined)
        conn.migrate(now, { portOnly: after.address === before.address });
      this.service(e);
    }
    return after;
  }

  get localAddress(): SocketAddress {
    const a = this.socket.address();
    return { address: a.address, port: a.port, family: a.family === "IPv6" ? "IPv6" : "IPv4" };
  }

  /** Number of live connections. */
  get connectionCount(): number {
    return this.entries.size;
  }

  /** (Server) Incoming connections whose handshake is still running. */
  get handshakesInProgress(): number {
    return this.handshakes;
  }

  /** (Server) Incoming connections accepted but not yet taken by accept(). */
  get acceptQueueSize(): number {
    return this.acceptQueue.length;
  }

  /** (Server) Client Initials refused with CONNECTION_REFUSED (too many handshakes or a full accept queue). */
  get connectionsRefused(): number {
    return this.refused;
  }

  /** (Server) What address validation did: Retries sent, tokens accepted or refused. */
  get addressValidationStats(): Readonly<AddressValidationStats> | undefined {
    return this.validation?.stats;
  }

  /** Starts a client connection to `remote`. */
  connect(remote: SocketAddress, config: ClientConnectionConfig, handler: ConnectionHandler): Connection {
    if (this.closed) throw new QuicUsageError("endpoint is closed");
    const conn = Connection.connect(
      {
        ...config,
        transport: transportForPath(config.transport, remote.address),
        connectionIdLength: CONNECTION_ID_LENGTH,
        statelessResetToken: (cid) => this.resetToken(cid),
        keyLog: config.keyLog ?? this.options.keyLog,
      },
      Date.now(),
    );
    const entry: Entry = {
      conn,
      remote,
      handler,
      cids: new Set(),
      tokens: new Set(),
      deadline: Number.POSITIVE_INFINITY,
      flushing: false,
      handshaking: false,
    };
    this.register(entry);
    // With 0-RTT, the first datagram waits for the end of this tick: what the application writes
    // right after connecting travels in a 0-RTT packet coalesced with the Initial.
    if (conn.canSendEarlyData) this.serviceSoon(entry);
    else this.service(entry);
    return conn;
  }

  /** The next incoming connection (after its handshake started), or undefined once closed. */
  accept(
    handler: (conn: Connection, remote: SocketAddress) => ConnectionHandler,
  ): Promise<Connection | undefined> {
    const take = (e: Entry | undefined): Connection | undefined => {
      if (!e) return undefined;
      e.handler = handler(e.conn, e.remote);
      // Deliver what happened before the application took the connection.
      this.service(e);
      return e.conn;
    };
    const queued = this.acceptQueue.shift();
    if (queued) return Promise.resolve(take(queued));
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.acceptWaiters.push((e) => resolve(take(e))));
  }

  /** Closes every connection (application code 0) and, once they are done, the socket. */
  async close(): Promise<void> {
    if (this.closed) return this.closedPromise;
    this.closed = true;
    for (const w of this.acceptWaiters) w(undefined);
    this.acceptWaiters = [];
    for (const e of this.entries.values()) {
      e.conn.close(0n, "endpoint closing");
      this.service(e);
    }
    this.maybeFinishClose();
    return this.closedPromise;
  }

  private maybeFinishClose(): void {
    if (!this.closed || this.entries.size > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    try {
      this.preferredSocket?.close();
    } catch {
      // already closed
    }
    try {
      this.socket.close(() => this.resolveClosed());
    } catch {
      this.resolveClosed();
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** Sends one datagram; a closed or failing socket loses it, as the network may. */
  private sendTo(data: Uint8Array, remote: SocketAddress | PathAddress, local = 0): void {
    const socket = local === PREFERRED_SOCKET && this.preferredSocket ? this.preferredSocket : this.socket;
    try {
      socket.send(data, remote.port, remote.address);
    } catch {
      // ERR_SOCKET_DGRAM_NOT_RUNNING after close, EMSGSIZE...: UDP gives no delivery guarantee.
    }
  }

  private resetToken(cid: Uint8Array): Uint8Array {
    // RFC 9000 §10.3.2: tokens derived from a static key and the connection ID.
    return new Uint8Array(createHmac("sha256", this.resetKey).update(cid).digest().subarray(0, 16));
  }

  private register(entry: Entry): void {
    this.entries.set(entry.conn, entry);
    for (const cid of entry.conn.localConnectionIds) this.addRoute(entry, cid);
  }

  private addRoute(entry: Entry, cid: Uint8Array): void {
    const key = hex(cid);
    entry.cids.add(key);
    this.routes.set(key, entry);
    this.forgetLastRoute();
  }

  private removeEntry(entry: Entry): void {
    this.entries.delete(entry.conn);
    // A connection that ended before accept() took it leaves the accept queue.
    if (!entry.handler) {
      const i = this.acceptQueue.indexOf(entry);
      if (i >= 0) this.acceptQueue.splice(i, 1);
    }
    this.endHandshake(entry);
    for (const key of entry.cids) if (this.routes.get(key) === entry) this.routes.delete(key);
    this.forgetLastRoute();
    for (const key of entry.tokens) if (this.resetTokens.get(key) === entry) this.resetTokens.delete(key);
    entry.cids.clear();
    entry.tokens.clear();
    this.maybeFinishClose();
  }

  private forgetLastRoute(): void {
    this.lastRouteCid = undefined;
    this.lastRouteEntry = undefined;
  }

  /** The connection a datagram with this Destination Connection ID belongs to. */
  private route(dcid: Uint8Array): Entry | undefined {
    const last = this.lastRouteCid;
    if (last !== undefined && last.length === dcid.length) {
      let same = true;
      for (let i = 0; i < last.length; i++) {
        if (last[i] !== dcid[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastRouteEntry;
    }
    const entry = this.routes.get(hex(dcid));
    if (entry) {
      this.lastRouteCid = dcid.slice();
      this.lastRouteEntry = entry;
    }
    return entry;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo, local: number): void {
    const data = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
    if (data.length < 1) return;
    const first = data[0];
    let dcid: Uint8Array;
    let version = 0;
    const long = (first & 0x80) !== 0;
    if (long) {
      // RFC 8999 §5.1: version (4) and DCID length/value follow the first byte.
      if (data.length < 7) return;
      version = ((data[1] << 24) | (data[2] << 16) | (data[3] << 8) | data[4]) >>> 0;
      const len = data[5];
      if (data.length < 6 + len + 1) return;
      dcid = data.subarray(6, 6 + len);
    } else {
      if (data.length < 1 + CONNECTION_ID_LENGTH) return;
      dcid = data.subarray(1, 1 + CONNECTION_ID_LENGTH);
    }
    const entry = this.route(dcid);
    // Where it came from, and on which of our sockets: the connection's paths (RFC 9000 §9).
    const from: PathAddress =
      local === 0
        ? { address: rinfo.address, port: rinfo.port }
        : { address: rinfo.address, port: rinfo.port, local };
    if (entry) {
      entry.conn.receive(data, Date.now(), from);
      this.serviceSoon(entry);
      return;
    }
    const remote: SocketAddress = {
      address: rinfo.address,
      port: rinfo.port,
      family: rinfo.family === "IPv6" ? "IPv6" : "IPv4",
    };
    if (!long) {
      // RFC 9000 §10.3.1: a datagram for no connection may be a stateless reset from a peer.
      if (data.length >= 21) {
        const owner = this.resetTokens.get(hex(data.subarray(data.length - 16)));
        if (owner) {
          owner.conn.receive(data, Date.now(), from);
          this.service(owner);
          return;
        }
      }
      this.sendStatelessReset(data, remote, local);
      return;
    }
    if (!this.server || this.closed) return;
    // RFC 9000 §14.1: only datagrams of at least 1200 bytes may start a connection (and get VN).
    if (data.length < 1200) return;
    if (!isSupportedVersion(version)) {
      if (version === 0) return; // never answer a Version Negotiation packet
      const scidLen = data[6 + dcid.length];
      const scid = data.subarray(7 + dcid.length, 7 + dcid.length + scidLen);
      // RFC 9368 §2.1/§5: a VN lists the versions the server offers (its configured ones); v1 and v2
      // Initials are still accepted either way, as compatible versions to negotiate from.
      const offered = this.server.versions?.length ? this.server.versions : SUPPORTED_VERSIONS;
      const vn = encodeVersionNegotiation(scid, dcid, offered, randomBytes(1)[0]);
      this.sendTo(vn, remote, local);
      return;
    }
    let conn: Connection;
    try {
      const scidLen = data[6 + dcid.length];
      if (dcid.length < 8 || dcid.length > 20 || scidLen > 20) return; // RFC 9000 §7.2: ≥ 8-byte DCID from clients
      // Only an Initial starts a connection (the type bits depend on the version).
      // RFC 9287 §3: having advertised grease_quic_bit (the default), we MUST accept a cleared
      // QUIC bit; a resuming client (quinn) clears it in its first Initial, §3.1.
      const h = parsePacketHeader(data, 0, {
        localCidLength: CONNECTION_ID_LENGTH,
        allowGreasedQuicBit: this.server.transport?.greaseQuicBit !== false,
      });
      if (h.type !== PacketType.Initial) return;
      // No state, no answer and no handshake slot for an Initial that does not decrypt (RFC 9001
      // §5.2, §5.3: the AEAD covers the header): a corrupted DCID would leave an empty connection
      // until the idle timeout, a corrupted SCID a connection answering the wrong CID (RFC 9000
      // §7.2) and failing the client's real Initial (§7.3). Its retransmission starts afresh.
      const provider = this.server.provider ?? defaultCryptoProvider;
      if (!clientInitialDecrypts(provider, data, h)) return;
      if (
        this.handshakes >= (this.options.maxHandshakes ?? 1024) ||
        this.acceptQueue.length >= (this.options.acceptQueueLength ?? 1024)
      ) {
        // RFC 9000 §5.2.2: a server refusing a new connection SHOULD send an Initial with
        // CONNECTION_CLOSE CONNECTION_REFUSED; no state is kept for it.
        this.refused++;
        const close = buildInitialClose(
          provider,
          h.version,
          h.dcid,
          h.scid,
          randomBytes(CONNECTION_ID_LENGTH),
          TransportErrorCode.CONNECTION_REFUSED,
          "server busy",
        );
        this.sendTo(close, remote, local);
        return;
      }
      const now = Date.now();
      const decision = this.validation!.onInitial(h, remote, now, this.handshakes);
      if (decision.action !== "accept") {
        // A Retry (RFC 9000 §8.1.2) or an INVALID_TOKEN close: one datagram, no state kept.
        this.sendTo(decision.packet, remote, local);
        return;
      }
      const validation = this.validation!;
      const address = remote.address;
      conn = Connection.accept(
        {
          ...this.server,
          transport: transportForPath(this.server.transport, remote.address),
          connectionIdLength: CONNECTION_ID_LENGTH,
          statelessResetToken: (cid) => this.resetToken(cid),
          keyLog: this.server.keyLog ?? this.options.keyLog,
          newToken:
            this.server.newToken ??
            (this.options.sendNewTokens === false
              ? undefined
              : // Bound to the client's IP address of the moment (RFC 9000 §8.1.3), which a
                // migration may change.
                (t: number, to: { readonly address: string } | undefined) =>
                  validation.newToken(to?.address ?? address, t)),
        },
        decision.info,
        now,
      );
    } catch {
      return; // a malformed packet (PacketDropError) or an Initial we cannot serve
    }
    const fresh: Entry = {
      conn,
      remote,
      handler: undefined,
      cids: new Set(),
      tokens: new Set(),
      deadline: Number.POSITIVE_INFINITY,
      flushing: false,
      handshaking: true,
    };
    this.handshakes++;
    this.register(fresh);
    // The client keeps using its chosen DCID until it sees ours: route it here too.
    this.addRoute(fresh, dcid);
    conn.receive(data, Date.now(), from);
    if (conn.isClosed) {
      this.removeEntry(fresh);
      return;
    }
    const waiter = this.acceptWaiters.shift();
    if (waiter) waiter(fresh);
    else this.acceptQueue.push(fresh);
    this.service(fresh);
  }

  /** RFC 9000 §10.3: a packet for no connection of ours gets a stateless reset (smaller than it). */
  private sendStatelessReset(data: Uint8Array, remote: SocketAddress, local: number): void {
    // §10.3.3: never answer with a datagram as large as the trigger; 21 bytes is our floor (§10.3).
    if (data.length <= 21 + 1) return;
    const size = Math.min(data.length - 1, 43);
    const out = randomBytes(size);
    out[0] = 0x40 | (out[0] & 0x3f); // short header form with the fixed bit
    out.set(this.resetToken(data.subarray(1, 1 + CONNECTION_ID_LENGTH)), size - 16);
    this.sendTo(out, remote, local);
  }

  private readonly dirty = new Set<Entry>();
  private dirtyScheduled = false;

  /**
   * Services a connection after the current batch of incoming datagrams: libuv hands over up to
   * ~32 datagrams per socket wake-up, each in its own callback, and setImmediate runs after all of
   * them — so one ACK (and one flush) answers the whole batch instead of one per datagram.
   */
  private serviceSoon(entry: Entry): void {
    this.dirty.add(entry);
    if (this.dirtyScheduled) return;
    this.dirtyScheduled = true;
    setImmediate(() => {
      this.dirtyScheduled = false;
      const batch = [...this.dirty];
      this.dirty.clear();
      for (const e of batch) if (this.entries.get(e.conn) === e) this.service(e);
    });
  }

  /** Delivers events, sends what the connection has, re-arms the timer. */
  private service(entry: Entry): void {
    const conn = entry.conn;
    // Events first: the application may write in response, which the flush then sends.
    this.deliverEvents(entry);
    this.flush(entry);
    entry.deadline = conn.nextTimeout() ?? Number.POSITIVE_INFINITY;
    if (entry.handshaking && conn.isHandshakeConfirmed) this.endHandshake(entry);
    if (conn.isClosed) {
      this.deliverEvents(entry);
      this.removeEntry(entry);
      return;
    }
    this.armTimer(entry.deadline);
  }

  private endHandshake(entry: Entry): void {
    if (!entry.handshaking) return;
    entry.handshaking = false;
    this.handshakes--;
  }

  private deliverEvents(entry: Entry): void {
    const conn = entry.conn;
    if (!entry.handler) {
      // Not accepted yet: keep routing state current, leave application events queued.
      return;
    }
    for (let e = conn.pollEvent(); e; e = conn.pollEvent()) {
      if (e.type === "peer-reset-token") {
        const key = hex(e.token);
        if (e.retired) {
          if (this.resetTokens.get(key) === entry) this.resetTokens.delete(key);
        } else this.resetTokens.set(key, entry);
        entry.tokens.add(key);
      } else if (e.type === "connection-id") {
        if (e.retired) {
          const key = hex(e.cid);
          entry.cids.delete(key);
          if (this.routes.get(key) === entry) this.routes.delete(key);
          this.forgetLastRoute();
        } else this.addRoute(entry, e.cid);
      }
      entry.handler.onEvent(e);
    }
    entry.handler.onProgress();
  }

  /** Sends up to `sendBurst` datagrams, then yields to the event loop and continues. */
  private flush(entry: Entry): void {
    if (entry.flushing) return;
    const burst = this.options.sendBurst ?? 64;
    const now = Date.now();
    let n = 0;
    for (let d = entry.conn.pollTransmit(now); d; d = entry.conn.pollTransmit(now)) {
      // The connection says which path each datagram is for (probes, migration: RFC 9000 §9).
      const to = entry.conn.transmitAddress;
      if (to) this.sendTo(d, to, to.local ?? 0);
      else this.sendTo(d, entry.remote);
      if (++n >= burst) {
        entry.flushing = true;
        setImmediate(() => {
          entry.flushing = false;
          this.service(entry);
        });
        return;
      }
    }
  }

  /**
   * Ends `conn`'s closing state at once (see {@link Connection.discardClosingState}): for an owner
   * about to close this endpoint's socket, once the CONNECTION_CLOSE has been sent.
   */
  discardClosing(conn: Connection): void {
    const e = this.entries.get(conn);
    if (!e) return;
    conn.discardClosingState();
    this.service(e);
  }

  /** Public: the application changed something (wrote, opened, closed): send and re-arm. */
  wake(conn: Connection): void {
    // Deferred to the end of this tick, so writes made together (data, then FIN; several
    // small writes) leave in as few packets as possible.
    const e = this.entries.get(conn);
    if (e) this.serviceSoon(e);
  }

  private armTimer(deadline: number): void {
    if (!(deadline < this.timerAt)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = deadline;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, deadline - Date.now()));
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const e of [...this.entries.values()]) {
      if (e.deadline <= now) {
        e.conn.handleTimeout(now);
        this.service(e);
      }
      if (this.entries.has(e.conn) && e.deadline < next) next = e.deadline;
    }
    if (Number.isFinite(next)) this.armTimer(next);
  }
}
