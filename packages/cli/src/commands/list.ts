import { Command } from 'commander';
import { shownStatus } from '../job-view.js';
import { action, client, intArg, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

export function listCommand(): Command {
  const cmd = new Command('list')
    .description('List your jobs, newest first')
    .option('--page <n>', 'page number', intArg(1), 1)
    .option('--page-size <n>', 'jobs per page (max 100)', intArg(1), 20);
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags list', 'mags list --page 2 --page-size 50', 'mags list --json']);
  return cmd.action(action(async (flags: ConnectionFlags & { page: number; pageSize: number; json?: boolean }) => {
    const mags = await client(flags);
    const list = await mags.list({ page: flags.page, pageSize: flags.pageSize });
    if (flags.json) return printJson(list);
    if (list.jobs.length === 0) {
      note(flags.page > 1 ? `No jobs on page ${flags.page}.` : "No jobs yet. Run one with: mags run 'echo Hello World'");
      return;
    }
    out(
      table(
        ['REQUEST ID', 'NAME', 'STATUS', 'EXIT', 'WORKSPACE', 'CREATED', 'URL'],
        list.jobs.map((j) => [j.request_id, j.name, shownStatus(j), j.exit_code, j.workspace_id, j.created_at ?? j.started_at, j.url]),
      ),
    );
    if (typeof list.total === 'number' && list.total > flags.page * flags.pageSize) {
      note(`Page ${flags.page} of ${Math.ceil(list.total / flags.pageSize)} (${list.total} jobs); next: mags list --page ${flags.page + 1}`);
    }
  }));
}
