/**
 * The TLS 1.3 server handshake for QUIC (RFC 9846 §2, §4; RFC 9001 §4, §8): cipher-suite and
 * group selection in the server's order (HelloRetryRequest when the client keyed another group),
 * certificate authentication, optional client certificates, resumption with psk_dhe_ke from
 * tickets sealed by a {@link TicketKeyRing}, 0-RTT accepted at most once per ticket, and
 * NewSessionTicket after the handshake.
 */
import { createHash, type KeyObject } from "node:crypto";
import { defaultCryptoProvider } from "../crypto/node-provider.ts";
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import type { TransportParameters } from "../transport-parameters.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import type { AntiReplay } from "./anti-replay.ts";
import {
  type CertificateVerificationMode,
  type CertificateVerifyOptions,
  verifyClientCertificateChain,
} from "./certificate-verifier.ts";
import { DEFAULT_SIGNATURE_SCHEMES } from "./client.ts";
import {
  type EncryptedExtension,
  ExtensionType,
  findExtension,
  NamedGroup,
  PskKeyExchangeMode,
  sniHostName,
  TLS13_VERSION,
} from "./extensions.ts";
import {
  asciiBytes,
  asciiString,
  CIPHER_SUITES,
  type CipherSuiteInfo,
  DEFAULT_CIPHER_SUITES,
  type EncryptionLevel,
  equalBytes,
  type TlsCommonConfig,
  type TlsCredentials,
  TlsEndpoint,
} from "./handshake.ts";
import { generateKeyShare, isSupportedGroup, type KeyShare } from "./key-exchange.ts";
import { KeySchedule } from "./key-schedule.ts";
import {
  type Certificate,
  type CertificateVerify,
  type ClientHello,
  clientHelloBindersOffset,
  encodeHandshakeMessage,
  type Finished,
  type HandshakeMessage,
  HandshakeType,
} from "./messages.ts";
import {
  newSessionTicketParams,
  type TicketKeyRing,
  type TicketState,
  validateTicketAge,
} from "./session-ticket.ts";
import { buildCertificateVerifyContent, selectSignatureScheme, signCertificateVerify } from "./signature.ts";

export interface TlsServerTicketConfig {
  readonly keyRing: TicketKeyRing;
  /** NewSessionTickets sent after the handshake; default 1. */
  readonly count?: number;
  /** Requested ticket lifetime in seconds (clamped by the key ring and 7 days). */
  readonly lifetimeSeconds?: number;
  /** Offer and accept 0-RTT (RFC 9001 §4.6). Requires `antiReplay`. */
  readonly earlyData?: boolean;
  /** At-most-once acceptance of a ticket's early data (RFC 9846 §8). */
  readonly antiReplay?: AntiReplay;
  /** Allowed skew between the client's ticket age and ours (RFC 9846 §8.3); default 10 s. */
  readonly ageToleranceMs?: number;
  /** The QUIC version of this connection (RFC 9369 §5: 0-RTT only within one version). */
  readonly quicVersion: number;
  /** This connection's transport parameters, remembered with the ticket (RFC 9000 §7.4.1). */
  readonly transportParameters: TransportParameters;
  /** Opaque application state sealed in tickets (e.g. HTTP/3 SETTINGS). */
  readonly appData?: Uint8Array;
  /** Last word on 0-RTT for a resumed ticket (the QUIC layer checks transport parameters here). */
  readonly acceptEarlyData?: (ticket: TicketState) => boolean;
}

export interface TlsServerConfig extends TlsCommonConfig {
  /** The certificate chain and key, or a chooser by SNI (undefined → unrecognized_name). */
  readonly credentials: TlsCredentials | ((serverName: string | undefined) => TlsCredentials | undefined);
  /** Protocols we speak, in preference order, or a chooser over the client's offer. */
  readonly alpnProtocols: readonly string[] | ((offered: readonly string[]) => string | undefined);
  /** Ask for a client certificate ("request") or insist on one ("require"). */
  readonly clientAuth?: {
    readonly mode: "request" | "require";
    readonly roots?: CertificateVerifyOptions["roots"];
    readonly verifyMode?: CertificateVerificationMode;
  };
  readonly tickets?: TlsServerTicketConfig;
  readonly signatureSchemes?: readonly number[];
  /**
   * Called (synchronously) with the client's encoded quic_transport_parameters before any reply
   * to its ClientHello; returns ours, replacing `transportParameters` — for values that depend on
   * the client's, like the version chosen by compatible version negotiation (RFC 9368 §2.3). May
   * throw a QuicError to refuse the client's parameters.
   */
  readonly transportParametersFor?: (clientParameters: Uint8Array) => Uint8Array;
}

