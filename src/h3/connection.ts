/**
 * Binds an {@link H3Session} (sans-IO) to a {@link QuicConnection}: reads the peer's
 * unidirectional streams as they arrive, opens ours, executes the session's actions in order and
 * routes its events to one {@link H3Stream} per request stream. Used by `client.ts` and
 * `server.ts`.
 *
 * Backpressure: a request stream's bytes are read from QUIC only when its {@link H3Stream} is
 * asked for the next event (so QUIC flow control holds a slow consumer's peer back), and
 * {@link H3Stream.writeData} resolves once the QUIC send buffer is below its high-water mark.
 * Control and QPACK streams are read eagerly (§6.2.1: "endpoints SHOULD provide enough
 * flow-control credit to keep the peer's control stream from becoming blocked").
 */
import {
  ConnectionClosedError,
  describeReason,
  type QuicConnection,
  type RecvStream,
  type SendStream,
  StreamResetError,
} from "../quic/api.ts";
import { varintLength } from "../quic/bytes.ts";
import type { ConnectionCloseReason } from "../quic/connection/config.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { H3ErrorCode, h3ErrorName } from "./error-codes.ts";
import type { PriorityParameters } from "./priority.ts";
import type { QpackFieldInput } from "./qpack/encoder.ts";
import {
  type H3Action,
  type H3Event,
  H3Session,
  type H3SessionOptions,
  type LocalUniStream,
} from "./session.ts";
import type { H3Settings } from "./settings.ts";

const EMPTY = new Uint8Array(0);
const noop = (): void => {};

/**
 * A request stream was aborted: reset by the peer, or by us after a stream error. `retryable`:
 * the server did not process the request (H3_REQUEST_REJECTED or above its GOAWAY, RFC 9114
 * §4.1.1, §5.2), so it can be sent again on another connection.
 */
export class H3StreamAbortedError extends Error {
  override readonly name = "H3StreamAbortedError";
  constructor(
    readonly streamId: number,
    readonly code: number,
    readonly remote: boolean,
    readonly retryable: boolean,
    reason: string,
  ) {
    super(
      `stream ${streamId} ${remote ? "reset by the peer" : "aborted"}: ${h3ErrorName(code)}${reason ? ` (${reason})` : ""}`,
    );
  }
}

/** The HTTP/3 connection closed (locally, by the peer, or by the transport). */
export class H3ConnectionClosedError extends Error {
  override readonly name = "H3ConnectionClosedError";
  constructor(
    readonly code: number,
    readonly remote: boolean,
    reason: string,
  ) {
    super(`HTTP/3 connection closed: ${reason || h3ErrorName(code)}`);
  }
}

/** Application code (or 0) and text of a QUIC close reason. */
function closeInfo(r: ConnectionCloseReason): { code: number; reason: string } {
  if (r.kind === "application") return { code: Number(r.code), reason: describeReason(r) };
  return { code: 0, reason: describeReason(r) };
}

interface LocalUni {
  stream: SendStream | undefined;
  queue: Uint8Array[];
}

/**
 * QUIC scheduler urgency of our control and QPACK streams: ahead of every request stream. A
 * field section that references new dynamic-table entries is blocked at the peer until their
 * encoder instructions arrive; if response DATA could use up the connection's flow-control credit
 * first, the peer would never release credit for the blocked streams and the connection would
 * deadlock (RFC 9204 §2.1.2, §2.1.3). Seen with ngtcp2's gtlsclient and four 5 MiB echoes.
 */
export const CRITICAL_STREAM_URGENCY = 0;

/**
 * The QUIC scheduler urgency of a request stream with HTTP urgency `u` (RFC 9218 §4.1, 0–7): one
 * level below, so that {@link CRITICAL_STREAM_URGENCY} stays ahead of all of them; u=6 and u=7
 * share the last level (the scheduler has eight).
 */
export function schedulerUrgency(u: number): number {
  return Math.min(7, Math.max(0, Math.trunc(u)) + 1);
}

