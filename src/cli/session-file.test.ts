import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { SessionTicketEntry } from "../quic/tls/session-cache.ts";
import {
  decodeSessionTicket,
  encodeSessionTicket,
  loadSessionFile,
  saveSessionFile,
} from "./session-file.ts";

const entry: SessionTicketEntry = {
  ticket: Uint8Array.from([1, 2, 3, 250]),
  psk: new Uint8Array(32).fill(9),
  cipherSuite: 0x1301,
  quicVersion: 1,
  alpn: "hq-interop",
  sni: "localhost",
  receivedAt: 1_790_000_000_123,
  lifetime: 86_400,
  ticketAgeAdd: 0xfffffffe,
  maxEarlyDataSize: 0xffffffff,
  transportParameters: {
    initialMaxData: 1 << 24,
    initialMaxStreamsBidi: 100,
    disableActiveMigration: true,
    maxDatagramFrameSize: 65535,
    versionInformation: { chosenVersion: 1, availableVersions: [1, 0x6b3343cf] },
    unknown: [{ id: (1n << 62n) - 1n, value: Uint8Array.of(7) }],
  },
  appData: Uint8Array.of(0, 1),
};

describe("session ticket files", () => {
  it("round-trips every field, bytes and bigints included", () => {
    const text = encodeSessionTicket(entry);
    expect(text).toContain('"$hex": "010203fa"');
    expect(decodeSessionTicket(text)).toEqual(entry);
  });

  it("refuses other files and malformed tickets", () => {
    expect(() => decodeSessionTicket("{}")).toThrow(TypeError);
    const doc = JSON.parse(encodeSessionTicket(entry));
    doc.ticket.psk = "not bytes";
    expect(() => decodeSessionTicket(JSON.stringify(doc))).toThrow(/malformed/);
    doc.ticket.psk = { $hex: "zz" };
    expect(() => decodeSessionTicket(JSON.stringify(doc))).toThrow(TypeError);
  });

  it("saves owner-only, loads it back, and reads a missing file as no session", async () => {
    const dir = mkdtempSync(join(tmpdir(), "purequic-session-"));
    try {
      const file = join(dir, "s.json");
      expect(await loadSessionFile(file)).toBeUndefined();
      await saveSessionFile(file, entry);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(await loadSessionFile(file)).toEqual(entry);
      writeFileSync(file, "garbage");
      await expect(loadSessionFile(file)).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
