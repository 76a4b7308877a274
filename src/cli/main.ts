/**
 * `purequic` command line. Each subcommand lives in its own module under src/cli/ and exports a
 * {@link Command}; argument parsing is node:util's parseArgs. Returns the process exit code.
 */
import { readFileSync } from "node:fs";
import type { Command } from "./command.ts";
import { decodeCommand } from "./decode.ts";
import { getCommand } from "./get.ts";
import { reverseCommand } from "./reverse.ts";
import { serverCommand } from "./server.ts";

const commands: Command[] = [serverCommand, getCommand, decodeCommand, reverseCommand];

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "purequic — QUIC, HTTP/3 and WebTransport in pure TypeScript",
    "",
    "Usage: purequic <command> [options]",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Options:",
    "  -h, --help     show this help (or a command's: purequic <command> --help)",
    "  -V, --version  print the version",
    "",
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "-h" || first === "--help" || first === "help") {
    process.stdout.write(usage());
    return first === undefined ? 2 : 0;
  }
  if (first === "-V" || first === "--version") {
    process.stdout.write(`purequic ${version()}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === first);
  if (!command) {
    process.stderr.write(`purequic: unknown command '${first}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    // parseArgs reports unknown or malformed options as TypeError with an ERR_PARSE_ARGS_* code.
    const code = (err as { code?: string }).code;
    if (code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`purequic ${command.name}: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
}
