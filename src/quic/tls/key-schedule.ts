/**
 * The TLS 1.3 key schedule (RFC 9846 §7.1, §7.2, §7.5) and the transcript hash (§4.4.1), over
 * the {@link CryptoProvider}. Pure functions of their inputs: the handshake state machine decides
 * which secret to derive when.
 */

import { hkdfExpandLabel } from "../crypto/hkdf-label.ts";
import type { CryptoProvider, HashName } from "../crypto/provider.ts";
import { HASH_LENGTH } from "../crypto/provider.ts";

const EMPTY = new Uint8Array(0);

/**
 * Values of the schedule that depend only on the hash: HashLen zeros, Hash(""), and — for every
 * handshake without a PSK — the Early Secret HKDF-Extract(0, 0) and the "derived" salt of the
 * Handshake Secret. Computed once per provider and hash instead of per handshake (one hash and
 * two HMACs), and shared: nothing writes into them, and `earlySecret()` hands out a copy.
 */
interface HashConstants {
  readonly zeros: Uint8Array;
  readonly emptyHash: Uint8Array;
  readonly noPskEarlySecret: Uint8Array;
  readonly noPskDerivedSalt: Uint8Array;
}

const constantsByProvider = new WeakMap<CryptoProvider, Map<HashName, HashConstants>>();

