/**
 * The TLS 1.3 client handshake for QUIC (RFC 9846 §2, §4; RFC 9001 §4, §8): ClientHello with one
 * key share (and the other groups advertised), HelloRetryRequest, server authentication, optional
 * client certificate, resumption with psk_dhe_ke and 0-RTT, NewSessionTicket.
 */
import { isIP } from "node:net";
import { defaultCryptoProvider } from "../crypto/node-provider.ts";
import { QuicUsageError } from "../errors.ts";
import { AlertDescription, TlsError } from "./alert.ts";
import {
  type CertificateVerificationMode,
  type CertificateVerifyOptions,
  type TrustStore,
  verifyServerCertificateChain,
} from "./certificate-verifier.ts";
import {
  type ClientHelloExtension,
  ExtensionType,
  findExtension,
  NamedGroup,
  PskKeyExchangeMode,
  SignatureScheme,
  serverNameExtension,
  TLS13_VERSION,
} from "./extensions.ts";
import {
  asciiBytes,
  asciiString,
  CIPHER_SUITES,
  type CipherSuiteInfo,
  DEFAULT_CIPHER_SUITES,
  type EncryptionLevel,
  type ResumableSession,
  type TlsCommonConfig,
  type TlsCredentials,
  TlsEndpoint,
} from "./handshake.ts";
import { generateKeyShare, isSupportedGroup, type KeyShare } from "./key-exchange.ts";
import { KeySchedule } from "./key-schedule.ts";
import {
  type Certificate,
  type CertificateRequest,
  type CertificateVerify,
  type ClientHello,
  type EncryptedExtensions,
  encodeClientHello,
  encodeHandshakeMessage,
  type Finished,
  type HandshakeMessage,
  HandshakeType,
  type HelloRetryRequest,
  type NewSessionTicket,
  patchBinders,
  type ServerHello,
} from "./messages.ts";
import { ticketMaxEarlyDataSize } from "./session-cache.ts";
import { MAX_TICKET_LIFETIME_S } from "./session-ticket.ts";
import { buildCertificateVerifyContent, selectSignatureScheme, signCertificateVerify } from "./signature.ts";

/** Signature schemes the client offers for CertificateVerify, in preference order. */
export const DEFAULT_SIGNATURE_SCHEMES: readonly number[] = [
  SignatureScheme.ecdsa_secp256r1_sha256,
  SignatureScheme.rsa_pss_rsae_sha256,
  SignatureScheme.ed25519,
  SignatureScheme.ecdsa_secp384r1_sha384,
  SignatureScheme.rsa_pss_rsae_sha384,
  SignatureScheme.rsa_pss_rsae_sha512,
];

export interface TlsClientConfig extends TlsCommonConfig {
  /** The server's DNS name or IP literal: SNI (DNS names only) and the name the certificate must match. */
  readonly serverName?: string;
  /** ALPN protocols in preference order; QUIC requires ALPN (RFC 9001 §8.1). */
  readonly alpnProtocols: readonly string[];
  /** How to authenticate the server: "normal" (default), "insecure", or serverCertificateHashes. */
  readonly verifyMode?: CertificateVerificationMode;
  /** Trust anchors for "normal" mode; default Node's root store. */
  readonly roots?: CertificateVerifyOptions["roots"] | TrustStore;
  /** Our certificate for mutual TLS, used when the server asks. */
  readonly clientCredentials?: TlsCredentials;
  readonly signatureSchemes?: readonly number[];
  /** A session from an earlier connection to resume. */
  readonly resumption?: ResumableSession;
  /** Offer 0-RTT when `resumption` allows it. */
  readonly enableEarlyData?: boolean;
}

type ClientState =
  | "start"
  | "wait_server_hello"
  | "wait_encrypted_extensions"
  | "wait_certificate_or_request"
  | "wait_certificate"
  | "wait_certificate_verify"
  | "wait_finished"
  | "connected";

