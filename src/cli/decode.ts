/**
 * `purequic decode`: parses a QUIC datagram (hex), splits coalesced packets, removes the
 * protection of Initial packets (their keys derive from the client's original Destination
 * Connection ID, RFC 9001 §5.2) and prints headers, frames, and the TLS messages and transport
 * parameters carried in CRYPTO frames. A debugging aid for captures, and `npm start`'s demo.
 */
import { parseArgs } from "node:util";
import { ByteReader } from "../quic/bytes.ts";
import { defaultCryptoProvider } from "../quic/crypto/node-provider.ts";
import { QuicError } from "../quic/errors.ts";
import { decodeFrame, type Frame } from "../quic/frames.ts";
import { type PacketHeader, PacketType, splitCoalescedPackets } from "../quic/packet-header.ts";
import { createUnprotectedPacket, deriveInitialKeys, unprotectPacket } from "../quic/packet-protection.ts";
import { ExtensionType, findExtension, sniHostName } from "../quic/tls/extensions.ts";
import { HandshakeBuffer } from "../quic/tls/handshake-buffer.ts";
import { decodeHandshakeMessage, type HandshakeMessage } from "../quic/tls/messages.ts";
import { decodeTransportParameters } from "../quic/transport-parameters.ts";
import type { Command } from "./command.ts";
import { RFC9001_CLIENT_INITIAL } from "./demo-packet.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const packetTypeName: Record<number, string> = {
  [PacketType.Initial]: "Initial",
  [PacketType.ZeroRtt]: "0-RTT",
  [PacketType.Handshake]: "Handshake",
  [PacketType.Retry]: "Retry",
  [PacketType.OneRtt]: "1-RTT",
  [PacketType.VersionNegotiation]: "Version Negotiation",
  [PacketType.UnsupportedVersion]: "unsupported version",
};

const HELP = `Usage: purequic decode [options] <hex | ->

Decodes one QUIC datagram given as hex (or on stdin with "-"). Initial packets are decrypted with
keys derived from the original Destination Connection ID: the packet's own DCID for a client
Initial, or --odcid for a server Initial.

Options:
  --odcid HEX         the client's original Destination Connection ID
  --cid-length N      length of short-header DCIDs (default 8)
  --demo              decode the sample client Initial of RFC 9001 Appendix A.2
  -h, --help          show this help
`;

function describeFrame(f: Frame): string {
  switch (f.kind) {
    case "padding":
      return `PADDING ×${f.length}`;
    case "crypto":
      return `CRYPTO offset=${f.offset} length=${f.data.length}`;
    case "stream":
      return `STREAM id=${f.streamId} offset=${f.offset} length=${f.data.length}${f.fin ? " FIN" : ""}`;
    case "ack": {
      const ranges: string[] = [];
      for (let i = 0; i < f.ranges.length; i += 2) ranges.push(`${f.ranges[i + 1]}-${f.ranges[i]}`);
      return `ACK largest=${f.largest} delay=${f.ackDelay} ranges=[${ranges.join(", ")}]`;
    }
    case "connection_close":
      return `CONNECTION_CLOSE ${f.application ? "application" : "transport"} code=0x${f.errorCode.toString(16)} reason="${Buffer.from(f.reason).toString("utf8")}"`;
    default: {
      const { kind, ...fields } = f;
      const shown = Object.entries(fields)
        .map(([k, v]) => `${k}=${v instanceof Uint8Array ? hex(v) : String(v)}`)
        .join(" ");
      return `${kind.toUpperCase()}${shown ? ` ${shown}` : ""}`;
    }
  }
}

function describeHandshake(msg: HandshakeMessage, out: string[]): void {
  if (msg.type !== 1) {
    out.push(`      TLS handshake message type ${msg.type}`);
    return;
  }
  out.push(`      TLS ClientHello, ${msg.cipherSuites.length} cipher suites`);
  const sni = findExtension(msg.extensions, ExtensionType.server_name);
  if (sni) out.push(`        server_name: ${sniHostName(sni)}`);
  const alpn = findExtension(msg.extensions, ExtensionType.application_layer_protocol_negotiation);
  if (alpn)
    out.push(`        ALPN: ${alpn.protocols.map((p) => Buffer.from(p).toString("latin1")).join(", ")}`);
  const groups = findExtension(msg.extensions, ExtensionType.supported_groups);
  if (groups) out.push(`        groups: ${groups.groups.map((g) => `0x${g.toString(16)}`).join(", ")}`);
  const tp = findExtension(msg.extensions, ExtensionType.quic_transport_parameters);
  if (tp) {
    const params = decodeTransportParameters(tp.parameters, "client");
    out.push("        transport parameters:");
    for (const [k, v] of Object.entries(params)) {
      if (k === "unknown" && Array.isArray(v)) {
        for (const u of v) out.push(`          unknown 0x${u.id.toString(16)}: ${hex(u.value)}`);
      } else if (v === Number.MAX_SAFE_INTEGER)
        out.push(`          ${k}: ≥ 2^53-1 (saturated, see bytes.ts)`);
      else out.push(`          ${k}: ${v instanceof Uint8Array ? hex(v) : JSON.stringify(v)}`);
    }
  }
}

