import { Command } from 'commander';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

/** `mags sync <name|id>`: sync a workspace now, without stopping its job. */
export function syncCommand(): Command {
  const cmd = new Command('sync')
    .description('Sync a workspace now, without stopping its job')
    .argument('<name-or-id>', "workspace id, or a job's request id or name");
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags sync myproject', 'mags sync myproject --json']);
  return cmd.action(action(async (ref: string, flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    // A first sync of a large workspace uploads everything: allow more than an ordinary request.
    const r = await mags.sync(ref, { timeoutMs: 300_000 });
    if (flags.json) return printJson(r);
    out(r.message);
  }));
}