export class TlsClient extends TlsEndpoint {
  private state: ClientState = "start";
  private readonly provider;
  private readonly suites: readonly number[];
  private readonly groups: readonly number[];
  private readonly schemes: readonly number[];
  private keyShare: KeyShare | undefined;
  private random: Uint8Array = new Uint8Array(32);
  private helloRetried = false;
  private offeredPsk: ResumableSession | undefined;
  private earlySecret: Uint8Array | undefined;
  private handshakeSecret: Uint8Array | undefined;
  private clientHandshakeSecret: Uint8Array | undefined;
  private serverHandshakeSecret: Uint8Array | undefined;
  private resumptionSecret: Uint8Array | undefined;
  private exporterSecret: Uint8Array | undefined;
  private serverPublicKey: import("node:crypto").KeyObject | undefined;
  private certificateRequest: CertificateRequest | undefined;
  private pskAccepted = false;
  /** Whether 0-RTT was offered in the ClientHello. */
  earlyDataOffered = false;
  /** Whether the server accepted 0-RTT (known after EncryptedExtensions). */
  earlyDataAccepted = false;
  /** The server's certificate chain (DER, leaf first) once verified. */
  peerCertificates: readonly Uint8Array[] = [];

  constructor(private readonly config: TlsClientConfig) {
    super(config);
    if (config.alpnProtocols.length === 0)
      throw new QuicUsageError("TLS client needs at least one ALPN protocol");
    this.provider = config.provider ?? defaultCryptoProvider;
    this.suites = (config.cipherSuites ?? DEFAULT_CIPHER_SUITES).filter((s) => CIPHER_SUITES.has(s));
    if (this.suites.length === 0) throw new QuicUsageError("no supported cipher suite configured");
    this.groups = (config.groups ?? [NamedGroup.x25519, NamedGroup.secp256r1]).filter(isSupportedGroup);
    if (this.groups.length === 0) throw new QuicUsageError("no supported group configured");
    this.schemes = config.signatureSchemes ?? DEFAULT_SIGNATURE_SCHEMES;
  }

  protected stateName(): string {
    return this.state;
  }

  /** Produces the ClientHello (and, with 0-RTT, the early write secret). */
  start(now: number): void {
    if (this.state !== "start") throw new QuicUsageError("TLS client already started");
    this.now = now;
    this.random = this.provider.randomBytes(32);
    this.keyShare = generateKeyShare(this.groups[0]);
    const session = this.usableSession(now);
    this.offeredPsk = session;
    this.earlyDataOffered =
      session !== undefined &&
      this.config.enableEarlyData === true &&
      session.maxEarlyDataSize === 0xffffffff &&
      this.config.alpnProtocols.includes(session.alpn);
    const ch = this.sendClientHello(undefined);
    if (this.earlyDataOffered && session) {
      // RFC 9846 §7.1: client_early_traffic_secret = Derive-Secret(early, "c e traffic", ClientHello).
      const suite = CIPHER_SUITES.get(session.cipherSuite)!;
      this.suite = suite;
      const ks = this.scheduleFor(suite);
      const secret = ks.deriveSecret(this.earlySecret!, "c e traffic", ks.transcriptHash(ch));
      this.keyLog("CLIENT_EARLY_TRAFFIC_SECRET", this.random, secret);
      this.emitSecret("early", "write", secret);
    }
    this.state = "wait_server_hello";
  }

  /** RFC 9846 §7.5 exporter over the exporter_secret; available once the handshake completed. */
  protected override releaseHandshakeState(): void {
    super.releaseHandshakeState();
    this.keyShare = undefined;
    this.earlySecret = undefined;
    this.handshakeSecret = undefined;
    this.clientHandshakeSecret = undefined;
    this.serverHandshakeSecret = undefined;
    this.serverPublicKey = undefined;
    this.certificateRequest = undefined;
  }

  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array {
    if (!this.exporterSecret || !this.schedule)
      throw new QuicUsageError("exporter not available before the handshake completes");
    return this.schedule.exporter(this.exporterSecret, label, context, length);
  }

