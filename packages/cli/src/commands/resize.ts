import { Command, InvalidArgumentError } from 'commander';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

/** `mags resize <workspace> --disk <GB>`: grow a workspace's disk (it never shrinks). */
export function resizeCommand(): Command {
  const cmd = new Command('resize')
    .description("Grow a workspace's disk; the next job sees the new size (a workspace never shrinks)")
    .argument('<workspace>', 'workspace id (name)')
    .requiredOption('--disk <GB>', 'new disk size in GB', parseGb);
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags resize myproject --disk 10']);
  return cmd.action(action(async (name: string, flags: ConnectionFlags & { json?: boolean; disk: number }) => {
    const mags = await client(flags);
    const r = await mags.resizeWorkspace(name, flags.disk);
    if (flags.json) return printJson(r);
    out(r.grown ? `Workspace ${name} now has ${r.disk_gb} GB` : `Workspace ${name} already has ${r.disk_gb} GB`);
  }));
}

function parseGb(value: string): number {
  if (!/^[1-9][0-9]*$/.test(value)) throw new InvalidArgumentError('use a whole number of GB, e.g. --disk 10');
  return Number(value);
}
