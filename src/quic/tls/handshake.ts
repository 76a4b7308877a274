/**
 * What the TLS client and server state machines share: encryption levels, the events they emit to
 * the QUIC layer (RFC 9001 §4.1: handshake bytes per level, secrets as they are derived,
 * completion), cipher-suite facts, configuration types, and the base class that turns each level's
 * CRYPTO bytes into handshake messages.
 *
 * Sans-IO: `receive(level, bytes, now)` is the only input; the caller drains {@link TlsEvent}s with
 * `takeEvents()`. Time only comes in as `now` (ms since the epoch).
 */
import type { KeyObject } from "node:crypto";
import type { AeadName, CryptoProvider, HashName } from "../crypto/provider.ts";
import { QuicError, TransportErrorCode } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import { HandshakeBuffer } from "./handshake-buffer.ts";
import { type KeySchedule, Transcript } from "./key-schedule.ts";
import { CipherSuite, decodeHandshakeMessage, type HandshakeMessage, HandshakeType } from "./messages.ts";
import type { SessionTicketEntry } from "./session-cache.ts";
import {
  buildCertificateVerifyContent,
  isCertificateVerifyScheme,
  verifyCertificateVerify,
} from "./signature.ts";

/** QUIC encryption levels (RFC 9001 §4.1.4); "early" is 0-RTT. */
export type EncryptionLevel = "initial" | "early" | "handshake" | "application";

/** Facts about one TLS 1.3 cipher suite as QUIC uses it (RFC 9001 §5.3). */
export interface CipherSuiteInfo {
  readonly id: number;
  readonly name: string;
  readonly aead: AeadName;
  readonly hash: HashName;
}

export const CIPHER_SUITES: ReadonlyMap<number, CipherSuiteInfo> = new Map(
  [
    {
      id: CipherSuite.TLS_AES_128_GCM_SHA256,
      name: "TLS_AES_128_GCM_SHA256",
      aead: "aes-128-gcm",
      hash: "sha256",
    },
    {
      id: CipherSuite.TLS_AES_256_GCM_SHA384,
      name: "TLS_AES_256_GCM_SHA384",
      aead: "aes-256-gcm",
      hash: "sha384",
    },
    {
      id: CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
      name: "TLS_CHACHA20_POLY1305_SHA256",
      aead: "chacha20-poly1305",
      hash: "sha256",
    },
  ].map((s) => [s.id, s as CipherSuiteInfo]),
);

export const DEFAULT_CIPHER_SUITES: readonly number[] = [
  CipherSuite.TLS_AES_128_GCM_SHA256,
  CipherSuite.TLS_AES_256_GCM_SHA384,
  CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
];

export type TlsEvent =
  /** Handshake bytes to carry in CRYPTO frames at `level`. */
  | { readonly type: "send"; readonly level: Exclude<EncryptionLevel, "early">; readonly data: Uint8Array }
  /** A traffic secret for `level`, to derive QUIC packet keys from (RFC 9001 §5.1). */
  | {
      readonly type: "secret";
      readonly level: Exclude<EncryptionLevel, "initial">;
      readonly direction: "read" | "write";
      readonly suite: CipherSuiteInfo;
      readonly secret: Uint8Array;
    }
  /** The peer's quic_transport_parameters extension (encoded; the QUIC layer decodes). */
  | { readonly type: "transport-parameters"; readonly parameters: Uint8Array }
  /** Client: whether the server accepted 0-RTT (RFC 9001 §4.6.2). Server: whether it accepted. */
  | { readonly type: "early-data"; readonly accepted: boolean }
  /** Client: a NewSessionTicket turned into a session that can resume a later connection. */
  | { readonly type: "session-ticket"; readonly session: ResumableSession }
  /** RFC 9001 §4.1.1: client: Finished sent; server: client Finished verified. */
  | { readonly type: "handshake-complete" };

/**
 * What the TLS client needs of an earlier session to resume it (RFC 9846 §4.6.1, §4.2.11) and,
 * when allowed, to send 0-RTT. The QUIC layer stores these as {@link SessionTicketEntry} in a
 * SessionCache, adding what TLS does not know (QUIC version, remembered transport parameters).
 */
export type ResumableSession = Pick<
  SessionTicketEntry,
  | "ticket"
  | "psk"
  | "cipherSuite"
  | "alpn"
  | "sni"
  | "receivedAt"
  | "lifetime"
  | "ticketAgeAdd"
  | "maxEarlyDataSize"