/** Decodes one datagram into printable lines. Exported for tests. */
export function decodeDatagram(
  datagram: Uint8Array,
  opts: { odcid?: Uint8Array; cidLength?: number } = {},
): string[] {
  const out: string[] = [];
  const buf = datagram.slice(); // unprotecting works in place
  let headers: PacketHeader[];
  try {
    headers = splitCoalescedPackets(buf, { localCidLength: opts.cidLength ?? 8 });
  } catch (err) {
    return [`not a QUIC packet: ${(err as Error).message}`];
  }
  if (headers.length === 0) return ["not a QUIC packet: no packet header could be parsed"];
  for (const h of headers) {
    const name = packetTypeName[h.type] ?? `type ${h.type}`;
    const version = "version" in h ? ` version=0x${h.version.toString(16).padStart(8, "0")}` : "";
    const scid = "scid" in h ? ` scid=${hex(h.scid)}` : "";
    out.push(`${name} packet, ${h.packetEnd - h.packetStart} bytes${version} dcid=${hex(h.dcid)}${scid}`);
    if (h.type === PacketType.VersionNegotiation) {
      out.push(`  versions: ${h.versions.map((v) => `0x${v.toString(16)}`).join(", ")}`);
      continue;
    }
    if (h.type !== PacketType.Initial) {
      out.push("  (protected: keys come from the TLS handshake)");
      continue;
    }
    if (h.token.length > 0) out.push(`  token: ${hex(h.token)}`);
    const keys = deriveInitialKeys(defaultCryptoProvider, h.version, opts.odcid ?? h.dcid);
    const result = createUnprotectedPacket();
    let sender = "client";
    let n = -1;
    for (const [who, k] of [
      ["client", keys.client],
      ["server", keys.server],
    ] as const) {
      const attempt = buf.slice(h.packetStart, h.packetEnd);
      n = unprotectPacket(k, attempt, 0, h.pnOffset - h.packetStart, attempt.length, -1, result);
      if (n >= 0) {
        sender = who;
        buf.set(attempt, h.packetStart);
        break;
      }
    }
    if (n < 0) {
      out.push("  cannot remove protection (for a server Initial, pass --odcid)");
      continue;
    }
    out.push(`  sent by the ${sender}, packet number ${result.packetNumber}, ${n} bytes of frames`);
    const payloadStart = h.packetStart + result.payloadOffset;
    const r = new ByteReader(buf, payloadStart, payloadStart + n);
    const crypto = new HandshakeBuffer();
    try {
      while (!r.done) {
        const f = decodeFrame(r);
        out.push(`    ${describeFrame(f)}`);
        if (f.kind === "crypto" && f.offset === 0) {
          for (const m of crypto.pushAndDrain(f.data))
            describeHandshake(decodeHandshakeMessage(m.type, m.body), out);
        }
      }
    } catch (err) {
      out.push(`    malformed: ${err instanceof QuicError ? err.message : String(err)}`);
    }
  }
  return out;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export const decodeCommand: Command = {
  name: "decode",
  summary: "decode a QUIC datagram (hex); Initial packets are decrypted",
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        odcid: { type: "string" },
        "cid-length": { type: "string" },
        demo: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    let input: string;
    if (values.demo) {
      input = RFC9001_CLIENT_INITIAL;
      process.stdout.write("RFC 9001 Appendix A.2: a client Initial, decrypted by purequic\n\n");
    } else if (positionals[0] === "-") input = await readStdin();
    else if (positionals[0] !== undefined) input = positionals.join("");
    else {
      process.stderr.write(HELP);
      return 2;
    }
    const cleaned = input.replace(/[\s:]/g, "");
    if (!/^([0-9a-fA-F]{2})+$/.test(cleaned)) {
      process.stderr.write("purequic decode: input is not hex\n");
      return 2;
    }
    const cidLength = values["cid-length"] === undefined ? 8 : Number(values["cid-length"]);
    if (!Number.isInteger(cidLength) || cidLength < 0 || cidLength > 20) {
      process.stderr.write("purequic decode: --cid-length must be 0..20\n");
      return 2;
    }
    const odcid = values.odcid === undefined ? undefined : Uint8Array.from(Buffer.from(values.odcid, "hex"));
    const lines = decodeDatagram(Uint8Array.from(Buffer.from(cleaned, "hex")), { odcid, cidLength });
    process.stdout.write(`${lines.join("\n")}\n`);
    return 0;
  },
};