/** One request stream, seen from the application. */
export class H3Stream {
  private readonly queue: H3Event[] = [];
  private waiter: (() => void) | undefined;
  private reading = false;
  private finSeen = false;
  /** The receiving side delivered its last event (end, error) or was abandoned. */
  private recvDone = false;
  private failure: Error | undefined;
  /** Set when the peer stopped our sending half (STOP_SENDING) or the stream was aborted. */
  sendClosedCode: number | undefined;
  /** @internal the last write's promise (backpressure). */
  lastWrite: Promise<void> = Promise.resolve();
  private readonly stoppedListeners: ((code: number) => void)[] = [];

  constructor(
    private readonly h3: H3Connection,
    readonly id: number,
    /** @internal */ readonly send: SendStream,
    /** @internal */ readonly recv: RecvStream,
  ) {}

  /**
   * The next event of this stream's receiving side ("request", "informational", "response",
   * "data", "trailers", "end"), or null once it is over. Throws {@link H3StreamAbortedError} or
   * {@link H3ConnectionClosedError}. One caller at a time.
   */
  async nextEvent(): Promise<H3Event | null> {
    for (;;) {
      const e = this.queue.shift();
      if (e !== undefined) return e;
      if (this.failure) throw this.failure;
      if (this.recvDone) return null;
      const session = this.h3.session;
      if (!session.hasStream(this.id) && !this.reading) {
        this.recvDone = true;
        continue;
      }
      if (this.reading || this.finSeen || session.isBlocked(this.id)) {
        await new Promise<void>((resolve) => {
          this.waiter = resolve;
        });
        continue;
      }
      await this.readOnce();
    }
  }

  /** @internal Reads one chunk from QUIC into the session (no-op once FIN was seen). */
  async readOnce(): Promise<void> {
    if (this.reading || this.finSeen) return;
    const session = this.h3.session;
    this.reading = true;
    let chunk: Uint8Array | null;
    try {
      chunk = await this.recv.read();
    } catch (err) {
      this.reading = false;
      if (err instanceof StreamResetError) {
        session.streamReset(this.id, err.errorCode);
        this.h3.flush();
        if (this.queue.length === 0 && !this.failure) this.recvDone = true;
      } else if (err instanceof ConnectionClosedError) {
        this.h3.onTransportClosed(err.reason);
      } else throw err;
      return;
    }
    this.reading = false;
    if (chunk === null) {
      this.finSeen = true;
      session.receive(this.id, EMPTY, true);
    } else {
      session.receive(this.id, chunk, false);
    }
    this.h3.flush();
  }

  /** @internal whether the receiving side saw FIN or ended. */
  get receiveEnded(): boolean {
    return this.finSeen || this.recvDone || this.failure !== undefined;
  }

  /** Sends the header section (request head is sent by {@link H3Connection.openRequest}). */
  sendHeaders(fields: readonly QpackFieldInput[], fin = false): boolean {
    const ok = this.h3.session.sendHeaders(this.id, fields, fin);
    this.h3.flush();
    return ok;
  }

  /** Sends trailers and FIN. */
  sendTrailers(fields: readonly QpackFieldInput[]): boolean {
    const ok = this.h3.session.sendTrailers(this.id, fields);
    this.h3.flush();
    return ok;
  }

  /**
   * Sends one DATA frame; resolves once the transport buffers less than its high-water mark.
   * Resolves false when the sending half is closed (peer STOP_SENDING, reset, connection gone).
   */
  async writeData(data: Uint8Array, fin = false): Promise<boolean> {
    if (this.sendClosedCode !== undefined || this.h3.session.isClosed) return false;
    const ok = this.h3.session.sendData(this.id, data, fin);
    this.h3.flush();
    if (!ok) return false;
    try {
      await this.lastWrite;
    } catch {
      return false;
    }
    return this.sendClosedCode === undefined;
  }

  /** Ends the sending half (FIN). */
  finish(): boolean {
    if (this.h3.session.isClosed) return false;
    const ok = this.h3.session.finish(this.id);
    this.h3.flush();
    return ok;
  }

  /** Aborts both directions (default H3_REQUEST_CANCELLED, RFC 9114 §4.1.1). */
  cancel(code: number = H3ErrorCode.H3_REQUEST_CANCELLED): void {
    this.h3.session.cancel(this.id, code);
    this.h3.flush();
    this.sendClosedCode ??= code;
    this.recvDone = true;
    this.wake();
  }

