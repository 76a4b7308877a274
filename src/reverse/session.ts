/**
 * The quic-reverse control session as a sans-IO state machine: control-stream bytes and the time
 * go in; control-stream bytes, events and one timer deadline come out. It reproduces what the Rust
 * crate (quic-reverse 0.1.2, `Session` + `SessionClient`) does on the wire:
 *
 * - Negotiation is ordered: the client (control-stream opener) sends Hello first; the server
 *   answers only after the client's Hello; then the client's HelloAck, then the server's.
 *   Negotiated version = min(peer version, 1), features = local ∧ peer; the HelloAck's features
 *   are ignored, its version must match. A failure sends nothing and stops reading.
 * - After negotiation: Ping is answered at once; unknown Pong/OpenResponse/StreamClose ids are
 *   ignored; Hello/HelloAck are ignored; StreamClose id 0 closes the session and stops reading;
 *   an undecodable frame stops reading (Disconnected) without sending anything.
 *
 * It also pairs accepted opens with their data streams by logical stream id (the StreamBind
 * header), whichever arrives first, with a timeout — instead of Rust's "next incoming stream",
 * which is the same thing against a peer that binds each stream before answering the next request.
 */
import { QuicUsageError } from "../quic/errors.ts";
import { ReverseDecodeError, ReverseSessionError } from "./errors.ts";
import { encodeFrame, FrameReader } from "./frame.ts";
import {
  type CloseCode,
  decodeMessage,
  encodeMessage,
  type HelloMessage,
  type Metadata,
  PROTOCOL_VERSION,
  type ProtocolMessage,
  type RejectCode,
} from "./messages.ts";

export type SessionState = "Init" | "Negotiating" | "Ready" | "Closing" | "Closed" | "Disconnected";
/** "client" opens the control stream and speaks first (normally the QUIC client). */
export type SessionRole = "client" | "server";

export interface SessionConfig {
  readonly role: SessionRole;
  /** Features offered in Hello (default 0). */
  readonly features?: number;
  /** Agent string sent in Hello (default none). */
  readonly agent?: string | null;
  /** Peer protocol versions accepted (default [1]). */
  readonly supportedVersions?: readonly number[];
  /** Whole handshake (default 30 s). */
  readonly negotiationTimeoutMs?: number;
  /** Wait for an OpenResponse (default 30 s). */
  readonly openTimeoutMs?: number;
  /** Wait for an accepted open's data stream (default 10 s). */
  readonly streamBindTimeoutMs?: number;
  /** Wait for a Pong (default 10 s). */
  readonly pingTimeoutMs?: number;
  /** Local open requests in flight (default 100). */
  readonly maxConcurrentRequests?: number;
  /** Peer open requests not answered yet before new ones are refused with LimitExceeded (default 1024). */
  readonly maxPendingIncoming?: number;
}

export type SessionEvent =
  | {
      readonly type: "ready";
      readonly version: number;
      readonly features: number;
      readonly peerAgent: string | null;
    }
  | { readonly type: "negotiation-failed"; readonly error: ReverseSessionError }
  | {
      readonly type: "open-request";
      readonly requestId: bigint;
      readonly service: string;
      readonly metadata: Metadata;
      readonly flags: number;
    }
  /** A local open was accepted and its data stream (bound to `logicalStreamId`) has arrived. */
  | { readonly type: "open-ready"; readonly requestId: bigint; readonly logicalStreamId: bigint }
  | { readonly type: "open-failed"; readonly requestId: bigint; readonly error: ReverseSessionError }
  /** A data stream bound to this id arrived, but no accepted open claimed it in time: reset it. */
  | { readonly type: "bind-expired"; readonly logicalStreamId: bigint }
  | { readonly type: "pong"; readonly sequence: bigint; readonly rttMs: number }
  | { readonly type: "ping-failed"; readonly sequence: bigint; readonly error: ReverseSessionError }
  | {
      readonly type: "stream-close";
      readonly logicalStreamId: bigint;
      readonly code: CloseCode;
      readonly reason: string | null;
    }
  /** StreamClose with id 0: the session is closing (remote: the peer sent it). */
  | {
      readonly type: "closing";
      readonly code: CloseCode;
      readonly reason: string | null;
      readonly remote: boolean;
    }
  /** The peer finished the control stream at a frame boundary. */
  | { readonly type: "closed" }
  /** The session stopped reading after a protocol or transport error. */
  | { readonly type: "disconnected"; readonly error: ReverseSessionError };

