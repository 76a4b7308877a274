/**
 * Address validation in memory (RFC 9000 §8.1): Retry, tokens, NEW_TOKEN, with the endpoint's
 * decision logic (ServerAddressValidation) between a client and a server Connection.
 */
import { describe, expect, it } from "vitest";
import { ServerAddressValidation } from "../address-validation.ts";
import { TransportErrorCode } from "../errors.ts";
import {
  encodeVersionNegotiation,
  type LongHeader,
  PacketType,
  parsePacketHeader,
  splitCoalescedPackets,
} from "../packet-header.ts";
import type { QlogSink } from "../qlog.ts";
import { QUIC_V2 } from "../version.ts";
import type { ConnectionCloseReason } from "./config.ts";
import { Connection, type ConnectionEvent, type ServerHandshakeInfo } from "./connection.ts";
import { clientConfig, type Link, runPair, serverConfig, T0 } from "./test-harness.ts";

const CLIENT = { address: "192.0.2.1", port: 50000 };

function initialHeader(datagram: Uint8Array): LongHeader {
  const h = parsePacketHeader(datagram, 0, { localCidLength: 8 });
  if (h.type !== PacketType.Initial) throw new Error(`not an Initial: ${h.type}`);
  return h;
}

function drain(c: Connection): ConnectionEvent[] {
  const out: ConnectionEvent[] = [];
  for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e);
  return out;
}

/** All of a connection's datagrams now. */
function transmit(c: Connection, now: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let d = c.pollTransmit(now); d; d = c.pollTransmit(now)) out.push(d);
  return out;
}

/** Server config whose NEW_TOKEN tokens come from `v`, bound to CLIENT's address. */
function serverWithTokens(v: ServerAddressValidation, qlog?: QlogSink) {
  return serverConfig({ newToken: (now) => v.newToken(CLIENT.address, now), qlog });
}

/** A qlog sink that only counts the frames of each kind sent. */
function frameCounter(): { sink: QlogSink; sent: Map<string, number> } {
  const sent = new Map<string, number>();
  const nop = () => {};
  const sink: QlogSink = {
    connectionStarted: nop,
    parametersSet: nop,
    packetSent: (info) => {
      for (const f of info.frames ?? []) sent.set(f.kind, (sent.get(f.kind) ?? 0) + 1);
    },
    packetReceived: nop,
    packetDropped: nop,
    packetLost: nop,
    metricsUpdated: nop,
    keyUpdated: nop,
    keyDiscarded: nop,
    connectionStateUpdated: nop,
    connectionClosed: nop,
    close: () => Promise.resolve(),
  };
  return { sink, sent };
}

/**
 * Runs client ↔ "endpoint": datagrams to the server go through `v` until a server Connection
 * exists (`mutate` may alter its handshake info). Returns the server and what the client saw.
 */
function runWithValidation(
  client: Connection,
  v: ServerAddressValidation,
  opts: {
    mutate?: (info: ServerHandshakeInfo) => ServerHandshakeInfo;
    now?: number;
    remote?: { address: string; port: number };
    done?: (server: Connection | undefined) => boolean;
    link?: Link;
    qlog?: QlogSink;
  } = {},
) {
  let now = opts.now ?? T0;
  const remote = opts.remote ?? CLIENT;
  const toServer: LongHeader[] = [];
  const toClient: Uint8Array[] = [];
  let server: Connection | undefined;
  // The stateless exchange: at most two rounds (a Retry, then the Initial with its token).
  for (let round = 0; round < 3 && !server && !client.isClosed; round++) {
    const datagrams = transmit(client, now);
    now += 5;
    for (const d of datagrams) {
      const h = initialHeader(d);
      toServer.push(h);
      const decision = v.onInitial(h, remote, now, 0);
      if (decision.action === "accept") {
        const info = opts.mutate ? opts.mutate(decision.info) : decision.info;
        server = Connection.accept(serverWithTokens(v, opts.qlog), info, now);
        server.receive(d, now);
        break;
      }
      toClient.push(decision.packet);
      now += 5;
      client.receive(decision.packet, now);
    }
  }
  const ref: { server?: Connection } = { server };
  if (server) {
    now = runPair(
      client,
      serverWithTokens(v),
      opts.done ?? ((s) => !!s?.isHandshakeConfirmed && client.isHandshakeConfirmed),
      opts.link ?? {},
      now,
      10_000,
      undefined,
      ref,
    );
  }
  return { server, toServer, toClient, now };
}

