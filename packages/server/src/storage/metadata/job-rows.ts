import type { Selectable } from 'kysely';
import { JOB_BOOLEAN_COLUMNS, JOB_JSON_COLUMNS, type JobsTable } from './schema.js';
import type { Job } from './store.js';

const BOOLEAN = new Set<string>(JOB_BOOLEAN_COLUMNS);
const JSON_TEXT = new Set<string>(JOB_JSON_COLUMNS);

/**
 * The column values of a job or of part of one (a patch): booleans as 0/1, JSON columns as text,
 * everything else as is. Undefined fields are left out.
 */
export function toJobRow(job: Partial<Job>): Partial<Record<keyof JobsTable, unknown>> {
  const row: Partial<Record<keyof JobsTable, unknown>> = {};
  for (const [key, value] of Object.entries(job)) {
    if (value === undefined) continue;
    if (BOOLEAN.has(key)) row[key as keyof JobsTable] = value ? 1 : 0;
    else if (JSON_TEXT.has(key)) row[key as keyof JobsTable] = JSON.stringify(value);
    else row[key as keyof JobsTable] = value;
  }
  return row;
}

/** The job of a stored row (the insertion counter `num` is left out). */
export function fromJobRow(row: Selectable<JobsTable>): Job {
  const job: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(row)) {
    if (key === 'num') continue;
    if (BOOLEAN.has(key)) job[key] = Number(value) === 1;
    else if (JSON_TEXT.has(key)) job[key] = JSON.parse(value as string);
    else job[key] = value;
  }
  return job as unknown as Job;
}