>;

/** A certificate chain and its private key. */
export interface TlsCredentials {
  /** DER certificates, leaf first. */
  readonly chainDer: readonly Uint8Array[];
  readonly privateKey: KeyObject;
}

/** Callback receiving NSS key log lines (SSLKEYLOGFILE format), without trailing newline. */
export type KeyLogger = (line: string) => void;

export interface TlsCommonConfig {
  /** Cipher suites in preference order; default AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305. */
  readonly cipherSuites?: readonly number[];
  /** Groups in preference order; default x25519, secp256r1. */
  readonly groups?: readonly number[];
  /** Our encoded quic_transport_parameters (RFC 9001 §8.2). */
  readonly transportParameters: Uint8Array;
  readonly provider?: CryptoProvider;
  readonly keyLog?: KeyLogger;
  /** Largest handshake message accepted; default 64 KiB. */
  readonly maxMessageSize?: number;
}

const LEVEL_ORDER: Record<EncryptionLevel, number> = { initial: 0, early: 1, handshake: 2, application: 3 };

/** Base of {@link TlsClient} and {@link TlsServer}: event queue, per-level reassembly, failure latch. */
export abstract class TlsEndpoint {
  protected events: TlsEvent[] = [];
  protected readonly buffers: Record<"initial" | "handshake" | "application", HandshakeBuffer>;
  protected transcript = new Transcript();
  protected schedule: KeySchedule | undefined;
  protected suite: CipherSuiteInfo | undefined;
  /** The level the next handshake message from the peer must arrive at. */
  protected expectedLevel: Exclude<EncryptionLevel, "early"> = "initial";
  private failure: QuicError | undefined;
  private inReceive = false;
  protected now = 0;
  /** The ALPN protocol both sides agreed on. */
  alpn: string | undefined;
  /** The peer's encoded transport parameters, once received. */
  peerTransportParameters: Uint8Array | undefined;
  handshakeComplete = false;

  constructor(protected common: TlsCommonConfig) {
    const opts = { maxMessageSize: common.maxMessageSize };
    this.buffers = {
      initial: new HandshakeBuffer(opts),
      handshake: new HandshakeBuffer(opts),
      application: new HandshakeBuffer(opts),
    };
  }

  /** The negotiated cipher suite, once known. */
  get cipherSuite(): CipherSuiteInfo | undefined {
    return this.suite;
  }

  /** Events produced since the last call, in order. */
  takeEvents(): TlsEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  /**
   * In-order CRYPTO bytes received at `level`. Throws a {@link TlsError} (or a QuicError for a
   * QUIC-level violation) when the handshake fails; every later call rethrows the same error.
   */
  receive(level: EncryptionLevel, data: Uint8Array, now: number): void {
    if (this.failure) throw this.failure;
    if (this.inReceive) throw new TlsError(AlertDescription.internal_error, "re-entrant receive");
    this.inReceive = true;
    this.now = now;
    try {
      if (level === "early") {
        // RFC 9001 §8.3: no handshake messages in 0-RTT.
        throw new QuicError(TransportErrorCode.PROTOCOL_VIOLATION, "CRYPTO frame in a 0-RTT packet");
      }
      const buffer = this.buffers[level];
      buffer.push(data);
      for (let raw = buffer.next(); raw !== undefined; raw = buffer.next()) {
        if (level !== this.expectedLevel) {
          throw new TlsError(
            AlertDescription.unexpected_message,
            `handshake message ${raw.type} at ${level} level, expected ${this.expectedLevel}`,
          );
        }
        const finishedLength = this.schedule?.hashLength;
        const msg = decodeHandshakeMessage(raw.type, raw.body, { finishedLength });
        const levelBefore = this.expectedLevel;
        this.handle(msg, raw.raw, level);
        // RFC 9001 §4.1.3: data left unprocessed at a key change is a PROTOCOL_VIOLATION.
        if (LEVEL_ORDER[this.expectedLevel] > LEVEL_ORDER[levelBefore] && buffer.bufferedBytes !== 0) {
          throw new QuicError(
            TransportErrorCode.PROTOCOL_VIOLATION,
            "handshake data left over at a key change",
          );
        }
      }
      // After the handshake only post-handshake messages arrive, rarely: hold no buffer meanwhile.
      if (this.handshakeComplete) buffer.releaseStorage();
    } catch (err) {
      this.failure = toQuicError(err);
      throw this.failure;
    } finally {
      this.inReceive = false;
    }
  }

