/**
 * 1-RTT packet protection keys across key updates (RFC 9001 §6), sans-IO.
 *
 * Holds the current read and write keys with their secrets, the next read keys (derived ahead of
 * time so that a packet of the next phase decrypts without a timing difference, §6.3), and the
 * previous read keys for packets delayed across an update (§6.5), discarded three PTOs after the
 * first packet of the new phase (§6.1). Read and write keys always move together: whether we
 * initiate (§6.1) or follow the peer (§6.2), one rotation updates both directions and flips the
 * Key Phase bit.
 *
 * It also enforces the rules around updates: no update before a packet of the current phase was
 * acknowledged (§6.5), KEY_UPDATE_ERROR for a peer that updates twice without waiting (§6.2) or
 * uses newer keys at a lower packet number (§6.4), and the AEAD confidentiality limit (§6.6: the
 * connection updates before it, or closes with AEAD_LIMIT_REACHED when it cannot).
 */
import type { AeadName, CryptoProvider, HashName } from "../crypto/provider.ts";
import { QuicError, TransportErrorCode } from "../errors.ts";
import { nextTrafficSecret, type PacketKeys, updatePacketKeys } from "../packet-protection.ts";

/** Packets one key may protect, and forged packets a connection may see (RFC 9001 §6.6). */
export interface AeadLimits {
  /** Packets encrypted with one set of keys. */
  readonly confidentiality: number;
  /** Packets failing authentication over the whole connection. */
  readonly integrity: number;
}

/** RFC 9001 §6.6 (ChaCha20-Poly1305's confidentiality limit exceeds 2^62 packets: none). */
export const AEAD_LIMITS: Readonly<Record<AeadName, AeadLimits>> = Object.freeze({
  "aes-128-gcm": { confidentiality: 2 ** 23, integrity: 2 ** 52 },
  "aes-256-gcm": { confidentiality: 2 ** 23, integrity: 2 ** 52 },
  "chacha20-poly1305": { confidentiality: Number.POSITIVE_INFINITY, integrity: 2 ** 36 },
});

/**
 * The packet count at which a key update starts on its own, ahead of `confidentiality`: early
 * enough that the previous update is acknowledged and this one completes before the limit.
 */
export function automaticUpdateThreshold(confidentiality: number): number {
  if (!Number.isFinite(confidentiality)) return Number.POSITIVE_INFINITY;
  return confidentiality - Math.min(2 ** 16, Math.floor(confidentiality / 4));
}

/** Which keys a received 1-RTT packet is tried with. */
export type ReadKeySelection = "current" | "previous" | "next";

export interface OneRttKeysOptions {
  readonly provider: CryptoProvider;
  readonly hash: HashName;
  /** QUIC version: "quic ku" or "quicv2 ku" (RFC 9369 §3.3.2). */
  readonly version: number;
  readonly readSecret: Uint8Array;
  readonly read: PacketKeys;
  readonly writeSecret: Uint8Array;
  readonly write: PacketKeys;
  /** The first packet number sent with these write keys (§6.5 acknowledgment tracking). */
  readonly firstSentPn: number;
}

export class OneRttKeys {
  /** Key phase: how many updates happened; the Key Phase bit is its low bit. */
  generation = 0;
  read: PacketKeys;
  write: PacketKeys;
  /** Updates we started / the peer started. */
  localUpdates = 0;
  remoteUpdates = 0;
  /** Packets sealed with the current write keys (§6.6). */
  packetsSealed = 0;
  /** Which keys the last {@link select} picked. */
  selected: ReadKeySelection = "current";

  private readonly provider: CryptoProvider;
  private readonly hash: HashName;
  private readonly version: number;
  private readSecret: Uint8Array;
  private writeSecret: Uint8Array;
  private next: PacketKeys;
  private nextSecret: Uint8Array;
  private previous: PacketKeys | undefined;
  private previousDiscardAt = Number.POSITIVE_INFINITY;
  /** Lowest packet number received in the current phase (∞ until one arrives). */
  private lowestReceivedInPhase = Number.POSITIVE_INFINITY;
  /** First packet number we sent in the current phase. */
  private firstSentInPhase: number;
  /** When a packet of the current phase was first acknowledged (§6.5), or undefined. */
  private acknowledgedAt: number | undefined;
  /** (Peer-initiated update) The packet that started it, until we acknowledge it with new keys (§6.2). */
  private unacknowledgedTrigger: number | undefined;

  constructor(o: OneRttKeysOptions) {
    this.provider = o.provider;
    this.hash = o.hash;
    this.version = o.version;
    this.readSecret = o.readSecret;
    this.read = o.read;
    this.writeSecret = o.writeSecret;
    this.write = o.write;
    this.firstSentInPhase = o.firstSentPn;
    this.nextSecret = nextTrafficSecret(this.provider, this.hash, this.readSecret, this.version);
    this.next = updatePacketKeys(this.provider, this.read, this.hash, this.nextSecret, this.version);
  }

  /** The Key Phase bit of packets we send (RFC 9001 §6). */
  get phase(): 0 | 1 {
    return (this.generation & 1) as 0 | 1;
  }

