/**
 * The WebTransport sessions of one HTTP/3 connection, and the routing of the peer's WebTransport
 * streams to them by session ID.
 *
 * Streams may arrive before their session is known (the CONNECT response, or the request itself,
 * is still in flight): up to {@link MAX_UNASSOCIATED_STREAMS} are buffered, as Chromium does
 * (quiche's kMaxUnassociatedWebTransportStreams = 24); past that the oldest is refused with
 * WT_BUFFERED_STREAM_REJECTED. Streams for a session that already ended are refused with
 * WT_SESSION_GONE.
 */
import type { H3Connection, H3WebTransportStream } from "../h3/connection.ts";
import { WT_BUFFERED_STREAM_REJECTED, WT_SESSION_GONE } from "./error-codes.ts";

/** Streams held for sessions not known yet. */
export const MAX_UNASSOCIATED_STREAMS = 24;

/**
 * Ended session IDs remembered to refuse late streams with WT_SESSION_GONE. A peer can open and
 * end sessions for the whole life of the connection, so the oldest are forgotten past this; a late
 * stream for a forgotten session is buffered, then refused as unassociated.
 */
export const MAX_ENDED_SESSIONS = 1024;

/** What the registry needs from a session. */
export interface RegisteredSession {
  readonly id: number;
  deliver(s: H3WebTransportStream): void;
}

function refuse(s: H3WebTransportStream, code: number): void {
  try {
    s.recv.stop(code);
    s.send?.reset(code);
  } catch {
    // connection gone
  }
}

export class WebTransportSessions {
  private readonly live = new Map<number, RegisteredSession>();
  private readonly ended = new Set<number>();
  private readonly buffered: H3WebTransportStream[] = [];

  /** Sessions currently open. */
  get size(): number {
    return this.live.size;
  }

  /** Ended session IDs remembered (observability, tests). */
  get endedSessions(): number {
    return this.ended.size;
  }

  /** Streams waiting for their session (observability, tests). */
  get bufferedStreams(): number {
    return this.buffered.length;
  }

  /** Routes a peer stream (the H3 connection's `onWebTransportStream`). */
  route(s: H3WebTransportStream): void {
    const session = this.live.get(s.sessionId);
    if (session !== undefined) {
      session.deliver(s);
      return;
    }
    if (this.ended.has(s.sessionId)) {
      refuse(s, WT_SESSION_GONE);
      return;
    }
    this.buffered.push(s);
    if (this.buffered.length > MAX_UNASSOCIATED_STREAMS) {
      refuse(this.buffered.shift() as H3WebTransportStream, WT_BUFFERED_STREAM_REJECTED);
    }
  }

  /** A session starts: it gets the streams buffered for it. */
  add(session: RegisteredSession): void {
    this.live.set(session.id, session);
    for (let i = 0; i < this.buffered.length; ) {
      const s = this.buffered[i];
      if (s.sessionId === session.id) {
        this.buffered.splice(i, 1);
        session.deliver(s);
      } else i++;
    }
  }

  /** A session ended. */
  remove(session: RegisteredSession): void {
    if (this.live.get(session.id) !== session) return;
    this.live.delete(session.id);
    this.ended.add(session.id);
    if (this.ended.size > MAX_ENDED_SESSIONS) {
      // A Set iterates in insertion order: drop the oldest.
      this.ended.delete(this.ended.values().next().value as number);
    }
    for (let i = 0; i < this.buffered.length; ) {
      if (this.buffered[i].sessionId === session.id) refuse(this.buffered.splice(i, 1)[0], WT_SESSION_GONE);
      else i++;
    }
  }
}

const registries = new WeakMap<H3Connection, WebTransportSessions>();

/** The registry of `h3`, created (and installed as its stream receiver) on first use. */
export function sessionsOf(h3: H3Connection): WebTransportSessions {
  let r = registries.get(h3);
  if (r === undefined) {
    const reg = new WebTransportSessions();
    r = reg;
    registries.set(h3, reg);
    h3.onWebTransportStream = (s) => reg.route(s);
  }
  return r;
}

/** A stream receiver for {@link H3ConnectionOptions.onWebTransportStream}: routes via {@link sessionsOf}. */
export function routeWebTransportStream(s: H3WebTransportStream): void {
  sessionsOf(s.connection).route(s);
}
