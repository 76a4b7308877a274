/**
 * `SessionClient`: the async driver of a {@link ReverseSession} over a {@link ReverseConnection}
 * (shaped like quic-reverse's SessionClient). It owns the control stream (opened by the "client"
 * role, accepted by the "server" role), one timer, a control-stream reader, and a loop that
 * accepts the peer's data streams and reads their StreamBind headers. All protocol decisions are
 * the session's.
 *
 *     const client = await SessionClient.establish(conn, { features: Features.PING_PONG });
 *     const { send, recv } = await client.open("ssh");            // relay side
 *     for await (const req of client.requests()) await client.accept(req);   // edge side
 */
import { type Deferred, deferred } from "../quic/deferred.ts";
import { BoundRecvStream } from "./bound-recv-stream.ts";
import type {
  ReverseBiStream,
  ReverseConnection,
  ReverseRecvStream,
  ReverseSendStream,
} from "./connection.ts";
import { ReverseDecodeError, ReverseSessionError } from "./errors.ts";
import type { CloseCode, Metadata, RejectCode } from "./messages.ts";
import {
  ReverseSession,
  type SessionConfig,
  type SessionEvent,
  type SessionRole,
  type SessionState,
} from "./session.ts";
import { decodeStreamBind, encodeStreamBind, STREAM_BIND_SIZE } from "./stream-bind.ts";

export interface SessionClientOptions extends Omit<SessionConfig, "role"> {
  /** Default: "client" on the QUIC client, "server" on the QUIC server. */
  readonly role?: SessionRole;
  /** Milliseconds, monotonic (default performance.now). */
  readonly clock?: () => number;
}

/** An open request from the peer, to {@link SessionClient.accept} or {@link SessionClient.rejectOpen}. */
export interface OpenRequest {
  readonly requestId: bigint;
  readonly service: string;
  readonly metadata: Metadata;
  readonly flags: number;
}

/** A bound data stream. */
export interface ReverseDataStream<S extends ReverseSendStream = ReverseSendStream> {
  readonly logicalStreamId: bigint;
  readonly send: S;
  readonly recv: BoundRecvStream;
}

type SendOf<C extends ReverseConnection> = Awaited<ReturnType<C["openBi"]>>["send"];

/** Application error code used to reset data streams nobody claimed. */
const BIND_REFUSED = 0x1;

export class SessionClient<C extends ReverseConnection = ReverseConnection> {
  readonly session: ReverseSession;
  private readonly clock: () => number;
  private readonly bindTimeoutMs: number;
  private control: ReverseBiStream | undefined;
  private writeChain: Promise<void> = Promise.resolve();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt: number | undefined;
  private readonly readyDeferred = deferred<void>();
  private readonly endedDeferred = deferred<SessionState>();
  private readonly opens = new Map<bigint, Deferred<bigint>>();
  private readonly pings = new Map<bigint, Deferred<number>>();
  /** Data streams whose header was read, by logical stream id, until an open claims them. */
  private readonly bound = new Map<bigint, { stream: ReverseBiStream; rest: Uint8Array }>();
  private readonly requestQueue: OpenRequest[] = [];
  private requestWaiters: Deferred<OpenRequest | null>[] = [];
  private readonly streamCloseListeners: ((id: bigint, code: CloseCode, reason: string | null) => void)[] =
    [];
  private acceptLock: Promise<void> = Promise.resolve();
  private nextLogicalStreamId = 1n;
  private ended = false;
  private endError: ReverseSessionError | undefined;

  private constructor(
    readonly connection: C,
    config: SessionConfig,
    clock: () => number,
  ) {
    this.session = new ReverseSession(config);
    this.clock = clock;
    this.bindTimeoutMs = config.streamBindTimeoutMs ?? 10_000;
  }

  /**
   * Opens (client role) or accepts (server role) the control stream and negotiates. Resolves when
   * the session is Ready; rejects with a {@link ReverseSessionError} when negotiation fails (the
   * connection is left open, as in Rust: close it if you want to).
   */
  static async establish<C extends ReverseConnection>(
    connection: C,
    options: SessionClientOptions = {},
  ): Promise<SessionClient<C>> {
    const role = options.role ?? (connection.side === "server" ? "server" : "client");
    const client = new SessionClient(
      connection,
      { ...options, role },
      options.clock ?? (() => performance.now()),
    );
    await client.run();
    return client;
  }

  private async run(): Promise<void> {
    this.session.start(this.clock());
    this.pump(); // arms the negotiation timer
    const opening = this.session.role === "client" ? this.connection.openBi() : this.acceptControlStream();
    const control = await Promise.race([
      opening.catch((err: Error) => {
        this.session.transportError(`control stream: ${err.message}`);
        this.pump();
        return undefined;
      }),
      // The negotiation may time out before the peer even opens the control stream.
      this.readyDeferred.promise.then(
        () => undefined,
        () => undefined,
      ),
    ]);
    if (control && !this.ended) {
      this.control = control;
      this.pump(); // the client's Hello
      void this.readControl(control.recv);
    }
    await this.readyDeferred.promise;
    void this.acceptDataStreams();
  }