  /** Whether the previous read keys are still kept. */
  get hasPreviousKeys(): boolean {
    return this.previous !== undefined;
  }

  /** When the previous read keys go (for the connection's timer). */
  get discardDeadline(): number {
    return this.previousDiscardAt;
  }

  /**
   * The keys to open a packet with Key Phase bit `bit` and packet number `pn` (§6.3, §6.5): the
   * current ones for the current phase; otherwise the previous ones for a packet number below
   * every packet of the current phase, else the next ones (a key update by the peer).
   */
  select(bit: number, pn: number): PacketKeys {
    if (bit === this.phase) {
      this.selected = "current";
      return this.read;
    }
    if (this.previous && pn < this.lowestReceivedInPhase) {
      this.selected = "previous";
      return this.previous;
    }
    this.selected = "next";
    return this.next;
  }

  /**
   * A packet opened with the keys {@link select} picked. Returns true when it started a key
   * update by the peer, which this follows (§6.2). `nextPn` is the next packet number we send,
   * `pto` the current probe timeout. Throws KEY_UPDATE_ERROR for the violations of §6.2/§6.4.
   */
  onOpened(pn: number, now: number, pto: number, nextPn: number): boolean {
    if (this.selected === "current") {
      if (pn < this.lowestReceivedInPhase) this.lowestReceivedInPhase = pn;
      // RFC 9001 §6.5: old read keys go three PTOs after the new phase's first packet.
      if (this.previous && this.previousDiscardAt === Number.POSITIVE_INFINITY)
        this.previousDiscardAt = now + 3 * pto;
      return false;
    }
    if (this.selected === "previous") return false;
    // RFC 9001 §6.4: newer keys at a lower packet number than the current phase used.
    if (Number.isFinite(this.lowestReceivedInPhase) && pn < this.lowestReceivedInPhase)
      throw new QuicError(TransportErrorCode.KEY_UPDATE_ERROR, "newer keys on an older packet number");
    // RFC 9001 §6.2: a second update before we acknowledged the first one with the new keys.
    if (this.unacknowledgedTrigger !== undefined)
      throw new QuicError(
        TransportErrorCode.KEY_UPDATE_ERROR,
        "key updated again before the previous update was acknowledged",
      );
    this.rotate(nextPn);
    this.lowestReceivedInPhase = pn;
    this.previousDiscardAt = now + 3 * pto;
    this.unacknowledgedTrigger = pn;
    this.remoteUpdates++;
    return true;
  }

  /**
   * Whether we may start a key update now (§6.5): a packet of the current phase was acknowledged
   * — three PTOs ago after an update (the peer keeps its old keys that long) — and the peer's
   * update, if it started this phase, is acknowledged. The caller checks that the handshake is confirmed (§6.1).
   */
  canInitiate(now: number, pto: number): boolean {
    return (
      this.acknowledgedAt !== undefined &&
      // RFC 9001 §6.5: the wait is after an update's acknowledgment; the first one needs none.
      (this.generation === 0 || now >= this.acknowledgedAt + 3 * pto) &&
      this.unacknowledgedTrigger === undefined
    );
  }

  /** Starts a key update (§6.1): both directions move to the next phase. */
  initiate(nextPn: number): void {
    this.rotate(nextPn);
    // No packet of the new phase yet: the peer's packets with the old bit use the old keys.
    this.lowestReceivedInPhase = Number.POSITIVE_INFINITY;
    this.previousDiscardAt = Number.POSITIVE_INFINITY;
    this.localUpdates++;
  }

  /** A 1-RTT packet was sealed with the current write keys; `largestAcked` of its ACK frame, if any. */
  onSealed(largestAcked: number | undefined): void {
    this.packetsSealed++;
    // RFC 9001 §6.2: acknowledging the trigger with the new keys completes the peer's update.
    if (
      largestAcked !== undefined &&
      this.unacknowledgedTrigger !== undefined &&
      largestAcked >= this.unacknowledgedTrigger
    )
      this.unacknowledgedTrigger = undefined;
  }

  /** The peer acknowledged our 1-RTT packets up to `largest`. */
  onAckReceived(largest: number, now: number): void {
    if (this.acknowledgedAt === undefined && largest >= this.firstSentInPhase) this.acknowledgedAt = now;
  }

  /** Drops the previous read keys once their time is up; returns true when it did. */
  onTimeout(now: number): boolean {
    if (now < this.previousDiscardAt) return false;
    this.previous = undefined;
    this.previousDiscardAt = Number.POSITIVE_INFINITY;
    return true;
  }

  private rotate(nextPn: number): void {
    this.previous = this.read;
    this.read = this.next;
    this.readSecret = this.nextSecret;
    this.nextSecret = nextTrafficSecret(this.provider, this.hash, this.readSecret, this.version);
    this.next = updatePacketKeys(this.provider, this.read, this.hash, this.nextSecret, this.version);
    this.writeSecret = nextTrafficSecret(this.provider, this.hash, this.writeSecret, this.version);
    this.write = updatePacketKeys(this.provider, this.write, this.hash, this.writeSecret, this.version);
    this.generation++;
    this.packetsSealed = 0;
    this.firstSentInPhase = nextPn;
    this.acknowledgedAt = undefined;
  }
}
