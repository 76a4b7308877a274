/**
 * The edge end of the reverse TCP tunnel: dials the relay (so it works from behind NAT), keeps a
 * quic-reverse session up (reconnecting with backoff when it drops), and answers each open
 * request by connecting to the named local service and piping it through a data stream.
 */
import { type Socket, connect as tcpConnect } from "node:net";
import { ConnectionClosedError, connect, describeReason, type QuicConnection } from "../quic/api.ts";
import type { ConnectionCloseReason } from "../quic/connection/config.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { Features } from "./messages.ts";
import { type OpenRequest, SessionClient } from "./session-client.ts";
import { pipeSocketToStream } from "./tcp-pipe.ts";
import { authProof, TUNNEL_UNAUTHORIZED } from "./tunnel-auth.ts";
import { TUNNEL_ALPN, TUNNEL_TRANSPORT } from "./tunnel-relay.ts";

export interface EdgeService {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface EdgeOptions {
  readonly relayHost: string;
  readonly relayPort: number;
  readonly services: readonly EdgeService[];
  /** Name for SNI and the certificate check (default relayHost). */
  readonly serverName?: string;
  /** Trust this PEM root for the relay's certificate. */
  readonly ca?: string;
  /** Do not verify the relay's certificate. */
  readonly insecure?: boolean;
  /** Accept the relay's certificate by its SHA-256 (as WebTransport does). */
  readonly certificateSha256?: Uint8Array;
  readonly token?: string;
  /** Client certificate for mutual TLS. */
  readonly certificate?: { readonly certificatePem: string; readonly privateKeyPem: string };
  /** Reconnect after the session drops (default true). */
  readonly reconnect?: boolean;
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Connect timeout for local services (default 5 s). */
  readonly serviceConnectTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

/** The relay refused this edge (bad token or certificate): retrying would not help. */
export class EdgeRefusedError extends Error {
  override readonly name = "EdgeRefusedError";
}

export class TunnelEdge {
  private conn: QuicConnection | undefined;
  private stopped = false;
  private readonly sockets = new Set<Socket>();
  private readonly connectedListeners: (() => void)[] = [];
  /** Sessions established so far (1 + reconnections). */
  sessions = 0;
  /** Resolves when the edge stops: after close(), or rejects when refused / not reconnecting. */
  readonly done: Promise<void>;

  constructor(private readonly options: EdgeOptions) {
    if (!options.ca && !options.insecure && !options.certificateSha256) {
      throw new QuicUsageError(
        "give the relay's certificate authority (ca), its certificateSha256, or insecure: true",
      );
    }
    const names = new Set<string>();
    for (const s of options.services) {
      if (names.has(s.name)) throw new QuicUsageError(`service ${s.name} given twice`);
      names.add(s.name);
    }
    this.done = this.run();
    this.done.catch(() => {});
  }

  /** Resolves on the next successful session (or now, if `sessions` already reached `n`). */
  async waitForSession(n = this.sessions + 1): Promise<void> {
    while (this.sessions < n && !this.stopped)
      await new Promise<void>((r) => this.connectedListeners.push(r));
  }

