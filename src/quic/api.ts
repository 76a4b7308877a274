/**
 * The public, Promise-based API over the sans-IO connection, shaped like quinn's Connection:
 * `connect()` and `listen()`, then `openBi`/`openUni`/`acceptBi`/`acceptUni`, datagrams, close.
 * Streams have backpressure end to end: `SendStream.write` waits while too much is unacknowledged,
 * and a `RecvStream` only grants the peer more credit as the application reads.
 */

import type { KeyObject } from "node:crypto";
import { lookup } from "node:dns/promises";
import { appendFileSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { AddressValidationStats, RetryPolicy } from "./address-validation.ts";
import type { ConnectionCloseReason, TransportConfig } from "./connection/config.ts";
import type {
  Connection,
  ConnectionEvent,
  EarlyDataState,
  ServerTicketConfig,
} from "./connection/connection.ts";
import { defaultCryptoProvider } from "./crypto/node-provider.ts";
import { type Deferred, deferred } from "./deferred.ts";
import { type ConnectionHandler, Endpoint, type SocketAddress } from "./endpoint.ts";
import { QuicUsageError } from "./errors.ts";
import { AntiReplay } from "./tls/anti-replay.ts";
import type { CertificateVerificationMode } from "./tls/certificate-verifier.ts";
import { loadCredentials } from "./tls/credentials.ts";
import { type DevCertificate, generateDevCertificate } from "./tls/dev-certificate.ts";
import type { SessionTicketEntry } from "./tls/session-cache.ts";
import { TicketKeyRing } from "./tls/session-ticket.ts";

const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

/** Error thrown by stream and connection operations once the connection is gone. */
export class ConnectionClosedError extends Error {
  override readonly name = "ConnectionClosedError";
  constructor(readonly reason: ConnectionCloseReason) {
    super(`connection closed: ${describeReason(reason)}`);
  }
}

/** The peer reset the stream we were reading (RESET_STREAM) or stopped the one we were writing. */
export class StreamResetError extends Error {
  override readonly name = "StreamResetError";
  constructor(
    readonly streamId: number,
    readonly errorCode: bigint,
    kind: "reset" | "stopped",
  ) {
    super(`stream ${streamId} ${kind} by the peer with code ${errorCode}`);
  }
}

export function describeReason(r: ConnectionCloseReason): string {
  switch (r.kind) {
    case "transport":
      return `${r.remote ? "peer" : "local"} transport error 0x${r.code.toString(16)}${r.reason ? ` (${r.reason})` : ""}`;
    case "application":
      return `${r.remote ? "peer" : "local"} application close ${r.code}${r.reason ? ` (${r.reason})` : ""}`;
    case "idle-timeout":
      return "idle timeout";
    case "stateless-reset":
      return "stateless reset";
    case "version-mismatch":
      return `no common QUIC version (server offers ${r.offered.map((v) => `0x${v.toString(16)}`).join(", ")})`;
  }
}

/** The sending half of a stream. */
export class SendStream {
  private waiter: Deferred<void> | undefined;
  private stoppedCode: bigint | undefined;
  private readonly finished = deferred<void>();
  private readonly stoppedDeferred = deferred<bigint>();

  constructor(
    private readonly qc: QuicConnection,
    readonly id: number,
  ) {}

  /**
   * Queues data; resolves once the stream's unacknowledged bytes are below the high-water mark
   * (backpressure). Rejects if the peer stopped the stream or the connection closed.
   */
  async write(data: Uint8Array): Promise<void> {
    this.qc.checkAlive();
    if (this.stoppedCode !== undefined) throw new StreamResetError(this.id, this.stoppedCode, "stopped");
    this.qc.conn.write(this.id, data);
    this.qc.wake();
    while (this.qc.conn.bufferedAmount(this.id) >= this.qc.highWaterMark) {
      // Writes made without awaiting the previous one share the waiter: each is released.
      this.waiter ??= deferred<void>();
      await this.waiter.promise;
      if (this.stoppedCode !== undefined) throw new StreamResetError(this.id, this.stoppedCode, "stopped");
    }
  }

  /** Ends the stream (FIN). Resolves once the peer acknowledged everything. */
  async finish(): Promise<void> {
    this.qc.checkAlive();
    this.qc.conn.finish(this.id);
    this.qc.wake();
    return this.finished.promise;
  }

  /** Abandons the stream with an application error code (RESET_STREAM). */
  reset(code: bigint | number): void {
    this.qc.conn.resetStream(this.id, BigInt(code));
    this.qc.wake();
    this.finished.resolve();
  }

  /** Resolves with the code when the peer sends STOP_SENDING. */
  get stopped(): Promise<bigint> {
    return this.stoppedDeferred.promise;
  }

  /** RFC 9218 priority: urgency 0 (first) – 7, and whether data may be interleaved. */
  setPriority(urgency: number, incremental = true): void {
    this.qc.conn.setStreamPriority(this.id, urgency, incremental);
  }

  /** @internal */
  onProgress(): void {
    if (this.waiter && this.qc.conn.bufferedAmount(this.id) < this.qc.highWaterMark) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve();
    }
  }
  /** @internal */
  onFinished(): void {
    this.finished.resolve();
  }
  /** @internal */
  onStopped(code: bigint): void {
    this.stoppedCode = code;
    this.stoppedDeferred.resolve(code);
    this.finished.resolve();
    this.waiter?.resolve();
  }
  /** @internal */
  onClosed(reason: ConnectionCloseReason): void {
    const err = new ConnectionClosedError(reason);
    this.waiter?.reject(err);
    this.finished.reject(err);
  }

  /** A WHATWG WritableStream over this stream (close() sends FIN, abort() resets with code 0). */
  get writable(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: (chunk) => this.write(chunk),
      close: () => this.finish(),
      abort: () => this.reset(0),
    });
  }
}