  /** The session, if the server allowed resumption with it and it has not expired. */
  private usableSession(now: number): ResumableSession | undefined {
    const s = this.config.resumption;
    if (!s) return undefined;
    const suite = CIPHER_SUITES.get(s.cipherSuite);
    if (!suite || !this.suites.some((id) => CIPHER_SUITES.get(id)?.hash === suite.hash)) return undefined;
    if (now - s.receivedAt >= s.lifetime * 1000) return undefined;
    if (this.config.serverName !== undefined && s.sni !== undefined && s.sni !== this.config.serverName) {
      return undefined;
    }
    return s;
  }

  private scheduleFor(suite: CipherSuiteInfo): KeySchedule {
    if (!this.schedule || this.schedule.hash !== suite.hash)
      this.schedule = new KeySchedule(this.provider, suite.hash);
    return this.schedule;
  }

  private sendClientHello(cookie: Uint8Array | undefined): Uint8Array {
    const extensions: ClientHelloExtension[] = [];
    const name = this.config.serverName;
    // RFC 6066 §3: literal IP addresses are not permitted in server_name.
    if (name !== undefined && isIP(name) === 0) extensions.push(serverNameExtension(name));
    extensions.push(
      { type: ExtensionType.supported_versions, versions: [TLS13_VERSION] },
      { type: ExtensionType.supported_groups, groups: [...this.groups] },
      { type: ExtensionType.signature_algorithms, schemes: [...this.schemes] },
      {
        type: ExtensionType.key_share,
        clientShares: [{ group: this.keyShare!.group, keyExchange: this.keyShare!.publicKey }],
      },
      {
        type: ExtensionType.application_layer_protocol_negotiation,
        protocols: this.config.alpnProtocols.map(asciiBytes),
      },
      { type: ExtensionType.quic_transport_parameters, parameters: this.config.transportParameters },
    );
    if (cookie) extensions.push({ type: ExtensionType.cookie, cookie });
    const psk = this.offeredPsk;
    let pskSuite: CipherSuiteInfo | undefined;
    // RFC 9846 §4.2.9: sent even without a PSK to offer, because servers (rustls/quinn among
    // them) only issue NewSessionTickets to clients that announce a usable PSK mode.
    extensions.push({ type: ExtensionType.psk_key_exchange_modes, modes: [PskKeyExchangeMode.psk_dhe_ke] });
    if (psk) {
      pskSuite = CIPHER_SUITES.get(psk.cipherSuite)!;
      // RFC 9846 §4.2.10: no early_data in the ClientHello that follows a HelloRetryRequest.
      if (this.earlyDataOffered && !cookie && !this.helloRetried)
        extensions.push({ type: ExtensionType.early_data });
      // RFC 9846 §4.2.11.1: obfuscated_ticket_age = age in ms + ticket_age_add, mod 2^32.
      const age = Math.max(0, Math.floor(this.now - psk.receivedAt));
      extensions.push({
        type: ExtensionType.pre_shared_key,
        identities: [{ identity: psk.ticket, obfuscatedTicketAge: (age + psk.ticketAgeAdd) >>> 0 }],
        binders: [new Uint8Array(pskSuite.hash === "sha384" ? 48 : 32)],
      });
    }
    const ch: ClientHello = {
      type: HandshakeType.client_hello,
      legacyVersion: 0x0303,
      random: this.random,
      legacySessionId: new Uint8Array(0), // RFC 9001 §8.4
      cipherSuites: [...this.suites],
      legacyCompressionMethods: Uint8Array.of(0),
      extensions,
    };
    const { bytes, bindersOffset } = encodeClientHello(ch);
    if (psk && pskSuite && bindersOffset !== undefined) {
      // RFC 9846 §4.2.11.2: binder = HMAC over Transcript-Hash(transcript so far ‖ partial ClientHello).
      const ks = this.scheduleFor(pskSuite);
      this.earlySecret = ks.earlySecret(psk.psk);
      const prior = this.transcript.bytes();
      const partial = new Uint8Array(prior.length + bindersOffset);
      partial.set(prior, 0);
      partial.set(bytes.subarray(0, bindersOffset), prior.length);
      const binder = ks.finishedVerifyData(ks.binderKey(this.earlySecret), ks.transcriptHash(partial));
      patchBinders(bytes, bindersOffset, [binder]);
    }
    this.transcript.add(bytes);
    this.send("initial", bytes);
    return bytes;
  }

