import { randomBytes } from 'node:crypto';
import { JOB_LIMITS } from '@mags/shared';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../clock.js';
import { PassLoop } from '../pass-loop.js';
import { AppError } from '../services/errors.js';
import type { EndedStatus, JobEventListener } from '../services/job-events.js';
import type { SubmitInput } from '../services/jobs.js';
import type { CatchUpPolicy, CronStore, OverlapPolicy, ScheduleJobOptions, ScheduleRecord, ScheduleRunRecord } from '../storage/metadata/cron.js';
import { UniqueViolationError, type Job, type JobStore, type User, type UserStore } from '../storage/metadata/store.js';
import { parseCron } from './expression.js';

/** What the cron service needs of the jobs service: submit and stop, with all their checks. */
export interface CronJobs {
  submit(user: User, input: SubmitInput, apiVersion: 1 | 2): Promise<Job>;
  stop(user: User, ref: string): Promise<Job>;
}

export interface CronServiceOptions {
  store: CronStore;
  users: Pick<UserStore, 'getUser'>;
  jobs: CronJobs;
  jobStore: Pick<JobStore, 'getJob'>;
  log: Logger;
  clock?: Clock;
  /** Random number in [0, 1) for jitter (tests pass a fixed one). */
  random?: () => number;
  /** A firing found this late is a missed one (catch_up decides); default 60 s. */
  missedAfterMs?: number;
  /** Accept 6-field expressions with seconds (tests and benchmarks only; not a setting). */
  allowSeconds?: boolean;
  /** Checks a schedule's webhook_url like a job's (absent: webhook_url is refused). */
  checkWebhook?: (userId: string, url: string) => Promise<void>;
}

/** Fields a client sets on a schedule. */
export interface ScheduleInput {
  name?: string;
  cron_expression?: string;
  timezone?: string;
  script?: string;
  enabled?: boolean;
  overlap?: OverlapPolicy;
  catch_up?: CatchUpPolicy;
  jitter_seconds?: number;
  job_options?: ScheduleJobOptions;
}

/** Schedules one user may have. */
export const MAX_SCHEDULES_PER_USER = 1000;
/** The longest the timer sleeps before looking at the database again (schedules other daemons changed). */
const MAX_SLEEP_MS = 60_000;
/** Schedules handled per pass. */
const BATCH = 100;

/**
 * Cron schedules: CRUD with validation (croner parses, the answer shows the next runs), and the
 * firing engine. The database is the truth: one timer sleeps until the earliest `due_at`; a
 * firing is claimed by moving `next_run_at` with a compare-and-set and recorded under the unique
 * key (schedule_id, scheduled_for), so with several daemons on one database each firing submits
 * one job. Firings missed while no daemon ran collapse into one (catch_up `one`) or none.
 */
export class CronService implements JobEventListener {
  private readonly clock: Clock;
  private readonly loop: PassLoop;

  constructor(private readonly o: CronServiceOptions) {
    this.clock = o.clock ?? systemClock;
    this.loop = new PassLoop({
      clock: this.clock,
      maxSleepMs: MAX_SLEEP_MS,
      round: () => this.fireDueBatch(),
      settle: async () => {
        for (const id of await this.o.store.schedulesWithQueuedRuns()) await this.drainQueued(id);
        return this.o.store.nextDueAt();
      },
      failed: (err) => this.o.log.error({ err }, 'cron pass failed; retrying in a minute'),
    });
  }

  // ---- CRUD -------------------------------------------------------------------------------

  async create(user: User, input: Required<Pick<ScheduleInput, 'name' | 'cron_expression' | 'script'>> & ScheduleInput): Promise<ScheduleRecord> {
    const timezone = input.timezone ?? 'UTC';
    parseCron(input.cron_expression, timezone, this.o.allowSeconds);
    await this.checkOptions(user, input);
    if ((await this.o.store.countSchedules(user.id)) >= MAX_SCHEDULES_PER_USER) {
      throw new AppError('RATE_LIMITED', `You have ${MAX_SCHEDULES_PER_USER} schedules (the limit)`, 'Remove schedules you no longer need with DELETE /api/v1/mags-cron/{id}.');
    }
    const now = this.iso(this.clock.now());
    const row: ScheduleRecord = {
      id: `cron_${randomBytes(8).toString('hex')}`,
      user_id: user.id,
      name: input.name,
      cron_expression: input.cron_expression.trim(),
      timezone,
      script: input.script,
      job_options: input.job_options ?? {},
      enabled: input.enabled ?? true,
      overlap: input.overlap ?? 'skip',
      catch_up: input.catch_up ?? 'one',
      jitter_seconds: input.jitter_seconds ?? 0,
      next_run_at: null,
      due_at: null,
      last_run_at: null,
      created_at: now,
      updated_at: now,
    };
    Object.assign(row, this.nextFiring(row, this.clock.now()));
    try {
      await this.o.store.insertSchedule(row);
    } catch (err) {
      if (err instanceof UniqueViolationError) throw nameTaken(input.name);
      throw err;
    }
    this.kick();
    return row;
  }

