import { Command } from 'commander';
import { action, client, out, printJson, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

export function urlCommand(): Command {
  const cmd = new Command('url')
    .description("Enable the public URL of a persistent job's port and print it")
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .argument('[port]', 'port inside the sandbox', '8080');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags url myproject', 'mags url 0b6f1c1e-... 3000', 'mags url myproject --json']);
  return cmd.action(action(async (id: string, port: string, flags: ConnectionFlags & { json?: boolean }) => {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      const { usageError } = await import('../exit-codes.js');
      throw usageError(`Port must be a number from 1 to 65535, got "${port}"`);
    }
    const mags = await client(flags);
    const access = await mags.url(id, n);
    if (flags.json) return printJson(access);
    out(access.url ?? '');
  }));
}