/** What {@link ReverseSession.dataStreamBound} decided about an incoming data stream. */
export type BindDecision =
  /** Pairs with an accepted open (an "open-ready" event follows). */
  | "claimed"
  /** Kept until its OpenResponse arrives or the bind timeout ("bind-expired"). */
  | "parked"
  /** Not acceptable (duplicate id, too many parked, session over): reset the stream. */
  | "refused";

const REJECT_TEXT: Record<RejectCode, string> = {
  ServiceUnavailable: "service unavailable",
  UnsupportedService: "unsupported service",
  LimitExceeded: "limit exceeded",
  Unauthorized: "unauthorized",
  InternalError: "internal error",
};

interface PendingOpen {
  deadline: number;
  /** Set once accepted: the data stream's id; the deadline is then the bind deadline. */
  logicalStreamId?: bigint;
}

export class ReverseSession {
  private stateValue: SessionState = "Init";
  private readonly reader = new FrameReader();
  private readerStopped = false;
  private phase: "await-hello" | "await-ack" = "await-hello";
  private negotiationDeadline: number | undefined;
  private version = 0;
  private featuresValue = 0;
  private peerAgentValue: string | null = null;
  private readonly outgoing: Uint8Array[] = [];
  private readonly events: SessionEvent[] = [];
  private nextRequestId = 1n;
  private nextPingSequence = 1n;
  private readonly opens = new Map<bigint, PendingOpen>();
  /** Accepted opens waiting for their data stream, by logical stream id → request id. */
  private readonly awaitingBind = new Map<bigint, bigint>();
  /** Data streams that arrived before their OpenResponse: logical stream id → deadline. */
  private readonly parked = new Map<bigint, number>();
  private readonly pings = new Map<bigint, { sentAt: number; deadline: number }>();
  private readonly incoming = new Set<bigint>();

  private readonly localFeatures: number;
  private readonly agent: string | null;
  private readonly supportedVersions: readonly number[];
  private readonly negotiationTimeoutMs: number;
  private readonly openTimeoutMs: number;
  private readonly streamBindTimeoutMs: number;
  private readonly pingTimeoutMs: number;
  private readonly maxConcurrentRequests: number;
  private readonly maxPendingIncoming: number;

  constructor(readonly config: SessionConfig) {
    this.localFeatures = config.features ?? 0;
    this.agent = config.agent ?? null;
    this.supportedVersions = config.supportedVersions ?? [PROTOCOL_VERSION];
    this.negotiationTimeoutMs = config.negotiationTimeoutMs ?? 30_000;
    this.openTimeoutMs = config.openTimeoutMs ?? 30_000;
    this.streamBindTimeoutMs = config.streamBindTimeoutMs ?? 10_000;
    this.pingTimeoutMs = config.pingTimeoutMs ?? 10_000;
    this.maxConcurrentRequests = config.maxConcurrentRequests ?? 100;
    this.maxPendingIncoming = config.maxPendingIncoming ?? 1024;
    if (this.localFeatures >>> 0 !== this.localFeatures) throw new QuicUsageError("features must be a u32");
  }