type ServerState =
  | "wait_client_hello"
  | "wait_client_hello_2"
  | "wait_certificate"
  | "wait_certificate_verify"
  | "wait_finished"
  | "connected";

const DEFAULT_AGE_TOLERANCE_MS = 10_000;

/** What a server's configuration is replaced with once its handshake completed. */
const RELEASED_CONFIG: TlsServerConfig = Object.freeze({
  credentials: () => undefined,
  alpnProtocols: [],
  transportParameters: new Uint8Array(0),
});

export class TlsServer extends TlsEndpoint {
  private state: ServerState = "wait_client_hello";
  private readonly provider;
  private readonly suites: readonly number[];
  private readonly groups: readonly number[];
  private clientRandom: Uint8Array = new Uint8Array(32);
  private selectedGroup: number | undefined;
  private ticket: TicketState | undefined;
  private handshakeSecret: Uint8Array | undefined;
  private clientHandshakeSecret: Uint8Array | undefined;
  private clientApplicationSecret: Uint8Array | undefined;
  private mainSecret: Uint8Array | undefined;
  private exporterSecret: Uint8Array | undefined;
  private clientPublicKey: KeyObject | undefined;
  private offeredClientSchemes: readonly number[] = [];
  private ticketsSent = 0;
  /** Our transport parameters as `transportParametersFor` returned them. */
  private ownTransportParameters: Uint8Array | undefined;
  /** SNI the client sent, if any. */
  serverName: string | undefined;
  /** Whether the handshake resumed a session from a ticket. */
  resumed = false;
  /** Whether 0-RTT was offered / accepted. */
  earlyDataOffered = false;
  earlyDataAccepted = false;
  /** The client's certificate chain (DER, leaf first) when it authenticated. */
  peerCertificates: readonly Uint8Array[] = [];

  constructor(private config: TlsServerConfig) {
    super(config);
    this.provider = config.provider ?? defaultCryptoProvider;
    this.suites = (config.cipherSuites ?? DEFAULT_CIPHER_SUITES).filter((s) => CIPHER_SUITES.has(s));
    if (this.suites.length === 0) throw new QuicUsageError("no supported cipher suite configured");
    this.groups = (config.groups ?? [NamedGroup.x25519, NamedGroup.secp256r1]).filter(isSupportedGroup);
    if (this.groups.length === 0) throw new QuicUsageError("no supported group configured");
    if (config.tickets?.earlyData && !config.tickets.antiReplay) {
      throw new QuicUsageError("0-RTT needs an AntiReplay store (RFC 9846 §8)");
    }
  }

  protected stateName(): string {
    return this.state;
  }

  /** RFC 9846 §7.5 exporter; available once the server Finished was sent. */
  protected override releaseHandshakeState(): void {
    super.releaseHandshakeState();
    this.handshakeSecret = undefined;
    this.clientHandshakeSecret = undefined;
    this.clientApplicationSecret = undefined;
    this.mainSecret = undefined;
    this.clientPublicKey = undefined;
    this.offeredClientSchemes = [];
    this.ownTransportParameters = undefined;
    // The per-connection configuration (closures over the connection, ticket settings, decoded
    // transport parameters) serves the handshake only; a completed server reads none of it.
    this.config = this.common = RELEASED_CONFIG;
  }

  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array {
    if (!this.exporterSecret || !this.schedule)
      throw new QuicUsageError("exporter not available before the handshake");
    return this.schedule.exporter(this.exporterSecret, label, context, length);
  }

