import { Command } from 'commander';
import { usageError } from '../exit-codes.js';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

export function setCommand(): Command {
  const cmd = new Command('set')
    .description("Change a persistent job's settings")
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .option('--sleep', 'sleep when idle again (the default)')
    .option('--no-sleep', 'never sleep when idle')
    .option('--startup-command <cmd>', 'command to run when the sandbox wakes');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags set myproject --no-sleep', 'mags set myproject --sleep', "mags set myproject --startup-command 'npm start'"]);
  return cmd.action(action(async (id: string, flags: ConnectionFlags & { sleep?: boolean; startupCommand?: string; json?: boolean }) => {
    if (flags.sleep === undefined && flags.startupCommand === undefined) {
      throw usageError('Nothing to change', 'Pass --no-sleep, --sleep or --startup-command <cmd>.');
    }
    const mags = await client(flags);
    const r = await mags.updateJob(id, {
      noSleep: flags.sleep === undefined ? undefined : !flags.sleep,
      startupCommand: flags.startupCommand,
    });
    if (flags.json) return printJson(r);
    const changes = [
      flags.sleep === undefined ? '' : `no_sleep=${!flags.sleep}`,
      flags.startupCommand === undefined ? '' : `startup_command=${JSON.stringify(flags.startupCommand)}`,
    ].filter(Boolean);
    out(`Updated ${id}: ${changes.join(', ')}`);
  }));
}