  get state(): SessionState {
    return this.stateValue;
  }
  get role(): SessionRole {
    return this.config.role;
  }
  /** Negotiated protocol version (0 before Ready). */
  get negotiatedVersion(): number {
    return this.version;
  }
  /** Negotiated features: local ∧ peer (0 before Ready). */
  get negotiatedFeatures(): number {
    return this.featuresValue;
  }
  get peerAgent(): string | null {
    return this.peerAgentValue;
  }
  /** Local opens waiting for a response or a data stream. */
  get pendingOpens(): number {
    return this.opens.size;
  }
  get pendingPings(): number {
    return this.pings.size;
  }
  /** Nothing more will be read from the peer. */
  get stoppedReading(): boolean {
    return this.readerStopped;
  }

  /** Starts negotiation; the client queues its Hello at once (RFC-less rule: the opener speaks first). */
  start(now: number): void {
    if (this.stateValue !== "Init") throw new QuicUsageError("session already started");
    this.stateValue = "Negotiating";
    this.negotiationDeadline = now + this.negotiationTimeoutMs;
    if (this.config.role === "client") this.send(this.hello());
  }

  // ----------------------------------------------------------------------------------------------
  // input

  /** Control-stream bytes from the peer. */
  receive(chunk: Uint8Array, now: number): void {
    if (this.readerStopped || this.stateValue === "Init") return;
    this.reader.push(chunk);
    while (!this.readerStopped) {
      let message: ProtocolMessage;
      try {
        const payload = this.reader.next();
        if (!payload) return;
        message = decodeMessage(payload);
      } catch (err) {
        if (!(err instanceof ReverseDecodeError)) throw err;
        this.onReadError(err.message);
        return;
      }
      if (this.stateValue === "Negotiating") this.negotiate(message);
      else this.dispatch(message, now);
    }
  }

  /** The peer finished the control stream. */
  receiveEnd(): void {
    if (this.readerStopped || this.stateValue === "Init") return;
    if (this.stateValue === "Negotiating") {
      this.failNegotiation(
        new ReverseSessionError("negotiation-failed", "negotiation failed: negotiation timed out"),
      );
    } else if (this.reader.buffered > 0) {
      this.disconnect(
        new ReverseSessionError(
          "protocol-violation",
          "protocol violation: control stream closed with partial frame",
        ),
      );
    } else {
      this.readerStopped = true;
      this.stateValue = "Closed";
      this.failPending(new ReverseSessionError("session-closed", "session closed"));
      this.events.push({ type: "closed" });
    }
  }

  /** Reading or writing the control stream failed (reset, connection lost). */
  transportError(message: string): void {
    if (this.readerStopped || this.stateValue === "Init") return;
    this.onReadError(message);
  }

  private onReadError(message: string): void {
    if (this.stateValue === "Negotiating") {
      // Rust reports any read/decode failure during negotiation as NegotiationError::Timeout.
      this.failNegotiation(
        new ReverseSessionError("negotiation-failed", "negotiation failed: negotiation timed out"),
      );
    } else {
      this.disconnect(new ReverseSessionError("protocol-violation", `protocol violation: ${message}`));
    }
  }

  private negotiate(m: ProtocolMessage): void {
    if (this.phase === "await-hello") {
      if (m.type !== "Hello") {
        this.unexpected();
        return;
      }
      if (!this.supportedVersions.includes(m.protocolVersion)) {
        this.versionMismatch(this.supportedVersions, m.protocolVersion);
        return;
      }
      this.version = Math.min(m.protocolVersion, PROTOCOL_VERSION);
      this.featuresValue = (this.localFeatures & m.features) >>> 0;
      this.peerAgentValue = m.agent;
      if (this.config.role === "client") this.send(this.helloAck());
      else this.send(this.hello());
      this.phase = "await-ack";
      return;
    }
    if (m.type !== "HelloAck") {
      this.unexpected();
      return;
    }
    // Only the version is checked; each side keeps the feature intersection it computed.
    if (m.selectedVersion !== this.version) {
      this.versionMismatch([this.version], m.selectedVersion);
      return;
    }
    if (this.config.role === "server") this.send(this.helloAck());
    this.stateValue = "Ready";
    this.negotiationDeadline = undefined;
    this.events.push({
      type: "ready",
      version: this.version,
      features: this.featuresValue,
      peerAgent: this.peerAgentValue,
    });
  }

