/** Exit codes of `mags` (documented in docs/cli.md). `mags run` exits with the script's own code. */
export const EXIT = {
  OK: 0,
  GENERAL: 1,
  USAGE: 2,
  AUTH: 3,
  NOT_FOUND: 4,
  UNREACHABLE: 5,
  /** `mags run`: the script exited 0 but the server discarded part of its output (the output cap). */
  OUTPUT_TRUNCATED: 6,
  TIMEOUT: 124,
} as const;

/** An error a command throws on purpose: message, optional hint, exit code. */
export class CliError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(message: string, opts: { exitCode?: number; hint?: string } = {}) {
    super(message);
    this.name = 'CliError';
    this.exitCode = opts.exitCode ?? EXIT.GENERAL;
    this.hint = opts.hint;
  }
}

/** Thrown for bad flag combinations and values commander cannot check itself. */
export function usageError(message: string, hint?: string): CliError {
  return new CliError(message, { exitCode: EXIT.USAGE, hint });
}

/**
 * Maps any thrown error to the exit code and the text the entry point prints. SDK errors are
 * recognised by class name so this module does not load the SDK.
 */
export function describeError(err: unknown): { exitCode: number; message: string; hint?: string } {
  if (err instanceof CliError) return { exitCode: err.exitCode, message: err.message, hint: err.hint };
  if (err instanceof Error) {
    const e = err as Error & { hint?: string; code?: string };
    const hint = typeof e.hint === 'string' ? e.hint : undefined;
    switch (err.name) {
      case 'AuthenticationError':
        return { exitCode: EXIT.AUTH, message: err.message, hint };
      case 'NotFoundError':
        // The server's hint names REST paths; on the command line the matching command helps more.
        return { exitCode: EXIT.NOT_FOUND, message: err.message, hint: notFoundHint(e.code) ?? hint };
      case 'ConnectionError':
        return { exitCode: EXIT.UNREACHABLE, message: err.message, hint };
      case 'TimeoutError':
        return { exitCode: e.code === 'TIMEOUT' ? EXIT.TIMEOUT : EXIT.GENERAL, message: err.message, hint };
      case 'ValidationError':
        return { exitCode: EXIT.USAGE, message: err.message, hint };
      case 'AbortError':
        return { exitCode: 130, message: 'Interrupted' };
      default:
        return { exitCode: EXIT.GENERAL, message: err.message, hint };
    }
  }
  return { exitCode: EXIT.GENERAL, message: String(err) };
}

function notFoundHint(code: string | undefined): string | undefined {
  if (code === 'TOKEN_NOT_FOUND') return 'List your tokens with `mags token list`.';
  if (code === 'JOB_NOT_FOUND') return 'List your jobs with `mags list`.';
  return undefined;
}
