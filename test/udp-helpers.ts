/**
 * Helpers for integration tests that speak raw UDP on 127.0.0.1 next to a purequic endpoint: a
 * socket that hands every datagram to a callback, and polling until a condition holds.
 */
import dgram from "node:dgram";

/** A UDP socket on 127.0.0.1 whose datagrams go to `onMessage`. */
export async function rawSocket(onMessage: (msg: Uint8Array) => void): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  s.on("message", (m) => onMessage(new Uint8Array(m)));
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  return s;
}

/** Resolves once `check()` is true (polled every 5 ms); rejects after `ms`. */
export function until(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) resolve();
      else if (Date.now() > end) reject(new Error("condition not reached"));
      else setTimeout(tick, 5);
    };
    tick();
  });
}