  private async acceptControlStream(): Promise<ReverseBiStream> {
    const s = await this.connection.acceptBi();
    if (!s) throw new Error("connection closed before the control stream opened");
    return s;
  }

  // ----------------------------------------------------------------------------------------------
  // state

  get state(): SessionState {
    return this.session.state;
  }
  get isReady(): boolean {
    return this.session.state === "Ready";
  }
  /** Resolves with the final state once the session stops (closing, closed, disconnected, failed). */
  get closed(): Promise<SessionState> {
    return this.endedDeferred.promise;
  }
  /** Why the session stopped, when it was an error. */
  get error(): ReverseSessionError | undefined {
    return this.endError;
  }

  /** Called when the peer sends StreamClose for a data stream. */
  onStreamClose(listener: (id: bigint, code: CloseCode, reason: string | null) => void): void {
    this.streamCloseListeners.push(listener);
  }

  // ----------------------------------------------------------------------------------------------
  // operations

  /**
   * Asks the peer to open a stream to `service`: resolves with the data stream once the peer
   * accepted and its stream (with a matching StreamBind header) arrived.
   */
  async open(
    service: string,
    metadata: Metadata = { type: "Empty" },
    flags = 0,
  ): Promise<ReverseDataStream<SendOf<C>>> {
    const requestId = this.session.open(service, metadata, flags, this.clock());
    const d = deferred<bigint>();
    this.opens.set(requestId, d);
    this.pump();
    const id = await d.promise;
    const b = this.bound.get(id)!;
    this.bound.delete(id);
    return {
      logicalStreamId: id,
      send: b.stream.send as SendOf<C>,
      recv: new BoundRecvStream(b.stream.recv, b.rest),
    };
  }

  /** Sends OpenResponse(Accepted). Then open a stream and {@link bindStream} it (or use {@link accept}). */
  async acceptOpen(requestId: bigint, logicalStreamId: bigint): Promise<void> {
    this.session.acceptOpen(requestId, logicalStreamId);
    await this.pumpAndFlush();
  }

  async rejectOpen(requestId: bigint, code: RejectCode, reason: string | null = null): Promise<void> {
    this.session.rejectOpen(requestId, code, reason);
    await this.pumpAndFlush();
  }

  /** Writes the 13-byte StreamBind header on a data stream. */
  async bindStream(send: ReverseSendStream, logicalStreamId: bigint): Promise<void> {
    await send.write(encodeStreamBind(logicalStreamId));
  }

  /**
   * Accepts a request and opens and binds its data stream, one request at a time (so that a Rust
   * peer, which takes the next incoming stream, pairs it right). Ids count up from 1 unless given.
   */
  async accept(request: OpenRequest, logicalStreamId?: bigint): Promise<ReverseDataStream<SendOf<C>>> {
    const previous = this.acceptLock;
    let release!: () => void;
    this.acceptLock = new Promise<void>((r) => {
      release = r;
    });
    await previous;
    try {
      const id = logicalStreamId ?? this.nextLogicalStreamId++;
      await this.acceptOpen(request.requestId, id);
      const stream = await this.connection.openBi();
      await this.bindStream(stream.send, id);
      return {
        logicalStreamId: id,
        send: stream.send as SendOf<C>,
        recv: new BoundRecvStream(stream.recv, undefined),
      };
    } finally {
      release();
    }
  }

  /** Sends a Ping; resolves with the round-trip time in ms. */
  async ping(): Promise<number> {
    const seq = this.session.ping(this.clock());
    const d = deferred<number>();
    this.pings.set(seq, d);
    this.pump();
    return d.promise;
  }

  async closeStream(
    logicalStreamId: bigint,
    code: CloseCode = "Normal",
    reason: string | null = null,
  ): Promise<void> {
    this.session.closeStream(logicalStreamId, code, reason);
    await this.pumpAndFlush();
  }

  /** Graceful close: StreamClose(0), then FIN on the control stream. */
  async close(code: CloseCode = "Normal", reason: string | null = null): Promise<void> {
    if (this.session.state === "Ready") this.session.close(code, reason);
    await this.pumpAndFlush();
    if (this.control) {
      const send = this.control.send;
      this.writeChain = this.writeChain.then(() => send.finish().catch(() => {}));
    }
    this.finish(undefined);
  }

  /** The peer's open requests, until the session ends. */
  async *requests(): AsyncGenerator<OpenRequest> {
    for (;;) {
      const r = this.requestQueue.shift();
      if (r) {
        yield r;
        continue;
      }
      if (this.ended) return;
      const w = deferred<OpenRequest | null>();
      this.requestWaiters.push(w);
      const next = await w.promise;
      if (!next) return;
      yield next;
    }
  }

  // ----------------------------------------------------------------------------------------------
  // driving the session

  private async pumpAndFlush(): Promise<void> {
    this.pump();
    await this.writeChain;
  }

