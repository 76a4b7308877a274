import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { decodeDatagram } from "../src/cli/decode.ts";
import { RFC9001_CLIENT_INITIAL } from "../src/cli/demo-packet.ts";

const run = promisify(execFile);
const bin = new URL("../bin/purequic", import.meta.url).pathname;

describe("bin/purequic", () => {
  it("prints help and the version", async () => {
    const help = await run(bin, ["--help"]);
    expect(help.stdout).toContain("Usage: purequic <command>");
    expect(help.stdout).toContain("decode");
    const version = await run(bin, ["--version"]);
    expect(version.stdout).toMatch(/^purequic \d+\.\d+\.\d+/);
  });

  it("rejects an unknown command with exit code 2", async () => {
    await expect(run(bin, ["frobnicate"])).rejects.toMatchObject({ code: 2 });
  });

  it("decrypts the RFC 9001 client Initial (--demo)", async () => {
    const { stdout } = await run(bin, ["decode", "--demo"]);
    expect(stdout).toContain("sent by the client, packet number 2, 1162 bytes of frames");
    expect(stdout).toContain("server_name: example.com");
    expect(stdout).toContain("CRYPTO offset=0 length=241");
    expect(stdout).toContain("PADDING ×917");
  });
});

describe("decodeDatagram", () => {
  it("reports a datagram that is not QUIC", () => {
    expect(decodeDatagram(Uint8Array.of(0x40))[0]).toMatch(/^not a QUIC packet/);
  });

  it("cannot decrypt an Initial whose DCID was altered, and says so", () => {
    const bytes = Uint8Array.from(Buffer.from(RFC9001_CLIENT_INITIAL, "hex"));
    bytes[6] ^= 1; // inside the DCID: the derived keys no longer match
    const lines = decodeDatagram(bytes);
    expect(lines[0]).toMatch(/^Initial packet/);
    expect(lines[1]).toContain("cannot remove protection");
  });
});
