/**
 * `purequic reverse relay|edge`: a reverse TCP tunnel over quic-reverse. The edge (behind NAT)
 * dials the relay; a TCP client connecting to the relay's port for a service is tunnelled through
 * a reverse-opened stream to that service next to the edge.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { readPem } from "../quic/api.ts";
import { type EdgeService, TunnelEdge } from "../reverse/tunnel-edge.ts";
import { type ExposedService, TunnelRelay } from "../reverse/tunnel-relay.ts";
import type { Command } from "./command.ts";
import { parseHostPort } from "./hostport.ts";

const HELP = `Usage: purequic reverse relay [options]
       purequic reverse edge [options]

A reverse TCP tunnel over QUIC (quic-reverse v1 control protocol). The edge, behind NAT, dials
the relay; TCP connections to the relay's port for NAME reach the edge's service NAME.

relay options:
  --listen HOST:PORT        UDP address for edges (default 0.0.0.0:4433)
  --expose NAME=[HOST:]PORT TCP port (on 127.0.0.1 unless HOST is given) whose connections go to
                            the edge's service NAME; repeat for several services
  --token T                 edges must prove this token (or set PUREQUIC_REVERSE_TOKEN)
  --client-ca FILE          edges must present a certificate issued by this CA (mutual TLS)
  --cert FILE --key FILE    the relay's certificate (default: a generated development certificate,
                            written to a temporary file for edges' --ca)

edge options:
  --relay HOST:PORT         the relay's UDP address
  --service NAME=HOST:PORT  local service NAME; repeat for several services
  --ca FILE | --cert-hash HEX | --insecure
                            trust the relay's certificate from this PEM root, or by its SHA-256,
                            or do not verify it
  --server-name NAME        name for SNI and the certificate check (default: the relay's host)
  --token T                 token the relay expects (or set PUREQUIC_REVERSE_TOKEN)
  --cert FILE --key FILE    client certificate for mutual TLS
  --no-reconnect            exit when the session ends instead of reconnecting

  -q, --quiet               log only errors
  -h, --help                show this help
`;

function parseNamed(value: string, what: string): { name: string; rest: string } {
  const i = value.indexOf("=");
  if (i <= 0 || i === value.length - 1) throw new Error(`${what}: expected NAME=..., got "${value}"`);
  return { name: value.slice(0, i), rest: value.slice(i + 1) };
}

function parseExpose(value: string): ExposedService {
  const { name, rest } = parseNamed(value, "--expose");
  if (/^\d+$/.test(rest)) return { name, port: Number(rest) };
  const { host, port } = parseHostPort(rest);
  return { name, host, port };
}

function parseService(value: string): EdgeService {
  const { name, rest } = parseNamed(value, "--service");
  const { host, port } = parseHostPort(rest);
  return { name, host: host === "0.0.0.0" ? "127.0.0.1" : host, port };
}

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once("SIGINT", on("SIGINT"));
    process.once("SIGTERM", on("SIGTERM"));
  });
}

async function relay(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: "string" },
      expose: { type: "string", multiple: true },
      token: { type: "string" },
      "client-ca": { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const fail = (msg: string) => {
    process.stderr.write(`purequic reverse relay: ${msg}\n`);
    return 2;
  };
  if ((values.cert === undefined) !== (values.key === undefined)) return fail("--cert and --key go together");
  if (!values.expose?.length) return fail("give at least one --expose NAME=PORT");
  let expose: ExposedService[];
  let listenAt: { host: string; port: number };
  try {
    expose = values.expose.map(parseExpose);
    listenAt = parseHostPort(values.listen ?? "0.0.0.0:4433");
  } catch (err) {
    return fail((err as Error).message);
  }
  const token = values.token ?? process.env.PUREQUIC_REVERSE_TOKEN;
  const log = (line: string) => {
    if (!values.quiet) process.stdout.write(`${line}\n`);
  };
  const r = await TunnelRelay.start({
    host: listenAt.host,
    port: listenAt.port,
    expose,
    token,
    clientCaPem: values["client-ca"] ? readPem(values["client-ca"]) : undefined,
    certificatePem: values.cert ? readPem(values.cert) : undefined,
    privateKeyPem: values.key ? readPem(values.key) : undefined,
    log,
  });
  const a = r.udpAddress;
  process.stdout.write(`purequic reverse relay listening on udp ${a.address}:${a.port}\n`);
  for (const s of expose) {
    const t = r.tcpAddress(s.name);
    process.stdout.write(`  ${s.name}: tcp ${t.address}:${t.port}\n`);
  }
  process.stdout.write(`certificate sha-256 (for edges' --cert-hash): ${r.certificateSha256Hex}\n`);
  if (r.certificatePem) {
    const file = join(mkdtempSync(join(tmpdir(), "purequic-relay-")), "relay-cert.pem");
    writeFileSync(file, r.certificatePem);
    process.stdout.write(`development certificate (localhost, 127.0.0.1, ::1) for edges' --ca: ${file}\n`);
  }
  if (token === undefined && !values["client-ca"]) {
    process.stderr.write(
      "warning: no --token and no --client-ca: anyone who can reach this relay can register services\n",
    );
  }
  const sig = await untilSignal();
  log(`${sig}: shutting down`);
  await r.close();
  return 0;
}

async function edge(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      relay: { type: "string" },
      service: { type: "string", multiple: true },
      ca: { type: "string" },
      insecure: { type: "boolean" },
      "cert-hash": { type: "string" },
      "server-name": { type: "string" },
      token: { type: "string" },
      cert: { type: "string" },
      key: { type: "string" },
      "no-reconnect": { type: "boolean" },
      quiet: { type: "boolean", short: "q" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const fail = (msg: string) => {
    process.stderr.write(`purequic reverse edge: ${msg}\n`);
    return 2;
  };
  if (!values.relay) return fail("--relay HOST:PORT is required");
  if (!values.service?.length) return fail("give at least one --service NAME=HOST:PORT");
  const certHash = values["cert-hash"];
  if (certHash !== undefined && !/^(?:[0-9a-fA-F]{2}:?){32}$/.test(certHash)) {
    return fail("--cert-hash wants the certificate's SHA-256 in hex");
  }
  if (!values.ca && !values.insecure && !certHash) {
    return fail("give --ca FILE or --cert-hash HEX to verify the relay, or --insecure");
  }
  if ((values.cert === undefined) !== (values.key === undefined)) return fail("--cert and --key go together");
  let services: EdgeService[];
  let relayAt: { host: string; port: number };
  try {
    services = values.service.map(parseService);
    relayAt = parseHostPort(values.relay);
  } catch (err) {
    return fail((err as Error).message);
  }
  const log = (line: string) => {
    if (!values.quiet) process.stdout.write(`${line}\n`);
  };
  const e = new TunnelEdge({
    relayHost: relayAt.host,
    relayPort: relayAt.port,
    serverName: values["server-name"],
    ca: values.ca ? readPem(values.ca) : undefined,
    insecure: values.insecure === true,
    certificateSha256: certHash
      ? Uint8Array.from(Buffer.from(certHash.replaceAll(":", ""), "hex"))
      : undefined,
    token: values.token ?? process.env.PUREQUIC_REVERSE_TOKEN,
    certificate:
      values.cert && values.key
        ? { certificatePem: readPem(values.cert), privateKeyPem: readPem(values.key) }
        : undefined,
    reconnect: values["no-reconnect"] !== true,
    services,
    log,
  });
  const outcome = await Promise.race([
    e.done.then(
      () => "done" as const,
      (err: Error) => err,
    ),
    untilSignal(),
  ]);
  if (outcome instanceof Error) {
    process.stderr.write(`purequic reverse edge: ${outcome.message}\n`);
    await e.close();
    return 1;
  }
  if (outcome !== "done") log(`${outcome}: shutting down`);
  await e.close();
  return 0;
}

export const reverseCommand: Command = {
  name: "reverse",
  summary: "reverse TCP tunnel over QUIC: `reverse relay` and `reverse edge` (quic-reverse)",
  async run(args) {
    const [sub, ...rest] = args;
    if (sub === "relay") return relay(rest);
    if (sub === "edge") return edge(rest);
    if (sub === "-h" || sub === "--help" || sub === undefined) {
      process.stdout.write(HELP);
      return sub === undefined ? 2 : 0;
    }
    process.stderr.write(`purequic reverse: unknown subcommand '${sub}' (relay or edge)\n\n${HELP}`);
    return 2;
  },
};
