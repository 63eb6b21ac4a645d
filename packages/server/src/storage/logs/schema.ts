/** The `job_log_chunks` table of the metadata database (see store.ts for the meaning of each column). */
export interface JobLogChunksTable {
  job_id: string;
  chunk: number;
  stream: string;
  ts: string;
  byte_offset: number;
  size: number;
  line_start: number;
  first_seq: number;
  last_seq: number;
  /** BLOB on SQLite, bytea on PostgreSQL. */
  data: Buffer;
}

/** The columns of the `jobs` table the log store reads: when a job ended (retention). */
export interface JobEndsTable {
  request_id: string;
  status: string;
  /** ISO 8601; null while the job runs or sleeps. */
  completed_at: string | null;
}

/** The part of the metadata database the log store uses. */
export interface LogsDatabase {
  job_log_chunks: JobLogChunksTable;
  jobs: JobEndsTable;
}
