/**
 * A chat room over WebTransport sessions (the demo of `purequic server`): every message a member
 * sends — a unidirectional stream (≤ 4 KiB) or a datagram — goes to every member, on a new
 * unidirectional stream (reliable, whatever way it came in).
 */
import type { WebTransportSessionApi } from "./session-interface.ts";

const MAX_MESSAGE = 4096;

export class ChatRoom {
  private readonly members = new Set<WebTransportSessionApi>();

  get size(): number {
    return this.members.size;
  }

  /** Adds `session` until it closes; resolves then. */
  async join(session: WebTransportSessionApi): Promise<void> {
    this.members.add(session);
    const streams = (async () => {
      for (let r = await session.acceptUni(); r; r = await session.acceptUni()) {
        const recv = r;
        void recv.readAll(MAX_MESSAGE).then(
          (m) => this.broadcast(m),
          () => recv.stop(0),
        );
      }
    })();
    const datagrams = (async () => {
      for (let d = await session.readDatagram(); d; d = await session.readDatagram()) this.broadcast(d);
    })();
    await Promise.all([streams, datagrams, session.closed]);
    this.members.delete(session);
  }

  /** Sends `message` to every member. */
  broadcast(message: Uint8Array): void {
    if (message.length === 0) return;
    for (const m of this.members) {
      if (m.closeReason) continue;
      void m
        .openUni()
        .then(async (s) => {
          await s.write(message);
          await s.finish();
        })
        .catch(() => {});
    }
  }
}