  protected handle(msg: HandshakeMessage, raw: Uint8Array, _level: EncryptionLevel): void {
    switch (this.state) {
      case "wait_server_hello":
        if (msg.type !== HandshakeType.server_hello) this.unexpected(msg);
        if (msg.isHelloRetryRequest) this.onHelloRetryRequest(msg, raw);
        else this.onServerHello(msg, raw);
        return;
      case "wait_encrypted_extensions":
        if (msg.type !== HandshakeType.encrypted_extensions) this.unexpected(msg);
        this.onEncryptedExtensions(msg, raw);
        return;
      case "wait_certificate_or_request":
        if (msg.type === HandshakeType.certificate_request) {
          this.onCertificateRequest(msg, raw);
          return;
        }
        if (msg.type !== HandshakeType.certificate) this.unexpected(msg);
        this.onCertificate(msg, raw);
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
      case "connected":
        // RFC 9001 §6: KeyUpdate is forbidden in QUIC; only NewSessionTicket may follow.
        if (msg.type !== HandshakeType.new_session_ticket) this.unexpected(msg);
        this.onNewSessionTicket(msg);
        return;
      default:
        this.unexpected(msg);
    }
  }

  private checkServerHelloCommon(msg: ServerHello | HelloRetryRequest): CipherSuiteInfo {
    const extensions: readonly { type: number }[] = msg.extensions;
    if (msg.legacyVersion !== 0x0303)
      throw new TlsError(AlertDescription.protocol_version, "legacy_version is not 0x0303");
    // RFC 9846 §4.1.3: legacy_session_id_echo must match what we sent (empty in QUIC).
    if (msg.legacySessionIdEcho.length !== 0) {
      throw new TlsError(AlertDescription.illegal_parameter, "legacy_session_id_echo does not match");
    }
    if (msg.legacyCompressionMethod !== 0)
      throw new TlsError(AlertDescription.illegal_parameter, "compression method");
    const sv = findExtension(msg.extensions as ServerHello["extensions"], ExtensionType.supported_versions);
    if (!sv || sv.selectedVersion !== TLS13_VERSION) {
      throw new TlsError(AlertDescription.protocol_version, "server did not select TLS 1.3");
    }
    if (!this.suites.includes(msg.cipherSuite)) {
      throw new TlsError(
        AlertDescription.illegal_parameter,
        "server selected a cipher suite we did not offer",
      );
    }
    for (const ext of extensions) {
      const allowed: number[] = msg.isHelloRetryRequest
        ? [ExtensionType.supported_versions, ExtensionType.key_share, ExtensionType.cookie]
        : [ExtensionType.supported_versions, ExtensionType.key_share, ExtensionType.pre_shared_key];
      // RFC 9846 §4.2: an extension we did not offer, or not allowed here → unsupported_extension.
      if (!allowed.includes(ext.type)) {
        throw new TlsError(AlertDescription.unsupported_extension, `extension ${ext.type} in ServerHello`);
      }
    }
    return CIPHER_SUITES.get(msg.cipherSuite)!;
  }

