import { Command } from 'commander';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

export function stopCommand(): Command {
  const cmd = new Command('stop')
    .description('Stop a job (a workspace is synced first)')
    .argument('<name-or-id>', 'request id, job name or workspace id');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags stop 0b6f1c1e-...', 'mags stop myproject --json']);
  return cmd.action(action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    // Stopping syncs a workspace first, which can take longer than an ordinary request.
    const r = await mags.stop(id, { timeoutMs: 300_000 });
    if (flags.json) return printJson(r);
    out(`Stopped ${r.request_id ?? id}${r.status ? ` (${r.status})` : ''}`);
  }));
}
