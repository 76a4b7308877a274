/**
 * The QUIC connection as a sans-IO state machine (RFC 9000, 9001, 9002): it takes datagrams and
 * the current time, and yields datagrams to send, the next timer deadline and events. No sockets,
 * timers or clock reads inside — the endpoint drives it:
 *
 *   conn.receive(datagram, now)        // a UDP payload from the peer
 *   conn.pollTransmit(now)             // → a datagram to send, or null (repeat until null)
 *   conn.nextTimeout()                 // → when to call handleTimeout
 *   conn.handleTimeout(now)
 *   conn.pollEvent()                   // → what happened (streams, datagrams, close...)
 *
 * Streams and datagrams are driven through methods (openStream, write, read, sendDatagram...).
 */
import { ByteReader, ByteWriter } from "../bytes.ts";
import { defaultCryptoProvider } from "../crypto/node-provider.ts";
import type { AeadName, CryptoProvider, HashName } from "../crypto/provider.ts";
import { QuicError, QuicUsageError, TransportErrorCode } from "../errors.ts";
import {
  type AckFrame,
  decodeFrame,
  encodeFrame,
  type Frame,
  type FramePacketType,
  FrameType,
  frameSize,
  frameTypeOf,
  isAckEliciting,
  isFrameAllowed,
  streamFrameOverhead,
} from "../frames.ts";
import {
  PacketDropError,
  type PacketHeader,
  PacketType,
  type ParseOptions,
  splitCoalescedPackets,
  validateRetryPacket,
  writeLongHeader,
  writeShortHeader,
} from "../packet-header.ts";
import { decodePacketNumber, packetNumberLength, readPacketNumber } from "../packet-number.ts";
import {
  createUnprotectedPacket,
  decryptPayload,
  deriveInitialKeys,
  derivePacketKeys,
  type PacketKeys,
  protectPacket,
  removeHeaderProtection,
  unprotectPacket,
} from "../packet-protection.ts";
import { type QlogSink, qlogFromEnv } from "../qlog.ts";
import { ReceivedPackets } from "../received-packets.ts";
import type { CongestionController } from "../recovery/congestion-controller.ts";
import { CubicController } from "../recovery/cubic.ts";
import { LossDetection, type PacketNumberSpace } from "../recovery/loss-detection.ts";
import { NewRenoController } from "../recovery/new-reno.ts";
import { Pacer } from "../recovery/pacer.ts";
import { SentPacket } from "../recovery/sent-packet.ts";
import { ReceiveFlowControl, SendFlowControl } from "../streams/flow-control.ts";
import { CryptoReceiveBuffer } from "../streams/receive-buffer.ts";
import { StreamScheduler } from "../streams/scheduler.ts";
import { SendBuffer } from "../streams/send-buffer.ts";
import {
  isLocallyInitiated,
  LocalStreamIds,
  RemoteStreamIds,
  StreamType,
  streamIndex,
} from "../streams/stream-id.ts";
import { checkPeerStreamFrame } from "../streams/stream-state.ts";
import { AlertDescription, TlsError } from "../tls/alert.ts";
import { TlsClient, type TlsClientConfig } from "../tls/client.ts";
import type { EncryptionLevel, TlsEndpoint, TlsEvent } from "../tls/handshake.ts";
import { TlsServer, type TlsServerConfig, type TlsServerTicketConfig } from "../tls/server.ts";
import type { SessionTicketEntry } from "../tls/session-cache.ts";
import { rememberedTransportParameters, type TicketState } from "../tls/session-ticket.ts";
import {
  checkConnectionIdParameters,
  checkVersionInformation,
  checkZeroRttParameters,
  decodeTransportParameters,
  encodeTransportParameters,
  findZeroRttReduction,
  type TransportParameters,
  transportParametersSize,
} from "../transport-parameters.ts";
import { isReservedVersion, isSupportedVersion, QUIC_V1, SUPPORTED_VERSIONS } from "../version.ts";
import {
  type ConnectionCloseReason,
  type ConnectionCommonConfig,
  DEFAULT_TRANSPORT_CONFIG,
  DEFAULT_VERSION,
  type TransportConfig,
} from "./config.ts";
import { AEAD_LIMITS, type AeadLimits, automaticUpdateThreshold, OneRttKeys } from "./key-update.ts";
import { NetworkPath, onlyPortChanged, PATH_DATA_LENGTH, type PathAddress, samePathAddress } from "./path.ts";
import { PathTrace } from "./path-trace.ts";
import { PmtuDiscovery } from "./pmtud.ts";
import {
  encodePreferredAddress,
  type PreferredAddressConfig,
  preferredPathAddress,
} from "./preferred-address.ts";
import { Stream } from "./stream.ts";

export type { PathAddress } from "./path.ts";

export type Side = "client" | "server";

export interface ClientConnectionConfig extends ConnectionCommonConfig {
  readonly tls: Omit<
    TlsClientConfig,
    "transportParameters" | "provider" | "keyLog" | "resumption" | "enableEarlyData"
  >;
  /**
   * An address validation token from a NEW_TOKEN frame of an earlier connection to this server
   * (RFC 9000 §8.1.3), sent in the Token field of our Initials so that the server may skip
   * address validation. A Retry replaces it.
   */
  readonly token?: Uint8Array;
  /**
   * A session from an earlier connection to this server (a "session-ticket" event) to resume
   * (RFC 9846 §2.2, RFC 9001 §4.5). Used only with the QUIC version it came from (RFC 9369 §5).
   */
  readonly session?: SessionTicketEntry;
  /**
   * Offer 0-RTT with `session` when its ticket allows it (RFC 9001 §4.6.1): streams opened and
   * written before the handshake completes leave in 0-RTT packets, under the server transport
   * parameters remembered with the session (RFC 9000 §7.4.1). 0-RTT data can be replayed by an
   * attacker (RFC 9001 §9.2): only send what is safe to process twice.
   */
  readonly earlyData?: boolean;
  /**
   * Migrate to the server's preferred_address once the handshake is confirmed, after validating
   * it (RFC 9000 §9.6); default true. Needs the driver to pass addresses to receive().
   */
  readonly migrateToPreferredAddress?: boolean;
}

/** Session tickets of a server connection; the connection adds its QUIC version and parameters. */
export type ServerTicketConfig = Omit<TlsServerTicketConfig, "quicVersion" | "transportParameters">;

export interface ServerConnectionConfig extends ConnectionCommonConfig {
  readonly tls: Omit<TlsServerConfig, "transportParameters" | "provider" | "keyLog" | "tickets"> & {
    /**
     * Resumption and 0-RTT (RFC 9846 §4.6.1, RFC 9001 §4.6). The connection fills in the QUIC
     * version and transport parameters to seal in tickets, and rejects 0-RTT for a ticket whose
     * remembered parameters it would now reduce (RFC 9000 §7.4.1) before asking `acceptEarlyData`.
     */
    readonly tickets?: ServerTicketConfig;
  };
  /**
   * A token for one NEW_TOKEN frame (RFC 9000 §8.1.3, §19.7), asked for once the handshake is
   * confirmed, and again when the client moved to another IP address and that address is
   * validated (§9: its next connection will come from there); none is sent when absent or when it
   * returns undefined. `remote` is the client's address (validated); the endpoint binds the
   * token to it.
   */
  readonly newToken?: (now: number, remote: PathAddress | undefined) => Uint8Array | undefined;
  /**
   * A preferred address to advertise (RFC 9000 §9.6, §18.2); the connection adds a connection ID
   * (sequence number 1) and its stateless reset token. The endpoint must receive on it.
   */
  readonly preferredAddress?: PreferredAddressConfig;
}

/** What the client's first Initial told the server (the endpoint parses it). */
export interface ServerHandshakeInfo {
  readonly version: number;
  /** The client's Destination Connection ID (the "original" one unless a Retry came first). */
  readonly dcid: Uint8Array;
  /** The client's Source Connection ID. */
  readonly scid: Uint8Array;
  /** The Destination Connection ID of the client's very first Initial, when this follows a Retry. */
  readonly originalDcid?: Uint8Array;
  /**
   * The Source Connection ID of the Retry we sent, for retry_source_connection_id (RFC 9000
   * §7.3); only with `originalDcid`. Default `dcid`, which is what the client's Initial after a
   * Retry carries as its Destination Connection ID.
   */
  readonly retrySourceCid?: Uint8Array;
  /** Whether the client's address is already validated (a Retry or NEW_TOKEN token). */
  readonly addressValidated?: boolean;
}

export type ConnectionEvent =
  | { readonly type: "handshake-complete" }
  | { readonly type: "handshake-confirmed" }
  /** The peer opened a stream. */
  | { readonly type: "stream-opened"; readonly streamId: number; readonly bidi: boolean }
  | { readonly type: "stream-readable"; readonly streamId: number }
  | { readonly type: "stream-writable"; readonly streamId: number }
  /** Everything we wrote on the stream, and its FIN, was acknowledged. */
  | { readonly type: "stream-finished"; readonly streamId: number }
  /** The peer reset its sending part (RESET_STREAM). */
  | { readonly type: "stream-reset"; readonly streamId: number; readonly errorCode: bigint }
  /** The peer asked us to stop sending (STOP_SENDING). */
  | { readonly type: "stream-stopped"; readonly streamId: number; readonly errorCode: bigint }
  /** Streams of a kind can be opened again (the peer raised MAX_STREAMS). */
  | { readonly type: "streams-available"; readonly bidi: boolean }
  | { readonly type: "datagram"; readonly data: Uint8Array }
  | { readonly type: "session-ticket"; readonly ticket: SessionTicketEntry }
  /**
   * Whether the server accepted 0-RTT (RFC 9001 §4.6.2), once known. (Client) When it did not,
   * everything sent in 0-RTT is sent again in 1-RTT under the server's actual limits.
   */
  | { readonly type: "early-data"; readonly accepted: boolean }
  /** (Client) An address validation token for a later connection to this server (NEW_TOKEN, RFC 9000 §19.7). */
  | { readonly type: "new-token"; readonly token: Uint8Array }
  /** A stateless reset token the peer gave us: datagrams ending with it belong to this connection. */
  | { readonly type: "peer-reset-token"; readonly token: Uint8Array; readonly retired: boolean }
  /** A connection ID of ours the endpoint must route (or stop routing) to this connection. */
  | { readonly type: "connection-id"; readonly cid: Uint8Array; readonly retired: boolean }
  /** A PATH_RESPONSE proved that the peer receives on this path (RFC 9000 §8.2.3). */
  | { readonly type: "path-validated"; readonly remote: PathAddress | undefined }
  /** Path validation was abandoned (RFC 9000 §8.2.4): the path is not usable. */
  | { readonly type: "path-validation-failed"; readonly remote: PathAddress | undefined }
  /**
   * Non-probing packets now go to `remote` (RFC 9000 §9): the peer migrated ("peer"), we did
   * ("local"), we moved to the server's preferred address ("preferred-address"), or a failed
   * validation sent us back to the last validated path ("revert", §9.3.2).
   */
  | {
      readonly type: "path-migrated";
      readonly remote: PathAddress | undefined;
      readonly reason: "peer" | "local" | "preferred-address" | "revert";
    }
  | { readonly type: "closed"; readonly reason: ConnectionCloseReason };

type State = "handshake" | "established" | "closing" | "draining" | "closed";

/** A frame that must be sent again, or acted on, when the packet carrying it is lost or acked. */
type Sent =
  | { k: "crypto"; offset: number; length: number }
  | { k: "stream"; id: number; offset: number; length: number; fin: boolean }
  | { k: "reset"; id: number }
  | { k: "stop"; id: number }
  | { k: "max_data" }
  | { k: "max_stream_data"; id: number }
  | { k: "max_streams"; bidi: boolean }
  | { k: "handshake_done" }
  | { k: "new_token"; token: Uint8Array }
  | { k: "new_cid"; seq: number }
  | { k: "retire_cid"; seq: number }
  | { k: "ack"; largest: number }
  | { k: "ping" }
  | { k: "data_blocked"; limit: number }
  /** A PMTU probe of `size` bytes (RFC 9000 §14.3.1): its fate goes to PmtuDiscovery, not to CC. */
  | { k: "pmtu_probe"; size: number }
  | { k: "ack_frequency"; seq: number }
  | { k: "reset_at"; id: number };

const SPACE_LEVEL = ["initial", "handshake", "application"] as const;
type SpaceId = 0 | 1 | 2;
const INITIAL: SpaceId = 0;
const HANDSHAKE: SpaceId = 1;
const APP: SpaceId = 2;
/** Marks buffered 0-RTT packets (application space, 0-RTT keys). */
const ZERO_RTT_LEVEL = 3;
/**
 * The order of packets in a datagram: Initial, 0-RTT, Handshake, 1-RTT (RFC 9000 §12.2: by
 * increasing encryption level). Index 1 is the 0-RTT packet, in the application space.
 */
const SEND_ORDER: readonly SpaceId[] = [INITIAL, APP, HANDSHAKE, APP];
const SEND_ZERO_RTT = 1;

/** Where 0-RTT stands (RFC 9001 §4.6). */
export type EarlyDataState =
  /** Not attempted (client) / not offered (server), or not yet known (server). */
  | "none"
  /** (Client) 0-RTT keys installed and in use; the server has not answered yet. */
  | "pending"
  | "accepted"
  | "rejected";

/** One packet being assembled in the datagram buffer. */
interface PacketInProgress {
  start: number;
  pnOffset: number;
  payloadEnd: number;
  qframes?: Frame[] | undefined;
  space: SpaceId;
  pn: number;
  frames: Sent[];
  ackEliciting: boolean;
  long: boolean;
  /** A 0-RTT packet (application space, 0-RTT keys). */
  zeroRtt: boolean;
  /** A path probe (RFC 9000 §9.1): not counted in flight, its loss is no congestion signal (§9.4). */
  probe?: boolean;
}

class PacketSpace {
  readKeys: PacketKeys | undefined;
  writeKeys: PacketKeys | undefined;
  readonly received: ReceivedPackets;
  readonly cryptoSend = new SendBuffer();
  readonly cryptoRecv = new CryptoReceiveBuffer();
  nextPn = 0;
  discarded = false;
  /** Probe packets the PTO asked for. */
  probes = 0;

  constructor(name: "initial" | "handshake" | "application", config: TransportConfig) {
    this.received = new ReceivedPackets(name, {
      maxAckDelay: config.maxAckDelay,
      ackDelayExponent: config.ackDelayExponent,
    });
  }
  /** An ACK-only packet may be sent now even though nothing else is pending. */
  get hasKeys(): boolean {
    return this.writeKeys !== undefined && !this.discarded;
  }
}

interface RemoteCid {
  seq: number;
  cid: Uint8Array;
  resetToken: Uint8Array | undefined;
}

interface LocalCid {
  seq: number;
  cid: Uint8Array;
  resetToken: Uint8Array;
  /** NEW_CONNECTION_ID must be (re)sent. */
  pending: boolean;
}

const MIN_INITIAL_DATAGRAM = 1200;
/** {@link Connection}'s datagram assembly buffer, shared by all connections (see `scratch`). */
let sharedScratch: Uint8Array = new Uint8Array(0);
/** Below this anti-amplification budget (bytes) no datagram is built. */
const MIN_AMPLIFICATION_ROOM = 60;
/** Paths probed besides the active and the previous one (new peer addresses, preferred address). */
const MAX_PROBE_PATHS = 4;
const TAG = 16;
const MAX_BUFFERED_UNDECRYPTABLE = 16;
/**
 * Stream fragmentation (RFC 9000 §21.7): a stream whose receive buffer holds more than
 * FRAGMENTED_STREAM_PIECES pieces averaging under MIN_STREAM_PIECE_BYTES is "fragmented"; one
 * stream may then hold MAX_STREAM_PIECES pieces at most, and all streams together
 * MAX_CONNECTION_PIECES (when their average is that small too).
 */
const FRAGMENTED_STREAM_PIECES = 64;
const MIN_STREAM_PIECE_BYTES = 256;
const MAX_STREAM_PIECES = 1024;
const MAX_CONNECTION_PIECES = 4096;
/**
 * The largest token (NEW_TOKEN or Retry) a client puts in its Initials (RFC 9000 §19.7 and
 * §17.2.5 set none; ours are < 100 bytes): a larger one would crowd the ClientHello out of them.
 */
