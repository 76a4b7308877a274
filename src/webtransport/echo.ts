/**
 * The WebTransport echo service (`/webtransport/echo` of `purequic server`, and the interop
 * tests): each bidirectional stream is echoed back on itself, each incoming unidirectional stream
 * is echoed on a new unidirectional stream, each datagram is echoed. Works on any session type.
 */
import type { WebTransportSessionApi } from "./session-interface.ts";
import type { WebTransportRecvStream, WebTransportSendStream } from "./streams.ts";

async function pipe(recv: WebTransportRecvStream, send: WebTransportSendStream): Promise<void> {
  try {
    for (let c = await recv.read(); c !== null; c = await recv.read()) await send.write(c);
    await send.finish();
  } catch (err) {
    // A reset by the peer is passed on with the same code; anything else abandons the echo.
    const code = typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 0;
    try {
      send.reset(code);
    } catch {
      // session gone
    }
  }
}

/** Echoes everything on `session` until it closes; resolves then. */
export async function echoSession(session: WebTransportSessionApi): Promise<void> {
  const bidi = (async () => {
    for (let bi = await session.acceptBi(); bi; bi = await session.acceptBi()) void pipe(bi.recv, bi.send);
  })();
  const uni = (async () => {
    for (let r = await session.acceptUni(); r; r = await session.acceptUni()) {
      const recv = r;
      void session.openUni().then(
        (send) => pipe(recv, send),
        () => recv.stop(0),
      );
    }
  })();
  const datagrams = (async () => {
    for (let d = await session.readDatagram(); d; d = await session.readDatagram()) {
      try {
        session.sendDatagram(d);
      } catch {
        // too large for the way back, or closed: datagrams are unreliable
      }
    }
  })();
  await Promise.all([bidi, uni, datagrams, session.closed]);
}