/** The receiving half of a stream. */
export class RecvStream implements AsyncIterable<Uint8Array> {
  private waiter: Deferred<void> | undefined;
  private resetCode: bigint | undefined;
  private closedReason: ConnectionCloseReason | undefined;
  private done = false;

  constructor(
    private readonly qc: QuicConnection,
    readonly id: number,
  ) {}

  /** The next chunk of data, or null at the end of the stream. */
  async read(maxBytes?: number): Promise<Uint8Array | null> {
    for (;;) {
      if (this.done) return null;
      if (this.resetCode !== undefined) throw new StreamResetError(this.id, this.resetCode, "reset");
      const r = this.qc.conn.read(this.id, maxBytes);
      if (r) {
        this.qc.wake(); // reading may have opened flow-control credit
        if (r.fin) {
          this.done = true;
          this.qc.releaseStream(this.id);
        }
        if (r.data.length > 0) return r.data;
        if (r.fin) return null;
      } else if (this.closedReason) {
        throw new ConnectionClosedError(this.closedReason);
      } else if (!this.qc.conn.hasStream(this.id)) {
        this.done = true;
        return null;
      }
      this.waiter = deferred<void>();
      await this.waiter.promise;
    }
  }

  /** Reads to the end; rejects past `limit` bytes. */
  async readAll(limit = Number.POSITIVE_INFINITY): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const c of this) {
      total += c.length;
      if (total > limit) throw new QuicUsageError(`stream ${this.id} exceeds ${limit} bytes`);
      chunks.push(c);
    }
    return Uint8Array.from(Buffer.concat(chunks));
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (let c = await this.read(); c; c = await this.read()) yield c;
  }

  /** Tells the peer to stop sending (STOP_SENDING); unread data is dropped. */
  stop(code: bigint | number): void {
    this.qc.conn.stopSending(this.id, BigInt(code));
    // Once every byte has arrived there is nothing left to stop (RFC 9000 §3.5: no STOP_SENDING in
    // "Data Recvd") and the core keeps the data for a read: drop it here, so the stream reaches
    // "Data Read" and is released instead of staying open for the connection's lifetime.
    if (!this.done && this.resetCode === undefined) {
      for (let r = this.qc.conn.read(this.id); r !== null && !r.fin && r.data.length > 0; ) {
        r = this.qc.conn.read(this.id);
      }
    }
    this.qc.releaseStream(this.id);
    this.done = true;
    this.qc.wake();
    this.wakeReader();
  }

  /** A WHATWG ReadableStream over this stream. */
  get readable(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await this.read();
        if (chunk) controller.enqueue(chunk.slice());
        else controller.close();
      },
      cancel: () => this.stop(0),
    });
  }

  /** @internal */
  wakeReader(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }
  /** @internal */
  onReset(code: bigint): void {
    this.resetCode = code;
    this.wakeReader();
  }
  /** @internal */
  onClosed(reason: ConnectionCloseReason): void {
    this.closedReason = reason;
    this.wakeReader();
  }
}

export interface BiStream {
  readonly send: SendStream;
  readonly recv: RecvStream;
}

/** A QUIC connection. */
export class QuicConnection {
  private readonly sendStreams = new Map<number, SendStream>();
  private readonly recvStreams = new Map<number, RecvStream>();
  private readonly incomingBi: BiStream[] = [];
  private readonly incomingUni: RecvStream[] = [];
  private biWaiters: Deferred<BiStream | null>[] = [];
  private uniWaiters: Deferred<RecvStream | null>[] = [];
  private openWaiters: Deferred<void>[] = [];
  private readonly datagrams: Uint8Array[] = [];
  private datagramWaiters: Deferred<Uint8Array | null>[] = [];
  private readonly closedDeferred = deferred<ConnectionCloseReason>();
  private readonly established = deferred<void>();
  private readonly earlyDataAnswer = deferred<boolean>();
  private closedReason: ConnectionCloseReason | undefined;
  private readonly ticketListeners: ((t: SessionTicketEntry) => void)[] = [];
  /** Tickets that came before any listener (delivered to the first one). */
  private readonly earlyTickets: SessionTicketEntry[] = [];
  private readonly tokenListeners: ((token: Uint8Array) => void)[] = [];
  /** Bytes a SendStream may have unacknowledged before write() waits. */
  highWaterMark = DEFAULT_HIGH_WATER_MARK;
  /** Stream objects tracked when the next sweep of released streams runs. */
  private sweepAt = 64;
  private static nextStableId = 1;
  readonly stableId = QuicConnection.nextStableId++;