  protected handle(msg: HandshakeMessage, raw: Uint8Array, _level: EncryptionLevel): void {
    switch (this.state) {
      case "wait_client_hello":
      case "wait_client_hello_2":
        if (msg.type !== HandshakeType.client_hello) this.unexpected(msg);
        this.onClientHello(msg, raw);
        return;
      case "wait_certificate":
        if (msg.type !== HandshakeType.certificate) this.unexpected(msg);
        this.onCertificate(msg, raw);
        return;
      case "wait_certificate_verify":
        if (msg.type !== HandshakeType.certificate_verify) this.unexpected(msg);
        this.onCertificateVerify(msg, raw);
        return;
      case "wait_finished":
        if (msg.type !== HandshakeType.finished) this.unexpected(msg);
        this.onFinished(msg, raw);
        return;
      default:
        // Nothing may follow the client Finished in QUIC (no KeyUpdate, RFC 9001 §6).
        this.unexpected(msg);
    }
  }

  private selectAlpn(offered: readonly string[]): string {
    const alpn = this.config.alpnProtocols;
    const chosen = typeof alpn === "function" ? alpn(offered) : alpn.find((p) => offered.includes(p));
    // RFC 9001 §8.1: no common protocol → no_application_protocol.
    if (chosen === undefined || !offered.includes(chosen)) {
      throw new TlsError(
        AlertDescription.no_application_protocol,
        `no common ALPN protocol (client offered ${offered.join(", ")})`,
      );
    }
    return chosen;
  }

