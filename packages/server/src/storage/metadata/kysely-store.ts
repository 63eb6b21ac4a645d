import type { JobStatus, LogStream } from '@mags/shared';
import type { Kysely, Selectable } from 'kysely';
import type { Database, JobsTable } from './schema.js';
import {
  UniqueViolationError,
  type Job,
  type JobPatch,
  type LogLine,
  type MetadataStore,
  type TokenRecord,
  type User,
} from './store.js';
import type { Dialect } from './db.js';

/** Rows per INSERT statement, well under SQLite's bound-parameter limit. */
const LOG_INSERT_CHUNK = 500;

/** The metadata store on Kysely: one code path for SQLite and PostgreSQL. */
export class KyselyStore implements MetadataStore {
  constructor(
    private readonly db: Kysely<Database>,
    readonly dialect: Dialect,
  ) {}

  async createUser(user: User): Promise<void> {
    await this.wrapUnique(`a user named "${user.name}" already exists`, () =>
      this.db.insertInto('users').values(userRow(user)).execute(),
    );
  }

  async createUserWithToken(user: User, token: TokenRecord): Promise<void> {
    await this.wrapUnique(`a user named "${user.name}" already exists`, () =>
      this.db.transaction().execute(async (trx) => {
        await trx.insertInto('users').values(userRow(user)).execute();
        await trx.insertInto('tokens').values(token).execute();
      }),
    );
  }

  async getUser(id: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toUser(row);
  }

  async getUserByName(name: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toUser(row);
  }

  async listUsers(): Promise<User[]> {
    const rows = await this.db.selectFrom('users').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(toUser);
  }

  async countUsers(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async createToken(token: TokenRecord): Promise<void> {
    await this.db.insertInto('tokens').values(token).execute();
  }

  async findToken(tokenHash: string): Promise<{ token: TokenRecord; user: User } | undefined> {
    const token = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('token_hash', '=', tokenHash)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!token) return undefined;
    const user = await this.getUser(token.user_id);
    return user && { token, user };
  }

  async touchToken(id: string, at: string): Promise<void> {
    await this.db.updateTable('tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  async listTokens(userId: string): Promise<TokenRecord[]> {
    return this.db
      .selectFrom('tokens')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  async revokeToken(userId: string, id: string, at: string): Promise<boolean> {
    const res = await this.db
      .updateTable('tokens')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async insertJob(job: Job): Promise<void> {
    await this.db.insertInto('jobs').values(jobRow(job)).execute();
  }

  async getJob(requestId: string): Promise<Job | undefined> {
    const row = await this.db.selectFrom('jobs').selectAll().where('request_id', '=', requestId).executeTakeFirst();
    return row && toJob(row);
  }

  async findJobForUser(userId: string, ref: string): Promise<Job | undefined> {
    const byId = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('request_id', '=', ref)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (byId) return toJob(byId);
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
      if (live) return toJob(live);
      const any = await this.db
        .selectFrom('jobs')
        .selectAll()
        .where('user_id', '=', userId)
        .where(column, '=', ref)
        .orderBy('num', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (any) return toJob(any);
    }
    return undefined;
  }

  async listJobs(userId: string, offset: number, limit: number): Promise<{ jobs: Job[]; total: number }> {
    const rows = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('num', 'desc')
      .limit(limit)
      .offset(offset)
      .execute();
    const count = await this.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    return { jobs: rows.map(toJob), total: Number(count.n) };
  }

  async listJobsByStatus(statuses: readonly JobStatus[]): Promise<Job[]> {
    if (statuses.length === 0) return [];
    const rows = await this.db
      .selectFrom('jobs')
      .selectAll()
      .where('status', 'in', [...statuses])
      .orderBy('num', 'asc')
      .execute();
    return rows.map(toJob);
  }

  async countJobs(): Promise<number> {
    const row = await this.db.selectFrom('jobs').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
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
    const set: Partial<Record<keyof JobsTable, unknown>> = { updated_at: new Date().toISOString() };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) continue;
      set[k as keyof JobsTable] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
    }
    let q = this.db.updateTable('jobs').set(set as never).where('request_id', '=', requestId);
    if (onlyIf) {
      if (onlyIf.length === 0) return false;
      q = q.where('status', 'in', [...onlyIf]);
    }
    const res = await q.executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async appendLogs(lines: readonly LogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const rows = lines.map((l) => ({ job_id: l.job_id, seq: l.seq, ts: l.timestamp, stream: l.stream, text: l.message }));
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += LOG_INSERT_CHUNK) {
        await trx.insertInto('job_logs').values(rows.slice(i, i + LOG_INSERT_CHUNK)).execute();
      }
    });
  }

  async getLogs(jobId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    const rows = await this.db
      .selectFrom('job_logs')
      .selectAll()
      .where('job_id', '=', jobId)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ job_id: r.job_id, seq: Number(r.seq), timestamp: r.ts, stream: r.stream as LogStream, message: r.text }));
  }

  async maxLogSeq(jobId: string): Promise<number> {
    const row = await this.db
      .selectFrom('job_logs')
      .select((eb) => eb.fn.max('seq').as('m'))
      .where('job_id', '=', jobId)
      .executeTakeFirst();
    return row?.m == null ? 0 : Number(row.m);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  private async wrapUnique<T>(message: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new UniqueViolationError(message);
      }
      throw err;
    }
  }
}

