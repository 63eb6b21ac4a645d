import type { LogStream } from '@mags/shared';

/** One stored output line of a job. */
export interface LogLine {
  job_id: string;
  /** Per-job increasing number, from 1. */
  seq: number;
  /** ISO 8601 time the line was read. */
  timestamp: string;
  stream: LogStream;
  /** Any JS string: NUL, lone surrogates and U+FFFD are stored and read back exactly. */
  message: string;
}

/**
 * Job output lines. `JobLogs` (services/job-logs.ts) depends on this interface; `KyselyLogStore`
 * keeps lines in the metadata database and passes the conformance suite (test/store-logs.test.ts)
 * on SQLite and PostgreSQL. It is the seam where an archive of finished jobs' output in the blob
 * store can go.
 */
export interface LogStore {
  /** Inserts lines in one transaction: all of them are stored, or none (e.g. a duplicate seq). */
  append(lines: readonly LogLine[]): Promise<void>;
  /** Lines of a job with seq > afterSeq, in seq order, at most `limit`. */
  read(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]>;
  /** Highest stored seq of a job, 0 when none. */
  maxSeq(jobId: string): Promise<number>;
  /**
   * Deletes the lines of jobs that ended (status `completed` or `error`) before `cutoff` (ISO 8601);
   * the job rows stay. Returns the number of lines deleted.
   */
  deleteEndedBefore(cutoff: string): Promise<number>;
}