  private unexpected(): void {
    this.failNegotiation(
      new ReverseSessionError(
        "unexpected-message",
        "negotiation failed: unexpected message during negotiation",
      ),
    );
  }

  private versionMismatch(local: readonly number[], remote: number): void {
    this.failNegotiation(
      new ReverseSessionError(
        "version-mismatch",
        `negotiation failed: no compatible protocol version: local supports [${local.join(", ")}], remote supports ${remote}`,
      ),
    );
  }

  /** Like Rust: nothing is sent, reading stops, the state stays Negotiating. */
  private failNegotiation(error: ReverseSessionError): void {
    this.readerStopped = true;
    this.negotiationDeadline = undefined;
    this.events.push({ type: "negotiation-failed", error });
  }

  private dispatch(m: ProtocolMessage, now: number): void {
    switch (m.type) {
      case "OpenRequest":
        // Features and flags are not enforced (as in Rust).
        if (this.incoming.size >= this.maxPendingIncoming) {
          this.send({
            type: "OpenResponse",
            requestId: m.requestId,
            status: { type: "Rejected", code: "LimitExceeded" },
            reason: "too many pending requests",
            logicalStreamId: null,
          });
          return;
        }
        this.incoming.add(m.requestId);
        this.events.push({
          type: "open-request",
          requestId: m.requestId,
          service: m.service,
          metadata: m.metadata,
          flags: m.flags,
        });
        return;
      case "OpenResponse": {
        const open = this.opens.get(m.requestId);
        if (!open || open.logicalStreamId !== undefined) return; // unknown id: ignored
        if (m.status.type === "Rejected") {
          this.opens.delete(m.requestId);
          const code = m.status.code;
          this.events.push({
            type: "open-failed",
            requestId: m.requestId,
            error: new ReverseSessionError(
              "stream-rejected",
              `stream rejected: ${REJECT_TEXT[code]}${m.reason !== null ? `: ${m.reason}` : ""}`,
              { code, reason: m.reason },
            ),
          });
          return;
        }
        // An Accepted response without an id means id 0 (as in Rust).
        const id = m.logicalStreamId ?? 0n;
        open.logicalStreamId = id;
        if (this.parked.delete(id)) {
          this.opens.delete(m.requestId);
          this.events.push({ type: "open-ready", requestId: m.requestId, logicalStreamId: id });
        } else if (this.awaitingBind.has(id)) {
          this.opens.delete(m.requestId);
          this.events.push({
            type: "open-failed",
            requestId: m.requestId,
            error: new ReverseSessionError("protocol-violation", `logical stream id ${id} accepted twice`),
          });
        } else {
          open.deadline = now + this.streamBindTimeoutMs;
          this.awaitingBind.set(id, m.requestId);
        }
        return;
      }
      case "Ping":
        // Answered whether or not PING_PONG was negotiated.
        this.send({ type: "Pong", sequence: m.sequence });
        return;
      case "Pong": {
        const ping = this.pings.get(m.sequence);
        if (!ping) return;
        this.pings.delete(m.sequence);
        this.events.push({ type: "pong", sequence: m.sequence, rttMs: now - ping.sentAt });
        return;
      }
      case "StreamClose":
        if (m.logicalStreamId === 0n) {
          // Session-level close: the Rust reader loop stops here.
          this.readerStopped = true;
          this.enterClosing();
          this.events.push({ type: "closing", code: m.code, reason: m.reason, remote: true });
          return;
        }
        this.events.push({
          type: "stream-close",
          logicalStreamId: m.logicalStreamId,
          code: m.code,
          reason: m.reason,
        });
        return;
      case "Hello":
      case "HelloAck":
        return; // ignored after negotiation (SessionClient logs them)
    }
  }

