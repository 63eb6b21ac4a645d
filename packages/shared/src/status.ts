/** Job status values, exactly as Mags clients read them. */
export const JOB_STATUSES = ['pending', 'running', 'sleeping', 'completed', 'error'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Statuses after which a job never changes again. */
export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'error'];

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