const MAX_TOKEN_LENGTH = 512;
/** RETIRE_CONNECTION_ID frames owed or unacknowledged before CONNECTION_ID_LIMIT_ERROR (§5.1.2). */
const RETIRE_CID_FACTOR = 2;
const EMPTY = new Uint8Array(0);
const EMPTY_FRAMES: Frame[] = [];
const EMPTY_SENT: Sent[] = [];

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class Connection {
  readonly side: Side;
  readonly isServer: boolean;
  private version: number;
  private readonly provider: CryptoProvider;
  private readonly config: TransportConfig;
  private readonly common: ConnectionCommonConfig;
  /** Replaced only by a client's new attempt after Version Negotiation. */
  private tls: TlsEndpoint;
  private state: State = "handshake";
  private closeReason: ConnectionCloseReason | undefined;
  private readonly events: ConnectionEvent[] = [];
  private readonly readablePending = new Set<number>();
  /**
   * Where datagrams are assembled; the caller gets a right-sized copy. One buffer for every
   * connection of the process (sans-IO calls are synchronous and never nest across connections),
   * so an idle connection holds none.
   */
  private get scratch(): Uint8Array {
    return sharedScratch;
  }
  private set scratch(b: Uint8Array) {
    sharedScratch = b;
  }

  private readonly spaces: [PacketSpace, PacketSpace, PacketSpace];
  private readonly loss: LossDetection<Sent[]>;
  /** Replaced when a migration resets congestion state (RFC 9000 §9.4). */
  private cc: CongestionController;
  /** RFC 9002 §7.7 pacing of ack-eliciting packets; ACK-only packets are not paced. */
  private readonly pacer: Pacer;
  private pacingDeadline = Number.POSITIVE_INFINITY;
  /** The UDP payload size we send (the PLPMTU; grows with PMTU discovery). */
  private maxDatagram: number;
  /** PMTU discovery (RFC 8899), started once the handshake is confirmed. */
  private pmtud: PmtuDiscovery | undefined;
  /** RFC 9287: the peer sent grease_quic_bit, so our short headers carry a random fixed bit. */
  private greaseFixedBit = false;
  /** xorshift32 state for the greased bit (seeded from the crypto provider). */
  private greaseState = 1;
  // ACK frequency (draft-ietf-quic-ack-frequency).
  /** Largest ACK_FREQUENCY sequence number processed (§4: older ones are ignored). */
  private ackFrequencySeq = -1;
  /** An ACK_FREQUENCY frame of ours to send (sendAckFrequency), until acknowledged. */
  private ackFrequencyToSend: Frame | undefined;
  private ackFrequencyPending = false;
  private nextAckFrequencySeq = 0;
  private immediateAckPending = false;
  /** When we last sent a (non-probe) datagram larger than the base size (black-hole detection). */
  private lastLargeSent = Number.NEGATIVE_INFINITY;
  /** The packet being processed carried IMMEDIATE_ACK. */
  private immediateAckReceived = false;

  // Connection IDs (RFC 9000 §5.1).
  private readonly cidLength: number;
  /** How datagrams are split into packets: fixed for the connection, so built once, not per datagram. */
  private readonly splitOptions: ParseOptions;
  private readonly localCids: LocalCid[] = [];
  private nextLocalCidSeq = 0;
  private readonly remoteCids: RemoteCid[] = [];
  private dcid: Uint8Array;
  private readonly initialScid: Uint8Array;
  /** The DCID of the client's first Initial (keys and transport-parameter check). */
  private originalDcid: Uint8Array;
  private retrySourceCid: Uint8Array | undefined;
  /** (Client) The Token field of our Initials: a Retry's token, else a NEW_TOKEN one (RFC 9000 §8.1). */
  private initialToken: Uint8Array = EMPTY;
  private retireCids: number[] = [];
  /** Peer connection IDs retired whose RETIRE_CONNECTION_ID is not acknowledged yet (§5.1.2). */
  private readonly retiringCids = new Set<number>();
  /**
   * Our connection IDs the peer retired, still routed to us until `at` (3 PTO later): packets
   * already in flight with them (a delayed old path after a migration) reach the connection
   * instead of drawing a stateless reset from the endpoint (RFC 9000 §5.1.2, §10.3).
   */
  private readonly unroutingCids: { readonly cid: Uint8Array; readonly at: number }[] = [];
  private peerRetirePriorTo = 0;

  // Transport parameters.
  private readonly localParams: TransportParameters;
  private peerParams: TransportParameters | undefined;
  private peerAckDelayExponent = 3;
  private peerMaxDatagramFrameSize = 0;
  private idleTimeout: number;

  // Flow control and streams.
  private sendFlow = new SendFlowControl(0);
  private readonly recvFlow: ReceiveFlowControl;
  private maxDataPending = false;
  private readonly streams = new Map<number, Stream>();
  private readonly localBidi: LocalStreamIds;
  private readonly localUni: LocalStreamIds;
  private readonly remoteBidi: RemoteStreamIds;
  private readonly remoteUni: RemoteStreamIds;
  private maxStreamsBidiPending = false;
  private maxStreamsUniPending = false;
  private readonly scheduler = new StreamScheduler();
  /** Streams with control frames (RESET_STREAM, STOP_SENDING, MAX_STREAM_DATA) to send. */
  private readonly controlStreams = new Set<number>();

  // Datagrams (RFC 9221).
  private readonly outgoingDatagrams: Uint8Array[] = [];
  /** The first queued datagram did not fit in the last packet: the next one leaves room for it. */
  private datagramNeedsRoom = false;
  private readonly incomingDatagramsLimit: number;
  /** DATAGRAM events in `events`. */
  private queuedDatagrams = 0;

  // Misc pending frames.
  private handshakeDonePending = false;
  /** (Server) The NEW_TOKEN token to send (again, when lost) until acknowledged. */
  private newToken: Uint8Array | undefined;
  private newTokenPending = false;
  /** (Server) The client IP address of the latest NEW_TOKEN token, once one was issued. */
  private newTokenAddress: string | undefined;
  private newTokenIssued = false;
  /** (Client) Tokens from NEW_TOKEN frames already reported (§19.7: discard duplicates). */
  private readonly receivedTokens: Uint8Array[] = [];
  private pingPending = false;
  private closeFramePending = false;
  private closeFrame: Frame | undefined;

  // Paths and migration (RFC 9000 §8.2, §9).
  /** Where non-probing packets go. */
  private activePath: NetworkPath = new NetworkPath(undefined, true);
  /** The last validated path before a migration, to return to if the new one fails (§9.3.2). */
  private previousPath: NetworkPath | undefined;
  /** Other paths being probed: new peer addresses, the server's preferred address (§9.6). */
  private readonly probePaths: NetworkPath[] = [];
  /** The path of the datagram pollTransmit() returned last. */
  private transmitPath: NetworkPath = this.activePath;
  /** Set while buildPacket() builds a probing packet for this path. */
  private probingPath: NetworkPath | undefined;
  /** Sequence numbers of peer connection IDs we have sent with (§9.5: never reuse one on a new path). */
  private readonly usedRemoteCids = new Set<number>([0]);
  /** The DCID the peer put on its latest 1-RTT packet (a change hints at an active migration). */
  private lastPeerDcid: Uint8Array | undefined;
  /** What the datagram being processed carried (path decisions happen once it is all read). */
  private rxDecrypted = false;
  private rxNonProbingLargest = false;
  private rxPeerDcidChanged = false;
  /** The Destination Connection ID of the packet whose frames are being processed. */
  private rxPacketDcid: Uint8Array = EMPTY;
  private readonly rxChallenges: Uint8Array[] = [];
  private readonly rxResponses: Uint8Array[] = [];
  private readonly pathCounters = { migrations: 0, validations: 0, failures: 0, congestionResets: 0 };
  /** qlog of paths (tuple_assigned, migration_state_updated) when qlog is on. */
  private readonly pathTrace: PathTrace | undefined;

  // Address validation (RFC 9000 §8.1).
  private addressValidated: boolean;
  private bytesReceived = 0;
  private bytesSent = 0;

  // Timers.
  private idleDeadline = Number.POSITIVE_INFINITY;
  /** RFC 9000 §10.1: whether an ack-eliciting packet went out since the last packet processed. */
  private ackElicitingSentSinceReceipt = false;
  private closeDeadline = Number.POSITIVE_INFINITY;
  private lastActivity = 0;
  private handshakeConfirmed = false;
  private receivedFromPeer = false;

  // 1-RTT keys and key updates (RFC 9001 §6): set up once both 1-RTT secrets are known.
  private appKeys: OneRttKeys | undefined;
  private appSuite: { aead: AeadName; hash: HashName } | undefined;
  private appReadSecret: Uint8Array | undefined;
  private appWriteSecret: Uint8Array | undefined;
  /** forceKeyUpdate() was called: update as soon as §6.5 allows. */
  private keyUpdateRequested = false;
  /** Packets that failed authentication, all keys (RFC 9001 §6.6 integrity limit). */
  private authenticationFailures = 0;

  // Version negotiation (RFC 9368; RFC 9369 §4 between v1 and v2).
  /** The version of the client's first Initial (the "original version"). */
  private originalVersion: number;
  /**
   * version_information's Available Versions: the client's offer in preference order; the
   * server's supported versions.
   */
  private readonly availableVersions: readonly number[];
  /** (Server) Pick by our order of `availableVersions` (configured) rather than the client's. */
  private readonly serverVersionOrder: boolean;
  /** (Client) The negotiated version is known (RFC 9369 §4): a switch, or server CRYPTO data. */
  private versionKnown = false;
  /** (Client) This attempt follows a Version Negotiation packet (RFC 9368 §4 downgrade checks). */
  private reactedToVersionNegotiation = false;
  /**
   * (Server, after switching) Initial read keys of the original version: the client may use it
   * until it learns the negotiated one (RFC 9369 §4: kept until a Handshake packet in it).
   */
  private originalInitialReadKeys: PacketKeys | undefined;
  /** The connection ID the Initial keys derive from (RFC 9001 §5.2). */
  private initialKeyCid: Uint8Array = EMPTY;

  private readonly undecryptable: { data: Uint8Array; level: SpaceId | typeof ZERO_RTT_LEVEL }[] = [];

  // 0-RTT (RFC 9001 §4.6, §5.6).
  private earlyData: EarlyDataState = "none";
  /** Client: the 0-RTT write keys; server: the 0-RTT read keys. */
  private zeroRttKeys: PacketKeys | undefined;
  /** (Server) When the 0-RTT read keys go (RFC 9001 §4.9.3: 3 PTO after the first 1-RTT packet). */
  private zeroRttDiscardAt = Number.POSITIVE_INFINITY;
  /** (Client) The server transport parameters remembered with the session (RFC 9000 §7.4.1). */
  private rememberedParams: TransportParameters | undefined;
  /** (Client) The first 1-RTT packet number (those below were 0-RTT packets). */
  private firstOneRttPn = 0;
  /** (Client) Application-space packet numbers below this were 0-RTT packets the server rejected. */
  private rejectedZeroRttPns = 0;
  /**
   * (Client, after a 0-RTT rejection) The server's actual stream limits when they are below the
   * remembered ones 0-RTT opened streams under: streams past them wait for MAX_STREAMS.
   */
  private streamCapBidi = Number.POSITIVE_INFINITY;
  private streamCapUni = Number.POSITIVE_INFINITY;
  private streamsCapped = false;
  /** The packet being built is a 0-RTT one (addAppFrames leaves out frames 0-RTT cannot carry). */
  private buildingZeroRtt = false;
  /** qlog sink, when enabled (QLOGDIR or the qlog option). */
  private readonly qlog: QlogSink | undefined;
  private readonly unprotected = createUnprotectedPacket();
  private now = 0;

  /** Counters for stats(). */
  private readonly counters = {
    packetsSent: 0,
    packetsReceived: 0,
    packetsLost: 0,
    bytesSent: 0,
    bytesReceived: 0,
    datagramsDropped: 0,
    congestionEvents: 0,
    zeroRttPacketsSent: 0,
    zeroRttPacketsReceived: 0,
  };

  private constructor(side: Side, common: ConnectionCommonConfig, now: number, info?: ServerHandshakeInfo) {
    this.side = side;
    this.isServer = side === "server";
    this.common = common;
    this.now = now;
    this.provider = common.provider ?? defaultCryptoProvider;
    this.config = { ...DEFAULT_TRANSPORT_CONFIG, ...common.transport };
    for (const v of common.versions ?? [])
      if (!isSupportedVersion(v)) throw new QuicUsageError(`unsupported QUIC version 0x${v.toString(16)}`);
    // RFC 9368 §2.4: a client starts with a version its preferred ones are compatible with (v1).
    const offered = common.versions;
    this.version =
      info?.version ??
      common.version ??
      (offered && offered.length > 0 && !offered.includes(QUIC_V1) ? offered[0] : DEFAULT_VERSION);
    // A client may start in a reserved version 0x?a?a?a?a to probe the server (RFC 9000 §6.3,
    // §15): its Initials are sealed as v1's (version.ts); only a Version Negotiation answers it.
    const probing = !info && isReservedVersion(this.version);
    if (!isSupportedVersion(this.version) && !probing)
      throw new QuicUsageError(
        `unsupported QUIC version 0x${(this.version >>> 0).toString(16)} (a client may start in v1, v2 or a reserved version 0x?a?a?a?a)`,
      );
    this.originalVersion = this.version;
    this.serverVersionOrder = info !== undefined && offered !== undefined && offered.length > 0;
    if (info) this.availableVersions = offered && offered.length > 0 ? [...offered] : [...SUPPORTED_VERSIONS];
    else {
      // RFC 9368 §3: the client's Available Versions include its Chosen Version. A probe in a
      // reserved version offers nothing else unless `versions` says so: on Version Negotiation it
      // gives up, naming the server's versions (RFC 9000 §6.2), rather than trying one of them.
      const list = offered
        ? [...offered]
        : probing
          ? []
          : [this.version, ...SUPPORTED_VERSIONS.filter((v) => v !== this.version)];
      if (!list.includes(this.version)) list.push(this.version);
      this.availableVersions = list;
    }
    this.cidLength = common.connectionIdLength ?? 8;
    if (this.cidLength < 0 || this.cidLength > 20)
      throw new QuicUsageError("connection ID length must be 0..20");
    this.splitOptions = {
      localCidLength: this.cidLength,
      // RFC 9287 §3: having advertised grease_quic_bit, we MUST accept a cleared fixed bit.
      allowGreasedQuicBit: this.config.greaseQuicBit,
    };
    this.maxDatagram = this.config.sendUdpPayloadSize;
    if (this.config.greaseQuicBit) {
      const r = this.provider.randomBytes(4);
      this.greaseState = ((r[0] << 24) | (r[1] << 16) | (r[2] << 8) | r[3] | 1) >>> 0;
    }
    this.spaces = [
      new PacketSpace("initial", this.config),
      new PacketSpace("handshake", this.config),
      new PacketSpace("application", this.config),
    ];
    this.idleTimeout = this.config.maxIdleTimeout;

    this.loss = new LossDetection<Sent[]>({
      isServer: this.isServer,
      initialRtt: this.config.initialRtt,
      maxAckDelay: 0,
    });
    this.cc =
      this.config.congestionControl === "newreno"
        ? new NewRenoController(this.maxDatagram)
        : new CubicController(this.maxDatagram);
    this.pacer = new Pacer({ maxDatagramSize: this.maxDatagram });
    this.recvFlow = new ReceiveFlowControl({
      window: this.config.connectionReceiveWindow,
      maxWindow: this.config.maxConnectionReceiveWindow,
    });
    const me = this.isServer;
    this.localBidi = new LocalStreamIds(me ? StreamType.SERVER_BIDI : StreamType.CLIENT_BIDI, 0);
    this.localUni = new LocalStreamIds(me ? StreamType.SERVER_UNI : StreamType.CLIENT_UNI, 0);
    this.remoteBidi = new RemoteStreamIds(
      me ? StreamType.CLIENT_BIDI : StreamType.SERVER_BIDI,
      this.config.maxConcurrentBidiStreams,
    );
    this.remoteUni = new RemoteStreamIds(
      me ? StreamType.CLIENT_UNI : StreamType.SERVER_UNI,
      this.config.maxConcurrentUniStreams,
    );
    this.incomingDatagramsLimit = this.config.datagramQueueLength;

    // Connection IDs and Initial keys.
    const scid = this.issueLocalCid(false).cid;
    this.initialScid = scid;
    if (info) {
      this.dcid = info.scid.slice();
      // RFC 9000 §7.3: original_destination_connection_id is the DCID of the client's first
      // Initial, from before any Retry; retry_source_connection_id the Retry's SCID.
      this.originalDcid = (info.originalDcid ?? info.dcid).slice();
      if (info.originalDcid) this.retrySourceCid = (info.retrySourceCid ?? info.dcid).slice();
      this.remoteCids.push({ seq: 0, cid: this.dcid, resetToken: undefined });
      this.addressValidated = info.addressValidated === true;
      // RFC 9001 §5.2: Initial keys derive from the DCID of the client's current Initial (after a
      // Retry, the Retry's SCID), not from the original one.
      this.installInitialKeys(info.dcid);
    } else {
      this.dcid = this.provider.randomBytes(8);
      this.originalDcid = this.dcid;
      this.remoteCids.push({ seq: 0, cid: this.dcid, resetToken: undefined });
      this.addressValidated = true; // a client validated its peer's address by choosing it
      const token = (common as ClientConnectionConfig).token;
      if (token && token.length > MAX_TOKEN_LENGTH)
        throw new QuicUsageError(`token of ${token.length} bytes (at most ${MAX_TOKEN_LENGTH})`);
      if (token && token.length > 0) this.initialToken = token.slice();
      this.installInitialKeys(this.dcid);
    }

    this.localParams = this.buildTransportParameters();
    const tpBytes = new Uint8Array(transportParametersSize(this.localParams));
    encodeTransportParameters(this.localParams, new ByteWriter(tpBytes));
    this.lastActivity = now;
    this.resetIdleTimer(now);

    if (this.isServer) {
      const cfg = (common as ServerConnectionConfig).tls;
      const t = cfg.tickets;
      const negotiated = () => this.version;
      const tickets: TlsServerTicketConfig | undefined = t
        ? {
            ...t,
            // RFC 9369 §5: after compatible negotiation, tickets map to the negotiated version
            // (and 0-RTT from a ticket of another version is refused).
            get quicVersion() {
              return negotiated();
            },
            transportParameters: this.localParams,
            acceptEarlyData: (ticket) => this.acceptEarlyData(ticket, t.acceptEarlyData),
          }
        : undefined;
      this.tls = new TlsServer({
        ...cfg,
        tickets,
        transportParameters: tpBytes,
        transportParametersFor: (client) => this.chooseVersion(client),
        provider: this.provider,
        keyLog: common.keyLog,
      });
    } else {
      const client = common as ClientConnectionConfig;
      // RFC 9369 §5: a ticket is only used with the QUIC version of the connection it came from.
      const session = client.session?.quicVersion === this.version ? client.session : undefined;
      // RFC 9000 §7.4.1: 0-RTT needs the server's remembered transport parameters.
      const earlyData = client.earlyData === true && session?.transportParameters !== undefined;
      if (earlyData) this.rememberedParams = session?.transportParameters;
      this.tls = new TlsClient({
        ...client.tls,
        resumption: session,
        enableEarlyData: earlyData,
        transportParameters: tpBytes,
        provider: this.provider,
        keyLog: common.keyLog,
      });
    }
    this.qlog = common.qlog ?? qlogFromEnv(side, this.originalDcid);
    this.pathTrace = this.qlog ? new PathTrace(this.qlog, this.activePath) : undefined;
    if (this.qlog) {
      this.qlog.connectionStarted(
        {
          side,
          version: this.version,
          srcCid: this.initialScid,
          dstCid: this.dcid,
          supportedVersions: this.availableVersions,
        },
        now,
      );
      this.qlog.parametersSet("local", this.localParams, now);
    }
  }

  /** A client connection; the ClientHello is ready to send right away. */
  static connect(config: ClientConnectionConfig, now: number): Connection {
    const c = new Connection("client", config, now);
    (c.tls as TlsClient).start(now);
    c.drainTls();
    return c;
  }

  /** A server connection for a client's first Initial (then pass that datagram to receive()). */
  static accept(config: ServerConnectionConfig, info: ServerHandshakeInfo, now: number): Connection {
    return new Connection("server", config, now, info);
  }

  // ---------------------------------------------------------------------------------------------
  // Public state

  get isClosed(): boolean {
    return this.state === "closed";
  }

  get isEstablished(): boolean {
    return this.state === "established";
  }

  get isHandshakeConfirmed(): boolean {
    return this.handshakeConfirmed;
  }

  /** Why the connection closed (or is closing). */
  get reason(): ConnectionCloseReason | undefined {
    return this.closeReason;
  }

  get alpn(): string | undefined {
    return this.tls.alpn;
  }

  get negotiatedVersion(): number {
    return this.version;
  }

  get peerTransportParameters(): TransportParameters | undefined {
    return this.peerParams;
  }

  /** Our connection IDs in use (the endpoint routes datagrams addressed to them here). */
  get localConnectionIds(): Uint8Array[] {
    return this.localCids.map((c) => c.cid);
  }

  /** Our Source Connection ID from the handshake. */
  get sourceConnectionId(): Uint8Array {
    return this.initialScid;
  }

  /** The client's original Destination Connection ID. */
  get originalDestinationConnectionId(): Uint8Array {
    return this.originalDcid;
  }

  /**
   * Where 0-RTT stands (RFC 9001 §4.6): a client that offered it is "pending" until the server's
   * EncryptedExtensions say "accepted" or "rejected"; a server is "accepted" or "rejected" once it
   * read a ClientHello offering it, "none" otherwise.
   */
  get earlyDataState(): EarlyDataState {
    return this.earlyData;
  }

  /**
   * (Client) Application data written now leaves in 0-RTT packets: 0-RTT keys are installed and
   * the 1-RTT keys are not there yet.
   */
  get canSendEarlyData(): boolean {
    return this.zeroRttKeys !== undefined && !this.isServer && this.spaces[APP].writeKeys === undefined;
  }

  /** The TLS session (for the exporter, peer certificates, resumption facts). */
  get tlsSession(): TlsClient | TlsServer {
    return this.tls as TlsClient | TlsServer;
  }

  get rtt(): { smoothed: number; min: number; latest: number; variance: number } {
    const r = this.loss.rtt;
    return { smoothed: r.smoothedRtt, min: r.minRtt, latest: r.latestRtt, variance: r.rttvar };
  }

  stats(): {
    packetsSent: number;
    packetsReceived: number;
    packetsLost: number;
    bytesSent: number;
    bytesReceived: number;
    congestionWindow: number;
    bytesInFlight: number;
    smoothedRtt: number;
    datagramsDropped: number;
    congestionEvents: number;
    /** 0-RTT packets sent (client) / accepted and decrypted (server). */
    zeroRttPacketsSent: number;
    zeroRttPacketsReceived: number;
    /** 1-RTT key updates we started / the peer started (RFC 9001 §6). */
    keyUpdatesLocal: number;
    keyUpdatesRemote: number;
    /** The current 1-RTT key phase (number of key updates so far). */
    keyPhase: number;
  } {
    return {
      ...this.counters,
      keyUpdatesLocal: this.appKeys?.localUpdates ?? 0,
      keyUpdatesRemote: this.appKeys?.remoteUpdates ?? 0,
      keyPhase: this.appKeys?.generation ?? 0,
      congestionWindow: this.cc.window,
      bytesInFlight: this.cc.bytesInFlight,
      smoothedRtt: this.loss.rtt.smoothedRtt,
    };
  }

  /**
   * Sizes of the structures a peer can make us grow (the limits against abuse bound each): for
   * tests and monitoring. Computed on demand, O(streams).
   */
  resourceCounts(): {
    /** Packet-number ranges tracked for ACKs, per space (Initial, Handshake, application). */
    ackRanges: [number, number, number];
    /** CRYPTO bytes buffered (out of order or unread), per space. */
    cryptoBuffered: [number, number, number];
    /** Peer connection IDs we hold, ours issued, and peer IDs retired but not yet acknowledged. */
    remoteCids: number;
    localCids: number;
    retiringCids: number;
    /** Streams tracked, and the most pieces / bytes one stream's receive buffer holds. */
    streams: number;
    maxStreamPieces: number;
    streamPieces: number;
    streamBytesBuffered: number;
    /** DATAGRAM events unread, and datagrams queued to send. */
    incomingDatagrams: number;
    outgoingDatagrams: number;
    /** PATH_RESPONSEs owed on all paths; paths tracked besides the active one. */
    pathResponses: number;
    probePaths: number;
    /** Packets kept until their keys arrive; events not yet polled. */
    undecryptable: number;
    events: number;
    /** Bytes of staging blocks the three CRYPTO send buffers hold (0 once idle). */
    cryptoSendStaging: number;
  } {
    let maxStreamPieces = 0;
    let streamPieces = 0;
    let streamBytesBuffered = 0;
    for (const st of this.streams.values()) {
      if (!st.recv) continue;
      streamPieces += st.recv.buffer.pieceCount;
      if (st.recv.buffer.pieceCount > maxStreamPieces) maxStreamPieces = st.recv.buffer.pieceCount;
      streamBytesBuffered += st.recv.buffer.bufferedBytes;
    }
    const paths = [this.activePath, this.previousPath, ...this.probePaths];
    const sp = this.spaces;
    return {
      ackRanges: [
        sp[0].received.received.rangeCount,
        sp[1].received.received.rangeCount,
        sp[2].received.received.rangeCount,
      ],
      cryptoBuffered: [
        sp[0].cryptoRecv.bufferedBytes,
        sp[1].cryptoRecv.bufferedBytes,
        sp[2].cryptoRecv.bufferedBytes,
      ],
      cryptoSendStaging:
        sp[0].cryptoSend.stagingBytes + sp[1].cryptoSend.stagingBytes + sp[2].cryptoSend.stagingBytes,
      remoteCids: this.remoteCids.length,
      localCids: this.localCids.length,
      retiringCids: this.retiringCids.size,
      streams: this.streams.size,
      maxStreamPieces,
      streamPieces,
      streamBytesBuffered,
      incomingDatagrams: this.queuedDatagrams,
      outgoingDatagrams: this.outgoingDatagrams.length,
      pathResponses: paths.reduce((n, p) => n + (p?.responses.length ?? 0), 0),
      probePaths: this.probePaths.length,
      undecryptable: this.undecryptable.length,
      events: this.events.length,
    };
  }

  /** The largest DATAGRAM payload the peer accepts in one packet, or 0 when it does not take datagrams. */
  get maxDatagramSize(): number {
    if (this.peerMaxDatagramFrameSize === 0) return 0;
    // 1-RTT short header with the current DCID, a 4-byte packet number, the tag, a DATAGRAM frame header.
    const overhead = 1 + this.dcid.length + 4 + TAG + 1 + 2;
    return Math.min(this.peerMaxDatagramFrameSize - 3, this.maxDatagram - overhead);
  }

  pollEvent(): ConnectionEvent | undefined {
    const e = this.events.shift();
    if (e?.type === "stream-readable") this.readablePending.delete(e.streamId);
    else if (e?.type === "datagram") this.queuedDatagrams--;
    return e;
  }

  // ---------------------------------------------------------------------------------------------
  // Setup helpers

  private buildTransportParameters(): TransportParameters {
    const c = this.config;
    const p: TransportParameters = {
      maxIdleTimeout: c.maxIdleTimeout,
      maxUdpPayloadSize: c.maxUdpPayloadSize,
      initialMaxData: c.connectionReceiveWindow,
      initialMaxStreamDataBidiLocal: c.streamReceiveWindow,
      initialMaxStreamDataBidiRemote: c.streamReceiveWindow,
      initialMaxStreamDataUni: c.streamReceiveWindow,
      initialMaxStreamsBidi: c.maxConcurrentBidiStreams,
      initialMaxStreamsUni: c.maxConcurrentUniStreams,
      ackDelayExponent: c.ackDelayExponent,
      maxAckDelay: c.maxAckDelay,
      activeConnectionIdLimit: c.activeConnectionIdLimit,
      initialSourceConnectionId: this.initialScid,
      disableActiveMigration: c.disableActiveMigration,
    };
    if (c.maxDatagramFrameSize > 0) p.maxDatagramFrameSize = c.maxDatagramFrameSize;
    // RFC 9287 §3: we accept packets with the fixed bit cleared.
    if (c.greaseQuicBit) p.greaseQuicBit = true;
    // ack-frequency §3: min_ack_delay (µs) ≤ max_ack_delay (ms); it announces ACK_FREQUENCY support.
    const minAckDelay = Math.min(c.minAckDelay, c.maxAckDelay * 1000);
    if (minAckDelay > 0) p.minAckDelay = minAckDelay;
    if (c.resetStreamAt) p.resetStreamAt = true;
    // RFC 9369 §4: an endpoint supporting v2 MUST send version_information (RFC 9368 §3).
    p.versionInformation = { chosenVersion: this.version, availableVersions: [...this.availableVersions] };
    if (this.isServer) {
      // RFC 9000 §7.3: the server authenticates the client's original DCID (and the Retry).
      p.originalDestinationConnectionId = this.originalDcid;
      if (this.retrySourceCid) p.retrySourceConnectionId = this.retrySourceCid;
      p.statelessResetToken = this.localCids[0].resetToken;
      // RFC 9000 §9.6, §18.2: a preferred address comes with connection ID sequence number 1 (never
      // zero-length: a server using zero-length connection IDs MUST NOT offer one).
      const preferred = (this.common as ServerConnectionConfig).preferredAddress;
      if (preferred && this.cidLength > 0) {
        const c = this.issueLocalCid(false);
        p.preferredAddress = {
          ...encodePreferredAddress(preferred),
          connectionId: c.cid,
          statelessResetToken: c.resetToken,
        };
      }
    }
    return p;
  }

  private installInitialKeys(dcid: Uint8Array): void {
    this.initialKeyCid = dcid;
    const keys = deriveInitialKeys(this.provider, this.version, dcid);
    const space = this.spaces[INITIAL];
    space.writeKeys = this.isServer ? keys.server : keys.client;
    space.readKeys = this.isServer ? keys.client : keys.server;
  }

  private issueLocalCid(announce: boolean): LocalCid {
    const cid = this.provider.randomBytes(this.cidLength);
    const resetToken = this.common.statelessResetToken?.(cid) ?? this.provider.randomBytes(16);
    const entry: LocalCid = { seq: this.nextLocalCidSeq++, cid, resetToken, pending: announce };
    this.localCids.push(entry);
    if (announce) this.events.push({ type: "connection-id", cid, retired: false });
    return entry;
  }

  // ---------------------------------------------------------------------------------------------
  // TLS glue (RFC 9001 §4)

  private drainTls(): void {
    for (const e of this.tls.takeEvents()) this.onTlsEvent(e);
  }

  private onTlsEvent(e: TlsEvent): void {
    switch (e.type) {
      case "send":
        this.spaces[
          e.level === "initial" ? INITIAL : e.level === "handshake" ? HANDSHAKE : APP
        ].cryptoSend.write(e.data, true);
        return;
      case "secret":
        this.onSecret(e.level, e.direction, e.suite.aead, e.suite.hash, e.secret);
        return;
      case "transport-parameters":
        this.onPeerTransportParameters(e.parameters);
        return;
      case "handshake-complete":
        this.onHandshakeComplete();
        return;
      case "session-ticket": {
        const remembered = this.peerParams ? rememberedTransportParameters(this.peerParams) : undefined;
        const ticket: SessionTicketEntry = { ...e.session, quicVersion: this.version };
        if (remembered) ticket.transportParameters = remembered;
        this.events.push({ type: "session-ticket", ticket });
        return;
      }
      case "early-data":
        this.onEarlyData(e.accepted);
        return;
    }
  }

  /**
   * (Server) Whether to accept 0-RTT with `ticket`, after the TLS checks passed. RFC 9000 §7.4.1:
   * a server that would now reduce one of the limits remembered with the ticket MUST NOT accept
   * 0-RTT (it rejects it and the client falls back to 1-RTT); then the application decides.
   */
  private acceptEarlyData(
    ticket: TicketState,
    user: ((ticket: TicketState) => boolean) | undefined,
  ): boolean {
    const remembered = ticket.transportParameters;
    if (!remembered || findZeroRttReduction(remembered, this.localParams) !== undefined) return false;
    return user ? user(ticket) : true;
  }

  /** TLS decided on 0-RTT (RFC 9001 §4.6.2). */
  private onEarlyData(accepted: boolean): void {
    if (this.isServer) {
      this.earlyData = accepted ? "accepted" : "rejected";
      if (!accepted) {
        // RFC 9001 §4.6.2: when rejecting 0-RTT, a server MUST NOT process any 0-RTT packet.
        this.dropZeroRttKeys();
        this.dropBufferedZeroRtt();
      }
      this.events.push({ type: "early-data", accepted });
      return;
    }
    if (this.earlyData !== "pending") return;
    if (accepted) {
      this.earlyData = "accepted";
      // RFC 9000 §7.4.1: a server that accepts 0-RTT MUST NOT reduce the remembered limits; the
      // client checks (PROTOCOL_VIOLATION, as RFC 9221 §3 mandates for max_datagram_frame_size).
      if (this.rememberedParams && this.peerParams)
        checkZeroRttParameters(this.rememberedParams, this.peerParams);
    } else {
      this.earlyData = "rejected";
      this.dropZeroRttKeys();
      this.onZeroRttRejected();
    }
    this.events.push({ type: "early-data", accepted });
  }

  private dropZeroRttKeys(): void {
    if (!this.zeroRttKeys) return;
    this.zeroRttKeys = undefined;
    this.qlog?.keyDiscarded({ keyType: "client_0rtt_secret" }, this.now);
  }

  private dropBufferedZeroRtt(): void {
    for (let i = this.undecryptable.length - 1; i >= 0; i--)
      if (this.undecryptable[i].level === ZERO_RTT_LEVEL) this.undecryptable.splice(i, 1);
  }

  /**
   * (Client) The server rejected 0-RTT (RFC 9001 §4.6.2): every frame sent in 0-RTT is lost and
   * the state of all streams is reset — rebuilt under the server's actual limits, with the data
   * the application wrote queued again for 1-RTT. Only 0-RTT packets are in the application space
   * yet (1-RTT keys come with the server's Finished, after EncryptedExtensions), so all of its
   * packets go; RFC 9002 §6.4: they leave bytes in flight.
   */
  private onZeroRttRejected(): void {
    this.rejectedZeroRttPns = this.spaces[APP].nextPn;
    const { discarded } = this.loss.discardSpace(APP as PacketNumberSpace, this.now);
    let bytes = 0;
    for (const p of discarded) {
      if (p.inFlight) bytes += p.size;
      this.requeueFrames(p.frames, APP);
    }
    if (bytes > 0) this.cc.removeFromFlight(bytes);
    // The limits remembered for 0-RTT no longer hold: the server's own ones (from its transport
    // parameters, or none until they arrive after a HelloRetryRequest) apply from scratch.
    this.rememberedParams = undefined;
    const p = this.peerParams;
    this.sendFlow = new SendFlowControl(p?.initialMaxData ?? 0);
    this.streamCapBidi = p?.initialMaxStreamsBidi ?? 0;
    this.streamCapUni = p?.initialMaxStreamsUni ?? 0;
    this.updateStreamCaps();
    this.peerMaxDatagramFrameSize = p?.maxDatagramFrameSize ?? 0;
    const maxDatagram = this.maxDatagramSize;
    for (let i = this.outgoingDatagrams.length - 1; i >= 0; i--) {
      if (this.outgoingDatagrams[i].length > maxDatagram) {
        this.outgoingDatagrams.splice(i, 1);
        this.counters.datagramsDropped++;
      }
    }
    for (const old of [...this.streams.values()]) this.rebuildStream(old);
  }

  /**
   * (Client, 0-RTT rejected) Replaces a stream opened in 0-RTT by a fresh one under the server's
   * limits, holding the same written data (and FIN, reset or STOP_SENDING) to send again. The
   * server never saw the stream: nothing of it was received or acknowledged.
   */
  private rebuildStream(old: Stream): void {
    const id = old.id;
    if (old.send && old.send.buffer.ackedOffset > 0) return; // cannot happen: nothing was acknowledged
    const fresh = new Stream(
      id,
      this.isServer,
      this.peerSendLimit(id),
      this.config.streamReceiveWindow,
      this.config.maxStreamReceiveWindow,
    );
    fresh.urgency = old.urgency;
    fresh.incremental = old.incremental;
    this.streams.set(id, fresh);
    this.scheduler.remove(id);
    if (fresh.send) this.scheduler.add(id, fresh.urgency, fresh.incremental);
    const send = old.send;
    if (send && fresh.send) {
      if (send.resetCode !== undefined) {
        fresh.send.resetCode = send.resetCode;
        fresh.send.resetPending = true;
        fresh.send.buffer.reset();
        this.controlStreams.add(id);
      } else {
        // Read the written bytes back out in order: what was sent (marked lost), then the rest.
        const b = send.buffer;
        if (b.sentOffset > 0) b.onLost(0, b.sentOffset, false);
        for (let c = b.nextChunk(1 << 30); c && c.data.length > 0; c = b.nextChunk(1 << 30))
          fresh.send.buffer.write(c.data, true);
        if (b.finished) fresh.send.buffer.finish();
        this.scheduleStream(fresh);
      }
    }
    if (old.recv?.stopCode !== undefined && fresh.recv) {
      fresh.recv.stopCode = old.recv.stopCode;
      fresh.recv.stopPending = true;
      this.controlStreams.add(id);
    }
  }

  /** The peer's initial limit for data we send on stream `id` (RFC 9000 §18.2). */
  private peerSendLimit(id: number): number {
    // Before the server's transport parameters arrive, 0-RTT uses the remembered ones (§7.4.1).
    const p = this.peerParams ?? this.rememberedParams;
    if ((id & 2) !== 0) return p?.initialMaxStreamDataUni ?? 0;
    // bidi_remote for streams we open, bidi_local for the peer's.
    return isLocallyInitiated(id, this.isServer)
      ? (p?.initialMaxStreamDataBidiRemote ?? 0)
      : (p?.initialMaxStreamDataBidiLocal ?? 0);
  }

  /** Caps at or above the stream limits the peer gave are no caps. */
  private updateStreamCaps(): void {
    if (this.streamCapBidi >= this.localBidi.limit) this.streamCapBidi = Number.POSITIVE_INFINITY;
    if (this.streamCapUni >= this.localUni.limit) this.streamCapUni = Number.POSITIVE_INFINITY;
    this.streamsCapped =
      this.streamCapBidi !== Number.POSITIVE_INFINITY || this.streamCapUni !== Number.POSITIVE_INFINITY;
  }

  /** How many streams of a kind we may open in all (the peer's limit, and any 0-RTT cap). */
  private streamLimit(bidi: boolean): number {
    return bidi
      ? Math.min(this.localBidi.limit, this.streamCapBidi)
      : Math.min(this.localUni.limit, this.streamCapUni);
  }

  /** A new stream limit from the peer (transport parameter or MAX_STREAMS); returns whether it grew. */
  private onPeerStreamLimit(bidi: boolean, maximum: number): boolean {
    const before = this.streamLimit(bidi);
    (bidi ? this.localBidi : this.localUni).onMaxStreams(maximum);
    if (this.streamsCapped) {
      if (bidi) this.streamCapBidi = Math.max(this.streamCapBidi, maximum);
      else this.streamCapUni = Math.max(this.streamCapUni, maximum);
      this.updateStreamCaps();
      // Streams opened in 0-RTT past the cap may go now.
      this.wakeBlockedStreams();
    }
    return this.streamLimit(bidi) > before;
  }

  private onSecret(
    level: Exclude<EncryptionLevel, "initial">,
    direction: "read" | "write",
    aead: import("../crypto/provider.ts").AeadName,
    hash: import("../crypto/provider.ts").HashName,
    secret: Uint8Array,
  ): void {
    const keys = derivePacketKeys(this.provider, aead, hash, secret, this.version);
    if (level === "early") {
      this.qlog?.keyUpdated({ keyType: "client_0rtt_secret", trigger: "tls" }, this.now);
      this.zeroRttKeys = keys;
      if (this.isServer) {
        // 0-RTT packets that came before the ClientHello was processed may be readable now.
        this.retryUndecryptable();
      } else {
        this.earlyData = "pending";
        this.applyRememberedParameters();
      }
      return;
    }
    if (this.qlog) {
      const writer = direction === "write" ? this.side : this.isServer ? "client" : "server";
      const kind = level === "handshake" ? "handshake" : "1rtt";
      this.qlog.keyUpdated(
        { keyType: `${writer}_${kind}_secret` as import("../qlog.ts").QlogKeyType, trigger: "tls" },
        this.now,
      );
    }
    const space = this.spaces[level === "handshake" ? HANDSHAKE : APP];
    if (direction === "read") space.readKeys = keys;
    else space.writeKeys = keys;
    if (level === "application") {
      this.appSuite = { aead, hash };
      if (direction === "read") this.appReadSecret = secret;
      else this.appWriteSecret = secret;
      if (this.appReadSecret && this.appWriteSecret && space.readKeys && space.writeKeys) {
        this.appKeys = new OneRttKeys({
          provider: this.provider,
          hash,
          version: this.version,
          readSecret: this.appReadSecret,
          read: space.readKeys,
          writeSecret: this.appWriteSecret,
          write: space.writeKeys,
          firstSentPn: this.isServer ? 0 : this.spaces[APP].nextPn,
        });
        this.appReadSecret = undefined;
        this.appWriteSecret = undefined;
      }
    }
    if (level === "handshake") this.loss.setHandshakeKeysAvailable(this.now);
    // RFC 9001 §5.6: once a client has installed 1-RTT keys, it MUST NOT send 0-RTT packets (and
    // §4.9.3: SHOULD discard the 0-RTT keys).
    if (level === "application" && direction === "write" && !this.isServer) {
      this.dropZeroRttKeys();
      this.firstOneRttPn = this.spaces[APP].nextPn;
    }
    // Undecryptable packets that arrived early may be readable now.
    if (direction === "read") this.retryUndecryptable();
  }

  /**
   * (Client, 0-RTT) RFC 9000 §7.4.1: until the server's transport parameters arrive, the limits
   * it gave on the connection the session comes from apply (flow control, streams, datagrams).
   */
  private applyRememberedParameters(): void {
    const p = this.rememberedParams;
    if (!p) return;
    this.peerMaxDatagramFrameSize = p.maxDatagramFrameSize ?? 0;
    this.sendFlow.onMaxData(p.initialMaxData ?? 0);
    this.localBidi.onMaxStreams(p.initialMaxStreamsBidi ?? 0);
    this.localUni.onMaxStreams(p.initialMaxStreamsUni ?? 0);
  }

  private onPeerTransportParameters(bytes: Uint8Array): void {
    const p = decodeTransportParameters(bytes, this.isServer ? "client" : "server");
    // RFC 9000 §7.3: authenticate the connection IDs used during the handshake.
    checkConnectionIdParameters(
      p,
      this.isServer
        ? { initialSourceConnectionId: this.dcidFromHandshake }
        : {
            initialSourceConnectionId: this.dcid,
            originalDestinationConnectionId: this.originalDcid,
            retrySourceConnectionId: this.retrySourceCid,
          },
      this.isServer ? "client" : "server",
    );
    if (!this.isServer) {
      // RFC 9368 §4 downgrade prevention (the server checked ours in chooseVersion).
      checkVersionInformation(
        p,
        {
          version: this.version,
          originalVersion: this.originalVersion,
          clientAvailableVersions: this.availableVersions,
          reactedToVersionNegotiation: this.reactedToVersionNegotiation,
          selectVersion: (offered) => this.selectVersion(offered),
        },
        "server",
      );
    }
    this.peerParams = p;
    this.qlog?.parametersSet("remote", p, this.now);
    this.peerAckDelayExponent = p.ackDelayExponent ?? 3;
    // RFC 9287 §3: the peer accepts a cleared fixed bit; we then set it unpredictably.
    this.greaseFixedBit = this.config.greaseQuicBit && p.greaseQuicBit === true;
    this.loss.setMaxAckDelay(p.maxAckDelay ?? 25, this.now);
    this.peerMaxDatagramFrameSize = p.maxDatagramFrameSize ?? 0;
    // Limits only grow here: one below what 0-RTT used is either a PROTOCOL_VIOLATION (0-RTT
    // accepted, checked on the early-data decision) or rebuilt from scratch (0-RTT rejected).
    if (this.sendFlow.onMaxData(p.initialMaxData ?? 0)) this.wakeBlockedStreams();
    // (A client that tried 0-RTT may have waited for streams: tell it they can be opened.)
    const announce = !this.isServer && this.earlyData !== "none";
    if (this.onPeerStreamLimit(true, p.initialMaxStreamsBidi ?? 0) && announce)
      this.events.push({ type: "streams-available", bidi: true });
    if (this.onPeerStreamLimit(false, p.initialMaxStreamsUni ?? 0) && announce)
      this.events.push({ type: "streams-available", bidi: false });
    // Streams opened before the server's limits were known (0-RTT) get them now.
    for (const s of this.streams.values()) {
      if (s.send?.flow.onMaxData(this.peerSendLimit(s.id))) this.scheduleStream(s);
    }
    const peerIdle = p.maxIdleTimeout ?? 0;
    // RFC 9000 §10.1: the effective idle timeout is the minimum of both, 0 meaning none.
    if (peerIdle > 0 && (this.idleTimeout === 0 || peerIdle < this.idleTimeout)) this.idleTimeout = peerIdle;
    if (!this.isServer && p.statelessResetToken) {
      this.remoteCids[0].resetToken = p.statelessResetToken;
      this.events.push({ type: "peer-reset-token", token: p.statelessResetToken, retired: false });
    }
    // RFC 9000 §5.1.1: the preferred_address connection ID has sequence number 1; the client may
    // use it on any path (§9.6.3).
    const pa = p.preferredAddress;
    if (!this.isServer && pa && !this.remoteCids.some((r) => r.seq === 1)) {
      this.remoteCids.push({
        seq: 1,
        cid: pa.connectionId.slice(),
        resetToken: pa.statelessResetToken.slice(),
      });
      this.events.push({ type: "peer-reset-token", token: pa.statelessResetToken.slice(), retired: false });
    }
  }

  /** The client's SCID as the server saw it: what its initial_source_connection_id must be. */
  private get dcidFromHandshake(): Uint8Array {
    return this.remoteCids[0].cid;
  }

  private onHandshakeComplete(): void {
    this.state = "established";
    this.qlog?.connectionStateUpdated("handshake_complete", this.now);
    this.events.push({ type: "handshake-complete" });
    if (this.isServer) {
      // RFC 9001 §4.1.2: the server's handshake is confirmed when it completes; it sends HANDSHAKE_DONE.
      this.handshakeDonePending = true;
      this.confirmHandshake();
    }
  }

  private confirmHandshake(): void {
    if (this.handshakeConfirmed) return;
    this.handshakeConfirmed = true;
    this.loss.setHandshakeConfirmed(this.now);
    // RFC 9001 §4.9.2: discard Handshake keys once the handshake is confirmed.
    this.discardSpace(HANDSHAKE);
    this.events.push({ type: "handshake-confirmed" });
    this.qlog?.connectionStateUpdated("handshake_confirmed", this.now);
    // RFC 9000 §14.3: PMTU probes go in 1-RTT packets, once the handshake is confirmed.
    this.startPmtuDiscovery();
    if (this.isServer) {
      // RFC 9000 §8.1.3: a token for a future connection, in one NEW_TOKEN frame (1-RTT only).
      this.issueNewToken(this.now);
    }
    // Give the peer room to migrate or rotate: fill its active_connection_id_limit (§5.1.1).
    const limit = Math.min(this.peerParams?.activeConnectionIdLimit ?? 2, 8);
    while (this.localCids.length < limit) this.issueLocalCid(true);
    if (!this.isServer) this.probePreferredAddress(this.now);
  }

  private discardSpace(id: SpaceId): void {
    const space = this.spaces[id];
    if (space.discarded) return;
    space.discarded = true;
    space.readKeys = undefined;
    space.writeKeys = undefined;
    // Nothing more is sent at this level (RFC 9001 §4.9): drop its CRYPTO data and block.
    space.cryptoSend.reset();
    space.cryptoSend.releaseStaging();
    const { discarded } = this.loss.discardSpace(id as PacketNumberSpace, this.now);
    let bytes = 0;
    for (const p of discarded) if (p.inFlight) bytes += p.size;
    if (bytes > 0) this.cc.removeFromFlight(bytes);
  }

  // ---------------------------------------------------------------------------------------------
  // Receiving

  /**
   * Processes one UDP payload from the peer. Never throws for peer input: errors close the
   * connection. `from` is where it came from (with the local socket, when there are several): it
   * drives path validation and migration (RFC 9000 §8.2, §9); without it the connection assumes a
   * single, fixed path.
   */
  receive(datagram: Uint8Array, now: number, from?: PathAddress): void {
    this.now = now;
    if (this.state === "closed" || this.state === "draining") return;
    // RFC 9000 §9: a client discards packets from a server address it did not choose to use (§9.6).
    if (from && !this.isServer && this.activePath.remote && !this.knownPath(from)) return;
    this.bytesReceived += datagram.length;
    this.counters.bytesReceived += datagram.length;
    if (this.state === "closing") {
      // RFC 9000 §10.2.1: answer with CONNECTION_CLOSE, not more often than packets arrive.
      this.closeFramePending = true;
      return;
    }
    this.rxDecrypted = false;
    this.rxNonProbingLargest = false;
    this.rxPeerDcidChanged = false;
    try {
      this.receiveDatagram(datagram, now);
      if (this.rxDecrypted) this.onDatagramPath(datagram.length, now, from);
    } catch (err) {
      this.onLocalError(err);
    }
    this.rxChallenges.length = 0;
    this.rxResponses.length = 0;
    this.drainTlsSafe();
  }

  private drainTlsSafe(): void {
    try {
      this.drainTls();
    } catch (err) {
      this.onLocalError(err);
    }
  }

  private receiveDatagram(datagram: Uint8Array, now: number): void {
    let headers: PacketHeader[];
    try {
      headers = splitCoalescedPackets(datagram, this.splitOptions);
    } catch (err) {
      if (err instanceof PacketDropError) {
        this.checkStatelessReset(datagram);
        return;
      }
      throw err;
    }
    let processed = false;
    for (const h of headers) {
      if (this.state === "closed" || this.state === "draining" || this.state === "closing") return;
      if (this.processPacket(datagram, h, now)) processed = true;
    }
    if (!processed) this.checkStatelessReset(datagram);
  }

  /** RFC 9000 §10.3.1: a datagram ending in a reset token the peer gave us ends the connection. */
  private checkStatelessReset(datagram: Uint8Array): void {
    if (datagram.length < 21) return;
    const tail = datagram.subarray(datagram.length - 16);
    for (const r of this.remoteCids) {
      if (r.resetToken && equal(r.resetToken, tail)) {
        this.enterDraining({ kind: "stateless-reset" }, false);
        return;
      }
    }
  }

  /** Returns true when the packet decrypted. */
  private processPacket(datagram: Uint8Array, h: PacketHeader, now: number): boolean {
    switch (h.type) {
      case PacketType.VersionNegotiation:
        this.onVersionNegotiation(h);
        return false;
      case PacketType.Retry:
        this.onRetry(datagram, h);
        return false;
      case PacketType.UnsupportedVersion:
        return false;
      default:
        break;
    }
    let initialKeys: PacketKeys | undefined;
    let switchedFrom:
      | { version: number; read: PacketKeys | undefined; write: PacketKeys | undefined }
      | undefined;
    if ("version" in h && h.version !== this.version) {
      if (this.isServer) {
        // RFC 9369 §4: after switching, the client's Initials (and 0-RTT) may still come in the
        // original version until it learns the negotiated one; Handshake packets never do.
        if (h.version !== this.originalVersion) return false;
        if (h.type === PacketType.Initial && this.originalInitialReadKeys)
          initialKeys = this.originalInitialReadKeys;
        else if (h.type !== PacketType.ZeroRtt) return false;
      } else {
        // RFC 9369 §4: the client learns the negotiated version from the first long header whose
        // Version differs from the original one — one it offered and that is compatible. Only a
        // server Initial can tell (its keys derive from what we know); it must decrypt.
        if (
          this.versionKnown ||
          h.type !== PacketType.Initial ||
          !this.availableVersions.includes(h.version) ||
          !isSupportedVersion(h.version)
        )
          return false;
        const initial = this.spaces[INITIAL];
        switchedFrom = { version: this.version, read: initial.readKeys, write: initial.writeKeys };
        this.version = h.version;
        this.installInitialKeys(this.initialKeyCid);
      }
    }
    let spaceId: SpaceId;
    let packetType: FramePacketType;
    let zeroRtt = false;
    switch (h.type) {
      case PacketType.Initial:
        spaceId = INITIAL;
        packetType = "initial";
        // RFC 9000 §14.1: a server drops client Initials in datagrams under 1200 bytes.
        if (this.isServer && datagram.length < MIN_INITIAL_DATAGRAM) return false;
        // RFC 9000 §17.2.2: a server's Initial carries no token.
        if (!this.isServer && h.token.length > 0) return false;
        break;
      case PacketType.Handshake:
        spaceId = HANDSHAKE;
        packetType = "handshake";
        break;
      case PacketType.ZeroRtt:
        // RFC 9001 §5.6: a client MUST NOT attempt to decrypt 0-RTT packets; it discards them.
        if (!this.isServer) return false;
        // RFC 9000 §12.3: 0-RTT and 1-RTT packets share the application packet number space.
        spaceId = APP;
        packetType = "0rtt";
        zeroRtt = true;
        break;
      default:
        spaceId = APP;
        packetType = "1rtt";
    }
    const space = this.spaces[spaceId];
    if (space.discarded) return false;
    if (zeroRtt ? !this.zeroRttKeys : !space.readKeys) {
      // Keys not yet available (reordering): keep a few packets to try again later. 0-RTT packets
      // only until the ClientHello is processed: then 0-RTT was accepted (keys) or not (drop).
      if (
        this.undecryptable.length < MAX_BUFFERED_UNDECRYPTABLE &&
        (!zeroRtt || this.peerParams === undefined)
      ) {
        this.undecryptable.push({
          data: datagram.slice(h.packetStart, h.packetEnd),
          level: zeroRtt ? ZERO_RTT_LEVEL : spaceId,
        });
      }
      return false;
    }
    const pnOffset = "pnOffset" in h ? h.pnOffset : 0;
    const payloadLength = zeroRtt
      ? unprotectPacket(
          this.zeroRttKeys!,
          datagram,
          h.packetStart,
          pnOffset,
          h.packetEnd,
          space.received.largest,
          this.unprotected,
        )
      : this.unprotect(datagram, h.packetStart, pnOffset, h.packetEnd, spaceId, initialKeys);
    if (switchedFrom) {
      const initial = this.spaces[INITIAL];
      if (payloadLength < 0) {
        // Not the server's (a forged Version field, say): stay with the version we had.
        this.version = switchedFrom.version;
        initial.readKeys = switchedFrom.read;
        initial.writeKeys = switchedFrom.write;
      } else {
        this.versionKnown = true;
        this.qlog?.versionChosen?.({ version: this.version, side: this.side }, now);
      }
    }
    if (payloadLength < 0) {
      // RFC 9001 §6.6: past the integrity limit of forged packets, close with AEAD_LIMIT_REACHED.
      if (++this.authenticationFailures > this.aeadLimits().integrity)
        throw new QuicError(TransportErrorCode.AEAD_LIMIT_REACHED, "integrity limit reached");
      return false;
    }
    const pn = this.unprotected.packetNumber;
    const keyPhaseBit = ((this.unprotected.firstByte >> 2) & 1) as 0 | 1;
    if (space.received.isDuplicate(pn)) return true;
    this.counters.packetsReceived++;
    if (zeroRtt) this.counters.zeroRttPacketsReceived++;
    else if (
      spaceId === APP &&
      this.zeroRttKeys &&
      this.isServer &&
      this.zeroRttDiscardAt === Number.POSITIVE_INFINITY
    ) {
      // RFC 9001 §4.9.3: after receiving a 1-RTT packet, a server MUST discard 0-RTT keys within a
      // short time (RECOMMENDED: three times the PTO); until then reordered 0-RTT packets are read.
      this.zeroRttDiscardAt = now + 3 * this.ptoDuration();
    }

    // The client learns the server's connection ID from its first Initial (RFC 9000 §7.2).
    if (!this.isServer && !this.receivedFromPeer && "scid" in h) {
      this.dcid = h.scid.slice();
      this.remoteCids[0].cid = this.dcid;
    }
    this.receivedFromPeer = true;
    // RFC 9000 §8.1: a Handshake packet from the client validates its address; RFC 9001 §4.9.1:
    // the server discards Initial keys once it processes a Handshake packet.
    if (spaceId === HANDSHAKE && this.isServer) {
      this.originalInitialReadKeys = undefined;
      this.addressValidated = true;
      this.discardSpace(INITIAL);
    }

    const start = this.unprotected.payloadOffset;
    this.rxPacketDcid = h.dcid;
    const r = new ByteReader(datagram, start, start + payloadLength);
    let ackEliciting = false;
    let nonProbing = false;
    const qframes: Frame[] | undefined = this.qlog ? [] : undefined;
    if (payloadLength === 0)
      throw new QuicError(TransportErrorCode.PROTOCOL_VIOLATION, "packet without frames");
    while (!r.done) {
      const frame = decodeFrame(r);
      // RFC 9000 §12.4: frames not permitted in this packet type are a PROTOCOL_VIOLATION.
      if (!isFrameAllowed(frame, packetType)) {
        throw new QuicError(
          TransportErrorCode.PROTOCOL_VIOLATION,
          `${frame.kind} not allowed in ${packetType} packet`,
          frameTypeOf(frame),
        );
      }
      if (isAckEliciting(frame.kind)) ackEliciting = true;
      // RFC 9000 §9.1: all frames but PATH_CHALLENGE, PATH_RESPONSE, NEW_CONNECTION_ID and PADDING
      // are non-probing.
      if (
        !nonProbing &&
        frame.kind !== "padding" &&
        frame.kind !== "path_challenge" &&
        frame.kind !== "path_response" &&
        frame.kind !== "new_connection_id"
      )
        nonProbing = true;
      qframes?.push(frame);
      this.onFrame(frame, spaceId, now);
      if (this.state === "draining" || this.state === "closed") return true;
    }
    // A view into the datagram: keeping it would pin the whole datagram until the next packet.
    this.rxPacketDcid = EMPTY;
    this.rxDecrypted = true;
    if (spaceId === APP && !zeroRtt && pn > space.received.largest) {
      // RFC 9000 §9.3: only the highest-numbered non-probing packet moves the peer's address.
      if (nonProbing) this.rxNonProbingLargest = true;
      const dcid = h.dcid;
      if (this.lastPeerDcid && !equal(this.lastPeerDcid, dcid)) this.rxPeerDcidChanged = true;
      if (!this.lastPeerDcid || this.rxPeerDcidChanged) this.lastPeerDcid = dcid.slice();
    }
    space.received.onPacketReceived(pn, now, ackEliciting);
    if (this.immediateAckReceived) {
      // ack-frequency §5: IMMEDIATE_ACK asks for an ACK now.
      this.immediateAckReceived = false;
      space.received.requestImmediateAck();
    }
    this.resetIdleTimer(now);
    this.qlog?.packetReceived(
      {
        type: packetType,
        pn,
        size: h.packetEnd - h.packetStart,
        frames: qframes,
        version: "version" in h ? h.version : undefined,
        keyPhase: packetType === "1rtt" ? keyPhaseBit : undefined,
      },
      now,
    );
    if (
      spaceId === APP &&
      this.isServer === false &&
      !this.handshakeConfirmed &&
      this.state === "established"
    ) {
      // A client may also consider the handshake confirmed on an ACK of 1-RTT data (RFC 9001 §4.1.2).
    }
    return true;
  }

  /** Removes packet protection in place; returns the payload length or -1. */
  private unprotect(
    buf: Uint8Array,
    start: number,
    pnOffset: number,
    end: number,
    spaceId: SpaceId,
    initialKeys?: PacketKeys,
  ): number {
    const space = this.spaces[spaceId];
    const keys = initialKeys ?? space.readKeys!;
    const largest = space.received.largest;
    if (spaceId !== APP) {
      return unprotectPacket(keys, buf, start, pnOffset, end, largest, this.unprotected);
    }
    // 1-RTT: the key phase bit picks the keys (RFC 9001 §6).
    const pnLength = removeHeaderProtection(keys, buf, start, pnOffset, end);
    if (pnLength < 0) return -1;
    const first = buf[start];
    const len = pnLength as 1 | 2 | 3 | 4;
    const pn = decodePacketNumber(largest, readPacketNumber(buf, pnOffset, len), len);
    this.unprotected.firstByte = first;
    this.unprotected.pnLength = pnLength as 1 | 2 | 3 | 4;
    this.unprotected.packetNumber = pn;
    this.unprotected.payloadOffset = pnOffset + pnLength;
    // RFC 9001 §6.3/§6.5: the Key Phase bit and the packet number pick current, previous or next keys.
    const ku = this.appKeys;
    const use = ku ? ku.select((first >> 2) & 1, pn) : keys;
    const n = decryptPayload(use, buf, start, pnOffset + pnLength, end, pn);
    if (n < 0) return -1;
    if ((first & 0x18) !== 0) {
      // RFC 9000 §17.3.1: reserved bits after a successful decryption → PROTOCOL_VIOLATION.
      throw new QuicError(TransportErrorCode.PROTOCOL_VIOLATION, "reserved bits set in short header");
    }
    if (ku?.onOpened(pn, this.now, this.ptoDuration(), this.spaces[APP].nextPn)) {
      // RFC 9001 §6.2: the peer updated its keys; we followed (our next packets use the new ones).
      this.onKeyPhaseChanged("remote_update");
    }
    this.unprotected.payloadLength = n;
    return n;
  }

  /** After a key update: the APP space uses the new keys; qlog records both directions. */
  private onKeyPhaseChanged(trigger: "local_update" | "remote_update"): void {
    const ku = this.appKeys!;
    const space = this.spaces[APP];
    space.readKeys = ku.read;
    space.writeKeys = ku.write;
    if (this.qlog) {
      const peer = this.isServer ? "client" : "server";
      for (const who of [this.side, peer])
        this.qlog.keyUpdated(
          {
            keyType: `${who}_1rtt_secret` as import("../qlog.ts").QlogKeyType,
            generation: ku.generation,
            trigger,
          },
          this.now,
        );
    }
  }

  /**
   * Asks for a 1-RTT key update (RFC 9001 §6.1). It starts with the next packet sent once it is
   * allowed: the handshake is confirmed and a packet of the current key phase was acknowledged
   * (§6.5), three PTOs ago. A request made while one is waiting is the same request.
   */
  forceKeyUpdate(): void {
    if (this.state === "closed" || this.state === "closing" || this.state === "draining")
      throw new QuicUsageError("key update on a closed connection");
    this.keyUpdateRequested = true;
  }

  /** The AEAD limits in force (RFC 9001 §6.6), with any test override. */
  private aeadLimits(): AeadLimits {
    const base = AEAD_LIMITS[this.appSuite?.aead ?? "aes-128-gcm"];
    const over = this.common.aeadLimits;
    return {
      confidentiality: over?.confidentiality ?? base.confidentiality,
      integrity: over?.integrity ?? base.integrity,
    };
  }

  /**
   * Before a 1-RTT packet is sealed: start a requested key update, or one the confidentiality
   * limit calls for (RFC 9001 §6.6: MUST update before the limit); at the limit without a
   * possible update, close with AEAD_LIMIT_REACHED.
   */
  private checkKeyUsage(now: number): void {
    const ku = this.appKeys;
    if (!ku) return;
    // Per sealed packet: read the one limit needed without building the aeadLimits() object.
    const limit =
      this.common.aeadLimits?.confidentiality ??
      AEAD_LIMITS[this.appSuite?.aead ?? "aes-128-gcm"].confidentiality;
    const interval =
      this.config.keyUpdateInterval > 0 ? this.config.keyUpdateInterval : Number.POSITIVE_INFINITY;
    const due = ku.packetsSealed >= Math.min(interval, automaticUpdateThreshold(limit));
    // RFC 9001 §6.1: not before the handshake is confirmed.
    if (
      (this.keyUpdateRequested || due) &&
      this.handshakeConfirmed &&
      ku.canInitiate(now, this.ptoDuration())
    ) {
      this.keyUpdateRequested = false;
      ku.initiate(this.spaces[APP].nextPn);
      this.onKeyPhaseChanged("local_update");
      return;
    }
    // RFC 9001 §6.6: one packet short of the limit, the last one carries the CONNECTION_CLOSE.
    if (ku.packetsSealed + 1 >= limit)
      throw new QuicError(
        TransportErrorCode.AEAD_LIMIT_REACHED,
        "confidentiality limit reached without a key update",
      );
  }

  private retryUndecryptable(): void {
    if (this.undecryptable.length === 0) return;
    const pending = this.undecryptable.splice(0);
    for (const p of pending) {
      if (p.level === ZERO_RTT_LEVEL ? !this.zeroRttKeys : !this.spaces[p.level].readKeys) {
        // 0-RTT packets wait only while 0-RTT may still be accepted (ClientHello not yet read).
        if (p.level !== ZERO_RTT_LEVEL || this.peerParams === undefined) this.undecryptable.push(p);
        continue;
      }
      try {
        const headers = splitCoalescedPackets(p.data, this.splitOptions);
        for (const h of headers) this.processPacket(p.data, h, this.now);
      } catch (err) {
        if (!(err instanceof PacketDropError)) throw err;
      }
    }
  }

  private onVersionNegotiation(
    h: Extract<PacketHeader, { type: typeof PacketType.VersionNegotiation }>,
  ): void {
    const versions = h.versions;
    // RFC 9000 §6.2: only a client that has not yet received a packet acts on VN, and ignores a
    // VN that lists the version it chose.
    // RFC 9368 §4: nor one answering an attempt that already followed a VN.
    if (this.isServer || this.receivedFromPeer || versions.includes(this.version)) return;
    if (this.reactedToVersionNegotiation) return;
    // RFC 8999 §6, RFC 9000 §17.2.1: a VN echoes our connection IDs (its SCID is the DCID of our
    // Initial, its DCID our SCID); one that does not answers no packet of ours (RFC 9368 §2.1).
    if (!equal(h.scid, this.dcid) || !equal(h.dcid, this.initialScid)) return;
    this.qlog?.packetReceived(
      {
        type: "version_negotiation",
        size: h.packetEnd - h.packetStart,
        scid: h.scid,
        dcid: h.dcid,
        supportedVersions: versions,
      },
      this.now,
    );
    const common = this.selectVersion(versions);
    if (common === undefined) {
      this.closeReason = { kind: "version-mismatch", offered: [...versions] };
      this.state = "closed";
      this.events.push({ type: "closed", reason: this.closeReason });
      return;
    }
    this.version = common;
    this.originalVersion = common;
    this.reactedToVersionNegotiation = true;
    this.qlog?.versionChosen?.({ version: common, side: this.side }, this.now);
    // RFC 9000 §8.1.3: a NEW_TOKEN token is for connection attempts using the same version.
    this.initialToken = EMPTY;
    this.restartClientHello();
    this.restartInitial(this.dcid);
    if (this.earlyData === "pending") {
      // RFC 9369 §5: the session (and its 0-RTT keys) belongs to the version we gave up: what was
      // sent in 0-RTT goes again in 1-RTT, as after a rejection.
      this.earlyData = "rejected";
      this.dropZeroRttKeys();
      this.onZeroRttRejected();
      this.events.push({ type: "early-data", accepted: false });
    }
  }

  /**
   * (Server) RFC 9368 §2.3 compatible version negotiation, with the client's transport parameters
   * in hand (before any reply to its ClientHello): checks its Chosen Version, picks the negotiated
   * version among its Available Versions — by our order when configured, else by the client's;
   * v1 and v2 are compatible both ways (RFC 9369 §4) — and switches to it. Returns our transport
   * parameters, whose version_information names the negotiated version.
   */
  private chooseVersion(clientParameters: Uint8Array): Uint8Array {
    const p = decodeTransportParameters(clientParameters, "client");
    // RFC 9368 §4: the client's Chosen Version MUST be the version its Initials use.
    checkVersionInformation(p, { version: this.originalVersion }, "client");
    const offered = p.versionInformation?.availableVersions ?? [];
    const ours = this.availableVersions;
    const pick = this.serverVersionOrder
      ? ours.find((v) => offered.includes(v))
      : offered.find((v) => ours.includes(v));
    if (pick !== undefined && pick !== this.version && isSupportedVersion(pick)) {
      // RFC 9369 §4: every CRYPTO frame goes in the negotiated version; the client's Initials in
      // the original one still decrypt until a Handshake packet in the new one arrives.
      this.originalInitialReadKeys = this.spaces[INITIAL].readKeys;
      this.version = pick;
      this.installInitialKeys(this.initialKeyCid);
      this.qlog?.versionChosen?.({ version: pick, side: this.side, versions: ours }, this.now);
    }
    this.localParams.versionInformation = { chosenVersion: this.version, availableVersions: [...ours] };
    const bytes = new Uint8Array(transportParametersSize(this.localParams));
    encodeTransportParameters(this.localParams, new ByteWriter(bytes));
    return bytes;
  }

  /** (Client) The version to try given the versions a server lists: our most preferred one of them. */
  private selectVersion(offered: readonly number[]): number | undefined {
    // RFC 9368 §3: reserved versions are never selected (ours from a probe, or a server's grease).
    return this.availableVersions.find((v) => offered.includes(v) && isSupportedVersion(v));
  }

  /**
   * (Client, after Version Negotiation) A new ClientHello — a new connection attempt (RFC 9368
   * §2.2) — whose version_information names the new version, in a fresh Initial space.
   */
  private restartClientHello(): void {
    this.localParams.versionInformation = {
      chosenVersion: this.version,
      availableVersions: [...this.availableVersions],
    };
    const tpBytes = new Uint8Array(transportParametersSize(this.localParams));
    encodeTransportParameters(this.localParams, new ByteWriter(tpBytes));
    const old = this.spaces[INITIAL];
    const fresh = new PacketSpace("initial", this.config);
    fresh.nextPn = old.nextPn;
    this.spaces[INITIAL] = fresh;
    const client = this.common as ClientConnectionConfig;
    const tls = new TlsClient({
      ...client.tls,
      transportParameters: tpBytes,
      provider: this.provider,
      keyLog: this.common.keyLog,
    });
    this.tls = tls;
    tls.start(this.now);
    this.drainTls();
  }

  private onRetry(datagram: Uint8Array, h: Extract<PacketHeader, { type: typeof PacketType.Retry }>): void {
    // RFC 9000 §17.2.5.2: one Retry at most, before any other server packet, with a valid tag.
    if (this.isServer || this.receivedFromPeer || this.retrySourceCid) return;
    // RFC 9369 §4: a Retry comes in the original version; the client ignores others.
    if (h.version !== this.version) return;
    if (!validateRetryPacket(this.provider, datagram, h, this.originalDcid)) return;
    // A token that leaves no room for CRYPTO data in a 1200-byte Initial would stall us: ignored.
    if (h.token.length > MAX_TOKEN_LENGTH) return;
    if (equal(h.scid, this.dcid)) return;
    this.retrySourceCid = h.scid.slice();
    this.qlog?.packetReceived(
      { type: "retry", size: h.packetEnd - h.packetStart, scid: h.scid, dcid: h.dcid },
      this.now,
    );
    this.initialToken = h.token.slice();
    this.dcid = this.retrySourceCid;
    this.remoteCids[0].cid = this.dcid;
    this.restartInitial(this.dcid);
  }

  /** Sends the ClientHello again under new Initial keys (after Retry or Version Negotiation). */
  private restartInitial(keyCid: Uint8Array): void {
    const { discarded } = this.loss.resetForRetry(this.now);
    let bytes = 0;
    for (const p of discarded) {
      if (p.inFlight) bytes += p.size;
      // 0-RTT packets: their frames go again (RFC 9001 §4.6.2: a Retry or Version Negotiation
      // does not reject 0-RTT). The Initials' CRYPTO data is resent whole below.
      if (p.frames.some((f) => f.k !== "crypto" && f.k !== "ack")) this.requeueFrames(p.frames, APP);
    }
    if (bytes > 0) this.cc.removeFromFlight(bytes);
    this.installInitialKeys(keyCid);
    const space = this.spaces[INITIAL];
    // Resend all CRYPTO data from offset 0 (the ClientHello) in a new Initial.
    const sent = space.cryptoSend.sentOffset;
    if (sent > 0) space.cryptoSend.onLost(0, sent, false);
  }

  // ---------------------------------------------------------------------------------------------
  // Frames

  private onFrame(f: Frame, spaceId: SpaceId, now: number): void {
    switch (f.kind) {
      case "padding":
      case "ping":
        return;
      case "ack":
        this.onAck(f, spaceId, now);
        return;
      case "crypto": {
        // RFC 9369 §4: server CRYPTO data in the version we use means it is the negotiated one.
        if (!this.isServer) this.versionKnown = true;
        const space = this.spaces[spaceId];
        space.cryptoRecv.insert(f.offset, f.data, false, FrameType.CRYPTO);
        for (let chunk = space.cryptoRecv.read(); chunk; chunk = space.cryptoRecv.read()) {
          this.tls.receive(SPACE_LEVEL[spaceId], chunk, now);
          this.drainTls();
        }
        return;
      }
      case "stream":
        this.onStreamFrame(f.streamId, f.offset, f.data, f.fin);
        return;
      case "reset_stream_at": {
        // reliable-stream-reset §3: a frame we did not advertise support for.
        if (!this.config.resetStreamAt)
          throw new QuicError(
            TransportErrorCode.PROTOCOL_VIOLATION,
            "RESET_STREAM_AT without reset_stream_at",
            FrameType.RESET_STREAM_AT,
          );
        const s = this.peerStream(f.streamId, FrameType.RESET_STREAM_AT);
        if (s?.recv) this.onPeerResetAt(s, f.errorCode, f.finalSize, f.reliableSize, now);
        return;
      }
      case "ack_frequency":
      case "immediate_ack":
        this.onAckFrequencyFrame(f);
        return;
      case "reset_stream": {
        const s = this.peerStream(f.streamId, FrameType.RESET_STREAM);
        if (!s?.recv) return;
        if (s.recv.resetAt) {
          // reliable-stream-reset §5.2: RESET_STREAM = RESET_STREAM_AT with a Reliable Size of 0.
          this.onPeerResetAt(s, f.errorCode, f.finalSize, 0, now);
          return;
        }
        const newBytes = s.recv.flow.onReceivedOffset(f.finalSize, FrameType.RESET_STREAM);
        this.recvFlow.onReceivedBytes(newBytes, FrameType.RESET_STREAM);
        if (s.state.onRecvResetStream(f.finalSize)) {
          s.recv.buffer.onReset(f.finalSize);
          s.recv.resetCode = f.errorCode;
          // Bytes never to be read still count as consumed for connection flow control.
          const unread = f.finalSize - s.recv.flow.consumed;
          if (unread > 0) {
            s.recv.flow.onConsumed(unread, now);
            this.recvFlow.onConsumed(unread, now);
          }
          this.events.push({ type: "stream-reset", streamId: f.streamId, errorCode: f.errorCode });
          this.maybeReleaseStream(s);
        }
        return;
      }
      case "stop_sending": {
        const s = this.peerStream(f.streamId, FrameType.STOP_SENDING);
        if (!s?.send) return;
        if (s.state.onRecvStopSending()) {
          s.send.stopCode = f.errorCode;
          // RFC 9000 §3.5: answer STOP_SENDING with RESET_STREAM.
          if (s.send.resetCode === undefined && !s.send.done) this.resetStream(s.id, f.errorCode);
          this.events.push({ type: "stream-stopped", streamId: f.streamId, errorCode: f.errorCode });
        }
        return;
      }
      case "max_data":
        if (this.sendFlow.onMaxData(f.maximum)) this.wakeBlockedStreams();
        return;
      case "max_stream_data": {
        const s = this.peerStream(f.streamId, FrameType.MAX_STREAM_DATA);
        if (!s?.send) return;
        s.state.onRecvMaxStreamData();
        if (s.send.flow.onMaxData(f.maximum)) {
          this.scheduleStream(s);
          this.events.push({ type: "stream-writable", streamId: s.id });
        }
        return;
      }
      case "max_streams":
        if (this.onPeerStreamLimit(f.bidi, f.maximum))
          this.events.push({ type: "streams-available", bidi: f.bidi });
        return;
      case "data_blocked":
      case "streams_blocked":
        return;
      case "stream_data_blocked": {
        const s = this.peerStream(f.streamId, FrameType.STREAM_DATA_BLOCKED);
        s?.state.onRecvStreamDataBlocked();
        return;
      }
      case "new_token":
        // RFC 9000 §19.7: a server receiving NEW_TOKEN → PROTOCOL_VIOLATION.
        if (this.isServer)
          throw new QuicError(
            TransportErrorCode.PROTOCOL_VIOLATION,
            "NEW_TOKEN from a client",
            FrameType.NEW_TOKEN,
          );
        this.onNewToken(f.token);
        return;
      case "new_connection_id":
        this.onNewConnectionId(f.sequence, f.retirePriorTo, f.connectionId, f.statelessResetToken);
        return;
      case "retire_connection_id":
        this.onRetireConnectionId(f.sequence);
        return;
      case "path_challenge":
        // RFC 9000 §8.2.2: echo the data in a PATH_RESPONSE on the path it came from (queued on
        // that path once the datagram is read, see onDatagramPath).
        if (this.rxChallenges.length < 4) this.rxChallenges.push(f.data.slice());
        return;
      case "path_response":
        if (this.rxResponses.length < 4) this.rxResponses.push(f.data.slice());
        return;
      case "connection_close": {
        const reason = Buffer.from(f.reason).toString("utf8");
        this.enterDraining(
          f.application
            ? { kind: "application", code: f.errorCode, reason, remote: true }
            : { kind: "transport", code: Number(f.errorCode), frameType: f.frameType, reason, remote: true },
          true,
        );
        return;
      }
      case "handshake_done":
        // RFC 9000 §19.20: a server receiving HANDSHAKE_DONE → PROTOCOL_VIOLATION.
        if (this.isServer)
          throw new QuicError(
            TransportErrorCode.PROTOCOL_VIOLATION,
            "HANDSHAKE_DONE from a client",
            FrameType.HANDSHAKE_DONE,
          );
        this.confirmHandshake();
        return;
      case "datagram":
        // RFC 9221 §4: DATAGRAM frames we did not allow, or larger than allowed → PROTOCOL_VIOLATION.
        if (
          this.config.maxDatagramFrameSize === 0 ||
          f.data.length + 3 > this.config.maxDatagramFrameSize + 3
        ) {
          if (this.config.maxDatagramFrameSize === 0 || f.data.length > this.config.maxDatagramFrameSize) {
            throw new QuicError(
              TransportErrorCode.PROTOCOL_VIOLATION,
              "unexpected DATAGRAM frame",
              FrameType.DATAGRAM,
            );
          }
        }
        this.onDatagram(f.data);
        return;
    }
  }

  private onAck(f: AckFrame, spaceId: SpaceId, now: number): void {
    if (spaceId === APP && f.ranges[f.ranges.length - 1] < this.rejectedZeroRttPns) {
      // RFC 9001 §4.6.2: an acknowledgment of a 0-RTT packet after 0-RTT was rejected SHOULD be
      // treated as a PROTOCOL_VIOLATION.
      throw new QuicError(
        TransportErrorCode.PROTOCOL_VIOLATION,
        "acknowledgment of a rejected 0-RTT packet",
        FrameType.ACK,
      );
    }
    // RFC 9001 §6.5: an acknowledged packet of the current key phase permits the next update.
    if (spaceId === APP && f.largest < this.spaces[APP].nextPn) this.appKeys?.onAckReceived(f.largest, now);
    const ackDelay = spaceId === APP ? (f.ackDelay * 2 ** this.peerAckDelayExponent) / 1000 : 0;
    const result = this.loss.onAckReceived(
      spaceId as PacketNumberSpace,
      { largest: f.largest, ackDelay, ranges: f.ranges, ecn: f.ecn },
      now,
    );
    for (const p of result.newlyAcked) this.onPacketAcked(p, spaceId);
    for (const p of result.lost) this.onPacketLost(p, spaceId);
    if (result.ecnCe !== undefined) this.cc.onEcnCe(result.ecnCe.sentTime, now);
    const ssthresh = this.cc.ssthresh;
    const congestionLost = result.lost.length > 0 ? this.congestionLosses(result.lost, now) : result.lost;
    if (congestionLost.length > 0) this.cc.onPacketsLost(congestionLost, now);
    if (result.persistentCongestion && congestionLost.length > 0) this.cc.onPersistentCongestion(now);
    if (this.cc.ssthresh < ssthresh) this.counters.congestionEvents++;
    if (result.newlyAcked.length > 0) this.cc.onPacketsAcked(result.newlyAcked, now, this.loss.rtt);
    this.pacer.update(now, this.cc.window, this.loss.rtt.smoothedRtt);
    if (this.qlog) {
      const r = this.loss.rtt;
      this.qlog.metricsUpdated(
        {
          cwnd: this.cc.window,
          bytesInFlight: this.cc.bytesInFlight,
          smoothedRtt: r.smoothedRtt,
          minRtt: r.minRtt,
          latestRtt: r.latestRtt,
          rttVariance: r.rttvar,
          ssthresh: this.cc.ssthresh,
          ptoCount: this.loss.ptoCount,
        },
        now,
      );
    }
    if (spaceId === APP && !this.isServer && !this.handshakeConfirmed && this.state === "established") {
      // RFC 9001 §4.1.2: an acknowledgment of a 1-RTT packet confirms the handshake too (one of
      // a 0-RTT packet, which the server sends before our Finished, does not).
      for (const p of result.newlyAcked) {
        if (p.packetNumber >= this.firstOneRttPn) {
          this.confirmHandshake();
          break;
        }
      }
    }
  }

  private onPacketAcked(p: SentPacket<Sent[]>, spaceId: SpaceId): void {
    if (this.pmtud && p.size > this.config.sendUdpPayloadSize) this.pmtud.onPacketAcked(p.size, p.timeSent);
    for (const s of p.frames) {
      switch (s.k) {
        case "pmtu_probe":
          this.onPmtuProbeAcked(s.size);
          break;
        case "ack_frequency":
          if (
            this.ackFrequencyToSend?.kind === "ack_frequency" &&
            this.ackFrequencyToSend.sequence === s.seq
          ) {
            this.loss.setMaxAckDelay(this.ackFrequencyToSend.requestedMaxAckDelay / 1000, this.now);
            this.ackFrequencyToSend = undefined;
          }
          break;
        case "crypto": {
          const cs = this.spaces[spaceId].cryptoSend;
          cs.onAcked(s.offset, s.length, false);
          // Handshake messages come in bursts and then stop: an idle connection keeps no block.
          cs.releaseStaging();
          break;
        }
        case "stream": {
          const st = this.streams.get(s.id);
          if (!st?.send) break;
          st.send.buffer.onAcked(s.offset, s.length, s.fin);
          if (st.send.resetAtCode !== undefined) this.maybeFinishResetAt(st);
          if (st.send.buffer.isFullyAcked && !st.send.done && st.send.resetCode === undefined) {
            st.send.done = true;
            st.state.send?.onAllDataAcked();
            this.events.push({ type: "stream-finished", streamId: s.id });
            this.maybeReleaseStream(st);
          }
          break;
        }
        case "reset_at": {
          const st = this.streams.get(s.id);
          if (!st?.send || st.send.resetAtPending) break; // a smaller Reliable Size is on its way
          st.send.resetAtAcked = true;
          this.maybeFinishResetAt(st);
          break;
        }
        case "reset": {
          const st = this.streams.get(s.id);
          if (!st?.send) break;
          st.state.send?.onResetAcked();
          st.send.done = true;
          this.maybeReleaseStream(st);
          break;
        }
        case "ack":
          this.spaces[spaceId].received.onAckOfAck(s.largest);
          break;
        case "new_token":
          // Only the token in flight now: a newer one (after a migration) is still to deliver.
          if (s.token === this.newToken) {
            this.newToken = undefined;
            this.newTokenPending = false;
          }
          break;
        case "retire_cid":
          this.retiringCids.delete(s.seq);
          break;
        default:
          break;
      }
    }
  }

  private onPacketLost(p: SentPacket<Sent[]>, spaceId: SpaceId): void {
    this.counters.packetsLost++;
    this.qlog?.packetLost(
      {
        type: spaceId === INITIAL ? "initial" : spaceId === HANDSHAKE ? "handshake" : "1RTT",
        pn: p.packetNumber,
        trigger: "reordering_threshold",
      },
      this.now,
    );
    this.requeueFrames(p.frames, spaceId);
  }

  /** Queues again what the frames of a lost (or discarded 0-RTT) packet carried (RFC 9000 §13.3). */
  private requeueFrames(frames: Sent[], spaceId: SpaceId): void {
    for (const s of frames) {
      switch (s.k) {
        case "crypto":
          this.spaces[spaceId].cryptoSend.onLost(s.offset, s.length, false);
          break;
        case "stream": {
          const st = this.streams.get(s.id);
          if (st?.send && st.send.resetCode === undefined) {
            st.send.buffer.onLost(s.offset, s.length, s.fin);
            this.scheduleStream(st);
          }
          break;
        }
        case "reset": {
          const st = this.streams.get(s.id);
          if (st?.send && !st.send.done) {
            st.send.resetPending = true;
            this.controlStreams.add(s.id);
          }
          break;
        }
        case "reset_at": {
          // reliable-stream-reset §4: a lost RESET_STREAM_AT MUST be sent again.
          const st = this.streams.get(s.id);
          if (st?.send && !st.send.done && st.send.resetCode === undefined && !st.send.resetAtAcked) {
            st.send.resetAtPending = true;
            this.controlStreams.add(s.id);
          }
          break;
        }
        case "ack_frequency":
          // §4: send again unless a newer ACK_FREQUENCY replaced it.
          if (this.ackFrequencyToSend?.kind === "ack_frequency" && this.ackFrequencyToSend.sequence === s.seq)
            this.ackFrequencyPending = true;
          break;
        case "stop": {
          const st = this.streams.get(s.id);
          if (st?.recv && st.recv.resetCode === undefined && !st.recv.buffer.finished) {
            st.recv.stopPending = true;
            this.controlStreams.add(s.id);
          }
          break;
        }
        case "max_data":
          this.maxDataPending = true;
          break;
        case "max_stream_data": {
          const st = this.streams.get(s.id);
          if (st?.recv && st.recv.resetCode === undefined && !st.recv.buffer.allReceived) {
            st.recv.maxStreamDataPending = true;
            this.controlStreams.add(s.id);
          }
          break;
        }
        case "max_streams":
          if (s.bidi) this.maxStreamsBidiPending = true;
          else this.maxStreamsUniPending = true;
          break;
        case "handshake_done":
          this.handshakeDonePending = true;
          break;
        case "new_token":
          // RFC 9000 §13.3: a lost NEW_TOKEN is sent again (the same token, §8.1.3) unless a newer
          // one replaced it.
          if (this.newToken && s.token === this.newToken) this.newTokenPending = true;
          break;
        case "new_cid": {
          const c = this.localCids.find((x) => x.seq === s.seq);
          if (c) c.pending = true;
          break;
        }
        case "retire_cid":
          this.retireCids.push(s.seq);
          break;
        default:
          break;
      }
    }
  }

  /** (Client) RFC 9000 §19.7: report each distinct token once (a retransmission repeats it). */
  private onNewToken(token: Uint8Array): void {
    // A token goes in the header of every Initial of a later connection (§17.2.2): one too large
    // to leave room for the ClientHello in a 1200-byte Initial is not kept (nor reported).
    if (token.length > MAX_TOKEN_LENGTH) return;
    for (const t of this.receivedTokens) if (equal(t, token)) return;
    if (this.receivedTokens.length >= 8) this.receivedTokens.shift();
    const copy = token.slice();
    this.receivedTokens.push(copy);
    this.events.push({ type: "new-token", token: copy });
  }

  private onNewConnectionId(seq: number, retirePriorTo: number, cid: Uint8Array, token: Uint8Array): void {
    // RFC 9000 §19.15: a zero-length-CID peer must not send NEW_CONNECTION_ID.
    if (this.dcid.length === 0) {
      throw new QuicError(
        TransportErrorCode.PROTOCOL_VIOLATION,
        "NEW_CONNECTION_ID with zero-length CIDs",
        FrameType.NEW_CONNECTION_ID,
      );
    }
    const existing = this.remoteCids.find((r) => r.seq === seq);
    if (existing) {
      if (!equal(existing.cid, cid)) {
        throw new QuicError(
          TransportErrorCode.PROTOCOL_VIOLATION,
          "NEW_CONNECTION_ID reuses a sequence number",
          FrameType.NEW_CONNECTION_ID,
        );
      }
      return;
    }
    if (seq < this.peerRetirePriorTo) {
      // §5.1.2: retire it right away (once: a repeated frame is not retired twice while pending).
      if (!this.retiringCids.has(seq)) this.retireRemoteCid(seq);
      this.checkRetiringCids();
      return;
    }
    this.remoteCids.push({ seq, cid: cid.slice(), resetToken: token.slice() });
    this.events.push({ type: "peer-reset-token", token: token.slice(), retired: false });
    if (retirePriorTo > this.peerRetirePriorTo) {
      this.peerRetirePriorTo = retirePriorTo;
      for (let i = this.remoteCids.length - 1; i >= 0; i--) {
        const r = this.remoteCids[i];
        if (r.seq < retirePriorTo) {
          this.retireRemoteCid(r.seq);
          this.remoteCids.splice(i, 1);
          if (r.resetToken)
            this.events.push({ type: "peer-reset-token", token: r.resetToken, retired: true });
        }
      }
      this.remoteCids.sort((a, b) => a.seq - b.seq);
      if (this.remoteCids.length > 0 && !this.remoteCids.some((r) => equal(r.cid, this.dcid)))
        this.dcid = this.remoteCids[0].cid;
      this.checkRetiringCids();
    }
    // RFC 9000 §5.1.1: more active CIDs than our limit → CONNECTION_ID_LIMIT_ERROR.
    if (this.remoteCids.length > this.config.activeConnectionIdLimit) {
      throw new QuicError(
        TransportErrorCode.CONNECTION_ID_LIMIT_ERROR,
        "too many connection IDs",
        FrameType.NEW_CONNECTION_ID,
      );
    }
  }

  /** Queues RETIRE_CONNECTION_ID for a peer connection ID; tracked until acknowledged. */
  private retireRemoteCid(seq: number): void {
    this.retireCids.push(seq);
    this.retiringCids.add(seq);
  }

  /**
   * RFC 9000 §5.1.2: an endpoint SHOULD limit the connection IDs it retired whose
   * RETIRE_CONNECTION_ID is not acknowledged yet (allowing at least twice active_connection_id_limit)
   * and MAY treat more as CONNECTION_ID_LIMIT_ERROR: a peer raising Retire Prior To faster than
   * our retirements are acknowledged cannot grow that list without bound.
   */
  private checkRetiringCids(): void {
    if (this.retiringCids.size <= RETIRE_CID_FACTOR * this.config.activeConnectionIdLimit) return;
    throw new QuicError(
      TransportErrorCode.CONNECTION_ID_LIMIT_ERROR,
      `${this.retiringCids.size} connection IDs waiting to be retired`,
      FrameType.NEW_CONNECTION_ID,
    );
  }

  private onRetireConnectionId(seq: number): void {
    // RFC 9000 §19.16: retiring a sequence number never issued → PROTOCOL_VIOLATION.
    if (seq >= this.nextLocalCidSeq) {
      throw new QuicError(
        TransportErrorCode.PROTOCOL_VIOLATION,
        "RETIRE_CONNECTION_ID for an unissued ID",
        FrameType.RETIRE_CONNECTION_ID,
      );
    }
    const i = this.localCids.findIndex((c) => c.seq === seq);
    if (i < 0) return;
    // §19.16: the sequence number MUST NOT refer to the DCID of the packet carrying the frame
    // (the peer MAY treat it as PROTOCOL_VIOLATION; we do).
    if (equal(this.localCids[i].cid, this.rxPacketDcid))
      throw new QuicError(
        TransportErrorCode.PROTOCOL_VIOLATION,
        "RETIRE_CONNECTION_ID for the connection ID it was sent to",
        FrameType.RETIRE_CONNECTION_ID,
      );
    const [c] = this.localCids.splice(i, 1);
    this.unroutingCids.push({ cid: c.cid, at: this.now + 3 * this.ptoDuration() });
    // Bounded: a peer retiring as fast as we issue cannot grow the list (the oldest goes now).
    if (this.unroutingCids.length > RETIRE_CID_FACTOR * this.config.activeConnectionIdLimit) {
      const oldest = this.unroutingCids.shift();
      if (oldest) this.events.push({ type: "connection-id", cid: oldest.cid, retired: true });
    }
    if (this.handshakeConfirmed) this.issueLocalCid(true);
  }

  /**
   * A DATAGRAM frame's payload becomes an event (RFC 9221 §5: delivery is unreliable). At most
   * `datagramQueueLength` wait unread: beyond, the oldest is dropped (the newest is the likeliest
   * to matter, as quinn does).
   */
  private onDatagram(data: Uint8Array): void {
    if (this.queuedDatagrams >= this.incomingDatagramsLimit) {
      const i = this.events.findIndex((e) => e.type === "datagram");
      if (i >= 0) {
        this.events.splice(i, 1);
        this.queuedDatagrams--;
      }
      this.counters.datagramsDropped++;
      if (this.queuedDatagrams >= this.incomingDatagramsLimit) return;
    }
    this.queuedDatagrams++;
    this.events.push({ type: "datagram", data: data.slice() });
  }

  /** The most datagrams a reader of this connection's events should keep unread (datagramQueueLength). */
  get datagramQueueLength(): number {
    return this.incomingDatagramsLimit;
  }

  // ---------------------------------------------------------------------------------------------
  // Streams

  /** A stream the peer may refer to; creates peer-initiated streams on first mention. */
  private peerStream(id: number, frameType: number): Stream | undefined {
    const local = isLocallyInitiated(id, this.isServer);
    const ids =
      (id & 2) === 0 ? (local ? this.localBidi : this.remoteBidi) : local ? this.localUni : this.remoteUni;
    const opened = ids instanceof LocalStreamIds ? ids.isOpened(id) : ids.isOpened(id);
    checkPeerStreamFrame(frameType, id, this.isServer, !local || opened);
    const existing = this.streams.get(id);
    if (existing) return existing;
    if (local) return undefined; // opened and since released
    const remote = ids as RemoteStreamIds;
    if (remote.isOpened(id)) return undefined; // released
    const before = remote.opened;
    remote.onPeerStream(id, frameType);
    // RFC 9000 §3.2: opening a stream opens every lower-numbered stream of its type.
    for (let index = before; index < remote.opened; index++) {
      const sid = (id & 3) + index * 4;
      const s = this.createStream(sid);
      this.events.push({ type: "stream-opened", streamId: sid, bidi: (sid & 2) === 0 });
      if (sid === id) return s;
    }
    return this.streams.get(id);
  }

  private createStream(id: number): Stream {
    const s = new Stream(
      id,
      this.isServer,
      this.peerSendLimit(id),
      this.config.streamReceiveWindow,
      this.config.maxStreamReceiveWindow,
    );
    this.streams.set(id, s);
    if (s.send) this.scheduler.add(id, s.urgency, s.incremental);
    return s;
  }

  private onStreamFrame(id: number, offset: number, data: Uint8Array, fin: boolean): void {
    const s = this.peerStream(id, FrameType.STREAM);
    if (!s?.recv) return;
    const end = offset + data.length;
    if (!s.state.onRecvStream(offset, data.length, fin)) return;
    // RFC 9000 §4.1: flow control, per stream and for the connection.
    const newBytes = s.recv.flow.onReceivedOffset(end, FrameType.STREAM);
    this.recvFlow.onReceivedBytes(newBytes, FrameType.STREAM);
    if (s.recv.resetCode !== undefined || s.recv.stopCode !== undefined) {
      // Data after STOP_SENDING/reset is dropped, but its bytes count as consumed.
      if (newBytes > 0) {
        s.recv.flow.onConsumed(newBytes, this.now);
        this.recvFlow.onConsumed(newBytes, this.now);
      }
      return;
    }
    const before = s.recv.buffer.readable;
    // RFC 9000 §21.7 (stream fragmentation): a small piece is copied rather than kept as a view,
    // so that it does not pin the whole datagram it came in while it waits to be read.
    const piece = data.length * 2 < data.buffer.byteLength ? data.slice() : data;
    s.recv.buffer.insert(offset, piece, fin, FrameType.STREAM);
    const buffer = s.recv.buffer;
    if (
      buffer.pieceCount > FRAGMENTED_STREAM_PIECES &&
      buffer.bufferedBytes < buffer.pieceCount * MIN_STREAM_PIECE_BYTES
    )
      this.checkStreamFragments(buffer.pieceCount);
    if (s.recv.buffer.readable > before || (s.recv.buffer.finished && s.recv.buffer.readable === 0)) {
      // One pending "readable" event per stream is enough (not one per packet).
      if (!this.readablePending.has(id)) {
        this.readablePending.add(id);
        this.events.push({ type: "stream-readable", streamId: id });
      }
    }
    if (s.recv.buffer.allReceived) s.state.recv?.onAllDataReceived();
  }

  /**
   * RFC 9000 §21.7: QUIC deployments SHOULD mitigate stream fragmentation, e.g. by "limiting the
   * size of tracking data structures". Called for a fragmented stream (see
   * FRAGMENTED_STREAM_PIECES): many tiny fragments within flow control close the connection
   * (INTERNAL_ERROR: no code is defined; quic-go closes the same way) instead of growing the
   * reassembly structures. O(streams), only in that state.
   */
  private checkStreamFragments(pieces: number): void {
    let total = pieces;
    if (pieces <= MAX_STREAM_PIECES) {
      total = 0;
      let bytes = 0;
      for (const st of this.streams.values()) {
        if (!st.recv) continue;
        total += st.recv.buffer.pieceCount;
        bytes += st.recv.buffer.bufferedBytes;
      }
      if (total <= MAX_CONNECTION_PIECES || bytes >= total * MIN_STREAM_PIECE_BYTES) return;
    }
    throw new QuicError(
      TransportErrorCode.INTERNAL_ERROR,
      `too many small fragments in stream data (${total} pieces)`,
      FrameType.STREAM,
    );
  }

  private scheduleStream(s: Stream): void {
    if (s.send && !this.scheduler.isActive(s.id)) this.scheduler.setActive(s.id, true);
  }

  private wakeBlockedStreams(): void {
    for (const s of this.streams.values()) {
      if (s.send?.buffer.hasDataToSend(s.send.flow.limit)) this.scheduleStream(s);
    }
  }

  private maybeReleaseStream(s: Stream): void {
    if (!s.state.isClosed) return;
    const recvDone =
      !s.recv ||
      s.recv.buffer.discarded ||
      s.state.recv?.state === "data_read" ||
      s.state.recv?.state === "reset_read";
    if (!recvDone) return;
    this.streams.delete(s.id);
    this.scheduler.remove(s.id);
    this.controlStreams.delete(s.id);
    if (!isLocallyInitiated(s.id, this.isServer)) {
      const remote = (s.id & 2) === 0 ? this.remoteBidi : this.remoteUni;
      remote.onStreamClosed();
      if (remote.takeMaxStreamsUpdate() >= 0) {
        if ((s.id & 2) === 0) this.maxStreamsBidiPending = true;
        else this.maxStreamsUniPending = true;
      }
    }
  }

  /** Opens a stream; returns its ID, or undefined when the peer's stream limit is reached. */
  openStream(bidi = true): number | undefined {
    this.checkOpen();
    const ids = bidi ? this.localBidi : this.localUni;
    if (!ids.canOpen() || ids.opened >= this.streamLimit(bidi)) return undefined;
    const id = ids.open();
    this.createStream(id);
    return id;
  }

  /**
   * How many streams of a kind the peer may have open at once (MAX_STREAMS, RFC 9000 §4.6). Raising
   * it is announced right away; lowering it takes effect as the peer's streams close.
   */
  setMaxConcurrentStreams(bidi: boolean, count: number): void {
    const ids = bidi ? this.remoteBidi : this.remoteUni;
    ids.setWindow(count);
    if (ids.takeMaxStreamsUpdate() >= 0) {
      if (bidi) this.maxStreamsBidiPending = true;
      else this.maxStreamsUniPending = true;
    }
  }

  /** Grows the connection-level receive window (MAX_DATA credit) to at least `bytes`. */
  setReceiveWindow(bytes: number): void {
    this.recvFlow.ensureWindow(bytes);
    if (this.recvFlow.shouldSendUpdate()) this.maxDataPending = true;
  }

  /** Sets RFC 9218 priority for a stream we send on. */
  setStreamPriority(id: number, urgency: number, incremental: boolean): void {
    const s = this.streams.get(id);
    if (!s?.send) return;
    s.urgency = urgency;
    s.incremental = incremental;
    this.scheduler.setPriority(id, urgency, incremental);
  }

  private sendPart(id: number): NonNullable<Stream["send"]> {
    const s = this.streams.get(id);
    if (!s) throw new QuicUsageError(`stream ${id} is unknown or closed`);
    if (!s.send) throw new QuicUsageError(`stream ${id} is receive-only`);
    return s.send;
  }

  /** Queues data (and optionally FIN) on a stream. The data is copied. */
  write(id: number, data: Uint8Array, fin = false): void {
    this.checkOpen();
    const send = this.sendPart(id);
    if (send.resetCode !== undefined || send.resetAtCode !== undefined)
      throw new QuicUsageError(`stream ${id} was reset`);
    if (send.buffer.finished) throw new QuicUsageError(`stream ${id} is already finished`);
    if (data.length > 0) send.buffer.write(data, true);
    if (fin) send.buffer.finish();
    this.scheduleStream(this.streams.get(id)!);
  }

  /** Finishes a stream (FIN after what was written). */
  finish(id: number): void {
    this.write(id, EMPTY, true);
  }

  /** Bytes written but not yet acknowledged: the backpressure signal for writers. */
  bufferedAmount(id: number): number {
    return this.streams.get(id)?.send?.buffer.bufferedBytes ?? 0;
  }

  /** Abruptly ends our sending part with RESET_STREAM (RFC 9000 §19.4). */
  resetStream(id: number, errorCode: bigint): void {
    const s = this.streams.get(id);
    if (!s?.send || s.send.resetCode !== undefined || s.send.done) return;
    s.send.resetCode = errorCode;
    s.send.resetPending = true;
    s.send.buffer.reset();
    this.scheduler.setActive(id, false);
    this.controlStreams.add(id);
  }

  /**
   * Reads up to `maxBytes` contiguous bytes. Returns null when nothing is readable now; `fin` is
   * true once the whole stream was read.
   */
  read(id: number, maxBytes = Number.POSITIVE_INFINITY): { data: Uint8Array; fin: boolean } | null {
    const s = this.streams.get(id);
    if (!s) return null;
    if (!s.recv) throw new QuicUsageError(`stream ${id} is send-only`);
    const resetAt = s.recv.resetAt;
    // reliable-stream-reset §1: the bytes below the Reliable Size are delivered, then the reset.
    if (resetAt && s.recv.resetCode === undefined)
      maxBytes = Math.min(maxBytes, resetAt.reliableSize - s.recv.buffer.readOffset);
    const data = maxBytes > 0 ? s.recv.buffer.read(maxBytes) : null;
    if (data && data.length > 0) {
      s.recv.flow.onConsumed(data.length, this.now);
      this.recvFlow.onConsumed(data.length, this.now);
      if (s.recv.flow.shouldSendUpdate() && !s.recv.buffer.allReceived) {
        s.recv.maxStreamDataPending = true;
        this.controlStreams.add(id);
      }
      if (this.recvFlow.shouldSendUpdate()) this.maxDataPending = true;
    }
    if (resetAt) this.maybeApplyPeerResetAt(s, this.now);
    const fin = s.recv.buffer.finished && s.recv.buffer.readable === 0 && s.recv.resetCode === undefined;
    if (fin && s.state.recv?.state === "data_recvd") {
      s.state.recv.onAllDataRead();
      this.maybeReleaseStream(s);
    }
    if (!data && !fin) return null;
    return { data: data ?? EMPTY, fin };
  }

  /** Whether the stream is still tracked (not yet fully closed and released). */
  hasStream(id: number): boolean {
    return this.streams.has(id);
  }

  /** The peer's RESET_STREAM code, when it reset the stream. */
  streamResetCode(id: number): bigint | undefined {
    return this.streams.get(id)?.recv?.resetCode;
  }

  /** Asks the peer to stop sending (STOP_SENDING, RFC 9000 §19.5); unread data is discarded. */
  stopSending(id: number, errorCode: bigint): void {
    const s = this.streams.get(id);
    if (!s?.recv || s.recv.stopCode !== undefined || s.recv.resetCode !== undefined) return;
    s.recv.stopCode = errorCode;
    if (s.recv.buffer.allReceived) return;
    s.recv.stopPending = true;
    const dropped = s.recv.buffer.discard();
    if (dropped > 0) {
      s.recv.flow.onConsumed(dropped, this.now);
      this.recvFlow.onConsumed(dropped, this.now);
    }
    this.controlStreams.add(id);
  }

  /** Queues an unreliable datagram (RFC 9221). Throws if the peer does not accept datagrams or it is too large. */
  sendDatagram(data: Uint8Array): void {
    this.checkOpen();
    const max = this.maxDatagramSize;
    if (max === 0) throw new QuicUsageError("the peer does not accept datagrams");
    if (data.length > max)
      throw new QuicUsageError(`datagram of ${data.length} bytes exceeds the maximum of ${max}`);
    if (this.outgoingDatagrams.length >= this.config.datagramQueueLength) {
      this.outgoingDatagrams.shift(); // drop the oldest, as quinn does
      this.counters.datagramsDropped++;
    }
    this.outgoingDatagrams.push(data.slice());
  }

  private checkOpen(): void {
    if (this.state === "closing" || this.state === "draining" || this.state === "closed") {
      throw new QuicUsageError("connection is closed");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Paths and migration (RFC 9000 §8.2, §9)

  /** The peer's address non-probing packets go to (undefined until the driver reports one). */
  get remoteAddress(): PathAddress | undefined {
    return this.activePath.remote;
  }

  /** Where the datagram pollTransmit() returned last must go (undefined: the only path there is). */
  get transmitAddress(): PathAddress | undefined {
    return this.transmitPath.remote;
  }

  /**
   * Path facts: migrations (ours, the peer's, reverts), successful and failed validations,
   * congestion resets (RFC 9000 §9.4), and the active path's state and anti-amplification counters.
   */
  pathStats(): {
    migrations: number;
    validations: number;
    failures: number;
    congestionResets: number;
    remote: PathAddress | undefined;
    validated: boolean;
    validating: boolean;
    bytesSent: number;
    bytesReceived: number;
    /** Other paths being probed (bounded). */
    probing: number;
  } {
    const p = this.activePath;
    return {
      ...this.pathCounters,
      probing: this.probePaths.length,
      remote: p.remote,
      validated: p.validated,
      validating: p.isValidating,
      bytesSent: p.bytesSent,
      bytesReceived: p.bytesReceived,
    };
  }

  /** The path to `from` we know of, if any. */
  private knownPath(from: PathAddress): NetworkPath | undefined {
    if (samePathAddress(this.activePath.remote, from)) return this.activePath;
    if (this.previousPath && samePathAddress(this.previousPath.remote, from)) return this.previousPath;
    for (const p of this.probePaths) if (samePathAddress(p.remote, from)) return p;
    return undefined;
  }

  /** Path decisions for an authenticated datagram from `from` (its frames were all processed). */
  private onDatagramPath(length: number, now: number, from: PathAddress | undefined): void {
    let path: NetworkPath | undefined;
    if (!from) path = this.activePath;
    else if (!this.activePath.remote) {
      this.activePath.remote = from;
      path = this.activePath;
      this.pathTrace?.assigned(path, this.dcid, now);
    } else path = this.knownPath(from) ?? this.newPeerPath(from, now);
    if (!path) return;
    path.bytesReceived += length;
    // RFC 9000 §8.2.2: the PATH_RESPONSE goes on the path the PATH_CHALLENGE came from.
    for (const d of this.rxChallenges) path.queueResponse(d);
    // §9.3.3: a PATH_CHALLENGE on the active path SHOULD get a non-probing packet too, which moves
    // the peer back here if an attacker's forwarded copies lured it away.
    if (this.rxChallenges.length > 0 && path === this.activePath && this.isEstablished)
      this.pingPending = true;
    // §8.2.3: a PATH_RESPONSE on any path validates the path its challenge was sent on.
    for (const d of this.rxResponses) this.onPathResponse(d, now);
    // §9.3: a non-probing packet with the highest packet number from a new address: the peer
    // moved there. (A client never follows the server: §9, servers do not migrate.)
    if (this.isServer && path !== this.activePath && this.rxNonProbingLargest && this.isEstablished)
      this.onPeerMigrated(path, now);
  }

  /** (Server) A path to a new client address, validated right away (RFC 9000 §9.3, §9.6.3). */
  private newPeerPath(from: PathAddress, now: number): NetworkPath | undefined {
    // §9: no migration before the handshake is confirmed (such packets are read, nothing moves).
    if (!this.isServer || !this.handshakeConfirmed) return undefined;
    const path = new NetworkPath(from, false);
    // §9.5: when the peer moved to a new connection ID, we answer the new address with a new one.
    if (this.rxPeerDcidChanged) {
      const r = this.takeUnusedRemoteCid();
      if (r) {
        path.dcid = r.cid;
        path.dcidSeq = r.seq;
      }
    }
    this.addProbePath(path, now);
    path.startValidation(now, this.ptoDuration(), this.pathValidationTimeout());
    if (this.pathTrace) {
      this.pathTrace.assigned(path, path.dcid ?? this.dcid, now);
      this.pathTrace.migration("probing_started", path, now);
    }
    return path;
  }

  /** Keeps `path` among the probed ones, forgetting the oldest beyond MAX_PROBE_PATHS. */
  private addProbePath(path: NetworkPath, now: number): void {
    if (this.probePaths.length >= MAX_PROBE_PATHS) {
      const dropped = this.probePaths.shift();
      if (dropped) this.pathTrace?.abandoned(dropped, now);
    }
    this.probePaths.push(path);
  }

  /** (Server) RFC 9000 §9.3: the client moved to `path`; send there, validate it, keep the old one. */
  private onPeerMigrated(path: NetworkPath, now: number): void {
    const old = this.activePath;
    const previousBefore = this.previousPath;
    const i = this.probePaths.indexOf(path);
    if (i >= 0) this.probePaths.splice(i, 1);
    const returning = path === this.previousPath;
    if (old.validated) this.previousPath = old;
    else {
      old.abandonValidation();
      if (returning) this.previousPath = undefined;
    }
    this.activePath = path;
    if (path.dcid) {
      this.switchRemoteCid(path.dcid, path.dcidSeq);
      path.dcid = undefined;
    }
    // §9.4: congestion state and RTT restart for a new address, once it is validated; a port-only
    // change (likely NAT rebinding) or a return to the previous path keeps them.
    const reset = !returning && !onlyPortChanged(old.remote, path.remote);
    if (path.validated) {
      if (reset) this.resetCongestion(now);
      this.issueNewToken(now); // §8.1.3: back on a validated address the token may not cover
    } else {
      path.resetCongestionOnValidation = reset;
      if (!path.isValidating) path.startValidation(now, this.ptoDuration(), this.pathValidationTimeout());
      // §9.3.3: validate the previously active path too: that elicits packets on it, which move
      // the connection back if the migration was spurious (an attacker forwarding packets).
      const prev = this.previousPath;
      if (prev === old && !prev.isValidating)
        prev.startValidation(now, this.ptoDuration(), this.pathValidationTimeout(), true);
    }
    this.pathCounters.migrations++;
    this.events.push({ type: "path-migrated", remote: path.remote, reason: "peer" });
    if (this.pathTrace) {
      // Paths no longer kept: the old one when not validated, the one before it when replaced.
      if (old !== this.previousPath) this.pathTrace.abandoned(old, now);
      if (previousBefore && previousBefore !== path && previousBefore !== this.previousPath)
        this.pathTrace.abandoned(previousBefore, now);
      this.pathTrace.migration("migration_started", path, now);
      if (path.validated) this.pathTrace.migration("migration_complete", path, now);
    }
  }

  private onPathResponse(data: Uint8Array, now: number): void {
    // Active, previous, then probe paths; walked in place (no array built per PATH_RESPONSE).
    if (this.tryPathResponse(this.activePath, data, now)) return;
    if (this.previousPath && this.tryPathResponse(this.previousPath, data, now)) return;
    for (const path of this.probePaths) if (this.tryPathResponse(path, data, now)) return;
  }

  /** True when `path` sent the challenge `data` answers (validating it if that completes it). */
  private tryPathResponse(path: NetworkPath, data: Uint8Array, now: number): boolean {
    const r = path.onResponse(data);
    if (!r) return false;
    if (r === "validated") this.onPathValidated(path, now);
    return true;
  }

  private onPathValidated(path: NetworkPath, now: number): void {
    this.pathCounters.validations++;
    this.events.push({ type: "path-validated", remote: path.remote });
    this.pathTrace?.migration(
      path === this.activePath ? "migration_complete" : "probing_successful",
      path,
      now,
    );
    // RFC 9000 §8.2.1: a challenge that could not be padded to 1200 bytes did not test the path
    // MTU: MUST validate again with a full-size one (the limit is gone now).
    if (path.needsFullSizeChallenge) {
      path.needsFullSizeChallenge = false;
      path.startValidation(now, this.ptoDuration(), this.pathValidationTimeout(), true);
    }
    if (path === this.activePath) {
      // RFC 9000 §9.4: on confirming the peer's new address, reset congestion control and RTT.
      if (path.resetCongestionOnValidation) {
        path.resetCongestionOnValidation = false;
        this.resetCongestion(now);
      }
      // §8.1.3: tokens are bound to the client's address: one for the address it moved to.
      if (this.isServer) this.issueNewToken(now);
      return;
    }
    // (Client) The server's preferred address answered: move there (§9.6.1).
    if (!this.isServer && path.dcid) this.moveToPreferredAddress(path, now);
  }

  /**
   * (Server) A NEW_TOKEN token for the client's validated address (RFC 9000 §8.1.3): after the
   * handshake, and again once a migration to another IP address is validated — the client's next
   * connection will likely come from there, and a token only validates the IP it was issued for.
   * A port-only change (NAT rebinding) keeps the token valid: none is issued for it.
   */
  private issueNewToken(now: number): void {
    const remote = this.activePath.remote;
    if (this.newTokenIssued && remote?.address === this.newTokenAddress) return;
    const token = (this.common as ServerConnectionConfig).newToken?.(now, remote);
    if (!token || token.length === 0) return;
    this.newToken = token;
    this.newTokenPending = true;
    this.newTokenIssued = true;
    this.newTokenAddress = remote?.address;
  }

  /** Abandoned validations (RFC 9000 §8.2.4) and PATH_CHALLENGE resends. */
  private onPathTimers(now: number): void {
    const active = this.activePath;
    if (active.onTimeout(now) === "failed") this.onActivePathFailed(active, now);
    const prev = this.previousPath;
    if (prev && prev.onTimeout(now) === "failed") {
      this.previousPath = undefined;
      this.pathTrace?.abandoned(prev, now);
    }
    for (let i = this.probePaths.length - 1; i >= 0; i--) {
      const p = this.probePaths[i];
      if (p.onTimeout(now) === "failed") {
        this.probePaths.splice(i, 1);
        this.pathCounters.failures++;
        this.events.push({ type: "path-validation-failed", remote: p.remote });
        if (this.pathTrace) {
          this.pathTrace.migration("probing_abandoned", p, now);
          this.pathTrace.abandoned(p, now);
        }
      }
    }
  }

  private pathTimeout(): number {
    let t = this.activePath.nextTimeout();
    if (this.previousPath) t = Math.min(t, this.previousPath.nextTimeout());
    for (const p of this.probePaths) t = Math.min(t, p.nextTimeout());
    return t;
  }

  private onActivePathFailed(path: NetworkPath, now: number): void {
    this.pathCounters.failures++;
    this.events.push({ type: "path-validation-failed", remote: path.remote });
    this.pathTrace?.migration("migration_abandoned", path, now);
    // (Client) Our own new address did not get through: keep sending from it (there is no other
    // socket); the idle timeout ends a connection that lost its path.
    if (!this.isServer) return;
    const back = this.previousPath;
    if (back) {
      // RFC 9000 §9.3.2: MUST revert to the last validated peer address.
      this.previousPath = undefined;
      back.abandonValidation();
      this.activePath = back;
      this.pathCounters.migrations++;
      this.events.push({ type: "path-migrated", remote: back.remote, reason: "revert" });
      this.pathTrace?.abandoned(path, now);
      return;
    }
    // §9.3.2: no validated address left: close silently, discarding all state.
    this.closeReason = {
      kind: "transport",
      code: TransportErrorCode.NO_VIABLE_PATH,
      frameType: 0,
      reason: "path validation failed",
      remote: false,
    };
    this.finishClose();
  }

  /** RFC 9000 §8.2.4: three times the larger of the current PTO and one with kInitialRtt. */
  private pathValidationTimeout(): number {
    const initialPto = 3 * this.config.initialRtt + this.loss.maxAckDelay;
    return 3 * Math.max(this.ptoDuration(), initialPto);
  }

  /** RFC 9000 §9.4: congestion controller and RTT estimator back to their initial values. */
  private resetCongestion(now: number): void {
    this.pathCounters.congestionResets++;
    const inFlight = this.cc.bytesInFlight;
    const size = this.cc.maxDatagramSize;
    this.cc =
      this.config.congestionControl === "newreno" ? new NewRenoController(size) : new CubicController(size);
    // Packets still in flight on the old path leave flight through the new controller.
    if (inFlight > 0) this.cc.onPacketSent(inFlight, now);
    this.loss.rtt.reset();
    this.pacer.update(now, this.cc.window, this.loss.rtt.smoothedRtt);
    // RFC 9000 §14.3: the maximum datagram size belongs to a pair of addresses: search again.
    if (this.pmtud) this.startPmtuDiscovery();
  }

  /** A peer connection ID never sent with (RFC 9000 §9.5), now marked used. */
  private takeUnusedRemoteCid(): RemoteCid | undefined {
    for (const r of this.remoteCids) {
      if (this.usedRemoteCids.has(r.seq) || equal(r.cid, this.dcid)) continue;
      this.usedRemoteCids.add(r.seq);
      return r;
    }
    return undefined;
  }

  /** Sends with `cid` from now on and retires the one used so far (RFC 9000 §5.1.2). */
  private switchRemoteCid(cid: Uint8Array, seq: number): void {
    const i = this.remoteCids.findIndex((r) => equal(r.cid, this.dcid));
    this.dcid = cid;
    this.usedRemoteCids.add(seq);
    if (i >= 0 && this.remoteCids[i].seq !== seq) {
      const [old] = this.remoteCids.splice(i, 1);
      this.retireRemoteCid(old.seq);
      if (old.resetToken)
        this.events.push({ type: "peer-reset-token", token: old.resetToken, retired: true });
    }
  }

  /**
   * (Client) Why active migration is impossible now (RFC 9000 §9), or undefined when it is
   * possible.
   */
  migrationBlocker(): string | undefined {
    if (this.isServer) return "only a client migrates (RFC 9000 §9)";
    if (this.state !== "established") return "the connection is not established";
    if (!this.handshakeConfirmed) return "the handshake is not confirmed yet (RFC 9000 §9)";
    if (this.peerParams?.disableActiveMigration)
      return "the server sent disable_active_migration (RFC 9000 §18.2)";
    if (this.dcid.length === 0) return "the server uses zero-length connection IDs (RFC 9000 §9.5)";
    if (!this.remoteCids.some((r) => !this.usedRemoteCids.has(r.seq) && !equal(r.cid, this.dcid)))
      return "the server has not given a spare connection ID (RFC 9000 §9.5)";
    return undefined;
  }

  /**
   * (Client) Our local address changed — the endpoint now sends from a new socket (RFC 9000 §9.2).
   * The connection switches to an unused connection ID of the server (§9.5), resets congestion
   * control and RTT (§9.4; not for `portOnly`), validates the new path with PATH_CHALLENGE (§8.2)
   * and sends a non-probing packet at once, so that the server follows. Throws QuicUsageError
   * when migration is not possible (see {@link migrationBlocker}).
   */
  migrate(now: number, options: { readonly portOnly?: boolean } = {}): void {
    this.now = now;
    const blocker = this.migrationBlocker();
    if (blocker) throw new QuicUsageError(`cannot migrate: ${blocker}`);
    const fresh = this.takeUnusedRemoteCid()!;
    this.switchRemoteCid(fresh.cid, fresh.seq);
    const old = this.activePath;
    old.abandonValidation();
    // We chose the server's address: no anti-amplification limit on our side.
    const path = new NetworkPath(old.remote, true);
    this.activePath = path;
    if (this.pathTrace) {
      // Our address changed: a new tuple; the old ones are not used again.
      this.pathTrace.abandoned(old, now);
      if (this.previousPath) this.pathTrace.abandoned(this.previousPath, now);
      this.pathTrace.assigned(path, this.dcid, now);
      this.pathTrace.migration("migration_started", path, now);
    }
    this.previousPath = undefined;
    if (!options.portOnly) this.resetCongestion(now);
    path.startValidation(now, this.ptoDuration(), this.pathValidationTimeout());
    // §9.2: migrating is sending non-probing packets from the new address.
    this.pingPending = true;
    this.pathCounters.migrations++;
    this.events.push({ type: "path-migrated", remote: path.remote, reason: "local" });
  }

  /** (Client) Probe the server's preferred address once the handshake is confirmed (RFC 9000 §9.6.1). */
  private probePreferredAddress(now: number): void {
    const pa = this.peerParams?.preferredAddress;
    const current = this.activePath.remote;
    if (!pa || !current || (this.common as ClientConnectionConfig).migrateToPreferredAddress === false)
      return;
    const remote = preferredPathAddress(pa, current);
    if (!remote || samePathAddress(remote, current)) return;
    // §9.6.1: any unused connection ID; the preferred_address one (sequence 1) is there for that.
    let cid = this.remoteCids.find(
      (r) => r.seq === 1 && !this.usedRemoteCids.has(1) && !equal(r.cid, this.dcid),
    );
    if (cid) this.usedRemoteCids.add(1);
    else cid = this.takeUnusedRemoteCid();
    if (!cid) return;
    // §9.6.2: validate the address before migrating. We chose it: no anti-amplification limit.
    const path = new NetworkPath(remote, true);
    path.dcid = cid.cid;
    path.dcidSeq = cid.seq;
    this.addProbePath(path, now);
    path.startValidation(now, this.ptoDuration(), this.pathValidationTimeout());
    if (this.pathTrace) {
      this.pathTrace.assigned(path, cid.cid, now);
      this.pathTrace.migration("probing_started", path, now);
    }
  }

  /** (Client) The preferred address is validated: all packets go there now (RFC 9000 §9.6.1). */
  private moveToPreferredAddress(path: NetworkPath, now: number): void {
    const i = this.probePaths.indexOf(path);
    if (i >= 0) this.probePaths.splice(i, 1);
    const old = this.activePath;
    old.abandonValidation();
    this.activePath = path;
    // Kept (never probed) so that packets still in flight from the old address are accepted.
    this.previousPath = old;
    if (path.dcid) {
      this.switchRemoteCid(path.dcid, path.dcidSeq);
      path.dcid = undefined;
    }
    // §9.4: a new server address: congestion control and RTT start over.
    this.resetCongestion(now);
    // A non-probing packet, so that the server moves its sending there too (§9.6.2).
    this.pingPending = true;
    this.pathCounters.migrations++;
    this.events.push({ type: "path-migrated", remote: path.remote, reason: "preferred-address" });
    if (this.pathTrace) {
      // Validated already (§9.6.1): the move is complete at once.
      this.pathTrace.migration("migration_started", path, now);
      this.pathTrace.migration("migration_complete", path, now);
    }
  }

  /**
   * A datagram of path frames for a path that has some to send (RFC 9000 §8.2): PATH_CHALLENGE
   * and PATH_RESPONSE, padded to 1200 bytes within the path's anti-amplification limit (§8.2.1,
   * §8.2.2). Sent outside congestion control, like PTO probes, and not counted in flight (§9.4).
   */
  private buildPathProbe(now: number): Uint8Array | null {
    if (!this.spaces[APP].hasKeys || this.state !== "established") return null;
    // Hot path (every pollTransmit): no allocation; index 0 is the active path, 1 the previous
    // one, then the probed ones.
    const count = 2 + this.probePaths.length;
    for (let i = 0; i < count; i++) {
      const path = i === 0 ? this.activePath : i === 1 ? this.previousPath : this.probePaths[i - 2];
      if (!path?.hasProbeToSend || (path.remote === undefined && path !== this.activePath)) continue;
      const budget = path === this.activePath ? this.amplificationBudget() : path.amplificationBudget();
      const limit = Math.min(MIN_INITIAL_DATAGRAM, this.maxDatagram, budget);
      if (limit < 48) continue;
      if (this.scratch.length < this.maxDatagram) this.scratch = new Uint8Array(this.maxDatagram);
      const buf = this.scratch;
      const savedDcid = this.dcid;
      if (path.dcid) this.dcid = path.dcid;
      this.probingPath = path;
      const challenging = path.challengePending;
      let packet: PacketInProgress | undefined;
      try {
        packet = this.buildPacket(buf, 0, APP, limit, Number.POSITIVE_INFINITY, now, false);
      } finally {
        this.dcid = savedDcid;
        this.probingPath = undefined;
      }
      if (!packet) continue;
      const pad = limit - (packet.payloadEnd + TAG);
      if (pad > 0) {
        buf.fill(0, packet.payloadEnd, packet.payloadEnd + pad);
        packet.payloadEnd += pad;
      }
      packet.probe = true;
      this.sealPacket(buf, packet, now);
      const size = packet.payloadEnd + TAG;
      if (challenging && !path.challengePending && size < MIN_INITIAL_DATAGRAM)
        path.needsFullSizeChallenge = true;
      path.bytesSent += size;
      if (path === this.activePath) this.bytesSent += size;
      this.counters.bytesSent += size;
      this.transmitPath = path;
      return buf.slice(0, size);
    }
    return null;
  }

  /** The path frames of a probing packet (see buildPathProbe). */
  private addPathFrames(path: NetworkPath, frames: Frame[], room: number, now: number): number {
    const size = 1 + PATH_DATA_LENGTH;
    // §8.2.1: one PATH_CHALLENGE per packet, 8 unpredictable bytes.
    if (path.challengePending && room >= size) {
      const data = this.provider.randomBytes(PATH_DATA_LENGTH);
      frames.push({ kind: "path_challenge", data });
      path.onChallengeSent(data, now);
      room -= size;
    }
    while (path.responses.length > 0 && room >= size) {
      frames.push({ kind: "path_response", data: path.responses.shift()! });
      room -= size;
    }
    return room;
  }

  // ---------------------------------------------------------------------------------------------
  // Closing (RFC 9000 §10)

  /** Closes the connection with an application error code (CONNECTION_CLOSE 0x1d). */
  close(errorCode: bigint = 0n, reason = ""): void {
    if (this.state === "closing" || this.state === "draining" || this.state === "closed") return;
    this.startClosing({ kind: "application", code: errorCode, reason, remote: false });
  }

  private onLocalError(err: unknown): void {
    if (this.state === "closing" || this.state === "draining" || this.state === "closed") return;
    let q: QuicError;
    if (err instanceof QuicError) q = err;
    else {
      q = new TlsError(AlertDescription.internal_error, "internal error");
      q = new QuicError(
        TransportErrorCode.INTERNAL_ERROR,
        `internal error: ${(err as Error)?.message ?? String(err)}`,
      );
    }
    this.startClosing({
      kind: "transport",
      code: q.code,
      frameType: q.frameType,
      reason: q.reason,
      remote: false,
    });
  }

  private startClosing(reason: ConnectionCloseReason): void {
    this.closeReason = reason;
    const bytes = new TextEncoder().encode("reason" in reason ? reason.reason.slice(0, 200) : "");
    if (reason.kind === "application") {
      this.closeFrame = {
        kind: "connection_close",
        application: true,
        errorCode: reason.code,
        frameType: 0,
        reason: bytes,
      };
    } else if (reason.kind === "transport") {
      this.closeFrame = {
        kind: "connection_close",
        application: false,
        errorCode: BigInt(reason.code),
        frameType: reason.frameType,
        reason: bytes,
      };
    }
    if (!this.closeFrame || (!this.receivedFromPeer && !this.isServer && this.spaces[INITIAL].nextPn === 0)) {
      this.finishClose();
      return;
    }
    this.state = "closing";
    this.closeFramePending = true;
    // RFC 9000 §10.2: the closing state lasts three times the current PTO.
    this.closeDeadline = this.now + 3 * this.ptoDuration();
  }

  private enterDraining(reason: ConnectionCloseReason, timed: boolean): void {
    if (!this.closeReason) this.closeReason = reason;
    if (!timed) {
      this.finishClose();
      return;
    }
    this.state = "draining";
    this.closeDeadline = this.now + 3 * this.ptoDuration();
  }

  /**
   * Ends the closing or draining state now instead of after three PTOs. RFC 9000 §10.2: an
   * endpoint "able to close the UDP socket", so that late packets cannot induce a response, MAY
   * end these states early. For a driver that closes its own socket; no-op in other states.
   */
  discardClosingState(): void {
    if (this.state === "closing" || this.state === "draining") this.finishClose();
  }

  private finishClose(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    if (this.qlog) {
      const r = this.closeReason;
      this.qlog.connectionClosed(
        r?.kind === "application"
          ? { owner: r.remote ? "remote" : "local", applicationCode: r.code, reason: r.reason }
          : r?.kind === "transport"
            ? { owner: r.remote ? "remote" : "local", connectionCode: r.code, reason: r.reason }
            : {
                owner: "local",
                trigger:
                  r?.kind === "stateless-reset"
                    ? "stateless_reset"
                    : r?.kind === "version-mismatch"
                      ? "version_mismatch"
                      : "idle_timeout",
              },
        this.now,
      );
      this.qlog.connectionStateUpdated("closed", this.now);
      void this.qlog.close();
    }
    this.events.push({ type: "closed", reason: this.closeReason ?? { kind: "idle-timeout" } });
  }

  private ptoDuration(): number {
    const r = this.loss.rtt;
    return r.smoothedRtt + Math.max(4 * r.rttvar, 1) + (this.handshakeConfirmed ? this.loss.maxAckDelay : 0);
  }

  private resetIdleTimer(now: number): void {
    this.lastActivity = now;
    this.ackElicitingSentSinceReceipt = false;
    if (this.idleTimeout > 0) {
      // RFC 9000 §10.1: at least three PTOs, so a few probes can go out before giving up.
      this.idleDeadline = now + Math.max(this.idleTimeout, 3 * this.ptoDuration());
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Timers

  /** The earliest time handleTimeout must be called, or undefined when no timer is armed. */
  nextTimeout(): number | undefined {
    if (this.state === "closed") return undefined;
    if (this.state === "closing" || this.state === "draining") return this.closeDeadline;
    let t = Math.min(
      this.idleDeadline,
      this.appKeys?.discardDeadline ?? Number.POSITIVE_INFINITY,
      this.pacingDeadline,
      this.zeroRttDiscardAt,
      this.pathTimeout(),
    );
    for (const u of this.unroutingCids) if (u.at < t) t = u.at;
    // RFC 9000 §8.1, §9.3: at the anti-amplification limit nothing can be sent (the peer's next
    // datagram unblocks it, not a timer): ACK and loss timers wait, or they would fire in a loop.
    const ampBlocked = this.amplificationBudget() < MIN_AMPLIFICATION_ROOM;
    const lossTimer = ampBlocked ? undefined : this.loss.getLossDetectionTimer();
    if (lossTimer !== undefined && lossTimer < t) t = lossTimer;
    for (const space of this.spaces) {
      if (!space.hasKeys || ampBlocked) continue;
      const d = space.received.ackDeadline();
      if (d < t) t = d;
    }
    if (this.config.keepAliveInterval > 0 && this.state === "established") {
      t = Math.min(t, this.lastActivity + this.config.keepAliveInterval);
    }
    return Number.isFinite(t) ? t : undefined;
  }

  handleTimeout(now: number): void {
    this.now = now;
    if (this.state === "closed") return;
    if (this.state === "closing" || this.state === "draining") {
      if (now >= this.closeDeadline) this.finishClose();
      return;
    }
    if (now >= this.idleDeadline) {
      this.closeReason = { kind: "idle-timeout" };
      this.finishClose();
      return;
    }
    if (now >= this.pacingDeadline) this.pacingDeadline = Number.POSITIVE_INFINITY;
    // RFC 9001 §6.5: the previous 1-RTT read keys go three PTOs into the new key phase.
    if (this.appKeys?.onTimeout(now))
      this.qlog?.keyDiscarded(
        {
          keyType: `${this.isServer ? "client" : "server"}_1rtt_secret`,
          generation: this.appKeys.generation - 1,
        },
        now,
      );
    if (now >= this.zeroRttDiscardAt) {
      this.zeroRttDiscardAt = Number.POSITIVE_INFINITY;
      this.dropZeroRttKeys();
    }
    // Retired connection IDs whose grace period is over stop routing to us.
    for (let i = this.unroutingCids.length - 1; i >= 0; i--) {
      const u = this.unroutingCids[i];
      if (now < u.at) continue;
      this.unroutingCids.splice(i, 1);
      this.events.push({ type: "connection-id", cid: u.cid, retired: true });
    }
    const lossTimer = this.loss.getLossDetectionTimer();
    if (lossTimer !== undefined && now >= lossTimer) {
      const r = this.loss.onLossDetectionTimeout(now);
      if (r.kind === "loss") {
        for (const p of r.lost) this.onPacketLost(p, r.space as SpaceId);
        const ssthresh = this.cc.ssthresh;
        const congestionLost = this.congestionLosses(r.lost, now);
        if (congestionLost.length > 0) this.cc.onPacketsLost(congestionLost, now);
        if (r.persistentCongestion && congestionLost.length > 0) this.cc.onPersistentCongestion(now);
        if (this.cc.ssthresh < ssthresh) this.counters.congestionEvents++;
      } else if (r.kind === "probe") {
        // RFC 8899 §4.3: repeated PTOs without a large packet acknowledged hint at a black hole.
        if (
          r.probe.space === APP &&
          this.pmtud &&
          !this.pmtud.probing &&
          this.pmtud.onProbeTimeout(this.lastLargeSent, now)
        )
          this.setPathMtu(this.pmtud.current);
        const space = this.spaces[r.probe.space as SpaceId];
        space.probes = Math.max(space.probes, r.probe.count);
        // RFC 9002 §6.2.4: probes resend data in flight when possible (queue crypto as lost).
        this.requeueForProbe(r.probe.space as SpaceId);
        // §6.2.4: the sender SHOULD also send ack-eliciting packets in the other spaces with
        // data in flight, coalesced: a server's Initial probe carries its Handshake flight too,
        // so a lost or corrupted certificate does not wait for a PTO of its own.
        for (const other of [INITIAL, HANDSHAKE]) {
          if (other === r.probe.space || !this.loss.hasAckElicitingInFlight(other as PacketNumberSpace))
            continue;
          this.spaces[other].probes = Math.max(this.spaces[other].probes, 1);
          this.requeueForProbe(other);
        }
      }
    }
    this.onPathTimers(now);
    if ((this.state as State) === "closed") return;
    if (
      this.config.keepAliveInterval > 0 &&
      this.state === "established" &&
      now >= this.lastActivity + this.config.keepAliveInterval
    ) {
      this.pingPending = true;
      this.lastActivity = now;
    }
  }

  /** On PTO, mark the oldest unacknowledged CRYPTO data for retransmission (RFC 9002 §6.2.4). */
  private requeueForProbe(spaceId: SpaceId): void {
    const space = this.spaces[spaceId];
    const send = space.cryptoSend;
    if (send.sentOffset > send.ackedOffset)
      send.onLost(send.ackedOffset, send.sentOffset - send.ackedOffset, false);
    if (spaceId !== APP) return;
    // RFC 9002 §6.2.4: a probe SHOULD carry data in flight rather than a bare PING — resend the
    // STREAM data of the two oldest outstanding packets that carry some (among the oldest 32; a
    // range acknowledged meanwhile is not sent again, see SendBuffer.onAcked). Otherwise data
    // lost under a PTO waits for the probe's ACK to be declared lost, a round trip per loss.
    const sent = this.loss.sentPackets(APP as PacketNumberSpace);
    let withData = 0;
    for (let i = sent.start, n = 0; i < sent.end && n < 32 && withData < 2; i++) {
      const p = sent.at(i);
      if (!p?.ackEliciting) continue;
      n++;
      let carried = false;
      for (const s of p.frames) {
        if (s.k !== "stream") continue;
        const st = this.streams.get(s.id);
        if (st?.send && st.send.resetCode === undefined) {
          st.send.buffer.onLost(s.offset, s.length, s.fin);
          this.scheduleStream(st);
          carried = true;
        }
      }
      if (carried) withData++;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Sending

  /**
   * The next datagram to send, or null when there is nothing to send now (call again after
   * receive/handleTimeout/write). The returned buffer is owned by the caller.
   */
  pollTransmit(now: number): Uint8Array | null {
    this.now = now;
    if (this.state === "closed" || this.state === "draining") return null;
    this.transmitPath = this.activePath;
    if (this.state === "closing") return this.buildCloseDatagram();
    try {
      const probe = this.buildPathProbe(now);
      if (probe) return probe;
      this.transmitPath = this.activePath;
      return this.buildDatagram(now);
    } catch (err) {
      this.onLocalError(err);
      return (this.state as State) === "closing" ? this.buildCloseDatagram() : null;
    }
  }

  private amplificationBudget(): number {
    // RFC 9000 §9.3: after a migration, at most 3× what came from the new address until validated.
    const path = this.activePath.amplificationBudget();
    // RFC 9000 §8.1: before validating the client's address, a server sends at most 3× what it received.
    if (!this.isServer || this.addressValidated) return path;
    return Math.min(path, 3 * this.bytesReceived - this.bytesSent);
  }

  private buildCloseDatagram(): Uint8Array | null {
    if (!this.closeFramePending || !this.closeFrame) return null;
    this.closeFramePending = false;
    const buf = new Uint8Array(this.maxDatagram);
    let pos = 0;
    // Send the close in every space we have keys for that the peer may be reading (RFC 9000 §10.2.3).
    for (const id of [INITIAL, HANDSHAKE, APP] as const) {
      const space = this.spaces[id];
      if (!space.hasKeys) continue;
      let frame = this.closeFrame;
      if (id !== APP && frame.kind === "connection_close" && frame.application) {
        // RFC 9000 §10.2.3: an application close in Initial/Handshake becomes APPLICATION_ERROR.
        frame = {
          kind: "connection_close",
          application: false,
          errorCode: BigInt(TransportErrorCode.APPLICATION_ERROR),
          frameType: 0,
          reason: EMPTY,
        };
      }
      pos = this.writeClosePacket(buf, pos, id, frame);
    }
    if (pos === 0) return null;
    if (this.spaces[INITIAL].hasKeys && !this.isServer && pos < MIN_INITIAL_DATAGRAM) {
      // Unlikely to matter: the close Initial would need padding; send as is otherwise.
    }
    this.bytesSent += pos;
    return buf.subarray(0, pos);
  }

  /** One packet carrying only `frame`, sealed; returns the end offset. Not tracked for loss. */
  private writeClosePacket(buf: Uint8Array, pos: number, id: SpaceId, frame: Frame): number {
    const space = this.spaces[id];
    const pn = space.nextPn++;
    const w = new ByteWriter(buf, pos, buf.length - TAG);
    const pnOffset =
      id === APP
        ? writeShortHeader(w, {
            dcid: this.dcid,
            packetNumber: pn,
            pnLength: 4,
            keyPhase: this.appKeys?.phase ?? 0,
          })
        : writeLongHeader(w, {
            type: id === INITIAL ? PacketType.Initial : PacketType.Handshake,
            version: this.version,
            dcid: this.dcid,
            scid: this.initialScid,
            token: id === INITIAL ? this.initialToken : undefined,
            packetNumber: pn,
            pnLength: 4,
            length: 4 + TAG, // patched below
            lengthSize: 2,
          });
    encodeFrame(frame, w);
    if (w.pos < pnOffset + 4) w.writeZeros(pnOffset + 4 - w.pos);
    if (id !== APP) {
      const length = w.pos - pnOffset + TAG;
      buf[pnOffset - 2] = 0x40 | (length >> 8);
      buf[pnOffset - 1] = length & 0xff;
    }
    return protectPacket(space.writeKeys!, buf, pos, pnOffset, w.pos, pn);
  }

  private buildDatagram(now: number): Uint8Array | null {
    this.checkKeyUsage(now);
    const amp = this.amplificationBudget();
    if (amp < MIN_AMPLIFICATION_ROOM) return null;
    const limit = Math.min(this.maxDatagram, amp);
    // Pacing: until the bucket holds a datagram's worth, only ACKs (and probes) go out.
    const pacedUntil = this.pacer.nextSendTime(now, this.maxDatagram);
    const paced = pacedUntil > now;
    this.pacingDeadline = paced ? pacedUntil : Number.POSITIVE_INFINITY;
    if (!paced && this.pmtud !== undefined) {
      const probe = this.pmtuProbeDue(now);
      if (probe > 0) return this.buildPmtuProbe(probe, now);
    }
    if (this.scratch.length < this.maxDatagram) this.scratch = new Uint8Array(this.maxDatagram);
    const buf = this.scratch;
    let pos = 0;
    let hasInitial = false;
    let ackElicitingInitial = false;
    let lastPacket: PacketInProgress | undefined;
    for (let i = 0; i < SEND_ORDER.length; i++) {
      const id = SEND_ORDER[i];
      const space = this.spaces[id];
      const zeroRtt = i === SEND_ZERO_RTT;
      if (zeroRtt) {
        // RFC 9001 §5.6: a client sends 0-RTT packets only until it has 1-RTT keys (a server
        // never does: it holds no 0-RTT write keys).
        if (!this.canSendEarlyData || space.discarded) continue;
      } else if (!space.hasKeys) continue;
      else if (id === APP && !(this.state === "established" || this.handshakeConfirmed)) {
        // The server may send 0.5-RTT data once it has 1-RTT keys; the client only after completing.
        if (
          this.isServer
            ? !this.tls.handshakeComplete && !this.spaces[APP].writeKeys
            : !this.tls.handshakeComplete
        )
          continue;
      }
      const room = limit - pos;
      if (room < 40) break;
      const congestionRoom =
        space.probes > 0 ? Number.POSITIVE_INFINITY : paced ? 0 : this.cc.window - this.cc.bytesInFlight;
      const packet = this.buildPacket(buf, pos, id, limit, congestionRoom, now, zeroRtt);
      if (!packet) continue;
      if (lastPacket) this.sealPacket(buf, lastPacket, now);
      lastPacket = packet;
      pos = packet.payloadEnd + TAG;
      if (id === INITIAL) {
        hasInitial = true;
        if (packet.ackEliciting) ackElicitingInitial = true;
      }
      if (id === APP && !zeroRtt) break; // a short-header packet ends the datagram
    }
    if (!lastPacket) return null;
    // RFC 9000 §14.1: datagrams with a client Initial (or an ack-eliciting server Initial) are ≥ 1200 bytes.
    if (hasInitial && (!this.isServer || ackElicitingInitial) && pos < MIN_INITIAL_DATAGRAM) {
      const pad = Math.min(MIN_INITIAL_DATAGRAM, limit) - pos;
      if (pad > 0) {
        buf.fill(0, lastPacket.payloadEnd, lastPacket.payloadEnd + pad);
        lastPacket.payloadEnd += pad;
        pos += pad;
      }
    }
    this.sealPacket(buf, lastPacket, now);
    // RFC 9001 §4.9.1: a client discards Initial keys when it first sends a Handshake packet.
    if (!this.isServer && this.spaces[HANDSHAKE].nextPn > 0 && !this.spaces[INITIAL].discarded)
      this.discardSpace(INITIAL);
    this.bytesSent += pos;
    this.activePath.bytesSent += pos;
    this.counters.bytesSent += pos;
    if (pos > this.config.sendUdpPayloadSize) this.lastLargeSent = now;
    return buf.slice(0, pos);
  }

  /**
   * Writes the unprotected header and frames of one packet at `pos`. Returns undefined when the
   * space has nothing to send.
   */
  private buildPacket(
    buf: Uint8Array,
    pos: number,
    id: SpaceId,
    limit: number,
    congestionRoom: number,
    now: number,
    zeroRtt: boolean,
  ): PacketInProgress | undefined {
    const space = this.spaces[id];
    const frames: Frame[] = [];
    const sent: Sent[] = [];
    // RFC 9000 §12.4/§12.5: no ACK frames in 0-RTT packets (they go in 1-RTT ones).
    // A path probe carries probing frames only (RFC 9000 §9.1): no ACK, which is non-probing.
    const probing = this.probingPath;
    const ackDue =
      !zeroRtt && !probing && (space.received.ackImmediately || space.received.ackDeadline() <= now);
    const canAck = !zeroRtt && !probing && space.received.hasUnacked;
    // Estimate the header size to know how much room the frames have.
    const pn = space.nextPn;
    const pnLen = packetNumberLength(pn, this.loss.largestAcked(id as PacketNumberSpace));
    const long = id !== APP || zeroRtt;
    const headerSize = long
      ? 1 +
        4 +
        1 +
        this.dcid.length +
        1 +
        this.initialScid.length +
        (id === INITIAL ? varintLen(this.initialToken.length) + this.initialToken.length : 0) +
        2 +
        pnLen
      : 1 + this.dcid.length + pnLen;
    const maxPayload = limit - pos - headerSize - TAG;
    if (maxPayload < 20) return undefined;
    let room = maxPayload;
    let ackEliciting = false;
    const canSendEliciting = congestionRoom >= this.maxDatagram || space.probes > 0;

    // An ACK goes first; when it is not due it only rides along with other frames (never an
    // ACK-only packet in answer to packets that did not ask for one, RFC 9000 §13.2.1).
    let ackPiggyback = false;
    // A datagram that did not fit beside a piggybacked ACK gets a packet without one (else it
    // would wait forever: a packet holding only that ACK is not sent).
    const roomForDatagram = id === APP && this.datagramNeedsRoom && this.outgoingDatagrams.length > 0;
    if (ackDue || (canAck && canSendEliciting && !roomForDatagram)) {
      const ack = space.received.buildAckFrame(now);
      if (ack) {
        const size = frameSize(ack);
        if (size <= room) {
          frames.push(ack);
          sent.push({ k: "ack", largest: ack.largest });
          room -= size;
          ackPiggyback = !ackDue;
        }
      }
    }

    if (canSendEliciting) {
      // CRYPTO data (retransmissions first); never in 0-RTT (RFC 9000 §12.5).
      while (room > 16 && !zeroRtt && !probing) {
        const overheadGuess = 1 + 8 + 4;
        const chunk = space.cryptoSend.nextChunk(room - overheadGuess);
        if (!chunk || chunk.data.length === 0) break;
        const f: Frame = { kind: "crypto", offset: chunk.offset, data: chunk.data };
        frames.push(f);
        sent.push({ k: "crypto", offset: chunk.offset, length: chunk.data.length });
        room -= frameSize(f);
        ackEliciting = true;
      }
      if (probing) room = this.addPathFrames(probing, frames, room, now);
      else if (id === APP) {
        this.buildingZeroRtt = zeroRtt;
        room = this.addAppFrames(frames, sent, room, now);
        this.buildingZeroRtt = false;
      }
      // Per packet: a plain loop (no closure), skipped once the packet is known ack-eliciting.
      for (let i = 0; i < frames.length && !ackEliciting; i++) {
        const kind = frames[i].kind;
        if (kind !== "ack" && kind !== "padding") ackEliciting = true;
      }
      if (space.probes > 0 && !ackEliciting && room >= 1 && !probing) {
        frames.push({ kind: "ping" });
        sent.push({ k: "ping" });
        room -= 1;
        ackEliciting = true;
      }
    }
    if (ackPiggyback && frames.length === 1) {
      // Only the optional ACK: nothing worth a packet.
      return undefined;
    }
    if (frames.length === 0) return undefined;
    if (ackEliciting && space.probes > 0 && !probing) space.probes--;

    // Header.
    const w = new ByteWriter(buf, pos, limit);
    let pnOffset: number;
    if (long) {
      pnOffset = writeLongHeader(w, {
        type: zeroRtt ? PacketType.ZeroRtt : id === INITIAL ? PacketType.Initial : PacketType.Handshake,
        version: this.version,
        dcid: this.dcid,
        scid: this.initialScid,
        token: id === INITIAL ? this.initialToken : undefined,
        packetNumber: pn,
        pnLength: pnLen,
        length: pnLen + TAG, // patched in sealPacket
        lengthSize: 2,
      });
    } else {
      pnOffset = writeShortHeader(w, {
        dcid: this.dcid,
        packetNumber: pn,
        pnLength: pnLen,
        keyPhase: this.appKeys?.phase ?? 0,
        fixedBit: this.nextFixedBit(),
      });
    }
    for (const f of frames) encodeFrame(f, w);
    // RFC 9001 §5.4.2: the sample needs 4 bytes after the start of the packet number.
    const minEnd = pnOffset + 4;
    if (w.pos < minEnd) w.writeZeros(minEnd - w.pos);
    space.nextPn++;
    return {
      start: pos,
      pnOffset,
      payloadEnd: w.pos,
      space: id,
      pn,
      frames: sent,
      ackEliciting,
      long,
      zeroRtt,
      qframes: this.qlog ? frames : undefined,
    };
  }

  /** Application-space frames after ACK: control frames, stream data, datagrams. */
  private addAppFrames(frames: Frame[], sent: Sent[], room: number, now: number): number {
    this.room = room;
    this.roomFrames = frames;
    this.roomSent = sent;
    const push = this.pushFrame;
    if (this.handshakeDonePending && this.isServer) {
      if (push.call(this, { kind: "handshake_done" }, { k: "handshake_done" }))
        this.handshakeDonePending = false;
    }
    const newToken = this.newToken;
    if (this.newTokenPending && newToken) {
      if (push.call(this, { kind: "new_token", token: newToken }, { k: "new_token", token: newToken }))
        this.newTokenPending = false;
    }
    // (PATH_RESPONSE frames go in path probes, on their own path: buildPathProbe.)
    if (this.maxDataPending || this.recvFlow.shouldSendUpdate()) {
      const limit = this.recvFlow.takeUpdate(now, this.loss.rtt.smoothedRtt);
      if (push.call(this, { kind: "max_data", maximum: limit }, { k: "max_data" }))
        this.maxDataPending = false;
    }
    for (const bidi of [true, false]) {
      const pending = bidi ? this.maxStreamsBidiPending : this.maxStreamsUniPending;
      if (!pending) continue;
      const ids = bidi ? this.remoteBidi : this.remoteUni;
      if (push.call(this, { kind: "max_streams", bidi, maximum: ids.limit }, { k: "max_streams", bidi })) {
        if (bidi) this.maxStreamsBidiPending = false;
        else this.maxStreamsUniPending = false;
      }
    }
    for (const c of this.localCids) {
      if (!c.pending) continue;
      const f: Frame = {
        kind: "new_connection_id",
        sequence: c.seq,
        retirePriorTo: 0,
        connectionId: c.cid,
        statelessResetToken: c.resetToken,
      };
      if (!push.call(this, f, { k: "new_cid", seq: c.seq })) break;
      c.pending = false;
    }
    while (this.retireCids.length > 0 && !this.buildingZeroRtt) {
      const seq = this.retireCids[0];
      if (!push.call(this, { kind: "retire_connection_id", sequence: seq }, { k: "retire_cid", seq })) break;
      this.retireCids.shift();
    }
    for (const id of this.controlStreams) {
      const s = this.streams.get(id);
      if (!s) {
        this.controlStreams.delete(id);
        continue;
      }
      let keep = false;
      if (s.send?.resetAtPending && !this.buildingZeroRtt) {
        const b = s.send.buffer;
        // reliable-stream-reset §4: the Final Size must respect flow control; we send the frame
        // once every byte below the Reliable Size was sent, so the final size (what was sent) does.
        if (b.sentOffset < b.reliableSize) keep = true;
        else {
          const f: Frame = {
            kind: "reset_stream_at",
            streamId: id,
            errorCode: s.send.resetAtCode!,
            finalSize: b.sentOffset,
            reliableSize: b.reliableSize,
          };
          if (!push.call(this, f, { k: "reset_at", id })) break;
          s.send.resetAtPending = false;
          s.state.send?.onResetSent();
        }
      }
      if (s.send?.resetPending) {
        const f: Frame = {
          kind: "reset_stream",
          streamId: id,
          errorCode: s.send.resetCode!,
          finalSize: s.send.buffer.finalSize >= 0 ? s.send.buffer.finalSize : s.send.buffer.sentOffset,
        };
        if (!push.call(this, f, { k: "reset", id })) break;
        s.send.resetPending = false;
        s.state.send?.onResetSent();
      }
      if (s.recv?.stopPending) {
        if (
          !push.call(
            this,
            { kind: "stop_sending", streamId: id, errorCode: s.recv.stopCode! },
            { k: "stop", id },
          )
        )
          break;
        s.recv.stopPending = false;
      }
      if (s.recv?.maxStreamDataPending) {
        const limit = s.recv.flow.takeUpdate(now, this.loss.rtt.smoothedRtt);
        if (
          !push.call(
            this,
            { kind: "max_stream_data", streamId: id, maximum: limit },
            { k: "max_stream_data", id },
          )
        )
          break;
        s.recv.maxStreamDataPending = false;
      }
      if (!keep) this.controlStreams.delete(id);
    }
    if (this.pingPending && push.call(this, { kind: "ping" }, { k: "ping" })) this.pingPending = false;
    // ack-frequency §4, §5: never in 0-RTT.
    if (this.ackFrequencyPending && this.ackFrequencyToSend && !this.buildingZeroRtt) {
      const f = this.ackFrequencyToSend as Extract<Frame, { kind: "ack_frequency" }>;
      if (push.call(this, f, { k: "ack_frequency", seq: f.sequence })) this.ackFrequencyPending = false;
    }
    if (this.immediateAckPending && !this.buildingZeroRtt) {
      // §5: IMMEDIATE_ACK frames do not need to be retransmitted.
      if (push.call(this, { kind: "immediate_ack" }, undefined)) this.immediateAckPending = false;
    }

    // Datagrams (RFC 9221): before stream data, they are latency-sensitive.
    while (this.outgoingDatagrams.length > 0) {
      const d = this.outgoingDatagrams[0];
      if (d.length + 3 > this.room) {
        this.datagramNeedsRoom = true;
        break;
      }
      push.call(this, { kind: "datagram", data: d }, undefined);
      this.outgoingDatagrams.shift();
      this.datagramNeedsRoom = false;
    }

    // Stream data by the scheduler's order.
    let guard = 0;
    while (this.room > 8 && guard++ < 64) {
      const id = this.scheduler.next();
      if (id < 0) break;
      const s = this.streams.get(id);
      if (!s?.send || s.send.resetCode !== undefined) {
        this.scheduler.setActive(id, false);
        continue;
      }
      if (this.streamsCapped && isLocallyInitiated(id, this.isServer)) {
        // A stream opened in 0-RTT past the server's actual limit waits for MAX_STREAMS.
        if (streamIndex(id) >= ((id & 2) === 0 ? this.streamCapBidi : this.streamCapUni)) {
          this.scheduler.setActive(id, false);
          continue;
        }
      }
      const send = s.send;
      const connRoom = this.sendFlow.available;
      const streamLimit = Math.min(send.flow.limit, send.buffer.sentOffset + connRoom);
      const overhead = streamFrameOverhead(
        id,
        Math.max(send.buffer.sentOffset, 1 << 30),
        Math.min(this.room, 1 << 14),
      );
      const maxBytes = this.room - overhead;
      if (maxBytes <= 0) break;
      const chunk = send.buffer.nextChunk(maxBytes, streamLimit);
      if (!chunk) {
        this.scheduler.setActive(id, false);
        if (send.buffer.isBlocked(send.flow.limit)) {
          // Blocked by flow control: STREAM_DATA_BLOCKED could be sent here.
        }
        continue;
      }
      const f: Frame = {
        kind: "stream",
        streamId: id,
        offset: chunk.offset,
        data: chunk.data,
        fin: chunk.fin,
      };
      if (
        !push.call(this, f, {
          k: "stream",
          id,
          offset: chunk.offset,
          length: chunk.data.length,
          fin: chunk.fin,
        })
      ) {
        send.buffer.onLost(chunk.offset, chunk.data.length, chunk.fin);
        break;
      }
      if (!chunk.retransmit) {
        const end = chunk.offset + chunk.data.length;
        const fresh = end - send.flow.used;
        if (fresh > 0) {
          send.flow.onSent(fresh);
          this.sendFlow.onSent(fresh);
        }
      }
      // After RESET_STREAM_AT (state Reset Sent) data below the Reliable Size still goes (§5).
      if (send.resetAtCode === undefined) s.state.send?.onStreamSent(chunk.fin);
      this.scheduler.onSent(id, chunk.data.length);
      if (!send.buffer.hasDataToSend(send.flow.limit)) this.scheduler.setActive(id, false);
    }
    this.roomFrames = EMPTY_FRAMES;
    this.roomSent = EMPTY_SENT;
    return this.room;
  }
  /** Scratch state of addAppFrames (no closure per packet). */
  private room = 0;
  private roomFrames: Frame[] = EMPTY_FRAMES;
  private roomSent: Sent[] = EMPTY_SENT;

  private pushFrame(f: Frame, s: Sent | undefined): boolean {
    const size = frameSize(f);
    if (size > this.room) return false;
    this.roomFrames.push(f);
    if (s) this.roomSent.push(s);
    this.room -= size;
    return true;
  }

  private sealPacket(buf: Uint8Array, p: PacketInProgress, now: number): void {
    const space = this.spaces[p.space];
    if (p.long) {
      // Length = packet number + payload + tag (RFC 9000 §17.2), in the 2 bytes reserved for it.
      const length = p.payloadEnd - p.pnOffset + TAG;
      buf[p.pnOffset - 2] = 0x40 | (length >> 8);
      buf[p.pnOffset - 1] = length & 0xff;
    }
    const keys = p.zeroRtt ? this.zeroRttKeys! : space.writeKeys!;
    const end = protectPacket(keys, buf, p.start, p.pnOffset, p.payloadEnd, p.pn);
    // One pass over the frames (per packet): ACK presence, its largest, any non-ACK frame.
    let largestAcked: number | undefined;
    let hasAck = false;
    let hasNonAck = false;
    for (const f of p.frames) {
      if (f.k === "ack") {
        hasAck = true;
        largestAcked = f.largest;
      } else hasNonAck = true;
    }
    if (p.space === APP && !p.zeroRtt && this.appKeys) this.appKeys.onSealed(largestAcked);
    const size = end - p.start;
    const inFlight = !p.probe && (p.ackEliciting || hasNonAck);
    const packet = new SentPacket<Sent[]>(p.pn, now, size, p.ackEliciting, inFlight, p.frames);
    this.loss.onPacketSent(p.space as PacketNumberSpace, packet);
    if (inFlight) this.cc.onPacketSent(size, now);
    if (p.ackEliciting) this.pacer.onSend(now, size);
    if (hasAck) space.received.onAckSent();
    this.counters.packetsSent++;
    if (p.zeroRtt) this.counters.zeroRttPacketsSent++;
    if (p.ackEliciting) this.resetIdleTimerOnSend(now);
    if (this.qlog) {
      const type = p.zeroRtt
        ? "0RTT"
        : p.space === INITIAL
          ? "initial"
          : p.space === HANDSHAKE
            ? "handshake"
            : "1RTT";
      this.qlog.packetSent(
        {
          type,
          pn: p.pn,
          size,
          frames: p.qframes,
          version: p.long ? this.version : undefined,
          keyPhase: p.long ? undefined : this.appKeys?.phase,
        },
        now,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // RESET_STREAM_AT (draft-ietf-quic-reliable-stream-reset)

  /**
   * Resets our sending part but still delivers the first `reliableSize` bytes written
   * (RESET_STREAM_AT, draft-ietf-quic-reliable-stream-reset §5): they are sent and retransmitted,
   * nothing after them is. A later call may lower the Reliable Size (§5.2), with the same code.
   * Needs the peer's reset_stream_at transport parameter; a Reliable Size of 0 sends RESET_STREAM.
   */
  resetStreamAt(id: number, errorCode: bigint, reliableSize: number): void {
    this.checkOpen();
    const send = this.sendPart(id);
    if (!(this.peerParams ?? this.rememberedParams)?.resetStreamAt)
      throw new QuicUsageError("the peer does not accept RESET_STREAM_AT (no reset_stream_at)");
    if (send.resetCode !== undefined || send.done) return;
    if (send.resetAtCode !== undefined && send.resetAtCode !== errorCode)
      throw new QuicUsageError("RESET_STREAM_AT must keep the error code of the first one (§5.2)");
    if (reliableSize === 0 && send.resetAtCode === undefined) {
      this.resetStream(id, errorCode);
      return;
    }
    const before = send.buffer.reliableSize;
    send.buffer.resetAt(reliableSize); // QuicUsageError beyond the data written
    if (send.resetAtCode !== undefined && send.buffer.reliableSize === before) return; // not lowered
    send.resetAtCode = errorCode;
    send.resetAtPending = true;
    send.resetAtAcked = false;
    this.controlStreams.add(id);
    const s = this.streams.get(id)!;
    if (send.buffer.hasDataToSend(send.flow.limit)) this.scheduleStream(s);
    else this.scheduler.setActive(id, false);
  }

  /** Our RESET_STREAM_AT and every byte below its Reliable Size are acknowledged (§5.3). */
  private maybeFinishResetAt(s: Stream): void {
    const send = s.send!;
    if (send.done || !send.resetAtAcked || send.resetAtPending) return;
    if (send.buffer.ackedOffset < send.buffer.reliableSize) return;
    send.done = true;
    s.state.send?.onResetAcked();
    this.maybeReleaseStream(s);
  }

  /** A RESET_STREAM_AT from the peer, or a RESET_STREAM after one (Reliable Size 0, §5.2). */
  private onPeerResetAt(s: Stream, code: bigint, finalSize: number, reliableSize: number, now: number): void {
    const recv = s.recv!;
    if (recv.resetCode !== undefined) return; // the reset already took effect
    const type = FrameType.RESET_STREAM_AT;
    // §4: the Final Size is subject to flow control, as for RESET_STREAM.
    const newBytes = recv.flow.onReceivedOffset(finalSize, type);
    this.recvFlow.onReceivedBytes(newBytes, type);
    const prior = recv.resetAt;
    if (prior) {
      // §5.2: a changed error code is a STREAM_STATE_ERROR, a changed final size a
      // FINAL_SIZE_ERROR; a larger Reliable Size (reordering) MUST be ignored.
      if (prior.code !== code)
        throw new QuicError(TransportErrorCode.STREAM_STATE_ERROR, "reset error code changed", type);
      if (prior.finalSize !== finalSize)
        throw new QuicError(TransportErrorCode.FINAL_SIZE_ERROR, "reset final size changed", type);
      if (reliableSize < prior.reliableSize) prior.reliableSize = reliableSize;
    } else {
      // §5.3: like a FIN, the frame makes the final size known (checked against what arrived).
      s.state.onRecvStream(finalSize, 0, true, type);
      recv.resetAt = { code, finalSize, reliableSize };
    }
    this.maybeApplyPeerResetAt(s, now);
  }

  /** The peer's RESET_STREAM_AT takes effect once the application read below its Reliable Size. */
  private maybeApplyPeerResetAt(s: Stream, now: number): void {
    const recv = s.recv!;
    const r = recv.resetAt;
    if (!r || recv.resetCode !== undefined || recv.buffer.readOffset < r.reliableSize) return;
    if (!s.state.onRecvResetStream(r.finalSize)) return;
    recv.buffer.onReset(r.finalSize, FrameType.RESET_STREAM_AT);
    recv.resetCode = r.code;
    // Bytes never to be read still count as consumed for connection flow control.
    const unread = r.finalSize - recv.flow.consumed;
    if (unread > 0) {
      recv.flow.onConsumed(unread, now);
      this.recvFlow.onConsumed(unread, now);
    }
    this.events.push({ type: "stream-reset", streamId: s.id, errorCode: r.code });
    this.maybeReleaseStream(s);
  }

  // ---------------------------------------------------------------------------------------------
  // ACK frequency (draft-ietf-quic-ack-frequency)

  /** The peer's ACK_FREQUENCY or IMMEDIATE_ACK: honoured when we advertised min_ack_delay (§3). */
  private onAckFrequencyFrame(f: Extract<Frame, { kind: "ack_frequency" | "immediate_ack" }>): void {
    const minAckDelay = this.localParams.minAckDelay;
    if (minAckDelay === undefined)
      throw new QuicError(
        TransportErrorCode.PROTOCOL_VIOLATION,
        `${f.kind} without min_ack_delay`,
        frameTypeOf(f),
      );
    if (f.kind === "immediate_ack") {
      // §5: SHOULD send an ACK immediately (once the packet carrying it is recorded).
      this.immediateAckReceived = true;
      return;
    }
    // §4: ignore an ACK_FREQUENCY that is not newer than the largest processed.
    if (f.sequence <= this.ackFrequencySeq) return;
    // §4: a Requested Max Ack Delay of 2^14 ms or more, or below our min_ack_delay, MUST be a
    // PROTOCOL_VIOLATION.
    if (f.requestedMaxAckDelay >= 2 ** 14 * 1000 || f.requestedMaxAckDelay < minAckDelay)
      throw new QuicError(
        TransportErrorCode.PROTOCOL_VIOLATION,
        "invalid Requested Max Ack Delay",
        FrameType.ACK_FREQUENCY,
      );
    this.ackFrequencySeq = f.sequence;
    // §4: the Ack-Eliciting Threshold is how many packets may go unacknowledged (ACK after one
    // more); ReceivedPackets counts the packets that make an ACK due.
    const threshold = Math.min(f.ackElicitingThreshold, 1 << 20) + 1;
    this.spaces[APP].received.setAckFrequency(
      threshold,
      f.requestedMaxAckDelay / 1000,
      f.reorderingThreshold,
    );
  }

  /**
   * Asks the peer to acknowledge less (or more) often (ACK_FREQUENCY, ack-frequency §4): after
   * more than `ackElicitingThreshold` ack-eliciting packets, or `maxAckDelay` ms, and on
   * reordering of `reorderingThreshold` packets (0: none). Needs the peer's min_ack_delay.
   */
  requestAckFrequency(ackElicitingThreshold: number, maxAckDelay: number, reorderingThreshold = 1): void {
    this.checkOpen();
    const peerMin = this.peerParams?.minAckDelay;
    if (peerMin === undefined) throw new QuicUsageError("the peer does not support ACK_FREQUENCY");
    const us = Math.round(maxAckDelay * 1000);
    if (!(us >= peerMin) || us >= 2 ** 14 * 1000)
      throw new QuicUsageError(`max ack delay ${maxAckDelay} ms outside [min_ack_delay, 2^14 ms)`);
    if (!Number.isInteger(ackElicitingThreshold) || ackElicitingThreshold < 0)
      throw new QuicUsageError("ack-eliciting threshold must be a non-negative integer");
    if (!Number.isInteger(reorderingThreshold) || reorderingThreshold < 0)
      throw new QuicUsageError("reordering threshold must be a non-negative integer");
    this.ackFrequencyToSend = {
      kind: "ack_frequency",
      sequence: this.nextAckFrequencySeq++,
      ackElicitingThreshold,
      requestedMaxAckDelay: us,
      reorderingThreshold,
    };
    this.ackFrequencyPending = true;
    // Loss recovery must allow for the larger of the old and the new delay until the peer has it.
    this.loss.setMaxAckDelay(Math.max(this.loss.maxAckDelay, maxAckDelay), this.now);
  }

  /** Asks the peer to acknowledge right away (IMMEDIATE_ACK, ack-frequency §5). */
  requestImmediateAck(): void {
    this.checkOpen();
    if (this.peerParams?.minAckDelay === undefined)
      throw new QuicUsageError("the peer does not support IMMEDIATE_ACK");
    this.immediateAckPending = true;
  }

  // ---------------------------------------------------------------------------------------------
  // PMTU discovery (RFC 8899, RFC 9000 §14.3) and the fixed bit (RFC 9287)

  /** The UDP payload size in use (grows with PMTU discovery, back to 1200 on a black hole). */
  get pathMtu(): number {
    return this.maxDatagram;
  }

  /** Starts (or restarts, on new addresses: RFC 9000 §14.3) PMTU discovery from the base size. */
  private startPmtuDiscovery(): void {
    if (!this.config.pmtuDiscovery) return;
    // RFC 9000 §18.2: never send a UDP payload above the peer's max_udp_payload_size.
    const peerMax = this.peerParams?.maxUdpPayloadSize ?? 65527;
    const qlog = this.qlog;
    const base = this.config.sendUdpPayloadSize;
    this.pmtud = new PmtuDiscovery(
      {
        base,
        upperBound: Math.min(this.config.pmtuUpperBound, peerMax),
        raiseInterval: this.config.pmtuRaiseInterval,
        // qlog mtu_updated (quic-events §4.8): growth, black holes, the end of a search.
        onUpdate: qlog?.mtuUpdated ? (u, now) => qlog.mtuUpdated?.(u, now) : undefined,
      },
      this.now,
    );
    if (this.maxDatagram !== base) {
      qlog?.mtuUpdated?.({ old: this.maxDatagram, new: base }, this.now);
      this.setPathMtu(base);
    }
  }

  private setPathMtu(size: number): void {
    const shrink = size < this.maxDatagram;
    this.maxDatagram = size;
    this.cc.setMaxDatagramSize(size);
    this.pacer.setMaxDatagramSize(size);
    if (!shrink) return;
    // Datagrams queued for the larger size no longer fit in a packet.
    const max = this.maxDatagramSize;
    for (let i = this.outgoingDatagrams.length - 1; i >= 0; i--) {
      if (this.outgoingDatagrams[i].length > max) {
        this.outgoingDatagrams.splice(i, 1);
        this.counters.datagramsDropped++;
      }
    }
  }

  private onPmtuProbeAcked(size: number): void {
    const grown = this.pmtud?.onProbeAcked(size, this.now) ?? 0;
    if (grown > this.maxDatagram) this.setPathMtu(grown);
  }

  /**
   * Takes PMTU probes out of a list of lost packets (RFC 9000 §14.4: the loss of a probe is not
   * a congestion signal; they leave bytes in flight here) and feeds black-hole detection with the
   * others (RFC 8899 §4.3). Returns what the congestion controller must see.
   */
  private congestionLosses(lost: readonly SentPacket<Sent[]>[], now: number): readonly SentPacket<Sent[]>[] {
    const d = this.pmtud;
    if (!d) return lost;
    const base = this.config.sendUdpPayloadSize;
    let out: SentPacket<Sent[]>[] | undefined;
    let latestLarge = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < lost.length; i++) {
      const p = lost[i];
      const f = p.frames[0];
      if (f !== undefined && f.k === "pmtu_probe") {
        if (!out) out = lost.slice(0, i);
        if (p.inFlight) this.cc.removeFromFlight(p.size);
        d.onProbeLost(f.size, now);
        continue;
      }
      out?.push(p);
      if (p.size > base && p.timeSent > latestLarge) latestLarge = p.timeSent;
    }
    if (latestLarge > Number.NEGATIVE_INFINITY && d.onPacketsLost(latestLarge, now))
      this.setPathMtu(d.current);
    return out ?? lost;
  }

  /** The size of a PMTU probe to send now, or 0. */
  private pmtuProbeDue(now: number): number {
    const d = this.pmtud!;
    if (this.state !== "established" || !this.handshakeConfirmed || !this.spaces[APP].hasKeys) return 0;
    // PTO probes and retransmissions first; a probe is congestion controlled (RFC 8899 §3 item 7).
    if (this.spaces[APP].probes > 0) return 0;
    const size = d.probeDue(now);
    // The probe must fit the window itself: the one packet allowed on entering recovery (RFC 9002
    // §7.3.2, canSend) speeds up loss recovery; a probe larger than the window sent with it would
    // hold everything behind it (HANDSHAKE_DONE, the first response) until it is declared lost.
    if (size === 0 || this.cc.bytesInFlight + size > this.cc.window || size > this.amplificationBudget())
      return 0;
    return size;
  }

  /** A PING padded to `size` bytes, alone in its datagram (RFC 9000 §14.3.1, RFC 8899 §4.1). */
  private buildPmtuProbe(size: number, now: number): Uint8Array {
    if (this.scratch.length < size) this.scratch = new Uint8Array(size);
    const buf = this.scratch;
    const space = this.spaces[APP];
    const pn = space.nextPn;
    const pnLen = packetNumberLength(pn, this.loss.largestAcked(APP as PacketNumberSpace));
    const w = new ByteWriter(buf, 0, size);
    const pnOffset = writeShortHeader(w, {
      dcid: this.dcid,
      packetNumber: pn,
      pnLength: pnLen,
      keyPhase: this.appKeys?.phase ?? 0,
      fixedBit: this.nextFixedBit(),
    });
    buf[w.pos] = FrameType.PING;
    const payloadEnd = size - TAG;
    buf.fill(0, w.pos + 1, payloadEnd); // PADDING
    space.nextPn++;
    const padding = payloadEnd - w.pos - 1;
    this.sealPacket(
      buf,
      {
        start: 0,
        pnOffset,
        payloadEnd,
        space: APP,
        pn,
        frames: [{ k: "pmtu_probe", size }],
        ackEliciting: true,
        long: false,
        zeroRtt: false,
        qframes: this.qlog ? [{ kind: "ping" }, { kind: "padding", length: padding }] : undefined,
      },
      now,
    );
    this.pmtud!.onProbeSent(size);
    this.bytesSent += size;
    this.activePath.bytesSent += size;
    this.counters.bytesSent += size;
    return buf.slice(0, size);
  }

  /** RFC 9287 §3: once the peer sent grease_quic_bit, the fixed bit SHOULD be unpredictable. */
  private nextFixedBit(): boolean {
    if (!this.greaseFixedBit) return true;
    let x = this.greaseState;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.greaseState = x >>> 0;
    return (x & 0x100) !== 0;
  }

  private resetIdleTimerOnSend(now: number): void {
    // RFC 9000 §10.1: sending an ack-eliciting packet restarts the idle timer if no other
    // ack-eliciting packet was sent since the last receipt — so PTO probes to a silent peer do
    // not keep a dead connection alive.
    if (this.ackElicitingSentSinceReceipt) return;
    this.ackElicitingSentSinceReceipt = true;
    if (this.idleTimeout > 0)
      this.idleDeadline = Math.max(
        this.idleDeadline,
        now + Math.max(this.idleTimeout, 3 * this.ptoDuration()),
      );
  }
}

function varintLen(v: number): number {
  return v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x4000_0000 ? 4 : 8;
}
