/**
 * What every command shares: the connection options (`--token`, `--api-url`), `--json`, how the SDK
 * client is created (lazily, so `mags --version` and `mags --help` never load it) and how results
 * reach stdout.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { LogEntry, Mags } from '@mags/sdk';

/** What a command's action returns: its exit code (`mags run`: the script's); nothing means 0. */
export type CommandResult = number | void;

/** Exit codes of finished actions, by the program that ran them (each `main` call builds its own). */
const results = new WeakMap<Command, number>();

/**
 * Wraps a command's action so the exit code it returns reaches `main`, which reads it with
 * `exitCodeOf(program)` after parsing. Errors are not caught here: they go to `main` as thrown.
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<CommandResult>,
): (this: Command, ...args: A) => Promise<void> {
  return async function (this: Command, ...args: A): Promise<void> {
    const code = await fn(...args);
    let root: Command = this;
    while (root.parent) root = root.parent;
    results.set(root, code ?? 0);
  };
}

/** The exit code the action run by `program` returned; 0 when it returned none. */
export function exitCodeOf(program: Command): number {
  return results.get(program) ?? 0;
}

export interface ConnectionFlags {
  token?: string;
  apiUrl?: string;
}

/** Adds `--token` and `--api-url` (flag > env > config file). */
export function withConnection(cmd: Command): Command {
  return cmd
    .addOption(new Option('--token <token>', 'API token (default: MAGS_API_TOKEN, MAGS_TOKEN, then ~/.mags/config.json)'))
    .addOption(new Option('--api-url <url>', 'server URL (default: MAGS_API_URL, then ~/.mags/config.json, then http://127.0.0.1:8090)'));
}

/** Adds `--json`. */
export function withJson(cmd: Command): Command {
  return cmd.option('--json', 'print the result as JSON on stdout');
}

/** Appends an "Examples:" block to a command's help. */
export function withExamples(cmd: Command, examples: string[]): Command {
  return cmd.addHelpText('after', '\nExamples:\n' + examples.map((e) => `  $ ${e}`).join('\n') + '\n');
}

/** Creates the SDK client from the flags; fails early, with the fix, when there is no token. */
export async function client(flags: ConnectionFlags, opts: { requireToken?: boolean } = {}): Promise<Mags> {
  const sdk = await import('@mags/sdk');
  const mags = new sdk.Mags({ apiToken: flags.token, apiUrl: flags.apiUrl, timeout: 30_000 });
  if ((opts.requireToken ?? true) && !mags.hasToken) {
    throw new sdk.AuthenticationError('API token required: set MAGS_API_TOKEN or run `mags login`', {
      code: 'AUTH_REQUIRED',
      hint: sdk.AUTH_HINT,
    });
  }
  return mags;
}

/** Writes one JSON document to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Writes a line to stdout. */
export function out(line = ''): void {
  process.stdout.write(line + '\n');
}

/** Writes a line to stderr (progress, hints). */
export function note(line: string): void {
  process.stderr.write(line + '\n');
}

/** Formats rows as an aligned text table with a header. */
export function table(header: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : (c ?? '').padEnd(widths[i]!))).join('  ')).join('\n');
}

/** Parses a whole-number flag value (commander prints the message and exits with code 2). */
export function intArg(min = 0): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < min) {
      throw new InvalidArgumentError(`Needs a whole number${min > 0 ? ` of at least ${min}` : ''}.`);
    }
    return n;
  };
}

/**
 * Writes one job output line where it belongs: stdout lines to stdout, stderr lines to stderr,
 * platform events (stream `system`) to stderr as `[mags] ...` when `system` is set.
 */
export function writeLogLine(line: LogEntry, opts: { system: boolean }): void {
  const stream = line.stream ?? (line.level === 'error' ? 'stderr' : 'stdout');
  if (stream === 'stdout') process.stdout.write(line.message + '\n');
  else if (stream === 'stderr') process.stderr.write(line.message + '\n');
  else if (opts.system) process.stderr.write(`[mags] ${line.message}\n`);
}
