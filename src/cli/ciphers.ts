import { CIPHER_SUITES } from "../quic/tls/handshake.ts";

/** Parses "TLS_CHACHA20_POLY1305_SHA256,TLS_AES_128_GCM_SHA256" into suite ids; throws on unknown names. */
export function parseCipherList(list: string): number[] {
  const byName = new Map([...CIPHER_SUITES.values()].map((s) => [s.name, s.id]));
  return list
    .split(",")
    .filter(Boolean)
    .map((name) => {
      const id = byName.get(name.trim());
      if (id === undefined)
        throw new Error(`unknown cipher suite "${name}" (known: ${[...byName.keys()].join(", ")})`);
      return id;
    });
}
