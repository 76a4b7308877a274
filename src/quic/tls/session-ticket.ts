/**
 * Server-side session tickets for resumption and 0-RTT (RFC 9846 §4.6.1, §4.2.11, §8; RFC 9001
 * §4.5, §4.6): self-encrypted, self-authenticated tickets that carry everything the server needs to
 * resume a session and to decide whether it may accept 0-RTT, so the server keeps no per-ticket
 * state (RFC 9001 §4.6.3: "using stateless session tickets and storing this state in the session
 * ticket").
 *
 * Ticket layout (the opaque `ticket` of NewSessionTicket):
 *
 *     key_id[8] ‖ nonce[12] ‖ AEAD(ticket key, nonce, aad = key_id, plaintext) ‖ tag[16]
 *
 * with a fresh random nonce per ticket and AES-256-GCM (default) or ChaCha20-Poly1305. The
 * plaintext is the {@link TicketState} in our own versioned format (see `encodeState`). The key id
 * and AEAD key are both derived with HKDF from a 32-byte ticket key, so servers sharing an injected
 * key agree on both without further configuration.
 *
 * Keys: {@link TicketKeyRing} holds the current key (which seals) and the previous one(s) (which
 * still open). With random keys it rotates every `rotationMs` (default 12 h) based on the `now`
 * passed in, and a key stops opening tickets `retainedKeys` rotations after it was replaced
 * (default 1: a ticket from the previous key opens, one from 2 rotations ago does not). An
 * injected key (multi-server deployments, tests) is never rotated automatically; replacing it with
 * {@link TicketKeyRing.setKey} retains the old one in the same way.
 *
 * Random nonces under one key: GCM stays within its 2^-32 collision bound for 2^32 tickets per
 * key, far beyond what a server seals in one rotation period.
 *
 * Time: every `now` is milliseconds of wall-clock time (e.g. `Date.now()`), not a monotonic
 * process clock: tickets outlive the process and are shared between servers.
 *
 * Peer input never throws: {@link TicketKeyRing.openTicket} returns null for anything it cannot
 * use. Local misuse (an out-of-range field in a state to seal) throws {@link QuicUsageError}.
 */
import { ByteReader, ByteWriter, varintLength } from "../bytes.ts";
import type { Aead, CryptoProvider } from "../crypto/provider.ts";
import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH, HASH_LENGTH } from "../crypto/provider.ts";
import { QuicError, QuicUsageError } from "../errors.ts";
import {
  decodeTransportParameters,
  encodeTransportParameters,
  isReservedTransportParameterId,
  type TransportParameters,
  transportParametersSize,
} from "../transport-parameters.ts";
import { ExtensionType } from "./extensions.ts";
import type { KeySchedule } from "./key-schedule.ts";
import { HandshakeType, type NewSessionTicket } from "./messages.ts";

/** Version of our ticket plaintext format; tickets of any other version do not open. */
export const TICKET_FORMAT_VERSION = 1;
/** RFC 9846 §4.6.1: servers MUST NOT use a ticket_lifetime above 7 days (604800 s). */
export const MAX_TICKET_LIFETIME_S = 604_800;
/** RFC 9001 §4.6.1: the only max_early_data_size a QUIC server may send (the 0-RTT sentinel). */
export const QUIC_MAX_EARLY_DATA_SIZE = 0xffff_ffff;
/** Largest application state a ticket carries (e.g. HTTP/3 SETTINGS, RFC 9114 §7.2.4.2). */
export const MAX_TICKET_APP_DATA = 1024;
/** Largest encoded transport parameter block a ticket carries. */
export const MAX_TICKET_TRANSPORT_PARAMETERS = 2048;
/** Largest client certificate identity (a hash of the leaf certificate) a ticket carries. */
export const MAX_TICKET_CLIENT_IDENTITY = 64;
/** Default ticket key rotation period: 12 hours. */
export const DEFAULT_TICKET_ROTATION_MS = 12 * 60 * 60 * 1000;
/** Length of a ticket key, random or injected. */
export const TICKET_KEY_LENGTH = 32;
/** Length of the key id at the start of every ticket. */
export const TICKET_KEY_ID_LENGTH = 8;
/** Bytes a ticket adds around its plaintext: key id, nonce, tag. */
export const TICKET_OVERHEAD = TICKET_KEY_ID_LENGTH + AEAD_NONCE_LENGTH + AEAD_TAG_LENGTH;

