import { Command } from 'commander';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

export function poolCommand(): Command {
  const cmd = new Command('pool').alias('pool-status').description('Show the warm sandbox pool');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags pool', 'mags pool-status --json']);
  return cmd.action(action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const p = await mags.poolStatus();
    if (flags.json) return printJson(p);
    out(`idle ${p.idle_vms}  busy ${p.busy_vms}  total ${p.total_vms}  (min ${p.min_pool_size}, max ${p.max_pool_size})`);
  }));
}