  private onHelloRetryRequest(msg: HelloRetryRequest, raw: Uint8Array): void {
    // RFC 9846 §4.1.4: at most one HelloRetryRequest; it must change something.
    if (this.helloRetried)
      throw new TlsError(AlertDescription.unexpected_message, "second HelloRetryRequest");
    this.helloRetried = true;
    const suite = this.checkServerHelloCommon(msg);
    const ks = this.scheduleFor(suite);
    const keyShare = findExtension(msg.extensions, ExtensionType.key_share);
    const cookie = findExtension(msg.extensions, ExtensionType.cookie);
    if (keyShare) {
      if (!this.groups.includes(keyShare.selectedGroup) || keyShare.selectedGroup === this.keyShare!.group) {
        throw new TlsError(
          AlertDescription.illegal_parameter,
          "HelloRetryRequest selected an unusable group",
        );
      }
    } else if (!cookie) {
      throw new TlsError(
        AlertDescription.illegal_parameter,
        "HelloRetryRequest would not change the ClientHello",
      );
    }
    this.suite = suite;
    // A PSK whose hash differs from the suite the server chose cannot be used any more.
    if (this.offeredPsk && CIPHER_SUITES.get(this.offeredPsk.cipherSuite)!.hash !== suite.hash) {
      this.offeredPsk = undefined;
    }
    // 0-RTT is rejected by a HelloRetryRequest (RFC 9846 §4.2.10).
    if (this.earlyDataOffered) this.events.push({ type: "early-data", accepted: false });
    this.earlyDataOffered = false;
    this.transcript.replaceWithMessageHash(ks);
    this.transcript.add(raw);
    if (keyShare) this.keyShare = generateKeyShare(keyShare.selectedGroup);
    this.sendClientHello(cookie?.cookie);
  }

  private onServerHello(msg: ServerHello, raw: Uint8Array): void {
    const suite = this.checkServerHelloCommon(msg);
    if (this.helloRetried && this.suite && suite.id !== this.suite.id) {
      throw new TlsError(
        AlertDescription.illegal_parameter,
        "cipher suite differs from the HelloRetryRequest",
      );
    }
    this.suite = suite;
    const ks = this.scheduleFor(suite);
    const keyShare = findExtension(msg.extensions, ExtensionType.key_share);
    if (!keyShare)
      throw new TlsError(
        AlertDescription.missing_extension,
        "ServerHello without key_share (psk_ke is not offered)",
      );
    if (keyShare.serverShare.group !== this.keyShare!.group) {
      throw new TlsError(
        AlertDescription.illegal_parameter,
        "server key share is for a group we did not key",
      );
    }
    const pskExt = findExtension(msg.extensions, ExtensionType.pre_shared_key);
    if (pskExt) {
      // RFC 9846 §4.2.11: selected_identity in range, and a cipher suite with the PSK's hash.
      if (!this.offeredPsk || pskExt.selectedIdentity !== 0) {
        throw new TlsError(AlertDescription.illegal_parameter, "server selected a PSK we did not offer");
      }
      if (CIPHER_SUITES.get(this.offeredPsk.cipherSuite)!.hash !== suite.hash) {
        throw new TlsError(
          AlertDescription.illegal_parameter,
          "server selected a cipher suite incompatible with the PSK",
        );
      }
      this.pskAccepted = true;
    }
    const shared = this.keyShare!.computeSharedSecret(keyShare.serverShare.keyExchange);
    const early = this.pskAccepted ? ks.earlySecret(this.offeredPsk!.psk) : ks.earlySecret();
    this.handshakeSecret = ks.handshakeSecret(early, shared);
    this.transcript.add(raw);
    const h = this.transcript.hash(ks);
    this.clientHandshakeSecret = ks.deriveSecret(this.handshakeSecret, "c hs traffic", h);
    this.serverHandshakeSecret = ks.deriveSecret(this.handshakeSecret, "s hs traffic", h);
    this.keyLog("CLIENT_HANDSHAKE_TRAFFIC_SECRET", this.random, this.clientHandshakeSecret);
    this.keyLog("SERVER_HANDSHAKE_TRAFFIC_SECRET", this.random, this.serverHandshakeSecret);
    this.emitSecret("handshake", "read", this.serverHandshakeSecret);
    this.emitSecret("handshake", "write", this.clientHandshakeSecret);
    this.expectedLevel = "handshake";
    this.state = "wait_encrypted_extensions";
  }

