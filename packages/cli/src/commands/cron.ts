import { Command, InvalidArgumentError, Option } from 'commander';
import type { CronCreateOptions, Schedule } from '@mags/sdk';
import { action, client, intArg, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

interface ScheduleFlags extends ConnectionFlags {
  json?: boolean;
  tz?: string;
  workspace?: string;
  base?: string;
  persistent?: boolean;
  env?: Record<string, string>;
  disk?: number;
  vcpus?: number;
  memory?: number;
  timeout?: number;
  webhookUrl?: string;
  overlap?: 'skip' | 'queue' | 'replace';
  catchUp?: 'one' | 'none';
  jitter?: number;
  disabled?: boolean;
}

function collectEnv(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError('Use KEY=VALUE.');
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

/** Prints one schedule for people. */
function show(s: Schedule): void {
  out(`${s.name} (${s.id})`);
  out(`  schedule:   ${s.cron_expression} (${s.timezone})${s.jitter_seconds ? `, jitter up to ${s.jitter_seconds} s` : ''}`);
  out(`  enabled:    ${s.enabled ? 'yes' : 'no'}   overlap: ${s.overlap}   catch-up: ${s.catch_up}`);
  if (s.workspace_id) out(`  workspace:  ${s.workspace_id}`);
  if (s.webhook_url) out(`  webhook:    ${s.webhook_url}`);
  out(`  next runs:  ${s.next_runs.length ? s.next_runs.join(', ') : '-'}`);
  out(`  last run:   ${s.last_run_at ?? '-'}`);
  out(`  script:     ${s.script.split('\n')[0]}${s.script.includes('\n') ? ' ...' : ''}`);
}

/** `mags cron add|list|show|remove|enable|disable|run-now|runs`. */
export function cronCommand(): Command {
  const cmd = new Command('cron').description('Run scripts on a schedule (cron expressions, time zones, overlap and catch-up policies)');

  const add = new Command('add')
    .description('Create a schedule: each firing runs the script as an ordinary job named after the schedule')
    .argument('<name>', 'schedule name (unique; its jobs get this name)')
    .argument('<cron>', 'cron expression: 5 fields ("*/15 * * * *") or @hourly, @daily, @weekly, @monthly, @yearly')
    .argument('<script>', 'the shell script each run executes')
    .option('--tz <zone>', 'IANA time zone of the expression (default UTC)')
    .option('-w, --workspace <id>', 'run in this workspace (its /root persists across runs)')
    .option('--base <workspace>', 'use this workspace read-only as the base layer')
    .option('-p, --persistent', 'keep each run\'s sandbox up after the script')
    .option('--env <KEY=VALUE>', 'environment variable (repeatable)', collectEnv)
    .option('--disk <GB>', 'workspace disk size in GB', intArg(1))
    .option('--vcpus <n>', 'CPUs per run', intArg(1))
    .option('--memory <MB>', 'memory limit in MiB', intArg(1))
    .option('--timeout <seconds>', 'end each run after this many seconds', intArg(1))
    .option('--webhook-url <url>', 'POST a signed event to this URL when each run ends')
    .addOption(new Option('--overlap <policy>', 'when the previous run is still going').choices(['skip', 'queue', 'replace']).default('skip'))
    .addOption(new Option('--catch-up <policy>', 'firings missed while the server was down').choices(['one', 'none']).default('one'))
    .option('--jitter <seconds>', 'delay each firing by a random 0..N seconds', intArg(0))
    .option('--disabled', 'create it disabled');
  withJson(withConnection(add));
  withExamples(add, [
    "mags cron add nightly-report '0 3 * * *' --tz Europe/Berlin -w reports 'python3 report.py'",
    "mags cron add monitor '*/5 * * * *' --webhook-url https://hooks.example.com/mags 'curl -fsS https://example.com/health'",
  ]);
  add.action(action(async (name: string, cron: string, script: string, flags: ScheduleFlags) => {
    const mags = await client(flags);
    const opts: CronCreateOptions = {
      timezone: flags.tz,
      workspaceId: flags.workspace,
      baseWorkspaceId: flags.base,
      persistent: flags.persistent,
      environment: flags.env,
      diskGb: flags.disk,
      vcpus: flags.vcpus,
      memoryMb: flags.memory,
      timeoutSeconds: flags.timeout,
      webhookUrl: flags.webhookUrl,
      overlap: flags.overlap,
      catchUp: flags.catchUp,
      jitterSeconds: flags.jitter,
      enabled: flags.disabled ? false : undefined,
    };
    const s = await mags.cronCreate(name, cron, script, opts);
    if (flags.json) return printJson(s);
    show(s);
  }));

  const list = new Command('list').alias('ls').description('List your schedules');
  withJson(withConnection(list));
  list.action(action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).cronList();
    if (flags.json) return printJson(r);
    if (r.schedules.length === 0) return note("No schedules yet. Create one with: mags cron add NAME '*/5 * * * *' 'echo hi'");
    out(table(['NAME', 'ID', 'SCHEDULE', 'TZ', 'ENABLED', 'NEXT RUN', 'LAST RUN'], r.schedules.map((s) => [s.name, s.id, s.cron_expression, s.timezone, s.enabled ? 'yes' : 'no', s.next_run_at ?? '-', s.last_run_at ?? '-'])));
  }));

  const showCmd = new Command('show').description('Show a schedule and its recent runs').argument('<schedule>', 'schedule id or name');
  withJson(withConnection(showCmd));
  showCmd.action(action(async (ref: string, flags: ConnectionFlags & { json?: boolean }) => {
    const mags = await client(flags);
    const s = await mags.cronGet(ref);
    const runs = await mags.cronRuns(ref, { limit: 10 });
    if (flags.json) return printJson({ ...s, runs: runs.runs });
    show(s);
    if (runs.runs.length === 0) return out('  runs:       none yet');
    out('');
    out(table(['SCHEDULED FOR', 'TRIGGER', 'OUTCOME', 'JOB', 'STATUS', 'MESSAGE'], runs.runs.map((r) => [r.scheduled_for, r.trigger, r.outcome, r.job_id ?? '', r.job_status ?? '', r.message ?? ''])));
  }));

  const remove = new Command('remove').alias('rm').description('Delete a schedule (the jobs it ran stay)').argument('<schedule>', 'schedule id or name');
  withJson(withConnection(remove));
  remove.action(action(async (ref: string, flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).cronDelete(ref);
    if (flags.json) return printJson(r);
    out(`Deleted schedule ${ref}`);
  }));

  for (const [verb, enabled] of [['enable', true], ['disable', false]] as const) {
    const c = new Command(verb).description(enabled ? 'Enable a schedule (the next firing is computed from now)' : 'Disable a schedule (nothing fires until it is enabled)').argument('<schedule>', 'schedule id or name');
    withJson(withConnection(c));
    c.action(action(async (ref: string, flags: ConnectionFlags & { json?: boolean }) => {
      const s = await (await client(flags)).cronUpdate(ref, { enabled });
      if (flags.json) return printJson(s);
      out(`${enabled ? 'Enabled' : 'Disabled'} schedule ${s.name}${s.next_run_at ? `; next run ${s.next_run_at}` : ''}`);
    }));
    cmd.addCommand(c);
  }

  const runNow = new Command('run-now').description('Fire a schedule now (its overlap policy applies)').argument('<schedule>', 'schedule id or name');
  withJson(withConnection(runNow));
  runNow.action(action(async (ref: string, flags: ConnectionFlags & { json?: boolean }) => {
    const r = await (await client(flags)).cronRunNow(ref);
    if (flags.json) return printJson(r);
    if (r.job_id) out(`Started job ${r.job_id} (follow it with: mags logs ${r.job_id})`);
    else out(`Not started: ${r.outcome}${r.message ? ` (${r.message})` : ''}`);
  }));

  cmd.addCommand(add);
  cmd.addCommand(list);
  cmd.addCommand(showCmd);
  cmd.addCommand(remove);
  cmd.addCommand(runNow);
  return cmd;
}