  /** @internal */
  constructor(
    /** @internal */ readonly conn: Connection,
    private readonly endpoint: Endpoint,
    private readonly initialRemote: SocketAddress,
    private readonly ownsEndpoint: boolean,
  ) {}

  /** The peer's address: where the connection sends now (it follows migrations, RFC 9000 §9). */
  get remoteAddress(): SocketAddress {
    const r = this.conn.remoteAddress;
    if (!r) return this.initialRemote;
    return { address: r.address, port: r.port, family: r.address.includes(":") ? "IPv6" : "IPv4" };
  }

  /**
   * (Client) Connection migration (RFC 9000 §9.2), as quinn's `Endpoint::rebind`: the endpoint
   * moves to a new UDP socket bound to `host:port` (default: the same host, a free port) and the
   * connection follows with a fresh connection ID, validates the new path (PATH_CHALLENGE) and
   * resets its congestion state (unless only the port changed). Every connection sharing the
   * endpoint moves with it. Throws {@link QuicUsageError} when migration is not possible yet
   * (handshake not confirmed, the server disabled active migration, no spare connection ID) —
   * before touching the socket. Resolves with the new local address.
   */
  async migrate(options: { readonly host?: string; readonly port?: number } = {}): Promise<SocketAddress> {
    this.checkAlive();
    const blocker = this.conn.migrationBlocker();
    if (blocker) throw new QuicUsageError(`cannot migrate: ${blocker}`);
    return this.endpoint.rebind(options);
  }

  /** Path facts: migrations, validations, congestion resets, the active path (RFC 9000 §9). */
  pathStats(): ReturnType<Connection["pathStats"]> {
    return this.conn.pathStats();
  }

  get side(): "client" | "server" {
    return this.conn.side;
  }

  get localAddress(): SocketAddress {
    return this.endpoint.localAddress;
  }

  /** Resolves when the handshake completes; rejects if the connection closes first. */
  get handshakeComplete(): Promise<void> {
    return this.established.promise;
  }

  /**
   * Whether the server accepted 0-RTT (RFC 9001 §4.6.2): resolves once known, false when 0-RTT
   * was not attempted (client) or not offered (server), or when the connection closed first.
   * (Client) After a rejection the streams written in 0-RTT were sent again in 1-RTT: their data
   * still arrives, but as if sent after the handshake.
   */
  get earlyDataAccepted(): Promise<boolean> {
    return this.earlyDataAnswer.promise;
  }

  /**
   * Where 0-RTT stands: "pending" while a client's data goes out in 0-RTT packets and the server has
   * not answered, then "accepted" or "rejected"; "none" when not attempted.
   */
  get earlyDataState(): EarlyDataState {
    return this.conn.earlyDataState;
  }

  /** Resolves with the reason once the connection is closed. */
  get closed(): Promise<ConnectionCloseReason> {
    return this.closedDeferred.promise;
  }

  /** Why the connection closed (or is closing), undefined while it is open. */
  get closeReason(): ConnectionCloseReason | undefined {
    return this.closedReason ?? this.conn.reason;
  }

  /** How many bidirectional streams the peer may have open at once. */
  setMaxConcurrentBiStreams(count: number): void {
    this.conn.setMaxConcurrentStreams(true, count);
    this.wake();
  }

  /** How many unidirectional streams the peer may have open at once. */
  setMaxConcurrentUniStreams(count: number): void {
    this.conn.setMaxConcurrentStreams(false, count);
    this.wake();
  }

  /** Grows the connection-level receive window to at least `bytes`. */
  setReceiveWindow(bytes: number): void {
    this.conn.setReceiveWindow(bytes);
    this.wake();
  }

  /** ALPN, server name, cipher suite. */
  get handshakeData(): {
    alpn: string | undefined;
    serverName: string | undefined;
    cipherSuite: string | undefined;
  } {
    const tls = this.conn.tlsSession;
    const serverName = "serverName" in tls ? tls.serverName : undefined;
    return { alpn: this.conn.alpn, serverName, cipherSuite: tls.cipherSuite?.name };
  }

  get peerCertificates(): readonly Uint8Array[] {
    return this.conn.tlsSession.peerCertificates;
  }

  get rtt(): number {
    return this.conn.rtt.smoothed;
  }

  stats(): ReturnType<Connection["stats"]> {
    return this.conn.stats();
  }

  /** The QUIC version in use (after any version negotiation, RFC 9368). */
  get version(): number {
    return this.conn.negotiatedVersion;
  }

