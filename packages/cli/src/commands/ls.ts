import { Command } from 'commander';
import type { FileEntry } from '@mags/sdk';
import { shownStatus } from '../job-view.js';
import { requireRemote } from '../remote-path.js';
import { action, client, intArg, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

/** `rwxr-xr-x` style text of permission bits and a type letter. */
function modeText(e: FileEntry): string {
  const letter = e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : e.type === 'other' ? '?' : '-';
  let s = letter;
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (e.mode >> shift) & 7;
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return s;
}

export function lsCommand(): Command {
  const cmd = new Command('ls')
    .description("List files of a persistent job's sandbox (without an argument: your jobs, as mags list)")
    .argument('[job:path]', 'job name or request id, a colon, a path (absolute or relative to /root); ws:<workspace>:<path> for a stored workspace')
    .option('-d, --depth <n>', 'levels to list below the path (max 64)', intArg(1), 1);
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags ls myjob:/root', 'mags ls myjob:app --depth 3', 'mags ls myjob:/etc/hosts --json', 'mags ls ws:myproject:/root']);
  return cmd.action(action(async (target: string | undefined, flags: ConnectionFlags & { depth: number; json?: boolean }) => {
    const mags = await client(flags);
    if (target === undefined) {
      const list = await mags.list();
      if (flags.json) return printJson(list);
      out(table(['REQUEST ID', 'NAME', 'STATUS', 'EXIT', 'WORKSPACE', 'CREATED'], list.jobs.map((j) => [j.request_id, j.name, shownStatus(j), j.exit_code, j.workspace_id, j.created_at ?? j.started_at])));
      return;
    }
    const { job, path, workspace } = requireRemote(target, 'ls');
    const listed = workspace ? await mags.files.listWorkspace(workspace, path, { depth: flags.depth }) : await mags.files.list(job, path, { depth: flags.depth });
    if (flags.json) return printJson(listed);
    const base = listed.path.endsWith('/') ? listed.path : `${listed.path}/`;
    const rows = listed.entries.map((e) => {
      const name = e.path.startsWith(base) ? e.path.slice(base.length) : e.path;
      return [modeText(e), e.size, e.mtime.slice(0, 19).replace('T', ' '), e.type === 'symlink' ? `${name} -> ${e.target ?? '?'}` : e.type === 'dir' ? `${name}/` : name];
    });
    if (rows.length) out(table(['MODE', 'SIZE', 'MODIFIED (UTC)', 'NAME'], rows));
    if (listed.truncated) note('The listing was cut (too many entries); list a deeper path.');
  }));
}
