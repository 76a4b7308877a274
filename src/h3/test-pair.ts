/**
 * Test helper: two {@link H3Session}s wired back to back through a tiny in-memory stream layer
 * (no QUIC): our unidirectional streams get QUIC-like IDs (client 2, 6, 10; server 3, 7, 11),
 * writes become `receive` calls on the other side, RESET_STREAM / STOP_SENDING become
 * `streamReset` / `streamStopped`, and data sent after a STOP_SENDING is dropped as QUIC would.
 * Deliveries can be held back (to reorder streams) with {@link SessionPair.hold}.
 */
import { ByteWriter } from "../quic/bytes.ts";
import { encodeFrame, frameSize, type H3Frame } from "./frames.ts";
import { QpackEncoder } from "./qpack/encoder.ts";
import {
  type H3Action,
  type H3Event,
  H3Session,
  type H3SessionOptions,
  type LocalUniStream,
} from "./session.ts";

export interface Delivery {
  to: H3Session;
  streamId: number;
  data: Uint8Array;
  fin: boolean;
  /** The local name of the sender's unidirectional stream, if it is one. */
  uni: LocalUniStream | undefined;
}

export class SessionPair {
  readonly client: H3Session;
  readonly server: H3Session;
  readonly clientEvents: H3Event[] = [];
  readonly serverEvents: H3Event[] = [];
  /** Every action each side produced, in order. */
  readonly clientActions: H3Action[] = [];
  readonly serverActions: H3Action[] = [];
  /** Deliveries for which `hold` returned true, in order. */
  held: Delivery[] = [];
  hold: ((d: Delivery) => boolean) | undefined;
  private readonly uniIds = new Map<H3Session, Map<LocalUniStream, number>>();
  private readonly nextUni = new Map<H3Session, number>();
  /** Streams whose receiver sent STOP_SENDING: the sender's later data is dropped. */
  private readonly stopped = new Set<string>();

  constructor(client: Partial<H3SessionOptions> = {}, server: Partial<H3SessionOptions> = {}) {
    this.client = new H3Session({ ...client, role: "client" });
    this.server = new H3Session({ ...server, role: "server" });
    this.uniIds.set(this.client, new Map());
    this.uniIds.set(this.server, new Map());
    this.nextUni.set(this.client, 2);
    this.nextUni.set(this.server, 3);
  }

  peer(s: H3Session): H3Session {
    return s === this.client ? this.server : this.client;
  }

  /** Our unidirectional stream's QUIC ID. */
  uniId(s: H3Session, name: LocalUniStream): number | undefined {
    return this.uniIds.get(s)!.get(name);
  }

  /** Moves actions and events until nothing moves. */
  run(): void {
    for (let i = 0; i < 10_000; i++) {
      const moved = this.step(this.client) + this.step(this.server);
      if (moved === 0) return;
    }
    throw new Error("SessionPair.run: no quiescence");
  }

  /** Delivers the held deliveries (all, or those matching `which`), then runs. */
  release(which: (d: Delivery) => boolean = () => true): void {
    const keep: Delivery[] = [];
    const go: Delivery[] = [];
    for (const d of this.held) (which(d) ? go : keep).push(d);
    this.held = keep;
    for (const d of go) this.deliver(d);
    this.run();
  }

  private step(s: H3Session): number {
    const actions = s.takeActions();
    const events = s.takeEvents();
    (s === this.client ? this.clientEvents : this.serverEvents).push(...events);
    (s === this.client ? this.clientActions : this.serverActions).push(...actions);
    const to = this.peer(s);
    for (const a of actions) {
      switch (a.type) {
        case "uni-write": {
          const ids = this.uniIds.get(s)!;
          let id = ids.get(a.stream);
          if (id === undefined) {
            id = this.nextUni.get(s)!;
            this.nextUni.set(s, id + 4);
            ids.set(a.stream, id);
          }
          this.send({ to, streamId: id, data: a.data.slice(), fin: false, uni: a.stream });
          break;
        }
        case "write":
          this.send({ to, streamId: a.streamId, data: a.data.slice(), fin: a.fin, uni: undefined });
          break;
        case "reset":
          if (!this.stopped.has(`${to === this.client ? "c" : "s"}:${a.streamId}`))
            to.streamReset(a.streamId, a.code);
          break;
        case "stop": {
          // `s` stops reading: `to` must stop sending on that stream.
          this.stopped.add(`${s === this.client ? "c" : "s"}:${a.streamId}`);
          const name = [...this.uniIds.get(to)!].find(([, id]) => id === a.streamId)?.[0];
          if (name !== undefined) to.localUniStopped(name);
          else to.streamStopped(a.streamId, a.code);
          break;
        }
        case "close":
          to.transportClosed(a.code, a.reason);
          break;
        case "datagram":
          to.receiveDatagram(a.data.slice());
          break;
      }
    }
    return actions.length + events.length;
  }

  private send(d: Delivery): void {
    if (this.hold?.(d)) {
      this.held.push(d);
      return;
    }
    this.deliver(d);
  }

  private deliver(d: Delivery): void {
    if (this.stopped.has(`${d.to === this.client ? "c" : "s"}:${d.streamId}`)) return;
    d.to.receive(d.streamId, d.data, d.fin);
  }
}

/** One frame's bytes. */
export function frame(f: H3Frame): Uint8Array {
  const w = new ByteWriter(new Uint8Array(frameSize(f)));
  encodeFrame(w, f);
  return w.buf;
}

/** A HEADERS frame with a static-only QPACK encoding of `fields` (no dynamic table). */
export function headersFrame(fields: readonly (readonly [string, string])[]): Uint8Array {
  const section = new QpackEncoder({ maxTableCapacity: 0 }).encodeFieldSection(0, fields);
  return frame({ kind: "headers", fieldSection: section });
}

/** Concatenation. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
