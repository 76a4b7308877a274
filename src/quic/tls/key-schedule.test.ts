import { createPrivateKey, createPublicKey, diffieHellman } from "node:crypto";
import { describe, expect, it } from "vitest";
import { cryptoProviders } from "../crypto/providers.ts";
import { KeySchedule, Transcript } from "./key-schedule.ts";
import rfc8448 from "./testdata/rfc8448.json" with { type: "json" };

type Section = "3" | "4";
const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const concat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));

/** The values of the first step of `section` done by `actor` whose title is exactly `title`. */
function step(section: Section, actor: "client" | "server", title: string): Record<string, string> {
  const found = rfc8448.sections[section].find((s) => s.actor === actor && s.step === title);
  if (!found) throw new Error(`RFC 8448 §${section}: no step ${actor} "${title}"`);
  return found.values as Record<string, string>;
}
const msg = (section: Section, actor: "client" | "server", name: string) =>
  hex(step(section, actor, `construct a${/^[AEIOU]/.test(name) ? "n" : ""} ${name} handshake message`)[name]);

/** X25519 shared secret from a raw private key and a raw peer public key. */
function x25519(privateRaw: Uint8Array, publicRaw: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b656e04220420", "hex"), privateRaw]),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = createPublicKey({
    key: Buffer.concat([Buffer.from("302a300506032b656e032100", "hex"), publicRaw]),
    format: "der",
    type: "spki",
  });
  return diffieHellman({ privateKey, publicKey });
}