  /** Drops the current connection as if the network failed (for tests and operators). */
  async dropConnection(): Promise<void> {
    await this.conn?.close(0x3, "edge dropped the connection");
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private async run(): Promise<void> {
    const min = this.options.minBackoffMs ?? 200;
    const max = this.options.maxBackoffMs ?? 10_000;
    let backoff = min;
    while (!this.stopped) {
      let established = false;
      try {
        established = await this.session(() => {
          backoff = min;
        });
      } catch (err) {
        if (err instanceof EdgeRefusedError) throw err;
        this.log(`relay ${this.options.relayHost}:${this.options.relayPort}: ${(err as Error).message}`);
      }
      if (this.stopped) return;
      if (this.options.reconnect === false) {
        if (established) return;
        throw new Error("could not establish a session with the relay");
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(max, backoff * 2);
    }
  }

  /** One connection + session; resolves when it ends (true if it got Ready). */
  private async session(onReady: () => void): Promise<boolean> {
    let conn: QuicConnection;
    try {
      conn = await connect({
        host: this.options.relayHost,
        port: this.options.relayPort,
        serverName: this.options.serverName,
        alpn: [TUNNEL_ALPN],
        ca: this.options.ca,
        insecure: this.options.insecure,
        serverCertificateHashes: this.options.certificateSha256
          ? [this.options.certificateSha256]
          : undefined,
        certificate: this.options.certificate,
        transport: TUNNEL_TRANSPORT,
      });
    } catch (err) {
      // A TLS alert from the relay (e.g. certificate_required): our credentials are refused.
      const r = err instanceof ConnectionClosedError ? err.reason : undefined;
      if (isTlsAlert(r)) {
        throw new EdgeRefusedError(
          `relay refused the TLS handshake: ${err instanceof Error ? err.message : err}`,
        );
      }
      throw err;
    }
    this.conn = conn;
    if (this.stopped) {
      await conn.close(0, "edge stopped");
      return false;
    }
    try {
      if (this.options.token !== undefined) {
        const auth = await conn.openUni();
        await auth.write(authProof(conn, this.options.token));
        void auth.finish().catch(() => {});
      }
      let client: SessionClient<QuicConnection>;
      try {
        client = await SessionClient.establish(conn, {
          role: "client",
          features: Features.PING_PONG,
          agent: "purequic-edge",
        });
      } catch (err) {
        await Promise.race([conn.closed, new Promise((r) => setTimeout(r, 100))]);
        const r = conn.closeReason;
        if (r?.kind === "application" && r.remote && r.code === BigInt(TUNNEL_UNAUTHORIZED)) {
          throw new EdgeRefusedError("relay refused this edge: unauthorized (wrong or missing --token)");
        }
        // TLS 1.3: the client finishes first, so a refused client certificate shows up here.
        if (isTlsAlert(r)) {
          throw new EdgeRefusedError(`relay refused the TLS handshake: ${describeReason(r!)}`);
        }
        throw err;
      }
      this.sessions++;
      onReady();
      this.log(`connected to relay, serving ${this.options.services.map((s) => s.name).join(", ")}`);
      for (const l of this.connectedListeners.splice(0)) l();
      const serving = (async () => {
        for await (const req of client.requests()) void this.serve(client, req);
      })();
      await Promise.race([client.closed, conn.closed]);
      await serving.catch(() => {});
      this.log(`session ended (${client.error?.message ?? client.state})`);
      return true;
    } finally {
      if (!conn.closeReason) await conn.close(0, "edge session ended").catch(() => {});
    }
  }

  private async serve(client: SessionClient<QuicConnection>, req: OpenRequest): Promise<void> {
    const service = this.options.services.find((s) => s.name === req.service);
    if (!service) {
      await client
        .rejectOpen(req.requestId, "UnsupportedService", `no service ${req.service}`)
        .catch(() => {});
      return;
    }
    let socket: Socket;
    try {
      socket = await this.dial(service);
    } catch (err) {
      await client.rejectOpen(req.requestId, "ServiceUnavailable", (err as Error).message).catch(() => {});
      return;
    }
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    try {
      const stream = await client.accept(req);
      socket.resume();
      await pipeSocketToStream(socket, stream.send, stream.recv);
    } catch {
      socket.destroy();
    }
  }

  private dial(service: EdgeService): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = tcpConnect({ host: service.host, port: service.port, allowHalfOpen: true });
      socket.pause();
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${service.host}:${service.port} timed out`));
      }, this.options.serviceConnectTimeoutMs ?? 5000);
      socket.once("connect", () => {
        clearTimeout(timer);
        socket.removeAllListeners("error");
        socket.on("error", () => {});
        resolve(socket);
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Stops reconnecting, closes the session, the connection and every tunnelled socket. */
  async close(): Promise<void> {
    this.stopped = true;
    for (const s of this.sockets) s.destroy();
    for (const l of this.connectedListeners.splice(0)) l();
    if (this.conn && !this.conn.closeReason) await this.conn.close(0, "edge closing").catch(() => {});
    await this.done.catch(() => {});
  }
}

/** A CONNECTION_CLOSE from the peer carrying a TLS alert (RFC 9001 §4.8: 0x100 + alert). */
function isTlsAlert(r: ConnectionCloseReason | undefined): boolean {
  if (r?.kind !== "transport" || !r.remote) return false;
  const code = Number(r.code);
  return code >= 0x100 && code < 0x200;
}
