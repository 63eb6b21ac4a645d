import { Command, InvalidArgumentError } from 'commander';
import type { UsageAnswer } from '@mags/sdk';
import { action, client, note, out, printJson, table, withConnection, withExamples, withJson, type ConnectionFlags } from '../shared.js';

type Flags = ConnectionFlags & { json?: boolean; from?: string; to?: string; by: 'day' | 'job' | 'user'; user?: string; days?: number };

function groupArg(value: string): 'day' | 'job' | 'user' {
  if (value === 'day' || value === 'job' || value === 'user') return value;
  throw new InvalidArgumentError('must be day, job or user');
}

function daysArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 366) throw new InvalidArgumentError('must be a whole number of days from 1 to 366');
  return n;
}

export function usageCommand(): Command {
  const cmd = new Command('usage')
    .description('Show sandbox usage: wall and vCPU time, memory, network egress and stored workspace bytes')
    .option('--from <date>', 'start of the range (ISO date or date-time; default: 30 days ago)')
    .option('--to <date>', 'end of the range, exclusive (default: now)')
    .option('--days <n>', 'the last N days (instead of --from)', daysArg)
    .option('--by <group>', 'group rows by day, job or user', groupArg, 'day')
    .option('--user <id>', "one user's usage (admin only)");
  withJson(withConnection(cmd));
  withExamples(cmd, ['mags usage', 'mags usage --days 7 --by job', 'mags usage --from 2026-11-01 --by user --json']);
  return cmd.action(action(async (flags: Flags) => {
    const mags = await client(flags);
    const from = flags.from ?? (flags.days ? new Date(Date.now() - flags.days * 86_400_000).toISOString() : undefined);
    const u = await mags.usage({ from, to: flags.to, groupBy: flags.by, userId: flags.user });
    if (flags.json) return printJson(u);
    printUsage(u);
  }));
}

function printUsage(u: UsageAnswer): void {
  note(`Usage from ${u.from} to ${u.to}, by ${u.group_by}`);
  if (u.rows.length === 0) {
    note('No sandbox use in this range.');
  } else {
    const head = [u.group_by.toUpperCase(), 'JOBS', 'WALL', 'VCPU', 'GB-HOURS', 'PEAK MEM', 'EGRESS'];
    const rows = u.rows.map((r) => [r.key, r.jobs, duration(r.wall_seconds), duration(r.vcpu_seconds), gbHours(r.memory_mb_seconds), `${r.peak_memory_mb} MB`, bytes(r.egress_bytes)]);
    if (u.group_by === 'user') {
      head.push('STORAGE');
      u.rows.forEach((r, i) => rows[i]!.push(bytes(r.storage_bytes ?? 0)));
    }
    out(table(head, rows));
  }
  const t = u.totals;
  out(`total: ${t.jobs} jobs, ${duration(t.wall_seconds)} wall, ${duration(t.vcpu_seconds)} vCPU, ${gbHours(t.memory_mb_seconds)} GB-hours of memory, ${bytes(t.egress_bytes)} egress, ${bytes(t.storage_bytes ?? 0)} stored`);
}

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)}m`;
  return `${(seconds / 3600).toFixed(2)}h`;
}

function gbHours(mbSeconds: number): string {
  return (mbSeconds / 1024 / 3600).toFixed(3);
}

function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
