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

/** The part of the metadata database the log store uses. */
export interface LogsDatabase {
  job_logs: JobLogsTable;
}
