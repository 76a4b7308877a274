/**
 * A network path of a connection (RFC 9000 §9): the peer's address as the driver reported it, and
 * what the connection knows about it — whether the peer proved it owns the address (path
 * validation, §8.2), the anti-amplification counters that apply until then (§8.1, §9.3), the
 * PATH_CHALLENGE data in flight and the PATH_RESPONSE data to send back on this path.
 *
 * Sans-IO: addresses are opaque values compared field by field; the endpoint decides what they
 * mean (an IP address, a port, and which of its sockets — `local` — the datagram came in on).
 */

/** Where the peer is, as seen by the endpoint. */
export interface PathAddress {
  readonly address: string;
  readonly port: number;
  /**
   * Which local socket of the endpoint the path uses (a server with a preferred address has two,
   * RFC 9000 §9.6); undefined for the default one.
   */
  readonly local?: number;
}

export function samePathAddress(a: PathAddress | undefined, b: PathAddress | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return a.address === b.address && a.port === b.port && (a.local ?? 0) === (b.local ?? 0);
}

/** Whether only the port differs (RFC 9000 §9.4: a likely NAT rebinding, congestion state may stay). */
export function onlyPortChanged(a: PathAddress | undefined, b: PathAddress | undefined): boolean {
  return a !== undefined && b !== undefined && a.address === b.address;
}

