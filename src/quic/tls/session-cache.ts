/**
 * The client's session ticket cache for resumption and 0-RTT (RFC 9846 §4.6.1, §4.2.11, §C.4;
 * RFC 9001 §4.5, §4.6; RFC 9000 §7.4.1), sans-IO.
 *
 * Per server (a string key the caller chooses, e.g. {@link sessionCacheKey}) it keeps the most
 * recent tickets, at most `maxPerServer`. Tickets are single use: {@link SessionCache.take} removes
 * the ticket it returns, since reusing a ticket lets observers correlate connections (RFC 9846
 * §C.4: clients SHOULD NOT reuse a ticket; RFC 9001 §4.5). Expired tickets (past ticket_lifetime,
 * or 7 days, whichever is first: §4.6.1) are never returned. A global cap bounds the total number
 * of tickets; beyond it the oldest ticket of the least recently used server goes first.
 *
 * Each entry carries what 0-RTT needs from the connection that received the ticket (RFC 9001
 * §4.6, RFC 9000 §7.4.1): the cipher suite (whose hash is the PSK's), QUIC version (RFC 9369 §5),
 * ALPN, SNI (§4.2.11: clients SHOULD store it), the remembered server transport parameters and the
 * application's data (e.g. HTTP/3 SETTINGS, RFC 9114 §7.2.4.2).
 *
 * Times are milliseconds (wall clock: tickets may be persisted across runs).
 */
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import type { TransportParameters } from "../transport-parameters.ts";
import { ExtensionType } from "./extensions.ts";
import type { KeySchedule } from "./key-schedule.ts";
import type { NewSessionTicket } from "./messages.ts";
import {
  MAX_TICKET_LIFETIME_S,
  QUIC_MAX_EARLY_DATA_SIZE,
  rememberedTransportParameters,
  type TicketMaxEarlyDataSize,
} from "./session-ticket.ts";

/** Default number of tickets kept per server. */
export const DEFAULT_TICKETS_PER_SERVER = 4;
/** Default number of tickets kept in total. */
export const DEFAULT_MAX_TICKETS = 1024;

/** One ticket as the client keeps it. */
export interface SessionTicketEntry {
  /** The opaque ticket: the PSK identity to offer. */
  ticket: Uint8Array;
  /** The PSK (RFC 9846 §4.6.1: HKDF-Expand-Label(resumption_secret, "resumption", nonce)). */
  psk: Uint8Array;
  /** Cipher suite of the connection that received the ticket. */
  cipherSuite: number;
  /** QUIC version of that connection (RFC 9369 §5: a ticket is only used with it). */
  quicVersion: number;
  /** Negotiated ALPN protocol ("" if none). */
  alpn: string;
  /** SNI used on that connection. */
  sni?: string;
  /** When the NewSessionTicket was received, ms: the origin of the ticket age (§4.2.11.1). */
  receivedAt: number;
  /** ticket_lifetime, seconds. */
  lifetime: number;
  /** ticket_age_add (uint32). */
  ticketAgeAdd: number;
  /** 0xffffffff if the ticket allows 0-RTT, else 0. */
  maxEarlyDataSize: TicketMaxEarlyDataSize;
  /** The server transport parameters remembered for 0-RTT (RFC 9000 §7.4.1). */
  transportParameters?: TransportParameters;
  /** Application state to remember with the ticket (e.g. the server's HTTP/3 SETTINGS). */
  appData?: Uint8Array;
}

export interface SessionCacheOptions {
  /** Tickets kept per server (default {@link DEFAULT_TICKETS_PER_SERVER}). */
  maxPerServer?: number;
  /** Tickets kept in total (default {@link DEFAULT_MAX_TICKETS}). */
  maxTickets?: number;
}

/** The cache key for a server: lower-cased name and port, IPv6 literals bracketed. */
export function sessionCacheKey(serverName: string, port: number): string {
  const name = serverName.toLowerCase();
  return name.includes(":") && !name.startsWith("[") ? `[${name}]:${port}` : `${name}:${port}`;
}

/** Milliseconds after `receivedAt` at which the entry may no longer be used (§4.6.1: ≤ 7 days). */
export function ticketExpiresAt(entry: SessionTicketEntry): number {
  return entry.receivedAt + Math.min(entry.lifetime, MAX_TICKET_LIFETIME_S) * 1000;
}

/** True when the entry must not be used at `now` (RFC 9846 §4.2.11.1, §4.6.1). */
export function isTicketExpired(entry: SessionTicketEntry, now: number): boolean {
  return !(now < ticketExpiresAt(entry));
}

/**
 * obfuscated_ticket_age (RFC 9846 §4.2.11.1): the client's ticket age in ms (time since the
 * NewSessionTicket was received, floored, 0 if the clock went backwards) plus ticket_age_add,
 * modulo 2^32.
 */
export function obfuscatedTicketAge(entry: SessionTicketEntry, now: number): number {
  const age = Math.max(0, Math.floor(now - entry.receivedAt));
  return (age + entry.ticketAgeAdd) >>> 0;
}

/**
 * The max_early_data_size of a received NewSessionTicket: 0xffffffff when it carries early_data,
 * 0 when it does not. RFC 9001 §4.6.1: any other value is a connection error of type
 * PROTOCOL_VIOLATION (thrown as {@link QuicError}).
 */
export function ticketMaxEarlyDataSize(msg: NewSessionTicket): TicketMaxEarlyDataSize {
  for (const ext of msg.extensions) {
    if (ext.type !== ExtensionType.early_data) continue;
    if ("maxEarlyDataSize" in ext && ext.maxEarlyDataSize === QUIC_MAX_EARLY_DATA_SIZE) {
      return QUIC_MAX_EARLY_DATA_SIZE;
    }
    throw new QuicError(
      TransportErrorCode.PROTOCOL_VIOLATION,
      "NewSessionTicket early_data with max_early_data_size other than 0xffffffff",
    );
  }
  return 0;
}

