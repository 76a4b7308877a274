/**
 * The relay end of the reverse TCP tunnel: accepts edges over QUIC (they dial out from behind NAT),
 * and for every TCP connection on an exposed port asks the newest connected edge to open a stream
 * to that service (the edge is the quic-reverse acceptor; the relay the opener).
 *
 * Edges prove themselves with a token (see tunnel-auth.ts) and/or a client certificate (mutual
 * TLS, `clientCa`); a relay with neither lets anyone register services.
 */
import { createHash } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { listen, type QuicConnection, type QuicServer } from "../quic/api.ts";
import type { TransportConfig } from "../quic/connection/config.ts";
import { QuicUsageError } from "../quic/errors.ts";
import { loadCredentials } from "../quic/tls/credentials.ts";
import { generateDevCertificate } from "../quic/tls/dev-certificate.ts";
import type { ReverseSessionError } from "./errors.ts";
import { Features } from "./messages.ts";
import { SessionClient } from "./session-client.ts";
import { pipeSocketToStream } from "./tcp-pipe.ts";
import { AUTH_PROOF_SIZE, checkAuthProof, TUNNEL_UNAUTHORIZED } from "./tunnel-auth.ts";

export const TUNNEL_ALPN = "quic-reverse";

export const TUNNEL_TRANSPORT: Partial<TransportConfig> = {
  maxConcurrentBidiStreams: 1024,
  keepAliveInterval: 10_000,
  maxIdleTimeout: 60_000,
};

export interface ExposedService {
  readonly name: string;
  /** TCP address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
}

export interface RelayOptions {
  /** UDP address for edges (default 0.0.0.0:0). */
  readonly host?: string;
  readonly port?: number;
  readonly expose: readonly ExposedService[];
  /** Edges must prove this token. */
  readonly token?: string;
  /** Edges must present a certificate issued by this CA (PEM): mutual TLS. */
  readonly clientCaPem?: string;
  /** Relay certificate (PEM); default a generated development certificate. */
  readonly certificatePem?: string;
  readonly privateKeyPem?: string;
  /** How long an edge may take to authenticate (default 5 s). */
  readonly authTimeoutMs?: number;
  readonly log?: (line: string) => void;
}

interface EdgeSession {
  readonly conn: QuicConnection;
  readonly client: SessionClient<QuicConnection>;
  readonly label: string;
}

export class TunnelRelay {
  private readonly edges: EdgeSession[] = [];
  private readonly sockets = new Set<Socket>();
  private closing = false;
  /** Edges refused (bad or missing token). */
  refusedEdges = 0;
  /** Tunnelled TCP connections, finished. */
  tunnelsCompleted = 0;

  private constructor(
    private readonly server: QuicServer,
    private readonly tcpServers: ReadonlyMap<string, Server>,
    private readonly options: RelayOptions,
    /** The relay's certificate when it generated one (edges need it, or --insecure). */
    readonly certificatePem: string | undefined,
    /** SHA-256 of the relay's leaf certificate, hex (for edges' --cert-hash). */
    readonly certificateSha256Hex: string,
  ) {}

  static async start(options: RelayOptions): Promise<TunnelRelay> {
    if (options.expose.length === 0) throw new QuicUsageError("expose at least one service");
    let certificatePem = options.certificatePem;
    let privateKeyPem = options.privateKeyPem;
    let generated: string | undefined;
    if (!certificatePem) {
      const dev = generateDevCertificate();
      certificatePem = dev.certificatePem;
      privateKeyPem = dev.privateKeyPem;
      generated = certificatePem;
    }
    const creds = loadCredentials({ certificatePem, privateKeyPem });
    const server = await listen({
      host: options.host ?? "0.0.0.0",
      port: options.port ?? 0,
      alpn: [TUNNEL_ALPN],
      certificatePem,
      privateKeyPem,
      transport: TUNNEL_TRANSPORT,
      clientAuth: options.clientCaPem ? { mode: "require", ca: options.clientCaPem } : undefined,
    });
    const tcpServers = new Map<string, Server>();
    try {
      for (const s of options.expose) {
        if (tcpServers.has(s.name)) throw new QuicUsageError(`service ${s.name} exposed twice`);
        const tcp = createServer({ allowHalfOpen: true, pauseOnConnect: true });
        await new Promise<void>((resolve, reject) => {
          tcp.once("error", reject);
          tcp.listen(s.port, s.host ?? "127.0.0.1", () => resolve());
        });
        tcpServers.set(s.name, tcp);
      }
    } catch (err) {
      for (const t of tcpServers.values()) t.close();
      await server.close();
      throw err;
    }
    const sha256 = createHash("sha256").update(creds.chainDer[0]).digest("hex");
    const relay = new TunnelRelay(server, tcpServers, options, generated, sha256);
    for (const [name, tcp] of tcpServers) tcp.on("connection", (socket) => relay.onTcp(name, socket));
    void relay.acceptEdges();
    return relay;
  }