  /** The largest datagram payload the peer accepts, 0 when it does not accept datagrams. */
  get maxDatagramSize(): number {
    return this.conn.maxDatagramSize;
  }

  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array {
    return this.conn.tlsSession.exportKeyingMaterial(label, context, length);
  }

  /**
   * Updates the 1-RTT keys (RFC 9001 §6): starts as soon as it is allowed (handshake confirmed,
   * previous update acknowledged), with the next packet sent. `stats().keyUpdatesLocal` counts them.
   */
  forceKeyUpdate(): void {
    this.conn.forceKeyUpdate();
    this.wake();
  }

  /**
   * (Client) Session tickets the server issued on this connection: pass one as
   * `connect({ session })` to resume a later connection to this server (no certificate exchange),
   * with `earlyData: true` to send 0-RTT. Use each ticket once (RFC 9001 §4.5, RFC 9846 §C.4).
   */
  onSessionTicket(listener: (t: SessionTicketEntry) => void): void {
    this.ticketListeners.push(listener);
    for (const t of this.earlyTickets.splice(0)) listener(t);
  }

  /**
   * (Client) Address validation tokens the server gave for later connections (NEW_TOKEN, RFC 9000
   * §8.1.3): pass one as `connect({ token })` to the same server to skip its address validation
   * (a Retry round trip). Use each token once (§8.1.3: reuse links connections).
   */
  onNewToken(listener: (token: Uint8Array) => void): void {
    this.tokenListeners.push(listener);
  }

  /** @internal */
  checkAlive(): void {
    if (this.closedReason) throw new ConnectionClosedError(this.closedReason);
  }

  /** @internal */
  wake(): void {
    this.endpoint.wake(this.conn);
  }

  async openBi(): Promise<BiStream> {
    const id = await this.openId(true);
    return { send: this.sendStreamFor(id), recv: this.recvStreamFor(id) };
  }

  async openUni(): Promise<SendStream> {
    return this.sendStreamFor(await this.openId(false));
  }

  private async openId(bidi: boolean): Promise<number> {
    // Streams open at once while 0-RTT data can be sent (their data goes in 0-RTT packets).
    if (!this.conn.canSendEarlyData) await this.handshakeComplete;
    for (;;) {
      this.checkAlive();
      const id = this.conn.openStream(bidi);
      if (id !== undefined) return id;
      const w = deferred<void>();
      this.openWaiters.push(w);
      await w.promise;
    }
  }

  /** The next bidirectional stream the peer opens, or null once the connection closed. */
  acceptBi(): Promise<BiStream | null> {
    const s = this.incomingBi.shift();
    if (s) return Promise.resolve(s);
    if (this.closedReason) return Promise.resolve(null);
    const w = deferred<BiStream | null>();
    this.biWaiters.push(w);
    return w.promise;
  }

  /** The next unidirectional stream the peer opens, or null once the connection closed. */
  acceptUni(): Promise<RecvStream | null> {
    const s = this.incomingUni.shift();
    if (s) return Promise.resolve(s);
    if (this.closedReason) return Promise.resolve(null);
    const w = deferred<RecvStream | null>();
    this.uniWaiters.push(w);
    return w.promise;
  }

  /** Sends an unreliable datagram (RFC 9221). */
  sendDatagram(data: Uint8Array): void {
    this.checkAlive();
    this.conn.sendDatagram(data);
    this.wake();
  }

  /** The next datagram received, or null once the connection closed. */
  readDatagram(): Promise<Uint8Array | null> {
    const d = this.datagrams.shift();
    if (d) return Promise.resolve(d);
    if (this.closedReason) return Promise.resolve(null);
    const w = deferred<Uint8Array | null>();
    this.datagramWaiters.push(w);
    return w.promise;
  }

  /**
   * Closes with an application error code and reason; resolves when the connection is gone. A
   * connection with its own endpoint (a client's, by default) closes its UDP socket as soon as
   * the CONNECTION_CLOSE is out rather than waiting out the closing state (RFC 9000 §10.2 allows
   * this to an endpoint that closes its socket); one sharing an endpoint stays in the closing
   * state for three PTOs, answering late packets with CONNECTION_CLOSE.
   */
  async close(code: bigint | number = 0n, reason = ""): Promise<ConnectionCloseReason> {
    this.conn.close(BigInt(code), reason);
    this.wake();
    if (this.ownsEndpoint && !this.closedReason) {
      // The wake's flush runs in the first turn; the socket hands the datagram to the kernel
      // once its address lookup (a nextTick for an IP literal) is done, before the second.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      this.endpoint.discardClosing(this.conn);
    }
    return this.closed;
  }

  private sendStreamFor(id: number): SendStream {
    let s = this.sendStreams.get(id);
    if (!s) {
      s = new SendStream(this, id);
      this.sendStreams.set(id, s);
      this.maybeSweepStreams();
    }
    return s;
  }

  private recvStreamFor(id: number): RecvStream {
    let s = this.recvStreams.get(id);
    if (!s) {
      s = new RecvStream(this, id);
      this.recvStreams.set(id, s);
      this.maybeSweepStreams();
    }
    return s;
  }

