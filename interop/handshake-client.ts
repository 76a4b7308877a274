/**
 * Connects, completes the QUIC+TLS handshake, prints "handshake ok alpn=… suite=…", closes.
 *   npx tsx interop/handshake-client.ts HOST PORT CA.pem ALPN
 */
import { readFileSync } from "node:fs";
import { connect } from "../src/quic/api.ts";

const [host, port, ca, alpn] = process.argv.slice(2);
try {
  const c = await connect({
    host,
    port: Number(port),
    serverName: "localhost",
    alpn: [alpn],
    ca: readFileSync(ca, "utf8"),
  });
  const d = c.handshakeData;
  process.stdout.write(`handshake ok alpn=${d.alpn} suite=${d.cipherSuite} rtt=${c.rtt.toFixed(1)}ms\n`);
  await c.close(0n, "done");
  process.exit(0);
} catch (err) {
  process.stdout.write(`handshake failed: ${(err as Error).message}\n`);
  process.exit(1);
}
