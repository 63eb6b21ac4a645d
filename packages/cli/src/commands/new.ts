import { Command } from 'commander';
import { action, client, intArg, note, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

interface NewFlags extends ConnectionFlags {
  json?: boolean;
  persistent?: boolean;
  base?: string;
  disk?: number;
  wait: number;
}

export function newCommand(): Command {
  const cmd = new Command('new')
    .description('Start a persistent sandbox that stays up for ssh, exec and URLs, and wait until it runs')
    .argument('<name>', 'name of the sandbox (and, with -p, of its workspace)')
    .option('-p, --persistent', 'keep /root as workspace <name> across sleeps and restarts')
    .option('--base <workspace>', 'mount this workspace read-only as the base layer')
    .option('--disk <GB>', 'disk size in GB', intArg(1))
    .option('--wait <seconds>', 'how long to wait for the sandbox to run', intArg(1), 120);
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags new dev', 'mags new dev -p --disk 20', 'mags new scratch --base myproject']);
  return cmd.action(action(async (name: string, flags: NewFlags) => {
    const mags = await client(flags);
    note(`Starting sandbox ${name}...`);
    const box = await mags.new(name, { persistent: flags.persistent, baseWorkspaceId: flags.base, diskGb: flags.disk, timeout: flags.wait * 1000 });
    if (flags.json) return printJson(box);
    out(box.requestId);
    note(`Sandbox ${name} is ${box.status}. Connect with: mags ssh ${name}   Run a command: mags exec ${name} <command>`);
  }));
}
