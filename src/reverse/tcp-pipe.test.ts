import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { ReverseRecvStream, ReverseSendStream } from "./connection.ts";
import { pipeSocketToStream, TUNNEL_ABORTED } from "./tcp-pipe.ts";

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A connected TCP pair on 127.0.0.1: the client end and the accepted (paused) server end. */
async function socketPair(): Promise<{ client: Socket; server: Socket }> {
  const accepted = new Promise<Socket>((resolve) => {
    const srv = createServer({ allowHalfOpen: true, pauseOnConnect: true }, resolve);
    servers.push(srv);
    srv.listen(0, "127.0.0.1");
  });
  const srv = servers[servers.length - 1];
  await new Promise<void>((r) => (srv.listening ? r() : srv.once("listening", () => r())));
  const client = tcpConnect({
    host: "127.0.0.1",
    port: (srv.address() as { port: number }).port,
    allowHalfOpen: true,
  });
  const server = await accepted;
  server.resume();
  return { client, server };
}

/** A send stream whose writes wait while `blocked`; it records what it got and refuses re-entrant writes. */
class FakeSend implements ReverseSendStream {
  readonly chunks: Uint8Array[] = [];
  readonly log: string[] = [];
  blocked = true;
  private inFlight = false;
  private release: (() => void) | undefined;
  failWith: Error | undefined;
  resetCode: bigint | number | undefined;

  async write(data: Uint8Array): Promise<void> {
    if (this.inFlight) throw new Error("write while another write is pending");
    if (this.failWith) throw this.failWith;
    this.inFlight = true;
    this.chunks.push(Uint8Array.from(data));
    this.log.push("write");
    if (this.blocked) await new Promise<void>((r) => (this.release = r));
    this.inFlight = false;
  }
  unblock(): void {
    this.blocked = false;
    this.release?.();
  }
  async finish(): Promise<void> {
    this.log.push("finish");
  }
  reset(code: bigint | number): void {
    this.resetCode = code;
  }
  get bytes(): number {
    return this.chunks.reduce((n, c) => n + c.length, 0);
  }
}

/** A receive stream that hands out the given chunks, then the end. */
function fakeRecv(chunks: Uint8Array[]): ReverseRecvStream & { stopCode?: bigint | number } {
  const queue = [...chunks];
  return {
    async read() {
      return queue.shift() ?? null;
    },
    stop(code) {
      this.stopCode = code;
    },
  };
}

function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 8)) & 0xff;
  return b;
}

describe("pipeSocketToStream", () => {
  it("holds TCP data back while a stream write is pending, then delivers every byte in order before FIN", async () => {
    const { client, server } = await socketPair();
    const send = new FakeSend();
    const down = [Uint8Array.of(1, 2, 3), pattern(70_000), Uint8Array.of(9)];
    const piped = pipeSocketToStream(server, send, fakeRecv(down));
    const upload = pattern(4 << 20);
    const received: Buffer[] = [];
    client.on("data", (c: Buffer) => received.push(c));
    const clientEnded = new Promise<void>((r) => client.once("end", () => r()));
    client.end(upload);
    // The first write blocks: the socket must pause rather than read all 4 MiB.
    while (!server.isPaused()) await new Promise((r) => setImmediate(r));
    expect(send.bytes).toBeGreaterThan(0);
    expect(send.bytes).toBeLessThan(upload.length);
    expect(send.log).not.toContain("finish");
    send.unblock();
    const result = await piped;
    await clientEnded;
    expect(Buffer.concat(send.chunks).equals(upload)).toBe(true);
    expect(send.log.at(-1)).toBe("finish");
    expect(send.log.filter((l) => l === "finish")).toHaveLength(1);
    expect(Buffer.concat(received).equals(Buffer.concat(down))).toBe(true);
    expect(result).toEqual({ bytesIn: upload.length, bytesOut: 3 + 70_000 + 1, ok: true });
  });

  it("resets the stream and destroys the socket when a stream write fails", async () => {
    const { client, server } = await socketPair();
    const send = new FakeSend();
    send.failWith = new Error("stopped by peer");
    const recv = fakeRecv([]);
    client.on("error", () => {});
    const piped = pipeSocketToStream(server, send, recv);
    client.write(pattern(1000));
    const result = await piped;
    client.destroy();
    expect(result.ok).toBe(false);
    expect(send.resetCode).toBe(TUNNEL_ABORTED);
    expect(recv.stopCode).toBe(TUNNEL_ABORTED);
    expect(server.destroyed).toBe(true);
  });
});