  /** Stops reading (STOP_SENDING, default H3_NO_ERROR, §4.1); the response may still be sent. */
  stopReading(code: number = H3ErrorCode.H3_NO_ERROR): void {
    this.h3.session.stopReading(this.id, code);
    this.h3.flush();
    this.recvDone = true;
    this.wake();
  }

  /** Calls `listener` when the peer stops our sending half (or the stream is aborted). */
  onStopped(listener: (code: number) => void): void {
    if (this.sendClosedCode !== undefined) listener(this.sendClosedCode);
    else this.stoppedListeners.push(listener);
  }

  /**
   * RFC 9218 priority of our sending half: HTTP urgency 0–7 (lower first), mapped onto the QUIC
   * scheduler by {@link schedulerUrgency}.
   */
  setPriority(urgency: number, incremental: boolean): void {
    try {
      this.send.setPriority(schedulerUrgency(urgency), incremental);
    } catch {
      // stream already gone
    }
  }

  /** @internal */
  push(e: H3Event): void {
    switch (e.type) {
      case "stopped":
        this.closeSend(e.code);
        return;
      case "stream-error":
        this.failure = new H3StreamAbortedError(this.id, e.code, e.remote, e.retryable, e.reason);
        this.closeSend(e.code);
        break;
      case "end":
        this.queue.push(e);
        this.recvDone = true;
        break;
      default:
        this.queue.push(e);
    }
    this.wake();
  }

  /** @internal */
  fail(err: Error): void {
    this.failure ??= err;
    this.closeSend(H3ErrorCode.H3_INTERNAL_ERROR);
    this.wake();
  }

  private closeSend(code: number): void {
    if (this.sendClosedCode !== undefined) return;
    this.sendClosedCode = code;
    for (const l of this.stoppedListeners.splice(0)) l(code);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}

/**
 * A peer stream that announced a WebTransport session (draft-ietf-webtrans-http3-02 §4), handed
 * over with its QUIC halves. `initial`: the bytes that followed the preamble in the same read
 * (read them before `recv`); `fin`: the stream already ended after them.
 */
export interface H3WebTransportStream {
  readonly connection: H3Connection;
  readonly sessionId: number;
  readonly streamId: number;
  readonly send: SendStream | undefined;
  readonly recv: RecvStream;
  readonly initial: Uint8Array;
  readonly fin: boolean;
}

export interface H3ConnectionOptions extends Omit<H3SessionOptions, "role"> {
  /** Server: called for every new request stream (its first event will be "request"). */
  onRequest?: ((stream: H3Stream) => void) | undefined;
  /**
   * With `webTransport`: receives every WebTransport stream the peer opens. Without it they are
   * refused (STOP_SENDING / RESET_STREAM with H3_STREAM_CREATION_ERROR).
   */
  onWebTransportStream?: ((stream: H3WebTransportStream) => void) | undefined;
}

/** An HTTP/3 connection over a QUIC connection. */
export class H3Connection {
  readonly session: H3Session;
  private readonly streams = new Map<number, H3Stream>();
  private readonly localUni = new Map<LocalUniStream, LocalUni>();
  private readonly peerUni = new Map<number, RecvStream>();
  private readonly onRequest: ((stream: H3Stream) => void) | undefined;
  /** The WebTransport layer's receiver of peer WebTransport streams (settable once). */
  onWebTransportStream: ((stream: H3WebTransportStream) => void) | undefined;
  private readonly datagramHandlers = new Map<number, (payload: Uint8Array) => void>();
  /** Peer streams handed to the WebTransport layer: no longer read here. */
  private readonly handedOff = new Set<number>();
  private settingsResolve!: (s: H3Settings) => void;
  private closedResolve!: (e: H3ConnectionClosedError) => void;
  private readonly goawayListeners: ((id: bigint) => void)[] = [];
  private readonly unacknowledged = new Set<Promise<void>>();
  private flushing = false;
  /** Request streams an action or event touched during this flush (checked for retirement). */
  private readonly touched: number[] = [];
  /** Resolves with the peer's SETTINGS. */
  readonly settings: Promise<H3Settings>;
  /** Resolves when the HTTP/3 connection is closed (never rejects). */
  readonly closed: Promise<H3ConnectionClosedError>;

