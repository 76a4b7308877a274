/**
 * The little a quic-reverse session needs from a QUIC connection. purequic's `QuicConnection`
 * (src/quic/api.ts) satisfies it as is; so can any other transport with bidirectional streams.
 */

export interface ReverseSendStream {
  write(data: Uint8Array): Promise<void>;
  /** FIN. */
  finish(): Promise<void>;
  /** Abandons the stream (RESET_STREAM). */
  reset(code: bigint | number): void;
}

export interface ReverseRecvStream {
  /**
   * The next chunk, or null at the end of the stream. The chunk is the caller's to keep: the
   * transport must not reuse its memory (purequic's chunks are views of received datagrams, which
   * are never recycled), so tcp-pipe.ts hands it to the socket without copying.
   */
  read(maxBytes?: number): Promise<Uint8Array | null>;
  /** Asks the peer to stop sending (STOP_SENDING). */
  stop(code: bigint | number): void;
}

export interface ReverseBiStream {
  readonly send: ReverseSendStream;
  readonly recv: ReverseRecvStream;
}

export interface ReverseConnection {
  openBi(): Promise<ReverseBiStream>;
  /** The next stream the peer opened, or null once the connection is closed. */
  acceptBi(): Promise<ReverseBiStream | null>;
  /** Which end of the QUIC connection this is (picks the session role by default). */
  readonly side?: "client" | "server";
}