function userRow(u: User) {
  return { id: u.id, name: u.name, admin: u.admin ? 1 : 0, created_at: u.created_at };
}

function toUser(r: { id: string; name: string; admin: number; created_at: string }): User {
  return { id: r.id, name: r.name, admin: Number(r.admin) === 1, created_at: r.created_at };
}

function jobRow(j: Job) {
  return {
    request_id: j.request_id,
    user_id: j.user_id,
    name: j.name,
    workspace_id: j.workspace_id,
    base_workspace_id: j.base_workspace_id,
    type: j.type,
    script: j.script,
    persistent: j.persistent ? 1 : 0,
    no_sleep: j.no_sleep ? 1 : 0,
    startup_command: j.startup_command,
    environment: JSON.stringify(j.environment),
    file_ids: JSON.stringify(j.file_ids),
    disk_gb: j.disk_gb,
    vcpus: j.vcpus,
    memory_mb: j.memory_mb,
    rootfs_type: j.rootfs_type,
    timeout_seconds: j.timeout_seconds,
    api_version: j.api_version,
    status: j.status,
    exit_code: j.exit_code,
    error_message: j.error_message,
    vm_id: j.vm_id,
    host: j.host,
    subdomain: j.subdomain,
    url: j.url,
    script_duration_ms: j.script_duration_ms,
    created_at: j.created_at,
    started_at: j.started_at,
    completed_at: j.completed_at,
    updated_at: j.updated_at,
  };
}

function toJob(r: Selectable<JobsTable>): Job {
  return {
    request_id: r.request_id,
    user_id: r.user_id,
    name: r.name,
    workspace_id: r.workspace_id,
    base_workspace_id: r.base_workspace_id,
    type: 'inline',
    script: r.script,
    persistent: Number(r.persistent) === 1,
    no_sleep: Number(r.no_sleep) === 1,
    startup_command: r.startup_command,
    environment: JSON.parse(r.environment) as Record<string, string>,
    file_ids: JSON.parse(r.file_ids) as string[],
    disk_gb: Number(r.disk_gb),
    vcpus: Number(r.vcpus),
    memory_mb: Number(r.memory_mb),
    rootfs_type: r.rootfs_type,
    timeout_seconds: r.timeout_seconds == null ? null : Number(r.timeout_seconds),
    api_version: Number(r.api_version),
    status: r.status as JobStatus,
    exit_code: r.exit_code == null ? null : Number(r.exit_code),
    error_message: r.error_message,
    vm_id: r.vm_id,
    host: r.host,
    subdomain: r.subdomain,
    url: r.url,
    script_duration_ms: r.script_duration_ms == null ? null : Number(r.script_duration_ms),
    created_at: r.created_at,
    started_at: r.started_at,
    completed_at: r.completed_at,
    updated_at: r.updated_at,
  };
}