  constructor(
    readonly quic: QuicConnection,
    options: H3ConnectionOptions = {},
  ) {
    this.session = new H3Session({ ...options, role: quic.side });
    this.onRequest = options.onRequest;
    this.onWebTransportStream = options.onWebTransportStream;
    this.settings = new Promise((resolve) => {
      this.settingsResolve = resolve;
    });
    this.closed = new Promise((resolve) => {
      this.closedResolve = resolve;
    });
    void quic.closed.then((r) => this.onTransportClosed(r));
    this.flush();
    void this.acceptUniLoop();
    if (quic.side === "server" || this.session.webTransport) void this.acceptBiLoop();
    if (this.session.localSettings.h3Datagram) void this.datagramLoop();
  }

  /**
   * Receives the HTTP/3 datagrams (RFC 9297) of request stream `streamId` (e.g. an extended
   * CONNECT); `undefined` unregisters. Datagrams for streams without a receiver are dropped.
   */
  onDatagram(streamId: number, handler: ((payload: Uint8Array) => void) | undefined): void {
    if (handler === undefined) this.datagramHandlers.delete(streamId);
    else this.datagramHandlers.set(streamId, handler);
  }

  /** The largest HTTP/3 datagram payload for `streamId` (0: the peer takes no datagrams). */
  maxDatagramPayload(streamId: number): number {
    const max = this.quic.maxDatagramSize;
    return max === 0 ? 0 : Math.max(0, max - varintLength(streamId / 4));
  }

  /**
   * Sends an HTTP/3 datagram for request stream `streamId` (unreliable). QuicUsageError when the
   * peer did not enable H3 datagrams or the payload exceeds {@link maxDatagramPayload}.
   */
  sendDatagram(streamId: number, payload: Uint8Array): void {
    const max = this.maxDatagramPayload(streamId);
    if (payload.length > max) {
      throw new QuicUsageError(`datagram payload of ${payload.length} bytes exceeds the maximum of ${max}`);
    }
    this.session.sendDatagram(streamId, payload);
    this.flush();
  }

  get isClosed(): boolean {
    return this.session.isClosed;
  }

  /** Client: whether a new request may be opened (no GOAWAY, not closed). */
  get canRequest(): boolean {
    return this.session.canRequest;
  }

  /** Calls `listener` with the identifier of every GOAWAY the peer sends. */
  onGoaway(listener: (id: bigint) => void): void {
    this.goawayListeners.push(listener);
  }

  /**
   * Client: opens a request stream and sends the header section (`fields` with pseudo-headers
   * first); with `fin` the request has no content.
   */
  async openRequest(fields: readonly QpackFieldInput[], fin: boolean): Promise<H3Stream> {
    if (!this.session.canRequest) {
      throw new H3ConnectionClosedError(H3ErrorCode.H3_NO_ERROR, false, "no new requests on this connection");
    }
    const { send, recv } = await this.quic.openBi();
    const s = new H3Stream(this, send.id, send, recv);
    this.streams.set(s.id, s);
    this.watchStopped(s);
    try {
      this.session.sendRequest(s.id, fields, fin);
    } catch (err) {
      // Local misuse (e.g. a field section above the peer's limit): abandon the QUIC stream.
      this.streams.delete(s.id);
      send.reset(H3ErrorCode.H3_REQUEST_CANCELLED);
      recv.stop(H3ErrorCode.H3_REQUEST_CANCELLED);
      throw err;
    }
    this.flush();
    return s;
  }

  /**
   * Client: reprioritizes request stream `streamId` with a PRIORITY_UPDATE frame (RFC 9218 §7.2);
   * the server applies it to its response's scheduling.
   */
  sendPriorityUpdate(streamId: number, priority: PriorityParameters): void {
    this.session.sendPriorityUpdate(streamId, priority);
    this.flush();
  }

  /** Starts or continues a graceful shutdown with GOAWAY (see {@link H3Session.goaway}). */
  goaway(id?: bigint): void {
    if (this.session.isClosed) return;
    this.session.goaway(id);
    this.flush();
  }

  /** Closes the connection (default H3_NO_ERROR). */
  close(code: number = H3ErrorCode.H3_NO_ERROR, reason = ""): void {
    this.session.close(code, reason);
    this.flush();
  }

