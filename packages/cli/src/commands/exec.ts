import { once } from 'node:events';
import { Command } from 'commander';
import { action, client, intArg, withConnection, withExamples, type ConnectionFlags } from '../shared.js';

interface ExecFlags extends ConnectionFlags {
  timeout?: number;
  cwd?: string;
}

export function execCommand(): Command {
  const cmd = new Command('exec')
    .description("Run a command in a persistent sandbox (waking it), stream its output and exit with the command's exit code")
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .argument('<command...>', 'the command, run by /bin/bash -c (quote it to keep shell syntax for the sandbox)')
    .option('--timeout <seconds>', 'kill the command after this many seconds (exit code 124; default 300)', intArg(1))
    .option('--cwd <dir>', 'working directory (default /root)')
    .passThroughOptions();
  withConnection(cmd);
  withExamples(cmd, ['mags exec dev ls -la', `mags exec dev 'cd /root && python3 -c "print(6 * 7)"'`, "mags exec --timeout 600 dev 'sleep 1 && echo built'"]);
  return cmd.action(action(async (id: string, words: string[], flags: ExecFlags) => {
    const mags = await client(flags);
    const end = await mags.execStream(id, words.join(' '), {
      timeout: flags.timeout !== undefined ? flags.timeout * 1000 : undefined,
      cwd: flags.cwd,
      // A slow reader of our stdout (a pipe) holds the stream back instead of filling our memory.
      onOutput: (stream, text) => {
        const out = stream === 'stdout' ? process.stdout : process.stderr;
        return out.write(text) ? undefined : once(out, 'drain');
      },
    });
    if (end.timedOut) process.stderr.write(`mags: the command ran longer than ${flags.timeout ?? 300} s and was killed\n`);
    return end.exitCode;
  }));
}
