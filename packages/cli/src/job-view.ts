/** How the CLI reads a job's ending for people: the shown status, truncation notices, the exit code. */
import type { Job, LogEntry } from '@mags/sdk';
import { EXIT } from './exit-codes.js';

/**
 * The status shown in human output. A job stopped by its owner keeps `status: completed` on the wire
 * (Mags clients expect it) and carries `end_reason: cancelled` (ours); people see `stopped`. A
 * persistent job's sandbox state (ours) shows a frozen sandbox as `frozen` and a wake as `waking`
 * (both `running` on the wire).
 */
export function shownStatus(job: Pick<Job, 'status'> & { end_reason?: Job['end_reason']; sandbox_state?: Job['sandbox_state'] }): string {
  if (job.end_reason === 'cancelled' && job.status === 'completed') return 'stopped';
  if (job.status === 'running' && job.sandbox_state === 'frozen') return 'frozen';
  if (job.status === 'running' && job.sandbox_state === 'starting') return 'waking';
  return job.status;
}

/**
 * The platform line the server appends when a job's output passes the output cap
 * (packages/server/src/scheduler/scheduler.ts). The log entry has no structured flag for it, so
 * the CLI matches this fixed prefix of a `system` line.
 */
const TRUNCATION_PREFIX = '[output truncated';

/** True for the server's notice that the rest of the job's output was discarded. */
export function isTruncationNotice(line: LogEntry): boolean {
  return line.stream === 'system' && typeof line.message === 'string' && line.message.startsWith(TRUNCATION_PREFIX);
}

/**
 * The exit code for a finished job: its script's code when it has one, 124 for a timeout, 1 for
 * any other failure without a code, 0 otherwise.
 */
export function jobExitCode(job: Pick<Job, 'status' | 'exit_code'> & { end_reason?: Job['end_reason'] }): number {
  if (typeof job.exit_code === 'number') return job.exit_code;
  if (job.end_reason === 'timeout') return EXIT.TIMEOUT;
  return job.status === 'error' ? EXIT.GENERAL : EXIT.OK;
}