  async list(user: User): Promise<ScheduleRecord[]> {
    return this.o.store.listSchedules(user.id);
  }

  /** One of the user's schedules by id or name; SCHEDULE_NOT_FOUND otherwise. */
  async get(user: User, ref: string): Promise<ScheduleRecord> {
    const s = await this.o.store.findSchedule(user.id, ref);
    if (!s) throw new AppError('SCHEDULE_NOT_FOUND', `No schedule of yours has id or name "${ref.slice(0, 80)}"`, 'List your schedules with GET /api/v1/mags-cron (mags cron list).');
    return s;
  }

  /** Changes a schedule; a new expression, time zone, jitter or enabling computes the next firing from now. */
  async update(user: User, ref: string, patch: ScheduleInput): Promise<ScheduleRecord> {
    const s = await this.get(user, ref);
    const merged: ScheduleRecord = {
      ...s,
      ...definedOf(patch),
      job_options: patch.job_options ? { ...s.job_options, ...patch.job_options } : s.job_options,
    };
    merged.cron_expression = merged.cron_expression.trim();
    parseCron(merged.cron_expression, merged.timezone, this.o.allowSeconds);
    await this.checkOptions(user, { script: patch.script, job_options: patch.job_options });
    const retime =
      merged.cron_expression !== s.cron_expression || merged.timezone !== s.timezone || merged.jitter_seconds !== s.jitter_seconds || merged.enabled !== s.enabled;
    const times = retime ? this.nextFiring(merged, this.clock.now()) : {};
    try {
      await this.o.store.updateSchedule(s.id, {
        name: merged.name,
        cron_expression: merged.cron_expression,
        timezone: merged.timezone,
        script: merged.script,
        job_options: merged.job_options,
        enabled: merged.enabled,
        overlap: merged.overlap,
        catch_up: merged.catch_up,
        jitter_seconds: merged.jitter_seconds,
        ...times,
        updated_at: this.iso(this.clock.now()),
      });
    } catch (err) {
      if (err instanceof UniqueViolationError) throw nameTaken(merged.name);
      throw err;
    }
    this.kick();
    return (await this.o.store.getSchedule(s.id))!;
  }

  async remove(user: User, ref: string): Promise<ScheduleRecord> {
    const s = await this.get(user, ref);
    await this.o.store.deleteSchedule(s.id);
    return s;
  }

  /** The next `n` scheduled times (without jitter) after now. */
  nextRuns(s: Pick<ScheduleRecord, 'cron_expression' | 'timezone' | 'enabled'>, n = 3): string[] {
    if (!s.enabled) return [];
    return parseCron(s.cron_expression, s.timezone, this.o.allowSeconds)
      .upcoming(n, new Date(this.clock.now()))
      .map((d) => d.toISOString());
  }

  /** The schedule's firings, newest first, with the status of the job each submitted. */
  async runs(user: User, ref: string, limit: number): Promise<Array<ScheduleRunRecord & { job_status: string | null }>> {
    const s = await this.get(user, ref);
    const runs = await this.o.store.listRuns(s.id, limit);
    return Promise.all(runs.map(async (r) => ({ ...r, job_status: r.job_id ? ((await this.o.jobStore.getJob(r.job_id))?.status ?? null) : null })));
  }

  /** Fires a schedule now (the overlap policy applies); answers the firing. */
  async runNow(user: User, ref: string): Promise<ScheduleRunRecord> {
    const s = await this.get(user, ref);
    const r = await this.fire(s, this.iso(this.clock.now()), 'manual');
    return r ?? (await this.o.store.listRuns(s.id, 1))[0]!;
  }

