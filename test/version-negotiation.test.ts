/**
 * Version Negotiation over UDP (RFC 9000 §6, §17.2.1; the interop runner's `versionnegotiation`):
 * the server's answer to an unknown version, and a client probing with a reserved version.
 */
import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { ConnectionClosedError, connect, listen, type QuicServer } from "../src/quic/api.ts";
import { QUIC_V1, QUIC_V2 } from "../src/quic/version.ts";

const run = promisify(execFile);
const bin = new URL("../bin/purequic", import.meta.url).pathname;
const RESERVED = 0x1a2a3a4a;

let server: QuicServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A long-header datagram of `size` bytes in `version` with the given connection IDs (zero-filled rest). */
function initialLike(version: number, dcid: Uint8Array, scid: Uint8Array, size: number): Buffer {
  const b = Buffer.alloc(size);
  b[0] = 0xc0;
  b.writeUInt32BE(version, 1);
  b[5] = dcid.length;
  b.set(dcid, 6);
  b[6 + dcid.length] = scid.length;
  b.set(scid, 7 + dcid.length);
  return b;
}

function parseVn(m: Buffer) {
  const dcid = m.subarray(6, 6 + m[5]);
  const scidAt = 6 + m[5];
  const scid = m.subarray(scidAt + 1, scidAt + 1 + m[scidAt]);
  const versions: number[] = [];
  for (let i = scidAt + 1 + m[scidAt]; i + 4 <= m.length; i += 4) versions.push(m.readUInt32BE(i));
  return { long: (m[0] & 0x80) !== 0, version: m.readUInt32BE(1), dcid, scid, versions };
}

describe("purequic server: Version Negotiation (RFC 9000 §6.1, §17.2.1)", () => {
  it("echoes the client's connection IDs swapped, lists v1 and v2, and ignores datagrams under 1200 bytes", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["x"] });
    const sock = createSocket("udp4");
    const small = { dcid: Buffer.from("0101010101010101", "hex"), scid: Buffer.from("0202020202", "hex") };
    const full = { dcid: Buffer.from("a1a2a3a4a5a6a7a8a9", "hex"), scid: Buffer.from("b1b2b3b4b5", "hex") };
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no Version Negotiation within 2 s")), 2000);
      sock.once("message", (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      // The 1199-byte datagram first: had it been answered, its VN would arrive first (loopback
      // keeps the order; the server reads datagrams in order).
      sock.send(initialLike(RESERVED, small.dcid, small.scid, 1199), server!.address.port, "127.0.0.1");
      sock.send(initialLike(RESERVED, full.dcid, full.scid, 1200), server!.address.port, "127.0.0.1");
    });
    sock.close();
    const vn = parseVn(reply);
    expect(vn.long).toBe(true);
    expect(vn.version).toBe(0);
    expect(Buffer.from(vn.dcid).equals(full.scid)).toBe(true);
    expect(Buffer.from(vn.scid).equals(full.dcid)).toBe(true);
    expect(vn.versions).toEqual(expect.arrayContaining([QUIC_V1, QUIC_V2]));
    expect(vn.versions).not.toContain(RESERVED);
  });

  it("lists only the versions the server is configured to offer (RFC 9368 §2.1)", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["x"], versions: [QUIC_V2] });
    const sock = createSocket("udp4");
    const ids = { dcid: Buffer.from("c1c2c3c4c5c6c7c8", "hex"), scid: Buffer.from("d1d2", "hex") };
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no Version Negotiation within 2 s")), 2000);
      sock.once("message", (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      sock.send(initialLike(RESERVED, ids.dcid, ids.scid, 1200), server!.address.port, "127.0.0.1");
    });
    sock.close();
    expect(parseVn(reply).versions).toEqual([QUIC_V2]);
  });
});

describe("purequic client probing with a reserved version", () => {
  it("connect() rejects with version-mismatch naming the server's versions", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["x"] });
    const err = await connect({
      host: "127.0.0.1",
      port: server.address.port,
      alpn: ["x"],
      insecure: true,
      version: RESERVED,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectionClosedError);
    const reason = (err as ConnectionClosedError).reason;
    expect(reason.kind).toBe("version-mismatch");
    expect(reason.kind === "version-mismatch" && reason.offered).toEqual(
      expect.arrayContaining([QUIC_V1, QUIC_V2]),
    );
    expect((err as Error).message).toContain("0x1, 0x6b3343cf");
  });

  it("with versions: [v1], follows the VN to v1 and connects (RFC 9368 §2.1)", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["x"] });
    const conn = await connect({
      host: "127.0.0.1",
      port: server.address.port,
      serverName: "localhost",
      alpn: ["x"],
      serverCertificateHashes: [server.devCertificate!.certificateSha256],
      version: RESERVED,
      versions: [QUIC_V1],
    });
    try {
      expect(conn.version).toBe(QUIC_V1);
    } finally {
      await conn.close();
    }
  });

  it("`purequic get --version 0x1a2a3a4a` exits 1 and names what the server offers", async () => {
    server = await listen({ host: "127.0.0.1", port: 0, alpn: ["hq-interop"] });
    const url = `https://127.0.0.1:${server.address.port}/`;
    const r = await run(bin, ["get", "-q", "--insecure", "--version", "0x1a2a3a4a", url]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("does not speak QUIC 0x1a2a3a4a: its Version Negotiation offers v1, v2");
  });

  it("`--version` refuses an unsupported version that is not reserved, with exit code 2", async () => {
    const r = await run(bin, ["get", "--version", "0xff00001d", "https://127.0.0.1:9/"]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("reserved version 0x?a?a?a?a");
  });
});