function closeCode(r: ConnectionCloseReason | undefined): number | undefined {
  return r?.kind === "transport" ? r.code : undefined;
}

describe("Retry (RFC 9000 §8.1.2, §17.2.5)", () => {
  it("a server that requires Retry: Retry, Initial with the token, handshake, authenticated CIDs", () => {
    const v = new ServerAddressValidation({ retry: "always" });
    const client = Connection.connect(clientConfig(), T0);
    const { server, toServer, toClient } = runWithValidation(client, v);
    expect(v.stats.retriesSent).toBe(1);
    expect(v.stats.retryTokensAccepted).toBe(1);
    expect(toClient).toHaveLength(1);
    const [retry] = splitCoalescedPackets(toClient[0], { localCidLength: 8 });
    expect(retry.type).toBe(PacketType.Retry);
    if (retry.type !== PacketType.Retry) throw new Error();
    // The first Initial has no token; the second carries the Retry's token and its SCID as DCID.
    const [first, second] = toServer;
    expect(first.token.length).toBe(0);
    expect(Buffer.from(second.token)).toEqual(Buffer.from(retry.token));
    expect(Buffer.from(second.dcid)).toEqual(Buffer.from(retry.scid));
    expect(Buffer.from(second.scid)).toEqual(Buffer.from(first.scid)); // §17.2.5.2: SCID unchanged
    expect(Buffer.from(retry.dcid)).toEqual(Buffer.from(first.scid));

    expect(client.isHandshakeConfirmed).toBe(true);
    expect(server?.isHandshakeConfirmed).toBe(true);
    // §7.3: the server's transport parameters carry the first Initial's DCID and the Retry SCID.
    const p = client.peerTransportParameters!;
    expect(Buffer.from(p.originalDestinationConnectionId!)).toEqual(Buffer.from(first.dcid));
    expect(Buffer.from(p.retrySourceConnectionId!)).toEqual(Buffer.from(retry.scid));
    expect(Buffer.from(server!.originalDestinationConnectionId)).toEqual(Buffer.from(first.dcid));
  });

  it("server Initials never carry a token", () => {
    const v = new ServerAddressValidation({ retry: "always" });
    const client = Connection.connect(clientConfig(), T0);
    const serverInitials: LongHeader[] = [];
    runWithValidation(client, v, {
      link: {
        drop: (to, data) => {
          if (to === "client") {
            for (const h of splitCoalescedPackets(data, { localCidLength: 8 }))
              if (h.type === PacketType.Initial) serverInitials.push(h);
          }
          return false;
        },
      },
    });
    expect(client.isHandshakeConfirmed).toBe(true);
    expect(serverInitials.length).toBeGreaterThan(0);
    for (const h of serverInitials) expect(h.token.length).toBe(0);
  });

  it("a tampered retry_source_connection_id fails the handshake (TRANSPORT_PARAMETER_ERROR)", () => {
    const v = new ServerAddressValidation({ retry: "always" });
    const client = Connection.connect(clientConfig(), T0);
    runWithValidation(client, v, {
      mutate: (info) => ({ ...info, retrySourceCid: new Uint8Array(8).fill(0xee) }),
      done: () => client.isClosed,
    });
    expect(client.isHandshakeConfirmed).toBe(false);
    expect(closeCode(client.reason)).toBe(TransportErrorCode.TRANSPORT_PARAMETER_ERROR);
  });

  it("a tampered original_destination_connection_id, or none of the Retry's, fails too", () => {
    const v = new ServerAddressValidation({ retry: "always" });
    const c1 = Connection.connect(clientConfig(), T0);
    runWithValidation(c1, v, {
      mutate: (info) => ({ ...info, originalDcid: new Uint8Array(8).fill(0xdd) }),
      done: () => c1.isClosed,
    });
    expect(closeCode(c1.reason)).toBe(TransportErrorCode.TRANSPORT_PARAMETER_ERROR);
    // A server that forgets it sent a Retry (no retry_source_connection_id).
    const c2 = Connection.connect(clientConfig(), T0);
    runWithValidation(c2, v, {
      mutate: (info) => ({ version: info.version, dcid: info.dcid, scid: info.scid }),
      done: () => c2.isClosed,
    });
    expect(closeCode(c2.reason)).toBe(TransportErrorCode.TRANSPORT_PARAMETER_ERROR);
  });

  it("a Retry token from another address or too old gets a stateless INVALID_TOKEN close", () => {
    for (const variant of ["port", "expired", "forged"] as const) {
      const v = new ServerAddressValidation({ retry: "always", retryLifetime: 10_000 });
      const client = Connection.connect(clientConfig(), T0);
      const first = transmit(client, T0);
      const d = v.onInitial(initialHeader(first[0]), CLIENT, T0 + 5, 0);
      expect(d.action).toBe("retry");
      if (d.action !== "retry") return;
      client.receive(d.packet, T0 + 10);
      const second = transmit(client, T0 + 10)[0];
      let h = initialHeader(second);
      let remote = CLIENT;
      let at = T0 + 15;
      if (variant === "port") remote = { ...CLIENT, port: CLIENT.port + 1 };
      if (variant === "expired") at = T0 + 10_100;
      if (variant === "forged") {
        const token = h.token.slice();
        token[token.length - 1] ^= 1;
        h = { ...h, token };
      }
      const refused = v.onInitial(h, remote, at, 0);
      expect(refused.action).toBe("close");
      if (refused.action !== "close") return;
      expect(v.stats.invalidRetryTokens).toBe(1);
      // The close is an Initial under the keys of the client's current DCID, without a token.
      const [ch] = splitCoalescedPackets(refused.packet, { localCidLength: 8 });
      expect(ch.type).toBe(PacketType.Initial);
      if (ch.type === PacketType.Initial) expect(ch.token.length).toBe(0);
      client.receive(refused.packet, at + 5);
      expect(client.reason).toMatchObject({
        kind: "transport",
        code: TransportErrorCode.INVALID_TOKEN,
        remote: true,
      });
    }
  });

  it("retries only above the load threshold", () => {
    const v = new ServerAddressValidation({ retry: { whenLoadAbove: 2 } });
    expect(v.wantsRetry(0)).toBe(false);
    expect(v.wantsRetry(2)).toBe(false);
    expect(v.wantsRetry(3)).toBe(true);
    const client = Connection.connect(clientConfig(), T0);
    const h = initialHeader(transmit(client, T0)[0]);
    expect(v.onInitial(h, CLIENT, T0, 1)).toMatchObject({
      action: "accept",
      info: { addressValidated: false },
    });
    expect(v.onInitial(h, CLIENT, T0, 5).action).toBe("retry");
    expect(new ServerAddressValidation().onInitial(h, CLIENT, T0, 1000).action).toBe("accept");
  });
});

