import { Command } from 'commander';
import { shownStatus } from '../job-view.js';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

const FIELDS = [
  'request_id', 'name', 'status', 'exit_code', 'end_reason', 'error_message', 'workspace_id', 'persistent', 'no_sleep',
  'vm_id', 'url', 'script_duration_ms', 'created_at', 'started_at', 'completed_at',
] as const;

export function statusCommand(): Command {
  const cmd = new Command('status')
    .description("Show a job's status (by request id, name or workspace id)")
    .argument('<name-or-id>', 'request id, job name or workspace id');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags status 0b6f1c1e-...', 'mags status myproject --json']);
  return cmd.action(action(async (id: string, flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const job = await mags.status(id);
    if (flags.json) return printJson(job);
    const rec: Record<string, unknown> = { ...job, status: shownStatus(job) };
    const width = Math.max(...FIELDS.map((f) => f.length));
    for (const f of FIELDS) {
      const v = rec[f];
      if (v === undefined || v === null || v === '') continue;
      out(`${f.padEnd(width)}  ${String(v)}`);
    }
  }));
}