  private onClientHello(ch: ClientHello, raw: Uint8Array): void {
    const retry = this.state === "wait_client_hello_2";
    const sv = findExtension(ch.extensions, ExtensionType.supported_versions);
    if (!sv?.versions.includes(TLS13_VERSION)) {
      throw new TlsError(AlertDescription.protocol_version, "client does not offer TLS 1.3");
    }
    // RFC 9846 §4.1.2: legacy_compression_methods must be exactly [null].
    if (ch.legacyCompressionMethods.length !== 1 || ch.legacyCompressionMethods[0] !== 0) {
      throw new TlsError(AlertDescription.illegal_parameter, "compression methods other than null");
    }
    // RFC 9001 §8.4: a non-empty legacy_session_id is a PROTOCOL_VIOLATION.
    if (ch.legacySessionId.length !== 0) {
      throw new QuicError(TransportErrorCode.PROTOCOL_VIOLATION, "non-empty legacy_session_id in QUIC");
    }
    const alpnExt = findExtension(ch.extensions, ExtensionType.application_layer_protocol_negotiation);
    if (!alpnExt) throw new TlsError(AlertDescription.no_application_protocol, "client offered no ALPN");
    const tp = findExtension(ch.extensions, ExtensionType.quic_transport_parameters);
    // RFC 9001 §8.2: missing quic_transport_parameters → missing_extension.
    if (!tp)
      throw new TlsError(AlertDescription.missing_extension, "client sent no quic_transport_parameters");
    // RFC 9368 §2.3: what the server sends may depend on the client's (the chosen version).
    if (this.config.transportParametersFor)
      this.ownTransportParameters = this.config.transportParametersFor(tp.parameters);
    const groupsExt = findExtension(ch.extensions, ExtensionType.supported_groups);
    const keyShareExt = findExtension(ch.extensions, ExtensionType.key_share);
    // We only do (EC)DHE and psk_dhe_ke: both extensions are required (RFC 9846 §9.2).
    if (!groupsExt || !keyShareExt)
      throw new TlsError(AlertDescription.missing_extension, "no supported_groups/key_share");
    const sigAlgs = findExtension(ch.extensions, ExtensionType.signature_algorithms);
    const pskExt = findExtension(ch.extensions, ExtensionType.pre_shared_key);
    if (pskExt && ch.extensions[ch.extensions.length - 1] !== pskExt) {
      // RFC 9846 §4.2.11: pre_shared_key MUST be the last extension.
      throw new TlsError(AlertDescription.illegal_parameter, "pre_shared_key is not the last extension");
    }
    const modes = findExtension(ch.extensions, ExtensionType.psk_key_exchange_modes);
    if (pskExt && !modes)
      throw new TlsError(AlertDescription.missing_extension, "pre_shared_key without psk_key_exchange_modes");
    const earlyOffered = findExtension(ch.extensions, ExtensionType.early_data) !== undefined;
    if (retry && earlyOffered) {
      // RFC 9846 §4.1.2: early_data is not allowed in the second ClientHello.
      throw new TlsError(AlertDescription.illegal_parameter, "early_data after HelloRetryRequest");
    }

    // Cipher suite: ours first (RFC 9846 §4.1.1: the server selects).
    let suite: CipherSuiteInfo | undefined;
    for (const id of this.suites)
      if (ch.cipherSuites.includes(id)) {
        suite = CIPHER_SUITES.get(id);
        break;
      }
    if (!suite) throw new TlsError(AlertDescription.handshake_failure, "no common cipher suite");
    if (retry && suite.id !== this.suite!.id) {
      throw new TlsError(AlertDescription.illegal_parameter, "second ClientHello changed the cipher suites");
    }

    // Group: the first of ours the client supports; HelloRetryRequest if it did not key that one.
    const group = this.groups.find((g) => groupsExt.groups.includes(g));
    if (group === undefined) throw new TlsError(AlertDescription.handshake_failure, "no common group");
    const clientShare = keyShareExt.clientShares.find((s) => s.group === group);
    if (retry) {
      // RFC 9846 §4.2.8: after HRR, exactly one share, for the group we asked for.
      if (keyShareExt.clientShares.length !== 1 || keyShareExt.clientShares[0].group !== this.selectedGroup) {
        throw new TlsError(AlertDescription.illegal_parameter, "second ClientHello has the wrong key share");
      }
    }
    const offeredProtocols = alpnExt.protocols.map(asciiString);
    const alpn = this.selectAlpn(offeredProtocols);
    this.serverName = (() => {
      const sni = findExtension(ch.extensions, ExtensionType.server_name);
      return sni ? sniHostName(sni) : undefined;
    })();

    // Resumption: a ticket we sealed, with a binder that verifies (RFC 9846 §4.2.11).
    let resumeWith: { ticket: TicketState; identityIndex: number } | undefined;
    if (pskExt && modes?.modes.includes(PskKeyExchangeMode.psk_dhe_ke) && this.config.tickets) {
      for (let i = 0; i < pskExt.identities.length; i++) {
        const state = this.config.tickets.keyRing.openTicket(pskExt.identities[i].identity, this.now);
        if (!state) continue;
        const ticketSuite = CIPHER_SUITES.get(state.cipherSuite);
        if (!ticketSuite || ticketSuite.hash !== suite.hash) continue;
        if (state.sni !== undefined && state.sni !== (this.serverName ?? "")) continue;
        resumeWith = { ticket: state, identityIndex: i };
        // Prefer the ticket's own suite when the client offers it (same hash, RFC 9846 §4.2.11).
        if (ch.cipherSuites.includes(state.cipherSuite) && !retry) suite = ticketSuite;
        break;
      }
    }
    this.suite = suite;
    const ks =
      this.schedule && this.schedule.hash === suite.hash
        ? this.schedule
        : new KeySchedule(this.provider, suite.hash);
    this.schedule = ks;

    if (!clientShare) {
      if (retry)
        throw new TlsError(
          AlertDescription.illegal_parameter,
          "second ClientHello still lacks the key share",
        );
      this.sendHelloRetryRequest(ch, raw, suite, group, earlyOffered);
      return;
    }
    if (!retry) this.clientRandom = ch.random;
    this.alpn = alpn;
    this.peerTransportParameters = tp.parameters;
    this.events.push({ type: "transport-parameters", parameters: tp.parameters });

    let earlySecret = ks.earlySecret();
    if (resumeWith) {
      const psk = resumeWith.ticket.resumptionPsk;
      const candidateEarly = ks.earlySecret(psk);
      const offset = clientHelloBindersOffset(raw, ch);
      const prior = this.transcript.bytes();
      const partial = new Uint8Array(prior.length + offset);
      partial.set(prior, 0);
      partial.set(raw.subarray(0, offset), prior.length);
      const expected = ks.finishedVerifyData(ks.binderKey(candidateEarly), ks.transcriptHash(partial));
      // RFC 9846 §4.2.11.2: a binder that does not verify aborts the handshake.
      if (!equalBytes(expected, pskExt!.binders[resumeWith.identityIndex] ?? new Uint8Array(0))) {
        throw new TlsError(AlertDescription.decrypt_error, "PSK binder does not verify");
      }
      earlySecret = candidateEarly;
      this.ticket = resumeWith.ticket;
      this.resumed = true;
    } else if (!sigAlgs) {
      throw new TlsError(
        AlertDescription.missing_extension,
        "no signature_algorithms for a certificate handshake",
      );
    }
    this.offeredClientSchemes = sigAlgs?.schemes ?? [];

    this.transcript.add(raw);
    // 0-RTT (RFC 9846 §4.2.10, RFC 9001 §4.6): first identity, same suite/ALPN/version, fresh, once.
    this.earlyDataOffered = earlyOffered;
    if (
      earlyOffered &&
      resumeWith &&
      this.decideEarlyData(
        resumeWith.ticket,
        resumeWith.identityIndex,
        pskExt!.identities[resumeWith.identityIndex].obfuscatedTicketAge,
        suite,
        alpn,
        pskExt!.identities[resumeWith.identityIndex].identity,
      )
    ) {
      this.earlyDataAccepted = true;
      const secret = ks.deriveSecret(earlySecret, "c e traffic", this.transcript.hash(ks));
      this.keyLog("CLIENT_EARLY_TRAFFIC_SECRET", this.clientRandom, secret);
      this.emitSecret("early", "read", secret);
    }
    if (earlyOffered) this.events.push({ type: "early-data", accepted: this.earlyDataAccepted });

    // ServerHello.
    const share: KeyShare = generateKeyShare(group);
    const shared = share.computeSharedSecret(clientShare.keyExchange);
    const sh = encodeHandshakeMessage({
      type: HandshakeType.server_hello,
      isHelloRetryRequest: false,
      legacyVersion: 0x0303,
      random: this.provider.randomBytes(32),
      legacySessionIdEcho: ch.legacySessionId,
      cipherSuite: suite.id,
      legacyCompressionMethod: 0,
      extensions: [
        { type: ExtensionType.supported_versions, selectedVersion: TLS13_VERSION },
        { type: ExtensionType.key_share, serverShare: { group, keyExchange: share.publicKey } },
        ...(resumeWith
          ? [{ type: ExtensionType.pre_shared_key, selectedIdentity: resumeWith.identityIndex } as const]
          : []),
      ],
    });
    this.transcript.add(sh);
    this.send("initial", sh);
    this.handshakeSecret = ks.handshakeSecret(earlySecret, shared);
    const h = this.transcript.hash(ks);
    this.clientHandshakeSecret = ks.deriveSecret(this.handshakeSecret, "c hs traffic", h);
    const serverHs = ks.deriveSecret(this.handshakeSecret, "s hs traffic", h);
    this.keyLog("CLIENT_HANDSHAKE_TRAFFIC_SECRET", this.clientRandom, this.clientHandshakeSecret);
    this.keyLog("SERVER_HANDSHAKE_TRAFFIC_SECRET", this.clientRandom, serverHs);
    this.emitSecret("handshake", "write", serverHs);
    this.emitSecret("handshake", "read", this.clientHandshakeSecret);

    // EncryptedExtensions.
    const ee: EncryptedExtension[] = [
      { type: ExtensionType.application_layer_protocol_negotiation, protocols: [asciiBytes(alpn)] },
      {
        type: ExtensionType.quic_transport_parameters,
        parameters: this.ownTransportParameters ?? this.config.transportParameters,
      },
    ];
    if (this.earlyDataAccepted) ee.push({ type: ExtensionType.early_data });
    this.sendHandshakeMessage(
      encodeHandshakeMessage({ type: HandshakeType.encrypted_extensions, extensions: ee }),
    );

    const clientAuth = this.config.clientAuth && !this.resumed;
    if (!this.resumed) {
      const creds =
        typeof this.config.credentials === "function"
          ? this.config.credentials(this.serverName)
          : this.config.credentials;
      if (!creds)
        throw new TlsError(
          AlertDescription.unrecognized_name,
          `no certificate for "${this.serverName ?? ""}"`,
        );
      if (clientAuth) {
        this.sendHandshakeMessage(
          encodeHandshakeMessage({
            type: HandshakeType.certificate_request,
            certificateRequestContext: new Uint8Array(0),
            extensions: [
              {
                type: ExtensionType.signature_algorithms,
                schemes: [...(this.config.signatureSchemes ?? DEFAULT_SIGNATURE_SCHEMES)],
              },
            ],
          }),
        );
      }
      this.sendHandshakeMessage(
        encodeHandshakeMessage({
          type: HandshakeType.certificate,
          certificateRequestContext: new Uint8Array(0),
          certificateList: creds.chainDer.map((certData) => ({ certData, extensions: [] })),
        }),
      );
      const scheme = selectSignatureScheme(
        creds.privateKey,
        this.offeredClientSchemes,
        this.config.signatureSchemes,
      );
      if (scheme === null)
        throw new TlsError(AlertDescription.handshake_failure, "no signature scheme in common for our key");
      const content = buildCertificateVerifyContent("server", this.transcript.hash(ks));
      this.sendHandshakeMessage(
        encodeHandshakeMessage({
          type: HandshakeType.certificate_verify,
          algorithm: scheme,
          signature: signCertificateVerify(creds.privateKey, scheme, content),
        }),
      );
    }
    this.sendHandshakeMessage(
      encodeHandshakeMessage({
        type: HandshakeType.finished,
        verifyData: ks.finishedVerifyData(serverHs, this.transcript.hash(ks)),
      }),
    );
    this.mainSecret = ks.mainSecret(this.handshakeSecret);
    const h2 = this.transcript.hash(ks);
    this.clientApplicationSecret = ks.deriveSecret(this.mainSecret, "c ap traffic", h2);
    const serverApp = ks.deriveSecret(this.mainSecret, "s ap traffic", h2);
    this.exporterSecret = ks.deriveSecret(this.mainSecret, "exp master", h2);
    this.keyLog("CLIENT_TRAFFIC_SECRET_0", this.clientRandom, this.clientApplicationSecret);
    this.keyLog("SERVER_TRAFFIC_SECRET_0", this.clientRandom, serverApp);
    this.keyLog("EXPORTER_SECRET", this.clientRandom, this.exporterSecret);
    this.emitSecret("application", "write", serverApp);
    this.expectedLevel = "handshake";
    this.state = clientAuth ? "wait_certificate" : "wait_finished";
  }

