/** A `purequic` subcommand. */
export interface Command {
  readonly name: string;
  /** One line for `purequic --help`. */
  readonly summary: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(args: string[]): Promise<number>;
}
