/**
 * 0-RTT anti-replay for the server (RFC 9846 §8), sans-IO.
 *
 * Mechanism: single-use tickets (§8.1) for 0-RTT. Our tickets are self-encrypted (session-ticket.ts),
 * so there is no ticket database to delete from; instead the server records each ticket whose
 * early data it accepted and refuses 0-RTT for that ticket while the record lives. Why this and not
 * ClientHello recording keyed on ClientHello.random (§8.2):
 * - the guarantee required here is per ticket ("a ticket's early data is accepted at most once"),
 *   which is stronger than per ClientHello: it also refuses 0-RTT when a client reuses a ticket
 *   (which RFC 9846 §C.4 and RFC 9001 §4.5 say it SHOULD NOT do), not only exact replays;
 * - the storage key comes only from validated data, as §8.2 requires: the caller records the
 *   ticket of the PSK it selected after validating its binder, and the ticket itself is
 *   authenticated, so an attacker cannot mint variants to pollute the store;
 * - memory is bounded the same way: a record is needed only until the ticket can no longer be
 *   accepted for 0-RTT. Pass its expiry (issuedAt + lifetime, the instant openTicket starts
 *   returning null) as `expiresAt`; records are dropped after it.
 *
 * Keys are stored as a 16-byte SHA-256 prefix of what the caller passes (a ticket can be ~1.5 KB),
 * so each record costs a fixed ~100 bytes. When `maxEntries` unexpired records exist, 0-RTT is
 * refused (fail closed: the handshake falls back to 1-RTT) instead of growing or evicting, since
 * evicting a live record would let its ticket's early data be accepted a second time.
 *
 * Scope: the guarantee holds per AntiReplay instance, i.e. per server instance, the minimum §8
 * requires; servers sharing ticket keys need a shared store for a deployment-wide guarantee.
 * §8.2 also says a freshly started server SHOULD refuse 0-RTT while its recording window overlaps
 * its startup: a ticket issued before this instance started may have been used with a previous
 * one whose records are lost, so `tryAccept` refuses tickets with `issuedAt < startedAt`.
 *
 * All times are milliseconds on the same clock as the ticket's issuedAt (wall clock).
 */
import type { CryptoProvider } from "../crypto/provider.ts";
import { QuicUsageError } from "../errors.ts";

/** Default record cap: ~10 MB worst case. */
export const DEFAULT_ANTI_REPLAY_MAX_ENTRIES = 100_000;

const DIGEST_LENGTH = 16;

export interface AntiReplayOptions {
  /** Most unexpired records kept; beyond it 0-RTT is refused (default {@link DEFAULT_ANTI_REPLAY_MAX_ENTRIES}). */
  maxEntries?: number;
}

/** Records tickets whose 0-RTT was accepted; see the module comment. */
export class AntiReplay {
  readonly maxEntries: number;
  /** digest → expiresAt. */
  private readonly records = new Map<string, number>();
  /** Min-heap on expiresAt over the same records, for pruning in expiry order. */
  private readonly heap: { at: number; digest: string }[] = [];
  private refusedFull = 0;

  /**
   * @param startedAt When this server instance started (ms): tickets issued earlier never get
   * 0-RTT from this instance (§8.2 startup rule), when `tryAccept` is given their issue time.
   */
  constructor(
    private readonly provider: CryptoProvider,
    readonly startedAt: number,
    options: AntiReplayOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? DEFAULT_ANTI_REPLAY_MAX_ENTRIES;
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 0) {
      throw new QuicUsageError(`AntiReplay: maxEntries ${this.maxEntries} not a non-negative integer`);
    }
  }

  /** Unexpired records (as of the last call that pruned). */
  get size(): number {
    return this.records.size;
  }

  /** How many times 0-RTT was refused because the store was full. */
  get refusedBecauseFull(): number {
    return this.refusedFull;
  }

  /**
   * True exactly once per `key` while its record lives: the first call records it and returns
   * true, later calls return false until `expiresAt`. Also false (and nothing recorded) when the
   * ticket has already expired (`expiresAt ≤ now`), when `issuedAt` is given and precedes
   * {@link startedAt}, or when the store is full. `key` identifies the ticket: pass the selected
   * PSK identity (the ticket bytes) after its binder validated.
   */
  tryAccept(key: Uint8Array, now: number, expiresAt: number, issuedAt?: number): boolean {
    this.prune(now);
    if (!(expiresAt > now)) return false;
    if (issuedAt !== undefined && !(issuedAt >= this.startedAt)) return false;
    const digest = this.digest(key);
    if (this.records.has(digest)) return false;
    if (this.records.size >= this.maxEntries) {
      this.refusedFull++;
      return false;
    }
    this.records.set(digest, expiresAt);
    this.push({ at: expiresAt, digest });
    return true;
  }

  /** Forgets every record whose `expiresAt ≤ now`. Called by {@link tryAccept}. */
  prune(now: number): void {
    const h = this.heap;
    while (h.length > 0 && h[0].at <= now) {
      const top = this.pop();
      this.records.delete(top.digest);
    }
  }

  private digest(key: Uint8Array): string {
    const d = this.provider.hash("sha256", key);
    return Buffer.from(d.buffer, d.byteOffset, DIGEST_LENGTH).toString("base64");
  }

  private push(e: { at: number; digest: string }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].at <= h[i].at) break;
      [h[parent], h[i]] = [h[i], h[parent]];
      i = parent;
    }
  }

  private pop(): { at: number; digest: string } {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].at < h[m].at) m = l;
        if (r < h.length && h[r].at < h[m].at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return top;
  }
}