  private onEncryptedExtensions(msg: EncryptedExtensions, raw: Uint8Array): void {
    const alpn = findExtension(msg.extensions, ExtensionType.application_layer_protocol_negotiation);
    // RFC 9001 §8.1: a server that does not pick a protocol fails the handshake.
    if (!alpn)
      throw new TlsError(AlertDescription.no_application_protocol, "server selected no ALPN protocol");
    if (alpn.protocols.length !== 1)
      throw new TlsError(AlertDescription.illegal_parameter, "server ALPN must name one protocol");
    const selected = asciiString(alpn.protocols[0]);
    if (!this.config.alpnProtocols.includes(selected)) {
      throw new TlsError(
        AlertDescription.illegal_parameter,
        `server selected ALPN "${selected}" we did not offer`,
      );
    }
    this.alpn = selected;
    const tp = findExtension(msg.extensions, ExtensionType.quic_transport_parameters);
    // RFC 9001 §8.2: missing quic_transport_parameters → missing_extension.
    if (!tp)
      throw new TlsError(AlertDescription.missing_extension, "server sent no quic_transport_parameters");
    this.peerTransportParameters = tp.parameters;
    this.events.push({ type: "transport-parameters", parameters: tp.parameters });
    const early = findExtension(msg.extensions, ExtensionType.early_data);
    if (early && !this.earlyDataOffered) {
      throw new TlsError(AlertDescription.unsupported_extension, "early_data accepted but not offered");
    }
    if (this.earlyDataOffered) {
      // RFC 9001 §4.6.2: 0-RTT is accepted only with the same ALPN as the ticket's.
      this.earlyDataAccepted = early !== undefined && this.pskAccepted && selected === this.offeredPsk!.alpn;
      if (early && !this.earlyDataAccepted) {
        throw new TlsError(
          AlertDescription.illegal_parameter,
          "early_data accepted without the ticket's PSK and ALPN",
        );
      }
      this.events.push({ type: "early-data", accepted: this.earlyDataAccepted });
    }
    for (const ext of msg.extensions) {
      const known: number[] = [
        ExtensionType.application_layer_protocol_negotiation,
        ExtensionType.quic_transport_parameters,
        ExtensionType.early_data,
        ExtensionType.server_name,
        ExtensionType.supported_groups,
      ];
      if (!known.includes(ext.type)) {
        throw new TlsError(
          AlertDescription.unsupported_extension,
          `extension ${ext.type} in EncryptedExtensions`,
        );
      }
    }
    this.transcript.add(raw);
    this.state = this.pskAccepted ? "wait_finished" : "wait_certificate_or_request";
  }

  private onCertificateRequest(msg: CertificateRequest, raw: Uint8Array): void {
    // RFC 9846 §4.3.2: context is empty during the main handshake; signature_algorithms required.
    if (msg.certificateRequestContext.length !== 0) {
      throw new TlsError(
        AlertDescription.illegal_parameter,
        "non-empty certificate_request_context in handshake",
      );
    }
    if (!findExtension(msg.extensions, ExtensionType.signature_algorithms)) {
      throw new TlsError(
        AlertDescription.missing_extension,
        "CertificateRequest without signature_algorithms",
      );
    }
    this.certificateRequest = msg;
    this.transcript.add(raw);
    this.state = "wait_certificate";
  }

  private onCertificate(msg: Certificate, raw: Uint8Array): void {
    if (msg.certificateRequestContext.length !== 0) {
      throw new TlsError(AlertDescription.illegal_parameter, "server Certificate with a request context");
    }
    const chain = msg.certificateList.map((e) => e.certData);
    const verified = verifyServerCertificateChain(chain, {
      serverName: this.config.serverName,
      roots: this.config.roots as CertificateVerifyOptions["roots"],
      now: new Date(this.now),
      mode: this.config.verifyMode ?? "normal",
    });
    this.serverPublicKey = verified.publicKey;
    this.peerCertificates = chain;
    this.transcript.add(raw);
    this.state = "wait_certificate_verify";
  }