  private disconnect(error: ReverseSessionError): void {
    this.readerStopped = true;
    this.stateValue = "Disconnected";
    this.failPending(new ReverseSessionError("session-closed", `session closed: ${error.message}`));
    this.events.push({ type: "disconnected", error });
  }

  private enterClosing(): void {
    if (this.stateValue === "Ready") this.stateValue = "Closing";
    this.failPending(new ReverseSessionError("session-closed", "session closed"));
  }

  private failPending(error: ReverseSessionError): void {
    for (const requestId of this.opens.keys()) this.events.push({ type: "open-failed", requestId, error });
    for (const sequence of this.pings.keys()) this.events.push({ type: "ping-failed", sequence, error });
    this.opens.clear();
    this.awaitingBind.clear();
    this.pings.clear();
    for (const logicalStreamId of this.parked.keys())
      this.events.push({ type: "bind-expired", logicalStreamId });
    this.parked.clear();
  }

  /**
   * A data stream arrived whose StreamBind header names `logicalStreamId` (the driver read and
   * checked the header).
   */
  dataStreamBound(logicalStreamId: bigint, now: number): BindDecision {
    const requestId = this.awaitingBind.get(logicalStreamId);
    if (requestId !== undefined) {
      this.awaitingBind.delete(logicalStreamId);
      this.opens.delete(requestId);
      this.events.push({ type: "open-ready", requestId, logicalStreamId });
      return "claimed";
    }
    if (
      this.stateValue !== "Ready" ||
      this.parked.has(logicalStreamId) ||
      this.parked.size >= this.maxConcurrentRequests
    ) {
      return "refused";
    }
    this.parked.set(logicalStreamId, now + this.streamBindTimeoutMs);
    return "parked";
  }

  // ----------------------------------------------------------------------------------------------
  // local operations

  private requireReady(): void {
    if (this.stateValue !== "Ready") {
      throw new ReverseSessionError(
        "session-closed",
        this.stateValue === "Init" || this.stateValue === "Negotiating"
          ? "session not ready"
          : "session closed",
      );
    }
  }

  private requireOpen(): void {
    if (this.stateValue !== "Ready" && this.stateValue !== "Closing") {
      throw new ReverseSessionError("session-closed", "session closed");
    }
  }

  /** Sends an OpenRequest; returns its request id (1, 2, ...). */
  open(service: string, metadata: Metadata, flags: number, now: number): bigint {
    this.requireReady();
    if (this.opens.size >= this.maxConcurrentRequests) {
      throw new ReverseSessionError(
        "limit-exceeded",
        `too many open requests in flight (limit ${this.maxConcurrentRequests})`,
      );
    }
    const requestId = this.nextRequestId++;
    this.send({ type: "OpenRequest", requestId, service, metadata, flags });
    this.opens.set(requestId, { deadline: now + this.openTimeoutMs });
    return requestId;
  }

  /** Accepts a peer's open request: OpenResponse(Accepted, logicalStreamId). Then open and bind a data stream. */
  acceptOpen(requestId: bigint, logicalStreamId: bigint): void {
    if (logicalStreamId === 0n) {
      throw new QuicUsageError("logical stream id 0 is reserved (StreamClose with id 0 closes the session)");
    }
    this.requireOpen();
    if (!this.incoming.delete(requestId)) throw new QuicUsageError(`no pending open request ${requestId}`);
    this.send({
      type: "OpenResponse",
      requestId,
      status: { type: "Accepted" },
      reason: null,
      logicalStreamId,
    });
  }

  rejectOpen(requestId: bigint, code: RejectCode, reason: string | null): void {
    this.requireOpen();
    if (!this.incoming.delete(requestId)) throw new QuicUsageError(`no pending open request ${requestId}`);
    this.send({
      type: "OpenResponse",
      requestId,
      status: { type: "Rejected", code },
      reason,
      logicalStreamId: null,
    });
  }

