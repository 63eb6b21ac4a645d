import type { Kysely, Selectable } from 'kysely';
import type { CronStore, ScheduleRecord, ScheduleRunRecord, SchedulePatch, RunOutcome } from './cron.js';
import type { Database, SchedulesTable } from './schema.js';
import { keepNewestBound, yieldToEventLoop } from './db.js';
import { UniqueViolationError } from './store.js';

/** Schedules on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyCronStore implements CronStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertSchedule(row: ScheduleRecord): Promise<void> {
    await unique(() => this.db.insertInto('schedules').values(toRow(row) as SchedulesTable).execute(), row.name);
  }

  async getSchedule(id: string): Promise<ScheduleRecord | undefined> {
    const row = await this.db.selectFrom('schedules').selectAll().where('id', '=', id).executeTakeFirst();
    return row && fromRow(row);
  }

  async findSchedule(userId: string, ref: string): Promise<ScheduleRecord | undefined> {
    const byId = await this.db.selectFrom('schedules').selectAll().where('user_id', '=', userId).where('id', '=', ref).executeTakeFirst();
    if (byId) return fromRow(byId);
    const byName = await this.db.selectFrom('schedules').selectAll().where('user_id', '=', userId).where('name', '=', ref).executeTakeFirst();
    return byName && fromRow(byName);
  }

  async listSchedules(userId: string): Promise<ScheduleRecord[]> {
    const rows = await this.db.selectFrom('schedules').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
    return rows.map(fromRow);
  }

  async countSchedules(userId: string): Promise<number> {
    const row = await this.db.selectFrom('schedules').select((eb) => eb.fn.countAll().as('n')).where('user_id', '=', userId).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  async updateSchedule(id: string, patch: SchedulePatch): Promise<boolean> {
    const r = await unique(() => this.db.updateTable('schedules').set(toRow(patch)).where('id', '=', id).executeTakeFirst(), patch.name ?? '');
    return Number(r.numUpdatedRows) > 0;
  }

  async deleteSchedule(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('schedules').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async dueSchedules(nowIso: string, limit: number): Promise<ScheduleRecord[]> {
    const rows = await this.db
      .selectFrom('schedules')
      .selectAll()
      .where('enabled', '=', 1)
      .where('due_at', 'is not', null)
      .where('due_at', '<=', nowIso)
      .orderBy('due_at')
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }

  async nextDueAt(): Promise<string | undefined> {
    const row = await this.db.selectFrom('schedules').select((eb) => eb.fn.min('due_at').as('due')).where('enabled', '=', 1).where('due_at', 'is not', null).executeTakeFirst();
    return (row?.due as string | null | undefined) ?? undefined;
  }

  async advance(id: string, expectedNextRunAt: string, patch: Pick<ScheduleRecord, 'next_run_at' | 'due_at'> & { last_run_at?: string }): Promise<boolean> {
    const r = await this.db.updateTable('schedules').set(patch).where('id', '=', id).where('next_run_at', '=', expectedNextRunAt).where('enabled', '=', 1).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async insertRun(row: ScheduleRunRecord): Promise<boolean> {
    try {
      await unique(() => this.db.insertInto('schedule_runs').values(row).execute(), row.scheduled_for);
      return true;
    } catch (err) {
      if (err instanceof UniqueViolationError) return false;
      throw err;
    }
  }

  async updateRun(scheduleId: string, scheduledFor: string, patch: Partial<Pick<ScheduleRunRecord, 'outcome' | 'job_id' | 'message'>>, onlyIf?: RunOutcome): Promise<boolean> {
    let q = this.db.updateTable('schedule_runs').set(patch).where('schedule_id', '=', scheduleId).where('scheduled_for', '=', scheduledFor);
    if (onlyIf) q = q.where('outcome', '=', onlyIf);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async listRuns(scheduleId: string, limit: number): Promise<ScheduleRunRecord[]> {
    return this.db.selectFrom('schedule_runs').selectAll().where('schedule_id', '=', scheduleId).orderBy('scheduled_for', 'desc').limit(limit).execute() as Promise<ScheduleRunRecord[]>;
  }

  async lastSubmittedRun(scheduleId: string): Promise<ScheduleRunRecord | undefined> {
    return (await this.db
      .selectFrom('schedule_runs')
      .selectAll()
      .where('schedule_id', '=', scheduleId)
      .where('outcome', '=', 'submitted')
      .orderBy('created_at', 'desc')
      .orderBy('scheduled_for', 'desc')
      .limit(1)
      .executeTakeFirst()) as ScheduleRunRecord | undefined;
  }

  async queuedRun(scheduleId: string): Promise<ScheduleRunRecord | undefined> {
    return (await this.db.selectFrom('schedule_runs').selectAll().where('schedule_id', '=', scheduleId).where('outcome', '=', 'queued').orderBy('scheduled_for').limit(1).executeTakeFirst()) as
      | ScheduleRunRecord
      | undefined;
  }

  async runOfJob(jobId: string): Promise<ScheduleRunRecord | undefined> {
    return (await this.db.selectFrom('schedule_runs').selectAll().where('job_id', '=', jobId).executeTakeFirst()) as ScheduleRunRecord | undefined;
  }

  async schedulesWithQueuedRuns(): Promise<string[]> {
    const rows = await this.db.selectFrom('schedule_runs').select('schedule_id').where('outcome', '=', 'queued').distinct().execute();
    return rows.map((r) => r.schedule_id);
  }

  async pruneRuns(before: string, keepNewest: number): Promise<number> {
    // Schedule by schedule (runs of a deleted schedule go with it): each step is a range of the
    // primary key (schedule_id, scheduled_for), so a large table is never scanned in one statement.
    let deleted = 0;
    for (const { id } of await this.db.selectFrom('schedules').select('id').execute()) {
      deleted += await this.pruneRunsOf(id, before, keepNewest);
      await yieldToEventLoop();
    }
    return deleted;
  }

  private async pruneRunsOf(scheduleId: string, before: string, keepNewest: number): Promise<number> {
    // Firings older than the schedule's newest `keepNewest` (and than the cutoff): a key range.
    const bound = await keepNewestBound(this.db, { table: 'schedule_runs', owner: 'schedule_id', ownerId: scheduleId, key: 'scheduled_for' }, before, keepNewest);
    if (bound === undefined) return 0;
    const oldest = await this.db.selectFrom('schedule_runs').select('scheduled_for').where('schedule_id', '=', scheduleId).where('scheduled_for', '<', bound).limit(1).executeTakeFirst();
    if (!oldest) return 0;
    // The overlap policy looks at the job of the newest submitting firing: it stays, as do queued ones.
    const submitted = await this.lastSubmittedRun(scheduleId);
    let q = this.db
      .deleteFrom('schedule_runs')
      .where('schedule_id', '=', scheduleId)
      .where('scheduled_for', '<', bound)
      .where('created_at', '<', before)
      .where('outcome', 'in', ['submitted', 'skipped', 'failed']);
    if (submitted) q = q.where('scheduled_for', '<>', submitted.scheduled_for);
    return Number((await q.executeTakeFirst()).numDeletedRows);
  }
}

function toRow(s: Partial<ScheduleRecord>): Partial<SchedulesTable> {
  const row: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (v === undefined) continue;
    if (k === 'enabled') row[k] = v ? 1 : 0;
    else if (k === 'job_options') row[k] = JSON.stringify(v);
    else row[k] = v;
  }
  return row as Partial<SchedulesTable>;
}

function fromRow(row: Selectable<SchedulesTable>): ScheduleRecord {
  return { ...row, enabled: Number(row.enabled) === 1, jitter_seconds: Number(row.jitter_seconds), job_options: JSON.parse(row.job_options) } as ScheduleRecord;
}

/** Runs a write and turns a unique-constraint failure of either driver into UniqueViolationError. */
export async function unique<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new UniqueViolationError(`${what} already exists`);
    throw err;
  }
}