  private onCertificateVerify(msg: CertificateVerify, raw: Uint8Array): void {
    this.verifyPeerCertificateVerify("server", this.schemes, this.serverPublicKey!, msg, raw);
    this.state = "wait_finished";
  }

  private onFinished(msg: Finished, raw: Uint8Array): void {
    const ks = this.schedule!;
    this.verifyPeerFinished("server", this.serverHandshakeSecret!, msg.verifyData, raw);
    const main = ks.mainSecret(this.handshakeSecret!);
    const h = this.transcript.hash(ks);
    const clientApp = ks.deriveSecret(main, "c ap traffic", h);
    const serverApp = ks.deriveSecret(main, "s ap traffic", h);
    this.exporterSecret = ks.deriveSecret(main, "exp master", h);
    this.keyLog("CLIENT_TRAFFIC_SECRET_0", this.random, clientApp);
    this.keyLog("SERVER_TRAFFIC_SECRET_0", this.random, serverApp);
    this.keyLog("EXPORTER_SECRET", this.random, this.exporterSecret);
    this.emitSecret("application", "read", serverApp);

    // Client flight at the Handshake level: [Certificate, CertificateVerify], Finished.
    const flight: Uint8Array[] = [];
    if (this.certificateRequest) {
      const creds = this.config.clientCredentials;
      const offered = findExtension(
        this.certificateRequest.extensions,
        ExtensionType.signature_algorithms,
      )!.schemes;
      const scheme = creds ? selectSignatureScheme(creds.privateKey, offered) : null;
      const useCert = creds !== undefined && scheme !== null;
      const cert = encodeHandshakeMessage({
        type: HandshakeType.certificate,
        certificateRequestContext: this.certificateRequest.certificateRequestContext,
        certificateList: useCert ? creds.chainDer.map((certData) => ({ certData, extensions: [] })) : [],
      });
      this.transcript.add(cert);
      flight.push(cert);
      if (useCert) {
        const content = buildCertificateVerifyContent("client", this.transcript.hash(ks));
        const cv = encodeHandshakeMessage({
          type: HandshakeType.certificate_verify,
          algorithm: scheme,
          signature: signCertificateVerify(creds.privateKey, scheme, content),
        });
        this.transcript.add(cv);
        flight.push(cv);
      }
    }
    const fin = encodeHandshakeMessage({
      type: HandshakeType.finished,
      verifyData: ks.finishedVerifyData(this.clientHandshakeSecret!, this.transcript.hash(ks)),
    });
    this.transcript.add(fin);
    flight.push(fin);
    for (const m of flight) this.send("handshake", m);
    this.resumptionSecret = ks.deriveSecret(main, "res master", this.transcript.hash(ks));
    this.emitSecret("application", "write", clientApp);
    this.expectedLevel = "application";
    this.state = "connected";
    this.handshakeComplete = true;
    this.events.push({ type: "handshake-complete" });
    this.releaseHandshakeState();
  }

  private onNewSessionTicket(msg: NewSessionTicket): void {
    // RFC 9001 §4.6.1: max_early_data_size other than 0xffffffff is a PROTOCOL_VIOLATION.
    const maxEarlyDataSize = ticketMaxEarlyDataSize(msg);
    // RFC 9846 §4.6.1: lifetime is at most 7 days; 0 means "do not cache".
    if (msg.ticketLifetime > MAX_TICKET_LIFETIME_S) {
      throw new TlsError(AlertDescription.illegal_parameter, "ticket lifetime over 7 days");
    }
    if (msg.ticketLifetime === 0 || !this.alpn) return;
    const session: ResumableSession = {
      ticket: msg.ticket.slice(),
      psk: this.schedule!.resumptionPsk(this.resumptionSecret!, msg.ticketNonce),
      cipherSuite: this.suite!.id,
      ticketAgeAdd: msg.ticketAgeAdd,
      receivedAt: this.now,
      lifetime: msg.ticketLifetime,
      maxEarlyDataSize,
      alpn: this.alpn,
      sni: this.config.serverName,
    };
    this.events.push({ type: "session-ticket", session });
  }
}