function hashConstants(provider: CryptoProvider, hash: HashName): HashConstants {
  let byHash = constantsByProvider.get(provider);
  if (!byHash) {
    byHash = new Map();
    constantsByProvider.set(provider, byHash);
  }
  let c = byHash.get(hash);
  if (!c) {
    const hashLength = HASH_LENGTH[hash];
    const zeros = new Uint8Array(hashLength);
    const emptyHash = provider.hash(hash, EMPTY);
    const noPskEarlySecret = provider.hkdfExtract(hash, zeros, zeros);
    const noPskDerivedSalt = hkdfExpandLabel(
      provider,
      hash,
      noPskEarlySecret,
      "derived",
      emptyHash,
      hashLength,
    );
    c = { zeros, emptyHash, noPskEarlySecret, noPskDerivedSalt };
    byHash.set(hash, c);
  }
  return c;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The secrets of one stage of the schedule, derived from the cipher suite's hash. */
export class KeySchedule {
  readonly hashLength: number;
  private readonly zeros: Uint8Array;
  private readonly emptyHash: Uint8Array;
  private readonly constants: HashConstants;

  constructor(
    readonly provider: CryptoProvider,
    readonly hash: HashName,
  ) {
    this.hashLength = HASH_LENGTH[hash];
    this.constants = hashConstants(provider, hash);
    this.zeros = this.constants.zeros;
    this.emptyHash = this.constants.emptyHash;
  }

  /** Transcript-Hash of a message sequence (§4.4.1). */
  transcriptHash(messages: Uint8Array): Uint8Array {
    return this.provider.hash(this.hash, messages);
  }

  expandLabel(secret: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
    return hkdfExpandLabel(this.provider, this.hash, secret, label, context, length);
  }

  /** Derive-Secret(Secret, Label, Messages), given Transcript-Hash(Messages) (§7.1). */
  deriveSecret(secret: Uint8Array, label: string, transcriptHash: Uint8Array): Uint8Array {
    return this.expandLabel(secret, label, transcriptHash, this.hashLength);
  }

  /** Early Secret = HKDF-Extract(0, PSK or 0) (§7.1). */
  earlySecret(psk?: Uint8Array): Uint8Array {
    if (psk === undefined) return this.constants.noPskEarlySecret.slice();
    return this.provider.hkdfExtract(this.hash, this.zeros, psk);
  }

  /** binder_key: "res binder" for resumption PSKs, "ext binder" for external ones (§7.1). */
  binderKey(earlySecret: Uint8Array, external = false): Uint8Array {
    return this.deriveSecret(earlySecret, external ? "ext binder" : "res binder", this.emptyHash);
  }

  /** Handshake Secret = HKDF-Extract(Derive-Secret(early, "derived", ""), (EC)DHE) (§7.1). */
  handshakeSecret(earlySecret: Uint8Array, sharedSecret: Uint8Array): Uint8Array {
    const salt = equalBytes(earlySecret, this.constants.noPskEarlySecret)
      ? this.constants.noPskDerivedSalt
      : this.deriveSecret(earlySecret, "derived", this.emptyHash);
    return this.provider.hkdfExtract(this.hash, salt, sharedSecret);
  }

  /** Main Secret = HKDF-Extract(Derive-Secret(handshake, "derived", ""), 0) (§7.1). */
  mainSecret(handshakeSecret: Uint8Array): Uint8Array {
    const salt = this.deriveSecret(handshakeSecret, "derived", this.emptyHash);
    return this.provider.hkdfExtract(this.hash, salt, this.zeros);
  }

  /**
   * Finished verify_data = HMAC(finished_key, transcript hash), finished_key =
   * HKDF-Expand-Label(BaseKey, "finished", "", Hash.length) (§4.4.4). PSK binders use the same
   * construction with the binder key (§4.2.11.2).
   */
  finishedVerifyData(baseKey: Uint8Array, transcriptHash: Uint8Array): Uint8Array {
    const finishedKey = this.expandLabel(baseKey, "finished", EMPTY, this.hashLength);
    return this.provider.hmac(this.hash, finishedKey, transcriptHash);
  }

  /** application_traffic_secret_N+1 (§7.2). */
  nextApplicationTrafficSecret(secret: Uint8Array): Uint8Array {
    return this.expandLabel(secret, "traffic upd", EMPTY, this.hashLength);
  }

  /** The PSK a ticket stands for: HKDF-Expand-Label(resumption_secret, "resumption", nonce) (§4.6.1). */
  resumptionPsk(resumptionSecret: Uint8Array, ticketNonce: Uint8Array): Uint8Array {
    return this.expandLabel(resumptionSecret, "resumption", ticketNonce, this.hashLength);
  }

  /**
   * TLS-Exporter(label, context, length) = HKDF-Expand-Label(Derive-Secret(secret, label, ""),
   * "exporter", Hash(context), length) (§7.5). `secret` is the exporter_secret (or the
   * early_exporter_secret when the application explicitly asks for it).
   */
  exporter(exporterSecret: Uint8Array, label: string, context: Uint8Array, length: number): Uint8Array {
    const derived = this.deriveSecret(exporterSecret, label, this.emptyHash);
    return this.expandLabel(derived, "exporter", this.provider.hash(this.hash, context), length);
  }

  /** TLS record-layer traffic key and IV (§7.3); QUIC derives its own with "quic key"/"quic iv". */
  trafficKeys(secret: Uint8Array, keyLength: number, ivLength = 12): { key: Uint8Array; iv: Uint8Array } {
    return {
      key: this.expandLabel(secret, "key", EMPTY, keyLength),
      iv: this.expandLabel(secret, "iv", EMPTY, ivLength),
    };
  }
}

/**
 * The handshake transcript: the concatenated handshake messages (§4.4.1). Kept as bytes rather
 * than a running hash because the hash is only known once the server picks the cipher suite, and
 * a handshake is a few kilobytes.
 */
export class Transcript {
  private chunks: Uint8Array[] = [];
  private length = 0;

  add(message: Uint8Array): void {
    this.chunks.push(message);
    this.length += message.length;
  }

  /** The concatenation of every message added so far. */
  bytes(): Uint8Array {
    if (this.chunks.length !== 1) {
      const all = new Uint8Array(this.length);
      let p = 0;
      for (const c of this.chunks) {
        all.set(c, p);
        p += c.length;
      }
      this.chunks = [all];
    }
    return this.chunks[0] ?? new Uint8Array(0);
  }

  hash(schedule: KeySchedule): Uint8Array {
    return schedule.transcriptHash(this.bytes());
  }

  /**
   * After a HelloRetryRequest, ClientHello1 is replaced by the synthetic message_hash message
   * (§4.4.1): handshake type 254, uint24 length = Hash.length, then Hash(ClientHello1).
   */
  replaceWithMessageHash(schedule: KeySchedule): void {
    const h = this.hash(schedule);
    const mh = new Uint8Array(4 + h.length);
    mh[0] = 254;
    mh[3] = h.length;
    mh.set(h, 4);
    this.chunks = [mh];
    this.length = mh.length;
  }
}