  private decideEarlyData(
    ticket: TicketState,
    identityIndex: number,
    obfuscatedAge: number,
    suite: CipherSuiteInfo,
    alpn: string,
    identity: Uint8Array,
  ): boolean {
    const cfg = this.config.tickets;
    if (!cfg?.earlyData || !cfg.antiReplay) return false;
    // RFC 9846 §4.2.10: only with the first identity, the ticket's suite and ALPN.
    if (identityIndex !== 0 || ticket.cipherSuite !== suite.id || ticket.alpn !== alpn) return false;
    // RFC 9369 §5: 0-RTT only within the same QUIC version.
    if (ticket.quicVersion !== cfg.quicVersion) return false;
    const age = validateTicketAge(
      ticket,
      obfuscatedAge,
      this.now,
      cfg.ageToleranceMs ?? DEFAULT_AGE_TOLERANCE_MS,
    );
    if (!age.acceptZeroRtt) return false;
    if (cfg.acceptEarlyData && !cfg.acceptEarlyData(ticket)) return false;
    // RFC 9846 §8: accept a ticket's early data at most once (last, so a refusal above does not burn it).
    return cfg.antiReplay.tryAccept(
      identity,
      this.now,
      ticket.issuedAt + ticket.lifetime * 1000,
      ticket.issuedAt,
    );
  }