  /** Stream objects this connection still routes events to (observability, tests). */
  get trackedStreams(): number {
    return new Set([...this.sendStreams.keys(), ...this.recvStreams.keys()]).size;
  }

  /** @internal Forgets a stream's objects once the core released it (both halves closed). */
  releaseStream(id: number): void {
    if (this.conn.hasStream(id)) return;
    this.sendStreams.get(id)?.onProgress();
    this.sendStreams.delete(id);
    this.recvStreams.delete(id);
  }

  /**
   * Releases the objects of every stream the core no longer has. Some releases come without an
   * event (a RESET_STREAM acknowledged, a stream stopped by both sides), so the maps are swept
   * whenever they doubled since the last sweep: amortized O(1) per stream, bounded memory.
   */
  private maybeSweepStreams(): void {
    if (this.sendStreams.size + this.recvStreams.size < this.sweepAt) return;
    for (const id of this.sendStreams.keys()) this.releaseStream(id);
    for (const id of this.recvStreams.keys()) this.releaseStream(id);
    this.sweepAt = Math.max(64, 2 * (this.sendStreams.size + this.recvStreams.size));
  }

  /** @internal: the endpoint's view of this connection. */
  handler(): ConnectionHandler {
    return {
      onEvent: (e) => this.onEvent(e),
      onProgress: () => {
        for (const s of this.sendStreams.values()) s.onProgress();
        // A connection that started closing during the handshake fails connect() right away.
        const r = this.conn.reason;
        if (r && !this.closedReason && !this.conn.isEstablished)
          this.established.reject(new ConnectionClosedError(r));
      },
    };
  }

  private onEvent(e: ConnectionEvent): void {
    switch (e.type) {
      case "handshake-complete":
        this.established.resolve();
        // No "early-data" before completion: 0-RTT was not attempted (or offered).
        this.earlyDataAnswer.resolve(false);
        return;
      case "early-data":
        this.earlyDataAnswer.resolve(e.accepted);
        return;
      case "stream-opened":
        if (e.bidi) {
          const s = { send: this.sendStreamFor(e.streamId), recv: this.recvStreamFor(e.streamId) };
          const w = this.biWaiters.shift();
          if (w) w.resolve(s);
          else this.incomingBi.push(s);
        } else {
          const s = this.recvStreamFor(e.streamId);
          const w = this.uniWaiters.shift();
          if (w) w.resolve(s);
          else this.incomingUni.push(s);
        }
        return;
      case "stream-readable":
        this.recvStreams.get(e.streamId)?.wakeReader();
        return;
      case "stream-reset":
        this.recvStreams.get(e.streamId)?.onReset(e.errorCode);
        return;
      case "stream-stopped":
        this.sendStreams.get(e.streamId)?.onStopped(e.errorCode);
        return;
      case "stream-finished":
        this.sendStreams.get(e.streamId)?.onFinished();
        this.releaseStream(e.streamId);
        return;
      case "streams-available":
        for (const w of this.openWaiters.splice(0)) w.resolve();
        return;
      case "datagram": {
        const w = this.datagramWaiters.shift();
        if (w) w.resolve(e.data);
        else {
          // Datagrams not read yet: bounded like the connection's queue, the oldest dropped first.
          if (this.datagrams.length >= this.conn.datagramQueueLength) this.datagrams.shift();
          if (this.conn.datagramQueueLength > 0) this.datagrams.push(e.data);
        }
        return;
      }
      case "session-ticket":
        if (this.ticketListeners.length === 0) {
          if (this.earlyTickets.length >= 4) this.earlyTickets.shift();
          this.earlyTickets.push(e.ticket);
        }
        for (const l of this.ticketListeners) l(e.ticket);
        return;
      case "new-token":
        for (const l of this.tokenListeners) l(e.token);
        return;
      case "closed":
        this.onClosed(e.reason);
        return;
      default:
        return;
    }
  }

  private onClosed(reason: ConnectionCloseReason): void {
    if (this.closedReason) return;
    this.closedReason = reason;
    const err = new ConnectionClosedError(reason);
    this.established.reject(err);
    this.earlyDataAnswer.resolve(false);
    for (const s of this.sendStreams.values()) s.onClosed(reason);
    for (const s of this.recvStreams.values()) s.onClosed(reason);
    for (const w of this.biWaiters.splice(0)) w.resolve(null);
    for (const w of this.uniWaiters.splice(0)) w.resolve(null);
    for (const w of this.datagramWaiters.splice(0)) w.resolve(null);
    for (const w of this.openWaiters.splice(0)) w.reject(err);
    this.closedDeferred.resolve(reason);
    if (this.ownsEndpoint) void this.endpoint.close();
  }
}

// -------------------------------------------------------------------------------------------------
// connect() and listen()