describe.each(cryptoProviders.map((p) => [p.name, p] as const))(
  "TLS 1.3 key schedule (%s)",
  (_, provider) => {
    const ks = new KeySchedule(provider, "sha256");

    // RFC 8448 §3: Simple 1-RTT Handshake.
    const ch = msg("3", "client", "ClientHello");
    const sh = msg("3", "server", "ServerHello");
    const ee = msg("3", "server", "EncryptedExtensions");
    const cert = msg("3", "server", "Certificate");
    const cv = msg("3", "server", "CertificateVerify");
    const sfin = msg("3", "server", "Finished");
    const cfin = msg("3", "client", "Finished");
    const nst = msg("3", "server", "NewSessionTicket");

    const early = ks.earlySecret();
    const shared = x25519(
      hex(step("3", "client", "create an ephemeral x25519 key pair")["private key"]),
      hex(step("3", "server", "create an ephemeral x25519 key pair")["public key"]),
    );
    const hs = ks.handshakeSecret(early, shared);
    const chsh = ks.transcriptHash(concat(ch, sh));
    const cHs = ks.deriveSecret(hs, "c hs traffic", chsh);
    const sHs = ks.deriveSecret(hs, "s hs traffic", chsh);
    const main = ks.mainSecret(hs);
    const toSfin = ks.transcriptHash(concat(ch, sh, ee, cert, cv, sfin));
    const cAp = ks.deriveSecret(main, "c ap traffic", toSfin);
    const resMaster = ks.deriveSecret(
      main,
      "res master",
      ks.transcriptHash(concat(ch, sh, ee, cert, cv, sfin, cfin)),
    );

    it("reproduces §3 early, handshake and main secrets", () => {
      expect(toHex(early)).toBe(step("3", "server", 'extract secret "early"').secret);
      expect(toHex(shared)).toBe(step("3", "server", 'extract secret "handshake"').IKM);
      expect(toHex(hs)).toBe(step("3", "server", 'extract secret "handshake"').secret);
      expect(toHex(main)).toBe(step("3", "server", 'extract secret "master"').secret);
    });

    it("reproduces §3 traffic secrets, exporter secret and resumption secret", () => {
      expect(toHex(cHs)).toBe(step("3", "server", 'derive secret "tls13 c hs traffic"').expanded);
      expect(toHex(sHs)).toBe(step("3", "server", 'derive secret "tls13 s hs traffic"').expanded);
      expect(toHex(cAp)).toBe(step("3", "server", 'derive secret "tls13 c ap traffic"').expanded);
      expect(toHex(ks.deriveSecret(main, "s ap traffic", toSfin))).toBe(
        step("3", "server", 'derive secret "tls13 s ap traffic"').expanded,
      );
      expect(toHex(ks.deriveSecret(main, "exp master", toSfin))).toBe(
        step("3", "server", 'derive secret "tls13 exp master"').expanded,
      );
      expect(toHex(resMaster)).toBe(step("3", "client", 'derive secret "tls13 res master"').expanded);
    });

    it("reproduces §3 Finished values of both sides", () => {
      const serverVerify = ks.finishedVerifyData(sHs, ks.transcriptHash(concat(ch, sh, ee, cert, cv)));
      expect(toHex(serverVerify)).toBe(step("3", "server", 'calculate finished "tls13 finished"').finished);
      expect(toHex(sfin.subarray(4))).toBe(toHex(serverVerify));
      const clientVerify = ks.finishedVerifyData(cHs, toSfin);
      expect(toHex(clientVerify)).toBe(step("3", "client", 'calculate finished "tls13 finished"').finished);
      expect(toHex(cfin.subarray(4))).toBe(toHex(clientVerify));
    });

    it("reproduces §3 record-layer traffic keys", () => {
      const hsKeys = ks.trafficKeys(sHs, 16);
      const v = step("3", "server", "derive write traffic keys for handshake data");
      expect(toHex(hsKeys.key)).toBe(v["key expanded"]);
      expect(toHex(hsKeys.iv)).toBe(v["iv expanded"]);
      const apKeys = ks.trafficKeys(cAp, 16);
      const c = step("3", "client", "derive write traffic keys for application data");
      expect(toHex(apKeys.key)).toBe(c["key expanded"]);
      expect(toHex(apKeys.iv)).toBe(c["iv expanded"]);
    });

    // RFC 8448 §4: Resumed 0-RTT Handshake, from the §3 ticket.
    const nonceLength = nst[4 + 8];
    const ticketNonce = nst.subarray(4 + 9, 4 + 9 + nonceLength);
    const psk = ks.resumptionPsk(resMaster, ticketNonce);
    const early4 = ks.earlySecret(psk);

    it("derives the §3 ticket's PSK and the §4 early secret from it", () => {
      expect(toHex(psk)).toBe(step("3", "server", 'generate resumption secret "tls13 resumption"').expanded);
      expect(toHex(early4)).toBe(step("4", "client", 'extract secret "early"').secret);
    });

    it("reproduces the §4 PSK binder over the partial ClientHello", () => {
      const b = step("4", "client", "calculate PSK binder");
      const prefix = hex(b["ClientHello prefix"]);
      expect(toHex(ks.transcriptHash(prefix))).toBe(b["binder hash"]);
      expect(toHex(ks.binderKey(early4))).toBe(b.PRK);
      expect(toHex(ks.finishedVerifyData(ks.binderKey(early4), ks.transcriptHash(prefix)))).toBe(b.finished);
    });

    it("reproduces the §4 early traffic and early exporter secrets, and the handshake after them", () => {
      // The constructed ClientHello still has placeholder binders; the sent one carries the real binder.
      const ch4 = hex(step("4", "client", "send handshake record").payload);
      expect(
        toHex(ch4.subarray(0, hex(step("4", "client", "calculate PSK binder")["ClientHello prefix"]).length)),
      ).toBe(step("4", "client", "calculate PSK binder")["ClientHello prefix"]);
      const sh4 = msg("4", "server", "ServerHello");
      const chHash = ks.transcriptHash(ch4);
      expect(toHex(ks.deriveSecret(early4, "c e traffic", chHash))).toBe(
        step("4", "client", 'derive secret "tls13 c e traffic"').expanded,
      );
      expect(toHex(ks.deriveSecret(early4, "e exp master", chHash))).toBe(
        step("4", "client", 'derive secret "tls13 e exp master"').expanded,
      );
      const shared4 = x25519(
        hex(step("4", "client", "create an ephemeral x25519 key pair")["private key"]),
        hex(step("4", "server", "create an ephemeral x25519 key pair")["public key"]),
      );
      const hs4 = ks.handshakeSecret(early4, shared4);
      expect(toHex(hs4)).toBe(step("4", "server", 'extract secret "handshake"').secret);
      expect(toHex(ks.deriveSecret(hs4, "s hs traffic", ks.transcriptHash(concat(ch4, sh4))))).toBe(
        step("4", "server", 'derive secret "tls13 s hs traffic"').expanded,
      );
      expect(toHex(ks.mainSecret(hs4))).toBe(step("4", "server", 'extract secret "master"').secret);
    });

    it("computes exporters that depend on label, context and secret", () => {
      const a = ks.exporter(main, "EXPORTER-test", new Uint8Array(0), 32);
      expect(a).toHaveLength(32);
      expect(toHex(ks.exporter(main, "EXPORTER-test", new Uint8Array(0), 32))).toBe(toHex(a));
      expect(toHex(ks.exporter(main, "EXPORTER-other", new Uint8Array(0), 32))).not.toBe(toHex(a));
      expect(toHex(ks.exporter(main, "EXPORTER-test", Uint8Array.of(1), 32))).not.toBe(toHex(a));
      // §7.5: Derive-Secret(secret, label, "") then HKDF-Expand-Label(., "exporter", Hash(context), L)
      const manual = ks.expandLabel(
        ks.deriveSecret(main, "EXPORTER-test", provider.hash("sha256", new Uint8Array(0))),
        "exporter",
        provider.hash("sha256", new Uint8Array(0)),
        32,
      );
      expect(toHex(a)).toBe(toHex(manual));
    });

    it("derives distinct next-generation application secrets", () => {
      const next = ks.nextApplicationTrafficSecret(cAp);
      expect(next).toHaveLength(32);
      expect(toHex(next)).not.toBe(toHex(cAp));
      expect(toHex(ks.expandLabel(cAp, "traffic upd", new Uint8Array(0), 32))).toBe(toHex(next));
    });
  },
);