  private pump(): void {
    // Bytes stay queued in the session until the control stream exists.
    const bytes = this.control ? this.session.pollSend() : undefined;
    if (bytes && this.control) {
      const send = this.control.send;
      this.writeChain = this.writeChain.then(() =>
        send.write(bytes).catch((err: Error) => {
          this.session.transportError(`control stream write: ${err.message}`);
          this.pump();
        }),
      );
    }
    for (let e = this.session.pollEvent(); e; e = this.session.pollEvent()) this.onEvent(e);
    this.armTimer();
  }

  private armTimer(): void {
    const at = this.ended ? undefined : this.session.nextTimeout();
    if (at === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = at;
    if (at === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = undefined;
        this.session.handleTimeout(this.clock());
        this.pump();
      },
      Math.max(0, Math.ceil(at - this.clock())),
    );
  }

  private onEvent(e: SessionEvent): void {
    switch (e.type) {
      case "ready":
        this.readyDeferred.resolve();
        return;
      case "negotiation-failed":
        this.readyDeferred.reject(e.error);
        this.finish(e.error);
        return;
      case "open-request": {
        const req: OpenRequest = {
          requestId: e.requestId,
          service: e.service,
          metadata: e.metadata,
          flags: e.flags,
        };
        const w = this.requestWaiters.shift();
        if (w) w.resolve(req);
        else this.requestQueue.push(req);
        return;
      }
      case "open-ready":
        this.opens.get(e.requestId)?.resolve(e.logicalStreamId);
        this.opens.delete(e.requestId);
        return;
      case "open-failed":
        this.opens.get(e.requestId)?.reject(e.error);
        this.opens.delete(e.requestId);
        return;
      case "bind-expired": {
        const b = this.bound.get(e.logicalStreamId);
        this.bound.delete(e.logicalStreamId);
        if (b) abandon(b.stream);
        return;
      }
      case "pong":
        this.pings.get(e.sequence)?.resolve(e.rttMs);
        this.pings.delete(e.sequence);
        return;
      case "ping-failed":
        this.pings.get(e.sequence)?.reject(e.error);
        this.pings.delete(e.sequence);
        return;
      case "stream-close":
        for (const l of this.streamCloseListeners) l(e.logicalStreamId, e.code, e.reason);
        return;
      case "closing":
        if (e.remote) this.finish(undefined);
        return;
      case "closed":
        this.finish(undefined);
        return;
      case "disconnected":
        this.finish(e.error);
        return;
    }
  }

  /** The session stopped: wake everyone waiting, stop the timer. */
  private finish(error: ReverseSessionError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = error;
    this.readyDeferred.reject(error ?? new ReverseSessionError("session-closed", "session closed"));
    for (const w of this.requestWaiters.splice(0)) w.resolve(null);
    for (const b of this.bound.values()) abandon(b.stream);
    this.bound.clear();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = undefined;
    this.endedDeferred.resolve(this.session.state);
  }

  private async readControl(recv: ReverseRecvStream): Promise<void> {
    try {
      while (!this.session.stoppedReading) {
        const chunk = await recv.read();
        if (chunk === null) {
          this.session.receiveEnd();
          break;
        }
        this.session.receive(chunk, this.clock());
        this.pump();
      }
    } catch (err) {
      this.session.transportError(`control stream read: ${(err as Error).message}`);
    }
    this.pump();
  }

  private async acceptDataStreams(): Promise<void> {
    while (!this.ended) {
      const s = await this.connection.acceptBi().catch(() => null);
      if (!s) return;
      if (this.ended) {
        abandon(s);
        return;
      }
      void this.readBind(s);
    }
  }

  private async readBind(s: ReverseBiStream): Promise<void> {
    const header = new Uint8Array(STREAM_BIND_SIZE);
    let have = 0;
    let rest: Uint8Array = new Uint8Array(0);
    // A stream that does not deliver its header in time is abandoned (hostile peers hold nothing).
    const timer = setTimeout(() => abandon(s), this.bindTimeoutMs);
    try {
      while (have < STREAM_BIND_SIZE) {
        const chunk = await s.recv.read();
        if (!chunk)
          throw new ReverseDecodeError("unexpected_eof", "data stream ended inside its StreamBind header");
        const n = Math.min(chunk.length, STREAM_BIND_SIZE - have);
        header.set(chunk.subarray(0, n), have);
        have += n;
        if (n < chunk.length) rest = chunk.slice(n);
      }
      clearTimeout(timer);
      const id = decodeStreamBind(header);
      const decision = this.session.dataStreamBound(id, this.clock());
      if (decision === "refused") {
        abandon(s);
      } else {
        this.bound.set(id, { stream: s, rest });
      }
      this.pump();
    } catch {
      clearTimeout(timer);
      // Not a valid data stream (or it failed): Rust reports "invalid stream bind frame" for it.
      abandon(s);
    }
  }
}

function abandon(s: ReverseBiStream): void {
  try {
    s.recv.stop(BIND_REFUSED);
    s.send.reset(BIND_REFUSED);
  } catch {
    // the connection is already gone
  }
}
