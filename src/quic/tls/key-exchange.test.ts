import { describe, expect, it } from "vitest";
import { TlsError } from "./alert.ts";
import { NamedGroup } from "./extensions.ts";
import { generateKeyShare, SUPPORTED_GROUPS } from "./key-exchange.ts";
import rfc8448 from "./testdata/rfc8448.json" with { type: "json" };

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("key exchange", () => {
  it.each(SUPPORTED_GROUPS.map((g) => [g]))("agrees on a shared secret for group 0x%s", (group) => {
    const a = generateKeyShare(group);
    const b = generateKeyShare(group);
    expect(toHex(a.computeSharedSecret(b.publicKey))).toBe(toHex(b.computeSharedSecret(a.publicKey)));
    expect(toHex(a.publicKey)).not.toBe(toHex(b.publicKey));
  });

  it("reproduces RFC 8448 §3's x25519 public keys and shared secret", () => {
    const s3 = rfc8448.sections["3"];
    const values = (actor: string, title: string) =>
      s3.find((s) => s.actor === actor && s.step.startsWith(title))!.values as Record<string, string>;
    const client = values("client", "create an ephemeral x25519");
    const server = values("server", "create an ephemeral x25519");
    const c = generateKeyShare(NamedGroup.x25519, hex(client["private key"]));
    expect(toHex(c.publicKey)).toBe(client["public key"]);
    const ikm = values("server", 'extract secret "handshake"').IKM;
    expect(toHex(c.computeSharedSecret(hex(server["public key"])))).toBe(ikm);
  });

  it("rejects malformed peer shares with illegal_parameter", () => {
    const x = generateKeyShare(NamedGroup.x25519);
    expect(() => x.computeSharedSecret(new Uint8Array(31))).toThrow(TlsError);
    // a low-order point gives the all-zero secret (RFC 7748 §6.1)
    expect(() => x.computeSharedSecret(new Uint8Array(32))).toThrow(/zero|illegal/);
    const p = generateKeyShare(NamedGroup.secp256r1);
    expect(() => p.computeSharedSecret(new Uint8Array(65))).toThrow(TlsError);
    const offCurve = new Uint8Array(65);
    offCurve[0] = 4;
    offCurve[64] = 1;
    expect(() => p.computeSharedSecret(offCurve)).toThrow(TlsError);
    try {
      p.computeSharedSecret(offCurve);
    } catch (e) {
      expect((e as TlsError).alert).toBe(47);
    }
  });
});