  /** Request streams this adapter still routes events to (observability, tests). */
  get trackedStreams(): number {
    return this.streams.size;
  }

  /** Request streams still active. */
  get activeRequests(): number {
    return this.session.activeRequests;
  }

  /**
   * Resolves once every stream this side finished has been acknowledged by the peer (or the
   * connection closed): what a graceful shutdown waits for before CONNECTION_CLOSE.
   */
  async allAcknowledged(): Promise<void> {
    while (this.unacknowledged.size > 0) await Promise.all([...this.unacknowledged]);
  }

  /** @internal Executes the session's actions and routes its events. */
  flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (;;) {
        const actions = this.session.takeActions();
        const events = this.session.takeEvents();
        if (actions.length === 0 && events.length === 0) break;
        for (const a of actions) this.execute(a);
        for (const e of events) this.dispatch(e);
      }
      // Forget streams the session retired (both halves done): their H3Stream objects stay valid
      // for whoever holds them (queued events), but nothing more will be routed to them.
      for (const id of this.touched) if (!this.session.hasStream(id)) this.streams.delete(id);
    } finally {
      this.touched.length = 0;
      this.flushing = false;
    }
  }

  /** @internal */
  onTransportClosed(r: ConnectionCloseReason): void {
    const { code, reason } = closeInfo(r);
    this.session.transportClosed(code, reason);
    this.flush();
  }

  private execute(a: H3Action): void {
    if (a.type === "write" || a.type === "reset" || a.type === "stop") this.touched.push(a.streamId);
    switch (a.type) {
      case "uni-write":
        this.uniWrite(a.stream, a.data);
        return;
      case "write": {
        const s = this.streams.get(a.streamId);
        if (s === undefined) return;
        if (a.data.length > 0) {
          const p = s.send.write(a.data);
          p.catch(noop);
          s.lastWrite = p;
        }
        if (a.fin) {
          // Tracked until the peer acknowledges the FIN, so a graceful shutdown does not cut off
          // a response that the session considers complete but that is still in flight.
          const done = s.send.finish().catch(noop);
          this.unacknowledged.add(done);
          void done.then(() => this.unacknowledged.delete(done));
        }
        return;
      }
      case "reset": {
        try {
          this.streams.get(a.streamId)?.send.reset(a.code);
        } catch {
          // already gone
        }
        return;
      }
      case "stop": {
        try {
          (this.streams.get(a.streamId)?.recv ?? this.peerUni.get(a.streamId))?.stop(a.code);
        } catch {
          // already gone
        }
        return;
      }
      case "close":
        void this.quic.close(a.code, a.reason).catch(noop);
        return;
      case "datagram":
        try {
          this.quic.sendDatagram(a.data);
        } catch {
          // closed, or the path shrank under the payload: datagrams are unreliable
        }
        return;
    }
  }

  private dispatch(e: H3Event): void {
    switch (e.type) {
      case "settings":
        this.settingsResolve(e.settings);
        return;
      case "goaway":
        for (const l of this.goawayListeners) l(e.id);
        return;
      case "closed": {
        const err = new H3ConnectionClosedError(e.code, e.remote, e.reason);
        for (const s of this.streams.values()) s.fail(err);
        this.streams.clear();
        this.closedResolve(err);
        return;
      }
      case "priority":
        this.streams.get(e.streamId)?.setPriority(e.priority.urgency, e.priority.incremental);
        return;
      case "request":
        this.streams.get(e.streamId)?.setPriority(e.head.priority.urgency, e.head.priority.incremental);
        this.streams.get(e.streamId)?.push(e);
        return;
      case "datagram":
        this.datagramHandlers.get(e.streamId)?.(e.payload);
        return;
      case "webtransport-stream":
        this.handOff(e);
        return;
      default: {
        const s = this.streams.get(e.streamId);
        if (s === undefined) return;
        s.push(e);
        this.touched.push(e.streamId);
      }
    }
  }

  private handOff(e: Extract<H3Event, { type: "webtransport-stream" }>): void {
    this.handedOff.add(e.streamId);
    let send: SendStream | undefined;
    let recv: RecvStream | undefined;
    if (e.bidi) {
      const s = this.streams.get(e.streamId);
      this.streams.delete(e.streamId);
      send = s?.send;
      recv = s?.recv;
    } else {
      recv = this.peerUni.get(e.streamId);
    }
    if (recv === undefined) return;
    const hook = this.onWebTransportStream;
    if (hook === undefined) {
      // Not ours to serve: refuse it like an unknown stream type (RFC 9114 §6.2).
      try {
        recv.stop(H3ErrorCode.H3_STREAM_CREATION_ERROR);
        send?.reset(H3ErrorCode.H3_STREAM_CREATION_ERROR);
      } catch {
        // already gone
      }
      return;
    }
    hook({
      connection: this,
      sessionId: e.sessionId,
      streamId: e.streamId,
      send,
      recv,
      initial: e.data.slice(),
      fin: e.fin,
    });
  }

  private async datagramLoop(): Promise<void> {
    for (let d = await this.quic.readDatagram(); d; d = await this.quic.readDatagram()) {
      this.session.receiveDatagram(d);
      this.flush();
      if (this.session.isClosed) return;
    }
  }

  private uniWrite(name: LocalUniStream, data: Uint8Array): void {
    let u = this.localUni.get(name);
    if (u === undefined) {
      const nu: LocalUni = { stream: undefined, queue: [] };
      u = nu;
      this.localUni.set(name, nu);
      this.quic.openUni().then(
        (s) => {
          nu.stream = s;
          s.setPriority(CRITICAL_STREAM_URGENCY, false);
          for (const d of nu.queue.splice(0)) s.write(d).catch(noop);
          void s.stopped.then(() => {
            this.session.localUniStopped(name);
            this.flush();
          });
        },
        () => {
          nu.queue.length = 0;
        },
      );
    }
    // SendStream.write queues synchronously (the promise is only backpressure): order is kept.
    if (u.stream) u.stream.write(data).catch(noop);
    else u.queue.push(data);
  }

  private watchStopped(s: H3Stream): void {
    void s.send.stopped.then((code) => {
      this.session.streamStopped(s.id, code);
      this.flush();
    });
  }

  private async acceptUniLoop(): Promise<void> {
    for (let recv = await this.quic.acceptUni(); recv; recv = await this.quic.acceptUni()) {
      const r = recv;
      this.peerUni.set(r.id, r);
      this.session.peerStreamOpened(r.id);
      this.flush();
      void this.readUni(r);
    }
  }

  private async readUni(recv: RecvStream): Promise<void> {
    try {
      for (;;) {
        const chunk = await recv.read();
        if (this.session.isClosed) return;
        this.session.receive(recv.id, chunk ?? EMPTY, chunk === null);
        this.flush();
        if (chunk === null || this.handedOff.has(recv.id)) return;
      }
    } catch (err) {
      if (err instanceof StreamResetError) {
        this.session.streamReset(recv.id, err.errorCode);
        this.flush();
      }
    } finally {
      this.peerUni.delete(recv.id);
    }
  }

  private async acceptBiLoop(): Promise<void> {
    for (let bi = await this.quic.acceptBi(); bi; bi = await this.quic.acceptBi()) {
      const id = bi.send.id;
      const s = new H3Stream(this, id, bi.send, bi.recv);
      this.streams.set(id, s);
      this.session.peerStreamOpened(id);
      this.flush();
      if (!this.session.hasStream(id)) {
        this.streams.delete(id); // rejected (above our GOAWAY, or refused)
        continue;
      }
      if (this.session.webTransport) {
        void this.classifyPeerBi(s);
        continue;
      }
      this.watchStopped(s);
      this.onRequest?.(s);
    }
  }

  /**
   * WebTransport: reads a new peer bidi stream until the session knows whether it is a request or
   * a WebTransport stream (draft-ietf-webtrans-http3-02 §4.2: the 0x41 signal), then serves it.
   */
  private async classifyPeerBi(s: H3Stream): Promise<void> {
    while (this.session.isUndecided(s.id) && !s.receiveEnded) await s.readOnce();
    if (this.handedOff.has(s.id) || this.quic.side === "client") return;
    if (!this.session.hasStream(s.id)) {
      this.streams.delete(s.id); // aborted before its head
      return;
    }
    this.watchStopped(s);
    this.onRequest?.(s);
  }
}