/** The max_early_data_size values a ticket can hold: 0 (no 0-RTT) or the QUIC sentinel. */
export type TicketMaxEarlyDataSize = 0 | typeof QUIC_MAX_EARLY_DATA_SIZE;

/**
 * What the server needs to resume a session from a ticket, and to decide on 0-RTT (RFC 9846
 * §4.2.10: version, cipher suite and ALPN must match; RFC 9001 §4.6.3 and RFC 9000 §7.4.1: the
 * transport parameters; RFC 9369 §5: the QUIC version; RFC 9114 §7.2.4.2: application state).
 * The format version is not a field: {@link TicketKeyRing.sealTicket} always writes
 * {@link TICKET_FORMAT_VERSION} and {@link TicketKeyRing.openTicket} accepts only that.
 */
export interface TicketState {
  /** QUIC version of the connection that issued the ticket (RFC 9369 §5: MUST match). uint32. */
  quicVersion: number;
  /** TLS cipher suite of that connection (uint16); its hash is the PSK's hash (§4.2.11). */
  cipherSuite: number;
  /** The PSK: HKDF-Expand-Label(resumption_secret, "resumption", ticket_nonce) (§4.6.1); 32 or 48 bytes. */
  resumptionPsk: Uint8Array;
  /** Negotiated ALPN protocol ("" if none), ≤ 255 Latin-1 characters. */
  alpn: string;
  /** SNI of the original connection, if any, ≤ 255 Latin-1 characters. */
  sni?: string;
  /** When the ticket was issued, integer milliseconds of wall-clock time. */
  issuedAt: number;
  /**
   * Estimated RTT of the issuing connection, integer ms (RFC 9846 §8.3: adjusted_creation_time =
   * creation_time + estimated_RTT). Absent means 0.
   */
  estimatedRttMs?: number;
  /** ticket_lifetime in seconds, ≤ {@link MAX_TICKET_LIFETIME_S}. */
  lifetime: number;
  /** ticket_age_add (uint32). */
  ticketAgeAdd: number;
  /** {@link QUIC_MAX_EARLY_DATA_SIZE} if the ticket allows 0-RTT, else 0. */
  maxEarlyDataSize: TicketMaxEarlyDataSize;
  /**
   * The server's transport parameters as remembered for 0-RTT (RFC 9000 §7.4.1): sealing keeps
   * only {@link rememberedTransportParameters}. Required for a ticket allowing 0-RTT when issued
   * through {@link newSessionTicketParams}. Opened values carry `unknown` (possibly empty).
   */
  transportParameters?: TransportParameters;
  /** Opaque application state, ≤ {@link MAX_TICKET_APP_DATA} bytes (e.g. HTTP/3 SETTINGS). */
  appData?: Uint8Array;
  /** Identity of the client certificate under mutual TLS, e.g. SHA-256 of the leaf DER; 1–64 bytes. */
  clientCertificateHash?: Uint8Array;
}

/**
 * The subset of the server's transport parameters remembered for 0-RTT (RFC 9000 §7.4.1): drops
 * ack_delay_exponent, max_ack_delay, initial_source_connection_id,
 * original_destination_connection_id, preferred_address, retry_source_connection_id and
 * stateless_reset_token (a client MUST NOT use remembered values for those), min_ack_delay
 * (draft-ietf-quic-ack-frequency §3: endpoints MUST NOT remember it) and reserved GREASE
 * parameters (§18.1: meaningless). Everything else is kept, as the client MUST remember all other
 * parameters it can process. Returns a new object; byte fields are shared with `p`.
 */
