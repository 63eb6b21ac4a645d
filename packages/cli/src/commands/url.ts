import { Command } from 'commander';
import { usageError } from '../exit-codes.js';
import { action, client, intArg, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

/** `mags url <name|id> [port]` and `mags url alias <sub> <workspace> | list | remove <sub>`. */
export function urlCommand(): Command {
  const cmd = new Command('url')
    .description("Enable the public URL of a persistent job's port and print it; `url alias` manages named URLs")
    .argument('<name-or-id>', 'request id, job name or workspace id')
    .argument('[port]', 'port inside the sandbox', '8080')
    .option('--private', 'only you may open the URL: your API token, or the one-time login link printed on stderr');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags url myproject', 'mags url 0b6f1c1e-... 3000', 'mags url myproject --private', 'mags url alias blog myproject', 'mags url myproject --json']);
  cmd.action(action(async (id: string, port: string, flags: ConnectionFlags & { json?: boolean; private?: boolean }) => {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw usageError(`Port must be a number from 1 to 65535, got "${port}"`);
    const mags = await client(flags);
    const access = await mags.url(id, n, { auth: flags.private ? 'token' : 'public' });
    if (flags.json) return printJson(access);
    out(access.url ?? '');
    if (access.login_url) note(`Private URL. Open it in a browser once with this link (single use, until ${access.login_url_expires_at}):\n  ${access.login_url}`);
  }));
  cmd.addCommand(aliasCommand());
  return cmd;
}

function aliasCommand(): Command {
  const alias = new Command('alias')
    .description('Point <sub>.apps.<domain> at the running or sleeping job of a workspace (stable across sleeps and restarts)')
    .argument('<subdomain>', 'a DNS label: lowercase letters, digits, inner hyphens')
    .argument('<workspace>', 'workspace id (name) whose job the alias reaches')
    .option('--port <port>', 'port inside the sandbox', intArg(1), 8080)
    .option('--private', 'only you may open the URL (your API token, or a login link from `mags url --private`)');
  withJson(withConnection(alias));
  withExamples(alias, ['mags url alias blog myproject', 'mags url alias api-docs myproject --port 3000', 'mags url alias list', 'mags url alias remove blog']);
  // `url` and `alias` share --json, --token and --api-url; commander hands them to the outermost
  // command that knows them, so each action reads the merged flags of its ancestors.
  alias.action(action(async (sub: string, workspace: string, _own: unknown, self: Command) => {
    const flags = self.optsWithGlobals<ConnectionFlags & { json?: boolean; port: number; private?: boolean }>();
    if (flags.port > 65535) throw usageError(`--port must be a number from 1 to 65535, got ${flags.port}`);
    const mags = await client(flags);
    const created = await mags.urlAliasCreate(sub, workspace, { port: flags.port, ...(flags.private ? { auth: 'token' as const } : {}) });
    if (flags.json) return printJson(created);
    out(created.url);
  }));

  const list = new Command('list').alias('ls').description('List your URL aliases');
  withJson(withConnection(list));
  list.action(action(async (_own: unknown, self: Command) => {
    const flags = self.optsWithGlobals<ConnectionFlags & { json?: boolean }>();
    const mags = await client(flags);
    const r = await mags.urlAliasList();
    if (flags.json) return printJson(r);
    if (r.aliases.length === 0) {
      note('No URL aliases yet. Create one with: mags url alias <sub> <workspace>');
      return;
    }
    out(table(['SUBDOMAIN', 'WORKSPACE', 'PORT', 'AUTH', 'URL'], r.aliases.map((a) => [a.subdomain, a.workspace_id, a.port, a.auth, a.url])));
  }));

  const remove = new Command('remove').alias('rm').description('Remove a URL alias').argument('<subdomain>', 'the alias label');
  withJson(withConnection(remove));
  remove.action(action(async (sub: string, _own: unknown, self: Command) => {
    const flags = self.optsWithGlobals<ConnectionFlags & { json?: boolean }>();
    const mags = await client(flags);
    const r = await mags.urlAliasDelete(sub);
    if (flags.json) return printJson(r);
    out(`Removed URL alias ${sub}`);
  }));

  alias.addCommand(list);
  alias.addCommand(remove);
  return alias;
}
