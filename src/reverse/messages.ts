/**
 * quic-reverse control messages (`ProtocolMessage` of quic-reverse 0.1.2) and their bincode
 * payload encoding. u64/i64 fields are bigint (values up to 2^64−1 occur). Decoding ignores
 * trailing bytes after a complete message, as bincode::deserialize does.
 */
import { QuicUsageError } from "../quic/errors.ts";
import { BincodeReader, BincodeWriter } from "./bincode.ts";

/** Highest (and only) protocol version. */
export const PROTOCOL_VERSION = 1;

/** `Features` bits (u32; unknown bits travel unchanged). */
export const Features = {
  STRUCTURED_METADATA: 0x1,
  PING_PONG: 0x2,
  STREAM_PRIORITY: 0x4,
} as const;

/** `OpenFlags` bits (u8; unknown bits travel unchanged). */
export const OpenFlags = {
  UNIDIRECTIONAL: 0x1,
  HIGH_PRIORITY: 0x2,
} as const;

export const REJECT_CODES = [
  "ServiceUnavailable",
  "UnsupportedService",
  "LimitExceeded",
  "Unauthorized",
  "InternalError",
] as const;
export type RejectCode = (typeof REJECT_CODES)[number];

export const CLOSE_CODES = ["Normal", "Error", "Timeout", "Reset"] as const;
export type CloseCode = (typeof CLOSE_CODES)[number];

export type MetadataValue =
  | { readonly type: "String"; readonly value: string }
  | { readonly type: "Integer"; readonly value: bigint }
  | { readonly type: "Boolean"; readonly value: boolean }
  | { readonly type: "Bytes"; readonly value: Uint8Array };

/** Metadata of an open request. Structured entries keep wire order; a repeated key's later value wins. */
export type Metadata =
  | { readonly type: "Empty" }
  | { readonly type: "Bytes"; readonly value: Uint8Array }
  | { readonly type: "Structured"; readonly entries: ReadonlyMap<string, MetadataValue> };

export type OpenStatus =
  | { readonly type: "Accepted" }
  | { readonly type: "Rejected"; readonly code: RejectCode };

export interface HelloMessage {
  readonly type: "Hello";
  readonly protocolVersion: number;
  readonly features: number;
  readonly agent: string | null;
}
export interface HelloAckMessage {
  readonly type: "HelloAck";
  readonly selectedVersion: number;
  readonly selectedFeatures: number;
}
export interface OpenRequestMessage {
  readonly type: "OpenRequest";
  readonly requestId: bigint;
  readonly service: string;
  readonly metadata: Metadata;
  readonly flags: number;
}
export interface OpenResponseMessage {
  readonly type: "OpenResponse";
  readonly requestId: bigint;
  readonly status: OpenStatus;
  readonly reason: string | null;
  readonly logicalStreamId: bigint | null;
}
export interface StreamCloseMessage {
  readonly type: "StreamClose";
  readonly logicalStreamId: bigint;
  readonly code: CloseCode;
  readonly reason: string | null;
}
export interface PingMessage {
  readonly type: "Ping";
  readonly sequence: bigint;
}
export interface PongMessage {
  readonly type: "Pong";
  readonly sequence: bigint;
}

export type ProtocolMessage =
  | HelloMessage
  | HelloAckMessage
  | OpenRequestMessage
  | OpenResponseMessage
  | StreamCloseMessage
  | PingMessage
  | PongMessage;

export const MESSAGE_TYPES = [
  "Hello",
  "HelloAck",
  "OpenRequest",
  "OpenResponse",
  "StreamClose",
  "Ping",
  "Pong",
] as const;

const METADATA_TYPES = ["Empty", "Bytes", "Structured"] as const;
const METADATA_VALUE_TYPES = ["String", "Integer", "Boolean", "Bytes"] as const;

function writeMetadata(w: BincodeWriter, m: Metadata): void {
  w.u32(METADATA_TYPES.indexOf(m.type));
  if (m.type === "Bytes") w.bytesField(m.value);
  else if (m.type === "Structured") {
    w.u64(BigInt(m.entries.size));
    for (const [key, value] of m.entries) {
      w.string(key);
      w.u32(METADATA_VALUE_TYPES.indexOf(value.type));
      switch (value.type) {
        case "String":
          w.string(value.value);
          break;
        case "Integer":
          w.i64(value.value);
          break;
        case "Boolean":
          w.bool(value.value);
          break;
        case "Bytes":
          w.bytesField(value.value);
          break;
      }
    }
  }
}