  get udpAddress(): { address: string; port: number } {
    return this.server.address;
  }

  tcpAddress(name: string): { address: string; port: number } {
    const a = this.tcpServers.get(name)?.address();
    if (!a || typeof a === "string") throw new QuicUsageError(`no exposed service ${name}`);
    return { address: a.address, port: a.port };
  }

  /** Edges with a ready session. */
  get edgeCount(): number {
    return this.edges.length;
  }

  /** Resolves once at least `n` edges are connected. */
  async waitForEdges(n = 1, pollMs = 20): Promise<void> {
    while (this.edges.length < n) await new Promise((r) => setTimeout(r, pollMs));
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private async acceptEdges(): Promise<void> {
    for (let conn = await this.server.accept(); conn; conn = await this.server.accept()) {
      void this.onEdge(conn).catch((err: Error) => this.log(`edge ${label(conn)}: ${err.message}`));
    }
  }

  private async onEdge(conn: QuicConnection): Promise<void> {
    await conn.handshakeComplete;
    const who = label(conn);
    if (this.options.token !== undefined && !(await this.authenticate(conn, this.options.token))) {
      this.refusedEdges++;
      this.log(`edge ${who}: refused (bad or missing token)`);
      await conn.close(TUNNEL_UNAUTHORIZED, "unauthorized");
      return;
    }
    let client: SessionClient<QuicConnection>;
    try {
      client = await SessionClient.establish(conn, {
        role: "server",
        features: Features.PING_PONG,
        agent: "purequic-relay",
        negotiationTimeoutMs: this.options.authTimeoutMs ?? 5000,
      });
    } catch (err) {
      this.log(`edge ${who}: ${(err as Error).message}`);
      await conn.close(0x1, "negotiation failed");
      return;
    }
    const edge: EdgeSession = { conn, client, label: who };
    this.edges.push(edge);
    this.log(`edge ${who} connected (agent ${client.session.peerAgent ?? "-"})`);
    // Requests from the edge are not part of the tunnel: refuse them.
    void (async () => {
      for await (const req of client.requests())
        await client.rejectOpen(req.requestId, "UnsupportedService", null);
    })().catch(() => {});
    await Promise.race([client.closed, conn.closed]);
    const i = this.edges.indexOf(edge);
    if (i >= 0) this.edges.splice(i, 1);
    this.log(`edge ${who} gone (${client.state})`);
    if (!conn.closeReason) await conn.close(0, "session ended");
  }

  private async authenticate(conn: QuicConnection, token: string): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.options.authTimeoutMs ?? 5000);
    });
    try {
      const stream = await Promise.race([conn.acceptUni(), timeout]);
      if (!stream) return false;
      const proof = await Promise.race([stream.readAll(AUTH_PROOF_SIZE).catch(() => null), timeout]);
      return proof !== null && checkAuthProof(conn, token, proof);
    } finally {
      clearTimeout(timer);
    }
  }

  private onTcp(name: string, socket: Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    socket.on("error", () => {});
    if (this.edges.length === 0) {
      this.log(`${name}: no edge connected, dropping TCP connection`);
      socket.destroy();
      return;
    }
    void this.tunnel(name, socket);
  }

  /**
   * Asks the edges, newest first, to open `name`; an edge that does not offer it (or cannot reach
   * it) passes the connection to the next one.
   */
  private async tunnel(name: string, socket: Socket): Promise<void> {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const metadata = {
      type: "Structured" as const,
      entries: new Map([["peer", { type: "String" as const, value: peer }]]),
    };
    const candidates = [...this.edges].reverse();
    for (const [i, edge] of candidates.entries()) {
      let stream: Awaited<ReturnType<typeof edge.client.open>>;
      try {
        stream = await edge.client.open(name, metadata);
      } catch (err) {
        const e = err as ReverseSessionError;
        const code = e.rejection?.code;
        const next =
          i + 1 < candidates.length && (code === "UnsupportedService" || code === "ServiceUnavailable");
        if (next && !socket.destroyed) continue;
        this.log(`${name}: ${e.message}`);
        socket.destroy();
        return;
      }
      if (socket.destroyed) {
        stream.send.reset(0);
        stream.recv.stop(0);
        return;
      }
      socket.resume();
      await pipeSocketToStream(socket, stream.send, stream.recv);
      this.tunnelsCompleted++;
      return;
    }
  }

  /** Closes the listeners, every tunnelled connection and every edge. */
  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.tcpServers.values()) t.close();
    for (const s of this.sockets) s.destroy();
    for (const e of this.edges) await e.client.close("Normal", "relay shutting down").catch(() => {});
    await this.server.close();
  }
}

function label(conn: QuicConnection): string {
  return `${conn.remoteAddress.address}:${conn.remoteAddress.port}`;
}