describe("Transcript", () => {
  const ks = new KeySchedule(cryptoProviders[0], "sha256");

  it("hashes the concatenation of the messages added", () => {
    const t = new Transcript();
    t.add(hex("0100"));
    t.add(hex("0200"));
    expect(toHex(t.hash(ks))).toBe(toHex(ks.transcriptHash(hex("01000200"))));
    t.add(hex("08"));
    expect(toHex(t.bytes())).toBe("0100020008");
  });

  it("replaces ClientHello1 with message_hash after HelloRetryRequest (§4.4.1)", () => {
    const t = new Transcript();
    const ch1 = hex("010000020303");
    t.add(ch1);
    t.replaceWithMessageHash(ks);
    const bytes = t.bytes();
    expect(bytes[0]).toBe(254);
    expect(toHex(bytes.subarray(1, 4))).toBe("000020");
    expect(toHex(bytes.subarray(4))).toBe(toHex(ks.transcriptHash(ch1)));
  });
});

describe("KeySchedule constants shared across handshakes", () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  it.each(cryptoProviders.map((p) => [p.name, p] as const))(
    "%s: the no-PSK Early Secret is a private copy, and the Handshake Secret matches the full derivation",
    (_name, provider) => {
      for (const hash of ["sha256", "sha384"] as const) {
        const ks = new KeySchedule(provider, hash);
        const len = ks.hashLength;
        const zeros = new Uint8Array(len);
        // RFC 9846 §7.1 from first principles, without the cached values.
        const early = provider.hkdfExtract(hash, zeros, zeros);
        const emptyHash = provider.hash(hash, new Uint8Array(0));
        const salt = ks.expandLabel(early, "derived", emptyHash, len);
        const shared = new Uint8Array(32).fill(7);
        const expected = hex(provider.hkdfExtract(hash, salt, shared));

        const e1 = ks.earlySecret();
        expect(hex(e1)).toBe(hex(early));
        e1.fill(0); // a caller scribbling on its copy changes nothing for the next handshake
        const e2 = new KeySchedule(provider, hash).earlySecret();
        expect(hex(e2)).toBe(hex(early));
        expect(hex(ks.handshakeSecret(e2, shared))).toBe(expected);
        // A PSK early secret takes the full path and differs.
        const pskEarly = ks.earlySecret(new Uint8Array(len).fill(1));
        expect(hex(pskEarly)).not.toBe(hex(early));
        const pskSalt = ks.expandLabel(pskEarly, "derived", emptyHash, len);
        expect(hex(ks.handshakeSecret(pskEarly, shared))).toBe(
          hex(provider.hkdfExtract(hash, pskSalt, shared)),
        );
      }
    },
  );
});
