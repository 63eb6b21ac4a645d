import type { Generated } from 'kysely';

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

export interface TokensTable {
  id: string;
  user_id: string;
  name: string;
  /** sha256 hex of the token; the token itself is never stored. */
  token_hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface JobsTable {
  /** Insertion order (newest first listing and FIFO queueing). */
  num: Generated<number>;
  request_id: string;
  user_id: string;
  name: string | null;
  workspace_id: string | null;
  base_workspace_id: string | null;
  type: string;
  script: string;
  persistent: number;
  no_sleep: number;
  startup_command: string | null;
  /** JSON object of strings. */
  environment: string;
  /** JSON array of upload ids. */
  file_ids: string;
  disk_gb: number;
  vcpus: number;
  memory_mb: number;
  rootfs_type: string | null;
  timeout_seconds: number | null;
  api_version: number;
  status: string;
  exit_code: number | null;
  error_message: string | null;
  vm_id: string | null;
  host: string | null;
  subdomain: string | null;
  url: string | null;
  script_duration_ms: number | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  updated_at: string;
}

export interface JobLogsTable {
  job_id: string;
  seq: number;
  ts: string;
  stream: string;
  text: string;
}