  /** Sends a Ping; returns its sequence (1, 2, ...). A "pong" or "ping-failed" event follows. */
  ping(now: number): bigint {
    this.requireReady();
    const sequence = this.nextPingSequence++;
    this.send({ type: "Ping", sequence });
    this.pings.set(sequence, { sentAt: now, deadline: now + this.pingTimeoutMs });
    return sequence;
  }

  /** Tells the peer a data stream is closed (StreamClose with its id; 0 is reserved for the session). */
  closeStream(logicalStreamId: bigint, code: CloseCode, reason: string | null): void {
    if (logicalStreamId === 0n)
      throw new QuicUsageError("logical stream id 0 means the whole session: use close()");
    this.requireOpen();
    this.send({ type: "StreamClose", logicalStreamId, code, reason });
  }

  /** Graceful close: StreamClose id 0; the state becomes Closing. */
  close(code: CloseCode, reason: string | null): void {
    this.requireOpen();
    if (this.stateValue === "Closing") return;
    this.send({ type: "StreamClose", logicalStreamId: 0n, code, reason });
    this.enterClosing();
    this.events.push({ type: "closing", code, reason, remote: false });
  }

  // ----------------------------------------------------------------------------------------------
  // output and time

  /** Bytes to write on the control stream, or undefined. */
  pollSend(): Uint8Array | undefined {
    if (this.outgoing.length === 0) return undefined;
    if (this.outgoing.length === 1) return this.outgoing.pop();
    const out = Buffer.concat(this.outgoing.splice(0));
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }

  pollEvent(): SessionEvent | undefined {
    return this.events.shift();
  }

  /** The earliest deadline, or undefined when no timer is needed. */
  nextTimeout(): number | undefined {
    let t = this.negotiationDeadline;
    const consider = (d: number) => {
      if (t === undefined || d < t) t = d;
    };
    for (const o of this.opens.values()) consider(o.deadline);
    for (const p of this.pings.values()) consider(p.deadline);
    for (const d of this.parked.values()) consider(d);
    return t;
  }

  handleTimeout(now: number): void {
    if (this.negotiationDeadline !== undefined && now >= this.negotiationDeadline) {
      this.negotiationDeadline = undefined;
      this.readerStopped = true;
      this.stateValue = "Closed";
      this.events.push({
        type: "negotiation-failed",
        error: new ReverseSessionError("timeout", "timeout: negotiation"),
      });
    }
    for (const [requestId, o] of this.opens) {
      if (now < o.deadline) continue;
      this.opens.delete(requestId);
      if (o.logicalStreamId !== undefined) this.awaitingBind.delete(o.logicalStreamId);
      const what = o.logicalStreamId === undefined ? "open request" : "stream bind";
      this.events.push({
        type: "open-failed",
        requestId,
        error: new ReverseSessionError("timeout", `timeout: ${what}`),
      });
    }
    for (const [sequence, p] of this.pings) {
      if (now < p.deadline) continue;
      this.pings.delete(sequence);
      this.events.push({
        type: "ping-failed",
        sequence,
        error: new ReverseSessionError("timeout", "timeout: ping"),
      });
    }
    for (const [logicalStreamId, deadline] of this.parked) {
      if (now < deadline) continue;
      this.parked.delete(logicalStreamId);
      this.events.push({ type: "bind-expired", logicalStreamId });
    }
  }

  private hello(): HelloMessage {
    // Always version 1, whatever else is supported.
    return {
      type: "Hello",
      protocolVersion: PROTOCOL_VERSION,
      features: this.localFeatures,
      agent: this.agent,
    };
  }

  private helloAck(): ProtocolMessage {
    return { type: "HelloAck", selectedVersion: this.version, selectedFeatures: this.featuresValue };
  }

  private send(m: ProtocolMessage): void {
    this.outgoing.push(encodeFrame(encodeMessage(m)));
  }
}
