import type { Generated } from 'kysely';
import type { Job, TokenRecord } from './store.js';

/**
 * Table shapes of the metadata database. Booleans are stored as 0/1 integers and timestamps as ISO
 * 8601 text in both SQLite and PostgreSQL so one code path serves both.
 */
export interface Database {
  users: UsersTable;
  tokens: TokensTable;
  jobs: JobsTable;
  job_logs: JobLogsTable;
}

export interface UsersTable {
  id: string;
  name: string;
  admin: number;
  created_at: string;
}

/** Token rows are stored exactly as the store hands them out. */
export type TokensTable = TokenRecord;

/**
 * A job row: the store's `Job` with booleans as 0/1 integers and the JSON columns (`environment`,
 * an object of strings; `file_ids`, an array of upload ids) as text, plus an insertion counter.
 */
export type JobsTable = Omit<Job, 'type' | 'status' | 'persistent' | 'no_sleep' | 'environment' | 'file_ids'> & {
  /** Insertion order (newest first listing and FIFO queueing). */
  num: Generated<number>;
  type: string;
  status: string;
  persistent: number;
  no_sleep: number;
  environment: string;
  file_ids: string;
};

export interface JobLogsTable {
  job_id: string;
  seq: number;
  ts: string;
  stream: string;
  text: string;
}
