import type { EndReason, JobStatus } from '@mags/shared';

/** A user of the server. */
export interface User {
  id: string;
  name: string;
  admin: boolean;
  created_at: string;
  /** Optional sign-in email of the dashboard. */
  email?: string | null;
  /** When an admin disabled the user (its tokens and sessions stop working); null when active. */
  disabled_at?: string | null;
}

/** An API token's metadata; only the sha256 of the token is stored. */
export interface TokenRecord {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** A job as stored; field names follow the Mags wire format where one exists. */
export interface Job {
  request_id: string;
  user_id: string;
  name: string | null;
  workspace_id: string | null;
  base_workspace_id: string | null;
  type: 'inline';
  script: string;
  persistent: boolean;
  no_sleep: boolean;
  startup_command: string | null;
  environment: Record<string, string>;
  file_ids: string[];
  disk_gb: number;
  vcpus: number;
  memory_mb: number;
  rootfs_type: string | null;
  /** The job's own wall-clock limit; null = the server default. */
  timeout_seconds: number | null;
  api_version: number;
  status: JobStatus;
  exit_code: number | null;
  /** Why the script ended; null while pending or running. */
  end_reason: EndReason | null;
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
  /** Where this job's completion webhook goes (ours); signed with the owner's signing key. */
  webhook_url?: string | null;
}

/** Fields of a job that change after submission. */
export type JobPatch = Partial<
  Pick<
    Job,
    | 'status'
    | 'exit_code'
    | 'end_reason'
    | 'error_message'
    | 'vm_id'
    | 'host'
    | 'subdomain'
    | 'url'
    | 'script_duration_ms'
    | 'started_at'
    | 'completed_at'
    | 'no_sleep'
    | 'startup_command'
  >
>;

/** Thrown by the store when a unique constraint (e.g. a user name) is violated. */
export class UniqueViolationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UniqueViolationError';
  }
}

/**
 * Users and their API tokens. Services depend on this interface; `KyselyUserStore` implements it on
 * SQLite and PostgreSQL and both pass the same conformance tests (test/store.test.ts).
 */
export interface UserStore {
  createUser(user: User): Promise<void>;
  getUser(id: string): Promise<User | undefined>;
  getUserByName(name: string): Promise<User | undefined>;
  listUsers(): Promise<User[]>;
  countUsers(): Promise<number>;

  createToken(token: TokenRecord): Promise<void>;
  /** The unrevoked token with this hash and its user. */
  findToken(tokenHash: string): Promise<{ token: TokenRecord; user: User } | undefined>;
  touchToken(id: string, at: string): Promise<void>;
  listTokens(userId: string): Promise<TokenRecord[]>;
  /** Marks a token of this user revoked; false when the user has no such unrevoked token. */
  revokeToken(userId: string, id: string, at: string): Promise<boolean>;
  /** Creates a user and its first token in one transaction. */
  createUserWithToken(user: User, token: TokenRecord): Promise<void>;
}

/**
 * Jobs. Services and the scheduler depend on this interface; `KyselyJobStore` implements it on
 * SQLite and PostgreSQL and both pass the same conformance tests (test/store.test.ts).
 */
export interface JobStore {
  insertJob(job: Job): Promise<void>;
  getJob(requestId: string): Promise<Job | undefined>;
  /**
   * A job of this user by request id, else by name, else by workspace id: for names and workspaces
   * the newest running/sleeping job, else the newest of any status.
   */
  findJobForUser(userId: string, ref: string): Promise<Job | undefined>;
  /** The user's jobs newest first (only those matching `filter`), and how many there are in all. */
  listJobs(userId: string, offset: number, limit: number, filter?: JobListFilter): Promise<{ jobs: Job[]; total: number }>;
  /** The user's newest persistent job on this workspace in one of these statuses (URL aliases). */
  findWorkspaceJob(userId: string, workspaceId: string, statuses: readonly JobStatus[]): Promise<Job | undefined>;
  /** Jobs in any of these statuses, oldest first. */
  listJobsByStatus(statuses: readonly JobStatus[]): Promise<Job[]>;
  countJobs(): Promise<number>;
  /** Jobs of every user per status (statuses without jobs are absent). */
  countJobsByStatus(): Promise<Partial<Record<JobStatus, number>>>;
  /** How many of a user's jobs are in any of these statuses. */
  countUserJobs(userId: string, statuses: readonly JobStatus[]): Promise<number>;
  /**
   * Applies a patch; with `onlyIf`, only when the job's current status is one of them (a compare
   * and set). Returns whether a row changed.
   */
  updateJob(requestId: string, patch: JobPatch, onlyIf?: readonly JobStatus[]): Promise<boolean>;
  /**
   * Deletes a job row (its output goes with it: the log chunks reference it), only when its status
   * is one of `onlyIf`; returns whether it was deleted.
   */
  deleteJob(requestId: string, onlyIf: readonly JobStatus[]): Promise<boolean>;
}

/** Which of a user's jobs a list holds (every one when empty). */
export interface JobListFilter {
  statuses?: readonly JobStatus[];
  /** ISO 8601: only jobs created at or after it. */
  createdSince?: string;
}
