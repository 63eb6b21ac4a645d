/** Job status values, exactly as Mags clients read them. */
export const JOB_STATUSES = ['pending', 'running', 'sleeping', 'completed', 'error'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Statuses after which a job never changes again. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'error'];

/**
 * Why a job's script ended (ours; Mags has only `status` and `exit_code`). `exited`: the script
 * exited by itself, with any code; `timeout`: its wall-clock limit; `oom`: its memory limit;
 * `signaled`: killed by a signal from inside the sandbox; `cancelled`: stopped by its owner;
 * `sandbox_failed`: the sandbox could not start or died; `server_shutdown`: the daemon stopped or
 * restarted while it ran. Null while the job is pending or its script runs.
 */
export const END_REASONS = ['exited', 'timeout', 'oom', 'signaled', 'cancelled', 'sandbox_failed', 'server_shutdown'] as const;
export type EndReason = (typeof END_REASONS)[number];

export function isTerminalStatus(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/**
 * Log levels of the Mags logs answer: stdout lines are `info`, stderr lines `error`; platform events
 * (stream `system`, ours) are `info` so clients that only know the two levels still show them.
 */
export type LogLevel = 'info' | 'error';
export type LogStream = 'stdout' | 'stderr' | 'system';

export function levelForStream(stream: LogStream): LogLevel {
  return stream === 'stderr' ? 'error' : 'info';
}