  private async checkOptions(user: User, input: ScheduleInput): Promise<void> {
    if (input.script !== undefined && Buffer.byteLength(input.script, 'utf8') > JOB_LIMITS.scriptMaxBytes) {
      throw new AppError('PAYLOAD_TOO_LARGE', `script: larger than ${JOB_LIMITS.scriptMaxBytes} bytes (1 MiB)`, 'Put large data in a file and upload it, or fetch it from inside the script.');
    }
    const url = input.job_options?.webhook_url;
    if (!url) return;
    if (!this.o.checkWebhook) throw new AppError('FEATURE_NOT_AVAILABLE', 'webhook_url: webhooks are not available on this server');
    await this.o.checkWebhook(user.id, url);
  }

  // ---- firing -----------------------------------------------------------------------------

  start(): void {
    this.loop.start();
  }

  /** Stops the timer and waits for the passes it started. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Resolves when the passes started by the timer so far have finished. */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Looks at the database now (a schedule changed). */
  kick(): void {
    this.loop.kick();
  }

  /**
   * Fires every due schedule, submits firings that waited for a previous job, then sleeps until
   * the earliest next one (at most a minute).
   */
  pass(): Promise<void> {
    return this.loop.pass();
  }

  /** Fires a batch of due schedules; true when the batch was full (more may be due). */
  private async fireDueBatch(): Promise<boolean> {
    const due = await this.o.store.dueSchedules(this.iso(this.clock.now()), BATCH);
    // Claims are independent compare-and-sets: schedules due at the same time fire side by side.
    await Promise.all(due.map((s) => this.fireDueOrPostpone(s)));
    return due.length === BATCH;
  }

  /**
   * A firing that fails unexpectedly (the database, an expression this Node no longer parses) is
   * retried a minute later rather than at once, so one broken schedule cannot spin the timer.
   */
  private async fireDueOrPostpone(s: ScheduleRecord): Promise<void> {
    try {
      await this.fireDue(s);
    } catch (err) {
      this.o.log.error({ err, schedule: s.id }, 'schedule firing failed; retrying in a minute');
      const later = this.iso(this.clock.now() + MAX_SLEEP_MS);
      await this.o.store
        .advance(s.id, s.next_run_at!, { next_run_at: s.next_run_at, due_at: later })
        .catch((e: unknown) => this.o.log.error({ err: e, schedule: s.id }, 'could not postpone a failed firing'));
    }
  }

  /** Claims a due schedule's firing (moving it to the next time after now) and fires it, or records it missed. */
  private async fireDue(s: ScheduleRecord): Promise<void> {
    const now = this.clock.now();
    const nominal = s.next_run_at!;
    const missed = now - Date.parse(s.due_at!) > (this.o.missedAfterMs ?? 60_000);
    const next = this.nextFiring(s, now);
    if (!(await this.o.store.advance(s.id, nominal, { ...next, last_run_at: this.iso(now) }))) return;
    if (!missed) {
      await this.fire(s, nominal, 'schedule');
      return;
    }
    // Missed while no daemon ran: never a burst, at most the latest missed time.
    const latest = parseCron(s.cron_expression, s.timezone, this.o.allowSeconds).previous(new Date(now));
    const scheduledFor = latest && latest.getTime() >= Date.parse(nominal) ? latest.toISOString() : nominal;
    if (s.catch_up === 'none') {
      await this.record(s, scheduledFor, 'catch_up', 'skipped', null, `missed (no server was running at ${scheduledFor}); catch_up is none`);
      return;
    }
    await this.fire(s, scheduledFor, 'catch_up');
  }

  /**
   * One firing: applies the overlap policy, records the firing under its unique key (a second
   * daemon's attempt stops there) and submits the job through the jobs service.
   */
  private async fire(s: ScheduleRecord, scheduledFor: string, trigger: ScheduleRunRecord['trigger']): Promise<ScheduleRunRecord | undefined> {
    const user = await this.o.users.getUser(s.user_id);
    if (!user) return undefined;
    const active = await this.activeJob(s.id);
    if (active) {
      if (s.overlap === 'skip') return this.record(s, scheduledFor, trigger, 'skipped', null, `the previous run ${active.request_id} is still ${active.status}`);
      if (s.overlap === 'queue') {
        if (await this.o.store.queuedRun(s.id)) return this.record(s, scheduledFor, trigger, 'skipped', null, 'a firing is already waiting for the previous run');
        return this.record(s, scheduledFor, trigger, 'queued', null, `waits for the previous run ${active.request_id}`);
      }
    }
    const run = await this.record(s, scheduledFor, trigger, 'submitted', null, null);
    if (!run) return undefined;
    if (active && s.overlap === 'replace') {
      await this.o.jobs.stop(user, active.request_id).catch((err: unknown) => this.o.log.warn({ err, jobId: active.request_id }, 'could not stop the previous run'));
    }
    return this.submit(s, user, run);
  }