  /**
   * Drops what only the handshake needed — the transcript (every handshake message) and the
   * Initial and Handshake reassembly storage — once it completed: an established connection
   * keeps only its secrets for the exporter and resumption. Subclasses drop their own handshake
   * secrets too.
   */
  protected releaseHandshakeState(): void {
    this.transcript = new Transcript();
    this.buffers.initial.releaseStorage();
    this.buffers.handshake.releaseStorage();
    this.buffers.application.releaseStorage();
  }

  /** Fails the handshake from outside (e.g. the QUIC layer rejected the transport parameters). */
  protected fail(err: QuicError): never {
    this.failure = err;
    throw err;
  }

  protected abstract handle(msg: HandshakeMessage, raw: Uint8Array, level: EncryptionLevel): void;

  protected send(level: "initial" | "handshake" | "application", data: Uint8Array): void {
    this.events.push({ type: "send", level, data });
  }

  protected emitSecret(
    level: "early" | "handshake" | "application",
    direction: "read" | "write",
    secret: Uint8Array,
  ): void {
    this.events.push({ type: "secret", level, direction, suite: this.suite!, secret });
  }

  protected keyLog(label: string, clientRandom: Uint8Array, secret: Uint8Array): void {
    if (!this.common.keyLog) return;
    this.common.keyLog(
      `${label} ${Buffer.from(clientRandom).toString("hex")} ${Buffer.from(secret).toString("hex")}`,
    );
  }

  protected unexpected(msg: HandshakeMessage): never {
    throw new TlsError(
      AlertDescription.unexpected_message,
      `unexpected ${handshakeTypeName(msg.type)} message in state ${this.stateName()}`,
    );
  }

  protected abstract stateName(): string;

  /**
   * Checks the peer's CertificateVerify (RFC 9846 §4.4.3): a scheme we offered, a signature by the
   * certified key over the transcript so far; then adds the message to the transcript.
   */
  protected verifyPeerCertificateVerify(
    peer: "server" | "client",
    offered: readonly number[],
    publicKey: KeyObject,
    msg: { algorithm: number; signature: Uint8Array },
    raw: Uint8Array,
  ): void {
    if (!offered.includes(msg.algorithm) || !isCertificateVerifyScheme(msg.algorithm)) {
      throw new TlsError(
        AlertDescription.illegal_parameter,
        `${peer} signed with scheme 0x${msg.algorithm.toString(16)} we did not offer`,
      );
    }
    const content = buildCertificateVerifyContent(peer, this.transcript.hash(this.schedule!));
    verifyCertificateVerify(publicKey, msg.algorithm, content, msg.signature);
    this.transcript.add(raw);
  }

  /** Checks the peer's Finished (RFC 9846 §4.4.4: wrong verify_data → decrypt_error), adds it to the transcript. */
  protected verifyPeerFinished(
    peer: "server" | "client",
    baseKey: Uint8Array,
    verifyData: Uint8Array,
    raw: Uint8Array,
  ): void {
    const ks = this.schedule!;
    const expected = ks.finishedVerifyData(baseKey, this.transcript.hash(ks));
    if (!equalBytes(expected, verifyData))
      throw new TlsError(AlertDescription.decrypt_error, `${peer} Finished does not verify`);
    this.transcript.add(raw);
  }
}

/** Any error thrown while handling peer input, as the QuicError that closes the connection. */
export function toQuicError(err: unknown): QuicError {
  if (err instanceof QuicError) return err;
  const e = new TlsError(
    AlertDescription.internal_error,
    `internal error: ${(err as Error)?.message ?? String(err)}`,
  );
  (e as { cause?: unknown }).cause = err;
  return e;
}

const typeNames = new Map<number, string>(Object.entries(HandshakeType).map(([k, v]) => [v, k]));
export function handshakeTypeName(type: number): string {
  return typeNames.get(type) ?? `handshake(${type})`;
}

/** Constant-time comparison for verify_data and binders. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** The ASCII bytes of a protocol name or host name. */
export function asciiBytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

export function asciiString(b: Uint8Array): string {
  return String.fromCharCode(...b);
}