/** What the client knows about the connection on which it received a NewSessionTicket. */
export interface SessionTicketContext {
  keySchedule: KeySchedule;
  /** resumption_secret of the connection (RFC 9846 §7.1). */
  resumptionSecret: Uint8Array;
  cipherSuite: number;
  quicVersion: number;
  alpn: string;
  sni?: string;
  /** The server's transport parameters on this connection (the remembered subset is kept). */
  transportParameters?: TransportParameters;
  appData?: Uint8Array;
}

/**
 * The cache entry for a received NewSessionTicket, or undefined when ticket_lifetime is 0 (§4.6.1:
 * discard immediately). Derives the PSK from the nonce, copies the ticket (decoded messages are
 * views into the TLS buffer) and keeps only the remembered transport parameters. Throws
 * QuicError(PROTOCOL_VIOLATION) for a bad max_early_data_size (see {@link ticketMaxEarlyDataSize}).
 */
export function sessionEntryFromTicket(
  msg: NewSessionTicket,
  ctx: SessionTicketContext,
  now: number,
): SessionTicketEntry | undefined {
  const maxEarlyDataSize = ticketMaxEarlyDataSize(msg);
  if (msg.ticketLifetime === 0) return undefined;
  const entry: SessionTicketEntry = {
    ticket: msg.ticket.slice(),
    psk: ctx.keySchedule.resumptionPsk(ctx.resumptionSecret, msg.ticketNonce),
    cipherSuite: ctx.cipherSuite,
    quicVersion: ctx.quicVersion,
    alpn: ctx.alpn,
    receivedAt: now,
    lifetime: msg.ticketLifetime,
    ticketAgeAdd: msg.ticketAgeAdd,
    maxEarlyDataSize,
  };
  if (ctx.sni !== undefined) entry.sni = ctx.sni;
  if (ctx.transportParameters !== undefined) {
    entry.transportParameters = rememberedTransportParameters(ctx.transportParameters);
  }
  if (ctx.appData !== undefined) entry.appData = ctx.appData;
  return entry;
}

/** Client-side ticket store; see the module comment. */
export class SessionCache {
  readonly maxPerServer: number;
  readonly maxTickets: number;
  /** Server key → tickets, oldest first. Map order is recency of use: least recent first. */
  private readonly servers = new Map<string, SessionTicketEntry[]>();
  private total = 0;

  constructor(options: SessionCacheOptions = {}) {
    this.maxPerServer = options.maxPerServer ?? DEFAULT_TICKETS_PER_SERVER;
    this.maxTickets = options.maxTickets ?? DEFAULT_MAX_TICKETS;
    for (const [name, v] of [
      ["maxPerServer", this.maxPerServer],
      ["maxTickets", this.maxTickets],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new QuicUsageError(`SessionCache: ${name} must be ≥ 1`);
    }
  }

  /** Tickets held in total (expired ones are only dropped when their server is touched). */
  get size(): number {
    return this.total;
  }

  /** Tickets held for `serverKey`. */
  count(serverKey: string): number {
    return this.servers.get(serverKey)?.length ?? 0;
  }

  /**
   * Stores a ticket for `serverKey` as the most recent, dropping that server's oldest beyond
   * `maxPerServer` and, beyond `maxTickets`, the oldest tickets of the least recently used servers.
   * An entry with lifetime 0 is ignored (§4.6.1). The entry is stored as given (not copied).
   */
  put(serverKey: string, entry: SessionTicketEntry): void {
    if (entry.lifetime <= 0) return;
    const list = this.touch(serverKey) ?? [];
    list.push(entry);
    this.total++;
    if (list.length > this.maxPerServer) {
      list.shift();
      this.total--;
    }
    this.servers.set(serverKey, list);
    while (this.total > this.maxTickets) {
      const [lruKey, lruList] = this.servers.entries().next().value!;
      lruList.shift();
      this.total--;
      if (lruList.length === 0) this.servers.delete(lruKey);
    }
  }

  /**
   * Removes and returns the most recent unexpired ticket for `serverKey` that `accept` approves
   * (default: any), or undefined. Expired tickets of that server are dropped; tickets `accept`
   * rejects stay.
   */
  take(
    serverKey: string,
    now: number,
    accept: (entry: SessionTicketEntry) => boolean = () => true,
  ): SessionTicketEntry | undefined {
    const list = this.touch(serverKey);
    if (list === undefined) return undefined;
    const live = list.filter((e) => !isTicketExpired(e, now));
    this.total -= list.length - live.length;
    let found: SessionTicketEntry | undefined;
    for (let i = live.length - 1; i >= 0; i--) {
      if (accept(live[i])) {
        found = live[i];
        live.splice(i, 1);
        this.total--;
        break;
      }
    }
    if (live.length > 0) this.servers.set(serverKey, live);
    return found;
  }

  /** Forgets every ticket of `serverKey` (e.g. after the server rejected resumption). */
  delete(serverKey: string): void {
    const list = this.servers.get(serverKey);
    if (list === undefined) return;
    this.total -= list.length;
    this.servers.delete(serverKey);
  }

  clear(): void {
    this.servers.clear();
    this.total = 0;
  }

  /** Removes `serverKey`'s list from the map (the caller re-inserts it as most recent). */
  private touch(serverKey: string): SessionTicketEntry[] | undefined {
    const list = this.servers.get(serverKey);
    if (list !== undefined) this.servers.delete(serverKey);
    return list;
  }
}