export function rememberedTransportParameters(p: TransportParameters): TransportParameters {
  const {
    ackDelayExponent: _ackDelayExponent,
    maxAckDelay: _maxAckDelay,
    initialSourceConnectionId: _initialSourceConnectionId,
    originalDestinationConnectionId: _originalDestinationConnectionId,
    preferredAddress: _preferredAddress,
    retrySourceConnectionId: _retrySourceConnectionId,
    statelessResetToken: _statelessResetToken,
    minAckDelay: _minAckDelay,
    unknown,
    ...kept
  } = p;
  const out: TransportParameters = { ...kept };
  const known = unknown?.filter((u) => !isReservedTransportParameterId(u.id));
  if (known !== undefined && known.length > 0) out.unknown = known;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Plaintext encoding

const FLAG_SNI = 0x01;
const FLAG_RTT = 0x02;
const FLAG_TRANSPORT_PARAMETERS = 0x04;
const FLAG_APP_DATA = 0x08;
const FLAG_CLIENT_IDENTITY = 0x10;
const KNOWN_FLAGS = FLAG_SNI | FLAG_RTT | FLAG_TRANSPORT_PARAMETERS | FLAG_APP_DATA | FLAG_CLIENT_IDENTITY;

const isUint = (v: number, max: number): boolean => Number.isInteger(v) && v >= 0 && v <= max;
const PSK_LENGTHS: ReadonlySet<number> = new Set(Object.values(HASH_LENGTH));

/** Latin-1 bytes of `s` (≤ 255 characters, each ≤ U+00FF), or QuicUsageError. */
function latin1Bytes(s: string, what: string): Uint8Array {
  if (s.length > 255) throw new QuicUsageError(`ticket ${what} longer than 255 characters`);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new QuicUsageError(`ticket ${what} has a character above U+00FF`);
    out[i] = c;
  }
  return out;
}

