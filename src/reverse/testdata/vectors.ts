/**
 * Loads the quic-reverse golden vectors (copied from /work/shared/vectors/quic-reverse-v1.json,
 * produced by the Rust crate quic-reverse 0.1.2) and converts their JSON messages to ours.
 */
import { readFileSync } from "node:fs";
import type { Metadata, MetadataValue, ProtocolMessage } from "../messages.ts";

// biome-ignore lint/suspicious/noExplicitAny: vector JSON is loosely typed
type Json = any;

export const vectors: Json = JSON.parse(
  readFileSync(new URL("./quic-reverse-v1.json", import.meta.url), "utf8"),
);

export function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, "hex"));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

function metadataValueFromJson(v: Json): MetadataValue {
  switch (v.type) {
    case "String":
      return { type: "String", value: v.value };
    case "Integer":
      return { type: "Integer", value: BigInt(v.value) };
    case "Boolean":
      return { type: "Boolean", value: v.value };
    case "Bytes":
      return { type: "Bytes", value: hex(v.value_hex ?? v.bytes_hex ?? v.value) };
    default:
      throw new Error(`unknown MetadataValue ${JSON.stringify(v)}`);
  }
}

export function metadataFromJson(m: Json): Metadata {
  switch (m.type) {
    case "Empty":
      return { type: "Empty" };
    case "Bytes":
      return { type: "Bytes", value: hex(m.bytes_hex ?? m.value_hex) };
    case "Structured": {
      const entries = new Map<string, MetadataValue>();
      for (const [k, v] of m.entries) entries.set(k, metadataValueFromJson(v));
      return { type: "Structured", entries };
    }
    default:
      throw new Error(`unknown Metadata ${JSON.stringify(m)}`);
  }
}

const bigOrNull = (v: string | null): bigint | null => (v === null ? null : BigInt(v));

export function messageFromJson(m: Json): ProtocolMessage {
  switch (m.type) {
    case "Hello":
      return { type: "Hello", protocolVersion: m.protocol_version, features: m.features, agent: m.agent };
    case "HelloAck":
      return { type: "HelloAck", selectedVersion: m.selected_version, selectedFeatures: m.selected_features };
    case "OpenRequest":
      return {
        type: "OpenRequest",
        requestId: BigInt(m.request_id),
        service: m.service,
        metadata: metadataFromJson(m.metadata),
        flags: m.flags,
      };
    case "OpenResponse":
      return {
        type: "OpenResponse",
        requestId: BigInt(m.request_id),
        status:
          m.status.type === "Accepted" ? { type: "Accepted" } : { type: "Rejected", code: m.status.code },
        reason: m.reason,
        logicalStreamId: bigOrNull(m.logical_stream_id),
      };
    case "StreamClose":
      return {
        type: "StreamClose",
        logicalStreamId: BigInt(m.logical_stream_id),
        code: m.code,
        reason: m.reason,
      };
    case "Ping":
      return { type: "Ping", sequence: BigInt(m.sequence) };
    case "Pong":
      return { type: "Pong", sequence: BigInt(m.sequence) };
    default:
      throw new Error(`unknown message ${JSON.stringify(m)}`);
  }
}
