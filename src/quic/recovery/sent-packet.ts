/**
 * One sent packet as loss recovery tracks it (RFC 9002 Appendix A.1.1), with an opaque `frames`
 * payload the connection uses to retransmit or acknowledge what the packet carried.
 */
export class SentPacket<T> {
  /**
   * Position in the send order across all packet number spaces, assigned by
   * `LossDetection.onPacketSent` (persistent congestion compares send order across spaces,
   * RFC 9002 §7.6.2). 0 until then.
   */
  sendOrder = 0;

  constructor(
    /** Packet number in its packet number space. */
    readonly packetNumber: number,
    /** `now` when the packet was sent (ms). */
    readonly timeSent: number,
    /** Bytes sent: QUIC header, payload and AEAD tag, no UDP/IP overhead (Appendix A.1.1). */
    readonly size: number,
    /** Whether the packet contains an ack-eliciting frame (RFC 9000 §13.2). */
    readonly ackEliciting: boolean,
    /** Whether the packet counts toward bytes in flight: ack-eliciting or PADDING (Appendix A.1.1). */
    readonly inFlight: boolean,
    /** What the connection needs to act on acknowledgment or loss. */
    readonly frames: T,
  ) {}
}
