import { Command } from 'commander';
import { CliError, describeError } from '../exit-codes.js';
import { action, client, note, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

export function rmCommand(): Command {
  const cmd = new Command('rm')
    .description('Delete jobs that ended, and their output (a queued, running or sleeping job is refused; -f stops it first)')
    .argument('<name-or-id...>', 'request ids, job names or workspace ids')
    .option('-f, --force', 'stop a job that has not ended, then delete it');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags rm 0b6f1c1e-...', 'mags rm build test', 'mags rm -f myjob', 'mags rm $(mags list --status completed --json | jq -r ".jobs[].request_id")']);
  return cmd.action(action(async (ids: string[], flags: ConnectionFlags & { json?: boolean; force?: boolean }) => {
    const mags = await client(flags);
    const deleted: string[] = [];
    const failed: string[] = [];
    let exitCode = 0;
    for (const id of ids) {
      try {
        if (flags.force) await mags.stop(id, { timeoutMs: 300_000 });
        const r = await mags.deleteJob(id);
        deleted.push(r.request_id);
        if (!flags.json) out(`Deleted ${r.request_id}`);
      } catch (err) {
        // One id that fails does not keep the others from being deleted.
        if (ids.length === 1) throw err;
        const d = describeError(err);
        exitCode ||= d.exitCode;
        failed.push(id);
        note(`Error: ${id}: ${d.message}`);
      }
    }
    if (flags.json) printJson({ deleted });
    if (failed.length > 0) throw new CliError(`Could not delete ${failed.length} of ${ids.length} jobs: ${failed.join(', ')}`, { exitCode, hint: 'A job that has not ended is refused: stop it first, or use mags rm -f.' });
  }));
}
