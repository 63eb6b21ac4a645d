/** What a firing does when the schedule's previous job is still pending or running. */
export type OverlapPolicy = 'skip' | 'queue' | 'replace';
/** What a schedule does at start about firings missed while no daemon ran: one (the latest) or none. */
export type CatchUpPolicy = 'one' | 'none';

/** Job options a schedule submits with its script (the submit fields, stored as JSON). */
export interface ScheduleJobOptions {
  workspace_id?: string | null;
  base_workspace_id?: string | null;
  persistent?: boolean | null;
  no_sleep?: boolean | null;
  startup_command?: string | null;
  environment?: Record<string, string> | null;
  file_ids?: string[] | null;
  disk_gb?: number | null;
  vcpus?: number | null;
  memory_mb?: number | null;
  timeout_seconds?: number | null;
  webhook_url?: string | null;
}

/** A cron schedule as stored. Times are ISO 8601 UTC text. */
export interface ScheduleRecord {
  id: string;
  user_id: string;
  name: string;
  cron_expression: string;
  timezone: string;
  script: string;
  job_options: ScheduleJobOptions;
  enabled: boolean;
  overlap: OverlapPolicy;
  catch_up: CatchUpPolicy;
  jitter_seconds: number;
  /** The next scheduled time (from the expression), null when disabled or when there is none. */
  next_run_at: string | null;
  /** When that firing is due: next_run_at plus the jitter. */
  due_at: string | null;
  last_run_at: string | null;
  created_at: string;
  updated_at: string;
}

/** How a firing ended: a job was submitted, or why not. */
export type RunOutcome = 'submitted' | 'skipped' | 'queued' | 'failed';

/** One firing of a schedule; (schedule_id, scheduled_for) is unique. */
export interface ScheduleRunRecord {
  schedule_id: string;
  scheduled_for: string;
  /** `schedule` (the timer), `catch_up` (missed while down) or `manual` (run-now). */
  trigger: 'schedule' | 'catch_up' | 'manual';
  outcome: RunOutcome;
  job_id: string | null;
  message: string | null;
  created_at: string;
}

export type SchedulePatch = Partial<
  Pick<ScheduleRecord, 'name' | 'cron_expression' | 'timezone' | 'script' | 'job_options' | 'enabled' | 'overlap' | 'catch_up' | 'jitter_seconds' | 'next_run_at' | 'due_at' | 'last_run_at' | 'updated_at'>
>;

/**
 * Schedules and their firings. `KyselyCronStore` implements it on SQLite and PostgreSQL; the
 * claim methods are compare-and-set so two daemons on one database fire each time once.
 */
export interface CronStore {
  /** UniqueViolationError when the user already has a schedule of this name. */
  insertSchedule(row: ScheduleRecord): Promise<void>;
  getSchedule(id: string): Promise<ScheduleRecord | undefined>;
  /** A schedule of this user by id, else by name. */
  findSchedule(userId: string, ref: string): Promise<ScheduleRecord | undefined>;
  listSchedules(userId: string): Promise<ScheduleRecord[]>;
  countSchedules(userId: string): Promise<number>;
  /** UniqueViolationError on a taken name. */
  updateSchedule(id: string, patch: SchedulePatch): Promise<boolean>;
  deleteSchedule(id: string): Promise<boolean>;
  /** Enabled schedules due at or before `nowIso`, earliest first. */
  dueSchedules(nowIso: string, limit: number): Promise<ScheduleRecord[]>;
  /** The earliest due_at of enabled schedules. */
  nextDueAt(): Promise<string | undefined>;
  /**
   * Moves a schedule from the firing at `expectedNextRunAt` to the next one; false when another
   * daemon (or an edit) moved it first. Only the caller that gets true fires.
   */
  advance(id: string, expectedNextRunAt: string, patch: Pick<ScheduleRecord, 'next_run_at' | 'due_at'> & { last_run_at?: string }): Promise<boolean>;
  /** Records a firing; false when (schedule_id, scheduled_for) already exists. */
  insertRun(row: ScheduleRunRecord): Promise<boolean>;
  /** Changes a firing's outcome; with `onlyIf`, only when its outcome is that one (a claim). */
  updateRun(scheduleId: string, scheduledFor: string, patch: Partial<Pick<ScheduleRunRecord, 'outcome' | 'job_id' | 'message'>>, onlyIf?: RunOutcome): Promise<boolean>;
  /** Newest firings first. */
  listRuns(scheduleId: string, limit: number): Promise<ScheduleRunRecord[]>;
  /** The newest firing that submitted a job. */
  lastSubmittedRun(scheduleId: string): Promise<ScheduleRunRecord | undefined>;
  /** The firing waiting for the previous job (overlap `queue`), if any. */
  queuedRun(scheduleId: string): Promise<ScheduleRunRecord | undefined>;
  /** The firing that submitted this job. */
  runOfJob(jobId: string): Promise<ScheduleRunRecord | undefined>;
  /** Schedules with a firing waiting (overlap `queue`). */
  schedulesWithQueuedRuns(): Promise<string[]>;
  /**
   * Deletes firings recorded before `before`, except each schedule's newest `keepNewest`, its
   * newest `submitted` one and `queued` ones; answers how many went.
   */
  pruneRuns(before: string, keepNewest: number): Promise<number>;
}