describe("NEW_TOKEN (RFC 9000 §8.1.3, §19.7)", () => {
  it("the server sends a token after confirmation; a later connection with it skips the Retry", () => {
    const v = new ServerAddressValidation({ retry: "always" });
    const c1 = Connection.connect(clientConfig(), T0);
    let tokens: Uint8Array[] = [];
    runWithValidation(c1, v, {
      done: (s) => {
        for (const e of drain(c1)) if (e.type === "new-token") tokens.push(e.token);
        return !!s?.isHandshakeConfirmed && c1.isHandshakeConfirmed && tokens.length > 0;
      },
    });
    expect(tokens).toHaveLength(1);
    const token = tokens[0];
    expect(v.stats.retriesSent).toBe(1);

    // Second connection, another port, with the token: accepted at once, address validated.
    const c2 = Connection.connect(clientConfig({ token }), T0 + 1000);
    const remote = { ...CLIENT, port: CLIENT.port + 7 };
    tokens = [];
    const { toServer, toClient, server } = runWithValidation(c2, v, { now: T0 + 1000, remote });
    expect(toClient).toHaveLength(0);
    expect(v.stats.retriesSent).toBe(1);
    expect(v.stats.newTokensAccepted).toBe(1);
    expect(Buffer.from(toServer[0].token)).toEqual(Buffer.from(token));
    expect(c2.isHandshakeConfirmed).toBe(true);
    expect(server?.isHandshakeConfirmed).toBe(true);
    // No Retry happened: no retry_source_connection_id, and the ODCID is the first Initial's DCID.
    const p = c2.peerTransportParameters!;
    expect(p.retrySourceConnectionId).toBeUndefined();
    expect(Buffer.from(p.originalDestinationConnectionId!)).toEqual(Buffer.from(toServer[0].dcid));

    // The same token again (§8.1.4: not accepted twice) → handled as no token: a Retry.
    const c3 = Connection.connect(clientConfig({ token }), T0 + 2000);
    const again = runWithValidation(c3, v, { now: T0 + 2000 });
    expect(again.toClient).toHaveLength(1);
    expect(v.stats.retriesSent).toBe(2);
    expect(v.stats.invalidNewTokens).toBe(1);
    expect(c3.isHandshakeConfirmed).toBe(true);
    // After the Retry the client sends the Retry's token, not the stale one (§8.1.3).
    expect(Buffer.from(again.toServer[1].token)).not.toEqual(Buffer.from(token));
  });

  it("a NEW_TOKEN token from another IP is no validation: Retry, or unvalidated without Retry", () => {
    const v = new ServerAddressValidation({ retry: "always" });
    const token = v.newToken("198.51.100.9", T0);
    const client = Connection.connect(clientConfig({ token }), T0);
    const h = initialHeader(transmit(client, T0)[0]);
    expect(v.onInitial(h, CLIENT, T0, 0).action).toBe("retry");
    const never = new ServerAddressValidation({ retry: "never" });
    const t2 = never.newToken("198.51.100.9", T0);
    const c2 = Connection.connect(clientConfig({ token: t2 }), T0);
    const h2 = initialHeader(transmit(c2, T0)[0]);
    expect(never.onInitial(h2, CLIENT, T0, 0)).toMatchObject({
      action: "accept",
      info: { addressValidated: false },
    });
    // The right IP: validated, no Retry.
    const c3 = Connection.connect(clientConfig({ token: never.newToken(CLIENT.address, T0) }), T0);
    const h3 = initialHeader(transmit(c3, T0)[0]);
    expect(never.onInitial(h3, CLIENT, T0, 0)).toMatchObject({
      action: "accept",
      info: { addressValidated: true },
    });
  });

  it("a lost NEW_TOKEN is sent again, and the client reports the token once", () => {
    const v = new ServerAddressValidation({ retry: "never" });
    const client = Connection.connect(clientConfig(), T0);
    const tokens: Uint8Array[] = [];
    let dropped = 0;
    let serverRef: Connection | undefined;
    const { sink, sent } = frameCounter();
    const { now } = runWithValidation(client, v, {
      qlog: sink,
      done: (s) => {
        serverRef = s;
        for (const e of drain(client)) if (e.type === "new-token") tokens.push(e.token);
        // Run on a while after the token arrived: any duplicate would be reported by then.
        return tokens.length > 0 && client.isHandshakeConfirmed && (sent.get("new_token") ?? 0) >= 2;
      },
      link: {
        // What the server sends right after confirming (HANDSHAKE_DONE, NEW_TOKEN) is lost.
        drop: (to) => {
          if (to !== "client" || !serverRef?.isHandshakeConfirmed || dropped >= 2) return false;
          dropped++;
          return true;
        },
      },
    });
    expect(dropped).toBe(2);
    expect(sent.get("new_token")).toBeGreaterThanOrEqual(2);
    runPair(client, serverConfig(), () => false, {}, now, 1000, undefined, { server: serverRef });
    for (const e of drain(client)) if (e.type === "new-token") tokens.push(e.token);
    expect(tokens).toHaveLength(1);
    expect(tokens[0][0]).toBe(0x02); // a NEW_TOKEN-type token
  });

  it("a validated address lifts the anti-amplification limit (RFC 9000 §8.1)", () => {
    const sentBy = (validated: boolean) => {
      const v = new ServerAddressValidation();
      const token = validated ? v.newToken(CLIENT.address, T0) : undefined;
      const client = Connection.connect(clientConfig({ token }), T0);
      let serverBytes = 0;
      // Only the client's first datagram arrives: the server can only send and probe.
      runWithValidation(client, v, {
        done: () => false,
        link: {
          drop: (to, data) => {
            if (to === "client") serverBytes += data.length;
            return true;
          },
        },
      });
      return serverBytes;
    };
    expect(sentBy(false)).toBeLessThanOrEqual(3 * 1200);
    expect(sentBy(true)).toBeGreaterThan(3 * 1200);
  });

  it("a client Initial carries the configured token; a version change drops it", () => {
    const token = Uint8Array.from([2, 1, 2, 3]);
    const client = Connection.connect(clientConfig({ token }), T0);
    const h = initialHeader(transmit(client, T0)[0]);
    expect(Buffer.from(h.token)).toEqual(Buffer.from(token));
    client.receive(encodeVersionNegotiation(h.scid, h.dcid, [QUIC_V2]), T0 + 5);
    const h2 = initialHeader(transmit(client, T0 + 5)[0]);
    expect(h2.version).toBe(QUIC_V2);
    expect(h2.token.length).toBe(0);
  });
});