  private sendHelloRetryRequest(
    ch: ClientHello,
    raw: Uint8Array,
    suite: CipherSuiteInfo,
    group: number,
    earlyOffered: boolean,
  ): void {
    this.selectedGroup = group;
    this.clientRandom = ch.random;
    this.transcript.add(raw);
    this.transcript.replaceWithMessageHash(this.schedule!);
    const hrr = encodeHandshakeMessage({
      type: HandshakeType.server_hello,
      isHelloRetryRequest: true,
      legacyVersion: 0x0303,
      legacySessionIdEcho: ch.legacySessionId,
      cipherSuite: suite.id,
      legacyCompressionMethod: 0,
      extensions: [
        { type: ExtensionType.supported_versions, selectedVersion: TLS13_VERSION },
        { type: ExtensionType.key_share, selectedGroup: group },
      ],
    });
    this.transcript.add(hrr);
    this.send("initial", hrr);
    // RFC 9846 §4.2.10: a HelloRetryRequest rejects 0-RTT.
    if (earlyOffered) {
      this.earlyDataOffered = true;
      this.events.push({ type: "early-data", accepted: false });
    }
    this.state = "wait_client_hello_2";
  }

  private sendHandshakeMessage(bytes: Uint8Array): void {
    this.transcript.add(bytes);
    this.send("handshake", bytes);
  }

