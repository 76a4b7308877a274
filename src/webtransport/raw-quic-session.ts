/**
 * A session with the WebTransport session interface directly over one QUIC connection, without
 * HTTP/3 (what web-transport-quinn offers for protocols such as MoQ that run on raw QUIC with their
 * own ALPN). Streams and datagrams are the connection's own; stream error codes and the close code
 * are QUIC application error codes, passed through unchanged; close(code, reason) is
 * CONNECTION_CLOSE. Application code can take either session type.
 */
import { describeReason, type QuicConnection } from "../quic/api.ts";
import type { ConnectionCloseReason } from "../quic/connection/config.ts";
import { QuicUsageError } from "../quic/errors.ts";
import type { WebTransportCloseInfo, WebTransportSessionApi } from "./session-interface.ts";
import {
  rawQuicCodec,
  type WebTransportBiStream,
  WebTransportRecvStream,
  WebTransportSendStream,
} from "./streams.ts";

function infoOf(r: ConnectionCloseReason): WebTransportCloseInfo {
  if (r.kind === "application") {
    return { code: Number(r.code), reason: r.reason, remote: r.remote, clean: true };
  }
  const remote = r.kind === "transport" ? r.remote : false;
  return { code: 0, reason: describeReason(r), remote, clean: r.kind === "transport" && r.code === 0 };
}

export class RawQuicSession implements WebTransportSessionApi {
  readonly closed: Promise<WebTransportCloseInfo>;
  private reason: WebTransportCloseInfo | undefined;

  constructor(readonly quic: QuicConnection) {
    this.closed = quic.closed.then((r) => {
      this.reason ??= infoOf(r);
      return this.reason;
    });
  }

  get closeReason(): WebTransportCloseInfo | undefined {
    if (this.reason === undefined && this.quic.closeReason !== undefined) {
      this.reason = infoOf(this.quic.closeReason);
    }
    return this.reason;
  }

  get maxDatagramSize(): number {
    return this.closeReason ? 0 : this.quic.maxDatagramSize;
  }

  async acceptBi(): Promise<WebTransportBiStream | null> {
    const bi = await this.quic.acceptBi();
    if (bi === null) return null;
    return {
      send: new WebTransportSendStream(bi.send, rawQuicCodec),
      recv: new WebTransportRecvStream(bi.recv, rawQuicCodec),
    };
  }

  async acceptUni(): Promise<WebTransportRecvStream | null> {
    const r = await this.quic.acceptUni();
    return r === null ? null : new WebTransportRecvStream(r, rawQuicCodec);
  }

  async openBi(): Promise<WebTransportBiStream> {
    const bi = await this.quic.openBi();
    return {
      send: new WebTransportSendStream(bi.send, rawQuicCodec),
      recv: new WebTransportRecvStream(bi.recv, rawQuicCodec),
    };
  }

  async openUni(): Promise<WebTransportSendStream> {
    return new WebTransportSendStream(await this.quic.openUni(), rawQuicCodec);
  }

  sendDatagram(data: Uint8Array): void {
    this.quic.sendDatagram(data);
  }

  readDatagram(): Promise<Uint8Array | null> {
    return this.quic.readDatagram();
  }

  /** CONNECTION_CLOSE with application error `code` and `reason`. */
  close(code = 0, reason = ""): void {
    if (!Number.isSafeInteger(code) || code < 0) throw new QuicUsageError(`bad close code ${code}`);
    if (this.closeReason) return;
    this.reason = { code, reason, remote: false, clean: true };
    void this.quic.close(code, reason).catch(() => {});
  }
}
