/**
 * Runs a bench module again in a child process, in a named role (a server, a load client), and
 * talks to it over Node's IPC channel with request → reply messages. Benches that measure a
 * server with clients in other processes use it:
 *
 *     // parent
 *     const server = await RoleProcess.start(import.meta.url, "server", { alpn: "bench" });
 *     const { port } = await server.call<{ port: number }>("listen");
 *     ...
 *     server.kill();
 *
 *     // at the end of the same module
 *     if (isMain(import.meta.url) && benchRole() === "server") serveRole({ listen: async () => ... });
 *
 * The child is `node --import tsx <module>` with BENCH_ROLE and BENCH_ROLE_ARGS (JSON) set.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The role this process was started in, or undefined in the parent. */
export function benchRole(): string | undefined {
  return process.env.BENCH_ROLE;
}

/** The arguments the parent gave the role (BENCH_ROLE_ARGS). */
export function roleArgs<T>(): T {
  return JSON.parse(process.env.BENCH_ROLE_ARGS ?? "{}") as T;
}

interface Request {
  readonly id: number;
  readonly type: string;
  readonly payload: unknown;
}

interface Reply {
  readonly id: number;
  readonly result?: unknown;
  readonly error?: string;
}

type Handler = (payload: never) => unknown;

/** (Child) Answers the parent's calls with `handlers[type](payload)`; tells the parent it is ready. */
export function serveRole(handlers: Record<string, Handler>): void {
  process.on("message", (msg: Request) => {
    const handler = handlers[msg.type];
    void (async () => {
      try {
        if (!handler) throw new Error(`role ${benchRole()}: no handler for ${msg.type}`);
        const result = await handler(msg.payload as never);
        process.send?.({ id: msg.id, result } satisfies Reply);
      } catch (err) {
        process.send?.({ id: msg.id, error: (err as Error).stack ?? String(err) } satisfies Reply);
      }
    })();
  });
  process.on("disconnect", () => process.exit(0));
  process.send?.({ id: 0, result: "ready" } satisfies Reply);
}

/** (Parent) A child process running a bench module in a role. */
export class RoleProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: Error | undefined;

  private constructor(readonly child: ChildProcess) {
    child.on("message", (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    child.on("exit", (code, signal) => {
      this.exited = new Error(`bench role exited (${code ?? signal})`);
      for (const p of this.pending.values()) p.reject(this.exited);
      this.pending.clear();
    });
  }

  /** Starts `moduleUrl` in `role`; resolves once the child's handlers are installed. */
  static start(
    moduleUrl: string,
    role: string,
    args: unknown = {},
    nodeFlags: readonly string[] = [],
  ): Promise<RoleProcess> {
    const child = fork(fileURLToPath(moduleUrl), [], {
      // tsx resolved from here, so the child loads it whatever the working directory.
      execArgv: [...nodeFlags, "--import", import.meta.resolve("tsx")],
      env: { ...process.env, BENCH_ROLE: role, BENCH_ROLE_ARGS: JSON.stringify(args) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const rp = new RoleProcess(child);
    return new Promise((resolve, reject) => {
      rp.pending.set(0, { resolve: () => resolve(rp), reject });
    });
  }

  /** Sends a request to the child's handler `type`; resolves with its result. */
  call<T>(type: string, payload: unknown = {}): Promise<T> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, type, payload } satisfies Request);
    });
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }
}

/** Median of `values` (NaN when empty). */
export function medianOf(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** The `p`-th percentile (0–100, nearest rank) of `values` (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** "median (min–max)" pieces of a list of per-run figures, formatted by `fmt`. */
export function spread(values: readonly number[], fmt: (n: number) => string): [string, string] {
  if (values.length === 0) return ["–", ""];
  return [fmt(medianOf(values)), `${fmt(Math.min(...values))}–${fmt(Math.max(...values))}`];
}