export interface ConnectOptions {
  /** Host name or IP address of the server. */
  readonly host: string;
  readonly port: number;
  /** Name for SNI and certificate verification; default `host`. */
  readonly serverName?: string;
  /** ALPN protocols to offer, in preference order. */
  readonly alpn: readonly string[];
  /** Trust anchors (PEM) instead of Node's root store. */
  readonly ca?: string | readonly string[];
  /** Accept any server certificate (testing only). */
  readonly insecure?: boolean;
  /** Accept a server whose leaf certificate has one of these SHA-256 hashes (WebTransport style). */
  readonly serverCertificateHashes?: readonly Uint8Array[];
  readonly transport?: Partial<TransportConfig>;
  /**
   * QUIC version to start with (default v1). A reserved version 0x?a?a?a?a (`greaseVersion()`,
   * RFC 9000 §15) probes the server: its Version Negotiation makes `connect` reject with a
   * {@link ConnectionClosedError} whose reason is `version-mismatch`, listing the server's versions
   * — unless `versions` names one of them, which the client then tries (RFC 9368 §2.1).
   */
  readonly version?: number;
  /**
   * Versions offered for compatible version negotiation (RFC 9368), in preference order; the
   * server may switch the connection to any of them (e.g. `[QUIC_V2, QUIC_V1]`: start in v1, get
   * upgraded to v2). Default: `version`, then the other supported version (none after a reserved
   * `version`).
   */
  readonly versions?: readonly number[];
  /** TLS cipher suites to offer, by id (e.g. 0x1303), in preference order. */
  readonly cipherSuites?: readonly number[];
  /** Client certificate for mutual TLS. */
  readonly certificate?: { readonly certificatePem: string; readonly privateKeyPem: string };
  /** SSLKEYLOGFILE-format lines; default: append to $SSLKEYLOGFILE when set. */
  readonly keyLog?: (line: string) => void;
  /** Use this endpoint instead of a new one (several connections on one socket). */
  readonly endpoint?: Endpoint;
  /**
   * An address validation token from an earlier connection to this server (see
   * {@link QuicConnection.onNewToken}), sent in the first Initial (RFC 9000 §8.1.3).
   */
  readonly token?: Uint8Array;
  /**
   * A session ticket from an earlier connection to this server (see
   * {@link QuicConnection.onSessionTicket}): the handshake resumes it (RFC 9846 §2.2, no
   * certificate). Ignored when expired or for another server name or QUIC version.
   */
  readonly session?: SessionTicketEntry;
  /**
   * Send 0-RTT (RFC 9001 §4.6) with `session`, when its ticket allows it. Then connect() does not
   * wait for the handshake: it resolves as soon as the ClientHello is ready (quinn's
   * `into_0rtt()`), and streams opened and written right away leave in 0-RTT packets, the first
   * ones in the datagram of the ClientHello. `earlyDataAccepted` tells whether the server took
   * them; if not, their data is sent again in 1-RTT. Await `handshakeComplete` for ALPN, peer
   * certificates and the exporter. Without a session allowing 0-RTT, connect() waits for the
   * handshake as usual (`earlyDataState` is "none").
   *
   * 0-RTT data can be replayed by an attacker (RFC 9001 §9.2, RFC 9846 §8): only send requests
   * that are safe to process twice.
   */
  readonly earlyData?: boolean;
  /**
   * Move to the server's preferred_address, after validating it, once the handshake is confirmed
   * (RFC 9000 §9.6); default true.
   */
  readonly migrateToPreferredAddress?: boolean;
}

function envKeyLog(): ((line: string) => void) | undefined {
  const file = process.env.SSLKEYLOGFILE;
  if (!file) return undefined;
  let failed = false;
  return (line) => {
    // Synchronous, so a key line is on disk before the packets it decrypts leave the socket
    // (Wireshark reads the file while capturing). A bad path warns once and never throws into
    // the connection.
    if (failed) return;
    try {
      appendFileSync(file, `${line}\n`);
    } catch (err) {
      failed = true;
      process.emitWarning(`SSLKEYLOGFILE ${file}: ${(err as Error).message}; key logging disabled`);
    }
  };
}

/**
 * Opens a client connection. Resolves once the handshake completes — or, with `earlyData` and a
 * session allowing 0-RTT, as soon as 0-RTT data can be written (see {@link ConnectOptions.earlyData}).
 */
