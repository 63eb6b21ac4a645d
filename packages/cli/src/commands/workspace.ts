import { Command } from 'commander';
import { action, client, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

/** `mags workspace list|delete|history|restore`. */
export function workspaceCommand(): Command {
  const cmd = new Command('workspace').alias('ws').description('List, delete and restore your workspaces, and show their stored versions');

  const list = new Command('list').alias('ls').description('List your workspaces (size on the host, image version, last use and sync)');
  withJson(withConnection(list));
  withExamples(list, ['mags workspace list', 'mags workspace list --json']);
  list.action(action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const r = await mags.listWorkspaces();
    if (flags.json) return printJson(r);
    if (r.workspaces.length === 0) {
      note('No workspaces yet. Create one with: mags run -w NAME \'echo hi > /root/hello.txt\'');
      return;
    }
    out(
      table(
        ['WORKSPACE', 'SIZE', 'DISK', 'IMAGE', 'IN USE', 'LAST USED', 'LAST SYNC'],
        r.workspaces.map((w) => [
          w.workspace_id,
          formatBytes(w.size_bytes),
          typeof w.disk_gb === 'number' ? `${w.disk_gb} GB` : '',
          typeof w.image_version === 'string' ? w.image_version : '',
          w.in_use === true ? 'yes' : 'no',
          typeof w.last_used_at === 'string' ? w.last_used_at : '',
          w.last_sync_at ?? '',
        ]),
      ),
    );
  }));

  const del = new Command('delete').alias('rm').description('Delete a workspace: its layer on the server and its stored versions').argument('<workspace>', 'workspace id (name)');
  withJson(withConnection(del));
  withExamples(del, ['mags workspace delete myproject']);
  del.action(action(async (name: string, flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const r = await mags.deleteWorkspace(name);
    if (flags.json) return printJson(r);
    out(`Deleted workspace ${name}`);
  }));

  const history = new Command('history').description('List the stored versions of a workspace, newest first').argument('<workspace>', 'workspace id (name)');
  withJson(withConnection(history));
  withExamples(history, ['mags workspace history myproject', 'mags workspace history myproject --json']);
  history.action(action(async (name: string, flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const r = await mags.workspaceHistory(name);
    if (flags.json) return printJson(r);
    if (r.versions.length === 0) {
      note(`Workspace ${name} has no stored versions yet (a version is stored when a job of it ends, or by \`mags sync ${name}\`).`);
      return;
    }
    out(table(['VERSION', 'CREATED', 'FILES', 'SIZE', 'IMAGE'], r.versions.map((v) => [v.version, v.created_at, String(v.files), formatBytes(v.bytes), v.image_version ?? ''])));
  }));

  const restore = new Command('restore')
    .description('Rebuild a workspace from a stored version; that state becomes its newest version')
    .argument('<workspace>', 'workspace id (name)')
    .requiredOption('--to <version>', 'version id from `mags workspace history`');
  withJson(withConnection(restore));
  withExamples(restore, ['mags workspace restore myproject --to 001732851234567-a1b2c3']);
  restore.action(action(async (name: string, flags: ConnectionFlags & { json?: boolean; to: string }) => {
    const mags = await client(flags);
    // A large workspace is downloaded and synced again: allow more than an ordinary request.
    const r = await mags.restoreWorkspace(name, flags.to, { timeoutMs: 300_000 });
    if (flags.json) return printJson(r);
    out(`Restored workspace ${name} to version ${r.restored_version} (now version ${r.version})`);
  }));

  cmd.addCommand(list);
  cmd.addCommand(del);
  cmd.addCommand(history);
  cmd.addCommand(restore);
  return cmd;
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
