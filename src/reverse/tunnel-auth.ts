/**
 * Edge authentication for the reverse tunnel, outside the quic-reverse control protocol (which has
 * none): before opening the control stream, the edge sends one unidirectional stream carrying
 * HMAC-SHA256(token, TLS exporter value). The token itself never crosses the wire, and the proof
 * is bound to this TLS connection (RFC 8446 §7.5 exporter), so it cannot be replayed elsewhere.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const AUTH_EXPORTER_LABEL = "EXPORTER-purequic-reverse-edge-auth";
export const AUTH_PROOF_SIZE = 32;
/** QUIC application error code the relay closes an unauthenticated edge's connection with. */
export const TUNNEL_UNAUTHORIZED = 0x101;

export interface ExportsKeyingMaterial {
  exportKeyingMaterial(label: string, context: Uint8Array, length: number): Uint8Array;
}

export function authProof(conn: ExportsKeyingMaterial, token: string): Uint8Array {
  const ekm = conn.exportKeyingMaterial(AUTH_EXPORTER_LABEL, new Uint8Array(0), 32);
  return new Uint8Array(createHmac("sha256", token).update(ekm).digest());
}

export function checkAuthProof(conn: ExportsKeyingMaterial, token: string, proof: Uint8Array): boolean {
  const expected = authProof(conn, token);
  return proof.length === expected.length && timingSafeEqual(proof, expected);
}
