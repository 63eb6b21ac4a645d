import { Cron } from 'croner';
import { AppError } from '../services/errors.js';

/** A parsed schedule expression in its time zone. */
export interface CronTimes {
  /** The first scheduled time strictly after `after`, or null when there is none. */
  next(after: Date): Date | null;
  /** The latest scheduled time at or before `at`, or null. */
  previous(at: Date): Date | null;
  /** The next `n` scheduled times after `after`. */
  upcoming(n: number, after: Date): Date[];
}

/** Whether `tz` is an IANA time zone this Node knows (`UTC` included). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a 5-field cron expression or a macro (`@hourly`, `@daily`, `@weekly`, `@monthly`,
 * `@yearly`) in an IANA time zone with croner, whose rules also decide DST (a time skipped by a
 * spring-forward runs at the next valid time, a time repeated in autumn runs once). VALIDATION_ERROR
 * names the field. `allowSeconds` (tests and benchmarks only) also accepts a 6-field expression.
 */
export function parseCron(expression: string, timezone: string, allowSeconds = false): CronTimes {
  if (!isTimeZone(timezone)) {
    throw new AppError('VALIDATION_ERROR', `timezone: "${timezone.slice(0, 80)}" is not an IANA time zone`, 'Use a name such as "UTC", "Europe/Berlin" or "America/New_York".');
  }
  let cron: Cron;
  try {
    cron = new Cron(expression.trim(), { timezone, paused: true, mode: allowSeconds ? '5-or-6-parts' : '5-part' });
  } catch (err) {
    const why = (err as Error).message.replace(/^CronPattern:\s*/, '');
    throw new AppError('VALIDATION_ERROR', `cron_expression: "${expression.slice(0, 120)}" is not valid: ${why}`, 'Use 5 fields (minute hour day-of-month month day-of-week), e.g. "*/15 * * * *", or a macro such as "@hourly".');
  }
  const times: CronTimes = {
    next: (after) => cron.nextRun(after),
    previous: (at) => cron.previousRuns(1, new Date(at.getTime() + 1))[0] ?? null,
    upcoming: (n, after) => cron.nextRuns(n, after),
  };
  if (times.next(new Date()) === null) throw new AppError('VALIDATION_ERROR', `cron_expression: "${expression.slice(0, 120)}" never fires`);
  return times;
}
