import { Command, InvalidArgumentError } from 'commander';
import type { Job } from '@mags/sdk';
import { shownStatus } from '../job-view.js';
import { action, client, intArg, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';
import { parseSince, relativeTime } from '../time.js';

const STATUSES = ['pending', 'running', 'sleeping', 'completed', 'error'];

interface ListFlags extends ConnectionFlags {
  page: number;
  pageSize: number;
  json?: boolean;
  status?: string[];
  since?: Date;
  trunc: boolean;
}

function collectStatus(value: string, previous: string[] | undefined): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of list) if (!STATUSES.includes(s)) throw new InvalidArgumentError(`Use one of ${STATUSES.join(', ')}.`);
  return [...(previous ?? []), ...list];
}

function sinceArg(value: string): Date {
  const d = parseSince(value);
  if (!d) throw new InvalidArgumentError('Use a duration (30s, 10m, 1h, 2d) or a date (2026-11-29, 2026-11-29T10:00:00Z).');
  return d;
}

export function listCommand(): Command {
  const cmd = new Command('list')
    .description('List your jobs, newest first')
    .option('--page <n>', 'page number', intArg(1), 1)
    .option('--page-size <n>', 'jobs per page (max 100)', intArg(1), 20)
    .option('--status <status>', `only jobs with this status (${STATUSES.join(', ')}; repeatable or comma-separated)`, collectStatus)
    .option('--since <when>', 'only jobs created since then: a duration (30s, 10m, 1h, 2d) or a date', sinceArg)
    .option('--no-trunc', 'full request ids and exact times');
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags list', 'mags list --status running', 'mags list --status completed,error --since 1h', 'mags list --page 2 --page-size 50', 'mags list --no-trunc', 'mags list --json']);
  return cmd.action(action(async (flags: ListFlags) => {
    const mags = await client(flags);
    const list = await mags.list({ page: flags.page, pageSize: flags.pageSize, status: flags.status as Job['status'][] | undefined, since: flags.since });
    if (flags.json) return printJson(list);
    if (list.jobs.length === 0) {
      const filtered = flags.status || flags.since;
      note(flags.page > 1 ? `No jobs on page ${flags.page}.` : filtered ? 'No jobs match.' : "No jobs yet. Run one with: mags run 'echo Hello World'");
      return;
    }
    const now = Date.now();
    const id = (j: Job) => (flags.trunc ? j.request_id.slice(0, 8) : j.request_id);
    const when = (t: string | null | undefined) => (!t ? null : flags.trunc ? relativeTime(t, now) : t);
    out(
      table(
        ['REQUEST ID', 'NAME', 'STATUS', 'EXIT', 'WORKSPACE', 'CREATED', 'URL'],
        list.jobs.map((j) => [id(j), j.name, shownStatus(j), j.exit_code, j.workspace_id, when(j.created_at ?? j.started_at), j.url]),
      ),
    );
    if (typeof list.total === 'number' && list.total > flags.page * flags.pageSize) {
      note(`Page ${flags.page} of ${Math.ceil(list.total / flags.pageSize)} (${list.total} jobs); next: mags list --page ${flags.page + 1}`);
    }
  }));
}
