/** The `job_logs` table of the metadata database (see text-encoding.ts for `text` and `escaped`). */
export interface JobLogsTable {
  job_id: string;
  seq: number;
  ts: string;
  stream: string;
  text: string;
  /** 1 when `text` is escaped (the line held NUL or a lone surrogate), else 0. */
  escaped: number;
}

/** The columns of the `jobs` table the log store reads: when a job ended (retention). */
export interface JobEndsTable {
  request_id: string;
  status: string;
  /** ISO 8601; null while the job runs or sleeps. */
  completed_at: string | null;
}

/** The `job_log_blocks` table: consecutive lines of one job in one row (see blocks.ts for `data`). */
export interface JobLogBlocksTable {
  job_id: string;
  first_seq: number;
  last_seq: number;
  data: string;
}

/** The part of the metadata database the log store uses. */
export interface LogsDatabase {
  job_logs: JobLogsTable;
  job_log_blocks: JobLogBlocksTable;
  jobs: JobEndsTable;
}