function latin1String(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/**
 * Plaintext format version 1:
 *
 *     uint8  format_version = 1
 *     uint8  flags (FLAG_*; unknown bits are malformed)
 *     uint32 quic_version
 *     uint16 cipher_suite
 *     opaque resumption_psk<32|48>       (uint8 length)
 *     opaque alpn<0..255>                (uint8 length)
 *     opaque sni<0..255>                 if FLAG_SNI
 *     varint issued_at_ms
 *     varint estimated_rtt_ms            if FLAG_RTT
 *     uint32 ticket_lifetime
 *     uint32 ticket_age_add
 *     uint32 max_early_data_size         (0 or 0xffffffff)
 *     opaque transport_parameters<0..2048>  (uint16 length) if FLAG_TRANSPORT_PARAMETERS
 *     opaque app_data<0..1024>           (uint16 length) if FLAG_APP_DATA
 *     opaque client_identity<1..64>      (uint8 length) if FLAG_CLIENT_IDENTITY
 */
function encodeState(state: TicketState): Uint8Array {
  if (!isUint(state.quicVersion, 0xffff_ffff)) throw new QuicUsageError("ticket quicVersion not a uint32");
  if (!isUint(state.cipherSuite, 0xffff)) throw new QuicUsageError("ticket cipherSuite not a uint16");
  if (!PSK_LENGTHS.has(state.resumptionPsk.length)) {
    throw new QuicUsageError(`ticket resumption PSK of ${state.resumptionPsk.length} bytes`);
  }
  const alpn = latin1Bytes(state.alpn, "ALPN");
  const sni = state.sni === undefined ? undefined : latin1Bytes(state.sni, "SNI");
  if (!Number.isSafeInteger(state.issuedAt) || state.issuedAt < 0) {
    throw new QuicUsageError("ticket issuedAt not a non-negative integer");
  }
  const rtt = state.estimatedRttMs;
  if (rtt !== undefined && !isUint(rtt, 0xffff_ffff))
    throw new QuicUsageError("ticket estimatedRttMs out of range");
  if (!isUint(state.lifetime, MAX_TICKET_LIFETIME_S)) {
    throw new QuicUsageError(`ticket lifetime ${state.lifetime} not in [0, ${MAX_TICKET_LIFETIME_S}] s`);
  }
  if (!isUint(state.ticketAgeAdd, 0xffff_ffff)) throw new QuicUsageError("ticket ticketAgeAdd not a uint32");
  if (state.maxEarlyDataSize !== 0 && state.maxEarlyDataSize !== QUIC_MAX_EARLY_DATA_SIZE) {
    throw new QuicUsageError("ticket maxEarlyDataSize must be 0 or 0xffffffff (RFC 9001 §4.6.1)");
  }
  let tp: Uint8Array | undefined;
  if (state.transportParameters !== undefined) {
    const remembered = rememberedTransportParameters(state.transportParameters);
    const size = transportParametersSize(remembered);
    if (size > MAX_TICKET_TRANSPORT_PARAMETERS) {
      throw new QuicUsageError(`ticket transport parameters of ${size} bytes`);
    }
    const w = new ByteWriter(new Uint8Array(size));
    encodeTransportParameters(remembered, w);
    tp = w.buf;
  }
  const app = state.appData;
  if (app !== undefined && app.length > MAX_TICKET_APP_DATA) {
    throw new QuicUsageError(`ticket appData of ${app.length} bytes (max ${MAX_TICKET_APP_DATA})`);
  }
  const id = state.clientCertificateHash;
  if (id !== undefined && (id.length < 1 || id.length > MAX_TICKET_CLIENT_IDENTITY)) {
    throw new QuicUsageError(`ticket client identity of ${id.length} bytes`);
  }

  let flags = 0;
  let size = 1 + 1 + 4 + 2 + 1 + state.resumptionPsk.length + 1 + alpn.length;
  if (sni !== undefined) {
    flags |= FLAG_SNI;
    size += 1 + sni.length;
  }
  size += varintLength(state.issuedAt);
  if (rtt !== undefined) {
    flags |= FLAG_RTT;
    size += varintLength(rtt);
  }
  size += 4 + 4 + 4;
  if (tp !== undefined) {
    flags |= FLAG_TRANSPORT_PARAMETERS;
    size += 2 + tp.length;
  }
  if (app !== undefined) {
    flags |= FLAG_APP_DATA;
    size += 2 + app.length;
  }
  if (id !== undefined) {
    flags |= FLAG_CLIENT_IDENTITY;
    size += 1 + id.length;
  }

  const w = new ByteWriter(new Uint8Array(size));
  w.writeUint8(TICKET_FORMAT_VERSION);
  w.writeUint8(flags);
  w.writeUint32(state.quicVersion);
  w.writeUint16(state.cipherSuite);
  w.writeUint8(state.resumptionPsk.length);
  w.writeBytes(state.resumptionPsk);
  w.writeUint8(alpn.length);
  w.writeBytes(alpn);
  if (sni !== undefined) {
    w.writeUint8(sni.length);
    w.writeBytes(sni);
  }
  w.writeVarint(state.issuedAt);
  if (rtt !== undefined) w.writeVarint(rtt);
  w.writeUint32(state.lifetime);
  w.writeUint32(state.ticketAgeAdd);
  w.writeUint32(state.maxEarlyDataSize);
  if (tp !== undefined) {
    w.writeUint16(tp.length);
    w.writeBytes(tp);
  }
  if (app !== undefined) {
    w.writeUint16(app.length);
    w.writeBytes(app);
  }
  if (id !== undefined) {
    w.writeUint8(id.length);
    w.writeBytes(id);
  }
  return w.buf;
}

/**
 * Inverse of {@link encodeState}: the state, or undefined if `b` is not a well-formed version-1
 * plaintext (every length bounded, every value range-checked, nothing left over). Byte fields are
 * copies. Throws nothing.
 */
function decodeState(b: Uint8Array): TicketState | undefined {
  try {
    const r = new ByteReader(b);
    if (r.readUint8() !== TICKET_FORMAT_VERSION) return undefined;
    const flags = r.readUint8();
    if ((flags & ~KNOWN_FLAGS) !== 0) return undefined;
    const quicVersion = r.readUint32();
    const cipherSuite = r.readUint16();
    const pskLength = r.readUint8();
    if (!PSK_LENGTHS.has(pskLength)) return undefined;
    const resumptionPsk = r.readBytes(pskLength).slice();
    const alpn = latin1String(r.readBytes(r.readUint8()));
    const sni = flags & FLAG_SNI ? latin1String(r.readBytes(r.readUint8())) : undefined;
    const issuedAt = r.readVarint();
    const estimatedRttMs = flags & FLAG_RTT ? r.readVarint() : undefined;
    if (estimatedRttMs !== undefined && estimatedRttMs > 0xffff_ffff) return undefined;
    const lifetime = r.readUint32();
    if (lifetime > MAX_TICKET_LIFETIME_S) return undefined;
    const ticketAgeAdd = r.readUint32();
    const maxEarlyDataSize = r.readUint32();
    if (maxEarlyDataSize !== 0 && maxEarlyDataSize !== QUIC_MAX_EARLY_DATA_SIZE) return undefined;
    let transportParameters: TransportParameters | undefined;
    if (flags & FLAG_TRANSPORT_PARAMETERS) {
      const n = r.readUint16();
      if (n > MAX_TICKET_TRANSPORT_PARAMETERS) return undefined;
      transportParameters = decodeTransportParameters(r.readBytes(n), "server");
    }
    let appData: Uint8Array | undefined;
    if (flags & FLAG_APP_DATA) {
      const n = r.readUint16();
      if (n > MAX_TICKET_APP_DATA) return undefined;
      appData = r.readBytes(n).slice();
    }
    let clientCertificateHash: Uint8Array | undefined;
    if (flags & FLAG_CLIENT_IDENTITY) {
      const n = r.readUint8();
      if (n < 1 || n > MAX_TICKET_CLIENT_IDENTITY) return undefined;
      clientCertificateHash = r.readBytes(n).slice();
    }
    if (!r.done) return undefined;
    const state: TicketState = {
      quicVersion,
      cipherSuite,
      resumptionPsk,
      alpn,
      issuedAt,
      lifetime,
      ticketAgeAdd,
      maxEarlyDataSize,
    };
    if (sni !== undefined) state.sni = sni;
    if (estimatedRttMs !== undefined) state.estimatedRttMs = estimatedRttMs;
    if (transportParameters !== undefined) state.transportParameters = transportParameters;
    if (appData !== undefined) state.appData = appData;
    if (clientCertificateHash !== undefined) state.clientCertificateHash = clientCertificateHash;
    return state;
  } catch (e) {
    // Truncation (TruncatedError) and bad transport parameters (TRANSPORT_PARAMETER_ERROR) are
    // both QuicError; anything else would be a bug here and propagates.
    if (e instanceof QuicError) return undefined;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Key ring

/** The AEADs a ticket key ring can use (both take 32-byte keys). */
export type TicketAeadName = "aes-256-gcm" | "chacha20-poly1305";

export interface TicketKeyRingOptions {
  /** Rotation period of random keys, ms (default {@link DEFAULT_TICKET_ROTATION_MS}). */
  rotationMs?: number;
  /**
   * How many replaced keys still open tickets (default 1). A replaced key opens tickets for
   * `retainedKeys × rotationMs` after it was replaced, and at most the `retainedKeys` most recent
   * replaced keys are kept.
   */
  retainedKeys?: number;
  /** Ticket AEAD (default "aes-256-gcm"). */
  aead?: TicketAeadName;
  /**
   * An injected ticket key (≥ 32 bytes, high entropy), shared by every server of a deployment so
   * that any of them opens the others' tickets. Disables automatic rotation; replace it with
   * {@link TicketKeyRing.setKey}.
   */
  key?: Uint8Array;
}

interface TicketKey {
  id: Uint8Array;
  aead: Aead;
  /** Start of its period as current key (random keys only: drives rotation). */
  activatedAt: number;
  /** When it stopped being current (previous keys only). */
  retiredAt: number;
}

const KEY_DERIVATION_SALT = Uint8Array.from(Buffer.from("purequic session ticket key v1", "latin1"));
const KEY_ID_INFO = Uint8Array.from(Buffer.from("key id", "latin1"));
const AEAD_KEY_INFO = Uint8Array.from(Buffer.from("aead key", "latin1"));

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/**
 * The server's ticket protection keys: seals tickets under the current key and opens them under
 * the current or a retained previous key. Sans-IO: rotation happens inside
 * {@link sealTicket}/{@link openTicket} (or {@link advance}) according to the `now` they get.
 */
export class TicketKeyRing {
  readonly rotationMs: number;
  readonly retainedKeys: number;
  readonly aeadName: TicketAeadName;
  private autoRotate: boolean;
  private current: TicketKey | undefined;
  /** Replaced keys, most recently replaced first. */
  private previous: TicketKey[] = [];

  constructor(
    readonly provider: CryptoProvider,
    options: TicketKeyRingOptions = {},
  ) {
    this.rotationMs = options.rotationMs ?? DEFAULT_TICKET_ROTATION_MS;
    this.retainedKeys = options.retainedKeys ?? 1;
    this.aeadName = options.aead ?? "aes-256-gcm";
    if (!(Number.isFinite(this.rotationMs) && this.rotationMs > 0)) {
      throw new QuicUsageError(`TicketKeyRing: rotationMs ${this.rotationMs} must be positive`);
    }
    if (!isUint(this.retainedKeys, 16))
      throw new QuicUsageError("TicketKeyRing: retainedKeys not in [0, 16]");
    if (this.aeadName !== "aes-256-gcm" && this.aeadName !== "chacha20-poly1305") {
      throw new QuicUsageError(`TicketKeyRing: unsupported AEAD ${String(this.aeadName)}`);
    }
    this.autoRotate = options.key === undefined;
    if (options.key !== undefined) this.current = this.deriveKey(options.key, 0);
  }

  /**
   * How long a freshly sealed ticket is guaranteed to still open: `retainedKeys × rotationMs`
   * (a ticket sealed just before a rotation lives that long after it). Ticket lifetimes beyond
   * this are clamped by {@link newSessionTicketParams}.
   */
  get minTicketValidityMs(): number {
    return this.retainedKeys * this.rotationMs;
  }

  /** Number of keys that currently open tickets (current + retained). */
  get keyCount(): number {
    return (this.current === undefined ? 0 : 1) + this.previous.length;
  }

  /** The key id the next ticket sealed at `now` will carry (after any due rotation). */
  currentKeyId(now: number): Uint8Array {
    return this.currentKey(now).id.slice();
  }

  /**
   * Makes `key` (≥ 32 bytes) the current key from `now` on, e.g. the next key of a deployment's
   * shared schedule; the key it replaces is retained like a rotated one. Turns off automatic
   * rotation. Setting the current key again is a no-op.
   */
  setKey(key: Uint8Array, now: number): void {
    const k = this.deriveKey(key, now);
    this.autoRotate = false;
    this.install(k, now);
  }

  /** Replaces the current key by a fresh random one now (e.g. after a suspected compromise) and
   * turns automatic rotation on. */
  rotate(now: number): void {
    this.autoRotate = true;
    this.install(this.randomKey(now), now);
  }

  /** Performs any rotation due at `now` and forgets keys that no longer open tickets. */
  advance(now: number): void {
    if (this.autoRotate) {
      const cur = this.current;
      if (cur === undefined) {
        this.current = this.randomKey(now);
      } else if (now - cur.activatedAt >= this.rotationMs) {
        // Rotations are aligned on the schedule of the first key; after a gap of several periods
        // the skipped keys never existed, and the old key retired when its own period ended.
        const periods = Math.floor((now - cur.activatedAt) / this.rotationMs);
        cur.retiredAt = cur.activatedAt + this.rotationMs;
        this.previous.unshift(cur);
        this.current = this.randomKey(cur.activatedAt + periods * this.rotationMs);
      }
    }
    const horizon = this.retainedKeys * this.rotationMs;
    this.previous = this.previous.filter((k) => now - k.retiredAt < horizon).slice(0, this.retainedKeys);
  }

  /** Encrypts `state` into a ticket under the current key (rotating first if due at `now`). */
  sealTicket(state: TicketState, now: number): Uint8Array {
    const key = this.currentKey(now);
    const plaintext = encodeState(state);
    const nonce = this.provider.randomBytes(AEAD_NONCE_LENGTH);
    if (nonce.length !== AEAD_NONCE_LENGTH) throw new QuicUsageError("randomBytes returned too few bytes");
    const out = new Uint8Array(TICKET_OVERHEAD + plaintext.length);
    out.set(key.id, 0);
    out.set(nonce, TICKET_KEY_ID_LENGTH);
    key.aead.seal(nonce, key.id, plaintext, out, TICKET_KEY_ID_LENGTH + AEAD_NONCE_LENGTH);
    return out;
  }

  /**
   * The state inside `ticket`, or null if the key id is unknown or expired, authentication fails,
   * the plaintext is malformed or of another format version, or the ticket has expired
   * (`now − issuedAt ≥ lifetime`; lifetime 0 never opens). Never throws on any `ticket`.
   */
  openTicket(ticket: Uint8Array, now: number): TicketState | null {
    this.advance(now);
    if (ticket.length < TICKET_OVERHEAD) return null;
    const id = ticket.subarray(0, TICKET_KEY_ID_LENGTH);
    const key = this.findKey(id);
    if (key === undefined) return null;
    const nonce = ticket.subarray(TICKET_KEY_ID_LENGTH, TICKET_KEY_ID_LENGTH + AEAD_NONCE_LENGTH);
    const sealed = ticket.subarray(TICKET_KEY_ID_LENGTH + AEAD_NONCE_LENGTH);
    const plaintext = new Uint8Array(sealed.length - AEAD_TAG_LENGTH);
    // The AAD is the ticket's own key id bytes (equal to key.id).
    if (key.aead.open(nonce, id, sealed, plaintext, 0) !== plaintext.length) return null;
    const state = decodeState(plaintext);
    if (state === undefined) return null;
    if (!(now - state.issuedAt < state.lifetime * 1000)) return null;
    return state;
  }

  private currentKey(now: number): TicketKey {
    this.advance(now);
    const k = this.current;
    if (k === undefined) throw new QuicUsageError("TicketKeyRing: no current key"); // unreachable
    return k;
  }

  private findKey(id: Uint8Array): TicketKey | undefined {
    if (this.current !== undefined && sameBytes(this.current.id, id)) return this.current;
    return this.previous.find((k) => sameBytes(k.id, id));
  }

  private install(k: TicketKey, now: number): void {
    const cur = this.current;
    if (cur !== undefined && sameBytes(cur.id, k.id)) return;
    this.previous = this.previous.filter((p) => !sameBytes(p.id, k.id));
    if (cur !== undefined) {
      cur.retiredAt = now;
      this.previous.unshift(cur);
    }
    this.current = k;
    this.advance(now);
  }

  private deriveKey(key: Uint8Array, activatedAt: number): TicketKey {
    if (key.length < TICKET_KEY_LENGTH) {
      throw new QuicUsageError(
        `TicketKeyRing: ticket key of ${key.length} bytes (need ≥ ${TICKET_KEY_LENGTH})`,
      );
    }
    const prk = this.provider.hkdfExtract("sha256", KEY_DERIVATION_SALT, key);
    const id = this.provider.hkdfExpand("sha256", prk, KEY_ID_INFO, TICKET_KEY_ID_LENGTH);
    const aeadKey = this.provider.hkdfExpand("sha256", prk, AEAD_KEY_INFO, 32);
    return {
      id,
      aead: this.provider.createAead(this.aeadName, aeadKey),
      activatedAt,
      retiredAt: activatedAt,
    };
  }

  private randomKey(activatedAt: number): TicketKey {
    for (;;) {
      const k = this.deriveKey(this.provider.randomBytes(TICKET_KEY_LENGTH), activatedAt);
      // A key id colliding with a live key (2^-64) would shadow it: draw again.
      if (this.findKey(k.id) === undefined) return k;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Issuing and validating

/** What the server knows when it issues a ticket on a connection. */
export interface NewSessionTicketInput {
  /** Key schedule of the connection (its hash is the cipher suite's). */
  keySchedule: KeySchedule;
  /** resumption_secret of the connection (RFC 9846 §7.1). */
  resumptionSecret: Uint8Array;
  /** Index of this ticket among those issued on the connection (0, 1, …; uint32): the nonce. */
  ticketIndex: number;
  quicVersion: number;
  cipherSuite: number;
  alpn: string;
  sni?: string;
  /** Offer 0-RTT with this ticket (needs `transportParameters`). */
  earlyData: boolean;
  /**
   * Requested ticket_lifetime, seconds. Default and upper bound: the smaller of 7 days and the
   * key ring's {@link TicketKeyRing.minTicketValidityMs}.
   */
  lifetimeS?: number;
  /** The server's transport parameters on this connection (the remembered subset is sealed). */
  transportParameters?: TransportParameters;
  appData?: Uint8Array;
  clientCertificateHash?: Uint8Array;
  /** Smoothed RTT of the connection, ms (RFC 9846 §8.3 adjusted creation time). */
  estimatedRttMs?: number;
}

export interface NewSessionTicketParams {
  /** The NewSessionTicket message to send (early_data extension iff 0-RTT is offered). */
  message: NewSessionTicket;
  /** The state sealed in `message.ticket`. */
  state: TicketState;
}

/**
 * Everything for one NewSessionTicket (RFC 9846 §4.6.1, RFC 9001 §4.6.1): ticket_lifetime
 * (≤ 7 days), a fresh random ticket_age_add, ticket_nonce = the uint32 big-endian ticket index
 * (unique on the connection as long as the caller counts), the PSK derived from it, the sealed
 * ticket, and an early_data extension with max_early_data_size = 0xffffffff when 0-RTT is offered.
 * `now` is the issue time (floored to an integer ms).
 */
export function newSessionTicketParams(
  ring: TicketKeyRing,
  input: NewSessionTicketInput,
  now: number,
): NewSessionTicketParams {
  if (!isUint(input.ticketIndex, 0xffff_ffff)) throw new QuicUsageError("ticketIndex not a uint32");
  if (input.earlyData && input.transportParameters === undefined) {
    throw new QuicUsageError("a 0-RTT ticket must carry the server transport parameters (RFC 9000 §7.4.1)");
  }
  const maxLifetime = Math.min(MAX_TICKET_LIFETIME_S, Math.floor(ring.minTicketValidityMs / 1000));
  const requested = input.lifetimeS ?? maxLifetime;
  if (!isUint(requested, 0xffff_ffff)) throw new QuicUsageError(`lifetimeS ${requested} not a uint32`);
  const lifetime = Math.min(requested, maxLifetime);

  const ticketNonce = new Uint8Array(4);
  new ByteWriter(ticketNonce).writeUint32(input.ticketIndex);
  const resumptionPsk = input.keySchedule.resumptionPsk(input.resumptionSecret, ticketNonce);
  const r = ring.provider.randomBytes(4);
  if (r.length !== 4) throw new QuicUsageError("randomBytes returned too few bytes");
  const ticketAgeAdd = new ByteReader(r).readUint32();
  const maxEarlyDataSize: TicketMaxEarlyDataSize = input.earlyData ? QUIC_MAX_EARLY_DATA_SIZE : 0;

  const state: TicketState = {
    quicVersion: input.quicVersion,
    cipherSuite: input.cipherSuite,
    resumptionPsk,
    alpn: input.alpn,
    issuedAt: Math.floor(now),
    lifetime,
    ticketAgeAdd,
    maxEarlyDataSize,
  };
  if (input.sni !== undefined) state.sni = input.sni;
  if (input.estimatedRttMs !== undefined) state.estimatedRttMs = Math.round(input.estimatedRttMs);
  if (input.transportParameters !== undefined) {
    state.transportParameters = rememberedTransportParameters(input.transportParameters);
  }
  if (input.appData !== undefined) state.appData = input.appData;
  if (input.clientCertificateHash !== undefined) state.clientCertificateHash = input.clientCertificateHash;

  const ticket = ring.sealTicket(state, now);
  const message: NewSessionTicket = {
    type: HandshakeType.new_session_ticket,
    ticketLifetime: lifetime,
    ticketAgeAdd,
    ticketNonce,
    ticket,
    extensions: input.earlyData ? [{ type: ExtensionType.early_data, maxEarlyDataSize }] : [],
  };
  return { message, state };
}

/** Outcome of {@link validateTicketAge}. */
export interface TicketAgeCheck {
  /** The client's view of the ticket age: (obfuscated_ticket_age − ticket_age_add) mod 2^32, ms. */
  clientAgeMs: number;
  /**
   * now − expected_arrival_time, ms, where expected_arrival_time = issuedAt + estimatedRttMs +
   * clientAgeMs (RFC 9846 §8.3). Negative: the client claims an older ticket than it is.
   */
  deltaMs: number;
  /** |deltaMs| ≤ tolerance and both ages within the lifetime: the ClientHello is plausibly fresh. */
  fresh: boolean;
  /** `fresh` and the ticket allows early data (max_early_data_size 0xffffffff). */
  acceptZeroRtt: boolean;
}

/**
 * The server's ticket age check for the selected PSK identity (RFC 9846 §4.2.10, §4.2.11, §8.3).
 * If `acceptZeroRtt` is false the server SHOULD still resume (1-RTT) but reject 0-RTT and not
 * treat the ClientHello as fresh. This is only the freshness part: the server must also check
 * version, cipher suite, ALPN and transport parameters, and record the ticket with
 * {@link AntiReplay} (anti-replay.ts) before accepting 0-RTT.
 */
export function validateTicketAge(
  state: TicketState,
  obfuscatedAge: number,
  now: number,
  toleranceMs: number,
): TicketAgeCheck {
  const clientAgeMs = (obfuscatedAge - state.ticketAgeAdd) >>> 0;
  const expectedArrival = state.issuedAt + (state.estimatedRttMs ?? 0) + clientAgeMs;
  const deltaMs = now - expectedArrival;
  const lifetimeMs = state.lifetime * 1000;
  const fresh =
    Math.abs(deltaMs) <= toleranceMs && clientAgeMs < lifetimeMs && now - state.issuedAt < lifetimeMs;
  return {
    clientAgeMs,
    deltaMs,
    fresh,
    acceptZeroRtt: fresh && state.maxEarlyDataSize === QUIC_MAX_EARLY_DATA_SIZE,
  };
}
