import type { JobStatus } from '@mags/shared';
import type { Insertable, Kysely } from 'kysely';
import { fromJobRow, toJobRow } from './job-rows.js';
import type { Database, JobsTable } from './schema.js';
import type { Job, JobListFilter, JobPatch, JobStore } from './store.js';

/** Jobs on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyJobStore implements JobStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insertJob(job: Job): Promise<void> {
    await this.db.insertInto('jobs').values(toJobRow(job) as Insertable<JobsTable>).execute();
  }

  async getJob(requestId: string): Promise<Job | undefined> {
    const row = await this.db.selectFrom('jobs').selectAll().where('request_id', '=', requestId).executeTakeFirst();
    return row && fromJobRow(row);
  }

  async findJobForUser(userId: string, ref: string): Promise<Job | undefined> {
    const byId = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('request_id', '=', ref)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (byId) return fromJobRow(byId);
    for (const column of ['name', 'workspace_id'] as const) {
      const live = await this.db
        .selectFrom('jobs')
        .selectAll()
        .where('user_id', '=', userId)
        .where(column, '=', ref)
        .where('status', 'in', ['running', 'sleeping', 'pending'])
        .orderBy('num', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (live) return fromJobRow(live);
      const any = await this.db
        .selectFrom('jobs')
        .selectAll()
        .where('user_id', '=', userId)
        .where(column, '=', ref)
        .orderBy('num', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (any) return fromJobRow(any);
    }
    return undefined;
  }

  async findWorkspaceJob(userId: string, workspaceId: string, statuses: readonly JobStatus[]): Promise<Job | undefined> {
    const row = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('user_id', '=', userId)
      .where('workspace_id', '=', workspaceId)
      .where('persistent', '=', 1)
      .where('status', 'in', [...statuses])
      .orderBy('num', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && fromJobRow(row);
  }

  async listJobs(userId: string, offset: number, limit: number, filter: JobListFilter = {}): Promise<{ jobs: Job[]; total: number }> {
    let base = this.db.selectFrom('jobs').where('user_id', '=', userId);
    if (filter.statuses && filter.statuses.length > 0) base = base.where('status', 'in', [...filter.statuses]);
    if (filter.createdSince) base = base.where('created_at', '>=', filter.createdSince);
    const rows = await base.selectAll().orderBy('num', 'desc').limit(limit).offset(offset).execute();
    const count = await base.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return { jobs: rows.map(fromJobRow), total: Number(count.n) };
  }

  async listJobsByStatus(statuses: readonly JobStatus[]): Promise<Job[]> {
    if (statuses.length === 0) return [];
    const rows = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('status', 'in', [...statuses])
      .orderBy('num', 'asc')
      .execute();
    return rows.map(fromJobRow);
  }

  async countJobsByStatus(): Promise<Partial<Record<JobStatus, number>>> {
    const rows = await this.db.selectFrom('jobs').select(['status', (eb) => eb.fn.countAll().as('n')]).groupBy('status').execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  async countJobs(): Promise<number> {
    const row = await this.db.selectFrom('jobs').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async deleteJob(requestId: string, onlyIf: readonly JobStatus[]): Promise<boolean> {
    if (onlyIf.length === 0) return false;
    // Chunks first, in the same transaction: SQLite deletes them by the foreign key only when
    // foreign keys are on, and a row must never lose its job while its output stays.
    return this.db.transaction().execute(async (trx) => {
      const job = await trx.selectFrom('jobs').select('status').where('request_id', '=', requestId).executeTakeFirst();
      if (!job || !onlyIf.includes(job.status as JobStatus)) return false;
      await trx.deleteFrom('job_log_chunks').where('job_id', '=', requestId).execute();
      const r = await trx.deleteFrom('jobs').where('request_id', '=', requestId).where('status', 'in', [...onlyIf]).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async countUserJobs(userId: string, statuses: readonly JobStatus[]): Promise<number> {
    if (statuses.length === 0) return 0;
    const row = await this.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('user_id', '=', userId)
      .where('status', 'in', [...statuses])
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async updateJob(requestId: string, patch: JobPatch, onlyIf?: readonly JobStatus[]): Promise<boolean> {
    const set = { ...toJobRow(patch), updated_at: new Date().toISOString() };
    let q = this.db.updateTable('jobs').set(set as never).where('request_id', '=', requestId);
    if (onlyIf) {
      if (onlyIf.length === 0) return false;
      q = q.where('status', 'in', [...onlyIf]);
    }
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
}