/** Bytes of PATH_CHALLENGE / PATH_RESPONSE data (RFC 9000 §19.17). */
export const PATH_DATA_LENGTH = 8;
/** Challenges remembered per path: a response to any of them validates it (§8.2.3). */
const MAX_CHALLENGES = 8;
/** PATH_RESPONSE frames queued per path; more challenges than that in one burst are dropped. */
const MAX_RESPONSES = 4;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class NetworkPath {
  /** The peer's address; undefined until the driver reports one (tests that do not model addresses). */
  remote: PathAddress | undefined;
  /**
   * The peer's address is validated (RFC 9000 §8): no anti-amplification limit on this path. The
   * handshake path starts validated here (the handshake's own limit is applied by the connection).
   */
  validated: boolean;
  /** Authenticated bytes received from this address, and bytes sent to it (§8.1, §9.3). */
  bytesReceived = 0;
  bytesSent = 0;
  /**
   * (Client) The peer connection ID to use on this path when it is not the active one — the
   * preferred_address one (RFC 9000 §9.6.1) — with its sequence number.
   */
  dcid: Uint8Array | undefined;
  dcidSeq = -1;
  /** Reset congestion control and RTT once validated (an address change, not just a port, §9.4). */
  resetCongestionOnValidation = false;
  /**
   * A PATH_CHALLENGE went in a datagram under 1200 bytes (the anti-amplification limit): once
   * validated, the path MTU still needs a full-size challenge (RFC 9000 §8.2.1).
   */
  needsFullSizeChallenge = false;

  /** PATH_CHALLENGE data sent and not yet answered. */
  private readonly challenges: Uint8Array[] = [];
  /** A PATH_CHALLENGE must be sent (validation started or a resend is due). */
  challengePending = false;
  /** When to send the next PATH_CHALLENGE while validating. */
  private nextChallengeAt = Number.POSITIVE_INFINITY;
  private challengeInterval = 0;
  /** When validation is abandoned (§8.2.4); +∞ when not validating. */
  validationDeadline = Number.POSITIVE_INFINITY;
  /**
   * Whether the outcome of the validation matters: a probe of a path already validated (§9.3.3:
   * the previous path after an apparent migration) only elicits packets.
   */
  private probeOnly = false;
  /** PATH_RESPONSE data to send on this path (§8.2.2: on the path the challenge came from). */
  readonly responses: Uint8Array[] = [];
  /** The qlog TupleID of this path (quic-events §4.7), given by {@link PathTrace} when traced. */
  tupleId: string | undefined;

  constructor(remote: PathAddress | undefined, validated: boolean) {
    this.remote = remote;
    this.validated = validated;
  }

  get isValidating(): boolean {
    return this.validationDeadline !== Number.POSITIVE_INFINITY;
  }

  /** Bytes we may still send to this address: unlimited once validated, else 3× what came (§8.1). */
  amplificationBudget(): number {
    return this.validated ? Number.POSITIVE_INFINITY : 3 * this.bytesReceived - this.bytesSent;
  }

  /**
   * Starts (or restarts) path validation (RFC 9000 §8.2.1): a PATH_CHALLENGE now, again every
   * `interval` ms (no more often than an Initial would be, i.e. once per PTO), abandoned at
   * `now + timeout` (§8.2.4: three times the larger of the current PTO and the initial one).
   */
  startValidation(now: number, interval: number, timeout: number, probeOnly = false): void {
    this.challengePending = true;
    this.challengeInterval = Math.max(interval, 1);
    this.nextChallengeAt = Number.POSITIVE_INFINITY;
    this.validationDeadline = now + timeout;
    this.probeOnly = probeOnly;
  }

  /** Records a PATH_CHALLENGE just sent with `data` (8 unpredictable bytes, §8.2.1). */
  onChallengeSent(data: Uint8Array, now: number): void {
    if (this.challenges.length >= MAX_CHALLENGES) this.challenges.shift();
    this.challenges.push(data);
    this.challengePending = false;
    this.nextChallengeAt = now + this.challengeInterval;
    // Back off like the PTO (RFC 9002 §6.2.1): the new path may be slower than the old one.
    this.challengeInterval *= 2;
  }

  /**
   * A PATH_RESPONSE arrived (on any path, §8.2.3): whether it answers one of our challenges on
   * this path. A match ends the validation; `validated` tells the caller whether it counts.
   */
  onResponse(data: Uint8Array): "validated" | "probed" | undefined {
    if (!this.challenges.some((c) => equalBytes(c, data))) return undefined;
    this.challenges.length = 0;
    this.challengePending = false;
    this.nextChallengeAt = Number.POSITIVE_INFINITY;
    this.validationDeadline = Number.POSITIVE_INFINITY;
    if (this.probeOnly) {
      this.probeOnly = false;
      return "probed";
    }
    this.validated = true;
    return "validated";
  }

  /** The earliest path timer: a challenge to resend or the validation deadline. */
  nextTimeout(): number {
    return Math.min(this.nextChallengeAt, this.validationDeadline);
  }

  /**
   * Runs the path timers. Returns "failed" when validation was abandoned (§8.2.4) and mattered,
   * "abandoned" for a probe-only one, undefined otherwise.
   */
  onTimeout(now: number): "failed" | "abandoned" | undefined {
    if (now >= this.validationDeadline) {
      const probeOnly = this.probeOnly;
      this.abandonValidation();
      return probeOnly ? "abandoned" : "failed";
    }
    if (now >= this.nextChallengeAt) {
      this.nextChallengeAt = Number.POSITIVE_INFINITY;
      this.challengePending = true;
    }
    return undefined;
  }

  /** Stops validating (a newer migration made it moot, §8.2.4 last paragraph). */
  abandonValidation(): void {
    this.challenges.length = 0;
    this.challengePending = false;
    this.nextChallengeAt = Number.POSITIVE_INFINITY;
    this.validationDeadline = Number.POSITIVE_INFINITY;
    this.probeOnly = false;
  }

  /** Queues a PATH_RESPONSE echoing `data` (§8.2.2); bounded, extra challenges are not answered. */
  queueResponse(data: Uint8Array): void {
    if (this.responses.length < MAX_RESPONSES) this.responses.push(data.slice());
  }

  /** Something path-related must be sent on this path. */
  get hasProbeToSend(): boolean {
    return this.challengePending || this.responses.length > 0;
  }
}