  /** Submits the schedule's job for a recorded firing and stores the job id or the refusal. */
  private async submit(s: ScheduleRecord, user: User, run: ScheduleRunRecord): Promise<ScheduleRunRecord> {
    try {
      const job = await this.o.jobs.submit(user, { ...s.job_options, script: s.script, type: 'inline', name: s.name }, 1);
      await this.o.store.updateRun(s.id, run.scheduled_for, { outcome: 'submitted', job_id: job.request_id });
      this.o.log.info({ schedule: s.id, scheduledFor: run.scheduled_for, jobId: job.request_id, trigger: run.trigger }, 'schedule fired');
      return { ...run, outcome: 'submitted', job_id: job.request_id };
    } catch (err) {
      const message = err instanceof AppError ? `${err.code}: ${err.message}` : `submit failed: ${(err as Error).message}`;
      if (!(err instanceof AppError)) this.o.log.error({ err, schedule: s.id }, 'schedule firing failed');
      await this.o.store.updateRun(s.id, run.scheduled_for, { outcome: 'failed', message });
      return { ...run, outcome: 'failed', message };
    }
  }

  /** Records a firing; undefined when this (schedule, time) was already recorded (by another daemon). */
  private async record(
    s: ScheduleRecord,
    scheduledFor: string,
    trigger: ScheduleRunRecord['trigger'],
    outcome: ScheduleRunRecord['outcome'],
    jobId: string | null,
    message: string | null,
  ): Promise<ScheduleRunRecord | undefined> {
    const row: ScheduleRunRecord = { schedule_id: s.id, scheduled_for: scheduledFor, trigger, outcome, job_id: jobId, message, created_at: this.iso(this.clock.now()) };
    return (await this.o.store.insertRun(row)) ? row : undefined;
  }

  /** The schedule's newest job while it is pending or running. */
  private async activeJob(scheduleId: string): Promise<Job | undefined> {
    const last = await this.o.store.lastSubmittedRun(scheduleId);
    if (!last?.job_id) return undefined;
    const job = await this.o.jobStore.getJob(last.job_id);
    return job && (job.status === 'pending' || job.status === 'running') ? job : undefined;
  }

  /** A job of a schedule ended: a firing that waited for it (overlap `queue`) is submitted now. */
  async jobEnded(job: Job, _status: EndedStatus): Promise<void> {
    const run = await this.o.store.runOfJob(job.request_id);
    if (run) await this.drainQueued(run.schedule_id);
  }

  private async drainQueued(scheduleId: string): Promise<void> {
    const q = await this.o.store.queuedRun(scheduleId);
    if (!q || (await this.activeJob(scheduleId))) return;
    const s = await this.o.store.getSchedule(scheduleId);
    const user = s && (await this.o.users.getUser(s.user_id));
    if (!s || !user) return;
    if (!(await this.o.store.updateRun(scheduleId, q.scheduled_for, { outcome: 'submitted', message: null }, 'queued'))) return;
    await this.submit(s, user, q);
  }

  /** The next firing after `afterMs`: its scheduled time and when it is due (plus jitter); nulls when disabled. */
  private nextFiring(s: ScheduleRecord, afterMs: number): { next_run_at: string | null; due_at: string | null } {
    if (!s.enabled) return { next_run_at: null, due_at: null };
    const next = parseCron(s.cron_expression, s.timezone, this.o.allowSeconds).next(new Date(afterMs));
    if (!next) return { next_run_at: null, due_at: null };
    const jitter = Math.floor((this.o.random ?? Math.random)() * (s.jitter_seconds * 1000 + 1));
    return { next_run_at: next.toISOString(), due_at: new Date(next.getTime() + Math.min(jitter, s.jitter_seconds * 1000)).toISOString() };
  }

  private iso(ms: number): string {
    return new Date(ms).toISOString();
  }
}

function definedOf<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([k, v]) => v !== undefined && k !== 'job_options')) as Partial<T>;
}

function nameTaken(name: string): AppError {
  return new AppError('CONFLICT', `name: you already have a schedule named "${name.slice(0, 80)}"`, 'Pick another name or change the existing schedule with PATCH /api/v1/mags-cron/{id}.');
}