export async function connect(options: ConnectOptions): Promise<QuicConnection> {
  let address = options.host;
  if (isIP(address) === 0) address = (await lookup(options.host)).address;
  const family = isIP(address) === 6 ? "IPv6" : "IPv4";
  const endpoint =
    options.endpoint ??
    (await Endpoint.bind({ ipv6: family === "IPv6", host: family === "IPv6" ? "::" : "0.0.0.0" }));
  const verifyMode: CertificateVerificationMode = options.insecure
    ? "insecure"
    : options.serverCertificateHashes
      ? { serverCertificateHashes: options.serverCertificateHashes }
      : "normal";
  const creds = options.certificate
    ? loadCredentials({
        certificatePem: options.certificate.certificatePem,
        privateKeyPem: options.certificate.privateKeyPem,
      })
    : undefined;
  const remote: SocketAddress = { address, port: options.port, family };
  let qc: QuicConnection | undefined;
  const pending: ConnectionEvent[] = [];
  const handler: ConnectionHandler = {
    onEvent: (e) => (qc ? qc.handler().onEvent(e) : pending.push(e)),
    onProgress: () => qc?.handler().onProgress(),
  };
  const conn = endpoint.connect(
    remote,
    {
      version: options.version,
      versions: options.versions,
      transport: options.transport,
      keyLog: options.keyLog ?? envKeyLog(),
      token: options.token,
      session: options.session,
      earlyData: options.earlyData,
      migrateToPreferredAddress: options.migrateToPreferredAddress,
      tls: {
        serverName: options.serverName ?? options.host,
        alpnProtocols: options.alpn,
        cipherSuites: options.cipherSuites,
        verifyMode,
        roots:
          options.ca === undefined ? undefined : typeof options.ca === "string" ? [options.ca] : options.ca,
        clientCredentials: creds,
      },
    },
    handler,
  );
  qc = new QuicConnection(conn, endpoint, remote, options.endpoint === undefined);
  const h = qc.handler();
  for (const e of pending.splice(0)) h.onEvent(e);
  // 0-RTT: the application writes now, before the handshake (RFC 9001 §4.6.1).
  if (!conn.canSendEarlyData) await qc.handshakeComplete;
  return qc;
}

export interface ListenOptions {
  readonly host?: string;
  readonly port?: number;
  readonly alpn: readonly string[];
  /**
   * QUIC versions to negotiate to (RFC 9368 compatible negotiation), in our preference order: a
   * client offering one of them is switched to the first it offers. Default: v1 and v2, in the
   * client's order of preference.
   */
  readonly versions?: readonly number[];
  /** PEM certificate chain and key; default: a generated development certificate. */
  readonly certificatePem?: string;
  readonly privateKeyPem?: string;
  readonly privateKey?: KeyObject;
  /** TLS cipher suites to accept, by id, in preference order. */
  readonly cipherSuites?: readonly number[];
  /**
   * Mutual TLS (RFC 9846 §4.3.2): "require" refuses clients without a certificate chaining to
   * `ca` (alert certificate_required), "request" accepts them too. The client's chain is in
   * `peerCertificates`. Resumed connections are not asked again (the ticket carries the identity).
   */
  readonly clientAuth?: { readonly mode: "request" | "require"; readonly ca: string | readonly string[] };
  readonly transport?: Partial<TransportConfig>;
  readonly keyLog?: (line: string) => void;
  /**
   * Validate client addresses with a Retry before keeping state (RFC 9000 §8.1.2): "always",
   * "never" (default) or while more than `whenLoadAbove` handshakes are in progress. Clients
   * presenting a valid NEW_TOKEN token from an earlier connection skip it.
   */
  readonly retry?: RetryPolicy;
  /**
   * Handshakes in progress at once before new clients are refused with CONNECTION_REFUSED (RFC
   * 9000 §5.2.2); default 1024.
   */
  readonly maxHandshakes?: number;
  /** Connections waiting for accept() before new clients are refused; default 1024. */
  readonly acceptQueueLength?: number;
  /** 32-byte key sealing address validation tokens (share it to accept tokens across restarts). */
  readonly addressTokenKey?: Uint8Array;
  /** Give clients NEW_TOKEN tokens for their next connection (RFC 9000 §8.1.3); default true. */
  readonly sendNewTokens?: boolean;
  /**
   * Also listen on this address and advertise it as preferred_address (RFC 9000 §9.6): clients
   * validate it after the handshake and move there. A concrete IP address; port 0 picks one.
   */
  readonly preferredAddress?: { readonly host: string; readonly port?: number };
  /**
   * Session tickets for resumption (RFC 9846 §4.6.1, RFC 9001 §4.5): on by default, sealed by one
   * rotating key for the whole server. `false` sends none; an object tunes them.
   */
  readonly tickets?: boolean | ListenTicketOptions;
  /**
   * Accept 0-RTT from clients resuming with this server's tickets (RFC 9001 §4.6); default off,
   * as in quinn. 0-RTT data can be replayed (RFC 9001 §9.2, RFC 9846 §8): the server accepts a
   * ticket's early data at most once, but an application must only act on early requests that are
   * safe to repeat. 0-RTT is rejected when the transport parameters remembered with a ticket are
   * above the current ones (RFC 9000 §7.4.1). Needs tickets.
   */
  readonly earlyData?: boolean;
}

export interface ListenTicketOptions {
  /**
   * Ticket key (≥ 32 random bytes) shared by the servers of a deployment or kept across restarts;
   * default a random key rotated every `rotationMs`.
   */
  readonly key?: Uint8Array;
  /** Rotation period of the random ticket key, ms (default 12 h). */
  readonly rotationMs?: number;
  /** Ticket lifetime, seconds (clamped to what the key ring keeps and to 7 days). */
  readonly lifetimeSeconds?: number;
  /** NewSessionTicket messages per connection (default 1). */
  readonly count?: number;
}

