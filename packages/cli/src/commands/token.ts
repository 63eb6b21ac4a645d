import { Command } from 'commander';
import { action, client, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

type Flags = ConnectionFlags & { json?: boolean };

export function tokenCommand(): Command {
  const cmd = new Command('token').description('Create, list and revoke your API tokens');
  withExamples(cmd, ['mags token create ci', 'mags token list', 'mags token revoke <token-id>']);

  const create = new Command('create')
    .description('Create a token (shown once: it is printed on stdout)')
    .argument('<name>', 'a name to recognise the token by');
  withJson(withConnection(create));
  withExamples(create, ['mags token create laptop', 'export MAGS_API_TOKEN=$(mags token create ci)']);
  create.action(action(async (name: string, flags: Flags) => {
    const mags = await client(flags);
    const t = await mags.tokens.create(name);
    if (flags.json) return printJson(t);
    out(t.token);
    note(`Created token ${t.id} (${t.name}). It is shown only once; store it now.`);
  }));

  const list = new Command('list').alias('ls').description('List your tokens (never the secrets)');
  withJson(withConnection(list));
  withExamples(list, ['mags token list', 'mags token list --json']);
  list.action(action(async (flags: Flags) => {
    const mags = await client(flags);
    const r = await mags.tokens.list();
    if (flags.json) return printJson(r);
    out(table(['ID', 'NAME', 'CREATED', 'LAST USED'], r.tokens.map((t) => [t.id, t.name, t.created_at, t.last_used_at])));
  }));

  const revoke = new Command('revoke').alias('rm').description('Revoke a token by id').argument('<id>', 'token id (see `mags token list`)');
  withJson(withConnection(revoke));
  withExamples(revoke, ['mags token revoke 3f2a...']);
  revoke.action(action(async (id: string, flags: Flags) => {
    const mags = await client(flags);
    const r = await mags.tokens.revoke(id);
    if (flags.json) return printJson(r);
    out(`Revoked token ${id}`);
  }));

  return cmd.addCommand(create).addCommand(list).addCommand(revoke);
}
