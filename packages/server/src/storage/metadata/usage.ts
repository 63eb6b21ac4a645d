/** What one sandbox lifetime of a job used; appended when the sandbox is given back. */
export interface UsageRecord {
  id: string;
  job_id: string;
  user_id: string;
  started_at: string;
  ended_at: string;
  /** Wall time the sandbox was held, in ms. */
  wall_ms: number;
  /** CPU time of its processes, in microseconds (from the cgroup). */
  cpu_us: number;
  memory_peak_bytes: number;
  /** Memory and vCPUs granted (the job's limits). */
  memory_mb: number;
  vcpus: number;
  egress_bytes: number;
  ingress_bytes: number;
}

export type UsageGroup = 'day' | 'job' | 'user';

/** Sums over the records of one group key (a day `YYYY-MM-DD`, a job id or a user id). */
export interface UsageSums {
  key: string;
  jobs: number;
  wall_ms: number;
  cpu_us: number;
  /** Granted memory times wall time, in MiB * ms. */
  memory_mb_ms: number;
  memory_peak_bytes: number;
  egress_bytes: number;
  ingress_bytes: number;
}

/** Limits an admin set for a user; null = no limit beyond the server's. */
export interface QuotaRecord {
  user_id: string;
  max_concurrent_sandboxes: number | null;
  sandbox_hours_per_month: number | null;
  storage_gb: number | null;
  updated_at: string;
}

/** Usage records and quotas; SQLite and PostgreSQL through one Kysely code path. */
export interface UsageStore {
  insertUsage(row: UsageRecord): Promise<void>;
  /** Sums of records that ended in [from, to), grouped; only `userId`'s when given. Keys ascending. */
  sumUsage(q: { from: string; to: string; groupBy: UsageGroup; userId?: string }): Promise<UsageSums[]>;
  /** Wall ms of the user's records that ended at or after `since`. */
  wallMsSince(userId: string, since: string): Promise<number>;
  getQuota(userId: string): Promise<QuotaRecord | undefined>;
  setQuota(row: QuotaRecord): Promise<void>;
}
