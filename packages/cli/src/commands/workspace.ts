import { Command } from 'commander';
import { action, client, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

/** `mags workspace list|delete`. */
export function workspaceCommand(): Command {
  const cmd = new Command('workspace').alias('ws').description('List and delete your workspaces');

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

  cmd.addCommand(list);
  cmd.addCommand(del);
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
