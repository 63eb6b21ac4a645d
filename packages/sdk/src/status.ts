import type { JobStatus } from './api/types.js';

/** Statuses after which a job never changes again. */
const TERMINAL: readonly JobStatus[] = ['completed', 'error'];

export function isTerminalStatus(status: string): boolean {
  return (TERMINAL as readonly string[]).includes(status);
}
