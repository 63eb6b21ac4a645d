import type { JobStatus } from '@mags/shared';

/**
 * Terminal job statuses. Kept here instead of importing `isTerminalStatus` from @mags/shared at run
 * time, so the SDK's CommonJS build has no ESM-only runtime dependency; the type comes from there.
 */
const TERMINAL: readonly JobStatus[] = ['completed', 'error'];

export function isTerminalStatus(status: string): boolean {
  return (TERMINAL as readonly string[]).includes(status);
}