/** The ticket configuration every connection of a server shares: one key ring, one replay store. */
function serverTickets(options: ListenOptions): ServerTicketConfig | undefined {
  if (options.tickets === false) {
    if (options.earlyData) throw new QuicUsageError("earlyData needs session tickets");
    return undefined;
  }
  const t = typeof options.tickets === "object" ? options.tickets : {};
  const provider = defaultCryptoProvider;
  const keyRing = new TicketKeyRing(provider, { key: t.key, rotationMs: t.rotationMs });
  const earlyData = options.earlyData === true;
  return {
    keyRing,
    count: t.count,
    lifetimeSeconds: t.lifetimeSeconds,
    earlyData,
    // RFC 9846 §8: each ticket's early data is accepted at most once.
    antiReplay: earlyData ? new AntiReplay(provider, Date.now()) : undefined,
  };
}

/** A listening server: an async iterable of incoming connections. */
export class QuicServer implements AsyncIterable<QuicConnection> {
  constructor(
    private readonly endpoint: Endpoint,
    /** The development certificate in use, when none was configured. */
    readonly devCertificate: DevCertificate | undefined,
  ) {}

  get address(): SocketAddress {
    return this.endpoint.localAddress;
  }

  /** The preferred address this server advertises (RFC 9000 §9.6), when it has one. */
  get preferredAddress(): SocketAddress | undefined {
    return this.endpoint.preferredAddress;
  }

  /** Live connections, handshakes in progress, and what address validation did (RFC 9000 §8.1). */
  stats(): {
    connections: number;
    handshakesInProgress: number;
    /** Client Initials refused with CONNECTION_REFUSED (handshake cap or full accept queue). */
    connectionsRefused: number;
    /** Connections waiting for accept(). */
    acceptQueueSize: number;
  } & AddressValidationStats {
    const v = this.endpoint.addressValidationStats;
    return {
      connections: this.endpoint.connectionCount,
      handshakesInProgress: this.endpoint.handshakesInProgress,
      connectionsRefused: this.endpoint.connectionsRefused,
      acceptQueueSize: this.endpoint.acceptQueueSize,
      retriesSent: v?.retriesSent ?? 0,
      retryTokensAccepted: v?.retryTokensAccepted ?? 0,
      newTokensAccepted: v?.newTokensAccepted ?? 0,
      invalidRetryTokens: v?.invalidRetryTokens ?? 0,
      invalidNewTokens: v?.invalidNewTokens ?? 0,
    };
  }

  /** The next incoming connection (its handshake may still be running), or null once closed. */
  async accept(): Promise<QuicConnection | null> {
    let qc: QuicConnection | undefined;
    const conn = await this.endpoint.accept((c, remote) => {
      qc = new QuicConnection(c, this.endpoint, remote, false);
      return qc.handler();
    });
    return conn && qc ? qc : null;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<QuicConnection> {
    for (let c = await this.accept(); c; c = await this.accept()) yield c;
  }

  /** Closes every connection and the socket. */
  close(): Promise<void> {
    return this.endpoint.close();
  }
}

/** Starts a server on `host:port`. */
export async function listen(options: ListenOptions): Promise<QuicServer> {
  let dev: DevCertificate | undefined;
  let chainDer: readonly Uint8Array[];
  let privateKey: KeyObject;
  if (options.certificatePem) {
    const creds = loadCredentials({
      certificatePem: options.certificatePem,
      privateKeyPem: options.privateKeyPem,
      privateKey: options.privateKey,
    });
    chainDer = creds.chainDer;
    privateKey = creds.privateKey;
  } else {
    dev = generateDevCertificate();
    chainDer = [dev.certificateDer];
    privateKey = dev.privateKey;
  }
  const host = options.host ?? "0.0.0.0";
  const tickets = serverTickets(options);
  const endpoint = await Endpoint.bind({
    host,
    port: options.port ?? 0,
    ipv6: isIP(host) === 6,
    keyLog: options.keyLog ?? envKeyLog(),
    retry: options.retry,
    maxHandshakes: options.maxHandshakes,
    acceptQueueLength: options.acceptQueueLength,
    addressTokenKey: options.addressTokenKey,
    sendNewTokens: options.sendNewTokens,
    preferredAddress: options.preferredAddress,
    server: {
      transport: options.transport,
      versions: options.versions,
      tls: {
        credentials: { chainDer, privateKey },
        alpnProtocols: options.alpn,
        cipherSuites: options.cipherSuites,
        tickets,
        clientAuth: options.clientAuth && {
          mode: options.clientAuth.mode,
          roots: typeof options.clientAuth.ca === "string" ? [options.clientAuth.ca] : options.clientAuth.ca,
        },
      },
    },
  });
  return new QuicServer(endpoint, dev);
}

/** Reads a PEM file (helper for CLI and examples). */
export function readPem(path: string): string {
  return readFileSync(path, "utf8");
}