function readMetadataValue(r: BincodeReader): MetadataValue {
  switch (r.variant(METADATA_VALUE_TYPES.length, "MetadataValue")) {
    case 0:
      return { type: "String", value: r.string() };
    case 1:
      return { type: "Integer", value: r.i64() };
    case 2:
      return { type: "Boolean", value: r.bool() };
    default:
      return { type: "Bytes", value: r.bytesField() };
  }
}

function readMetadata(r: BincodeReader): Metadata {
  switch (r.variant(METADATA_TYPES.length, "Metadata")) {
    case 0:
      return { type: "Empty" };
    case 1:
      return { type: "Bytes", value: r.bytesField() };
    default: {
      // Entries are read one at a time: a huge declared count runs out of input (unexpected_eof)
      // long before it could allocate anything.
      const count = r.count();
      const entries = new Map<string, MetadataValue>();
      for (let i = 0n; i < count; i++) {
        const key = r.string();
        entries.set(key, readMetadataValue(r));
      }
      return { type: "Structured", entries };
    }
  }
}

/** Encodes a message as its bincode payload (no frame header). */
export function encodeMessage(m: ProtocolMessage): Uint8Array {
  const w = new BincodeWriter();
  w.u32(MESSAGE_TYPES.indexOf(m.type));
  switch (m.type) {
    case "Hello":
      w.u16(m.protocolVersion);
      w.u32(m.features);
      w.optionalString(m.agent);
      break;
    case "HelloAck":
      w.u16(m.selectedVersion);
      w.u32(m.selectedFeatures);
      break;
    case "OpenRequest":
      w.u64(m.requestId);
      w.string(m.service);
      writeMetadata(w, m.metadata);
      w.u8(m.flags);
      break;
    case "OpenResponse":
      w.u64(m.requestId);
      if (m.status.type === "Accepted") w.u32(0);
      else {
        w.u32(1);
        w.u32(rejectCodeIndex(m.status.code));
      }
      w.optionalString(m.reason);
      if (m.logicalStreamId === null) w.u8(0);
      else {
        w.u8(1);
        w.u64(m.logicalStreamId);
      }
      break;
    case "StreamClose":
      w.u64(m.logicalStreamId);
      w.u32(closeCodeIndex(m.code));
      w.optionalString(m.reason);
      break;
    case "Ping":
    case "Pong":
      w.u64(m.sequence);
      break;
    default:
      throw new QuicUsageError(`unknown message type ${(m as { type: string }).type}`);
  }
  return w.finish();
}

function rejectCodeIndex(code: RejectCode): number {
  const i = REJECT_CODES.indexOf(code);
  if (i < 0) throw new QuicUsageError(`unknown RejectCode ${code}`);
  return i;
}

function closeCodeIndex(code: CloseCode): number {
  const i = CLOSE_CODES.indexOf(code);
  if (i < 0) throw new QuicUsageError(`unknown CloseCode ${code}`);
  return i;
}

function readOptionalString(r: BincodeReader): string | null {
  return r.optionTag() ? r.string() : null;
}

/**
 * Decodes one message from a frame payload; throws {@link ReverseDecodeError} (the whole message
 * fails, nothing partial is returned). Bytes after the message are ignored.
 */
export function decodeMessage(payload: Uint8Array): ProtocolMessage {
  const r = new BincodeReader(payload);
  switch (r.variant(MESSAGE_TYPES.length, "ProtocolMessage")) {
    case 0: {
      const protocolVersion = r.u16();
      const features = r.u32();
      return { type: "Hello", protocolVersion, features, agent: readOptionalString(r) };
    }
    case 1: {
      const selectedVersion = r.u16();
      return { type: "HelloAck", selectedVersion, selectedFeatures: r.u32() };
    }
    case 2: {
      const requestId = r.u64();
      const service = r.string();
      const metadata = readMetadata(r);
      return { type: "OpenRequest", requestId, service, metadata, flags: r.u8() };
    }
    case 3: {
      const requestId = r.u64();
      const status: OpenStatus =
        r.variant(2, "OpenStatus") === 0
          ? { type: "Accepted" }
          : { type: "Rejected", code: REJECT_CODES[r.variant(REJECT_CODES.length, "RejectCode")] };
      const reason = readOptionalString(r);
      const logicalStreamId = r.optionTag() ? r.u64() : null;
      return { type: "OpenResponse", requestId, status, reason, logicalStreamId };
    }
    case 4: {
      const logicalStreamId = r.u64();
      const code = CLOSE_CODES[r.variant(CLOSE_CODES.length, "CloseCode")];
      return { type: "StreamClose", logicalStreamId, code, reason: readOptionalString(r) };
    }
    case 5:
      return { type: "Ping", sequence: r.u64() };
    default:
      return { type: "Pong", sequence: r.u64() };
  }
}
