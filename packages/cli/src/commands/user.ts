import { Command } from 'commander';
import { action, client, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

type Flags = ConnectionFlags & { json?: boolean };

export function userCommand(): Command {
  const cmd = new Command('user').description('Create and list users of the server (admin token needed)');
  withExamples(cmd, ['mags user create alice', 'mags user create ops --admin', 'mags user list']);

  const create = new Command('create')
    .description("Create a user; its first token is printed on stdout (shown once)")
    .argument('<name>', 'user name')
    .option('--admin', 'the user may manage other users');
  withJson(withConnection(create));
  withExamples(create, ['mags user create alice', 'mags user create ops --admin --json']);
  create.action(action(async (name: string, flags: Flags & { admin?: boolean }) => {
    const mags = await client(flags);
    const u = await mags.users.create(name, { admin: flags.admin });
    if (flags.json) return printJson(u);
    out(u.token);
    note(`Created user ${u.name} (${u.id})${u.admin ? ' with admin rights' : ''}. The token is shown only once;`);
    note(`they log in with: mags login --url ${mags.apiUrl} --token <token>`);
  }));

  const list = new Command('list').alias('ls').description('List all users');
  withJson(withConnection(list));
  withExamples(list, ['mags user list', 'mags user list --json']);
  list.action(action(async (flags: Flags) => {
    const mags = await client(flags);
    const r = await mags.users.list();
    if (flags.json) return printJson(r);
    out(table(['ID', 'NAME', 'ADMIN', 'CREATED'], r.users.map((u) => [u.id, u.name, u.admin ? 'yes' : 'no', u.created_at])));
  }));

  return cmd.addCommand(create).addCommand(list);
}
