/**
 * The shapes the interop matrix (interop/run.ts) is built from: an implementation under test
 * (`Impl`, one per peer, in interop/run.ts or interop/impls/), the context of one run, a test
 * case, and the process helpers every implementation uses.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { RelayOptions, RelayStats } from "./relay.ts";

export interface ServerRun {
  port: number;
  child: ChildProcess;
  output: () => string;
}

export interface Impl {
  readonly name: string;
  readonly version: string;
  readonly isPurequic: boolean;
  /** Case names this implementation cannot take part in, with the reason. */
  readonly unsupported: Record<string, string>;
  /** Cases it cannot do in one role only, with the reason; the key "*" means every case. */
  readonly unsupportedAsClient?: Record<string, string>;
  readonly unsupportedAsServer?: Record<string, string>;
  /**
   * Cases where this peer has a diagnosed bug that makes some runs fail, per role. A failing cell
   * is shown as the peer's ("✗ peer", not failing the run) only when its own logs show the bug's
   * signature (`seen`); a passing one stays ✓.
   */
  readonly knownBugsAsClient?: Record<string, KnownBug>;
  readonly knownBugsAsServer?: Record<string, KnownBug>;
  server(ctx: RunContext): Promise<ServerRun>;
  client(ctx: RunContext, port: number, urls: string[]): Promise<{ code: number | null; output: string }>;
}

/** A diagnosed bug of a peer, and how to recognise it in a failed cell's logs. */
export interface KnownBug {
  /** What goes wrong and where it was seen. */
  readonly reason: string;
  /** Whether the results folder `dir` of a failed cell shows the bug's signature. */
  seen(dir: string): boolean;
}

/** One cell of the matrix. */
export interface Cell {
  status: "pass" | "fail" | "peer" | "n/a" | "pending";
  detail: string;
}

/**
 * The cell as shown: a failure becomes the peer's only when `bug` is diagnosed for this case and
 * role and its signature is in this run's logs (`dir`); otherwise it stays a failure, saying that
 * the known bug's signature is missing. Any other cell is returned as it is.
 */
export function blameCell(cell: Cell, bug: KnownBug | undefined, dir: string): Cell {
  if (cell.status !== "fail" || !bug) return cell;
  let seen: boolean;
  try {
    seen = bug.seen(dir);
  } catch {
    seen = false; // unreadable logs are no evidence
  }
  return seen
    ? { status: "peer", detail: `${cell.detail} — the peer's bug: ${bug.reason}` }
    : {
        status: "fail",
        detail: `${cell.detail} (not the peer's known bug for this case: its signature is not in the logs)`,
      };
}

/** Why `client` × `server` cannot run `testCase` (a cell "n/a"), or undefined. */
export function whyUnsupported(testCase: string, client: Impl, server: Impl): string | undefined {
  return (
    client.unsupported[testCase] ??
    server.unsupported[testCase] ??
    client.unsupportedAsClient?.[testCase] ??
    client.unsupportedAsClient?.["*"] ??
    server.unsupportedAsServer?.[testCase] ??
    server.unsupportedAsServer?.["*"]
  );
}

export interface RunContext {
  readonly dir: string;
  readonly www: string;
  readonly downloads: string;
  readonly cert: string;
  readonly key: string;
  readonly qlogDir: string;
  readonly testCase: TestCase;
  readonly host: string;
  /** Only true for a certificate chain that webpki-based peers cannot verify (amplificationlimit). */
  readonly insecure: boolean;
}

export interface TestCase {
  readonly name: string;
  readonly description: string;
  /** Files to serve and download: [name, size]. */
  readonly files: () => [string, number][];
  readonly connections?: "one" | "each";
  readonly host?: string;
  readonly timeoutMs: number;
  readonly purequicServerArgs?: string[];
  readonly purequicClientArgs?: string[];
  /** Extra checks on purequic's qlog files (the purequic side of the run). */
  readonly check?: (facts: QlogFacts, tc: TestCase) => string | undefined;
  /** A purequic feature this case needs that does not exist yet. */
  readonly pending?: string;
  /** Run the traffic through interop/relay.ts with these impairments. */
  readonly relay?: RelayScenario;
  /** "large-chain": 8 intermediates and a padded leaf, as the runner's amplificationlimit. */
  readonly certificate?: "large-chain";
  /** Two connections in a row: the first fetches the first file, the second the rest. */
  readonly resume?: "ticket" | "0rtt";
  /**
   * What the client must do: "download" (default) every file byte for byte and exit 0;
   * "give-up": abandon the attempt on the server's Version Negotiation (versionnegotiation).
   */
  readonly clientOutcome?: "download" | "give-up";
}

/** The impairments of a relay-based case and the checks made from its capture. */
export interface RelayScenario {
  readonly options: Omit<RelayOptions, "server" | "seed" | "onDatagram">;
  /** A string fails the cell; `{ note }` passes it with a note (shown under the matrix). */
  readonly check?: (capture: RelayCapture) => string | { note: string } | undefined;
}

export interface RelayCapture {
  readonly stats: RelayStats;
  /** ClientHello (re)transmissions: client Initials carrying CRYPTO at offset 0, per flow. */
  readonly clientHellos: Map<number, number>;
}

export interface QlogFacts {
  /** Connections that sent an Initial packet (the runner counts server Initial SCIDs). */
  connections: number;
  versions: Set<number>;
  retries: number;
  /** Per connection, in order of start: facts for resumption and 0-RTT. */
  perConnection: ConnectionFacts[];
  /** DER size of the server's leaf certificate (filled in by the runner). */
  certificateBytes: number;
}

export interface ConnectionFacts {
  vantage: "client" | "server";
  start: number;
  /** CRYPTO bytes the server sent in Handshake packets (its Certificate is in them unless resumed). */
  serverHandshakeCryptoBytes: number;
  zeroRttSent: number;
  zeroRttReceived: number;
  /** STREAM payload bytes the client sent in 1-RTT packets. */
  clientOneRttStreamBytes: number;
  /** Data (hex) of the PATH_CHALLENGE / PATH_RESPONSE frames purequic sent and received (RFC 9000 §8.2). */
  pathChallengesSent: string[];
  pathChallengesReceived: string[];
  pathResponsesSent: string[];
  pathResponsesReceived: string[];
  /** qlog network tuples (tuple_assigned): tuple ID → the connection IDs used toward it. */
  tupleConnectionIds: Record<string, string[]>;
  /** Tuple IDs whose migration_state_updated reached migration_complete. */
  migratedTuples: string[];
}

export function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout?.on("data", (d) => (output += d));
    child.stderr?.on("data", (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n[interop] killed after ${timeoutMs} ms`;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

export function waitForPort(child: ChildProcess, ready: RegExp): Promise<ServerRun> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start: ${out.slice(-300)}`));
    }, 20_000);
    const on = (d: Buffer) => {
      out += d;
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), child, output: () => out });
      }
    };
    child.stdout?.on("data", on);
    child.stderr?.on("data", on);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}: ${out.slice(-300)}`));
    });
  });
}
