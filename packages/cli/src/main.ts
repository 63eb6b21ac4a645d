/**
 * Entry point of `mags`: parses the command line, runs one command and turns whatever it throws into
 * a message + hint on stderr and an exit code. This is the CLI's only error exit; commands never
 * call `process.exit`.
 */
import { EXIT, describeError } from './exit-codes.js';

/** Runs the CLI with `args` (without node and script path) and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  // Fast path: `mags --version` loads neither commander nor the SDK.
  if (args.length === 1 && (args[0] === '--version' || args[0] === '-V' || args[0] === '-v' || args[0] === 'version')) {
    const { cliVersion } = await import('./version.js');
    process.stdout.write(cliVersion() + '\n');
    return EXIT.OK;
  }
  // A closed pipe (`mags logs ID | head -1`) ends the command quietly, as other Unix tools do.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.OK);
    throw err;
  });
  const [{ CommanderError }, { buildProgram }, { exitCodeOf }] = await Promise.all([
    import('commander'),
    import('./program.js'),
    import('./shared.js'),
  ]);
  const program = buildProgram();
  if (args.length === 0) {
    program.outputHelp();
    return EXIT.OK;
  }
  try {
    await program.parseAsync(args, { from: 'user' });
    return exitCodeOf(program);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed its message (or the help / version text).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return EXIT.OK;
      }
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const { exitCode, message, hint } = describeError(err);
    if (args.includes('--json')) {
      // A script that parses stdout under --json gets the failure in the same form on stderr.
      const code = (err as { code?: unknown }).code;
      const body = { error: message, code: typeof code === 'string' ? code : exitCode === 130 ? 'INTERRUPTED' : 'CLI_ERROR', ...(hint ? { hint } : {}), exit_code: exitCode };
      process.stderr.write(JSON.stringify(body) + '\n');
      return exitCode;
    }
    process.stderr.write(`Error: ${message}\n`);
    if (hint) process.stderr.write(`Hint: ${hint}\n`);
    if (process.env.MAGS_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
    return exitCode;
  }
}
