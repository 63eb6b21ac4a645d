import { Command } from 'commander';
import { CliError, describeError } from '../exit-codes.js';
import { action, client, note, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

export function stopCommand(): Command {
  const cmd = new Command('stop')
    .description('Stop one or more jobs (a workspace is synced first)')
    .argument('<name-or-id...>', 'request ids, job names or workspace ids');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags stop 0b6f1c1e-...', 'mags stop build test lint', 'mags stop myproject --json']);
  return cmd.action(action(async (ids: string[], flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const answers: unknown[] = [];
    const failed: string[] = [];
    let exitCode = 0;
    for (const id of ids) {
      try {
        // Stopping syncs a workspace first, which can take longer than an ordinary request.
        const r = await mags.stop(id, { timeoutMs: 300_000 });
        answers.push(r);
        if (!flags.json) out(`Stopped ${r.request_id ?? id}${r.status ? ` (${r.status})` : ''}`);
      } catch (err) {
        // One id that fails does not keep the others from being stopped.
        if (ids.length === 1) throw err;
        const d = describeError(err);
        exitCode ||= d.exitCode;
        failed.push(id);
        note(`Error: ${id}: ${d.message}`);
      }
    }
    if (flags.json) printJson(ids.length === 1 ? answers[0] : answers);
    if (failed.length > 0) throw new CliError(`Could not stop ${failed.length} of ${ids.length} jobs: ${failed.join(', ')}`, { exitCode });
  }));
}
