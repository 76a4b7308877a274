/**
 * Joins a TCP socket and a quic-reverse data stream, both directions, with backpressure on each
 * side and half-close carried through (TCP end ↔ FIN). An error on either side resets the other.
 */
import type { Socket } from "node:net";
import type { ReverseRecvStream, ReverseSendStream } from "./connection.ts";

/** Application error code for a tunnelled stream abandoned because its TCP side failed. */
export const TUNNEL_ABORTED = 0x2;

/** Resolves once both directions ended (cleanly or not); never rejects. */
export function pipeSocketToStream(
  socket: Socket,
  send: ReverseSendStream,
  recv: ReverseRecvStream,
): Promise<{ bytesIn: number; bytesOut: number; ok: boolean }> {
  let bytesIn = 0; // TCP → stream
  let bytesOut = 0; // stream → TCP
  let ok = true;
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    ok = false;
    try {
      send.reset(TUNNEL_ABORTED);
      recv.stop(TUNNEL_ABORTED);
    } catch {
      // connection gone
    }
    socket.destroy();
  };

  const upstream = new Promise<void>((resolve) => {
    // One write at a time (a stream's write() is not re-entrant). A write resolves at once (next
    // microtask) while the stream's unacknowledged bytes are under its high-water mark, so the
    // socket is paused only when a chunk arrives with a write still pending: real backpressure,
    // not a pause/resume (two epoll changes) per chunk. Held back: at most the chunks that arrive
    // before the pause takes effect.
    let writing = false;
    let ended = false;
    const queued: Buffer[] = [];
    const finish = () => {
      send.finish().then(resolve, () => {
        fail();
        resolve();
      });
    };
    const onWriteFailed = () => {
      fail();
      resolve();
    };
    const onWritten = () => {
      const next = queued.shift();
      if (next) {
        send.write(next).then(onWritten, onWriteFailed);
        return;
      }
      writing = false;
      if (ended) finish();
      else if (socket.isPaused() && !failed) socket.resume();
    };
    socket.on("data", (chunk: Buffer) => {
      bytesIn += chunk.length;
      if (writing) {
        socket.pause();
        queued.push(chunk);
        return;
      }
      writing = true;
      send.write(chunk).then(onWritten, onWriteFailed);
    });
    socket.once("end", () => {
      ended = true;
      if (!writing) finish();
    });
    socket.once("close", (hadError) => {
      if (hadError) fail();
      resolve();
    });
    socket.on("error", () => fail());
  });

  const downstream = (async () => {
    try {
      for (;;) {
        const chunk = await recv.read();
        if (chunk === null) break;
        bytesOut += chunk.length;
        // A view, not a copy: the transport does not reuse a chunk's memory (see ReverseRecvStream).
        if (!socket.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
          await new Promise<void>((resolve) => {
            const done = () => {
              socket.off("drain", done);
              socket.off("close", done);
              resolve();
            };
            socket.on("drain", done);
            socket.on("close", done);
          });
          if (socket.destroyed) throw new Error("socket closed");
        }
      }
      if (!socket.destroyed) socket.end();
    } catch {
      fail();
    }
  })();

  return Promise.all([upstream, downstream]).then(() => {
    if (socket.readyState !== "closed" && !socket.destroyed) {
      // Both directions ended: wait for the socket to close (end sent and received).
      return new Promise<{ bytesIn: number; bytesOut: number; ok: boolean }>((resolve) => {
        socket.once("close", () => resolve({ bytesIn, bytesOut, ok }));
        if (socket.destroyed) resolve({ bytesIn, bytesOut, ok });
      });
    }
    return { bytesIn, bytesOut, ok };
  });
}
