/**
 * A session ticket in a file, for `purequic get --session-file` (resumption and 0-RTT across
 * runs): JSON in which byte strings are `{"$hex": "..."}` and bigints `{"$bigint": "..."}`, so
 * every field of a {@link SessionTicketEntry} — the remembered transport parameters included —
 * comes back exactly. The file holds the PSK: it is written readable by its owner only.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import type { SessionTicketEntry } from "../quic/tls/session-cache.ts";

const FORMAT = "purequic-session-ticket";
const FORMAT_VERSION = 1;

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

function toJson(value: unknown): Json | undefined {
  if (value === undefined) return undefined;
  if (value instanceof Uint8Array) return { $hex: Buffer.from(value).toString("hex") };
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`cannot store the number ${value}`);
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => toJson(v) ?? null);
  if (typeof value === "object") {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) {
      const j = toJson(v);
      if (j !== undefined) out[k] = j;
    }
    return out;
  }
  throw new TypeError(`cannot store a ${typeof value}`);
}

function fromJson(value: Json): unknown {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value === null || typeof value !== "object") return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === "$hex" && typeof value.$hex === "string") {
    if (!/^(?:[0-9a-f]{2})*$/i.test(value.$hex)) throw new TypeError("bad hex string");
    return Uint8Array.from(Buffer.from(value.$hex, "hex"));
  }
  if (keys.length === 1 && keys[0] === "$bigint" && typeof value.$bigint === "string") {
    return BigInt(value.$bigint);
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = fromJson(value[k]);
  return out;
}

/** The file's text for `entry`. */
export function encodeSessionTicket(entry: SessionTicketEntry): string {
  return `${JSON.stringify({ format: FORMAT, version: FORMAT_VERSION, ticket: toJson(entry) }, null, 2)}\n`;
}

/** The entry in a file's text; throws TypeError when it is not one. */
export function decodeSessionTicket(text: string): SessionTicketEntry {
  const doc = JSON.parse(text) as Json;
  if (
    doc === null ||
    typeof doc !== "object" ||
    Array.isArray(doc) ||
    doc.format !== FORMAT ||
    doc.version !== FORMAT_VERSION
  ) {
    throw new TypeError(`not a ${FORMAT} file (version ${FORMAT_VERSION})`);
  }
  const e = fromJson(doc.ticket ?? null) as Partial<SessionTicketEntry> | null;
  const bytes = (v: unknown) => v instanceof Uint8Array;
  const num = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  if (
    e === null ||
    typeof e !== "object" ||
    !bytes(e.ticket) ||
    !bytes(e.psk) ||
    !num(e.cipherSuite) ||
    !num(e.quicVersion) ||
    typeof e.alpn !== "string" ||
    !num(e.receivedAt) ||
    !num(e.lifetime) ||
    !num(e.ticketAgeAdd) ||
    (e.maxEarlyDataSize !== 0 && e.maxEarlyDataSize !== 0xffffffff) ||
    (e.sni !== undefined && typeof e.sni !== "string") ||
    (e.appData !== undefined && !bytes(e.appData)) ||
    (e.transportParameters !== undefined &&
      (typeof e.transportParameters !== "object" || e.transportParameters === null))
  ) {
    throw new TypeError("malformed session ticket");
  }
  return e as SessionTicketEntry;
}

/** The ticket stored at `path`, or undefined when there is no such file. Throws when it is malformed. */
export async function loadSessionFile(path: string): Promise<SessionTicketEntry | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return decodeSessionTicket(text);
}

/** Stores `entry` at `path` (replacing it whole, owner-only permissions: it holds a PSK). */
export async function saveSessionFile(path: string, entry: SessionTicketEntry): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, encodeSessionTicket(entry), { mode: 0o600 });
  await rename(tmp, path);
}