  private onCertificate(msg: Certificate, raw: Uint8Array): void {
    if (msg.certificateRequestContext.length !== 0) {
      throw new TlsError(
        AlertDescription.illegal_parameter,
        "client Certificate with a wrong request context",
      );
    }
    const chain = msg.certificateList.map((e) => e.certData);
    this.transcript.add(raw);
    if (chain.length === 0) {
      // RFC 9846 §4.4.2.4: no certificate when one is required → certificate_required.
      if (this.config.clientAuth?.mode === "require") {
        throw new TlsError(AlertDescription.certificate_required, "client sent no certificate");
      }
      this.state = "wait_finished";
      return;
    }
    const verified = verifyClientCertificateChain(chain, {
      roots: this.config.clientAuth?.roots,
      now: new Date(this.now),
      mode: this.config.clientAuth?.verifyMode ?? "normal",
    });
    this.clientPublicKey = verified.publicKey;
    this.peerCertificates = chain;
    this.state = "wait_certificate_verify";
  }

  private onCertificateVerify(msg: CertificateVerify, raw: Uint8Array): void {
    const offered = this.config.signatureSchemes ?? DEFAULT_SIGNATURE_SCHEMES;
    this.verifyPeerCertificateVerify("client", offered, this.clientPublicKey!, msg, raw);
    this.state = "wait_finished";
  }

  private onFinished(msg: Finished, raw: Uint8Array): void {
    const ks = this.schedule!;
    this.verifyPeerFinished("client", this.clientHandshakeSecret!, msg.verifyData, raw);
    this.emitSecret("application", "read", this.clientApplicationSecret!);
    this.expectedLevel = "application";
    this.state = "connected";
    this.handshakeComplete = true;
    this.events.push({ type: "handshake-complete" });
    const resumptionSecret = ks.deriveSecret(this.mainSecret!, "res master", this.transcript.hash(ks));
    const cfg = this.config.tickets;
    this.releaseHandshakeState();
    if (!cfg) return;
    const clientCertificateHash =
      this.peerCertificates.length > 0
        ? new Uint8Array(createHash("sha256").update(this.peerCertificates[0]).digest())
        : undefined;
    for (let i = 0; i < (cfg.count ?? 1); i++) {
      const { message } = newSessionTicketParams(
        cfg.keyRing,
        {
          keySchedule: ks,
          resumptionSecret,
          ticketIndex: this.ticketsSent++,
          quicVersion: cfg.quicVersion,
          cipherSuite: this.suite!.id,
          alpn: this.alpn!,
          sni: this.serverName,
          earlyData: cfg.earlyData === true,
          lifetimeS: cfg.lifetimeSeconds,
          transportParameters: cfg.transportParameters,
          appData: cfg.appData,
          clientCertificateHash,
        },
        this.now,
      );
      this.send("application", encodeHandshakeMessage(message));
    }
  }
}
